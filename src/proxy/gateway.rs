//! The life of one request through the SSP, as a fixed sequence of phases over one
//! [`Context`]: the Spine checks in the order of DESIGN.md section 4, the faults, the
//! provider-side checks, the provider or backend, then the answer and its recording. Reading
//! `Gateway::phases` is reading the flow; each phase returns `Result<T, Rejection>` and is
//! recorded on the context in one place, [`Context::check`].

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::{field, Instrument};

use crate::config::elements::Elements;
use crate::config::errors::ErrorCatalog;
use crate::config::interactions::Interaction;
use crate::config::jwt::Policy;
use crate::config::problems::ConfigError;
use crate::config::rejection::Rejection;
use crate::config::routes::{Backend, Endpoint, Provider, Registry};
use crate::control::coverage::{self, Coverage, Hit, LocalCoverage};
use crate::control::faults::{Effect, Faults, Stage, Subject};
use crate::control::journal::{Details, Entry, Head, Journal, RuleVerdict, Token};
use crate::control::metrics::{Connections, Metrics};
use crate::demo::{DemoCall, DemoProvider};
use crate::provider::{self, Checked, ProviderRequest, Warnings};
use crate::proxy::context::Context;
use crate::proxy::directory;
use crate::proxy::forwarder::{self, Clients, Peer, Pool, Timeouts};
use crate::proxy::listener::{Handler, Hangup};
use crate::spine::throttle::{InMemory, Limiter};
use crate::spine::{self, headers::SspHeaders, target::TargetUrl};
use crate::wire::body::{Body, RequestBody};
use crate::wire::echo;

/// The routes a request runs against: the mock SDS as loaded, and the pooled backend clients
/// built for it. Swapped whole on reload.
pub struct Routes {
    /// routes.toml, validated.
    pub registry: Registry,
    /// One client per backend identity the registry names.
    pub pool: Pool,
}

/// The SSP: the live registry, the error catalogue and the backends, with the faults,
/// journal and metrics that make it a test tool.
pub struct Gateway {
    routes: ArcSwap<Routes>,
    clients: Clients,
    catalog: ErrorCatalog,
    demo: DemoProvider,
    backend_timeouts: Timeouts,
    provider_checks: Policy,
    /// The STU3 element tables check 10 reads the JWT's resource claims against.
    elements: &'static Elements,
    faults: Faults,
    spine_latency: Duration,
    limiter: Arc<dyn Limiter>,
    journal: Journal,
    metrics: Metrics,
    coverage: Box<dyn Coverage>,
}

/// The trail's name for a fault that fired.
const FAULT_PHASE: &str = "fault";

/// Why a request leaves the straight line of `route` early.
enum Stop {
    /// A check (or a fault) refused it with a catalogue error.
    Reject(Rejection),
    /// A fault answered it with a given response.
    Answer(Response<Body>),
    /// A fault asked for the connection to be closed without a response.
    Hangup,
}

impl From<Rejection> for Stop {
    fn from(rejection: Rejection) -> Self {
        Stop::Reject(rejection)
    }
}

impl Gateway {
    /// A gateway over `registry`, its backends reached through `clients`.
    pub fn new(
        registry: Registry,
        clients: Clients,
        catalog: ErrorCatalog,
        demo: DemoProvider,
        backend_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let faults = Faults::new();
        faults.set_declared(&registry.faults);
        // Recording is off until `with_recording` says how much of it to do.
        let metrics = Metrics::new(false, registry.interactions.clone(), &catalog);
        let pool = clients.pool(&registry)?;
        let limiter: Arc<dyn Limiter> = Arc::new(InMemory::default());
        limiter.configure(&registry);
        Ok(Self {
            routes: ArcSwap::from_pointee(Routes { registry, pool }),
            clients,
            catalog,
            demo,
            backend_timeouts: Timeouts {
                answer: backend_timeout,
                // Until `with_backend_body_timeout` says otherwise.
                body: backend_timeout,
            },
            provider_checks: Policy::default(),
            elements: Elements::embedded()?,
            faults,
            spine_latency: Duration::ZERO,
            limiter,
            journal: Journal::new(0, false),
            metrics,
            coverage: Box::new(LocalCoverage::new()),
        })
    }

