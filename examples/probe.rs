//! Hostile-consumer probes: each starts a real `ssp-sim` binary on loopback with a backend of
//! its own, plays one bad client, and prints what the simulator's process paid for it
//! (resident memory from `/proc/<pid>/status`, times, answers). The figures of issue 11 come
//! from these; every load is bounded in count and time, and goes to 127.0.0.1 only.
//!
//! ```sh
//! cargo build --release --bin ssp-sim --example probe
//! P=target/release/examples/probe
//! $P slow-readers --n 200                      # consumers that ask for 100 MiB and stop reading
//! $P faults --n 20000 --regex-n 200            # the fault store: cap, cost of an add, regex size
//! $P journal --n 1000                          # journal entries with 60 KB targets
//! $P --set max_connections=50 silent-sockets --n 50   # sockets that never start TLS
//! ```
//! `--set key=value` adds a line to the simulator's settings file (repeatable), e.g.
//! `--set write_timeout_ms=2000`; `--bin` names another binary (an older build, to compare).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";
const READ_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1";
const SMALL: &[u8] = br#"{"resourceType":"Patient","id":"1"}"#;

#[derive(Parser)]
struct Cli {
    /// The simulator binary.
    #[arg(long, default_value = "target/release/ssp-sim")]
    bin: PathBuf,
    /// An extra `key=value` line of the simulator's settings file; repeatable.
    #[arg(long = "set")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Probe,
}

