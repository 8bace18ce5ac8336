//! The demo provider's data: the JSON files of `demo/`, parsed and validated once at
//! start-up into typed tables (see `demo/README.md` for what each file holds). Every
//! reference between fixtures is checked here, so the use cases can trust them.

use std::collections::{HashMap, HashSet};

use include_dir::{include_dir, Dir};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use time::{Date, Duration};

use crate::config::problems::{ConfigError, Problem};
use crate::demo::dates;
use crate::demo::fhir;
use crate::demo::nhs_number::{self, NhsNumber};
use crate::demo::state::Booking;
use crate::demo::timetable::{self, RawSession, Timetable};
use crate::wire::systems;

/// The fixture files compiled into the binary.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/demo");

/// What the demo provider does for an interaction (`demo/operations.json` maps IDs to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Metadata,
    FindPatient,
    ReadPatient,
    FindPractitioner,
    ReadPractitioner,
    FindOrganisation,
    ReadOrganisation,
    ReadLocation,
    RegisterPatient,
    SearchSlots,
    ReadAppointment,
    BookAppointment,
    AmendAppointment,
    CancelAppointment,
    PatientAppointments,
    StructuredRecord,
    StructuredMetadata,
}

/// How an appointment is delivered (`Extension-GPConnect-DeliveryChannel-2`). `Visit` was
/// added in 1.2.7 (#826): such slots and appointments are never bookable through GP Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DeliveryChannel {
    #[serde(rename = "In-person")]
    InPerson,
    Telephone,
    Video,
    Visit,
}

impl DeliveryChannel {
    /// The code written in the extension.
    pub fn code(self) -> &'static str {
        match self {
            DeliveryChannel::InPerson => "In-person",
            DeliveryChannel::Telephone => "Telephone",
            DeliveryChannel::Video => "Video",
            DeliveryChannel::Visit => "Visit",
        }
    }
}

/// A patient known to the practice.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    pub id: String,
    pub nhs_number: NhsNumber,
    /// PDS sensitive (S-flag): never returned or registered through GP Connect (#658, #847).
    pub sensitive: bool,
    pub resource: Value,
}

/// A diary and its timetable.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: String,
    pub channel: DeliveryChannel,
    pub timetable: Timetable,
    pub resource: Value,
}

impl Schedule {
    /// Ids of the `kind` actors of the schedule (`Location`, `Practitioner`).
    pub fn actors<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.resource["actor"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(move |a| fhir::reference_id(a, kind))
    }
}

/// One medication of a structured record: the medication, its statement, and its requests
/// (the authorisation, `intent` plan, and any issues, `intent` order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedicationEntry {
    pub medication: Value,
    pub statement: Value,
    pub requests: Vec<Value>,
}

/// A patient's structured record (allergies and medications).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructuredRecord {
    pub patient: String,
    pub allergies: Vec<Value>,
    pub medications: Vec<MedicationEntry>,
}

/// The title and SNOMED code of one structured `List`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKind {
    pub title: String,
    pub code: Value,
}

/// The `List` kinds of a structured record, and the empty reason of an empty list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKinds {
    pub allergies: ListKind,
    pub ended_allergies: ListKind,
    pub medications: ListKind,
    pub empty_reason: Value,
}

