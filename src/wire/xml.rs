//! FHIR JSON to FHIR XML, for any STU3 resource: what a consumer that asked for
//! `application/fhir+xml` gets. It follows the mapping of the FHIR specification's XML and
//! JSON pages (<http://hl7.org/fhir/STU3/json.html>). FHIR JSON may hold its members in any
//! order, but XML must have each type's elements in definition order: the writer takes that
//! order from an [`ElementOrder`] (built from the STU3 definitions) and keeps the JSON's order
//! only for types and elements the order does not know.
//!
//! The mapping, in short: a primitive is `<name value=".."/>`, its `_name` partner adds `id`
//! and `extension`; an array is the element repeated; an object with a `resourceType` inside
//! another element is a nested resource (`<resource><Patient>..</Patient></resource>`); an
//! element's `id`, and an extension's `url`, are attributes; `div` is XHTML, written as is.

use std::fmt::Write as _;

// foldhash, as the element tables: every member of every XML answer is looked up here.
use foldhash::HashMap;
use serde_json::{Map, Value};

/// The FHIR XML namespace, declared on the root element.
pub const FHIR_NAMESPACE: &str = "http://hl7.org/fhir";

const XHTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

/// Why a JSON value has no FHIR XML form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirXmlError {
    /// Where the resource should be is something else: a resource must be a JSON object with a
    /// string `resourceType`.
    #[error(
        "`{path}` is not a FHIR resource: it must be a JSON object with a string resourceType"
    )]
    NotAResource {
        /// Where in the JSON, as dot-separated keys, e.g. `entry.resource`.
        path: String,
    },
    /// An array directly inside an array, which has no XML form.
    #[error("`{path}` is an array inside an array, which FHIR XML cannot express")]
    NestedArray {
        /// Where in the JSON, as dot-separated keys, e.g. `entry.resource`.
        path: String,
    },
    /// A key that cannot be an XML element name.
    #[error("`{name}` at `{path}` is not a FHIR element name (letters, digits and `_` only)")]
    BadName {
        /// Where in the JSON, as dot-separated keys, e.g. `entry.resource`.
        path: String,
        /// The key as written.
        name: String,
    },
}

/// The STU3 definition order of the elements of each type, as lookup tables: what the writer
/// sorts a JSON object's members by. Built once when the definitions are loaded.
#[derive(Debug)]
pub struct ElementOrder {
    /// Type name to its table's index in `tables`.
    types: HashMap<String, usize>,
    tables: Vec<HashMap<String, Place>>,
    /// The table of `Element`, the type of a primitive's `_x` partner.
    element: Option<usize>,
}

/// Where one element goes among its type's elements, and the table of its own type.
#[derive(Debug, Clone, Copy)]
struct Place {
    position: usize,
    /// `None` for a primitive, a resource (which names its type itself) or an unknown type.
    kind: Option<usize>,
}

/// Where a member goes when its type or the element is unknown: after the known ones.
const UNKNOWN: usize = usize::MAX;

impl ElementOrder {
    /// The tables of `types`: each type's name and its elements in definition order, as
    /// (element name, type name) pairs. A choice element appears once per type it may take
    /// (`valueString`, `valueQuantity`, ..); a primitive's `_x` partner goes with `x`.
    pub fn new<'a, E>(types: impl IntoIterator<Item = (&'a str, E)>) -> Self
    where
        E: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let types: Vec<(&str, Vec<(&str, &str)>)> = types
            .into_iter()
            .map(|(name, elements)| (name, elements.into_iter().collect()))
            .collect();
        let index: HashMap<String, usize> = types
            .iter()
            .enumerate()
            .map(|(i, (name, _))| ((*name).to_owned(), i))
            .collect();
        let tables = types
            .iter()
            .map(|(_, elements)| {
                elements
                    .iter()
                    .enumerate()
                    .map(|(position, (name, kind))| {
                        let kind = index.get(*kind).copied();
                        ((*name).to_owned(), Place { position, kind })
                    })
                    .collect()
            })
            .collect();
        Self {
            element: index.get("Element").copied(),
            types: index,
            tables,
        }
    }

    fn place(&self, kind: Option<usize>, name: &str) -> Option<Place> {
        self.tables.get(kind?)?.get(name).copied()
    }
}