#[derive(Subcommand)]
enum Probe {
    /// Consumers that ask for a large response and never read it.
    SlowReaders {
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Size of the backend's response, MiB.
        #[arg(long, default_value_t = 100)]
        body_mib: u64,
        /// Seconds to keep the connections open.
        #[arg(long, default_value_t = 40)]
        hold_s: u64,
    },
    /// Many `POST /faults`: how many are accepted, what each add and a request then cost.
    Faults {
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Faults with the path regex `\w{20}` added afterwards, to weigh a regex.
        #[arg(long, default_value_t = 200)]
        regex_n: usize,
    },
    /// Requests whose 60 KB target fails check 3, so each journal entry is as large as it gets.
    Journal {
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// Sockets that connect and send nothing, then one good client.
    SilentSockets {
        #[arg(long, default_value_t = 50)]
        n: usize,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let backend = Backend::start().await;
    let sim = Sim::spawn(&cli.bin, &cli.set, backend.addr);
    match cli.command {
        Probe::SlowReaders {
            n,
            body_mib,
            hold_s,
        } => slow_readers(&sim, n, body_mib, hold_s).await,
        Probe::Faults { n, regex_n } => faults(&sim, n, regex_n).await,
        Probe::Journal { n } => journal(&sim, n).await,
        Probe::SilentSockets { n } => silent_sockets(&sim, n).await,
    }
}

/// A running simulator child process in a scratch directory.
struct Sim {
    child: Child,
    dir: tempfile::TempDir,
    https: SocketAddr,
    admin: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

impl Sim {
    fn spawn(bin: &Path, set: &[String], backend: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("scratch dir");
        let certs = dir.path().join("certs");
        let status = Command::new(bin)
            .args(["certs", "--dir"])
            .arg(&certs)
            .stdout(Stdio::null())
            .status()
            .expect("run ssp-sim certs");
        assert!(status.success(), "ssp-sim certs failed");
        std::fs::write(dir.path().join("routes.toml"), routes(backend)).unwrap();
        let (https, admin) = (free_port(), free_port());
        let mut settings = format!(
            "listen = \"{https}\"\nadmin_listen = \"{admin}\"\ncerts = \"{}\"\nroutes = \"{}\"\njwt_mode = \"off\"\n",
            certs.display(),
            dir.path().join("routes.toml").display()
        );
        for line in set {
            let (key, value) = line.split_once('=').expect("--set key=value");
            let value = if value.parse::<f64>().is_ok() || value == "true" || value == "false" {
                value.to_owned()
            } else {
                format!("\"{value}\"")
            };
            settings.push_str(&format!("{key} = {value}\n"));
        }
        std::fs::write(dir.path().join("ssp-sim.toml"), settings).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("ssp-sim.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ssp-sim");
        let started = Instant::now();
        while std::net::TcpStream::connect(admin).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "ssp-sim did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let tls = tls_config(&certs);
        Self {
            child,
            dir,
            https,
            admin,
            tls,
        }
    }

    /// (current, peak) resident memory of the simulator, MB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Log lines of the simulator that contain `text`.
    fn log_lines(&self, text: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("stderr.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }

    async fn tls(&self) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.https).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
    }

    fn admin_client(&self) -> Admin {
        Admin {
            base: format!("http://{}", self.admin),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn ssp_client(&self) -> Ssp {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_only()
            .enable_http1()
            .build();
        Ssp {
            base: format!("https://localhost:{}", self.https.port()),
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }
}

fn routes(backend: SocketAddr) -> String {
    format!(
        r#"
[[consumer]]
name = "Probe consumer"
asid = "200000000359"
ods_code = "A11111"
interactions = ["*"]
may_send_to = ["*"]

[[provider]]
name = "Probe provider"
ods_code = "A20047"
asid = "918999198738"
party_key = "A20047-821870"

  [[provider.endpoint]]
  service_root = "{ROOT}"
  backend = "http://{backend}/base"
  interactions = ["foundations"]
"#
    )
}

fn tls_config(certs: &Path) -> Arc<rustls::ClientConfig> {
    use ssp_sim::config::pem::{load_certs, load_key, load_roots};
    use ssp_sim::proxy::tls::provider;
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(load_roots(&certs.join("ca.pem")).expect("ca.pem"))
            .with_client_auth_cert(
                load_certs(&certs.join("client.pem")).expect("client.pem"),
                load_key(&certs.join("client-key.pem")).expect("client-key.pem"),
            )
            .expect("client identity"),
    )
}

/// The request head of a `read:patient-1` for `path` (below the service root), as raw text.
fn raw_request(path: &str) -> String {
    format!(
        "GET /{ROOT}{path} HTTP/1.1\r\nhost: localhost\r\nssp-traceid: {}\r\nssp-from: 200000000359\r\nssp-to: 918999198738\r\nssp-interactionid: {READ_PATIENT}\r\n\r\n",
        uuid::Uuid::new_v4()
    )
}

/// A raw HTTP/1.1 backend: `/base/big/<MiB>` streams that many MiB, anything else is small.
/// It writes straight from a static buffer, so a stalled reader costs it no memory.
struct Backend {
    addr: SocketAddr,
}

impl Backend {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_backend(stream));
            }
        });
        Self { addr }
    }
}

async fn serve_backend(mut stream: TcpStream) {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        head.extend_from_slice(&buf[..n]);
        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).into_owned();
            head.drain(..end + 4);
            let path = text.split(' ').nth(1).unwrap_or("");
            let mib = path
                .split("/big/")
                .nth(1)
                .and_then(|m| m.parse::<u64>().ok());
            let result = match mib {
                Some(mib) => {
                    let len = mib << 20;
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {len}\r\n\r\n");
                    let mut sent = 0u64;
                    let mut r = stream.write_all(head.as_bytes()).await;
                    while r.is_ok() && sent < len {
                        let n = CHUNK.len().min((len - sent) as usize);
                        r = stream.write_all(&CHUNK[..n]).await;
                        sent += n as u64;
                    }
                    r
                }
                None => {
                    let mut answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\n\r\n", SMALL.len()).into_bytes();
                    answer.extend_from_slice(SMALL);
                    stream.write_all(&answer).await
                }
            };
            if result.is_err() {
                return;
            }
        }
    }
}

