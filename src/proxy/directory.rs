//! Directory lookups: the `Endpoint` and `Device` searches of the Spine Directory Service FHIR
//! R4 API, answered from the registry, so a consumer's whole flow (find the provider's
//! endpoint, ASID and party key, then call it through the SSP) works offline.
//!
//! Served on the gateway listeners under the real API's own path, so a consumer changes only
//! the host name. SSP targets always start with `/http`, so the two can never collide.

use http::header::{ALLOW, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, Uri};
use serde_json::{json, Value};

use crate::config::errors::ErrorCatalog;
use crate::config::interactions::Interaction;
use crate::config::rejection::{ids, Placeholder, Rejection};
use crate::config::routes::{Endpoint, Provider, Registry};
use crate::proxy::forwarder::Peer;
use crate::wire::body::{self, Body};
use crate::wire::format::Format;
use crate::wire::systems::ODS_CODE;

/// The path of the directory, as on Spine (`https://api.service.nhs.uk/spine-directory/FHIR/R4`).
pub const BASE: &str = "/spine-directory/FHIR/R4";

/// The header the SDS API echoes for request tracking.
const CORRELATION_ID: &str = "x-correlation-id";

const INTERACTION_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhsServiceInteractionId";
const PARTY_KEY_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhsMhsPartyKey";
const ASID_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhsSpineASID";

