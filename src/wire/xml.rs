//! FHIR JSON to FHIR XML, for any STU3 resource: what a consumer that asked for
//! `application/fhir+xml` gets. It follows the mapping of the FHIR specification's XML and
//! JSON pages (<http://hl7.org/fhir/STU3/json.html>), in the JSON's own element order, which for
//! FHIR JSON is already the definition order that XML requires.
//!
//! The mapping, in short: a primitive is `<name value=".."/>`, its `_name` partner adds `id`
//! and `extension`; an array is the element repeated; an object with a `resourceType` inside
//! another element is a nested resource (`<resource><Patient>..</Patient></resource>`); an
//! element's `id`, and an extension's `url`, are attributes; `div` is XHTML, written as is.

use std::fmt::Write as _;

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

/// Serialises a FHIR resource given as JSON into FHIR XML (no XML declaration; UTF-8).
pub fn to_xml(resource: &Value) -> Result<String, FhirXmlError> {
    let mut writer = Writer {
        out: String::with_capacity(1024),
        path: Vec::new(),
    };
    writer.resource(resource, true)?;
    Ok(writer.out)
}

struct Writer<'v> {
    out: String,
    /// Where the writer is, for error messages.
    path: Vec<&'v str>,
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
        self.children(object, &["resourceType"])?;
        self.path.pop();
        let _ = write!(self.out, "</{kind}>");
        Ok(())
    }

    /// Writes every member of `object` as child elements, skipping `skip` and the `_name`
    /// partners, which are written with their primitive.
    fn children(
        &mut self,
        object: &'v Map<String, Value>,
        skip: &[&str],
    ) -> Result<(), FhirXmlError> {
        for (name, value) in object {
            if skip.contains(&name.as_str()) || name == "fhir_comments" {
                continue;
            }
            if let Some(base) = name.strip_prefix('_') {
                // A partner without its primitive (the value is absent, only extensions).
                if !object.contains_key(base) {
                    self.element_or_list(base, &Value::Null, Some(value))?;
                }
                continue;
            }
            let partner = object.get(&format!("_{name}"));
            self.element_or_list(name, value, partner)?;
        }
        Ok(())
    }

    fn element_or_list(
        &mut self,
        name: &'v str,
        value: &'v Value,
        partner: Option<&'v Value>,
    ) -> Result<(), FhirXmlError> {
        self.check_name(name)?;
        self.path.push(name);
        let result = match (value, partner) {
            (Value::Array(items), _) => {
                let partners = partner.and_then(Value::as_array);
                items.iter().enumerate().try_for_each(|(i, item)| {
                    let item_partner = partners.and_then(|p| p.get(i));
                    self.element(name, item, item_partner)
                })
            }
            // Only the partner is there and it lists extensions per array position.
            (Value::Null, Some(Value::Array(partners))) => partners
                .iter()
                .try_for_each(|p| self.element(name, &Value::Null, Some(p))),
            _ => self.element(name, value, partner),
        };
        self.path.pop();
        result
    }

    fn element(
        &mut self,
        name: &'v str,
        value: &'v Value,
        partner: Option<&'v Value>,
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
                self.children(object, &skip)?;
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
                self.children(p, &["id"])?;
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
            to_xml(&outcome).unwrap(),
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
        let xml = to_xml(&patient).unwrap();
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
        let xml = to_xml(&bundle).unwrap();
        assert!(xml.contains("<entry><resource><Patient><id value=\"2\"/><text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">Hi</div></text></Patient></resource></entry>"), "{xml}");
        assert_eq!(xml.matches("xmlns=\"http://hl7.org/fhir\"").count(), 1);
    }

    #[test]
    fn json_without_an_xml_form_is_refused() {
        assert!(matches!(
            to_xml(&json!([1])),
            Err(FhirXmlError::NotAResource { .. })
        ));
        assert!(matches!(
            to_xml(&json!({"resourceType": "Basic", "a": [[1]]})),
            Err(FhirXmlError::NestedArray { path }) if path == "Basic.a"
        ));
        assert!(matches!(
            to_xml(&json!({"resourceType": "Basic", "a b": 1})),
            Err(FhirXmlError::BadName { name, .. }) if name == "a b"
        ));
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let xml = to_xml(&json!({"resourceType": "Basic", "a": "x\u{1}y"})).unwrap();
        assert_eq!(
            xml,
            "<Basic xmlns=\"http://hl7.org/fhir\"><a value=\"x\u{FFFD}y\"/></Basic>"
        );
    }
}
