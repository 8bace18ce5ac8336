//! What makes ssp-sim a test tool rather than a proxy, as state the gateway consults and
//! records into: faults that answer on demand, the journal of recent requests, Prometheus
//! metrics and the coverage report. The admin API (`crate::admin`) exposes them.

pub mod coverage;
pub mod faults;
pub mod journal;
pub mod metrics;
pub mod store;
pub mod trail;
