//! Access Record HTML (GP Connect 0.7, FHIR DSTU2) through the proxy: its interaction IDs are
//! brokered to an HTTP backend, and check 10 judges their tokens by the 0.7 rules, refusing
//! with the 0.7 error system.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use serde_json::{json, Value};
use ssp_sim::config::jwt::JwtMode;
use ssp_sim::config::settings::Overrides;
use ssp_sim::provider::jwt::{encode_unsigned, unsigned_header};
use support::{test_consumer, Backend, Call, Sim};

const ROOT_07: &str = "https://provider.example.nhs.uk/A20047/DSTU2/1/gpconnect";
const GET_CARE_RECORD: &str = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
const METADATA_07: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata";

fn routes(backend: &Backend) -> String {
    test_consumer()
        .provider("Test surgery", "A20047", support::PROVIDER, "A20047-821870")
        .endpoint(ROOT_07, &backend.url(), &["html"])
        .build()
}

fn demo_routes() -> String {
    test_consumer()
        .provider("Test surgery", "A20047", support::PROVIDER, "A20047-821870")
        .with("[provider.demo]\ngpconnect = true")
        .endpoint(ROOT_07, "builtin:demo", &["html"])
        .build()
}

async fn enforcing(backend: &Backend) -> Sim {
    let overrides = Overrides {
        jwt_mode: Some(JwtMode::Enforce),
        ..Overrides::default()
    };
    Sim::start_with(&routes(backend), overrides).await
}

/// The 0.7 audit page's payload example, issued now.
fn payload_07() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": "http://consumersupplier.thirdparty.nhs.uk/",
        "sub": "10019",
        "aud": "https://authorize.fhir.nhs.net/token",
        "exp": now + 300,
        "iat": now,
        "reason_for_request": "directcare",
        "requested_scope": "patient/*.read",
        "requested_record": {
            "resourceType": "Patient",
            "identifier": [{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9658218873"}]
        },
        "requesting_device": {
            "resourceType": "Device",
            "id": "1",
            "identifier": [{"system": "http://consumersupplier.com/Id/device-identifier", "value": "CONS-APP-4"}],
            "model": "Consumer product name",
            "version": "5.3.0"
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "id": "1",
            "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A1001"}],
            "name": "Test Hospital"
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": "10019",
            "identifier": [
                {"system": "http://fhir.nhs.net/sds-user-id", "value": "111222333444"},
                {"system": "http://consumersupplier.com/Id/user-guid", "value": "54b9d987"}
            ],
            "name": {"family": ["Jones"], "given": ["Claire"], "prefix": ["Dr"]},
            "practitionerRole": [{"role": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1", "code": "R8000"}]}}]
        }
    })
}

/// The 0.7 use case's request body: the summary section for one NHS number.
const CARE_RECORD_BODY: &str = r#"{"resourceType":"Parameters","parameter":[{"name":"patientNHSNumber","valueIdentifier":{"system":"http://fhir.nhs.net/Id/nhs-number","value":"9658218873"}},{"name":"recordSection","valueCodeableConcept":{"coding":[{"system":"http://fhir.nhs.net/ValueSet/gpconnect-record-section-1","code":"SUM"}]}}]}"#;

fn care_record(token: &str) -> Call {
    Call::new(
        Method::POST,
        format!("{ROOT_07}/Patient/$gpc.getcarerecord"),
        GET_CARE_RECORD,
    )
    .header("Authorization", &format!("Bearer {token}"))
    .body("application/json+fhir", CARE_RECORD_BODY)
}

#[tokio::test]
async fn access_record_html_reaches_an_http_backend_intact() {
    let backend = Backend::start().await;
    let sim = enforcing(&backend).await;
    let token = encode_unsigned(&unsigned_header(), &payload_07());
    let reply = sim.client().send(care_record(&token)).await;
    reply.assert_status(StatusCode::OK);
    assert!(reply.headers.get("ssp-sim-warnings").is_none());
    let got = &backend.requests()[0];
    assert_eq!(got.method, Method::POST);
    assert_eq!(got.uri, "/Patient/$gpc.getcarerecord");
    assert_eq!(got.headers["ssp-interactionid"], GET_CARE_RECORD);
    assert_eq!(
        got.headers["authorization"],
        format!("Bearer {token}").as_str()
    );
    assert_eq!(got.body, CARE_RECORD_BODY.as_bytes());

    let mut payload = payload_07();
    payload["requested_scope"] = "organization/*.read".into();
    payload["requested_record"] = json!({"resourceType": "Organization", "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A20047"}]});
    let token = encode_unsigned(&unsigned_header(), &payload);
    let call = Call::new(Method::GET, format!("{ROOT_07}/metadata"), METADATA_07)
        .header("Authorization", &format!("Bearer {token}"));
    sim.client().send(call).await.assert_status(StatusCode::OK);
    assert_eq!(backend.requests().len(), 2);
    sim.stop().await;
}

