//! Appointment Management: search for free slots, book, read, amend, cancel and retrieve a
//! patient's appointments (GP Connect 1.2.7 use-case pages under pages/appointments/, with
//! the error codes of the 1.2.7 provider assurance suite).
//!
//! Times are UK local with their offset. Slots carry the practice's slot type
//! (`Slot.serviceType.text`) and schedules their schedule type (`serviceCategory.text`), as do
//! the appointments booked in them (#912). Amend and cancel honour `If-Match`.
//!
//! Visits (#826, draft 1.2.7): slots and appointments whose delivery channel is `Visit` are
//! read and retrieved like any other, never offered by slot search, and book, amend and
//! cancel refuse them with `INVALID_RESOURCE`.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::config::rejection::Rejection;
use crate::demo::dates::{self, Bound};
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::{DeliveryChannel, Schedule};
use crate::demo::request::Input;
use crate::demo::respond::{searchset, Reply};
use crate::demo::state::{Booking, Practice};
use crate::demo::timetable::{self, SlotTime};
use crate::demo::{fhir, foundations, profiles, Site};

/// The widest date range a slot search may ask for, in days.
const MAX_SLOT_DAYS: i32 = 14;

/// The longest `description` and `comment` the practice stores (1.2.7 book and amend pages).
const DESCRIPTION_LIMIT: usize = 100;
const COMMENT_LIMIT: usize = 500;

fn visit_refused(what: &str) -> Rejection {
    errors::invalid_resource(format!(
        "{what}: appointments with delivery channel Visit can be read and retrieved but not booked, amended or cancelled through GP Connect (draft 1.2.7, #826)"
    ))
}

fn appointment_not_found(site: &Site, id: &str) -> Rejection {
    reject(
        errors::NO_RECORD_FOUND,
        format!(
            "No appointment with logical id `{id}` at practice {}",
            site.ods_code
        ),
    )
}

/// Refuses a patient id the practice does not know; a PDS-sensitive patient is answered as
/// unknown here too, as everywhere else in the demo.
fn check_patient_known(site: &Site, practice: &Practice, patient: &str) -> Result<(), Rejection> {
    if practice.visible_patients().any(|p| p.id == patient) {
        return Ok(());
    }
    Err(foundations::patient_not_found(
        site,
        &format!("logical id `{patient}`"),
    ))
}

/// Sets an Appointment's `serviceType.text` (the slot type) and `serviceCategory.text` (the
/// schedule type, where the practice has one) from its schedule, whatever was sent (#912).
pub fn set_service(appointment: &mut Value, schedule: &Schedule) {
    appointment["serviceType"] = json!([{ "text": schedule.slot_type }]);
    match schedule.category() {
        Some(category) => appointment["serviceCategory"] = json!({ "text": category }),
        None => {
            if let Some(object) = appointment.as_object_mut() {
                object.remove("serviceCategory");
            }
        }
    }
}

/// The Slot resource of a free timetable slot.
fn slot_resource(schedule: &Schedule, id: &str, time: SlotTime) -> Value {
    json!({
        "resourceType": "Slot",
        "id": id,
        "meta": { "versionId": "1", "profile": [profiles::SLOT] },
        "extension": [{ "url": profiles::DELIVERY_CHANNEL, "valueCode": schedule.channel.code() }],
        "serviceType": [{ "text": schedule.slot_type }],
        "schedule": fhir::reference("Schedule", &schedule.id),
        "status": "free",
        "start": dates::format(time.start),
        "end": dates::format(time.end),
    })
}

/// A search parameter that must be present (else BAD_REQUEST) and not empty (else
/// INVALID_PARAMETER).
fn filled<'a>(input: &'a Input, name: &str) -> Result<&'a str, Rejection> {
    let value = input.query.required(name)?;
    if value.is_empty() {
        return Err(errors::invalid_parameter(format!(
            "The `{name}` parameter has no value"
        )));
    }
    Ok(value)
}