/// Whether a request path is a directory lookup rather than an SSP request.
pub fn serves(uri: &Uri) -> bool {
    uri.path()
        .strip_prefix(BASE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Answers a directory request (one for which `serves` is true).
pub fn answer<B>(
    registry: &Registry,
    catalog: &ErrorCatalog,
    request: &Request<B>,
    peer: &Peer,
) -> Response<Body> {
    let correlation = request.headers().get(CORRELATION_ID);
    let resource = request.uri().path()[BASE.len()..].trim_matches('/');
    let result = if request.method() != Method::GET {
        Err(Rejection::new(ids::METHOD_NOT_ALLOWED)
            .with(
                Placeholder::Diagnostics,
                format!(
                    "The directory serves GET searches only, not {}",
                    request.method()
                ),
            )
            .with_header(ALLOW, HeaderValue::from_static("GET")))
    } else {
        let query = request.uri().query().unwrap_or("");
        Search::parse(query).and_then(|search| match resource {
            "Endpoint" => search.endpoints(registry),
            "Device" => search.devices(registry),
            other => Err(Rejection::bad_request(format!(
                "the directory serves GET {BASE}/Endpoint and GET {BASE}/Device searches, not `{other}`"
            ))),
        })
    };
    let mut response = match result {
        Ok(found) => {
            let base = format!(
                "{}://{}{BASE}",
                if peer.tls { "https" } else { "http" },
                host(request)
            );
            let bundle = bundle(&base, request.uri(), resource, found);
            let mut response = Response::new(body::full(bundle.to_string()));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+json"),
            );
            response
        }
        Err(rejection) => catalog.render(&rejection, None, Format::Json),
    };
    if let Some(id) = correlation {
        response.headers_mut().insert(CORRELATION_ID, id.clone());
    }
    response
}

fn host<B>(request: &Request<B>) -> &str {
    request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
}

/// The search parameters, as the SDS API takes them: `organization=<ODS system>|<code>` and
/// `identifier=<system>|<value>` for the interaction ID and the party key.
#[derive(Debug, Default, PartialEq, Eq)]
struct Search {
    organization: Option<String>,
    interaction: Option<String>,
    party_key: Option<String>,
}

impl Search {
    fn parse(query: &str) -> Result<Self, Rejection> {
        let mut search = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (system, code) = value.split_once('|').unwrap_or(("", &value));
            match (name.as_ref(), system) {
                ("organization", ODS_CODE) => search.organization = Some(code.to_owned()),
                ("identifier", INTERACTION_SYSTEM) => search.interaction = Some(code.to_owned()),
                ("identifier", PARTY_KEY_SYSTEM) => search.party_key = Some(code.to_owned()),
                ("organization", _) => {
                    return Err(Rejection::bad_request(format!(
                        "organization must be `{ODS_CODE}|<ODS code>`, got `{value}`"
                    )))
                }
                ("identifier", _) => {
                    return Err(Rejection::bad_request(format!(
                        "identifier must be `{INTERACTION_SYSTEM}|<interaction ID>` or `{PARTY_KEY_SYSTEM}|<party key>`, got `{value}`"
                    )))
                }
                // Accepted as on Spine, but ssp-sim holds no manufacturer to match it against.
                _ => {}
            }
        }
        Ok(search)
    }

    fn organization_fits(&self, provider: &Provider) -> bool {
        self.organization
            .as_deref()
            .is_none_or(|ods| ods.eq_ignore_ascii_case(&provider.ods_code))
    }

    fn party_key_fits(&self, provider: &Provider) -> bool {
        self.party_key
            .as_deref()
            .is_none_or(|key| key.eq_ignore_ascii_case(&provider.party_key))
    }

    /// The MHS records: one per provider endpoint and interaction, as SDS holds them.
    fn endpoints(&self, registry: &Registry) -> Result<Vec<Value>, Rejection> {
        let given = [&self.organization, &self.interaction, &self.party_key]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if given < 2 || (self.interaction.is_none() && self.party_key.is_none()) {
            return Err(Rejection::bad_request(format!(
                "an Endpoint search needs two of organization={ODS_CODE}|<ODS code>, \
                 identifier={INTERACTION_SYSTEM}|<interaction ID> and \
                 identifier={PARTY_KEY_SYSTEM}|<party key>, at least one of them an identifier"
            )));
        }
        let mut found = Vec::new();
        for provider in sorted(registry) {
            if !(self.organization_fits(provider) && self.party_key_fits(provider)) {
                continue;
            }
            for endpoint in &provider.endpoints {
                let mut interactions: Vec<&Interaction> = endpoint
                    .interactions
                    .iter()
                    .map(|&k| registry.interactions.by_key(k))
                    .filter(|i| self.interaction.as_deref().is_none_or(|id| id == i.id))
                    .collect();
                interactions.sort_by(|a, b| a.id.cmp(&b.id));
                found.extend(
                    interactions
                        .into_iter()
                        .map(|i| endpoint_resource(provider, endpoint, i)),
                );
            }
        }
        Ok(found)
    }

    /// The AS records of the organisation's systems that are registered for the interaction.
    fn devices(&self, registry: &Registry) -> Result<Vec<Value>, Rejection> {
        let (Some(_), Some(wanted)) = (&self.organization, &self.interaction) else {
            return Err(Rejection::bad_request(format!(
                "a Device search needs organization={ODS_CODE}|<ODS code> and \
                 identifier={INTERACTION_SYSTEM}|<interaction ID> (identifier={PARTY_KEY_SYSTEM}|<party key> is optional)"
            )));
        };
        let Some(interaction) = registry.interactions.get(wanted) else {
            return Ok(Vec::new());
        };
        Ok(sorted(registry)
            .filter(|p| {
                self.organization_fits(p)
                    && self.party_key_fits(p)
                    && p.endpoint_for(interaction.key).is_some()
            })
            .map(|p| device_resource(registry, p))
            .collect())
    }
}

/// Providers in ASID order, so answers are stable.
fn sorted(registry: &Registry) -> impl Iterator<Item = &Provider> {
    let mut providers: Vec<&Provider> = registry.providers().collect();
    providers.sort_by(|a, b| a.asid.as_str().cmp(b.asid.as_str()));
    providers.into_iter()
}