/// Serialises a FHIR resource given as JSON into FHIR XML (no XML declaration; UTF-8), each
/// type's elements in the definition order `order` gives.
pub fn to_xml(resource: &Value, order: &ElementOrder) -> Result<String, FhirXmlError> {
    let mut writer = Writer {
        out: String::with_capacity(1024),
        path: Vec::new(),
        order,
    };
    writer.resource(resource, true)?;
    Ok(writer.out)
}

struct Writer<'v> {
    out: String,
    /// Where the writer is, for error messages.
    path: Vec<&'v str>,
    order: &'v ElementOrder,
}

/// One member of a JSON object as an XML element: its name, value, `_name` partner, and its
/// place among its type's elements.
struct Member<'v> {
    position: usize,
    kind: Option<usize>,
    name: &'v str,
    value: &'v Value,
    partner: Option<&'v Value>,
}

impl<'v> Writer<'v> {
    fn path(&self) -> String {
        if self.path.is_empty() {
            "(root)".to_owned()
        } else {
            self.path.join(".")
        }
    }

    fn resource(&mut self, value: &'v Value, root: bool) -> Result<(), FhirXmlError> {
        let Some((object, kind)) = value.as_object().and_then(|o| {
            let kind = o.get("resourceType")?.as_str()?;
            Some((o, kind))
        }) else {
            return Err(FhirXmlError::NotAResource { path: self.path() });
        };
        self.check_name(kind)?;
        self.out.push('<');
        self.out.push_str(kind);
        if root {
            let _ = write!(self.out, " xmlns=\"{FHIR_NAMESPACE}\"");
        }
        self.out.push('>');
        self.path.push(kind);
        // A resource's `id` is an element, unlike every other element's `id`.
        let table = self.order.types.get(kind).copied();
        self.children(object, &["resourceType"], table)?;
        self.path.pop();
        let _ = write!(self.out, "</{kind}>");
        Ok(())
    }

    /// Writes every member of `object`, an instance of the type with table `kind`, as child
    /// elements in definition order, skipping `skip`; a `_name` partner is written with its
    /// primitive.
    fn children(
        &mut self,
        object: &'v Map<String, Value>,
        skip: &[&str],
        kind: Option<usize>,
    ) -> Result<(), FhirXmlError> {
        let has_partners = object.keys().any(|k| k.starts_with('_'));
        let mut members = Vec::with_capacity(object.len());
        for (name, value) in object {
            if skip.contains(&name.as_str()) || name == "fhir_comments" {
                continue;
            }
            let (name, value, partner) = match name.strip_prefix('_') {
                // A partner with its primitive is written there.
                Some(base) if object.contains_key(base) => continue,
                // A partner without its primitive (the value is absent, only extensions).
                Some(base) => (base, &Value::Null, Some(value)),
                None if has_partners => (name.as_str(), value, object.get(&format!("_{name}"))),
                None => (name.as_str(), value, None),
            };
            let place = self.order.place(kind, name);
            members.push(Member {
                position: place.map_or(UNKNOWN, |p| p.position),
                kind: place.and_then(|p| p.kind),
                name,
                value,
                partner,
            });
        }
        // Most objects are already in order; a stable sort keeps unknown members in JSON order.
        if !members.is_sorted_by_key(|m| m.position) {
            members.sort_by_key(|m| m.position);
        }
        for member in members {
            self.element_or_list(member)?;
        }
        Ok(())
    }

    fn element_or_list(&mut self, member: Member<'v>) -> Result<(), FhirXmlError> {
        let Member {
            name,
            value,
            partner,
            kind,
            ..
        } = member;
        self.check_name(name)?;
        self.path.push(name);
        let result = match (value, partner) {
            (Value::Array(items), _) => {
                let partners = partner.and_then(Value::as_array);
                items.iter().enumerate().try_for_each(|(i, item)| {
                    let item_partner = partners.and_then(|p| p.get(i));
                    self.element(name, item, item_partner, kind)
                })
            }
            // Only the partner is there and it lists extensions per array position.
            (Value::Null, Some(Value::Array(partners))) => partners
                .iter()
                .try_for_each(|p| self.element(name, &Value::Null, Some(p), kind)),
            _ => self.element(name, value, partner, kind),
        };
        self.path.pop();
        result
    }

