//! The life of one request through the SSP, as a straight line: the checks in the order of
//! DESIGN.md section 4, then the backend, then the answer. Reading `route` is reading the flow.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::{field, Instrument};

use crate::config::errors::ErrorCatalog;
use crate::config::jwt::Policy;
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Backend, Registry};
use crate::control::faults::{Effect, Faults, Stage, Subject};
use crate::control::journal::{Entry, Head, Journal};
use crate::control::metrics::{Gauge, Metrics};
use crate::demo::{DemoCall, DemoProvider};
use crate::provider::{ProviderRequest, Warnings};
use crate::proxy::directory;
use crate::proxy::forwarder::{self, Peer};
use crate::proxy::listener::{Handler, Hangup};
use crate::proxy::trail::Trail;
use crate::spine::headers::SspHeaders;
use crate::spine::target::TargetUrl;
use crate::spine::{self, media_type::Format};
use crate::wire::body::{Body, RequestBody};

/// The SSP: the live registry, the error catalogue and the backends, with the faults,
/// journal and metrics that make it a test tool.
pub struct Gateway {
    registry: ArcSwap<Registry>,
    catalog: ErrorCatalog,
    demo: DemoProvider,
    backend_timeout: Duration,
    provider_checks: Policy,
    faults: Faults,
    journal: Journal,
    metrics: Metrics,
}

/// Why a request leaves the straight line of `route` early.
enum Stop {
    /// A check (or a fault) refused it with a catalogue error.
    Reject(Rejection),
    /// A fault answered it with a given response.
    Answer(Response<Body>),
    /// A fault asked for the connection to be closed without a response.
    Hangup,
}

/// What `route` learns that shapes any answer, a refusal too: the format check 9 negotiated
/// (provider errors are rendered in it) and check 10's warnings in report mode.
struct Shape {
    format: Format,
    warnings: Warnings,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            format: Format::Json,
            warnings: Warnings::default(),
        }
    }
}

impl From<Rejection> for Stop {
    fn from(rejection: Rejection) -> Self {
        Stop::Reject(rejection)
    }
}

impl Gateway {
    pub fn new(
        registry: Registry,
        catalog: ErrorCatalog,
        demo: DemoProvider,
        backend_timeout: Duration,
    ) -> Self {
        let faults = Faults::new();
        faults.set_declared(&registry.faults);
        // Recording is off until `with_recording` says how much of it to do.
        let metrics = Metrics::new(false, registry.interactions.clone(), &catalog);
        Self {
            registry: ArcSwap::from_pointee(registry),
            catalog,
            demo,
            backend_timeout,
            provider_checks: Policy::default(),
            faults,
            journal: Journal::new(0),
            metrics,
        }
    }

    /// Sets the journal's size (0 turns it off) and whether metrics are counted.
    pub fn with_recording(mut self, journal_size: usize, metrics: bool) -> Self {
        self.journal = Journal::new(journal_size);
        self.metrics = Metrics::new(
            metrics,
            self.registry.load().interactions.clone(),
            &self.catalog,
        );
        self
    }

    /// Sets how check 10 runs (`--jwt-mode`, clock skew); the default enforces it.
    pub fn with_provider_checks(mut self, policy: Policy) -> Self {
        self.provider_checks = policy;
        self
    }

