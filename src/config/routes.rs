//! The mock Spine Directory Service, read from routes.toml: which consumer may send which
//! interaction to whom, and each provider's registered endpoints and backends.
//!
//! Everything is validated here, once; the checks trust these types.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

// foldhash, not std's SipHash: these maps are read on every request.
use foldhash::HashMap;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};
use serde::Deserialize;
use toml::Spanned;

use crate::config::errors::ErrorCatalog;
use crate::config::interactions::{
    Capability, Declared, InteractionKey, InteractionSet, Interactions,
};
use crate::config::jwt::{self, EndpointJwt, JwtMode};
use crate::config::pem;
use crate::config::problems::{ConfigError, Problems};
pub use crate::config::sds::Asid;
use crate::config::sds::{service_root_problem, CpaId, OdsCode, ServiceRoot};
use crate::control::faults::{self, FaultSpec, Rule};

/// The routes.toml shipped inside the binary, used when `./routes.toml` does not exist.
pub const EMBEDDED: &str = include_str!("../../routes.toml");

/// A request rate limit (routes.toml `rate_limit = { requests = 100, per_seconds = 1 }`):
/// at most `requests` in any `per_seconds` window, with a burst of all of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// How many requests the window allows.
    pub requests: u32,
    /// The window, in seconds.
    pub per_seconds: u32,
}

/// A consumer system: an AS record allowed to initiate some interactions.
#[derive(Debug)]
pub struct Consumer {
    /// Its `name` in routes.toml, quoted in configuration problems; no check reads it.
    pub name: String,
    /// The `Ssp-From` it sends: the key checks 5 and 7 look it up by.
    pub asid: Asid,
    /// The organisation it acts for, as SDS holds it; no check reads it.
    pub ods_code: OdsCode,
    /// The interactions it may initiate (check 5).
    pub interactions: InteractionSet,
    /// Receiver ASIDs it may address; `None` means any.
    pub may_send_to: Option<HashSet<Asid>>,
    /// The host SDS registers for its ASID, which its client certificate must name (check
    /// 5b); `None` leaves it unbound.
    pub fqdn: Option<String>,
    /// Its own request rate limit, if routes.toml gives one.
    pub rate_limit: Option<RateLimit>,
}

impl Consumer {
    /// Check 5: whether it is registered to initiate `interaction`.
    pub fn may_initiate(&self, interaction: InteractionKey) -> bool {
        self.interactions.contains(&interaction)
    }

    /// Check 7 (FoT): whether it may address `receiver`.
    pub fn may_send_to(&self, receiver: &Asid) -> bool {
        self.may_send_to
            .as_ref()
            .is_none_or(|set| set.contains(receiver))
    }
}

/// Where an endpoint's requests go.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The built-in GP Connect demo provider.
    Demo,
    /// A real provider over HTTP or HTTPS.
    Http(HttpBackend),
}

/// A provider backend reached over the network.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    /// Where its connections go.
    pub origin: Origin,
    /// The `Host` header for the backend: its authority, written once here rather than on
    /// every request.
    pub host: HeaderValue,
    /// The path the service root maps to, without a trailing slash (may be empty).
    pub base_path: String,
    /// The client certificate presented to an HTTPS backend, when routes.toml gives one.
    pub identity: Option<ClientIdentity>,
}

impl HttpBackend {
    /// The backend as routes.toml names it (the origin, normalised, and the base path).
    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.base_path)
    }
}

/// A backend's scheme and authority (`http://127.0.0.1:9000`), parsed once: what a pooled
/// connection is to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host and (non-default) port.
    pub authority: Authority,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// A client certificate and key for the second TLS leg (`client_cert`, `client_key`), read and
/// checked when routes.toml is loaded. The forwarder builds one pooled client per identity.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// Distinct per identity within one registry, from 0: the forwarder's index for it.
    pub index: usize,
    /// The PEM certificate chain.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// An MHS record: a service root registered for some interactions, and its backend.
#[derive(Debug)]
pub struct Endpoint {
    /// The `nhsMhsEndPoint`, exactly as SDS holds it.
    pub service_root: ServiceRoot,
    /// The CPA id SDS holds for it, shown in the endpoint-mismatch error.
    pub cpa_id: CpaId,
    /// The interactions SDS registers this endpoint for; check 6 looks them up.
    pub interactions: InteractionSet,
    /// Where requests that pass the checks are sent.
    pub backend: Backend,
    /// Check 10's settings for this endpoint.
    pub jwt: EndpointJwt,
}