    /// Sets the journal's size (0 turns it off), whether its entries keep their details
    /// (`journal_details`) and whether metrics are counted.
    pub fn with_recording(mut self, journal_size: usize, details: bool, metrics: bool) -> Self {
        self.journal = Journal::new(journal_size, details);
        self.metrics = Metrics::new(
            metrics,
            self.routes.load().registry.interactions.clone(),
            &self.catalog,
        );
        self
    }

    /// Sets the longest a backend's whole body may take (issue 11).
    pub fn with_backend_body_timeout(mut self, timeout: Duration) -> Self {
        self.backend_timeouts.body = timeout;
        self
    }

    /// Sets how many faults may be installed at once (issue 11).
    pub fn with_max_faults(self, max: usize) -> Self {
        self.faults.set_max(max);
        self
    }

    /// Sets how check 10 runs (`--jwt-mode`, clock skew); the default enforces it.
    pub fn with_provider_checks(mut self, policy: Policy) -> Self {
        self.provider_checks = policy;
        self
    }

    /// Adds `latency` before each request reaches the provider, as Spine's transit time (the SSP
    /// guide: about 15 ms); zero, the default, adds nothing.
    pub fn with_spine_latency(mut self, latency: Duration) -> Self {
        self.spine_latency = latency;
        self
    }

