//! The admin API, plain HTTP on its own (loopback) listener.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, Body};
use crate::forwarder::Peer;
use crate::gateway::Gateway;
use crate::listener::Handler;

/// Serves the admin endpoints over the running gateway.
pub struct Admin {
    gateway: Arc<Gateway>,
}

impl Admin {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

impl Handler for Admin {
    async fn handle(self: Arc<Self>, request: Request<Incoming>, _peer: Peer) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/health") => {
                let registry = self.gateway.registry();
                json(
                    StatusCode::OK,
                    serde_json::json!({
                        "status": "ok",
                        "routes": registry.file,
                        "consumers": registry.consumers().count(),
                        "providers": registry.providers().count(),
                    }),
                )
            }
            (_, path) => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({
                    "error": format!("no admin endpoint {} {path}; try GET /health", request.method())
                }),
            ),
        }
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
