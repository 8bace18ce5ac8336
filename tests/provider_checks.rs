//! Check 10 through the proxy: the JWT rules, the interaction's fit with the request, the
//! three `--jwt-mode`s, per-endpoint settings, XML error bodies, and `ssp-sim jwt`.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{json, Value};
use ssp_sim::config::elements::Elements;
use ssp_sim::config::interactions::JwtRules;
use ssp_sim::config::jwt::JwtMode;
use ssp_sim::config::settings::Overrides;
use ssp_sim::provider::findings::{Findings, Rule};
use ssp_sim::provider::jwt::{self, encode_unsigned, unsigned_header, Expected};
use support::{Backend, Call, Sim, READ_PATIENT, ROOT};

/// The shipped STU3 element tables (parsed once for the process).
fn stu3() -> &'static Elements {
    Elements::embedded().expect("the shipped tables")
}

/// Runs `ssp-sim` with `args`; returns the exit code and standard output.
fn ssp_sim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ssp-sim"))
        .args(args)
        .output()
        .expect("ssp-sim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A token `ssp-sim jwt` makes for the interaction and the test provider's endpoint.
fn token_for(interaction: &str) -> String {
    let (code, out) = ssp_sim(&["jwt", "--interaction", interaction, "--aud", ROOT]);
    assert_eq!(code, 0, "{out}");
    out.trim().to_owned()
}

fn payload_of(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The valid metadata token with some claims replaced.
fn metadata_token_with(changes: Value) -> String {
    let mut payload = payload_of(&token_for(support::METADATA));
    for (name, value) in changes.as_object().expect("an object") {
        payload[name] = value.clone();
    }
    encode_unsigned(&unsigned_header(), &payload)
}

fn bearer(call: Call, token: &str) -> Call {
    call.header("Authorization", &format!("Bearer {token}"))
}

async fn sim_in(mode: JwtMode, routes: &str) -> Sim {
    let overrides = Overrides {
        jwt_mode: Some(mode),
        ..Overrides::default()
    };
    Sim::start_with(routes, overrides).await
}

async fn sim(mode: JwtMode) -> (Sim, Backend) {
    let backend = Backend::start().await;
    (
        sim_in(mode, &support::routes(&backend.url())).await,
        backend,
    )
}

#[tokio::test]
async fn a_token_from_ssp_sim_jwt_passes_and_reaches_the_backend_unchanged() {
    let (sim, backend) = sim(JwtMode::Enforce).await;
    let token = token_for(support::METADATA);
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("ssp-sim-warnings").is_none());
    let got = &backend.requests()[0];
    assert_eq!(
        got.headers["authorization"],
        format!("Bearer {token}").as_str()
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_missing_authorization_header_is_a_bad_request_naming_it() {
    let (sim, backend) = sim(JwtMode::Enforce).await;
    let reply = sim.client().send(Call::metadata()).await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        reply.diagnostics(),
        "Authorization header is missing; send Authorization: Bearer <JWT>"
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_token_without_its_trailing_dot_is_a_bad_request_saying_so() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let token = token_for(support::METADATA);
    let reply = sim
        .client()
        .send(bearer(Call::metadata(), token.trim_end_matches('.')))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        reply.diagnostics().contains("so add the trailing dot"),
        "{}",
        reply.diagnostics()
    );
    sim.stop().await;
}

#[tokio::test]
async fn every_wrong_claim_value_is_listed_in_one_bad_request() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let token = metadata_token_with(json!({
        "exp": 1_700_000_600,
        "iat": 1_700_000_000,
        "aud": "https://provider.example.nhs.uk:443/A20047/STU3/1/gpconnect",
        "requested_scope": "patient/*.read",
        "reason_for_request": "secondaryuses",
        "sub": "someone-else"
    }));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let d = reply.diagnostics();
    for wanted in [
        "JWT claim exp must be iat + 300 (iat 1700000000, exp 1700000600)",
        "JWT claim exp 1700000600 has passed",
        "JWT claim reason_for_request must be directcare",
        "JWT claim requested_scope must be `organization/*.read` for urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
        &format!("JWT claim aud must be the provider endpoint's service root `{ROOT}`"),
        "JWT claim sub must equal requesting_practitioner.id (sub `someone-else`",
    ] {
        assert!(d.contains(wanted), "{wanted}\nnot in\n{d}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_claim_resource_failing_validation_is_invalid_resource() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let token = metadata_token_with(json!({
        "requesting_organization": {"resourceType": "Organization", "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}]}
    }));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOURCE");
    assert!(
        reply
            .diagnostics()
            .contains("JWT claim requesting_organization.name is missing"),
        "{}",
        reply.diagnostics()
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_resource_type_in_a_claim_is_invalid_resource_as_the_suite_expects() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let device = payload_of(&token_for(support::METADATA))["requesting_device"].clone();
    let token = metadata_token_with(json!({"requesting_organization": device}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOURCE");
    assert!(reply
        .diagnostics()
        .contains("must be a FHIR Organization resource, got resourceType string \"Device\""));
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    let mut device = device;
    device["resourceType"] = "InvalidResourceType".into();
    let token = metadata_token_with(json!({ "requesting_device": device }));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOURCE");
    sim.stop().await;
}

#[tokio::test]
async fn an_element_a_claims_stu3_type_does_not_have_is_invalid_resource_naming_it() {
    let (sim, backend) = sim(JwtMode::Enforce).await;
    let mut device = payload_of(&token_for(support::METADATA))["requesting_device"].clone();
    // What the assurance suite's "Requesting Device - invalid" scenario adds.
    device["invalidField"] = "Assurance Testing".into();
    let token = metadata_token_with(json!({ "requesting_device": device }));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOURCE");
    assert_eq!(
        reply.diagnostics(),
        "JWT claim requesting_device has the element `invalidField`, which FHIR STU3 Device does not have; remove it or correct its spelling"
    );
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

#[tokio::test]
async fn a_token_issued_200_s_in_the_future_passes_and_expiry_has_the_clock_skew_as_leeway() {
    let (sim, backend) = sim(JwtMode::Enforce).await;
    let iat = unix_now() + 200;
    let token = metadata_token_with(json!({"iat": iat, "exp": iat + 300}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(backend.requests().len(), 1);

    // Expired 10 s ago: within the default 30 s of skew. Expired 60 s ago: refused.
    let exp = unix_now() - 10;
    let token = metadata_token_with(json!({"iat": exp - 300, "exp": exp}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_status(StatusCode::OK);
    let exp = unix_now() - 60;
    let token = metadata_token_with(json!({"iat": exp - 300, "exp": exp}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        reply
            .diagnostics()
            .contains(&format!("JWT claim exp {exp} has passed")),
        "{}",
        reply.diagnostics()
    );
    assert!(reply.diagnostics().contains("allowed clock skew 30 s"));
    sim.stop().await;
}

#[tokio::test]
async fn jwt_refusals_carry_the_rfc_6750_challenge_and_other_refusals_do_not() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    // No credentials: RFC 6750 3.1 says no error code.
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.header("www-authenticate"), "Bearer");
    let reply = sim
        .client()
        .send(Call::metadata().header("Authorization", "Bearer "))
        .await;
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_request\""
    );
    let token = token_for(support::METADATA);
    let reply = sim
        .client()
        .send(bearer(Call::metadata(), token.trim_end_matches('.')))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    // A good token on a request the interaction does not fit: not the token's fault.
    let call = Call::new(Method::GET, format!("{ROOT}/metadata"), READ_PATIENT);
    let reply = sim
        .client()
        .send(bearer(call, &token_for(READ_PATIENT)))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(reply.headers.get("www-authenticate").is_none());
    sim.stop().await;
}

#[tokio::test]
async fn an_interaction_id_that_does_not_fit_the_request_is_a_bad_request_naming_the_lookalike() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let call = Call::new(Method::GET, format!("{ROOT}/metadata"), READ_PATIENT);
    let reply = sim
        .client()
        .send(bearer(call, &token_for(READ_PATIENT)))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let d = reply.diagnostics();
    assert!(d.starts_with(&format!("Ssp-InteractionID {READ_PATIENT} (Read a patient) is GET /Patient/{{id}}, but the request is GET /metadata; it looks like ")), "{d}");
    assert!(d.contains("urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1 (Get the FHIR capability statement)"), "{d}");
    sim.stop().await;
}

#[tokio::test]
async fn report_mode_forwards_and_lists_every_broken_rule_in_ssp_sim_warnings() {
    let (sim, backend) = sim(JwtMode::Report).await;
    let token = metadata_token_with(json!({"exp": 1, "iat": 1}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let warnings: Vec<&str> = reply
        .headers
        .get_all("ssp-sim-warnings")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("claim.exp: JWT claim exp must be iat + 300 (iat 1, exp 1)"));
    assert!(warnings[1].starts_with("claim.expired: "));
    assert_eq!(backend.requests().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn report_mode_warnings_also_reach_a_consumer_whose_request_then_fails() {
    let closed = support::closed_port().await;
    let sim = sim_in(
        JwtMode::Report,
        &support::routes(&format!("http://{closed}")),
    )
    .await;
    let token = metadata_token_with(json!({"exp": 1, "iat": 1}));
    let reply = sim.client().send(bearer(Call::metadata(), &token)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(
        reply.header("ssp-sim-warnings").starts_with("claim.exp: "),
        "{:?}",
        reply.headers
    );
    sim.stop().await;
}

#[tokio::test]
async fn off_mode_skips_check_10() {
    let (sim, backend) = sim(JwtMode::Off).await;
    let call = Call::new(Method::GET, format!("{ROOT}/metadata"), READ_PATIENT);
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("ssp-sim-warnings").is_none());
    assert_eq!(backend.requests().len(), 1);
    sim.stop().await;
}

/// The test routes with `extra` added to the foundations/appointments endpoint.
fn routes_with(backend: &Backend, extra: &str) -> String {
    let anchor = "interactions = [\"foundations\", \"appointments\"]";
    support::routes(&backend.url()).replacen(anchor, &format!("{anchor}\n  {extra}"), 1)
}

#[tokio::test]
async fn an_endpoint_jwt_mode_in_routes_overrides_the_flag() {
    let backend = Backend::start().await;
    let sim = sim_in(
        JwtMode::Enforce,
        &routes_with(&backend, "jwt_mode = \"report\""),
    )
    .await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply
        .header("ssp-sim-warnings")
        .starts_with("authorization: Authorization header is missing"));
    sim.stop().await;
}

#[tokio::test]
async fn an_endpoint_with_a_jwt_key_verifies_signed_tokens_and_refuses_others() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key_file = dir.path().join("jwt-key.pem");
    std::fs::write(&key_file, pair.public_key_pem()).unwrap();
    let routes = routes_with(
        &backend,
        &format!("jwt_key = {:?}", key_file.display().to_string()),
    );
    let sim = sim_in(JwtMode::Enforce, &routes).await;

    let payload = payload_of(&token_for(support::METADATA));
    let sign = |pem: &str| {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &payload,
            &key,
        )
        .unwrap()
    };
    let reply = sim
        .client()
        .send(bearer(Call::metadata(), &sign(&pair.serialize_pem())))
        .await;
    reply.assert_status(StatusCode::OK);

    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let reply = sim
        .client()
        .send(bearer(Call::metadata(), &sign(&other.serialize_pem())))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        reply.diagnostics(),
        "JWT signature (ES256) does not verify with the endpoint's jwt_key"
    );

    let unsigned = encode_unsigned(&unsigned_header(), &payload);
    let reply = sim.client().send(bearer(Call::metadata(), &unsigned)).await;
    assert!(
        reply.diagnostics().contains("sign the token"),
        "{}",
        reply.diagnostics()
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_signed_token_on_an_endpoint_without_a_key_is_refused_with_the_reason() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let token = encode_unsigned(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &payload_of(&token_for(support::METADATA)),
    );
    let reply = sim
        .client()
        .send(bearer(Call::metadata(), &format!("{}c2ln", token)))
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        reply
            .diagnostics()
            .contains("signed (RS256) while the endpoint has no jwt_key"),
        "{}",
        reply.diagnostics()
    );
    sim.stop().await;
}

#[tokio::test]
async fn provider_errors_come_as_fhir_xml_when_xml_is_asked_for_and_ssp_errors_stay_json() {
    let (sim, _backend) = sim(JwtMode::Enforce).await;
    let reply = sim.client().send(Call::metadata().accept_xml()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let xml = reply.fhir_xml();
    assert!(
        xml.starts_with("<OperationOutcome xmlns=\"http://hl7.org/fhir\">"),
        "{xml}"
    );
    assert!(xml.contains("<code value=\"BAD_REQUEST\"/>"), "{xml}");
    assert!(xml.contains("<diagnostics value=\"Authorization header is missing; send Authorization: Bearer &lt;JWT&gt;\"/>"), "{xml}");

    let foreign = Call::metadata()
        .accept_xml()
        .header("Ssp-From", "100000000001");
    let reply = sim.client().send(foreign).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("content-type"),
        "application/fhir+json;charset=utf-8"
    );
    sim.stop().await;
}

/// The audit page's "Complete JWT" example: a GP Connect 0.x-era token.
const SPEC_COMPLETE_JWT: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwOi8vZWMyLTU0LTE5NC0xMDktMTg0LmV1LXdlc3QtMS5jb21wdXRlLmFtYXpvbmF3cy5jb20vIy9zZWFyY2giLCJzdWIiOiIxIiwiYXVkIjoiaHR0cHM6Ly9hdXRob3JpemUuZmhpci5uaHMubmV0L3Rva2VuIiwiZXhwIjoxNDgxMjUyMjc1LCJpYXQiOjE0ODA5NTIyNzUsInJlYXNvbl9mb3JfcmVxdWVzdCI6ImRpcmVjdGNhcmUiLCJyZXF1ZXN0ZWRfcmVjb3JkIjp7InJlc291cmNlVHlwZSI6IlBhdGllbnQiLCJpZGVudGlmaWVyIjpbeyJzeXN0ZW0iOiJodHRwOi8vZmhpci5uaHMubmV0L0lkL25ocy1udW1iZXIiLCJ2YWx1ZSI6IjkwMDAwMDAwMzMifV19LCJyZXF1ZXN0ZWRfc2NvcGUiOiJwYXRpZW50LyoucmVhZCIsInJlcXVlc3RpbmdfZGV2aWNlIjp7InJlc291cmNlVHlwZSI6IkRldmljZSIsImlkIjoiMSIsImlkZW50aWZpZXIiOlt7InN5c3RlbSI6IldlYiBJbnRlcmZhY2UiLCJ2YWx1ZSI6IkdQIENvbm5lY3QgRGVtb25zdHJhdG9yIn1dLCJtb2RlbCI6IkRlbW9uc3RyYXRvciIsInZlcnNpb24iOiIxLjAifSwicmVxdWVzdGluZ19vcmdhbml6YXRpb24iOnsicmVzb3VyY2VUeXBlIjoiT3JnYW5pemF0aW9uIiwiaWQiOiIxIiwiaWRlbnRpZmllciI6W3sic3lzdGVtIjoiaHR0cDovL2ZoaXIubmhzLm5ldC9JZC9vZHMtb3JnYW5pemF0aW9uLWNvZGUiLCJ2YWx1ZSI6IltPRFNDb2RlXSJ9XSwibmFtZSI6IkdQIENvbm5lY3QgRGVtb25zdHJhdG9yIn0sInJlcXVlc3RpbmdfcHJhY3RpdGlvbmVyIjp7InJlc291cmNlVHlwZSI6IlByYWN0aXRpb25lciIsImlkIjoiMSIsImlkZW50aWZpZXIiOlt7InN5c3RlbSI6Imh0dHA6Ly9maGlyLm5ocy5uZXQvc2RzLXVzZXItaWQiLCJ2YWx1ZSI6IkcxMzU3OTEzNSJ9LHsic3lzdGVtIjoibG9jYWxTeXN0ZW0iLCJ2YWx1ZSI6IjEifV0sIm5hbWUiOnsiZmFtaWx5IjpbIkRlbW9uc3RyYXRvciJdLCJnaXZlbiI6WyJHUENvbm5lY3QiXSwicHJlZml4IjpbIk1yIl19fX0.";

/// The audit page's "JWT payload full example" (GP Connect 1.x), issued at 1469436687.
fn spec_full_example() -> Value {
    json!({
        "iss": "https://consumersupplier.thirdparty.nhs.uk/",
        "sub": "10019",
        "aud": "https://providersupplier.thirdparty.nhs.uk/GP0001/STU3/1",
        "exp": 1469436987,
        "iat": 1469436687,
        "reason_for_request": "directcare",
        "requested_scope": "patient/*.read",
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": "https://consumersupplier.com/Id/device-identifier", "value": "CONS-APP-4"}],
            "model": "Consumer product name",
            "version": "5.3.0"
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A1001"}],
            "name": "Test Hospital"
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "10019",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111222333444"},
                {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "444555666777"},
                {"system": "https://consumersupplier.com/Id/user-guid", "value": "98ed4f78-814d-4266-8d5b-cde742f3093c"}
            ],
            "name": [{"family": "Jones", "given": ["Claire"], "prefix": ["Dr"]}]
        }
    })
}

const SPEC_AUD: &str = "https://providersupplier.thirdparty.nhs.uk/GP0001/STU3/1";

#[test]
fn jwt_decode_passes_the_specs_full_example_when_fresh_and_refuses_it_expired() {
    let token = encode_unsigned(&unsigned_header(), &spec_full_example());
    let args = [
        "jwt",
        "--decode",
        &token,
        "--interaction",
        "read:patient-1",
        "--aud",
        SPEC_AUD,
    ];
    let (code, out) = ssp_sim(&[&args[..], &["--at", "1469436700"]].concat());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("verdict: passes (judged at 1469436700)"),
        "{out}"
    );
    assert!(!out.contains("not checked"), "{out}");
    let (code, out) = ssp_sim(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused with 400 BAD_REQUEST"), "{out}");
    assert!(
        out.contains("  claim.expired: JWT claim exp 1469436987 has passed"),
        "{out}"
    );
    let verdict = out.split("verdict:").nth(1).unwrap_or("");
    assert_eq!(
        verdict.matches("\n  ").count(),
        1,
        "only expiry fails:\n{out}"
    );
}

#[test]
fn jwt_decode_refuses_the_specs_complete_jwt_for_its_0x_claims() {
    let (code, out) = ssp_sim(&[
        "jwt",
        "--decode",
        SPEC_COMPLETE_JWT,
        "--interaction",
        "read:patient-1",
        "--aud",
        SPEC_AUD,
        "--at",
        "1480952300",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\"requested_record\""),
        "the payload is printed:\n{out}"
    );
    for wanted in [
        "claim.exp: JWT claim exp must be iat + 300 (iat 1480952275, exp 1481252275)",
        "claim.aud: JWT claim aud must be the provider endpoint's service root",
        "requesting_organization: JWT claim requesting_organization.identifier must hold the organisation's ODS code",
        "requesting_practitioner: JWT claim requesting_practitioner.name must be a list of HumanName (FHIR STU3)",
        "requesting_practitioner: JWT claim requesting_practitioner.identifier must hold the user's SDS user ID",
    ] {
        assert!(out.contains(wanted), "{wanted}\nnot in\n{out}");
    }
}

#[test]
fn jwt_decode_reads_a_pasted_authorization_header_and_says_what_it_could_not_check() {
    let token = token_for(support::METADATA);
    let (code, out) = ssp_sim(&["jwt", "--decode", &format!("Authorization: Bearer {token}")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("not checked: claim.aud (pass --aud); claim.requested_scope"),
        "{out}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text, dotted base64url of arbitrary bytes and of arbitrary JSON never make
    /// the decoder panic, and anything that is not a GP Connect token is refused.
    #[test]
    fn the_decoder_never_panics_on_arbitrary_input(
        text in ".{0,200}",
        header in proptest::collection::vec(any::<u8>(), 0..80),
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            any_json().prop_map(|v| v.to_string().into_bytes()),
        ],
        signature in "[A-Za-z0-9_=+/-]{0,20}",
        now in any::<i64>(),
    ) {
        let expected = Expected { rules: JwtRules::Gpconnect1, aud: Some(ROOT), interaction: None, now, clock_skew: 30, key: None, elements: Some(stu3()) };
        let mut findings = Findings::default();
        jwt::check_token(&text, &expected, &mut findings);
        prop_assert!(!findings.passed());
        let token = format!("{}.{}.{signature}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&payload));
        let mut findings = Findings::default();
        jwt::check_token(&token, &expected, &mut findings);
        prop_assert!(!findings.passed());
    }
}

/// JSON of any shape, with the claim names mixed in so the claim rules see odd values.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            Just("resourceType".to_owned()),
            Just("identifier".to_owned()),
            Just("exp".to_owned()),
            Just("iat".to_owned()),
            Just("requesting_practitioner".to_owned()),
            Just("name".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn the_readme_section_lists_every_rule() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{dir}/README.md")).expect("README.md");
    for rule in Rule::ALL {
        assert!(
            text.contains(&format!("| `{}` |", rule.id())),
            "{} is not in the README",
            rule.id()
        );
    }
}
