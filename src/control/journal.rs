//! The journal: a bounded ring of recent SSP requests, each with what arrived, every check's
//! result (the gateway's `Trail`), the answer and its timing, so a consumer sees exactly why a
//! request was refused (`GET /journal` on the admin API).
//!
//! Recording copies the few short values it keeps (the target and the SSP headers) out of
//! the request: holding the request's own bytes would pin hyper's whole read buffer for as
//! long as the entry lives, and make every later read allocate a new one. Each is bounded and
//! has its NHS numbers masked, as the trail's details are: an entry stays a few KB whatever a
//! consumer sends, and holds no personal data.
//!
//! Two additions serve the console. Every recorded entry is also sent to live subscribers
//! (`GET /journal/stream`) over a bounded broadcast channel: a subscriber that falls behind
//! skips what it missed, so a slow reader never makes the journal buffer more. And when the
//! `journal_details` setting asks for it, an entry keeps its [`Details`]: headers, the decoded
//! JWT and the error payload, which are personal data and so are off by default.
//!
//! Replicas that share a store (`--store`) also hand every entry to a [`Sink`], which keeps
//! the journal of all of them: `GET /journal` then reads the sink, and the live stream is fed
//! from it (`follow`), so each replica's console shows every replica's requests. The ring is
//! still kept, and serves both whenever the sink is down.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::control::trail::{CheckRecord, Trail};
use crate::wire::echo;
use crate::wire::headers::SspValues;

/// What arrived: the method, the path and the SSP headers, exactly as sent. Header values
/// and the URI are reference-counted, so taking them is cheap; they live as long as the
/// request is being answered.
#[derive(Debug, Clone)]
pub struct Head {
    method: Method,
    uri: Uri,
    ssp: SspValues,
}

impl Head {
    /// Takes what the journal keeps from a request as it arrives.
    pub fn of<B>(request: &Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            ssp: SspValues::of(request.headers()),
        }
    }

    /// The SSP headers as sent, for check 4.
    pub fn ssp(&self) -> &SspValues {
        &self.ssp
    }

    /// The `Ssp-TraceID` header as sent, to echo on errors.
    pub fn trace_id(&self) -> Option<&HeaderValue> {
        self.ssp.trace_id.as_ref()
    }

    /// The `Ssp-From` header as sent, when it is text.
    pub fn from(&self) -> Option<&str> {
        self.ssp.from.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The `Ssp-InteractionID` header as sent, when it is text.
    pub fn interaction(&self) -> Option<&str> {
        self.ssp.interaction.as_ref().and_then(|v| v.to_str().ok())
    }

    /// The target URL: the request path without the leading `/`, with its query.
    fn target_url(&self) -> &str {
        let raw = self.uri.path_and_query().map_or("", |pq| pq.as_str());
        raw.strip_prefix('/').unwrap_or(raw)
    }
}

/// A `Head` copied out of the request, as text, in one allocation: the journal holds a
/// thousand of these, and what they take from the caches is most of what recording costs.
#[derive(Debug)]
struct Seen {
    method: Method,
    /// The target URL, then each header that was sent, one after another.
    text: Box<str>,
    /// Where the target URL ends in `text`.
    target_url: u32,
    /// Where `Ssp-TraceID`, `Ssp-From`, `Ssp-To` and `Ssp-InteractionID` are in `text`.
    headers: [Option<(u32, u32)>; 4],
}

impl Seen {
    fn target_url(&self) -> &str {
        &self.text[..self.target_url as usize]
    }

    /// Header `at` of [`Seen::headers`], when it was sent.
    fn header(&self, at: usize) -> Option<&str> {
        self.headers[at].map(|(start, end)| &self.text[start as usize..end as usize])
    }

    fn trace_id(&self) -> Option<&str> {
        self.header(0)
    }

    /// `Ssp-From`, as kept.
    fn sender(&self) -> Option<&str> {
        self.header(1)
    }

    /// `Ssp-To`, as kept.
    fn receiver(&self) -> Option<&str> {
        self.header(2)
    }

    fn interaction(&self) -> Option<&str> {
        self.header(3)
    }
}

