//! The benchmark's tools in one binary: a fast backend, a bounded load generator that reports
//! requests/s and latency percentiles (keep-alive) or TLS handshakes/s (new connection per
//! request), a holder of many idle TLS connections, and a single large upload or download (for
//! the memory phases). Used by `bench/run`; loopback only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a small FHIR JSON answer to every request, and `--big-mb` megabytes to a request
    /// whose path holds `/Binary/`.
    Backend {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 100)]
        big_mb: usize,
    },
    /// Keep-alive load: requests/s and latency percentiles.
    Load(Target),
    /// A new TLS connection (full handshake, no resumption) per request: handshakes/s.
    Handshakes(Target),
    /// Open `--connections` connections, send one request on each, print `held=N`, then keep
    /// them open and idle for `--seconds`.
    Hold(Target),
    /// One request on one connection with a body of `--upload-mb` megabytes (0: none); the
    /// answer is read to its end and counted.
    Transfer {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 0)]
        upload_mb: usize,
    },
}

#[derive(clap::Args, Clone)]
struct Target {
    /// Where to connect (must be on loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// Request path, e.g. /https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/metadata.
    #[arg(long)]
    path: String,
    /// Header `name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Use TLS with this CA and client certificate directory (ca.pem, client.pem, client-key.pem).
    #[arg(long)]
    tls: Option<PathBuf>,
    /// The one TLS version offered: 1.2 (what Spine mandates, the default) or 1.3.
    #[arg(long, default_value = "1.2")]
    tls_version: String,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Stop after this many requests in all.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: usize,
    /// A label printed with the result.
    #[arg(long, default_value = "")]
    label: String,
}

const BODY: &str = r#"{"resourceType":"CapabilityStatement","version":"1.2.7","status":"active","kind":"instance","fhirVersion":"3.0.1"}"#;

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Cmd::Backend { listen, big_mb } => backend(listen, big_mb).await,
        Cmd::Load(t) => report(&t, "keep-alive", run(t.clone(), false).await),
        Cmd::Handshakes(t) => report(&t, "handshake", run(t.clone(), true).await),
        Cmd::Hold(t) => hold(t).await,
        Cmd::Transfer { target, upload_mb } => transfer(target, upload_mb).await,
    }
}

const CHUNK: usize = 64 * 1024;

/// `megabytes` of zeros as a body, produced chunk by chunk so neither side holds it whole.
fn zeros(megabytes: usize) -> Body {
    let chunk = Bytes::from(vec![0u8; CHUNK]);
    let frames = (megabytes * 1024 * 1024) / CHUNK;
    let stream = futures_util::stream::iter(
        (0..frames).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone()))),
    );
    BodyExt::boxed(StreamBody::new(stream))
}

async fn backend(listen: SocketAddr, big_mb: usize) {
    let listener = TcpListener::bind(listen).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                let big = req.uri().path().contains("/Binary/");
                // Drained frame by frame: a 100 MB upload is counted, not kept.
                let mut body = req.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                let mut r = Response::new(if big {
                    zeros(big_mb)
                } else {
                    BodyExt::boxed(Full::new(Bytes::from_static(BODY.as_bytes())))
                });
                r.headers_mut()
                    .insert("content-type", "application/fhir+json".parse().unwrap());
                Ok::<_, std::convert::Infallible>(r)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

fn tls_config(t: &Target, resume: bool) -> Option<Arc<rustls::ClientConfig>> {
    let dir = t.tls.as_deref()?;
    let version = match t.tls_version.as_str() {
        "1.3" => &rustls::version::TLS13,
        _ => &rustls::version::TLS12,
    };
    let provider = ssp_sim::proxy::tls::provider();
    let roots = ssp_sim::config::pem::load_roots(&dir.join("ca.pem")).expect("ca.pem");
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("a verifier for ca.pem");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnce {
            inner: webpki,
            passed: Mutex::new(Vec::new()),
        }))
        .with_client_auth_cert(
            ssp_sim::config::pem::load_certs(&dir.join("client.pem")).expect("client.pem"),
            ssp_sim::config::pem::load_key(&dir.join("client-key.pem")).expect("client-key.pem"),
        )
        .expect("client identity");
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Some(Arc::new(config))
}

