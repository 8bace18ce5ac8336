//! The admin API, plain HTTP on its own (loopback by default) listener: health, Prometheus
//! metrics, the journal of recent requests, faults, and reloading routes.toml.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | the console (a page built into the binary; see `console`) |
//! | `GET /health` | `{"status": "ok", ...}` |
//! | `GET /metrics` | Prometheus text |
//! | `GET /journal[?trace_id=..&limit=N]`, `DELETE /journal` | recent requests, newest first |
//! | `GET /journal/stream[?ticket=..]`, `POST /journal/stream/ticket` | live entries (SSE) |
//! | `GET /faults`, `POST /faults`, `DELETE /faults`, `DELETE /faults/{id}` | fault rules |
//! | `GET /report`, `DELETE /report` | the coverage report per consumer |
//! | `GET /routes` | the mock SDS as loaded, the catalogues, the last reload |
//! | `POST /reload` | reloads routes.toml |

pub mod console;
pub mod reload;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::admin::reload::{Reloader, Trigger};
use crate::admin::stream::Tickets;
use crate::config::routes::{Backend, Registry};
use crate::control::coverage;
use crate::control::faults::{AddError, Fault, FaultSpec, FieldError, LedgerError};
use crate::control::journal::Filter;
use crate::control::metrics;
use crate::control::store::{self, Store};
use crate::proxy::forwarder::Peer;
use crate::proxy::gateway::Gateway;
use crate::proxy::listener::{Handler, Hangup};
use crate::wire::body::{self, Body};

/// The largest fault a client may post, and how long it may take to arrive.
const MAX_BODY: usize = 64 * 1024;
const BODY_TIME: Duration = Duration::from_secs(10);

/// The endpoints, for the answer to an unknown path.
const ENDPOINTS: &str = "GET /, GET /health, GET /metrics, GET|DELETE /journal, GET /journal/stream, POST /journal/stream/ticket, GET|POST|DELETE /faults, DELETE /faults/{id}, GET|DELETE /report, GET /routes, POST /reload";

/// Serves the admin endpoints over the running gateway.
pub struct Admin {
    gateway: Arc<Gateway>,
    reloader: Arc<Reloader>,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    token: Option<String>,
    /// What lets an `EventSource` open the stream when a token is set.
    tickets: Tickets,
    /// Turns true at shutdown; open streams end then.
    stop: watch::Receiver<bool>,
    /// The store shared with other replicas, for `GET /health` and `GET /metrics`.
    store: Option<Arc<Store>>,
}

impl Admin {
    /// The admin API over the running gateway; `token`, when set, is the bearer every request
    /// must carry; `stop` ends the live streams at shutdown; `store` is the one shared with
    /// other replicas, if any.
    pub fn new(
        gateway: Arc<Gateway>,
        reloader: Arc<Reloader>,
        token: Option<String>,
        stop: watch::Receiver<bool>,
        store: Option<Arc<Store>>,
    ) -> Self {
        Self {
            gateway,
            reloader,
            token,
            tickets: Tickets::default(),
            stop,
            store,
        }
    }

