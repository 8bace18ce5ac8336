//! Consumers that ask for a large response and stop reading (issue 11, finding 1): each holds
//! a bounded buffer, is closed after the write timeout, and its memory comes back. Alone in its
//! own test binary because it measures this process's resident memory.

mod support;

use std::time::{Duration, Instant};

use ssp_sim::config::settings::Overrides;
use support::*;
use tokio::io::AsyncWriteExt;

const CONNECTIONS: usize = 200;
/// Each backend response: far more than any buffer on the way holds.
const BODY: u64 = 64 << 20;
/// The stated bound: at most 256 KiB of this process's memory per stalled connection (the
/// simulator's buffers, the test's own TLS clients and the backend together). Before the
/// bound, each held about 1.7 MB.
const PER_CONNECTION: usize = 256 << 10;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_hold_a_bounded_buffer_and_are_closed_after_the_write_timeout() {
    // The backend writes straight from a static buffer: a stalled reader costs it nothing.
    let url = scripted_backend(|mut stream| async move {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        // `/Patient/1` is the large answer; anything else a small one, on a fresh connection.
        let size = if read_head(&mut stream).await.contains("/Patient/1 ") { BODY } else { 2 };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if size == 2 {
            let _ = stream.write_all(b"{}").await;
            return;
        }
        let mut sent = 0;
        while sent < BODY {
            if stream.write_all(&CHUNK).await.is_err() {
                return;
            }
            sent += CHUNK.len() as u64;
        }
    })
    .await;
    let sim = Sim::start_with_settings(
        &routes(&url),
        Overrides::default(),
        "write_timeout_ms = 1500\n",
        Pki::new(),
    )
    .await;
    // Warm up, so the allocator's pools exist before measuring.
    sim.client()
        .send(ssp_sim_call("/Patient/2"))
        .await
        .assert_status(http::StatusCode::OK);
    let before = rss();
    assert!(before > 0, "memory is read from /proc/self/status");

    let request = format!(
        "GET /{ROOT}/Patient/1 HTTP/1.1\r\nhost: localhost\r\nssp-traceid: {}\r\nssp-from: {CONSUMER}\r\nssp-to: {PROVIDER}\r\nssp-interactionid: {READ_PATIENT}\r\n\r\n",
        uuid::Uuid::new_v4()
    );
    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut tls = connect_tls(sim.addr, &sim.pki.paths, Some(&sim.pki.paths))
            .await
            .expect("TLS");
        tls.write_all(request.as_bytes()).await.unwrap();
        held.push(tls); // ...and never read.
    }
    // Let every pipe fill up, then weigh what they hold.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let grown = rss().saturating_sub(before);
    assert!(
        grown < CONNECTIONS * PER_CONNECTION,
        "{CONNECTIONS} stalled readers grew memory by {} MiB ({} KiB each, bound {} KiB)",
        grown >> 20,
        (grown / CONNECTIONS) >> 10,
        PER_CONNECTION >> 10
    );

    // The write timeout closes them all.
    let started = Instant::now();
    loop {
        let open = open_connections(&sim).await;
        if open == 0.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{open} stalled connections still open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(held);
    // And a new client is served as ever.
    sim.client()
        .send(ssp_sim_call("/Patient/2"))
        .await
        .assert_status(http::StatusCode::OK);
    sim.stop().await;
}

fn ssp_sim_call(rest: &str) -> Call {
    Call::new(http::Method::GET, format!("{ROOT}{rest}"), READ_PATIENT)
}