struct Admin {
    base: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Admin {
    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        match self.client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                (
                    status,
                    String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
                )
            }
            Err(e) => (0, e.to_string()),
        }
    }

    /// The value of an unlabelled series of `GET /metrics`.
    async fn metric(&self, name: &str) -> Option<f64> {
        let (_, text) = self.call("GET", "/metrics", "").await;
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }
}

struct Ssp {
    base: String,
    client: Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
}

impl Ssp {
    /// One `read:patient-1` of `path` below the service root: status and time taken.
    async fn get(&self, path: &str) -> (u16, Duration) {
        let began = Instant::now();
        let request = Request::builder()
            .uri(format!("{}/{ROOT}{path}", self.base))
            .header("ssp-traceid", uuid::Uuid::new_v4().to_string())
            .header("ssp-from", "200000000359")
            .header("ssp-to", "918999198738")
            .header("ssp-interactionid", READ_PATIENT)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let status = match self.client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.into_body().collect().await;
                status
            }
            Err(_) => 0,
        };
        (status, began.elapsed())
    }

    /// Median time of `n` sequential requests on one keep-alive connection, ms.
    async fn median_ms(&self, n: usize) -> f64 {
        let _ = self.get("/Patient/1").await;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            times.push(self.get("/Patient/1").await.1);
        }
        times.sort();
        times[n / 2].as_secs_f64() * 1000.0
    }
}

async fn slow_readers(sim: &Sim, n: usize, body_mib: u64, hold_s: u64) {
    let admin = sim.admin_client();
    let (before, _) = sim.rss();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tls = sim.tls().await.expect("TLS connection");
        tls.write_all(raw_request(&format!("/big/{body_mib}")).as_bytes())
            .await
            .expect("send request");
        held.push(tls);
    }
    println!("slow-readers: {n} connections each asked for {body_mib} MiB and read nothing");
    println!("  rss before: {before:.1} MB");
    let started = Instant::now();
    let mut peak = 0f64;
    let mut last_open = None;
    while started.elapsed() < Duration::from_secs(hold_s) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss, _) = sim.rss();
        peak = peak.max(rss);
        let open = admin.metric("ssp_sim_open_connections").await;
        if open != last_open {
            println!(
                "  t={:>3.0} s: rss {rss:.1} MB, open connections {}",
                started.elapsed().as_secs_f64(),
                open.map_or("?".into(), |o| o.to_string())
            );
            last_open = open;
        }
    }
    println!(
        "  peak rss: {peak:.1} MB ({:.0} KB per connection)",
        (peak - before) * 1024.0 / n as f64
    );
    drop(held);
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "  rss 5 s after the clients left: {:.1} MB, open connections {}",
        sim.rss().0,
        admin
            .metric("ssp_sim_open_connections")
            .await
            .map_or("?".into(), |o| o.to_string())
    );
}

async fn faults(sim: &Sim, n: usize, regex_n: usize) {
    let admin = sim.admin_client();
    let ssp = sim.ssp_client();
    let (before, _) = sim.rss();
    let latency_before = ssp.median_ms(200).await;
    println!("faults: {n} POST /faults (match.path ^/never$, so no request matches)");
    let fault = r#"{"match":{"path":"^/never$"},"respond":{"drop":true}}"#;
    let mut accepted = 0;
    let mut first_refusal = None;
    let chunk = (n / 10).max(1);
    let mut chunk_started = Instant::now();
    for i in 1..=n {
        let (status, body) = admin.call("POST", "/faults", fault).await;
        if status == 201 {
            accepted += 1;
        } else if first_refusal.is_none() {
            first_refusal = Some((i, status, body));
        }
        if i % chunk == 0 {
            println!(
                "  adds {:>6}-{i:<6} took {:.2} s",
                i - chunk + 1,
                chunk_started.elapsed().as_secs_f64()
            );
            chunk_started = Instant::now();
        }
    }
    let (after, _) = sim.rss();
    let latency_after = ssp.median_ms(200).await;
    println!("  accepted: {accepted}");
    if let Some((i, status, body)) = first_refusal {
        println!("  first refused: #{i}, {status} {body}");
    }
    println!("  rss: {before:.1} MB -> {after:.1} MB");
    println!("  median proxied request: {latency_before:.2} ms -> {latency_after:.2} ms");

    let _ = admin.call("DELETE", "/faults", "").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, _) = sim.rss();
    let regex = r#"{"match":{"path":"\\w{20}"},"respond":{"drop":true}}"#;
    let mut accepted = 0;
    let mut refusal = None;
    for _ in 0..regex_n {
        let (status, body) = admin.call("POST", "/faults", regex).await;
        if status == 201 {
            accepted += 1;
        } else {
            refusal = Some((status, body));
        }
    }
    // A request, so every regex is used once (their lazy caches fill).
    let _ = ssp.get("/Patient/1").await;
    let (after, _) = sim.rss();
    println!(
        "faults: {regex_n} POST /faults with match.path \\w{{20}}: {accepted} accepted, rss {before:.1} MB -> {after:.1} MB ({:.2} MB each)",
        if accepted > 0 { (after - before) / accepted as f64 } else { 0.0 }
    );
    if let Some((status, body)) = refusal {
        println!("  refused: {status} {body}");
    }
}