/// A schedule with the slots a search returns of it, and its planning horizon: from the
/// start of the first returned session to the end of the last.
struct Offered<'a> {
    schedule: &'a Schedule,
    horizon: (Timestamp, Timestamp),
}

/// Search for free slots: `GET /Slot?start=ge..&end=le..&status=free&_include=Slot:schedule`,
/// optionally with `_include:recurse` for the schedules' practitioners and locations. The
/// practice Organization is always returned with slots. `searchFilter` is accepted and
/// ignored: every slot is open to all.
pub fn search_slots(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let query = &input.query;
    let start = filled(input, "start")?;
    let end = filled(input, "end")?;
    let status = filled(input, "status")?;
    let from =
        dates::parse_bound("start", start, Bound::From).map_err(errors::invalid_parameter)?;
    let to = dates::parse_bound("end", end, Bound::To).map_err(errors::invalid_parameter)?;
    if status != "free" {
        return Err(errors::invalid_parameter(format!(
            "status `{status}` is not allowed; search with status=free"
        )));
    }
    if !query.all("_include").any(|i| i == "Slot:schedule") {
        return Err(errors::invalid_parameter(
            "_include=Slot:schedule is required",
        ));
    }
    if to < from {
        return Err(errors::invalid_parameter(
            "The end of the range is before its start",
        ));
    }
    let (first_day, last_day) = (dates::uk_date(from), dates::uk_date(to));
    if days_between(first_day, last_day) > MAX_SLOT_DAYS {
        return Err(errors::invalid_parameter(
            "The range from start to end is longer than two weeks, the most a search may cover",
        ));
    }
    let busy: BTreeSet<String> =
        site.practice(|p| p.busy_slots().into_iter().map(str::to_owned).collect());

    let mut slots = Vec::new();
    let mut offered: Vec<Offered> = Vec::new();
    for schedule in site
        .fixtures
        .schedules
        .iter()
        .filter(|s| s.channel != DeliveryChannel::Visit)
    {
        let mut day = first_day;
        while day <= last_day {
            for time in schedule.timetable.slots_on(day) {
                let id = timetable::slot_id(&schedule.id, time.start);
                if time.start >= from && time.end <= to && !busy.contains(&id) {
                    slots.push(slot_resource(schedule, &id, time));
                    match offered.iter_mut().find(|o| o.schedule.id == schedule.id) {
                        Some(o) => o.horizon.1 = o.horizon.1.max(time.session_end),
                        None => offered.push(Offered {
                            schedule,
                            horizon: (time.session_start, time.session_end),
                        }),
                    }
                }
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
    }
    if slots.is_empty() {
        return Ok(Reply::ok(searchset(site.base, Vec::new(), Vec::new())));
    }

    let recurse: Vec<&str> = query.all("_include:recurse").collect();
    // The slots match; their schedules and what `_include:recurse` asks for are included.
    let mut included: Vec<Value> = offered
        .iter()
        .map(|o| {
            let mut resource = o.schedule.resource.clone();
            resource["planningHorizon"] = json!({
                "start": dates::format(o.horizon.0),
                "end": dates::format(o.horizon.1),
            });
            resource
        })
        .collect();
    if recurse.contains(&"Schedule:actor:Practitioner") {
        let ids: BTreeSet<&str> = offered
            .iter()
            .flat_map(|o| o.schedule.actors("Practitioner"))
            .collect();
        included.extend(
            ids.into_iter()
                .filter_map(|id| site.fixtures.practitioner(id))
                .cloned(),
        );
    }
    if recurse.contains(&"Schedule:actor:Location") {
        let ids: BTreeSet<&str> = offered
            .iter()
            .flat_map(|o| o.schedule.actors("Location"))
            .collect();
        included.extend(
            ids.iter()
                .filter_map(|id| site.fixtures.location(id))
                .cloned(),
        );
    }
    // "This resource SHALL always be present, regardless of parameters, except where no
    // slots are returned" (1.2.7 search for free slots).
    included.push(site.organisation());
    Ok(Reply::ok(searchset(site.base, slots, included)))
}

/// Whole days from `a` to `b`.
fn days_between(a: Date, b: Date) -> i32 {
    a.until(b).map_or(i32::MAX, |span| span.get_days())
}

/// An Appointment resource profiled as GP Connect requires, with only STU3 elements, or why
/// not.
fn appointment_body(site: &Site, input: &Input) -> Result<Value, Rejection> {
    let appointment = input.json(errors::BAD_REQUEST)?;
    if fhir::resource_type(&appointment) != "Appointment" {
        return Err(errors::invalid_resource(
            "The body must be an Appointment resource",
        ));
    }
    site.check_elements(&appointment)?;
    if !fhir::has_profile(&appointment, profiles::APPOINTMENT) {
        return Err(errors::invalid_resource(format!(
            "The Appointment's meta.profile must list {}",
            profiles::APPOINTMENT
        )));
    }
    for (field, limit) in [
        ("description", DESCRIPTION_LIMIT),
        ("comment", COMMENT_LIMIT),
    ] {
        let length = appointment[field].as_str().map_or(0, |t| t.chars().count());
        if length > limit {
            return Err(errors::invalid_resource(format!(
                "The Appointment's {field} is {length} characters; the practice stores at most {limit}"
            )));
        }
    }
    Ok(appointment)
}

/// The booking organisation: the extension must point at a contained Organization with a
/// name and a telecom.
fn check_booking_organisation(appointment: &Value) -> Result<(), Rejection> {
    let reference = fhir::extension(appointment, profiles::BOOKING_ORGANISATION)
        .and_then(|e| e["valueReference"]["reference"].as_str())
        .and_then(|r| r.strip_prefix('#'));
    let contained = reference.and_then(|id| {
        appointment["contained"]
            .as_array()?
            .iter()
            .find(|r| fhir::resource_type(r) == "Organization" && fhir::id(r) == id)
    });
    match contained {
        Some(org) if org["name"].is_string() && org["telecom"].is_array() => Ok(()),
        _ => Err(errors::invalid_resource(format!(
            "The bookingOrganisation extension ({}) must reference a contained Organization (`#id`) with a name and telecom",
            profiles::BOOKING_ORGANISATION
        ))),
    }
}

/// Participant and identifier rules the 1.2.7 suite checks when booking: relative actor
/// references, and identifiers with a value.
fn check_participants(appointment: &Value) -> Result<(), Rejection> {
    for participant in appointment["participant"].as_array().into_iter().flatten() {
        let reference = participant["actor"]["reference"].as_str().unwrap_or("");
        if reference.contains("://") || reference.is_empty() {
            return Err(errors::invalid_resource(format!(
                "Participant actor reference `{reference}` must be a relative reference such as Patient/1"
            )));
        }
    }
    if appointment["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["value"].as_str().is_none_or(str::is_empty))
    {
        return Err(errors::invalid_resource(
            "Every identifier of the Appointment needs a value",
        ));
    }
    Ok(())
}

/// What an Appointment's `slot` asks for: adjacent timetable slots of one schedule.
struct Requested<'a> {
    schedule: &'a Schedule,
    /// Slot ids, in time order.
    ids: Vec<String>,
    /// From the start of the first slot to the end of the last.
    start: Timestamp,
    end: Timestamp,
}

/// The slots an Appointment asks for, checked to exist, to be bookable and to be adjacent.
/// A reference that is not a demo slot id at all (`Slot/hello`, an absolute URL) is
/// INVALID_RESOURCE, as the suite expects; a slot id of a schedule at a time it has no slot
/// is REFERENCE_NOT_FOUND, the specification's example.
fn requested_slots<'a>(site: &Site<'a>, appointment: &Value) -> Result<Requested<'a>, Rejection> {
    let refs = appointment["slot"].as_array().into_iter().flatten();
    let mut found: Vec<(&Schedule, String, SlotTime)> = Vec::new();
    for r in refs {
        let text = r["reference"].as_str().unwrap_or("");
        let parsed = text
            .strip_prefix("Slot/")
            .and_then(|id| Some((id, timetable::parse_slot_id(id)?)))
            .and_then(|(id, (schedule, start))| {
                Some((id, site.fixtures.schedule(schedule)?, start))
            });
        let Some((id, schedule, start)) = parsed else {
            return Err(errors::invalid_resource(format!(
                "Slot reference `{text}` is malformed: send `Slot/{{id}}` with the id of a slot from a search for free slots"
            )));
        };
        let Some(time) = schedule.timetable.slot_at(start) else {
            return Err(reject(
                errors::REFERENCE_NOT_FOUND,
                format!(
                    "Slot `{id}` does not exist; book slots returned by a search for free slots"
                ),
            ));
        };
        if schedule.channel == DeliveryChannel::Visit {
            return Err(visit_refused(&format!("Slot/{id} is a visit slot")));
        }
        found.push((schedule, id.to_owned(), time));
    }
    found.sort_by_key(|(_, _, t)| t.start);
    let (Some((schedule, _, first)), Some((_, _, last))) = (found.first(), found.last()) else {
        return Err(errors::invalid_resource(
            "The Appointment must reference one or more free slots in `slot`",
        ));
    };
    let adjacent = found.windows(2).all(|w| w[0].2.end == w[1].2.start);
    if !adjacent || found.iter().any(|(s, _, _)| s.id != schedule.id) {
        return Err(errors::invalid_resource(
            "The slots of one appointment must be adjacent slots of one schedule (same delivery channel and slot type)",
        ));
    }
    Ok(Requested {
        schedule,
        start: first.start,
        end: last.end,
        ids: found.iter().map(|(_, id, _)| id.clone()).collect(),
    })
}

