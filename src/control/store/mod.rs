//! The store replicas share (`--store redis://...`): the one Redis connection, its health,
//! and the background writer. Each shared part lives in its own file and plugs into the
//! seam the in-process part already has:
//!
//! | file | shares | through |
//! |---|---|---|
//! | `faults.rs` | API faults and their counts | `control::faults::Ledger` |
//! | `journal.rs` | the journal and its live stream | `control::journal::Sink` |
//! | `coverage.rs` | the coverage report's counts | `control::coverage::Coverage` |
//! | `limits.rs` | rate-limit counts | `spine::throttle::Limiter` |
//!
//! Proxy traffic never depends on the store. Calls made while a request waits (a counted
//! fault, a rate limit) are bounded by `store_timeout_ms` and skipped while the store is
//! known to be down; writes (journal entries, counts) go through a bounded queue to one
//! background writer and are dropped, and counted, when it is full. A monitor pings the
//! store twice a second: the first failure logs one warning and marks the store degraded
//! (`GET /health`, `ssp_sim_store_up`), the first success after it logs the recovery.

pub mod coverage;
pub mod faults;
pub mod journal;
pub mod limits;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};

use crate::config::store::StoreUrl;

/// Every key ssp-sim writes starts with this, so a Redis shared with other tools stays tidy.
pub const PREFIX: &str = "ssp-sim:";

/// How many writes may wait for the background writer before new ones are dropped.
const QUEUE: usize = 4096;

/// How many queued writes the writer sends in one round trip.
const BATCH: usize = 256;

/// How often the monitor pings the store.
const PING_EVERY: Duration = Duration::from_millis(500);

/// How long a background call (a ping, a batch of writes, a fault list) may take.
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is known to be unreachable; the call was not tried.
    #[error("the store is unreachable ({0})")]
    Down(String),
    /// The call took longer than allowed.
    #[error("the store did not answer within {0} ms")]
    Timeout(u128),
    /// Redis refused or the connection broke.
    #[error("the store failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What `GET /health` says of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not reached yet since start-up.
    Connecting,
    /// Answering.
    Ok,
    /// Not answering, with why.
    Degraded(String),
}

const CONNECTING: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The shared store: a multiplexed, self-reconnecting Redis connection with its health.
pub struct Store {
    url: StoreUrl,
    replica: Arc<str>,
    /// Request-path calls (fault counts, rate limits) and the admin API.
    conn: ConnectionManager,
    /// Blocking reads (`XREAD BLOCK`) need a connection of their own: Redis answers a
    /// connection's commands in order, so one blocked read would hold up everything behind it.
    client: redis::Client,
    timeout: Duration,
    state: AtomicU8,
    reason: Mutex<String>,
    errors: AtomicU64,
    dropped: AtomicU64,
    writes: mpsc::Sender<redis::Pipeline>,
    queued: Mutex<Option<mpsc::Receiver<redis::Pipeline>>>,
}

impl Store {
    /// A store at `url`, not yet connected: the connection is made in the background, so a
    /// replica starts (degraded) while Redis is down. `timeout` bounds calls a request waits
    /// on; `replica` names this process.
    pub fn new(url: StoreUrl, replica: &str, timeout: Duration) -> Result<Arc<Self>, StoreError> {
        let client = redis::Client::open(url.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(BACKGROUND_TIMEOUT))
            .set_response_timeout(Some(BACKGROUND_TIMEOUT))
            // The monitor retries twice a second; the manager itself should not pile up
            // attempts behind a request.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let (writes, queued) = mpsc::channel(QUEUE);
        Ok(Arc::new(Self {
            url,
            replica: replica.into(),
            conn,
            client,
            timeout,
            state: AtomicU8::new(CONNECTING),
            reason: Mutex::new(String::new()),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            writes,
            queued: Mutex::new(Some(queued)),
        }))
    }

    /// This replica's name.
    pub fn replica(&self) -> &Arc<str> {
        &self.replica
    }

    /// The address, for the start-up line and `GET /health`.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// Whether the last call succeeded: request-path calls are skipped while it is not.
    pub fn up(&self) -> bool {
        self.state.load(Ordering::Relaxed) == UP
    }

