//! The binary as a user runs it: `check`, `certs`, and `serve`'s start-up, exit codes and
//! clean shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ssp-sim");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ssp-sim");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_accepts_the_shipped_configuration() {
    let (code, text) = run(Path::new(ROOT), &["check"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("ok: routes.toml"), "{text}");
}

#[test]
fn check_lists_every_problem_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        r#"[[consumer]]
name = "a"
asid = "12x"
ods_code = "A1"
interactions = ["foundations", "gardening"]
may_send_to = ["*"]
fqdn = "https://gp.example.nhs.uk"
rate_limit = { requests = 0, per_seconds = 1 }

[[provider]]
name = "b"
ods_code = "B1"
asid = "918999198738"
party_key = "B1-1"

  [[provider.endpoint]]
  service_root = "https://p.example/B1/STU3/1/gpconnect/"
  backend = "ftp://x"
  interactions = ["foundations"]

[[provider]]
name = "c"
ods_code = "C1"
asid = "918999198738"
party_key = "C1-1"

  [[provider.endpoint]]
  service_root = "https://c.example/C1/STU3/1/gpconnect"
  backend = "builtin:demo"
  interactions = ["foundations"]
"#,
    )
    .unwrap();
    let (code, text) = run(
        Path::new(ROOT),
        &[
            "check",
            "--routes",
            dir.path().join("bad.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    for expected in [
        "bad.toml:3: consumer[0].asid: `12x` is not an ASID",
        "bad.toml:5: consumer[0].interactions: `gardening` is neither",
        "bad.toml:7: consumer[0].fqdn: `https://gp.example.nhs.uk` is not a host name",
        "bad.toml:8: consumer[0].rate_limit: requests and per_seconds must each be at least 1",
        "bad.toml:17: provider[0].endpoint[0].service_root: `https://p.example/B1/STU3/1/gpconnect/` ends with `/`",
        "bad.toml:18: provider[0].endpoint[0].backend: `ftp://x` is not a backend",
        "bad.toml:24: provider[1].asid: ASID 918999198738 is already used by provider \"b\" (line 13)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn check_names_an_unknown_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.toml"), "[[consumer]]\nname = \"a\"\nasid = \"1\"\nods_code = \"A\"\ninteractions = [\"*\"]\nmay_send_to = [\"*\"]\ncolour = \"red\"\n").unwrap();
    let (code, text) = run(
        Path::new(ROOT),
        &[
            "check",
            "--routes",
            dir.path().join("r.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        text.contains("r.toml:7") && text.contains("unknown field `colour`"),
        "{text}"
    );
}

#[test]
fn certs_writes_five_pem_files_and_will_not_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(dir.path(), &["certs", "--dir", "pki", "--san", "ssp.test"]);
    assert_eq!(code, 0, "{text}");
    for file in [
        "ca.pem",
        "server.pem",
        "server-key.pem",
        "client.pem",
        "client-key.pem",
    ] {
        assert!(dir.path().join("pki").join(file).exists(), "{file}");
    }
    let (code, text) = run(dir.path(), &["certs", "--dir", "pki"]);
    assert_eq!(code, 1);
    assert!(text.contains("--force"), "{text}");
    assert_eq!(run(dir.path(), &["certs", "--dir", "pki", "--force"]).0, 0);
}

#[test]
fn serve_with_a_bad_address_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(
        dir.path(),
        &["serve", "--listen", "nowhere", "--admin-listen", "off"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("listen: `nowhere` is not an address"),
        "{text}"
    );
}

#[test]
fn serve_with_a_store_that_is_not_a_redis_url_exits_1_naming_the_key_and_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(
        dir.path(),
        &[
            "serve",
            "--store",
            "localhost:6379",
            "--admin-listen",
            "off",
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("store: `localhost:6379`"), "{text}");
    assert!(text.contains("write redis://HOST:PORT"), "{text}");
}

#[test]
fn serve_exits_2_when_the_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, text) = run(
        dir.path(),
        &["serve", "--listen", &addr, "--admin-listen", "off"],
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&format!("cannot listen on {addr}")), "{text}");
}

/// Starts `ssp-sim` in `dir` and reads what it prints up to the client certificate line.
#[cfg(unix)]
fn spawn_serve(dir: &Path, args: &[&str]) -> (Child, String) {
    spawn_serve_logging(dir, args, Stdio::null())
}

/// As `spawn_serve`, with its log (stderr) going to `log`.
#[cfg(unix)]
fn spawn_serve_logging(dir: &Path, args: &[&str], log: Stdio) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.starts_with("client certificate:");
        seen.push(line);
        if done {
            break;
        }
    }
    (child, seen.join("\n"))
}

/// Sends SIGTERM and expects a clean exit within the 30 s drain limit (plus a margin for a
/// loaded machine).
#[cfg(unix)]
fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(35);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(
                status.code(),
                Some(0),
                "killed by the signal instead of draining"
            );
            return;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("ssp-sim did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn serve_starts_on_embedded_defaults_prints_its_listeners_and_stops_cleanly_on_sigterm() {
    // An empty directory: no routes.toml, no certs; everything comes from the binary.
    let dir = tempfile::tempdir().unwrap();
    let (child, text) = spawn_serve(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
    );
    assert!(
        text.contains("generated dev certificates in certs"),
        "{text}"
    );
    assert!(text.contains("routes:    routes.toml (embedded)"), "{text}");
    assert!(text.contains("https:     https://127.0.0.1:"), "{text}");
    assert!(
        text.contains("client certificate: certs/client.pem"),
        "{text}"
    );
    assert!(dir.path().join("certs/client.pem").exists());
    stop(child);
}

