//! Check 10: what a GP Connect provider checks, done by the SSP simulator so that a consumer
//! sees every mistake against one target. The JWT (`jwt`, `claims`, `resources`) and the
//! interaction's fit with the request (`interaction`); every broken rule is found, not only the
//! first, and `--jwt-mode` decides whether they refuse the request, are reported, or are not
//! looked for.

pub mod claims;
pub mod findings;
mod interaction;
pub mod jwt;
mod resources;
mod view;

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};

use crate::config::elements::Elements;
use crate::config::interactions::{Interaction, Interactions, JwtRules};
use crate::config::jwt::{JwtMode, Policy};
use crate::config::rejection::Rejection;
use crate::config::routes::Endpoint;
use crate::wire::headers::header_text;
use findings::Findings;
use jwt::Decoded;

/// The response header that lists, in `report` mode, every rule the request broke.
pub const WARNINGS_HEADER: &str = "ssp-sim-warnings";

/// The parts of a request check 10 reads.
pub struct ProviderRequest<'a> {
    /// The request headers; only `Authorization` is read.
    pub headers: &'a HeaderMap,
    /// The request method, which the declared interaction must fit.
    pub method: &'a Method,
    /// The FHIR path and query below the service root.
    pub rest: &'a str,
    /// The interaction `Ssp-InteractionID` declared (check 4).
    pub interaction: &'a Interaction,
    /// The whole catalogue, to say which interaction a misfitting request looks like.
    pub interactions: &'a Interactions,
    /// The endpoint check 6 found: its service root is the `aud` a token must name, its `jwt`
    /// settings the mode and the key.
    pub endpoint: &'a Endpoint,
    /// The FHIR STU3 element tables the JWT's resource claims are read against.
    pub elements: &'a Elements,
    /// Whether to decode the token into JSON trees for the journal's details
    /// (`journal_details`): off, the hot path builds none.
    pub keep_token: bool,
}

/// Rules broken by a request that `report` mode let through, for the response header.
#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    /// How many rules were reported broken.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no rule was reported broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one `Ssp-Sim-Warnings` field line per broken rule.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for line in &self.0 {
            headers.append(WARNINGS_HEADER, header_text(line));
        }
    }
}

/// What check 10 let through: the rules `report` mode found broken (for the response header)
/// and, when there is something to say, a note for the trail.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The `Ssp-Sim-Warnings` lines.
    pub warnings: Warnings,
    /// Why the request passed with something to say (mode off, notices, report mode).
    pub note: Option<String>,
}

impl Verdict {
    fn noted(note: impl Into<String>) -> Self {
        Self {
            warnings: Warnings::default(),
            note: Some(note.into()),
        }
    }
}

/// Check 10's outcome, with what it found: the broken rules for the coverage report, and the
/// decoded token for the journal's details (`journal_details`; claim values are personal data).
#[derive(Debug)]
pub struct Checked {
    /// Whether the request goes on, and with which warnings.
    pub verdict: Result<Verdict, Rejection>,
    /// Every rule broken and every notice; empty when the mode is `off`.
    pub findings: Findings,
    /// The bearer token's header and claims, as far as they decoded.
    pub token: Option<Decoded>,
}

/// Every rule of check 10 applied to one request, and the token they read.
#[derive(Debug)]
pub struct Inspection {
    /// What was broken.
    pub findings: Findings,
    /// The bearer token's header and claims, as far as they decoded.
    pub token: Option<Decoded>,
}

/// Check 10: the request is one a GP Connect provider would accept, as the endpoint's
/// `jwt_mode` (else `--jwt-mode`) says.
///
/// - Reads: the `Authorization` header's JWT (the rules of [`findings::Rule`]), the method and
///   the FHIR path and query against the declared interaction, the endpoint's service root (the
///   expected `aud`) and `jwt_key`.
/// - Hands on: a [`Verdict`]: in `report` mode the broken rules as warnings, otherwise at most
///   a note for the trail; `off` checks nothing.
/// - Refuses, in `enforce` mode: 400 [`bad-request`](crate::config::rejection::ids::BAD_REQUEST)
///   when any broken rule is a bad request, else 422
///   [`invalid-resource`](crate::config::rejection::ids::INVALID_RESOURCE); the `diagnostics`
///   list every broken rule, not only the first.
pub fn run(policy: &Policy, request: &ProviderRequest) -> Checked {
    let mode = request.endpoint.jwt.mode.unwrap_or(policy.mode);
    if mode == JwtMode::Off {
        return Checked {
            verdict: Ok(Verdict::noted("not checked: jwt mode off")),
            findings: Findings::default(),
            token: None,
        };
    }
    let Inspection { findings, token } = inspect(policy, request, unix_now());
    let verdict = judge(mode, request.interaction.jwt, &findings);
    Checked {
        verdict,
        findings,
        token,
    }
}

/// What `mode` makes of the findings, refusing in the error form of the interaction's rules.
fn judge(mode: JwtMode, rules: JwtRules, findings: &Findings) -> Result<Verdict, Rejection> {
    // The consumer gets every message (its own token's values); the logs and the trail (so the
    // journal) get the rules and claims by name only: the README's data-handling rule.
    let summary = findings.summary();
    match (mode, findings.rejection(rules)) {
        (JwtMode::Report, _) if !summary.is_empty() => Ok(Verdict {
            note: Some(format!("reported, not enforced: {summary}")),
            warnings: Warnings(findings.lines()),
        }),
        (JwtMode::Enforce, Some(rejection)) => {
            let record = format!("{}: {summary}", rejection.error);
            Err(rejection.recorded_as(record))
        }
        _ if !findings.notices.is_empty() => Ok(Verdict::noted(summary)),
        _ => Ok(Verdict::default()),
    }
}