    /// Whether the request may open the live stream without the bearer: it carries a
    /// ticket just issued to a holder of the token.
    fn ticketed(&self, request: &Request<Incoming>) -> bool {
        request.uri().path() == "/journal/stream"
            && url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .any(|(name, value)| name == "ticket" && self.tickets.redeem(&value))
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        self.token
            .as_deref()
            .is_none_or(|token| bearer_matches(headers, token))
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        // A browser says when another site's page sends the request: with the console, a
        // browser is on the admin API's machine, and no other page may add faults through it.
        if cross_site(request.headers()) {
            return json_response(
                StatusCode::FORBIDDEN,
                json!({"error": "the admin API refuses requests that another site's page sends (Sec-Fetch-Site); use the console at / or a tool such as curl"}),
            );
        }
        // The console's files hold no data: a browser must load them to be asked the token.
        if request.method() == Method::GET {
            if let Some(asset) = console::file(request.uri().path()) {
                return asset;
            }
            if request.uri().path() == "/report" && wants_html(request.headers()) {
                return console::page();
            }
        }
        if !self.authorised(request.headers()) && !self.ticketed(&request) {
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "the admin API needs `Authorization: Bearer <admin_token>`"}),
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        match (&method, path.as_str()) {
            (&Method::GET, "/health") => self.health(),
            (&Method::GET, "/metrics") => self.metrics(),
            (&Method::GET, "/journal") => self.journal(request.uri().query().unwrap_or("")).await,
            (&Method::DELETE, "/journal") => {
                self.gateway.journal().clear().await;
                no_content()
            }
            (&Method::GET, "/journal/stream") => match self.journal_off() {
                Some(off) => off,
                None => stream::respond(self.gateway.journal(), self.stop.clone()),
            },
            (&Method::POST, "/journal/stream/ticket") => json_response(
                StatusCode::CREATED,
                json!({"ticket": self.tickets.issue(), "expires_in_s": stream::TICKET_LIFETIME.as_secs()}),
            ),
            (&Method::GET, "/report") => {
                let routes = self.gateway.routes();
                let snapshot = self.gateway.coverage().snapshot().await;
                json_response(
                    StatusCode::OK,
                    coverage::report(&snapshot, self.gateway.catalog(), &routes.registry),
                )
            }
            (&Method::DELETE, "/report") => {
                self.gateway.coverage().reset().await;
                no_content()
            }
            (&Method::GET, "/routes") => self.routes(),
            (&Method::GET, "/faults") => {
                let faults = self.gateway.faults().list().await;
                let listed: Vec<&Fault> = faults.iter().map(|f| &**f).collect();
                json_response(
                    StatusCode::OK,
                    serde_json::to_value(listed).unwrap_or_default(),
                )
            }
            (&Method::POST, "/faults") => self.add_fault(request).await,
            (&Method::DELETE, "/faults") => match self.gateway.faults().clear().await {
                Ok(()) => no_content(),
                Err(e) => store_down(&e),
            },
            (&Method::DELETE, p) if p.starts_with("/faults/") => {
                let id = &p["/faults/".len()..];
                match self.gateway.faults().remove(id).await {
                    Ok(true) => no_content(),
                    Ok(false) => json_response(
                        StatusCode::NOT_FOUND,
                        json!({"error": format!("no fault `{id}`; GET /faults lists them")}),
                    ),
                    Err(e) => store_down(&e),
                }
            }
            (&Method::POST, "/reload") => match self.reloader.reload(Trigger::Admin).await {
                Ok(reloaded) => json_response(
                    StatusCode::OK,
                    json!({"status": "reloaded", "reloaded": reloaded}),
                ),
                Err(e) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({
                        "error": format!("{} problem(s); the running routes stay", e.problems.len()),
                        "problems": reload::problems(&e),
                    }),
                ),
            },
            _ => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no admin endpoint {method} {path}; try {ENDPOINTS}")}),
            ),
        }
    }

    fn health(&self) -> Response<Body> {
        let routes = self.gateway.routes();
        let registry = &routes.registry;
        let mut health = json!({
            "status": "ok",
            "routes": registry.file,
            "consumers": registry.consumers().count(),
            "providers": registry.providers().count(),
            "faults": self.gateway.faults().count(),
            "journal_size": self.gateway.journal().capacity(),
            "metrics": self.gateway.metrics().enabled(),
        });
        // Still 200 when the store is down: the replica serves (each on its own), and a load
        // balancer that took every replica out when Redis failed would stop all traffic.
        if let Some(store) = &self.store {
            let (state, reason) = match store.state() {
                store::State::Ok => ("ok", None),
                store::State::Connecting => ("connecting", None),
                store::State::Degraded(reason) => ("degraded", Some(reason)),
            };
            if state != "ok" {
                health["status"] = json!("degraded");
            }
            health["replica"] = json!(&**store.replica());
            health["store"] =
                json!({"url": store.url().to_string(), "state": state, "reason": reason});
        }
        json_response(StatusCode::OK, health)
    }

    fn metrics(&self) -> Response<Body> {
        let metrics = self.gateway.metrics();
        if !metrics.enabled() {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"error": "metrics are off; start with --metrics true"}),
            );
        }
        let mut text = metrics.render();
        if let Some(store) = &self.store {
            store.render(&mut text);
        }
        let mut response = Response::new(body::full(text));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    }

    /// The 404 of the journal's endpoints when it is off.
    fn journal_off(&self) -> Option<Response<Body>> {
        (!self.gateway.journal().enabled()).then(|| {
            json_response(
                StatusCode::NOT_FOUND,
                json!({"error": "the journal is off; start with --journal-size N (N > 0)"}),
            )
        })
    }

    /// The mock SDS as loaded, the catalogues the console offers, and the last reload.
    fn routes(&self) -> Response<Body> {
        let routes = self.gateway.routes();
        let registry = &routes.registry;
        let catalog = self.gateway.catalog();
        json_response(
            StatusCode::OK,
            json!({
                "routes": registry.file,
                "consumers": consumers(registry),
                "providers": providers(registry),
                "interactions": registry.interactions.iter().map(|i| json!({
                    "id": i.id, "name": i.name, "capability": i.capability.name(),
                })).collect::<Vec<_>>(),
                "errors": catalog.entries().iter().map(|e| json!({
                    "id": e.id, "status": e.status.as_u16(), "summary": e.summary,
                    "source": e.source.as_str(),
                })).collect::<Vec<_>>(),
                "journal_details": self.gateway.journal().details(),
                "last_reload": self.reloader.last(),
            }),
        )
    }

    async fn journal(&self, query: &str) -> Response<Body> {
        if let Some(off) = self.journal_off() {
            return off;
        }
        let journal = self.gateway.journal();
        let mut filter = Filter::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "trace_id" => filter.trace_id = Some(value.into_owned()),
                "limit" => match value.parse() {
                    Ok(n) => filter.limit = Some(n),
                    Err(_) => {
                        return json_response(
                            StatusCode::BAD_REQUEST,
                            json!({"error": format!("limit must be a number, got `{value}`"), "field": "limit"}),
                        )
                    }
                },
                other => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("unknown parameter `{other}`; the journal takes trace_id and limit"), "field": other}),
                    )
                }
            }
        }
        json_bytes(StatusCode::OK, journal.recent_json(&filter).await)
    }

    async fn add_fault(&self, request: Request<Incoming>) -> Response<Body> {
        let read = Limited::new(request.into_body(), MAX_BODY).collect();
        let bytes = match tokio::time::timeout(BODY_TIME, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("cannot read the body (at most {MAX_BODY} bytes): {e}")}),
                )
            }
            Err(_) => {
                return json_response(
                    StatusCode::REQUEST_TIMEOUT,
                    json!({"error": format!("the body did not arrive within {} s", BODY_TIME.as_secs())}),
                )
            }
        };
        let routes = self.gateway.routes();
        let registry = &routes.registry;
        let rule = FaultSpec::from_json(&bytes)
            .map_err(|e| vec![e])
            .and_then(|spec| spec.validate(&registry.interactions, self.gateway.catalog()));
        let rule = match rule {
            Ok(rule) => rule,
            Err(problems) => return json_response(StatusCode::BAD_REQUEST, refusal(&problems)),
        };
        match self.gateway.faults().add(rule).await {
            Ok(id) => {
                tracing::info!(fault = %id, "fault added");
                json_response(StatusCode::CREATED, json!({ "id": id }))
            }
            Err(AddError::Full(full)) => json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": full.to_string(), "setting": "max_faults", "max_faults": full.max}),
            ),
            Err(AddError::Ledger(e)) => store_down(&e),
        }
    }
}

