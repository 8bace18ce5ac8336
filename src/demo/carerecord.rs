//! Access Record HTML (GP Connect 0.7.4, FHIR DSTU2): `$gpc.getcarerecord` answers one care
//! record section as XHTML in a searchset Bundle with the Composition, the Patient and the
//! practice (`accessrecord_use_case_retrieve_a_care_record_section.md`). The sections are
//! data (`demo/carerecord.json`); what they show is the same record Access Record Structured
//! serves (`demo/structured.json`), so the two capabilities agree about a patient. Errors are
//! the 0.7 ones (`gpconnect-error-or-warning-code-1`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::reject;
use super::fixtures::StructuredRecord;
use super::nhs_number::NhsNumber;
use super::request::Input;
use super::respond::Reply;
use super::Site;
use crate::config::rejection::ids::{
    DSTU2_INVALID_IDENTIFIER_SYSTEM, DSTU2_INVALID_NHS_NUMBER, DSTU2_INVALID_PARAMETER,
    DSTU2_PATIENT_NOT_FOUND,
};
use crate::config::rejection::Rejection;
use crate::wire::systems::{DSTU2_NHS_NUMBER, DSTU2_ODS_CODE};

/// The value set a `recordSection` code comes from.
const SECTION_SYSTEM: &str = "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1";

/// `demo/carerecord.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareRecordSections {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    sections: Vec<Section>,
}

/// One care record section the demo answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    /// Its `recordSection` code, e.g. `SUM`.
    code: String,
    title: String,
    /// The clinical areas of the structured record it shows, in order.
    shows: Vec<Area>,
}

/// A clinical area of the patient's record.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Area {
    Problems,
    Medications,
    Allergies,
}

fn refuse(id: &'static str, diagnostics: impl Into<String>) -> Rejection {
    reject(id, diagnostics)
}

/// The parameter called `name` of a Parameters body.
fn parameter<'b>(body: &'b Value, name: &str) -> Option<&'b Value> {
    body["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
}

/// `$gpc.getcarerecord`: the requested section of an active, verified patient's record.
pub fn get_care_record(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let body = input.json(DSTU2_INVALID_PARAMETER)?;
    if body["resourceType"].as_str() != Some("Parameters") {
        return Err(refuse(
            DSTU2_INVALID_PARAMETER,
            "The body must be a FHIR Parameters resource with patientNHSNumber and recordSection",
        ));
    }
    let Some(identifier) = parameter(&body, "patientNHSNumber").map(|p| &p["valueIdentifier"])
    else {
        return Err(refuse(
            DSTU2_INVALID_PARAMETER,
            "The patientNHSNumber parameter (a valueIdentifier) is missing",
        ));
    };
    if identifier["system"].as_str() != Some(DSTU2_NHS_NUMBER) {
        return Err(refuse(
            DSTU2_INVALID_IDENTIFIER_SYSTEM,
            format!("patientNHSNumber.valueIdentifier.system must be {DSTU2_NHS_NUMBER}"),
        ));
    }
    let number = identifier["value"].as_str().unwrap_or("");
    let nhs_number = NhsNumber::parse(number).map_err(|e| {
        refuse(
            DSTU2_INVALID_NHS_NUMBER,
            format!("patientNHSNumber is not a valid NHS number: {e}"),
        )
    })?;
    let coding = parameter(&body, "recordSection").map(|p| &p["valueCodeableConcept"]["coding"][0]);
    let code = coding
        .filter(|c| c["system"].as_str() == Some(SECTION_SYSTEM))
        .and_then(|c| c["code"].as_str());
    let known: Vec<&str> = site
        .fixtures
        .care_record
        .sections
        .iter()
        .map(|s| s.code.as_str())
        .collect();
    let Some(section) = code.and_then(|code| {
        site.fixtures
            .care_record
            .sections
            .iter()
            .find(|s| s.code == code)
    }) else {
        return Err(refuse(
            DSTU2_INVALID_PARAMETER,
            format!(
                "recordSection must be a valueCodeableConcept with system {SECTION_SYSTEM} and one of the codes this provider serves: {}",
                known.join(", ")
            ),
        ));
    };
    let patient = site.practice(|practice| {
        practice
            .shareable_patient(|p| p.nhs_number == nhs_number)
            .map(|p| p.resource.clone())
    });
    let Some(patient) = patient else {
        return Err(refuse(
            DSTU2_PATIENT_NOT_FOUND,
            format!("No shareable record for NHS number {number} at this practice"),
        ));
    };
    let patient_id = patient["id"].as_str().unwrap_or("").to_owned();
    let none = StructuredRecord::default();
    let record = site.fixtures.record(&patient_id).unwrap_or(&none);
    let html = section_html(section, record);
    let composition = json!({
        "resourceType": "Composition",
        "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-carerecord-composition-1"]},
        "date": site.now_text(),
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "425173008", "display": "record extract (record artifact)"}]},
        "title": "Patient Care Record",
        "status": "final",
        "subject": {"reference": format!("Patient/{patient_id}")},
        "section": [{
            "title": section.title,
            "code": {"coding": [{"system": SECTION_SYSTEM, "code": section.code, "display": section.title}]},
            "text": {"status": "generated", "div": html}
        }]
    });
    let organisation = site.organisation();
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "entry": [
            {"resource": composition},
            {"resource": dstu2_patient(&patient, &nhs_number)},
            {"resource": {
                "resourceType": "Organization",
                "id": organisation["id"],
                "identifier": [{"system": DSTU2_ODS_CODE, "value": site.ods_code}],
                "name": organisation["name"]
            }}
        ]
    });
    Ok(Reply::ok(bundle))
}

