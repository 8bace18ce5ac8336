//! The built-in demo provider, driven through the gateway over TLS: every use case and the
//! error handling an assured GP Connect 1.2.7 provider (and, for Access Record Structured and
//! Access Document, a 1.6.0 one) gives. Dates are relative to today, in UK local time.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use http::{Method, StatusCode};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};
use support::*;

const STRUCTURED_ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/structured";
const DOCUMENTS_ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/documents";
const APPOINTMENTS_OFF: &str = "918999198993";
const APPOINTMENTS_OFF_ROOT: &str = "https://second.example.nhs.uk/B82617/STU3/1/gpconnect";
const ALL_OFF: &str = "918999190009";
const ALL_OFF_ROOT: &str = "https://third.example.nhs.uk/C81001/STU3/1/gpconnect";

const GPC: &str = "urn:nhs:names:services:gpconnect:";
const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const APPOINTMENT_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1";
const PATIENT_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1";
const DELIVERY_CHANNEL: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2";
const CANCELLATION_REASON: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1";
const VERIFICATION: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";

/// The full interaction ID of `urn:nhs:names:services:gpconnect:{rest}`.
fn id(rest: &str) -> String {
    format!("{GPC}{rest}")
}

/// One practice with everything enabled, one with appointments off, one with GP Connect off.
fn demo_routes() -> String {
    test_consumer()
        .provider("Demo surgery", "A20047", PROVIDER, "A20047-821870")
        .with("[provider.demo]\ngpconnect = true\nfoundations = true\nappointments = true\nstructured = true\ndocuments = true")
        .endpoint(ROOT, "builtin:demo", &["foundations", "appointments"])
        .endpoint(STRUCTURED_ROOT, "builtin:demo", &["structured"])
        .endpoint(DOCUMENTS_ROOT, "builtin:demo", &["documents"])
        .provider("Appointments off", "B82617", APPOINTMENTS_OFF, "B82617-900001")
        .with("[provider.demo]\ngpconnect = true\nfoundations = true")
        .endpoint(APPOINTMENTS_OFF_ROOT, "builtin:demo", &["foundations", "appointments"])
        .provider("GP Connect off", "C81001", ALL_OFF, "C81001-900002")
        .endpoint(ALL_OFF_ROOT, "builtin:demo", &["foundations"])
        .build()
}

async fn demo_sim() -> Sim {
    Sim::start(&demo_routes()).await
}

fn get(path: &str, interaction: &str) -> Call {
    Call::new(Method::GET, format!("{ROOT}{path}"), &id(interaction))
}

/// `GET {ROOT}/{kind}/{id}` as that resource's read interaction.
fn read_of(kind: &str, id: &str) -> Call {
    get(
        &format!("/{kind}/{id}"),
        &format!("fhir:rest:read:{}-1", kind.to_lowercase()),
    )
}

/// `GET {ROOT}/Patient?identifier={identifier}` as the find-a-patient interaction.
fn find_patient(identifier: &str) -> Call {
    get(
        &format!("/Patient?identifier={identifier}"),
        "fhir:rest:search:patient-1",
    )
}

fn find_nhs(nhs: &str) -> Call {
    find_patient(&format!("{NHS}%7C{nhs}"))
}

/// A request with a FHIR JSON body: a `Value`, or raw text for bodies that are not JSON.
fn send_json(method: Method, url: String, interaction: &str, body: impl ToString) -> Call {
    Call::new(method, url, &id(interaction))
        .body("application/fhir+json;charset=utf-8", body.to_string())
}

/// Checks a provider error: status, GP Connect coding, and that diagnostics mention `says`.
fn assert_gpc_error(reply: &Reply, status: u16, code: &str, says: &str) {
    reply.assert_outcome(StatusCode::from_u16(status).unwrap(), code);
    assert!(
        reply.diagnostics().contains(says),
        "diagnostics `{}` lack `{says}`",
        reply.diagnostics()
    );
}

fn entries<'a>(bundle: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(move |r| r["resourceType"] == kind)
}

fn london() -> jiff::tz::TimeZone {
    jiff::tz::db().get("Europe/London").unwrap()
}

/// Today's UK date.
fn today() -> Date {
    Timestamp::now().to_zoned_datetime(london()).date()
}

fn day(offset: i64) -> Date {
    today().checked_add(offset.days()).unwrap()
}

/// The next `month`/`day` after today: a date in winter (January) or summer (July).
fn next(month: i8, day_of_month: i8) -> Date {
    let this_year = jiff::civil::date(today().year(), month, day_of_month);
    if this_year > today() {
        this_year
    } else {
        jiff::civil::date(today().year() + 1, month, day_of_month)
    }
}

fn slot_query(from: Date, to: Date) -> String {
    format!("/Slot?start=ge{from}&end=le{to}&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location&_include:recurse=Location:managingOrganization&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code%7CA11111")
}

fn slot_search_between(from: Date, to: Date) -> Call {
    get(&slot_query(from, to), "fhir:rest:search:slot-1")
}

fn slot_search(from: i64, to: i64) -> Call {
    slot_search_between(day(from), day(to))
}

fn booking(slot: &Value, patient: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "meta": {"profile": [APPOINTMENT_PROFILE]},
        "contained": [{"resourceType": "Organization", "id": "1", "name": "Test consumer",
                       "telecom": [{"system": "phone", "value": "0300 000 0000"}]}],
        "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1",
                       "valueReference": {"reference": "#1"}}],
        "status": "booked",
        "description": "Demo booking",
        "start": slot["start"],
        "end": slot["end"],
        "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}],
        "created": "2024-01-01T09:00:00Z",
        "participant": [
            {"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"},
            {"actor": {"reference": "Location/1"}, "status": "accepted"}
        ]
    })
}

fn create_appointment(appointment: &Value) -> Call {
    send_json(
        Method::POST,
        format!("{ROOT}/Appointment"),
        "fhir:rest:create:appointment-1",
        appointment,
    )
}

fn book(slot: &Value, patient: &str) -> Call {
    create_appointment(&booking(slot, patient))
}

/// `PUT {ROOT}/Appointment/{id}` as `interaction` (the amend or the cancel one).
fn put_appointment(id: &str, interaction: &str, appointment: &Value) -> Call {
    send_json(
        Method::PUT,
        format!("{ROOT}/Appointment/{id}"),
        interaction,
        appointment,
    )
}

const AMEND: &str = "fhir:rest:update:appointment-1";
const CANCEL: &str = "fhir:rest:cancel:appointment-1";

fn appointments_between(patient: &str, from: &str, to: &str) -> Call {
    get(
        &format!("/Patient/{patient}/Appointment?start={from}&start={to}"),
        "fhir:rest:search:patient_appointments-1",
    )
}

fn appointments_of(patient: &str) -> Call {
    appointments_between(patient, &format!("ge{}", day(0)), &format!("le{}", day(30)))
}

/// A free slot of `schedule` in the coming week.
async fn free_slot(client: &Client, schedule: &str) -> Value {
    let bundle = client.send(slot_search(1, 7)).await.json();
    let slot = entries(&bundle, "Slot")
        .find(|s| s["schedule"]["reference"] == format!("Schedule/{schedule}"))
        .expect("a free slot in the coming week")
        .clone();
    slot
}

/// Books a slot of schedule 1 for patient 3 and returns the Appointment.
async fn booked(client: &Client) -> Value {
    let slot = free_slot(client, "1").await;
    let reply = client.send(book(&slot, "3")).await;
    reply.assert_status(StatusCode::CREATED);
    reply.json()
}

fn with_reason(appointment: &Value, reason: &str) -> Value {
    let mut cancel = appointment.clone();
    cancel["status"] = json!("cancelled");
    cancel["extension"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": CANCELLATION_REASON, "valueString": reason}));
    cancel
}

#[tokio::test]
async fn metadata_answers_the_capability_statement_of_each_endpoint_in_json_or_xml() {
    let sim = demo_sim().await;
    let client = sim.client();
    let reply = client.send(Call::metadata()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        "application/fhir+json;charset=utf-8"
    );
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.json()["version"], "1.2.7");
    let xml = client.send(Call::metadata().accept_xml()).await;
    assert_eq!(xml.status, StatusCode::OK);
    let text = xml.fhir_xml();
    assert!(
        text.starts_with("<CapabilityStatement xmlns=\"http://hl7.org/fhir\">"),
        "{text}"
    );
    assert!(text.contains("<version value=\"1.2.7\"/>"), "{text}");
    let structured = client
        .send(Call::new(
            Method::GET,
            format!("{STRUCTURED_ROOT}/metadata"),
            &id("structured:fhir:rest:read:metadata-1"),
        ))
        .await
        .json();
    assert_eq!(structured["version"], "1.6.0");
    assert_eq!(
        structured["rest"][0]["operation"][0]["name"],
        "gpc.getstructuredrecord"
    );
    let documents = client
        .send(Call::new(
            Method::GET,
            format!("{DOCUMENTS_ROOT}/metadata"),
            &id("documents:fhir:rest:read:metadata-1"),
        ))
        .await
        .json();
    assert_eq!(
        documents["rest"][0]["resource"][1]["type"],
        "DocumentReference"
    );
    sim.stop().await;
}