impl From<&Head> for Seen {
    /// Copies what arrived under the data-handling rule (README, "Personal data"): bounded,
    /// without control characters, NHS numbers masked.
    fn from(head: &Head) -> Self {
        let ssp = &head.ssp;
        let sent = [&ssp.trace_id, &ssp.from, &ssp.to, &ssp.interaction];
        let target_url = head.target_url();
        let room = target_url.len()
            + sent
                .iter()
                .copied()
                .flatten()
                .map(HeaderValue::len)
                .sum::<usize>();
        let mut kept = String::with_capacity(room);
        echo::redact_into(&mut kept, target_url, echo::LONG);
        // Both bounds are under 2^32: the target URL is cut at 2,048 characters.
        let end = |kept: &String| u32::try_from(kept.len()).unwrap_or(u32::MAX);
        let target_url = end(&kept);
        let headers = sent.map(|value| {
            value.as_ref().map(|v| {
                let start = end(&kept);
                echo::redact_into(&mut kept, &text(v), echo::SHORT);
                (start, end(&kept))
            })
        });
        Self {
            method: head.method.clone(),
            text: kept.into_boxed_str(),
            target_url,
            headers,
        }
    }
}

/// `checks` moved into a new allocation of exactly their size (a shrinking `realloc` may keep
/// the whole block).
fn exact(mut checks: Vec<CheckRecord>) -> Box<[CheckRecord]> {
    let mut kept = Vec::with_capacity(checks.len());
    kept.append(&mut checks);
    kept.into_boxed_slice()
}

/// How many entries a live subscriber may fall behind before it skips the oldest.
const LIVE_BACKLOG: usize = 256;

/// The most headers of a request or response the details keep (the listener allows 100).
const MAX_HEADERS: usize = 100;

/// What `journal_details` keeps beside an entry, for the console's view of one request. The
/// `Authorization` header itself is never kept: its token is shown decoded instead.
#[derive(Debug, Default, serde::Serialize)]
pub struct Details {
    /// The request's headers as `[name, value]`, bounded and with NHS numbers masked, without
    /// `Authorization`.
    pub request_headers: Vec<(String, String)>,
    /// The response's headers, likewise; empty for a dropped connection.
    pub response_headers: Vec<(String, String)>,
    /// The bearer token decoded, when check 10 read one.
    pub jwt: Option<Token>,
    /// The OperationOutcome of the catalogue error that answered, when one did.
    pub outcome: Option<Value>,
}

/// A bearer token as check 10 read it: its parts decoded and every rule it broke.
#[derive(Debug, Default, serde::Serialize)]
pub struct Token {
    /// The JOSE header, when it decoded to a JSON object.
    pub header: Option<Value>,
    /// The claims, when they decoded to a JSON object.
    pub claims: Option<Value>,
    /// Every rule broken or noticed, in the order found.
    pub rules: Vec<RuleVerdict>,
}

/// One check-10 rule a token broke.
#[derive(Debug, serde::Serialize)]
pub struct RuleVerdict {
    /// The rule's id, e.g. `claim.aud`.
    pub rule: &'static str,
    /// The claim it is about, when it names one (`requesting_practitioner.name[0].family`).
    pub claim: Option<String>,
    /// `true` for a rule whose breaking refuses the request; `false` for a notice.
    pub enforced: bool,
    /// What is wrong, as the consumer was told.
    pub message: String,
}

impl Details {
    /// Copies headers under the data-handling rule, leaving `Authorization` (and
    /// `Proxy-Authorization`) out.
    pub fn headers(headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _)| {
                *name != http::header::AUTHORIZATION && *name != http::header::PROXY_AUTHORIZATION
            })
            .take(MAX_HEADERS)
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    echo::redact(&text(value), echo::SHORT),
                )
            })
            .collect()
    }
}

/// One finished request, handed to the journal.
#[derive(Debug)]
pub struct Entry {
    /// When the request arrived, for the entry's timestamp.
    pub received: SystemTime,
    /// What arrived, as sent.
    pub head: Head,
    /// Every check's result, in order.
    pub trail: Trail,
    /// `None` when the connection was dropped on purpose (a fault).
    pub status: Option<StatusCode>,
    /// The catalogue id that answered, if an error did.
    pub error: Option<Cow<'static, str>>,
    /// Time to the response head.
    pub duration: Duration,
    /// Headers, token and error payload, when `journal_details` is on.
    pub details: Option<Details>,
}

/// Which entries `recent` returns.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only the entries with this `Ssp-TraceID`.
    pub trace_id: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

/// What a sink call answers, later; the error says why the sink did not answer.
pub type SinkPending<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where replicas keep one journal of all of them (a Redis stream). Entries are JSON
/// objects as `GET /journal` shows them; the sink numbers them (`id`) in one order for all.
pub trait Sink: Send + Sync {
    /// Whether the sink answered last time: while it does not, the ring serves.
    fn up(&self) -> bool;
    /// This replica's name, kept in every entry (shared, not copied per entry).
    fn replica(&self) -> &Arc<str>;
    /// Queues an entry (without its `id`); never waits.
    fn append(&self, entry: String);
    /// The newest `count` entries, newest first.
    fn recent(&self, count: usize) -> SinkPending<'_, Vec<String>>;
    /// Forgets every entry.
    fn clear(&self) -> SinkPending<'_, ()>;
    /// Entries after the position `after` (`$`: from now), waiting a second at most for
    /// one; answers the new position with them.
    fn read<'a>(&'a self, after: &'a str) -> SinkPending<'a, (String, Vec<String>)>;
}

