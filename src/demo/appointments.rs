//! Appointment Management: search for free slots, book, read, amend, cancel and retrieve a
//! patient's appointments (GP Connect 1.2.7 use-case pages under pages/appointments/).
//!
//! Visits (#826): slots and appointments whose delivery channel is `Visit` are read and
//! retrieved like any other, never offered by slot search, and book, amend and cancel refuse
//! them with `INVALID_RESOURCE`.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use time::{Duration, OffsetDateTime};

use crate::config::rejection::Rejection;
use crate::demo::dates::{self, Bound};
use crate::demo::errors::{self, reject};
use crate::demo::fixtures::{DeliveryChannel, Schedule};
use crate::demo::request::Input;
use crate::demo::respond::{searchset, Reply};
use crate::demo::state::{Booking, Practice};
use crate::demo::timetable::{self, SlotTime};
use crate::demo::{fhir, foundations, profiles, Site};

/// The widest date range a slot search may ask for.
const MAX_SLOT_RANGE: Duration = Duration::days(14);

fn visit_refused(what: &str) -> Rejection {
    errors::invalid_resource(format!(
        "{what}: appointments with delivery channel Visit can be read and retrieved but not booked, amended or cancelled through GP Connect (1.2.7, #826)"
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
    if practice
        .visible_patients(site.fixtures)
        .any(|p| p.id == patient)
    {
        return Ok(());
    }
    Err(foundations::patient_not_found(
        site,
        &format!("logical id `{patient}`"),
    ))
}

/// The Slot resource of a free timetable slot.
fn slot_resource(schedule: &Schedule, id: &str, time: SlotTime) -> Value {
    json!({
        "resourceType": "Slot",
        "id": id,
        "meta": { "versionId": "1", "profile": [profiles::SLOT] },
        "extension": [{ "url": profiles::DELIVERY_CHANNEL, "valueCode": schedule.channel.code() }],
        "schedule": fhir::reference("Schedule", &schedule.id),
        "status": "free",
        "start": dates::format(time.start),
        "end": dates::format(time.end),
    })
}

/// Search for free slots: `GET /Slot?start=ge..&end=le..&status=free&_include=Slot:schedule`,
/// optionally with `_include:recurse` for the schedules' practitioners and locations and the
/// locations' organisation. `searchFilter` is accepted and ignored: every slot is open to all.
pub fn search_slots(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let query = &input.query;
    let from = dates::parse_bound("start", query.required("start")?, Bound::From)
        .map_err(errors::invalid_parameter)?;
    let to = dates::parse_bound("end", query.required("end")?, Bound::To)
        .map_err(errors::invalid_parameter)?;
    let status = query.required("status")?;
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
    if to - from > MAX_SLOT_RANGE {
        return Err(errors::invalid_parameter(
            "The range from start to end is longer than two weeks, the most a search may cover",
        ));
    }
    let busy: BTreeSet<String> =
        site.practice(|p| p.busy_slots().into_iter().map(str::to_owned).collect());

    let mut slots = Vec::new();
    let mut used: Vec<&Schedule> = Vec::new();
    for schedule in site
        .fixtures
        .schedules
        .iter()
        .filter(|s| s.channel != DeliveryChannel::Visit)
    {
        let mut day = from.date();
        while day <= to.date() {
            for time in schedule.timetable.slots_on(day) {
                let id = timetable::slot_id(&schedule.id, time.start);
                if time.start >= from && time.end <= to && !busy.contains(&id) {
                    slots.push(slot_resource(schedule, &id, time));
                    if !used.iter().any(|s| s.id == schedule.id) {
                        used.push(schedule);
                    }
                }
            }
            let Some(next) = day.next_day() else { break };
            day = next;
        }
    }

    let recurse: Vec<&str> = query.all("_include:recurse").collect();
    let mut resources = slots;
    resources.extend(used.iter().map(|s| s.resource.clone()));
    if recurse.contains(&"Schedule:actor:Practitioner") {
        let ids: BTreeSet<&str> = used.iter().flat_map(|s| s.actors("Practitioner")).collect();
        resources.extend(
            ids.into_iter()
                .filter_map(|id| site.fixtures.practitioner(id))
                .cloned(),
        );
    }
    if recurse.contains(&"Schedule:actor:Location") {
        let ids: BTreeSet<&str> = used.iter().flat_map(|s| s.actors("Location")).collect();
        resources.extend(
            ids.iter()
                .filter_map(|id| site.fixtures.location(id))
                .cloned(),
        );
        if recurse.contains(&"Location:managingOrganization") && !ids.is_empty() {
            resources.push(site.organisation());
        }
    }
    Ok(Reply::ok(searchset(site.base, resources)))
}

/// An Appointment resource profiled as GP Connect requires, or why not.
fn appointment_body(input: &Input) -> Result<Value, Rejection> {
    let appointment = input.json(errors::BAD_REQUEST)?;
    if fhir::resource_type(&appointment) != "Appointment" {
        return Err(errors::invalid_resource(
            "The body must be an Appointment resource",
        ));
    }
    if !fhir::has_profile(&appointment, profiles::APPOINTMENT) {
        return Err(errors::invalid_resource(format!(
            "The Appointment's meta.profile must list {}",
            profiles::APPOINTMENT
        )));
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
            "The bookingOrganisation extension ({}) must reference a contained Organization with a name and telecom",
            profiles::BOOKING_ORGANISATION
        ))),
    }
}

