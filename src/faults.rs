//! Faults: rules that make a chosen answer happen on demand, so consumers can prove their
//! error handling. A rule matches on what the Spine checks identified (sender and receiver
//! ASID, interaction, the FHIR request, an NHS number) and answers with any catalogue error,
//! a delay (then the request goes on), a dropped connection, or a given status and body; a
//! number of times or until removed.
//!
//! Rules come from `[[fault]]` tables in routes.toml (replaced on every reload) and from the
//! admin API (kept until removed). They are validated once, into `Rule`; the gateway only
//! asks `Faults::take` at two points of a request's life (see `Stage`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::body::{self, Body, RequestBody};
use crate::checks::headers::SspHeaders;
use crate::checks::target::TargetUrl;
use crate::config_error::Problems;
use crate::error_catalog::{ErrorCatalog, Source, FHIR_JSON_UTF8};
use crate::interactions::{Interaction, InteractionSet, Interactions};
use crate::registry::{Asid, Endpoint, Registry};
use crate::rejection::{ids, Placeholder, Rejection};

/// What a real connection refused by a backend puts in `ssp-sim-diagnostics` (hyper's text
/// for a connect error), so an injected `error-communicating` cannot be told apart from it.
pub const CONNECT_FAILURE: &str = "client error (Connect)";

/// The longest delay a rule may ask for.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// How much of a request body is read looking for an NHS number; beyond it the body is
/// forwarded untouched and not searched.
const PEEK_LIMIT: usize = 1 << 20;

/// How large a compiled `path` regex may grow (a guard against pathological patterns posted
/// to the admin API).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The `$gpc.getstructuredrecord` (and migrate) parameter that carries the NHS number.
const NHS_NUMBER_PARAMETER: &str = "patientNHSNumber";

/// A fault as written in routes.toml or posted to `POST /faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(rename = "match", default)]
    pub matcher: MatchSpec,
    pub respond: RespondSpec,
    /// How many requests it answers before it removes itself; absent means until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// What a fault matches; every field given must match, an absent one matches anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_asid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_asid: Option<String>,
    /// An interaction ID or a capability name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction: Option<String>,
    /// A regex searched in the FHIR request below the service root (path and query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Found in the target's path or query, or in a Parameters body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_number: Option<String>,
}

/// How a fault answers: exactly one of `error`, `delay_ms`, `drop` or `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondSpec {
    /// A catalogue error id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The `{diagnostics}` of that error (default: what the real error would say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The JSON body sent with `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// One thing wrong with a fault, naming its field (e.g. `match.path`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Where in a request's life a rule acts. Each answer is given where the real one arises,
/// so a fault behaves like the real thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Right after check 4 has identified the request, ahead of checks 5-9: the errors the
    /// SSP's own checks give. Like a failing check, they answer at once and nothing later runs.
    Spine,
    /// After every check passed, where the SSP would call the provider: delays (then the
    /// request goes on to the backend), dropped connections, given answers, provider errors
    /// and `error-communicating`.
    Backend,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    spec: FaultSpec,
    matcher: Matcher,
    action: Action,
    stage: Stage,
}

#[derive(Debug, Clone)]
struct Matcher {
    from: Option<Asid>,
    to: Option<Asid>,
    interactions: Option<InteractionSet>,
    path: Option<Regex>,
    nhs_number: Option<String>,
}

#[derive(Debug, Clone)]
enum Action {
    Reject { error: String, diagnostics: String },
    Delay(Duration),
    Hangup,
    Answer { status: StatusCode, body: Bytes },
}

