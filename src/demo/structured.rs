//! Access Record Structured: `POST /Patient/$gpc.getstructuredrecord` with a Parameters body
//! answers a `GPConnect-StructuredRecord-Bundle-1` holding the patient, their practice and
//! usual GP, and each clinical area asked for, as the 1.6.0 use-case page has it (the 1.2.7
//! operation, allergies and medications only, is a subset). Each area comes as its primary
//! `List` and the resources it lists; an area with nothing recorded is an empty `List` with
//! an empty reason.

use jiff::civil::Date;
use serde_json::{json, Value};

use crate::config::rejection::Rejection;
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::{entry_date, Group, ListKind, MedicationEntry, StructuredRecord};
use crate::demo::foundations::nhs_number;
use crate::demo::nhs_number::SYSTEM as NHS_NUMBER_SYSTEM;
use crate::demo::request::{at_most_one, Input};
use crate::demo::respond::Reply;
use crate::demo::{dates, fhir, foundations, profiles, Site};

/// The parameters of the 1.6.0 operation definition.
const PARAMETERS: [&str; 10] = [
    "patientNHSNumber",
    "includeAllergies",
    "includeMedication",
    "includeConsultations",
    "includeProblems",
    "includeImmunisations",
    "includeUncategorisedData",
    "includeInvestigations",
    "includeReferrals",
    "includeDiaryEntries",
];

/// An optional date range; either end may be open.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Period {
    start: Option<Date>,
    end: Option<Date>,
}

impl Period {
    fn contains(self, date: Option<Date>) -> bool {
        match date {
            None => self == Period::default(),
            Some(d) => self.start.is_none_or(|s| d >= s) && self.end.is_none_or(|e| d <= e),
        }
    }
}

/// A problem filter: one repetition of `includeProblems`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ProblemFilter {
    status: Option<String>,
    significance: Option<String>,
}

/// What the consumer asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    nhs_number: String,
    /// `Some(include resolved)` when allergies are asked for.
    allergies: Option<bool>,
    /// `Some((include prescription issues, from date))` when medications are asked for.
    medication: Option<(bool, Option<Date>)>,
    /// `Some((period, most recent N))` when consultations are asked for.
    consultations: Option<(Period, Option<usize>)>,
    /// The filters of each `includeProblems` (an empty list: not asked for).
    problems: Vec<ProblemFilter>,
    /// `Some(include not given)` when immunisations are asked for.
    immunisations: Option<bool>,
    uncategorised: Option<Period>,
    investigations: Option<Period>,
    referrals: Option<Period>,
    /// `Some(on or before)` when diary entries are asked for.
    diary: Option<Option<Date>>,
}

/// The single parameter named `name`, if given; a repeated one is INVALID_PARAMETER.
fn single<'a>(parameters: &'a [Value], name: &str) -> Result<Option<&'a Value>, Rejection> {
    at_most_one(
        parameters
            .iter()
            .filter(|p| p["name"].as_str() == Some(name)),
        name,
        errors::INVALID_PARAMETER,
    )
}

fn parts(parameter: &Value) -> &[Value] {
    parameter["part"].as_array().map_or(&[], Vec::as_slice)
}

/// The value of part `part` of `parent` read by `field` (e.g. `valueBoolean`); a part given
/// without that value is INVALID_PARAMETER.
fn part_value<'a>(
    parent: &'a Value,
    name: &str,
    part: &str,
    field: &str,
) -> Result<Option<&'a Value>, Rejection> {
    match single(parts(parent), part)? {
        None => Ok(None),
        Some(p) => p
            .get(field)
            .map(Some)
            .ok_or_else(|| errors::invalid_parameter(format!("`{name}.{part}` needs a {field}"))),
    }
}

fn part_bool(parent: &Value, name: &str, part: &str) -> Result<Option<bool>, Rejection> {
    match part_value(parent, name, part, "valueBoolean")? {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| {
            errors::invalid_parameter(format!(
                "`{name}.{part}` valueBoolean must be true or false"
            ))
        }),
    }
}

