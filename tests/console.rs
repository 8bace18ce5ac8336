//! The console and what it reads, over real sockets: `GET /journal/stream` read by a real
//! HTTP client as requests go through the proxy, stream tickets, the coverage report, the mock
//! SDS view with the last reload, and the page itself driven in a real headless Chromium
//! (tests/browser/console.py, Selenium).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use ssp_sim::config::jwt::JwtMode;
use ssp_sim::config::settings::Overrides;
use support::{AdminClient, Backend, Call, Pki, Sim, CONSUMER, METADATA, PROVIDER, ROOT};

const TOKEN: &str = "console-test-token";

/// A simulator with an admin token and the journal's details on, the test routes over
/// `backend`, and check 10 as `jwt_mode` says.
async fn sim(backend: &Backend, jwt_mode: JwtMode) -> Sim {
    let overrides = Overrides {
        jwt_mode: Some(jwt_mode),
        ..Overrides::default()
    };
    let settings = format!("admin_token = \"{TOKEN}\"\njournal_details = true\n");
    Sim::start_with_settings(
        &support::routes(&backend.url()),
        overrides,
        &settings,
        Pki::new(),
    )
    .await
}

fn admin(sim: &Sim) -> AdminClient {
    sim.admin_client().with_token(TOKEN)
}

/// Opens `GET /journal/stream{query}`, with the admin token when `bearer` says so.
async fn open_stream(sim: &Sim, query: &str, bearer: bool) -> http::Response<Incoming> {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = Request::get(format!(
        "http://{}/journal/stream{query}",
        sim.admin.expect("admin listens")
    ));
    if bearer {
        request = request.header("authorization", format!("Bearer {TOKEN}"));
    }
    client
        .request(request.body(Empty::new()).expect("request"))
        .await
        .expect("the admin API answers")
}