    /// One element `name` of type table `kind`.
    fn element(
        &mut self,
        name: &'v str,
        value: &'v Value,
        partner: Option<&'v Value>,
        kind: Option<usize>,
    ) -> Result<(), FhirXmlError> {
        match value {
            Value::Array(_) => Err(FhirXmlError::NestedArray { path: self.path() }),
            Value::Object(object) if object.contains_key("resourceType") => {
                let _ = write!(self.out, "<{name}>");
                self.resource(value, false)?;
                let _ = write!(self.out, "</{name}>");
                Ok(())
            }
            Value::Object(object) => {
                self.out.push('<');
                self.out.push_str(name);
                let mut skip = vec!["id"];
                self.attribute_if_string("id", object.get("id"));
                if name == "extension" || name == "modifierExtension" {
                    self.attribute_if_string("url", object.get("url"));
                    skip.push("url");
                }
                self.out.push('>');
                self.children(object, &skip, kind)?;
                let _ = write!(self.out, "</{name}>");
                Ok(())
            }
            // JSON null is no FHIR value; without a partner there is nothing to write.
            Value::Null if partner.is_none() => Ok(()),
            Value::String(text) if name == "div" => {
                self.xhtml(text);
                Ok(())
            }
            primitive => self.primitive(name, primitive, partner),
        }
    }

    /// `<name value=".." id=".."/>`, with the partner's extensions as children.
    fn primitive(
        &mut self,
        name: &'v str,
        value: &Value,
        partner: Option<&'v Value>,
    ) -> Result<(), FhirXmlError> {
        let partner = partner.and_then(Value::as_object);
        self.out.push('<');
        self.out.push_str(name);
        self.attribute_if_string("id", partner.and_then(|p| p.get("id")));
        match value {
            Value::String(text) => self.attribute("value", text),
            Value::Number(n) => self.attribute("value", &n.to_string()),
            Value::Bool(b) => self.attribute("value", if *b { "true" } else { "false" }),
            _ => {}
        }
        match partner {
            Some(p) if p.keys().any(|k| k != "id") => {
                self.out.push('>');
                self.children(p, &["id"], self.order.element)?;
                let _ = write!(self.out, "</{name}>");
            }
            _ => self.out.push_str("/>"),
        }
        Ok(())
    }

    fn attribute_if_string(&mut self, name: &str, value: Option<&Value>) {
        if let Some(text) = value.and_then(Value::as_str) {
            self.attribute(name, text);
        }
    }

    fn attribute(&mut self, name: &str, text: &str) {
        let _ = write!(self.out, " {name}=\"");
        escape_into(&mut self.out, text);
        self.out.push('"');
    }

    /// Narrative XHTML is already markup; text that is not gets wrapped and escaped.
    fn xhtml(&mut self, text: &str) {
        if text.trim_start().starts_with("<div") {
            self.out.push_str(text);
        } else {
            let _ = write!(self.out, "<div xmlns=\"{XHTML_NAMESPACE}\">");
            escape_into(&mut self.out, text);
            self.out.push_str("</div>");
        }
    }

    fn check_name(&self, name: &str) -> Result<(), FhirXmlError> {
        let mut chars = name.chars();
        let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        if starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(())
        } else {
            Err(FhirXmlError::BadName {
                path: self.path(),
                name: name.to_owned(),
            })
        }
    }
}

