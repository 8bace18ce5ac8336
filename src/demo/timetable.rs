//! A schedule's rolling timetable: weekly sessions cut into equal slots, on every date, so
//! the demo always has future slots to offer however long it runs. A slot's id names its
//! schedule, date and time (`1-20240301-0915`), so slots need no storage until booked.

use jiff::civil::{Date, Time, Weekday};
use jiff::Timestamp;
use serde::Deserialize;

use crate::demo::dates;

/// One session as written in `demo/practice.json`, in UK local time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    days: Vec<String>,
    start: String,
    end: String,
}

#[derive(Debug, Clone)]
struct Session {
    days: Vec<Weekday>,
    start: Time,
    end: Time,
}

/// When a schedule has slots.
#[derive(Debug, Clone)]
pub struct Timetable {
    slot_minutes: i64,
    sessions: Vec<Session>,
}

/// One slot's time, and the session it belongs to (a Schedule's planning horizon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTime {
    pub start: Timestamp,
    pub end: Timestamp,
    pub session_start: Timestamp,
    pub session_end: Timestamp,
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "Mon" => Weekday::Monday,
        "Tue" => Weekday::Tuesday,
        "Wed" => Weekday::Wednesday,
        "Thu" => Weekday::Thursday,
        "Fri" => Weekday::Friday,
        "Sat" => Weekday::Saturday,
        "Sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl Timetable {
    /// Validates slot length and sessions; the error says what to fix.
    pub fn new(slot_minutes: u16, raw: &[RawSession]) -> Result<Self, String> {
        if slot_minutes == 0 || slot_minutes > 24 * 60 {
            return Err(format!("slot_minutes {slot_minutes} must be 1 to 1440"));
        }
        let mut sessions = Vec::with_capacity(raw.len());
        for s in raw {
            let days = s
                .days
                .iter()
                .map(|d| {
                    weekday(d).ok_or_else(|| {
                        format!("day `{d}` is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let start = dates::parse_time(&s.start)
                .ok_or_else(|| format!("start `{}` is not HH:MM", s.start))?;
            let end =
                dates::parse_time(&s.end).ok_or_else(|| format!("end `{}` is not HH:MM", s.end))?;
            if end <= start {
                return Err(format!(
                    "session {}-{} ends before it starts",
                    s.start, s.end
                ));
            }
            sessions.push(Session { days, start, end });
        }
        Ok(Self {
            slot_minutes: i64::from(slot_minutes),
            sessions,
        })
    }

    /// Every slot on UK date `date`, in time order of each session.
    pub fn slots_on(&self, date: Date) -> Vec<SlotTime> {
        let mut found = Vec::new();
        for session in self
            .sessions
            .iter()
            .filter(|s| s.days.contains(&date.weekday()))
        {
            let (Some(open), Some(close)) =
                (dates::at(date, session.start), dates::at(date, session.end))
            else {
                continue;
            };
            let mut start = open;
            while let Some(end) = dates::plus_minutes(start, self.slot_minutes) {
                if end > close {
                    break;
                }
                found.push(SlotTime {
                    start,
                    end,
                    session_start: open,
                    session_end: close,
                });
                start = end;
            }
        }
        found
    }

    /// The slot starting exactly at `start`, if the timetable has one.
    pub fn slot_at(&self, start: Timestamp) -> Option<SlotTime> {
        self.slots_on(dates::uk_date(start))
            .into_iter()
            .find(|s| s.start == start)
    }
}

/// A slot's id: `{schedule}-{YYYYMMDD}-{HHMM}`, the UK local date and time it starts.
pub fn slot_id(schedule: &str, start: Timestamp) -> String {
    let (day, time) = (dates::uk_date(start), dates::uk_time(start));
    format!(
        "{schedule}-{:04}{:02}{:02}-{:02}{:02}",
        day.year(),
        day.month(),
        day.day(),
        time.hour(),
        time.minute()
    )
}

/// The schedule id and start time a slot id names, if it is one.
pub fn parse_slot_id(id: &str) -> Option<(&str, Timestamp)> {
    let mut parts = id.rsplitn(3, '-');
    let (time, date, schedule) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if schedule.is_empty() || !digits(date, 8) || !digits(time, 4) {
        return None;
    }
    let day = dates::parse_date(&format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]))?;
    let at = dates::parse_time(&format!("{}:{}", &time[..2], &time[2..]))?;
    Some((schedule, dates::at(day, at)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn weekday_mornings() -> Timetable {
        let raw: Vec<RawSession> =
            serde_json::from_str(r#"[{"days": ["Mon", "Fri"], "start": "09:00", "end": "10:00"}]"#)
                .unwrap();
        Timetable::new(20, &raw).unwrap()
    }

    #[test]
    fn sessions_are_cut_into_slots_on_their_days_only() {
        let t = weekday_mornings();
        let friday = t.slots_on(date(2024, 3, 1));
        assert_eq!(friday.len(), 3);
        assert_eq!(
            friday[2],
            SlotTime {
                start: ts("2024-03-01T09:40:00Z"),
                end: ts("2024-03-01T10:00:00Z"),
                session_start: ts("2024-03-01T09:00:00Z"),
                session_end: ts("2024-03-01T10:00:00Z"),
            }
        );
        assert!(t.slots_on(date(2024, 3, 2)).is_empty());
        assert!(t.slot_at(ts("2024-03-01T09:20:00Z")).is_some());
        assert!(t.slot_at(ts("2024-03-01T09:30:00Z")).is_none());
    }

    #[test]
    fn sessions_keep_uk_wall_clock_time_across_the_clock_change() {
        let t = weekday_mornings();
        // Friday 5 July 2024 is in British Summer Time: 09:00 there is 08:00 UTC.
        let summer = t.slots_on(date(2024, 7, 5));
        assert_eq!(summer[0].start, ts("2024-07-05T08:00:00Z"));
        assert_eq!(slot_id("1", summer[0].start), "1-20240705-0900");
        assert_eq!(
            parse_slot_id("1-20240705-0900"),
            Some(("1", ts("2024-07-05T08:00:00Z")))
        );
    }

    #[test]
    fn slot_ids_round_trip_and_odd_ids_are_refused() {
        let start = ts("2024-03-01T09:40:00Z");
        let id = slot_id("sched-1", start);
        assert_eq!(id, "sched-1-20240301-0940");
        assert_eq!(parse_slot_id(&id), Some(("sched-1", start)));
        for odd in [
            "",
            "1",
            "1-2024-0940",
            "-20240301-0940",
            "1-20241301-0940",
            "1-20240301-2460",
            "1-2024030a-0940",
        ] {
            assert_eq!(parse_slot_id(odd), None, "{odd}");
        }
    }

    #[test]
    fn bad_timetables_say_why() {
        let raw: Vec<RawSession> =
            serde_json::from_str(r#"[{"days": ["Monday"], "start": "09:00", "end": "10:00"}]"#)
                .unwrap();
        assert!(Timetable::new(15, &raw).unwrap_err().contains("`Monday`"));
        let raw: Vec<RawSession> =
            serde_json::from_str(r#"[{"days": ["Mon"], "start": "10:00", "end": "09:00"}]"#)
                .unwrap();
        assert!(Timetable::new(15, &raw)
            .unwrap_err()
            .contains("ends before"));
        assert!(Timetable::new(0, &[]).is_err());
    }
}