/// The practice-based enablement switches of the built-in demo provider (GP Connect 1.2.7,
/// #837): one for GP Connect as a whole and one per capability, all off unless routes.toml
/// turns them on in `[provider.demo]`, because the specification requires them off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSwitches {
    /// The practice's switch for GP Connect as a whole.
    pub gpconnect: bool,
    /// The Foundations capability's switch.
    pub foundations: bool,
    /// The Appointment Management capability's switch.
    pub appointments: bool,
    /// The Access Record: Structured capability's switch.
    pub structured: bool,
    /// The Access Document capability's switch.
    pub documents: bool,
}

impl DemoSwitches {
    /// The switch of one capability (the global `gpconnect` switch is separate).
    pub fn capability(&self, capability: Capability) -> bool {
        match capability {
            Capability::Foundations => self.foundations,
            Capability::Appointments => self.appointments,
            Capability::Structured => self.structured,
            Capability::Documents => self.documents,
            // Access Record HTML (0.7) predates the switches (1.2.7, #837), and routes.toml's
            // own interactions are not GP Connect's: they are always on.
            Capability::Html | Capability::Custom => true,
        }
    }
}

/// A provider system: an AS record with its MHS endpoints.
#[derive(Debug)]
pub struct Provider {
    /// The practice's name, which the demo provider gives its Organization.
    pub name: String,
    /// The practice's ODS code: the directory lookup searches by it, the demo provider keeps
    /// the practice's state under it.
    pub ods_code: OdsCode,
    /// The `Ssp-To` that reaches it: the key check 6 looks it up by.
    pub asid: Asid,
    /// The SDS party key (`ODS-nnnnnn`) the directory lookup searches by.
    pub party_key: String,
    /// What the built-in demo provider has enabled for this practice.
    pub demo: DemoSwitches,
    /// Its MHS records; [`Provider::endpoint_for`] finds the one for an interaction.
    pub endpoints: Vec<Endpoint>,
    by_interaction: HashMap<InteractionKey, usize>,
}

impl Provider {
    /// The endpoint SDS holds for this provider and interaction.
    pub fn endpoint_for(&self, interaction: InteractionKey) -> Option<&Endpoint> {
        self.by_interaction
            .get(&interaction)
            .map(|&i| &self.endpoints[i])
    }
}

/// The whole mock SDS.
#[derive(Debug)]
pub struct Registry {
    /// Where it was read from, for messages.
    pub file: String,
    /// The interaction catalogue the registry was validated against, with routes.toml's own
    /// `[[interaction]]`s.
    pub interactions: Arc<Interactions>,
    /// The catalogue as loaded, without routes.toml's interactions: a reload starts from it.
    pub catalogue: Arc<Interactions>,
    consumers: HashMap<Asid, Consumer>,
    providers: HashMap<Asid, Provider>,
    /// The `[[fault]]` tables, validated; the gateway installs them on start and on reload.
    pub faults: Vec<Rule>,
    /// The simulator's request rate limit over all consumers, if routes.toml gives one.
    pub rate_limit: Option<RateLimit>,
}

impl Registry {
    /// Check 5: the consumer whose ASID this is, if any.
    pub fn consumer(&self, asid: &Asid) -> Option<&Consumer> {
        self.consumers.get(asid)
    }

    /// Check 6: the provider whose ASID this is, if any.
    pub fn provider(&self, asid: &Asid) -> Option<&Provider> {
        self.providers.get(asid)
    }