    /// The state for `GET /health`.
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            UP => State::Ok,
            CONNECTING => State::Connecting,
            _ => State::Degraded(self.reason()),
        }
    }

    /// Notes a failed call: counted always, logged once per outage.
    pub fn failed(&self, error: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let why = error.to_string();
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = why.clone();
        if self.state.swap(DOWN, Ordering::Relaxed) != DOWN {
            tracing::warn!(store = %self.url, error = %why, "store unreachable; faults, journal, coverage and rate limits fall back to this replica alone until it answers again");
        }
    }

    fn answered(&self) {
        match self.state.swap(UP, Ordering::Relaxed) {
            DOWN => tracing::info!(store = %self.url, "store reachable again; sharing resumed"),
            CONNECTING => {
                tracing::info!(store = %self.url, replica = %self.replica, "store connected")
            }
            _ => {}
        }
    }

    /// Runs one call on the shared connection within `limit`, noting the outcome.
    async fn within<T, F>(&self, limit: Duration, call: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let outcome = match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::Redis(e)),
            Err(_) => Err(StoreError::Timeout(limit.as_millis())),
        };
        match &outcome {
            Ok(_) => self.answered(),
            // A script error (our bug, or keys another tool wrote) is not an outage.
            Err(StoreError::Redis(e))
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Server(_)
                        | redis::ErrorKind::Parse
                        | redis::ErrorKind::UnexpectedReturnType
                ) => {}
            Err(e) => self.failed(e),
        }
        outcome
    }

    /// A call a request waits on: skipped while the store is down, bounded by
    /// `store_timeout_ms`.
    pub async fn on_request<T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.up() {
            return Err(StoreError::Down(self.reason()));
        }
        self.within(self.timeout, call(self.conn.clone())).await
    }

    /// A call of the admin API or a background task: tried even while the store is down
    /// (it is how recovery is noticed), bounded by a couple of seconds.
    pub async fn in_background<T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.within(BACKGROUND_TIMEOUT, call(self.conn.clone()))
            .await
    }

    fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Queues writes for the background writer; never waits. While the store is down, or
    /// when the queue is full, the writes are dropped and counted.
    pub fn queue(&self, writes: redis::Pipeline) {
        let down = self.state.load(Ordering::Relaxed) == DOWN;
        if down || self.writes.try_send(writes).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection of its own for a blocking read, within the background bound.
    pub(crate) async fn dedicated(&self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(BACKGROUND_TIMEOUT))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::Redis)
    }

    /// Runs the monitor and the writer until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let queued = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let writer = queued.map(|queued| tokio::spawn(self.clone().write(queued)));
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tick.tick() => {}
            }
            let _ = self
                .in_background(|mut c| async move {
                    redis::cmd("PING").query_async::<String>(&mut c).await
                })
                .await;
        }
        if let Some(writer) = writer {
            writer.abort();
        }
    }

    /// Sends queued writes in batches, one round trip each.
    async fn write(self: Arc<Self>, mut queued: mpsc::Receiver<redis::Pipeline>) {
        let mut batch = Vec::with_capacity(BATCH);
        while queued.recv_many(&mut batch, BATCH).await > 0 {
            let mut pipe = redis::pipe();
            for writes in batch.drain(..) {
                for cmd in writes.cmd_iter() {
                    pipe.add_command(cmd.clone()).ignore();
                }
            }
            let sent = self
                .in_background(move |mut c| async move { pipe.query_async::<()>(&mut c).await })
                .await;
            if sent.is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The store's Prometheus series, appended to `GET /metrics`.
    pub fn render(&self, out: &mut String) {
        let replica = &self.replica;
        let up = u8::from(self.up());
        let errors = self.errors.load(Ordering::Relaxed);
        let dropped = self.dropped.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP ssp_sim_replica_info This replica's name (--replica-name).\n\
             # TYPE ssp_sim_replica_info gauge\n\
             ssp_sim_replica_info{{replica=\"{replica}\"}} 1\n\
             # HELP ssp_sim_store_up Whether the shared store (--store) answered the last call.\n\
             # TYPE ssp_sim_store_up gauge\n\
             ssp_sim_store_up{{replica=\"{replica}\"}} {up}\n\
             # HELP ssp_sim_store_errors_total Store calls that failed or timed out.\n\
             # TYPE ssp_sim_store_errors_total counter\n\
             ssp_sim_store_errors_total{{replica=\"{replica}\"}} {errors}\n\
             # HELP ssp_sim_store_dropped_total Writes to the store dropped (store down or queue full); the local journal kept them.\n\
             # TYPE ssp_sim_store_dropped_total counter\n\
             ssp_sim_store_dropped_total{{replica=\"{replica}\"}} {dropped}\n"
        );
    }
}

/// A Redis key under ssp-sim's prefix.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}
