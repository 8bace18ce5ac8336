//! Foundations: find and read patients, practitioners, organisations and locations, and
//! register a patient (GP Connect 1.2.7 use-case pages under pages/foundations/).

use serde_json::{json, Value};

use crate::config::rejection::Rejection;
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::PatientRecord;
use crate::demo::nhs_number::{self, NhsNumber};
use crate::demo::request::Input;
use crate::demo::respond::{searchset, Reply};
use crate::demo::{dates, fhir, profiles, Site};
use crate::wire::systems;

/// The value of an `identifier=system|value` search whose system must be `system`.
fn identifier_search<'a>(input: &'a Input, system: &str) -> Result<&'a str, Rejection> {
    let raw = input.query.required("identifier")?;
    let Some((given, value)) = raw.split_once('|') else {
        return Err(reject(
            errors::INVALID_PARAMETER,
            format!("identifier `{raw}` must be `system|value`, e.g. `{system}|...`"),
        ));
    };
    if given != system {
        return Err(reject(
            errors::INVALID_IDENTIFIER_SYSTEM,
            format!("identifier system `{given}` is not supported here; use `{system}`"),
        ));
    }
    if value.is_empty() {
        return Err(reject(
            errors::INVALID_IDENTIFIER_VALUE,
            "identifier has no value after `|`",
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
/// finding one is not an error: the Bundle is empty (also for a sensitive patient).
pub fn find_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let wanted = nhs_number(identifier_search(input, nhs_number::SYSTEM)?)?;
    let found: Vec<Value> = site.practice(|practice| {
        practice
            .visible_patients(site.fixtures)
            .filter(|p| p.nhs_number == wanted)
            .map(|p| p.resource.clone())
            .collect()
    });
    Ok(Reply::ok(searchset(site.base, found)))
}

/// Read a patient: `GET /Patient/{id}`.
pub fn read_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    site.practice(|practice| {
        practice
            .visible_patients(site.fixtures)
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
    Ok(Reply::ok(searchset(site.base, found)))
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
    Ok(Reply::ok(searchset(site.base, found)))
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

/// The Patient of the single `registerPatient` parameter, checked as the use case requires.
fn patient_to_register(body: &Value) -> Result<(&Value, NhsNumber), Rejection> {
    if fhir::resource_type(body) != "Parameters" {
        return Err(errors::invalid_resource(
            "The body must be a Parameters resource holding one registerPatient parameter",
        ));
    }
    let mut named = body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"].as_str() == Some("registerPatient"));
    let (Some(parameter), None) = (named.next(), named.next()) else {
        return Err(errors::invalid_resource(
            "Parameters must hold exactly one registerPatient parameter",
        ));
    };
    let patient = &parameter["resource"];
    if fhir::resource_type(patient) != "Patient" {
        return Err(errors::invalid_resource(
            "The registerPatient parameter must hold a Patient resource",
        ));
    }
    if !fhir::has_profile(patient, profiles::PATIENT) {
        return Err(errors::invalid_resource(format!(
            "The Patient's meta.profile must list {} (mandatory since GP Connect 1.2.7, #697)",
            profiles::PATIENT
        )));
    }
    if fhir::extension(patient, profiles::REGISTRATION_DETAILS).is_some() {
        return Err(errors::invalid_resource(
            "Consumers must not populate the registrationDetails extension; the provider sets it",
        ));
    }
    let Some(number) = fhir::identifier(patient, nhs_number::SYSTEM) else {
        return Err(errors::invalid_resource(format!(
            "The Patient needs an identifier with system {}",
            nhs_number::SYSTEM
        )));
    };
    let number = nhs_number(number)?;
    if patient["birthDate"]
        .as_str()
        .and_then(dates::parse_date)
        .is_none()
    {
        return Err(errors::invalid_resource(
            "The Patient needs a birthDate (YYYY-MM-DD) so the provider can trace it on PDS",
        ));
    }
    Ok((patient, number))
}

/// Register a patient: `POST /Patient/$gpc.registerpatient` with a Parameters body. Creates
/// a temporary registration; an NHS number the practice already has is a duplicate.
pub fn register_patient(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let body = input.json(errors::BAD_REQUEST)?;
    let (patient, number) = patient_to_register(&body)?;
    let now = dates::format(site.now);
    let registered = site.practice(|practice| {
        if let Some(existing) = practice.patients(site.fixtures).find(|p| p.nhs_number == number) {
            // The demo's PDS: a sensitive patient cannot be registered through GP Connect.
            return Err(if existing.sensitive {
                patient_not_found(site, &format!("NHS number {number}"))
            } else {
                reject(
                    errors::DUPLICATE_REJECTED,
                    format!("NHS number {number} is already registered at practice {} as Patient/{}", site.ods_code, existing.id),
                )
            });
        }
        let id = practice.next_patient_id(site.fixtures);
        let mut resource = patient.clone();
        resource["id"] = Value::String(id.clone());
        resource["meta"] = json!({ "profile": [profiles::PATIENT] });
        fhir::set_version(&mut resource, 1, Some(&now));
        resource["active"] = Value::Bool(true);
        resource["managingOrganization"] = fhir::reference("Organization", site.fixtures.organisation_id());
        let details = json!({
            "url": profiles::REGISTRATION_DETAILS,
            "extension": [
                { "url": "registrationPeriod", "valuePeriod": { "start": now } },
                { "url": "registrationType", "valueCodeableConcept": { "coding": [
                    { "system": profiles::REGISTRATION_TYPE_SYSTEM, "code": "T", "display": "Temporary" }
                ] } }
            ]
        });
        let mut extensions = resource["extension"].as_array().cloned().unwrap_or_default();
        extensions.push(details);
        resource["extension"] = Value::Array(extensions);
        practice.registered.push(PatientRecord {
            id,
            nhs_number: number.clone(),
            sensitive: false,
            resource: resource.clone(),
        });
        Ok(resource)
    })?;
    Ok(Reply::ok(searchset(site.base, vec![registered])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(patient: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": [{"name": "registerPatient", "resource": patient}]})
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "meta": {"profile": [profiles::PATIENT]},
            "identifier": [{"system": nhs_number::SYSTEM, "value": "9690937308"}],
            "birthDate": "1980-01-02"
        })
    }

    #[test]
    fn a_valid_registration_request_is_accepted() {
        let body = parameters(patient());
        let (_, number) = patient_to_register(&body).unwrap();
        assert_eq!(number.as_str(), "9690937308");
    }

    #[test]
    fn missing_meta_profile_is_invalid_resource() {
        let mut p = patient();
        p["meta"] = json!({});
        let refused = patient_to_register(&parameters(p)).unwrap_err();
        assert_eq!(refused.error, errors::INVALID_RESOURCE);
        assert!(refused.to_string().contains("#697"), "{refused}");
    }

    #[test]
    fn other_faults_name_what_to_fix() {
        let mut bad_number = patient();
        bad_number["identifier"][0]["value"] = json!("9690937309");
        assert_eq!(
            patient_to_register(&parameters(bad_number))
                .unwrap_err()
                .error,
            errors::INVALID_NHS_NUMBER
        );
        let mut no_birth = patient();
        no_birth["birthDate"] = json!("22/02/1982");
        assert!(patient_to_register(&parameters(no_birth))
            .unwrap_err()
            .to_string()
            .contains("birthDate"));
        let two = json!({"resourceType": "Parameters", "parameter": [
            {"name": "registerPatient", "resource": patient()}, {"name": "registerPatient", "resource": patient()}]});
        assert!(patient_to_register(&two)
            .unwrap_err()
            .to_string()
            .contains("exactly one"));
        for odd in [
            json!(null),
            json!([]),
            json!({"resourceType": "Patient"}),
            json!({"resourceType": "Parameters", "parameter": "x"}),
        ] {
            assert_eq!(
                patient_to_register(&odd).unwrap_err().error,
                errors::INVALID_RESOURCE
            );
        }
    }
}