/// The status code of `GET /health` on the admin API, with an optional bearer token.
#[cfg(unix)]
fn admin_health(addr: &str, token: Option<&str>) -> u16 {
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    status_of(&http1(
        addr,
        &format!("GET /health HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n"),
    ))
}

/// Sends one plain HTTP/1.1 request, written whole, and reads the answer to the end.
#[cfg(unix)]
fn http1(addr: &str, request: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    text
}

/// The status code of an HTTP/1.1 answer.
#[cfg(unix)]
fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The address a `serve` start-up line gives after `prefix`.
#[cfg(unix)]
fn listener<'t>(text: &'t str, prefix: &str) -> &'t str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {text}"))
}

/// A log reader that goes away (`ssp-sim 2>&1 | head`, a collector restarting) costs the log
/// lines, not the requests or a clean shutdown.
#[cfg(unix)]
#[test]
fn a_closed_log_pipe_loses_log_lines_not_requests_or_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, text) = spawn_serve_logging(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        Stdio::piped(),
    );
    drop(child.stderr.take());
    let http = listener(&text, "http:      http://");
    let relative = "GET /metadata HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let answers: Vec<u16> = (0..2).map(|_| status_of(&http1(http, relative))).collect();
    stop(child);
    assert_eq!(
        answers,
        [400, 400],
        "answered although the log cannot be written"
    );
}

/// Logs read by a program or kept in a file are plain text, and a refusal made by a fault says
/// it was injected, so nobody takes it for a real SSP refusal.
#[cfg(unix)]
#[test]
fn logs_to_a_pipe_carry_no_colour_codes_and_name_an_injected_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, text) = spawn_serve_logging(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--jwt-mode",
            "off",
        ],
        Stdio::piped(),
    );
    let admin = listener(&text, "admin:     http://");
    let http = listener(&text, "http:      http://");
    let fault = r#"{"respond": {"error": "patient-not-found"}, "times": 1}"#;
    let added = http1(
        admin,
        &format!(
            "POST /faults HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{fault}",
            fault.len()
        ),
    );
    assert_eq!(status_of(&added), 201, "{added}");
    let metadata =
        "GET /https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/metadata HTTP/1.1\r\n\
        host: x\r\nssp-traceid: 5f0c7e2a-9d51-4c1b-8a7e-0b6f3f1d2c4e\r\nssp-from: 200000000359\r\n\
        ssp-to: 918999198738\r\n\
        ssp-interactionid: urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1\r\n\
        accept: application/fhir+json\r\nconnection: close\r\n\r\n";
    let faulted = http1(http, metadata);
    assert_eq!(status_of(&faulted), 404, "the fault answers: {faulted}");
    let relative = "GET /metadata HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    assert_eq!(status_of(&http1(http, relative)), 400, "check 3 refuses");
    let mut stderr = child.stderr.take().unwrap();
    stop(child);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        !log.contains('\x1b'),
        "ANSI escape codes in a piped log:\n{log}"
    );
    let faulted = log
        .lines()
        .find(|l| l.contains("error=patient-not-found"))
        .unwrap_or_else(|| panic!("no line for the fault's refusal:\n{log}"));
    assert!(
        faulted.contains("refused by a fault injected by ssp-sim, not by a real check")
            && faulted.contains("fault=\"fault-1 answered patient-not-found\""),
        "{faulted}"
    );
    let refused = log
        .lines()
        .find(|l| l.contains("error=bad-request"))
        .unwrap_or_else(|| panic!("no line for check 3's refusal:\n{log}"));
    assert!(
        refused.contains("refused")
            && refused.contains("check=\"target\"")
            && !refused.contains("fault"),
        "{refused}"
    );
}

#[cfg(unix)]
#[test]
fn the_admin_api_wants_the_token_of_the_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ssp-sim.toml"),
        "admin_token = \"s3cret\"\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let (child, text) = spawn_serve(dir.path(), &[]);
    let admin = listener(&text, "admin:     http://");
    assert_eq!(admin_health(admin, None), 401);
    assert_eq!(admin_health(admin, Some("wrong")), 401);
    assert_eq!(admin_health(admin, Some("s3cret")), 200);
    stop(child);
}

#[test]
fn an_admin_api_beyond_loopback_without_a_token_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("set admin_token"), "{text}");
}

#[test]
fn check_warns_of_a_listener_beyond_loopback_without_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("ssp-sim.toml");
    let check = |text: &str| {
        std::fs::write(&settings, text).unwrap();
        run(
            Path::new(ROOT),
            &["check", "--config", settings.to_str().unwrap()],
        )
    };
    let (code, text) = check("listen = \"0.0.0.0:8443\"\nclient_auth = \"none\"\n");
    assert_eq!(code, 0, "a warning, not an error: {text}");
    assert!(
        text.contains("warning: listen: 0.0.0.0:8443 is reachable beyond this machine and client_auth is none"),
        "{text}"
    );
    let (code, text) = check("http_listen = \"0.0.0.0:8080\"\n");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("warning: http_listen: 0.0.0.0:8080"),
        "{text}"
    );
    let (_, text) = check("listen = \"0.0.0.0:8443\"\n");
    assert!(
        !text.contains("warning"),
        "client certificates are required: {text}"
    );
}
