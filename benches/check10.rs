//! Check 10 alone (`provider::inspect`: the interaction's fit and every JWT rule), per call, for
//! the token `ssp-sim jwt` makes and for one that breaks as many rules as can fail together.
//!
//! `cargo bench --bench check10 -- --warm-up-time 1 --measurement-time 3`

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};
use serde_json::{json, Value};
use ssp_sim::cli::{Cli, Command};
use ssp_sim::config::elements::Elements;
use ssp_sim::config::interactions::{Interactions, EMBEDDED};
use ssp_sim::config::jwt::{EndpointJwt, Policy};
use ssp_sim::config::routes::{Backend, Endpoint};
use ssp_sim::config::sds::{CpaId, ServiceRoot};
use ssp_sim::provider::jwt::encode_unsigned;
use ssp_sim::provider::{inspect, ProviderRequest};

const ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect";
const NOW: i64 = 1_700_000_100;
const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";

/// The token `ssp-sim jwt` makes for the metadata read, issued 100 s before `NOW`: the
/// benchmark judges what the product hands its users, not a copy of it.
fn good_token() -> String {
    let cli = Cli::parse_from([
        "ssp-sim",
        "jwt",
        "--interaction",
        METADATA,
        "--aud",
        ROOT,
        "--at",
        &(NOW - 100).to_string(),
    ]);
    let Some(Command::Jwt(args)) = cli.command else {
        unreachable!("parsed as the jwt command")
    };
    let mut out = Vec::new();
    ssp_sim::cli::jwt::run(&args, &mut out).expect("ssp-sim jwt makes a token");
    String::from_utf8(out)
        .expect("a token is text")
        .trim()
        .to_owned()
}

/// The payload of `token`, as JSON.
fn payload_of(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a payload part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON payload")
}

/// Two parts, a signed `alg` without a key, a wrong `typ`, and a payload whose every claim is
/// wrong in a way that does not hide another rule: jwt.parts, jwt.alg, jwt.typ, claim.iss,
/// claim.sub, claim.aud, claim.exp, claim.expired (beyond the clock skew), claim.iat (until it
/// went), claim.present, claim.type, claim.resource_type, requesting_organization (twice),
/// requesting_practitioner (and, once checked, its unknown element), a practitioner notice,
/// and the interaction misfit.
fn broken_token() -> String {
    let mut payload = payload_of(&good_token());
    payload["iss"] = "consumer".into();
    payload["sub"] = "1".into();
    payload["aud"] = "https://authorize.fhir.nhs.net/token".into();
    payload["iat"] = (NOW + 100).into();
    payload["exp"] = (NOW - 60).into();
    payload["reason_for_request"] = Value::Null;
    payload["requested_scope"] = 5.into();
    payload["requesting_device"]["resourceType"] = "Organization".into();
    payload["requesting_organization"] = json!({
        "resourceType": "Organization",
        "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "A11111"}]
    });
    payload["requesting_practitioner"] = json!({
        "resourceType": "Practitioner",
        "id": "10019",
        "invalidField": "Assurance Testing",
        "identifier": [{"system": "http://fhir.nhs.net/sds-user-id", "value": "G13579135"}],
        "name": {"family": ["Demonstrator"], "given": ["GPConnect"], "prefix": ["Mr"]}
    });
    let token = encode_unsigned(&json!({"alg": "RS256", "typ": "jwt"}), &payload);
    token.trim_end_matches('.').to_owned()
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("a header value");
    headers.insert(AUTHORIZATION, value);
    headers
}

fn check10(c: &mut Criterion) {
    let interactions = Interactions::parse("interactions.toml", EMBEDDED).expect("the catalogue");
    let metadata = interactions.get(METADATA).expect("the metadata read");
    let endpoint = Endpoint {
        service_root: ServiceRoot::parse(ROOT).expect("a service root"),
        cpa_id: CpaId::parse("S20047821870").expect("a CPA id"),
        interactions: Default::default(),
        backend: Backend::Demo,
        jwt: EndpointJwt::default(),
    };
    let policy = Policy::default();
    let elements = Elements::embedded().expect("the STU3 tables");
    let cases = [
        ("valid token", bearer(&good_token()), "/metadata"),
        (
            "token breaking every rule",
            bearer(&broken_token()),
            "/Patient/1",
        ),
    ];
    for (name, headers, rest) in &cases {
        let request = ProviderRequest {
            elements,
            keep_token: false,
            headers,
            method: &Method::GET,
            rest,
            interaction: metadata,
            interactions: &interactions,
            endpoint: &endpoint,
        };
        let found = inspect(&policy, &request, NOW).findings;
        println!(
            "{name}: {} broken rules, {} notices",
            found.violations.len(),
            found.notices.len()
        );
        c.bench_function(&format!("check 10, {name}"), |b| {
            b.iter(|| inspect(&policy, std::hint::black_box(&request), NOW))
        });
    }
}

criterion_group!(benches, check10);
criterion_main!(benches);
