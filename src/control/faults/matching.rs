//! Whether a rule fits a request: the matcher a `MatchSpec` validates into, and what the
//! Spine checks identified about the request (`Subject`) that it is held against.

use regex::bytes::{Regex, RegexBuilder};

use super::nhs_number::names_nhs_number;
use super::rule::{FieldError, MatchSpec};
use crate::config::interactions::{Interaction, InteractionSet, Interactions};
use crate::config::routes::{Asid, Endpoint, RateLimit, Registry};
use crate::spine::headers::SspHeaders;
use crate::spine::target::TargetUrl;

/// How large a compiled `path` regex may grow, and its lazy DFA's cache: with up to
/// `max_faults` rules installed, each must stay small (a guard against patterns posted to the
/// admin API that would each hold megabytes).
const REGEX_SIZE_LIMIT: usize = 64 * 1024;
const REGEX_DFA_LIMIT: usize = 256 * 1024;

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
            path_regex(p)
                .map_err(|message| problems.push(FieldError::new("match.path", message)))
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

/// A `path` pattern, compiled within the size limits. A FHIR request target is ASCII (the HTTP
/// request line allows nothing else), so the pattern is matched on bytes with ASCII classes:
/// `\w`, `\d` and `.` mean on it what they mean in Unicode mode, at a fraction of the size
/// (Unicode `\w{20}` compiles to about 1 MB, ASCII to 2 KB).
fn path_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "is too large: compiled it would exceed {limit} bytes; use fewer or smaller repetitions"
            ),
            other => format!("not a regular expression: {other}"),
        })
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
    /// The sender's own rate limit and the global one, for a throttling fault's headers.
    pub rate_limits: (Option<RateLimit>, Option<RateLimit>),
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
            rate_limits: (
                registry.consumer(&ssp.from).and_then(|c| c.rate_limit),
                registry.rate_limit,
            ),
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
                .is_none_or(|re| at.fhir_request.is_some_and(|r| re.is_match(r.as_bytes())));
        match &self.nhs_number {
            _ if !fits => Verdict::No,
            None => Verdict::Yes,
            Some(n) if names_nhs_number(at.target, n) => Verdict::Yes,
            Some(n) => Verdict::IfBodyNames(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_ascii_targets_as_written_and_stay_small() {
        for (pattern, target, fits) in [
            (r"^/Patient/\d+$", "/Patient/2", true),
            (r"\w{20}", "/Patient/abcdefghijklmnopqrstu", true),
            (r"\w{20}", "/Patient/abc", false),
            (r"(?i)^/patient", "/Patient/2", true),
            (
                r"nhs-number%7C9690937278",
                "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937278",
                true,
            ),
            (r".*", "", true),
        ] {
            let re = path_regex(pattern).unwrap();
            assert_eq!(
                re.is_match(target.as_bytes()),
                fits,
                "{pattern} on {target}"
            );
        }
        let too_big = path_regex("[a-z]{1000}").unwrap_err();
        assert!(too_big.starts_with("is too large"), "{too_big}");
        assert!(path_regex("(")
            .unwrap_err()
            .starts_with("not a regular expression"));
    }
}