/// What an Appointment's `slot` asks for: adjacent timetable slots of one schedule.
struct Requested<'a> {
    schedule: &'a Schedule,
    /// Slot ids, in time order.
    ids: Vec<String>,
    /// From the start of the first slot to the end of the last.
    time: SlotTime,
}

/// The slots an Appointment asks for, checked to exist, to be bookable and to be adjacent.
fn requested_slots<'a>(site: &Site<'a>, appointment: &Value) -> Result<Requested<'a>, Rejection> {
    let refs = appointment["slot"].as_array().into_iter().flatten();
    let mut found: Vec<(&Schedule, String, SlotTime)> = Vec::new();
    for r in refs {
        let id = fhir::reference_id(r, "Slot").unwrap_or_default();
        let slot = timetable::parse_slot_id(id).and_then(|(schedule, start)| {
            let schedule = site.fixtures.schedule(schedule)?;
            Some((schedule, schedule.timetable.slot_at(start)?))
        });
        let Some((schedule, time)) = slot else {
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
            "The slots of one appointment must be adjacent slots of one schedule",
        ));
    }
    Ok(Requested {
        schedule,
        time: SlotTime {
            start: first.start,
            end: last.end,
        },
        ids: found.iter().map(|(_, id, _)| id.clone()).collect(),
    })
}

/// Book an appointment: `POST /Appointment`.
pub fn book(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let mut appointment = appointment_body(input)?;
    if appointment["status"].as_str() != Some("booked") {
        return Err(errors::invalid_resource(
            "A new appointment's status must be `booked`",
        ));
    }
    if appointment.get("reason").is_some() {
        return Err(errors::invalid_resource(
            "Appointment.reason must not be sent: appointments carry no clinical information",
        ));
    }
    if fhir::declared_channel(&appointment) == Some(DeliveryChannel::Visit.code()) {
        return Err(visit_refused("The Appointment's delivery channel is Visit"));
    }
    check_booking_organisation(&appointment)?;
    if !appointment["created"].is_string() {
        return Err(errors::invalid_resource(
            "The Appointment's `created` must hold when it was created",
        ));
    }
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
    let span = requested.time;
    let start = appointment["start"]
        .as_str()
        .and_then(dates::parse_date_time);
    let end = appointment["end"].as_str().and_then(dates::parse_date_time);
    if start != Some(span.start) || end != Some(span.end) {
        return Err(errors::invalid_resource(format!(
            "The Appointment's start and end must be those of its slots: {} to {}",
            dates::format(span.start),
            dates::format(span.end)
        )));
    }
    if span.start <= site.now {
        return Err(errors::invalid_resource(
            "Only future appointments can be booked; this one starts in the past",
        ));
    }

    let now = dates::format(site.now);
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
            start: span.start,
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
        .filter(|n| !ignored.contains(&n.as_str()) && a.get(*n) != b.get(*n))
        .cloned()
        .collect()
}

/// Amend or cancel an appointment: `PUT /Appointment/{id}`; the interaction ID says which.
pub fn update(site: &Site, input: &Input, change: Change) -> Result<Reply, Rejection> {
    let id = input.segment(1);
    let sent = appointment_body(input)?;
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
        apply(booking, &sent, change, now)?;
        Ok(Reply::ok(booking.resource.clone()))
    })
}