impl std::fmt::Debug for dyn Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sink({})", self.replica())
    }
}

/// One request as the journal keeps it, serialised for `GET /journal`.
#[derive(Debug)]
pub struct Record {
    /// The entry's number, from 1 in the order recorded: the console's key for it.
    id: u64,
    /// The replica that served it, when replicas share a store.
    replica: Option<Arc<str>>,
    received: SystemTime,
    seen: Seen,
    /// The trail's checks, in an allocation of their own size: the trail is made with room for
    /// every phase there is, and the journal holds a thousand of them.
    checks: Box<[CheckRecord]>,
    status: Option<StatusCode>,
    error: Option<Cow<'static, str>>,
    duration: Duration,
    details: Option<Details>,
}

/// The ring of recent requests; a capacity of 0 turns it off.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    details: bool,
    entries: Mutex<VecDeque<Arc<Record>>>,
    /// Entries as JSON, for `GET /journal/stream`.
    live: broadcast::Sender<Arc<str>>,
    recorded: AtomicU64,
    sink: OnceLock<Arc<dyn Sink>>,
}

/// How long `follow` waits before asking a sink that failed again.
const RETRY: Duration = Duration::from_millis(500);

impl Journal {
    /// A journal keeping the last `capacity` requests; 0 keeps none. `details` says whether
    /// entries keep their [`Details`].
    pub fn new(capacity: usize, details: bool) -> Self {
        Self {
            capacity,
            details: details && capacity > 0,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
            live: broadcast::channel(LIVE_BACKLOG).0,
            recorded: AtomicU64::new(0),
            sink: OnceLock::new(),
        }
    }

    /// Also keeps every entry in `sink`, shared with other replicas; call before serving,
    /// then run `follow`. A journal that is off stays off.
    pub fn share(&self, sink: Arc<dyn Sink>) {
        if self.enabled() {
            let _ = self.sink.set(sink);
        }
    }

    /// The sink, while it answers.
    fn live_sink(&self) -> Option<&Arc<dyn Sink>> {
        self.sink.get().filter(|s| s.up())
    }

    /// Feeds the live stream from the sink (every replica's entries) until `stop`. Returns
    /// at once without a sink.
    pub async fn follow(&self, mut stop: watch::Receiver<bool>) {
        let Some(sink) = self.sink.get() else {
            return;
        };
        let mut after = String::from("$");
        loop {
            let read = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                read = sink.read(&after) => read,
            };
            match read {
                Ok((next, entries)) => {
                    after = next;
                    for entry in entries {
                        let _ = self.live.send(entry.into());
                    }
                }
                Err(_) => {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Whether entries keep their details (`journal_details`): the gateway collects them
    /// only then.
    pub fn details(&self) -> bool {
        self.details
    }

    /// Entries as they are recorded, from now on. A subscriber more than a few hundred
    /// entries behind is told how many it missed (`RecvError::Lagged`) and goes on from the
    /// oldest still held.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.live.subscribe()
    }

    /// Whether it keeps anything; `GET /journal` answers 404 when it does not.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// How many requests it keeps, for `GET /health`.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps an entry, forgetting the oldest when full.
    pub fn record(&self, entry: Entry) {
        if !self.enabled() {
            return;
        }
        let sink = self.sink.get();
        let entry = Arc::new(Record {
            id: self.recorded.fetch_add(1, Ordering::Relaxed) + 1,
            replica: sink.map(|s| Arc::clone(s.replica())),
            received: entry.received,
            seen: Seen::from(&entry.head),
            checks: exact(entry.trail.checks),
            status: entry.status,
            error: entry.error,
            duration: entry.duration,
            details: entry.details.filter(|_| self.details),
        });
        match sink {
            Some(sink) => {
                sink.append(
                    Shown {
                        record: &entry,
                        id: None,
                    }
                    .json(),
                );
                // While the sink is down, `follow` hears nothing: the stream shows this
                // replica's own entries meanwhile.
                if !sink.up() {
                    self.broadcast(&entry);
                }
            }
            None => self.broadcast(&entry),
        }
        // The evicted entry is dropped after the lock is released.
        let evicted = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let evicted = (entries.len() >= self.capacity)
                .then(|| entries.pop_front())
                .flatten();
            entries.push_back(entry);
            evicted
        };
        drop(evicted);
    }

    /// Sends an entry to the live subscribers, if there are any: without them it is not
    /// even serialised.
    fn broadcast(&self, entry: &Record) {
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(
                Shown {
                    record: entry,
                    id: Some(entry.id),
                }
                .json()
                .into(),
            );
        }
    }

