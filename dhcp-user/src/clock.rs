//! The wall clock in the one unit leases, the kernel map and Kea's lease
//! files share: whole seconds since the Unix epoch.
//!
//! A module of its own (not part of the packet loop) so that every layer,
//! pure or not, can read the time without importing the layer that serves
//! packets. [`StepDetector`] notices when that clock is stepped.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in seconds (0 if the clock is before 1970, which no
/// lease can be compared with anyway).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Reads the wall clock and the boot clock (`CLOCK_BOOTTIME`, which never
/// steps and counts suspend), in nanoseconds, for [`StepDetector`].
pub fn wall_and_boot_ns() -> (i128, i128) {
    let read = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid pointer to a timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    };
    (read(libc::CLOCK_REALTIME), read(libc::CLOCK_BOOTTIME))
}

/// Notices when the wall clock is stepped (an administrator's `date -s`,
/// NTP fixing a wrong clock at boot): between two readings the wall clock
/// moved by more or less than the boot clock.
///
/// Lease expiry is absolute wall time — in the lease file, the kernel's map
/// (which follows the wall clock within a second) and Kea's format — so a
/// step forward makes every live lease look that much older and a step back
/// that much younger. Detecting it is what lets the daemon say so, loudly.
#[derive(Debug)]
pub struct StepDetector {
    last: Option<(i128, i128)>,
    threshold_ns: i128,
}

impl StepDetector {
    /// Reports steps larger than `threshold` (NTP slews small errors; a
    /// second or more is a step).
    pub fn new(threshold: std::time::Duration) -> Self {
        StepDetector { last: None, threshold_ns: threshold.as_nanos() as i128 }
    }

    /// Takes a reading (`wall_ns`, `boot_ns`, as [`wall_and_boot_ns`]
    /// returns) and returns the step since the last one, in seconds rounded
    /// (positive: forward), if it exceeds the threshold.
    pub fn observe(&mut self, wall_ns: i128, boot_ns: i128) -> Option<i64> {
        let last = self.last.replace((wall_ns, boot_ns));
        let (w0, b0) = last?;
        let step = (wall_ns - w0) - (boot_ns - b0);
        // Rounded to the nearest second, so jitter of the readings does not show.
        (step.abs() > self.threshold_ns).then(|| ((step + step.signum() * 500_000_000) / 1_000_000_000) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: i128 = 1_000_000_000;

    /// A fake pair of clocks: both advance together, and the wall one can
    /// be stepped.
    struct Fake {
        wall: i128,
        boot: i128,
    }

    impl Fake {
        fn tick(&mut self, ns: i128) -> (i128, i128) {
            self.wall += ns;
            self.boot += ns;
            (self.wall, self.boot)
        }
    }

    #[test]
    fn steps_forward_and_back_are_reported_ticks_and_jitter_are_not() {
        let mut clock = Fake { wall: 1_796_000_000 * S, boot: 5 * S };
        let mut d = StepDetector::new(Duration::from_secs(1));
        let (w, b) = clock.tick(0);
        assert_eq!(d.observe(w, b), None, "the first reading has nothing to compare with");
        for _ in 0..10 {
            let (w, b) = clock.tick(S);
            assert_eq!(d.observe(w + S / 5, b), None, "200 ms of jitter is not a step");
        }
        clock.wall += 3600 * S;
        let (w, b) = clock.tick(S);
        assert_eq!(d.observe(w, b), Some(3600));
        let (w, b) = clock.tick(S);
        assert_eq!(d.observe(w, b), None, "reported once");
        clock.wall -= 3600 * S;
        let (w, b) = clock.tick(S);
        assert_eq!(d.observe(w, b), Some(-3600));
    }

    #[test]
    fn a_suspend_is_not_a_step() {
        // The boot clock counts suspend, so both move by the sleep.
        let mut clock = Fake { wall: 1_796_000_000 * S, boot: 5 * S };
        let mut d = StepDetector::new(Duration::from_secs(1));
        let (w, b) = clock.tick(0);
        d.observe(w, b);
        let (w, b) = clock.tick(8 * 3600 * S);
        assert_eq!(d.observe(w, b), None);
    }

    #[test]
    fn the_real_clocks_do_not_step_between_two_readings() {
        let mut d = StepDetector::new(Duration::from_secs(1));
        let (w, b) = wall_and_boot_ns();
        d.observe(w, b);
        let (w, b) = wall_and_boot_ns();
        assert_eq!(d.observe(w, b), None);
    }
}