/// Checks `sent` against the booked appointment and applies the change.
fn apply(
    booking: &mut Booking,
    sent: &Value,
    change: Change,
    now: OffsetDateTime,
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
            let changed = changed_fields(stored, sent, &["meta", "description", "comment"]);
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
            let reason = fhir::extension(sent, profiles::CANCELLATION_REASON)
                .filter(|e| e["valueString"].as_str().is_some_and(|r| !r.is_empty()))
                .cloned()
                .ok_or_else(|| {
                    errors::invalid_resource(format!(
                        "A cancellation needs the cancellation reason extension ({})",
                        profiles::CANCELLATION_REASON
                    ))
                })?;
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
            let mut changed = changed_fields(stored, sent, &["meta", "status", "extension"]);
            if others != stored_extensions {
                changed.push("extension".into());
            }
            if !changed.is_empty() {
                return Err(errors::invalid_resource(format!("A cancellation may change only status and the cancellation reason; these differ from the booked appointment: {}", changed.join(", "))));
            }
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

/// Retrieve a patient's appointments: `GET /Patient/{id}/Appointment?start=ge..&start=le..`,
/// every appointment starting in the range, visits and cancelled ones included.
pub fn patient_appointments(site: &Site, input: &Input) -> Result<Reply, Rejection> {
    let patient = input.segment(1);
    let starts: Vec<&str> = input.query.all("start").collect();
    let pick = |prefix: &str| starts.iter().copied().find(|s| s.starts_with(prefix));
    let (Some(ge), Some(le), 2) = (pick("ge"), pick("le"), starts.len()) else {
        return Err(errors::invalid_parameter(
            "Give the range as two start parameters: start=ge{date}&start=le{date}",
        ));
    };
    let from = dates::parse_bound("start", ge, Bound::From).map_err(errors::invalid_parameter)?;
    let to = dates::parse_bound("start", le, Bound::To).map_err(errors::invalid_parameter)?;
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
            .filter(|b| b.patient == patient && b.start >= from && b.start <= to)
            .collect();
        found.sort_by_key(|b| b.start);
        let resources = found.into_iter().map(|b| b.resource.clone()).collect();
        Ok(Reply::ok(searchset(site.base, resources)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn booking(channel: DeliveryChannel) -> Booking {
        Booking {
            id: "9".into(),
            version: 1,
            patient: "2".into(),
            slots: vec!["1-20300101-0900".into()],
            start: datetime!(2030-01-01 9:00 UTC),
            channel,
            cancelled: false,
            resource: json!({
                "resourceType": "Appointment", "id": "9", "meta": {"versionId": "1"},
                "status": "booked", "description": "Check-up",
                "extension": [{"url": profiles::DELIVERY_CHANNEL, "valueCode": channel.code()}]
            }),
        }
    }

    const NOW: OffsetDateTime = datetime!(2029-12-01 9:00 UTC);

    #[test]
    fn amend_changes_description_and_comment_only() {
        let mut b = booking(DeliveryChannel::InPerson);
        let mut sent = b.resource.clone();
        sent["comment"] = json!("Wheelchair access needed");
        apply(&mut b, &sent, Change::Amend, NOW).unwrap();
        assert_eq!(b.resource["comment"], "Wheelchair access needed");
        assert_eq!(b.resource["meta"]["versionId"], "2");
        sent["start"] = json!("2030-01-02T09:00:00Z");
        let refused = apply(&mut b, &sent, Change::Amend, NOW).unwrap_err();
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
        assert!(apply(&mut b, &sent, Change::Cancel, NOW)
            .unwrap_err()
            .to_string()
            .contains("cancellation reason"));
        sent["extension"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": profiles::CANCELLATION_REASON, "valueString": "Feeling better"}));
        apply(&mut b, &sent, Change::Cancel, NOW).unwrap();
        assert!(b.cancelled);
        assert_eq!(b.resource["status"], "cancelled");
        assert!(apply(&mut b, &sent, Change::Cancel, NOW)
            .unwrap_err()
            .to_string()
            .contains("is cancelled"));
    }

    #[test]
    fn visits_and_past_appointments_are_refused() {
        let mut visit = booking(DeliveryChannel::Visit);
        let sent = visit.resource.clone();
        let refused = apply(&mut visit, &sent, Change::Amend, NOW).unwrap_err();
        assert_eq!(refused.error, errors::INVALID_RESOURCE);
        assert!(refused.to_string().contains("#826"), "{refused}");
        let mut past = booking(DeliveryChannel::InPerson);
        let sent = past.resource.clone();
        assert!(apply(
            &mut past,
            &sent,
            Change::Amend,
            datetime!(2031-01-01 0:00 UTC)
        )
        .unwrap_err()
        .to_string()
        .contains("past"));
    }
}
