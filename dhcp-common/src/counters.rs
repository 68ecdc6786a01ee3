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
    /// A renewal answered in the kernel with an ACK (XDP_TX).
    AnsweredAck,
    /// Passed: a REQUEST the kernel does not answer (not RENEWING/REBINDING,
    /// relayed, options it cannot mirror, IP options).
    PassedNotRenewal,
    /// Passed: no lease for that address in the map.
    PassedNoLease,
    /// Passed: the lease belongs to another client.
    PassedNotOwner,
    /// Passed: the lease has expired.
    PassedExpired,
    /// Passed: this server does not serve the lease's subnet right now.
    PassedNotServing,
    /// A reserved client's DISCOVER answered in the kernel with an OFFER.
    AnsweredOffer,
    /// A reserved client's REQUEST (SELECTING, INIT-REBOOT, RENEWING or
    /// REBINDING) answered in the kernel with an ACK.
    AnsweredReservedAck,
    /// Passed: a reserved client's request the kernel cannot mirror (relayed,
    /// options 51/52, another server or address, options the template lacks).
    PassedReservation,
    /// Passed: the reserved address is held by another client in the store,
    /// or the client holds another address (the daemon decides).
    PassedReservedHeld,
    /// Passed: the query is in an HA scope this server does not serve now
    /// (Kea's load-balancing split, or the standby's share); the daemon
    /// drops it as Kea's query filter does.
    PassedOutOfScope,
    /// Passed: the event ring that tells the daemon what the kernel
    /// answered was nearly full, so the kernel left the answer to the
    /// daemon rather than answer something the store might never learn.
    PassedRingFull,
    /// Answered, but its event did not fit in the ring (concurrent CPUs
    /// took the last of the headroom): the store misses that renewal. Never
    /// expected; the daemon raises an alarm when it moves.
    EventLost,
    /// Passed: the frame's Ethernet or IP destination is neither broadcast
    /// nor this server's address on the link (another host's frame seen on
    /// a promiscuous bridge port, or another local address): the stack
    /// decides whether the daemon gets it, so the kernel does not answer.
    PassedOtherDestination,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 17] = [
        Outcome::NotDhcp,
        Outcome::PassedToDaemon,
        Outcome::Malformed,
        Outcome::AnsweredAck,
        Outcome::PassedNotRenewal,
        Outcome::PassedNoLease,
        Outcome::PassedNotOwner,
        Outcome::PassedExpired,
        Outcome::PassedNotServing,
        Outcome::AnsweredOffer,
        Outcome::AnsweredReservedAck,
        Outcome::PassedReservation,
        Outcome::PassedReservedHeld,
        Outcome::PassedOutOfScope,
        Outcome::PassedRingFull,
        Outcome::EventLost,
        Outcome::PassedOtherDestination,
    ];

    /// Stable label used in logs, the status page and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::NotDhcp => "not_dhcp",
            Outcome::PassedToDaemon => "passed_to_daemon",
            Outcome::Malformed => "malformed",
            Outcome::AnsweredAck => "answered_ack",
            Outcome::PassedNotRenewal => "passed_not_renewal",
            Outcome::PassedNoLease => "passed_no_lease",
            Outcome::PassedNotOwner => "passed_not_owner",
            Outcome::PassedExpired => "passed_expired",
            Outcome::PassedNotServing => "passed_not_serving",
            Outcome::AnsweredOffer => "answered_offer",
            Outcome::AnsweredReservedAck => "answered_reserved_ack",
            Outcome::PassedReservation => "passed_reservation",
            Outcome::PassedReservedHeld => "passed_reserved_held",
            Outcome::PassedOutOfScope => "passed_out_of_scope",
            Outcome::PassedRingFull => "passed_ring_full",
            Outcome::EventLost => "event_lost",
            Outcome::PassedOtherDestination => "passed_other_destination",
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
    /// Renewals answered in the kernel.
    pub answered_ack: u64,
    /// REQUESTs passed: not a renewal the kernel can mirror.
    pub passed_not_renewal: u64,
    /// Renewals passed: no lease in the map.
    pub passed_no_lease: u64,
    /// Renewals passed: lease owned by another client.
    pub passed_not_owner: u64,
    /// Renewals passed: lease expired.
    pub passed_expired: u64,
    /// Renewals passed: subnet not served by this server now.
    pub passed_not_serving: u64,
    /// Reserved clients' DISCOVERs answered with an OFFER.
    pub answered_offer: u64,
    /// Reserved clients' REQUESTs answered with an ACK.
    pub answered_reserved_ack: u64,
    /// Reserved clients' requests passed: not mirrorable.
    pub passed_reservation: u64,
    /// Reserved clients' requests passed: address held by someone else.
    pub passed_reserved_held: u64,
    /// Requests passed: outside this server's HA scopes.
    pub passed_out_of_scope: u64,
    /// Requests passed: the event ring lacked headroom.
    pub passed_ring_full: u64,
    /// Answers whose event was lost (alarm).
    pub event_lost: u64,
    /// Requests passed: sent to another host or address.
    pub passed_other_destination: u64,
}

