//! The built-in GP Connect 1.2.7 demo provider (`backend = "builtin:demo"`): an in-process
//! provider that sees requests after the gateway's checks, like any backend.
//!
//! A request goes: enablement switches (`enablement`), the operation `demo/operations.json`
//! maps its interaction to, the method and path shape, the body read whole (`request`), one
//! use case (`foundations`, `appointments`, `structured`, `documents`) over the fixtures
//! (`fixtures`, with the simulated PDS in `pds`) and the practice's in-memory state
//! (`state`), and the answer in JSON or XML (`respond`).
//!
//! Foundations and Appointment Management follow GP Connect 1.2.7; Access Record Structured
//! and Access Document follow 1.6.0, whose requests are a superset of 1.2.7's.

mod appointments;
mod carerecord;
mod dates;
mod documents;
mod enablement;
pub(crate) mod errors;
mod fhir;
mod fixtures;
mod foundations;
mod nhs_number;
mod patients;
mod pds;
mod profiles;
mod request;
mod respond;
mod state;
mod structured;
mod timetable;

use bytes::Bytes;
use http::header::IF_MATCH;
use http::{HeaderMap, Method, Request, Response};
use jiff::Timestamp;
use serde_json::Value;

use crate::config::interactions::Interaction;
use crate::config::problems::ConfigError;
use crate::config::rejection::Rejection;
use crate::config::routes::{Endpoint, Provider};
use crate::wire::body::{Body, RequestBody};
use crate::wire::format::Format;
use appointments::Change;
use errors::reject;
use fixtures::{Fixtures, Operation};
use request::{Input, Query};
use respond::Reply;
use state::{Ledger, Practice};

/// A request the gateway has accepted for the demo provider.
pub struct DemoCall<'a> {
    /// The practice addressed: its ODS code, name and enablement switches.
    pub provider: &'a Provider,
    /// The endpoint the request came through: its service root is the base of `fullUrl`s.
    pub endpoint: &'a Endpoint,
    /// The interaction declared, which picks the use case.
    pub interaction: &'a Interaction,
    /// The FHIR path and query below the service root.
    pub rest: &'a str,
    /// The format check 9 negotiated, for the answer and its errors.
    pub format: Format,
    /// The request itself, for its method, headers and body.
    pub request: Request<RequestBody>,
}

/// The demo provider: its fixtures and what each practice has changed since start-up.
#[derive(Debug)]
pub struct DemoProvider {
    fixtures: Fixtures,
    ledger: Ledger,
}

/// The practice a request is for, as the use cases see it.
pub struct Site<'a> {
    /// The fixtures every practice starts from.
    pub fixtures: &'a Fixtures,
    ledger: &'a Ledger,
    /// The practice's ODS code: whose state and fixtures the request sees.
    pub ods_code: &'a str,
    /// The practice's name, from routes.toml.
    pub name: &'a str,
    /// The service root the request came through, for `fullUrl` and `Location`.
    pub base: &'a str,
    /// The time the request is answered at: bookable slots and timestamps are judged by it.
    pub now: Timestamp,
}

impl Site<'_> {
    /// Runs `f` on this practice's state, under the ledger's lock.
    pub fn practice<R>(&self, f: impl FnOnce(&mut Practice) -> R) -> R {
        self.ledger.with(self.fixtures, self.ods_code, f)
    }

    /// The practice's Organization resource.
    pub fn organisation(&self) -> Value {
        self.fixtures.organisation(self.ods_code, self.name)
    }

    /// Refuses a request resource with an element its FHIR STU3 type does not have, naming
    /// it (422 INVALID_RESOURCE).
    pub fn check_elements(&self, resource: &Value) -> Result<(), Rejection> {
        self.fixtures
            .elements
            .check(resource)
            .map_err(errors::invalid_resource)
    }

    /// Now, as a FHIR date-time in UK local time.
    pub fn now_text(&self) -> String {
        dates::format(self.now)
    }
}

/// Whether the consumer asked for `Prefer: return=minimal` (RFC 7240; GP Connect honours it
/// on create and update).
fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

impl DemoProvider {
    /// Loads and validates the fixtures; fixture appointments are dated from today.
    pub fn new() -> Result<Self, ConfigError> {
        Ok(Self {
            fixtures: Fixtures::embedded(dates::uk_date(Timestamp::now()))?,
            ledger: Ledger::default(),
        })
    }

