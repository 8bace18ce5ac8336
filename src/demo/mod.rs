//! The built-in GP Connect demo provider (`backend = "builtin:demo"`): an in-process provider
//! that sees requests after the gateway's checks, like any backend.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;

use crate::body::{self, Body};
use crate::checks::media_type::Format;
use crate::interactions::Interaction;
use crate::registry::{Endpoint, Provider};
use crate::rejection::{Placeholder, Rejection};

/// The CapabilityStatement served by `GET /metadata`.
const CAPABILITY_STATEMENT: &str = include_str!("../../demo/capability-statement.json");

/// A request the gateway has accepted for the demo provider.
pub struct DemoCall<'a> {
    pub provider: &'a Provider,
    pub endpoint: &'a Endpoint,
    pub interaction: &'a Interaction,
    /// The FHIR path and query below the service root.
    pub rest: &'a str,
    pub format: Format,
    pub request: Request<Incoming>,
}

/// The demo provider and its fixture data.
#[derive(Debug, Default)]
pub struct DemoProvider;

impl DemoProvider {
    pub fn new() -> Self {
        Self
    }

    pub async fn handle(&self, call: DemoCall<'_>) -> Result<Response<Body>, Rejection> {
        let path = call.rest.split('?').next().unwrap_or("");
        match (call.request.method(), path) {
            (&Method::GET, "/metadata") => Ok(fhir_json(CAPABILITY_STATEMENT)),
            _ => Err(Rejection::new("not-implemented").with(
                Placeholder::Diagnostics,
                format!(
                    "The demo provider does not implement {} {}",
                    call.request.method(),
                    path
                ),
            )),
        }
    }
}

fn fhir_json(text: &'static str) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::error_catalog::FHIR_JSON_UTF8),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