    /// Keeps the rate-limit counts in `limiter` instead of this process's memory (e.g. a store
    /// shared by replicas), configured with the installed routes at once.
    pub fn with_limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        limiter.configure(&self.routes.load().registry);
        self.limiter = limiter;
        self
    }

    /// Keeps the coverage report's counts in `coverage` instead of this process's memory
    /// (e.g. a store shared by replicas).
    pub fn with_coverage(mut self, coverage: Box<dyn Coverage>) -> Self {
        self.coverage = coverage;
        self
    }

    /// The routes new requests use.
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.load_full()
    }

    /// Installs new routes, with clients built for their backends: requests in flight finish
    /// on the ones they started with. The faults the new routes declare replace the old ones'.
    pub fn install(&self, registry: Registry) -> Result<(), ConfigError> {
        let pool = self.clients.pool(&registry)?;
        self.faults.set_declared(&registry.faults);
        self.limiter.configure(&registry);
        self.routes.store(Arc::new(Routes { registry, pool }));
        Ok(())
    }

    /// The error catalogue every refusal is rendered from.
    pub fn catalog(&self) -> &ErrorCatalog {
        &self.catalog
    }

    /// The installed fault rules.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The recent requests.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The Prometheus counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The coverage report's counts.
    pub fn coverage(&self) -> &dyn Coverage {
        &*self.coverage
    }

    /// A request's phases, in order; the first refusal (or a fault's answer) ends it.
    async fn phases(
        &self,
        ctx: &mut Context<'_>,
        mut request: Request<RequestBody>,
    ) -> Result<Response<Body>, Stop> {
        let routes = ctx.routes;
        let registry = &routes.registry;
        if directory::serves(request.uri()) {
            return Ok(self.directory(ctx, &request));
        }
        // A browser's CORS preflight carries no SSP headers: answered before the checks.
        if let Some(answer) = spine::browser::preflight(request.method(), request.uri(), registry) {
            ctx.trail.note("preflight", true, "CORS preflight answered");
            return Ok(answer);
        }
        // Checks 2-4: what the request is.
        ctx.check("method", spine::method::check(request.method()))?;
        let target = ctx.check("target", spine::target::parse(request.uri()))?;
        let declared = ctx.interaction.map(|i| i.key);
        let checked = spine::headers::parse(ctx.head.ssp(), declared);
        let ssp = ctx.check("headers", checked)?;
        let interaction = registry.interactions.by_key(ssp.interaction);
        identified(&ssp, interaction);
        // Faults that answer as the SSP's own checks would.
        self.fault(Stage::Spine, ctx, (&ssp, &target), &mut request)
            .await?;
        // Checks 5-9: who may send what to whom (over which certificate, how often), where, in
        // which format.
        let consumer = ctx.check("sender", spine::sender::check(registry, &ssp))?;
        let bound = spine::certificate::check(consumer, ctx.peer.certificate.as_deref());
        ctx.check("certificate", bound)?;
        let throttled = spine::throttle::check(&*self.limiter, registry, consumer).await;
        ctx.check("throttle", throttled)?;
        let (provider, endpoint) = ctx.check("receiver", spine::receiver::check(registry, &ssp))?;
        ctx.check("fot", spine::fot::check(consumer, &ssp))?;
        let rest = ctx.check("endpoint", spine::endpoint::check(&target, endpoint))?;
        let route = Route {
            interaction,
            provider,
            endpoint,
            target: &target,
            rest,
        };
        let format = spine::media_type::check(request.headers(), request.uri().query());
        ctx.format = ctx.check("media_type", format)?;
        // Check 10: what the provider would refuse.
        ctx.warnings = self.provider_checks(ctx, &request, &route)?;
        // Faults that answer where the provider would.
        self.fault(Stage::Backend, ctx, (&ssp, &target), &mut request)
            .await?;
        // Spine's own transit time, when one is set.
        if !self.spine_latency.is_zero() {
            tokio::time::sleep(self.spine_latency).await;
        }
        // Check 11: the provider answers.
        self.provider(ctx, request, &route).await
    }

    /// The mock SDS's FHIR API, served beside the SSP.
    fn directory<B>(&self, ctx: &mut Context<'_>, request: &Request<B>) -> Response<Body> {
        let response = directory::answer(&ctx.routes.registry, &self.catalog, request, &ctx.peer);
        let status = response.status();
        ctx.trail.note(
            "directory",
            status.is_success(),
            format!("SDS lookup answered {status}"),
        );
        response
    }

    /// Check 10, as the endpoint's JWT mode says.
    fn provider_checks(
        &self,
        ctx: &mut Context<'_>,
        request: &Request<RequestBody>,
        route: &Route<'_>,
    ) -> Result<Warnings, Rejection> {
        let Checked {
            verdict,
            findings,
            token,
        } = provider::run(
            &self.provider_checks,
            &ProviderRequest {
                headers: request.headers(),
                method: request.method(),
                rest: route.rest,
                interaction: route.interaction,
                interactions: &ctx.routes.registry.interactions,
                endpoint: route.endpoint,
                elements: self.elements,
                keep_token: ctx.details.is_some(),
            },
        );
        ctx.broken = findings.violations.iter().map(|f| f.rule.id()).collect();
        if let Some(details) = &mut ctx.details {
            let rules: Vec<RuleVerdict> = (findings.violations.iter().map(|f| (f, true)))
                .chain(findings.notices.iter().map(|f| (f, false)))
                .map(|(f, enforced)| RuleVerdict {
                    rule: f.rule.id(),
                    claim: f.claim().map(str::to_owned),
                    enforced,
                    message: f.message.clone(),
                })
                .collect();
            if token.is_some() || !rules.is_empty() {
                let token = token.unwrap_or_default();
                details.jwt = Some(Token {
                    header: token.header,
                    claims: token.payload,
                    rules,
                });
            }
        }
        let verdict = ctx.check_noted("provider", verdict, |v| v.note.clone())?;
        if !verdict.warnings.is_empty() {
            tracing::warn!(
                broken = verdict.warnings.len(),
                "provider checks failed; forwarding anyway (jwt mode report)"
            );
        }
        Ok(verdict.warnings)
    }

    /// Check 11: the built-in demo provider, or the backend over the pooled clients.
    async fn provider(
        &self,
        ctx: &mut Context<'_>,
        request: Request<RequestBody>,
        route: &Route<'_>,
    ) -> Result<Response<Body>, Stop> {
        let Route {
            interaction,
            provider,
            endpoint,
            target,
            rest,
        } = *route;
        match &endpoint.backend {
            Backend::Demo => Ok(self
                .demo
                .handle(DemoCall {
                    provider,
                    endpoint,
                    interaction,
                    rest,
                    format: ctx.format,
                    request,
                })
                .await?),
            Backend::Http(backend) => {
                let client = ctx.routes.pool.client(backend, ctx.peer.worker);
                let forwarded = forwarder::forward(
                    client,
                    backend,
                    request,
                    rest,
                    &ctx.peer,
                    self.backend_timeouts,
                )
                .await
                // Issue 11: a consumer's own broken body is its 400, not the backend's
                // failure; the target (it may name a patient) stays out of the log.
                .map_err(|e| {
                    if e.is_backends() {
                        self.metrics.backend_error();
                        tracing::warn!(error = %e, "backend failed");
                    }
                    e.rejection(target.as_str())
                });
                Ok(ctx.check("forward", forwarded)?)
            }
        }
    }

    /// Lets the first fault of `stage` that matches act on the request: a delay waits and
    /// lets it go on; any other effect ends it. Recorded on the trail as the `fault` phase.
    async fn fault(
        &self,
        stage: Stage,
        ctx: &mut Context<'_>,
        (ssp, target): (&SspHeaders, &TargetUrl),
        request: &mut Request<RequestBody>,
    ) -> Result<(), Stop> {
        if !self.faults.armed(stage) {
            return Ok(());
        }
        let at = Subject::new(&ctx.routes.registry, ssp, target);
        let Some(fault) = self.faults.take(stage, &at, request).await else {
            return Ok(());
        };
        self.metrics.fault_fired();
        let effect = fault.effect(&at);
        let described = fault.describe();
        ctx.trail
            .note(FAULT_PHASE, matches!(effect, Effect::Delay(_)), &described);
        match effect {
            Effect::Delay(pause) => {
                tracing::info!(
                    fault = %described,
                    "delayed by a fault injected by ssp-sim (not Spine's own latency)"
                );
                tokio::time::sleep(pause).await;
                Ok(())
            }
            Effect::Reject(rejection) => Err(Stop::Reject(rejection)),
            Effect::Answer(response) => Err(Stop::Answer(response)),
            Effect::Hangup => Err(Stop::Hangup),
        }
    }

    /// The answer to a request that ended in `result`, with the report-mode warnings, logged.
    fn answer(
        &self,
        ctx: &mut Context<'_>,
        result: Result<Response<Body>, Stop>,
    ) -> (Result<Response<Body>, Hangup>, Option<Cow<'static, str>>) {
        // To the microsecond: the log shows `elapsed_ms=3.979`, not every digit of the float.
        let elapsed_ms = (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1000.0;
        let (mut answer, error) = match result {
            Ok(response) => {
                tracing::info!(status = response.status().as_u16(), elapsed_ms, "forwarded");
                (Ok(response), None)
            }
            Err(Stop::Answer(response)) => {
                tracing::info!(
                    status = response.status().as_u16(),
                    fault = ctx.trail.failed().and_then(|c| c.detail.as_deref()).unwrap_or(""),
                    elapsed_ms,
                    "answered by a fault injected by ssp-sim, not by the SSP's checks or the provider"
                );
                (Ok(response), None)
            }
            Err(Stop::Reject(rejection)) => {
                let response = self
                    .catalog
                    .render(&rejection, ctx.head.trace_id(), ctx.format);
                // Issue 11: the diagnostics may quote a claim or a body; the log names the
                // catalogue error and the check's redacted detail (as the journal does).
                let failed = ctx.trail.failed();
                let detail = failed.and_then(|c| c.detail.as_deref()).unwrap_or("");
                let status = response.status().as_u16();
                // A fault's refusal looks like a check's on the wire; the log says which it was.
                if failed.is_some_and(|c| c.name == FAULT_PHASE) {
                    tracing::info!(
                        status,
                        error = %rejection.error,
                        fault = detail,
                        elapsed_ms,
                        "refused by a fault injected by ssp-sim, not by a real check"
                    );
                } else {
                    tracing::info!(
                        status,
                        error = %rejection.error,
                        check = failed.map_or("", |c| c.name),
                        detail,
                        elapsed_ms,
                        "refused"
                    );
                }
                if let Some(details) = &mut ctx.details {
                    details.outcome = self.outcome(&rejection);
                }
                (Ok(response), Some(rejection.error))
            }
            Err(Stop::Hangup) => {
                tracing::info!(
                    fault = ctx
                        .trail
                        .failed()
                        .and_then(|c| c.detail.as_deref())
                        .unwrap_or(""),
                    elapsed_ms,
                    "connection dropped by a fault injected by ssp-sim"
                );
                (Err(Hangup), None)
            }
        };
        if let Ok(response) = &mut answer {
            ctx.warnings.apply(response.headers_mut());
            spine::browser::finish(ctx.origin.take(), ctx.peer.tls, response.headers_mut());
            if let Some(details) = &mut ctx.details {
                details.response_headers = Details::headers(response.headers());
            }
        }
        (answer, error)
    }

    /// The OperationOutcome a rejection was answered with, NHS numbers masked, for the
    /// journal's details.
    fn outcome(&self, rejection: &Rejection) -> Option<serde_json::Value> {
        let json = self.catalog.get(&rejection.error)?.render_json(rejection);
        serde_json::from_str(&echo::mask_nhs_numbers(&json)).ok()
    }

    /// Counts the request and keeps it in the journal.
    fn record(
        &self,
        ctx: Context<'_>,
        answer: &Result<Response<Body>, Hangup>,
        error: Option<Cow<'static, str>>,
    ) {
        let status = answer.as_ref().ok().map(Response::status);
        let elapsed = ctx.started.elapsed();
        self.coverage.count(&Hit {
            consumer: coverage::consumer(&ctx.routes.registry, ctx.head.from()),
            interaction: ctx.interaction.map(|i| i.id.as_str()),
            status: status.map(|s| s.as_u16()),
            error: error.as_deref(),
            rules: &ctx.broken,
        });
        self.metrics.record(
            ctx.interaction.map(|i| i.key),
            status,
            error.as_deref(),
            elapsed,
        );
        self.journal.record(Entry {
            received: ctx.received,
            head: ctx.head,
            trail: ctx.trail,
            status,
            error,
            duration: elapsed,
            details: ctx.details,
        });
    }
}

