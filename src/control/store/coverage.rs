//! The coverage report's counts in Redis: one hash, `ssp-sim:coverage`, with a field per
//! consumer and thing counted (`<consumer>\t<kind>\t<key>`), bumped with `HINCRBY` through the
//! background writer, so counting never waits on the store; `ssp-sim:coverage:since` holds
//! when counting started (UNIX ms). Counts are also kept here, and the report falls back to
//! this replica's own while the store does not answer.
//!
//! A request's counts are added up here and sent every `FLUSH` (and before this replica reads
//! the report), not one `HINCRBY` per count per request: Redis then does a few commands per
//! interval instead of four or five per request. Another replica's report may lag by `FLUSH`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{key, Store};
use crate::control::coverage::{Coverage, Hit, Later, LocalCoverage, Snapshot, Tally};

/// How often the counts added up here are sent to the store.
const FLUSH: Duration = Duration::from_millis(100);

/// Counts shared by every replica.
pub struct RedisCoverage {
    store: Arc<Store>,
    counts: String,
    since: String,
    local: LocalCoverage,
    /// Counts not yet sent, by hash field.
    pending: Arc<Mutex<HashMap<String, u64>>>,
}

impl RedisCoverage {
    /// Counts in `store`; the start time is set unless another replica set it already. Must
    /// be made inside the runtime: it starts the task that sends the counts every `FLUSH`,
    /// which ends when the counts are dropped.
    pub fn new(store: Arc<Store>) -> Self {
        let this = Self {
            counts: key("coverage"),
            since: key("coverage:since"),
            store,
            local: LocalCoverage::new(),
            pending: Arc::default(),
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(&this.since).arg(now_ms()).arg("NX");
        this.store.queue(pipe);
        let (store, counts, pending) = (
            this.store.clone(),
            this.counts.clone(),
            Arc::downgrade(&this.pending),
        );
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FLUSH);
            loop {
                every.tick().await;
                let Some(pending) = pending.upgrade() else {
                    return;
                };
                let mut pipe = redis::pipe();
                if add_pending(&pending, &counts, &mut pipe) {
                    store.queue(pipe);
                }
            }
        });
        this
    }
}

/// Moves the counts not yet sent into `pipe` as `HINCRBY`s; whether there were any.
fn add_pending(
    pending: &Mutex<HashMap<String, u64>>,
    counts: &str,
    pipe: &mut redis::Pipeline,
) -> bool {
    let taken = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
    for (field, n) in &taken {
        pipe.hincr(counts, field, *n).ignore();
    }
    !taken.is_empty()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The hash field of one count.
fn field(consumer: &str, kind: &str, key: &str) -> String {
    format!("{consumer}\t{kind}\t{key}")
}

impl Coverage for RedisCoverage {
    fn count(&self, hit: &Hit<'_>) {
        self.local.count(hit);
        let consumer = hit
            .consumer
            .unwrap_or(crate::control::coverage::UNREGISTERED);
        let status = hit
            .status
            .map_or_else(|| "dropped".to_owned(), |s| s.to_string());
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bump = |kind: &str, key: &str| {
            *pending.entry(field(consumer, kind, key)).or_default() += 1;
        };
        bump("requests", "");
        if let Some(interaction) = hit.interaction {
            bump("interaction", interaction);
        }
        if let Some(error) = hit.error {
            bump("error", error);
        }
        bump("status", &status);
        for rule in hit.rules {
            bump("rule", rule);
        }
    }

    fn snapshot(&self) -> Later<'_, Snapshot> {
        // This replica's own counts first, so its report is never behind itself.
        let mut pipe = redis::pipe();
        add_pending(&self.pending, &self.counts, &mut pipe);
        pipe.hgetall(&self.counts).get(&self.since);
        Box::pin(async move {
            let read: Result<(HashMap<String, u64>, Option<u64>), _> = self
                .store
                .in_background(move |mut c| async move { pipe.query_async(&mut c).await })
                .await;
            let Ok((counts, since)) = read else {
                return self.local.counted();
            };
            let mut consumers: std::collections::BTreeMap<String, Tally> = Default::default();
            for (field, n) in counts {
                let mut parts = field.splitn(3, '\t');
                let (Some(consumer), Some(kind), Some(key)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let tally = consumers.entry(consumer.to_owned()).or_default();
                let map = match kind {
                    "requests" => {
                        tally.requests = n;
                        continue;
                    }
                    "interaction" => &mut tally.interactions,
                    "error" => &mut tally.errors,
                    "status" => &mut tally.statuses,
                    "rule" => &mut tally.jwt_rules,
                    _ => continue,
                };
                map.insert(key.to_owned(), n);
            }
            Snapshot {
                since: UNIX_EPOCH + Duration::from_millis(since.unwrap_or_else(now_ms)),
                consumers,
            }
        })
    }

    fn reset(&self) -> Later<'_, ()> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&self.counts)
            .ignore()
            .set(&self.since, now_ms())
            .ignore();
        Box::pin(async move {
            let _ = self.local.reset().await;
            let _ = self
                .store
                .in_background(move |mut c| async move { pipe.query_async::<()>(&mut c).await })
                .await;
        })
    }
}