/// Reads the stream until an `entry` event whose data satisfies `wanted`; fails after 10 s.
async fn next_entry(
    body: &mut Incoming,
    seen: &mut String,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        loop {
            while let Some(end) = seen.find("\n\n") {
                let event: String = seen.drain(..end + 2).collect();
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .map(|d| serde_json::from_str::<Value>(d).expect("JSON data"));
                if event.starts_with("event: entry") {
                    if let Some(data) = data.filter(&wanted) {
                        return data;
                    }
                }
            }
            let frame = body
                .frame()
                .await
                .expect("the stream stays open")
                .expect("a frame");
            if let Ok(data) = frame.into_data() {
                seen.push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the entry arrives on the stream")
}

#[tokio::test]
async fn the_journal_stream_sends_each_request_as_it_is_recorded() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Off).await;
    let mut response = open_stream(&sim, "", true).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.body_mut();
    let mut seen = String::new();
    for call in [
        Call::metadata(),
        Call::metadata().header("Ssp-From", "100000000001"),
    ] {
        let trace = call.trace_id().to_owned();
        let reply = sim.client().send(call).await;
        let entry = next_entry(body, &mut seen, |e| e["trace_id"] == trace.as_str()).await;
        assert_eq!(entry["status"], reply.status.as_u16());
        assert!(entry["checks"].as_array().is_some_and(|c| !c.is_empty()));
        let headers = entry["details"]["request_headers"].to_string();
        assert!(headers.contains("ssp-from"), "{headers}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn the_stream_needs_the_token_or_a_ticket_used_once() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Off).await;
    assert_eq!(
        open_stream(&sim, "", false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        open_stream(&sim, "?ticket=made-up", false).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let reply = admin(&sim).post("/journal/stream/ticket", json!({})).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let ticket = reply.json()["ticket"]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let query = format!("?ticket={ticket}");
    let mut response = open_stream(&sim, &query, false).await;
    assert_eq!(response.status(), StatusCode::OK);
    let call = Call::metadata();
    let trace = call.trace_id().to_owned();
    sim.client().send(call).await;
    next_entry(response.body_mut(), &mut String::new(), |e| {
        e["trace_id"] == trace.as_str()
    })
    .await;
    assert_eq!(
        open_stream(&sim, &query, false).await.status(),
        StatusCode::UNAUTHORIZED,
        "a ticket opens one stream"
    );
    // The ticket is no key to the rest of the API.
    let other = sim.admin_client().get(&format!("/journal{query}")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    sim.stop().await;
}

#[tokio::test]
async fn the_journal_keeps_no_authorization_header_and_decodes_the_token() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Enforce).await;
    let call = Call::metadata().header("Authorization", "Bearer not-a.jwt");
    let trace = call.trace_id().to_owned();
    sim.client().send(call).await;
    let reply = admin(&sim).get(&format!("/journal?trace_id={trace}")).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!text.contains("not-a.jwt"), "{text}");
    assert!(!text.contains("\"authorization\""), "{text}");
    let entry = &reply.json()[0];
    let rules = &entry["details"]["jwt"]["rules"];
    assert_eq!(rules[0]["rule"], "jwt.parts", "{entry}");
    assert_eq!(
        entry["details"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    sim.stop().await;
}

#[tokio::test]
async fn without_journal_details_the_journal_keeps_no_headers_or_claims() {
    let backend = Backend::start().await;
    let sim = Sim::for_backend(&backend).await;
    let call = Call::metadata();
    let trace = call.trace_id().to_owned();
    sim.client().send(call).await;
    let reply = sim
        .admin_client()
        .get(&format!("/journal?trace_id={trace}"))
        .await;
    assert!(reply.json()[0].get("details").is_none(), "{}", reply.json());
    sim.stop().await;
}

#[tokio::test]
async fn the_report_counts_per_consumer_until_reset() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Enforce).await;
    let admin = admin(&sim);
    let client = sim.client();
    // No token: check 10 refuses with bad-request (authorization broken).
    client.send(Call::metadata()).await;
    client
        .send(Call::metadata().header("Ssp-From", "100000000001"))
        .await;
    client
        .send(Call::new(
            Method::GET,
            "https://127.0.0.1/A20047/STU3/1/gpconnect/metadata",
            METADATA,
        ))
        .await;
    let report = admin.get("/report").await.json();
    let consumer = report["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .find(|c| c["asid"] == CONSUMER)
        .expect("the test consumer")
        .clone();
    assert_eq!(consumer["name"], "Test consumer");
    assert_eq!(consumer["requests"], 2);
    assert_eq!(consumer["interactions"][METADATA], 2);
    assert_eq!(consumer["ssp_errors"]["endpoint-varies"], 1);
    assert_eq!(consumer["provider_errors"]["bad-request"], 1);
    assert_eq!(consumer["jwt_rules"]["authorization"], 1);
    let never: Vec<&str> = consumer["never_seen"]
        .as_array()
        .expect("never_seen")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!never.contains(&"endpoint-varies") && !never.contains(&"bad-request"));
    assert!(never.contains(&"patient-not-found") && never.contains(&"no-patient-consent"));
    let unregistered = report["consumers"]
        .as_array()
        .expect("consumers")
        .iter()
        .find(|c| c["asid"] == "unregistered")
        .expect("the unregistered sender");
    assert_eq!(unregistered["ssp_errors"]["sender-asid-not-authorised"], 1);
    // Independent of the journal.
    admin.delete("/journal").await;
    assert_eq!(admin.get("/report").await.json(), report);
    assert_eq!(admin.delete("/report").await.status, StatusCode::NO_CONTENT);
    let after = admin.get("/report").await.json();
    let consumer = &after["consumers"][0];
    assert_eq!(
        (&consumer["asid"], &consumer["requests"]),
        (&json!(CONSUMER), &json!(0))
    );
    assert_eq!(
        after["consumers"].as_array().map(Vec::len),
        Some(2),
        "{after}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_routes_view_shows_the_sds_and_why_the_last_reload_failed() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Off).await;
    let admin = admin(&sim);
    let routes = admin.get("/routes").await.json();
    assert!(routes["last_reload"].is_null());
    let provider = routes["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["asid"] == PROVIDER)
        .expect("the test provider");
    assert_eq!(provider["endpoints"][0]["service_root"], ROOT);
    assert_eq!(provider["endpoints"][0]["backend"], backend.url());
    std::fs::write(&sim.routes_file, "[[consumer]]\nasid = \"12ab\"\n").expect("write");
    assert_eq!(
        admin.post("/reload", json!({})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let last = &admin.get("/routes").await.json()["last_reload"];
    assert_eq!(last["result"], "error", "{last}");
    assert!(last["problems"][0]["message"].is_string(), "{last}");
    sim.stop().await;
}

#[tokio::test]
async fn the_page_is_served_without_data_and_with_a_strict_policy() {
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Off).await;
    let anonymous = sim.admin_client();
    let page = anonymous.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let policy = page.header("content-security-policy").to_owned();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"));
    assert_eq!(anonymous.get("/console.js").await.status, StatusCode::OK);
    assert_eq!(
        anonymous.get("/report").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.get("/routes").await.status,
        StatusCode::UNAUTHORIZED
    );
    sim.stop().await;
}

/// The Chromium and chromedriver to drive, when both are installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let which = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
    };
    Some((
        which(&["chromium", "chromium-browser", "google-chrome"])?,
        which(&["chromedriver"])?,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_requests_live_and_makes_the_next_one_fail() {
    // Fails rather than skips: a browser test that passes without a browser proves nothing.
    let (chromium, chromedriver) = browser().expect(
        "no Chromium and chromedriver on PATH; scripts/test installs them \
         (apt-get install chromium chromium-driver)",
    );
    let backend = Backend::start().await;
    let sim = sim(&backend, JwtMode::Enforce).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let screenshots = std::env::var_os("SSPSIM_SCREENSHOTS").map(PathBuf::from);
    let mut command = Command::new(support::python());
    command
        .arg(root.join("tests/browser/console.py"))
        .env("SIM_ADDR", sim.addr.to_string())
        .env("ADMIN_URL", format!("http://{}", sim.admin.expect("admin")))
        .env("ADMIN_TOKEN", TOKEN)
        .env("CERTS", &sim.pki.paths.dir)
        .env("SSP_SIM", env!("CARGO_BIN_EXE_ssp-sim"))
        .env("ROOT", ROOT)
        .env("FROM_ASID", CONSUMER)
        .env("TO_ASID", PROVIDER)
        .env("METADATA", METADATA)
        .env("CHROMIUM", chromium)
        .env("CHROMEDRIVER", chromedriver);
    if let Some(dir) = screenshots {
        command.env("SCREENSHOTS", dir);
    }
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the script runs")
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/browser/console.py failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("all console checks passed"), "{stdout}");
    sim.stop().await;
}

#[tokio::test]
async fn another_sites_page_cannot_use_the_admin_api() {
    let backend = Backend::start().await;
    let sim = Sim::for_backend(&backend).await;
    let admin = sim.admin.expect("admin listens");
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<String>();
    let post = |site: &'static str| {
        Request::post(format!("http://{admin}/faults"))
            .header("sec-fetch-site", site)
            .body(r#"{"respond":{"drop":true}}"#.to_owned())
            .expect("request")
    };
    for site in ["cross-site", "same-site"] {
        let response = client.request(post(site)).await.expect("answers");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let response = client.request(post("same-origin")).await.expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    sim.stop().await;
}