/// Book an appointment: `POST /Appointment`.
pub fn book(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let mut appointment = appointment_body(site, input)?;
    if appointment["status"].as_str() != Some("booked") {
        return Err(errors::invalid_resource(
            "A new appointment's status must be `booked`",
        ));
    }
    for forbidden in ["reason", "specialty"] {
        if appointment.get(forbidden).is_some() {
            return Err(errors::invalid_resource(format!(
                "Appointment.{forbidden} must not be sent: appointments carry no clinical information"
            )));
        }
    }
    if fhir::declared_channel(&appointment) == Some(DeliveryChannel::Visit.code()) {
        return Err(visit_refused("The Appointment's delivery channel is Visit"));
    }
    check_booking_organisation(&appointment)?;
    check_participants(&appointment)?;
    let Some(created) = appointment["created"]
        .as_str()
        .and_then(dates::parse_instant)
    else {
        return Err(errors::invalid_resource(
            "The Appointment's `created` must hold when it was created, a date-time with an offset",
        ));
    };
    let patient = fhir::participant(&appointment, "Patient")
        .ok_or_else(|| errors::invalid_resource("The Appointment needs a Patient participant"))?
        .to_owned();
    let location = fhir::participant(&appointment, "Location").ok_or_else(|| {
        errors::invalid_resource(
            "The Appointment needs a Location participant: where it takes place",
        )
    })?;
    if site.fixtures.location(location).is_none() {
        return Err(reject(
            errors::REFERENCE_NOT_FOUND,
            format!(
                "Location/{location} does not exist at practice {}",
                site.ods_code
            ),
        ));
    }
    let requested = requested_slots(site, &appointment)?;
    let start = appointment["start"].as_str().and_then(dates::parse_instant);
    let end = appointment["end"].as_str().and_then(dates::parse_instant);
    if start != Some(requested.start) || end != Some(requested.end) {
        return Err(errors::invalid_resource(format!(
            "The Appointment's start and end must be those of its slots: {} to {}",
            dates::format(requested.start),
            dates::format(requested.end)
        )));
    }
    if requested.start <= site.now {
        return Err(errors::invalid_resource(
            "Only future appointments can be booked; this one starts in the past",
        ));
    }

    let now = site.now_text();
    let booked = site.practice(|practice| {
        check_patient_known(site, practice, &patient)?;
        let busy = practice.busy_slots();
        if let Some(taken) = requested.ids.iter().find(|id| busy.contains(id.as_str())) {
            return Err(reject(
                errors::DUPLICATE_REJECTED,
                format!("Slot/{taken} is no longer free"),
            ));
        }
        let id = practice.next_appointment_id();
        appointment["id"] = Value::String(id.clone());
        appointment["meta"] = json!({ "profile": [profiles::APPOINTMENT] });
        fhir::set_version(&mut appointment, 1, Some(&now));
        appointment["start"] = Value::String(dates::format(requested.start));
        appointment["end"] = Value::String(dates::format(requested.end));
        appointment["created"] = Value::String(dates::format(created));
        set_service(&mut appointment, requested.schedule);
        if fhir::declared_channel(&appointment).is_none() {
            let mut extensions = appointment["extension"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            extensions.push(
                json!({ "url": profiles::DELIVERY_CHANNEL, "valueCode": requested.schedule.channel.code() }),
            );
            appointment["extension"] = Value::Array(extensions);
        }
        let booking = Booking {
            id: id.clone(),
            version: 1,
            patient: patient.clone(),
            slots: requested.ids.clone(),
            start: requested.start,
            channel: requested.schedule.channel,
            cancelled: false,
            resource: appointment.clone(),
        };
        practice.appointments.insert(id.clone(), booking);
        Ok((id, appointment.clone()))
    })?;
    let (id, resource) = booked;
    Ok(Reply::created(
        resource,
        format!("{}/Appointment/{id}/_history/1", site.base),
    ))
}

/// Read an appointment: `GET /Appointment/{id}`, whatever its delivery channel or status.
pub fn read(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    site.practice(|practice| {
        practice
            .appointments
            .get(id)
            .map(|b| Reply::ok(b.resource.clone()))
            .ok_or_else(|| appointment_not_found(site, id))
    })
}

/// Which change a `PUT /Appointment/{id}` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Amend: only `description` and `comment` may change.
    Amend,
    /// Cancel: only `status` (to `cancelled`) and the cancellation reason extension.
    Cancel,
}

