//! The reuse grace rule: how a server that takes over its partner's
//! clients avoids handing out an address the partner renewed without
//! telling it.
//!
//! # Why
//!
//! Kea holds every ACK until the partner acknowledged the lease update.
//! xdhcp's kernel fast path cannot: it answers renewals with XDP_TX and the
//! daemon replicates them afterwards from the ring buffer. If the server
//! dies with renewals still unsent, the survivor's copy of those leases
//! ends earlier than what the clients were told. Were the survivor to reuse
//! such an address once its own copy expired, two clients would hold it.
//!
//! # The rule (like ISC dhcpd's MCLT)
//!
//! A kernel renewal at time `t` extends a lease to at most
//! `t + max-valid-lifetime`, and can only happen while the partner is
//! alive, so before the survivor enters `partner-down` at `t_pd`. Unsent
//! renewals only concern leases that were live at the partner shortly
//! before `t_pd`; their replication lag is bounded by the failure
//! detection (a failed update makes the partner unavailable, and
//! `max-response-delay` later partner-down is declared), which is far
//! below a lease lifetime.
//!
//! So on entering `partner-down` the survivor holds, until
//! `t_pd + max-valid-lifetime`, every address whose known lease was live
//! within one `max-valid-lifetime` before `t_pd`
//! (`expire + max_valid >= t_pd`): the holder can still get it back (the
//! lease stays its own), nobody else can. Declined leases keep their own
//! probation. Addresses that expired longer ago, and every address after
//! the grace period, are reused normally. The rule costs pool headroom
//! for one lifetime after a failover, never a duplicate.

use crate::dhcp::engine::{Held, HeldState};

/// An active grace period (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseGrace {
    /// When this server entered partner-down (unix seconds).
    pub since: u64,
    /// The longest lifetime a renewal may have given (seconds).
    pub max_valid: u64,
}

impl ReuseGrace {
    /// A grace period starting at `since` for leases of at most
    /// `max_valid` seconds.
    pub fn new(since: u64, max_valid: u32) -> Self {
        ReuseGrace { since, max_valid: u64::from(max_valid) }
    }

    /// Unix time the grace period ends.
    pub fn until(&self) -> u64 {
        self.since.saturating_add(self.max_valid)
    }

    /// Whether the period still runs at `now`.
    pub fn active(&self, now: u64) -> bool {
        now < self.until()
    }

    /// The engine's view of a stored lease under the rule: a lease the
    /// partner may have renewed unseen is shown as its holder's, live
    /// until the grace period ends.
    pub fn apply(&self, now: u64, mut held: Held) -> Held {
        if !self.active(now) || held.state == HeldState::Declined {
            return held;
        }
        if held.expire.saturating_add(self.max_valid) < self.since {
            return held; // expired long before: the partner could not renew it
        }
        held.state = HeldState::Active;
        held.expire = held.expire.max(self.until());
        held
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn held(expire: u64, state: HeldState) -> Held {
        Held {
            address: Ipv4Addr::new(192, 168, 50, 100),
            subnet_id: 1,
            hwaddr: vec![2, 0, 0, 0, 0, 1],
            client_id: None,
            expire,
            valid_lifetime: 3600,
            hostname: String::new(),
            state,
        }
    }

    #[test]
    fn recently_live_leases_are_held_until_the_end_of_the_grace() {
        let g = ReuseGrace::new(10_000, 3600);
        // Expired in our copy at 9_000 (maybe renewed by the dead partner).
        let h = g.apply(10_100, held(9_000, HeldState::Active));
        assert_eq!((h.state, h.expire), (HeldState::Active, 13_600));
        // Reclaimed already: held again, still its holder's.
        let h = g.apply(10_100, held(9_000, HeldState::Reclaimed));
        assert_eq!((h.state, h.expire, h.hwaddr.clone()), (HeldState::Active, 13_600, vec![2, 0, 0, 0, 0, 1]));
        // A lease live past the grace end keeps its own expiry.
        assert_eq!(g.apply(10_100, held(20_000, HeldState::Active)).expire, 20_000);
        // Boundary: expire + max_valid == since is still held.
        assert_eq!(g.apply(10_100, held(6_400, HeldState::Active)).expire, 13_600);
    }

    #[test]
    fn old_declined_and_post_grace_leases_are_untouched() {
        let g = ReuseGrace::new(10_000, 3600);
        let old = held(6_399, HeldState::Reclaimed);
        assert_eq!(g.apply(10_100, old.clone()), old);
        let declined = held(9_999, HeldState::Declined);
        assert_eq!(g.apply(10_100, declined.clone()), declined);
        let after = held(9_000, HeldState::Active);
        assert_eq!(g.apply(13_600, after.clone()), after);
        assert!(g.active(13_599) && !g.active(13_600));
    }
}
