//! The coverage report (`GET /report`): per consumer ASID, which interactions it sent, which
//! SSP and provider errors it received, which JWT rules it broke, and which catalogue errors
//! it has never seen, so a team can show its error handling met every error.
//!
//! It counts from start-up or the last `reset` (`DELETE /report`), whatever the journal's
//! size. The gateway hands every answered request to a [`Coverage`] store; this file holds the
//! in-process one, [`LocalCoverage`]. Replicas that share a store count in Redis instead
//! (`control::store::coverage`), behind the same trait.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

// foldhash, not std's SipHash: these maps are counted into on every request.
use foldhash::HashMap;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::errors::{ErrorCatalog, Source};
use crate::config::routes::Registry;
use crate::config::sds::Asid;

/// The key under which requests from an `Ssp-From` that names no routes.toml consumer are
/// counted (an ASID is digits, so it cannot collide with one).
pub const UNREGISTERED: &str = "unregistered";

/// One answered request, as the report counts it. Every field is bounded by the
/// configuration (consumer ASIDs, catalogue ids, rule ids), never by what a consumer sends.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// The routes.toml consumer `Ssp-From` named, or `None`.
    pub consumer: Option<&'a str>,
    /// The catalogue interaction `Ssp-InteractionID` named, if it named one.
    pub interaction: Option<&'a str>,
    /// The HTTP status answered; `None` for a dropped connection.
    pub status: Option<u16>,
    /// The catalogue error that answered, if one did.
    pub error: Option<&'a str>,
    /// The check-10 rules the request broke (ids such as `claim.aud`).
    pub rules: &'a [&'static str],
}

/// What one consumer did, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Requests answered.
    pub requests: u64,
    /// Requests by interaction id.
    pub interactions: BTreeMap<String, u64>,
    /// Answers by catalogue error id.
    pub errors: BTreeMap<String, u64>,
    /// Answers by HTTP status (`dropped` for none).
    pub statuses: BTreeMap<String, u64>,
    /// Broken check-10 rules by rule id.
    pub jwt_rules: BTreeMap<String, u64>,
}

/// The counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When counting started (start-up or the last reset).
    pub since: SystemTime,
    /// Each consumer's tally, by ASID (or [`UNREGISTERED`]).
    pub consumers: BTreeMap<String, Tally>,
}

/// What `snapshot` and `reset` answer, later: a shared store is asked over the network.
pub type Later<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the report's counts live. `count` is called once per answered request on the
/// request's own task, so it must be cheap and must never wait; `snapshot` and `reset`
/// serve the admin API.
pub trait Coverage: Send + Sync {
    /// Counts one answered request.
    fn count(&self, hit: &Hit<'_>);
    /// The counts so far.
    fn snapshot(&self) -> Later<'_, Snapshot>;
    /// Starts counting again from nothing (`DELETE /report`).
    fn reset(&self) -> Later<'_, ()>;
}

/// Counts in this process: one short-held lock over small maps. The maps' keys are the few
/// ids of the configuration, so after the first request of each kind a count allocates
/// nothing.
#[derive(Debug)]
pub struct LocalCoverage {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    since: SystemTime,
    consumers: HashMap<Box<str>, Counts>,
}

impl State {
    fn new() -> Self {
        Self {
            since: SystemTime::now(),
            consumers: HashMap::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    requests: u64,
    interactions: HashMap<Box<str>, u64>,
    errors: HashMap<Box<str>, u64>,
    statuses: HashMap<Option<u16>, u64>,
    jwt_rules: HashMap<&'static str, u64>,
}

/// Adds one to `key`'s count, allocating the key only the first time it is seen.
fn bump(map: &mut HashMap<Box<str>, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.into(), 1);
        }
    }
}

fn sorted<K: ToString>(map: impl IntoIterator<Item = (K, u64)>) -> BTreeMap<String, u64> {
    map.into_iter().map(|(k, n)| (k.to_string(), n)).collect()
}

impl Counts {
    fn tally(&self) -> Tally {
        Tally {
            requests: self.requests,
            interactions: sorted(self.interactions.iter().map(|(k, n)| (k, *n))),
            errors: sorted(self.errors.iter().map(|(k, n)| (k, *n))),
            statuses: sorted(self.statuses.iter().map(|(s, n)| {
                (
                    s.map_or_else(|| "dropped".to_owned(), |s| s.to_string()),
                    *n,
                )
            })),
            jwt_rules: sorted(self.jwt_rules.iter().map(|(k, n)| (k, *n))),
        }
    }
}

impl LocalCoverage {
    /// An empty report, counting from now.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for LocalCoverage {
    fn default() -> Self {
        Self::new()
    }
}

