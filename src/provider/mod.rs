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

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};

use crate::config::errors::header_text;
use crate::config::interactions::{Interaction, Interactions};
use crate::config::jwt::{JwtMode, Policy};
use crate::config::rejection::Rejection;
use crate::config::routes::Endpoint;
use crate::proxy::trail::Trail;
use findings::Findings;

/// The response header that lists, in `report` mode, every rule the request broke.
pub const WARNINGS_HEADER: &str = "ssp-sim-warnings";

/// The parts of a request check 10 reads.
pub struct ProviderRequest<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    /// The FHIR path and query below the service root.
    pub rest: &'a str,
    pub interaction: &'a Interaction,
    pub interactions: &'a Interactions,
    pub endpoint: &'a Endpoint,
}

/// Rules broken by a request that `report` mode let through, for the response header.
#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    /// Adds one `Ssp-Sim-Warnings` field line per broken rule.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for line in &self.0 {
            headers.append(WARNINGS_HEADER, header_text(line));
        }
    }
}

/// Runs check 10 as the endpoint's mode says and records it on the trail: `enforce` answers
/// with the rejection, `report` returns the warnings for the response.
pub fn run(
    policy: &Policy,
    request: &ProviderRequest,
    trail: &mut Trail,
) -> Result<Warnings, Rejection> {
    let mode = request.endpoint.jwt.mode.unwrap_or(policy.mode);
    if mode == JwtMode::Off {
        trail.note("provider", true, "not checked: jwt mode off");
        return Ok(Warnings::default());
    }
    let findings = inspect(policy, request, unix_now());
    let lines = findings.lines();
    match (mode, findings.rejection()) {
        (JwtMode::Report, _) if !lines.is_empty() => {
            tracing::warn!(
                broken = %lines.join(" | "),
                "provider checks failed; forwarding anyway (jwt mode report)"
            );
            trail.note(
                "provider",
                true,
                format!("reported, not enforced: {}", lines.join("; ")),
            );
            Ok(Warnings(lines))
        }
        (JwtMode::Enforce, Some(rejection)) => trail.check("provider", Err(rejection)),
        _ if !findings.notices.is_empty() => {
            trail.note("provider", true, lines.join("; "));
            Ok(Warnings::default())
        }
        _ => trail.check("provider", Ok(Warnings::default())),
    }
}

/// Every rule of check 10 applied to one request.
pub fn inspect(policy: &Policy, request: &ProviderRequest, now: i64) -> Findings {
    let mut findings = Findings::default();
    interaction::check(
        request.interaction,
        request.interactions,
        request.method,
        request.rest,
        &mut findings,
    );
    let expected = jwt::Expected {
        aud: Some(&request.endpoint.service_root),
        interaction: Some(request.interaction),
        now,
        clock_skew: policy.clock_skew_s,
        key: request.endpoint.jwt.key.as_ref(),
    };
    jwt::check_authorization(request.headers.get(AUTHORIZATION), &expected, &mut findings);
    findings
}

/// Seconds since 1970; a clock before 1970 reads as 1970.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::jwt::tests::{good_payload, NOW, ROOT};
    use super::jwt::{encode_unsigned, unsigned_header};
    use super::*;
    use crate::config::interactions::EMBEDDED;
    use crate::config::jwt::EndpointJwt;
    use crate::config::routes::Backend;

    fn endpoint(mode: Option<JwtMode>) -> Endpoint {
        Endpoint {
            service_root: ROOT.into(),
            cpa_id: "S1".into(),
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
        };
        assert_eq!(
            inspect(&Policy::default(), &request(&good, "/metadata"), NOW),
            Findings::default()
        );
        let mut payload = good_payload();
        payload["exp"] = 1.into();
        let bad = headers(&encode_unsigned(&unsigned_header(), &payload));
        let f = inspect(&Policy::default(), &request(&bad, "/Patient/1"), NOW);
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
            };
            let mut trail = Trail::default();
            let policy = Policy {
                mode: policy_mode,
                ..Policy::default()
            };
            let result = run(&policy, &request, &mut trail).map(|w| {
                let mut h = HeaderMap::new();
                w.apply(&mut h);
                h
            });
            (result, trail.checks[0].clone())
        };
        let (result, record) = run_with(JwtMode::Enforce, None);
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("Authorization header is missing"));
        assert!(!record.ok);
        let (result, record) = run_with(JwtMode::Enforce, Some(JwtMode::Report));
        let h = result.unwrap();
        assert_eq!(
            h.get(WARNINGS_HEADER).unwrap(),
            "authorization: Authorization header is missing; send Authorization: Bearer <JWT>"
        );
        assert!(record.ok && record.detail.unwrap().starts_with("reported, not enforced"));
        let (result, record) = run_with(JwtMode::Report, Some(JwtMode::Off));
        assert!(result.unwrap().is_empty());
        assert_eq!(record.detail.as_deref(), Some("not checked: jwt mode off"));
    }

    #[test]
    fn warnings_are_made_header_safe() {
        let mut h = HeaderMap::new();
        Warnings(vec!["name `Zoë`\n".into()]).apply(&mut h);
        assert_eq!(h.get(WARNINGS_HEADER).unwrap(), "name `Zo?`?");
    }
}
