//! The lease conflict rule: which lease an address keeps when the two
//! servers of a pair hold it for different clients.
//!
//! # Why
//!
//! Two servers that served without each other (partner-down on both
//! sides of a cut link, both in `terminated`, communication-recovery with
//! an overflowed backlog, or two updates crossing on the wire in load
//! balancing) can each give the same free address to a different client:
//! randomised MACs make it likelier, since a returning device looks like
//! a new client. Kea has no rule for it. `lease4-update` overwrites
//! whatever the receiver holds (`force-create`), and the lease sync keeps
//! the local copy unless the partner's is strictly newer, so on a tie
//! each server keeps its own and the two stores disagree for good; since
//! Kea 2.4 a refused update (result 4) counts toward
//! `max-rejected-lease-updates` and ends in `terminated`, where Kea's users
//! then sit until someone restarts both servers (the pfSense/OPNsense
//! `HA_LEASE_UPDATE_CONFLICT` reports).
//!
//! # The rule
//!
//! A *conflict* is a lease for an address this server holds **live**
//! (default state, not expired) for a **different client** (neither the
//! same hardware address nor the same client identifier). Anything else is
//! not a conflict and Kea's behaviour stands: an update overwrites, a sync
//! takes the partner's copy when ours is older.
//!
//! In a conflict the lease with the later client-last-transaction time
//! (`cltt`, whole seconds) wins; on a tie the copy held by the
//! **primary** wins. Both servers order the two leases the same way
//! (the order depends on the leases and the roles, not on who asks), so
//! wherever the two copies meet, in a `lease4-update` or in a sync page,
//! the same lease survives, and after one exchange in each direction both
//! stores hold it: never two clients for one address in the two stores.
//!
//! - **A partner's `lease4-update` that loses** is refused with result 1
//!   (what Kea 2.2 answers any failed update; a Kea sender drops its reply
//!   and retries, a Kea 2.4+ sender does not count result 1 toward
//!   `max-rejected-lease-updates`, so no Kea peer is pushed toward
//!   `terminated`). The answer carries the winning lease in its
//!   `arguments` (Kea reads only `result` and `text`), so an xdhcpd sender
//!   stores it at once and NAKs its own client's next request for that
//!   address (the engine sees the address held by another client).
//! - **A sync page lease that loses** is skipped; one that wins replaces
//!   ours.
//! - **The losing client** is told at its next renewal or rebind: the
//!   address belongs to another client in both stores, so the server that
//!   sees it NAKs (the kernel fast path answers only the lease's own
//!   client and passes anything else to the daemon), and the client
//!   starts over with a DISCOVER and gets a free address.
//!
//! A conflict never changes the HA state: no counter of rejected updates,
//! no `terminated`, no partner taken for dead. Repeated conflicts resolve
//! one address at a time the same way, so the pair cannot get stuck on
//! them.

use crate::leases::{Lease, LeaseState};

/// How the answer refusing a losing `lease4-update` starts; with the
/// winning lease in `arguments.lease` it tells an xdhcpd sender to store
/// that lease (a Kea sender sees a failed update).
pub const CONFLICT_TEXT: &str = "IPv4 lease conflict:";

/// Whether `a` and `b` are the same client: the same hardware address,
/// or the same client identifier (Kea identifies a client by either).
pub fn same_client(a: &Lease, b: &Lease) -> bool {
    let hw = matches!((&a.hwaddr, &b.hwaddr), (Some(x), Some(y)) if x.bytes() == y.bytes());
    let id = matches!((&a.client_id, &b.client_id), (Some(x), Some(y)) if x == y);
    hw || id
}

/// Whether `local` holds its address at `now` for a client other than
/// `incoming`'s: the rule applies only then.
pub fn conflicts(local: &Lease, incoming: &Lease, now: u64) -> bool {
    local.state == LeaseState::Default && !local.is_expired(now) && !same_client(local, incoming)
}

/// The order of the rule: whether the partner's lease beats ours, given
/// whether the partner is the primary (it holds the winner of a tie).
pub fn partner_wins(local: &Lease, partner: &Lease, partner_is_primary: bool) -> bool {
    match partner.cltt().cmp(&local.cltt()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => partner_is_primary,
    }
}

/// A partner's `lease4-update`: whether to keep our lease and refuse the
/// update (a conflict the partner's lease loses). Otherwise the update
/// overwrites, as in Kea.
pub fn update_keeps_local(local: Option<&Lease>, update: &Lease, partner_is_primary: bool, now: u64) -> bool {
    local.is_some_and(|l| conflicts(l, update, now) && !partner_wins(l, update, partner_is_primary))
}