impl Coverage for LocalCoverage {
    fn count(&self, hit: &Hit<'_>) {
        let key = hit.consumer.unwrap_or(UNREGISTERED);
        let mut state = self.state();
        let counts = match state.consumers.get_mut(key) {
            Some(counts) => counts,
            None => state.consumers.entry(key.into()).or_default(),
        };
        counts.requests += 1;
        if let Some(interaction) = hit.interaction {
            bump(&mut counts.interactions, interaction);
        }
        if let Some(error) = hit.error {
            bump(&mut counts.errors, error);
        }
        *counts.statuses.entry(hit.status).or_default() += 1;
        for rule in hit.rules {
            *counts.jwt_rules.entry(rule).or_default() += 1;
        }
    }

    fn snapshot(&self) -> Later<'_, Snapshot> {
        Box::pin(std::future::ready(self.counted()))
    }

    fn reset(&self) -> Later<'_, ()> {
        let old = std::mem::replace(&mut *self.state(), State::new());
        drop(old);
        Box::pin(std::future::ready(()))
    }
}

impl LocalCoverage {
    /// The counts so far, at once.
    pub fn counted(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            since: state.since,
            consumers: state
                .consumers
                .iter()
                .map(|(k, c)| (k.to_string(), c.tally()))
                .collect(),
        }
    }
}

/// The consumer a raw `Ssp-From` names, if routes.toml registers it.
pub fn consumer<'r>(registry: &'r Registry, from: Option<&str>) -> Option<&'r str> {
    let asid = Asid::parse(from?)?;
    registry.consumer(&asid).map(|c| c.asid.as_str())
}

/// The report as `GET /report` answers it: each consumer of routes.toml (those that sent
/// nothing too) and the unregistered senders, with their errors split by source and the
/// catalogue errors they never received.
pub fn report(snapshot: &Snapshot, catalog: &ErrorCatalog, registry: &Registry) -> Value {
    let entries = catalog.entries();
    let of = |source: Source, tally: &Tally| -> BTreeMap<String, u64> {
        tally
            .errors
            .iter()
            .filter(|(id, _)| catalog.get(id).is_some_and(|e| e.source == source))
            .map(|(id, n)| (id.clone(), *n))
            .collect()
    };
    let mut asids: BTreeSet<&str> = registry.consumers().map(|c| c.asid.as_str()).collect();
    asids.extend(snapshot.consumers.keys().map(String::as_str));
    let empty = Tally::default();
    let consumers: Vec<Value> = asids
        .into_iter()
        .map(|asid| {
            let tally = snapshot.consumers.get(asid).unwrap_or(&empty);
            let name = Asid::parse(asid)
                .and_then(|a| registry.consumer(&a))
                .map(|c| c.name.as_str());
            let never_seen: Vec<&str> = entries
                .iter()
                .filter(|e| !tally.errors.contains_key(&e.id))
                .map(|e| e.id.as_str())
                .collect();
            json!({
                "asid": asid,
                "name": name,
                "requests": tally.requests,
                "interactions": tally.interactions,
                "ssp_errors": of(Source::Ssp, tally),
                "provider_errors": of(Source::Provider, tally),
                "statuses": tally.statuses,
                "jwt_rules": tally.jwt_rules,
                "never_seen": never_seen,
            })
        })
        .collect();
    let catalogue: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "status": e.status.as_u16(),
                "source": e.source.as_str(),
            })
        })
        .collect();
    json!({
        "since": crate::control::journal::rfc3339(snapshot.since),
        "catalogue": catalogue,
        "consumers": consumers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit<'a>(error: Option<&'a str>, rules: &'a [&'static str]) -> Hit<'a> {
        Hit {
            consumer: Some("200000000359"),
            interaction: Some("urn:i"),
            status: Some(if error.is_some() { 400 } else { 200 }),
            error,
            rules,
        }
    }

    #[tokio::test]
    async fn counts_per_consumer_until_reset() {
        let coverage = LocalCoverage::new();
        coverage.count(&hit(None, &[]));
        coverage.count(&hit(Some("bad-request"), &["claim.aud", "claim.iss"]));
        coverage.count(&Hit {
            consumer: None,
            status: None,
            ..hit(None, &[])
        });
        let snapshot = coverage.counted();
        let tally = &snapshot.consumers["200000000359"];
        assert_eq!(tally.requests, 2);
        assert_eq!(tally.interactions["urn:i"], 2);
        assert_eq!(tally.errors["bad-request"], 1);
        assert_eq!(tally.statuses["400"], 1);
        assert_eq!(tally.jwt_rules["claim.aud"], 1);
        assert_eq!(snapshot.consumers[UNREGISTERED].statuses["dropped"], 1);
        coverage.reset().await;
        assert!(coverage.counted().consumers.is_empty());
    }
}
