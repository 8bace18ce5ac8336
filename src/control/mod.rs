//! The control plane: what makes ssp-sim a test tool rather than a proxy. Faults that answer
//! on demand, the journal of recent requests, Prometheus metrics, routes reload, and the
//! admin API that exposes them.

pub mod admin;
pub mod faults;
pub mod journal;
pub mod metrics;
pub mod reload;
