//! Whether a rule fits a request: the matcher a `MatchSpec` validates into, and what the
//! Spine checks identified about the request (`Subject`) that it is held against.

use regex::{Regex, RegexBuilder};

use super::nhs_number::names_nhs_number;
use super::rule::{FieldError, MatchSpec};
use crate::config::interactions::{Interaction, InteractionSet, Interactions};
use crate::config::routes::{Asid, Endpoint, Registry};
use crate::spine::headers::SspHeaders;
use crate::spine::target::TargetUrl;

/// How large a compiled `path` regex may grow (a guard against pathological patterns posted
/// to the admin API).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(super) struct Matcher {
    from: Option<Asid>,
    to: Option<Asid>,
    interactions: Option<InteractionSet>,
    path: Option<Regex>,
    nhs_number: Option<String>,
}

impl MatchSpec {
    pub(super) fn validate(
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

/// What the checks have identified about a request, for matching and for an error's values.
#[derive(Debug)]
pub struct Subject<'a> {
    /// `Ssp-From`.
    pub from: &'a Asid,
    /// `Ssp-To`.
    pub to: &'a Asid,
    /// The interaction `Ssp-InteractionID` declared.
    pub interaction: &'a Interaction,
    /// The target URL as sent, query included.
    pub target: &'a str,
    /// The registration SDS holds for the receiver and interaction, when there is one.
    pub endpoint: Option<&'a Endpoint>,
    /// The FHIR request below that registration's service root, when the target is under it.
    pub fhir_request: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// What check 4 established about a request, with the endpoint SDS holds for it looked up
    /// here: faults of the Spine stage act before check 6 has found it.
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
            fhir_request: endpoint.and_then(|e| crate::spine::endpoint::check(target, e).ok()),
        }
    }
}

/// Whether a rule's matcher fits a request.
pub(super) enum Verdict<'r> {
    No,
    Yes,
    /// Everything fits, and the NHS number must be in the body.
    IfBodyNames(&'r str),
}

impl Matcher {
    pub(super) fn check(&self, at: &Subject<'_>) -> Verdict<'_> {
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
