//! Consumers that ask for a large response and stop reading (issue 11, finding 1): each holds
//! a bounded buffer, is closed after the write timeout, and its memory comes back. Alone in its
//! own test binary because it measures this process's resident memory.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssp_sim::config::settings::Overrides;
use support::*;
use tokio::io::AsyncWriteExt;

const CONNECTIONS: usize = 200;
/// Each backend response: far more than any buffer on the way holds.
const BODY: u64 = 64 << 20;
/// The stated bound: at most 384 KiB of this process's memory per stalled connection (the
/// simulator's buffers, the test's own TLS clients and the backend together; about 215 KiB
/// measured). Before the bound, each held about 1.3 MB here.
const PER_CONNECTION: usize = 384 << 10;

/// Resident memory of this process now (not the peak), in bytes.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn open_connections(sim: &Sim) -> f64 {
    let text = String::from_utf8_lossy(&sim.admin_client().get("/metrics").await.body).into_owned();
    metric(&text, "ssp_sim_open_connections").unwrap_or(f64::NAN)
}

/// What the backend has seen and sent.
#[derive(Default)]
struct Tally {
    large_requests: AtomicUsize,
    bytes_sent: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_hold_a_bounded_buffer_and_are_closed_after_the_write_timeout() {
    // The backend holds every large answer until all the readers are in, then sends them at
    // once, straight from a static buffer (a stalled reader costs it nothing): the pipes fill
    // together, whatever time the handshakes took on a loaded machine.
    let (go, gate) = tokio::sync::watch::channel(false);
    let tally = Arc::new(Tally::default());
    let seen = tally.clone();
    let url = scripted_backend(move |mut stream| {
        let (mut gate, tally) = (gate.clone(), seen.clone());
        async move {
            static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
            let large = read_head(&mut stream).await.contains("/Patient/1 ");
            if !large {
                let small = b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = stream.write_all(small).await;
                return;
            }
            tally.large_requests.fetch_add(1, Ordering::Relaxed);
            let _ = gate.wait_for(|go| *go).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {BODY}\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut sent = 0;
            while sent < BODY {
                if stream.write_all(&CHUNK).await.is_err() {
                    return;
                }
                sent += CHUNK.len() as u64;
                tally
                    .bytes_sent
                    .fetch_add(CHUNK.len() as u64, Ordering::Relaxed);
            }
        }
    })
    .await;
    let sim = Sim::start_with_settings(
        &routes(&url),
        Overrides::default(),
        "write_timeout_ms = 4000\n",
        Pki::new(),
    )
    .await;
    // Warm up, so the allocator's pools exist before measuring.
    sim.client()
        .send(call("/Patient/2"))
        .await
        .assert_status(http::StatusCode::OK);
    let before = rss();
    assert!(before > 0, "memory is read from /proc/self/status");

    let request = format!(
        "GET /{ROOT}/Patient/1 HTTP/1.1\r\nhost: localhost\r\nssp-traceid: {}\r\nssp-from: {CONSUMER}\r\nssp-to: {PROVIDER}\r\nssp-interactionid: {READ_PATIENT}\r\n\r\n",
        uuid::Uuid::new_v4()
    );
    // One client config for all: after the first full handshake the others resume the session.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(
        &sim.pki.paths,
        Some(&sim.pki.paths),
    )));
    let opening = Instant::now();
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        // A small receive buffer, so that little goes through before the pipe is full
        // (loopback would otherwise take megabytes per socket, and time to encrypt them).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let tcp = socket.connect(sim.addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("TLS");
        tls.write_all(request.as_bytes()).await.unwrap();
        held.push(tls); // ...and never read.
    }
    let waiting = Instant::now();
    while tally.large_requests.load(Ordering::Relaxed) < CONNECTIONS {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "requests not forwarded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Go, and weigh what they hold once nothing more moves.
    let released = Instant::now();
    go.send(true).unwrap();
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = tally.bytes_sent.load(Ordering::Relaxed);
        if sent > 0 && sent == last {
            break;
        }
        last = sent;
        assert!(
            released.elapsed() < Duration::from_secs(20),
            "the pipes never filled"
        );
    }
    let grown = rss().saturating_sub(before);
    let filled = released.elapsed();
    let open = open_connections(&sim).await;
    assert!(
        open >= CONNECTIONS as f64,
        "only {open} connections were still open when they were weighed (the machine was \
         slower than the write timeout)"
    );
    assert!(
        grown < CONNECTIONS * PER_CONNECTION,
        "{CONNECTIONS} stalled readers grew memory by {} MiB ({} KiB each, bound {} KiB)",
        grown >> 20,
        (grown / CONNECTIONS) >> 10,
        PER_CONNECTION >> 10
    );

    // The write timeout closes them all.
    loop {
        let open = open_connections(&sim).await;
        if open == 0.0 {
            break;
        }
        assert!(
            released.elapsed() < Duration::from_secs(30),
            "{open} stalled connections still open {:?} after they stalled",
            released.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = rss().saturating_sub(before);
    eprintln!(
        "{CONNECTIONS} stalled readers (opened in {:?}, their pipes full {filled:?} after the \
         release): memory grew {} KiB ({} KiB each); all closed {:?} after the release; then {} \
         KiB above the start",
        released.duration_since(opening),
        grown >> 10,
        (grown / CONNECTIONS) >> 10,
        released.elapsed(),
        after >> 10
    );
    drop(held);
    // And a new client is served as ever.
    sim.client()
        .send(call("/Patient/2"))
        .await
        .assert_status(http::StatusCode::OK);
    sim.stop().await;
}

fn call(rest: &str) -> Call {
    Call::new(http::Method::GET, format!("{ROOT}{rest}"), READ_PATIENT)
}
