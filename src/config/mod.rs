//! The loaded configuration, parsed and validated once at start-up (and on reload) into
//! typed tables the request path only reads: settings, the interaction catalogue, the error
//! catalogue, routes.toml (the mock SDS) and the JWT keys. Nothing here knows about checks,
//! forwarding or the admin API.

pub mod elements;
pub mod errors;
pub mod interactions;
pub mod jwt;
pub mod load;
pub mod pem;
pub mod problems;
pub mod rejection;
pub mod routes;
pub mod sds;
pub mod settings;
pub mod store;