impl FaultSpec {
    /// Reads a fault posted as JSON; a shape error names the field it is in.
    pub fn from_json(bytes: &[u8]) -> Result<Self, FieldError> {
        let mut json = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let field = e.path().to_string();
            FieldError {
                field: if field == "." { String::new() } else { field },
                message: e.into_inner().to_string(),
            }
        })
    }

    /// Checks every field against the catalogues; every problem is reported.
    pub fn validate(
        self,
        interactions: &Interactions,
        catalog: &ErrorCatalog,
    ) -> Result<Rule, Vec<FieldError>> {
        let mut problems = Vec::new();
        let matcher = self.matcher.validate(interactions, &mut problems);
        let action = self.respond.validate(catalog, &mut problems);
        if self.times == Some(0) {
            problems.push(FieldError::new(
                "times",
                "must be at least 1; leave it out for a fault that stays until removed",
            ));
        }
        match (matcher, action) {
            (Some(matcher), Some(action)) if problems.is_empty() => {
                let stage = match &action {
                    Action::Reject { error, .. }
                        if error != ids::ERROR_COMMUNICATING
                            && catalog.get(error).is_some_and(|e| e.source == Source::Ssp) =>
                    {
                        Stage::Spine
                    }
                    _ => Stage::Backend,
                };
                Ok(Rule {
                    spec: self,
                    matcher,
                    action,
                    stage,
                })
            }
            _ => Err(problems),
        }
    }
}

impl MatchSpec {
    fn validate(
        &self,
        interactions: &Interactions,
        problems: &mut Vec<FieldError>,
    ) -> Option<Matcher> {
        let before = problems.len();
        let mut asid = |field: &str, text: &Option<String>| {
            text.as_deref().and_then(|t| {
                let asid = Asid::parse(t);
                if asid.is_none() {
                    problems.push(FieldError::new(
                        field,
                        format!("`{t}` is not an ASID (digits only)"),
                    ));
                }
                asid
            })
        };
        let from = asid("match.from_asid", &self.from_asid);
        let to = asid("match.to_asid", &self.to_asid);
        let interaction_set = match self.interaction.as_deref() {
            None => None,
            Some("*") => {
                problems.push(FieldError::new(
                    "match.interaction",
                    "`*` would match everything; leave the field out instead",
                ));
                None
            }
            Some(entry) => {
                let found = interactions.expand(entry);
                if found.is_none() {
                    problems.push(FieldError::new(
                        "match.interaction",
                        format!("`{entry}` is neither a capability (foundations, appointments, structured, documents) nor an interaction ID of the catalogue"),
                    ));
                }
                found
            }
        };
        let path = self.path.as_deref().and_then(|p| {
            RegexBuilder::new(p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    problems.push(FieldError::new(
                        "match.path",
                        format!("not a regular expression: {e}"),
                    ))
                })
                .ok()
        });
        if let Some(n) = &self.nhs_number {
            if n.len() != 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(FieldError::new(
                    "match.nhs_number",
                    format!("`{n}` is not an NHS number (10 digits)"),
                ));
            }
        }
        (problems.len() == before).then(|| Matcher {
            from,
            to,
            interactions: interaction_set,
            path,
            nhs_number: self.nhs_number.clone(),
        })
    }
}

impl RespondSpec {
    fn validate(&self, catalog: &ErrorCatalog, problems: &mut Vec<FieldError>) -> Option<Action> {
        let kinds = [
            self.error.is_some(),
            self.delay_ms.is_some(),
            self.drop.is_some(),
            self.status.is_some(),
        ];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            problems.push(FieldError::new(
                "respond",
                "give exactly one of error (a catalogue id), delay_ms, drop (true) or status (with an optional body)",
            ));
            return None;
        }
        if self.diagnostics.is_some() && self.error.is_none() {
            problems.push(FieldError::new(
                "respond.diagnostics",
                "goes with error only",
            ));
        }
        if self.body.is_some() && self.status.is_none() {
            problems.push(FieldError::new("respond.body", "goes with status only"));
        }
        let action = if let Some(id) = &self.error {
            let Some(entry) = catalog.get(id) else {
                let known: Vec<&str> = catalog.entries().iter().map(|e| e.id.as_str()).collect();
                problems.push(FieldError::new(
                    "respond.error",
                    format!(
                        "`{id}` is not in the error catalogue; known: {}",
                        known.join(", ")
                    ),
                ));
                return None;
            };
            let default = if id == ids::ERROR_COMMUNICATING {
                CONNECT_FAILURE
            } else {
                entry.summary.as_str()
            };
            Action::Reject {
                error: id.clone(),
                diagnostics: self.diagnostics.as_deref().unwrap_or(default).to_owned(),
            }
        } else if let Some(ms) = self.delay_ms {
            let delay = Duration::from_millis(ms);
            if delay > MAX_DELAY {
                problems.push(FieldError::new(
                    "respond.delay_ms",
                    format!("{ms} is longer than {} ms", MAX_DELAY.as_millis()),
                ));
            }
            Action::Delay(delay)
        } else if let Some(drop) = self.drop {
            if !drop {
                problems.push(FieldError::new(
                    "respond.drop",
                    "must be true (leave the fault out to not drop)",
                ));
            }
            Action::Hangup
        } else {
            let code = self.status.unwrap_or_default();
            let Some(status) = StatusCode::from_u16(code)
                .ok()
                .filter(|s| s.as_u16() >= 200)
            else {
                problems.push(FieldError::new(
                    "respond.status",
                    format!("{code} is not an HTTP status from 200 to 599"),
                ));
                return None;
            };
            let body = self
                .body
                .as_ref()
                .map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
            Action::Answer { status, body }
        };
        Some(action)
    }
}

