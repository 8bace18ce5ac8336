//! The example consumers of `examples/` run as a user runs them: Python with requests
//! (`examples/consumer.py`) and Node.js with fhir-kit-client (`examples/consumer-node/`), against
//! a real ssp-sim on the shipped routes.toml with check 10 enforced, so the JWT each builds
//! itself is judged too. Each must do every step and read the SSP's refusal of a wrong Ssp-To.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ssp_sim::config::jwt::JwtMode;
use ssp_sim::config::settings::Overrides;
use support::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// ssp-sim on the routes.toml a fresh clone runs with, check 10 on.
async fn sim() -> Sim {
    let routes = std::fs::read_to_string(repo().join("routes.toml")).expect("routes.toml");
    let overrides = Overrides {
        jwt_mode: Some(JwtMode::Enforce),
        ..Overrides::default()
    };
    Sim::start_with(&routes, overrides).await
}

/// Runs `program` with the simulator's address and certificates as flags.
async fn run(mut program: Command, sim: &Sim) -> Output {
    program
        .arg("--ssp")
        .arg(format!("https://{}", sim.addr))
        .arg("--certs")
        .arg(&sim.pki.paths.dir)
        // A CA bundle in the environment must not change which CA the examples trust.
        .env("REQUESTS_CA_BUNDLE", "/nonexistent/ca-bundle.pem");
    tokio::task::spawn_blocking(move || program.output())
        .await
        .expect("the example runs")
        .expect("the example starts")
}

/// Asserts the example succeeded and printed each step, in order.
fn assert_every_step(name: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let steps = [
        "metadata: CapabilityStatement version 1.2.7",
        "patient: Patient/1",
        "slots: ",
        "booked: Appointment/",
        "ssp error: HTTP 403 OperationOutcome issue forbidden, code 403: \
         PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_999999999999",
        "done",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), steps.len(), "{name} printed\n{stdout}");
    for (line, step) in lines.iter().zip(steps) {
        assert!(
            line.starts_with(step),
            "{name}: `{line}` is not `{step}...`\n{stdout}"
        );
    }
    assert!(lines[3].contains(" booked at "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_example_books_an_appointment_and_reads_an_ssp_error() {
    let sim = sim().await;
    let mut python = Command::new(support::python());
    python.arg(repo().join("examples/consumer.py"));
    let out = run(python, &sim).await;
    assert_every_step("examples/consumer.py", &out);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_example_books_an_appointment_and_reads_an_ssp_error() {
    let dir = repo().join("examples/consumer-node");
    let node = node(&dir);
    let sim = sim().await;
    let mut program = Command::new(node);
    program.current_dir(&dir).arg("consumer.mjs");
    let out = run(program, &sim).await;
    assert_every_step("examples/consumer-node", &out);
    sim.stop().await;
}

/// Node.js, with the example's packages installed (`scripts/test` runs `npm ci` there); a
/// machine without them fails the test, saying what to install, rather than skipping it.
fn node(dir: &Path) -> PathBuf {
    let node =
        std::env::var_os("SSPSIM_TEST_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.is_ok_and(|v| v.status.success()),
        "Node.js ({}) is needed for examples/consumer-node: install Node.js 20.18 or later with \
         npm, or set SSPSIM_TEST_NODE to its node binary",
        node.display()
    );
    assert!(
        dir.join("node_modules/fhir-kit-client").exists(),
        "examples/consumer-node has no node_modules: run scripts/test, or `npm ci` in {}",
        dir.display()
    );
    node
}
