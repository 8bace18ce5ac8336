//! The built-in GP Connect 1.2.7 demo provider, driven through the gateway over TLS: every
//! use case and the spec's error handling for each.

mod support;

use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::*;
use time::{Duration, OffsetDateTime};

const STRUCTURED_ROOT: &str = "https://provider.example.nhs.uk/A20047/STU3/1/gpconnect/structured";
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

/// The full interaction ID of `urn:nhs:names:services:gpconnect:{rest}`.
fn id(rest: &str) -> String {
    format!("{GPC}{rest}")
}

/// One practice with everything enabled, one with appointments off, one with GP Connect off.
fn demo_routes() -> String {
    test_consumer()
        .provider("Demo surgery", "A20047", PROVIDER, "A20047-821870")
        .with("[provider.demo]\ngpconnect = true\nfoundations = true\nappointments = true\nstructured = true")
        .endpoint(ROOT, "builtin:demo", &["foundations", "appointments"])
        .endpoint(STRUCTURED_ROOT, "builtin:demo", &["structured"])
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

fn day(offset: i64) -> String {
    (OffsetDateTime::now_utc().date() + Duration::days(offset)).to_string()
}

fn slot_search(from: i64, to: i64) -> Call {
    get(
        &format!(
            "/Slot?start=ge{}&end=le{}&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location&_include:recurse=Location:managingOrganization&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code%7CA11111",
            day(from),
            day(to)
        ),
        "fhir:rest:search:slot-1",
    )
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

fn appointments_of(patient: &str) -> Call {
    get(
        &format!(
            "/Patient/{patient}/Appointment?start=ge{}&start=le{}",
            day(-1),
            day(30)
        ),
        "fhir:rest:search:patient_appointments-1",
    )
}

#[tokio::test]
async fn metadata_is_the_1_2_7_capability_statement_in_json_or_xml() {
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
        .await;
    assert_eq!(
        structured.json()["rest"][0]["operation"][0]["name"],
        "gpc.getstructuredrecord"
    );
    sim.stop().await;
}

#[tokio::test]
async fn find_and_read_patient_return_profiled_patients() {
    let sim = demo_sim().await;
    let client = sim.client();
    let found = client
        .send(find_patient(&format!("{NHS}%7C9476719931")))
        .await;
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
    // Not finding a patient is not an error for a search.
    let none = client
        .send(find_patient(&format!("{NHS}%7C9690937308")))
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(entries(&none.json(), "Patient").count(), 0);
    let missing = client.send(read_of("Patient", "99")).await;
    assert_gpc_error(&missing, 404, "PATIENT_NOT_FOUND", "logical id `99`");
    sim.stop().await;
}

#[tokio::test]
async fn find_patient_refuses_bad_nhs_numbers_systems_and_parameters() {
    let sim = demo_sim().await;
    let client = sim.client();
    let bad_check_digit = client
        .send(find_patient(&format!("{NHS}%7C9476719932")))
        .await;
    assert_gpc_error(&bad_check_digit, 400, "INVALID_NHS_NUMBER", "check digit");
    let short = client
        .send(find_patient(&format!("{NHS}%7C947671993")))
        .await;
    assert_gpc_error(&short, 400, "INVALID_NHS_NUMBER", "ten digits");
    let system = client
        .send(find_patient("https://example.org/id%7C9476719931"))
        .await;
    assert_gpc_error(
        &system,
        400,
        "INVALID_IDENTIFIER_SYSTEM",
        "https://example.org/id",
    );
    let no_pipe = client.send(find_patient("9476719931")).await;
    assert_gpc_error(&no_pipe, 422, "INVALID_PARAMETER", "system|value");
    sim.stop().await;
}

#[tokio::test]
async fn a_pds_sensitive_patient_is_answered_as_not_found_everywhere() {
    let sim = demo_sim().await;
    let client = sim.client();
    let found = client
        .send(find_patient(&format!("{NHS}%7C9690937294")))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(entries(&found.json(), "Patient").count(), 0);
    let read = client.send(read_of("Patient", "4")).await;
    assert_gpc_error(&read, 404, "PATIENT_NOT_FOUND", "logical id `4`");
    let register = client.send(register(register_body("9690937294"))).await;
    assert_gpc_error(&register, 404, "PATIENT_NOT_FOUND", "9690937294");
    let structured = client
        .send(structured_call(&json!([nhs_parameter("9690937294")])))
        .await;
    assert_gpc_error(&structured, 404, "PATIENT_NOT_FOUND", "9690937294");
    let appointments = client.send(appointments_of("4")).await;
    assert_gpc_error(&appointments, 404, "PATIENT_NOT_FOUND", "`4`");
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

fn register_body(nhs: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "registerPatient", "resource": {
        "resourceType": "Patient",
        "meta": {"profile": [PATIENT_PROFILE]},
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"use": "official", "family": "Newcomer", "given": ["Nia"]}],
        "gender": "female",
        "birthDate": "1994-04-04"
    }}]})
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
    let reply = client.send(register(register_body("9690937308"))).await;
    reply.assert_status(StatusCode::OK);
    let bundle = reply.json();
    let patient = entries(&bundle, "Patient").next().unwrap().clone();
    assert_eq!(patient["meta"]["profile"][0], PATIENT_PROFILE);
    assert_eq!(
        patient["extension"][0]["extension"][1]["valueCodeableConcept"]["coding"][0]["code"],
        "T"
    );
    let id = patient["id"].as_str().unwrap();
    let read = client.send(read_of("Patient", id)).await;
    assert_eq!(read.json()["identifier"][0]["value"], "9690937308");
    let again = client.send(register(register_body("9690937308"))).await;
    assert_gpc_error(&again, 409, "DUPLICATE_REJECTED", "already registered");
    let existing = client.send(register(register_body("9476719931"))).await;
    assert_gpc_error(&existing, 409, "DUPLICATE_REJECTED", "Patient/1");
    sim.stop().await;
}

