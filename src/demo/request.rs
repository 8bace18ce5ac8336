//! The parts of a request the demo's use cases read: the path below the service root, the
//! query parameters (percent-decoded) and the body, read whole up to a limit.

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use crate::config::rejection::Rejection;
use crate::demo::errors::{self, reject};
use crate::wire::body::RequestBody;

/// The largest request body the demo reads: GP Connect payloads are a few kilobytes.
pub const BODY_LIMIT: usize = 1 << 20;

/// Query parameters in order, names and values percent-decoded.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl Query {
    /// Parses `a=1&b=2`; `+` is kept as is, since FHIR values such as `fhir+json` use it.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name), decode(value))
            })
            .collect();
        Self { pairs }
    }

    /// Every value of parameter `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a search parameter that may appear once at most: a repeated one is a
    /// BAD_REQUEST, as the assurance suite expects of a search.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Rejection> {
        let values = self.pairs.iter().filter(|(n, _)| n == name);
        at_most_one(values.map(|(_, v)| v.as_str()), name, errors::BAD_REQUEST)
    }

    /// The value of a search parameter that must appear exactly once: a missing one is a
    /// BAD_REQUEST (the suite's "missing parameters" cases).
    pub fn required(&self, name: &str) -> Result<&str, Rejection> {
        self.one(name)?.ok_or_else(|| {
            reject(
                errors::BAD_REQUEST,
                format!("The `{name}` parameter is required"),
            )
        })
    }
}

/// A request, as the use cases see it.
#[derive(Debug, Default)]
pub struct Input {
    /// Path segments below the service root, e.g. `["Patient", "2"]`.
    pub segments: Vec<String>,
    pub query: Query,
    pub body: Bytes,
    /// The `If-Match` header, as sent.
    pub if_match: Option<String>,
}

impl Input {
    /// The path segment at `index` (the logical id of a read is at 1), or "".
    pub fn segment(&self, index: usize) -> &str {
        self.segments.get(index).map_or("", String::as_str)
    }

    /// The body as JSON; a missing or malformed body is answered with `malformed` (the
    /// use-case pages differ: most say BAD_REQUEST, structured says INVALID_RESOURCE).
    pub fn json(&self, malformed: &'static str) -> Result<Value, Rejection> {
        if self.body.is_empty() {
            return Err(reject(
                malformed,
                "The request has no body; send the FHIR resource as application/fhir+json",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            reject(
                malformed,
                format!("The request body is not valid JSON: {e}"),
            )
        })
    }
}

/// Splits the path (no query) below the service root into segments.
pub fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect()
}

/// Reads the whole body, refusing what the demo cannot read: more than `BODY_LIMIT` bytes,
/// a compressed body, or FHIR XML (the demo parses JSON only; it answers in either).
pub async fn read_body(body: RequestBody, headers: &HeaderMap) -> Result<Bytes, Rejection> {
    if headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(reject(
            errors::NOT_IMPLEMENTED,
            "The demo provider does not read compressed request bodies; send it without Content-Encoding",
        ));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("xml") {
        return Err(reject(
            errors::NOT_IMPLEMENTED,
            "The demo provider reads request bodies as FHIR JSON only; send Content-Type: application/fhir+json (responses can still be XML)",
        ));
    }
    match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(reject(
            errors::BAD_REQUEST,
            format!("The request body is larger than {BODY_LIMIT} bytes, the most the demo provider reads"),
        )),
        Err(e) => Err(reject(
            errors::BAD_REQUEST,
            format!("The request body could not be read: {e}"),
        )),
    }
}

/// The only item of `values`, if any: a parameter given twice is refused with `repeated`.
pub fn at_most_one<T>(
    mut values: impl Iterator<Item = T>,
    name: &str,
    repeated: &'static str,
) -> Result<Option<T>, Rejection> {
    let first = values.next();
    if values.next().is_some() {
        return Err(reject(
            repeated,
            format!("The `{name}` parameter may be given only once"),
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_repeats_are_seen() {
        let q = Query::parse(Some(
            "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9476719931&start=ge2024&start=le2025&_format=fhir+json&flag",
        ));
        assert_eq!(
            q.required("identifier").unwrap(),
            "https://fhir.nhs.uk/Id/nhs-number|9476719931"
        );
        assert_eq!(q.all("start").collect::<Vec<_>>(), ["ge2024", "le2025"]);
        assert_eq!(q.one("start").unwrap_err().error, errors::BAD_REQUEST);
        assert_eq!(q.one("_format").unwrap(), Some("fhir+json"));
        assert_eq!(q.one("flag").unwrap(), Some(""));
        assert_eq!(q.one("missing").unwrap(), None);
        assert_eq!(
            q.required("missing").unwrap_err().error,
            errors::BAD_REQUEST
        );
    }

    #[test]
    fn segments_skip_empty_parts() {
        assert_eq!(segments("/Patient/2/"), ["Patient", "2"]);
        assert!(segments("").is_empty());
    }

    #[test]
    fn bodies_are_json_or_refused_with_the_given_error() {
        let input = |body: &'static str| Input {
            body: Bytes::from_static(body.as_bytes()),
            ..Input::default()
        };
        assert_eq!(
            input("{\"a\":1}").json(errors::BAD_REQUEST).unwrap()["a"],
            1
        );
        assert_eq!(
            input("{").json(errors::INVALID_RESOURCE).unwrap_err().error,
            errors::INVALID_RESOURCE
        );
        assert_eq!(
            input("").json(errors::BAD_REQUEST).unwrap_err().error,
            errors::BAD_REQUEST
        );
    }
}