async fn journal(sim: &Sim, n: usize) {
    let admin = sim.admin_client();
    let (before, _) = sim.rss();
    let mut tls = sim.tls().await.expect("TLS connection");
    let long = format!("/x{}", "a".repeat(60_000));
    let mut reply = vec![0u8; 64 * 1024];
    for _ in 0..n {
        let request = raw_request("").replacen(&format!("/{ROOT}"), &long, 1);
        tls.write_all(request.as_bytes()).await.expect("send");
        // Read the answer (a small 400) so the next request can follow on the connection.
        let mut got = Vec::new();
        while !complete(&got) {
            let k = tls.read(&mut reply).await.expect("read");
            assert!(k > 0, "connection closed");
            got.extend_from_slice(&reply[..k]);
        }
    }
    drop(tls);
    let (after, peak_before) = sim.rss();
    println!("journal: {n} requests with a 60 KB target that fails check 3");
    println!(
        "  rss: {before:.1} MB -> {after:.1} MB ({:.1} KB per entry)",
        (after - before) * 1024.0 / n as f64
    );
    let began = Instant::now();
    let (status, body) = admin.call("GET", "/journal", "").await;
    let (_, peak_after) = sim.rss();
    println!(
        "  GET /journal: {status}, {:.1} MB in {:.2} s; peak rss {peak_before:.1} MB -> {peak_after:.1} MB",
        body.len() as f64 / 1e6,
        began.elapsed().as_secs_f64()
    );
}

/// Whether `got` holds a whole response with a Content-Length body.
fn complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + len
}

async fn silent_sockets(sim: &Sim, n: usize) {
    let mut silent = Vec::with_capacity(n);
    for _ in 0..n {
        silent.push(TcpStream::connect(sim.https).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("silent-sockets: {n} TCP connections that never start TLS");
    let began = Instant::now();
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let ssp = sim.ssp_client();
        let (status, _) = ssp.get("/Patient/1").await;
        if status == 200 {
            break format!("200 after {:.2} s", began.elapsed().as_secs_f64());
        }
        if began.elapsed() > Duration::from_secs(20) {
            break "no answer within 20 s".to_owned();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("  a good client: {outcome} ({attempts} attempts)");
    drop(silent);
    // Every slot taken by an idle TLS session, then more clients: each is refused.
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        if let Ok(tls) = sim.tls().await {
            idle.push(tls);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = 0;
    for _ in 0..300 {
        if sim.ssp_client().get("/Patient/1").await.0 != 200 {
            refused += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "  {} idle TLS sessions, then 300 more clients: {refused} refused, {} log lines about it",
        idle.len(),
        sim.log_lines("connection refused") + sim.log_lines("connections refused")
    );
}
