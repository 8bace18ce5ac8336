//! ssp-sim: a Spine Secure Proxy simulator for NHS GP Connect.
//!
//! A request's path through the modules: `listener` (TCP, TLS, HTTP) hands it to `gateway`,
//! which runs `checks` in order against the `registry`, then sends it to a backend through
//! `forwarder` (or the built-in `demo` provider); any refusal is a `rejection` rendered by
//! `error_catalog`.

pub mod admin;
pub mod body;
pub mod certs;
pub mod checks;
pub mod cli;
pub mod config_error;
pub mod demo;
pub mod directory;
pub mod error_catalog;
pub mod faults;
pub mod fhir_xml;
pub mod forwarder;
pub mod gateway;
pub mod interactions;
pub mod journal;
pub mod jwt_command;
pub mod listener;
pub mod metrics;
pub mod registry;
pub mod rejection;
pub mod reload;
pub mod server;
pub mod settings;
pub mod startup;
pub mod systems;
pub mod telemetry;
pub mod tls;
pub mod trail;