/// The patient in DSTU2 form: the 0.7 NHS number system, and `family` as a list.
fn dstu2_patient(patient: &Value, nhs_number: &NhsNumber) -> Value {
    let name = &patient["name"][0];
    json!({
        "resourceType": "Patient",
        "id": patient["id"],
        "identifier": [{"system": DSTU2_NHS_NUMBER, "value": nhs_number.as_str()}],
        "name": [{"use": "official", "family": [name["family"]], "given": name["given"]}],
        "gender": patient["gender"],
        "birthDate": patient["birthDate"]
    })
}

/// A problem's or an allergy's row: what it is, when it began, whether it is still active.
fn onset_and_status(entry: &Value) -> [String; 3] {
    [
        coded(entry),
        text(&entry["onsetDateTime"]),
        text(&entry["clinicalStatus"]),
    ]
}

/// The section as XHTML: a heading, and per clinical area a table of its entries.
fn section_html(section: &Section, record: &StructuredRecord) -> String {
    let mut html = format!("<div><h1>{}</h1>", escape(&section.title));
    for area in &section.shows {
        let (title, rows): (&str, Vec<[String; 3]>) = match area {
            Area::Problems => (
                "Problems",
                record.problems.iter().map(onset_and_status).collect(),
            ),
            Area::Medications => (
                "Medications",
                record
                    .medications
                    .iter()
                    .map(|m| {
                        [
                            coded(&m.medication),
                            text(&m.statement["effectivePeriod"]["start"]),
                            text(&m.statement["dosage"][0]["text"]),
                        ]
                    })
                    .collect(),
            ),
            Area::Allergies => (
                "Allergies and Adverse Reactions",
                record.allergies.iter().map(onset_and_status).collect(),
            ),
        };
        html.push_str(&format!("<div><h2>{title}</h2>"));
        if rows.is_empty() {
            html.push_str("<p>No information recorded</p></div>");
            continue;
        }
        html.push_str(
            "<table><thead><tr><th>Entry</th><th>Date</th><th>Details</th></tr></thead><tbody>",
        );
        for row in rows {
            html.push_str("<tr>");
            for cell in row {
                html.push_str(&format!("<td>{}</td>", escape(&cell)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("</div>");
    html
}

/// A resource's code as displayed.
fn coded(resource: &Value) -> String {
    text(&resource["code"]["coding"][0]["display"])
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("").to_owned()
}

/// Text as XHTML character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
