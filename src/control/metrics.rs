//! Prometheus metrics for `GET /metrics`: requests by interaction, status and catalogue
//! error, a latency histogram, backend errors, faults fired, reloads, and open and refused
//! connections.
//!
//! Written by hand in the text exposition format: a handful of atomics is all it takes, and
//! the request path only bumps counters (no allocation once a label set has been seen).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

// foldhash, not std's SipHash: these maps are read on every request.
use foldhash::HashMap;
use http::StatusCode;

use crate::config::errors::ErrorCatalog;
use crate::config::interactions::{InteractionKey, Interactions};
use crate::config::rejection::ids;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The label set of one request counter. Indexes, not strings, so that counting allocates
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct RequestKey {
    interaction: Option<InteractionKey>,
    status: u16,
    /// Position in `Metrics::errors`.
    error: Option<usize>,
}

/// A gauge of things held open, decremented when the holder is dropped.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Counts one more until the returned guard is dropped.
    pub fn hold(&self) -> Held<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(self)
    }

    /// How many are held now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a listener turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection slot (`max_connections`) is held by an established session.
    MaxConnections,
    /// Every place for a TLS handshake in progress (`max_handshakes`) is taken.
    MaxHandshakes,
}

impl Refusal {
    /// The `reason` label, which is also the setting that raises the limit.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxHandshakes => "max_handshakes",
        }
    }
}

/// What a listener counts about its connections: those open, and those refused.
#[derive(Debug, Default)]
pub struct Connections {
    open: Gauge,
    refused_slots: AtomicU64,
    refused_handshakes: AtomicU64,
}

impl Connections {
    /// Counts an open connection until the guard is dropped.
    pub fn hold(&self) -> Held<'_> {
        self.open.hold()
    }

    /// Counts a connection turned away.
    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::MaxConnections => &self.refused_slots,
            Refusal::MaxHandshakes => &self.refused_handshakes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One unit of a `Gauge`, given back on drop.
#[derive(Debug)]
pub struct Held<'a>(&'a Gauge);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The simulator's counters. When off, recording is a no-op (the open-connection gauge,
/// which the listener keeps anyway, still counts).
#[derive(Debug)]
pub struct Metrics {
    enabled: bool,
    interactions: Arc<Interactions>,
    /// Catalogue ids, the `error` label values.
    errors: Vec<String>,
    error_index: HashMap<String, usize>,
    requests: RwLock<HashMap<RequestKey, AtomicU64>>,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
    backend_errors: AtomicU64,
    faults_fired: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    connections: Connections,
}

impl Metrics {
    /// Metrics labelled with the catalogues' interaction and error ids.
    pub fn new(enabled: bool, interactions: Arc<Interactions>, catalog: &ErrorCatalog) -> Self {
        let errors: Vec<String> = catalog.entries().iter().map(|e| e.id.clone()).collect();
        let error_index = errors
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        Self {
            enabled,
            interactions,
            errors,
            error_index,
            requests: RwLock::default(),
            latency_buckets: Default::default(),
            latency_micros: AtomicU64::new(0),
            backend_errors: AtomicU64::new(0),
            faults_fired: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            connections: Connections::default(),
        }
    }

