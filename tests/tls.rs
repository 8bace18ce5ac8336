//! Check 1 and the listener's protections: mutual TLS, client-auth modes, the plain listener,
//! header limits, slow clients and graceful shutdown.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use ssp_sim::config::settings::ClientAuth;
use ssp_sim::config::settings::Overrides;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn sim(client_auth: Option<ClientAuth>) -> (Sim, Backend) {
    let backend = Backend::start().await;
    let overrides = Overrides {
        client_auth,
        ..Default::default()
    };
    (
        Sim::start_with(&routes(&backend.url()), overrides).await,
        backend,
    )
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let (sim, backend) = sim(None).await;
    let client = Client::new(sim.addr, &sim.pki.paths, None);
    assert!(client.try_send(Call::metadata()).await.is_err());
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (sim, backend) = sim(None).await;
    let stranger = Pki::new();
    let client = Client::new(sim.addr, &sim.pki.paths, Some(&stranger.paths));
    assert!(client.try_send(Call::metadata()).await.is_err());
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

/// A client certificate's params: its name and key usages `(keyUsage, extendedKeyUsage)`.
fn client_params(
    name: &str,
    usages: Vec<rcgen::KeyUsagePurpose>,
    extended: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(vec![format!("{name}.test")]).unwrap();
    params.key_usages = usages;
    params.extended_key_usages = extended;
    params
}

/// A CA and server certificate of the test's own, and client certificates made from the
/// given params, each written (with the CA) so that `Client::new` can present it.
fn pki_with_clients(clients: Vec<rcgen::CertificateParams>) -> (Pki, Vec<Pki>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let write = |paths: &ssp_sim::cli::certs::CertPaths, cert: &str, key: &KeyPair| {
        std::fs::write(paths.ca(), ca.pem()).unwrap();
        std::fs::write(paths.server(), server.pem()).unwrap();
        std::fs::write(paths.server_key(), server_key.serialize_pem()).unwrap();
        std::fs::write(paths.client(), cert).unwrap();
        std::fs::write(paths.client_key(), key.serialize_pem()).unwrap();
    };
    let identities = clients
        .into_iter()
        .map(|params| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            Pki::written_by(|paths| write(paths, &cert.pem(), &key))
        })
        .collect();
    let none = KeyPair::generate().unwrap();
    let server_pki = Pki::written_by(|paths| write(paths, "", &none));
    (server_pki, identities)
}

#[tokio::test]
async fn a_client_certificate_must_allow_digital_signature_and_client_auth() {
    use rcgen::{ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku};
    let (pki, clients) = pki_with_clients(vec![
        client_params(
            "signing",
            vec![Ku::DigitalSignature, Ku::KeyEncipherment],
            vec![Eku::ClientAuth],
        ),
        client_params("unrestricted", vec![], vec![]),
        client_params(
            "encipher-only",
            vec![Ku::KeyEncipherment],
            vec![Eku::ClientAuth],
        ),
        client_params(
            "server-only",
            vec![Ku::DigitalSignature],
            vec![Eku::ServerAuth],
        ),
    ]);
    let backend = Backend::start().await;
    let sim = Sim::start_with_pki(&routes(&backend.url()), Overrides::default(), pki).await;
    let outcome = |i: usize| {
        let client = Client::new(sim.addr, &sim.pki.paths, Some(&clients[i].paths));
        async move { client.try_send(Call::metadata()).await.map(|r| r.status) }
    };
    assert_eq!(
        outcome(0).await.unwrap(),
        StatusCode::OK,
        "digitalSignature + clientAuth"
    );
    assert_eq!(
        outcome(1).await.unwrap(),
        StatusCode::OK,
        "no keyUsage or extendedKeyUsage: unrestricted (RFC 5280)"
    );
    assert!(
        outcome(2).await.is_err(),
        "keyUsage without digitalSignature"
    );
    assert!(
        outcome(3).await.is_err(),
        "extendedKeyUsage without clientAuth"
    );
    assert_eq!(backend.requests().len(), 2);
    sim.stop().await;
}

