//! A patient record as the practice holds it: the CareConnect-GPC-Patient-1 resource and
//! what the use cases decide on (active, deceased, NHS number verified), kept in step with
//! the resource when a trace verifies the number or a registration re-activates the record.

use jiff::civil::Date;
use serde_json::{json, Value};

use crate::demo::dates;
use crate::demo::nhs_number::{self, NhsNumber};
use crate::demo::pds::Demographics;
use crate::demo::{fhir, profiles};

/// A patient known to the practice.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    pub id: String,
    pub nhs_number: NhsNumber,
    /// A currently registered patient (of any registration type).
    pub active: bool,
    pub deceased: bool,
    /// The NHS number is "present and verified" (traced on PDS).
    pub verified: bool,
    /// PDS flags the number sensitive: never returned or registered through GP Connect.
    pub sensitive: bool,
    /// `meta.versionId`, bumped on every change.
    pub version: u64,
    pub resource: Value,
}

/// The NHS number verification status codes of `CareConnect-NHSNumberVerificationStatus-1`.
const VERIFIED: (&str, &str) = ("01", "Number present and verified");

impl PatientRecord {
    /// Reads a fixture or registered Patient; the error names the field that is wrong.
    pub fn from_resource(resource: Value, sensitive: bool) -> Result<Self, (&'static str, String)> {
        let nhs_number = match fhir::identifier(&resource, nhs_number::SYSTEM) {
            Some(n) => NhsNumber::parse(n).map_err(|e| ("identifier", e.to_string()))?,
            None => {
                return Err((
                    "identifier",
                    format!("needs an identifier with system {}", nhs_number::SYSTEM),
                ))
            }
        };
        let Some(active) = resource["active"].as_bool() else {
            return Err(("active", "must be true or false".into()));
        };
        let verified = match verification_code(&resource) {
            Some("01") => true,
            Some("02") => false,
            other => {
                return Err((
                    "identifier",
                    format!(
                        "the NHS number needs a verification status extension ({}) with code 01 (verified) or 02 (not traced), got {other:?}",
                        profiles::NHS_NUMBER_VERIFICATION
                    ),
                ))
            }
        };
        let record = Self {
            id: fhir::id(&resource).to_owned(),
            nhs_number,
            active,
            deceased: resource.get("deceasedDateTime").is_some()
                || resource["deceasedBoolean"].as_bool() == Some(true),
            verified,
            sensitive,
            version: resource["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            resource,
        };
        if record.demographics().is_none() {
            return Err((
                "name",
                "needs an official name with family and given, and a birthDate (YYYY-MM-DD)".into(),
            ));
        }
        Ok(record)
    }

    /// The name and birth date the record holds, as a PDS trace compares them.
    pub fn demographics(&self) -> Option<Demographics<'_>> {
        demographics(&self.resource)
    }

    /// Marks the NHS number verified after a successful trace (#921).
    pub fn mark_verified(&mut self, now: &str) {
        if self.verified {
            return;
        }
        self.verified = true;
        let status = json!([{
            "url": profiles::NHS_NUMBER_VERIFICATION,
            "valueCodeableConcept": { "coding": [{
                "system": profiles::NHS_NUMBER_VERIFICATION_SYSTEM,
                "code": VERIFIED.0,
                "display": VERIFIED.1,
            }] }
        }]);
        if let Some(identifier) = self.resource["identifier"].as_array_mut().and_then(|all| {
            all.iter_mut()
                .find(|i| i["system"].as_str() == Some(nhs_number::SYSTEM))
        }) {
            identifier["extension"] = status;
        }
        self.bump(now);
    }

