//! The Spine checks of DESIGN.md section 4, each answered with its catalogue error, over
//! real TLS to a real backend.

mod support;

use http::{Method, StatusCode};
use serde_json::json;
use support::*;

/// Sends `call` and checks the fixed parts every SSP error shares: headers (the call's own
/// trace id echoed), the 1.2.7 coding, diagnostics = display. Returns the reply.
async fn assert_refused(
    client: &Client,
    call: Call,
    status: u16,
    code: &str,
    display: &str,
) -> Reply {
    let trace_id = call.trace_id().to_owned();
    let reply = client.send(call).await;
    reply.assert_status(StatusCode::from_u16(status).unwrap());
    assert_eq!(
        reply.header("content-type"),
        "application/fhir+json;charset=utf-8"
    );
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("ssp-traceid"), trace_id);
    let json = reply.json();
    assert_eq!(json["resourceType"], "OperationOutcome");
    assert!(uuid::Uuid::parse_str(json["id"].as_str().unwrap()).is_ok());
    let issue = &json["issue"][0];
    assert_eq!(issue["code"], code);
    assert_eq!(issue["severity"], "error");
    let coding = &issue["details"]["coding"][0];
    assert_eq!(coding["code"], status.to_string());
    assert_eq!(
        coding["system"],
        "http://fhir.nhs.net/ValueSet/gpconnect-schedule-response-code-1-0"
    );
    assert_eq!(coding["display"], display);
    assert_eq!(issue["diagnostics"], display);
    reply
}

