//! routes.toml's own `[[interaction]]` tables: a service other than GP Connect that Spine
//! brokers is simulated without a release, and a bad declaration stops start-up naming the
//! file, the line, the key and the fix.

mod support;

use std::process::Command;

use http::{Method, StatusCode};
use ssp_sim::config::jwt::JwtMode;
use ssp_sim::config::settings::Overrides;
use support::{test_consumer, Backend, Call, Sim};

const ROOT: &str = "https://registry.example.nhs.uk/A20047/api";
const READ_THING: &str = "urn:nhs:names:services:myservice:fhir:rest:read:thing-1";
const WRITE_THING: &str = "urn:nhs:names:services:myservice:fhir:rest:create:thing-1";

fn routes(backend: &Backend, declarations: &str) -> String {
    let services = test_consumer()
        .provider("Registry", "A20047", support::PROVIDER, "A20047-821870")
        .endpoint(ROOT, &backend.url(), &["custom"])
        .build();
    format!("{declarations}\n{services}")
}

const DECLARED: &str = r#"
[[interaction]]
id = "urn:nhs:names:services:myservice:fhir:rest:read:thing-1"
name = "Read a thing"
method = "GET"
path = "/Thing/{id}"

[[interaction]]
id = "urn:nhs:names:services:myservice:fhir:rest:create:thing-1"
method = "POST"
path = "/Thing"
scope = "patient/*.write"
jwt = "gpconnect-1"
"#;

async fn enforcing(routes: &str) -> Sim {
    let overrides = Overrides {
        jwt_mode: Some(JwtMode::Enforce),
        ..Overrides::default()
    };
    Sim::start_with(routes, overrides).await
}

#[tokio::test]
async fn a_custom_interaction_declared_in_routes_toml_is_brokered_to_an_http_backend() {
    let backend = Backend::start().await;
    let sim = enforcing(&routes(&backend, DECLARED)).await;
    let call = Call::new(
        Method::GET,
        format!("{ROOT}/Thing/42?_format=json"),
        READ_THING,
    );
    let reply = sim.client().send(call).await;
    reply.assert_status(StatusCode::OK);
    let got = &backend.requests()[0];
    assert_eq!(got.uri, "/Thing/42?_format=json");
    assert_eq!(got.headers["ssp-interactionid"], READ_THING);

    // Its shape is checked as a catalogue interaction's is.
    let call = Call::new(Method::GET, format!("{ROOT}/Other/42"), READ_THING);
    let reply = sim.client().send(call).await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        reply.diagnostics().contains(&format!(
            "Ssp-InteractionID {READ_THING} (Read a thing) is GET /Thing/{{id}}"
        )),
        "{}",
        reply.diagnostics()
    );
    // One that names a JWT rule set has its token judged by it.
    let call = Call::new(Method::POST, format!("{ROOT}/Thing"), WRITE_THING)
        .body("application/fhir+json", "{}");
    let reply = sim.client().send(call).await;
    reply.assert_outcome(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert_eq!(
        reply.diagnostics(),
        "Authorization header is missing; send Authorization: Bearer <JWT>"
    );
    assert_eq!(backend.requests().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn without_the_declaration_the_id_is_unknown() {
    let backend = Backend::start().await;
    let routes = test_consumer()
        .provider("Registry", "A20047", support::PROVIDER, "A20047-821870")
        .endpoint(ROOT, &backend.url(), &["foundations"])
        .build();
    let sim = enforcing(&routes).await;
    let call = Call::new(Method::GET, format!("{ROOT}/Thing/42"), READ_THING);
    let reply = sim.client().send(call).await;
    assert_ne!(reply.status, StatusCode::OK);
    assert!(backend.requests().is_empty());
    sim.stop().await;
}

#[test]
fn a_bad_declaration_is_refused_at_start_up_with_file_line_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.toml");
    let bad = r#"[[interaction]]
id = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
method = "GET"
path = "/metadata"

[[interaction]]
id = "not a urn"
method = "PATCH"
path = "Thing"
jwt = "gpconnect-1"
"#;
    let text = format!("{bad}\n{}", routes_text());
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ssp-sim"))
        .args(["check", "--routes", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    for wanted in [
        "routes.toml:2: interaction[0].id: `urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1` is already in the interaction catalogue (catalog/interactions.toml); remove this [[interaction]]",
        "routes.toml:7: interaction[1].id: an interaction ID is a URN without spaces",
        "routes.toml:8: interaction[1].method: `PATCH` is not one of GET, POST, PUT, DELETE",
        "routes.toml:9: interaction[1].path: path `Thing` must start with `/`",
        "routes.toml:10: interaction[1].scope: a JWT rule set needs the interaction's requested_scope",
    ] {
        assert!(text.contains(wanted), "{wanted}\nnot in\n{text}");
    }
}

fn routes_text() -> String {
    test_consumer()
        .provider("Registry", "A20047", support::PROVIDER, "A20047-821870")
        .endpoint(ROOT, "http://127.0.0.1:9", &["custom"])
        .build()
}
