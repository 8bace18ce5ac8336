//! The installed rules, each with its id, origin and remaining count, and the lookup the
//! gateway makes at each stage of a request.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use http::Request;
use imbl::Vector;
use serde::Serialize;

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

    fn install(&self, origin: Origin, rule: Rule) -> Arc<Fault> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::new(Fault {
            id: format!("fault-{n}"),
            origin,
            left: rule.spec.times.map(AtomicU32::new),
            fired: AtomicU64::new(0),
            rule,
        })
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
    pub fn add(&self, rule: Rule) -> Result<String, Full> {
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

    /// Removes one rule; false when there is none with that id.
    pub fn remove(&self, id: &str) -> bool {
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

    /// Removes every rule, declared ones included (a reload brings those back).
    pub fn clear(&self) {
        self.installed.store(Arc::default());
    }

    /// Every installed rule in the order they are tried (`GET /faults`).
    pub fn list(&self) -> Arc<Vector<Arc<Fault>>> {
        self.installed.load_full()
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
            if fits && fault.claim() {
                if fault.spent() {
                    self.remove(&fault.id);
                }
                return Some(fault.clone());
            }
        }
        None
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
            .add(rule(r#"{"respond":{"drop":true},"times":2}"#).unwrap())
            .unwrap();
        let fault = faults.list()[0].clone();
        assert!(fault.claim());
        assert!(!fault.spent());
        assert!(fault.claim());
        assert!(fault.spent());
        assert!(!fault.claim());
        assert!(faults.remove(&id));
        assert!(!faults.remove(&id));
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
            .add(rule(r#"{"respond":{"drop":true}}"#).unwrap())
            .unwrap();
        faults.set_declared(&[declared.clone(), declared]);
        let origins: Vec<Origin> = faults.list().iter().map(|f| f.origin).collect();
        assert_eq!(origins, [Origin::Routes, Origin::Routes, Origin::Api]);
        assert!(faults.armed(Stage::Backend));
        assert!(!faults.armed(Stage::Spine));
        faults.clear();
        assert!(faults.list().is_empty());
    }

    #[test]
    fn adds_beyond_the_cap_are_refused_until_one_goes() {
        let faults = Faults::new();
        faults.set_max(2);
        let drop = || rule(r#"{"respond":{"drop":true}}"#).unwrap();
        let first = faults.add(drop()).unwrap();
        faults.add(drop()).unwrap();
        assert_eq!(faults.add(drop()), Err(Full { max: 2 }));
        assert!(faults.remove(&first));
        faults.add(drop()).unwrap();
        assert_eq!(faults.list().len(), 2);
    }
}
