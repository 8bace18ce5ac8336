//! The installed rules, each with its id, origin and remaining count, and the lookup the
//! gateway makes at each stage of a request.
//!
//! With a store shared by replicas (a [`Ledger`]), the rules added through the admin API live
//! there, with their counts; each replica keeps a copy of them beside its declared rules,
//! refreshed in the background (`follow`), so the request path still only reads a local list.
//! A matching shared rule with a `times` budget is claimed from the ledger, atomically, so it
//! fires exactly that many times across every replica.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use http::Request;
use imbl::Vector;
use serde::Serialize;
use tokio::sync::watch;

use super::matching::{Subject, Verdict};
use super::nhs_number::nhs_number_in_body;
use super::rule::{Rule, Stage};
use crate::config::settings::DEFAULT_MAX_FAULTS;
use crate::wire::body::RequestBody;

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `[[fault]]` table of routes.toml.
    Routes,
    /// `POST /faults`.
    Api,
}

/// An installed rule with its remaining count.
#[derive(Debug)]
pub struct Fault {
    /// `fault-N`, unique for the process's life: `DELETE /faults/{id}` names it.
    pub id: String,
    /// Where it was declared: routes.toml rules are replaced on reload, API ones kept.
    pub origin: Origin,
    pub(super) rule: Rule,
    left: Option<AtomicU32>,
    /// How many requests it has acted on, for `GET /faults` and the console.
    fired: AtomicU64,
    /// Whether it lives in the ledger, which then keeps its counts (`left` and `fired` are
    /// the ledger's as last seen).
    shared: bool,
}

/// A rule as the ledger holds it, validated by this replica.
#[derive(Debug)]
pub struct SharedRule {
    /// Its id, the same on every replica.
    pub id: String,
    /// The rule.
    pub rule: Rule,
    /// Uses left, for a rule with `times`.
    pub left: Option<u32>,
    /// Requests it has acted on, on every replica.
    pub fired: u64,
}

/// What claiming a use of a shared rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A use was taken; `last` when it was the last one (the ledger removed the rule).
    Taken {
        /// The rule is spent.
        last: bool,
    },
    /// The rule is spent or removed: another replica took its last use first.
    Gone,
}

/// Why the ledger could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// What a ledger call answers, later.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

/// Where the API rules live when replicas share them (`--store`).
pub trait Ledger: Send + Sync {
    /// Adds a rule unless `max` are installed; `None` when full.
    fn add<'a>(&'a self, rule: &'a Rule, max: usize) -> Pending<'a, Option<String>>;
    /// Removes one rule; false when there is none with that id.
    fn remove<'a>(&'a self, id: &'a str) -> Pending<'a, bool>;
    /// Removes every rule.
    fn clear(&self) -> Pending<'_, ()>;
    /// Takes one use of a rule with a `times` budget, atomically across replicas; bounded
    /// by the store's request timeout.
    fn claim<'a>(&'a self, id: &'a str) -> Pending<'a, Claim>;
    /// Counts one firing of a rule without a budget, in the background.
    fn fired(&self, id: &str);
    /// A number that changes whenever the rules do, so a replica refetches only then.
    fn version(&self) -> Pending<'_, u64>;
    /// Every rule, in the order they are tried.
    fn fetch(&self) -> Pending<'_, Vec<SharedRule>>;
}

/// Why a rule was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// `max_faults` are installed.
    #[error(transparent)]
    Full(#[from] Full),
    /// The shared store did not answer.
    #[error("the shared store did not take the fault: {0}; try again once GET /health says the store is ok")]
    Ledger(#[from] LedgerError),
}

impl Fault {
    /// Takes one use; false when another request took the last one first.
    fn claim(&self) -> bool {
        let claimed = self.left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        });
        if claimed {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
        claimed
    }

    fn spent(&self) -> bool {
        self.left
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }
}

impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("origin", &self.origin)?;
        map.serialize_entry("match", &self.rule.spec.matcher)?;
        map.serialize_entry("respond", &self.rule.spec.respond)?;
        map.serialize_entry("times", &self.rule.spec.times)?;
        map.serialize_entry(
            "left",
            &self.left.as_ref().map(|l| l.load(Ordering::Acquire)),
        )?;
        map.serialize_entry("fired", &self.fired.load(Ordering::Relaxed))?;
        map.end()
    }
}

