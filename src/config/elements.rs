//! The elements of the FHIR STU3 types consumers send: in request bodies to the demo provider,
//! and as the JWT's resource claims (`demo/stu3-elements.json`, generated from the STU3
//! definitions by `scripts/stu3-elements.py`). A body or claim holding an element its type
//! does not have, say a misspelt field, is refused naming it, as the FHIR parser of an assured
//! provider refuses it. The file lists each type's elements in STU3 definition order, which the
//! FHIR XML writer follows ([`Elements::xml_order`]).

use std::fmt;
use std::sync::OnceLock;

// foldhash, not std's SipHash: check 10 looks up every member of the JWT's resource claims.
use foldhash::HashMap;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::config::problems::ConfigError;
use crate::wire::xml::ElementOrder;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElements {
    #[allow(dead_code)] // documentation inside the data file
    about: String,
    roots: Vec<String>,
    types: HashMap<String, InOrder>,
}

/// A type's elements and their specs as the file lists them: in definition order.
struct InOrder(Vec<(String, String)>);

impl<'de> Deserialize<'de> for InOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = InOrder;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of element names and their types")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InOrder, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(InOrder(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// One element of a type: its type name, whether it repeats and whether STU3 requires it.
#[derive(Debug, Clone)]
struct Element {
    kind: String,
    many: bool,
    required: bool,
}

/// One STU3 type's elements.
#[derive(Clone, Copy)]
pub struct TypeElements<'e>(&'e HashMap<String, Element>);

impl TypeElements<'_> {
    /// Whether the type has the member `name` (`_x` for primitive element `x`).
    pub fn has(self, name: &str) -> bool {
        match name.strip_prefix('_') {
            Some(base) => self.0.get(base).is_some_and(|e| primitive(&e.kind)),
            None => self.0.contains_key(name),
        }
    }
}

/// Element tables per STU3 type.
#[derive(Debug)]
pub struct Elements {
    types: HashMap<String, HashMap<String, Element>>,
    order: ElementOrder,
}

