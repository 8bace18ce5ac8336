//! ssp-sim: a Spine Secure Proxy simulator for NHS GP Connect.
//!
//! A request's path through the modules, top to bottom (see ARCHITECTURE.md):
//! [`proxy`] accepts the connection and runs the request through the gateway's phases: the
//! Spine checks of [`spine`], the provider-side checks of [`provider`], then the built-in
//! [`demo`] provider or a backend. [`control`] holds faults, journal, metrics and reload;
//! [`config`] the loaded routes and catalogues every part reads; [`wire`] the bodies and
//! formats below them all. [`cli`] is the command line that wires them together.

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod provider;
pub mod proxy;
pub mod spine;
pub mod wire;
