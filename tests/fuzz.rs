//! Property tests of what a hostile consumer or a careless operator controls (issue 11): the
//! target URL and what follows the service root, the SSP headers, the JWT reader's record of
//! what it found, routes.toml, and fault rules. None may panic, and each answers as its
//! contract says, with bounded text.
//!
//! The suite runs proptest's default 256 cases of each; a longer run:
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` (a few minutes on 2 cores).

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Uri};
use proptest::prelude::*;
use serde_json::Value;
use ssp_sim::config::elements::Elements;
use ssp_sim::config::errors::ErrorCatalog;
use ssp_sim::config::interactions::JwtRules;
use ssp_sim::config::interactions::{Interactions, EMBEDDED};
use ssp_sim::config::rejection::{ids, Placeholder};
use ssp_sim::config::routes::{Asid, Registry};
use ssp_sim::control::faults::FaultSpec;
use ssp_sim::provider::findings::Findings;
use ssp_sim::provider::jwt::{self, encode_unsigned, unsigned_header, Expected};
use ssp_sim::spine;
use ssp_sim::wire::headers::SspValues;

const ROUTES: &str = include_str!("../routes.toml");
const ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";
const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";

/// The catalogues and the shipped routes, loaded once for every case.
struct Data {
    interactions: Arc<Interactions>,
    catalog: ErrorCatalog,
    registry: Registry,
}

/// The shipped STU3 element tables (parsed once for the process).
fn stu3() -> &'static Elements {
    Elements::embedded().expect("the shipped tables")
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let interactions = Arc::new(Interactions::parse("interactions.toml", EMBEDDED).unwrap());
        let catalog = ErrorCatalog::embedded().unwrap();
        let registry = Registry::parse("routes.toml", ROUTES, &interactions, &catalog).unwrap();
        Data {
            interactions,
            catalog,
            registry,
        }
    })
}

/// Text made of what URLs are made of, dots, slashes and escapes most of all.
fn url_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E".to_owned()),
            Just("%2f".to_owned()),
            Just("%5c".to_owned()),
            Just("%5C".to_owned()),
            Just("?".to_owned()),
            Just("https://".to_owned()),
            Just("http:/".to_owned()),
            "[A-Za-z0-9_~:@!$&'()*+,;=-]{1,8}",
            "%[0-9a-fA-F]{2}",
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

/// Whether a FHIR request below the service root climbs out of it: a dot segment or a
/// backslash, once the path (not the query) is percent-decoded.
fn climbs_out(rest: &str) -> bool {
    let path = rest.split('?').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.contains('\\') || decoded.split('/').any(|s| s == "." || s == "..")
}

proptest! {
    /// Check 3 takes only an absolute http(s) URL with a host, and says so in bounded words.
    #[test]
    fn the_target_parser_takes_absolute_urls_only(text in url_text(40), pad in 0usize..3000) {
        let path = format!("/{text}{}", "a".repeat(pad));
        let Ok(uri) = path.parse::<Uri>() else { return Ok(()) };
        match spine::target::parse(&uri) {
            Ok(target) => {
                let rest = target.as_str().strip_prefix("https://")
                    .or_else(|| target.as_str().strip_prefix("http://"));
                prop_assert!(rest.is_some_and(|r| !r.is_empty() && !r.starts_with(['/', '?'])), "{}", target.as_str());
            }
            Err(rejection) => {
                prop_assert_eq!(&rejection.error, ids::BAD_REQUEST);
                let diagnostics = rejection.value(Placeholder::Diagnostics).unwrap_or("");
                prop_assert!(diagnostics.chars().count() < 400, "{} chars", diagnostics.len());
            }
        }
    }

    /// Check 8 passes a FHIR request below the service root only when it cannot climb out.
    #[test]
    fn nothing_below_the_service_root_climbs_out(rest in url_text(12)) {
        let Ok(uri) = format!("/{ROOT}/{rest}").parse::<Uri>() else { return Ok(()) };
        let target = spine::target::parse(&uri).unwrap();
        let d = data();
        let key = d.interactions.get(METADATA).unwrap().key;
        let endpoint = d.registry
            .provider(&Asid::parse("918999198738").unwrap())
            .and_then(|p| p.endpoint_for(key))
            .unwrap();
        match spine::endpoint::check(&target, endpoint) {
            Ok(fhir) => prop_assert!(!climbs_out(fhir), "{fhir} passed"),
            Err(rejection) => {
                prop_assert_eq!(&rejection.error, ids::BAD_REQUEST);
                prop_assert!(climbs_out(&format!("/{rest}")), "/{rest} refused");
            }
        }
    }

    /// Check 4 never panics, accepts only well-formed headers, and its diagnostics stay
    /// bounded however long the values.
    #[test]
    fn the_header_checks_hold_for_any_values(
        values in proptest::collection::vec(
            proptest::option::of(prop_oneof![
                "[ -~]{0,40}",
                "[0-9]{1,14}",
                Just("5a7a1f1e-2b8a-4f4c-9a0e-3c2f1d0b9e71".to_owned()),
                Just(METADATA.to_owned()),
                "[ -~]{2000,3000}",
            ]),
            4,
        ),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in ["ssp-traceid", "ssp-from", "ssp-to", "ssp-interactionid"].iter().zip(&values) {
            if let Some(value) = value.as_ref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(*name, value);
            }
        }
        let sent = SspValues::of(&headers);
        let declared = spine::headers::declared(&sent, &data().interactions).map(|i| i.key);
        match spine::headers::parse(&sent, declared) {
            Ok(ssp) => {
                let trace_id = headers["ssp-traceid"].to_str().unwrap().trim();
                prop_assert!(uuid::Uuid::try_parse(trace_id).is_ok());
                prop_assert!(ssp.from.as_str().bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(ssp.to.as_str().bytes().all(|b| b.is_ascii_digit()));
            }
            Err(rejection) => {
                // 400 for a missing or malformed header; the SSP's 415 when only the
                // interaction ID is unknown.
                let only_interaction = declared.is_none()
                    && spine::headers::parse(&sent, Some(data().interactions.get(METADATA).unwrap().key)).is_ok();
                let expected = if only_interaction { ids::UNSUPPORTED_MEDIA_TYPE } else { ids::BAD_REQUEST };
                prop_assert_eq!(&rejection.error, expected);
                let diagnostics = rejection.value(Placeholder::Diagnostics).unwrap_or("");
                prop_assert!(diagnostics.chars().count() < 2000, "{} chars", diagnostics.len());
            }
        }
    }

    /// What the JWT reader leaves for the logs and the journal names rules and claims, never
    /// a claim's value, whatever the token holds.
    #[test]
    fn the_jwt_readers_summary_never_carries_a_value(payload in secret_json(), now in 0i64..4_000_000_000) {
        let token = encode_unsigned(&unsigned_header(), &payload);
        let elements = stu3();
        let expected = Expected { rules: JwtRules::Gpconnect1, aud: Some(ROOT), interaction: None, now, clock_skew: 30, key: None, elements: Some(elements) };
        let mut findings = Findings::default();
        jwt::check_token(&token, &expected, &mut findings);
        let summary = findings.summary();
        prop_assert!(!summary.contains("SECRET"), "{summary}");
        for item in summary.split("; ").filter(|s| !s.is_empty()) {
            prop_assert!(
                item.bytes().all(|b| b.is_ascii_lowercase() || b"_.[]() 0123456789".contains(&b)),
                "{item}"
            );
        }
    }

    /// routes.toml with a line deleted, doubled, replaced or cut is loaded or refused with
    /// problems on lines of the file, never a panic.
    #[test]
    fn routes_toml_mutations_are_loaded_or_refused_by_line(
        at in 0usize..200,
        how in 0u8..4,
        junk in "[ -~]{0,30}",
    ) {
        let lines: Vec<&str> = ROUTES.lines().collect();
        let at = at % lines.len();
        let mut mutated: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        match how {
            0 => { mutated.remove(at); }
            1 => mutated.insert(at, lines[at].to_owned()),
            2 => mutated[at] = junk,
            _ => { let cut = mutated[at].len() / 2; mutated[at].truncate(cut); }
        }
        let source = mutated.join("\n");
        let d = data();
        if let Err(e) = Registry::parse("routes.toml", &source, &d.interactions, &d.catalog) {
            prop_assert!(!e.problems.is_empty());
            for problem in &e.problems {
                prop_assert!(problem.line.is_none_or(|l| l >= 1 && l <= mutated.len() + 1), "{problem:?}");
                prop_assert!(!problem.message.is_empty());
            }
        }
    }

    /// Any JSON posted as a fault is a rule or a list of problems naming fields, never a
    /// panic; a path regex of any text compiles within its limits or is refused.
    #[test]
    fn fault_rules_are_rules_or_named_problems(spec in fault_json()) {
        let d = data();
        let rule = FaultSpec::from_json(spec.to_string().as_bytes())
            .map_err(|e| vec![e])
            .and_then(|s| s.validate(&d.interactions, &d.catalog));
        if let Err(problems) = rule {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(!p.message.is_empty());
            }
        }
    }
}

/// JSON whose every string is a secret, under the claim names, so the rules see odd values
/// that must not be repeated.
fn secret_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "SECRET[a-z\n\t]{0,6}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("iss".to_owned()),
        Just("sub".to_owned()),
        Just("aud".to_owned()),
        Just("exp".to_owned()),
        Just("iat".to_owned()),
        Just("reason_for_request".to_owned()),
        Just("requested_scope".to_owned()),
        Just("requesting_device".to_owned()),
        Just("requesting_organization".to_owned()),
        Just("requesting_practitioner".to_owned()),
        Just("resourceType".to_owned()),
        Just("identifier".to_owned()),
        Just("name".to_owned()),
        Just("system".to_owned()),
        Just("value".to_owned()),
    ];
    let tree = leaf.prop_recursive(3, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    tree.prop_map(|v| match v {
        Value::Object(_) => v,
        other => serde_json::json!({ "sub": other }),
    })
}

/// A fault as JSON: the known fields with values of any type, and an unknown one now and then.
fn fault_json() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,24}".prop_map(Value::from),
        Just(Value::from("200000000359")),
        Just(Value::from("foundations")),
        Just(Value::from("patient-not-found")),
        Just(Value::from("9690937278")),
        Just(Value::from("\\w{20}[a-z]{500}")),
    ];
    let field = |names: &'static [&'static str]| {
        proptest::collection::btree_map(proptest::sample::select(names), value.clone(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    };
    (
        field(&[
            "from_asid",
            "to_asid",
            "interaction",
            "path",
            "nhs_number",
            "colour",
        ]),
        field(&["error", "diagnostics", "delay_ms", "drop", "status", "body"]),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(matcher, respond, times)| {
            let mut spec = serde_json::json!({ "match": matcher, "respond": respond });
            if let Some(times) = times {
                spec["times"] = times.into();
            }
            spec
        })
}
