//! Timestamps in the forms Kea prints: statistics carry
//! `2026-11-24 21:07:31.991385` (UTC), `ha-heartbeat` an RFC 1123 HTTP
//! date. Calendar arithmetic comes from `time` and `httpdate`; only Kea's
//! layouts are ours.

use std::time::SystemTime;

/// Kea's statistic timestamp format, in UTC.
pub fn kea_stamp(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.microsecond()
    )
}

/// The current time as [`kea_stamp`] prints it.
pub fn now_stamp() -> String {
    kea_stamp(SystemTime::now())
}

/// `Mon, 23 Nov 2026 07:18:12 GMT` (RFC 1123, as Kea's heartbeat sends).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses [`http_date`]'s format strictly, as Kea does (`%a, %d %b %Y
/// %H:%M:%S GMT`): `httpdate` alone would also take the obsolete RFC 850
/// and asctime forms, which Kea counts as a failed heartbeat.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let imf = text.len() == 29 && text.as_bytes().get(3) == Some(&b',') && text.ends_with(" GMT");
    imf.then(|| httpdate::parse_http_date(text).ok()).flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date; `None` when there
/// is no such day.
pub fn days_from_civil(year: i32, month: u8, day: u8) -> Option<i64> {
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(i64::from(date.to_julian_day() - time::OffsetDateTime::UNIX_EPOCH.date().to_julian_day()))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(kea_stamp(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
        // 2026-11-24 21:07:31 UTC, as seen in a Kea 2.2 statistic.
        let t = UNIX_EPOCH + Duration::from_micros(1_795_554_451_991_385);
        assert_eq!(kea_stamp(t), "2026-11-24 21:07:31.991385");
        assert_eq!(kea_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29 00:00:00.000000");
    }

    #[test]
    fn http_dates_round_trip_and_match_kea() {
        // From the Kea 2.2 capture.
        let t = parse_http_date("Mon, 23 Nov 2026 07:18:12 GMT").unwrap();
        assert_eq!(http_date(t), "Mon, 23 Nov 2026 07:18:12 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        for bad in [
            "Mon, 23 Nov 2026 07:18:12",
            "Mon 23 Nov 2026 07:18:12 GMT",
            "Xyz, 23 Nov 2026 07:18:12 GMT",
            "Mon, 3 Nov 2026 07:18:12 GMT",
            "Mon, 23 Now 2026 07:18:12 GMT",
            "Mon, 23 Nov 2026 25:18:12 GMT",
            "Monday, 23-Nov-26 07:18:12 GMT",
            "Mon Nov 23 07:18:12 2026",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(2026, 2, 30), None);
        assert_eq!(days_from_civil(2026, 13, 1), None);
    }
}
