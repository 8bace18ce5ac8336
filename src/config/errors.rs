//! The error catalogue: one data file per error in `error-catalog/`, parsed and validated at
//! start-up into templates, and the single function that turns a `Rejection` into a response.

use std::collections::HashMap;
use std::path::Path;

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use include_dir::{include_dir, Dir};
use serde::Deserialize;
use serde_json::Value;

use crate::config::elements::Elements;
use crate::config::problems::{ConfigError, Problem};
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::wire::body::{self, Body};
use crate::wire::format::{Format, FHIR_JSON_UTF8, FHIR_XML_UTF8};
use crate::wire::headers::{header_text, DIAGNOSTICS_HEADER, TRACE_ID};
use crate::wire::xml::{self, ElementOrder};

/// The catalogue shipped inside the binary, used when no directory is given or found.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/error-catalog");

/// Who produces an error in real life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Spine's SSP itself (GP Connect 1.2.7 payloads).
    Ssp,
    /// A GP Connect provider (`GPConnect-OperationOutcome-1`).
    Provider,
}

impl Source {
    /// The name the catalogue files write (`ssp`, `provider`), as the admin API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ssp => "ssp",
            Source::Provider => "provider",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    status: u16,
    source: Source,
    summary: String,
    outcome: Value,
}

/// A piece of a pre-rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    /// A fresh UUID per response, for the OperationOutcome `id`.
    Uuid,
    Value(Placeholder),
}

/// One catalogue error, ready to render.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The catalogue id, e.g. `endpoint-varies`: the file name without `.json`.
    pub id: String,
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// Whether Spine or a provider answers with it; decides where a fault answering with it acts.
    pub source: Source,
    /// One line on when it is answered: the diagnostics a fault uses when it gives none.
    pub summary: String,
    /// The compact JSON of the OperationOutcome, cut at its placeholders.
    segments: Vec<Segment>,
}

/// Every error ssp-sim can answer with, by id.
#[derive(Debug, Clone)]
pub struct ErrorCatalog {
    entries: HashMap<String, Entry>,
    /// The STU3 element order provider errors are written in as XML.
    order: &'static ElementOrder,
}