#[tokio::test]
async fn a_valid_request_is_forwarded_and_answered_by_the_backend() {
    let (sim, backend) = sim_with_backend().await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["resourceType"], "CapabilityStatement");
    assert_eq!(backend.requests().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn method_check_refuses_patch_with_the_405_shape() {
    let (sim, backend) = sim_with_backend().await;
    let mut call = Call::metadata();
    call.method = Method::PATCH;
    let trace = call.trace_id().to_owned();
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("ssp-traceid"), trace);
    let json = reply.json();
    assert!(json.get("id").is_none());
    assert_eq!(json["issue"][0]["severity"], "fatal");
    assert_eq!(json["issue"][0]["code"], "forbidden");
    assert_eq!(
        json["issue"][0]["details"]["coding"][0]["display"],
        "405: Method Not Allowed"
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_405_lists_the_brokered_methods_in_allow_and_says_why() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    // (An OPTIONS to a registered endpoint is a CORS preflight, answered before check 2.)
    let propfind = Method::from_bytes(b"PROPFIND").unwrap();
    for method in [Method::PATCH, Method::HEAD, Method::TRACE, propfind] {
        let mut call = Call::metadata();
        call.method = method.clone();
        let reply = client.send(call).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        // RFC 9110 15.5.6: a 405 MUST carry Allow, the target's supported methods.
        assert_eq!(reply.header("allow"), "GET, POST, PUT, DELETE", "{method}");
        assert_eq!(
            reply.header("ssp-sim-diagnostics"),
            format!("The SSP brokers GET, POST, PUT and DELETE, not {method}")
        );
    }
    // A fault answering the 405 says the same methods.
    sim.admin_client()
        .add_fault(json!({"respond": {"error": "method-not-allowed"}, "times": 1}))
        .await;
    let faulted = client.send(Call::metadata()).await;
    assert_eq!(faulted.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(faulted.header("allow"), "GET, POST, PUT, DELETE");
    assert!(!faulted.header("ssp-sim-diagnostics").is_empty());
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn target_check_refuses_a_path_without_an_absolute_url() {
    let (sim, _backend) = sim_with_backend().await;
    let call = Call::new(Method::GET, "metadata", METADATA);
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let json = reply.json();
    assert_eq!(
        json["issue"][0]["details"]["coding"][0]["code"],
        "BAD_REQUEST"
    );
    assert!(
        reply.diagnostics().contains("absolute URL"),
        "{}",
        reply.diagnostics()
    );
    sim.stop().await;
}

/// Python's `urljoin` (and so `fhirclient`) turns `https://ssp/https://provider/...` into
/// `https://ssp/https:/provider/...`. Spine would refuse that path, so ssp-sim does, and says
/// what collapsed it.
#[tokio::test]
async fn target_check_refuses_a_collapsed_double_slash_naming_the_likely_cause() {
    let (sim, backend) = sim_with_backend().await;
    let collapsed = ROOT.replacen("https://", "https:/", 1);
    let call = Call::new(Method::GET, format!("{collapsed}/metadata"), METADATA);
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let diagnostics = reply.diagnostics();
    for expected in [
        "one `/` after `https:`",
        "urljoin",
        "fhirclient",
        "Join strings",
    ] {
        assert!(diagnostics.contains(expected), "{expected}: {diagnostics}");
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn header_check_names_each_missing_or_malformed_header() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    for (call, expect) in [
        (
            Call::metadata().without("Ssp-TraceID"),
            "Ssp-TraceID header is missing",
        ),
        (
            Call::metadata().header("Ssp-TraceID", "not-a-uuid"),
            "Ssp-TraceID header must be a UUID",
        ),
        (
            Call::metadata().without("Ssp-From"),
            "Ssp-From header is missing",
        ),
        (
            Call::metadata().header("Ssp-To", "91899919873x"),
            "Ssp-To header must be an ASID",
        ),
        (
            Call::metadata()
                .without("Ssp-From")
                .header("Ssp-InteractionID", "urn:nope"),
            "Ssp-InteractionID header `urn:nope`",
        ),
    ] {
        let reply = client.send(call).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.header("cache-control"), "no-store");
        assert!(
            reply.diagnostics().contains(expect),
            "{} lacks {expect}",
            reply.diagnostics()
        );
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn an_unknown_interaction_id_gets_the_ssps_415_with_the_reason_in_a_header() {
    let (sim, backend) = sim_with_backend().await;
    let reply = sim
        .client()
        .send(Call::metadata().header("Ssp-InteractionID", "InvalidInteractionid"))
        .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.display(), "Unsupported_Media_Type");
    assert_eq!(reply.diagnostics(), "Unsupported_Media_Type");
    assert!(
        reply
            .header("ssp-sim-diagnostics")
            .contains("`InvalidInteractionid` is not a GP Connect interaction ID"),
        "{:?}",
        reply.headers
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

/// What a browser sends before a cross-origin GP Connect call: no SSP headers, only the
/// method and header names it means to use.
fn preflight(target: &str) -> Call {
    let mut call = Call::new(Method::OPTIONS, target, METADATA);
    call.headers.clear();
    call.header("Origin", "https://consumer.example.org")
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization,ssp-from,ssp-interactionid,ssp-to,ssp-traceid",
        )
}

#[tokio::test]
async fn a_cors_preflight_for_a_registered_endpoint_succeeds() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    let reply = client.send(preflight(&format!("{ROOT}/metadata"))).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://consumer.example.org"
    );
    assert!(reply.header("access-control-allow-methods").contains("GET"));
    let allowed = reply
        .header("access-control-allow-headers")
        .to_ascii_lowercase();
    for name in [
        "ssp-traceid",
        "ssp-from",
        "ssp-to",
        "ssp-interactionid",
        "authorization",
    ] {
        assert!(allowed.contains(name), "{allowed} lacks {name}");
    }
    assert!(
        reply
            .header("access-control-max-age")
            .parse::<u32>()
            .unwrap()
            > 0
    );
    // Below another registered endpoint too; an unregistered target is still check 2's 405.
    let other = client
        .send(preflight(
            "https://second.example.nhs.uk/B82617/STU3/1/gpconnect/Patient/1",
        ))
        .await;
    assert!(other.status.is_success(), "{}", other.status);
    let unregistered = client
        .send(preflight(
            "https://elsewhere.example.nhs.uk/gpconnect/metadata",
        ))
        .await;
    assert_eq!(unregistered.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn responses_to_a_request_with_an_origin_allow_that_origin() {
    let (sim, _backend) = sim_with_backend().await;
    let client = sim.client();
    let origin = "https://consumer.example.org";
    let ok = client.send(Call::metadata().header("Origin", origin)).await;
    ok.assert_status(StatusCode::OK);
    assert_eq!(ok.header("access-control-allow-origin"), origin);
    assert!(ok
        .header("access-control-expose-headers")
        .contains("Ssp-Sim-Diagnostics"));
    let refused = client
        .send(
            Call::metadata()
                .header("Origin", origin)
                .header("Ssp-From", "100000000001"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.header("access-control-allow-origin"), origin);
    let without = client.send(Call::metadata()).await;
    assert!(without.headers.get("access-control-allow-origin").is_none());
    sim.stop().await;
}

#[tokio::test]
async fn sender_check_refuses_an_unknown_or_unauthorised_asid() {
    let (sim, _backend) = sim_with_backend().await;
    let client = sim.client();
    let call = Call::metadata().header("Ssp-From", "100000000001");
    assert_refused(
        &client,
        call,
        403,
        "forbidden",
        "ASID_CHECK_FAILED_MESSAGESENDER_100000000001",
    )
    .await;
    // The limited consumer may not initiate a structured record request.
    let call = Call::new(
        Method::POST,
        format!("{ROOT}/structured/Patient/$gpc.getstructuredrecord"),
        STRUCTURED,
    )
    .header("Ssp-From", "200000000360");
    assert_refused(
        &client,
        call,
        403,
        "forbidden",
        "ASID_CHECK_FAILED_MESSAGESENDER_200000000360",
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn receiver_check_refuses_a_provider_without_an_endpoint_for_the_interaction() {
    let (sim, _backend) = sim_with_backend().await;
    let call = Call::new(
        Method::POST,
        "https://second.example.nhs.uk/B82617/STU3/1/gpconnect/Patient/$gpc.getstructuredrecord",
        STRUCTURED,
    )
    .header("Ssp-To", "918999198993");
    assert_refused(
        &sim.client(),
        call,
        403,
        "forbidden",
        "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_918999198993",
    )
    .await;
    let call = Call::metadata().header("Ssp-To", "999999999999");
    assert_refused(
        &sim.client(),
        call,
        403,
        "forbidden",
        "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_999999999999",
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn fot_check_refuses_sender_not_allowed_to_receiver() {
    let (sim, backend) = sim_with_backend().await;
    let call = Call::metadata().header("Ssp-From", "200000000360");
    assert_refused(
        &sim.client(),
        call,
        403,
        "forbidden",
        "FOT_CHECK_FAILED_MESSAGESENDER_200000000360_MESSAGERECEIVER_918999198738",
    )
    .await;
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn endpoint_check_refuses_ip_port_case_and_other_roots() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    for target in [
        "https://127.0.0.1/A20047/STU3/1/gpconnect/metadata",
        "https://provider.example.nhs.uk:443/A20047/STU3/1/gpconnect/metadata",
        "https://provider.example.nhs.uk/a20047/STU3/1/gpconnect/metadata",
        "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect2/metadata",
        "https://second.example.nhs.uk/B82617/STU3/1/gpconnect/metadata",
    ] {
        let call = Call::new(Method::GET, target, METADATA);
        let display = format!("ENDPOINT_{ROOT}_CPAID_S20047821870_VARIES_FROM_TARGETURL_{target}");
        assert_refused(&client, call, 400, "invalid", &display).await;
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn media_type_check_refuses_non_fhir_accept_format_and_content_type() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    for call in [
        Call::metadata().header("Accept", "text/html"),
        Call::new(
            Method::GET,
            format!("{ROOT}/metadata?_format=text/html"),
            METADATA,
        ),
        Call::new(
            Method::POST,
            format!("{ROOT}/Patient/$gpc.registerpatient"),
            "urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient-1",
        )
        .body("text/plain", "hello"),
    ] {
        let reply = assert_refused(
            &client,
            call,
            415,
            "not-supported",
            "Unsupported_Media_Type",
        )
        .await;
        assert!(!reply.header("ssp-sim-diagnostics").is_empty());
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn checks_run_in_order_so_the_first_failure_answers() {
    let (sim, _backend) = sim_with_backend().await;
    // Unknown sender (check 5), wrong endpoint (check 8) and bad Accept (check 9) at once.
    let call = Call::new(Method::GET, "https://127.0.0.1/x/metadata", METADATA)
        .header("Ssp-From", "100000000001")
        .header("Accept", "text/html");
    assert_refused(
        &sim.client(),
        call,
        403,
        "forbidden",
        "ASID_CHECK_FAILED_MESSAGESENDER_100000000001",
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn unreachable_backend_is_error_communicating() {
    let closed = closed_port().await;
    let sim = Sim::start(&routes(&format!("http://{closed}"))).await;
    let call = Call::metadata();
    let display = format!("ERROR_COMMUNICATING_TO_ENDPOINT_URL_{ROOT}/metadata");
    assert_refused(&sim.client(), call, 502, "transient", &display).await;
    sim.stop().await;
}

/// Sends raw bytes over mTLS and returns the status code and body of the answer.
async fn raw_exchange(sim: &Sim, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
        .await
        .unwrap();
    tls.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tls.read_to_end(&mut bytes).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn odd_but_parseable_requests_get_a_4xx_operation_outcome_never_a_500() {
    let (sim, backend) = sim_with_backend().await;
    let headers = |from: &[u8], path: &str| {
        let mut r = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nssp-traceid: {}\r\nssp-to: {PROVIDER}\r\nssp-interactionid: {METADATA}\r\nssp-from: ", uuid::Uuid::new_v4()).into_bytes();
        r.extend_from_slice(from);
        r.extend_from_slice(b"\r\n\r\n");
        r
    };
    let long = format!("/https://elsewhere.example/{}", "a".repeat(8000));
    for (from, path) in [
        (&b"\xff\xfe"[..], format!("/{ROOT}/metadata")),
        (CONSUMER.as_bytes(), "/https://%00/x".to_owned()),
        (
            CONSUMER.as_bytes(),
            "/https://second.example.nhs.uk/%E2%98%83?x=%ZZ".to_owned(),
        ),
        (CONSUMER.as_bytes(), "/http:/provider".to_owned()),
        (CONSUMER.as_bytes(), "*".to_owned()),
        (CONSUMER.as_bytes(), long),
    ] {
        let (status, body) = raw_exchange(&sim, &headers(from, &path)).await;
        let path: String = path.chars().take(60).collect();
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        assert_eq!(json["resourceType"], "OperationOutcome", "{path}");
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}