    /// The registry new requests use.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.load_full()
    }

    /// Replaces the registry: requests in flight finish on the one they started with. The
    /// faults the new routes declare replace the old ones'.
    pub fn swap_registry(&self, registry: Registry) {
        self.faults.set_declared(&registry.faults);
        self.registry.store(Arc::new(registry));
    }

    pub fn catalog(&self) -> &ErrorCatalog {
        &self.catalog
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Lets the first fault of `stage` that matches act on the request: a delay waits and
    /// lets it go on; any other effect ends it. Recorded on the trail as the `fault` step.
    async fn inject(
        &self,
        stage: Stage,
        (registry, ssp, target): (&Registry, &SspHeaders, &TargetUrl),
        request: &mut Request<RequestBody>,
        trail: &mut Trail,
    ) -> Result<(), Stop> {
        if !self.faults.armed(stage) {
            return Ok(());
        }
        let at = Subject::new(registry, ssp, target);
        let Some(fault) = self.faults.take(stage, &at, request).await else {
            return Ok(());
        };
        self.metrics.fault_fired();
        let effect = fault.effect(&at);
        trail.note(
            "fault",
            matches!(effect, Effect::Delay(_)),
            fault.describe(),
        );
        match effect {
            Effect::Delay(pause) => {
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Effect::Reject(rejection) => Err(Stop::Reject(rejection)),
            Effect::Answer(response) => Err(Stop::Answer(response)),
            Effect::Hangup => Err(Stop::Hangup),
        }
    }

    /// Runs the checks, the faults and the backend call; a refusal, or a fault's answer, comes
    /// back as the `Stop` that ends the request.
    /// Each check's result is written to `trail`, and what shapes any answer to `shape`.
    async fn route(
        &self,
        mut request: Request<RequestBody>,
        peer: Peer,
        trail: &mut Trail,
        shape: &mut Shape,
    ) -> Result<Response<Body>, Stop> {
        let span = tracing::Span::current();
        trail.check("method", spine::method::check(request.method()))?;
        let target = trail.check("target", spine::target::parse(request.uri()))?;
        let registry = self.registry.load_full();
        let ssp = trail.check(
            "headers",
            spine::headers::parse(request.headers(), &registry.interactions),
        )?;
        let interaction = registry.interactions.by_key(ssp.interaction);
        span.record("from", ssp.from.as_str());
        span.record("to", ssp.to.as_str());
        span.record("interaction", interaction.id.as_str());
        let identified = (&*registry, &ssp, &target);
        self.inject(Stage::Spine, identified, &mut request, trail)
            .await?;
        let consumer = trail.check("sender", spine::sender::check(&registry, &ssp))?;
        let (provider, endpoint) =
            trail.check("receiver", spine::receiver::check(&registry, &ssp))?;
        trail.check("fot", spine::fot::check(consumer, &ssp))?;
        let rest = trail.check("endpoint", spine::endpoint::check(&target, endpoint))?;
        shape.format = trail.check(
            "media_type",
            spine::media_type::check(request.headers(), request.uri().query()),
        )?;
        let format = shape.format;
        shape.warnings = crate::provider::run(
            &self.provider_checks,
            &ProviderRequest {
                headers: request.headers(),
                method: request.method(),
                rest,
                interaction,
                interactions: &registry.interactions,
                endpoint,
            },
            trail,
        )?;
        self.inject(Stage::Backend, identified, &mut request, trail)
            .await?;

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
                let forwarded = trail.check(
                    "forward",
                    forwarded.map_err(|e| {
                        self.metrics.backend_error();
                        tracing::warn!(target_url = target.as_str(), error = %e, "backend failed");
                        Rejection::new(ids::ERROR_COMMUNICATING)
                            .with(Placeholder::TargetUrl, target.as_str())
                            .with(Placeholder::Diagnostics, e.to_string())
                    }),
                )?;
                Ok(forwarded)
            }
        }
    }
}

impl Handler for Gateway {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Peer,
    ) -> Result<Response<Body>, Hangup> {
        if directory::serves(request.uri()) {
            return Ok(directory::answer(
                &self.registry(),
                &self.catalog,
                &request,
                peer,
            ));
        }
        let received = SystemTime::now();
        let started = Instant::now();
        let head = Head::of(&request);
        let span = tracing::info_span!(
            "request",
            trace_id = head.trace_id().and_then(|t| t.to_str().ok()).unwrap_or(""),
            method = %request.method(),
            from = field::Empty,
            to = field::Empty,
            interaction = field::Empty,
        );
        let mut trail = Trail::default();
        let mut shape = Shape::default();
        let result = self
            .route(
                request.map(BodyExt::boxed_unsync),
                peer,
                &mut trail,
                &mut shape,
            )
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let (mut answer, error) = match result {
            Ok(response) => {
                tracing::info!(status = response.status().as_u16(), elapsed_ms, "forwarded");
                (Ok(response), None)
            }
            Err(Stop::Answer(response)) => {
                tracing::info!(
                    status = response.status().as_u16(),
                    elapsed_ms,
                    "answered by a fault"
                );
                (Ok(response), None)
            }
            Err(Stop::Reject(rejection)) => {
                let response = self
                    .catalog
                    .render(&rejection, head.trace_id(), shape.format);
                tracing::info!(status = response.status().as_u16(), error = %rejection, elapsed_ms, "refused");
                (Ok(response), Some(rejection.error))
            }
            Err(Stop::Hangup) => {
                tracing::info!(elapsed_ms, "connection dropped by a fault");
                (Err(Hangup), None)
            }
        };
        if let Ok(response) = &mut answer {
            shape.warnings.apply(response.headers_mut());
        }
        let status = answer.as_ref().ok().map(Response::status);
        self.metrics
            .record(head.interaction(), status, error.as_deref(), elapsed);
        self.journal.record(Entry {
            received,
            head,
            trail,
            status,
            error,
            duration: elapsed,
        });
        answer
    }

    fn connections(&self) -> Option<&Gauge> {
        Some(self.metrics.open_connections())
    }
}
