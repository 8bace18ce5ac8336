//! What a fault does to the request it fired on, and how that is told in the journal.

use std::time::Duration;

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};

use super::matching::Subject;
use super::rule::Action;
use super::store::Fault;
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::RateLimit;
use crate::spine::method;
use crate::spine::throttle::{self, Scope, Throttled};
use crate::wire::body::{self, Body};
use crate::wire::format::FHIR_JSON_UTF8;

/// What a fault does to the request it fired on.
pub enum Effect {
    /// Wait, then let the request go on.
    Delay(Duration),
    /// Answer with this catalogue error, rendered as the gateway renders every error.
    Reject(Rejection),
    /// Close the connection without a response.
    Hangup,
    /// Answer with this response.
    Answer(Response<Body>),
}

/// A throttling error's limit, as if the request had really gone over it: the sender's (429)
/// or the global (503) `rate_limit` of routes.toml, else one request per second, with the
/// whole window to wait.
fn throttled(error: &str, at: &Subject<'_>) -> Option<Throttled> {
    let (sender, global) = at.rate_limits;
    let (scope, limit) = match error {
        ids::TOO_MANY_REQUESTS => (Scope::Consumer, sender),
        ids::SERVICE_UNAVAILABLE => (Scope::Global, global),
        _ => return None,
    };
    let limit = limit.unwrap_or(RateLimit {
        requests: 1,
        per_seconds: 1,
    });
    Some(Throttled {
        scope,
        limit,
        reset: Duration::from_secs(limit.per_seconds.into()),
    })
}

impl Fault {
    /// What this fault does to the request `at`: an error gets the request's ASIDs, interaction,
    /// target and endpoint as its placeholder values.
    pub fn effect(&self, at: &Subject<'_>) -> Effect {
        match &self.rule.action {
            Action::Delay(pause) => Effect::Delay(*pause),
            Action::Hangup => Effect::Hangup,
            Action::Reject { error, diagnostics } => {
                let mut rejection = Rejection::new(error.clone())
                    .with(Placeholder::TargetUrl, at.target)
                    .with(Placeholder::FromAsid, at.from.as_str())
                    .with(Placeholder::ToAsid, at.to.as_str())
                    .with(Placeholder::Interaction, at.interaction.id.as_str())
                    .with(Placeholder::Diagnostics, diagnostics.as_str());
                if let Some(endpoint) = at.endpoint {
                    rejection = rejection
                        .with(Placeholder::Endpoint, endpoint.service_root.as_str())
                        .with(Placeholder::CpaId, endpoint.cpa_id.as_str());
                }
                if let Some(throttled) = throttled(error, at) {
                    rejection.headers = throttle::refusal(&throttled).headers;
                }
                // A 405 says which methods are allowed (RFC 9110), as check 2's does.
                if error == ids::METHOD_NOT_ALLOWED {
                    rejection =
                        rejection.with_header(ALLOW, HeaderValue::from_static(method::BROKERED));
                }
                Effect::Reject(rejection)
            }
            Action::Answer { status, body } => {
                let mut response = Response::new(body::full(body.clone()));
                *response.status_mut() = *status;
                let headers = response.headers_mut();
                if !body.is_empty() {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON_UTF8));
                }
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                Effect::Answer(response)
            }
        }
    }

    /// One line for the journal and the logs, e.g. `fault-3 answered error-communicating`.
    pub fn describe(&self) -> String {
        let what = match &self.rule.action {
            Action::Delay(pause) => format!("delayed the request {} ms", pause.as_millis()),
            Action::Hangup => "dropped the connection".to_owned(),
            Action::Reject { error, .. } => format!("answered {error}"),
            Action::Answer { status, .. } => format!("answered status {}", status.as_u16()),
        };
        format!("{} {what}", self.id)
    }
}