/// A stable, UUID-shaped resource id (SDS ids look like UUIDs), from the record's keys.
fn resource_id(a: &str, b: &str) -> String {
    fn fnv(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
    uuid::Uuid::from_u64_pair(fnv(a), fnv(b))
        .to_string()
        .to_uppercase()
}

fn ods(code: &str) -> Value {
    json!({"identifier": {"system": ODS_CODE, "value": code}})
}

fn interaction_extension(id: &str) -> Value {
    json!({
        "url": "https://fhir.nhs.uk/StructureDefinition/Extension-SDS-NhsServiceInteractionId",
        "valueReference": {"identifier": {"system": INTERACTION_SYSTEM, "value": id}}
    })
}

fn endpoint_resource(provider: &Provider, endpoint: &Endpoint, interaction: &Interaction) -> Value {
    let fqdn = url::Url::parse(&endpoint.service_root)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    json!({
        "resourceType": "Endpoint",
        "id": resource_id(&provider.party_key, &interaction.id),
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-msg",
            "display": "HL7 FHIR Messaging"
        },
        "payloadType": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
            "code": "any",
            "display": "Any"
        }]}],
        "address": endpoint.service_root,
        "managingOrganization": ods(&provider.ods_code),
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhsMhsFQDN", "value": fqdn},
            {"system": PARTY_KEY_SYSTEM, "value": provider.party_key},
            {"system": "https://fhir.nhs.uk/Id/nhsMhsCPAId", "value": endpoint.cpa_id},
            {"system": "https://fhir.nhs.uk/Id/nhsMHSId", "value": endpoint.cpa_id},
            {"system": ASID_SYSTEM, "value": provider.asid.as_str()}
        ],
        "extension": [interaction_extension(&interaction.id)]
    })
}

fn device_resource(registry: &Registry, provider: &Provider) -> Value {
    let mut interactions: Vec<&str> = provider
        .endpoints
        .iter()
        .flat_map(|e| e.interactions.iter())
        .map(|&k| registry.interactions.by_key(k).id.as_str())
        .collect();
    interactions.sort_unstable();
    interactions.dedup();
    json!({
        "resourceType": "Device",
        "id": resource_id(provider.asid.as_str(), &provider.party_key),
        "identifier": [
            {"system": ASID_SYSTEM, "value": provider.asid.as_str()},
            {"system": PARTY_KEY_SYSTEM, "value": provider.party_key}
        ],
        "owner": ods(&provider.ods_code),
        "extension": interactions.into_iter().map(interaction_extension).collect::<Vec<_>>()
    })
}

fn bundle(base: &str, uri: &Uri, resource: &str, found: Vec<Value>) -> Value {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let entries: Vec<Value> = found
        .into_iter()
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/{resource}/{}", r["id"].as_str().unwrap_or("")),
                "resource": r,
                "search": {"mode": "match"}
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string().to_uppercase(),
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/{resource}{query}")}],
    });
    // FHIR JSON has no empty arrays: a search that finds nothing has no `entry`.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_directory_path_is_served() {
        for (path, served) in [
            ("/spine-directory/FHIR/R4/Endpoint?x=1", true),
            ("/spine-directory/FHIR/R4", true),
            ("/spine-directory/FHIR/R4x/Endpoint", false),
            ("/https://spine-directory/FHIR/R4/Endpoint", false),
        ] {
            let uri: Uri = path.parse().unwrap();
            assert_eq!(serves(&uri), served, "{path}");
        }
    }

    #[test]
    fn search_parameters_take_systems_and_encoded_bars() {
        let search = Search::parse(
            "organization=https://fhir.nhs.uk/Id/ods-organization-code%7CA20047\
             &identifier=https://fhir.nhs.uk/Id/nhsServiceInteractionId|urn:x\
             &identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2FnhsMhsPartyKey%7CA20047-821870",
        )
        .unwrap();
        assert_eq!(
            search,
            Search {
                organization: Some("A20047".into()),
                interaction: Some("urn:x".into()),
                party_key: Some("A20047-821870".into()),
            }
        );
        assert!(Search::parse("organization=A20047").is_err());
        assert!(Search::parse("identifier=urn:x").is_err());
    }

    #[test]
    fn resource_ids_are_stable_and_distinct() {
        assert_eq!(resource_id("a", "b"), resource_id("a", "b"));
        assert_ne!(resource_id("a", "b"), resource_id("a", "c"));
    }
}