#[tokio::test]
async fn find_and_read_patient_return_profiled_patients() {
    let sim = demo_sim().await;
    let client = sim.client();
    let found = client.send(find_nhs("9476719931")).await;
    assert_eq!(found.status, StatusCode::OK);
    let bundle = found.json();
    assert_eq!(bundle["type"], "searchset");
    let patient = entries(&bundle, "Patient")
        .next()
        .expect("the spec's example patient");
    assert_eq!(patient["meta"]["profile"][0], PATIENT_PROFILE);
    assert_eq!(bundle["entry"][0]["fullUrl"], format!("{ROOT}/Patient/1"));
    let read = client.send(read_of("Patient", "1")).await;
    assert_eq!(read.json()["identifier"][0]["value"], "9476719931");
    assert_eq!(read.header("etag"), "W/\"1\"");
    // Not finding a patient is not an error for a search; extra _count/_sort are ignored.
    let none = client
        .send(find_patient(&format!(
            "{NHS}%7C9690937308&_count=1&_sort=status"
        )))
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(entries(&none.json(), "Patient").count(), 0);
    let missing = client.send(read_of("Patient", "99")).await;
    assert_gpc_error(&missing, 404, "PATIENT_NOT_FOUND", "logical id `99`");
    sim.stop().await;
}

