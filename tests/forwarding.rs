//! Check 11: what reaches the backend and what comes back, over real sockets.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use ssp_sim::config::settings::Overrides;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn path_and_query_reach_the_backend_byte_for_byte_below_its_base() {
    let backend = Backend::start().await;
    let sim = Sim::start(&routes(&format!("{}/base/gpc", backend.url()))).await;
    let query = "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9690937278&_x=a+b&_y=%2F";
    let call = Call::new(
        Method::GET,
        format!("{ROOT}/Patient?{query}"),
        "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1",
    );
    assert_eq!(sim.client().send(call).await.status, StatusCode::OK);
    let call = Call::new(Method::GET, format!("{ROOT}/Patient/2"), READ_PATIENT);
    assert_eq!(sim.client().send(call).await.status, StatusCode::OK);
    let got = backend.requests();
    assert_eq!(got[0].uri, format!("/base/gpc/Patient?{query}"));
    assert_eq!(got[1].uri, "/base/gpc/Patient/2");
    sim.stop().await;
}

#[tokio::test]
async fn ssp_headers_and_authorization_pass_hop_by_hop_are_dropped_and_forwarding_is_added() {
    let (sim, backend) = sim_with_backend().await;
    let call = Call::metadata()
        .header("Authorization", "Bearer abc.def.")
        .header("Connection", "x-secret")
        .header("X-Secret", "1")
        .header("Proxy-Authorization", "Basic x")
        .header("X-Custom", "kept");
    let trace = call.trace_id().to_owned();
    sim.client().send(call).await;
    let got = &backend.requests()[0];
    let h = |name: &str| {
        got.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(h("ssp-traceid"), trace);
    assert_eq!(h("ssp-from"), CONSUMER);
    assert_eq!(h("ssp-to"), PROVIDER);
    assert_eq!(h("ssp-interactionid"), METADATA);
    assert_eq!(h("authorization"), "Bearer abc.def.");
    assert_eq!(h("x-custom"), "kept");
    assert!(got.headers.get("x-secret").is_none());
    assert!(got.headers.get("proxy-authorization").is_none());
    assert_eq!(h("host"), backend.addr.to_string());
    assert_eq!(h("x-forwarded-for"), "127.0.0.1");
    assert!(
        h("forwarded").starts_with("for=127.0.0.1;proto=https;host="),
        "{}",
        h("forwarded")
    );
    sim.stop().await;
}

#[tokio::test]
async fn post_bodies_arrive_intact_and_responses_come_back_intact() {
    let backend = Backend::with(|got| {
        let mut r = fhir_json(ssp_sim::wire::body::full(got.body.clone()));
        *r.status_mut() = StatusCode::CREATED;
        r.headers_mut()
            .insert("location", "Appointment/9".parse().unwrap());
        r
    })
    .await;
    let sim = Sim::for_backend(&backend).await;
    let body = r#"{"resourceType":"Appointment","status":"booked"}"#;
    let call = Call::new(
        Method::POST,
        format!("{ROOT}/Appointment"),
        "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1",
    )
    .body("application/fhir+json;charset=utf-8", body);
    let reply = sim.client().send(call).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("location"), "Appointment/9");
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(backend.requests()[0].body, body.as_bytes());
    sim.stop().await;
}

#[tokio::test]
async fn gzip_bodies_pass_through_untouched() {
    let compressed: &'static [u8] = &[
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xab, 0xae, 5, 0, 0x43, 0xbf, 0xa6, 0xa3, 2, 0, 0, 0,
    ];
    let backend = Backend::with(move |_| {
        let mut r = fhir_json(ssp_sim::wire::body::full(compressed));
        r.headers_mut()
            .insert("content-encoding", "gzip".parse().unwrap());
        r
    })
    .await;
    let sim = Sim::for_backend(&backend).await;
    let reply = sim
        .client()
        .send(Call::metadata().header("Accept-Encoding", "gzip"))
        .await;
    assert_eq!(reply.header("content-encoding"), "gzip");
    assert_eq!(reply.body, compressed);
    assert_eq!(backend.requests()[0].headers["accept-encoding"], "gzip");
    sim.stop().await;
}

