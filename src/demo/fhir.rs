//! Small accessors over FHIR JSON resources, so the use-case modules read like the
//! specification rather than like JSON plumbing. None of them panic on odd input.

use serde_json::{json, Value};

/// The resource's `resourceType`, or "" when it has none.
pub fn resource_type(resource: &Value) -> &str {
    resource["resourceType"].as_str().unwrap_or("")
}

/// The resource's logical `id`, or "" when it has none.
pub fn id(resource: &Value) -> &str {
    resource["id"].as_str().unwrap_or("")
}

/// Whether `meta.profile` lists `profile`.
pub fn has_profile(resource: &Value, profile: &str) -> bool {
    resource["meta"]["profile"]
        .as_array()
        .is_some_and(|all| all.iter().any(|p| p.as_str() == Some(profile)))
}

/// The value of the first identifier with this `system`.
pub fn identifier<'a>(resource: &'a Value, system: &str) -> Option<&'a str> {
    resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"].as_str() == Some(system))?["value"]
        .as_str()
}

/// The first extension with this `url`.
pub fn extension<'a>(resource: &'a Value, url: &str) -> Option<&'a Value> {
    resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"].as_str() == Some(url))
}

/// The id in a reference to `kind`: `Patient/2` (or an absolute URL ending with it) gives `2`.
pub fn reference_id<'a>(reference: &'a Value, kind: &str) -> Option<&'a str> {
    let text = reference["reference"].as_str()?;
    let (before, id) = text.rsplit_once('/')?;
    let named = before.rsplit('/').next()?;
    (named == kind && !id.is_empty()).then_some(id)
}

/// A `{"reference": "Kind/id"}` value.
pub fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

/// Sets `meta.versionId` (and `meta.lastUpdated` when given), keeping the other meta fields.
/// Does nothing to a value that is not a JSON object.
pub fn set_version(resource: &mut Value, version: u64, last_updated: Option<&str>) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("versionId".into(), Value::String(version.to_string()));
        if let Some(when) = last_updated {
            meta.insert("lastUpdated".into(), Value::String(when.to_owned()));
        }
    }
}

/// The id of an Appointment's first participant actor of `kind`.
pub fn participant<'a>(appointment: &'a Value, kind: &str) -> Option<&'a str> {
    appointment["participant"]
        .as_array()?
        .iter()
        .find_map(|p| reference_id(&p["actor"], kind))
}

/// The delivery channel an Appointment declares, if any.
pub fn declared_channel(appointment: &Value) -> Option<&str> {
    extension(appointment, super::profiles::DELIVERY_CHANNEL).and_then(|e| e["valueCode"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_relative_or_absolute_and_by_kind() {
        let r = json!({"reference": "Patient/2"});
        assert_eq!(reference_id(&r, "Patient"), Some("2"));
        assert_eq!(reference_id(&r, "Location"), None);
        let abs = json!({"reference": "https://x.nhs.uk/A1/STU3/1/gpconnect/Patient/7"});
        assert_eq!(reference_id(&abs, "Patient"), Some("7"));
        for odd in [
            json!({}),
            json!({"reference": 3}),
            json!({"reference": "Patient/"}),
            json!("x"),
        ] {
            assert_eq!(reference_id(&odd, "Patient"), None);
        }
    }

    #[test]
    fn accessors_tolerate_any_shape() {
        for odd in [
            json!(null),
            json!([1]),
            json!({"meta": 1, "identifier": {}, "extension": "x"}),
        ] {
            assert_eq!(resource_type(&odd), "");
            assert!(!has_profile(&odd, "p"));
            assert_eq!(identifier(&odd, "s"), None);
            assert!(extension(&odd, "u").is_none());
        }
    }

    #[test]
    fn set_version_keeps_the_profile() {
        let mut r = json!({"meta": {"profile": ["p"]}});
        set_version(&mut r, 3, Some("2024-01-01T00:00:00Z"));
        assert_eq!(
            r["meta"],
            json!({"profile": ["p"], "versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z"})
        );
        let mut bare = json!({"resourceType": "Patient"});
        set_version(&mut bare, 1, None);
        assert_eq!(bare["meta"]["versionId"], "1");
    }
}