/// Everything the demo provider serves, validated.
#[derive(Debug)]
pub struct Fixtures {
    pub capability_statement: Value,
    pub structured_capability_statement: Value,
    organisation: Value,
    pub locations: Vec<Value>,
    pub practitioners: Vec<Value>,
    pub schedules: Vec<Schedule>,
    pub patients: Vec<PatientRecord>,
    /// Appointments every practice starts with, dated from the day the simulator started.
    pub appointments: Vec<Booking>,
    pub practitioner_role: Value,
    pub lists: ListKinds,
    pub records: Vec<StructuredRecord>,
    operations: HashMap<String, Operation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPractice {
    organisation: Value,
    locations: Vec<Value>,
    practitioners: Vec<Value>,
    schedules: Vec<RawSchedule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    delivery_channel: DeliveryChannel,
    slot_minutes: u16,
    sessions: Vec<RawSession>,
    resource: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPatients {
    patients: Vec<RawPatient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPatient {
    pds_sensitive: bool,
    resource: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppointments {
    appointments: Vec<RawAppointment>,
}

/// A fixture appointment: its slot is the schedule's slot at `time`, on the first day from
/// `days_ahead` days after start-up that has one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppointment {
    schedule: String,
    days_ahead: u16,
    time: String,
    resource: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStructured {
    practitioner_role: Value,
    lists: ListKinds,
    records: Vec<StructuredRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperations {
    operations: HashMap<String, Operation>,
}

/// How far ahead a fixture appointment looks for its slot.
const FIXTURE_SEARCH_DAYS: u16 = 14;

/// Collects problems with the file and key they sit at.
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn at(&mut self, file: &str, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: format!("demo/{file}"),
            line: None,
            key: Some(key.to_owned()),
            message: message.into(),
        });
    }

    /// Parses one file into `T`, or records why it cannot.
    fn parse<T: DeserializeOwned>(
        &mut self,
        files: &HashMap<String, String>,
        name: &str,
    ) -> Option<T> {
        let Some(text) = files.get(name) else {
            self.problems.push(Problem {
                file: format!("demo/{name}"),
                line: None,
                key: None,
                message: "is missing; the demo provider needs it".into(),
            });
            return None;
        };
        match serde_json::from_str(text) {
            Ok(value) => Some(value),
            Err(e) => {
                self.problems.push(Problem {
                    file: format!("demo/{name}"),
                    line: Some(e.line()),
                    key: None,
                    message: format!("not valid: {e}"),
                });
                None
            }
        }
    }

    /// A resource must have the right type, an id and a `meta.profile`.
    fn resource(&mut self, file: &str, key: &str, resource: &Value, kind: &str) -> bool {
        let ok = fhir::resource_type(resource) == kind
            && !fhir::id(resource).is_empty()
            && resource["meta"]["profile"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
        if !ok {
            self.at(
                file,
                key,
                format!("must be a {kind} resource with an id and a meta.profile"),
            );
        }
        ok
    }

    /// Records duplicate ids among resources.
    fn unique_ids<'a>(&mut self, file: &str, key: &str, ids: impl Iterator<Item = &'a str>) {
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                self.at(
                    file,
                    key,
                    format!("id `{id}` is used twice; ids are unique per resource type"),
                );
            }
        }
    }
}

impl Fixtures {
    /// The fixtures compiled into the binary, with appointments dated from `today`.
    pub fn embedded(today: Date) -> Result<Self, ConfigError> {
        let files = EMBEDDED
            .files()
            .filter_map(|f| {
                let name = f.path().to_str()?.to_owned();
                Some((name, f.contents_utf8()?.to_owned()))
            })
            .collect();
        Self::from_files(&files, today)
    }

    /// Parses and cross-checks the files given by name (e.g. `patients.json`).
    pub fn from_files(files: &HashMap<String, String>, today: Date) -> Result<Self, ConfigError> {
        let mut check = Check {
            problems: Vec::new(),
        };
        let practice: Option<RawPractice> = check.parse(files, "practice.json");
        let patients: Option<RawPatients> = check.parse(files, "patients.json");
        let appointments: Option<RawAppointments> = check.parse(files, "appointments.json");
        let structured: Option<RawStructured> = check.parse(files, "structured.json");
        let operations: Option<RawOperations> = check.parse(files, "operations.json");
        let capability: Option<Value> = check.parse(files, "capability-statement.json");
        let structured_capability: Option<Value> =
            check.parse(files, "structured-capability-statement.json");
        let (
            Some(practice),
            Some(patients),
            Some(appointments),
            Some(structured),
            Some(operations),
            Some(capability),
            Some(structured_capability),
        ) = (
            practice,
            patients,
            appointments,
            structured,
            operations,
            capability,
            structured_capability,
        )
        else {
            return Err(ConfigError {
                problems: check.problems,
            });
        };
        for (name, statement) in [
            ("capability-statement.json", &capability),
            (
                "structured-capability-statement.json",
                &structured_capability,
            ),
        ] {
            if fhir::resource_type(statement) != "CapabilityStatement" {
                check.at(name, "resourceType", "must be \"CapabilityStatement\"");
            }
        }

        let practice = check_practice(&mut check, practice);
        let patients = check_patients(&mut check, patients);
        let mut fixtures = Self {
            capability_statement: capability,
            structured_capability_statement: structured_capability,
            organisation: practice.organisation,
            locations: practice.locations,
            practitioners: practice.practitioners,
            schedules: practice.schedules,
            patients,
            appointments: Vec::new(),
            practitioner_role: structured.practitioner_role,
            lists: structured.lists,
            records: structured.records,
            operations: operations.operations,
        };
        fixtures.appointments = check_appointments(&mut check, &fixtures, appointments, today);
        check_structured(&mut check, &fixtures);
        if check.problems.is_empty() {
            Ok(fixtures)
        } else {
            Err(ConfigError {
                problems: check.problems,
            })
        }
    }