#[tokio::test]
async fn find_patient_refuses_bad_identifiers_with_the_assurance_suites_codes() {
    let sim = demo_sim().await;
    let client = sim.client();
    let cases: [(Call, u16, &str, &str); 8] = [
        (
            find_nhs("9476719932"),
            400,
            "INVALID_NHS_NUMBER",
            "check digit",
        ),
        (
            find_nhs("947671993"),
            400,
            "INVALID_NHS_NUMBER",
            "ten digits",
        ),
        (
            find_patient("https://example.org/id%7C9476719931"),
            400,
            "INVALID_IDENTIFIER_SYSTEM",
            "https://example.org/id",
        ),
        (
            find_patient("9476719931"),
            422,
            "INVALID_PARAMETER",
            "system|value",
        ),
        (
            find_patient(&format!("{NHS}%7C")),
            422,
            "INVALID_PARAMETER",
            "no value",
        ),
        (
            find_patient("%7C9476719931"),
            422,
            "INVALID_PARAMETER",
            "no system",
        ),
        (
            get(
                "/Patient?Identifier=https://fhir.nhs.uk/Id/nhs-number%7C9476719931",
                "fhir:rest:search:patient-1",
            ),
            400,
            "BAD_REQUEST",
            "`identifier` parameter is required",
        ),
        (
            find_patient(&format!("{NHS}%7C9476719931&identifier={NHS}%7C9690937278")),
            400,
            "BAD_REQUEST",
            "only once",
        ),
    ];
    for (call, status, code, says) in cases {
        let reply = client.send(call).await;
        assert_gpc_error(&reply, status, code, says);
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_pds_sensitive_patient_is_answered_as_not_found_everywhere() {
    let sim = demo_sim().await;
    let client = sim.client();
    let found = client.send(find_nhs("9690937294")).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(entries(&found.json(), "Patient").count(), 0);
    let read = client.send(read_of("Patient", "4")).await;
    assert_gpc_error(&read, 404, "PATIENT_NOT_FOUND", "logical id `4`");
    let register = client
        .send(register(register_body(
            "9690937294",
            "Reed",
            "Morgan",
            "1985-03-03",
        )))
        .await;
    assert_gpc_error(&register, 404, "PATIENT_NOT_FOUND", "9690937294");
    let structured = client
        .send(structured_call(&json!([nhs_parameter("9690937294")])))
        .await;
    assert_gpc_error(&structured, 404, "PATIENT_NOT_FOUND", "9690937294");
    let appointments = client.send(appointments_of("4")).await;
    assert_gpc_error(&appointments, 404, "PATIENT_NOT_FOUND", "`4`");
    sim.stop().await;
}

fn verification_code(patient: &Value) -> &str {
    patient["identifier"][0]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == VERIFICATION)
        .and_then(|e| e["valueCodeableConcept"]["coding"][0]["code"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn find_patient_traces_unverified_records_on_pds_and_returns_only_active_verified_ones() {
    let sim = demo_sim().await;
    let client = sim.client();
    let before = client.send(read_of("Patient", "6")).await.json();
    assert_eq!(verification_code(&before), "02");
    // #921: active but never traced; PDS knows her and her details match.
    let traced = client.send(find_nhs("9690937324")).await.json();
    let lucy = entries(&traced, "Patient")
        .next()
        .expect("traced on the way")
        .clone();
    assert_eq!(verification_code(&lucy), "01");
    assert_eq!(lucy["meta"]["versionId"], "2");
    // Unknown to PDS, superseded on PDS, deceased, inactive: left out.
    for (nhs, why) in [
        ("9690937332", "not on PDS"),
        ("9690937359", "superseded"),
        ("9690937316", "deceased"),
        ("9690937375", "inactive"),
        ("9690937340", "birth date mistyped"),
    ] {
        let bundle = client.send(find_nhs(nhs)).await.json();
        assert_eq!(entries(&bundle, "Patient").count(), 0, "{nhs}: {why}");
        assert_eq!(bundle["total"], 0, "{nhs}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn the_921_trap_empty_bundle_then_register_then_duplicate_rejected_then_found() {
    let sim = demo_sim().await;
    let client = sim.client();
    let empty = client.send(find_nhs("9690937340")).await.json();
    assert_eq!(entries(&empty, "Patient").count(), 0);
    // The consumer registers her with the demographics PDS holds: the number verifies, the
    // practice's record is active, so it is a duplicate.
    let reply = client
        .send(register(register_body(
            "9690937340",
            "Mistry",
            "Dana",
            "1971-03-31",
        )))
        .await;
    assert_gpc_error(&reply, 409, "DUPLICATE_REJECTED", "Patient/8");
    let found = client.send(find_nhs("9690937340")).await.json();
    let dana = entries(&found, "Patient")
        .next()
        .expect("found after the registration attempt");
    assert_eq!(dana["id"], "8");
    assert_eq!(verification_code(dana), "01");
    sim.stop().await;
}

fn register_body(nhs: &str, family: &str, given: &str, birth: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "registerPatient", "resource": {
        "resourceType": "Patient",
        "meta": {"profile": [PATIENT_PROFILE]},
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth
    }}]})
}

fn nia() -> Value {
    register_body("9690937308", "Newcomer", "Nia", "1994-04-04")
}

fn register(body: impl ToString) -> Call {
    send_json(
        Method::POST,
        format!("{ROOT}/Patient/$gpc.registerpatient"),
        "fhir:operation:gpc.registerpatient-1",
        body,
    )
}

#[tokio::test]
async fn register_patient_creates_a_temporary_patient_once() {
    let sim = demo_sim().await;
    let client = sim.client();
    let mut body = nia();
    body["parameter"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("gender");
    let reply = client.send(register(&body)).await;
    reply.assert_status(StatusCode::OK);
    let bundle = reply.json();
    let patient = entries(&bundle, "Patient").next().unwrap().clone();
    assert_eq!(patient["meta"]["profile"][0], PATIENT_PROFILE);
    assert_eq!(patient["gender"], "female", "supplemented from PDS");
    assert_eq!(
        patient["extension"][0]["extension"][1]["valueCodeableConcept"]["coding"][0]["code"],
        "T"
    );
    let id = patient["id"].as_str().unwrap();
    let read = client.send(read_of("Patient", id)).await;
    assert_eq!(read.json()["identifier"][0]["value"], "9690937308");
    let found = client.send(find_nhs("9690937308")).await.json();
    assert_eq!(entries(&found, "Patient").count(), 1);
    let again = client.send(register(nia())).await;
    assert_gpc_error(&again, 409, "DUPLICATE_REJECTED", "already registered");
    let existing = client
        .send(register(register_body(
            "9476719931",
            "Jackson",
            "Jane",
            "1952-05-31",
        )))
        .await;
    assert_gpc_error(&existing, 409, "DUPLICATE_REJECTED", "Patient/1");
    sim.stop().await;
}

#[tokio::test]
async fn register_patient_answers_each_pds_and_record_branch_with_its_code() {
    let sim = demo_sim().await;
    let client = sim.client();
    let cases = [
        (
            register_body("9690937405", "Unknown", "Una", "2001-01-01"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
            "not on PDS",
        ),
        (
            register_body("9690937308", "Smith", "Sue", "1980-12-25"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
            "do not match",
        ),
        (
            register_body("9690937316", "Pendle", "Arthur", "1931-08-21"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
            "deceased",
        ),
        (
            register_body("9690937383", "Gone", "Eric", "1940-02-02"),
            400,
            "INVALID_PATIENT_DEMOGRAPHICS",
            "deceased",
        ),
        (
            register_body("9690937359", "Oldham", "Sam", "1982-06-30"),
            400,
            "INVALID_NHS_NUMBER",
            "superseded on PDS by 9690937367",
        ),
        (
            register_body("9690937391", "Valid", "Ina", "1988-08-08"),
            400,
            "INVALID_NHS_NUMBER",
            "flagged invalid",
        ),
    ];
    for (body, status, code, says) in cases {
        let reply = client.send(register(body)).await;
        assert_gpc_error(&reply, status, code, says);
    }
    // The verification rule: two parts of the birth date with the name's first letters.
    let close = client
        .send(register(register_body(
            "9690937308",
            "NEWman",
            "Nell",
            "1994-04-05",
        )))
        .await;
    close.assert_status(StatusCode::OK);
    // A lapsed registration is re-activated as a temporary one, keeping its record.
    let lapsed = client
        .send(register(register_body(
            "9690937375",
            "Lapsed",
            "Ivy",
            "1960-01-25",
        )))
        .await;
    lapsed.assert_status(StatusCode::OK);
    let ivy = entries(&lapsed.json(), "Patient").next().unwrap().clone();
    assert_eq!(ivy["id"], "10");
    assert_eq!(ivy["active"], true);
    let found = client.send(find_nhs("9690937375")).await.json();
    assert_eq!(entries(&found, "Patient").count(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn register_patient_refuses_bad_bodies_with_the_assurance_suites_codes() {
    let sim = demo_sim().await;
    let client = sim.client();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut body = nia();
        f(&mut body["parameter"][0]["resource"]);
        body
    };
    let two = {
        let mut body = nia();
        let parameter = body["parameter"][0].clone();
        body["parameter"].as_array_mut().unwrap().push(parameter);
        body
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            edit(&|p| p["meta"] = json!({})),
            422,
            "INVALID_RESOURCE",
            "meta.profile",
        ),
        (
            edit(&|p| p["invalidField"] = json!("Assurance Testing")),
            422,
            "INVALID_RESOURCE",
            "Parameters.parameter[0].resource.invalidField",
        ),
        (
            edit(&|p| p["active"] = json!(true)),
            422,
            "INVALID_RESOURCE",
            "`active`",
        ),
        (
            edit(&|p| p["maritalStatus"] = json!({"text": "Single"})),
            422,
            "INVALID_RESOURCE",
            "`maritalStatus`",
        ),
        (
            edit(&|p| p["address"] = json!([{"use": "home"}, {"use": "home"}])),
            422,
            "INVALID_RESOURCE",
            "at most one address",
        ),
        (
            edit(&|p| p["address"] = json!([{"use": "work"}])),
            422,
            "INVALID_RESOURCE",
            "use `work`",
        ),
        (
            edit(
                &|p| p["telecom"] = json!([{"system": "phone", "use": "home", "value": "1"}, {"system": "phone", "use": "home", "value": "2"}]),
            ),
            400,
            "BAD_REQUEST",
            "at most one telecom",
        ),
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("identifier");
            }),
            400,
            "INVALID_NHS_NUMBER",
            "identifier with system",
        ),
        (
            edit(&|p| p["identifier"][0]["value"] = json!("hello")),
            400,
            "INVALID_NHS_NUMBER",
            "ten digits",
        ),
        (
            edit(&|p| p["identifier"] = json!([{"value": "9690937308"}])),
            400,
            "BAD_REQUEST",
            "needs a system",
        ),
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("birthDate");
            }),
            400,
            "BAD_REQUEST",
            "birthDate",
        ),
        (
            edit(&|p| p["name"][0]["use"] = json!("usual")),
            400,
            "BAD_REQUEST",
            "official",
        ),
        (
            edit(&|p| {
                p["name"][0].as_object_mut().unwrap().remove("family");
            }),
            400,
            "BAD_REQUEST",
            "family",
        ),
        (two, 400, "BAD_REQUEST", "only once"),
        (
            json!({"resourceType": "Bundle"}),
            422,
            "INVALID_RESOURCE",
            "Parameters",
        ),
        (
            edit(&|p| p["resourceType"] = json!("Practitioner")),
            422,
            "INVALID_RESOURCE",
            "Patient resource",
        ),
    ];
    for (body, status, code, says) in cases {
        let reply = client.send(register(&body)).await;
        assert_gpc_error(&reply, status, code, says);
    }
    let malformed = client.send(register("{not json")).await;
    assert_gpc_error(&malformed, 400, "BAD_REQUEST", "not valid JSON");
    sim.stop().await;
}

#[tokio::test]
async fn practitioners_organisations_and_locations_are_found_and_read() {
    let sim = demo_sim().await;
    let client = sim.client();
    let practitioners = client
        .send(get(
            "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id%7CG13579135",
            "fhir:rest:search:practitioner-1",
        ))
        .await;
    assert_eq!(
        entries(&practitioners.json(), "Practitioner")
            .next()
            .unwrap()["id"],
        "1"
    );
    let practitioner = client.send(read_of("Practitioner", "2")).await;
    assert_eq!(practitioner.json()["name"][0]["family"], "Green");
    let missing = client.send(read_of("Practitioner", "9")).await;
    assert_gpc_error(&missing, 404, "PRACTITIONER_NOT_FOUND", "`9`");

    let orgs = client
        .send(get(
            "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CA20047",
            "fhir:rest:search:organization-1",
        ))
        .await;
    let org = entries(&orgs.json(), "Organization")
        .next()
        .unwrap()
        .clone();
    assert_eq!(org["identifier"][0]["value"], "A20047");
    assert_eq!(org["name"], "Demo surgery");
    let other = client
        .send(get(
            "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CZ99999",
            "fhir:rest:search:organization-1",
        ))
        .await;
    assert_eq!(entries(&other.json(), "Organization").count(), 0);
    let read = client.send(read_of("Organization", "1")).await;
    assert_eq!(read.json()["identifier"][0]["value"], "A20047");
    let missing = client.send(read_of("Organization", "7")).await;
    assert_gpc_error(&missing, 404, "ORGANISATION_NOT_FOUND", "`7`");

    let location = client.send(read_of("Location", "1")).await;
    assert_eq!(
        location.json()["managingOrganization"]["reference"],
        "Organization/1"
    );
    let missing = client.send(read_of("Location", "7")).await;
    assert_gpc_error(&missing, 404, "NO_RECORD_FOUND", "`7`");
    sim.stop().await;
}

/// The UK local `HH:MM` and offset of a FHIR date-time written as `...THH:MM:SS+hh:mm`.
fn local_time_and_offset(text: &str) -> (&str, &str) {
    (&text[11..16], &text[19..])
}

#[tokio::test]
async fn slots_are_typed_in_uk_local_time_with_the_organisation_and_planning_horizon_in_winter_and_summer(
) {
    let sim = demo_sim().await;
    let client = sim.client();
    for (from, offset) in [(next(1, 13), "+00:00"), (next(7, 13), "+01:00")] {
        let to = from.checked_add(6.days()).unwrap();
        // No _include:recurse at all: the Organization is still returned.
        let query = format!("/Slot?start=ge{from}&end=le{to}&status=free&_include=Slot:schedule");
        let reply = client.send(get(&query, "fhir:rest:search:slot-1")).await;
        reply.assert_status(StatusCode::OK);
        let bundle = reply.json();
        let gp: Vec<&Value> = entries(&bundle, "Slot")
            .filter(|s| s["schedule"]["reference"] == "Schedule/1")
            .collect();
        assert!(!gp.is_empty(), "GP slots in the week from {from}");
        let first = gp[0]["start"].as_str().unwrap();
        assert_eq!(local_time_and_offset(first), ("09:00", offset), "{first}");
        assert_eq!(gp[0]["serviceType"][0]["text"], "General GP appointment");
        assert!(entries(&bundle, "Slot").all(|s| s["serviceType"][0]["text"].is_string()));
        let schedules: Vec<&Value> = entries(&bundle, "Schedule").collect();
        let morning = schedules.iter().find(|s| s["id"] == "1").unwrap();
        assert_eq!(morning["serviceCategory"]["text"], "Morning surgery");
        assert!(morning.get("comment").is_none() && morning.get("serviceType").is_none());
        let horizon = &morning["planningHorizon"];
        assert_eq!(
            local_time_and_offset(horizon["start"].as_str().unwrap()),
            ("09:00", offset)
        );
        assert_eq!(
            local_time_and_offset(horizon["end"].as_str().unwrap()),
            ("12:00", offset)
        );
        let nurse = schedules.iter().find(|s| s["id"] == "2").unwrap();
        assert!(
            nurse.get("serviceCategory").is_none(),
            "no schedule type for the nurse"
        );
        assert_eq!(entries(&bundle, "Organization").count(), 1);
        assert_eq!(entries(&bundle, "Practitioner").count(), 0);
        assert_eq!(entries(&bundle, "Location").count(), 0);
    }
    // A weekend has no sessions: an empty Bundle, without the Organization.
    let saturday = (1..=7)
        .map(day)
        .find(|d| d.weekday() == jiff::civil::Weekday::Saturday)
        .unwrap();
    let sunday = saturday.tomorrow().unwrap();
    let weekend = client
        .send(slot_search_between(saturday, sunday))
        .await
        .json();
    assert_eq!(weekend["total"], 0);
    assert_eq!(entries(&weekend, "Organization").count(), 0);
    sim.stop().await;
}

#[tokio::test]
async fn slot_search_refuses_missing_and_invalid_parameters() {
    let sim = demo_sim().await;
    let client = sim.client();
    let (from, to) = (day(1), day(3));
    let search = |query: String| get(&format!("/Slot?{query}"), "fhir:rest:search:slot-1");
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            format!("end=le{to}&status=free&_include=Slot:schedule"),
            400,
            "BAD_REQUEST",
            "`start`",
        ),
        (
            format!("start=ge{from}&status=free&_include=Slot:schedule"),
            400,
            "BAD_REQUEST",
            "`end`",
        ),
        (
            format!("start=ge{from}&end=le{to}&_include=Slot:schedule"),
            400,
            "BAD_REQUEST",
            "`status`",
        ),
        (
            "status=free&_include=Slot:schedule".into(),
            400,
            "BAD_REQUEST",
            "`start`",
        ),
        (
            format!("start=&end=le{to}&status=free&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "no value",
        ),
        (
            format!(
                "start=ge{from}T09:00:00&end=le{to}T17:00:00&status=free&_include=Slot:schedule"
            ),
            422,
            "INVALID_PARAMETER",
            "no UTC offset",
        ),
        (
            format!("start=ge{from}T09:00:00Z&end=le{to}&status=free&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "no UTC offset",
        ),
        (
            format!(
                "start=ge{}&end=le{to}&status=free&_include=Slot:schedule",
                &from.to_string()[..7]
            ),
            422,
            "INVALID_PARAMETER",
            "is not a date",
        ),
        (
            format!("start=ge{from}&end=le{to}&status=busy&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "status=free",
        ),
        (
            format!("start=ge{from}&end=le{to}&status=free"),
            422,
            "INVALID_PARAMETER",
            "_include=Slot:schedule",
        ),
        (
            format!(
                "start=ge{from}&end=le{}&status=free&_include=Slot:schedule",
                day(16)
            ),
            422,
            "INVALID_PARAMETER",
            "two weeks",
        ),
        (
            format!("start={from}&end=le{to}&status=free&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "`ge` prefix",
        ),
        (
            format!("start=lt{from}&end=gt{to}&status=free&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "`ge` prefix",
        ),
        (
            format!("start=ge{to}&end=le{from}&status=free&_include=Slot:schedule"),
            422,
            "INVALID_PARAMETER",
            "before its start",
        ),
    ];
    for (query, status, code, says) in cases {
        let reply = client.send(search(query.clone())).await;
        assert_gpc_error(&reply, status, code, says);
    }
    // Exactly two weeks, and date-times with the offset, are fine.
    let fine = [
        format!("start=ge{from}&end=le{}&status=free&_include=Slot:schedule", day(15)),
        format!("start=ge{from}T00:00:00%2B00:00&end=le{to}T23:00:00%2B01:00&status=free&_include=Slot:schedule"),
    ];
    for query in fine {
        client
            .send(search(query))
            .await
            .assert_status(StatusCode::OK);
    }
    sim.stop().await;
}

#[tokio::test]
async fn book_then_read_then_amend_then_cancel_changes_what_read_and_search_return() {
    let sim = demo_sim().await;
    let client = sim.client();
    // A summer slot: the appointment's times carry +01:00.
    let summer = next(7, 13);
    let bundle = client
        .send(slot_search_between(
            summer,
            summer.checked_add(6.days()).unwrap(),
        ))
        .await
        .json();
    assert!(entries(&bundle, "Schedule").count() >= 1);
    assert!(entries(&bundle, "Practitioner").count() >= 1);
    assert!(entries(&bundle, "Location").count() >= 1);
    assert_eq!(entries(&bundle, "Organization").count(), 1);
    let slot = entries(&bundle, "Slot")
        .find(|s| s["schedule"]["reference"] == "Schedule/1")
        .unwrap()
        .clone();

    let booked = client.send(book(&slot, "3")).await;
    booked.assert_status(StatusCode::CREATED);
    let appointment = booked.json();
    let appointment_id = appointment["id"].as_str().unwrap().to_owned();
    assert_eq!(
        booked.header("location"),
        format!("{ROOT}/Appointment/{appointment_id}/_history/1")
    );
    assert_eq!(booked.header("etag"), "W/\"1\"");
    assert_eq!(appointment["meta"]["profile"][0], APPOINTMENT_PROFILE);
    assert_eq!(
        appointment["serviceType"][0]["text"],
        "General GP appointment"
    );
    assert_eq!(appointment["serviceCategory"]["text"], "Morning surgery");
    assert!(
        appointment["start"].as_str().unwrap().ends_with("+01:00"),
        "{appointment}"
    );
    assert_eq!(appointment["created"], "2024-01-01T09:00:00+00:00");

    // The booked slot is no longer free, and booking it again is a duplicate.
    let again = client
        .send(slot_search_between(
            summer,
            summer.checked_add(6.days()).unwrap(),
        ))
        .await
        .json();
    assert!(!entries(&again, "Slot").any(|s| s["id"] == slot["id"]));
    let twice = client.send(book(&slot, "1")).await;
    assert_gpc_error(&twice, 409, "DUPLICATE_REJECTED", "no longer free");

    let read_call = || read_of("Appointment", &appointment_id);
    let read = client.send(read_call()).await.json();
    assert_eq!(read["status"], "booked");
    assert_eq!(read["serviceType"][0]["text"], "General GP appointment");
    let listed = client
        .send(appointments_between(
            "3",
            &format!("ge{summer}"),
            &format!("le{}", summer.checked_add(6.days()).unwrap()),
        ))
        .await
        .json();
    let retrieved = entries(&listed, "Appointment")
        .find(|a| a["id"] == appointment_id.as_str())
        .expect("retrieved");
    assert_eq!(retrieved["serviceCategory"]["text"], "Morning surgery");

    let mut amended = read.clone();
    amended["comment"] = json!("Needs step-free access");
    let reply = client
        .send(put_appointment(&appointment_id, AMEND, &amended))
        .await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(
        reply.json()["serviceType"][0]["text"],
        "General GP appointment"
    );
    let read = client.send(read_call()).await.json();
    assert_eq!(read["comment"], "Needs step-free access");
    assert_eq!(read["meta"]["versionId"], "2");

    let mut moved = read.clone();
    moved["start"] = json!("2099-01-01T09:00:00+00:00");
    let refused = client
        .send(put_appointment(&appointment_id, AMEND, &moved))
        .await;
    assert_gpc_error(&refused, 422, "INVALID_RESOURCE", "start");

    let cancelled = client
        .send(put_appointment(
            &appointment_id,
            CANCEL,
            &with_reason(&read, "Patient request"),
        ))
        .await;
    cancelled.assert_status(StatusCode::OK);
    let cancelled = cancelled.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["serviceCategory"]["text"], "Morning surgery");

    // The slot is free again.
    let after = client
        .send(slot_search_between(
            summer,
            summer.checked_add(6.days()).unwrap(),
        ))
        .await
        .json();
    assert!(entries(&after, "Slot").any(|s| s["id"] == slot["id"]));
    let missing = client.send(read_of("Appointment", "999")).await;
    assert_gpc_error(&missing, 404, "NO_RECORD_FOUND", "`999`");
    sim.stop().await;
}

#[tokio::test]
async fn amend_and_cancel_honour_if_match_and_change_nothing_on_a_stale_version() {
    let sim = demo_sim().await;
    let client = sim.client();
    let appointment = booked(&client).await;
    let id = appointment["id"].as_str().unwrap().to_owned();
    let mut amended = appointment.clone();
    amended["comment"] = json!("First change");
    let reply = client
        .send(put_appointment(&id, AMEND, &amended).header("If-Match", "W/\"1\""))
        .await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.header("etag"), "W/\"2\"");
    assert_eq!(reply.json()["meta"]["versionId"], "2");
    for stale in ["W/\"1\"", "invalidEtag"] {
        let mut late = amended.clone();
        late["comment"] = json!("Second change");
        let reply = client
            .send(put_appointment(&id, AMEND, &late).header("If-Match", stale))
            .await;
        assert_gpc_error(&reply, 409, "FHIR_CONSTRAINT_VIOLATION", "W/\"2\"");
        assert_eq!(reply.json()["issue"][0]["code"], "conflict");
        let cancel = client
            .send(
                put_appointment(&id, CANCEL, &with_reason(&amended, "Late"))
                    .header("If-Match", stale),
            )
            .await;
        assert_gpc_error(&cancel, 409, "FHIR_CONSTRAINT_VIOLATION", stale);
    }
    let read = client.send(read_of("Appointment", &id)).await;
    assert_eq!(read.header("etag"), "W/\"2\"");
    let read = read.json();
    assert_eq!(read["comment"], "First change");
    assert_eq!(read["status"], "booked");
    let cancel = client
        .send(
            put_appointment(&id, CANCEL, &with_reason(&read, "On time"))
                .header("If-Match", "W/\"2\""),
        )
        .await;
    cancel.assert_status(StatusCode::OK);
    assert_eq!(cancel.json()["meta"]["versionId"], "3");
    sim.stop().await;
}

#[tokio::test]
async fn prefer_return_minimal_answers_book_amend_and_cancel_without_a_body() {
    let sim = demo_sim().await;
    let client = sim.client();
    let slot = free_slot(&client, "1").await;
    let reply = client
        .send(book(&slot, "3").header("Prefer", "return=minimal"))
        .await;
    reply.assert_status(StatusCode::CREATED);
    assert!(reply.body.is_empty(), "{:?}", reply.body);
    assert_eq!(reply.header("etag"), "W/\"1\"");
    let location = reply.header("location").to_owned();
    let id = location.rsplit('/').nth(2).unwrap().to_owned();
    let appointment = client.send(read_of("Appointment", &id)).await.json();
    let mut amended = appointment.clone();
    amended["description"] = json!("Changed");
    let reply = client
        .send(put_appointment(&id, AMEND, &amended).header("Prefer", "return=minimal"))
        .await;
    reply.assert_status(StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), "W/\"2\"");
    let reply = client
        .send(put_appointment(&id, AMEND, &amended).header("Prefer", "return=representation"))
        .await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json()["description"], "Changed");
    let reply = client
        .send(
            put_appointment(&id, CANCEL, &with_reason(&amended, "Minimal"))
                .header("Prefer", "return=minimal"),
        )
        .await;
    reply.assert_status(StatusCode::OK);
    assert!(reply.body.is_empty());
    assert_eq!(
        client.send(read_of("Appointment", &id)).await.json()["status"],
        "cancelled"
    );
    sim.stop().await;
}

