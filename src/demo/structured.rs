//! Access Record Structured: `POST /Patient/$gpc.getstructuredrecord` with a Parameters body
//! answers a `GPConnect-StructuredRecord-Bundle-1` holding the patient, their practice and
//! usual GP, and their allergies and medications as asked (GP Connect 1.2.7 has only those
//! two clinical areas).

use serde_json::{json, Value};
use time::Date;

use crate::config::rejection::Rejection;
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::{ListKind, MedicationEntry, StructuredRecord};
use crate::demo::foundations::nhs_number;
use crate::demo::nhs_number::SYSTEM as NHS_NUMBER_SYSTEM;
use crate::demo::request::{at_most_one, Input};
use crate::demo::respond::Reply;
use crate::demo::{dates, fhir, foundations, profiles, Site};

/// The parameters of the 1.2.7 operation definition.
const PARAMETERS: [&str; 3] = ["patientNHSNumber", "includeAllergies", "includeMedication"];

/// What the consumer asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    nhs_number: String,
    /// `Some(include resolved)` when allergies are asked for.
    allergies: Option<bool>,
    /// `Some(include prescription issues, from date)` when medications are asked for.
    medication: Option<(bool, Option<Date>)>,
}

/// The single parameter named `name`, if given.
fn single<'a>(parameters: &'a [Value], name: &str) -> Result<Option<&'a Value>, Rejection> {
    at_most_one(
        parameters
            .iter()
            .filter(|p| p["name"].as_str() == Some(name)),
        name,
    )
}

/// The boolean part `part` that parameter `parent` must carry.
fn boolean_part(parent: &Value, name: &str, part: &str) -> Result<bool, Rejection> {
    single(parent["part"].as_array().map_or(&[], Vec::as_slice), part)?
        .and_then(|p| p["valueBoolean"].as_bool())
        .ok_or_else(|| {
            errors::invalid_parameter(format!(
                "`{name}` needs its `{part}` part with a valueBoolean"
            ))
        })
}

/// Reads the Parameters body as the 1.2.7 operation definition and error table require.
fn parse(body: &Value, today: Date) -> Result<Request, Rejection> {
    if fhir::resource_type(body) != "Parameters" {
        return Err(reject(
            errors::INVALID_RESOURCE,
            "The body must be a Parameters resource (GPConnect-GetStructuredRecord-Operation-1)",
        ));
    }
    let parameters = body["parameter"].as_array().map_or(&[][..], Vec::as_slice);
    if let Some(unknown) = parameters
        .iter()
        .filter_map(|p| p["name"].as_str())
        .find(|n| !PARAMETERS.contains(n))
    {
        return Err(errors::invalid_parameter(format!(
            "`{unknown}` is not a parameter of GP Connect 1.2.7 Access Record Structured; use {}",
            PARAMETERS.join(", ")
        )));
    }
    let identifier = single(parameters, "patientNHSNumber")?
        .map(|p| &p["valueIdentifier"])
        .ok_or_else(|| errors::invalid_parameter("The `patientNHSNumber` parameter is required"))?;
    if identifier["system"].as_str() != Some(NHS_NUMBER_SYSTEM) {
        return Err(reject(
            errors::INVALID_IDENTIFIER_SYSTEM,
            format!("patientNHSNumber's system must be {NHS_NUMBER_SYSTEM}"),
        ));
    }
    let number = nhs_number(identifier["value"].as_str().unwrap_or(""))?;

    let allergies = single(parameters, "includeAllergies")?
        .map(|p| boolean_part(p, "includeAllergies", "includeResolvedAllergies"))
        .transpose()?;
    let medication = match single(parameters, "includeMedication")? {
        None => None,
        Some(p) => {
            let issues = boolean_part(p, "includeMedication", "includePrescriptionIssues")?;
            let parts = p["part"].as_array().map_or(&[][..], Vec::as_slice);
            let from = match single(parts, "medicationSearchFromDate")? {
                None => None,
                Some(part) => {
                    let text = part["valueDate"].as_str().unwrap_or("");
                    let date = dates::parse_date(text).ok_or_else(|| {
                        errors::invalid_parameter(format!("medicationSearchFromDate `{text}` must be a whole date, YYYY-MM-DD, with no time or offset"))
                    })?;
                    if date > today {
                        return Err(errors::invalid_parameter(format!(
                            "medicationSearchFromDate {text} is after today"
                        )));
                    }
                    Some(date)
                }
            };
            Some((issues, from))
        }
    };
    Ok(Request {
        nhs_number: number.as_str().to_owned(),
        allergies,
        medication,
    })
}

/// A `List` of one kind for the patient, empty with a reason when nothing is recorded.
fn list(site: &Site, kind: &ListKind, patient: &str, items: &[&Value]) -> Value {
    let mut list = json!({
        "resourceType": "List",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": { "profile": [profiles::LIST] },
        "status": "current",
        "mode": "snapshot",
        "title": kind.title,
        "code": kind.code,
        "subject": fhir::reference("Patient", patient),
        "date": dates::format(site.now),
    });
    if items.is_empty() {
        list["emptyReason"] = site.fixtures.lists.empty_reason.clone();
        list["note"] = json!([{ "text": "Information not available" }]);
    } else {
        list["entry"] = items
            .iter()
            .map(|r| json!({ "item": fhir::reference(fhir::resource_type(r), fhir::id(r)) }))
            .collect();
    }
    list
}

