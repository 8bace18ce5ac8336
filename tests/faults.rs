//! Faults: each kind of answer and each match field, over real sockets, added through the
//! admin API or declared in routes.toml.

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;

const SEARCH_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1";
const REGISTER_PATIENT: &str =
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient-1";
const OTHER_PROVIDER: &str = "918999198993";
const OTHER_ROOT: &str = "https://second.example.nhs.uk/B82617/STU3/1/gpconnect";
const NHS_NUMBER: &str = "9690937278";

/// A JSON body with its fresh `id` taken out, to compare two renderings of one error.
fn without_id(reply: &Reply) -> Value {
    let mut json = reply.json();
    if let Some(map) = json.as_object_mut() {
        map.remove("id");
    }
    json
}

fn patient_search(nhs_number: &str) -> Call {
    Call::new(
        Method::GET,
        format!("{ROOT}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C{nhs_number}"),
        SEARCH_PATIENT,
    )
}

fn parameters(nhs_number: &str) -> String {
    json!({
        "resourceType": "Parameters",
        "parameter": [{
            "name": "patientNHSNumber",
            "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}
        }]
    })
    .to_string()
}

#[tokio::test]
async fn error_fault_renders_exactly_like_the_real_check() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    // The real refusal: the limited consumer may not initiate a structured record request.
    let real = client
        .send(
            Call::new(
                Method::POST,
                format!("{ROOT}/structured/Patient/$gpc.getstructuredrecord"),
                STRUCTURED,
            )
            .header("Ssp-From", "200000000360")
            .header("Ssp-To", PROVIDER),
        )
        .await;
    sim.admin_client()
        .add_fault(json!({"match": {"from_asid": "200000000360"}, "respond": {"error": "sender-asid-not-authorised"}}))
        .await;
    // The same consumer asking for what it may: the fault refuses it the same way.
    let call = Call::metadata()
        .header("Ssp-From", "200000000360")
        .header("Ssp-To", OTHER_PROVIDER);
    let call = Call {
        target: format!("{OTHER_ROOT}/metadata"),
        ..call
    };
    let trace = call.trace_id().to_owned();
    let faulted = client.send(call).await;
    assert_eq!(faulted.status, StatusCode::FORBIDDEN);
    assert_eq!(faulted.header("ssp-traceid"), trace);
    for name in ["content-type", "cache-control"] {
        assert_eq!(faulted.header(name), real.header(name), "{name}");
    }
    assert_eq!(without_id(&faulted), without_id(&real));
    assert!(uuid::Uuid::parse_str(faulted.json()["id"].as_str().unwrap()).is_ok());
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn error_communicating_fault_is_indistinguishable_from_an_unreachable_backend() {
    let closed = closed_port().await;
    let unreachable = Sim::start(&routes(&format!("http://{closed}"))).await;
    let (sim, backend) = sim_with_backend().await;
    sim.admin_client()
        .add_fault(json!({"respond": {"error": "error-communicating"}}))
        .await;

    let real_call = Call::metadata();
    let real = unreachable.client().send(real_call.clone()).await;
    let fault_call = Call::metadata();
    let faulted = sim.client().send(fault_call.clone()).await;

    assert_eq!(real.status, StatusCode::BAD_GATEWAY);
    assert_eq!(faulted.status, real.status);
    assert_eq!(real.header("ssp-traceid"), real_call.trace_id());
    assert_eq!(faulted.header("ssp-traceid"), fault_call.trace_id());
    let names = |reply: &Reply| {
        let mut names: Vec<String> = reply.headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&faulted), names(&real));
    for (name, value) in &real.headers {
        if name != "date" && name != "ssp-traceid" {
            assert_eq!(faulted.headers.get(name), Some(value), "{name}");
        }
    }
    assert_eq!(faulted.body.len(), real.body.len());
    assert_eq!(without_id(&faulted), without_id(&real));
    assert!(backend.requests().is_empty());
    unreachable.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn gateway_timeout_fault_answers_the_504_where_the_backend_would_be_called() {
    let (sim, backend) = sim_with_backend().await;
    sim.admin_client()
        .add_fault(json!({"respond": {"error": "gateway-timeout"}, "times": 1}))
        .await;
    let client = sim.client();
    // At the backend stage: a request the SSP refuses is refused, and leaves the fault armed.
    let refused = client
        .send(Call::metadata().header("Ssp-From", "100000000001"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let faulted = client.send(Call::metadata()).await;
    assert_eq!(faulted.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(faulted.json()["issue"][0]["code"], "transient");
    assert_eq!(
        faulted.display(),
        format!("GATEWAY_TIMEOUT_FROM_ENDPOINT_URL_{ROOT}/metadata")
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn provider_errors_display_the_text_of_the_spec_table() {
    let (sim, _backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let client = sim.client();
    // The 1.2.7 error-handling page's table (fidelity audit section 1).
    for (error, status, code, display) in [
        (
            "no-patient-consent",
            403,
            "NO_PATIENT_CONSENT",
            "Patient has not provided consent to share data",
        ),
        (
            "no-organisation-consent",
            403,
            "NO_ORGANISATION_CONSENT",
            "Organisation has not provided consent to share data",
        ),
        (
            "not-implemented",
            501,
            "NOT_IMPLEMENTED",
            "FHIR resource or operation not implemented at server",
        ),
    ] {
        admin
            .add_fault(json!({"respond": {"error": error}, "times": 1}))
            .await;
        let reply = client.send(Call::metadata()).await;
        reply.assert_outcome(StatusCode::from_u16(status).unwrap(), code);
        assert_eq!(reply.display(), display, "{error}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn delay_fault_waits_then_forwards_for_the_given_number_of_times() {
    let (sim, backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let id = admin
        .add_fault(json!({"respond": {"delay_ms": 400}, "times": 1}))
        .await;
    assert_eq!(admin.get("/faults").await.json()[0]["left"], 1);
    let client = sim.client();
    let started = Instant::now();
    let reply = client.send(Call::metadata()).await;
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(backend.requests().len(), 1);
    // Spent: removed, and the next request is not delayed.
    assert_eq!(admin.get("/faults").await.json(), json!([]));
    assert_eq!(
        admin.delete(&format!("/faults/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let started = Instant::now();
    client.send(Call::metadata()).await;
    assert!(started.elapsed() < Duration::from_millis(400));
    sim.stop().await;
}

#[tokio::test]
async fn drop_fault_closes_the_connection_without_a_response() {
    let (sim, backend) = sim_with_backend().await;
    sim.admin_client()
        .add_fault(json!({"respond": {"drop": true}, "times": 1}))
        .await;
    let dropped = sim.client().try_send(Call::metadata()).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert!(backend.requests().is_empty());
    // Nothing else was harmed: the next request is answered.
    assert_eq!(
        sim.client().send(Call::metadata()).await.status,
        StatusCode::OK
    );
    sim.stop().await;
}

#[tokio::test]
async fn status_fault_answers_with_the_given_status_and_body() {
    let (sim, backend) = sim_with_backend().await;
    let body = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]});
    sim.admin_client()
        .add_fault(json!({"respond": {"status": 503, "body": body}}))
        .await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json(), body);
    assert_eq!(
        reply.header("content-type"),
        "application/fhir+json;charset=utf-8"
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

/// Sends `hit` and `miss`; `hit` must get the fault's 418, `miss` the backend's 200.
async fn assert_fault_matches(sim: &Sim, matcher: Value, hit: Call, miss: Call) {
    let admin = sim.admin_client();
    admin.delete("/faults").await;
    admin
        .add_fault(json!({"match": matcher, "respond": {"status": 418}}))
        .await;
    let client = sim.client();
    assert_eq!(
        client.send(hit).await.status,
        StatusCode::IM_A_TEAPOT,
        "{matcher} should fire"
    );
    let reply = client.send(miss).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{matcher} should not fire: {}",
        String::from_utf8_lossy(&reply.body)
    );
}

#[tokio::test]
async fn faults_match_on_each_field() {
    let (sim, _backend) = sim_with_backend().await;
    let other = || {
        let call = Call::metadata().header("Ssp-To", OTHER_PROVIDER);
        Call {
            target: format!("{OTHER_ROOT}/metadata"),
            ..call
        }
    };
    assert_fault_matches(
        &sim,
        json!({"from_asid": CONSUMER}),
        Call::metadata(),
        other().header("Ssp-From", "200000000360"),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"to_asid": OTHER_PROVIDER}),
        other(),
        Call::metadata(),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"interaction": READ_PATIENT}),
        Call::new(Method::GET, format!("{ROOT}/Patient/2"), READ_PATIENT),
        Call::metadata(),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"interaction": "appointments"}),
        Call::new(
            Method::GET,
            format!("{ROOT}/Appointment/1"),
            "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1",
        ),
        Call::metadata(),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"path": "^/Patient/2$"}),
        Call::new(Method::GET, format!("{ROOT}/Patient/2"), READ_PATIENT),
        Call::new(Method::GET, format!("{ROOT}/Patient/3"), READ_PATIENT),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"nhs_number": NHS_NUMBER}),
        patient_search(NHS_NUMBER),
        patient_search("9690937286"),
    )
    .await;
    assert_fault_matches(
        &sim,
        json!({"path": "^/Patient", "from_asid": CONSUMER}),
        patient_search(NHS_NUMBER),
        Call::metadata(),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn nhs_number_is_found_in_a_parameters_body_which_still_reaches_the_backend() {
    let backend = Backend::start().await;
    let sim = Sim::start(&routes(&backend.url()).replace("builtin:demo", &backend.url())).await;
    let admin = sim.admin_client();
    admin
        .add_fault(json!({"match": {"nhs_number": NHS_NUMBER}, "respond": {"error": "patient-not-found"}, "times": 1}))
        .await;
    admin
        .add_fault(json!({"match": {"nhs_number": "9690937286"}, "respond": {"delay_ms": 1}}))
        .await;
    let structured = |nhs: &str| {
        Call::new(
            Method::POST,
            format!("{ROOT}/structured/Patient/$gpc.getstructuredrecord"),
            STRUCTURED,
        )
        .body("application/fhir+json", parameters(nhs))
    };
    let refused = sim.client().send(structured(NHS_NUMBER)).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        refused.json()["issue"][0]["details"]["coding"][0]["code"],
        "PATIENT_NOT_FOUND"
    );
    assert!(backend.requests().is_empty());
    // The delay rule read the body to find its number and fired; the backend still gets all of it.
    let body = parameters("9690937286");
    let call = structured("9690937286");
    let trace = call.trace_id().to_owned();
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = backend.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body.as_bytes());
    let journal = admin
        .call(Method::GET, &format!("/journal?trace_id={trace}"), None)
        .await
        .json();
    let fault = journal[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "fault")
        .cloned()
        .unwrap_or_else(|| panic!("the delay fault did not fire: {journal}"));
    assert!(
        fault["detail"]
            .as_str()
            .unwrap()
            .contains("delayed the request 1 ms"),
        "{fault}"
    );
    // A body naming another number passes untouched.
    let other = parameters("9000000009");
    let reply = sim
        .client()
        .send(
            Call::new(
                Method::POST,
                format!("{ROOT}/Patient/$gpc.registerpatient"),
                REGISTER_PATIENT,
            )
            .body("application/fhir+json", other.clone()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(backend.requests()[1].body, other.as_bytes());
    sim.stop().await;
}

#[tokio::test]
async fn spine_error_faults_answer_ahead_of_later_checks_and_backend_faults_only_on_forwarded_requests(
) {
    let (sim, backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    admin
        .add_fault(json!({"match": {"to_asid": OTHER_PROVIDER}, "respond": {"error": "sender-asid-not-authorised"}}))
        .await;
    admin
        .add_fault(
            json!({"match": {"to_asid": PROVIDER}, "respond": {"delay_ms": 2000}, "times": 1}),
        )
        .await;
    let client = sim.client();
    // Check 8 would refuse this target, but the injected check-5 error answers first, as the
    // real check 5 would.
    let wrong_root = Call::new(Method::GET, "https://127.0.0.1/B82617/metadata", METADATA)
        .header("Ssp-To", OTHER_PROVIDER);
    assert_eq!(
        client.send(wrong_root).await.display(),
        format!("ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER}")
    );
    // A request the SSP refuses never reaches the provider, so a provider delay does not
    // touch it and keeps its use.
    let started = Instant::now();
    let refused = client
        .send(Call::new(
            Method::GET,
            "https://127.0.0.1/A20047/metadata",
            METADATA,
        ))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(started.elapsed() < Duration::from_secs(2));
    let faults = admin.get("/faults").await.json();
    assert_eq!(faults[1]["left"], 1, "{faults}");
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn bad_faults_are_refused_naming_the_field() {
    let (sim, _backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    for (fault, field) in [
        (
            json!({"respond": {"error": "no-such-error"}}),
            "respond.error",
        ),
        (
            json!({"match": {"path": "(unclosed"}, "respond": {"drop": true}}),
            "match.path",
        ),
        (
            json!({"match": {"interaction": "urn:nhs:names:services:gpconnect:fhir:rest:read:nothing-1"}, "respond": {"drop": true}}),
            "match.interaction",
        ),
        (
            json!({"match": {"nhs_number": "12345"}, "respond": {"drop": true}}),
            "match.nhs_number",
        ),
        (
            json!({"respond": {"delay_ms": 1, "status": 500}}),
            "respond",
        ),
        (
            json!({"respond": {"drop": true}, "times": "twice"}),
            "times",
        ),
        (json!({"respond": {"drop": true}, "when": "now"}), "when"),
    ] {
        let reply = admin.post("/faults", fault.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{fault}");
        assert_eq!(reply.json()["field"], field, "{}", reply.json());
    }
    assert_eq!(admin.get("/faults").await.json(), json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn faults_are_listed_removed_one_by_one_or_all_at_once() {
    let (sim, _backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let first = admin.add_fault(json!({"respond": {"status": 500}})).await;
    let second = admin
        .add_fault(json!({"match": {"path": "^/metadata"}, "respond": {"drop": true}, "times": 3}))
        .await;
    let listed = admin.get("/faults").await.json();
    assert_eq!(listed[0]["id"], first.as_str());
    assert_eq!(listed[0]["origin"], "api");
    assert_eq!(listed[1]["match"], json!({"path": "^/metadata"}));
    assert_eq!(listed[1]["left"], 3);
    assert_eq!(
        admin.delete(&format!("/faults/{first}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(admin.get("/faults").await.json()[0]["id"], second.as_str());
    assert_eq!(admin.delete("/faults").await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        sim.client().send(Call::metadata()).await.status,
        StatusCode::OK
    );
    sim.stop().await;
}

#[tokio::test]
async fn faults_declared_in_routes_toml_fire_from_start() {
    let backend = Backend::start().await;
    let declared = format!(
        "{}\n[[fault]]\nmatch = {{ interaction = \"{READ_PATIENT}\" }}\nrespond = {{ error = \"patient-not-found\" }}\n",
        routes(&backend.url())
    );
    let sim = Sim::start(&declared).await;
    let reply = sim
        .client()
        .send(Call::new(
            Method::GET,
            format!("{ROOT}/Patient/2"),
            READ_PATIENT,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        sim.admin_client().get("/faults").await.json()[0]["origin"],
        "routes"
    );
    assert_eq!(
        sim.client().send(Call::metadata()).await.status,
        StatusCode::OK
    );
    sim.stop().await;
}

#[test]
fn bad_faults_in_routes_toml_are_start_up_errors_with_their_line() {
    let source = format!(
        "{}\n[[fault]]\nmatch = {{ path = \"(\" }}\nrespond = {{ error = \"no-such-error\" }}\n",
        routes("http://127.0.0.1:9")
    );
    let line = source.lines().position(|l| l == "[[fault]]").unwrap() + 1;
    let interactions = std::sync::Arc::new(
        ssp_sim::config::interactions::Interactions::parse(
            "interactions.toml",
            ssp_sim::config::interactions::EMBEDDED,
        )
        .unwrap(),
    );
    let catalog = ssp_sim::config::errors::ErrorCatalog::embedded().unwrap();
    let err =
        ssp_sim::config::routes::Registry::parse("routes.toml", &source, &interactions, &catalog)
            .unwrap_err()
            .to_string();
    assert!(
        err.contains(&format!("routes.toml:{line}: fault[0].match.path")),
        "{err}"
    );
    assert!(
        err.contains(&format!("routes.toml:{line}: fault[0].respond.error")),
        "{err}"
    );
}
