//! FHIR dates and date-times as the demo provider reads and writes them. Everything it writes
//! is UTC; values without an offset are read as UTC too.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

/// A FHIR `instant` / `dateTime` with seconds, e.g. `2024-03-01T09:15:00Z`.
pub fn format(instant: OffsetDateTime) -> String {
    instant
        .format(&Rfc3339)
        .unwrap_or_else(|_| instant.unix_timestamp().to_string())
}

/// A full date, `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// A date-time to the second or minute, with or without an offset (UTC when absent).
pub fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    PrimitiveDateTime::parse(text, seconds)
        .or_else(|_| PrimitiveDateTime::parse(text, minutes))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
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
    fn prefix(self) -> &'static str {
        match self {
            Bound::From => "ge",
            Bound::To => "le",
        }
    }
}

/// A FHIR date search value with its prefix, e.g. `ge2024-03-01` or `le2024-03-14T23:59:59`.
/// The error says what is wrong, for the consumer.
pub fn parse_bound(name: &str, value: &str, bound: Bound) -> Result<OffsetDateTime, String> {
    let prefix = bound.prefix();
    let Some(rest) = value.strip_prefix(prefix) else {
        return Err(format!(
            "`{name}={value}` must use the `{prefix}` prefix, e.g. `{name}={prefix}2024-03-01`"
        ));
    };
    if let Some(date) = parse_date(rest) {
        return Ok(match bound {
            Bound::From => date.midnight().assume_utc(),
            Bound::To => date.midnight().assume_utc() + Duration::DAY - Duration::SECOND,
        });
    }
    parse_date_time(rest).ok_or_else(|| {
        format!("`{name}={value}`: `{rest}` is not a full date (YYYY-MM-DD) or date-time")
    })
}

/// `HH:MM` on the 24-hour clock.
pub fn parse_time(text: &str) -> Option<Time> {
    Time::parse(text, format_description!("[hour]:[minute]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn bounds_take_dates_and_date_times() {
        assert_eq!(
            parse_bound("start", "ge2024-03-01", Bound::From),
            Ok(datetime!(2024-03-01 0:00 UTC))
        );
        assert_eq!(
            parse_bound("end", "le2024-03-01", Bound::To),
            Ok(datetime!(2024-03-01 23:59:59 UTC))
        );
        assert_eq!(
            parse_bound("start", "ge2024-03-01T10:00:00+01:00", Bound::From),
            Ok(datetime!(2024-03-01 9:00 UTC))
        );
        assert_eq!(
            parse_bound("start", "ge2024-03-01T10:00:00", Bound::From),
            Ok(datetime!(2024-03-01 10:00 UTC))
        );
    }

    #[test]
    fn bad_bounds_say_why() {
        assert!(parse_bound("start", "2024-03-01", Bound::From)
            .unwrap_err()
            .contains("`ge` prefix"));
        assert!(parse_bound("end", "ge2024-03-01", Bound::To)
            .unwrap_err()
            .contains("`le` prefix"));
        assert!(parse_bound("start", "ge2024-03", Bound::From)
            .unwrap_err()
            .contains("not a full date"));
        assert!(parse_bound("start", "ge", Bound::From).is_err());
    }

    #[test]
    fn written_instants_read_back() {
        let t = datetime!(2024-03-01 9:15 UTC);
        assert_eq!(format(t), "2024-03-01T09:15:00Z");
        assert_eq!(parse_date_time(&format(t)), Some(t));
    }
}
