//! Test harness shared by the integration tests: a real ssp-sim on a loopback port with
//! certificates generated for the test, a real TLS client presenting a client certificate,
//! and real backend servers that record what they receive.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod redis_server;
mod routes;

pub use routes::RoutesToml;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use ssp_sim::cli::certs::CertPaths;
use ssp_sim::cli::serve::Server;
use ssp_sim::config::settings::{Overrides, Settings};
use ssp_sim::wire::body::{self as sim_body, Body};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const CONSUMER: &str = "200000000359";
pub const PROVIDER: &str = "918999198738";
pub const ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";
pub const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";
pub const READ_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1";
pub const STRUCTURED: &str =
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";

/// A certificate set written by ssp-sim's own generator into a temporary directory.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub paths: CertPaths,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let paths = CertPaths::new(dir.path());
        paths.generate(&[], None, false).expect("certificates");
        Self { _dir: dir, paths }
    }

    /// A certificate set that `write` puts into a fresh temporary directory under the usual
    /// names, for certificates ssp-sim's own generator does not make.
    pub fn written_by(write: impl FnOnce(&CertPaths)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let paths = CertPaths::new(dir.path());
        write(&paths);
        Self { _dir: dir, paths }
    }
}

/// The consumer every test sends as (`CONSUMER`): it may call any interaction of any provider.
pub fn test_consumer() -> RoutesToml {
    RoutesToml::new().consumer("Test consumer", CONSUMER, "A11111", &["*"], &["*"])
}

/// The standard mock SDS of the tests: one consumer that may do anything, one limited to
/// foundations towards the other surgery, one provider whose foundations/appointments endpoint
/// goes to `backend` and structured endpoint to the demo, and another surgery behind `backend`.
pub fn routes_toml(backend: &str) -> RoutesToml {
    test_consumer()
        .consumer(
            "Limited consumer",
            "200000000360",
            "A22222",
            &["foundations"],
            &["918999198993"],
        )
        .provider("Test surgery", "A20047", PROVIDER, "A20047-821870")
        .with(r#"cpa_id = "S20047821870""#)
        .endpoint(ROOT, backend, &["foundations", "appointments"])
        .endpoint(
            &format!("{ROOT}/structured"),
            "builtin:demo",
            &["structured"],
        )
        .provider("Other surgery", "B82617", "918999198993", "B82617-900001")
        .endpoint(
            "https://second.example.nhs.uk/B82617/STU3/1/gpconnect",
            backend,
            &["foundations"],
        )
}

/// `routes_toml(backend)` as text.
pub fn routes(backend: &str) -> String {
    routes_toml(backend).build()
}

/// A running simulator.
pub struct Sim {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub pki: Pki,
    pub routes_file: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts a simulator on loopback with `routes` and default settings.
    pub async fn start(routes: &str) -> Self {
        Self::start_with(routes, Overrides::default()).await
    }

    /// Starts on the standard test routes with `backend` behind the test provider.
    pub async fn for_backend(backend: &Backend) -> Self {
        Self::start(&routes(&backend.url())).await
    }

    /// Starts with some settings overridden (addresses default to loopback port 0).
    pub async fn start_with(routes: &str, overrides: Overrides) -> Self {
        Self::start_with_pki(routes, overrides, Pki::new()).await
    }

    /// Starts with a given certificate set.
    pub async fn start_with_pki(routes: &str, overrides: Overrides, pki: Pki) -> Self {
        Self::start_with_settings(routes, overrides, "", pki).await
    }

    /// Starts with `settings` as the text of its ssp-sim.toml (for the settings that have no
    /// flag), some flags overridden and a given certificate set.
    pub async fn start_with_settings(
        routes: &str,
        overrides: Overrides,
        settings: &str,
        pki: Pki,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let routes_file = dir.path().join("routes.toml");
        let server = bind_with(routes, overrides, settings, &pki, dir.path()).await;
        let (addr, admin, http) = (server.https_addr(), server.admin_addr(), server.http_addr());
        let stop = server.stopper();
        let task = tokio::spawn(server.run());
        Self {
            addr,
            admin,
            http,
            pki,
            routes_file,
            stop,
            task,
            _dir: dir,
        }
    }

    /// A client presenting the consumer certificate.
    pub fn client(&self) -> Client {
        Client::new(self.addr, &self.pki.paths, Some(&self.pki.paths))
    }

    /// Stops accepting and waits for in-flight requests.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(40), self.task).await;
    }
}

/// A server bound on loopback with `routes` (written to `dir`) and `pki`, not yet running.
pub async fn bind(routes: &str, overrides: Overrides, pki: &Pki, dir: &std::path::Path) -> Server {
    bind_with(routes, overrides, "", pki, dir).await
}