    /// Re-activates a lapsed registration as a temporary one (Register a patient).
    pub fn reactivate(&mut self, now: &str) {
        self.active = true;
        self.resource["active"] = Value::Bool(true);
        let mut extensions: Vec<Value> = self.resource["extension"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        extensions.retain(|e| e["url"].as_str() != Some(profiles::REGISTRATION_DETAILS));
        extensions.push(temporary_registration(now));
        self.resource["extension"] = Value::Array(extensions);
        self.bump(now);
    }

    fn bump(&mut self, now: &str) {
        self.version += 1;
        fhir::set_version(&mut self.resource, self.version, Some(now));
    }
}

/// The registrationDetails extension of a temporary registration starting `now`.
pub fn temporary_registration(now: &str) -> Value {
    json!({
        "url": profiles::REGISTRATION_DETAILS,
        "extension": [
            { "url": "registrationPeriod", "valuePeriod": { "start": now } },
            { "url": "registrationType", "valueCodeableConcept": { "coding": [
                { "system": profiles::REGISTRATION_TYPE_SYSTEM, "code": "T", "display": "Temporary" }
            ] } },
            { "url": "preferredBranchSurgery", "valueReference": { "reference": "Location/1" } }
        ]
    })
}

fn verification_code(resource: &Value) -> Option<&str> {
    resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"].as_str() == Some(nhs_number::SYSTEM))
        .and_then(|i| fhir::extension(i, profiles::NHS_NUMBER_VERIFICATION))
        .and_then(|e| e["valueCodeableConcept"]["coding"][0]["code"].as_str())
}

/// The official name (family and first given name) and birth date of a Patient resource.
pub fn demographics(patient: &Value) -> Option<Demographics<'_>> {
    let name = official_name(patient)?;
    Some(Demographics {
        family: name["family"].as_str().filter(|f| !f.is_empty())?,
        given: name["given"][0].as_str().filter(|g| !g.is_empty())?,
        birth_date: birth_date(patient)?,
    })
}

/// The Patient's single `official` name, if it has exactly one.
pub fn official_name(patient: &Value) -> Option<&Value> {
    let mut official = patient["name"]
        .as_array()?
        .iter()
        .filter(|n| n["use"].as_str() == Some("official"));
    match (official.next(), official.next()) {
        (Some(name), None) => Some(name),
        _ => None,
    }
}

/// The Patient's `birthDate`, when it is a full date.
pub fn birth_date(patient: &Value) -> Option<Date> {
    patient["birthDate"].as_str().and_then(dates::parse_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(code: &str) -> Value {
        json!({
            "resourceType": "Patient", "id": "6", "meta": {"versionId": "1", "profile": [profiles::PATIENT]},
            "identifier": [{"system": nhs_number::SYSTEM, "value": "9690937324", "extension": [{
                "url": profiles::NHS_NUMBER_VERIFICATION,
                "valueCodeableConcept": {"coding": [{"system": profiles::NHS_NUMBER_VERIFICATION_SYSTEM, "code": code}]}}]}],
            "active": true, "name": [{"use": "official", "family": "Tracey", "given": ["Lucy"]}],
            "birthDate": "1977-10-05"
        })
    }

    #[test]
    fn a_trace_marks_the_number_verified_in_the_resource_too() {
        let mut record = PatientRecord::from_resource(resource("02"), false).unwrap();
        assert!(!record.verified);
        record.mark_verified("2024-01-01T09:00:00+00:00");
        assert!(record.verified);
        assert_eq!(record.resource["meta"]["versionId"], "2");
        let again = PatientRecord::from_resource(record.resource.clone(), false).unwrap();
        assert!(again.verified);
    }

    #[test]
    fn reactivation_makes_a_temporary_active_record() {
        let mut lapsed = resource("01");
        lapsed["active"] = json!(false);
        let mut record = PatientRecord::from_resource(lapsed, false).unwrap();
        record.reactivate("2024-01-01T09:00:00+00:00");
        assert!(record.active);
        assert_eq!(record.resource["active"], true);
        let registration =
            fhir::extension(&record.resource, profiles::REGISTRATION_DETAILS).unwrap();
        assert_eq!(
            registration["extension"][1]["valueCodeableConcept"]["coding"][0]["code"],
            "T"
        );
    }

    #[test]
    fn records_without_status_or_demographics_are_refused_naming_the_field() {
        let mut no_status = resource("01");
        no_status["identifier"][0]["extension"] = json!([]);
        assert_eq!(
            PatientRecord::from_resource(no_status, false)
                .unwrap_err()
                .0,
            "identifier"
        );
        let mut no_birth = resource("01");
        no_birth["birthDate"] = json!("1977");
        assert_eq!(
            PatientRecord::from_resource(no_birth, false).unwrap_err().0,
            "name"
        );
        let mut no_active = resource("01");
        no_active.as_object_mut().unwrap().remove("active");
        assert_eq!(
            PatientRecord::from_resource(no_active, false)
                .unwrap_err()
                .0,
            "active"
        );
    }
}