    /// Answers one request as the practice's GP Connect provider would, or refuses it as one
    /// would: the practice's enablement switches, then the interaction's method and path, then
    /// the use case itself. Refusals are provider errors, which the gateway renders in the
    /// negotiated format.
    pub async fn handle(&self, call: DemoCall<'_>) -> Result<Response<Body>, Rejection> {
        let provider = call.provider;
        let interaction = call.interaction;
        enablement::check(&provider.demo, &provider.ods_code, interaction.capability)?;
        let operation = self.fixtures.operation(&interaction.id).ok_or_else(|| {
            reject(
                errors::NOT_IMPLEMENTED,
                format!(
                    "The demo provider speaks GP Connect 1.2.7 and does not implement {} ({})",
                    interaction.name, interaction.id
                ),
            )
        })?;
        let (path, query) = call.rest.split_once('?').unwrap_or((call.rest, ""));
        let (parts, body) = call.request.into_parts();
        // Check 10 may be off (--jwt-mode); a provider still refuses a request of the wrong shape.
        if parts.method != interaction.method || !interaction.path.matches(path) {
            return Err(reject(
                errors::BAD_REQUEST,
                format!(
                    "{} {path} does not fit {} ({}), which is {} {}",
                    parts.method,
                    interaction.name,
                    interaction.id,
                    interaction.method,
                    interaction.path.as_str()
                ),
            ));
        }
        let body = if matches!(parts.method, Method::POST | Method::PUT) {
            request::read_body(body, &parts.headers).await?
        } else {
            Bytes::new()
        };
        let input = Input {
            segments: request::segments(path),
            query: Query::parse(Some(query)),
            body,
            if_match: parts
                .headers
                .get(IF_MATCH)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        };
        let site = Site {
            fixtures: &self.fixtures,
            ledger: &self.ledger,
            ods_code: &provider.ods_code,
            name: &provider.name,
            base: &call.endpoint.service_root,
            now: Timestamp::now(),
        };
        let reply = self.dispatch(operation, &site, &input)?;
        let writes = matches!(
            operation,
            Operation::BookAppointment | Operation::AmendAppointment | Operation::CancelAppointment
        );
        let reply = if writes && prefers_minimal(&parts.headers) {
            reply.minimal()
        } else {
            reply
        };
        reply.render(call.format, self.fixtures.elements.xml_order())
    }

    /// One arm per operation: adding a use case is one module function and one arm.
    fn dispatch(
        &self,
        operation: Operation,
        site: &Site,
        input: &Input,
    ) -> Result<Reply, Rejection> {
        match operation {
            Operation::Metadata => Ok(Reply::ok(self.fixtures.capability_statement.clone())),
            Operation::StructuredMetadata => Ok(Reply::ok(
                self.fixtures.structured_capability_statement.clone(),
            )),
            Operation::FindPatient => foundations::find_patient(site, input),
            Operation::ReadPatient => foundations::read_patient(site, input),
            Operation::FindPractitioner => foundations::find_practitioner(site, input),
            Operation::ReadPractitioner => foundations::read_practitioner(site, input),
            Operation::FindOrganisation => foundations::find_organisation(site, input),
            Operation::ReadOrganisation => foundations::read_organisation(site, input),
            Operation::ReadLocation => foundations::read_location(site, input),
            Operation::RegisterPatient => foundations::register_patient(site, input),
            Operation::SearchSlots => appointments::search_slots(site, input),
            Operation::ReadAppointment => appointments::read(site, input),
            Operation::BookAppointment => appointments::book(site, input),
            Operation::AmendAppointment => appointments::update(site, input, Change::Amend),
            Operation::CancelAppointment => appointments::update(site, input, Change::Cancel),
            Operation::PatientAppointments => appointments::patient_appointments(site, input),
            Operation::StructuredRecord => structured::get_record(site, input),
            Operation::CareRecord => carerecord::get_care_record(site, input),
            Operation::DocumentsMetadata => Ok(Reply::ok(
                self.fixtures.documents_capability_statement.clone(),
            )),
            Operation::SearchDocuments => documents::search(site, input),
            Operation::RetrieveDocument => documents::retrieve(site, input),
        }
    }
}