/// As `bind`, with `settings` as the text of the settings file.
pub async fn bind_with(
    routes: &str,
    overrides: Overrides,
    settings: &str,
    pki: &Pki,
    dir: &std::path::Path,
) -> Server {
    let routes_file = dir.join("routes.toml");
    std::fs::write(&routes_file, routes).expect("write routes");
    let empty = dir.join("ssp-sim.toml");
    std::fs::write(&empty, settings).expect("write settings");
    let overrides = Overrides {
        routes: Some(routes_file),
        certs: Some(pki.paths.dir.clone()),
        listen: overrides.listen.or(Some("127.0.0.1:0".into())),
        admin_listen: overrides.admin_listen.or(Some("127.0.0.1:0".into())),
        // Check 10 (JWT, interaction fit) has its own tests in provider_checks.rs, which
        // turn it on; the other tests send no JWT.
        jwt_mode: overrides
            .jwt_mode
            .or(Some(ssp_sim::config::jwt::JwtMode::Off)),
        ..overrides
    };
    let settings = Settings::load(Some(&empty), Default::default(), &overrides).expect("settings");
    Server::start(&settings).await.expect("server starts")
}

/// A request to send through the simulator: valid SSP headers unless changed.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Call {
    /// A request for `target` (the provider URL) as interaction `interaction`.
    pub fn new(method: Method, target: impl Into<String>, interaction: &str) -> Self {
        Self {
            method,
            target: target.into(),
            headers: vec![
                ("Ssp-TraceID".into(), uuid::Uuid::new_v4().to_string()),
                ("Ssp-From".into(), CONSUMER.into()),
                ("Ssp-To".into(), PROVIDER.into()),
                ("Ssp-InteractionID".into(), interaction.into()),
                ("Accept".into(), "application/fhir+json".into()),
            ],
            body: Bytes::new(),
        }
    }

    /// `GET {ROOT}/metadata`, a request that passes every check.
    pub fn metadata() -> Self {
        Self::new(Method::GET, format!("{ROOT}/metadata"), METADATA)
    }

    /// Sets (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Asks for FHIR XML instead of JSON.
    pub fn accept_xml(self) -> Self {
        self.header("Accept", "application/fhir+xml")
    }

    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    pub fn trace_id(&self) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == "Ssp-TraceID")
            .map_or("", |(_, v)| v)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The profile GP Connect gives every OperationOutcome a provider (or check 10) answers.
pub const OPERATION_OUTCOME_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1";