#[tokio::test]
async fn booking_refuses_unknown_patients_slots_and_bad_appointments() {
    let sim = demo_sim().await;
    let client = sim.client();
    let slot = free_slot(&client, "1").await;
    let unknown = client.send(book(&slot, "99")).await;
    assert_gpc_error(&unknown, 404, "PATIENT_NOT_FOUND", "`99`");
    let mut no_slot = slot.clone();
    no_slot["id"] = json!("1-20300101-0907");
    let reply = client.send(book(&no_slot, "1")).await;
    assert_gpc_error(&reply, 422, "REFERENCE_NOT_FOUND", "1-20300101-0907");
    for reference in [
        "Slot/45555g55555",
        "Slot/45555555##",
        "Slot/hello",
        "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/Slot/#12345",
    ] {
        let mut appointment = booking(&slot, "1");
        appointment["slot"] = json!([{"reference": reference}]);
        let reply = client.send(create_appointment(&appointment)).await;
        assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "malformed");
    }
    let long = "x".repeat(101);
    let edits: Vec<(&str, Value, &str)> = vec![
        ("end", json!("2099-01-01T00:00:00Z"), "start and end"),
        ("reason", json!([{"text": "chest pain"}]), "reason"),
        (
            "specialty",
            json!([{"text": "General medicine"}]),
            "specialty",
        ),
        ("meta", json!({}), "meta.profile"),
        (
            "invalidField",
            json!("Assurance Testing"),
            "`Appointment.invalidField` is not an element",
        ),
        ("description", json!(long), "at most 100"),
        (
            "identifier",
            json!([{"system": "https://example.org/appointments"}]),
            "needs a value",
        ),
        (
            "participant",
            json!([{"actor": {"reference": "Patient/1"}}, {"actor": {"reference": "Location/1"}, "status": "accepted"}]),
            "`Appointment.participant[0].status` is required",
        ),
        (
            "participant",
            json!([{"actor": {"reference": "https://x.nhs.uk/A1/STU3/1/GPConnect/Patient/1"}, "status": "accepted"}, {"actor": {"reference": "Location/1"}, "status": "accepted"}]),
            "relative reference",
        ),
        (
            "extension",
            json!([{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1", "valueReference": {"reference": "https://x.nhs.uk/#1"}}]),
            "bookingOrganisation",
        ),
        ("created", json!("yesterday"), "created"),
    ];
    for (field, value, says) in edits {
        let mut appointment = booking(&slot, "1");
        appointment[field] = value;
        let reply = client.send(create_appointment(&appointment)).await;
        assert_gpc_error(&reply, 422, "INVALID_RESOURCE", says);
    }
    for missing in ["start", "status", "slot"] {
        let mut appointment = booking(&slot, "1");
        appointment.as_object_mut().unwrap().remove(missing);
        let reply = client.send(create_appointment(&appointment)).await;
        reply.assert_outcome(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOURCE");
    }
    let not_appointment = client
        .send(create_appointment(&json!({"resourceType": "Bundle"})))
        .await;
    assert_gpc_error(&not_appointment, 422, "INVALID_RESOURCE", "Appointment");
    sim.stop().await;
}

#[tokio::test]
async fn amend_and_cancel_refuse_what_they_may_not_change() {
    let sim = demo_sim().await;
    let client = sim.client();
    let appointment = booked(&client).await;
    let id = appointment["id"].as_str().unwrap().to_owned();
    let mut long = appointment.clone();
    long["comment"] = json!("y".repeat(501));
    let reply = client.send(put_appointment(&id, AMEND, &long)).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "at most 500");
    let mut priority = appointment.clone();
    priority["priority"] = json!(1);
    let reply = client.send(put_appointment(&id, AMEND, &priority)).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "priority");
    let mut misspelt = appointment.clone();
    misspelt["commnet"] = json!("typo");
    let reply = client.send(put_appointment(&id, AMEND, &misspelt)).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "`Appointment.commnet`");
    // The provider's slot and schedule types may be left out or changed: they are ignored.
    let mut no_types = appointment.clone();
    no_types.as_object_mut().unwrap().remove("serviceType");
    no_types["serviceCategory"] = json!({"text": "Whatever the consumer says"});
    no_types["description"] = json!("Amended without types");
    let reply = client.send(put_appointment(&id, AMEND, &no_types)).await;
    reply.assert_status(StatusCode::OK);
    let current = reply.json();
    assert_eq!(current["serviceCategory"]["text"], "Morning surgery");

    let empty = client
        .send(put_appointment(&id, CANCEL, &with_reason(&current, "")))
        .await;
    assert_gpc_error(&empty, 422, "INVALID_PARAMETER", "cancellation reason");
    let mut no_reason = current.clone();
    no_reason["status"] = json!("cancelled");
    let reply = client.send(put_appointment(&id, CANCEL, &no_reason)).await;
    assert_gpc_error(&reply, 422, "INVALID_PARAMETER", "cancellation reason");
    let mut wrong_url = no_reason.clone();
    wrong_url["extension"].as_array_mut().unwrap().push(json!({
        "url": "http://fhir.nhs.uk/StructuraeDefinition/extension-gpconnect-appointment-cancellation-reason-1-010",
        "valueString": "Too busy"}));
    let reply = client.send(put_appointment(&id, CANCEL, &wrong_url)).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "extension");
    let mut description = with_reason(&current, "double booked");
    description["description"] = json!("RANDOM DESCRIPTION");
    let reply = client
        .send(put_appointment(&id, CANCEL, &description))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "description");
    let read = client.send(read_of("Appointment", &id)).await.json();
    assert_eq!(read["status"], "booked", "nothing changed");
    sim.stop().await;
}

