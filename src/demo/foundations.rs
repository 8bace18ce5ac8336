//! Foundations: find and read patients, practitioners, organisations and locations, and
//! register a patient (GP Connect 1.2.7 use-case pages under pages/foundations/), tracing
//! NHS numbers on the simulated PDS (`pds`).

use serde_json::{json, Value};

use crate::config::rejection::Rejection;
use crate::demo::errors::{self, reject};
use crate::demo::nhs_number::{self, NhsNumber};
use crate::demo::patients::{self, PatientRecord};
use crate::demo::pds::Trace;
use crate::demo::request::{at_most_one, Input};
use crate::demo::respond::{searchset, Reply};
use crate::demo::{fhir, profiles, Site};
use crate::wire::systems;

/// The value of an `identifier=system|value` search whose system must be `system`. A
/// missing or repeated `identifier` is a BAD_REQUEST, a blank system or value an
/// INVALID_PARAMETER (the assurance suite's codes); another system is INVALID_IDENTIFIER_SYSTEM.
fn identifier_search<'a>(input: &'a Input, system: &str) -> Result<&'a str, Rejection> {
    let raw = input.query.required("identifier")?;
    let Some((given, value)) = raw.split_once('|') else {
        return Err(reject(
            errors::INVALID_PARAMETER,
            format!("identifier `{raw}` must be `system|value`, e.g. `{system}|...`"),
        ));
    };
    if given.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "identifier `{raw}` has no system before `|`; send `{system}|{value}`"
        )));
    }
    if value.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "identifier `{raw}` has no value after `|`"
        )));
    }
    if given != system {
        return Err(reject(
            errors::INVALID_IDENTIFIER_SYSTEM,
            format!("identifier system `{given}` is not supported here; use `{system}`"),
        ));
    }
    Ok(value)
}

/// An NHS number that passes its check digit, or `INVALID_NHS_NUMBER`.
pub fn nhs_number(text: &str) -> Result<NhsNumber, Rejection> {
    NhsNumber::parse(text).map_err(|e| reject(errors::INVALID_NHS_NUMBER, e.to_string()))
}

/// The same answer for an unknown patient and a PDS sensitive one, so the answer does not
/// reveal that a sensitive patient exists (#658, #847).
pub(super) fn patient_not_found(site: &Site, what: &str) -> Rejection {
    reject(
        errors::PATIENT_NOT_FOUND,
        format!(
            "No patient with {what} is available through GP Connect at practice {}",
            site.ods_code
        ),
    )
}

/// Find a patient: `GET /Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}`. Not
/// finding one is not an error: the Bundle is empty. Only active patients are returned; an
/// active record whose NHS number was never traced is traced on PDS on the way (#921) and
/// returned, now verified, only when the trace succeeds.
pub fn find_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let wanted = nhs_number(identifier_search(input, nhs_number::SYSTEM)?)?;
    let now = site.now_text();
    let pds = &site.fixtures.pds;
    let found: Vec<Value> = site.practice(|practice| {
        practice
            .patients
            .iter_mut()
            .filter(|p| p.nhs_number == wanted && !p.sensitive && p.active && !p.deceased)
            .filter_map(|p| {
                if !p.verified {
                    let traced = p
                        .demographics()
                        .map(|who| pds.trace(&p.nhs_number, who))
                        .is_some_and(|t| t == Trace::Verified);
                    if !traced {
                        return None;
                    }
                    p.mark_verified(&now);
                }
                Some(p.resource.clone())
            })
            .collect()
    });
    Ok(Reply::ok(searchset(site.base, found, Vec::new())))
}

/// Read a patient: `GET /Patient/{id}`.
pub fn read_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    site.practice(|practice| {
        practice
            .visible_patients()
            .find(|p| p.id == id)
            .map(|p| Reply::ok(p.resource.clone()))
            .ok_or_else(|| patient_not_found(site, &format!("logical id `{id}`")))
    })
}

/// Find a practitioner: `GET /Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|{id}`.
pub fn find_practitioner(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let wanted = identifier_search(input, systems::SDS_USER_ID)?;
    let found = site
        .fixtures
        .practitioners
        .iter()
        .filter(|p| fhir::identifier(p, systems::SDS_USER_ID) == Some(wanted))
        .cloned()
        .collect();
    Ok(Reply::ok(searchset(site.base, found, Vec::new())))
}

