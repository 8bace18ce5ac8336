//! What the demo provider remembers between requests, per practice (keyed by ODS code), in
//! memory: appointments booked, amended or cancelled, patients registered, re-activated or
//! traced. One lock for
//! all practices, taken only by synchronous code and never held across an await.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;
use serde_json::Value;

use crate::demo::fixtures::{DeliveryChannel, Fixtures};
use crate::demo::patients::PatientRecord;

/// An appointment in a practice's book.
#[derive(Debug, Clone)]
pub struct Booking {
    pub id: String,
    /// `meta.versionId`, bumped on every change.
    pub version: u64,
    /// The id of the patient participant.
    pub patient: String,
    /// Ids of the slots it occupies.
    pub slots: Vec<String>,
    pub start: Timestamp,
    pub channel: DeliveryChannel,
    pub cancelled: bool,
    /// The Appointment as read returns it, kept in step with the fields above.
    pub resource: Value,
}

/// One practice's changes to the fixtures.
#[derive(Debug)]
pub struct Practice {
    /// Every appointment, by id: the fixtures' and those booked since.
    pub appointments: BTreeMap<String, Booking>,
    /// Every patient: the fixtures' (as traced or re-activated since) and those registered.
    pub patients: Vec<PatientRecord>,
}

impl Practice {
    fn new(fixtures: &Fixtures) -> Self {
        Self {
            appointments: fixtures
                .appointments
                .iter()
                .map(|b| (b.id.clone(), b.clone()))
                .collect(),
            patients: fixtures.patients.clone(),
        }
    }

    /// The patients GP Connect may return: PDS sensitive (S-flag) ones are answered as unknown
    /// everywhere, so no answer reveals that one exists (#658, #847).
    pub fn visible_patients(&self) -> impl Iterator<Item = &PatientRecord> {
        self.patients.iter().filter(|p| !p.sensitive)
    }

    /// The patient whose record may be shared (Access Record Structured and Access Document):
    /// visible, active, not deceased and with a verified NHS number; otherwise, as those
    /// pages' error tables say, the patient is not found.
    pub fn shareable_patient(
        &self,
        found: impl Fn(&PatientRecord) -> bool,
    ) -> Option<&PatientRecord> {
        self.visible_patients()
            .find(|p| found(p))
            .filter(|p| p.active && !p.deceased && p.verified)
    }

    /// Slots taken by an appointment that is not cancelled.
    pub fn busy_slots(&self) -> HashSet<&str> {
        self.appointments
            .values()
            .filter(|b| !b.cancelled)
            .flat_map(|b| b.slots.iter().map(String::as_str))
            .collect()
    }

    /// A new appointment id: the first counting number not yet used.
    pub fn next_appointment_id(&self) -> String {
        first_free(|id| self.appointments.contains_key(id))
    }

    /// A new patient id, unused by fixtures and registrations alike.
    pub fn next_patient_id(&self) -> String {
        first_free(|id| self.patients.iter().any(|p| p.id == id))
    }
}

fn first_free(taken: impl Fn(&str) -> bool) -> String {
    (1u64..)
        .map(|n| n.to_string())
        .find(|id| !taken(id))
        .unwrap_or_default()
}

/// Every practice's state, created from the fixtures on first use.
#[derive(Debug, Default)]
pub struct Ledger {
    practices: Mutex<HashMap<String, Practice>>,
}

impl Ledger {
    /// Runs `f` on practice `ods_code`'s state under the lock.
    pub fn with<R>(
        &self,
        fixtures: &Fixtures,
        ods_code: &str,
        f: impl FnOnce(&mut Practice) -> R,
    ) -> R {
        // A panic elsewhere cannot leave a practice half-updated (updates are single inserts),
        // so a poisoned lock is still safe to use.
        let mut practices = self
            .practices
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let practice = practices
            .entry(ods_code.to_owned())
            .or_insert_with(|| Practice::new(fixtures));
        f(practice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn practices_start_from_the_fixtures_and_change_independently() {
        let fixtures = Fixtures::embedded(date(2024, 3, 1)).unwrap();
        let ledger = Ledger::default();
        let first = fixtures.appointments[0].id.clone();
        ledger.with(&fixtures, "A20047", |p| {
            p.appointments.get_mut(&first).unwrap().cancelled = true;
        });
        let other = ledger.with(&fixtures, "B82617", |p| p.appointments[&first].cancelled);
        let same = ledger.with(&fixtures, "A20047", |p| p.appointments[&first].cancelled);
        assert!(!other);
        assert!(same);
    }

    #[test]
    fn new_ids_skip_those_in_use() {
        let fixtures = Fixtures::embedded(date(2024, 3, 1)).unwrap();
        let ledger = Ledger::default();
        let id = ledger.with(&fixtures, "A20047", |p| p.next_appointment_id());
        assert!(!fixtures.appointments.iter().any(|b| b.id == id));
        let pid = ledger.with(&fixtures, "A20047", |p| p.next_patient_id());
        assert!(!fixtures.patients.iter().any(|p| p.id == pid));
    }
}
