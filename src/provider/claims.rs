//! The payload claims of a GP Connect JWT: each required claim present and of its JSON type,
//! the times, `reason_for_request`, `requested_scope`, `aud` and `sub`, by the rules of 1.x or
//! of 0.7 (Access Record HTML, which adds `requested_record` and fixes `aud`). The FHIR
//! resource claims are `resources`' job.

use std::cell::RefCell;

use foldhash::HashSet;

use super::findings::{Findings, Rule};
use super::jwt::{shorten, Expected};
use super::resources;
use super::view::{Json, Object};
use crate::config::interactions::{JwtRules, Reason};

/// How long a GP Connect token lives: `exp` is exactly `iat` + 5 minutes.
pub const LIFETIME_S: i64 = 300;

/// The JSON type a claim must have.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    /// Whole seconds since 1970 (UNIX time).
    Seconds,
    /// A FHIR resource as a JSON object.
    Resource,
}

/// The `aud` every GP Connect 0.7 token names: the authorisation server's token URL.
pub const DSTU2_AUD: &str = "https://authorize.fhir.nhs.net/token";

/// The claim GP Connect 0.7 requires beside 1.x's.
const REQUESTED_RECORD: (&str, Kind) = ("requested_record", Kind::Resource);

/// Every claim GP Connect 1.x requires, in the spec's order.
const CLAIMS: [(&str, Kind); 10] = [
    ("iss", Kind::Text),
    ("sub", Kind::Text),
    ("aud", Kind::Text),
    ("exp", Kind::Seconds),
    ("iat", Kind::Seconds),
    ("reason_for_request", Kind::Text),
    ("requested_scope", Kind::Text),
    ("requesting_device", Kind::Resource),
    ("requesting_organization", Kind::Resource),
    ("requesting_practitioner", Kind::Resource),
];

/// Every claim the rules read, 1.x's and then 0.7's.
const NAMES: [&str; CLAIMS.len() + 1] = {
    let mut names = [REQUESTED_RECORD.0; CLAIMS.len() + 1];
    let mut at = 0;
    while at < CLAIMS.len() {
        names[at] = CLAIMS[at].0;
        at += 1;
    }
    names
};

/// The payload's claims, found in one pass over its members (of duplicates the last): the
/// rules read each claim several times, and a lookup here compares names, not members.
struct Claims<'v>([Option<Json<'v>>; NAMES.len()]);

impl<'v> Claims<'v> {
    fn of(payload: &Object<'v>) -> Self {
        Claims(payload.pick(NAMES))
    }

    fn get(&self, name: &str) -> Option<Json<'v>> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|at| self.0[at])
    }
}