/// Read a practitioner: `GET /Practitioner/{id}`.
pub fn read_practitioner(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    site.fixtures
        .practitioner(id)
        .map(|p| Reply::ok(p.clone()))
        .ok_or_else(|| {
            reject(
                errors::PRACTITIONER_NOT_FOUND,
                format!(
                    "No practitioner with logical id `{id}` at practice {}",
                    site.ods_code
                ),
            )
        })
}

/// Find an organisation: `GET /Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|{ods}`.
pub fn find_organisation(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let wanted = identifier_search(input, systems::ODS_CODE)?;
    let found = if wanted == site.ods_code {
        vec![site.organisation()]
    } else {
        Vec::new()
    };
    Ok(Reply::ok(searchset(site.base, found, Vec::new())))
}

/// Read an organisation: `GET /Organization/{id}`.
pub fn read_organisation(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    if id == site.fixtures.organisation_id() {
        Ok(Reply::ok(site.organisation()))
    } else {
        Err(reject(
            errors::ORGANISATION_NOT_FOUND,
            format!(
                "No organisation with logical id `{id}`; this practice is Organization/{}",
                site.fixtures.organisation_id()
            ),
        ))
    }
}

/// Read a location: `GET /Location/{id}`.
pub fn read_location(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    site.fixtures
        .location(id)
        .map(|l| Reply::ok(l.clone()))
        .ok_or_else(|| {
            reject(
                errors::NO_RECORD_FOUND,
                format!(
                    "No location with logical id `{id}` at practice {}",
                    site.ods_code
                ),
            )
        })
}

/// The elements a consumer may populate on the Patient it registers (1.2.7: "All other
/// fields MUST NOT be populated").
const REGISTER_ELEMENTS: [&str; 10] = [
    "resourceType",
    "id",
    "meta",
    "extension",
    "identifier",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "address",
];

/// The one extension a consumer may send on the Patient: its language (`nhsCommunication`).
const NHS_COMMUNICATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSCommunication-1";