/// The server's verification, with its chain verified once. Every handshake of the benchmark
/// is with a server it started, presenting the chain it generated; verifying that chain's
/// signatures again each time would only spend the two shared cores on the instrument, alike
/// for every peer (h2load and wrk verify nothing). The signature that proves the server holds
/// its key is checked on every handshake, as ssp-sim does for a client's chain (proxy/tls.rs).
#[derive(Debug)]
struct ChainOnce {
    inner: Arc<WebPkiServerVerifier>,
    /// The name, end-entity certificate and intermediates last verified, in that order.
    passed: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for ChainOnce {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = server_name.to_str().as_bytes().to_vec();
        let certs = std::iter::once(end_entity).chain(intermediates);
        let chain: Vec<Vec<u8>> = std::iter::once(name)
            .chain(certs.map(|c| c.to_vec()))
            .collect();
        let mut passed = self.passed.lock().unwrap();
        if *passed == chain {
            return Ok(ServerCertVerified::assertion());
        }
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        *passed = chain;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

type Body = BoxBody<Bytes, std::convert::Infallible>;
type Sender = hyper::client::conn::http1::SendRequest<Body>;

async fn connect(t: &Target, tls: Option<&Arc<rustls::ClientConfig>>) -> std::io::Result<Sender> {
    let tcp = TcpStream::connect(t.addr).await?;
    tcp.set_nodelay(true)?;
    let sender = match tls {
        Some(config) => {
            let name = ServerName::try_from("localhost").unwrap();
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            sender
        }
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            sender
        }
    };
    Ok(sender)
}

fn request(t: &Target) -> Request<Body> {
    with_body(t, BodyExt::boxed(Empty::new()))
}

fn with_body(t: &Target, body: Body) -> Request<Body> {
    let mut b = Request::builder().uri(&t.path).header("host", "localhost");
    for h in &t.headers {
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("ssp-traceid") && v == "{uuid}" {
                b = b.header(k, uuid::Uuid::new_v4().to_string());
            } else {
                b = b.header(k, v);
            }
        }
    }
    b.body(body).unwrap()
}

async fn hold(t: Target) {
    assert!(t.addr.ip().is_loopback(), "only ever to loopback");
    let tls = tls_config(&t, false);
    let mut opened = tokio::task::JoinSet::new();
    // A few dozen handshakes at a time, as a fleet of clients would reconnect.
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    for _ in 0..t.connections {
        let (t, tls, gate) = (t.clone(), tls.clone(), gate.clone());
        opened.spawn(async move {
            let _permit = gate.acquire().await;
            let mut sender = connect(&t, tls.as_ref()).await.ok()?;
            let resp = sender.send_request(request(&t)).await.ok()?;
            let ok = resp.status().is_success();
            let _ = resp.into_body().collect().await;
            ok.then_some(sender)
        });
    }
    let mut held = Vec::new();
    let mut errors = 0;
    while let Some(joined) = opened.join_next().await {
        match joined {
            Ok(Some(sender)) => held.push(sender),
            _ => errors += 1,
        }
    }
    println!("held={} errors={errors}", held.len());
    tokio::time::sleep(Duration::from_secs_f64(t.seconds)).await;
}

async fn transfer(t: Target, upload_mb: usize) {
    assert!(t.addr.ip().is_loopback(), "only ever to loopback");
    let tls = tls_config(&t, false);
    let began = Instant::now();
    let mut sender = connect(&t, tls.as_ref()).await.expect("connect");
    let body = if upload_mb > 0 {
        zeros(upload_mb)
    } else {
        BodyExt::boxed(Empty::new())
    };
    let mut request = with_body(&t, body);
    if upload_mb > 0 {
        *request.method_mut() = http::Method::POST;
    }
    let resp = sender.send_request(request).await.expect("request");
    let status = resp.status();
    let mut body = resp.into_body();
    let mut received = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        received += frame.data_ref().map_or(0, |d| d.len());
    }
    println!(
        "status={} sent_mb={upload_mb} received_mb={:.1} seconds={:.2}",
        status.as_u16(),
        received as f64 / (1024.0 * 1024.0),
        began.elapsed().as_secs_f64()
    );
}

async fn run(t: Target, new_connection_each_time: bool) -> Outcome {
    assert!(
        t.addr.ip().is_loopback(),
        "load is only ever sent to loopback"
    );
    let tls = tls_config(&t, !new_connection_each_time);
    let deadline = Instant::now() + Duration::from_secs_f64(t.seconds);
    let budget = Arc::new(std::sync::atomic::AtomicUsize::new(t.max_requests));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..t.connections {
        let (t, tls, budget) = (t.clone(), tls.clone(), budget.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut sender: Option<Sender> = None;
            while Instant::now() < deadline
                && budget
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
            {
                let began = Instant::now();
                if sender.is_none() || new_connection_each_time {
                    sender = connect(&t, tls.as_ref()).await.ok();
                }
                let Some(s) = sender.as_mut() else {
                    errors += 1;
                    continue;
                };
                match s.send_request(request(&t)).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.into_body().collect().await;
                        if ok {
                            latencies.push(began.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        sender = None;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut outcome = Outcome {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(Ok((l, e))) = tasks.join_next().await {
        outcome.latencies.extend(l);
        outcome.errors += e;
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn report(t: &Target, kind: &str, mut o: Outcome) {
    o.latencies.sort();
    let pct = |p: f64| {
        o.latencies
            .get(((o.latencies.len() as f64 * p) as usize).min(o.latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rate = o.latencies.len() as f64 / o.elapsed.as_secs_f64();
    println!(
        "label={} kind={kind} requests={} errors={} per_second={rate:.0} p50_ms={:.3} p99_ms={:.3}",
        if t.label.is_empty() { "-" } else { &t.label },
        o.latencies.len(),
        o.errors,
        pct(0.50),
        pct(0.99)
    );
}
