//! The wall clock in the one unit leases, the kernel map and Kea's lease
//! files share: whole seconds since the Unix epoch.
//!
//! A module of its own (not part of the packet loop) so that every layer,
//! pure or not, can read the time without importing the layer that serves
//! packets.
//!
//! # Clock steps
//!
//! Lease expiry is absolute wall time, so a step of the wall clock (an
//! administrator's `date -s`, NTP fixing a wrong clock at boot) would make
//! every live lease that much older (forward) or younger (back). The
//! daemon's clock, [`unix_now`], does not step: each reading compares the
//! wall clock with `CLOCK_BOOTTIME` (which never steps and counts
//! suspend), and a difference that moved by more than [`STEP_THRESHOLD`]
//! since the last reading is a step ([`Steps`]). It is held back
//! ([`pending_step`]) so that times keep running smoothly, until the
//! daemon has moved every lease by it (in the store, the file and the
//! kernel) and calls [`step_compensated`] in the same critical section.
//! The kernel's clock offset ([`unix_minus_boot_ns`]) follows the same
//! clock.
//!
//! A test-only hook shifts the daemon's wall clock without touching the
//! host's (shared) one: see [`TEST_OFFSET_FILE_ENV`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A change of `wall - boot` larger than this between two readings is a
/// step (NTP slews small errors; the readings themselves jitter by far
/// less).
pub const STEP_THRESHOLD: Duration = Duration::from_secs(2);

/// FOR TESTS ONLY: when set (to a file path) in xdhcpd's environment, the
/// daemon reads that file once a second ([`poll_test_offset`]) and adds
/// the whole seconds it holds (`3600`, `-3600`) to its own wall clock, so
/// a lab test can step the daemon's clock (store, file and kernel offset)
/// without stepping the host's, which other tests share. Unset in
/// production; the daemon warns at every change when it is used.
pub const TEST_OFFSET_FILE_ENV: &str = "XDHCPD_TEST_CLOCK_OFFSET_FILE";

const NS: i128 = 1_000_000_000;

/// The test hook's offset (seconds), 0 unless [`TEST_OFFSET_FILE_ENV`].
static TEST_OFFSET: AtomicI64 = AtomicI64::new(0);

/// The daemon's step tracking.
static STEPS: Steps = Steps::new();

/// Current Unix time in seconds, without any clock step the daemon has
/// not yet compensated (see the module doc); 0 before 1970.
pub fn unix_now() -> u64 {
    let (wall, boot) = wall_and_boot_ns();
    STEPS.now(wall, boot)
}

/// The kernel's clock offset: [`unix_now`]'s time minus `CLOCK_BOOTTIME`,
/// in nanoseconds (the kernel adds its boot clock to it).
pub fn unix_minus_boot_ns() -> i64 {
    let (wall, boot) = wall_and_boot_ns();
    STEPS.observe(wall, boot);
    (wall - boot - i128::from(STEPS.pending()) * NS) as i64
}

/// The step (seconds, positive: forward) the clock holds back until the
/// leases are moved by it; 0 when none.
pub fn pending_step() -> i64 {
    unix_now();
    STEPS.pending()
}

/// The leases were moved by `step` ([`pending_step`]): [`unix_now`] stops
/// holding it back. Call in the critical section that moved them.
pub fn step_compensated(step: i64) {
    STEPS.compensated(step);
}

/// Reads the wall clock (with the test hook's offset) and the boot clock
/// (`CLOCK_BOOTTIME`), in nanoseconds.
pub fn wall_and_boot_ns() -> (i128, i128) {
    let read = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid pointer to a timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        i128::from(ts.tv_sec) * NS + i128::from(ts.tv_nsec)
    };
    let offset = i128::from(TEST_OFFSET.load(Ordering::Relaxed)) * NS;
    (read(libc::CLOCK_REALTIME) + offset, read(libc::CLOCK_BOOTTIME))
}

/// The test hook (see [`TEST_OFFSET_FILE_ENV`]): reads the offset file if
/// the variable is set; returns the new offset when it changed. An
/// unreadable or empty file means 0.
pub fn poll_test_offset() -> Option<i64> {
    let path = std::env::var_os(TEST_OFFSET_FILE_ENV)?;
    let offset = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    (TEST_OFFSET.swap(offset, Ordering::Relaxed) != offset).then_some(offset)
}