/// A whole date of a search part: no partial dates, no time, no offset.
fn whole_date(text: &str, what: &str) -> Result<Date, Rejection> {
    dates::parse_date(text).ok_or_else(|| {
        errors::invalid_parameter(format!(
            "{what} `{text}` must be a whole date, YYYY-MM-DD, with no time or offset"
        ))
    })
}

/// A search period part: whole dates, neither after today, start not after end.
fn period(parent: &Value, name: &str, part: &str, today: Date) -> Result<Period, Rejection> {
    let Some(value) = part_value(parent, name, part, "valuePeriod")? else {
        return Ok(Period::default());
    };
    let what = format!("`{name}.{part}`");
    let end_of = |key: &str| -> Result<Option<Date>, Rejection> {
        match value[key].as_str() {
            None => Ok(None),
            Some(text) => {
                let date = whole_date(text, &format!("{what}.{key}"))?;
                if date > today {
                    return Err(errors::invalid_parameter(format!(
                        "{what}.{key} {text} is after today"
                    )));
                }
                Ok(Some(date))
            }
        }
    };
    let found = Period {
        start: end_of("start")?,
        end: end_of("end")?,
    };
    if let (Some(s), Some(e)) = (found.start, found.end) {
        if s > e {
            return Err(errors::invalid_parameter(format!(
                "{what}.start is after its end"
            )));
        }
    }
    Ok(found)
}

/// Reads the Parameters body as the 1.6.0 operation definition and error table require.
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
            "`{unknown}` is not a parameter of Access Record Structured; use {}",
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
    let mut request = Request {
        nhs_number: number.as_str().to_owned(),
        ..Request::default()
    };

    if let Some(p) = single(parameters, "includeAllergies")? {
        request.allergies = Some(part_bool(p, "includeAllergies", "includeResolvedAllergies")?.ok_or_else(|| {
            errors::invalid_parameter("`includeAllergies` needs its `includeResolvedAllergies` part with a valueBoolean")
        })?);
    }
    let mut restricted: Vec<&str> = Vec::new();
    if let Some(p) = single(parameters, "includeMedication")? {
        // 1.6.0: includePrescriptionIssues is optional, true when absent.
        let issues =
            part_bool(p, "includeMedication", "includePrescriptionIssues")?.unwrap_or(true);
        let from = match part_value(
            p,
            "includeMedication",
            "medicationSearchFromDate",
            "valueDate",
        )? {
            None => None,
            Some(v) => {
                let text = v.as_str().unwrap_or("");
                let date = whole_date(text, "medicationSearchFromDate")?;
                if date > today {
                    return Err(errors::invalid_parameter(format!(
                        "medicationSearchFromDate {text} is after today"
                    )));
                }
                restricted.push("includeMedication.medicationSearchFromDate");
                Some(date)
            }
        };
        request.medication = Some((issues, from));
    }
    if let Some(p) = single(parameters, "includeConsultations")? {
        let period = period(p, "includeConsultations", "consultationSearchPeriod", today)?;
        let recent = match part_value(
            p,
            "includeConsultations",
            "includeNumberOfMostRecent",
            "valuePositiveInt",
        )? {
            None => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                errors::invalid_parameter("`includeNumberOfMostRecent` must be a positive integer")
            })? as usize),
        };
        if recent.is_some() && period != Period::default() {
            return Err(errors::invalid_resource(
                "`consultationSearchPeriod` and `includeNumberOfMostRecent` cannot both be sent",
            ));
        }
        request.consultations = Some((period, recent));
    }
    for p in parameters
        .iter()
        .filter(|p| p["name"].as_str() == Some("includeProblems"))
    {
        let code = |part: &str, allowed: [&str; 2]| -> Result<Option<String>, Rejection> {
            match part_value(p, "includeProblems", part, "valueCode")? {
                None => Ok(None),
                Some(v) => {
                    let code = v.as_str().unwrap_or("");
                    if !allowed.contains(&code) {
                        return Err(errors::invalid_parameter(format!(
                            "`includeProblems.{part}` `{code}` must be {} or {}",
                            allowed[0], allowed[1]
                        )));
                    }
                    Ok(Some(code.to_owned()))
                }
            }
        };
        let filter = ProblemFilter {
            status: code("filterStatus", ["active", "inactive"])?,
            significance: code("filterSignificance", ["major", "minor"])?,
        };
        if filter.status.is_some() {
            restricted.push("includeProblems.filterStatus");
        }
        if filter.significance.is_some() {
            restricted.push("includeProblems.filterSignificance");
        }
        request.problems.push(filter);
    }
    if let Some(p) = single(parameters, "includeImmunisations")? {
        let not_given = part_bool(p, "includeImmunisations", "includeNotGiven")?;
        let status = part_bool(p, "includeImmunisations", "includeStatus")?;
        if not_given.is_some() {
            restricted.push("includeImmunisations.includeNotGiven");
        }
        if status.is_some() {
            restricted.push("includeImmunisations.includeStatus");
        }
        request.immunisations = Some(not_given.unwrap_or(false));
    }
    for (name, part, slot, restriction) in [
        (
            "includeUncategorisedData",
            "uncategorisedDataSearchPeriod",
            &mut request.uncategorised,
            true,
        ),
        (
            "includeInvestigations",
            "investigationSearchPeriod",
            &mut request.investigations,
            false,
        ),
        (
            "includeReferrals",
            "referralSearchPeriod",
            &mut request.referrals,
            true,
        ),
    ] {
        if let Some(p) = single(parameters, name)? {
            let found = period(p, name, part, today)?;
            if restriction && found != Period::default() {
                restricted.push(if name == "includeReferrals" {
                    "includeReferrals.referralSearchPeriod"
                } else {
                    "includeUncategorisedData.uncategorisedDataSearchPeriod"
                });
            }
            *slot = Some(found);
        }
    }
    if let Some(p) = single(parameters, "includeDiaryEntries")? {
        let date = match part_value(
            p,
            "includeDiaryEntries",
            "diaryEntriesSearchDate",
            "valueDate",
        )? {
            None => None,
            Some(v) => {
                let text = v.as_str().unwrap_or("");
                let date = whole_date(text, "diaryEntriesSearchDate")?;
                if date < today {
                    return Err(errors::invalid_parameter(format!(
                        "diaryEntriesSearchDate {text} is before today"
                    )));
                }
                restricted.push("includeDiaryEntries.diaryEntriesSearchDate");
                Some(date)
            }
        };
        request.diary = Some(date);
    }
    // "Not permitted parameter combinations" (1.6.0): area filters beside consultations or
    // problems could hide what those link to.
    let problem_filters = [
        "includeProblems.filterStatus",
        "includeProblems.filterSignificance",
    ];
    let with_problems: Vec<&&str> = restricted
        .iter()
        .filter(|r| !problem_filters.contains(r))
        .collect();
    if request.consultations.is_some() && !restricted.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "{} cannot be sent with includeConsultations",
            restricted.join(", ")
        )));
    }
    if !request.problems.is_empty() && !with_problems.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "{} cannot be sent with includeProblems",
            with_problems
                .iter()
                .map(|r| **r)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(request)
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
        "date": site.now_text(),
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

