//! The data plane: accept a connection (`listener`, `tls`), run one request through its
//! phases (`gateway`, recording each on its `trail`), and send it on (`forwarder`, over the
//! pooled connections of `client`); the mock SDS lookups (`directory`) are served on the same
//! listener.

pub mod client;
pub mod context;
pub mod directory;
pub mod forwarder;
pub mod gateway;
pub mod listener;
pub mod tls;
pub mod workers;
