//! The demo's Personal Demographics Service (`demo/pds.json`): what a PDS Retrieval Query
//! would return for each NHS number, and the NHS number verification rules of GP Connect
//! 1.2.7 (Find a patient "unverified record requirements", #921; Register a patient "PDS
//! requirements"), so both use cases trace a patient the way an assured provider does.

use jiff::civil::Date;
use serde::Deserialize;

use crate::demo::dates;
use crate::demo::nhs_number::NhsNumber;

/// A PDS flag that stops GP Connect using the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// S-flag: the patient's demographics are sensitive.
    Sensitive,
    /// The NHS number is marked invalid.
    Invalid,
    /// The NHS number was replaced by another (`superseded_by`).
    Superseded,
}

/// One record as written in `demo/pds.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    nhs_number: String,
    family: String,
    given: String,
    birth_date: String,
    gender: String,
    #[serde(default)]
    deceased: Option<String>,
    #[serde(default)]
    flags: Vec<Flag>,
    #[serde(default)]
    superseded_by: Option<String>,
}

/// A patient as PDS holds them.
#[derive(Debug, Clone)]
pub struct Record {
    pub nhs_number: NhsNumber,
    pub family: String,
    pub given: String,
    pub birth_date: Date,
    pub gender: String,
    /// The date of death PDS records, if any.
    pub deceased: Option<Date>,
    pub flags: Vec<Flag>,
    pub superseded_by: Option<NhsNumber>,
}

impl Record {
    /// Validates one raw record; the error names the field.
    pub fn parse(raw: RawRecord) -> Result<Self, (&'static str, String)> {
        let nhs_number =
            NhsNumber::parse(&raw.nhs_number).map_err(|e| ("nhs_number", e.to_string()))?;
        let birth_date = dates::parse_date(&raw.birth_date).ok_or_else(|| {
            (
                "birth_date",
                format!("`{}` is not YYYY-MM-DD", raw.birth_date),
            )
        })?;
        let deceased = match raw.deceased {
            None => None,
            Some(text) => Some(
                dates::parse_date(&text)
                    .ok_or_else(|| ("deceased", format!("`{text}` is not YYYY-MM-DD")))?,
            ),
        };
        let superseded = raw.flags.contains(&Flag::Superseded);
        let superseded_by = match raw.superseded_by {
            None if superseded => {
                return Err((
                    "superseded_by",
                    "a superseded record needs the NHS number that replaced it".into(),
                ))
            }
            Some(_) if !superseded => {
                return Err((
                    "superseded_by",
                    "only a record with the superseded flag is superseded by another".into(),
                ))
            }
            None => None,
            Some(text) => {
                Some(NhsNumber::parse(&text).map_err(|e| ("superseded_by", e.to_string()))?)
            }
        };
        if !matches!(raw.gender.as_str(), "male" | "female" | "other" | "unknown") {
            return Err((
                "gender",
                format!("`{}` is not male, female, other or unknown", raw.gender),
            ));
        }
        if raw.family.is_empty() || raw.given.is_empty() {
            return Err(("family", "family and given names must not be empty".into()));
        }
        Ok(Self {
            nhs_number,
            family: raw.family,
            given: raw.given,
            birth_date,
            gender: raw.gender,
            deceased,
            flags: raw.flags,
            superseded_by,
        })
    }

    fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }
}

/// The demographics a trace compares with PDS: the request's (register) or the local
/// record's (find).
#[derive(Debug, Clone, Copy)]
pub struct Demographics<'a> {
    pub family: &'a str,
    pub given: &'a str,
    pub birth_date: Date,
}

/// What tracing an NHS number on PDS found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// Found, the demographics match, and nothing stops its use: the number is verified.
    Verified,
    /// PDS has no record of the number.
    Unknown,
    /// PDS has the number but the demographics do not match it.
    Mismatch,
    /// PDS records the patient as deceased.
    Deceased,
    Sensitive,
    Invalid,
    /// Superseded by the given number.
    Superseded(String),
}

impl Trace {
    /// Why the number is not verified, for diagnostics (`None` when it is).
    pub fn problem(&self, number: &str) -> Option<String> {
        Some(match self {
            Trace::Verified => return None,
            Trace::Unknown => format!("NHS number {number} is not on PDS"),
            Trace::Mismatch => format!("the demographics do not match the PDS record of NHS number {number} (the birth date must match, or two of its three parts with the first three letters of the family name and the first letter of the given name)"),
            Trace::Deceased => format!("PDS records the patient with NHS number {number} as deceased"),
            Trace::Sensitive => format!("the PDS record of NHS number {number} is flagged sensitive"),
            Trace::Invalid => format!("the PDS record of NHS number {number} is flagged invalid"),
            Trace::Superseded(to) => format!("NHS number {number} is superseded on PDS by {to}"),
        })
    }
}

/// Every PDS record, by NHS number.
#[derive(Debug, Default)]
pub struct Pds {
    records: Vec<Record>,
}

impl Pds {
    /// The records, already validated (numbers unique).
    pub fn new(records: Vec<Record>) -> Self {
        Self { records }
    }

    /// The record of `number`, if PDS has one.
    pub fn get(&self, number: &NhsNumber) -> Option<&Record> {
        self.records.iter().find(|r| &r.nhs_number == number)
    }