/// Whether a medication was active on or after `from`: one without an end date is ongoing
/// (1.6.0 treats a medication not marked acute as repeat).
fn active_since(entry: &MedicationEntry, from: Option<Date>) -> bool {
    let end = entry.statement["effectivePeriod"]["end"]
        .as_str()
        .and_then(|e| dates::parse_date(e.get(..10).unwrap_or(e)));
    match (from, end) {
        (Some(from), Some(end)) => end >= from,
        _ => true,
    }
}

fn problem_matches(problem: &Value, filters: &[ProblemFilter]) -> bool {
    let status = problem["clinicalStatus"].as_str();
    let significance = fhir::extension(problem, profiles::PROBLEM_SIGNIFICANCE)
        .and_then(|e| e["valueCode"].as_str());
    filters.iter().any(|f| {
        f.status.as_deref().is_none_or(|s| Some(s) == status)
            && f.significance
                .as_deref()
                .is_none_or(|s| Some(s) == significance)
    })
}

/// Adds an area's primary list and the resources it lists (with the resources that come
/// with each) to `out`.
fn area<'a>(
    site: &Site,
    out: &mut Vec<Value>,
    kind: &ListKind,
    patient: &str,
    groups: impl IntoIterator<Item = (&'a Value, &'a [Value])>,
) {
    let groups: Vec<(&Value, &[Value])> = groups.into_iter().collect();
    let listed: Vec<&Value> = groups.iter().map(|(r, _)| *r).collect();
    out.push(list(site, kind, patient, &listed));
    for (resource, related) in groups {
        out.push(resource.clone());
        out.extend(related.iter().cloned());
    }
}