    /// The operation that answers an interaction ID, if the demo implements it.
    pub fn operation(&self, interaction_id: &str) -> Option<Operation> {
        self.operations.get(interaction_id).copied()
    }

    /// The interaction IDs the demo implements.
    #[cfg(test)]
    pub fn interaction_ids(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    /// The practice Organization, as the practice `ods_code` named `name` that is asking:
    /// every demo practice serves the same fixtures under its own identity.
    pub fn organisation(&self, ods_code: &str, name: &str) -> Value {
        let mut org = self.organisation.clone();
        org["identifier"] = json!([{ "system": systems::ODS_CODE, "value": ods_code }]);
        org["name"] = Value::String(name.to_owned());
        org
    }

    /// The id of the practice Organization.
    pub fn organisation_id(&self) -> &str {
        fhir::id(&self.organisation)
    }

    pub fn location(&self, id: &str) -> Option<&Value> {
        self.locations.iter().find(|l| fhir::id(l) == id)
    }

    pub fn practitioner(&self, id: &str) -> Option<&Value> {
        self.practitioners.iter().find(|p| fhir::id(p) == id)
    }

    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.id == id)
    }

    pub fn record(&self, patient_id: &str) -> Option<&StructuredRecord> {
        self.records.iter().find(|r| r.patient == patient_id)
    }
}

struct Practice {
    organisation: Value,
    locations: Vec<Value>,
    practitioners: Vec<Value>,
    schedules: Vec<Schedule>,
}

fn check_practice(check: &mut Check, raw: RawPractice) -> Practice {
    const FILE: &str = "practice.json";
    if check.resource(FILE, "organisation", &raw.organisation, "Organization")
        && fhir::identifier(&raw.organisation, systems::ODS_CODE).is_none()
    {
        check.at(
            FILE,
            "organisation.identifier",
            format!("needs an identifier with system {}", systems::ODS_CODE),
        );
    }
    for (i, l) in raw.locations.iter().enumerate() {
        check.resource(FILE, &format!("locations[{i}]"), l, "Location");
    }
    check.unique_ids(FILE, "locations", raw.locations.iter().map(fhir::id));
    for (i, p) in raw.practitioners.iter().enumerate() {
        if check.resource(FILE, &format!("practitioners[{i}]"), p, "Practitioner")
            && fhir::identifier(p, systems::SDS_USER_ID).is_none()
        {
            check.at(
                FILE,
                &format!("practitioners[{i}].identifier"),
                format!("needs an identifier with system {}", systems::SDS_USER_ID),
            );
        }
    }
    check.unique_ids(
        FILE,
        "practitioners",
        raw.practitioners.iter().map(fhir::id),
    );
    let mut schedules = Vec::new();
    for (i, s) in raw.schedules.into_iter().enumerate() {
        let key = format!("schedules[{i}]");
        if !check.resource(FILE, &format!("{key}.resource"), &s.resource, "Schedule") {
            continue;
        }
        let timetable = match Timetable::new(s.slot_minutes, &s.sessions) {
            Ok(t) => t,
            Err(message) => {
                check.at(FILE, &format!("{key}.sessions"), message);
                continue;
            }
        };
        let schedule = Schedule {
            id: fhir::id(&s.resource).to_owned(),
            channel: s.delivery_channel,
            timetable,
            resource: s.resource,
        };
        if schedule.actors("Location").next().is_none() {
            check.at(
                FILE,
                &format!("{key}.resource.actor"),
                "needs a Location actor: the surgery where appointments take place",
            );
        }
        for id in schedule.actors("Location") {
            if !raw.locations.iter().any(|l| fhir::id(l) == id) {
                check.at(
                    FILE,
                    &format!("{key}.resource.actor"),
                    format!("Location/{id} is not in locations"),
                );
            }
        }
        for id in schedule.actors("Practitioner") {
            if !raw.practitioners.iter().any(|p| fhir::id(p) == id) {
                check.at(
                    FILE,
                    &format!("{key}.resource.actor"),
                    format!("Practitioner/{id} is not in practitioners"),
                );
            }
        }
        schedules.push(schedule);
    }
    check.unique_ids(FILE, "schedules", schedules.iter().map(|s| s.id.as_str()));
    Practice {
        organisation: raw.organisation,
        locations: raw.locations,
        practitioners: raw.practitioners,
        schedules,
    }
}

