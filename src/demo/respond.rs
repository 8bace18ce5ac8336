//! Turning a use case's result into the HTTP answer: FHIR JSON or XML as negotiated,
//! `Cache-Control: no-store`, the `ETag` / `Location` of a single resource, and no body at
//! all when the consumer asked for `Prefer: return=minimal`.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::config::rejection::Rejection;
use crate::demo::errors::{reject, INTERNAL_SERVER_ERROR};
use crate::demo::{fhir, profiles};
use crate::wire::body::{self, Body};
use crate::wire::format::Format;
use crate::wire::format::{FHIR_JSON_UTF8, FHIR_XML_UTF8};
use crate::wire::xml::{self, ElementOrder};

/// A successful answer: a resource, its status, and where a created resource lives.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    resource: Value,
    location: Option<String>,
    minimal: bool,
}

impl Reply {
    /// 200 with `resource`.
    pub fn ok(resource: Value) -> Self {
        Self {
            status: StatusCode::OK,
            resource,
            location: None,
            minimal: false,
        }
    }

    /// 201 with `resource`, created at `location`.
    pub fn created(resource: Value, location: String) -> Self {
        Self {
            status: StatusCode::CREATED,
            resource,
            location: Some(location),
            minimal: false,
        }
    }

    /// The same answer without a body (`Prefer: return=minimal`): status, `ETag` and
    /// `Location` stay.
    pub fn minimal(self) -> Self {
        Self {
            minimal: true,
            ..self
        }
    }

    /// The HTTP response in the negotiated format; XML has each type's elements in `order`.
    pub fn render(self, format: Format, order: &ElementOrder) -> Result<Response<Body>, Rejection> {
        let (text, content_type) = match format {
            _ if self.minimal => (String::new(), ""),
            Format::Json => (self.resource.to_string(), FHIR_JSON_UTF8),
            Format::Xml => (
                xml::to_xml(&self.resource, order).map_err(|e| {
                    reject(
                        INTERNAL_SERVER_ERROR,
                        format!("The demo provider could not write its answer as XML: {e}"),
                    )
                })?,
                FHIR_XML_UTF8,
            ),
        };
        let mut response = Response::new(body::full(text));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if !content_type.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let version = self.resource["meta"]["versionId"].as_str();
        if let Some(etag) = version
            .filter(|_| fhir::resource_type(&self.resource) != "Bundle")
            .and_then(|v| HeaderValue::from_str(&format!("W/\"{v}\"")).ok())
        {
            headers.insert(ETAG, etag);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(LOCATION, location);
        }
        Ok(response)
    }
}

/// A `searchset` Bundle of the search's `matches` and the resources it `includes`, each entry
/// with its absolute `fullUrl` under `base` and its `search.mode`. As FHIR defines it, `total`
/// counts the matches only, and a search that finds nothing has no `entry` (FHIR JSON has no
/// empty arrays).
pub fn searchset(base: &str, matches: Vec<Value>, includes: Vec<Value>) -> Value {
    let total = matches.len();
    let modes = std::iter::repeat("match").zip(matches);
    let entry: Vec<Value> = modes
        .chain(std::iter::repeat("include").zip(includes))
        .map(|(mode, resource)| {
            json!({
                "fullUrl": format!("{base}/{}/{}", fhir::resource_type(&resource), fhir::id(&resource)),
                "resource": resource,
                "search": { "mode": mode },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": { "profile": [profiles::SEARCHSET_BUNDLE] },
        "type": "searchset",
        "total": total,
    });
    if !entry.is_empty() {
        bundle["entry"] = Value::Array(entry);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::elements::Elements;
    use http_body_util::BodyExt;

    fn order() -> &'static ElementOrder {
        Elements::embedded().unwrap().xml_order()
    }

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_resource_is_answered_in_json_or_xml_with_no_store_and_etag() {
        let patient = json!({"resourceType": "Patient", "id": "1", "meta": {"versionId": "3"}});
        let json = Reply::ok(patient.clone())
            .render(Format::Json, order())
            .unwrap();
        assert_eq!(json.headers()[CONTENT_TYPE], FHIR_JSON_UTF8);
        assert_eq!(json.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(json.headers()[ETAG], "W/\"3\"");
        let xml = Reply::created(patient, "https://x/Patient/1".into())
            .render(Format::Xml, order())
            .unwrap();
        assert_eq!(xml.status(), StatusCode::CREATED);
        assert_eq!(xml.headers()[CONTENT_TYPE], FHIR_XML_UTF8);
        assert_eq!(xml.headers()[LOCATION], "https://x/Patient/1");
        assert!(body_text(xml)
            .await
            .starts_with("<Patient xmlns=\"http://hl7.org/fhir\">"));
    }

    #[tokio::test]
    async fn a_minimal_answer_keeps_status_and_headers_but_has_no_body() {
        let appointment =
            json!({"resourceType": "Appointment", "id": "1", "meta": {"versionId": "2"}});
        let response = Reply::created(appointment, "https://x/Appointment/1".into())
            .minimal()
            .render(Format::Json, order())
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[ETAG], "W/\"2\"");
        assert_eq!(response.headers()[LOCATION], "https://x/Appointment/1");
        assert!(response.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(body_text(response).await, "");
    }

    #[test]
    fn searchsets_count_matches_mark_each_entry_and_have_no_etag() {
        let bundle = searchset(
            "https://p/A1/STU3/1/gpconnect",
            vec![json!({"resourceType": "Slot", "id": "s"})],
            vec![json!({"resourceType": "Schedule", "id": "1"})],
        );
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            "https://p/A1/STU3/1/gpconnect/Slot/s"
        );
        assert_eq!(bundle["total"], 1);
        assert_eq!(bundle["entry"][0]["search"]["mode"], "match");
        assert_eq!(bundle["entry"][1]["search"]["mode"], "include");
        let empty = searchset("https://p", Vec::new(), Vec::new());
        assert_eq!(empty["total"], 0);
        assert!(empty.get("entry").is_none(), "{empty}");
        let response = Reply::ok(bundle).render(Format::Json, order()).unwrap();
        assert!(response.headers().get(ETAG).is_none());
    }
}
