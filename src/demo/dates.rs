//! FHIR dates and date-times as the demo provider reads and writes them. GP Connect wants
//! UK local time with its offset (`2024-07-01T09:15:00+01:00`, `+00:00` in winter), so the
//! practice's sessions are defined in Europe/London, taken from jiff's bundled time-zone
//! database: the answers do not depend on the host's zoneinfo.

use std::sync::LazyLock;

use jiff::civil::{Date, Time};
use jiff::tz::{self, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The practices' time zone.
pub const ZONE: &str = "Europe/London";

/// Europe/London, looked up once. `check_zone` makes a missing zone a start-up error, so the
/// UTC fallback is never used.
static LONDON: LazyLock<TimeZone> = LazyLock::new(|| tz::db().get(ZONE).unwrap_or(TimeZone::UTC));

/// Whether the bundled time-zone database has Europe/London; the fixtures refuse to load
/// without it.
pub fn check_zone() -> Result<(), String> {
    tz::db()
        .get(ZONE)
        .map(|_| ())
        .map_err(|e| format!("time zone {ZONE} is not in the bundled database: {e}"))
}

/// A FHIR `dateTime` / `instant` in UK local time with its offset, e.g.
/// `2024-07-01T09:15:00+01:00`.
pub fn format(instant: Timestamp) -> String {
    instant
        .to_zoned_datetime(LONDON.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The UK calendar date at `instant`.
pub fn uk_date(instant: Timestamp) -> Date {
    instant.to_zoned_datetime(LONDON.clone()).date()
}

/// The UK wall-clock time at `instant`.
pub fn uk_time(instant: Timestamp) -> Time {
    instant.to_zoned_datetime(LONDON.clone()).time()
}

/// The instant of UK local `time` on `date` (in the hour the clocks go back, the first).
pub fn at(date: Date, time: Time) -> Option<Timestamp> {
    date.to_datetime(time)
        .to_zoned_datetime(LONDON.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// Adds whole minutes, or `None` past the representable range.
pub fn plus_minutes(instant: Timestamp, minutes: i64) -> Option<Timestamp> {
    instant.checked_add(SignedDuration::from_mins(minutes)).ok()
}

fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A full date, exactly `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let parts: Vec<&str> = text.split('-').collect();
    let shape = matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 && digits(y) && digits(m) && digits(d));
    shape.then(|| text.parse().ok()).flatten()
}

/// A date-time as GP Connect asks consumers to send it, `yyyy-mm-ddThh:mm:ss+hh:mm`: to the
/// second, with an explicit offset (`Z` and no offset are refused, as the assurance suite
/// expects). The error says what is wrong.
pub fn parse_offset_date_time(text: &str) -> Result<Timestamp, String> {
    let offset = text.get(19..).unwrap_or("");
    let bytes = offset.as_bytes();
    let offset_ok = bytes.len() == 6
        && matches!(bytes[0], b'+' | b'-')
        && digits(&offset[1..3])
        && bytes[3] == b':'
        && digits(&offset[4..6]);
    let date_time = text.get(..19).unwrap_or("");
    let shape = date_time.len() == 19
        && parse_date(&date_time[..10]).is_some()
        && date_time.as_bytes()[10] == b'T'
        && parse_time_of_day(&date_time[11..]).is_some();
    if !shape {
        return Err(format!(
            "`{text}` is not a date (yyyy-mm-dd) or a date-time (yyyy-mm-ddThh:mm:ss+hh:mm)"
        ));
    }
    if !offset_ok {
        return Err(format!(
            "`{text}` has no UTC offset in the form +hh:mm; send UK local time with its offset, e.g. `{date_time}+00:00` (winter) or `{date_time}+01:00` (summer)"
        ));
    }
    text.parse::<Timestamp>()
        .map_err(|e| format!("`{text}` is not a valid date-time: {e}"))
}

/// Any FHIR `instant` / `dateTime` with a time and an offset (`Z` included), as resources in
/// request bodies carry them.
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

fn parse_time_of_day(text: &str) -> Option<Time> {
    let parts: Vec<&str> = text.split(':').collect();
    let shape = parts.len() == 3 && parts.iter().all(|p| p.len() == 2 && digits(p));
    shape.then(|| text.parse().ok()).flatten()
}

/// `HH:MM` on the 24-hour clock.
pub fn parse_time(text: &str) -> Option<Time> {
    let shape = text.len() == 5 && text.as_bytes()[2] == b':';
    shape
        .then(|| parse_time_of_day(&format!("{text}:00")))
        .flatten()
}

/// Which end of a search range a parameter gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `ge`: on or after; a bare date means from its first moment.
    From,
    /// `le`: on or before; a bare date means up to its last moment.
    To,
}

impl Bound {
    /// The search prefix this end takes.
    pub fn prefix(self) -> &'static str {
        match self {
            Bound::From => "ge",
            Bound::To => "le",
        }
    }
}

/// The value after the `ge` / `le` prefix a range parameter must carry.
pub fn strip_prefix<'a>(name: &str, value: &'a str, bound: Bound) -> Result<&'a str, String> {
    let prefix = bound.prefix();
    value.strip_prefix(prefix).ok_or_else(|| {
        format!("`{name}={value}` must use the `{prefix}` prefix, e.g. `{name}={prefix}2024-03-01`")
    })
}

/// A slot search bound, e.g. `ge2024-03-01` or `le2024-03-14T17:00:00+00:00`. A bare date is
/// a UK calendar day.
pub fn parse_bound(name: &str, value: &str, bound: Bound) -> Result<Timestamp, String> {
    let rest = strip_prefix(name, value, bound)?;
    if let Some(date) = parse_date(rest) {
        let day = match bound {
            Bound::From => Some(date),
            Bound::To => date.tomorrow().ok(),
        };
        let midnight = day.and_then(|d| at(d, Time::midnight()));
        return midnight
            .map(|t| match bound {
                Bound::From => t,
                Bound::To => t - SignedDuration::from_secs(1),
            })
            .ok_or_else(|| format!("`{name}={value}`: {rest} is out of range"));
    }
    parse_offset_date_time(rest).map_err(|e| format!("`{name}={value}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn instants_are_written_in_uk_local_time_with_the_offset() {
        assert_eq!(
            format(ts("2024-01-15T09:15:00Z")),
            "2024-01-15T09:15:00+00:00"
        );
        assert_eq!(
            format(ts("2024-07-15T08:15:00Z")),
            "2024-07-15T09:15:00+01:00"
        );
        assert_eq!(
            at(date(2024, 7, 15), time(9, 15, 0, 0)),
            Some(ts("2024-07-15T08:15:00Z"))
        );
        // The clocks go forward on 31 March 2024 at 01:00 UTC.
        assert_eq!(uk_date(ts("2024-03-30T23:30:00Z")), date(2024, 3, 30));
        assert_eq!(uk_time(ts("2024-03-31T01:30:00Z")), time(2, 30, 0, 0));
    }

    #[test]
    fn bounds_take_uk_days_and_offset_date_times() {
        assert_eq!(
            parse_bound("start", "ge2024-07-01", Bound::From),
            Ok(ts("2024-06-30T23:00:00Z"))
        );
        assert_eq!(
            parse_bound("end", "le2024-01-01", Bound::To),
            Ok(ts("2024-01-01T23:59:59Z"))
        );
        assert_eq!(
            parse_bound("start", "ge2024-03-01T10:00:00+01:00", Bound::From),
            Ok(ts("2024-03-01T09:00:00Z"))
        );
    }

    #[test]
    fn date_times_without_an_offset_or_with_z_are_refused_saying_why() {
        for bad in ["ge2024-03-01T10:00:00", "ge2024-03-01T10:00:00Z"] {
            let refused = parse_bound("start", bad, Bound::From).unwrap_err();
            assert!(refused.contains("no UTC offset"), "{refused}");
            assert!(refused.contains("+00:00"), "{refused}");
        }
        assert!(parse_bound("start", "2024-03-01", Bound::From)
            .unwrap_err()
            .contains("`ge` prefix"));
        assert!(parse_bound("end", "ge2024-03-01", Bound::To)
            .unwrap_err()
            .contains("`le` prefix"));
        for partial in [
            "ge2024-03",
            "ge2024",
            "ge",
            "ge2024-3-1",
            "ge2024-03-01T10:00+00:00",
        ] {
            assert!(
                parse_bound("start", partial, Bound::From)
                    .unwrap_err()
                    .contains("is not a date"),
                "{partial}"
            );
        }
    }

    #[test]
    fn dates_and_times_are_strict() {
        assert_eq!(parse_date("2024-02-29"), Some(date(2024, 2, 29)));
        for bad in [
            "2023-02-29",
            "2024-2-29",
            "20240229",
            "2024-02-29T00:00:00",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_time("09:05"), Some(time(9, 5, 0, 0)));
        for bad in ["9:05", "24:00", "09:60", "0905", "09:05:00"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(
            parse_instant("2024-01-01T09:00:00Z"),
            Some(ts("2024-01-01T09:00:00Z"))
        );
        assert_eq!(parse_instant("2024-01-01T09:00:00"), None);
    }

    #[test]
    fn the_zone_is_bundled() {
        check_zone().unwrap();
    }
}