/// The listener remembers a chain that passed, so that later handshakes skip its signatures:
/// the memory must not outlive the certificate.
#[tokio::test]
async fn a_certificate_that_passed_is_refused_once_it_expires() {
    let mut params = client_params("short-lived", vec![], vec![]);
    let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    params.not_after = expires;
    let (pki, clients) = pki_with_clients(vec![params]);
    let backend = Backend::start().await;
    let sim = Sim::start_with_pki(&routes(&backend.url()), Overrides::default(), pki).await;
    let send = || {
        let client = Client::new(sim.addr, &sim.pki.paths, Some(&clients[0].paths));
        async move { client.try_send(Call::metadata()).await.map(|r| r.status) }
    };
    assert_eq!(send().await.unwrap(), StatusCode::OK, "valid");
    assert_eq!(send().await.unwrap(), StatusCode::OK, "valid, remembered");
    // webpki compares whole seconds, and notAfter is still valid: wait past the next second.
    let past = expires + Duration::from_millis(1_100) - time::OffsetDateTime::now_utc();
    tokio::time::sleep(past.try_into().unwrap_or_default()).await;
    assert!(send().await.is_err(), "expired, though it passed before");
    assert_eq!(backend.requests().len(), 2);
    sim.stop().await;
}

#[tokio::test]
async fn optional_client_auth_admits_no_certificate_but_still_refuses_a_foreign_one() {
    let (sim, _backend) = sim(Some(ClientAuth::Optional)).await;
    let anonymous = Client::new(sim.addr, &sim.pki.paths, None);
    assert_eq!(
        anonymous.send(Call::metadata()).await.status,
        StatusCode::OK
    );
    let stranger = Pki::new();
    let foreign = Client::new(sim.addr, &sim.pki.paths, Some(&stranger.paths));
    assert!(foreign.try_send(Call::metadata()).await.is_err());
    sim.stop().await;
}

#[tokio::test]
async fn no_client_auth_serves_anyone() {
    let (sim, _backend) = sim(Some(ClientAuth::None)).await;
    let anonymous = Client::new(sim.addr, &sim.pki.paths, None);
    assert_eq!(
        anonymous.send(Call::metadata()).await.status,
        StatusCode::OK
    );
    sim.stop().await;
}

