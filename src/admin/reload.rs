//! Live reload of routes.toml: on `POST /reload`, on SIGHUP and when the file changes.
//!
//! New requests use the new registry while requests in flight finish on the one they started
//! with (the gateway swaps an `Arc`); listeners and connections are never touched. A file with
//! problems is refused: its problems are logged and returned, and the running registry stays.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::config::load::RoutesSource;
use crate::config::problems::ConfigError;
use crate::control::journal::rfc3339;
use crate::proxy::gateway::Gateway;

/// How often the routes file is looked at. A `stat` a second costs nothing and, unlike
/// inotify, sees editors that replace the file and files on any file system.
const POLL: Duration = Duration::from_secs(1);

/// What set a reload off, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `POST /reload` on the admin API.
    Admin,
    /// The process received SIGHUP.
    Sighup,
    /// The routes file's modification time or size changed.
    FileChange,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Admin => "POST /reload",
            Trigger::Sighup => "SIGHUP",
            Trigger::FileChange => "file change",
        })
    }
}

/// What a successful reload installed.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// Where the routes were read from.
    pub routes: String,
    /// How many consumers the new registry holds.
    pub consumers: usize,
    /// How many providers the new registry holds.
    pub providers: usize,
    /// How many `[[fault]]` tables it declared (installed in place of the old declared ones).
    pub faults: usize,
}

/// The last reload's result, for the console's view of the mock SDS.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    /// When it ran (RFC 3339).
    pub at: String,
    /// What set it off.
    pub trigger: String,
    /// `ok`, or `error` when the running routes stayed.
    pub result: &'static str,
    /// What it installed, when it succeeded.
    pub reloaded: Option<Reloaded>,
    /// Why it was refused, when it failed (as `POST /reload` answers them).
    pub problems: Vec<Value>,
}

/// A configuration error's problems as the admin API shows them.
pub fn problems(error: &ConfigError) -> Vec<Value> {
    error
        .problems
        .iter()
        .map(|p| json!({"file": p.file, "line": p.line, "key": p.key, "message": p.message}))
        .collect()
}

/// The routes file's modification time and size: what changes when someone saves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(source: &RoutesSource) -> Option<Stamp> {
    match source {
        RoutesSource::File(path) => std::fs::metadata(path).ok().map(|m| Stamp {
            modified: m.modified().ok(),
            len: m.len(),
        }),
        RoutesSource::Embedded => None,
    }
}

/// Reloads the routes into a running gateway.
pub struct Reloader {
    source: RoutesSource,
    gateway: Arc<Gateway>,
    /// The file as last read. Held for a whole reload, so that two triggers at once install
    /// the file in the order they read it.
    seen: Mutex<Option<Stamp>>,
    /// The last reload's result; `None` until one has run.
    last: Mutex<Option<LastReload>>,
}

impl Reloader {
    /// A reloader for routes just loaded from `source`.
    pub fn new(source: RoutesSource, gateway: Arc<Gateway>) -> Self {
        Self {
            seen: Mutex::new(stamp(&source)),
            last: Mutex::new(None),
            source,
            gateway,
        }
    }

    /// Reads and validates the routes again and, when they are good, swaps them in.
    pub async fn reload(self: &Arc<Self>, trigger: Trigger) -> Result<Reloaded, ConfigError> {
        let this = Arc::clone(self);
        // Reading files and building TLS clients blocks; keep it off the request threads.
        tokio::task::spawn_blocking(move || this.reload_now(trigger))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError::file(
                    &self.source.describe(),
                    format!("the reload stopped: {e}"),
                ))
            })
    }

    fn reload_now(&self, trigger: Trigger) -> Result<Reloaded, ConfigError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        *seen = stamp(&self.source);
        let interactions = self.gateway.routes().registry.catalogue.clone();
        let loaded = self
            .source
            .load(&interactions, self.gateway.catalog())
            .and_then(|registry| {
                let reloaded = Reloaded {
                    routes: registry.file.clone(),
                    consumers: registry.consumers().count(),
                    providers: registry.providers().count(),
                    faults: registry.faults.len(),
                };
                self.gateway.install(registry).map(|()| reloaded)
            });
        self.gateway.metrics().reloaded(loaded.is_ok());
        let last = LastReload {
            at: rfc3339(SystemTime::now()),
            trigger: trigger.to_string(),
            result: if loaded.is_ok() { "ok" } else { "error" },
            reloaded: loaded.as_ref().ok().cloned(),
            problems: loaded.as_ref().err().map(problems).unwrap_or_default(),
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(last);
        match loaded {
            Ok(reloaded) => {
                tracing::info!(%trigger, routes = %reloaded.routes, consumers = reloaded.consumers, providers = reloaded.providers, faults = reloaded.faults, "routes reloaded");
                Ok(reloaded)
            }
            Err(e) => {
                for problem in &e.problems {
                    tracing::warn!(%trigger, "routes not reloaded, the running ones stay: {problem}");
                }
                Err(e)
            }
        }
    }

    /// The last reload's result, if one has run since start-up.
    pub fn last(&self) -> Option<LastReload> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the file differs from the one last read. A reload under way counts as no
    /// change: it is reading the file right now.
    fn changed(&self) -> bool {
        match self.seen.try_lock() {
            Ok(seen) => *seen != stamp(&self.source),
            Err(_) => false,
        }
    }

    /// Reloads on SIGHUP and when the file changes, until `stop` turns true.
    pub async fn watch(self: Arc<Self>, mut sighups: Sighups, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                () = sighups.next() => Trigger::Sighup,
                _ = tick.tick() => {
                    if !self.changed() {
                        continue;
                    }
                    Trigger::FileChange
                }
            };
            // Problems are logged by the reload itself; watching goes on either way.
            let _ = self.reload(trigger).await;
        }
    }
}

/// SIGHUP deliveries (none on platforms without it, or when the handler cannot be set).
pub struct Sighups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Sighups {
    /// Starts catching SIGHUP, which would otherwise end the process. Call it at start-up,
    /// inside the runtime, so the handler is in place before anyone can send the signal.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(s) => Self(Some(s)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /reload");
                    Self(None)
                }
            }
        }
        #[cfg(not(unix))]
        Self()
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signals) = &mut self.0 {
            if signals.recv().await.is_some() {
                return;
            }
            self.0 = None;
        }
        std::future::pending().await
    }
}