/// The installed rules, in the order they are tried: a persistent vector behind an
/// `ArcSwap`. Reads are lock-free (the request path); a change shares all but a few nodes of
/// the old vector, so adding a rule costs O(1) amortised however many there are.
#[derive(Debug)]
pub struct Faults {
    installed: ArcSwap<Vector<Arc<Fault>>>,
    next_id: AtomicU64,
    /// How many rules may be installed at once (`max_faults`).
    max: AtomicUsize,
    /// The shared store of API rules, when replicas share them.
    ledger: OnceLock<Arc<dyn Ledger>>,
}

impl std::fmt::Debug for dyn Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

/// Why a rule was not added: as many are installed as `max_faults` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{max} faults are installed, the most max_faults allows; remove some (DELETE /faults/{{id}} or DELETE /faults) or raise max_faults in ssp-sim.toml")]
pub struct Full {
    /// The cap that was reached.
    pub max: usize,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            installed: ArcSwap::default(),
            next_id: AtomicU64::new(0),
            max: AtomicUsize::new(DEFAULT_MAX_FAULTS),
            ledger: OnceLock::new(),
        }
    }
}

impl Faults {
    /// No rules yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many rules may be installed at once; those already installed stay.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Keeps the API rules in `ledger` from now on, shared with other replicas; declared
    /// rules stay this replica's own. Call before serving, then run `follow`.
    pub fn share(&self, ledger: Arc<dyn Ledger>) {
        if self.ledger.set(ledger).is_ok() {
            // The declared rules were numbered as `fault-N`, which the ledger's ids use.
            let declared: Vec<Rule> = (self.installed.load().iter())
                .filter(|f| f.origin == Origin::Routes)
                .map(|f| f.rule.clone())
                .collect();
            self.set_declared(&declared);
        }
    }

