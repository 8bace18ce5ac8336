//! Hostile consumers and backends (issue 11), over real sockets: nothing forged reaches a
//! backend, nothing escapes the registered endpoint, odd backend answers are 502s, a consumer's
//! own framing errors are its own, silent sockets lock nobody out, faults and journal entries
//! are bounded, and no NHS number or JWT claim value reaches the logs or the journal.
//! (Slow readers have their own test binary, `slow_readers.rs`: it measures memory.)

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use ssp_sim::cli::certs::CertPaths;
use ssp_sim::config::settings::Overrides;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a raw HTTP/1.1 request head (plus `body`) over a fresh TLS connection and returns the
/// whole answer as text (the connection is closed after it).
async fn raw(sim: &Sim, head: &str, body: &[u8]) -> String {
    let mut tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
        .await
        .expect("TLS");
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut text)).await;
    String::from_utf8_lossy(&text).into_owned()
}

/// The head of a request through the SSP for `target` with valid SSP headers, closing after.
fn ssp_head(method: &str, target: &str, interaction: &str, extra: &str) -> String {
    format!(
        "{method} /{target} HTTP/1.1\r\nhost: localhost\r\nssp-traceid: {}\r\nssp-from: {CONSUMER}\r\nssp-to: {PROVIDER}\r\nssp-interactionid: {interaction}\r\nconnection: close\r\n{extra}\r\n",
        uuid::Uuid::new_v4()
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The elements of a `Forwarded` header, each a list of (parameter, value) pairs, read as
/// RFC 7239 section 4 has it (token or quoted-string values, `\` escapes inside quotes).
fn forwarded_elements(value: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let mut elements = vec![Vec::new()];
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next() != Some('=') || name.is_empty() {
            return Err(format!("no `=` after `{name}` in {value}"));
        }
        let mut param = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => param.push(chars.next().ok_or("dangling escape")?),
                    Some(c) => param.push(c),
                    None => return Err(format!("unterminated quoted-string in {value}")),
                }
            }
        } else {
            param = std::iter::from_fn(|| chars.next_if(|c| !matches!(c, ';' | ','))).collect();
            if !param
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
            {
                return Err(format!(
                    "`{param}` is neither a token nor quoted in {value}"
                ));
            }
        }
        elements
            .last_mut()
            .unwrap()
            .push((name.to_ascii_lowercase(), param));
        match chars.next() {
            None => return Ok(elements),
            Some(';') => {}
            Some(',') => elements.push(Vec::new()),
            Some(c) => return Err(format!("unexpected `{c}` in {value}")),
        }
    }
}

// Finding 4: `Forwarded` could be forged.

