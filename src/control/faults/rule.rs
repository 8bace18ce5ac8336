//! A fault rule as written (routes.toml or `POST /faults`) and as validated against the
//! catalogues: what it answers with and at which stage of a request it acts.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::matching::Matcher;
use crate::config::errors::{ErrorCatalog, Source};
use crate::config::interactions::Interactions;
use crate::config::problems::Problems;
use crate::config::rejection::ids;

/// What a real connection refused by a backend puts in `ssp-sim-diagnostics` (on Linux, whose
/// text for the refusal this is), so an injected `error-communicating` cannot be told apart
/// from it.
pub const CONNECT_FAILURE: &str =
    "cannot connect to the backend: tcp connect error: Connection refused (os error 111)";

/// The SSP errors that arise where the SSP calls the provider, not in its own checks: a fault
/// answering with one acts at [`Stage::Backend`].
const BACKEND_ERRORS: [&str; 2] = [ids::ERROR_COMMUNICATING, ids::GATEWAY_TIMEOUT];

/// The longest delay a rule may ask for.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// A fault as written in routes.toml or posted to `POST /faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Which requests it fires on (`match`); absent matches every request.
    #[serde(rename = "match", default)]
    pub matcher: MatchSpec,
    /// What it does to them.
    pub respond: RespondSpec,
    /// How many requests it answers before it removes itself; absent means until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// What a fault matches; every field given must match, an absent one matches anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// The sender's ASID (`Ssp-From`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_asid: Option<String>,
    /// The receiver's ASID (`Ssp-To`).
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
    /// Milliseconds to hold the request before it goes on as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `true`: close the connection without a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<bool>,
    /// The HTTP status to answer with, instead of what the backend would.
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
    /// The field, e.g. `match.path` or `respond.error`.
    pub field: String,
    /// What is wrong with it and what to write instead.
    pub message: String,
}

impl FieldError {
    pub(super) fn new(field: &str, message: impl Into<String>) -> Self {
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
    /// and `error-communicating` or `gateway-timeout`.
    Backend,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(super) spec: FaultSpec,
    pub(super) matcher: Matcher,
    pub(super) action: Action,
    pub(super) stage: Stage,
}

#[derive(Debug, Clone)]
pub(super) enum Action {
    Reject { error: String, diagnostics: String },
    Delay(Duration),
    Hangup,
    Answer { status: StatusCode, body: Bytes },
}

impl Rule {
    /// The rule as posted, as JSON: what a shared store keeps, for every replica to
    /// validate again with `FaultSpec::from_json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.spec).unwrap_or_default()
    }

    /// How many requests it answers, when it has a budget.
    pub fn times(&self) -> Option<u32> {
        self.spec.times
    }
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
                        if !BACKEND_ERRORS.contains(&error.as_str())
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn catalogs() -> (Interactions, ErrorCatalog) {
        (
            Interactions::parse("interactions.toml", crate::config::interactions::EMBEDDED)
                .unwrap(),
            ErrorCatalog::embedded().unwrap(),
        )
    }

    /// A rule from its JSON, validated against the embedded catalogues.
    pub(in crate::control::faults) fn rule(json: &str) -> Result<Rule, Vec<FieldError>> {
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
            stage(r#"{"respond":{"error":"gateway-timeout"}}"#),
            Stage::Backend
        );
        assert_eq!(
            stage(r#"{"respond":{"error":"patient-not-found"}}"#),
            Stage::Backend
        );
        assert_eq!(stage(r#"{"respond":{"delay_ms":10}}"#), Stage::Backend);
        assert_eq!(stage(r#"{"respond":{"drop":true}}"#), Stage::Backend);
    }
}