/// A lease from the partner's sync page: whether to store it. In a
/// conflict, the rule; otherwise Kea's sync rule (take it when we have
/// none at that address or ours is older).
pub fn sync_takes(local: Option<&Lease>, remote: &Lease, partner_is_primary: bool, now: u64) -> bool {
    match local {
        None => true,
        Some(l) if conflicts(l, remote, now) => partner_wins(l, remote, partner_is_primary),
        Some(l) => l.cltt() < remote.cltt(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::leases::{ClientId, HwAddr};

    const NOW: u64 = 1_000_000;

    fn lease(mac: u8, cltt: u64) -> Lease {
        Lease::new(Ipv4Addr::new(192, 168, 50, 100), Some(HwAddr::ethernet([2, 0, 0, 0, 0, mac])), None, 1, cltt, 3600)
    }

    /// Both servers' verdicts on one address: (primary stores the
    /// standby's lease, standby stores the primary's lease), by sync and
    /// by update. Converged means both end with the same client.
    fn verdicts(on_primary: &Lease, on_standby: &Lease) -> [(bool, bool); 2] {
        [
            (sync_takes(Some(on_primary), on_standby, false, NOW), sync_takes(Some(on_standby), on_primary, true, NOW)),
            (
                !update_keeps_local(Some(on_primary), on_standby, false, NOW),
                !update_keeps_local(Some(on_standby), on_primary, true, NOW),
            ),
        ]
    }

    #[test]
    fn newer_cltt_wins_on_both_servers_and_ties_go_to_the_primary() {
        let older = lease(1, NOW - 100);
        let newer = lease(2, NOW - 10);
        // The standby's lease is newer: the primary takes it, the standby keeps it.
        for (primary_takes, standby_takes) in verdicts(&older, &newer) {
            assert!(primary_takes && !standby_takes);
        }
        // The primary's lease is newer: the reverse.
        for (primary_takes, standby_takes) in verdicts(&newer, &older) {
            assert!(!primary_takes && standby_takes);
        }
        // A tie: the primary's copy wins on both sides (Kea's sync would
        // keep each server's own and leave them disagreeing).
        let (a, b) = (lease(1, NOW - 50), lease(2, NOW - 50));
        for (primary_takes, standby_takes) in verdicts(&a, &b) {
            assert!(!primary_takes && standby_takes);
        }
    }

    #[test]
    fn exactly_one_copy_survives_whatever_the_times() {
        // Every pair of times: one server takes the other's lease, never
        // both, never neither, through either path.
        for pc in [NOW - 300, NOW - 60, NOW - 1, NOW] {
            for sc in [NOW - 300, NOW - 60, NOW - 1, NOW] {
                for (pt, st) in verdicts(&lease(1, pc), &lease(2, sc)) {
                    assert!(pt != st, "cltt {pc} vs {sc}: primary takes {pt}, standby takes {st}");
                }
            }
        }
    }

    #[test]
    fn no_conflict_keeps_keas_behaviour() {
        let ours = lease(1, NOW - 10);
        // Same client (a renewal, possibly older on the wire): an update
        // overwrites; a sync takes only a newer copy.
        let same_older = lease(1, NOW - 100);
        assert!(!update_keeps_local(Some(&ours), &same_older, false, NOW));
        assert!(!sync_takes(Some(&ours), &same_older, true, NOW));
        assert!(sync_takes(Some(&ours), &lease(1, NOW - 5), false, NOW));
        // Same client identifier under a new (randomised) MAC: same client.
        let id = ClientId::new(vec![1, 2, 3, 4]).unwrap();
        let mut a = lease(1, NOW - 10);
        a.client_id = Some(id.clone());
        let mut b = lease(9, NOW - 100);
        b.client_id = Some(id);
        assert!(same_client(&a, &b) && !update_keeps_local(Some(&a), &b, false, NOW));
        // Our lease expired, reclaimed or declined: the partner's wins.
        let other_old = lease(2, NOW - 7200);
        let expired = lease(1, NOW - 7200 - 1);
        assert!(!update_keeps_local(Some(&expired), &other_old, false, NOW));
        assert!(sync_takes(Some(&expired), &other_old, false, NOW));
        for state in [LeaseState::ExpiredReclaimed, LeaseState::Declined] {
            let mut l = lease(1, NOW - 10);
            l.state = state;
            assert!(!update_keeps_local(Some(&l), &other_old, false, NOW), "{state:?}");
        }
        // Nothing here: take it.
        assert!(!update_keeps_local(None, &other_old, false, NOW) && sync_takes(None, &other_old, false, NOW));
    }
}