#[tokio::test]
async fn a_forged_forwarded_does_not_reach_the_backend() {
    let (sim, backend) = sim_with_backend().await;
    let head = ssp_head(
        "GET",
        &format!("{ROOT}/metadata"),
        METADATA,
        "forwarded: for=6.6.6.6;proto=https\r\nx-forwarded-for: 6.6.6.6\r\n",
    )
    .replace("host: localhost", "host: a\";for=6.6.6.6");
    let answer = raw(&sim, &head, b"").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let got = &backend.requests()[0];
    let forwarded: Vec<&str> = got
        .headers
        .get_all("forwarded")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    let elements = forwarded_elements(forwarded[0]).unwrap();
    assert_eq!(
        elements,
        [vec![
            ("for".to_owned(), "127.0.0.1".to_owned()),
            ("proto".to_owned(), "https".to_owned())
        ]],
        "one hop, ours; a Host that is not a host name is left out: {}",
        forwarded[0]
    );
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");

    // A real host name is kept, quoted as RFC 7239 asks for a value with a colon.
    let answer = raw(
        &sim,
        &ssp_head("GET", &format!("{ROOT}/metadata"), METADATA, ""),
        b"",
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let forwarded = backend.requests()[1].headers["forwarded"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(forwarded, "for=127.0.0.1;proto=https;host=localhost");
    let head = ssp_head("GET", &format!("{ROOT}/metadata"), METADATA, "")
        .replace("host: localhost", "host: localhost:8443");
    raw(&sim, &head, b"").await;
    let forwarded = backend.requests()[2].headers["forwarded"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        forwarded_elements(&forwarded).unwrap()[0][2],
        ("host".to_owned(), "localhost:8443".to_owned()),
        "{forwarded}"
    );
    sim.stop().await;
}

// Finding 5: dot segments escaped the backend's base path.

#[tokio::test]
async fn dot_segments_and_backslashes_after_the_service_root_are_refused() {
    let (sim, backend) = sim_with_backend().await;
    for (rest, segment) in [
        ("/../../../../admin/faults", ".."),
        ("/%2e%2e/%2E%2E/admin/faults", "%2e%2e"),
        ("/..%2f..%2fadmin/faults", "..%2f..%2fadmin"),
        ("/Patient/.%2e/x", ".%2e"),
        ("/./metadata", "."),
        ("/Patient%5c..%5cadmin", "Patient%5c..%5cadmin"),
        ("/Patient/1%5C", "1%5C"),
    ] {
        let answer = raw(
            &sim,
            &ssp_head("GET", &format!("{ROOT}{rest}"), READ_PATIENT, ""),
            b"",
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{rest}: {answer}");
        assert!(
            answer.contains(&format!("`{segment}`")),
            "{rest}: the diagnostics name the segment: {answer}"
        );
        assert!(answer.contains("BAD_REQUEST"), "{rest}: {answer}");
    }
    assert!(
        backend.requests().is_empty(),
        "{:?}",
        backend
            .requests()
            .iter()
            .map(|r| &r.uri)
            .collect::<Vec<_>>()
    );
    // Dots inside a segment, and anything in the query, are ordinary.
    for rest in ["/metadata?x=../..", "/metadata?_format=json&a=%2e%2e"] {
        let answer = raw(
            &sim,
            &ssp_head("GET", &format!("{ROOT}{rest}"), METADATA, ""),
            b"",
        )
        .await;
        assert_eq!(status_of(&answer), 200, "{rest}: {answer}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_request_may_carry_100_headers_and_the_101st_is_refused_with_431() {
    let (sim, backend) = sim_with_backend().await;
    // An interaction the SSP refuses itself, so that what answers is ssp-sim (its listener, or
    // its checks), never the backend with a header limit of its own. `ssp_head` sends six
    // headers itself; the listener takes 100 and refuses the 101st.
    let head = |n: usize| {
        let extra: String = (0..n).map(|i| format!("x-extra-{i}: {i}\r\n")).collect();
        ssp_head("GET", &format!("{ROOT}/metadata"), "urn:unknown", &extra)
    };
    let read = raw(&sim, &head(94), b"").await;
    assert!(
        read.contains("OperationOutcome"),
        "checked, not refused: {read}"
    );
    let refused = raw(&sim, &head(95), b"").await;
    assert_eq!(status_of(&refused), 431, "{refused}");
    assert!(!refused.contains("OperationOutcome"), "{refused}");
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

// Finding 6: a backend's 101 reached the consumer bare.

#[tokio::test]
async fn a_backend_101_is_error_communicating_and_an_interim_103_is_passed_over() {
    let url = scripted_backend(|mut stream| async move {
        let head = read_head(&mut stream).await;
        let answer: &[u8] = if head.contains("/early") {
            b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 2\r\n\r\n{}"
        } else {
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        };
        let _ = stream.write_all(answer).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let sim = Sim::start(&routes(&url)).await;
    let call = Call::new(Method::GET, format!("{ROOT}/Patient/1"), READ_PATIENT);
    let trace = call.trace_id().to_owned();
    let reply = sim.client().send(call).await;
    reply.assert_status(StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.display(),
        format!("ERROR_COMMUNICATING_TO_ENDPOINT_URL_{ROOT}/Patient/1")
    );
    assert!(
        reply.header("ssp-sim-diagnostics").contains("101"),
        "{:?}",
        reply.headers
    );
    let journal = sim
        .admin_client()
        .get(&format!("/journal?trace_id={trace}"))
        .await
        .json();
    assert_eq!(journal[0]["status"], 502, "{journal}");
    assert_eq!(journal[0]["error"], "error-communicating", "{journal}");

    let reply = sim
        .client()
        .send(Call::new(
            Method::GET,
            format!("{ROOT}/Patient/early"),
            READ_PATIENT,
        ))
        .await;
    reply.assert_status(StatusCode::OK);
    sim.stop().await;
}

// Finding 7: a consumer's bad chunk framing was answered 502 and counted against the backend.

#[tokio::test]
async fn a_consumers_broken_chunked_body_is_its_own_400_not_a_backend_error() {
    let (sim, _backend) = sim_with_backend().await;
    let head = ssp_head(
        "POST",
        &format!("{ROOT}/Appointment"),
        "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1",
        "content-type: application/fhir+json\r\ntransfer-encoding: chunked\r\n",
    );
    let answer = raw(&sim, &head, b"5\r\n{\"a\":\r\nzz-not-a-size\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("BAD_REQUEST"), "{answer}");
    assert!(answer.contains("request body"), "{answer}");
    let metrics = sim.admin_client().get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert_eq!(
        metric(&text, "ssp_sim_backend_errors_total"),
        Some(0.0),
        "{text}"
    );
    sim.stop().await;
}

// Finding 7: an endlessly dribbling backend body had no total deadline.

#[tokio::test]
async fn a_dribbling_backend_body_is_cut_off_at_the_total_deadline() {
    let url = scripted_backend(|mut stream| async move {
        read_head(&mut stream).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 100000\r\n\r\n";
        if stream.write_all(head).await.is_err() {
            return;
        }
        // One byte every 50 ms: never a pause as long as the backend timeout.
        for _ in 0..100_000 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    })
    .await;
    let overrides = Overrides {
        backend_timeout_ms: Some(5_000),
        ..Default::default()
    };
    let sim = Sim::start_with_settings(
        &routes(&url),
        overrides,
        "backend_body_timeout_ms = 1000\n",
        Pki::new(),
    )
    .await;
    let started = Instant::now();
    let answer = raw(
        &sim,
        &ssp_head("GET", &format!("{ROOT}/Patient/1"), READ_PATIENT, ""),
        b"",
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status_of(&answer), 200, "the head came at once: {answer}");
    assert!(
        elapsed < Duration::from_secs(4),
        "cut off after {elapsed:?}, not at the 1 s deadline"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(
        body.len() < 100,
        "the body is cut off, not complete: {} of 100000 bytes",
        body.len()
    );
    sim.stop().await;
}

// Finding 7: 50 silent sockets locked a good client out at max_connections = 50.

#[tokio::test]
async fn silent_sockets_do_not_lock_out_a_good_client_and_refusals_are_counted() {
    let backend = Backend::start().await;
    let sim = Sim::start_with_settings(
        &routes(&backend.url()),
        Overrides::default(),
        "max_connections = 5\n",
        Pki::new(),
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(tokio::net::TcpStream::connect(sim.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let served = loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            Client::new(sim.addr, &sim.pki.paths, Some(&sim.pki.paths)).try_send(Call::metadata()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            break reply.status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a good client was locked out by 5 silent sockets"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(served, StatusCode::OK);

    // Five established sessions take every slot: a sixth session is refused, and counted.
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let mut tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
            .await
            .unwrap();
        // A request proves the session holds a slot.
        tls.write_all(format!("GET /{ROOT}/metadata HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tls.read_exact(&mut buf).await.unwrap();
        sessions.push(tls);
    }
    drop(silent);
    let refused = Client::new(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
        .try_send(Call::metadata())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let text = String::from_utf8_lossy(&sim.admin_client().get("/metrics").await.body).into_owned();
    assert!(
        metric(
            &text,
            "ssp_sim_connections_refused_total{reason=\"max_connections\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    drop(sessions);
    sim.stop().await;
}

// Finding 2: the fault store had no cap.

#[tokio::test]
async fn the_1001st_fault_is_refused_with_429_naming_the_cap_and_its_setting() {
    let sim = Sim::start(&routes("builtin:demo")).await;
    let admin = sim.admin_client();
    let fault = json!({"match": {"path": "^/never$"}, "respond": {"drop": true}});
    for _ in 0..1000 {
        admin.add_fault(fault.clone()).await;
    }
    let refused = admin.post("/faults", fault.clone()).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let body = refused.json();
    let error = body["error"].as_str().unwrap_or("");
    assert!(
        error.contains("1000") && error.contains("max_faults"),
        "{body}"
    );
    assert_eq!(body["setting"], "max_faults", "{body}");
    assert_eq!(body["max_faults"], 1000, "{body}");
    // Room again once one goes.
    let first = admin.get("/faults").await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        admin.delete(&format!("/faults/{first}")).await.status,
        StatusCode::NO_CONTENT
    );
    admin.add_fault(fault).await;
    sim.stop().await;
}

#[tokio::test]
async fn a_path_regex_is_small_and_one_too_large_to_hold_is_refused_naming_the_field() {
    let sim = Sim::start(&routes("builtin:demo")).await;
    let admin = sim.admin_client();
    // FHIR request targets are ASCII, so `\w` is matched as ASCII: small, not the 1.3 MB of
    // its Unicode table repeated twenty times.
    admin
        .add_fault(json!({"match": {"path": "\\w{20}"}, "respond": {"drop": true}}))
        .await;
    let reply = admin
        .post(
            "/faults",
            json!({"match": {"path": "[a-z]{1000}"}, "respond": {"drop": true}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["field"], "match.path", "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("too large"),
        "{body}"
    );
    sim.stop().await;
}

// Finding 7: journal entries held up to ~80 KB of consumer text.

#[tokio::test]
async fn a_journal_entry_stays_small_whatever_the_consumer_sends() {
    let sim = Sim::start(&routes("builtin:demo")).await;
    let huge = "a".repeat(25_000);
    let call = Call::new(Method::GET, format!("x{huge}"), METADATA)
        .header("Ssp-From", &format!("1{huge}"));
    let trace = call.trace_id().to_owned();
    let reply = sim.client().send(call).await;
    reply.assert_status(StatusCode::BAD_REQUEST);
    assert!(
        reply.body.len() < 16 * 1024,
        "the answer echoes {} bytes",
        reply.body.len()
    );
    let entry = sim
        .admin_client()
        .get(&format!("/journal?trace_id={trace}"))
        .await;
    assert_eq!(entry.json().as_array().map(Vec::len), Some(1));
    assert!(
        entry.body.len() < 16 * 1024,
        "a journal entry of {} bytes",
        entry.body.len()
    );
    sim.stop().await;
}

// Finding 3: NHS numbers and claim values in logs and the journal.

const NHS_NUMBER: &str = "9434765870";
const STRUCTURED_ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/structured";
const OTHER_ROOT: &str = "https://second.example.nhs.uk/B82617/STU3/1/gpconnect";
const SEARCH_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1";

/// A token from `ssp-sim jwt`, with some claims replaced.
fn token(interaction: &str, aud: &str, changes: Value) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ssp-sim"))
        .args(["jwt", "--interaction", interaction, "--aud", aud])
        .output()
        .expect("ssp-sim jwt");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut parts = token.split('.');
    let header = parts.next().unwrap().to_owned();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    for (name, value) in changes.as_object().unwrap() {
        payload[name] = value.clone();
    }
    format!(
        "{header}.{}.",
        URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes())
    )
}

/// The real binary with `RUST_LOG=info`, its log lines captured.
struct Binary {
    child: std::process::Child,
    dir: tempfile::TempDir,
    https: std::net::SocketAddr,
    admin: std::net::SocketAddr,
}

impl Binary {
    fn start(routes: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
        std::fs::write(
            dir.path().join("ssp-sim.toml"),
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\njwt_mode = \"enforce\"\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ssp-sim"))
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut https, mut admin) = (None, None);
        while let Some(Ok(line)) = lines.next() {
            if let Some(a) = line.strip_prefix("https:     https://") {
                https = a.split(' ').next().and_then(|a| a.parse().ok());
            }
            if let Some(a) = line.strip_prefix("admin:     http://") {
                admin = a.parse().ok();
            }
            if line.starts_with("client certificate:") {
                break;
            }
        }
        Self {
            child,
            https: https.expect("an https line"),
            admin: admin.expect("an admin line"),
            dir,
        }
    }

    fn client(&self) -> Client {
        let certs = CertPaths::new(self.dir.path().join("certs"));
        Client::new(self.https, &certs, Some(&certs))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn no_nhs_number_or_claim_value_reaches_the_info_log_or_the_journal() {
    let backend = Backend::start().await;
    // The second surgery's endpoint (the last one) reports instead of enforcing.
    let mut routes = routes(&backend.url()).replace(
        "cpa_id = \"S20047821870\"\n",
        "cpa_id = \"S20047821870\"\n\n  [provider.demo]\n  gpconnect = true\n  structured = true\n",
    );
    let at = routes.rfind("interactions = [\"foundations\"]").unwrap();
    routes.insert_str(at, "jwt_mode = \"report\"\n  ");
    let sim = Binary::start(&routes);
    let client = sim.client();
    let bearer = |t: String| format!("Bearer {t}");

    // A structured record for a patient the demo does not hold: the NHS number is in the body.
    let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "patientNHSNumber",
        "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}}]});
    let reply = client
        .send(
            Call::new(
                Method::POST,
                format!("{STRUCTURED_ROOT}/Patient/$gpc.getstructuredrecord"),
                STRUCTURED,
            )
            .header(
                "Authorization",
                &bearer(token(STRUCTURED, STRUCTURED_ROOT, json!({}))),
            )
            .body("application/fhir+json", parameters.to_string()),
        )
        .await;
    reply.assert_outcome(StatusCode::NOT_FOUND, "PATIENT_NOT_FOUND");
    assert!(
        reply.diagnostics().contains(NHS_NUMBER),
        "the consumer is told"
    );

    // A patient search naming the NHS number in the URL, with claim values that break rules.
    let leaky = json!({"iss": "LEAKED-ISS-VALUE", "sub": "LEAKED-SUB-VALUE"});
    let reply = client
        .send(
            Call::new(
                Method::GET,
                format!(
                    "{ROOT}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C{NHS_NUMBER}"
                ),
                SEARCH_PATIENT,
            )
            .header(
                "Authorization",
                &bearer(token(SEARCH_PATIENT, ROOT, leaky.clone())),
            ),
        )
        .await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        reply.diagnostics().contains("LEAKED-ISS-VALUE"),
        "the consumer is told"
    );

    // Report mode: forwarded, the broken rules logged as a warning.
    let reply = client
        .send(
            Call::new(Method::GET, format!("{OTHER_ROOT}/metadata"), METADATA)
                .header("Ssp-To", "918999198993")
                .header(
                    "Authorization",
                    &bearer(token(
                        METADATA,
                        "https://aud.example/LEAKED-AUD-VALUE",
                        json!({}),
                    )),
                ),
        )
        .await;
    reply.assert_status(StatusCode::OK);
    assert!(reply
        .header("ssp-sim-warnings")
        .contains("LEAKED-AUD-VALUE"));

    let journal = AdminClient::new(sim.admin).get("/journal").await;
    let journal_text = String::from_utf8_lossy(&journal.body).into_owned();
    assert_eq!(
        journal.json().as_array().map(Vec::len),
        Some(3),
        "{journal_text}"
    );
    // Give the log lines a moment to reach the file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = sim.log();
    assert!(
        log.contains("refused"),
        "the log is captured at INFO: {log}"
    );
    for (what, text) in [("log", &log), ("journal", &journal_text)] {
        for secret in [
            NHS_NUMBER,
            "LEAKED-ISS-VALUE",
            "LEAKED-SUB-VALUE",
            "LEAKED-AUD-VALUE",
        ] {
            assert!(!text.contains(secret), "{secret} is in the {what}:\n{text}");
        }
    }
    // What the journal keeps instead: the rules and claims, not their values.
    for rule in ["claim.iss", "claim.sub", "claim.aud"] {
        assert!(
            journal_text.contains(rule),
            "{rule} is named: {journal_text}"
        );
    }
    assert!(
        journal_text.contains("nhs-number%7C**********"),
        "the NHS number is masked in the target: {journal_text}"
    );
}