#[tokio::test]
async fn a_1x_token_on_access_record_html_is_refused_with_the_0_7_error_system() {
    let backend = Backend::start().await;
    let sim = enforcing(&backend).await;
    let mut payload = payload_07();
    let object = payload.as_object_mut().unwrap();
    object.remove("requested_record");
    object.insert("aud".into(), ROOT_07.into());
    object["requesting_practitioner"]["name"] = json!([{"family": "Jones", "given": ["Claire"]}]);
    object["requesting_organization"]["identifier"][0]["system"] =
        "https://fhir.nhs.uk/Id/ods-organization-code".into();
    let token = encode_unsigned(&unsigned_header(), &payload);
    let reply = sim.client().send(care_record(&token)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let outcome = reply.json();
    assert_eq!(
        outcome["meta"]["profile"][0],
        "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1"
    );
    let coding = &outcome["issue"][0]["details"]["coding"][0];
    assert_eq!(
        coding["system"],
        "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1"
    );
    assert_eq!(coding["code"], "BAD_REQUEST");
    let d = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    for wanted in [
        "JWT claim requested_record is missing",
        "JWT claim aud must be `https://authorize.fhir.nhs.net/token` (GP Connect 0.7 fixes it to the token URL)",
        "JWT claim requesting_practitioner.name must be one HumanName (FHIR DSTU2); a list is the STU3 (GP Connect 1.x) form",
        "JWT claim requesting_organization.identifier must hold the organisation's ODS code with system http://fhir.nhs.net/Id/ods-organization-code (https://fhir.nhs.uk/Id/ods-organization-code is the GP Connect 1.x system)",
    ] {
        assert!(d.contains(wanted), "{wanted}\nnot in\n{d}");
    }
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    assert!(backend.requests().is_empty());

    // Only a resource wrong: the 0.7 INVALID_RESOURCE.
    let mut payload = payload_07();
    payload["requested_record"]["identifier"][0]["system"] =
        "https://fhir.nhs.uk/Id/nhs-number".into();
    let token = encode_unsigned(&unsigned_header(), &payload);
    let reply = sim.client().send(care_record(&token)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let coding = &reply.json()["issue"][0]["details"]["coding"][0];
    assert_eq!(coding["code"], "INVALID_RESOURCE");
    assert_eq!(
        coding["system"],
        "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1"
    );
    assert!(reply.diagnostics().contains("requested_record.identifier must hold the patient's NHS number with system http://fhir.nhs.net/Id/nhs-number"), "{}", reply.diagnostics());
    sim.stop().await;
}

/// The request body for `section` of the patient with `nhs_number`.
fn care_record_body(nhs_number: &str, section: &str) -> String {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "patientNHSNumber", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": nhs_number}},
        {"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1", "code": section}]}}
    ]})
    .to_string()
}

fn demo_call(body: String) -> Call {
    let token = encode_unsigned(&unsigned_header(), &payload_07());
    Call::new(
        Method::POST,
        format!("{ROOT_07}/Patient/$gpc.getcarerecord"),
        GET_CARE_RECORD,
    )
    .header("Authorization", &format!("Bearer {token}"))
    .body("application/json+fhir", body)
}

#[tokio::test]
async fn the_demo_answers_each_care_record_section_as_html_in_a_dstu2_bundle() {
    let overrides = Overrides {
        jwt_mode: Some(JwtMode::Enforce),
        ..Overrides::default()
    };
    let sim = Sim::start_with(&demo_routes(), overrides).await;
    for (section, title, shows) in [
        (
            "SUM",
            "Summary",
            &[
                "Hypertensive disorder",
                "Amlodipine 5mg tablets",
                "Allergy to penicillin",
            ][..],
        ),
        ("PRB", "Problems", &["Hypertensive disorder", "Asthma"]),
        (
            "MED",
            "Medications",
            &["Amlodipine 5mg tablets", "One tablet daily"],
        ),
        (
            "ALL",
            "Allergies and Sensitivities",
            &["Allergy to penicillin", "Allergy to peanut"],
        ),
    ] {
        let reply = sim
            .client()
            .send(demo_call(care_record_body("9476719931", section)))
            .await;
        reply.assert_status(StatusCode::OK);
        let bundle = reply.json();
        assert_eq!(bundle["type"], "searchset");
        let composition = &bundle["entry"][0]["resource"];
        assert_eq!(composition["resourceType"], "Composition");
        let s = &composition["section"][0];
        assert_eq!(s["title"], title);
        assert_eq!(s["code"]["coding"][0]["code"], section);
        let div = s["text"]["div"].as_str().unwrap();
        assert!(div.starts_with(&format!("<div><h1>{title}</h1>")), "{div}");
        for wanted in shows {
            assert!(div.contains(wanted), "{section}: {wanted} not in {div}");
        }
        let patient = &bundle["entry"][1]["resource"];
        assert_eq!(
            patient["identifier"][0]["system"],
            "http://fhir.nhs.net/Id/nhs-number"
        );
        assert_eq!(patient["identifier"][0]["value"], "9476719931");
        assert!(
            patient["name"][0]["family"].is_array(),
            "DSTU2 HumanName: {patient}"
        );
        assert_eq!(
            bundle["entry"][2]["resource"]["identifier"][0]["system"],
            "http://fhir.nhs.net/Id/ods-organization-code"
        );
    }

    let dstu2 = "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1";
    for (body, status, code) in [
        (
            care_record_body("9690937294", "SUM"),
            StatusCode::NOT_FOUND,
            "PATIENT_NOT_FOUND",
        ),
        (
            care_record_body("9476719932", "SUM"),
            StatusCode::BAD_REQUEST,
            "INVALID_NHS_NUMBER",
        ),
        (
            care_record_body("9476719931", "XYZ"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PARAMETER",
        ),
        (
            care_record_body("9476719931", "SUM").replace(
                "http://fhir.nhs.net/Id/nhs-number",
                "https://fhir.nhs.uk/Id/nhs-number",
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_IDENTIFIER_SYSTEM",
        ),
    ] {
        let reply = sim.client().send(demo_call(body)).await;
        assert_eq!(reply.status, status, "{code}: {}", reply.display());
        let coding = &reply.json()["issue"][0]["details"]["coding"][0];
        assert_eq!(
            (coding["system"].as_str(), coding["code"].as_str()),
            (Some(dstu2), Some(code))
        );
    }
    sim.stop().await;
}