    /// `GET /journal`'s body: a JSON array of the entries `filter` picks, newest first,
    /// from the sink while it answers (every replica's), else from this replica's ring.
    pub async fn recent_json(&self, filter: &Filter) -> Vec<u8> {
        if let Some(sink) = self.live_sink() {
            // The trace filter is applied here, so the sink is read as far as the ring goes.
            let count = match filter.trace_id {
                Some(_) => self.capacity,
                None => filter.limit.unwrap_or(self.capacity).min(self.capacity),
            };
            if let Ok(entries) = sink.recent(count).await {
                #[derive(serde::Deserialize)]
                struct Traced {
                    trace_id: Option<String>,
                }
                let picked = entries
                    .iter()
                    .filter(|json| {
                        filter.trace_id.as_deref().is_none_or(|wanted| {
                            serde_json::from_str::<Traced>(json)
                                .is_ok_and(|t| t.trace_id.as_deref() == Some(wanted))
                        })
                    })
                    .take(filter.limit.unwrap_or(usize::MAX));
                let mut body = b"[".to_vec();
                for (i, json) in picked.enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(json.as_bytes());
                }
                body.push(b']');
                return body;
            }
        }
        let entries = self.recent(filter);
        // Straight to bytes: a `Value` of the whole journal would cost several times its size.
        serde_json::to_vec(&entries.iter().map(|e| &**e).collect::<Vec<_>>()).unwrap_or_default()
    }

    /// Entries newest first. Only the `Arc`s are copied under the lock; the caller
    /// serialises them outside it.
    pub fn recent(&self, filter: &Filter) -> Vec<Arc<Record>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .rev()
            .filter(|e| {
                filter
                    .trace_id
                    .as_deref()
                    .is_none_or(|t| e.seen.trace_id() == Some(t))
            })
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// Forgets every entry (`DELETE /journal`), the sink's too.
    pub async fn clear(&self) {
        if let Some(sink) = self.sink.get() {
            let _ = sink.clear().await;
        }
        let drained: VecDeque<_> =
            std::mem::take(&mut *self.entries.lock().unwrap_or_else(PoisonError::into_inner));
        drop(drained);
    }
}

/// A header value as text; bytes that are not visible ASCII are shown as `\xNN`.
fn text(value: &HeaderValue) -> Cow<'_, str> {
    match value.to_str() {
        Ok(s) => s.into(),
        Err(_) => value.as_bytes().escape_ascii().to_string().into(),
    }
}

/// A time as RFC 3339 text, as the journal and the report show times.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A record as shown, with `id` or, for a sink (which numbers entries itself), without.
struct Shown<'a> {
    record: &'a Record,
    id: Option<u64>,
}

