//! Cumulative counters under Kea's statistic names for the status page,
//! and pool accounting computed from the lease store (one definition for
//! `/metrics` and the status page, so they never disagree). The
//! `statistic-*` commands, with Kea's history and resets, are in
//! `statistic`.

use crate::{
    core::{Counter, Sent, Stats},
    dhcp::policy::Policy,
    leases::Lease,
    dhcp::inbound::Kind,
    leases::LeaseState,
};

/// Lease counts of one subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Kea subnet id.
    pub subnet_id: u32,
    /// `network/len`.
    pub prefix: String,
    /// Addresses in the subnet's pools (Kea's `total-addresses`).
    pub total: u64,
    /// Assigned, not expired.
    pub active: u64,
    /// Assigned, expired, not reclaimed yet (still held).
    pub expired: u64,
    /// Declined, in probation.
    pub declined: u64,
    /// Expired and reclaimed (kept for affinity; free).
    pub reclaimed: u64,
}

/// Per configured subnet, in config order.
pub fn pool_counts(policy: &Policy, leases: &[Lease], now: u64) -> Vec<PoolCounts> {
    let mut out: Vec<PoolCounts> = policy
        .subnets
        .iter()
        .map(|s| PoolCounts {
            subnet_id: s.id,
            prefix: format!("{}/{}", s.network, s.prefix_len),
            total: s.pools.iter().map(|p| p.size()).sum(),
            ..Default::default()
        })
        .collect();
    for l in leases {
        let Some(c) = out.iter_mut().find(|c| c.subnet_id == l.subnet_id) else {
            continue;
        };
        match l.state {
            LeaseState::Default if l.is_expired(now) => c.expired += 1,
            LeaseState::Default => c.active += 1,
            LeaseState::Declined => c.declined += 1,
            LeaseState::ExpiredReclaimed | LeaseState::Other(_) => c.reclaimed += 1,
        }
    }
    out
}

/// Packet counters under Kea's names. Kea counts a packet that failed to
/// parse as received and as dropped, so we do too.
pub fn packet_stats(s: &Stats) -> Vec<(&'static str, u64)> {
    let rx = |k| s.get(Counter::Received(k));
    let tx = |k| s.get(Counter::Sent(k));
    let dropped = s.sum(|c| matches!(c, Counter::Dropped(_)));
    let received = s.sum(|c| matches!(c, Counter::Received(_))) + dropped;
    vec![
        ("pkt4-received", received),
        ("pkt4-discover-received", rx(Kind::Discover)),
        ("pkt4-request-received", rx(Kind::Request)),
        ("pkt4-decline-received", rx(Kind::Decline)),
        ("pkt4-release-received", rx(Kind::Release)),
        ("pkt4-inform-received", rx(Kind::Inform)),
        ("pkt4-unknown-received", 0),
        ("pkt4-parse-failed", dropped),
        ("pkt4-receive-drop", dropped),
        ("pkt4-sent", s.sum(|c| matches!(c, Counter::Sent(_)))),
        ("pkt4-offer-sent", tx(Sent::Offer)),
        ("pkt4-ack-sent", tx(Sent::Ack)),
        ("pkt4-nak-sent", tx(Sent::Nak)),
    ]
}