fn check_patients(check: &mut Check, raw: RawPatients) -> Vec<PatientRecord> {
    const FILE: &str = "patients.json";
    let mut records = Vec::new();
    let mut numbers = HashSet::new();
    for (i, p) in raw.patients.into_iter().enumerate() {
        let key = format!("patients[{i}].resource");
        if !check.resource(FILE, &key, &p.resource, "Patient") {
            continue;
        }
        let nhs_number =
            match fhir::identifier(&p.resource, nhs_number::SYSTEM).map(NhsNumber::parse) {
                Some(Ok(n)) => n,
                Some(Err(e)) => {
                    check.at(FILE, &format!("{key}.identifier"), e.to_string());
                    continue;
                }
                None => {
                    check.at(
                        FILE,
                        &format!("{key}.identifier"),
                        format!("needs an identifier with system {}", nhs_number::SYSTEM),
                    );
                    continue;
                }
            };
        if !numbers.insert(nhs_number.clone()) {
            check.at(
                FILE,
                &format!("{key}.identifier"),
                format!("NHS number {nhs_number} is used twice"),
            );
        }
        records.push(PatientRecord {
            id: fhir::id(&p.resource).to_owned(),
            nhs_number,
            sensitive: p.pds_sensitive,
            resource: p.resource,
        });
    }
    check.unique_ids(FILE, "patients", records.iter().map(|p| p.id.as_str()));
    records
}

fn check_appointments(
    check: &mut Check,
    fixtures: &Fixtures,
    raw: RawAppointments,
    today: Date,
) -> Vec<Booking> {
    const FILE: &str = "appointments.json";
    let mut bookings = Vec::new();
    for (i, a) in raw.appointments.into_iter().enumerate() {
        let key = format!("appointments[{i}]");
        if !check.resource(FILE, &format!("{key}.resource"), &a.resource, "Appointment") {
            continue;
        }
        for filled in ["start", "end", "slot"] {
            if a.resource.get(filled).is_some() {
                check.at(
                    FILE,
                    &format!("{key}.resource.{filled}"),
                    "is filled in from schedule, days_ahead and time; leave it out",
                );
            }
        }
        let participant = |kind: &str| fhir::participant(&a.resource, kind);
        let patient = participant("Patient").map(str::to_owned);
        let known = |id: &String| fixtures.patients.iter().any(|p| &p.id == id);
        if patient.as_ref().filter(|id| known(id)).is_none() {
            check.at(
                FILE,
                &format!("{key}.resource.participant"),
                "needs a Patient participant that is in patients.json",
            );
        }
        if participant("Location")
            .and_then(|id| fixtures.location(id))
            .is_none()
        {
            check.at(
                FILE,
                &format!("{key}.resource.participant"),
                "needs a Location participant that is in practice.json",
            );
        }
        let Some(schedule) = fixtures.schedule(&a.schedule) else {
            check.at(
                FILE,
                &format!("{key}.schedule"),
                format!("schedule `{}` is not in practice.json", a.schedule),
            );
            continue;
        };
        let Some(at) = dates::parse_time(&a.time) else {
            check.at(
                FILE,
                &format!("{key}.time"),
                format!("`{}` is not HH:MM", a.time),
            );
            continue;
        };
        let slot = (a.days_ahead..a.days_ahead + FIXTURE_SEARCH_DAYS).find_map(|d| {
            let day = today.checked_add(Duration::days(i64::from(d)))?;
            schedule.timetable.slot_at(day.with_time(at).assume_utc())
        });
        let Some(slot) = slot else {
            check.at(FILE, &format!("{key}.time"), format!("schedule `{}` has no slot at {} within {FIXTURE_SEARCH_DAYS} days of days_ahead", a.schedule, a.time));
            continue;
        };
        let declared = fhir::declared_channel(&a.resource);
        if declared.is_some_and(|code| code != schedule.channel.code()) {
            check.at(
                FILE,
                &format!("{key}.resource.extension"),
                format!(
                    "delivery channel differs from schedule `{}` ({})",
                    a.schedule,
                    schedule.channel.code()
                ),
            );
        }
        let slot_id = timetable::slot_id(&schedule.id, slot.start);
        let mut resource = a.resource;
        resource["start"] = Value::String(dates::format(slot.start));
        resource["end"] = Value::String(dates::format(slot.end));
        resource["slot"] = json!([fhir::reference("Slot", &slot_id)]);
        bookings.push(Booking {
            id: fhir::id(&resource).to_owned(),
            version: 1,
            patient: patient.unwrap_or_default(),
            slots: vec![slot_id],
            start: slot.start,
            channel: schedule.channel,
            cancelled: resource["status"].as_str() == Some("cancelled"),
            resource,
        });
    }
    check.unique_ids(FILE, "appointments", bookings.iter().map(|b| b.id.as_str()));
    bookings
}

