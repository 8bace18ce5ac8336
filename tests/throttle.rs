//! The throttle: per-consumer and global request rate limits from routes.toml, and faults
//! that answer as the throttle does, over real TLS to a real backend.

mod support;

use http::{Method, StatusCode};
use serde_json::json;
use support::*;

const LIMITED: &str = "200000000360";
const OTHER_ROOT: &str = "https://second.example.nhs.uk/B82617/STU3/1/gpconnect";

/// The three headers the SSP guide names, present and consistent with `requests`.
fn assert_rate_limit_headers(reply: &Reply, requests: u32) {
    assert_eq!(reply.header("x-rate-limit-limit"), requests.to_string());
    assert_eq!(reply.header("x-rate-limit-remaining"), "0");
    let reset: u64 = reply
        .header("x-rate-limit-reset")
        .parse()
        .unwrap_or_else(|_| panic!("{:?}", reply.headers));
    assert!(reset >= 1, "{reset}");
}

/// A metadata read by the limited consumer towards the other surgery (all it may do).
fn limited_call() -> Call {
    Call::new(Method::GET, format!("{OTHER_ROOT}/metadata"), METADATA)
        .header("Ssp-From", LIMITED)
        .header("Ssp-To", "918999198993")
}

#[tokio::test]
async fn a_consumer_over_its_rate_limit_gets_exactly_one_429_with_the_headers() {
    let backend = Backend::start().await;
    // A window long enough that no request is replenished while the test runs.
    let routes = routes(&backend.url()).replacen(
        "may_send_to = [\"*\"]\n",
        "may_send_to = [\"*\"]\nrate_limit = { requests = 3, per_seconds = 600 }\n",
        1,
    );
    let sim = Sim::start(&routes).await;
    let client = sim.client();
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..4 {
        let reply = client.send(Call::metadata()).await;
        statuses.push(reply.status);
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(reply);
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let refused = refused.unwrap();
    assert_rate_limit_headers(&refused, 3);
    let json = refused.json();
    assert_eq!(json["issue"][0]["code"], "throttled", "{json}");
    assert_eq!(json["issue"][0]["details"]["coding"][0]["code"], "429");
    assert!(refused
        .header("ssp-sim-diagnostics")
        .contains("over the sender's rate_limit of 3 requests per 600 s"));
    assert_eq!(backend.requests().len(), 3);
    // Another consumer has its own allowance.
    client
        .send(limited_call())
        .await
        .assert_status(StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn the_global_rate_limit_counts_every_consumer_and_answers_503() {
    let backend = Backend::start().await;
    let routes = format!(
        "rate_limit = {{ requests = 2, per_seconds = 600 }}\n{}",
        routes(&backend.url())
    );
    let sim = Sim::start(&routes).await;
    let client = sim.client();
    client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    client
        .send(limited_call())
        .await
        .assert_status(StatusCode::OK);
    let refused = client.send(Call::metadata()).await;
    refused.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_rate_limit_headers(&refused, 2);
    assert_eq!(backend.requests().len(), 2);
    sim.stop().await;
}

#[tokio::test]
async fn faults_answer_429_and_503_with_the_rate_limit_headers() {
    let (sim, backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let client = sim.client();
    for (error, status) in [
        ("too-many-requests", StatusCode::TOO_MANY_REQUESTS),
        ("service-unavailable", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        admin
            .add_fault(json!({"respond": {"error": error}, "times": 1}))
            .await;
        let reply = client.send(Call::metadata()).await;
        reply.assert_status(status);
        // No rate_limit in these routes: as if the limit were one request per second.
        assert_rate_limit_headers(&reply, 1);
    }
    assert!(backend.requests().is_empty());
    sim.stop().await;
}
