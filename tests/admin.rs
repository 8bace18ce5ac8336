//! The admin API over a real socket: the journal, metrics, live reload (by request, by
//! SIGHUP, by file change, under load), and the directory lookups on the gateway listener.

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{json, Value};
use ssp_sim::config::settings::Overrides;
use support::*;

const NEW_CONSUMER: &str = "200000000999";
const SDS: &str = "spine-directory/FHIR/R4";
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const INTERACTION: &str = "https://fhir.nhs.uk/Id/nhsServiceInteractionId";
const PARTY_KEY: &str = "https://fhir.nhs.uk/Id/nhsMhsPartyKey";

/// The standard routes plus one more consumer, so a reload is visible from outside.
fn routes_with_new_consumer(backend: &str) -> String {
    routes_toml(backend)
        .consumer("Added by a reload", NEW_CONSUMER, "A33333", &["*"], &["*"])
        .build()
}

/// Replaces the routes file whole (write, then rename), as editors do.
fn write_routes(sim: &Sim, text: &str) {
    let staged = sim.routes_file.with_extension("new");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, &sim.routes_file).unwrap();
}

fn from_new_consumer() -> Call {
    Call::metadata().header("Ssp-From", NEW_CONSUMER)
}

/// The value of one series in a Prometheus exposition (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn journal_entry(entries: &Value) -> &Value {
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    &entries[0]
}