/// Fields the provider owns or ignores in an amend or cancel body: its metadata, and the
/// slot and schedule types it sets itself (the 1.2.7 suite sends them, or leaves them out).
const PROVIDER_FIELDS: [&str; 3] = ["meta", "serviceType", "serviceCategory"];

/// Names of the fields that differ between two objects, ignoring `ignored`.
fn changed_fields(stored: &Value, sent: &Value, ignored: &[&str]) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (
        stored.as_object().unwrap_or(&empty),
        sent.as_object().unwrap_or(&empty),
    );
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| {
            !ignored.contains(&n.as_str())
                && !PROVIDER_FIELDS.contains(&n.as_str())
                && !same_time(n, a.get(*n), b.get(*n))
                && a.get(*n) != b.get(*n)
        })
        .cloned()
        .collect()
}

/// `start`, `end` and `created` are the same when they name the same instant, however the
/// offset is written.
fn same_time(name: &str, a: Option<&Value>, b: Option<&Value>) -> bool {
    let instant = |v: Option<&Value>| v.and_then(Value::as_str).and_then(dates::parse_instant);
    matches!(name, "start" | "end" | "created") && instant(a).is_some() && instant(a) == instant(b)
}

/// The version an `If-Match` header names: `W/"3"`, `"3"` or `3`.
fn if_match_version(header: &str) -> &str {
    let tag = header.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.trim_matches('"')
}

