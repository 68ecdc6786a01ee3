//! The daemon's counters as one enum, [`Counter`], so that the packet
//! path, the kernel-ACK drain, `statistic-get`, `/metrics` and the status
//! page name each counter the same way: a typo is a compile error, not a
//! counter nobody reads.

use std::collections::BTreeMap;

use dhcp_common::dhcp::msg_type;

use crate::dhcp::{engine::Silence, inbound::DropReason, inbound::Kind};

/// A reply the daemon (or the kernel, for the `Xdp*` ones) sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sent {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// Any other message type.
    Other,
    /// An ACK to a renewal, sent by the kernel.
    XdpAck,
    /// An ACK to a reserved client, sent by the kernel.
    XdpReservedAck,
}

impl Sent {
    /// The label metrics and the status page use.
    pub const fn label(self) -> &'static str {
        match self {
            Sent::Offer => "offer",
            Sent::Ack => "ack",
            Sent::Nak => "nak",
            Sent::Other => "other",
            Sent::XdpAck => "xdp_ack",
            Sent::XdpReservedAck => "xdp_reserved_ack",
        }
    }

    /// The counter of a daemon reply of option-53 type `t`.
    pub const fn of_msg_type(t: Option<u8>) -> Sent {
        match t {
            Some(msg_type::OFFER) => Sent::Offer,
            Some(msg_type::ACK) => Sent::Ack,
            Some(msg_type::NAK) => Sent::Nak,
            _ => Sent::Other,
        }
    }
}

/// Why HA kept a request from an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaDrop {
    /// No relationship serves the request's subnet (Kea drops it too).
    NoRelationship,
    /// Out of this server's scopes (Kea's `HA_BUFFER4_RECEIVE_NOT_FOR_US`).
    NotInScope,
    /// HA's DHCP switch is off (waiting, syncing, maintenance…: Kea's
    /// disabled network state).
    HaDisabled,
    /// Too many replies already wait for the partner (overload shedding).
    PartnerUpdatesBackedUp,
    /// The partner did not accept the lease update: no reply, as in Kea.
    PartnerUpdateFailed,
}

impl HaDrop {
    /// The label of the counter.
    pub const fn label(self) -> &'static str {
        match self {
            HaDrop::NoRelationship => "no-relationship",
            HaDrop::NotInScope => "not-in-scope",
            HaDrop::HaDisabled => "ha-dhcp-disabled",
            HaDrop::PartnerUpdatesBackedUp => "partner-updates-backed-up",
            HaDrop::PartnerUpdateFailed => "partner-update-failed",
        }
    }
}

/// One counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// A well-formed request of this kind.
    Received(Kind),
    /// A packet dropped before any decision.
    Dropped(DropReason),
    /// A request answered with silence.
    Silent(Silence),
    /// A reply sent.
    Sent(Sent),
    /// A reply withheld because its lease write failed.
    StoreFailure,
    /// A reply whose send failed.
    SendFailure,
    /// A request HA kept from an answer.
    HaDropped(HaDrop),
}

impl Counter {
    /// A total order (`Kind` and friends are plain enums; their
    /// discriminants order them within a group).
    fn key(self) -> (u8, u8) {
        match self {
            Counter::Received(k) => (0, k as u8),
            Counter::Dropped(r) => (1, r as u8),
            Counter::Silent(s) => (2, s as u8),
            Counter::Sent(s) => (3, s as u8),
            Counter::StoreFailure => (4, 0),
            Counter::SendFailure => (5, 0),
            Counter::HaDropped(h) => (6, h as u8),
        }
    }
}

/// The label of a received kind.
pub const fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Discover => "discover",
        Kind::Request => "request",
        Kind::Decline => "decline",
        Kind::Release => "release",
        Kind::Inform => "inform",
    }
}

/// Counter values; absent counters are zero.
///
/// Its `Debug` keeps the shape of the daemon's final `stopped` log line
/// (one map per group: `received: {"discover": 2}, dropped: {Truncated:
/// 1}, …`), which the lab tests read.
#[derive(Default, Clone)]
pub struct Stats {
    counts: BTreeMap<(u8, u8), (Counter, u64)>,
}

impl Stats {
    /// Adds `n` to `c`.
    pub fn add(&mut self, c: Counter, n: u64) {
        if n > 0 {
            self.counts.entry(c.key()).or_insert((c, 0)).1 += n;
        }
    }

    /// The value of `c`.
    pub fn get(&self, c: Counter) -> u64 {
        self.counts.get(&c.key()).map_or(0, |(_, n)| *n)
    }

    /// Every non-zero counter, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        self.counts.values().copied()
    }

    /// The sum of the counters `pick` selects.
    pub fn sum(&self, pick: impl Fn(Counter) -> bool) -> u64 {
        self.iter().filter(|(c, _)| pick(*c)).map(|(_, n)| n).sum()
    }

    /// Sets the counters `pick` selects back to zero.
    pub fn forget(&mut self, pick: impl Fn(Counter) -> bool) {
        self.counts.retain(|_, (c, _)| !pick(*c));
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Stats) {
        for (c, n) in other.iter() {
            self.add(c, n);
        }
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::collections::BTreeMap as M;
        let (mut received, mut dropped, mut silent, mut sent, mut ha) = (M::new(), M::new(), M::new(), M::new(), M::new());
        for (c, n) in self.iter() {
            match c {
                Counter::Received(k) => drop(received.insert(kind_label(k), n)),
                Counter::Dropped(r) => drop(dropped.insert(r, n)),
                Counter::Silent(s) => drop(silent.insert(s, n)),
                Counter::Sent(s) => drop(sent.insert(s.label(), n)),
                Counter::HaDropped(h) => drop(ha.insert(h.label(), n)),
                Counter::StoreFailure | Counter::SendFailure => {}
            }
        }
        f.debug_struct("Stats")
            .field("received", &received)
            .field("dropped", &dropped)
            .field("silent", &silent)
            .field("sent", &sent)
            .field("store_failures", &self.get(Counter::StoreFailure))
            .field("send_failures", &self.get(Counter::SendFailure))
            .field("ha_dropped", &ha)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_by_kind() {
        let mut s = Stats::default();
        s.add(Counter::Received(Kind::Discover), 2);
        s.add(Counter::Received(Kind::Request), 1);
        s.add(Counter::Received(Kind::Discover), 3);
        s.add(Counter::Sent(Sent::Offer), 0);
        assert_eq!(s.get(Counter::Received(Kind::Discover)), 5);
        assert_eq!(s.sum(|c| matches!(c, Counter::Received(_))), 6);
        assert_eq!(s.iter().count(), 2, "zero adds create nothing");
        assert_eq!(Sent::of_msg_type(Some(msg_type::ACK)), Sent::Ack);
        assert_eq!(Sent::of_msg_type(None), Sent::Other);
    }

    #[test]
    fn debug_keeps_the_stopped_line_shape() {
        let mut s = Stats::default();
        s.add(Counter::Received(Kind::Request), 1);
        s.add(Counter::Received(Kind::Discover), 2);
        s.add(Counter::Dropped(DropReason::Truncated), 1);
        s.add(Counter::Sent(Sent::XdpAck), 3);
        assert_eq!(
            format!("{s:?}"),
            r#"Stats { received: {"discover": 2, "request": 1}, dropped: {Truncated: 1}, silent: {}, sent: {"xdp_ack": 3}, store_failures: 0, send_failures: 0, ha_dropped: {} }"#
        );
    }
}
