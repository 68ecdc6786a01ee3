//! The wall clock HA compares with the partner's (heartbeat `date-time`),
//! with a **testing-only** offset.
//!
//! The HA clock-skew rules (`terminated` above 60 s, and leaving it again,
//! see [`crate::ha::recovery`]) can only be tried on a real pair if one
//! server's clock is wrong, and a lab host shares the machine's clock,
//! which a test must never step. So when the environment variable
//! [`OFFSET_FILE_ENV`] names a file, the whole seconds written in it
//! (signed; missing or unreadable file: 0) are added to the time this
//! server puts in its heartbeat answers and to the time it compares the
//! partner's answers with: exactly what a server whose clock is that far
//! off does, and nothing else (leases, timers and logs keep the real
//! clock). The file is read at each use, so a test can end the skew
//! without a restart. Nothing sets the variable outside tests; the daemon
//! logs a warning when it is set.

use std::time::{Duration, SystemTime};

/// Names the file holding the test offset (seconds).
pub const OFFSET_FILE_ENV: &str = "XDHCPD_TEST_HA_CLOCK_OFFSET_FILE";

/// The wall clock as HA shows it to, and compares it with, the partner.
pub fn ha_wall_clock() -> SystemTime {
    shifted(SystemTime::now(), test_offset())
}

/// The test offset in force (0 without the variable).
fn test_offset() -> i64 {
    let Some(path) = std::env::var_os(OFFSET_FILE_ENV) else { return 0 };
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(file = ?path, "{OFFSET_FILE_ENV} is set: HA heartbeats use a shifted clock (testing only)");
    });
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn shifted(t: SystemTime, secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { t + d } else { t - d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_shifts_both_ways() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(shifted(t, 90), t + Duration::from_secs(90));
        assert_eq!(shifted(t, -90), t - Duration::from_secs(90));
        assert_eq!(shifted(t, 0), t);
    }
}
