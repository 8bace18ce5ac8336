//! The life of one request through the SSP, as a straight line: the checks in the order of
//! DESIGN.md section 4, then the backend, then the answer. Reading `route` is reading the flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use tracing::{field, Instrument};

use crate::body::Body;
use crate::checks::{self, media_type::Format};
use crate::demo::{DemoCall, DemoProvider};
use crate::error_catalog::{ErrorCatalog, TRACE_ID};
use crate::forwarder::{self, Peer};
use crate::listener::Handler;
use crate::registry::{Backend, Registry};
use crate::rejection::{ids, Placeholder, Rejection};
use crate::trail::Trail;

/// The SSP: the live registry, the error catalogue and the backends.
pub struct Gateway {
    registry: ArcSwap<Registry>,
    catalog: ErrorCatalog,
    demo: DemoProvider,
    backend_timeout: Duration,
}

impl Gateway {
    pub fn new(
        registry: Registry,
        catalog: ErrorCatalog,
        demo: DemoProvider,
        backend_timeout: Duration,
    ) -> Self {
        Self {
            registry: ArcSwap::from_pointee(registry),
            catalog,
            demo,
            backend_timeout,
        }
    }

    /// The registry new requests use.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    /// Replaces the registry: requests in flight finish on the one they started with.
    pub fn swap_registry(&self, registry: Registry) {
        self.registry.store(Arc::new(registry));
    }

    /// Runs the checks and the backend call; any refusal comes back as its `Rejection`.
    /// Each check's result is written to `trail`.
    async fn route(
        &self,
        request: Request<Incoming>,
        peer: Peer,
        trail: &mut Trail,
    ) -> Result<Response<Body>, Rejection> {
        let span = tracing::Span::current();
        trail.check("method", checks::method::check(request.method()))?;
        let target = trail.check("target", checks::target::parse(request.uri()))?;
        let registry = self.registry.load_full();
        let ssp = trail.check(
            "headers",
            checks::headers::parse(request.headers(), &registry.interactions),
        )?;
        let interaction = registry.interactions.by_key(ssp.interaction);
        span.record("from", ssp.from.as_str());
        span.record("to", ssp.to.as_str());
        span.record("interaction", interaction.id.as_str());
        let consumer = trail.check("sender", checks::sender::check(&registry, &ssp))?;
        let (provider, endpoint) =
            trail.check("receiver", checks::receiver::check(&registry, &ssp))?;
        trail.check("fot", checks::fot::check(consumer, &ssp))?;
        let rest = trail.check("endpoint", checks::endpoint::check(&target, endpoint))?;
        let format: Format = trail.check(
            "media_type",
            checks::media_type::check(request.headers(), request.uri().query()),
        )?;

        match &endpoint.backend {
            Backend::Demo => Ok(self
                .demo
                .handle(DemoCall {
                    provider,
                    endpoint,
                    interaction,
                    rest,
                    format,
                    request,
                })
                .await?),
            Backend::Http(backend) => {
                let forwarded =
                    forwarder::forward(backend, request, rest, peer, self.backend_timeout).await;
                trail.check(
                    "forward",
                    forwarded.map_err(|e| {
                        tracing::warn!(target_url = target.as_str(), error = %e, "backend failed");
                        Rejection::new(ids::ERROR_COMMUNICATING)
                            .with(Placeholder::TargetUrl, target.as_str())
                            .with(Placeholder::Diagnostics, e.to_string())
                    }),
                )
            }
        }
    }
}

impl Handler for Gateway {
    async fn handle(self: Arc<Self>, request: Request<Incoming>, peer: Peer) -> Response<Body> {
        let started = Instant::now();
        let trace = request.headers().get(TRACE_ID).cloned();
        let span = tracing::info_span!(
            "request",
            trace_id = trace.as_ref().and_then(|t| t.to_str().ok()).unwrap_or(""),
            method = %request.method(),
            from = field::Empty,
            to = field::Empty,
            interaction = field::Empty,
        );
        let mut trail = Trail::default();
        let result = self
            .route(request, peer, &mut trail)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(response) => {
                tracing::info!(status = response.status().as_u16(), elapsed_ms, "forwarded");
                response
            }
            Err(rejection) => {
                let response = self.catalog.render(&rejection, trace.as_ref());
                tracing::info!(status = response.status().as_u16(), error = %rejection, elapsed_ms, "refused");
                response
            }
        }
    }
}