/// A client config presenting `sim`'s consumer certificate over exactly `versions`.
fn client_over(
    sim: &Sim,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(ssp_sim::proxy::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(ssp_sim::config::pem::load_roots(&sim.pki.paths.ca()).unwrap())
        .with_client_auth_cert(
            ssp_sim::config::pem::load_certs(&sim.pki.paths.client()).unwrap(),
            ssp_sim::config::pem::load_key(&sim.pki.paths.client_key()).unwrap(),
        )
        .unwrap()
}

#[tokio::test]
async fn tls_1_2_only_by_default_as_the_spec_mandates() {
    let (sim, _backend) = sim(None).await;
    let tls12 = client_over(&sim, &[&rustls::version::TLS12]);
    assert!(handshake(sim.addr, tls12).await.is_ok());
    let tls13 = client_over(&sim, &[&rustls::version::TLS13]);
    assert!(handshake(sim.addr, tls13).await.is_err());
    sim.stop().await;
}

#[tokio::test]
async fn tls_versions_1_2_1_3_also_accepts_a_tls_1_3_only_client_with_aes_gcm() {
    let backend = Backend::start().await;
    let overrides = Overrides {
        tls_versions: Some("1.2, 1.3".into()),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
    let tls13 = client_over(&sim, &[&rustls::version::TLS13]);
    assert!(handshake(sim.addr, tls13).await.is_ok());
    let tls12 = client_over(&sim, &[&rustls::version::TLS12]);
    assert!(handshake(sim.addr, tls12).await.is_ok());
    // A client offering only ChaCha20 is refused.
    let chacha = rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            rustls::crypto::aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::aws_lc_rs::default_provider()
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(chacha))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(ssp_sim::config::pem::load_roots(&sim.pki.paths.ca()).unwrap())
        .with_no_client_auth();
    assert!(handshake(sim.addr, config).await.is_err());
    sim.stop().await;
}

async fn handshake(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<()> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await?;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut buf = [0u8; 16];
    let n = tls.read(&mut buf).await?;
    if n == 0 {
        return Err(std::io::Error::other("closed"));
    }
    Ok(())
}

#[tokio::test]
async fn the_plain_http_listener_runs_the_same_checks() {
    let backend = Backend::start().await;
    let overrides = Overrides {
        http_listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
    let mut tcp = tokio::net::TcpStream::connect(sim.http.unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /{ROOT}/metadata HTTP/1.1\r\nhost: localhost\r\nssp-traceid: {}\r\nssp-from: 100000000001\r\nssp-to: {PROVIDER}\r\nssp-interactionid: {METADATA}\r\nconnection: close\r\n\r\n",
        uuid::Uuid::new_v4()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("ASID_CHECK_FAILED_MESSAGESENDER_100000000001"));
    // HSTS belongs to the TLS listener only (a browser ignores it over plain HTTP).
    assert!(
        !text
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{text}"
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn every_response_on_the_tls_listener_carries_hsts() {
    let (sim, _backend) = sim(None).await;
    let client = sim.client();
    let forwarded = client.send(Call::metadata()).await;
    let refused = client
        .send(Call::metadata().header("Ssp-From", "100000000001"))
        .await;
    let directory = client
        .send(Call::new(
            Method::GET,
            "spine-directory/FHIR/R4/Device",
            METADATA,
        ))
        .await;
    for reply in [forwarded, refused, directory] {
        assert!(
            reply
                .header("strict-transport-security")
                .starts_with("max-age="),
            "{} {:?}",
            reply.status,
            reply.headers
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused() {
    let (sim, backend) = sim(None).await;
    let client = sim.client();
    let mut call = Call::metadata();
    for i in 0..150 {
        call = call.header(&format!("x-h{i}"), "v");
    }
    assert_eq!(
        client.send(call).await.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let huge = "a".repeat(100 * 1024);
    let reply = client
        .try_send(Call::metadata().header("x-big", &huge))
        .await;
    let status = reply.map(|r| r.status);
    assert!(
        matches!(
            status,
            Ok(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE) | Err(_)
        ),
        "{status:?}"
    );
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_slow_client_does_not_hold_up_others() {
    let (sim, _backend) = sim(None).await;
    // Half a request, never finished.
    let mut slow = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
        .await
        .unwrap();
    slow.write_all(b"GET /https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/metadata HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let reply =
        tokio::time::timeout(Duration::from_secs(5), sim.client().send(Call::metadata())).await;
    assert_eq!(
        reply.expect("other clients are served").status,
        StatusCode::OK
    );
    // No graceful stop: it would rightly wait for the half-sent request's header timeout.
}

#[tokio::test]
async fn garbage_never_crashes_the_listener() {
    let (sim, _backend) = sim(None).await;
    for junk in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\xff\xfe\xfd",
    ] {
        let mut tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
            .await
            .unwrap();
        let _ = tls.write_all(junk).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut buf)).await;
    }
    assert_eq!(
        sim.client().send(Call::metadata()).await.status,
        StatusCode::OK
    );
    sim.stop().await;
}

// Several workers: the backend below blocks its thread, which must not stall the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_in_flight_requests() {
    // The backend holds its answer until the stop has been sent and given time to take effect:
    // with the drain, `stop` returns only after that answer went out; without it, `run` returns
    // at once and `stop` finishes while the backend still holds the answer. Waiting on signals,
    // not on sleeps, keeps a loaded machine from reordering the two.
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel::<()>();
    let arrived_tx = Mutex::new(Some(arrived_tx));
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let answered = Arc::new(AtomicBool::new(false));
    let flag = answered.clone();
    let backend = Backend::with(move |_| {
        if let Some(tx) = arrived_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let _ = release_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        flag.store(true, Ordering::SeqCst);
        http::Response::new(ssp_sim::wire::body::full("{}"))
    })
    .await;
    let sim = Sim::for_backend(&backend).await;
    let client = sim.client();
    let in_flight = tokio::spawn(async move { client.send(Call::metadata()).await });
    tokio::time::timeout(Duration::from_secs(20), arrived_rx)
        .await
        .expect("the request reaches the backend")
        .unwrap();
    let seen = answered.clone();
    let stopping = tokio::spawn(async move {
        sim.stop().await;
        seen.load(Ordering::SeqCst)
    });
    // Long enough for a server without the drain to have returned.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = release_tx.send(());
    assert!(
        stopping.await.unwrap(),
        "the server stopped before the in-flight request was answered"
    );
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stop_sent_before_the_server_runs_is_not_lost() {
    // SIGTERM can arrive between start-up and `run`: the stop must still be seen.
    let dir = tempfile::tempdir().unwrap();
    let server = bind(
        &routes("builtin:demo"),
        Overrides::default(),
        &Pki::new(),
        dir.path(),
    )
    .await;
    let _ = server.stopper().send(true);
    tokio::time::timeout(Duration::from_secs(10), server.run())
        .await
        .expect("run returns at once when stopped before it began");
}

/// The standard routes with the test consumer bound to `fqdn` (check 5b).
fn routes_binding_the_consumer_to(fqdn: &str, backend: &Backend) -> String {
    routes(&backend.url()).replacen(
        "may_send_to = [\"*\"]\n",
        &format!("may_send_to = [\"*\"]\nfqdn = {fqdn:?}\n"),
        1,
    )
}

#[tokio::test]
async fn a_consumer_bound_to_an_fqdn_needs_a_certificate_naming_it() {
    let backend = Backend::start().await;
    // The dev client certificate names consumer.ssp-sim.localhost.
    let bound = Sim::start(&routes_binding_the_consumer_to(
        "Consumer.SSP-sim.localhost",
        &backend,
    ))
    .await;
    bound
        .client()
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    bound.stop().await;

    let elsewhere = Sim::start(&routes_binding_the_consumer_to(
        "gp-consumer.example.nhs.uk",
        &backend,
    ))
    .await;
    let reply = elsewhere.client().send(Call::metadata()).await;
    reply.assert_status(StatusCode::FORBIDDEN);
    assert_eq!(
        reply.display(),
        format!("ASID_CHECK_FAILED_MESSAGESENDER_{CONSUMER}")
    );
    let reason = reply.header("ssp-sim-diagnostics");
    assert!(
        reason.contains("names consumer.ssp-sim.localhost")
            && reason.contains("gp-consumer.example.nhs.uk"),
        "{reason}"
    );
    assert_eq!(backend.requests().len(), 1);
    elsewhere.stop().await;
}

#[tokio::test]
async fn certs_client_fqdn_makes_a_certificate_for_a_bound_consumer() {
    let pki = Pki::written_by(|paths| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_ssp-sim"))
            .args(["certs", "--dir"])
            .arg(&paths.dir)
            .args(["--client-fqdn", "gp-consumer.example.nhs.uk"])
            .status()
            .unwrap();
        assert!(status.success());
    });
    let backend = Backend::start().await;
    let routes = routes_binding_the_consumer_to("gp-consumer.example.nhs.uk", &backend);
    let sim = Sim::start_with_pki(&routes, Overrides::default(), pki).await;
    sim.client()
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn a_bound_consumer_without_a_certificate_is_refused_an_unbound_one_is_not() {
    let backend = Backend::start().await;
    let overrides = Overrides {
        client_auth: Some(ClientAuth::Optional),
        ..Default::default()
    };
    let routes = routes_binding_the_consumer_to("consumer.ssp-sim.localhost", &backend);
    let sim = Sim::start_with(&routes, overrides).await;
    let anonymous = Client::new(sim.addr, &sim.pki.paths, None);
    let reply = anonymous.send(Call::metadata()).await;
    reply.assert_status(StatusCode::FORBIDDEN);
    assert!(
        reply
            .header("ssp-sim-diagnostics")
            .contains("no client certificate was presented"),
        "{:?}",
        reply.headers
    );
    // The limited consumer of the standard routes has no fqdn: it is not bound.
    let unbound = anonymous
        .send(
            Call::new(
                http::Method::GET,
                "https://second.example.nhs.uk/B82617/STU3/1/gpconnect/metadata",
                METADATA,
            )
            .header("Ssp-From", "200000000360")
            .header("Ssp-To", "918999198993"),
        )
        .await;
    unbound.assert_status(StatusCode::OK);
    sim.stop().await;
}