/// Amend or cancel an appointment: `PUT /Appointment/{id}`; the interaction ID says which.
/// An `If-Match` that does not name the current version is refused and changes nothing.
pub fn update(site: &Site, input: &Input, change: Change) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    let sent = appointment_body(site, input)?;
    if fhir::id(&sent) != id {
        return Err(reject(
            errors::BAD_REQUEST,
            format!("The Appointment's id must be `{id}`, the id in the URL"),
        ));
    }
    let now = site.now;
    site.practice(|practice| {
        let booking = practice
            .appointments
            .get_mut(id)
            .ok_or_else(|| appointment_not_found(site, id))?;
        if let Some(header) = &input.if_match {
            if if_match_version(header) != booking.version.to_string() {
                return Err(reject(
                    errors::FHIR_CONSTRAINT_VIOLATION,
                    format!(
                        "If-Match `{header}` does not name the current version of Appointment/{id}, W/\"{}\"; read it again and retry with its ETag",
                        booking.version
                    ),
                ));
            }
        }
        apply(booking, &sent, change, now)?;
        Ok(Reply::ok(booking.resource.clone()))
    })
}

/// Checks `sent` against the booked appointment and applies the change; on any refusal the
/// booking is left as it was.
fn apply(
    booking: &mut Booking,
    sent: &Value,
    change: Change,
    now: Timestamp,
) -> Result<(), Rejection> {
    let verb = match change {
        Change::Amend => "amended",
        Change::Cancel => "cancelled",
    };
    if booking.channel == DeliveryChannel::Visit {
        return Err(visit_refused(&format!(
            "Appointment/{} is a visit",
            booking.id
        )));
    }
    if booking.cancelled {
        return Err(errors::invalid_resource(format!(
            "Appointment/{} is cancelled and cannot be {verb}",
            booking.id
        )));
    }
    if booking.start <= now {
        return Err(errors::invalid_resource(format!(
            "Appointment/{} has started or is past; only future appointments can be {verb}",
            booking.id
        )));
    }
    let stored = &booking.resource;
    match change {
        Change::Amend => {
            if sent["status"] != stored["status"] {
                return Err(errors::invalid_resource(
                    "Amend cannot change status; cancel with the cancel interaction",
                ));
            }
            let changed = changed_fields(stored, sent, &["description", "comment"]);
            if !changed.is_empty() {
                return Err(errors::invalid_resource(format!("Only description and comment can be amended; these differ from the booked appointment: {}", changed.join(", "))));
            }
            for field in ["description", "comment"] {
                match sent.get(field) {
                    Some(value) => booking.resource[field] = value.clone(),
                    None => {
                        if let Some(object) = booking.resource.as_object_mut() {
                            object.remove(field);
                        }
                    }
                }
            }
        }
        Change::Cancel => {
            if sent["status"].as_str() != Some("cancelled") {
                return Err(errors::invalid_resource(
                    "A cancellation must set status to `cancelled`",
                ));
            }
            let others: Vec<&Value> = sent["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["url"].as_str() != Some(profiles::CANCELLATION_REASON))
                .collect();
            let stored_extensions: Vec<&Value> = stored["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let mut changed = changed_fields(stored, sent, &["status", "extension"]);
            if others != stored_extensions {
                changed.push("extension".into());
            }
            if !changed.is_empty() {
                return Err(errors::invalid_resource(format!("A cancellation may change only status and the cancellation reason; these differ from the booked appointment: {}", changed.join(", "))));
            }
            // The suite's "missing cancellation extension reason" is an INVALID_PARAMETER.
            let reason = fhir::extension(sent, profiles::CANCELLATION_REASON)
                .filter(|e| e["valueString"].as_str().is_some_and(|r| !r.trim().is_empty()))
                .cloned()
                .ok_or_else(|| {
                    errors::invalid_parameter(format!(
                        "A cancellation needs the cancellation reason extension ({}) with a reason in valueString",
                        profiles::CANCELLATION_REASON
                    ))
                })?;
            let mut extensions: Vec<Value> = stored_extensions.into_iter().cloned().collect();
            extensions.push(reason);
            booking.resource["extension"] = Value::Array(extensions);
            booking.resource["status"] = Value::String("cancelled".into());
            booking.cancelled = true;
        }
    }
    booking.version += 1;
    fhir::set_version(
        &mut booking.resource,
        booking.version,
        Some(&dates::format(now)),
    );
    Ok(())
}

/// One `start` bound of a patient's appointments search: a prefix and a whole date, no time.
fn retrieval_bound(value: &str, bound: Bound) -> Result<Date, Rejection> {
    let rest = dates::strip_prefix("start", value, bound).map_err(errors::invalid_parameter)?;
    if rest.contains('T') {
        return Err(errors::invalid_parameter(format!(
            "`start={value}` contains a time element; send a date only, e.g. `start={}{}`",
            bound.prefix(),
            rest.get(..10).unwrap_or(rest)
        )));
    }
    dates::parse_date(rest).ok_or_else(|| {
        errors::invalid_parameter(format!(
            "`start={value}`: `{rest}` is not a full date (YYYY-MM-DD)"
        ))
    })
}

/// Retrieve a patient's appointments: `GET /Patient/{id}/Appointment?start=ge..&start=le..`,
/// every appointment starting on a UK date in the range, visits and cancelled ones included.
/// No part of the range may be in the past.
pub fn patient_appointments(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let patient = input.segment(1);
    let starts: Vec<&str> = input.query.all("start").collect();
    let pick = |prefix: &str| starts.iter().copied().find(|s| s.starts_with(prefix));
    let (Some(ge), Some(le), 2) = (pick("ge"), pick("le"), starts.len()) else {
        return Err(errors::invalid_parameter(
            "Give the range as two start parameters: start=ge{date}&start=le{date}",
        ));
    };
    let from = retrieval_bound(ge, Bound::From)?;
    let to = retrieval_bound(le, Bound::To)?;
    let today = dates::uk_date(site.now);
    for (value, date) in [(ge, from), (le, to)] {
        if date < today {
            return Err(errors::invalid_parameter(format!(
                "`start={value}` is in the past: appointments can only be retrieved from today ({today}) on"
            )));
        }
    }
    if to < from {
        return Err(errors::invalid_parameter(
            "The end of the range is before its start",
        ));
    }
    site.practice(|practice| {
        check_patient_known(site, practice, patient)?;
        let mut found: Vec<&Booking> = practice
            .appointments
            .values()
            .filter(|b| {
                let day = dates::uk_date(b.start);
                b.patient == patient && day >= from && day <= to
            })
            .collect();
        found.sort_by_key(|b| b.start);
        let resources = found.into_iter().map(|b| b.resource.clone()).collect();
        Ok(Reply::ok(searchset(site.base, resources, Vec::new())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn booking(channel: DeliveryChannel) -> Booking {
        Booking {
            id: "9".into(),
            version: 1,
            patient: "2".into(),
            slots: vec!["1-20300101-0900".into()],
            start: ts("2030-01-01T09:00:00Z"),
            channel,
            cancelled: false,
            resource: json!({
                "resourceType": "Appointment", "id": "9", "meta": {"versionId": "1"},
                "status": "booked", "description": "Check-up",
                "start": "2030-01-01T09:00:00+00:00",
                "serviceType": [{"text": "General GP appointment"}],
                "extension": [{"url": profiles::DELIVERY_CHANNEL, "valueCode": channel.code()}]
            }),
        }
    }

    fn now() -> Timestamp {
        ts("2029-12-01T09:00:00Z")
    }

    #[test]
    fn amend_changes_description_and_comment_only() {
        let mut b = booking(DeliveryChannel::InPerson);
        let mut sent = b.resource.clone();
        sent["comment"] = json!("Wheelchair access needed");
        // The consumer may leave out the types the provider sets, and write times in UTC.
        sent.as_object_mut().unwrap().remove("serviceType");
        sent["start"] = json!("2030-01-01T09:00:00Z");
        apply(&mut b, &sent, Change::Amend, now()).unwrap();
        assert_eq!(b.resource["comment"], "Wheelchair access needed");
        assert_eq!(b.resource["meta"]["versionId"], "2");
        assert_eq!(
            b.resource["serviceType"][0]["text"],
            "General GP appointment"
        );
        sent["start"] = json!("2030-01-02T09:00:00Z");
        let refused = apply(&mut b, &sent, Change::Amend, now()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("differ from the booked appointment: start"),
            "{refused}"
        );
    }

    #[test]
    fn cancel_needs_a_reason_and_frees_nothing_else() {
        let mut b = booking(DeliveryChannel::Telephone);
        let mut sent = b.resource.clone();
        sent["status"] = json!("cancelled");
        let refused = apply(&mut b, &sent, Change::Cancel, now()).unwrap_err();
        assert_eq!(refused.error, errors::INVALID_PARAMETER);
        assert!(refused.to_string().contains("cancellation reason"));
        let mut misspelt = sent.clone();
        misspelt["extension"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": "https://example.org/cancellation-reason", "valueString": "Busy"}));
        assert_eq!(
            apply(&mut b, &misspelt, Change::Cancel, now())
                .unwrap_err()
                .error,
            errors::INVALID_RESOURCE
        );
        sent["extension"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": profiles::CANCELLATION_REASON, "valueString": "Feeling better"}));
        apply(&mut b, &sent, Change::Cancel, now()).unwrap();
        assert!(b.cancelled);
        assert_eq!(b.resource["status"], "cancelled");
        assert!(apply(&mut b, &sent, Change::Cancel, now())
            .unwrap_err()
            .to_string()
            .contains("is cancelled"));
    }

    #[test]
    fn visits_and_past_appointments_are_refused() {
        let mut visit = booking(DeliveryChannel::Visit);
        let sent = visit.resource.clone();
        let refused = apply(&mut visit, &sent, Change::Amend, now()).unwrap_err();
        assert_eq!(refused.error, errors::INVALID_RESOURCE);
        assert!(refused.to_string().contains("#826"), "{refused}");
        let mut past = booking(DeliveryChannel::InPerson);
        let sent = past.resource.clone();
        assert!(
            apply(&mut past, &sent, Change::Amend, ts("2031-01-01T00:00:00Z"))
                .unwrap_err()
                .to_string()
                .contains("past")
        );
    }

    #[test]
    fn if_match_versions_are_read_in_every_usual_form() {
        for header in ["W/\"3\"", "\"3\"", "3", " W/\"3\" "] {
            assert_eq!(if_match_version(header), "3", "{header}");
        }
        assert_eq!(if_match_version("invalidEtag"), "invalidEtag");
    }

    #[test]
    fn retrieval_bounds_take_dates_only() {
        assert_eq!(
            retrieval_bound("ge2030-01-01", Bound::From).unwrap(),
            jiff::civil::date(2030, 1, 1)
        );
        for (value, says) in [
            ("ge2030-01-01T00:00:00", "time element"),
            ("ge2030-01-01T00:00:00Z", "time element"),
            ("ge2030-01", "not a full date"),
            ("lt2030-01-01", "`ge` prefix"),
        ] {
            let refused = retrieval_bound(value, Bound::From).unwrap_err();
            assert_eq!(refused.error, errors::INVALID_PARAMETER);
            assert!(refused.to_string().contains(says), "{value}: {refused}");
        }
    }
}
