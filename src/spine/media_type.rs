//! Check 9: the request body, `Accept` and `_format` name FHIR JSON or FHIR XML.
//! `_format` overrides `Accept`; with neither, the answer follows the request's
//! `Content-Type`, else JSON.

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::HeaderMap;

use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::wire::format::Format;

/// The FHIR media type of a MIME type (parameters ignored), including the DSTU2-era names.
fn fhir_format(mime: &str) -> Option<Format> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/fhir+json" | "application/json+fhir" => Some(Format::Json),
        "application/fhir+xml" | "application/xml+fhir" => Some(Format::Xml),
        _ => None,
    }
}

/// A `charset` parameter other than UTF-8 is refused: GP Connect is UTF-8 only.
fn charset_ok(mime: &str) -> bool {
    mime.split(';').skip(1).all(|param| {
        let mut kv = param.splitn(2, '=');
        let key = kv.next().unwrap_or("").trim();
        let value = kv.next().unwrap_or("").trim().trim_matches('"');
        !key.eq_ignore_ascii_case("charset") || value.eq_ignore_ascii_case("utf-8")
    })
}

fn format_param(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "_format").then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Check 9: the request names FHIR JSON or FHIR XML, and the answer's format is negotiated.
///
/// - Reads: `Content-Type` when a body is sent (`Content-Length` not 0, or
///   `Transfer-Encoding`), the `_format` query parameter, and `Accept`.
/// - Hands on: the [`Format`] answers are given in: `_format`, else the first FHIR type in
///   `Accept`, else (no `Accept`, or a wildcard) the body's format, else JSON.
/// - Refuses: a body that is not FHIR JSON or XML in UTF-8, a `_format` that names neither, or
///   an `Accept` that names neither and no wildcard, with 415
///   [`unsupported-media-type`](ids::UNSUPPORTED_MEDIA_TYPE), the `diagnostics` naming the
///   header or parameter.
pub fn check(headers: &HeaderMap, query: Option<&str>) -> Result<Format, Rejection> {
    let refuse = |what: String| {
        Err(Rejection::new(ids::UNSUPPORTED_MEDIA_TYPE).with(Placeholder::Diagnostics, what))
    };
    let mut body_format = None;
    if has_body(headers) {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match fhir_format(content_type) {
            Some(f) if charset_ok(content_type) => body_format = Some(f),
            _ => return refuse(format!("Content-Type `{content_type}` is not application/fhir+json or application/fhir+xml (UTF-8)")),
        }
    }
    if let Some(wanted) = format_param(query) {
        // A form-encoding client may send the `+` of `fhir+json` as a space.
        let wanted = wanted.replace(' ', "+");
        return match wanted.as_str() {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => fhir_format(other).map_or_else(|| refuse(format!("_format `{other}` is not json, xml, application/fhir+json or application/fhir+xml")), Ok),
        };
    }
    let Some(accept) = headers.get(ACCEPT) else {
        return Ok(body_format.unwrap_or(Format::Json));
    };
    let accept = accept.to_str().unwrap_or("");
    let mut any = false;
    for range in accept.split(',') {
        if let Some(format) = fhir_format(range) {
            return Ok(format);
        }
        let essence = range.split(';').next().unwrap_or("").trim();
        any |= essence == "*/*" || essence == "application/*" || essence.is_empty();
    }
    if any {
        Ok(body_format.unwrap_or(Format::Json))
    } else {
        refuse(format!(
            "Accept `{accept}` names neither application/fhir+json nor application/fhir+xml"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spine::test_headers::headers;

    #[test]
    fn no_accept_means_json_or_the_body_format() {
        assert_eq!(check(&HeaderMap::new(), None).unwrap(), Format::Json);
        let h = headers(&[
            ("content-type", "application/fhir+xml;charset=utf-8"),
            ("content-length", "10"),
        ]);
        assert_eq!(check(&h, None).unwrap(), Format::Xml);
    }

    #[test]
    fn format_parameter_overrides_accept() {
        let h = headers(&[("accept", "application/fhir+json")]);
        assert_eq!(
            check(&h, Some("_format=application/fhir%2Bxml")).unwrap(),
            Format::Xml
        );
        assert_eq!(
            check(&h, Some("_format=application/fhir+xml")).unwrap(),
            Format::Xml
        );
        assert_eq!(check(&h, Some("a=1&_format=xml")).unwrap(), Format::Xml);
        assert!(check(&h, Some("_format=text/html")).is_err());
    }

    #[test]
    fn accept_lists_wildcards_and_legacy_types_are_understood() {
        let h = headers(&[("accept", "text/html, application/json+fhir;q=0.9")]);
        assert_eq!(check(&h, None).unwrap(), Format::Json);
        let h = headers(&[("accept", "*/*")]);
        assert_eq!(check(&h, None).unwrap(), Format::Json);
        let h = headers(&[("accept", "application/json")]);
        assert_eq!(
            check(&h, None).unwrap_err().error,
            ids::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn a_body_needs_a_fhir_content_type_in_utf8() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        assert!(check(&h, None).is_err());
        let h = headers(&[
            ("content-type", "application/fhir+json;charset=iso-8859-1"),
            ("transfer-encoding", "chunked"),
        ]);
        assert!(check(&h, None).is_err());
        let h = headers(&[("content-type", "text/plain"), ("content-length", "0")]);
        assert!(check(&h, None).is_ok());
    }
}