/// Escapes text for an attribute or element; line breaks and tabs become character references
/// so attribute values keep them, and characters XML 1.0 cannot carry become U+FFFD.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Writes in the JSON's own order: no type is known.
    fn write(resource: &Value) -> Result<String, FhirXmlError> {
        to_xml(resource, &ElementOrder::new(Vec::<(&str, Vec<_>)>::new()))
    }

    #[test]
    fn elements_are_written_in_definition_order_whatever_the_json_order() {
        let order = ElementOrder::new([
            (
                "Patient",
                vec![
                    ("id", "id"),
                    ("meta", "Meta"),
                    ("extension", "Extension"),
                    ("name", "HumanName"),
                    ("birthDate", "date"),
                    ("contained", "Resource"),
                ],
            ),
            ("Meta", vec![("versionId", "id"), ("profile", "uri")]),
            (
                "HumanName",
                vec![
                    ("extension", "Extension"),
                    ("family", "string"),
                    ("given", "string"),
                ],
            ),
            (
                "Extension",
                vec![
                    ("extension", "Extension"),
                    ("url", "uri"),
                    ("valueString", "string"),
                ],
            ),
            (
                "Element",
                vec![("id", "string"), ("extension", "Extension")],
            ),
        ]);
        let patient = json!({
            "resourceType": "Patient",
            "unknown": "kept after the known elements",
            "_birthDate": {"extension": [{"valueString": "s", "url": "u"}]},
            "name": [{"given": ["A"], "family": "F", "extension": [{"url": "n"}]}],
            "contained": [{"resourceType": "Patient", "name": [{"given": ["B"], "family": "G"}], "id": "c"}],
            "meta": {"profile": ["p"], "versionId": "1"},
            "id": "1"
        });
        assert_eq!(
            to_xml(&patient, &order).unwrap(),
            concat!(
                "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"1\"/>",
                "<meta><versionId value=\"1\"/><profile value=\"p\"/></meta>",
                "<name><extension url=\"n\"></extension><family value=\"F\"/><given value=\"A\"/></name>",
                "<birthDate><extension url=\"u\"><valueString value=\"s\"/></extension></birthDate>",
                "<contained><Patient><id value=\"c\"/><name><family value=\"G\"/><given value=\"B\"/></name></Patient></contained>",
                "<unknown value=\"kept after the known elements\"/></Patient>"
            )
        );
    }

    #[test]
    fn operation_outcome_becomes_fhir_xml() {
        let outcome = json!({
            "resourceType": "OperationOutcome",
            "id": "a1",
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},
            "issue": [{
                "severity": "error",
                "code": "invalid",
                "details": {"coding": [{"system": "s", "code": "BAD_REQUEST", "display": "Bad request"}]},
                "diagnostics": "a < b & \"c\"\nnext"
            }]
        });
        assert_eq!(
            write(&outcome).unwrap(),
            concat!(
                "<OperationOutcome xmlns=\"http://hl7.org/fhir\"><id value=\"a1\"/>",
                "<meta><profile value=\"https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1\"/></meta>",
                "<issue><severity value=\"error\"/><code value=\"invalid\"/>",
                "<details><coding><system value=\"s\"/><code value=\"BAD_REQUEST\"/><display value=\"Bad request\"/></coding></details>",
                "<diagnostics value=\"a &lt; b &amp; &quot;c&quot;&#xA;next\"/></issue></OperationOutcome>"
            )
        );
    }

    #[test]
    fn element_ids_extension_urls_and_primitive_extensions_are_attributes_and_children() {
        let patient = json!({
            "resourceType": "Patient",
            "extension": [{"id": "e1", "url": "http://x/ext", "valueBoolean": true}],
            "birthDate": "1970-01-01",
            "_birthDate": {"id": "b", "extension": [{"url": "http://x/time", "valueInteger": 3}]},
            "name": [{"given": ["A", "B"], "_given": [null, {"id": "g2"}]}],
            "photo": [{"url": "http://not-an-attribute/"}]
        });
        let xml = write(&patient).unwrap();
        assert!(
            xml.contains("<extension id=\"e1\" url=\"http://x/ext\"><valueBoolean value=\"true\"/></extension>"),
            "{xml}"
        );
        assert!(xml.contains("<birthDate id=\"b\" value=\"1970-01-01\"><extension url=\"http://x/time\"><valueInteger value=\"3\"/></extension></birthDate>"), "{xml}");
        assert!(
            xml.contains("<given value=\"A\"/><given id=\"g2\" value=\"B\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<photo><url value=\"http://not-an-attribute/\"/></photo>"),
            "{xml}"
        );
    }

    #[test]
    fn nested_resources_and_narrative_are_written_in_place() {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": {
                "resourceType": "Patient",
                "id": "2",
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Hi</div>"}
            }}]
        });
        let xml = write(&bundle).unwrap();
        assert!(xml.contains("<entry><resource><Patient><id value=\"2\"/><text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">Hi</div></text></Patient></resource></entry>"), "{xml}");
        assert_eq!(xml.matches("xmlns=\"http://hl7.org/fhir\"").count(), 1);
    }

    #[test]
    fn json_without_an_xml_form_is_refused() {
        assert!(matches!(
            write(&json!([1])),
            Err(FhirXmlError::NotAResource { .. })
        ));
        assert!(matches!(
            write(&json!({"resourceType": "Basic", "a": [[1]]})),
            Err(FhirXmlError::NestedArray { path }) if path == "Basic.a"
        ));
        assert!(matches!(
            write(&json!({"resourceType": "Basic", "a b": 1})),
            Err(FhirXmlError::BadName { name, .. }) if name == "a b"
        ));
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let xml = write(&json!({"resourceType": "Basic", "a": "x\u{1}y"})).unwrap();
        assert_eq!(
            xml,
            "<Basic xmlns=\"http://hl7.org/fhir\"><a value=\"x\u{FFFD}y\"/></Basic>"
        );
    }
}