    fn install(&self, origin: Origin, rule: Rule) -> Arc<Fault> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        // Shared rules are numbered by the ledger as `fault-N`: this replica's own declared
        // rules are named apart from them.
        let id = match self.ledger.get() {
            Some(_) => format!("routes-{n}"),
            None => format!("fault-{n}"),
        };
        Arc::new(Fault {
            id,
            origin,
            left: rule.spec.times.map(AtomicU32::new),
            fired: AtomicU64::new(0),
            rule,
            shared: false,
        })
    }

    /// Replaces the copy of the shared rules with `rules`, keeping the declared ones. A rule
    /// already held keeps its object (a request in flight may hold it); its counts are
    /// updated to the ledger's.
    fn mirror(&self, rules: Vec<SharedRule>) {
        let held: HashMap<String, Arc<Fault>> = self
            .installed
            .load()
            .iter()
            .filter(|f| f.shared)
            .map(|f| (f.id.clone(), f.clone()))
            .collect();
        let fresh: Vector<Arc<Fault>> = rules
            .into_iter()
            .map(|shared| match held.get(&shared.id) {
                Some(fault) => {
                    if let (Some(left), Some(n)) = (&fault.left, shared.left) {
                        left.store(n, Ordering::Release);
                    }
                    fault.fired.store(shared.fired, Ordering::Relaxed);
                    fault.clone()
                }
                None => Arc::new(Fault {
                    id: shared.id,
                    origin: Origin::Api,
                    left: shared
                        .rule
                        .spec
                        .times
                        .map(|_| AtomicU32::new(shared.left.unwrap_or(0))),
                    fired: AtomicU64::new(shared.fired),
                    rule: shared.rule,
                    shared: true,
                }),
            })
            .collect();
        self.installed.rcu(|list| {
            let mut next: Vector<Arc<Fault>> = list.iter().filter(|f| !f.shared).cloned().collect();
            next.extend(fresh.iter().cloned());
            next
        });
    }

    /// Fetches the shared rules now; on failure, this replica acts on none of them (the
    /// store being down must not leave a rule firing that was removed meanwhile).
    async fn refresh(&self, ledger: &dyn Ledger) -> bool {
        match ledger.fetch().await {
            Ok(rules) => {
                self.mirror(rules);
                true
            }
            Err(_) => {
                self.mirror(Vec::new());
                false
            }
        }
    }

    /// Keeps the copy of the shared rules current until `stop`: asks the ledger's version
    /// every `every` and refetches when it changed. Returns at once without a ledger.
    pub async fn follow(&self, every: Duration, mut stop: watch::Receiver<bool>) {
        let Some(ledger) = self.ledger.get() else {
            return;
        };
        let mut seen = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match ledger.version().await {
                Ok(version) if seen != Some(version) => {
                    seen = self.refresh(&**ledger).await.then_some(version);
                }
                Ok(_) => {}
                Err(_) => {
                    if seen.take().is_some() {
                        self.mirror(Vec::new());
                    }
                }
            }
        }
    }

    /// Replaces the rules routes.toml declared (on start and on every reload), keeping the
    /// ones added through the admin API. Declared rules are tried first, and count towards
    /// `max_faults` (they are never refused: routes.toml is the operator's own).
    pub fn set_declared(&self, rules: &[Rule]) {
        let fresh: Vector<Arc<Fault>> = rules
            .iter()
            .map(|rule| self.install(Origin::Routes, rule.clone()))
            .collect();
        self.installed.rcu(|list| {
            let mut next = fresh.clone();
            next.extend(list.iter().filter(|f| f.origin == Origin::Api).cloned());
            next
        });
    }

    /// Adds a rule after all others and returns its id, unless `max_faults` are installed.
    /// With a ledger, the rule goes there (and `max_faults` counts the shared rules).
    pub async fn add(&self, rule: Rule) -> Result<String, AddError> {
        let max = self.max.load(Ordering::Relaxed);
        if let Some(ledger) = self.ledger.get() {
            let id = ledger.add(&rule, max).await?.ok_or(Full { max })?;
            self.refresh(&**ledger).await;
            return Ok(id);
        }
        Ok(self.add_local(rule)?)
    }

    fn add_local(&self, rule: Rule) -> Result<String, Full> {
        let max = self.max.load(Ordering::Relaxed);
        if self.installed.load().len() >= max {
            return Err(Full { max });
        }
        let fault = self.install(Origin::Api, rule);
        let mut full = false;
        self.installed.rcu(|list| {
            let mut next = Vector::clone(list);
            full = next.len() >= max;
            if !full {
                next.push_back(fault.clone());
            }
            next
        });
        if full {
            return Err(Full { max });
        }
        Ok(fault.id.clone())
    }

    /// Removes one rule; false when there is none with that id. A shared rule is removed
    /// from the ledger, for every replica.
    pub async fn remove(&self, id: &str) -> Result<bool, LedgerError> {
        if let Some(ledger) = self.ledger.get() {
            if self.installed.load().iter().all(|f| f.id != id || f.shared) {
                let found = ledger.remove(id).await?;
                self.refresh(&**ledger).await;
                return Ok(found);
            }
        }
        Ok(self.remove_local(id))
    }

    fn remove_local(&self, id: &str) -> bool {
        let mut found = false;
        self.installed.rcu(|list| {
            let mut next = Vector::clone(list);
            found = match next.iter().position(|f| f.id == id) {
                Some(at) => {
                    next.remove(at);
                    true
                }
                None => false,
            };
            next
        });
        found
    }

    /// Removes every rule, declared ones included (a reload brings those back); with a
    /// ledger, the shared rules of every replica too.
    pub async fn clear(&self) -> Result<(), LedgerError> {
        if let Some(ledger) = self.ledger.get() {
            ledger.clear().await?;
        }
        self.installed.store(Arc::default());
        Ok(())
    }

    /// Every installed rule in the order they are tried (`GET /faults`), the shared ones
    /// with their counts as the ledger has them now.
    pub async fn list(&self) -> Arc<Vector<Arc<Fault>>> {
        if let Some(ledger) = self.ledger.get() {
            self.refresh(&**ledger).await;
        }
        self.installed.load_full()
    }

    /// How many rules are installed, as last seen (`GET /health`).
    pub fn count(&self) -> usize {
        self.installed.load().len()
    }

    /// Whether any rule acts at this stage: the gateway skips building a `Subject` otherwise.
    pub fn armed(&self, stage: Stage) -> bool {
        self.installed.load().iter().any(|f| f.rule.stage == stage)
    }

    /// The first rule of this stage that matches the request, with one use taken. When a rule
    /// needs the NHS number of the body, the body is read (within `nhs_number`'s size and time
    /// limits) and put back whole, so the request can still go on.
    pub async fn take(
        &self,
        stage: Stage,
        at: &Subject<'_>,
        request: &mut Request<RequestBody>,
    ) -> Option<Arc<Fault>> {
        let list = Guard::into_inner(self.installed.load());
        let mut in_body: Option<Option<String>> = None;
        for fault in list.iter().filter(|f| f.rule.stage == stage) {
            let fits = match fault.rule.matcher.check(at) {
                Verdict::No => false,
                Verdict::Yes => true,
                Verdict::IfBodyNames(wanted) => {
                    if in_body.is_none() {
                        in_body = Some(nhs_number_in_body(request).await);
                    }
                    in_body.as_ref().and_then(Option::as_deref) == Some(wanted)
                }
            };
            if fits && self.use_of(fault).await {
                return Some(fault.clone());
            }
        }
        None
    }

    /// Takes one use of a rule that fits: from the ledger for a shared rule with a budget (a
    /// store that does not answer in time means the rule does not fire), else here.
    async fn use_of(&self, fault: &Arc<Fault>) -> bool {
        match (fault.shared, self.ledger.get()) {
            (true, Some(ledger)) if fault.left.is_some() => match ledger.claim(&fault.id).await {
                Ok(Claim::Taken { last }) => {
                    fault.fired.fetch_add(1, Ordering::Relaxed);
                    if last {
                        self.remove_local(&fault.id);
                    }
                    true
                }
                Ok(Claim::Gone) => {
                    self.remove_local(&fault.id);
                    false
                }
                Err(_) => false,
            },
            (true, Some(ledger)) => {
                fault.fired.fetch_add(1, Ordering::Relaxed);
                ledger.fired(&fault.id);
                true
            }
            _ => {
                let claimed = fault.claim();
                if claimed && fault.spent() {
                    self.remove_local(&fault.id);
                }
                claimed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::faults::rule::tests::rule;

    const STRUCTURED: &str =
        "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";

    #[test]
    fn a_counted_fault_is_claimed_until_spent_and_removed_once() {
        let faults = Faults::new();
        let id = faults
            .add_local(rule(r#"{"respond":{"drop":true},"times":2}"#).unwrap())
            .unwrap();
        let fault = faults.installed.load()[0].clone();
        assert!(fault.claim());
        assert!(!fault.spent());
        assert!(fault.claim());
        assert!(fault.spent());
        assert!(!fault.claim());
        assert!(faults.remove_local(&id));
        assert!(!faults.remove_local(&id));
    }

    #[test]
    fn reload_replaces_declared_rules_and_keeps_api_ones() {
        let faults = Faults::new();
        let declared = rule(&format!(
            r#"{{"match":{{"interaction":"{STRUCTURED}"}},"respond":{{"delay_ms":1}}}}"#
        ))
        .unwrap();
        faults.set_declared(std::slice::from_ref(&declared));
        faults
            .add_local(rule(r#"{"respond":{"drop":true}}"#).unwrap())
            .unwrap();
        faults.set_declared(&[declared.clone(), declared]);
        let origins: Vec<Origin> = faults.installed.load().iter().map(|f| f.origin).collect();
        assert_eq!(origins, [Origin::Routes, Origin::Routes, Origin::Api]);
        assert!(faults.armed(Stage::Backend));
        assert!(!faults.armed(Stage::Spine));
        faults.installed.store(Arc::default());
        assert_eq!(faults.count(), 0);
    }

    #[test]
    fn adds_beyond_the_cap_are_refused_until_one_goes() {
        let faults = Faults::new();
        faults.set_max(2);
        let drop = || rule(r#"{"respond":{"drop":true}}"#).unwrap();
        let first = faults.add_local(drop()).unwrap();
        faults.add_local(drop()).unwrap();
        assert_eq!(faults.add_local(drop()), Err(Full { max: 2 }));
        assert!(faults.remove_local(&first));
        faults.add_local(drop()).unwrap();
        assert_eq!(faults.count(), 2);
    }
}
