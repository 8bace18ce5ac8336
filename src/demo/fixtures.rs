//! The demo provider's data: the JSON files of `demo/`, parsed and validated once at
//! start-up into typed tables (see `demo/README.md` for what each file holds). Every
//! reference between fixtures is checked here, so the use cases can trust them; a broken
//! fixture stops start-up naming the file and the field.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use include_dir::{include_dir, Dir};
use jiff::civil::Date;
use jiff::SignedDuration;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::elements::Elements;
use crate::config::problems::{ConfigError, Problem};
use crate::demo::carerecord::CareRecordSections;
use crate::demo::patients::PatientRecord;
use crate::demo::pds::{self, Pds};
use crate::demo::state::Booking;
use crate::demo::timetable::{self, RawSession, Timetable};
use crate::demo::{dates, fhir};
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
    /// Access Record HTML (0.7): `$gpc.getcarerecord`.
    CareRecord,
    DocumentsMetadata,
    SearchDocuments,
    RetrieveDocument,
}

/// How an appointment is delivered (`Extension-GPConnect-DeliveryChannel-2`). `Visit` comes
/// from the draft 1.2.7 notes (#826): such slots and appointments are never bookable.
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

/// A diary and its timetable.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: String,
    pub channel: DeliveryChannel,
    /// The practice's slot type: `Slot.serviceType.text` and `Appointment.serviceType.text`
    /// (#912).
    pub slot_type: String,
    pub timetable: Timetable,
    /// The Schedule resource without planning horizon (added per search).
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

    /// The practice's schedule type, `Schedule.serviceCategory.text`, where it has one.
    pub fn category(&self) -> Option<&str> {
        self.resource["serviceCategory"]["text"].as_str()
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

/// A record entry listed by one resource that comes with others: a consultation (its
/// Encounter with the consultation List and notes) or an investigation (its DiagnosticReport
/// with results and specimens).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub resource: Value,
    #[serde(default)]
    pub related: Vec<Value>,
}

/// A patient's structured record, one field per clinical area.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructuredRecord {
    pub patient: String,
    #[serde(default)]
    pub allergies: Vec<Value>,
    #[serde(default)]
    pub medications: Vec<MedicationEntry>,
    #[serde(default)]
    pub problems: Vec<Value>,
    #[serde(default)]
    pub immunisations: Vec<Value>,
    #[serde(default)]
    pub consultations: Vec<Group>,
    #[serde(default)]
    pub uncategorised: Vec<Value>,
    #[serde(default)]
    pub investigations: Vec<Group>,
    #[serde(default)]
    pub referrals: Vec<Value>,
}

/// The title and SNOMED code of one structured `List`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKind {
    pub title: String,
    pub code: Value,
}

/// The primary `List` of each clinical area, and the empty reason of an empty list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKinds {
    pub allergies: ListKind,
    pub ended_allergies: ListKind,
    pub medications: ListKind,
    pub problems: ListKind,
    pub immunisations: ListKind,
    pub consultations: ListKind,
    pub uncategorised: ListKind,
    pub investigations: ListKind,
    pub referrals: ListKind,
    pub diary: ListKind,
    pub empty_reason: Value,
}

/// A document of Access Document: its DocumentReference and the Binary behind it.
#[derive(Debug, Clone)]
pub struct Document {
    pub patient: String,
    pub binary_id: String,
    pub content_type: String,
    /// Base64 content; `None` for a document over the retrieval size limit.
    pub content: Option<String>,
    pub size: u64,
    /// The DocumentReference, without `content.attachment.url` (it names the endpoint).
    pub reference: Value,
}

/// The largest document Retrieve a document returns (Access Document 1.6: 5 MB).
pub const DOCUMENT_SIZE_LIMIT: u64 = 5 * 1024 * 1024;