#[tokio::test]
async fn visit_appointments_are_read_and_retrieved_but_never_offered_booked_amended_or_cancelled() {
    let sim = demo_sim().await;
    let client = sim.client();
    let listed = client.send(appointments_of("2")).await.json();
    let visit = entries(&listed, "Appointment")
        .find(|a| {
            a["extension"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["url"] == DELIVERY_CHANNEL && e["valueCode"] == "Visit")
        })
        .expect("the fixture visit is retrieved")
        .clone();
    let visit_id = visit["id"].as_str().unwrap();
    let read = client.send(read_of("Appointment", visit_id)).await;
    assert_eq!(read.status, StatusCode::OK);

    let search = client.send(slot_search(0, 13)).await.json();
    assert!(entries(&search, "Slot").count() > 0);
    assert!(entries(&search, "Slot").all(|s| s["extension"][0]["valueCode"] != "Visit"));

    let mut amended = visit.clone();
    amended["comment"] = json!("Ring the bell twice");
    let reply = client
        .send(put_appointment(visit_id, AMEND, &amended))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "Visit");
    let reply = client
        .send(put_appointment(
            visit_id,
            CANCEL,
            &with_reason(&visit, "No longer needed"),
        ))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "Visit");

    // A visit slot (the fixture visit's schedule) cannot be booked either.
    let visit_slot = json!({"id": visit["slot"][0]["reference"].as_str().unwrap().trim_start_matches("Slot/"),
                            "start": visit["start"], "end": visit["end"]});
    let reply = client.send(book(&visit_slot, "1")).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "Visit");
    sim.stop().await;
}

