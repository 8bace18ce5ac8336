//! The interaction catalogue: every GP Connect interaction ID ssp-sim knows, with the
//! capability, HTTP method, path and JWT scope the specification gives it.
//!
//! It is data (`catalog/interactions.toml`), parsed and validated once at start-up so that
//! a specification change is an edit, not a release.

use std::collections::HashSet;
use std::sync::Arc;

// foldhash, not std's SipHash: these maps are read on every request.
use foldhash::HashMap;
use http::Method;
use serde::Deserialize;
use toml::Spanned;

use crate::config::problems::{ConfigError, Problems};

/// The catalogue shipped inside the binary, used when no file is given or found.
pub const EMBEDDED: &str = include_str!("../../catalog/interactions.toml");

/// A GP Connect capability: the unit a provider registers an endpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Foundations: patients, practitioners, organisations and locations.
    Foundations,
    /// Appointment Management: slots and appointments.
    Appointments,
    /// Access Record: Structured: the patient's record as coded FHIR resources.
    Structured,
    /// Access Document: the patient's documents and their binaries.
    Documents,
    /// Access Record: HTML (GP Connect 0.7, FHIR DSTU2): care record sections as HTML.
    Html,
    /// Interactions routes.toml declares itself (`[[interaction]]`): any service Spine brokers.
    Custom,
}

impl Capability {
    /// Every capability, for parsing routes.toml names (and a test that each has interactions).
    pub const ALL: [Capability; 6] = [
        Capability::Foundations,
        Capability::Appointments,
        Capability::Structured,
        Capability::Documents,
        Capability::Html,
        Capability::Custom,
    ];

    /// The name used in routes.toml.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Foundations => "foundations",
            Capability::Appointments => "appointments",
            Capability::Structured => "structured",
            Capability::Documents => "documents",
            Capability::Html => "html",
            Capability::Custom => "custom",
        }
    }

    /// The capability a routes.toml name stands for, if it names one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Which JWT rules check 10 judges an interaction's token by (`jwt` in the catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum JwtRules {
    /// GP Connect 1.x (STU3): integration_cross_organisation_audit_and_provenance, 1.2.7-1.6.
    #[default]
    #[serde(rename = "gpconnect-1")]
    Gpconnect1,
    /// GP Connect 0.7 (DSTU2), Access Record HTML: `requested_record`, the
    /// `http://fhir.nhs.net/...` systems, a DSTU2 HumanName, `aud` the token URL.
    #[serde(rename = "gpconnect-0.7")]
    Gpconnect07,
    /// No JWT is looked at (a service whose tokens ssp-sim does not know).
    #[serde(rename = "none")]
    None,
}

/// A JWT `reason_for_request` value (integration_cross_organisation_audit_and_provenance, 1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Direct care of the patient: what every interaction but the migrate ones requires.
    Directcare,
    /// GP2GP record transfer: only the migrate interactions accept it.
    Migration,
}

impl Reason {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Directcare => "directcare",
            Reason::Migration => "migration",
        }
    }
}

/// Position of an interaction in the catalogue: cheap to copy, hash and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InteractionKey(u16);

/// One path segment of an interaction's path below the service root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one segment that does not start with `$` (which marks an operation).
    Param,
}