/// Every rule of check 10 applied to one request.
pub fn inspect(policy: &Policy, request: &ProviderRequest, now: i64) -> Inspection {
    let mut findings = Findings::default();
    interaction::check(
        request.interaction,
        request.interactions,
        request.method,
        request.rest,
        &mut findings,
    );
    let rules = request.interaction.jwt;
    if rules == JwtRules::None {
        return Inspection {
            findings,
            token: None,
        };
    }
    let expected = jwt::Expected {
        rules,
        // GP Connect 0.7 fixes `aud` to the token URL; 1.x makes it the endpoint.
        aud: Some(match rules {
            JwtRules::Gpconnect07 => claims::DSTU2_AUD,
            _ => &request.endpoint.service_root,
        }),
        interaction: Some(request.interaction),
        now,
        clock_skew: policy.clock_skew_s,
        key: request.endpoint.jwt.key.as_ref(),
        elements: Some(request.elements),
    };
    let token =
        jwt::check_authorization(request.headers.get(AUTHORIZATION), &expected, &mut findings);
    let token = token.filter(|_| request.keep_token).map(jwt::decode);
    Inspection { findings, token }
}

/// Seconds since 1970; a clock before 1970 reads as 1970.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::jwt::tests::{good_payload, shipped_elements, NOW, ROOT};
    use super::jwt::{encode_unsigned, unsigned_header};
    use super::*;
    use crate::config::interactions::EMBEDDED;
    use crate::config::jwt::EndpointJwt;
    use crate::config::routes::Backend;
    use crate::config::sds::{CpaId, ServiceRoot};

    fn endpoint(mode: Option<JwtMode>) -> Endpoint {
        Endpoint {
            service_root: ServiceRoot::parse(ROOT).unwrap(),
            cpa_id: CpaId::parse("S1").unwrap(),
            interactions: Default::default(),
            backend: Backend::Demo,
            jwt: EndpointJwt { mode, key: None },
        }
    }

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    fn metadata(c: &Interactions) -> &Interaction {
        c.iter().find(|i| i.path.as_str() == "/metadata").unwrap()
    }

    #[test]
    fn a_good_request_passes_and_a_bad_one_lists_every_broken_rule() {
        let c = Interactions::parse("i.toml", EMBEDDED).unwrap();
        let e = endpoint(None);
        let good = headers(&encode_unsigned(&unsigned_header(), &good_payload()));
        let request = |headers, rest| ProviderRequest {
            headers,
            method: &Method::GET,
            rest,
            interaction: metadata(&c),
            interactions: &c,
            endpoint: &e,
            elements: shipped_elements(),
            keep_token: false,
        };
        assert_eq!(
            inspect(&Policy::default(), &request(&good, "/metadata"), NOW).findings,
            Findings::default()
        );
        let mut payload = good_payload();
        payload["exp"] = 1.into();
        let bad = headers(&encode_unsigned(&unsigned_header(), &payload));
        let f = inspect(&Policy::default(), &request(&bad, "/Patient/1"), NOW).findings;
        let ids: Vec<&str> = f.violations.iter().map(|v| v.rule.id()).collect();
        assert_eq!(ids, ["interaction", "claim.exp", "claim.expired"]);
    }

    #[test]
    fn modes_enforce_report_or_skip() {
        let c = Interactions::parse("i.toml", EMBEDDED).unwrap();
        let empty = HeaderMap::new();
        let run_with = |policy_mode, endpoint_mode| {
            let e = endpoint(endpoint_mode);
            let request = ProviderRequest {
                headers: &empty,
                method: &Method::GET,
                rest: "/metadata",
                interaction: metadata(&c),
                interactions: &c,
                endpoint: &e,
                elements: shipped_elements(),
                keep_token: false,
            };
            let policy = Policy {
                mode: policy_mode,
                ..Policy::default()
            };
            let result = run(&policy, &request).verdict;
            let note = result.as_ref().ok().and_then(|v| v.note.clone());
            let result = result.map(|v| {
                let mut h = HeaderMap::new();
                v.warnings.apply(&mut h);
                h
            });
            (result, note)
        };
        let (result, _) = run_with(JwtMode::Enforce, None);
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("Authorization header is missing"));
        let (result, note) = run_with(JwtMode::Enforce, Some(JwtMode::Report));
        let h = result.unwrap();
        assert_eq!(
            h.get(WARNINGS_HEADER).unwrap(),
            "authorization: Authorization header is missing; send Authorization: Bearer <JWT>"
        );
        assert!(note.unwrap().starts_with("reported, not enforced"));
        let (result, note) = run_with(JwtMode::Report, Some(JwtMode::Off));
        assert!(result.unwrap().is_empty());
        assert_eq!(note.as_deref(), Some("not checked: jwt mode off"));
    }

    #[test]
    fn warnings_are_made_header_safe() {
        let mut h = HeaderMap::new();
        Warnings(vec!["name `Zoë`\n".into()]).apply(&mut h);
        assert_eq!(h.get(WARNINGS_HEADER).unwrap(), "name `Zo?`?");
    }
}
