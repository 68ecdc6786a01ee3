//! Per-CPU counters of what the XDP program did with each frame.
//!
//! One [`Counters`] struct per CPU in a one-slot per-CPU array: the kernel
//! bumps a field of its own CPU's copy without atomics (one map lookup per
//! packet), the daemon sums the copies. With BTF, `bpftool map dump name
//! XDHCP_COUNTERS` prints the fields by name.

/// Name of the per-CPU counter map in the eBPF object.
pub const MAP_NAME: &str = "XDHCP_COUNTERS";

/// What happened to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not IPv4/UDP to port 67: none of our business, passed on.
    NotDhcp,
    /// A DHCP/BOOTP request passed to the daemon.
    PassedToDaemon,
    /// Looked like DHCP but was cut short or inconsistent; passed so the
    /// daemon counts and drops it with a precise reason.
    Malformed,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 3] = [Outcome::NotDhcp, Outcome::PassedToDaemon, Outcome::Malformed];

    /// Stable label used in logs, the status page and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::NotDhcp => "not_dhcp",
            Outcome::PassedToDaemon => "passed_to_daemon",
            Outcome::Malformed => "malformed",
        }
    }
}

/// One CPU's counts. Fields are `u64` only, so the layout has no padding;
/// add fields at the end (the daemon and kernel are built together, but a
/// stable order keeps `bpftool` dumps comparable across versions).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that were not DHCP requests.
    pub not_dhcp: u64,
    /// DHCP requests passed to the daemon.
    pub passed_to_daemon: u64,
    /// Malformed DHCP frames (passed, counted by the daemon per reason).
    pub malformed: u64,
}

const _: () = assert!(core::mem::size_of::<Counters>() == 24);

impl Counters {
    /// The counter of `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::NotDhcp => self.not_dhcp,
            Outcome::PassedToDaemon => self.passed_to_daemon,
            Outcome::Malformed => self.malformed,
        }
    }

    /// Adds one to the counter of `outcome`.
    #[inline(always)]
    pub fn bump(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::NotDhcp => self.not_dhcp += 1,
            Outcome::PassedToDaemon => self.passed_to_daemon += 1,
            Outcome::Malformed => self.malformed += 1,
        }
    }

    /// Field-wise sum (of the per-CPU copies).
    pub fn add(&self, other: &Counters) -> Counters {
        Counters {
            not_dhcp: self.not_dhcp + other.not_dhcp,
            passed_to_daemon: self.passed_to_daemon + other.passed_to_daemon,
            malformed: self.malformed + other.malformed,
        }
    }
}

// SAFETY: repr(C), only u64 fields, no padding (size asserted above): every
// byte pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Counters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_get_and_sum_agree() {
        let mut a = Counters::default();
        a.bump(Outcome::PassedToDaemon);
        a.bump(Outcome::PassedToDaemon);
        a.bump(Outcome::Malformed);
        let b = Counters { not_dhcp: 5, ..Counters::default() };
        let s = a.add(&b);
        assert_eq!(Outcome::ALL.map(|o| s.get(o)), [5, 2, 1]);
    }
}