/// Whether a medication was active on or after `from`: one without an end date is ongoing.
fn active_since(entry: &MedicationEntry, from: Option<Date>) -> bool {
    let end = entry.statement["effectivePeriod"]["end"]
        .as_str()
        .and_then(|e| dates::parse_date(e.get(..10).unwrap_or(e)));
    match (from, end) {
        (Some(from), Some(end)) => end >= from,
        _ => true,
    }
}

/// The clinical resources the request asks for, after the patient and practice resources.
fn clinical(
    site: &Site,
    request: &Request,
    patient: &str,
    record: Option<&StructuredRecord>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let lists = &site.fixtures.lists;
    let allergies = record.map_or(&[][..], |r| r.allergies.as_slice());
    let medications = record.map_or(&[][..], |r| r.medications.as_slice());
    if let Some(include_resolved) = request.allergies {
        let (ended, active): (Vec<&Value>, Vec<&Value>) = allergies
            .iter()
            .partition(|a| a["clinicalStatus"].as_str() == Some("resolved"));
        out.push(list(site, &lists.allergies, patient, &active));
        out.extend(active.into_iter().cloned());
        if include_resolved {
            out.push(list(site, &lists.ended_allergies, patient, &ended));
            out.extend(ended.into_iter().cloned());
        }
    }
    if let Some((issues, from)) = request.medication {
        let chosen: Vec<&MedicationEntry> = medications
            .iter()
            .filter(|m| active_since(m, from))
            .collect();
        let statements: Vec<&Value> = chosen.iter().map(|m| &m.statement).collect();
        out.push(list(site, &lists.medications, patient, &statements));
        for m in chosen {
            out.push(m.medication.clone());
            out.push(m.statement.clone());
            out.extend(
                m.requests
                    .iter()
                    .filter(|r| issues || r["intent"].as_str() != Some("order"))
                    .cloned(),
            );
        }
    }
    out
}

/// Retrieve a patient's structured record.
pub fn get_record(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let body = input.json(errors::INVALID_RESOURCE)?;
    let request = parse(&body, site.now.date())?;
    let patient = site.practice(|practice| {
        practice
            .visible_patients(site.fixtures)
            .find(|p| p.nhs_number.as_str() == request.nhs_number)
            .map(|p| p.resource.clone())
    });
    let Some(patient) = patient else {
        return Err(foundations::patient_not_found(
            site,
            &format!("NHS number {}", request.nhs_number),
        ));
    };
    let patient_id = fhir::id(&patient).to_owned();
    let mut resources = vec![patient.clone(), site.organisation()];
    let gps: Vec<&str> = patient["generalPractitioner"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| fhir::reference_id(r, "Practitioner"))
        .collect();
    resources.extend(
        gps.iter()
            .filter_map(|id| site.fixtures.practitioner(id))
            .cloned(),
    );
    let role = &site.fixtures.practitioner_role;
    if fhir::reference_id(&role["practitioner"], "Practitioner").is_some_and(|id| gps.contains(&id))
    {
        resources.push(role.clone());
    }
    resources.extend(clinical(
        site,
        &request,
        &patient_id,
        site.fixtures.record(&patient_id),
    ));
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|r| json!({ "resource": r }))
        .collect();
    Ok(Reply::ok(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": { "profile": [profiles::STRUCTURED_BUNDLE] },
        "type": "collection",
        "entry": entry,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 03 - 01);

    fn body(parameters: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": parameters})
    }

    fn nhs(value: &str) -> Value {
        json!({"name": "patientNHSNumber", "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": value}})
    }

    #[test]
    fn a_full_request_is_understood() {
        let request = parse(&body(json!([
            nhs("9476719931"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]},
            {"name": "includeMedication", "part": [
                {"name": "includePrescriptionIssues", "valueBoolean": false},
                {"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]}
        ])), TODAY)
        .unwrap();
        assert_eq!(request.allergies, Some(true));
        assert_eq!(
            request.medication,
            Some((false, Some(date!(2020 - 01 - 01))))
        );
    }

    #[test]
    fn the_error_table_is_followed() {
        let err = |parameters: Value| parse(&body(parameters), TODAY).unwrap_err();
        assert_eq!(err(json!([])).error, errors::INVALID_PARAMETER);
        assert_eq!(
            err(json!([nhs("9476719932")])).error,
            errors::INVALID_NHS_NUMBER
        );
        assert_eq!(
            err(json!([nhs("9476719931"), {"name": "includeAllergies"}])).error,
            errors::INVALID_PARAMETER
        );
        assert_eq!(
            err(json!([nhs("9476719931"), {"name": "includeMedication", "part": []}])).error,
            errors::INVALID_PARAMETER
        );
        for date in ["2020-01", "2020-01-01T00:00:00Z", "2025-01-01"] {
            let refused = err(
                json!([nhs("9476719931"), {"name": "includeMedication", "part": [
                {"name": "includePrescriptionIssues", "valueBoolean": true},
                {"name": "medicationSearchFromDate", "valueDate": date}]}]),
            );
            assert_eq!(refused.error, errors::INVALID_PARAMETER, "{date}");
        }
        assert!(
            err(json!([nhs("9476719931"), {"name": "includeConsultations"}]))
                .to_string()
                .contains("includeConsultations")
        );
        assert_eq!(
            parse(&json!({"resourceType": "Patient"}), TODAY)
                .unwrap_err()
                .error,
            errors::INVALID_RESOURCE
        );
    }
}