impl Reply {
    /// Asserts the status, showing the body when it is not the one expected.
    pub fn assert_status(&self, status: StatusCode) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }

    /// Asserts a GP Connect provider error: status, OperationOutcome profile and the code of
    /// its first issue's coding.
    pub fn assert_outcome(&self, status: StatusCode, code: &str) {
        self.assert_status(status);
        let json = self.json();
        assert_eq!(json["resourceType"], "OperationOutcome", "{json}");
        assert_eq!(
            json["meta"]["profile"][0], OPERATION_OUTCOME_PROFILE,
            "{json}"
        );
        assert_eq!(
            json["issue"][0]["details"]["coding"][0]["code"], code,
            "{json}"
        );
    }

    /// The body as FHIR XML text, asserting the content type says so.
    pub fn fhir_xml(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            "application/fhir+xml;charset=utf-8"
        );
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `display` of the first coding of the first issue of an OperationOutcome.
    pub fn display(&self) -> String {
        self.json()["issue"][0]["details"]["coding"][0]["display"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn diagnostics(&self) -> String {
        self.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// A real HTTPS client with keep-alive, optionally presenting a client certificate.
#[derive(Clone)]
pub struct Client {
    base: String,
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    /// Trusts `trust`'s CA; presents `identity`'s client certificate when given.
    pub fn new(addr: SocketAddr, trust: &CertPaths, identity: Option<&CertPaths>) -> Self {
        let config = client_config(trust, identity);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        Self {
            base: format!("https://localhost:{}", addr.port()),
            inner: HyperClient::builder(TokioExecutor::new()).build(https),
        }
    }

    pub async fn try_send(&self, call: Call) -> Result<Reply, hyper_util::client::legacy::Error> {
        let mut builder = Request::builder()
            .method(call.method)
            .uri(format!("{}/{}", self.base, call.target));
        for (name, value) in &call.headers {
            builder = builder.header(name, value);
        }
        let response = self
            .inner
            .request(builder.body(Full::new(call.body)).expect("request"))
            .await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn send(&self, call: Call) -> Reply {
        self.try_send(call).await.expect("request through ssp-sim")
    }
}

/// What a backend received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    /// Path and query, as they arrived.
    pub uri: String,
    pub headers: HeaderMap,
    pub body_len: usize,
    /// The first MiB of the body.
    pub body: Bytes,
    pub peer: SocketAddr,
}

type Respond = Arc<dyn Fn(&Received) -> Response<Body> + Send + Sync>;

/// A real HTTP/1.1 backend on loopback that records every request.
pub struct Backend {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bodies up to this size are kept for inspection; larger ones are only counted.
const KEEP_BODY: usize = 1 << 20;

impl Backend {
    /// A backend answering 200 with a small FHIR JSON body.
    pub async fn start() -> Self {
        Self::with(|_| fhir_json(sim_body::full(r#"{"resourceType":"CapabilityStatement"}"#))).await
    }

    /// A backend answering with `respond`.
    pub async fn with(
        respond: impl Fn(&Received) -> Response<Body> + Send + Sync + 'static,
    ) -> Self {
        Self::serve(None, respond).await
    }

    /// An HTTPS backend with `pki`'s server certificate that requires a client certificate
    /// from `pki`'s CA (TLS MA on the second leg), answering 200.
    pub async fn https(pki: &CertPaths) -> Self {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(ssp_sim::config::pem::load_roots(&pki.ca()).unwrap()),
            ssp_sim::proxy::tls::provider(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(ssp_sim::proxy::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                ssp_sim::config::pem::load_certs(&pki.server()).unwrap(),
                ssp_sim::config::pem::load_key(&pki.server_key()).unwrap(),
            )
            .unwrap();
        Self::serve(
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            |_| Response::new(sim_body::full("{}")),
        )
        .await
    }

    async fn serve(
        tls: Option<tokio_rustls::TlsAcceptor>,
        respond: impl Fn(&Received) -> Response<Body> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let respond: Respond = Arc::new(respond);
        let log = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let (log, respond, tls) = (log.clone(), respond.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (log, respond) = (log.clone(), respond.clone());
                        async move {
                            let (parts, mut body) = req.into_parts();
                            let mut kept = Vec::new();
                            let mut len = 0;
                            while let Some(Ok(frame)) = body.frame().await {
                                if let Ok(data) = frame.into_data() {
                                    len += data.len();
                                    if kept.len() < KEEP_BODY {
                                        kept.extend_from_slice(&data);
                                    }
                                }
                            }
                            let got = Received {
                                method: parts.method,
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body_len: len,
                                body: kept.into(),
                                peer,
                            };
                            let response = respond(&got);
                            log.lock().unwrap().push(got);
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Err(_) => return,
                        },
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        Self {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A backend that hands each connection to `serve` as a raw TCP stream, for answers no
/// well-behaved HTTP server gives (a 101, a dribbled body, an endless one). Returns its URL.
pub async fn scripted_backend<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // A small send buffer (inherited by each accepted socket): what the backend pushes into
    // the kernel stays small when the simulator stops reading it.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(64 * 1024).expect("send buffer");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind backend");
    let listener = socket.listen(128).expect("listen");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{addr}")
}

/// Reads a request head (up to the blank line) from a raw stream; empty when it closes first.
pub async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return String::new(),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The value of an unlabelled (or fully labelled, e.g. `name{reason="x"}`) series in a
/// Prometheus text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// A simulator on the standard test routes in front of a default backend.
pub async fn sim_with_backend() -> (Sim, Backend) {
    let backend = Backend::start().await;
    (Sim::for_backend(&backend).await, backend)
}

/// A 200 response carrying `body` as FHIR JSON.
pub fn fhir_json(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", "application/fhir+json".parse().unwrap());
    r
}

/// A loopback address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Peak resident memory of this process, in bytes (Linux).
pub fn peak_rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A raw TLS connection to the simulator, presenting `identity`'s client certificate, for
/// tests that drive HTTP/1.1 by hand (streamed bodies, malformed requests).
pub async fn connect_tls(
    addr: SocketAddr,
    trust: &CertPaths,
    identity: Option<&CertPaths>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = client_config(trust, identity);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await
}

/// A rustls client config trusting `trust`'s CA, presenting `identity`'s client certificate.
pub fn client_config(trust: &CertPaths, identity: Option<&CertPaths>) -> rustls::ClientConfig {
    let roots = ssp_sim::config::pem::load_roots(&trust.ca()).expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(ssp_sim::proxy::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    match identity {
        Some(id) => builder
            .with_client_auth_cert(
                ssp_sim::config::pem::load_certs(&id.client()).expect("client cert"),
                ssp_sim::config::pem::load_key(&id.client_key()).expect("client key"),
            )
            .expect("identity"),
        None => builder.with_no_client_auth(),
    }
}

/// A plain HTTP client for the admin API.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    token: Option<String>,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
            token: None,
        }
    }

    /// The same client sending `Authorization: Bearer <token>` (the `admin_token` setting).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Sends `method path` with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self
            .inner
            .request(builder.body(Full::new(body)).expect("request"))
            .await
            .expect("admin API answers");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("admin body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Adds a fault (`POST /faults`) and returns its id.
    pub async fn add_fault(&self, fault: Value) -> String {
        let reply = self.post("/faults", fault).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["id"].as_str().expect("fault id").to_owned()
    }
}

impl Sim {
    /// A client for this simulator's admin API.
    pub fn admin_client(&self) -> AdminClient {
        AdminClient::new(self.admin.expect("the admin API listens"))
    }
}

/// The Python of the test venv (`.venv`, made by `scripts/test` from tests/requirements.txt),
/// for the test-side tools that are not Rust (FHIR validation, the browser driver); or
/// `SSPSIM_TEST_PYTHON` (not `SSP_SIM_*`: the simulators the tests start read those as settings). Fails with the command that makes it when it is missing.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("SSPSIM_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the suite with scripts/test, which makes it \
         (python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt)",
        python.display()
    );
    python
}