    /// Whether requests are counted (`--metrics`); `GET /metrics` answers 404 when not.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Connections open on, and refused by, the SSP listeners.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Counts one finished request. `interaction` is what `Ssp-InteractionID` named;
    /// `status` is `None` when the connection was dropped on purpose; `error` is the
    /// catalogue id that answered.
    pub fn record(
        &self,
        interaction: Option<InteractionKey>,
        status: Option<StatusCode>,
        error: Option<&str>,
        elapsed: Duration,
    ) {
        if !self.enabled {
            return;
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(micros, Ordering::Relaxed);
        let Some(status) = status else { return };
        let key = RequestKey {
            // Only catalogue interactions become labels, so a client cannot grow the set.
            interaction,
            status: status.as_u16(),
            // An id the catalogue lacks is rendered as internal-server-error; count it so.
            error: error.map(|id| {
                self.error_index
                    .get(id)
                    .or_else(|| self.error_index.get(ids::INTERNAL_SERVER_ERROR))
                    .copied()
                    .unwrap_or(0)
            }),
        };
        let seen = self
            .requests
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .map(|counter| counter.fetch_add(1, Ordering::Relaxed))
            .is_some();
        if !seen {
            self.requests
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key)
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A backend could not be reached, timed out or sent a broken response.
    pub fn backend_error(&self) {
        self.backend_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fault that acted on a request (`ssp_sim_faults_fired_total`).
    pub fn fault_fired(&self) {
        self.faults_fired.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload, successful or refused (`ssp_sim_reloads_total` by `result`).
    pub fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut rows: Vec<(String, u16, &str, u64)> = self
            .requests
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, count)| {
                let interaction = key
                    .interaction
                    // An interaction routes.toml declared after start-up is not in this
                    // catalogue: it is counted without its label rather than mislabelled.
                    .and_then(|k| self.interactions.get_key(k))
                    .map(|i| i.id.clone())
                    .unwrap_or_default();
                let error = key
                    .error
                    .and_then(|i| self.errors.get(i))
                    .map_or("", String::as_str);
                (
                    interaction,
                    key.status,
                    error,
                    count.load(Ordering::Relaxed),
                )
            })
            .collect();
        rows.sort();
        header(
            &mut out,
            "ssp_sim_requests_total",
            "counter",
            "SSP requests answered, by Ssp-InteractionID, HTTP status and catalogue error id.",
        );
        for (interaction, status, error, count) in rows {
            let _ = writeln!(
                out,
                "ssp_sim_requests_total{{interaction=\"{}\",status=\"{status}\",error=\"{}\"}} {count}",
                escape(&interaction),
                escape(error)
            );
        }

        header(
            &mut out,
            "ssp_sim_request_duration_seconds",
            "histogram",
            "Time from receiving a request to its response head (or dropped connection).",
        );
        let mut cumulative = 0;
        for (i, slot) in self.latency_buckets.iter().enumerate() {
            cumulative += slot.load(Ordering::Relaxed);
            match BUCKETS.get(i) {
                Some(bound) => {
                    let _ = writeln!(
                        out,
                        "ssp_sim_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "ssp_sim_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
                    );
                }
            }
        }
        let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "ssp_sim_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "ssp_sim_request_duration_seconds_count {cumulative}");

        for (name, kind, help, value) in [
            (
                "ssp_sim_backend_errors_total",
                "counter",
                "Backend calls that failed: connection, timeout or broken response.",
                self.backend_errors.load(Ordering::Relaxed) as i64,
            ),
            (
                "ssp_sim_faults_fired_total",
                "counter",
                "Requests a fault rule answered, delayed or dropped.",
                self.faults_fired.load(Ordering::Relaxed) as i64,
            ),
            (
                "ssp_sim_open_connections",
                "gauge",
                "Connections open on the SSP listeners.",
                self.connections.open.get(),
            ),
        ] {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "ssp_sim_connections_refused_total",
            "counter",
            "Connections the SSP listeners turned away, by the limit that was reached.",
        );
        for (why, counter) in [
            (Refusal::MaxConnections, &self.connections.refused_slots),
            (Refusal::MaxHandshakes, &self.connections.refused_handshakes),
        ] {
            let _ = writeln!(
                out,
                "ssp_sim_connections_refused_total{{reason=\"{}\"}} {}",
                why.label(),
                counter.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "ssp_sim_reloads_total",
            "counter",
            "Reloads of routes.toml, by result.",
        );
        let _ = writeln!(
            out,
            "ssp_sim_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "ssp_sim_reloads_total{{result=\"error\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote and newline, as the format requires).
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";

    fn metrics(enabled: bool) -> Metrics {
        let interactions = Arc::new(
            Interactions::parse("interactions.toml", crate::config::interactions::EMBEDDED)
                .unwrap(),
        );
        Metrics::new(enabled, interactions, &ErrorCatalog::embedded().unwrap())
    }

    #[test]
    fn requests_are_counted_by_interaction_status_and_error() {
        let m = metrics(true);
        for _ in 0..2 {
            m.record(
                Some(m.interactions.get(METADATA).unwrap().key),
                Some(StatusCode::OK),
                None,
                Duration::from_millis(3),
            );
        }
        m.record(
            None,
            Some(StatusCode::FORBIDDEN),
            Some(ids::SENDER_NOT_AUTHORISED),
            Duration::from_secs(60),
        );
        let text = m.render();
        assert!(
            text.contains(&format!(
                "ssp_sim_requests_total{{interaction=\"{METADATA}\",status=\"200\",error=\"\"}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains("ssp_sim_requests_total{interaction=\"\",status=\"403\",error=\"sender-asid-not-authorised\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ssp_sim_request_duration_seconds_bucket{le=\"0.005\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ssp_sim_request_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ssp_sim_request_duration_seconds_count 3"),
            "{text}"
        );
    }

    #[test]
    fn off_records_nothing_but_still_renders_the_gauge() {
        let m = metrics(false);
        let metadata = m.interactions.get(METADATA).unwrap().key;
        m.record(Some(metadata), Some(StatusCode::OK), None, Duration::ZERO);
        let _held = m.connections().hold();
        m.connections().refused(Refusal::MaxHandshakes);
        let text = m.render();
        assert!(!text.contains("ssp_sim_requests_total{"), "{text}");
        assert!(text.contains("ssp_sim_open_connections 1"), "{text}");
        assert!(
            text.contains("ssp_sim_connections_refused_total{reason=\"max_handshakes\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("plain"), "plain");
    }
}