const _: () = assert!(core::mem::size_of::<Counters>() == 136);

impl Counters {
    /// The counter of `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::NotDhcp => self.not_dhcp,
            Outcome::PassedToDaemon => self.passed_to_daemon,
            Outcome::Malformed => self.malformed,
            Outcome::AnsweredAck => self.answered_ack,
            Outcome::PassedNotRenewal => self.passed_not_renewal,
            Outcome::PassedNoLease => self.passed_no_lease,
            Outcome::PassedNotOwner => self.passed_not_owner,
            Outcome::PassedExpired => self.passed_expired,
            Outcome::PassedNotServing => self.passed_not_serving,
            Outcome::AnsweredOffer => self.answered_offer,
            Outcome::AnsweredReservedAck => self.answered_reserved_ack,
            Outcome::PassedReservation => self.passed_reservation,
            Outcome::PassedReservedHeld => self.passed_reserved_held,
            Outcome::PassedOutOfScope => self.passed_out_of_scope,
            Outcome::PassedRingFull => self.passed_ring_full,
            Outcome::EventLost => self.event_lost,
            Outcome::PassedOtherDestination => self.passed_other_destination,
        }
    }

    /// Adds one to the counter of `outcome`.
    #[inline(always)]
    pub fn bump(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::NotDhcp => self.not_dhcp += 1,
            Outcome::PassedToDaemon => self.passed_to_daemon += 1,
            Outcome::Malformed => self.malformed += 1,
            Outcome::AnsweredAck => self.answered_ack += 1,
            Outcome::PassedNotRenewal => self.passed_not_renewal += 1,
            Outcome::PassedNoLease => self.passed_no_lease += 1,
            Outcome::PassedNotOwner => self.passed_not_owner += 1,
            Outcome::PassedExpired => self.passed_expired += 1,
            Outcome::PassedNotServing => self.passed_not_serving += 1,
            Outcome::AnsweredOffer => self.answered_offer += 1,
            Outcome::AnsweredReservedAck => self.answered_reserved_ack += 1,
            Outcome::PassedReservation => self.passed_reservation += 1,
            Outcome::PassedReservedHeld => self.passed_reserved_held += 1,
            Outcome::PassedOutOfScope => self.passed_out_of_scope += 1,
            Outcome::PassedRingFull => self.passed_ring_full += 1,
            Outcome::EventLost => self.event_lost += 1,
            Outcome::PassedOtherDestination => self.passed_other_destination += 1,
        }
    }

    fn add_n(&mut self, outcome: Outcome, n: u64) {
        let field = match outcome {
            Outcome::NotDhcp => &mut self.not_dhcp,
            Outcome::PassedToDaemon => &mut self.passed_to_daemon,
            Outcome::Malformed => &mut self.malformed,
            Outcome::AnsweredAck => &mut self.answered_ack,
            Outcome::PassedNotRenewal => &mut self.passed_not_renewal,
            Outcome::PassedNoLease => &mut self.passed_no_lease,
            Outcome::PassedNotOwner => &mut self.passed_not_owner,
            Outcome::PassedExpired => &mut self.passed_expired,
            Outcome::PassedNotServing => &mut self.passed_not_serving,
            Outcome::AnsweredOffer => &mut self.answered_offer,
            Outcome::AnsweredReservedAck => &mut self.answered_reserved_ack,
            Outcome::PassedReservation => &mut self.passed_reservation,
            Outcome::PassedReservedHeld => &mut self.passed_reserved_held,
            Outcome::PassedOutOfScope => &mut self.passed_out_of_scope,
            Outcome::PassedRingFull => &mut self.passed_ring_full,
            Outcome::EventLost => &mut self.event_lost,
            Outcome::PassedOtherDestination => &mut self.passed_other_destination,
        };
        *field += n;
    }

    /// Field-wise sum (of the per-CPU copies).
    pub fn add(&self, other: &Counters) -> Counters {
        let mut sum = *self;
        for o in Outcome::ALL {
            let add = other.get(o);
            sum.add_n(o, add);
        }
        sum
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
        assert_eq!(Outcome::ALL.map(|o| s.get(o)), [5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