/// Validates the `[[fault]]` tables of routes.toml, reporting problems at their table.
pub fn declared(
    problems: &mut Problems<'_>,
    raw: Vec<Spanned<FaultSpec>>,
    interactions: &Interactions,
    catalog: &ErrorCatalog,
) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let span = spanned.span();
        match spanned.into_inner().validate(interactions, catalog) {
            Ok(rule) => rules.push(rule),
            Err(errors) => {
                for e in errors {
                    problems.at(span.clone(), format!("fault[{i}].{}", e.field), e.message);
                }
            }
        }
    }
    rules
}

/// What the checks have identified about a request, for matching and for an error's values.
#[derive(Debug)]
pub struct Subject<'a> {
    pub from: &'a Asid,
    pub to: &'a Asid,
    pub interaction: &'a Interaction,
    pub target: &'a str,
    /// The registration SDS holds for the receiver and interaction, when there is one.
    pub endpoint: Option<&'a Endpoint>,
    /// The FHIR request below that registration's service root, when the target is under it.
    pub fhir_request: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub fn new(registry: &'a Registry, ssp: &'a SspHeaders, target: &'a TargetUrl) -> Self {
        let endpoint = registry
            .provider(&ssp.to)
            .and_then(|p| p.endpoint_for(ssp.interaction));
        Self {
            from: &ssp.from,
            to: &ssp.to,
            interaction: registry.interactions.by_key(ssp.interaction),
            target: target.as_str(),
            endpoint,
            fhir_request: endpoint.and_then(|e| crate::checks::endpoint::check(target, e).ok()),
        }
    }
}

/// Whether a rule's matcher fits a request.
enum Verdict<'r> {
    No,
    Yes,
    /// Everything fits, and the NHS number must be in the body.
    IfBodyNames(&'r str),
}

impl Matcher {
    fn check(&self, at: &Subject<'_>) -> Verdict<'_> {
        let fits = self.from.as_ref().is_none_or(|a| a == at.from)
            && self.to.as_ref().is_none_or(|a| a == at.to)
            && self
                .interactions
                .as_ref()
                .is_none_or(|set| set.contains(&at.interaction.key))
            && self
                .path
                .as_ref()
                .is_none_or(|re| at.fhir_request.is_some_and(|r| re.is_match(r)));
        match &self.nhs_number {
            _ if !fits => Verdict::No,
            None => Verdict::Yes,
            Some(n) if names_nhs_number(at.target, n) => Verdict::Yes,
            Some(n) => Verdict::IfBodyNames(n),
        }
    }
}

/// Whether `number` stands alone (not inside a longer run of digits) in the decoded URL.
fn names_nhs_number(url: &str, number: &str) -> bool {
    percent_encoding::percent_decode_str(url)
        .decode_utf8_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .any(|run| run == number)
}

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `[[fault]]` table of routes.toml.
    Routes,
    /// `POST /faults`.
    Api,
}

/// An installed rule with its remaining count.
#[derive(Debug)]
pub struct Fault {
    pub id: String,
    pub origin: Origin,
    rule: Rule,
    left: Option<AtomicU32>,
}

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