#[tokio::test]
async fn retrieving_appointments_refuses_past_ranges_and_time_elements_and_returns_from_today() {
    let sim = demo_sim().await;
    let client = sim.client();
    let (yesterday, today, later) = (day(-1), day(0), day(20));
    let cases: Vec<(String, String, &str)> = vec![
        (
            format!("ge{yesterday}"),
            format!("le{later}"),
            "is in the past",
        ),
        (
            "ge2010-02-03".into(),
            "le2010-03-03".into(),
            "is in the past",
        ),
        (
            format!("ge{today}"),
            format!("le{today}T23:00:00"),
            "time element",
        ),
        (
            format!("ge{today}T00:00:00Z"),
            format!("le{later}"),
            "time element",
        ),
        (
            format!("ge{today}"),
            format!("le{}", &later.to_string()[..7]),
            "not a full date",
        ),
        (
            format!("ge{later}"),
            format!("le{today}"),
            "before its start",
        ),
        (
            format!("ge{today}"),
            format!("ge{later}"),
            "two start parameters",
        ),
        (
            format!("lt{today}"),
            format!("le{later}"),
            "two start parameters",
        ),
    ];
    for (from, to, says) in cases {
        let reply = client.send(appointments_between("2", &from, &to)).await;
        assert_gpc_error(&reply, 422, "INVALID_PARAMETER", says);
    }
    let one = client
        .send(get(
            &format!("/Patient/2/Appointment?start=ge{today}"),
            "fhir:rest:search:patient_appointments-1",
        ))
        .await;
    assert_gpc_error(&one, 422, "INVALID_PARAMETER", "two start parameters");
    // Many appointments, of every channel, and the cancelled one; not last week's.
    let many = client.send(appointments_of("2")).await.json();
    let ids: Vec<&str> = entries(&many, "Appointment")
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.len() >= 5, "{ids:?}");
    assert!(!ids.contains(&"6"), "{ids:?}");
    assert!(entries(&many, "Appointment").any(|a| a["status"] == "cancelled"));
    let none = client.send(appointments_of("3")).await.json();
    assert_eq!(none["total"], 0);
    // Last week's appointment can be read but not amended.
    let past = client.send(read_of("Appointment", "6")).await;
    past.assert_status(StatusCode::OK);
    let reply = client.send(put_appointment("6", AMEND, &past.json())).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "past");
    let unknown = client.send(appointments_of("77")).await;
    assert_gpc_error(&unknown, 404, "PATIENT_NOT_FOUND", "`77`");
    sim.stop().await;
}

fn nhs_parameter(nhs: &str) -> Value {
    json!({"name": "patientNHSNumber", "valueIdentifier": {"system": NHS, "value": nhs}})
}

fn structured_call(parameters: &Value) -> Call {
    structured_body(json!({"resourceType": "Parameters", "parameter": parameters}))
}

fn structured_body(body: impl ToString) -> Call {
    send_json(
        Method::POST,
        format!("{STRUCTURED_ROOT}/Patient/$gpc.getstructuredrecord"),
        "fhir:operation:gpc.getstructuredrecord-1",
        body,
    )
}

fn list_titled<'a>(bundle: &'a Value, title: &str) -> &'a Value {
    entries(bundle, "List")
        .find(|l| l["title"] == title)
        .unwrap_or_else(|| panic!("no List `{title}` in {bundle}"))
}