/// Whether `name` is one of the claims GP Connect requires: lets a finding name its claim in
/// the logs without its value.
pub(super) fn is_claim(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The payload rules: every `claim.*` rule and the three resource rules, applied to a decoded
/// payload. Every broken rule goes into `findings`; nothing stops at the first.
pub fn check(payload: &Object, expected: &Expected, findings: &mut Findings) {
    let dstu2 = expected.rules == JwtRules::Gpconnect07;
    let extra = dstu2.then_some(REQUESTED_RECORD);
    let claims = Claims::of(payload);
    for (name, kind) in CLAIMS.into_iter().chain(extra) {
        present_and_typed(claims.get(name), name, kind, findings);
    }
    let text = |name: &str| claims.get(name).and_then(|v| v.text());
    let seconds = |name: &str| claims.get(name).and_then(|v| v.as_i64());

    if let Some(iss) = text("iss") {
        if !is_web_url(&iss) {
            findings.fail(Rule::Iss, format!("JWT claim iss must be the consumer system's URL (e.g. https://consumer.example.nhs.uk/), got `{}`", shorten(&iss)));
        }
    }
    times(seconds("iat"), seconds("exp"), expected, findings);
    let migration = text("reason_for_request").is_some_and(|reason| {
        reason_for_request(&reason, expected, findings) == Some(Reason::Migration)
    });
    if let Some(scope) = text("requested_scope") {
        requested_scope(&scope, expected, findings);
    }
    if let (Some(aud), Some(root)) = (text("aud"), expected.aud) {
        if aud != root && dstu2 {
            findings.fail(Rule::Aud, format!("JWT claim aud must be `{root}` (GP Connect 0.7 fixes it to the token URL), got `{}`", shorten(&aud)));
        } else if aud != root {
            findings.fail(Rule::Aud, format!("JWT claim aud must be the provider endpoint's service root `{root}` (its nhsMhsEndPoint in SDS), got `{}`", shorten(&aud)));
        }
    }
    let version = if dstu2 {
        resources::Version::Dstu2
    } else {
        resources::Version::Stu3(expected.elements)
    };
    if dstu2 {
        let scope = text("requested_scope");
        resources::requested_record(claims.get("requested_record"), scope.as_deref(), findings);
    }
    resources::device(claims.get("requesting_device"), version, findings);
    resources::organization(claims.get("requesting_organization"), version, findings);
    // The spec relaxes the practitioner's SHALLs to SHOULDs for record migration (GP2GP).
    let practitioner_id = resources::practitioner(
        claims.get("requesting_practitioner"),
        version,
        migration,
        findings,
    );
    if let (Some(sub), Some(id)) = (text("sub"), practitioner_id) {
        if sub != id {
            findings.fail(
                Rule::Sub,
                format!(
                    "JWT claim sub must equal requesting_practitioner.id (sub `{}`, requesting_practitioner.id `{}`)",
                    shorten(&sub),
                    shorten(&id)
                ),
            );
        }
    }
}

/// The most `iss` values a thread remembers as URLs before it starts again.
const URLS_KEPT: usize = 64;

thread_local! {
    /// The `iss` values found to be http(s) URLs. A consumer sends the same `iss` on every
    /// request, and parsing it as a URL was a tenth of the payload's rules; only values that
    /// passed are kept, so a refusal always comes from the parser.
    static URLS: RefCell<HashSet<Box<str>>> = RefCell::default();
}

/// Whether `text` is an http or https URL, as `url` parses it.
fn is_web_url(text: &str) -> bool {
    if URLS.with_borrow(|urls| urls.contains(text)) {
        return true;
    }
    let is_url = url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if is_url {
        URLS.with_borrow_mut(|urls| {
            if urls.len() >= URLS_KEPT {
                urls.clear();
            }
            urls.insert(text.into());
        });
    }
    is_url
}

fn present_and_typed(value: Option<Json>, name: &str, kind: Kind, findings: &mut Findings) {
    let value = match value {
        None => {
            findings.fail(Rule::ClaimPresent, format!("JWT claim {name} is missing"));
            return;
        }
        Some(value) if value.is_null() => {
            findings.fail(Rule::ClaimPresent, format!("JWT claim {name} is null"));
            return;
        }
        Some(value) => value,
    };
    let (fits, wanted) = match kind {
        Kind::Text => (value.is_string(), "a string"),
        Kind::Seconds => (
            value.as_i64().is_some(),
            "an integer number of seconds since 1970 (UNIX time)",
        ),
        Kind::Resource => (value.is_object(), "a FHIR resource (a JSON object)"),
    };
    if !fits {
        findings.fail(
            Rule::ClaimType,
            format!(
                "JWT claim {name} must be {wanted}, got {}",
                value.describe()
            ),
        );
    } else if value.as_str().is_some_and(|s| s.is_empty()) {
        findings.fail(Rule::ClaimPresent, format!("JWT claim {name} is empty"));
    }
}

/// `exp` is `iat` + 300 and has not passed, give or take the clock skew.
fn times(iat: Option<i64>, exp: Option<i64>, expected: &Expected, findings: &mut Findings) {
    // i128 so that no claim value, however large, can overflow the arithmetic.
    let now = i128::from(expected.now);
    if let (Some(iat), Some(exp)) = (iat, exp) {
        if i128::from(exp) != i128::from(iat) + i128::from(LIFETIME_S) {
            findings.fail(
                Rule::Exp,
                format!("JWT claim exp must be iat + {LIFETIME_S} (iat {iat}, exp {exp})"),
            );
        }
    }
    // `iat` is not judged against the clock: providers shall not (gpconnect#640, released in
    // 1.2.3), and the assurance suite expects a token issued 200 s ahead to pass. The clock
    // skew is leeway on expiry instead.
    if let Some(exp) = exp {
        let late = now - i128::from(exp);
        let leeway = i128::from(expected.clock_skew);
        if late >= leeway {
            let skew = if leeway > 0 {
                format!(", allowed clock skew {leeway} s")
            } else {
                String::new()
            };
            findings.fail(
                Rule::Expired,
                format!("JWT claim exp {exp} has passed: the token expired {late} s ago (now {now}{skew}); make a new JWT for every request"),
            );
        }
    }
}

/// Returns the reason when the interaction accepts it.
fn reason_for_request(
    reason: &str,
    expected: &Expected,
    findings: &mut Findings,
) -> Option<Reason> {
    let allowed: &[Reason] = expected
        .interaction
        .map_or(&[Reason::Directcare], |i| i.reasons.as_slice());
    if let Some(found) = allowed.iter().find(|r| r.as_str() == reason) {
        return Some(*found);
    }
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    let whose = expected
        .interaction
        .map(|i| format!(" for {}", i.id))
        .unwrap_or_default();
    findings.fail(
        Rule::ReasonForRequest,
        format!(
            "JWT claim reason_for_request must be {}{whose}, got `{}`",
            names.join(" or "),
            shorten(reason)
        ),
    );
    None
}

/// The interaction's scope, and for the structured and documents interactions at most one
/// confidentiality scope beside it, space separated.
fn requested_scope(scope: &str, expected: &Expected, findings: &mut Findings) {
    let Some(interaction) = expected.interaction else {
        return;
    };
    let (confidentiality, resource): (Vec<&str>, Vec<&str>) =
        scope.split(' ').partition(|w| w.starts_with("conf/"));
    let confidentiality_ok = match confidentiality.as_slice() {
        [] => true,
        [one] => interaction.confidentiality_scope && matches!(*one, "conf/N" | "conf/R"),
        _ => false,
    };
    if resource == [interaction.scope.as_str()] && confidentiality_ok {
        return;
    }
    let optional = if interaction.confidentiality_scope {
        ", optionally with ` conf/N` or ` conf/R`"
    } else {
        ""
    };
    findings.fail(
        Rule::RequestedScope,
        format!(
            "JWT claim requested_scope must be `{}`{optional} for {} ({}), got `{}`",
            interaction.scope,
            interaction.id,
            interaction.name,
            shorten(scope)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::super::jwt::tests::{expected, good_payload, rules, ROOT};
    use super::super::view::{Document, Scratch};
    use super::*;
    use crate::config::interactions::{Interactions, EMBEDDED};
    use serde_json::{json, Value};

    fn run(payload: &Value, expected: &Expected) -> Findings {
        let mut f = Findings::default();
        let bytes = payload.to_string().into_bytes();
        let mut work = Scratch::default();
        let document = Document::parse(&bytes, &mut work).unwrap();
        check(&document.root().object().unwrap(), expected, &mut f);
        f
    }

    fn with(changes: Value) -> Value {
        let mut payload = good_payload();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                payload.as_object_mut().unwrap().remove(k);
            } else {
                payload[k] = v.clone();
            }
        }
        payload
    }

    fn catalogue() -> Interactions {
        Interactions::parse("interactions.toml", EMBEDDED).unwrap()
    }

    #[test]
    fn the_good_payload_passes() {
        assert_eq!(run(&good_payload(), &expected(None)), Findings::default());
    }

    #[test]
    fn every_missing_or_mistyped_claim_is_listed() {
        let payload = json!({"iss": 1, "exp": "1700000300", "iat": 1.7e9, "aud": "", "requesting_device": []});
        let f = run(&payload, &expected(None));
        let messages: Vec<&str> = f.violations.iter().map(|v| v.message.as_str()).collect();
        for wanted in [
            "JWT claim iss must be a string, got number 1",
            "JWT claim sub is missing",
            "JWT claim aud is empty",
            "JWT claim exp must be an integer number of seconds since 1970 (UNIX time), got string \"1700000300\"",
            "JWT claim iat must be an integer number of seconds since 1970 (UNIX time), got number 1700000000.0",
            "JWT claim requesting_device must be a FHIR resource (a JSON object), got array []",
            "JWT claim requesting_practitioner is missing",
        ] {
            assert!(messages.contains(&wanted), "{wanted} not in {messages:#?}");
        }
    }

    #[test]
    fn exp_must_be_iat_plus_300() {
        let f = run(&with(json!({"exp": 1_700_000_600})), &expected(None));
        assert_eq!(
            f.violations[0].message,
            "JWT claim exp must be iat + 300 (iat 1700000000, exp 1700000600)"
        );
    }

    #[test]
    fn expiry_has_the_clock_skew_as_leeway_and_a_future_iat_passes() {
        let mut e = expected(None);
        e.now = 1_700_000_300 + 29;
        assert!(run(&good_payload(), &e).passed());
        e.now = 1_700_000_300 + 30;
        let f = run(&good_payload(), &e);
        assert_eq!(rules(&f), [Rule::Expired]);
        assert!(
            f.violations[0]
                .message
                .contains("expired 30 s ago (now 1700000330, allowed clock skew 30 s)"),
            "{f:?}"
        );
        e.clock_skew = 0;
        e.now = 1_700_000_300;
        assert_eq!(rules(&run(&good_payload(), &e)), [Rule::Expired]);
        e.now = 1_700_000_000 - 200;
        assert!(run(&good_payload(), &e).passed());
    }

    #[test]
    fn huge_times_do_not_overflow() {
        let f = run(
            &with(json!({"iat": i64::MAX, "exp": i64::MIN})),
            &expected(None),
        );
        assert_eq!(rules(&f), [Rule::Exp, Rule::Expired]);
    }

    #[test]
    fn iss_must_be_a_url() {
        let f = run(&with(json!({"iss": "consumer"})), &expected(None));
        assert_eq!(rules(&f), [Rule::Iss]);
    }

    #[test]
    fn a_remembered_iss_vouches_only_for_itself() {
        let e = expected(None);
        for _ in 0..2 {
            assert!(run(&with(json!({"iss": "https://consumer.example/"})), &e).passed());
            for bad in ["consumer.example/", "ftp://consumer.example/", "https://"] {
                let f = run(&with(json!({ "iss": bad })), &e);
                assert_eq!(rules(&f), [Rule::Iss], "{bad}");
            }
        }
        for n in 0..3 * URLS_KEPT {
            assert!(is_web_url(&format!("https://consumer{n}.example/")));
        }
        assert!(URLS.with_borrow(|urls| urls.len()) <= URLS_KEPT);
    }

    #[test]
    fn aud_must_be_the_service_root_exactly() {
        let f = run(&with(json!({"aud": format!("{ROOT}/")})), &expected(None));
        assert_eq!(rules(&f), [Rule::Aud]);
        assert!(f.violations[0].message.contains(ROOT));
        let mut e = expected(None);
        e.aud = None;
        assert!(run(&with(json!({"aud": "https://elsewhere/"})), &e).passed());
    }

    #[test]
    fn sub_must_be_the_practitioner_id() {
        let f = run(&with(json!({"sub": "1"})), &expected(None));
        assert_eq!(f.violations[0].message, "JWT claim sub must equal requesting_practitioner.id (sub `1`, requesting_practitioner.id `10019`)");
    }

    #[test]
    fn scope_must_be_the_interactions_and_confidentiality_only_where_allowed() {
        let c = catalogue();
        let metadata = c.iter().find(|i| i.path.as_str() == "/metadata").unwrap();
        let structured = c
            .iter()
            .find(|i| i.confidentiality_scope && i.reasons == [Reason::Directcare])
            .unwrap();
        let mut e = expected(None);
        e.interaction = Some(metadata);
        assert!(run(&good_payload(), &e).passed());
        let f = run(&with(json!({"requested_scope": "patient/*.read"})), &e);
        assert_eq!(rules(&f), [Rule::RequestedScope]);
        assert!(f.violations[0]
            .message
            .starts_with("JWT claim requested_scope must be `organization/*.read` for "));
        let f = run(
            &with(json!({"requested_scope": "organization/*.read conf/N"})),
            &e,
        );
        assert_eq!(rules(&f), [Rule::RequestedScope]);

        e.interaction = Some(structured);
        for scope in [
            "patient/*.read",
            "patient/*.read conf/N",
            "conf/R patient/*.read",
        ] {
            assert!(
                run(&with(json!({"requested_scope": scope})), &e).passed(),
                "{scope}"
            );
        }
        for scope in [
            "patient/*.read conf/N conf/R",
            "patient/*.read conf/X",
            "patient/*.read  conf/N",
            "patient/*.write",
        ] {
            assert_eq!(
                rules(&run(&with(json!({"requested_scope": scope})), &e)),
                [Rule::RequestedScope],
                "{scope}"
            );
        }
    }

    #[test]
    fn migration_is_a_reason_only_for_the_migrate_interactions() {
        let c = catalogue();
        let migrate = c
            .iter()
            .find(|i| i.reasons.contains(&Reason::Migration))
            .unwrap();
        let mut e = expected(None);
        let payload =
            with(json!({"reason_for_request": "migration", "requested_scope": migrate.scope}));
        let f = run(&payload, &e);
        assert_eq!(
            f.violations[0].message,
            "JWT claim reason_for_request must be directcare, got `migration`"
        );
        e.interaction = Some(migrate);
        assert!(run(&payload, &e).passed());
        let f = run(
            &with(json!({"reason_for_request": "care", "requested_scope": migrate.scope})),
            &e,
        );
        assert!(f.violations[0]
            .message
            .starts_with("JWT claim reason_for_request must be directcare or migration for "));
    }
}