#[tokio::test]
async fn register_patient_refuses_a_patient_without_meta_profile_and_bad_bodies() {
    let sim = demo_sim().await;
    let client = sim.client();
    let mut body = register_body("9690937308");
    body["parameter"][0]["resource"]["meta"] = json!({});
    let reply = client.send(register(&body)).await;
    assert_gpc_error(&reply, 422, "INVALID_RESOURCE", "meta.profile");
    let invalid = client.send(register(register_body("9690937309"))).await;
    assert_gpc_error(&invalid, 400, "INVALID_NHS_NUMBER", "check digit");
    let malformed = client.send(register("{not json")).await;
    assert_gpc_error(&malformed, 400, "BAD_REQUEST", "not valid JSON");
    sim.stop().await;
}

#[tokio::test]
async fn book_then_read_then_amend_then_cancel_changes_what_read_and_search_return() {
    let sim = demo_sim().await;
    let client = sim.client();
    let search = client.send(slot_search(1, 7)).await;
    search.assert_status(StatusCode::OK);
    let bundle = search.json();
    let slot = entries(&bundle, "Slot")
        .next()
        .expect("free slots in the coming week")
        .clone();
    assert_eq!(
        slot["meta"]["profile"][0],
        "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"
    );
    assert!(entries(&bundle, "Schedule").count() >= 1);
    assert!(entries(&bundle, "Practitioner").count() >= 1);
    assert!(entries(&bundle, "Location").count() >= 1);
    assert_eq!(entries(&bundle, "Organization").count(), 1);

    let booked = client.send(book(&slot, "3")).await;
    booked.assert_status(StatusCode::CREATED);
    let appointment = booked.json();
    let appointment_id = appointment["id"].as_str().unwrap().to_owned();
    assert_eq!(
        booked.header("location"),
        format!("{ROOT}/Appointment/{appointment_id}/_history/1")
    );
    assert_eq!(appointment["meta"]["profile"][0], APPOINTMENT_PROFILE);

    // The booked slot is no longer free, and booking it again is a duplicate.
    let again = client.send(slot_search(1, 7)).await.json();
    assert!(!entries(&again, "Slot").any(|s| s["id"] == slot["id"]));
    let twice = client.send(book(&slot, "1")).await;
    assert_gpc_error(&twice, 409, "DUPLICATE_REJECTED", "no longer free");

    let read_call = || read_of("Appointment", &appointment_id);
    let read = client.send(read_call()).await.json();
    assert_eq!(read["status"], "booked");
    let listed = client.send(appointments_of("3")).await.json();
    assert!(entries(&listed, "Appointment").any(|a| a["id"] == appointment_id.as_str()));

    let mut amended = read.clone();
    amended["comment"] = json!("Needs step-free access");
    let reply = client
        .send(put_appointment(&appointment_id, AMEND, &amended))
        .await;
    reply.assert_status(StatusCode::OK);
    let read = client.send(read_call()).await.json();
    assert_eq!(read["comment"], "Needs step-free access");
    assert_eq!(read["meta"]["versionId"], "2");

    let mut moved = read.clone();
    moved["start"] = json!("2099-01-01T09:00:00Z");
    let refused = client
        .send(put_appointment(&appointment_id, AMEND, &moved))
        .await;
    assert_gpc_error(&refused, 422, "INVALID_RESOURCE", "start");

    let mut cancel = read.clone();
    cancel["status"] = json!("cancelled");
    let no_reason = client
        .send(put_appointment(&appointment_id, CANCEL, &cancel))
        .await;
    assert_gpc_error(&no_reason, 422, "INVALID_RESOURCE", "cancellation reason");
    cancel["extension"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": CANCELLATION_REASON, "valueString": "Patient request"}));
    let cancelled = client
        .send(put_appointment(&appointment_id, CANCEL, &cancel))
        .await;
    cancelled.assert_status(StatusCode::OK);
    let read = client.send(read_call()).await.json();
    assert_eq!(read["status"], "cancelled");

    // The slot is free again.
    let after = client.send(slot_search(1, 7)).await.json();
    assert!(entries(&after, "Slot").any(|s| s["id"] == slot["id"]));
    let missing = client.send(read_of("Appointment", "999")).await;
    assert_gpc_error(&missing, 404, "NO_RECORD_FOUND", "`999`");
    sim.stop().await;
}

#[tokio::test]
async fn booking_refuses_unknown_patients_slots_and_bad_appointments() {
    let sim = demo_sim().await;
    let client = sim.client();
    let bundle = client.send(slot_search(1, 7)).await.json();
    let slot = entries(&bundle, "Slot").next().unwrap().clone();
    let unknown = client.send(book(&slot, "99")).await;
    assert_gpc_error(&unknown, 404, "PATIENT_NOT_FOUND", "`99`");
    let mut no_slot = slot.clone();
    no_slot["id"] = json!("1-20300101-0907");
    let reply = client.send(book(&no_slot, "1")).await;
    assert_gpc_error(&reply, 422, "REFERENCE_NOT_FOUND", "1-20300101-0907");
    for (field, value, says) in [
        ("end", json!("2099-01-01T00:00:00Z"), "start and end"),
        ("reason", json!([{"text": "chest pain"}]), "reason"),
        ("meta", json!({}), "meta.profile"),
    ] {
        let mut appointment = booking(&slot, "1");
        appointment[field] = value;
        let reply = client.send(create_appointment(&appointment)).await;
        assert_gpc_error(&reply, 422, "INVALID_RESOURCE", says);
    }
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
    let mut cancel = visit.clone();
    cancel["status"] = json!("cancelled");
    cancel["extension"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": CANCELLATION_REASON, "valueString": "No longer needed"}));
    let reply = client
        .send(put_appointment(visit_id, CANCEL, &cancel))
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
async fn slot_search_and_appointment_retrieval_refuse_invalid_parameters() {
    let sim = demo_sim().await;
    let client = sim.client();
    let base = format!("start=ge{}&end=le{}", day(1), day(3));
    for (query, says) in [
        (
            format!("{base}&status=busy&_include=Slot:schedule"),
            "status=free",
        ),
        (format!("{base}&status=free"), "_include=Slot:schedule"),
        (
            format!(
                "start=ge{}&end=le{}&status=free&_include=Slot:schedule",
                day(1),
                day(20)
            ),
            "two weeks",
        ),
        (
            format!(
                "start={}&end=le{}&status=free&_include=Slot:schedule",
                day(1),
                day(3)
            ),
            "`ge` prefix",
        ),
        (
            format!(
                "start=ge{}&end=le{}&status=free&_include=Slot:schedule",
                day(3),
                day(1)
            ),
            "before its start",
        ),
    ] {
        let reply = client
            .send(get(&format!("/Slot?{query}"), "fhir:rest:search:slot-1"))
            .await;
        assert_gpc_error(&reply, 422, "INVALID_PARAMETER", says);
    }
    let one_start = client
        .send(get(
            &format!("/Patient/2/Appointment?start=ge{}", day(0)),
            "fhir:rest:search:patient_appointments-1",
        ))
        .await;
    assert_gpc_error(&one_start, 422, "INVALID_PARAMETER", "two start parameters");
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

#[tokio::test]
async fn structured_record_holds_patient_practice_allergies_and_medications() {
    let sim = demo_sim().await;
    let client = sim.client();
    let reply = client
        .send(structured_call(&json!([
            nhs_parameter("9476719931"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]},
            {"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": true}]}
        ])))
        .await;
    reply.assert_status(StatusCode::OK);
    let bundle = reply.json();
    assert_eq!(bundle["type"], "collection");
    assert_eq!(
        bundle["meta"]["profile"][0],
        "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1"
    );
    for kind in [
        "Patient",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "AllergyIntolerance",
        "MedicationStatement",
        "Medication",
    ] {
        assert!(entries(&bundle, kind).count() > 0, "no {kind}");
    }
    assert_eq!(entries(&bundle, "AllergyIntolerance").count(), 2);
    assert_eq!(entries(&bundle, "List").count(), 3);
    assert!(entries(&bundle, "MedicationRequest").any(|r| r["intent"] == "order"));

    // Without resolved allergies or issues, and medications from a date, less comes back.
    let reply = client
        .send(structured_call(&json!([
            nhs_parameter("9476719931"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]},
            {"name": "includeMedication", "part": [
                {"name": "includePrescriptionIssues", "valueBoolean": false},
                {"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]}
        ])))
        .await;
    let bundle = reply.json();
    assert_eq!(entries(&bundle, "AllergyIntolerance").count(), 1);
    assert_eq!(entries(&bundle, "MedicationStatement").count(), 1);
    assert!(entries(&bundle, "MedicationRequest").all(|r| r["intent"] == "plan"));

    // A patient with nothing recorded gets empty lists with a reason.
    let reply = client
        .send(structured_call(&json!([
            nhs_parameter("9690937278"),
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": false}]}
        ])))
        .await;
    let list = entries(&reply.json(), "List").next().unwrap().clone();
    assert_eq!(
        list["emptyReason"]["coding"][0]["code"],
        "no-content-recorded"
    );
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
    let reply = client
        .send(structured_call(&json!([nhs_parameter("9690937308")])))
        .await;
    assert_gpc_error(&reply, 404, "PATIENT_NOT_FOUND", "9690937308");
    let reply = client
        .send(structured_call(
            &json!([nhs_parameter("9476719931"), {"name": "includeAllergies"}]),
        ))
        .await;
    assert_gpc_error(&reply, 422, "INVALID_PARAMETER", "includeResolvedAllergies");
    let malformed = client.send(structured_body("[1,")).await;
    assert_gpc_error(&malformed, 422, "INVALID_RESOURCE", "not valid JSON");
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
    assert_gpc_error(&reply, 501, "NOT_IMPLEMENTED", "1.2.7");
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