#[tokio::test]
async fn structured_record_returns_real_content_for_every_clinical_area() {
    let sim = demo_sim().await;
    let client = sim.client();
    let areas: [(Value, &str, &[&str]); 8] = [
        (
            json!({"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]}),
            "Allergies and adverse reactions",
            &["AllergyIntolerance"],
        ),
        (
            json!({"name": "includeMedication"}),
            "Medications and medical devices",
            &["Medication", "MedicationStatement", "MedicationRequest"],
        ),
        (
            json!({"name": "includeProblems"}),
            "Problems",
            &["Condition"],
        ),
        (
            json!({"name": "includeImmunisations"}),
            "Immunisations",
            &["Immunization"],
        ),
        (
            json!({"name": "includeConsultations"}),
            "List of consultations",
            &["Encounter", "Observation"],
        ),
        (
            json!({"name": "includeUncategorisedData"}),
            "Miscellaneous record",
            &["Observation"],
        ),
        (
            json!({"name": "includeInvestigations"}),
            "Investigations and Results",
            &["DiagnosticReport", "Observation", "Specimen"],
        ),
        (
            json!({"name": "includeReferrals"}),
            "Outbound referral",
            &["ReferralRequest"],
        ),
    ];
    for (parameter, title, kinds) in areas {
        let reply = client
            .send(structured_call(&json!([
                nhs_parameter("9476719931"),
                parameter
            ])))
            .await;
        reply.assert_status(StatusCode::OK);
        let bundle = reply.json();
        assert_eq!(bundle["type"], "collection");
        for kind in [
            "Patient",
            "Organization",
            "Practitioner",
            "PractitionerRole",
        ] {
            assert!(entries(&bundle, kind).count() > 0, "{title}: no {kind}");
        }
        let list = list_titled(&bundle, title);
        assert!(
            list["entry"].as_array().is_some_and(|e| !e.is_empty()),
            "{title}: {list}"
        );
        for kind in kinds {
            assert!(entries(&bundle, kind).count() > 0, "{title}: no {kind}");
        }
    }
    // Filters narrow each area.
    let narrow = client
        .send(structured_call(&json!([
            nhs_parameter("9476719931"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]},
            {"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "active"}, {"name": "filterSignificance", "valueCode": "major"}]}
        ])))
        .await
        .json();
    assert_eq!(entries(&narrow, "AllergyIntolerance").count(), 1);
    assert_eq!(entries(&narrow, "Condition").count(), 1);
    let narrow = client
        .send(structured_call(&json!([
            nhs_parameter("9476719931"),
            {"name": "includeImmunisations", "part": [{"name": "includeNotGiven", "valueBoolean": false}]},
            {"name": "includeReferrals", "part": [{"name": "referralSearchPeriod", "valuePeriod": {"start": "2010-01-01", "end": "2011-01-01"}}]}
        ])))
        .await
        .json();
    assert_eq!(entries(&narrow, "Immunization").count(), 2);
    assert!(entries(&narrow, "Immunization").all(|i| i["notGiven"] == false));
    assert_eq!(
        list_titled(&narrow, "Outbound referral")["emptyReason"]["coding"][0]["code"],
        "no-content-recorded"
    );
    let recent = client
        .send(structured_call(&json!([nhs_parameter("9476719931"),
            {"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valuePositiveInt": 1}]}])))
        .await
        .json();
    let encounters: Vec<&Value> = entries(&recent, "Encounter").collect();
    assert_eq!(encounters.len(), 1);
    assert_eq!(encounters[0]["id"], "2", "the most recent consultation");
    let medication = client
        .send(structured_call(&json!([nhs_parameter("9476719931"),
            {"name": "includeMedication", "part": [
                {"name": "includePrescriptionIssues", "valueBoolean": false},
                {"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]}])))
        .await
        .json();
    assert_eq!(entries(&medication, "MedicationStatement").count(), 1);
    assert!(entries(&medication, "MedicationRequest").all(|r| r["intent"] == "plan"));

    // "No known allergies" is recorded for Harold; nothing at all for Priya.
    let nka = client
        .send(structured_call(&json!([nhs_parameter("9690937278"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]}])))
        .await
        .json();
    let allergy = entries(&nka, "AllergyIntolerance")
        .next()
        .expect("the NKA assertion");
    assert_eq!(allergy["code"]["coding"][0]["code"], "716186003");
    let nothing = client
        .send(structured_call(&json!([nhs_parameter("9690937286"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]},
            {"name": "includeProblems"}])))
        .await
        .json();
    for list in entries(&nothing, "List") {
        assert_eq!(
            list["emptyReason"]["coding"][0]["code"], "no-content-recorded",
            "{list}"
        );
        assert_eq!(list["note"][0]["text"], "Information not available");
    }
    sim.stop().await;
}

#[tokio::test]
async fn structured_record_follows_the_error_table() {
    let sim = demo_sim().await;
    let client = sim.client();
    let reply = client
        .send(structured_call(&json!([nhs_parameter("9476719932")])))
        .await;
    assert_gpc_error(&reply, 400, "INVALID_NHS_NUMBER", "check digit");
    let reply = client.send(structured_call(&json!([]))).await;
    assert_gpc_error(&reply, 422, "INVALID_PARAMETER", "patientNHSNumber");
    // Unknown, unverified, deceased and inactive patients are all not found.
    for nhs in ["9690937308", "9690937332", "9690937316", "9690937375"] {
        let reply = client
            .send(structured_call(&json!([nhs_parameter(nhs)])))
            .await;
        assert_gpc_error(&reply, 404, "PATIENT_NOT_FOUND", nhs);
    }
    let reply = client
        .send(structured_call(
            &json!([nhs_parameter("9476719931"), {"name": "includeAllergies"}]),
        ))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_PARAMETER", "includeResolvedAllergies");
    let reply = client
        .send(structured_call(&json!([nhs_parameter("9476719931"),
            {"name": "includeUncategorisedData", "part": [{"name": "uncategorisedDataSearchPeriod", "valuePeriod": {"start": format!("{}", day(1))}}]}])))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_PARAMETER", "after today");
    let reply = client
        .send(structured_call(&json!([nhs_parameter("9476719931"), {"name": "includeAllergies", "valueBoolean": true, "typo": 1}])))
        .await;
    assert_gpc_error(
        &reply,
        422,
        "INVALID_RESOURCE",
        "`Parameters.parameter[1].typo`",
    );
    let malformed = client.send(structured_body("[1,")).await;
    assert_gpc_error(&malformed, 422, "INVALID_RESOURCE", "not valid JSON");
    sim.stop().await;
}

fn documents_search(patient: &str, extra: &str) -> Call {
    Call::new(
        Method::GET,
        format!("{DOCUMENTS_ROOT}/Patient/{patient}/DocumentReference?_include=DocumentReference:subject:Patient&_include=DocumentReference:custodian:Organization&_include=DocumentReference:author:Organization&_include=DocumentReference:author:Practitioner&_revinclude:recurse=PractitionerRole:practitioner{extra}"),
        &id("documents:fhir:rest:search:documentreference-1"),
    )
}

fn binary(id_: &str) -> Call {
    Call::new(
        Method::GET,
        format!("{DOCUMENTS_ROOT}/Binary/{id_}"),
        &id("documents:fhir:rest:read:binary-1"),
    )
}

#[tokio::test]
async fn access_document_finds_a_patient_searches_their_documents_and_retrieves_one() {
    let sim = demo_sim().await;
    let client = sim.client();
    let found = client
        .send(Call::new(
            Method::GET,
            format!("{DOCUMENTS_ROOT}/Patient?identifier={NHS}%7C9476719931"),
            &id("documents:fhir:rest:search:patient-1"),
        ))
        .await
        .json();
    assert_eq!(entries(&found, "Patient").next().unwrap()["id"], "1");
    let reply = client.send(documents_search("1", "")).await;
    reply.assert_status(StatusCode::OK);
    let bundle = reply.json();
    let documents: Vec<&Value> = entries(&bundle, "DocumentReference").collect();
    assert_eq!(documents.len(), 2);
    for kind in [
        "Patient",
        "Organization",
        "Practitioner",
        "PractitionerRole",
    ] {
        assert!(entries(&bundle, kind).count() > 0, "no {kind}");
    }
    assert!(
        entries(&bundle, "Organization").any(|o| o["name"] == "Leeds Teaching Hospitals NHS Trust")
    );
    let letter = documents.iter().find(|d| d["id"] == "1").unwrap();
    let attachment = &letter["content"][0]["attachment"];
    assert_eq!(attachment["url"], format!("{DOCUMENTS_ROOT}/Binary/1"));
    let filtered = client
        .send(documents_search(
            "1",
            "&description=discharge&created=ge2023-01-01",
        ))
        .await
        .json();
    assert_eq!(entries(&filtered, "DocumentReference").count(), 1);
    let none = client.send(documents_search("3", "")).await.json();
    assert_eq!(entries(&none, "DocumentReference").count(), 0);

    let retrieved = client.send(binary("1")).await;
    retrieved.assert_status(StatusCode::OK);
    let binary_resource = retrieved.json();
    assert_eq!(binary_resource["resourceType"], "Binary");
    assert_eq!(binary_resource["contentType"], "text/plain");
    let content = base64::engine::general_purpose::STANDARD
        .decode(binary_resource["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(content.len() as u64, attachment["size"].as_u64().unwrap());
    assert!(String::from_utf8_lossy(&content).contains("Discharge summary"));

    let too_large = client.send(binary("2")).await;
    assert_gpc_error(
        &too_large,
        404,
        "NO_RECORD_FOUND",
        "over the 5242880-byte limit",
    );
    let missing = client.send(binary("99")).await;
    assert_gpc_error(&missing, 404, "NO_RECORD_FOUND", "`99`");
    let no_includes = Call::new(
        Method::GET,
        format!("{DOCUMENTS_ROOT}/Patient/1/DocumentReference?_include=DocumentReference:subject:Patient&_revinclude:recurse=PractitionerRole:practitioner"),
        &id("documents:fhir:rest:search:documentreference-1"),
    );
    let reply = client.send(no_includes).await;
    assert_gpc_error(
        &reply,
        422,
        "INVALID_PARAMETER",
        "DocumentReference:custodian:Organization",
    );
    let author = client
        .send(documents_search(
            "1",
            "&author=https://fhir.nhs.uk/Id/sds-user-id%7CG13579135",
        ))
        .await;
    assert_gpc_error(&author, 422, "INVALID_PARAMETER", "ODS code");
    let unverified = client.send(documents_search("7", "")).await;
    assert_gpc_error(&unverified, 404, "PATIENT_NOT_FOUND", "`7`");
    sim.stop().await;
}

#[tokio::test]
async fn disabled_switches_answer_access_denied_naming_the_capability() {
    let sim = demo_sim().await;
    let client = sim.client();
    let appointments = Call::new(
        Method::GET,
        format!("{APPOINTMENTS_OFF_ROOT}/Appointment/1"),
        &id("fhir:rest:read:appointment-1"),
    )
    .header("Ssp-To", APPOINTMENTS_OFF);
    let reply = client.send(appointments).await;
    assert_gpc_error(
        &reply,
        403,
        "ACCESS_DENIED",
        "appointments capability is disabled for practice B82617",
    );
    let foundations = Call::new(
        Method::GET,
        format!("{APPOINTMENTS_OFF_ROOT}/metadata"),
        METADATA,
    )
    .header("Ssp-To", APPOINTMENTS_OFF);
    assert_eq!(client.send(foundations).await.status, StatusCode::OK);
    let off = Call::new(Method::GET, format!("{ALL_OFF_ROOT}/metadata"), METADATA)
        .header("Ssp-To", ALL_OFF);
    let reply = client.send(off).await;
    assert_gpc_error(
        &reply,
        403,
        "ACCESS_DENIED",
        "GP Connect capability is disabled for practice C81001",
    );
    sim.stop().await;
}

#[tokio::test]
async fn requests_of_the_wrong_shape_or_unimplemented_interactions_are_refused() {
    let sim = demo_sim().await;
    let client = sim.client();
    let reply = client
        .send(get("/Patient", "fhir:rest:read:patient-1"))
        .await;
    assert_gpc_error(&reply, 400, "BAD_REQUEST", "does not fit");
    let migrate = Call::new(
        Method::POST,
        format!("{STRUCTURED_ROOT}/Patient/$gpc.migratestructuredrecord"),
        &id("fhir:operation:gpc.migratestructuredrecord-1"),
    )
    .body("application/fhir+json", "{}");
    let reply = client.send(migrate).await;
    assert_gpc_error(&reply, 501, "NOT_IMPLEMENTED", "does not implement");
    sim.stop().await;
}

#[tokio::test]
async fn the_shipped_routes_answer_gp_connect_calls_for_the_example_practice() {
    let sim = Sim::start(include_str!("../routes.toml")).await;
    let client = sim.client();
    let reply = client.send(read_of("Patient", "1")).await;
    reply.assert_status(StatusCode::OK);
    let reply = client
        .send(structured_call(&json!([nhs_parameter("9476719931")])))
        .await;
    reply.assert_status(StatusCode::OK);
    client.send(binary("1")).await.assert_status(StatusCode::OK);
    // The second practice has no switches: disabled by default.
    let second = Call::new(
        Method::GET,
        "https://second.example.nhs.uk/B82617/STU3/1/gpconnect/metadata",
        METADATA,
    )
    .header("Ssp-To", "918999198993");
    assert_gpc_error(&client.send(second).await, 403, "ACCESS_DENIED", "B82617");
    sim.stop().await;
}

/// One call for every kind of answer the demo gives: each resource and Bundle it serves, the
/// answers to its writes, and provider errors. Books, amends and cancels on `client`'s demo.
async fn every_kind_of_answer(client: &Client) -> Vec<(&'static str, Call)> {
    let structured = |parameters: Value| structured_call(&parameters);
    let all_areas = json!([nhs_parameter("9476719931"),
        {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]},
        {"name": "includeMedication"}, {"name": "includeProblems"}, {"name": "includeImmunisations"},
        {"name": "includeUncategorisedData"}, {"name": "includeInvestigations"}, {"name": "includeReferrals"}, {"name": "includeDiaryEntries"}]);
    let consultations = json!([nhs_parameter("9476719931"), {"name": "includeConsultations"}]);
    let slot = free_slot(client, "1").await;
    let mut calls: Vec<(&'static str, Call)> = vec![
        ("metadata", Call::metadata()),
        (
            "structured metadata",
            Call::new(
                Method::GET,
                format!("{STRUCTURED_ROOT}/metadata"),
                &id("structured:fhir:rest:read:metadata-1"),
            ),
        ),
        (
            "documents metadata",
            Call::new(
                Method::GET,
                format!("{DOCUMENTS_ROOT}/metadata"),
                &id("documents:fhir:rest:read:metadata-1"),
            ),
        ),
        ("find patient", find_nhs("9476719931")),
        ("find patient traced", find_nhs("9690937324")),
        ("find patient empty", find_nhs("9690937308")),
        ("find patient sensitive", find_nhs("9690937294")),
        ("read patient", read_of("Patient", "2")),
        ("read deceased patient", read_of("Patient", "5")),
        (
            "find practitioner",
            get(
                "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id%7CG13579135",
                "fhir:rest:search:practitioner-1",
            ),
        ),
        ("read practitioner", read_of("Practitioner", "1")),
        (
            "find organisation",
            get(
                "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CA20047",
                "fhir:rest:search:organization-1",
            ),
        ),
        ("read organisation", read_of("Organization", "1")),
        ("read location", read_of("Location", "2")),
        ("register patient", register(nia())),
        (
            "slot search winter",
            slot_search_between(next(1, 13), next(1, 19)),
        ),
        (
            "slot search summer",
            slot_search_between(next(7, 13), next(7, 19)),
        ),
        ("book", book(&slot, "1")),
        ("read appointment", read_of("Appointment", "2")),
        ("read appointment 1", read_of("Appointment", "1")),
        ("retrieve appointments", appointments_of("2")),
        ("structured every area", structured(all_areas)),
        ("structured consultations", structured(consultations)),
        (
            "structured nothing recorded",
            structured(json!([nhs_parameter("9690937286"), {"name": "includeProblems"}])),
        ),
        ("search documents", documents_search("1", "")),
        ("retrieve document", binary("1")),
        ("error", read_of("Patient", "99")),
        ("error 400", find_nhs("9476719932")),
    ];
    let appointment = client.send(read_of("Appointment", "3")).await.json();
    let mut amended = appointment.clone();
    amended["comment"] = json!("Validated");
    calls.push(("amend", put_appointment("3", AMEND, &amended)));
    calls.push((
        "cancel",
        put_appointment(
            "4",
            CANCEL,
            &with_reason(
                &client.send(read_of("Appointment", "4")).await.json(),
                "Validated",
            ),
        ),
    ));
    calls
}

/// Runs a test-side validator (`tests/tools/{script}`) of the test venv with `args`, feeding it
/// `input` as JSON; answers whether it passed, and its report.
fn run_validator(script: &str, args: &[&str], input: &impl serde::Serialize) -> (bool, String) {
    let script = format!("{}/tests/tools/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the test venv's python runs");
    let input = serde_json::to_vec(input).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), report)
}

/// Runs the independent STU3 validator (`tests/tools/validate_stu3.py`, fhir.resources) over
/// labelled resources; answers its report, or panics with it.
fn validate_stu3(resources: &[(String, Value)]) -> String {
    let (passed, report) = run_validator("validate_stu3.py", &[], &resources);
    assert!(passed, "STU3 validation failed:\n{report}");
    report
}

#[tokio::test]
async fn every_kind_of_demo_resource_and_bundle_passes_an_independent_stu3_validator() {
    let sim = demo_sim().await;
    let client = sim.client();
    let calls = every_kind_of_answer(&client).await;
    let mut resources = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (label, call) in calls {
        let reply = client.send(call).await;
        let body = reply.json();
        kinds.insert(body["resourceType"].as_str().unwrap_or("").to_owned());
        for entry in body["entry"].as_array().into_iter().flatten() {
            kinds.insert(
                entry["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
        }
        resources.push((label.to_owned(), body));
    }
    let expected = [
        "CapabilityStatement",
        "Bundle",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "Location",
        "Slot",
        "Schedule",
        "Appointment",
        "List",
        "AllergyIntolerance",
        "Medication",
        "MedicationStatement",
        "MedicationRequest",
        "Condition",
        "Immunization",
        "Encounter",
        "Observation",
        "DiagnosticReport",
        "Specimen",
        "ReferralRequest",
        "DocumentReference",
        "Binary",
        "OperationOutcome",
    ];
    for kind in expected {
        assert!(kinds.contains(kind), "no {kind} fetched: {kinds:?}");
    }
    let report = validate_stu3(&resources);
    assert!(
        report.contains(&format!(
            "validated {} of {}",
            resources.len(),
            resources.len()
        )),
        "{report}"
    );
    let inner: usize = resources
        .iter()
        .map(|(_, r)| r["entry"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "{} answers ({inner} Bundle entries besides), {} resource kinds: {}",
        resources.len(),
        kinds.len(),
        report.trim()
    );
    sim.stop().await;
}

/// The path of every empty array, empty object and null in `value`: FHIR JSON has none.
fn empty_members(value: &Value, path: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(path.to_owned()),
        Value::Array(items) if items.is_empty() => found.push(path.to_owned()),
        Value::Object(members) if members.is_empty() => found.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                empty_members(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                empty_members(member, &format!("{path}.{key}"), found);
            }
        }
        _ => {}
    }
}

/// The `search.mode` of each entry of `bundle`, by resource type.
fn modes(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                e["search"]["mode"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn searchsets_count_their_matches_and_mark_every_entry_match_or_include() {
    let sim = demo_sim().await;
    let client = sim.client();
    for (bundle, matched) in [
        (client.send(slot_search(1, 7)).await.json(), "Slot"),
        (
            client.send(documents_search("1", "")).await.json(),
            "DocumentReference",
        ),
    ] {
        let modes = modes(&bundle);
        let matches = modes.iter().filter(|(kind, _)| kind == matched).count();
        assert!(matches > 0 && modes.len() > matches, "{bundle}");
        assert_eq!(bundle["total"], matches, "only the {matched}s count");
        for (kind, mode) in &modes {
            let expected = if kind == matched { "match" } else { "include" };
            assert_eq!(mode, expected, "{kind}");
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn demo_json_has_no_empty_arrays_and_its_bundles_follow_their_type() {
    let sim = demo_sim().await;
    let client = sim.client();
    // The PDS-sensitive (S-flag) patient is not found: total 0 and no `entry` at all.
    let sensitive = client.send(find_nhs("9690937294")).await.json();
    assert_eq!(sensitive["total"], 0);
    assert!(sensitive.get("entry").is_none(), "{sensitive}");
    let mut bundles = 0;
    for (label, call) in every_kind_of_answer(&client).await {
        let body = client.send(call).await.json();
        let mut empty = Vec::new();
        empty_members(&body, label, &mut empty);
        assert!(
            empty.is_empty(),
            "FHIR JSON has no empty or null members: {empty:?}"
        );
        if body["resourceType"] != "Bundle" {
            continue;
        }
        bundles += 1;
        let modes = modes(&body);
        match body["type"].as_str() {
            Some("searchset") => {
                let matches = modes.iter().filter(|(_, mode)| mode == "match").count();
                assert_eq!(body["total"], matches, "{label}: total counts the matches");
                for (kind, mode) in &modes {
                    assert!(
                        mode == "match" || mode == "include",
                        "{label}: {kind} is {mode}"
                    );
                }
            }
            // The structured record (1.6.0 GPConnect-StructuredRecord-Bundle-1) is no search:
            // no `total`, no `entry.search` (FHIR bdl-1, bdl-2).
            Some("collection") => {
                assert!(body.get("total").is_none(), "{label}");
                assert!(
                    modes.iter().all(|(_, mode)| mode == "(none)"),
                    "{label}: {modes:?}"
                );
            }
            other => panic!("{label}: a Bundle of type {other:?}"),
        }
    }
    assert!(bundles >= 10, "{bundles} Bundles");
    sim.stop().await;
}

/// The official FHIR STU3 XML schemas, which scripts/test fetches into the venv.
fn stu3_xsd() -> &'static str {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/fhir-stu3-xsd");
    assert!(
        std::path::Path::new(dir).join("fhir-single.xsd").exists(),
        "{dir} is missing: run the suite with scripts/test, which fetches the official STU3 XML schemas"
    );
    dir
}

#[tokio::test]
async fn every_kind_of_demo_xml_answer_is_valid_against_the_official_stu3_schema() {
    let sim = demo_sim().await;
    let client = sim.client();
    let mut documents = Vec::new();
    for (label, call) in every_kind_of_answer(&client).await {
        let reply = client.send(call.accept_xml()).await;
        documents.push((label.to_owned(), reply.fhir_xml()));
    }
    let (passed, report) = run_validator("validate_xsd.py", &[stu3_xsd()], &documents);
    assert!(passed, "FHIR XML that the STU3 schema refuses:\n{report}");
    assert!(
        report.contains(&format!("validated {0} of {0}", documents.len())),
        "{report}"
    );
    println!("{} XML answers: {}", documents.len(), report.trim());
    sim.stop().await;
}

#[test]
fn the_schema_validator_refuses_elements_out_of_definition_order() {
    let documents = vec![
        (
            "in order".to_owned(),
            r#"<Slot xmlns="http://hl7.org/fhir"><id value="1"/><schedule><reference value="Schedule/1"/></schedule><status value="free"/><start value="2024-01-01T09:00:00+00:00"/><end value="2024-01-01T09:15:00+00:00"/></Slot>"#.to_owned(),
        ),
        (
            "status first".to_owned(),
            r#"<Slot xmlns="http://hl7.org/fhir"><status value="free"/><id value="1"/><schedule><reference value="Schedule/1"/></schedule><start value="2024-01-01T09:00:00+00:00"/><end value="2024-01-01T09:15:00+00:00"/></Slot>"#.to_owned(),
        ),
    ];
    let (passed, report) = run_validator("validate_xsd.py", &[stu3_xsd()], &documents);
    assert!(!passed);
    assert!(report.contains("FAIL status first"), "{report}");
    assert!(report.contains("validated 1 of 2"), "{report}");
}

#[test]
fn the_independent_validator_refuses_what_is_not_stu3() {
    let broken = vec![(
        "unknown element".to_owned(),
        json!({"resourceType": "Slot", "status": "free", "schedule": {"reference": "Schedule/1"}, "start": "2024-01-01T09:00:00+00:00", "end": "2024-01-01T09:15:00+00:00", "comment2": "x"}),
    )];
    let (passed, report) = run_validator("validate_stu3.py", &[], &broken);
    assert!(!passed);
    assert!(report.contains("FAIL unknown element"));
}