    /// Every consumer, in no particular order (the admin API and reload count them).
    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.consumers.values()
    }

    /// Every provider, in no particular order (the directory lookup searches them).
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// Every client identity the backends present, in `ClientIdentity::index` order.
    pub fn identities(&self) -> Vec<&ClientIdentity> {
        let mut identities: Vec<&ClientIdentity> = self
            .providers()
            .flat_map(|p| &p.endpoints)
            .filter_map(|e| match &e.backend {
                Backend::Http(http) => http.identity.as_ref(),
                Backend::Demo => None,
            })
            .collect();
        identities.sort_by_key(|identity| identity.index);
        identities
    }

    /// Parses and validates routes.toml; every problem is reported, each with its line.
    pub fn parse(
        file: &str,
        source: &str,
        interactions: &Arc<Interactions>,
        catalog: &ErrorCatalog,
    ) -> Result<Self, ConfigError> {
        let raw: RawRoutes =
            toml::from_str(source).map_err(|e| ConfigError::toml(file, source, &e))?;
        let mut p = Problems::new(file, source);
        let catalogue = interactions;
        let interactions = &catalogue.declare(raw.interaction, &mut p);
        let mut lines: HashMap<Asid, (String, Range<usize>)> = HashMap::default();
        let mut claim_asid = |p: &mut Problems, raw: &Spanned<String>, key: &str, owner: &str| {
            let asid = parse_asid(p, raw, key)?;
            if let Some((other, span)) = lines.get(&asid) {
                let line = crate::config::problems::line_of(source, span.start);
                p.at(raw.span(), key, format!("ASID {asid} is already used by {other} (line {line}); every system has its own ASID"));
                return None;
            }
            lines.insert(asid.clone(), (owner.to_owned(), raw.span()));
            Some(asid)
        };

        let mut consumers = HashMap::default();
        for (i, c) in raw.consumer.into_iter().enumerate() {
            let key = |f: &str| format!("consumer[{i}].{f}");
            let owner = format!("consumer \"{}\"", c.name);
            let asid = claim_asid(&mut p, &c.asid, &key("asid"), &owner);
            let set = interaction_set(&mut p, &c.interactions, &key("interactions"), interactions);
            let may_send_to = if c.may_send_to.get_ref().iter().any(|a| a == "*") {
                None
            } else {
                let mut set = HashSet::new();
                for a in c.may_send_to.get_ref() {
                    match Asid::parse(a) {
                        Some(asid) => {
                            set.insert(asid);
                        }
                        None => p.at(c.may_send_to.span(), key("may_send_to"), format!("`{a}` is not an ASID; list receiver ASIDs (digits) or \"*\" for any")),
                    }
                }
                Some(set)
            };
            let ods_code = identifier(
                &mut p,
                &c.ods_code,
                &key("ods_code"),
                OdsCode::parse,
                ODS_CODE,
            );
            let fqdn = c.fqdn.as_ref().and_then(|f| {
                let name = f.get_ref();
                let valid = !name.is_empty()
                    && name.split('.').all(|label| {
                        !label.is_empty()
                            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !valid {
                    p.at(f.span(), key("fqdn"), format!("`{name}` is not a host name; give the FQDN its client certificate names, e.g. \"gp-consumer.example.nhs.uk\" (no scheme, port or path)"));
                }
                valid.then(|| name.clone())
            });
            let rate_limit = rate_limit(&mut p, c.rate_limit.as_ref(), &key("rate_limit"));
            if let (Some(asid), Some(ods_code)) = (asid, ods_code) {
                consumers.insert(
                    asid.clone(),
                    Consumer {
                        name: c.name,
                        asid,
                        ods_code,
                        interactions: set,
                        may_send_to,
                        fqdn,
                        rate_limit,
                    },
                );
            }
        }

        let mut providers = HashMap::default();
        // Counts the client identities met, so each gets its index for the forwarder.
        let mut identities = 0;
        for (i, raw_provider) in raw.provider.into_iter().enumerate() {
            let key = |f: &str| format!("provider[{i}].{f}");
            let owner = format!("provider \"{}\"", raw_provider.name);
            let asid = claim_asid(&mut p, &raw_provider.asid, &key("asid"), &owner);
            let ods_code = identifier(
                &mut p,
                &raw_provider.ods_code,
                &key("ods_code"),
                OdsCode::parse,
                ODS_CODE,
            );
            let default_cpa = match &raw_provider.cpa_id {
                Some(raw) => identifier(&mut p, raw, &key("cpa_id"), CpaId::parse, CPA_ID),
                // Spine's CPA ids are `S` and the party key's digits.
                None => CpaId::parse(&format!(
                    "S{}",
                    raw_provider
                        .party_key
                        .chars()
                        .filter(char::is_ascii_digit)
                        .collect::<String>()
                )),
            };
            let mut endpoints = Vec::new();
            let mut by_interaction: HashMap<InteractionKey, usize> = HashMap::default();
            if raw_provider.endpoint.is_empty() {
                p.at(
                    raw_provider.asid.span(),
                    key("endpoint"),
                    "a provider needs at least one [[provider.endpoint]]",
                );
            }
            for (j, e) in raw_provider.endpoint.into_iter().enumerate() {
                let key = |f: &str| format!("provider[{i}].endpoint[{j}].{f}");
                let service_root = match service_root_problem(e.service_root.get_ref()) {
                    None => ServiceRoot::parse(e.service_root.get_ref()),
                    Some(problem) => {
                        p.at(e.service_root.span(), key("service_root"), problem);
                        None
                    }
                };
                let cpa_id = match &e.cpa_id {
                    Some(raw) => identifier(&mut p, raw, &key("cpa_id"), CpaId::parse, CPA_ID),
                    None => default_cpa.clone(),
                };
                let set =
                    interaction_set(&mut p, &e.interactions, &key("interactions"), interactions);
                for &k in &set {
                    if let Some(&other) = by_interaction.get(&k) {
                        p.at(e.interactions.span(), key("interactions"), format!(
                            "{} is already registered on endpoint[{other}] of this provider; SDS holds one endpoint per party key and interaction",
                            interactions.by_key(k).id
                        ));
                    } else {
                        by_interaction.insert(k, j);
                    }
                }
                let backend = parse_backend(&mut p, &e, &key, &mut identities);
                let jwt = parse_jwt(&mut p, &e, &key);
                // A bad service root or CPA id is already a problem; the endpoint is left out.
                if let (Some(service_root), Some(cpa_id)) = (service_root, cpa_id) {
                    endpoints.push(Endpoint {
                        service_root,
                        cpa_id,
                        interactions: set,
                        backend,
                        jwt,
                    });
                }
            }
            if let (Some(asid), Some(ods_code)) = (asid, ods_code) {
                providers.insert(
                    asid.clone(),
                    Provider {
                        name: raw_provider.name,
                        ods_code,
                        asid,
                        party_key: raw_provider.party_key,
                        demo: raw_provider.demo,
                        endpoints,
                        by_interaction,
                    },
                );
            }
        }
        let faults = faults::declared(&mut p, raw.fault, interactions, catalog);
        let rate_limit = rate_limit(&mut p, raw.rate_limit.as_ref(), "rate_limit");
        p.finish(Self {
            file: file.to_owned(),
            interactions: interactions.clone(),
            catalogue: catalogue.clone(),
            consumers,
            providers,
            faults,
            rate_limit,
        })
    }
}

/// A `rate_limit` table, with both numbers at least 1.
fn rate_limit(p: &mut Problems, raw: Option<&Spanned<RateLimit>>, key: &str) -> Option<RateLimit> {
    let raw = raw?;
    let limit = *raw.get_ref();
    if limit.requests == 0 || limit.per_seconds == 0 {
        p.at(raw.span(), key, "requests and per_seconds must each be at least 1, e.g. rate_limit = { requests = 100, per_seconds = 1 }; leave rate_limit out for no limit".to_owned());
        return None;
    }
    Some(limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutes {
    #[serde(default)]
    consumer: Vec<RawConsumer>,
    #[serde(default)]
    provider: Vec<RawProvider>,
    #[serde(default)]
    fault: Vec<Spanned<FaultSpec>>,
    rate_limit: Option<Spanned<RateLimit>>,
    #[serde(default)]
    interaction: Vec<Declared>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsumer {
    name: String,
    asid: Spanned<String>,
    ods_code: Spanned<String>,
    interactions: Spanned<Vec<String>>,
    may_send_to: Spanned<Vec<String>>,
    fqdn: Option<Spanned<String>>,
    rate_limit: Option<Spanned<RateLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    ods_code: Spanned<String>,
    asid: Spanned<String>,
    #[serde(default)]
    demo: DemoSwitches,
    party_key: String,
    cpa_id: Option<Spanned<String>>,
    #[serde(default)]
    endpoint: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    service_root: Spanned<String>,
    backend: Spanned<String>,
    interactions: Spanned<Vec<String>>,
    cpa_id: Option<Spanned<String>>,
    /// PEM files presenting a client certificate to an HTTPS backend (TLS MA on the second leg).
    client_cert: Option<Spanned<PathBuf>>,
    client_key: Option<Spanned<PathBuf>>,
    /// Overrides `--jwt-mode` for this endpoint.
    jwt_mode: Option<JwtMode>,
    /// A PEM public key: the endpoint then serves a signed-JWT API and verifies tokens with it.
    jwt_key: Option<Spanned<PathBuf>>,
}

fn parse_asid(p: &mut Problems, raw: &Spanned<String>, key: &str) -> Option<Asid> {
    let asid = Asid::parse(raw.get_ref());
    if asid.is_none() {
        p.at(
            raw.span(),
            key,
            format!(
                "`{}` is not an ASID; write the digits SDS gives the system, e.g. \"918999198738\"",
                raw.get_ref()
            ),
        );
    }
    asid
}

fn interaction_set(
    p: &mut Problems,
    raw: &Spanned<Vec<String>>,
    key: &str,
    catalog: &Interactions,
) -> InteractionSet {
    let mut set = InteractionSet::new();
    if raw.get_ref().is_empty() {
        p.at(raw.span(), key, "the list is empty; name capabilities (foundations, appointments, structured, documents), interaction IDs or \"*\"");
    }
    for entry in raw.get_ref() {
        match catalog.expand(entry) {
            Some(found) => set.extend(found),
            None => p.at(raw.span(), key, format!(
                "`{entry}` is neither \"*\", a capability (foundations, appointments, structured, documents) nor an interaction ID of catalog/interactions.toml"
            )),
        }
    }
    set
}

/// What an ODS code may be, for messages.
const ODS_CODE: &str = "an ODS code: 1 to 10 letters and digits, e.g. \"A20047\"";
/// What a CPA id may be, for messages.
const CPA_ID: &str = "a CPA id: 1 to 64 letters and digits, e.g. \"S20047821870\"";

/// Reads one SDS identifier, or reports at its line what it should be.
fn identifier<T>(
    p: &mut Problems,
    raw: &Spanned<String>,
    key: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Option<T> {
    let parsed = parse(raw.get_ref());
    if parsed.is_none() {
        p.at(
            raw.span(),
            key,
            format!("`{}` is not {what}", raw.get_ref()),
        );
    }
    parsed
}

fn parse_jwt(p: &mut Problems, e: &RawEndpoint, key: &dyn Fn(&str) -> String) -> EndpointJwt {
    let verifier = e
        .jwt_key
        .as_ref()
        .and_then(|path| match jwt::load(path.get_ref()) {
            Ok(k) => Some(k),
            Err(message) => {
                p.at(path.span(), key("jwt_key"), message.to_string());
                None
            }
        });
    EndpointJwt {
        mode: e.jwt_mode,
        key: verifier,
    }
}

fn parse_backend(
    p: &mut Problems,
    e: &RawEndpoint,
    key: &dyn Fn(&str) -> String,
    identities: &mut usize,
) -> Backend {
    let text = e.backend.get_ref();
    if text == "builtin:demo" {
        return Backend::Demo;
    }
    let url = match url::Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.query().is_none() =>
        {
            url
        }
        _ => {
            p.at(e.backend.span(), key("backend"), format!("`{text}` is not a backend; use \"builtin:demo\", \"http://host:port/base\" or \"https://host:port/base\""));
            return Backend::Demo;
        }
    };
    let identity = match (&e.client_cert, &e.client_key) {
        (None, None) => None,
        (Some(cert), Some(key_file)) => {
            let read = pem::load_certs(cert.get_ref())
                .map(drop)
                .and_then(|()| pem::load_key(key_file.get_ref()).map(drop));
            match read {
                Ok(()) => {
                    *identities += 1;
                    Some(ClientIdentity {
                        index: *identities - 1,
                        cert: cert.get_ref().clone(),
                        key: key_file.get_ref().clone(),
                    })
                }
                Err(e) => {
                    p.at(cert.span(), key("client_cert"), e.to_string());
                    None
                }
            }
        }
        (Some(cert), None) => {
            p.at(
                cert.span(),
                key("client_key"),
                "client_cert needs client_key (the PEM private key) beside it",
            );
            None
        }
        (None, Some(k)) => {
            p.at(
                k.span(),
                key("client_cert"),
                "client_key needs client_cert (the PEM certificate) beside it",
            );
            None
        }
    };
    let origin = url.origin().ascii_serialization();
    // `url` has checked the origin already; this only turns it into the forwarder's types.
    let parsed = origin
        .parse::<Uri>()
        .ok()
        .map(Uri::into_parts)
        .and_then(|parts| {
            let authority = parts.authority?;
            let host = HeaderValue::from_str(authority.as_str()).ok()?;
            Some((parts.scheme?, authority, host))
        });
    let Some((scheme, authority, host)) = parsed else {
        p.at(e.backend.span(), key("backend"), format!("`{text}`: its origin `{origin}` is not one the forwarder can reach; use \"http://host:port/base\" or \"https://host:port/base\""));
        return Backend::Demo;
    };
    Backend::Http(HttpBackend {
        origin: Origin { scheme, authority },
        host,
        base_path: url.path().trim_end_matches('/').to_owned(),
        identity,
    })
}
