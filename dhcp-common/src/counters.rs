//! Per-CPU counters of what the XDP program did with each frame.
//!
//! A per-CPU array indexed by [`Outcome`]: the kernel bumps its own CPU's
//! slot without atomics, the daemon sums the slots when it reports.

/// Name of the per-CPU counter map in the eBPF object.
pub const MAP_NAME: &str = "XDHCP_COUNTERS";

/// What happened to one frame. The discriminant is the map index, so the
/// order is part of the kernel/user contract: append, never reorder.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not IPv4/UDP to port 67: none of our business, passed on.
    NotDhcp = 0,
    /// A DHCP/BOOTP request passed to the daemon.
    PassedToDaemon = 1,
    /// Looked like DHCP but was cut short or inconsistent; passed so the
    /// daemon counts and drops it with a precise reason.
    Malformed = 2,
}

impl Outcome {
    /// Every outcome, in map-index order.
    pub const ALL: [Outcome; COUNT] = [Outcome::NotDhcp, Outcome::PassedToDaemon, Outcome::Malformed];

    /// Stable label used in logs, the status page and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::NotDhcp => "not_dhcp",
            Outcome::PassedToDaemon => "passed_to_daemon",
            Outcome::Malformed => "malformed",
        }
    }
}

/// Number of slots in the counter map.
pub const COUNT: usize = 3;