fn alone(resources: &[Value]) -> impl Iterator<Item = (&Value, &[Value])> {
    resources.iter().map(|r| (r, &[][..]))
}

fn grouped(groups: &[Group]) -> impl Iterator<Item = (&Value, &[Value])> {
    groups.iter().map(|g| (&g.resource, g.related.as_slice()))
}

/// The clinical resources the request asks for, after the patient and practice resources.
fn clinical(
    site: &Site,
    request: &Request,
    patient: &str,
    record: &StructuredRecord,
) -> Vec<Value> {
    let mut out = Vec::new();
    let lists = &site.fixtures.lists;
    if let Some(include_resolved) = request.allergies {
        let (ended, active): (Vec<&Value>, Vec<&Value>) = record
            .allergies
            .iter()
            .partition(|a| a["clinicalStatus"].as_str() == Some("resolved"));
        area(
            site,
            &mut out,
            &lists.allergies,
            patient,
            active.into_iter().map(|r| (r, &[][..])),
        );
        if include_resolved {
            area(
                site,
                &mut out,
                &lists.ended_allergies,
                patient,
                ended.into_iter().map(|r| (r, &[][..])),
            );
        }
    }
    if let Some((issues, from)) = request.medication {
        let chosen: Vec<&MedicationEntry> = record
            .medications
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
    if let Some((period, recent)) = request.consultations {
        let mut chosen: Vec<&Group> = record
            .consultations
            .iter()
            .filter(|g| period.contains(entry_date(&g.resource)))
            .collect();
        chosen.sort_by_key(|g| {
            std::cmp::Reverse(
                g.resource["period"]["start"]
                    .as_str()
                    .and_then(dates::parse_instant),
            )
        });
        if let Some(n) = recent {
            chosen.truncate(n);
        }
        area(
            site,
            &mut out,
            &lists.consultations,
            patient,
            chosen
                .into_iter()
                .map(|g| (&g.resource, g.related.as_slice())),
        );
    }
    if !request.problems.is_empty() {
        let chosen = record
            .problems
            .iter()
            .filter(|p| problem_matches(p, &request.problems));
        area(
            site,
            &mut out,
            &lists.problems,
            patient,
            chosen.map(|r| (r, &[][..])),
        );
    }
    if let Some(not_given) = request.immunisations {
        let chosen = record
            .immunisations
            .iter()
            .filter(|i| not_given || i["notGiven"].as_bool() != Some(true));
        area(
            site,
            &mut out,
            &lists.immunisations,
            patient,
            chosen.map(|r| (r, &[][..])),
        );
    }
    if let Some(period) = request.uncategorised {
        let chosen = alone(&record.uncategorised).filter(|(r, _)| period.contains(entry_date(r)));
        area(site, &mut out, &lists.uncategorised, patient, chosen);
    }
    if let Some(period) = request.investigations {
        let chosen =
            grouped(&record.investigations).filter(|(r, _)| period.contains(entry_date(r)));
        area(site, &mut out, &lists.investigations, patient, chosen);
    }
    if let Some(period) = request.referrals {
        let chosen = alone(&record.referrals).filter(|(r, _)| period.contains(entry_date(r)));
        area(site, &mut out, &lists.referrals, patient, chosen);
    }
    if request.diary.is_some() {
        // No demo patient has diary entries recorded: the list says so.
        area(site, &mut out, &lists.diary, patient, std::iter::empty());
    }
    out
}

/// Retrieve a patient's structured record.
pub fn get_record(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let body = input.json(errors::INVALID_RESOURCE)?;
    if fhir::resource_type(&body) == "Parameters" {
        site.check_elements(&body)?;
    }
    let request = parse(&body, dates::uk_date(site.now))?;
    // 1.6.0 error table: unknown, sensitive, inactive, deceased or unverified patients are
    // all PATIENT_NOT_FOUND.
    let patient = site.practice(|practice| {
        practice
            .shareable_patient(|p| p.nhs_number.as_str() == request.nhs_number)
            .map(|p| p.resource.clone())
    });
    let Some(patient) = patient else {
        return Err(foundations::patient_not_found(
            site,
            &format!(
                "NHS number {} (an active, PDS-verified patient)",
                request.nhs_number
            ),
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
    let none = StructuredRecord::default();
    let record = site.fixtures.record(&patient_id).unwrap_or(&none);
    resources.extend(clinical(site, &request, &patient_id, record));
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
    use jiff::civil::date;

    const TODAY: Date = date(2024, 3, 1);

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
                {"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]},
            {"name": "includeImmunisations"},
            {"name": "includeInvestigations", "part": [{"name": "investigationSearchPeriod", "valuePeriod": {"start": "2020-01-01"}}]},
            {"name": "includeReferrals"}
        ])), TODAY)
        .unwrap();
        assert_eq!(request.allergies, Some(true));
        assert_eq!(request.medication, Some((false, Some(date(2020, 1, 1)))));
        assert_eq!(request.immunisations, Some(false));
        assert_eq!(
            request.investigations,
            Some(Period {
                start: Some(date(2020, 1, 1)),
                end: None
            })
        );
        assert_eq!(request.referrals, Some(Period::default()));
        let issues = parse(
            &body(json!([nhs("9476719931"), {"name": "includeMedication"}])),
            TODAY,
        )
        .unwrap();
        assert_eq!(issues.medication, Some((true, None)));
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
        for date in ["2020-01", "2020-01-01T00:00:00Z", "2025-01-01"] {
            let refused = err(
                json!([nhs("9476719931"), {"name": "includeMedication", "part": [
                {"name": "medicationSearchFromDate", "valueDate": date}]}]),
            );
            assert_eq!(refused.error, errors::INVALID_PARAMETER, "{date}");
        }
        let backwards = err(
            json!([nhs("9476719931"), {"name": "includeConsultations", "part": [
            {"name": "consultationSearchPeriod", "valuePeriod": {"start": "2023-01-01", "end": "2022-01-01"}}]}]),
        );
        assert!(
            backwards.to_string().contains("after its end"),
            "{backwards}"
        );
        let both = err(
            json!([nhs("9476719931"), {"name": "includeConsultations", "part": [
            {"name": "consultationSearchPeriod", "valuePeriod": {"start": "2022-01-01"}},
            {"name": "includeNumberOfMostRecent", "valuePositiveInt": 3}]}]),
        );
        assert_eq!(both.error, errors::INVALID_RESOURCE);
        let status = err(
            json!([nhs("9476719931"), {"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "resolved"}]}]),
        );
        assert!(
            status.to_string().contains("active or inactive"),
            "{status}"
        );
        let combination = err(json!([nhs("9476719931"), {"name": "includeConsultations"},
            {"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]}]));
        assert!(
            combination
                .to_string()
                .contains("cannot be sent with includeConsultations"),
            "{combination}"
        );
        assert!(err(json!([nhs("9476719931"), {"name": "includeWidgets"}]))
            .to_string()
            .contains("includeWidgets"));
        assert_eq!(
            parse(&json!({"resourceType": "Patient"}), TODAY)
                .unwrap_err()
                .error,
            errors::INVALID_RESOURCE
        );
    }

    #[test]
    fn problem_filters_are_pairs() {
        let problem = json!({"clinicalStatus": "active", "extension": [{"url": profiles::PROBLEM_SIGNIFICANCE, "valueCode": "major"}]});
        let filter = |s: Option<&str>, g: Option<&str>| ProblemFilter {
            status: s.map(Into::into),
            significance: g.map(Into::into),
        };
        assert!(problem_matches(&problem, &[filter(None, None)]));
        assert!(problem_matches(
            &problem,
            &[filter(Some("active"), Some("major"))]
        ));
        assert!(!problem_matches(
            &problem,
            &[filter(Some("inactive"), None)]
        ));
        assert!(problem_matches(
            &problem,
            &[filter(Some("inactive"), None), filter(None, Some("major"))]
        ));
    }
}