impl Fault {
    /// Takes one use; false when another request took the last one first.
    fn claim(&self) -> bool {
        self.left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    fn spent(&self) -> bool {
        self.left
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }

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

impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("origin", &self.origin)?;
        map.serialize_entry("match", &self.rule.spec.matcher)?;
        map.serialize_entry("respond", &self.rule.spec.respond)?;
        map.serialize_entry("times", &self.rule.spec.times)?;
        map.serialize_entry(
            "left",
            &self.left.as_ref().map(|l| l.load(Ordering::Acquire)),
        )?;
        map.end()
    }
}

/// The installed rules. Reads are lock-free (the request path); changes copy the list.
#[derive(Debug, Default)]
pub struct Faults {
    installed: ArcSwap<Vec<Arc<Fault>>>,
    next_id: AtomicU64,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    fn install(&self, origin: Origin, rule: Rule) -> Arc<Fault> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::new(Fault {
            id: format!("fault-{n}"),
            origin,
            left: rule.spec.times.map(AtomicU32::new),
            rule,
        })
    }

    /// Replaces the rules routes.toml declared (on start and on every reload), keeping the
    /// ones added through the admin API. Declared rules are tried first.
    pub fn set_declared(&self, rules: &[Rule]) {
        let fresh: Vec<Arc<Fault>> = rules
            .iter()
            .map(|rule| self.install(Origin::Routes, rule.clone()))
            .collect();
        self.installed.rcu(|list| {
            fresh
                .iter()
                .chain(list.iter().filter(|f| f.origin == Origin::Api))
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Adds a rule after all others; returns its id.
    pub fn add(&self, rule: Rule) -> String {
        let fault = self.install(Origin::Api, rule);
        self.installed.rcu(|list| {
            list.iter()
                .cloned()
                .chain(std::iter::once(fault.clone()))
                .collect::<Vec<_>>()
        });
        fault.id.clone()
    }

    /// Removes one rule; false when there is none with that id.
    pub fn remove(&self, id: &str) -> bool {
        let before = self.installed.rcu(|list| {
            list.iter()
                .filter(|f| f.id != id)
                .cloned()
                .collect::<Vec<_>>()
        });
        before.iter().any(|f| f.id == id)
    }

    /// Removes every rule, declared ones included (a reload brings those back).
    pub fn clear(&self) {
        self.installed.store(Arc::default());
    }

    pub fn list(&self) -> Arc<Vec<Arc<Fault>>> {
        self.installed.load_full()
    }

    /// Whether any rule acts at this stage: the gateway skips building a `Subject` otherwise.
    pub fn armed(&self, stage: Stage) -> bool {
        self.installed.load().iter().any(|f| f.rule.stage == stage)
    }

    /// The first rule of this stage that matches the request, with one use taken. When a rule
    /// needs the NHS number of the body, the body is read (up to `PEEK_LIMIT`) and put back
    /// whole, so the request can still go on.
    pub async fn take(
        &self,
        stage: Stage,
        at: &Subject<'_>,
        request: &mut Request<RequestBody>,
    ) -> Option<Arc<Fault>> {
        let list = Guard::into_inner(self.installed.load());
        let mut in_body: Option<Option<String>> = None;
        for fault in list.iter().filter(|f| f.rule.stage == stage) {
            let fits = match fault.rule.matcher.check(at) {
                Verdict::No => false,
                Verdict::Yes => true,
                Verdict::IfBodyNames(wanted) => {
                    if in_body.is_none() {
                        in_body = Some(nhs_number_in_body(request).await);
                    }
                    in_body.as_ref().and_then(Option::as_deref) == Some(wanted)
                }
            };
            if fits && fault.claim() {
                if fault.spent() {
                    self.remove(&fault.id);
                }
                return Some(fault.clone());
            }
        }
        None
    }
}

/// The NHS number a Parameters body names, reading the body and putting it back.
async fn nhs_number_in_body(request: &mut Request<RequestBody>) -> Option<String> {
    if request.body().is_end_stream() {
        return None;
    }
    let whole = std::mem::replace(
        request.body_mut(),
        Empty::new().map_err(|never| match never {}).boxed_unsync(),
    );
    let (seen, replay) = peek(whole, PEEK_LIMIT).await;
    *request.body_mut() = replay;
    nhs_number_in_parameters(&seen)
}

/// Reads up to `limit` bytes of a body; returns them and a body that replays everything
/// (what was read, then the rest, including an error if reading failed).
async fn peek(mut whole: RequestBody, limit: usize) -> (Bytes, RequestBody) {
    let mut seen = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = None;
    loop {
        match whole.frame().await {
            None => break,
            Some(Err(e)) => {
                frames.push(Err(e));
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    seen.extend_from_slice(data);
                }
                frames.push(Ok(frame));
                if seen.len() >= limit {
                    rest = Some(whole);
                    break;
                }
            }
        }
    }
    let replay = stream::iter(frames).chain(stream::iter(rest.map(BodyStream::new)).flatten());
    // Boxed as is: the frames already carry the body's own error type.
    (seen.freeze(), StreamBody::new(replay).boxed_unsync())
}

/// The `patientNHSNumber` of a FHIR Parameters resource, in JSON or XML.
fn nhs_number_in_parameters(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Parameters {
        resource_type: String,
        #[serde(default)]
        parameter: Vec<Parameter>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Parameter {
        name: String,
        value_identifier: Option<Identifier>,
    }
    #[derive(Deserialize)]
    struct Identifier {
        value: Option<String>,
    }
    let text = std::str::from_utf8(body).ok()?.trim_start();
    if text.starts_with('<') {
        // XML: `<name value="patientNHSNumber"/><valueIdentifier>..<value value="N"/>`; the
        // first `value` element after the parameter's name is its identifier's value.
        let after = &text[text.find(NHS_NUMBER_PARAMETER)? + NHS_NUMBER_PARAMETER.len()..];
        let value = &after[after.find("<value value=\"")? + "<value value=\"".len()..];
        return Some(value[..value.find('"')?].to_owned());
    }
    let parameters: Parameters = serde_json::from_str(text).ok()?;
    if parameters.resource_type != "Parameters" {
        return None;
    }
    parameters
        .parameter
        .into_iter()
        .find(|p| p.name == NHS_NUMBER_PARAMETER)?
        .value_identifier?
        .value
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRUCTURED: &str =
        "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";

    fn catalogs() -> (Interactions, ErrorCatalog) {
        (
            Interactions::parse("interactions.toml", crate::interactions::EMBEDDED).unwrap(),
            ErrorCatalog::embedded().unwrap(),
        )
    }

    fn rule(json: &str) -> Result<Rule, Vec<FieldError>> {
        let (interactions, catalog) = catalogs();
        FaultSpec::from_json(json.as_bytes())
            .map_err(|e| vec![e])?
            .validate(&interactions, &catalog)
    }

    fn fields(json: &str) -> Vec<String> {
        rule(json)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            fields(
                r#"{"match":{"from_asid":"x1","interaction":"urn:nope","path":"(","nhs_number":"123"},"respond":{"error":"no-such-error"},"times":0}"#
            ),
            [
                "match.from_asid",
                "match.interaction",
                "match.path",
                "match.nhs_number",
                "respond.error",
                "times"
            ]
        );
        assert_eq!(
            fields(r#"{"respond":{"delay_ms":5,"drop":true}}"#),
            ["respond"]
        );
        assert_eq!(fields(r#"{"respond":{"status":99}}"#), ["respond.status"]);
        assert_eq!(fields(r#"{"respond":{"drop":false}}"#), ["respond.drop"]);
        assert_eq!(
            fields(r#"{"respond":{"delay_ms":"soon"}}"#),
            ["respond.delay_ms"]
        );
        assert_eq!(
            fields(r#"{"respond":{"error":"bad-request"},"colour":1}"#),
            ["colour"]
        );
    }

    #[test]
    fn routes_toml_faults_are_reported_at_their_table_line() {
        #[derive(Deserialize)]
        struct Doc {
            fault: Vec<Spanned<FaultSpec>>,
        }
        let source = r#"
[[fault]]
respond = { delay_ms = 10 }

[[fault]]
match = { path = "(" }
respond = { error = "no-such-error" }
"#;
        let (interactions, catalog) = catalogs();
        let doc: Doc = toml::from_str(source).unwrap();
        let mut problems = Problems::new("routes.toml", source);
        let rules = declared(&mut problems, doc.fault, &interactions, &catalog);
        assert_eq!(rules.len(), 1);
        let text = problems.finish(()).unwrap_err().to_string();
        assert!(
            text.contains("routes.toml:5: fault[1].match.path: not a regular expression"),
            "{text}"
        );
        assert!(text.contains("routes.toml:5: fault[1].respond.error: `no-such-error` is not in the error catalogue"), "{text}");
    }

    #[test]
    fn ssp_check_errors_act_before_the_checks_and_the_rest_at_the_backend() {
        let stage = |json: &str| rule(json).unwrap().stage;
        assert_eq!(
            stage(r#"{"respond":{"error":"sender-asid-not-authorised"}}"#),
            Stage::Spine
        );
        assert_eq!(
            stage(r#"{"respond":{"error":"error-communicating"}}"#),
            Stage::Backend
        );
        assert_eq!(
            stage(r#"{"respond":{"error":"patient-not-found"}}"#),
            Stage::Backend
        );
        assert_eq!(stage(r#"{"respond":{"delay_ms":10}}"#), Stage::Backend);
        assert_eq!(stage(r#"{"respond":{"drop":true}}"#), Stage::Backend);
    }

    #[test]
    fn nhs_numbers_are_found_alone_in_urls_and_in_parameters_bodies() {
        let url = "https://p/A1/STU3/1/gpconnect/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937278";
        assert!(names_nhs_number(url, "9690937278"));
        assert!(!names_nhs_number(url, "969093727"));
        assert!(!names_nhs_number(
            "https://p/Patient/96909372781",
            "9690937278"
        ));
        let json = br#"{"resourceType":"Parameters","parameter":[{"name":"includeAllergies"},{"name":"patientNHSNumber","valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937278"}}]}"#;
        assert_eq!(
            nhs_number_in_parameters(json).as_deref(),
            Some("9690937278")
        );
        let xml = br#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="patientNHSNumber"/><valueIdentifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9690937278"/></valueIdentifier></parameter></Parameters>"#;
        assert_eq!(nhs_number_in_parameters(xml).as_deref(), Some("9690937278"));
        assert_eq!(
            nhs_number_in_parameters(br#"{"resourceType":"Patient"}"#),
            None
        );
    }

    #[tokio::test]
    async fn a_peeked_body_is_replayed_whole() {
        let frames = ["0123", "4567", "89"].map(|d| Ok(http_body::Frame::data(Bytes::from(d))));
        let whole: RequestBody = StreamBody::new(stream::iter(frames)).boxed_unsync();
        let (seen, replay) = peek(whole, 4).await;
        assert_eq!(&seen[..], b"0123");
        let replayed = replay.collect().await.unwrap().to_bytes();
        assert_eq!(&replayed[..], b"0123456789");
    }

    #[test]
    fn counted_faults_are_taken_until_spent_then_removed() {
        let faults = Faults::new();
        let id = faults.add(rule(r#"{"respond":{"drop":true},"times":2}"#).unwrap());
        let fault = faults.list()[0].clone();
        assert!(fault.claim());
        assert!(!fault.spent());
        assert!(fault.claim());
        assert!(fault.spent());
        assert!(!fault.claim());
        assert!(faults.remove(&id));
        assert!(!faults.remove(&id));
    }

    #[test]
    fn reload_replaces_declared_rules_and_keeps_api_ones() {
        let faults = Faults::new();
        let declared = rule(&format!(
            r#"{{"match":{{"interaction":"{STRUCTURED}"}},"respond":{{"delay_ms":1}}}}"#
        ))
        .unwrap();
        faults.set_declared(std::slice::from_ref(&declared));
        faults.add(rule(r#"{"respond":{"drop":true}}"#).unwrap());
        faults.set_declared(&[declared.clone(), declared]);
        let origins: Vec<Origin> = faults.list().iter().map(|f| f.origin).collect();
        assert_eq!(origins, [Origin::Routes, Origin::Routes, Origin::Api]);
        assert!(faults.armed(Stage::Backend));
        assert!(!faults.armed(Stage::Spine));
        faults.clear();
        assert!(faults.list().is_empty());
    }
}