#[tokio::test]
async fn backend_connections_are_kept_alive_and_reused() {
    let (sim, backend) = sim_with_backend().await;
    let client = sim.client();
    for _ in 0..20 {
        assert_eq!(client.send(Call::metadata()).await.status, StatusCode::OK);
    }
    let peers: std::collections::HashSet<_> = backend.requests().iter().map(|r| r.peer).collect();
    assert_eq!(
        peers.len(),
        1,
        "20 sequential requests used {} backend connections",
        peers.len()
    );
    sim.stop().await;
}

/// A backend's idle timeout ends a kept-alive connection without a word: the next request
/// goes on another connection, not to a 502.
#[tokio::test]
async fn a_backend_closing_each_connection_unannounced_still_answers_every_request() {
    let url = scripted_backend(|mut stream| async move {
        read_head(&mut stream).await;
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 2\r\n\r\n{}";
        let _ = stream.write_all(answer).await;
        // No `Connection: close`: the stream is dropped, and the connection just ends.
    })
    .await;
    let sim = Sim::start(&routes(&url)).await;
    let client = sim.client();
    for i in 0..10 {
        let reply = client.send(Call::metadata()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {i}: {}",
            reply.header("ssp-sim-diagnostics")
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn responses_stream_chunk_by_chunk_without_waiting_for_the_end() {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release = std::sync::Mutex::new(Some(release_rx));
    let backend = Backend::with(move |_| {
        let wait = release.lock().unwrap().take();
        let chunks = futures_util::stream::unfold((0, wait), |(i, wait)| async move {
            match i {
                0 => Some((
                    Ok::<_, ssp_sim::wire::body::BoxError>(Frame::data(Bytes::from_static(
                        b"first,",
                    ))),
                    (1, wait),
                )),
                1 => {
                    // The second chunk is only sent once the client has seen the first.
                    let _ = wait?.await;
                    Some((Ok(Frame::data(Bytes::from_static(b"second"))), (2, None)))
                }
                _ => None,
            }
        });
        fhir_json(ssp_sim::wire::body::stream(StreamBody::new(chunks)))
    })
    .await;
    let sim = Sim::for_backend(&backend).await;
    let response = send_streamed(
        &sim,
        &Call::metadata(),
        http_body_util::Empty::<Bytes>::new(),
    )
    .await;
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk streamed before the body ended");
    assert_eq!(first.unwrap().unwrap().into_data().unwrap(), "first,");
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second");
    sim.stop().await;
}

/// Sends `call` with a streamed `body` over its own mTLS connection; the response body is
/// left unread so a test can watch it arrive.
async fn send_streamed<B>(sim: &Sim, call: &Call, body: B) -> http::Response<hyper::body::Incoming>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(call.method.clone())
        .uri(format!("/{}", call.target));
    for (k, v) in &call.headers {
        request = request.header(k, v);
    }
    sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_100_mb_upload_streams_through_without_buffering() {
    const SIZE: usize = 100 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let (sim, backend) = sim_with_backend().await;
    let before = peak_rss();
    assert!(before > 0, "peak memory is read from /proc/self/status");
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let chunks = futures_util::stream::iter(
        (0..SIZE / CHUNK).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    );
    let call = Call::new(
        Method::POST,
        format!("{ROOT}/Appointment"),
        "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1",
    )
    .header("Content-Type", "application/fhir+json");
    let response = send_streamed(&sim, &call, StreamBody::new(chunks)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(backend.requests()[0].body_len, SIZE);
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 40 * 1024 * 1024,
        "peak memory grew by {} MiB for a 100 MiB upload",
        grown >> 20
    );
    sim.stop().await;
}

/// A backend that accepts connections and answers with `reply` (or nothing) once a request arrives.
async fn raw_backend(reply: Option<&'static [u8]>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                match reply {
                    Some(bytes) => {
                        let _ = stream.write_all(bytes).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_broken_backend_response_is_error_communicating() {
    let addr = raw_backend(Some(b"this is not HTTP\r\n\r\n")).await;
    let sim = Sim::start(&routes(&format!("http://{addr}"))).await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.display(),
        format!("ERROR_COMMUNICATING_TO_ENDPOINT_URL_{ROOT}/metadata")
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_silent_backend_times_out_as_the_ssps_504() {
    let addr = raw_backend(None).await;
    let overrides = Overrides {
        backend_timeout_ms: Some(300),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&format!("http://{addr}")), overrides).await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    let json = reply.json();
    assert_eq!(json["issue"][0]["code"], "transient", "{json}");
    assert_eq!(json["issue"][0]["details"]["coding"][0]["code"], "504");
    assert_eq!(
        reply.display(),
        format!("GATEWAY_TIMEOUT_FROM_ENDPOINT_URL_{ROOT}/metadata")
    );
    assert!(
        reply
            .header("ssp-sim-diagnostics")
            .contains("no response within"),
        "{:?}",
        reply.headers
    );
    sim.stop().await;
}

/// An HTTPS backend that requires a client certificate from a fresh CA, with that CA (for the
/// simulator to start with) and the backend's URL.
async fn https_backend() -> (Pki, Backend, String) {
    let pki = Pki::new();
    let backend = Backend::https(&pki.paths).await;
    let url = format!("https://localhost:{}", backend.addr.port());
    (pki, backend, url)
}

#[tokio::test]
async fn https_backends_get_the_configured_client_certificate() {
    let (pki, backend, url) = https_backend().await;
    let with_identity = routes(&url).replace(
        &format!("backend = \"{url}\""),
        &format!(
            "backend = \"{url}\"\n  client_cert = \"{}\"\n  client_key = \"{}\"",
            pki.paths.client().display(),
            pki.paths.client_key().display()
        ),
    );
    let sim = Sim::start_with_pki(&with_identity, Overrides::default(), pki).await;
    let reply = sim.client().send(Call::metadata()).await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(backend.requests().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn an_https_backend_that_refuses_our_certificate_is_error_communicating() {
    let (pki, backend, url) = https_backend().await;
    // No client_cert configured: the backend's TLS MA refuses the connection.
    let sim = Sim::start_with_pki(&routes(&url), Overrides::default(), pki).await;
    let reply = sim.client().send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn a_backend_stalling_mid_body_is_cut_off_after_the_backend_timeout() {
    let backend = Backend::with(|_| {
        let first = futures_util::stream::once(async {
            Ok::<_, ssp_sim::wire::body::BoxError>(Frame::data(Bytes::from_static(
                b"{\"partial\":",
            )))
        });
        // ...and then nothing, for ever.
        let body = first.chain(futures_util::stream::pending());
        fhir_json(ssp_sim::wire::body::stream(StreamBody::new(body)))
    })
    .await;
    let overrides = Overrides {
        backend_timeout_ms: Some(300),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
    let response = send_streamed(
        &sim,
        &Call::metadata(),
        http_body_util::Empty::<Bytes>::new(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let read = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect()).await;
    assert!(
        read.expect("the stalled body ends instead of hanging")
            .is_err(),
        "a truncated body must not look complete"
    );
    sim.stop().await;
}

#[tokio::test]
async fn spine_latency_is_added_before_the_provider() {
    let backend = Backend::start().await;
    let overrides = Overrides {
        spine_latency_ms: Some(300),
        ..Default::default()
    };
    let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
    let client = sim.client();
    // A lower bound only: a sleep never ends early, however loaded the machine.
    let started = std::time::Instant::now();
    client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    // The journal shows the added time as part of the request.
    let journal = sim.admin_client().get("/journal?limit=1").await.json();
    assert!(
        journal[0]["duration_ms"].as_f64().unwrap() >= 300.0,
        "{journal}"
    );
    sim.stop().await;
}

/// Each worker thread keeps its own backend pool (`--workers`), so consumer connections served
/// by three workers reach the backend over three connections; on the shared runtime
/// (`--workers 0`) one pool serves them all, and requests one after another reuse one.
#[tokio::test]
async fn each_worker_reaches_the_backend_over_its_own_pool() {
    for (workers, backend_connections) in [(3, 3), (0, 1)] {
        let backend = Backend::start().await;
        let overrides = Overrides {
            workers: Some(workers),
            ..Default::default()
        };
        let sim = Sim::start_with(&routes(&backend.url()), overrides).await;
        let clients = [sim.client(), sim.client(), sim.client()];
        for _ in 0..3 {
            for client in &clients {
                client
                    .send(Call::metadata())
                    .await
                    .assert_status(StatusCode::OK);
            }
        }
        let peers: std::collections::HashSet<_> =
            backend.requests().iter().map(|r| r.peer).collect();
        assert_eq!(peers.len(), backend_connections, "--workers {workers}");
        sim.stop().await;
    }
}
