//! Access Document (GP Connect 1.6.0): search for a patient's documents,
//! `GET /Patient/{id}/DocumentReference?_include=...`, answers a searchset of the patient,
//! the organisations and practitioners involved and the matching DocumentReferences; retrieve
//! a document, `GET /Binary/{id}`, answers the Binary, up to the 5 MB limit.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::config::rejection::Rejection;
use crate::demo::dates::{self, Bound};
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::{Document, DOCUMENT_SIZE_LIMIT};
use crate::demo::request::Input;
use crate::demo::respond::{searchset, Reply};
use crate::demo::{fhir, foundations, Site};
use crate::wire::systems;

/// The `_include` and `_revinclude:recurse` values a consumer MUST send.
const INCLUDES: [&str; 4] = [
    "DocumentReference:subject:Patient",
    "DocumentReference:custodian:Organization",
    "DocumentReference:author:Organization",
    "DocumentReference:author:Practitioner",
];
const REVINCLUDE: &str = "PractitionerRole:practitioner";

/// A DocumentReference as the endpoint serves it: `content.attachment` with the Binary's
/// absolute URL and size.
fn document_reference(site: &Site, document: &Document) -> Value {
    let mut reference = document.reference.clone();
    reference["content"][0]["attachment"] = json!({
        "contentType": document.content_type,
        "url": format!("{}/Binary/{}", site.base, document.binary_id),
        "size": document.size,
    });
    reference
}

/// Whether `document` matches the optional `created`, `author` and `description` searches.
fn matches(document: &Document, query: &Filters) -> bool {
    let reference = &document.reference;
    let created = reference["created"]
        .as_str()
        .or(reference["indexed"].as_str())
        .and_then(dates::parse_instant);
    let in_range = |(at, bound): &(jiff::Timestamp, Bound)| match bound {
        Bound::From => created.is_some_and(|c| c >= *at),
        Bound::To => created.is_some_and(|c| c <= *at),
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_lowercase();
    let described = query.description.as_ref().is_none_or(|wanted| {
        text(&reference["description"]).contains(wanted)
            || text(&reference["type"]["coding"][0]["display"]).contains(wanted)
            || text(&reference["type"]["text"]).contains(wanted)
    });
    query.created.iter().all(in_range) && described
}

/// The optional search parameters.
#[derive(Default)]
struct Filters {
    created: Vec<(jiff::Timestamp, Bound)>,
    description: Option<String>,
}

fn filters(input: &Input) -> Result<Filters, Rejection> {
    let mut found = Filters::default();
    for value in input.query.all("created") {
        let bound = if value.starts_with("le") {
            Bound::To
        } else {
            Bound::From
        };
        let at = dates::parse_bound("created", value, bound).map_err(errors::invalid_parameter)?;
        found.created.push((at, bound));
    }
    if let Some(author) = input.query.one("author")? {
        // 1.6.0: "The author query parameter contains an identifier other than an ODS code".
        if !author.starts_with(&format!("{}|", systems::ODS_CODE)) {
            return Err(errors::invalid_parameter(format!(
                "author `{author}` must be an ODS code: `{}|{{code}}`",
                systems::ODS_CODE
            )));
        }
    }
    found.description = input.query.one("description")?.map(str::to_lowercase);
    Ok(found)
}

/// Search for a patient's documents.
pub fn search(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let patient_id = input.segment(1);
    let includes: Vec<&str> = input.query.all("_include").collect();
    let missing: Vec<&str> = INCLUDES
        .iter()
        .copied()
        .filter(|i| !includes.contains(i))
        .chain(
            (!input
                .query
                .all("_revinclude:recurse")
                .any(|r| r == REVINCLUDE))
            .then_some(REVINCLUDE),
        )
        .collect();
    if !missing.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "The search must carry _include={} and _revinclude:recurse={REVINCLUDE}; missing: {}",
            INCLUDES.join("&_include="),
            missing.join(", ")
        )));
    }
    let filters = filters(input)?;
    let patient = site.practice(|practice| {
        practice
            .shareable_patient(|p| p.id == patient_id)
            .map(|p| p.resource.clone())
    });
    let Some(patient) = patient else {
        return Err(foundations::patient_not_found(
            site,
            &format!("logical id `{patient_id}` (an active, PDS-verified patient)"),
        ));
    };
    let documents: Vec<&Document> = site
        .fixtures
        .documents
        .iter()
        .filter(|d| d.patient == patient_id && matches(d, &filters))
        .collect();
    let mut practitioners = BTreeSet::new();
    let mut organisations = BTreeSet::new();
    let gp = patient["generalPractitioner"][0].clone();
    for reference in documents
        .iter()
        .flat_map(|d| d.reference["author"].as_array().into_iter().flatten())
        .chain([&gp])
    {
        if let Some(id) = fhir::reference_id(reference, "Practitioner") {
            practitioners.insert(id.to_owned());
        }
        if let Some(id) = fhir::reference_id(reference, "Organization") {
            organisations.insert(id.to_owned());
        }
    }
    // The DocumentReferences match; the patient, organisations and authors are included.
    let mut included = vec![patient, site.organisation()];
    included.extend(
        organisations
            .iter()
            .filter_map(|id| {
                site.fixtures
                    .other_organisations
                    .iter()
                    .find(|o| fhir::id(o) == id)
            })
            .cloned(),
    );
    included.extend(
        practitioners
            .iter()
            .filter_map(|id| site.fixtures.practitioner(id))
            .cloned(),
    );
    let role = &site.fixtures.practitioner_role;
    if fhir::reference_id(&role["practitioner"], "Practitioner")
        .is_some_and(|id| practitioners.contains(id))
    {
        included.push(role.clone());
    }
    let matches = documents
        .iter()
        .map(|d| document_reference(site, d))
        .collect();
    Ok(Reply::ok(searchset(site.base, matches, included)))
}

/// Retrieve a document: the Binary, or NO_RECORD_FOUND when there is none or it is over the
/// 5 MB limit (1.6.0 error table).
pub fn retrieve(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    let Some(document) = site.fixtures.documents.iter().find(|d| d.binary_id == id) else {
        return Err(reject(
            errors::NO_RECORD_FOUND,
            format!(
                "No document with Binary id `{id}` at practice {}",
                site.ods_code
            ),
        ));
    };
    let shared = site.practice(|practice| {
        practice
            .shareable_patient(|p| p.id == document.patient)
            .is_some()
    });
    let content = document.content.as_ref().filter(|_| shared);
    let Some(content) = content else {
        let why = if shared {
            format!(
                "Binary/{id} is {} bytes, over the {DOCUMENT_SIZE_LIMIT}-byte limit of Retrieve a document",
                document.size
            )
        } else {
            format!(
                "No document with Binary id `{id}` is available at practice {}",
                site.ods_code
            )
        };
        return Err(reject(errors::NO_RECORD_FOUND, why));
    };
    Ok(Reply::ok(json!({
        "resourceType": "Binary",
        "id": id,
        "meta": { "versionId": "1" },
        "contentType": document.content_type,
        "content": content,
    })))
}