impl Shown<'_> {
    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Shown {
            record: self,
            id: Some(self.id),
        }
        .serialize(serializer)
    }
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let this = self.record;
        let seen = &this.seen;
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = self.id {
            map.serialize_entry("id", &id)?;
        }
        if let Some(replica) = &this.replica {
            map.serialize_entry("replica", &**replica)?;
        }
        map.serialize_entry("received_at", &rfc3339(this.received))?;
        map.serialize_entry("trace_id", &seen.trace_id())?;
        map.serialize_entry("method", seen.method.as_str())?;
        map.serialize_entry("target_url", seen.target_url())?;
        map.serialize_entry("from_asid", &seen.sender())?;
        map.serialize_entry("to_asid", &seen.receiver())?;
        map.serialize_entry("interaction", &seen.interaction())?;
        map.serialize_entry("status", &this.status.map(|s| s.as_u16()))?;
        map.serialize_entry("error", &this.error)?;
        map.serialize_entry("checks", &this.checks)?;
        map.serialize_entry("duration_ms", &(this.duration.as_secs_f64() * 1000.0))?;
        if let Some(details) = &this.details {
            map.serialize_entry("details", details)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rejection::Rejection;

    fn request(headers: &[(&'static str, &'static str)]) -> Request<()> {
        let mut request = Request::builder()
            .uri("/https://p.example/A1/STU3/1/gpconnect/metadata")
            .body(())
            .unwrap();
        for (k, v) in headers {
            request
                .headers_mut()
                .insert(*k, HeaderValue::from_static(v));
        }
        request
    }

    fn entry(trace: &'static str) -> Entry {
        let mut trail = Trail::default();
        let _ = trail.check("method", Ok::<_, Rejection>(()));
        Entry {
            received: SystemTime::UNIX_EPOCH,
            head: Head::of(&request(&[
                ("ssp-traceid", trace),
                ("ssp-from", "200000000359"),
            ])),
            trail,
            status: Some(StatusCode::OK),
            error: None,
            duration: Duration::from_micros(1500),
            details: None,
        }
    }

    #[tokio::test]
    async fn the_ring_keeps_the_newest_entries_first() {
        let journal = Journal::new(2, false);
        for trace in ["a", "b", "c"] {
            journal.record(entry(trace));
        }
        let traces: Vec<String> = journal
            .recent(&Filter::default())
            .iter()
            .map(|e| serde_json::to_value(&**e).unwrap()["trace_id"].to_string())
            .collect();
        assert_eq!(traces, ["\"c\"", "\"b\""]);
        let only_b = journal.recent(&Filter {
            trace_id: Some("b".into()),
            limit: None,
        });
        assert_eq!(only_b.len(), 1);
        journal.clear().await;
        assert!(journal.recent(&Filter::default()).is_empty());
    }

    #[test]
    fn an_entry_serialises_to_the_documented_shape() {
        let journal = Journal::new(1, false);
        journal.record(entry("t"));
        let v = serde_json::to_value(&*journal.recent(&Filter::default())[0]).unwrap();
        assert_eq!(v["received_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["method"], "GET");
        assert_eq!(
            v["target_url"],
            "https://p.example/A1/STU3/1/gpconnect/metadata"
        );
        assert_eq!(v["from_asid"], "200000000359");
        assert!(v["to_asid"].is_null());
        assert_eq!(v["status"], 200);
        assert!(v["error"].is_null());
        assert_eq!(v["checks"][0]["name"], "method");
        assert_eq!(v["checks"][0]["ok"], true);
        assert_eq!(v["duration_ms"], 1.5);
    }

    #[test]
    fn what_arrived_is_kept_bounded_and_without_nhs_numbers() {
        let long = format!(
            "/https://p.example/A1/STU3/1/gpconnect/Patient?identifier=x%7C9434765870&pad={}",
            "a".repeat(10_000)
        );
        let request = Request::builder().uri(long.as_str()).body(()).unwrap();
        let journal = Journal::new(1, false);
        journal.record(Entry {
            head: Head::of(&request),
            ..entry("t")
        });
        let v = serde_json::to_value(&*journal.recent(&Filter::default())[0]).unwrap();
        let target = v["target_url"].as_str().unwrap();
        assert!(
            target.starts_with(
                "https://p.example/A1/STU3/1/gpconnect/Patient?identifier=x%7C**********&pad=aaa"
            ),
            "{target}"
        );
        assert!(target.chars().count() <= echo::LONG + 1, "{}", target.len());
    }

    #[test]
    fn a_subscriber_that_falls_behind_skips_what_it_missed() {
        let journal = Journal::new(1, false);
        let mut live = journal.subscribe();
        for _ in 0..LIVE_BACKLOG + 10 {
            journal.record(entry("t"));
        }
        assert!(matches!(
            live.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
        let next = live.try_recv().expect("the oldest still held");
        assert_eq!(serde_json::from_str::<Value>(&next).unwrap()["id"], 11);
    }

    #[test]
    fn details_keep_headers_without_authorization_and_only_when_asked() {
        let request = request(&[
            ("authorization", "Bearer secret.token."),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("x-patient", "nhs 9434765870"),
        ]);
        let details = || Details {
            request_headers: Details::headers(request.headers()),
            ..Details::default()
        };
        let kept = Journal::new(1, true);
        kept.record(Entry {
            details: Some(details()),
            ..entry("t")
        });
        let v = serde_json::to_value(&*kept.recent(&Filter::default())[0]).unwrap();
        assert_eq!(
            v["details"]["request_headers"],
            serde_json::json!([["x-patient", "nhs **********"]])
        );
        let dropped = Journal::new(1, false);
        dropped.record(Entry {
            details: Some(details()),
            ..entry("t")
        });
        let v = serde_json::to_value(&*dropped.recent(&Filter::default())[0]).unwrap();
        assert!(v.get("details").is_none());
    }

    #[test]
    fn off_keeps_nothing() {
        let journal = Journal::new(0, false);
        journal.record(entry("a"));
        assert!(journal.recent(&Filter::default()).is_empty());
    }
}