/// The 503 of a fault change the shared store did not take.
fn store_down(e: &LedgerError) -> Response<Body> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": format!("the shared store did not answer ({e}); the faults are unchanged; try again once GET /health says the store is ok")}),
    )
}

/// Whether `Authorization: Bearer` carries `token`, compared in constant time so that the
/// answer's timing does not leak the token.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Whether a browser says another site's page sent the request (`Sec-Fetch-Site` other
/// than `same-origin` or `none`; tools such as curl send no such header).
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v != "same-origin" && v != "none")
}

/// Whether the client asked for a page rather than JSON (a browser navigating).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Interaction ids of a set, sorted, for the SDS view.
fn ids(registry: &Registry, set: &crate::config::interactions::InteractionSet) -> Vec<String> {
    let mut ids: Vec<String> = set
        .iter()
        .map(|k| registry.interactions.by_key(*k).id.clone())
        .collect();
    ids.sort_unstable();
    ids
}

/// The consumers of routes.toml, by ASID.
fn consumers(registry: &Registry) -> Vec<Value> {
    let mut consumers: Vec<_> = registry.consumers().collect();
    consumers.sort_by(|a, b| a.asid.as_str().cmp(b.asid.as_str()));
    consumers
        .into_iter()
        .map(|c| {
            let may_send_to = c.may_send_to.as_ref().map(|set| {
                let mut asids: Vec<&str> = set.iter().map(|a| a.as_str()).collect();
                asids.sort_unstable();
                asids
            });
            json!({
                "name": c.name, "asid": c.asid.as_str(), "ods_code": c.ods_code.as_str(),
                "interactions": ids(registry, &c.interactions), "may_send_to": may_send_to,
            })
        })
        .collect()
}