    /// Whether PDS flags `number` sensitive.
    pub fn sensitive(&self, number: &NhsNumber) -> bool {
        self.get(number).is_some_and(|r| r.has(Flag::Sensitive))
    }

    /// A PDS Retrieval Query for `number`, then the three checks of the 1.2.7 use-case
    /// pages: the number verifies against `who`, the patient is not deceased, and the record
    /// has no invalid, sensitive or superseded flag.
    pub fn trace(&self, number: &NhsNumber, who: Demographics) -> Trace {
        let Some(record) = self.get(number) else {
            return Trace::Unknown;
        };
        if !verifies(record, who) {
            Trace::Mismatch
        } else if record.deceased.is_some() {
            Trace::Deceased
        } else if record.has(Flag::Sensitive) {
            Trace::Sensitive
        } else if record.has(Flag::Invalid) {
            Trace::Invalid
        } else if let Some(to) = record
            .superseded_by
            .as_ref()
            .filter(|_| record.has(Flag::Superseded))
        {
            Trace::Superseded(to.to_string())
        } else {
            Trace::Verified
        }
    }
}

/// The verification rule: the birth date matches exactly, or two of its three parts do and
/// the first three characters of the family name and the initial of the given name match.
fn verifies(record: &Record, who: Demographics) -> bool {
    if record.birth_date == who.birth_date {
        return true;
    }
    let (a, b) = (record.birth_date, who.birth_date);
    let parts = [
        a.year() == b.year(),
        a.month() == b.month(),
        a.day() == b.day(),
    ];
    let prefix = |s: &str, n: usize| s.chars().take(n).collect::<String>().to_lowercase();
    parts.iter().filter(|p| **p).count() >= 2
        && prefix(&record.family, 3) == prefix(who.family, 3)
        && !who.given.is_empty()
        && prefix(&record.given, 1) == prefix(who.given, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn record(flags: Vec<Flag>) -> Record {
        Record {
            nhs_number: NhsNumber::parse("9690937308").unwrap(),
            family: "Newcomer".into(),
            given: "Nia".into(),
            birth_date: date(1994, 4, 4),
            gender: "female".into(),
            deceased: None,
            flags,
            superseded_by: None,
        }
    }

    fn who(family: &str, given: &str, birth_date: Date) -> Demographics<'static> {
        Demographics {
            family: Box::leak(family.to_owned().into_boxed_str()),
            given: Box::leak(given.to_owned().into_boxed_str()),
            birth_date,
        }
    }

    #[test]
    fn the_birth_date_or_two_parts_of_it_with_the_names_verify() {
        let r = record(vec![]);
        assert!(verifies(&r, who("Anyone", "Else", date(1994, 4, 4))));
        assert!(verifies(&r, who("NEWman", "nell", date(1994, 4, 5))));
        assert!(!verifies(&r, who("Newcomer", "Nia", date(1994, 5, 5))));
        assert!(!verifies(&r, who("Nelson", "Nia", date(1994, 4, 5))));
        assert!(!verifies(&r, who("Newcomer", "Tia", date(1994, 4, 5))));
    }

    #[test]
    fn traces_report_the_first_problem() {
        let number = NhsNumber::parse("9690937308").unwrap();
        let nia = who("Newcomer", "Nia", date(1994, 4, 4));
        assert_eq!(
            Pds::new(vec![record(vec![])]).trace(&number, nia),
            Trace::Verified
        );
        assert_eq!(Pds::default().trace(&number, nia), Trace::Unknown);
        let sensitive = Pds::new(vec![record(vec![Flag::Sensitive])]);
        assert_eq!(sensitive.trace(&number, nia), Trace::Sensitive);
        assert!(sensitive.sensitive(&number));
        let mut dead = record(vec![]);
        dead.deceased = Some(date(2020, 1, 1));
        assert_eq!(Pds::new(vec![dead]).trace(&number, nia), Trace::Deceased);
        let wrong = who("Smith", "Sam", date(1970, 1, 1));
        assert_eq!(
            Pds::new(vec![record(vec![])]).trace(&number, wrong),
            Trace::Mismatch
        );
        assert!(Trace::Mismatch
            .problem("9690937308")
            .unwrap()
            .contains("do not match"));
    }

    #[test]
    fn raw_records_are_checked_field_by_field() {
        let raw = |text: &str| -> RawRecord { serde_json::from_str(text).unwrap() };
        let base = r#""family": "A", "given": "B", "birth_date": "2000-01-01", "gender": "female""#;
        let bad_number = raw(&format!(r#"{{"nhs_number": "9690937309", {base}}}"#));
        assert_eq!(Record::parse(bad_number).unwrap_err().0, "nhs_number");
        let lonely = raw(&format!(
            r#"{{"nhs_number": "9690937308", {base}, "flags": ["superseded"]}}"#
        ));
        assert_eq!(Record::parse(lonely).unwrap_err().0, "superseded_by");
        let bad_date = raw(
            r#"{"nhs_number": "9690937308", "family": "A", "given": "B", "birth_date": "01/01/2000", "gender": "female"}"#,
        );
        assert_eq!(Record::parse(bad_date).unwrap_err().0, "birth_date");
    }
}