fn check_structured(check: &mut Check, fixtures: &Fixtures) {
    const FILE: &str = "structured.json";
    check.resource(
        FILE,
        "practitioner_role",
        &fixtures.practitioner_role,
        "PractitionerRole",
    );
    for (i, record) in fixtures.records.iter().enumerate() {
        let key = format!("records[{i}]");
        if !fixtures.patients.iter().any(|p| p.id == record.patient) {
            check.at(
                FILE,
                &format!("{key}.patient"),
                format!("patient `{}` is not in patients.json", record.patient),
            );
        }
        let own = |r: &Value, field: &str| {
            fhir::reference_id(&r[field], "Patient") == Some(record.patient.as_str())
        };
        for (j, allergy) in record.allergies.iter().enumerate() {
            let key = format!("{key}.allergies[{j}]");
            if check.resource(FILE, &key, allergy, "AllergyIntolerance") && !own(allergy, "patient")
            {
                check.at(
                    FILE,
                    &format!("{key}.patient"),
                    "must reference the record's patient",
                );
            }
        }
        for (j, m) in record.medications.iter().enumerate() {
            let key = format!("{key}.medications[{j}]");
            check.resource(
                FILE,
                &format!("{key}.medication"),
                &m.medication,
                "Medication",
            );
            if check.resource(
                FILE,
                &format!("{key}.statement"),
                &m.statement,
                "MedicationStatement",
            ) && !own(&m.statement, "subject")
            {
                check.at(
                    FILE,
                    &format!("{key}.statement.subject"),
                    "must reference the record's patient",
                );
            }
            for (k, r) in m.requests.iter().enumerate() {
                let key = format!("{key}.requests[{k}]");
                if check.resource(FILE, &key, r, "MedicationRequest") && !own(r, "subject") {
                    check.at(
                        FILE,
                        &format!("{key}.subject"),
                        "must reference the record's patient",
                    );
                }
            }
        }
    }
    check.unique_ids(
        FILE,
        "records",
        fixtures.records.iter().map(|r| r.patient.as_str()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn files() -> HashMap<String, String> {
        EMBEDDED
            .files()
            .filter_map(|f| Some((f.path().to_str()?.to_owned(), f.contents_utf8()?.to_owned())))
            .collect()
    }

    #[test]
    fn shipped_fixtures_are_valid() {
        let f = Fixtures::embedded(date!(2024 - 03 - 01)).expect("shipped fixtures are valid");
        assert!(f
            .patients
            .iter()
            .any(|p| p.nhs_number.as_str() == "9476719931"));
        assert!(f.patients.iter().any(|p| p.sensitive));
        assert!(f
            .appointments
            .iter()
            .any(|b| b.channel == DeliveryChannel::Visit));
        assert!(f
            .schedules
            .iter()
            .any(|s| s.channel == DeliveryChannel::Visit));
    }

    #[test]
    fn every_operation_names_a_known_interaction() {
        let f = Fixtures::embedded(date!(2024 - 03 - 01)).unwrap();
        let catalog = crate::config::interactions::Interactions::parse(
            "i",
            crate::config::interactions::EMBEDDED,
        )
        .unwrap();
        for id in f.interaction_ids() {
            assert!(
                catalog.get(id).is_some(),
                "{id} is not in catalog/interactions.toml"
            );
        }
    }

    #[test]
    fn fixture_appointments_take_a_timetable_slot_from_start_up() {
        let f = Fixtures::embedded(date!(2024 - 03 - 01)).unwrap();
        for b in &f.appointments {
            assert!(b.start.date() >= date!(2024 - 03 - 01));
            let (schedule, start) = timetable::parse_slot_id(&b.slots[0]).unwrap();
            assert_eq!(start, b.start);
            assert!(f.schedule(schedule).is_some());
        }
    }

    #[test]
    fn broken_references_and_numbers_are_reported_with_file_and_key() {
        let mut files = files();
        let patients = files["patients.json"].replace("9476719931", "9476719932");
        files.insert("patients.json".into(), patients);
        let practice = files["practice.json"].replace("\"Practitioner/2\"", "\"Practitioner/99\"");
        files.insert("practice.json".into(), practice);
        files.remove("operations.json");
        let text = Fixtures::from_files(&files, date!(2024 - 03 - 01))
            .unwrap_err()
            .to_string();
        assert!(text.contains("demo/operations.json: is missing"), "{text}");
        files.insert("operations.json".into(), r#"{"operations": {}}"#.into());
        let text = Fixtures::from_files(&files, date!(2024 - 03 - 01))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("demo/patients.json: patients[0].resource.identifier: `9476719932`"),
            "{text}"
        );
        assert!(
            text.contains("Practitioner/99 is not in practitioners"),
            "{text}"
        );
    }
}