/// The path of an interaction below the service root, e.g. `/Patient/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("path `{text}` must start with `/`"))?;
        let segments = rest
            .split('/')
            .map(|s| {
                if s.is_empty() {
                    Err(format!("path `{text}` has an empty segment"))
                } else if s.starts_with('{') && s.ends_with('}') {
                    Ok(Segment::Param)
                } else {
                    Ok(Segment::Literal(s.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether a request path (no query) below the service root has this shape.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match (segment, parts.next()) {
                (Segment::Literal(lit), Some(part)) if lit == part => {}
                (Segment::Param, Some(part)) if !part.is_empty() && !part.starts_with('$') => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// How specific the pattern is: literal segments win over parameters when two match.
    fn specificity(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// The pattern as the catalogue writes it, for messages.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// One GP Connect interaction.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// Its position in the catalogue, the cheap handle the rest of the code passes around.
    pub key: InteractionKey,
    /// The `Ssp-InteractionID` value.
    pub id: String,
    /// The capability an endpoint must be registered for to receive it.
    pub capability: Capability,
    /// The use case's title in the specification.
    pub name: String,
    /// The HTTP method the specification gives it; check 10 refuses any other.
    pub method: Method,
    /// Its path below the service root; check 10 refuses a request of another shape.
    pub path: PathPattern,
    /// Query parameters the request must carry (how a search differs from a read).
    pub query_required: Vec<String>,
    /// The JWT `requested_scope` the interaction requires.
    pub scope: String,
    /// The JWT `reason_for_request` values it accepts.
    pub reasons: Vec<Reason>,
    /// Whether `requested_scope` may add a confidentiality scope, `conf/N` or `conf/R`.
    pub confidentiality_scope: bool,
    /// The first GP Connect version with this interaction.
    pub since: String,
    /// The use-case page of the specification, e.g. `foundations_use_case_read_a_patient.html`.
    pub spec_page: String,
    /// The JWT rules its tokens are judged by.
    pub jwt: JwtRules,
}

impl Interaction {
    /// Whether a request's method, path and query have this interaction's shape.
    pub fn fits(&self, method: &Method, path: &str, query: Option<&str>) -> bool {
        *method == self.method
            && self.path.matches(path)
            && self.query_required.iter().all(|name| {
                query
                    .unwrap_or("")
                    .split('&')
                    .any(|pair| pair.split('=').next() == Some(name.as_str()))
            })
    }
}

/// The whole catalogue, indexed by interaction ID.
#[derive(Debug)]
pub struct Interactions {
    list: Vec<Interaction>,
    by_id: HashMap<String, InteractionKey>,
}

/// A set of interactions, as a consumer or endpoint registration names them.
pub type InteractionSet = HashSet<InteractionKey>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    interaction: Vec<RawInteraction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInteraction {
    id: Spanned<String>,
    capability: Capability,
    name: String,
    method: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    query_required: Vec<String>,
    scope: Spanned<String>,
    #[serde(default = "direct_care_only")]
    reason_for_request: Vec<Reason>,
    #[serde(default)]
    confidentiality_scope: bool,
    since: String,
    spec_page: String,
    #[serde(default)]
    jwt: JwtRules,
}

/// An `[[interaction]]` table of routes.toml: an interaction the catalogue does not have, say
/// of a service other than GP Connect that Spine brokers through the SSP.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    method: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    query_required: Vec<String>,
    #[serde(default)]
    scope: Option<Spanned<String>>,
    #[serde(default = "direct_care_only")]
    reason_for_request: Vec<Reason>,
    /// Unlike the catalogue's, a declared interaction's tokens are not judged unless it says so.
    #[serde(default = "no_jwt")]
    jwt: Spanned<JwtRules>,
}

fn no_jwt() -> Spanned<JwtRules> {
    Spanned::new(0..0, JwtRules::None)
}

fn parse_method(raw: &Spanned<String>, key: String, problems: &mut Problems) -> Method {
    match raw.get_ref().as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => {
            problems.at(
                raw.span(),
                key,
                format!("`{other}` is not one of GET, POST, PUT, DELETE"),
            );
            Method::GET
        }
    }
}

fn parse_path(raw: &Spanned<String>, key: String, problems: &mut Problems) -> PathPattern {
    PathPattern::parse(raw.get_ref()).unwrap_or_else(|msg| {
        problems.at(raw.span(), key, msg);
        PathPattern {
            text: String::new(),
            segments: Vec::new(),
        }
    })
}

fn check_scope(raw: &Spanned<String>, key: String, problems: &mut Problems) {
    if !SCOPES.contains(&raw.get_ref().as_str()) {
        problems.at(
            raw.span(),
            key,
            format!("`{}` is not one of {}", raw.get_ref(), SCOPES.join(", ")),
        );
    }
}

fn direct_care_only() -> Vec<Reason> {
    vec![Reason::Directcare]
}

const SCOPES: [&str; 4] = [
    "patient/*.read",
    "patient/*.write",
    "organization/*.read",
    "organization/*.write",
];

impl Interactions {
    /// Parses and validates the catalogue; `file` names it in error messages.
    pub fn parse(file: &str, source: &str) -> Result<Self, ConfigError> {
        let raw: RawCatalog =
            toml::from_str(source).map_err(|e| ConfigError::toml(file, source, &e))?;
        let mut problems = Problems::new(file, source);
        let mut list = Vec::with_capacity(raw.interaction.len());
        let mut by_id = HashMap::default();
        for (i, r) in raw.interaction.into_iter().enumerate() {
            let key = InteractionKey(i as u16);
            let at = |field: &str| format!("interaction[{i}].{field}");
            if !r
                .id
                .get_ref()
                .starts_with("urn:nhs:names:services:gpconnect:")
            {
                problems.at(
                    r.id.span(),
                    at("id"),
                    "an interaction ID starts with `urn:nhs:names:services:gpconnect:`",
                );
            }
            if by_id.insert(r.id.get_ref().clone(), key).is_some() {
                problems.at(
                    r.id.span(),
                    at("id"),
                    format!("`{}` is listed twice; keep one entry", r.id.get_ref()),
                );
            }
            let method = parse_method(&r.method, at("method"), &mut problems);
            let path = parse_path(&r.path, at("path"), &mut problems);
            check_scope(&r.scope, at("scope"), &mut problems);
            list.push(Interaction {
                key,
                id: r.id.into_inner(),
                capability: r.capability,
                name: r.name,
                method,
                path,
                query_required: r.query_required,
                scope: r.scope.into_inner(),
                reasons: r.reason_for_request,
                confidentiality_scope: r.confidentiality_scope,
                since: r.since,
                spec_page: r.spec_page,
                jwt: r.jwt,
            });
        }
        problems.finish(Self { list, by_id })
    }

    /// The catalogue with routes.toml's `[[interaction]]` tables added, each validated into
    /// `problems` (routes.toml's); the catalogue itself when there are none.
    pub fn declare(
        self: &Arc<Self>,
        declared: Vec<Declared>,
        problems: &mut Problems,
    ) -> Arc<Interactions> {
        if declared.is_empty() {
            return self.clone();
        }
        let mut list = self.list.clone();
        let mut by_id = self.by_id.clone();
        for (i, d) in declared.into_iter().enumerate() {
            let at = |field: &str| format!("interaction[{i}].{field}");
            let key = InteractionKey(list.len() as u16);
            let id = d.id.get_ref();
            if !id.starts_with("urn:") || id.chars().any(char::is_whitespace) {
                problems.at(d.id.span(), at("id"), "an interaction ID is a URN without spaces, e.g. `urn:nhs:names:services:myservice:fhir:rest:read:thing-1`");
            }
            match by_id.get(id) {
                Some(&k) if k.0 < self.list.len() as u16 => problems.at(d.id.span(), at("id"), format!("`{id}` is already in the interaction catalogue (catalog/interactions.toml); remove this [[interaction]] and register the ID by name")),
                Some(_) => problems.at(d.id.span(), at("id"), format!("`{id}` is declared twice; keep one [[interaction]]")),
                None => {
                    by_id.insert(id.clone(), key);
                }
            }
            let method = parse_method(&d.method, at("method"), problems);
            let path = parse_path(&d.path, at("path"), problems);
            let jwt = *d.jwt.get_ref();
            let scope = match (&d.scope, jwt) {
                (Some(scope), JwtRules::None) => scope.get_ref().clone(),
                (Some(scope), _) => {
                    check_scope(scope, at("scope"), problems);
                    scope.get_ref().clone()
                }
                (None, JwtRules::None) => String::new(),
                (None, _) => {
                    problems.at(d.jwt.span(), at("scope"), format!("a JWT rule set needs the interaction's requested_scope: add scope = one of {}", SCOPES.join(", ")));
                    String::new()
                }
            };
            list.push(Interaction {
                key,
                name: d.name.unwrap_or_else(|| d.id.get_ref().clone()),
                id: d.id.into_inner(),
                capability: Capability::Custom,
                method,
                path,
                query_required: d.query_required,
                scope,
                reasons: d.reason_for_request,
                confidentiality_scope: false,
                since: String::new(),
                spec_page: String::new(),
                jwt,
            });
        }
        Arc::new(Interactions { list, by_id })
    }

    /// The interaction an `Ssp-InteractionID` value names, if it is in the catalogue.
    pub fn get(&self, id: &str) -> Option<&Interaction> {
        self.by_id.get(id).map(|&key| self.by_key(key))
    }

    /// The interaction a key stands for; keys come only from this catalogue, so it always exists.
    pub fn by_key(&self, key: InteractionKey) -> &Interaction {
        &self.list[key.0 as usize]
    }

    /// The interaction a key stands for, if the key is of this catalogue (a key of a catalogue
    /// that routes.toml extended may not be).
    pub fn get_key(&self, key: InteractionKey) -> Option<&Interaction> {
        self.list.get(key.0 as usize)
    }

    /// Every interaction, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = &Interaction> {
        self.list.iter()
    }

    /// Expands a routes.toml list entry (`*`, a capability name or an interaction ID).
    pub fn expand(&self, entry: &str) -> Option<InteractionSet> {
        if entry == "*" {
            Some(self.list.iter().map(|i| i.key).collect())
        } else if let Some(cap) = Capability::parse(entry) {
            Some(
                self.list
                    .iter()
                    .filter(|i| i.capability == cap)
                    .map(|i| i.key)
                    .collect(),
            )
        } else {
            self.get(entry).map(|i| HashSet::from([i.key]))
        }
    }

    /// The interactions whose shape a request has, most specific first.
    pub fn matching(&self, method: &Method, path: &str, query: Option<&str>) -> Vec<&Interaction> {
        let mut found: Vec<&Interaction> = self
            .list
            .iter()
            .filter(|i| i.fits(method, path, query))
            .collect();
        found.sort_by_key(|i| std::cmp::Reverse(i.path.specificity()));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Interactions {
        Interactions::parse("interactions.toml", EMBEDDED).expect("the shipped catalogue is valid")
    }

    #[test]
    fn the_structured_capability_statement_dates_from_1_2_6() {
        // gpconnect#668, released in 1.2.6 and listed among the 1.2.7 interaction IDs.
        let id = "urn:nhs:names:services:gpconnect:structured:fhir:rest:read:metadata-1";
        assert_eq!(catalog().get(id).unwrap().since, "1.2.6");
    }

    #[test]
    fn shipped_catalogue_covers_every_capability() {
        let c = catalog();
        // `custom` holds only what routes.toml declares.
        for cap in Capability::ALL
            .into_iter()
            .filter(|&c| c != Capability::Custom)
        {
            assert!(
                c.iter().any(|i| i.capability == cap),
                "{cap:?} has no interaction"
            );
        }
    }

    #[test]
    fn operation_path_is_not_taken_for_a_resource_id() {
        let c = catalog();
        let found = c.matching(&Method::POST, "/Patient/$gpc.getstructuredrecord", None);
        assert_eq!(
            found[0].id,
            "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
        );
        let read = c
            .get("urn:nhs:names:services:gpconnect:fhir:rest:read:patient-1")
            .unwrap();
        assert!(read.fits(&Method::GET, "/Patient/2", None));
        assert!(!read.fits(&Method::GET, "/Patient/$gpc.registerpatient", None));
    }

    #[test]
    fn search_needs_its_query_parameter() {
        let c = catalog();
        let search = c
            .get("urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1")
            .unwrap();
        assert!(search.fits(
            &Method::GET,
            "/Patient",
            Some("identifier=https://fhir.nhs.uk/Id/nhs-number|9690937278")
        ));
        assert!(!search.fits(&Method::GET, "/Patient", None));
    }

    #[test]
    fn expand_knows_wildcard_capabilities_and_ids() {
        let c = catalog();
        assert_eq!(c.expand("*").unwrap().len(), c.iter().count());
        assert!(c.expand("structured").unwrap().len() >= 2);
        assert_eq!(
            c.expand("urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1")
                .unwrap()
                .len(),
            1
        );
        assert!(c
            .expand("urn:nhs:names:services:gpconnect:fhir:rest:read:nothing-1")
            .is_none());
    }

    #[test]
    fn duplicate_ids_and_bad_scopes_are_reported_with_lines() {
        let src = r#"
[[interaction]]
id = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
capability = "foundations"
name = "a"
method = "GET"
path = "/metadata"
scope = "organization/*.read"
since = "1.0.0"
spec_page = "a.html"

[[interaction]]
id = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
capability = "foundations"
name = "b"
method = "PATCH"
path = "/metadata"
scope = "everything"
since = "1.0.0"
spec_page = "b.html"
"#;
        let err = Interactions::parse("i.toml", src).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("i.toml:13: interaction[1].id"), "{text}");
        assert!(text.contains("PATCH"), "{text}");
        assert!(text.contains("i.toml:18: interaction[1].scope"), "{text}");
    }
}
