//! Timestamps in the forms Kea prints, without a date crate: statistics
//! carry `2026-11-24 21:07:31.991385`, `ha-heartbeat` an HTTP date.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid for the whole `i64` day range we can meet).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Kea's statistic timestamp format, in UTC.
pub fn kea_stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, day) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_micros()
    )
}

/// The current time as [`kea_stamp`] prints it.
pub fn now_stamp() -> String {
    kea_stamp(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(kea_stamp(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
        // 2026-11-24 21:07:31 UTC, as seen in a Kea 2.2 statistic.
        let t = UNIX_EPOCH + Duration::from_micros(1_795_554_451_991_385);
        assert_eq!(kea_stamp(t), "2026-11-24 21:07:31.991385");
        assert_eq!(
            kea_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00.000000"
        );
    }
}