/// A primitive's type name starts in lower case (`string`, `dateTime`); a complex one in
/// upper case (`Reference`, `AppointmentParticipant`).
fn primitive(kind: &str) -> bool {
    kind.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The table as shipped, built into the binary.
pub const EMBEDDED: &str = include_str!("../../demo/stu3-elements.json");

impl Elements {
    /// The shipped table, parsed once for the process: check 10 reads the JWT's resource
    /// claims against it, and the error catalogue writes its XML in its order.
    pub fn embedded() -> Result<&'static Self, ConfigError> {
        static SHIPPED: OnceLock<Result<Elements, String>> = OnceLock::new();
        SHIPPED
            .get_or_init(|| Self::parse(EMBEDDED))
            .as_ref()
            .map_err(|message| {
                ConfigError::file("demo/stu3-elements.json (embedded)", message.clone())
            })
    }

    /// The definition order of each type's elements, for the FHIR XML writer.
    pub fn xml_order(&self) -> &ElementOrder {
        &self.order
    }

    /// The elements of STU3 type `kind`; `None` when the table has no such type. Looked up once
    /// per object, not per member: check 10 reads every member of the JWT's resource claims.
    pub fn of(&self, kind: &str) -> Option<TypeElements<'_>> {
        self.types.get(kind).map(TypeElements)
    }

    /// Parses and cross-checks the table: every complex type an element names is in it, no
    /// type lists an element twice, and `Element` (what a primitive's `_x` holds) is there.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawElements = serde_json::from_str(text).map_err(|e| format!("not valid: {e}"))?;
        let mut types = HashMap::default();
        for (name, InOrder(elements)) in &raw.types {
            let mut table = HashMap::default();
            for (element, spec) in elements {
                let required = spec.ends_with('!');
                let spec = spec.trim_end_matches('!');
                let many = spec.ends_with("[]");
                let kind = spec.trim_end_matches("[]").to_owned();
                let element_spec = Element {
                    kind,
                    many,
                    required,
                };
                if table.insert(element.clone(), element_spec).is_some() {
                    return Err(format!("types.{name}.{element}: listed twice"));
                }
            }
            types.insert(name.clone(), table);
        }
        let order = ElementOrder::new(raw.types.iter().map(|(name, InOrder(elements))| {
            let kinds = elements
                .iter()
                .map(|(element, spec)| (element.as_str(), spec.trim_end_matches(['!', '[', ']'])));
            (name.as_str(), kinds)
        }));
        let elements = Self { types, order };
        for root in &raw.roots {
            if !elements.types.contains_key(root) {
                return Err(format!("types: root `{root}` has no table"));
            }
        }
        for (name, table) in &elements.types {
            for (element, e) in table {
                let known = primitive(&e.kind)
                    || e.kind == "Resource"
                    || elements.types.contains_key(&e.kind);
                if !known {
                    return Err(format!(
                        "types.{name}.{element}: type `{}` has no table",
                        e.kind
                    ));
                }
            }
        }
        if !elements.types.contains_key("Element") {
            return Err(
                "types: `Element`, what a primitive's `_x` partner holds, has no table".to_owned(),
            );
        }
        Ok(elements)
    }

    /// Checks `resource` against its STU3 type (by `resourceType`), and every resource it
    /// contains whose type the table has. Each problem names the element's path.
    pub fn check(&self, resource: &Value) -> Result<(), String> {
        let mut problems = Vec::new();
        let kind = resource["resourceType"].as_str().unwrap_or("");
        if self.types.contains_key(kind) {
            self.object(resource, kind, kind, true, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn value(&self, value: &Value, kind: &str, path: &str, problems: &mut Vec<String>) {
        if value.is_null() {
            problems.push(format!(
                "`{path}` is null; FHIR JSON leaves empty elements out"
            ));
        } else if kind == "Resource" {
            let inner = value["resourceType"].as_str().unwrap_or("");
            if self.types.contains_key(inner) {
                self.object(value, inner, path, true, problems);
            } else if !value.is_object() {
                problems.push(format!("`{path}` must be a FHIR resource (a JSON object)"));
            }
        } else if primitive(kind) {
            let fits = match kind {
                "boolean" => value.is_boolean(),
                "integer" | "positiveInt" | "unsignedInt" | "decimal" => value.is_number(),
                _ => value.is_string(),
            };
            if !fits {
                problems.push(format!(
                    "`{path}` must be a FHIR {kind}, got {}",
                    describe(value)
                ));
            }
        } else {
            self.object(value, kind, path, false, problems);
        }
    }

    fn object(
        &self,
        value: &Value,
        kind: &str,
        path: &str,
        resource: bool,
        problems: &mut Vec<String>,
    ) {
        let (Some(object), Some(table)) = (value.as_object(), self.types.get(kind)) else {
            problems.push(format!(
                "`{path}` must be a JSON object (FHIR {kind}), got {}",
                describe(value)
            ));
            return;
        };
        for (key, item) in object {
            if resource && key == "resourceType" {
                continue;
            }
            let here = format!("{path}.{key}");
            // `_x` carries the id and extensions of primitive element `x`.
            if let Some(base) = key.strip_prefix('_') {
                if !table.get(base).is_some_and(|e| primitive(&e.kind)) {
                    problems.push(unknown(&here, kind));
                }
                continue;
            }
            let Some(element) = table.get(key) else {
                problems.push(unknown(&here, kind));
                continue;
            };
            match (element.many, item.as_array()) {
                (true, Some(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.value(item, &element.kind, &format!("{here}[{i}]"), problems);
                    }
                }
                (true, None) => problems.push(format!(
                    "`{here}` must be a JSON array: the element repeats in FHIR STU3"
                )),
                (false, Some(_)) => problems.push(format!(
                    "`{here}` must not be an array: the element does not repeat in FHIR STU3"
                )),
                (false, None) => self.value(item, &element.kind, &here, problems),
            }
        }
        let mut missing: Vec<&String> = table
            .iter()
            .filter(|(name, e)| e.required && !object.contains_key(*name))
            .map(|(name, _)| name)
            .collect();
        missing.sort();
        for name in missing {
            problems.push(format!("`{path}.{name}` is required by FHIR STU3"));
        }
    }
}

fn unknown(path: &str, kind: &str) -> String {
    format!("`{path}` is not an element of FHIR STU3 {kind}; remove it or correct its spelling")
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> &'static Elements {
        Elements::embedded().unwrap()
    }

    #[test]
    fn a_valid_appointment_passes() {
        let appointment = json!({
            "resourceType": "Appointment",
            "meta": {"profile": ["p"]},
            "contained": [{"resourceType": "Organization", "id": "1", "name": "X"}],
            "extension": [{"url": "u", "valueReference": {"reference": "#1"}}],
            "status": "booked", "_status": {"extension": [{"url": "x", "valueString": "y"}]},
            "minutesDuration": 15,
            "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}]
        });
        shipped().check(&appointment).unwrap();
    }

    #[test]
    fn unknown_elements_are_named_with_their_path() {
        let appointment = json!({
            "resourceType": "Appointment", "status": "booked", "invalidField": "x",
            "contained": [{"resourceType": "Organization", "nmae": "X"}],
            "participant": [{"actor": {"reference": "Patient/1", "ref": "x"}, "status": "accepted"}]
        });
        let problems = shipped().check(&appointment).unwrap_err();
        for path in [
            "`Appointment.invalidField` is not an element of FHIR STU3 Appointment",
            "`Appointment.contained[0].nmae`",
            "`Appointment.participant[0].actor.ref`",
        ] {
            assert!(problems.contains(path), "{problems}");
        }
    }

    #[test]
    fn shapes_kinds_and_required_elements_are_checked() {
        let appointment = json!({
            "resourceType": "Appointment", "status": ["booked"],
            "participant": {"status": "accepted"}, "priority": "high", "comment": null
        });
        let problems = shipped().check(&appointment).unwrap_err();
        assert!(
            problems.contains("`Appointment.status` must not be an array"),
            "{problems}"
        );
        assert!(
            problems.contains("`Appointment.participant` must be a JSON array"),
            "{problems}"
        );
        assert!(
            problems.contains("`Appointment.priority` must be a FHIR unsignedInt"),
            "{problems}"
        );
        assert!(
            problems.contains("`Appointment.comment` is null"),
            "{problems}"
        );
        let no_status = json!({"resourceType": "Appointment", "participant": [{"actor": {"reference": "Patient/1"}}]});
        let problems = shipped().check(&no_status).unwrap_err();
        assert!(
            problems.contains("`Appointment.status` is required"),
            "{problems}"
        );
        assert!(
            problems.contains("`Appointment.participant[0].status` is required"),
            "{problems}"
        );
    }

    #[test]
    fn parameters_check_the_resource_they_carry() {
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "registerPatient", "resource": {"resourceType": "Patient", "birthDate": "2000-01-01", "invalidField": 1}}
        ]});
        let problems = shipped().check(&body).unwrap_err();
        assert!(
            problems.contains("`Parameters.parameter[0].resource.invalidField`"),
            "{problems}"
        );
    }

    #[test]
    fn a_table_naming_a_missing_type_is_refused() {
        let text = r#"{"about": "", "roots": ["A"], "types": {"A": {"b": "B"}}}"#;
        assert!(Elements::parse(text).unwrap_err().contains("types.A.b"));
    }

    #[test]
    fn a_table_listing_an_element_twice_or_without_element_is_refused() {
        let twice = r#"{"about": "", "roots": [], "types": {"A": {"b": "string", "b": "code"}}}"#;
        assert_eq!(
            Elements::parse(twice).unwrap_err(),
            "types.A.b: listed twice"
        );
        let no_element = r#"{"about": "", "roots": [], "types": {"A": {"b": "string"}}}"#;
        assert!(Elements::parse(no_element)
            .unwrap_err()
            .contains("`Element`"));
    }

    #[test]
    fn the_xml_order_is_the_files_definition_order() {
        let appointment = json!({
            "resourceType": "Appointment", "participant": [{"status": "accepted", "actor": {"reference": "Patient/1"}}],
            "start": "2024-01-01T09:00:00Z", "status": "booked",
            "meta": {"versionId": "2", "profile": ["p"]}, "id": "1"
        });
        let xml = crate::wire::xml::to_xml(&appointment, shipped().xml_order()).unwrap();
        assert_eq!(
            xml,
            concat!(
                "<Appointment xmlns=\"http://hl7.org/fhir\"><id value=\"1\"/>",
                "<meta><versionId value=\"2\"/><profile value=\"p\"/></meta>",
                "<status value=\"booked\"/><start value=\"2024-01-01T09:00:00Z\"/>",
                "<participant><actor><reference value=\"Patient/1\"/></actor><status value=\"accepted\"/></participant>",
                "</Appointment>"
            )
        );
    }
}