/// The Patient of the single `registerPatient` parameter, checked as the 1.2.7 page and the
/// assurance suite (`PatientRegister.feature`) require, each fault with its code.
fn patient_to_register<'a>(
    site: &Site,
    body: &'a Value,
) -> Result<(&'a Value, NhsNumber), Rejection> {
    if fhir::resource_type(body) != "Parameters" {
        return Err(errors::invalid_resource(
            "The body must be a Parameters resource holding one registerPatient parameter",
        ));
    }
    site.check_elements(body)?;
    let mut named = body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"].as_str() == Some("registerPatient"));
    let parameter =
        at_most_one(&mut named, "registerPatient", errors::BAD_REQUEST)?.ok_or_else(|| {
            errors::invalid_resource("Parameters must hold a registerPatient parameter")
        })?;
    let patient = &parameter["resource"];
    if fhir::resource_type(patient) != "Patient" {
        return Err(errors::invalid_resource(
            "The registerPatient parameter must hold a Patient resource",
        ));
    }
    if !fhir::has_profile(patient, profiles::PATIENT) {
        return Err(errors::invalid_resource(format!(
            "The Patient's meta.profile must list {} (mandatory in the requested 1.2.7 text, #697)",
            profiles::PATIENT
        )));
    }
    let extra: Vec<&String> = patient
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| !REGISTER_ELEMENTS.contains(&k.as_str()) && !k.starts_with('_'))
        .collect();
    if !extra.is_empty() {
        return Err(errors::invalid_resource(format!(
            "The Patient to register must not populate {}: only identifier, name, birthDate, gender, address, telecom and the nhsCommunication extension may be sent",
            extra.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    let extensions: Vec<&Value> = patient["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if let Some(other) = extensions
        .iter()
        .find(|e| e["url"].as_str() != Some(NHS_COMMUNICATION))
    {
        return Err(errors::invalid_resource(format!(
            "The Patient to register must not carry the extension {} (only nhsCommunication); the provider sets the registration details",
            other["url"].as_str().unwrap_or("without a url")
        )));
    }
    if extensions.len() > 1 {
        return Err(errors::invalid_resource(
            "Send at most one nhsCommunication extension",
        ));
    }
    check_uses(patient)?;
    let identifiers: Vec<&Value> = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if identifiers
        .iter()
        .any(|i| i["system"].as_str().is_none_or(str::is_empty))
    {
        return Err(reject(
            errors::BAD_REQUEST,
            "Every identifier of the Patient needs a system",
        ));
    }
    let Some(number) = fhir::identifier(patient, nhs_number::SYSTEM) else {
        return Err(reject(
            errors::INVALID_NHS_NUMBER,
            format!(
                "The Patient needs an identifier with system {} holding the NHS number to register",
                nhs_number::SYSTEM
            ),
        ));
    };
    let number = nhs_number(number)?;
    let Some(name) = patients::official_name(patient) else {
        return Err(reject(
            errors::BAD_REQUEST,
            "The Patient needs exactly one name with use `official`, with family and given, for the PDS trace",
        ));
    };
    if name["family"].as_str().is_none_or(str::is_empty)
        || name["given"][0].as_str().is_none_or(str::is_empty)
    {
        return Err(reject(
            errors::BAD_REQUEST,
            "The official name needs a family and a given name for the PDS trace",
        ));
    }
    if patients::birth_date(patient).is_none() {
        return Err(reject(
            errors::BAD_REQUEST,
            "The Patient needs a birthDate (YYYY-MM-DD) for the PDS trace",
        ));
    }
    Ok((patient, number))
}

/// At most one home and one temporary address (no other use), and at most one telecom of
/// each use; the suite answers a repeated telecom use with BAD_REQUEST and an address with
/// INVALID_RESOURCE.
fn check_uses(patient: &Value) -> Result<(), Rejection> {
    let addresses: Vec<&str> = patient["address"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["use"].as_str().unwrap_or("home"))
        .collect();
    if let Some(other) = addresses.iter().find(|u| !matches!(**u, "home" | "temp")) {
        return Err(errors::invalid_resource(format!(
            "An address with use `{other}` cannot be registered; send a home address and, if known, a temp one"
        )));
    }
    for kind in ["home", "temp"] {
        if addresses.iter().filter(|u| **u == kind).count() > 1 {
            return Err(errors::invalid_resource(format!(
                "Send at most one address with use `{kind}`"
            )));
        }
    }
    let mut seen = Vec::new();
    for telecom in patient["telecom"].as_array().into_iter().flatten() {
        let kind = (
            telecom["system"].as_str().unwrap_or(""),
            if telecom["system"].as_str() == Some("email") {
                ""
            } else {
                telecom["use"].as_str().unwrap_or("")
            },
        );
        if seen.contains(&kind) {
            return Err(reject(
                errors::BAD_REQUEST,
                format!(
                    "Send at most one telecom with system `{}`{}",
                    kind.0,
                    if kind.1.is_empty() {
                        String::new()
                    } else {
                        format!(" and use `{}`", kind.1)
                    }
                ),
            ));
        }
        seen.push(kind);
    }
    Ok(())
}

/// The PDS checks of Register a patient, each failure with the code of the 1.2.7 error table
/// (a sensitive patient answers as not found, as the requested text has it).
fn pds_check(site: &Site, number: &NhsNumber, patient: &Value) -> Result<(), Rejection> {
    let Some(who) = patients::demographics(patient) else {
        return Err(reject(
            errors::BAD_REQUEST,
            "The Patient needs an official name and a birthDate",
        ));
    };
    let trace = site.fixtures.pds.trace(number, who);
    let Some(problem) = trace.problem(number.as_str()) else {
        return Ok(());
    };
    let id = match trace {
        Trace::Sensitive => return Err(patient_not_found(site, &format!("NHS number {number}"))),
        Trace::Invalid | Trace::Superseded(_) => errors::INVALID_NHS_NUMBER,
        _ => errors::INVALID_PATIENT_DEMOGRAPHICS,
    };
    Err(reject(
        id,
        format!("The patient cannot be registered: {problem}"),
    ))
}

/// Register a patient: `POST /Patient/$gpc.registerpatient` with a Parameters body. After the
/// PDS checks: a record the practice has is verified if it never was, then refused when it
/// is active or deceased and re-activated as temporary when it lapsed; otherwise a new
/// temporary record is created.
pub fn register_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let body = input.json(errors::BAD_REQUEST)?;
    let (patient, number) = patient_to_register(site, &body)?;
    pds_check(site, &number, patient)?;
    let now = site.now_text();
    let registered = site.practice(|practice| {
        if let Some(existing) = practice.patients.iter_mut().find(|p| p.nhs_number == number) {
            // The number in the request has just verified against PDS.
            existing.mark_verified(&now);
            if existing.deceased {
                return Err(reject(
                    errors::INVALID_PATIENT_DEMOGRAPHICS,
                    format!("The patient with NHS number {number} is recorded as deceased at practice {}", site.ods_code),
                ));
            }
            if existing.active {
                return Err(reject(
                    errors::DUPLICATE_REJECTED,
                    format!("NHS number {number} is already registered at practice {} as Patient/{}, an active patient; find them with Find a patient", site.ods_code, existing.id),
                ));
            }
            existing.reactivate(&now);
            return Ok(existing.resource.clone());
        }
        let id = practice.next_patient_id();
        let mut resource = patient.clone();
        resource["id"] = Value::String(id.clone());
        resource["meta"] = json!({ "profile": [profiles::PATIENT] });
        fhir::set_version(&mut resource, 1, Some(&now));
        resource["active"] = Value::Bool(true);
        if resource.get("gender").is_none() {
            // Supplemented from the PDS record where the consumer left it out.
            if let Some(record) = site.fixtures.pds.get(&number) {
                resource["gender"] = Value::String(record.gender.clone());
            }
        }
        set_verified(&mut resource);
        resource["generalPractitioner"] = json!([fhir::reference("Practitioner", "1")]);
        resource["managingOrganization"] = fhir::reference("Organization", site.fixtures.organisation_id());
        let mut extensions = resource["extension"].as_array().cloned().unwrap_or_default();
        extensions.push(patients::temporary_registration(&now));
        resource["extension"] = Value::Array(extensions);
        let record = PatientRecord::from_resource(resource.clone(), false).map_err(|(field, e)| {
            reject(errors::INTERNAL_SERVER_ERROR, format!("The registered patient's {field} is not valid: {e}"))
        })?;
        practice.patients.push(record);
        Ok(resource)
    })?;
    Ok(Reply::ok(searchset(
        site.base,
        vec![registered],
        Vec::new(),
    )))
}

/// Marks the NHS number identifier of a new record as traced and verified.
fn set_verified(patient: &mut Value) {
    if let Some(identifier) = patient["identifier"].as_array_mut().and_then(|all| {
        all.iter_mut()
            .find(|i| i["system"].as_str() == Some(nhs_number::SYSTEM))
    }) {
        identifier["extension"] = json!([{
            "url": profiles::NHS_NUMBER_VERIFICATION,
            "valueCodeableConcept": { "coding": [{
                "system": profiles::NHS_NUMBER_VERIFICATION_SYSTEM,
                "code": "01",
                "display": "Number present and verified"
            }] }
        }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_addresses_and_telecoms_are_refused_with_the_suites_codes() {
        let two_homes = json!({"address": [{"use": "home"}, {"use": "home"}]});
        assert_eq!(
            check_uses(&two_homes).unwrap_err().error,
            errors::INVALID_RESOURCE
        );
        let work = json!({"address": [{"use": "work"}]});
        assert_eq!(
            check_uses(&work).unwrap_err().error,
            errors::INVALID_RESOURCE
        );
        let home_temp = json!({"address": [{"use": "home"}, {"use": "temp"}],
            "telecom": [{"system": "phone", "use": "home"}, {"system": "phone", "use": "mobile"}, {"system": "email"}]});
        check_uses(&home_temp).unwrap();
        let emails = json!({"telecom": [{"system": "email", "use": "home"}, {"system": "email", "use": "work"}]});
        assert_eq!(check_uses(&emails).unwrap_err().error, errors::BAD_REQUEST);
    }
}