/// Step tracking over readings of the wall and boot clocks: pure (the
/// readings are passed in) and lock-free, so every thread reading the time
/// takes part. Each reading swaps in its `wall - boot`; a change beyond
/// the threshold is added to the pending step. Readings racing around a
/// step may count it, undo and count it again; the sum is the step.
#[derive(Debug)]
pub struct Steps {
    /// `wall - boot` at the last reading, in ms (`i64::MIN`: none yet).
    last_ms: AtomicI64,
    /// Detected and not compensated, in seconds.
    pending: AtomicI64,
}

impl Default for Steps {
    fn default() -> Self {
        Steps::new()
    }
}

impl Steps {
    /// No reading yet, nothing pending.
    pub const fn new() -> Steps {
        Steps { last_ms: AtomicI64::new(i64::MIN), pending: AtomicI64::new(0) }
    }

    /// Takes a reading; returns the step it saw (seconds, rounded), if any.
    pub fn observe(&self, wall_ns: i128, boot_ns: i128) -> Option<i64> {
        let diff = ((wall_ns - boot_ns) / 1_000_000) as i64;
        let last = self.last_ms.swap(diff, Ordering::AcqRel);
        let moved = diff.saturating_sub(last);
        if last == i64::MIN || i128::from(moved.abs()) <= STEP_THRESHOLD.as_millis() as i128 {
            return None;
        }
        let step = (moved + moved.signum() * 500) / 1000;
        self.pending.fetch_add(step, Ordering::AcqRel);
        Some(step)
    }

    /// Unix seconds at this reading, without the pending step.
    pub fn now(&self, wall_ns: i128, boot_ns: i128) -> u64 {
        self.observe(wall_ns, boot_ns);
        let secs = (wall_ns.div_euclid(NS) as i64).saturating_sub(self.pending());
        secs.max(0) as u64
    }

    /// The step held back (seconds).
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Acquire)
    }

    /// The leases were moved by `step`.
    pub fn compensated(&self, step: i64) {
        self.pending.fetch_sub(step, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = NS;

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
        let d = Steps::new();
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
        assert_eq!(d.pending(), 0, "an hour forward and an hour back");
    }

    #[test]
    fn a_suspend_is_not_a_step() {
        // The boot clock counts suspend, so both move by the sleep.
        let mut clock = Fake { wall: 1_796_000_000 * S, boot: 5 * S };
        let d = Steps::new();
        let (w, b) = clock.tick(0);
        d.observe(w, b);
        let (w, b) = clock.tick(8 * 3600 * S);
        assert_eq!(d.observe(w, b), None);
    }

    /// A slow slew (NTP) never adds up to a step: each reading compares
    /// with the last one only.
    #[test]
    fn a_slew_is_not_a_step() {
        let mut clock = Fake { wall: 1_796_000_000 * S, boot: 5 * S };
        let d = Steps::new();
        for _ in 0..3600 {
            let (w, b) = clock.tick(S);
            clock.wall += S / 2000; // 500 ppm
            assert_eq!(d.observe(w, b), None);
        }
    }

    /// The daemon's time does not jump with the wall clock: a step is
    /// held back until compensated, then time is the wall clock again.
    #[test]
    fn the_daemons_time_holds_a_step_back_until_compensated() {
        let mut clock = Fake { wall: 1_796_000_000 * S, boot: 5 * S };
        let d = Steps::new();
        let (w, b) = clock.tick(0);
        assert_eq!(d.now(w, b), 1_796_000_000);
        for step in [3600i64, -3600] {
            clock.wall += i128::from(step) * S;
            let (w, b) = clock.tick(S);
            let before = d.now(w, b);
            assert_eq!(i128::from(before), (w - i128::from(step) * S) / S, "held back");
            assert_eq!(d.pending(), step);
            d.compensated(step);
            assert_eq!(i128::from(d.now(w, b)), w / S, "the wall clock again");
        }
    }

    /// Readings racing around a step (one taken before it, swapped in
    /// after one taken after it) count it, undo it and count it again.
    #[test]
    fn a_reading_from_before_the_step_arriving_late_does_not_lose_it() {
        let d = Steps::new();
        let (old, new) = ((1_796_000_000 * S, 5 * S), (1_796_003_600 * S, 5 * S));
        d.observe(old.0, old.1);
        assert_eq!(d.observe(new.0, new.1), Some(3600));
        assert_eq!(d.observe(old.0, old.1), Some(-3600));
        assert_eq!(d.observe(new.0, new.1), Some(3600));
        assert_eq!(d.pending(), 3600);
    }

    #[test]
    fn the_real_clocks_do_not_step_between_two_readings() {
        let d = Steps::new();
        let (w, b) = wall_and_boot_ns();
        d.observe(w, b);
        let (w, b) = wall_and_boot_ns();
        assert_eq!(d.observe(w, b), None);
    }
}