/// Names the parties on the request's span, once check 4 has read them.
fn identified(ssp: &SspHeaders, interaction: &Interaction) {
    let span = tracing::Span::current();
    span.record("from", ssp.from.as_str());
    span.record("to", ssp.to.as_str());
    span.record("interaction", interaction.id.as_str());
}

/// Where checks 4-8 found a request goes: the interaction, the receiver's endpoint for it,
/// and the FHIR request below that endpoint's service root.
#[derive(Clone, Copy)]
struct Route<'a> {
    interaction: &'a Interaction,
    provider: &'a Provider,
    endpoint: &'a Endpoint,
    target: &'a TargetUrl,
    rest: &'a str,
}

impl Handler for Gateway {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Peer,
    ) -> Result<Response<Body>, Hangup> {
        let routes = self.routes.load_full();
        let head = Head::of(&request);
        // Issue 11: the trace id is consumer text; the log gets it bounded and clean.
        let trace_id = head.trace_id().and_then(|t| t.to_str().ok()).unwrap_or("");
        let span = tracing::info_span!(
            "request",
            trace_id = echo::redact(trace_id, echo::SHORT),
            method = %request.method(),
            from = field::Empty,
            to = field::Empty,
            interaction = field::Empty,
        );
        let declared = spine::headers::declared(head.ssp(), &routes.registry.interactions);
        let mut ctx = Context::new(&routes, peer, head, declared);
        ctx.origin = spine::browser::origin(request.headers());
        if self.journal.details() {
            ctx.details = Some(Details {
                request_headers: Details::headers(request.headers()),
                ..Details::default()
            });
        }
        let result = self
            .phases(&mut ctx, request.map(BodyExt::boxed_unsync))
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let (answer, error) = self.answer(&mut ctx, result);
        self.record(ctx, &answer, error);
        answer
    }

    fn connections(&self) -> Option<&Connections> {
        Some(self.metrics.connections())
    }
}