/// The providers of routes.toml with their endpoints and backends, by ASID.
fn providers(registry: &Registry) -> Vec<Value> {
    let mut providers: Vec<_> = registry.providers().collect();
    providers.sort_by(|a, b| a.asid.as_str().cmp(b.asid.as_str()));
    providers
        .into_iter()
        .map(|p| {
            let endpoints: Vec<Value> = p
                .endpoints
                .iter()
                .map(|e| {
                    let backend = match &e.backend {
                        Backend::Demo => "builtin:demo".to_owned(),
                        Backend::Http(http) => http.url(),
                    };
                    json!({
                        "service_root": e.service_root.as_str(), "cpa_id": e.cpa_id.as_str(),
                        "interactions": ids(registry, &e.interactions), "backend": backend,
                        "jwt_mode": e.jwt.mode.map(|m| format!("{m:?}").to_lowercase()),
                    })
                })
                .collect();
            json!({
                "name": p.name, "asid": p.asid.as_str(), "ods_code": p.ods_code.as_str(),
                "party_key": p.party_key, "endpoints": endpoints,
            })
        })
        .collect()
}

/// The 400 body for a refused fault: the first problem, its field, and all of them.
fn refusal(problems: &[FieldError]) -> Value {
    let first = problems.first();
    json!({
        "error": first.map(ToString::to_string).unwrap_or_default(),
        "field": first.map(|p| p.field.as_str()),
        "problems": problems,
    })
}

impl Handler for Admin {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        _peer: Peer,
    ) -> Result<Response<Body>, Hangup> {
        Ok(self.route(request).await)
    }
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn json_response(status: StatusCode, value: Value) -> Response<Body> {
    json_bytes(status, value.to_string().into_bytes())
}

fn json_bytes(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(body::full(json));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        assert!(bearer_matches(&with(Some("Bearer s3cret")), "s3cret"));
        for wrong in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Basic s3cret"),
            Some("s3cret"),
        ] {
            assert!(!bearer_matches(&with(wrong), "s3cret"), "{wrong:?}");
        }
    }
}