/// Everything the demo provider serves, validated.
#[derive(Debug)]
pub struct Fixtures {
    pub capability_statement: Value,
    pub structured_capability_statement: Value,
    pub documents_capability_statement: Value,
    organisation: Value,
    pub locations: Vec<Value>,
    pub practitioners: Vec<Value>,
    pub schedules: Vec<Schedule>,
    /// Patients every practice starts with.
    pub patients: Vec<PatientRecord>,
    /// The simulated PDS.
    pub pds: Pds,
    /// Appointments every practice starts with, dated from the day the simulator started.
    pub appointments: Vec<Booking>,
    pub practitioner_role: Value,
    pub lists: ListKinds,
    pub records: Vec<StructuredRecord>,
    pub documents: Vec<Document>,
    /// Organisations documents name as authors, besides the practice.
    pub other_organisations: Vec<Value>,
    /// The STU3 element tables request bodies are checked against.
    pub elements: Elements,
    /// The Access Record HTML sections `$gpc.getcarerecord` answers (`carerecord.json`).
    pub care_record: CareRecordSections,
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
    slot_type: String,
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
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    resource: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPds {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    records: Vec<pds::RawRecord>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppointments {
    appointments: Vec<RawAppointment>,
}

/// A fixture appointment: its slot is the schedule's slot at `time` (UK local), on the first
/// day from `days_ahead` days after start-up (negative: before) that has one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAppointment {
    schedule: String,
    days_ahead: i16,
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
struct RawDocuments {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    organisations: Vec<Value>,
    documents: Vec<RawDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    patient: String,
    binary: RawBinary,
    reference: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBinary {
    id: String,
    content_type: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperations {
    operations: HashMap<String, Operation>,
}

/// How far ahead a fixture appointment looks for its slot.
const FIXTURE_SEARCH_DAYS: i16 = 14;

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

    fn missing(&mut self, name: &str) {
        self.problems.push(Problem {
            file: format!("demo/{name}"),
            line: None,
            key: None,
            message: "is missing; the demo provider needs it".into(),
        });
    }

    /// Parses one file into `T`, or records why it cannot (with the path of the field).
    fn parse<T: DeserializeOwned>(
        &mut self,
        files: &HashMap<String, String>,
        name: &str,
    ) -> Option<T> {
        let Some(text) = files.get(name) else {
            self.missing(name);
            return None;
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Some(value),
            Err(e) => {
                let key = e.path().to_string();
                let inner = e.into_inner();
                self.problems.push(Problem {
                    file: format!("demo/{name}"),
                    line: Some(inner.line()),
                    key: (key != ".").then_some(key),
                    message: format!("not valid: {inner}"),
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

/// Files by name (e.g. `patients.json`) of a directory compiled in.
fn files_of(dir: &Dir<'_>) -> HashMap<String, String> {
    dir.files()
        .filter_map(|f| Some((f.path().to_str()?.to_owned(), f.contents_utf8()?.to_owned())))
        .collect()
}

impl Fixtures {
    /// The fixtures compiled into the binary, with appointments dated from `today`.
    pub fn embedded(today: Date) -> Result<Self, ConfigError> {
        Self::from_files(&files_of(&EMBEDDED), today)
    }

    /// Parses and cross-checks the files given by name (e.g. `patients.json`).
    pub fn from_files(files: &HashMap<String, String>, today: Date) -> Result<Self, ConfigError> {
        let mut check = Check {
            problems: Vec::new(),
        };
        if let Err(message) = dates::check_zone() {
            check.at("practice.json", "schedules", message);
        }
        let practice: Option<RawPractice> = check.parse(files, "practice.json");
        let patients: Option<RawPatients> = check.parse(files, "patients.json");
        let pds: Option<RawPds> = check.parse(files, "pds.json");
        let appointments: Option<RawAppointments> = check.parse(files, "appointments.json");
        let structured: Option<RawStructured> = check.parse(files, "structured.json");
        let documents: Option<RawDocuments> = check.parse(files, "documents.json");
        let operations: Option<RawOperations> = check.parse(files, "operations.json");
        let care_record: Option<CareRecordSections> = check.parse(files, "carerecord.json");
        let statements: Vec<Option<Value>> = [
            "capability-statement.json",
            "structured-capability-statement.json",
            "documents-capability-statement.json",
        ]
        .iter()
        .map(|name| {
            let statement: Option<Value> = check.parse(files, name);
            if let Some(s) = &statement {
                if fhir::resource_type(s) != "CapabilityStatement" {
                    check.at(name, "resourceType", "must be \"CapabilityStatement\"");
                }
            }
            statement
        })
        .collect();
        let elements = match files.get("stu3-elements.json").map(|t| Elements::parse(t)) {
            Some(Ok(e)) => Some(e),
            Some(Err(message)) => {
                check.at("stu3-elements.json", "types", message);
                None
            }
            None => {
                check.missing("stu3-elements.json");
                None
            }
        };
        let [Some(capability), Some(structured_capability), Some(documents_capability)]: [Option<
            Value,
        >;
            3] = statements.try_into().unwrap_or([None, None, None])
        else {
            return Err(ConfigError {
                problems: check.problems,
            });
        };
        let (
            Some(practice),
            Some(patients),
            Some(pds),
            Some(appointments),
            Some(structured),
            Some(documents),
            Some(operations),
            Some(elements),
            Some(care_record),
        ) = (
            practice,
            patients,
            pds,
            appointments,
            structured,
            documents,
            operations,
            elements,
            care_record,
        )
        else {
            return Err(ConfigError {
                problems: check.problems,
            });
        };

        let practice = check_practice(&mut check, practice);
        let pds = check_pds(&mut check, pds);
        let patients = check_patients(&mut check, patients, &pds);
        let mut fixtures = Self {
            capability_statement: capability,
            structured_capability_statement: structured_capability,
            documents_capability_statement: documents_capability,
            organisation: practice.organisation,
            locations: practice.locations,
            practitioners: practice.practitioners,
            schedules: practice.schedules,
            patients,
            pds,
            appointments: Vec::new(),
            practitioner_role: structured.practitioner_role,
            lists: structured.lists,
            records: structured.records,
            documents: Vec::new(),
            other_organisations: Vec::new(),
            elements,
            operations: operations.operations,
            care_record,
        };
        fixtures.appointments = check_appointments(&mut check, &fixtures, appointments, today);
        check_structured(&mut check, &fixtures);
        let (documents, organisations) = check_documents(&mut check, &fixtures, documents);
        fixtures.documents = documents;
        fixtures.other_organisations = organisations;
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

    /// A location of the practice by id.
    pub fn location(&self, id: &str) -> Option<&Value> {
        self.locations.iter().find(|l| fhir::id(l) == id)
    }

    /// A practitioner of the practice by id.
    pub fn practitioner(&self, id: &str) -> Option<&Value> {
        self.practitioners.iter().find(|p| fhir::id(p) == id)
    }

    /// A schedule by id.
    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.id == id)
    }

    /// The structured record of a patient, if one is recorded.
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
        // #912: the slot type goes on each Slot, the schedule type in serviceCategory; the
        // planning horizon is the sessions a search returns.
        for element in ["comment", "serviceType", "planningHorizon"] {
            if s.resource.get(element).is_some() {
                check.at(FILE, &format!("{key}.resource.{element}"), "must not be set: GP Connect 1.2.7 (#912) puts the slot type in slot_type (Slot.serviceType.text) and the schedule type in serviceCategory.text; the planning horizon is filled in per search");
            }
        }
        if s.resource.get("serviceCategory").is_some()
            && !s.resource["serviceCategory"]["text"].is_string()
        {
            check.at(
                FILE,
                &format!("{key}.resource.serviceCategory"),
                "must hold the practice's schedule type in `text`",
            );
        }
        if s.slot_type.trim().is_empty() {
            check.at(
                FILE,
                &format!("{key}.slot_type"),
                "must name the practice's slot type",
            );
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
            slot_type: s.slot_type,
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

fn check_pds(check: &mut Check, raw: RawPds) -> Pds {
    const FILE: &str = "pds.json";
    let mut records = Vec::new();
    let mut numbers = HashSet::new();
    for (i, r) in raw.records.into_iter().enumerate() {
        match pds::Record::parse(r) {
            Ok(record) => {
                if !numbers.insert(record.nhs_number.clone()) {
                    check.at(
                        FILE,
                        &format!("records[{i}].nhs_number"),
                        format!("NHS number {} is used twice", record.nhs_number),
                    );
                }
                records.push(record);
            }
            Err((field, message)) => check.at(FILE, &format!("records[{i}].{field}"), message),
        }
    }
    Pds::new(records)
}

fn check_patients(check: &mut Check, raw: RawPatients, pds: &Pds) -> Vec<PatientRecord> {
    const FILE: &str = "patients.json";
    let mut records: Vec<PatientRecord> = Vec::new();
    for (i, p) in raw.patients.into_iter().enumerate() {
        let key = format!("patients[{i}].resource");
        if !check.resource(FILE, &key, &p.resource, "Patient") {
            continue;
        }
        let sensitive = fhir::identifier(&p.resource, crate::demo::nhs_number::SYSTEM)
            .and_then(|n| crate::demo::nhs_number::NhsNumber::parse(n).ok())
            .is_some_and(|n| pds.sensitive(&n));
        let record = match PatientRecord::from_resource(p.resource, sensitive) {
            Ok(record) => record,
            Err((field, message)) => {
                check.at(FILE, &format!("{key}.{field}"), message);
                continue;
            }
        };
        if records.iter().any(|r| r.nhs_number == record.nhs_number) {
            check.at(
                FILE,
                &format!("{key}.identifier"),
                format!("NHS number {} is used twice", record.nhs_number),
            );
        }
        records.push(record);
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
        for filled in ["start", "end", "slot", "serviceType", "serviceCategory"] {
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
        let created = a.resource["created"]
            .as_str()
            .and_then(dates::parse_instant);
        let Some(created) = created else {
            check.at(
                FILE,
                &format!("{key}.resource.created"),
                "must be a date-time with an offset",
            );
            continue;
        };
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
        let slot = (a.days_ahead..a.days_ahead.saturating_add(FIXTURE_SEARCH_DAYS)).find_map(|d| {
            let day = today
                .checked_add(SignedDuration::from_hours(24 * i64::from(d)))
                .ok()?;
            schedule.timetable.slot_at(dates::at(day, at)?)
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
        resource["created"] = Value::String(dates::format(created));
        resource["start"] = Value::String(dates::format(slot.start));
        resource["end"] = Value::String(dates::format(slot.end));
        resource["slot"] = json!([fhir::reference("Slot", &slot_id)]);
        crate::demo::appointments::set_service(&mut resource, schedule);
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

/// The date a clinical-area entry is searched by, as the structured search periods use it.
pub fn entry_date(resource: &Value) -> Option<Date> {
    let text = match fhir::resource_type(resource) {
        "Encounter" => resource["period"]["start"].as_str(),
        "Observation" => resource["effectiveDateTime"].as_str(),
        "DiagnosticReport" => resource["issued"].as_str(),
        "ReferralRequest" => resource["authoredOn"].as_str(),
        "Immunization" => resource["date"].as_str(),
        _ => None,
    }?;
    dates::parse_date(text.get(..10)?)
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
        let mut own = |key: String, r: &Value, kind: &str, field: &str| {
            if check.resource(FILE, &key, r, kind)
                && fhir::reference_id(&r[field], "Patient") != Some(record.patient.as_str())
            {
                check.at(
                    FILE,
                    &format!("{key}.{field}"),
                    "must reference the record's patient",
                );
            }
        };
        for (j, allergy) in record.allergies.iter().enumerate() {
            own(
                format!("{key}.allergies[{j}]"),
                allergy,
                "AllergyIntolerance",
                "patient",
            );
        }
        for (j, m) in record.medications.iter().enumerate() {
            let key = format!("{key}.medications[{j}]");
            own(
                format!("{key}.statement"),
                &m.statement,
                "MedicationStatement",
                "subject",
            );
            for (k, r) in m.requests.iter().enumerate() {
                own(
                    format!("{key}.requests[{k}]"),
                    r,
                    "MedicationRequest",
                    "subject",
                );
            }
        }
        for (j, p) in record.problems.iter().enumerate() {
            own(format!("{key}.problems[{j}]"), p, "Condition", "subject");
        }
        for (j, p) in record.immunisations.iter().enumerate() {
            own(
                format!("{key}.immunisations[{j}]"),
                p,
                "Immunization",
                "patient",
            );
        }
        for (j, p) in record.uncategorised.iter().enumerate() {
            own(
                format!("{key}.uncategorised[{j}]"),
                p,
                "Observation",
                "subject",
            );
        }
        for (j, p) in record.referrals.iter().enumerate() {
            own(
                format!("{key}.referrals[{j}]"),
                p,
                "ReferralRequest",
                "subject",
            );
        }
        for (j, g) in record.consultations.iter().enumerate() {
            own(
                format!("{key}.consultations[{j}].resource"),
                &g.resource,
                "Encounter",
                "subject",
            );
        }
        for (j, g) in record.investigations.iter().enumerate() {
            own(
                format!("{key}.investigations[{j}].resource"),
                &g.resource,
                "DiagnosticReport",
                "subject",
            );
        }
        for (j, m) in record.medications.iter().enumerate() {
            check.resource(
                FILE,
                &format!("{key}.medications[{j}].medication"),
                &m.medication,
                "Medication",
            );
        }
        let dated = record
            .immunisations
            .iter()
            .chain(&record.uncategorised)
            .chain(&record.referrals)
            .chain(record.consultations.iter().map(|g| &g.resource))
            .chain(record.investigations.iter().map(|g| &g.resource));
        for r in dated {
            if entry_date(r).is_none() {
                check.at(FILE, &key, format!("{}/{} has no date to search by (Encounter.period.start, Observation.effectiveDateTime, DiagnosticReport.issued, ReferralRequest.authoredOn, Immunization.date)", fhir::resource_type(r), fhir::id(r)));
            }
        }
        for (j, g) in record
            .consultations
            .iter()
            .chain(&record.investigations)
            .enumerate()
        {
            for (k, r) in g.related.iter().enumerate() {
                if fhir::resource_type(r).is_empty() || fhir::id(r).is_empty() {
                    check.at(
                        FILE,
                        &format!("{key}.related[{j}][{k}]"),
                        "must be a resource with a resourceType and an id",
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

fn check_documents(
    check: &mut Check,
    fixtures: &Fixtures,
    raw: RawDocuments,
) -> (Vec<Document>, Vec<Value>) {
    const FILE: &str = "documents.json";
    for (i, org) in raw.organisations.iter().enumerate() {
        check.resource(FILE, &format!("organisations[{i}]"), org, "Organization");
    }
    let mut documents = Vec::new();
    for (i, d) in raw.documents.into_iter().enumerate() {
        let key = format!("documents[{i}]");
        if !fixtures.patients.iter().any(|p| p.id == d.patient) {
            check.at(
                FILE,
                &format!("{key}.patient"),
                format!("patient `{}` is not in patients.json", d.patient),
            );
        }
        if !check.resource(
            FILE,
            &format!("{key}.reference"),
            &d.reference,
            "DocumentReference",
        ) {
            continue;
        }
        if fhir::reference_id(&d.reference["subject"], "Patient") != Some(d.patient.as_str()) {
            check.at(
                FILE,
                &format!("{key}.reference.subject"),
                "must reference the document's patient",
            );
        }
        if dates::parse_instant(d.reference["indexed"].as_str().unwrap_or("")).is_none() {
            check.at(
                FILE,
                &format!("{key}.reference.indexed"),
                "must be an instant with an offset",
            );
        }
        let size = match (&d.binary.content, d.binary.size) {
            (Some(content), None) => match STANDARD.decode(content) {
                Ok(bytes) => bytes.len() as u64,
                Err(e) => {
                    check.at(
                        FILE,
                        &format!("{key}.binary.content"),
                        format!("is not base64: {e}"),
                    );
                    continue;
                }
            },
            (None, Some(size)) if size > DOCUMENT_SIZE_LIMIT => size,
            _ => {
                check.at(FILE, &format!("{key}.binary"), format!("needs either `content` (base64) or a `size` over the {DOCUMENT_SIZE_LIMIT}-byte retrieval limit"));
                continue;
            }
        };
        documents.push(Document {
            patient: d.patient,
            binary_id: d.binary.id,
            content_type: d.binary.content_type,
            content: d.binary.content,
            size,
            reference: d.reference,
        });
    }
    check.unique_ids(
        FILE,
        "documents",
        documents.iter().map(|d| d.binary_id.as_str()),
    );
    check.unique_ids(
        FILE,
        "documents",
        documents.iter().map(|d| fhir::id(&d.reference)),
    );
    (documents, raw.organisations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const TODAY: Date = date(2024, 3, 1);

    #[test]
    fn shipped_fixtures_are_valid_and_cover_every_branch() {
        let f = Fixtures::embedded(TODAY).expect("shipped fixtures are valid");
        let p = |n: &str| {
            f.patients
                .iter()
                .find(|p| p.nhs_number.as_str() == n)
                .unwrap()
        };
        assert!(p("9690937294").sensitive);
        assert!(p("9690937316").deceased);
        assert!(!p("9690937324").verified && p("9690937324").active);
        assert!(!p("9690937375").active);
        assert!(f.pds.get(&p("9690937332").nhs_number).is_none());
        assert!(f
            .appointments
            .iter()
            .any(|b| b.channel == DeliveryChannel::Visit));
        assert!(f.schedules.iter().any(|s| s.category().is_none()));
        assert!(f.documents.iter().any(|d| d.content.is_none()));
        let rich = f.record("1").unwrap();
        assert!(!rich.problems.is_empty() && !rich.consultations.is_empty());
        assert!(!rich.investigations.is_empty() && !rich.referrals.is_empty());
    }

    #[test]
    fn every_operation_names_a_known_interaction() {
        let f = Fixtures::embedded(TODAY).unwrap();
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
    fn fixture_appointments_take_a_timetable_slot_around_start_up() {
        let f = Fixtures::embedded(TODAY).unwrap();
        assert!(f
            .appointments
            .iter()
            .any(|b| dates::uk_date(b.start) < TODAY));
        for b in &f.appointments {
            let (schedule, start) = timetable::parse_slot_id(&b.slots[0]).unwrap();
            assert_eq!(start, b.start);
            assert!(f.schedule(schedule).is_some());
            assert!(b.resource["serviceType"][0]["text"].is_string());
        }
    }

    #[test]
    fn broken_fixtures_are_reported_with_file_and_field() {
        let mut files = files_of(&EMBEDDED);
        let edit = |files: &mut HashMap<String, String>, name: &str, from: &str, to: &str| {
            let text = files[name].replacen(from, to, 1);
            assert_ne!(text, files[name], "{from} not in {name}");
            files.insert(name.into(), text);
        };
        edit(&mut files, "patients.json", "9476719931", "9476719932");
        edit(
            &mut files,
            "practice.json",
            "\"Practitioner/2\"",
            "\"Practitioner/99\"",
        );
        edit(
            &mut files,
            "practice.json",
            "\"serviceCategory\"",
            "\"comment\": \"x\", \"serviceCategory\"",
        );
        edit(&mut files, "pds.json", "\"1952-05-31\"", "\"31/05/1952\"");
        files.remove("operations.json");
        let text = Fixtures::from_files(&files, TODAY).unwrap_err().to_string();
        assert!(text.contains("demo/operations.json: is missing"), "{text}");
        files.insert("operations.json".into(), r#"{"operations": {}}"#.into());
        let text = Fixtures::from_files(&files, TODAY).unwrap_err().to_string();
        for expected in [
            "demo/patients.json: patients[0].resource.identifier: `9476719932`",
            "Practitioner/99 is not in practitioners",
            "demo/practice.json: schedules[0].resource.comment: must not be set",
            "demo/pds.json: records[0].birth_date",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        files.insert(
            "patients.json".into(),
            r#"{"patients": [{"resource": {}}]}"#.into(),
        );
        let text = Fixtures::from_files(&files, TODAY).unwrap_err().to_string();
        assert!(
            text.contains("demo/patients.json") && text.contains("patients[0]"),
            "{text}"
        );
    }
}