impl ErrorCatalog {
    /// Loads every `*.json` file of a directory.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let shown = dir.display().to_string();
        let read = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::file(
                &shown,
                format!("cannot read the error catalogue directory: {e}"),
            )
        })?;
        let mut files = Vec::new();
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::file(&path.display().to_string(), format!("cannot read: {e}"))
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        Self::from_files(files)
    }

    /// The catalogue compiled into the binary.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::from_files(EMBEDDED.files().filter_map(|f| {
            let name = format!("error-catalog/{}", f.path().display());
            f.contents_utf8().map(|text| (name, text.to_owned()))
        }))
    }

    /// Parses and validates files given as (name, contents).
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let order = Elements::embedded()?.xml_order();
        let mut entries = HashMap::new();
        let mut problems = Vec::new();
        for (name, text) in files {
            match parse_entry(&name, &text, order) {
                Ok(entry) => {
                    if let Some(old) = entries.insert(entry.id.clone(), entry) {
                        problems.push(problem(
                            &name,
                            None,
                            format!("id `{}` is used by two files; ids are unique", old.id),
                        ));
                    }
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        for required in ids::ALL {
            if !entries.contains_key(*required) {
                problems.push(problem(
                    "error-catalog",
                    None,
                    format!("the catalogue has no `{required}` entry; add error-catalog/{required}.json"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Self { entries, order })
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The entry with this catalogue id, if there is one.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// All entries, sorted by status then id.
    pub fn entries(&self) -> Vec<&Entry> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_by(|a, b| (a.status, &a.id).cmp(&(b.status, &b.id)));
        all
    }

    /// Renders a rejection as its OperationOutcome response, echoing the consumer's trace id.
    /// Provider errors come in the negotiated `format`; SSP errors are JSON whatever was asked,
    /// as Spine's are.
    pub fn render(
        &self,
        rejection: &Rejection,
        trace_id: Option<&HeaderValue>,
        format: Format,
    ) -> Response<Body> {
        let entry = self
            .entries
            .get(rejection.error.as_ref())
            .unwrap_or_else(|| &self.entries[ids::INTERNAL_SERVER_ERROR]);
        let json = entry.render_json(rejection);
        let xml = match (format, entry.source) {
            (Format::Xml, Source::Provider) => to_xml(&json, self.order),
            _ => None,
        };
        let (text, content_type) = match xml {
            Some(xml) => (xml, FHIR_XML_UTF8),
            None => (json, FHIR_JSON_UTF8),
        };
        let mut response = Response::new(body::full(text));
        *response.status_mut() = entry.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(trace) = trace_id {
            headers.insert(TRACE_ID, trace.clone());
        }
        for (name, value) in &rejection.headers {
            headers.insert(name.clone(), value.clone());
        }
        // Some SSP payloads are fixed text (405, 415); the reason still reaches the consumer.
        if let Some(reason) = rejection.value(Placeholder::Diagnostics) {
            if !entry.placeholders().any(|p| p == Placeholder::Diagnostics) {
                headers.insert(DIAGNOSTICS_HEADER, header_text(reason));
            }
        }
        response
    }
}

impl Entry {
    /// The OperationOutcome JSON with the rejection's values in place.
    pub fn render_json(&self, rejection: &Rejection) -> String {
        let mut out = String::with_capacity(512);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Uuid => out.push_str(&uuid::Uuid::new_v4().to_string()),
                Segment::Value(p) => {
                    let value = rejection.value(*p).unwrap_or("");
                    let quoted = Value::String(value.to_owned()).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
            }
        }
        out
    }

    /// The placeholders this entry's template uses.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Value(p) => Some(*p),
            _ => None,
        })
    }
}

/// The XML form of a rendered OperationOutcome. Templates are checked for an XML form at
/// load, so `None` (answered in JSON instead) only follows a broken invariant.
fn to_xml(json: &str, order: &ElementOrder) -> Option<String> {
    let value: Value = serde_json::from_str(json).ok()?;
    xml::to_xml(&value, order)
        .inspect_err(
            |e| tracing::error!(error = %e, "catalogue error has no XML form; answering in JSON"),
        )
        .ok()
}

fn problem(file: &str, key: Option<&str>, message: String) -> Problem {
    Problem {
        file: file.to_owned(),
        line: None,
        key: key.map(str::to_owned),
        message,
    }
}

fn parse_entry(file: &str, text: &str, order: &ElementOrder) -> Result<Entry, Vec<Problem>> {
    let raw: RawEntry = serde_json::from_str(text).map_err(|e| {
        vec![Problem {
            file: file.to_owned(),
            line: Some(e.line()),
            key: None,
            message: format!("not a valid catalogue entry: {e}"),
        }]
    })?;
    let mut problems = Vec::new();
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if stem != raw.id {
        problems.push(problem(
            file,
            Some("id"),
            format!("id `{}` must match the file name `{stem}.json`", raw.id),
        ));
    }
    let status = StatusCode::from_u16(raw.status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error());
    if status.is_none() {
        problems.push(problem(
            file,
            Some("status"),
            format!("{} is not an HTTP error status (400-599)", raw.status),
        ));
    }
    check_outcome(file, &raw.outcome, &mut problems);
    if let Err(e) = xml::to_xml(&raw.outcome, order) {
        problems.push(problem(
            file,
            Some("outcome"),
            format!("has no FHIR XML form, which provider errors need: {e}"),
        ));
    }
    let segments = match segment(&raw.outcome) {
        Ok(segments) => segments,
        Err(name) => {
            problems.push(problem(
                file,
                Some("outcome"),
                format!(
                    "unknown placeholder `{{{name}}}`; known: {{uuid}} (as the top-level id) and {}",
                    Placeholder::ALL.map(|p| format!("{{{}}}", p.name())).join(", ")
                ),
            ));
            Vec::new()
        }
    };
    match status {
        Some(status) if problems.is_empty() => Ok(Entry {
            id: raw.id,
            status,
            source: raw.source,
            summary: raw.summary,
            segments,
        }),
        _ => Err(problems),
    }
}

fn check_outcome(file: &str, outcome: &Value, problems: &mut Vec<Problem>) {
    if outcome.get("resourceType").and_then(Value::as_str) != Some("OperationOutcome") {
        problems.push(problem(
            file,
            Some("outcome.resourceType"),
            "must be \"OperationOutcome\"".into(),
        ));
    }
    if let Some(id) = outcome.get("id") {
        if id.as_str() != Some("{uuid}") {
            problems.push(problem(
                file,
                Some("outcome.id"),
                "must be \"{uuid}\" (a fresh id per response) or absent".into(),
            ));
        }
    }
    match outcome.get("issue").and_then(Value::as_array) {
        Some(issues) if !issues.is_empty() => {
            for (i, issue) in issues.iter().enumerate() {
                for field in ["severity", "code"] {
                    if issue.get(field).and_then(Value::as_str).is_none() {
                        problems.push(problem(
                            file,
                            Some(&format!("outcome.issue[{i}].{field}")),
                            "is required (a string)".into(),
                        ));
                    }
                }
            }
        }
        _ => problems.push(problem(
            file,
            Some("outcome.issue"),
            "must be a non-empty array".into(),
        )),
    }
}

/// Cuts the compact JSON of a template at its `{name}` placeholders. Structural braces never
/// touch a letter in compact JSON, so any `{word}` is inside a string.
fn segment(outcome: &Value) -> Result<Vec<Segment>, String> {
    let json = outcome.to_string();
    let mut segments = Vec::new();
    let mut rest = json.as_str();
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            segments.push(Segment::Text(rest[..start].to_owned()));
            segments.push(match name {
                "uuid" => Segment::Uuid,
                other => Segment::Value(Placeholder::parse(other).ok_or_else(|| other.to_owned())?),
            });
            rest = &after[name_len + 1..];
        } else {
            segments.push(Segment::Text(rest[..=start].to_owned()));
            rest = after;
        }
    }
    segments.push(Segment::Text(rest.to_owned()));
    segments.retain(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> ErrorCatalog {
        ErrorCatalog::embedded().expect("the shipped catalogue is valid")
    }

    #[test]
    fn endpoint_varies_renders_the_1_2_7_payload() {
        let rejection = Rejection::new(ids::ENDPOINT_VARIES)
            .with(
                Placeholder::Endpoint,
                "https://supplier.thirdparty.nhs.uk/v1/fhir/",
            )
            .with(Placeholder::CpaId, "S000000000001")
            .with(
                Placeholder::TargetUrl,
                "https://supplier.thirdparty.nhs.uk/v1/test",
            );
        let json = catalog()
            .get(ids::ENDPOINT_VARIES)
            .unwrap()
            .render_json(&rejection);
        let v: Value = serde_json::from_str(&json).unwrap();
        let display = "ENDPOINT_https://supplier.thirdparty.nhs.uk/v1/fhir/_CPAID_S000000000001_VARIES_FROM_TARGETURL_https://supplier.thirdparty.nhs.uk/v1/test";
        assert_eq!(v["issue"][0]["details"]["coding"][0]["display"], display);
        assert_eq!(v["issue"][0]["diagnostics"], display);
        assert_eq!(v["issue"][0]["details"]["coding"][0]["code"], "400");
        assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn values_are_json_escaped() {
        // (A control character never gets this far: `Rejection::with` replaces it.)
        let rejection = Rejection::bad_request("quote \" and backslash \\ and newline \n");
        let json = catalog()
            .get(ids::BAD_REQUEST)
            .unwrap()
            .render_json(&rejection);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["issue"][0]["diagnostics"],
            "quote \" and backslash \\ and newline ?"
        );
    }

    #[test]
    fn method_not_allowed_has_no_id_and_no_diagnostics() {
        let json = catalog()
            .get(ids::METHOD_NOT_ALLOWED)
            .unwrap()
            .render_json(&Rejection::new(ids::METHOD_NOT_ALLOWED));
        let v: Value = serde_json::from_str(&json).unwrap();
        assert!(v.get("id").is_none());
        assert!(v["issue"][0].get("diagnostics").is_none());
        assert_eq!(v["issue"][0]["severity"], "fatal");
    }

    #[test]
    fn each_response_gets_a_fresh_id() {
        let c = catalog();
        let r = Rejection::new(ids::ERROR_COMMUNICATING);
        let a: Value =
            serde_json::from_str(&c.get(ids::ERROR_COMMUNICATING).unwrap().render_json(&r))
                .unwrap();
        let b: Value =
            serde_json::from_str(&c.get(ids::ERROR_COMMUNICATING).unwrap().render_json(&r))
                .unwrap();
        assert_ne!(a["id"], b["id"]);
    }

    fn trace() -> HeaderValue {
        HeaderValue::from_static("5a7a1f1e-2b8a-4f4c-9a0e-3c2f1d0b9e71")
    }

    #[test]
    fn provider_errors_follow_the_negotiated_format_and_ssp_errors_stay_json() {
        let c = catalog();
        let response = c.render(
            &Rejection::bad_request("JWT claim exp must be iat + 300 (iat 1, exp 2)"),
            Some(&trace()),
            Format::Xml,
        );
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CONTENT_TYPE], FHIR_XML_UTF8);
        assert_eq!(response.headers()[TRACE_ID], trace());
        let response = c.render(
            &Rejection::new(ids::UNSUPPORTED_MEDIA_TYPE),
            None,
            Format::Xml,
        );
        assert_eq!(response.headers()[CONTENT_TYPE], FHIR_JSON_UTF8);
    }

    #[test]
    fn every_shipped_entry_has_an_xml_form() {
        let c = catalog();
        for entry in c.entries() {
            let rejection =
                Rejection::new(entry.id.clone()).with(Placeholder::Diagnostics, "a <b> & c");
            let xml = to_xml(&entry.render_json(&rejection), c.order).unwrap();
            assert!(
                xml.starts_with("<OperationOutcome xmlns=\"http://hl7.org/fhir\">"),
                "{xml}"
            );
        }
    }

    #[test]
    fn bad_entries_are_refused_with_the_file_and_key() {
        let files = vec![(
            "error-catalog/oops.json".to_owned(),
            r#"{"id":"other","status":200,"source":"ssp","summary":"x","outcome":{"resourceType":"Patient","issue":[],"x":"{nope}"}}"#.to_owned(),
        )];
        let text = ErrorCatalog::from_files(files).unwrap_err().to_string();
        assert!(
            text.contains("oops.json: id: id `other` must match"),
            "{text}"
        );
        assert!(
            text.contains("status: 200 is not an HTTP error status"),
            "{text}"
        );
        assert!(text.contains("outcome.resourceType"), "{text}");
        assert!(
            text.contains("outcome.issue: must be a non-empty array"),
            "{text}"
        );
        assert!(text.contains("unknown placeholder `{nope}`"), "{text}");
        assert!(text.contains("no `endpoint-varies` entry"), "{text}");
    }
}