#[tokio::test]
async fn journal_shows_every_check_of_accepted_refused_and_dropped_requests() {
    let (sim, _backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let client = sim.client();

    let accepted = Call::metadata();
    client.send(accepted.clone()).await;
    let entries = admin
        .get(&format!("/journal?trace_id={}", accepted.trace_id()))
        .await
        .json();
    let entry = journal_entry(&entries);
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["target_url"], format!("{ROOT}/metadata"));
    assert_eq!(entry["from_asid"], CONSUMER);
    assert_eq!(entry["to_asid"], PROVIDER);
    assert_eq!(entry["interaction"], METADATA);
    assert_eq!(entry["status"], 200);
    assert!(entry["error"].is_null());
    assert!(entry["duration_ms"].as_f64().unwrap() > 0.0);
    let checks = entry["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "method",
        "target",
        "headers",
        "sender",
        "receiver",
        "fot",
        "endpoint",
        "media_type",
        "forward",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(checks.iter().all(|c| c["ok"] == true), "{entry}");

    let refused = Call::metadata().header("Ssp-From", "200000000360");
    client.send(refused.clone()).await;
    let entries = admin
        .get(&format!("/journal?trace_id={}", refused.trace_id()))
        .await
        .json();
    let entry = journal_entry(&entries);
    assert_eq!(entry["status"], 403);
    assert_eq!(entry["error"], "sender-to-receiver-not-authorised");
    let last = entry["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["name"], "fot");
    assert_eq!(last["ok"], false);
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains("sender-to-receiver-not-authorised"),
        "{last}"
    );

    let malformed = Call::metadata().header("Ssp-To", "not-an-asid");
    client.send(malformed.clone()).await;
    let entries = admin
        .get(&format!("/journal?trace_id={}", malformed.trace_id()))
        .await
        .json();
    let entry = journal_entry(&entries);
    assert_eq!(
        entry["to_asid"], "not-an-asid",
        "the journal shows what arrived"
    );
    assert!(entry["checks"][2]["detail"]
        .as_str()
        .unwrap()
        .contains("Ssp-To header must be an ASID"));

    let fault = admin
        .add_fault(json!({"respond": {"drop": true}, "times": 1}))
        .await;
    let dropped = Call::metadata();
    assert!(sim.client().try_send(dropped.clone()).await.is_err());
    let entries = admin
        .get(&format!("/journal?trace_id={}", dropped.trace_id()))
        .await
        .json();
    let entry = journal_entry(&entries);
    assert!(entry["status"].is_null());
    let last = entry["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["name"], "fault");
    assert_eq!(last["detail"], format!("{fault} dropped the connection"));

    // Newest first; limit; clear.
    let all = admin.get("/journal").await.json();
    assert_eq!(all[0]["trace_id"], dropped.trace_id());
    assert_eq!(
        admin
            .get("/journal?limit=2")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        admin.delete("/journal").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(admin.get("/journal").await.json(), json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_errors_latency_backend_errors_and_connections() {
    let (sim, _backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let client = sim.client();
    let ok =
        format!("ssp_sim_requests_total{{interaction=\"{METADATA}\",status=\"200\",error=\"\"}}");
    let fot = format!("ssp_sim_requests_total{{interaction=\"{METADATA}\",status=\"403\",error=\"sender-to-receiver-not-authorised\"}}");
    let before = admin.get("/metrics").await;
    assert_eq!(
        before.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let before = String::from_utf8_lossy(&before.body).into_owned();
    for _ in 0..3 {
        client.send(Call::metadata()).await;
    }
    client
        .send(Call::metadata().header("Ssp-From", "200000000360"))
        .await;
    let after = String::from_utf8_lossy(&admin.get("/metrics").await.body).into_owned();
    assert_eq!(series(&after, &ok) - series(&before, &ok), 3.0, "{after}");
    assert_eq!(series(&after, &fot) - series(&before, &fot), 1.0, "{after}");
    let count = "ssp_sim_request_duration_seconds_count";
    assert_eq!(series(&after, count) - series(&before, count), 4.0);
    assert!(series(&after, "ssp_sim_request_duration_seconds_sum") > 0.0);
    // The client keeps its connection alive in its pool.
    assert!(series(&after, "ssp_sim_open_connections") >= 1.0, "{after}");
    assert_eq!(series(&after, "ssp_sim_backend_errors_total"), 0.0);
    sim.stop().await;

    let closed = closed_port().await;
    let unreachable = Sim::start(&routes(&format!("http://{closed}"))).await;
    unreachable.client().send(Call::metadata()).await;
    let text = String::from_utf8_lossy(&unreachable.admin_client().get("/metrics").await.body)
        .into_owned();
    assert_eq!(series(&text, "ssp_sim_backend_errors_total"), 1.0, "{text}");
    unreachable.stop().await;
}

#[tokio::test]
async fn reload_installs_a_good_file_and_keeps_the_running_routes_on_a_bad_one() {
    let (sim, backend) = sim_with_backend().await;
    let admin = sim.admin_client();
    let client = sim.client();
    assert_eq!(
        client.send(from_new_consumer()).await.status,
        StatusCode::FORBIDDEN
    );

    write_routes(&sim, &routes_with_new_consumer(&backend.url()));
    let reply = admin.post("/reload", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
    assert_eq!(reply.json()["reloaded"]["consumers"], 3);
    assert_eq!(
        client.send(from_new_consumer()).await.status,
        StatusCode::OK
    );

    let bad = routes_toml(&backend.url())
        .consumer("Broken", "12ab", "X", &["*"], &["*"])
        .build();
    let line = bad
        .lines()
        .position(|l| l.starts_with("asid = \"12ab\""))
        .unwrap()
        + 1;
    write_routes(&sim, &bad);
    let reply = admin.post("/reload", json!({})).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem = &reply.json()["problems"][0];
    assert_eq!(problem["line"], line, "{problem}");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("`12ab` is not an ASID"),
        "{problem}"
    );
    // The running routes stay: the consumer the good file added still gets through.
    assert_eq!(
        client.send(from_new_consumer()).await.status,
        StatusCode::OK
    );
    let metrics = String::from_utf8_lossy(&admin.get("/metrics").await.body).into_owned();
    assert!(
        series(&metrics, "ssp_sim_reloads_total{result=\"error\"}") >= 1.0,
        "{metrics}"
    );
    sim.stop().await;
}

/// Sends `call` until it gets `status`, for up to five seconds.
async fn eventually(sim: &Sim, call: impl Fn() -> Call, status: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = sim.client().send(call()).await.status;
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "still {got}, expected {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn routes_reload_when_the_file_changes() {
    let (sim, backend) = sim_with_backend().await;
    write_routes(&sim, &routes_with_new_consumer(&backend.url()));
    eventually(&sim, from_new_consumer, StatusCode::OK).await;
    write_routes(&sim, &routes(&backend.url()));
    eventually(&sim, from_new_consumer, StatusCode::FORBIDDEN).await;
    sim.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn routes_reload_on_sighup() {
    let backend = Backend::start().await;
    let grown = routes_with_new_consumer(&backend.url());
    // Padded to the grown file's size, and the grown file given the old mtime below, so the
    // file watcher sees no change and only the signal can reload.
    let base = routes(&backend.url());
    let sim = Sim::start(&format!("{base}{}", "#".repeat(grown.len() - base.len()))).await;
    let modified = std::fs::metadata(&sim.routes_file)
        .unwrap()
        .modified()
        .unwrap();
    write_routes(&sim, &grown);
    std::fs::File::options()
        .write(true)
        .open(&sim.routes_file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sim.client().send(from_new_consumer()).await.status,
        StatusCode::FORBIDDEN
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    eventually(&sim, from_new_consumer, StatusCode::OK).await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    let (sim, backend) = sim_with_backend().await;
    let files = [
        routes(&backend.url()),
        routes_with_new_consumer(&backend.url()),
    ];
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = sim.client();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for _ in 0..150 {
                    match client.try_send(Call::metadata()).await {
                        Ok(reply) if reply.status == StatusCode::OK => {}
                        other => failed.push(format!("{other:?}")),
                    }
                }
                failed
            })
        })
        .collect();
    let admin = sim.admin_client();
    for i in 0..20 {
        write_routes(&sim, &files[i % 2]);
        assert_eq!(
            admin.post("/reload", json!({})).await.status,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for worker in workers {
        let failed = worker.await.unwrap();
        assert!(
            failed.is_empty(),
            "{} failed, e.g. {}",
            failed.len(),
            failed[0]
        );
    }
    assert_eq!(backend.requests().len(), 600);
    sim.stop().await;
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_routes_it_started_with() {
    let old = Backend::start().await;
    let new = Backend::start().await;
    let sim = Sim::start(&routes(&old.url())).await;
    let admin = sim.admin_client();
    // Hold one request between the checks and the backend.
    admin
        .add_fault(json!({"respond": {"delay_ms": 600}, "times": 1}))
        .await;
    let client = sim.client();
    let in_flight = tokio::spawn(async move { client.send(Call::metadata()).await.status });
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_routes(&sim, &routes(&new.url()));
    assert_eq!(
        admin.post("/reload", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(in_flight.await.unwrap(), StatusCode::OK);
    assert_eq!((old.requests().len(), new.requests().len()), (1, 0));
    sim.client().send(Call::metadata()).await;
    assert_eq!((old.requests().len(), new.requests().len()), (1, 1));
    sim.stop().await;
}

#[tokio::test]
async fn health_reports_the_running_setup() {
    let (sim, _backend) = sim_with_backend().await;
    let health = sim.admin_client().get("/health").await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["consumers"], 2);
    assert_eq!(health["providers"], 2);
    assert_eq!(health["journal_size"], 1000);
    assert_eq!(health["metrics"], true);
    let unknown = sim.admin_client().get("/nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json()["error"]
        .as_str()
        .unwrap()
        .contains("GET /health"));
    sim.stop().await;
}

#[tokio::test]
async fn journal_and_metrics_can_be_turned_off() {
    let backend = Backend::start().await;
    let overrides = Overrides {
        journal_size: Some(0),
        metrics: Some(false),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
    sim.client().send(Call::metadata()).await;
    let admin = sim.admin_client();
    assert_eq!(admin.get("/journal").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.get("/metrics").await.status, StatusCode::NOT_FOUND);
    sim.stop().await;
}

/// A directory search through the gateway's HTTPS listener.
async fn lookup(sim: &Sim, resource: &str, query: &str) -> Reply {
    sim.client()
        .send(Call::new(
            Method::GET,
            format!("{SDS}/{resource}?{query}"),
            METADATA,
        ))
        .await
}

fn identifier<'a>(resource: &'a Value, system: &str) -> &'a str {
    resource["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"].as_str().is_some_and(|s| s.ends_with(system)))
        })
        .and_then(|i| i["value"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn directory_endpoint_search_finds_the_service_root_asid_and_party_key_per_capability() {
    let (sim, _backend) = sim_with_backend().await;
    for (interaction, root) in [
        (METADATA, ROOT.to_owned()),
        (STRUCTURED, format!("{ROOT}/structured")),
    ] {
        let reply = lookup(
            &sim,
            "Endpoint",
            &format!("organization={ODS}|A20047&identifier={INTERACTION}|{interaction}"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "application/fhir+json");
        let bundle = reply.json();
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 1, "{bundle}");
        let endpoint = &bundle["entry"][0]["resource"];
        assert_eq!(endpoint["resourceType"], "Endpoint");
        assert_eq!(endpoint["address"], root);
        assert_eq!(identifier(endpoint, "nhsMhsPartyKey"), "A20047-821870");
        assert_eq!(identifier(endpoint, "nhsSpineASID"), PROVIDER);
        assert_eq!(identifier(endpoint, "nhsMhsCPAId"), "S20047821870");
        assert_eq!(
            endpoint["managingOrganization"]["identifier"]["value"],
            "A20047"
        );
        assert_eq!(
            endpoint["extension"][0]["valueReference"]["identifier"]["value"],
            interaction
        );
    }
    // By party key: every MHS record of the provider, one per interaction.
    let by_key = lookup(
        &sim,
        "Endpoint",
        &format!("organization={ODS}|a20047&identifier={PARTY_KEY}%7CA20047-821870"),
    )
    .await
    .json();
    assert!(by_key["total"].as_u64().unwrap() > 2, "{by_key}");
    // An interaction the provider has no endpoint for, and an unknown organisation.
    let none = lookup(
        &sim,
        "Endpoint",
        &format!("organization={ODS}|B82617&identifier={INTERACTION}|{STRUCTURED}"),
    )
    .await
    .json();
    assert_eq!(none["total"], 0);
    // FHIR JSON has no empty arrays: nothing found, no `entry`.
    assert!(none.get("entry").is_none(), "{none}");
    let none = lookup(
        &sim,
        "Endpoint",
        &format!("organization={ODS}|Z99999&identifier={INTERACTION}|{METADATA}"),
    )
    .await
    .json();
    assert_eq!(none["total"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn directory_device_search_finds_the_asid_and_party_key() {
    let (sim, _backend) = sim_with_backend().await;
    let reply = lookup(
        &sim,
        "Device",
        &format!("organization={ODS}|B82617&identifier={INTERACTION}|{METADATA}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let bundle = reply.json();
    assert_eq!(bundle["total"], 1);
    let device = &bundle["entry"][0]["resource"];
    assert_eq!(device["resourceType"], "Device");
    assert_eq!(identifier(device, "nhsSpineASID"), "918999198993");
    assert_eq!(identifier(device, "nhsMhsPartyKey"), "B82617-900001");
    assert_eq!(device["owner"]["identifier"]["value"], "B82617");
    let none = lookup(
        &sim,
        "Device",
        &format!("organization={ODS}|B82617&identifier={INTERACTION}|{STRUCTURED}"),
    )
    .await
    .json();
    assert_eq!(none["total"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn directory_refuses_searches_it_cannot_answer() {
    let (sim, _backend) = sim_with_backend().await;
    for (resource, query, expect) in [
        (
            "Device",
            format!("identifier={INTERACTION}|{METADATA}"),
            "a Device search needs",
        ),
        (
            "Endpoint",
            format!("organization={ODS}|A20047"),
            "an Endpoint search needs",
        ),
        (
            "Endpoint",
            "organization=A20047".to_owned(),
            "organization must be",
        ),
        ("Patient", String::new(), "the directory serves"),
    ] {
        let reply = lookup(&sim, resource, &query).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{resource}?{query}");
        assert!(
            reply.diagnostics().contains(expect),
            "{}",
            reply.diagnostics()
        );
    }
    // The directory only searches: 405, with Allow naming GET.
    let post = sim
        .client()
        .send(Call::new(Method::POST, format!("{SDS}/Device"), METADATA))
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET");
    assert_eq!(
        post.header("ssp-sim-diagnostics"),
        "The directory serves GET searches only, not POST"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_consumer_looks_up_the_provider_then_calls_it_through_the_ssp() {
    let (sim, backend) = sim_with_backend().await;
    let org = "A20047";
    let device = lookup(
        &sim,
        "Device",
        &format!("organization={ODS}|{org}&identifier={INTERACTION}|{READ_PATIENT}"),
    )
    .await
    .json();
    let asid = identifier(&device["entry"][0]["resource"], "nhsSpineASID").to_owned();
    let endpoint = lookup(
        &sim,
        "Endpoint",
        &format!("organization={ODS}|{org}&identifier={INTERACTION}|{READ_PATIENT}"),
    )
    .await
    .json();
    let address = endpoint["entry"][0]["resource"]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = Call::new(Method::GET, format!("{address}/Patient/2"), READ_PATIENT)
        .header("Ssp-To", &asid);
    assert_eq!(sim.client().send(call).await.status, StatusCode::OK);
    assert_eq!(backend.requests()[0].uri, "/Patient/2");
    sim.stop().await;
}
