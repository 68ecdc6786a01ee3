//! Kea's statistics as Kea keeps them (`src/lib/stats`): each statistic
//! an observation holding its recent samples, newest first, each sample
//! a value and when it was taken; every change adds a sample. Operators'
//! pollers and Forge read the history (`[[3, "…"], [2, "…"], …]`),
//! reset single statistics (counting on from zero) and remove them (the
//! next change recreates them), so a snapshot of our cumulative
//! [`Stats`](super::Stats) would not do.
//!
//! The statistics are typed ([`KeaStat`]); their Kea names are the control
//! API's business (`api::statistic`). They move from two sources, both
//! fed in by the core under its lock: the packet counters
//! ([`KeaStats::count`], mapped by [`globals_of`]) and the lease store's
//! per-subnet tallies ([`KeaStats::follow`]), which see every lease change
//! wherever it comes from (packets, lease commands, the HA partner,
//! reclamation).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, SystemTime},
};

use super::stats::{Counter, HaDrop, Sent};
use crate::{
    dhcp::{engine::Silence, inbound::DropReason, inbound::Kind},
    dhcp::policy::Policy,
    leases::SubnetTally,
};

/// A server-wide statistic (Kea's `dhcp4_statistics` plus the lease ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // each is the Kea statistic of the same name
pub enum Global {
    Pkt4Received,
    Pkt4DiscoverReceived,
    Pkt4OfferReceived,
    Pkt4RequestReceived,
    Pkt4AckReceived,
    Pkt4NakReceived,
    Pkt4ReleaseReceived,
    Pkt4DeclineReceived,
    Pkt4InformReceived,
    Pkt4UnknownReceived,
    Pkt4Sent,
    Pkt4OfferSent,
    Pkt4AckSent,
    Pkt4NakSent,
    Pkt4ParseFailed,
    Pkt4ReceiveDrop,
    V4AllocationFail,
    V4AllocationFailSharedNetwork,
    V4AllocationFailSubnet,
    V4AllocationFailNoPools,
    V4AllocationFailClasses,
    V4ReservationConflicts,
    CumulativeAssignedAddresses,
    DeclinedAddresses,
    ReclaimedDeclinedAddresses,
    ReclaimedLeases,
}

impl Global {
    /// Every global statistic, each created at zero at start-up as Kea does.
    pub const ALL: [Global; 26] = [
        Global::Pkt4Received,
        Global::Pkt4DiscoverReceived,
        Global::Pkt4OfferReceived,
        Global::Pkt4RequestReceived,
        Global::Pkt4AckReceived,
        Global::Pkt4NakReceived,
        Global::Pkt4ReleaseReceived,
        Global::Pkt4DeclineReceived,
        Global::Pkt4InformReceived,
        Global::Pkt4UnknownReceived,
        Global::Pkt4Sent,
        Global::Pkt4OfferSent,
        Global::Pkt4AckSent,
        Global::Pkt4NakSent,
        Global::Pkt4ParseFailed,
        Global::Pkt4ReceiveDrop,
        Global::V4AllocationFail,
        Global::V4AllocationFailSharedNetwork,
        Global::V4AllocationFailSubnet,
        Global::V4AllocationFailNoPools,
        Global::V4AllocationFailClasses,
        Global::V4ReservationConflicts,
        Global::CumulativeAssignedAddresses,
        Global::DeclinedAddresses,
        Global::ReclaimedDeclinedAddresses,
        Global::ReclaimedLeases,
    ];
}

/// A per-subnet statistic (`subnet[N].…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // each is the Kea statistic of the same name
pub enum PerSubnet {
    TotalAddresses,
    AssignedAddresses,
    CumulativeAssignedAddresses,
    DeclinedAddresses,
    ReclaimedDeclinedAddresses,
    ReclaimedLeases,
    V4ReservationConflicts,
}

impl PerSubnet {
    /// Every per-subnet statistic.
    pub const ALL: [PerSubnet; 7] = [
        PerSubnet::TotalAddresses,
        PerSubnet::AssignedAddresses,
        PerSubnet::CumulativeAssignedAddresses,
        PerSubnet::DeclinedAddresses,
        PerSubnet::ReclaimedDeclinedAddresses,
        PerSubnet::ReclaimedLeases,
        PerSubnet::V4ReservationConflicts,
    ];
}

/// One Kea statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeaStat {
    /// Server-wide.
    Global(Global),
    /// Of subnet id `.0`.
    Subnet(u32, PerSubnet),
}

/// How many samples an observation keeps: Kea has one limit active at a
/// time, by count (default 20) or by age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// At most this many samples.
    Count(usize),
    /// Samples no older than this, measured from the newest one.
    Age(Duration),
}

impl Default for Limit {
    /// Kea's `statistic-default-sample-count`.
    fn default() -> Self {
        Limit::Count(20)
    }
}

/// One sample: value and time taken.
pub type Sample = (i64, SystemTime);

/// A statistic's samples, newest first, and its limit.
#[derive(Clone, Debug)]
pub struct Observation {
    samples: VecDeque<Sample>,
    limit: Limit,
}

impl Observation {
    fn new(limit: Limit) -> Self {
        Observation { samples: VecDeque::new(), limit }
    }

    /// The newest value (0 for an empty observation).
    pub fn value(&self) -> i64 {
        self.samples.front().map_or(0, |s| s.0)
    }

    /// The samples, newest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    fn push(&mut self, v: i64, now: SystemTime) {
        self.samples.push_front((v, now));
        self.prune();
    }

    /// Kea's `setValueInternal`: drop what the limit no longer allows,
    /// never the newest sample.
    fn prune(&mut self) {
        match self.limit {
            Limit::Count(n) => self.samples.truncate(n.max(1)),
            Limit::Age(age) => {
                let Some(&(_, newest)) = self.samples.front() else { return };
                while self.samples.len() > 1
                    && self.samples.back().is_some_and(|&(_, t)| newest.duration_since(t).unwrap_or_default() > age)
                {
                    self.samples.pop_back();
                }
            }
        }
    }
}

/// Every observation, Kea's `StatsMgr`. Kept inside the core's state.
#[derive(Clone, Debug, Default)]
pub struct KeaStats {
    obs: BTreeMap<KeaStat, Observation>,
    /// For observations created from now on.
    default_limit: Limit,
    /// The lease tallies the subnet statistics last followed.
    seen: HashMap<u32, SubnetTally>,
}

impl KeaStats {
    /// Kea's start-up: every global statistic at zero, and the subnets'
    /// from `policy` and the loaded leases (`tallies`).
    pub fn new(policy: &Policy, tallies: &HashMap<u32, SubnetTally>, now: SystemTime) -> Self {
        let mut s = KeaStats::default();
        for g in Global::ALL {
            s.set(KeaStat::Global(g), 0, now);
        }
        s.reconfigure(policy, tallies, now);
        s
    }

    /// A new configuration (Kea's `removeStatistics` +
    /// `updateStatistics` + `recountLeaseStats4`): per-subnet statistics
    /// start over for the subnets of `policy` (conflict counts are kept);
    /// global counts carry on, declined addresses recounted.
    pub fn reconfigure(&mut self, policy: &Policy, tallies: &HashMap<u32, SubnetTally>, now: SystemTime) {
        self.obs.retain(|k, _| !matches!(k, KeaStat::Subnet(_, p) if *p != PerSubnet::V4ReservationConflicts));
        let mut declined = 0;
        for subnet in &policy.subnets {
            let id = subnet.id;
            let t = tallies.get(&id).copied().unwrap_or_default();
            let total: u64 = subnet.pools.iter().map(|p| p.size()).sum();
            let at = |p| KeaStat::Subnet(id, p);
            self.set(at(PerSubnet::TotalAddresses), clamp(total), now);
            self.set(at(PerSubnet::CumulativeAssignedAddresses), 0, now);
            if !self.obs.contains_key(&at(PerSubnet::V4ReservationConflicts)) {
                self.set(at(PerSubnet::V4ReservationConflicts), 0, now);
            }
            self.set(at(PerSubnet::AssignedAddresses), 0, now);
            self.set(at(PerSubnet::DeclinedAddresses), 0, now);
            self.set(at(PerSubnet::ReclaimedDeclinedAddresses), 0, now);
            self.set(at(PerSubnet::ReclaimedLeases), 0, now);
            if t.assigned > 0 {
                self.add(at(PerSubnet::AssignedAddresses), clamp(t.assigned), now);
            }
            if t.declined > 0 {
                self.set(at(PerSubnet::DeclinedAddresses), clamp(t.declined), now);
            }
            declined += t.declined;
        }
        self.set(KeaStat::Global(Global::DeclinedAddresses), clamp(declined), now);
        self.seen = tallies.clone();
    }

    /// The observation of `s`, if it exists.
    pub fn get(&self, s: KeaStat) -> Option<&Observation> {
        self.obs.get(&s)
    }

    /// Every observation, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (KeaStat, &Observation)> {
        self.obs.iter().map(|(k, o)| (*k, o))
    }

    /// Sets `s` to `v` (creating it).
    pub fn set(&mut self, s: KeaStat, v: i64, now: SystemTime) {
        let limit = self.default_limit;
        self.obs.entry(s).or_insert_with(|| Observation::new(limit)).push(v, now);
    }

    /// Adds `delta` to `s`; a removed statistic comes back holding `delta`.
    pub fn add(&mut self, s: KeaStat, delta: i64, now: SystemTime) {
        let limit = self.default_limit;
        let o = self.obs.entry(s).or_insert_with(|| Observation::new(limit));
        let v = o.value().saturating_add(delta);
        o.push(v, now);
    }

    /// `statistic-reset`: one zero sample; false if there is no such one.
    pub fn reset(&mut self, s: KeaStat, now: SystemTime) -> bool {
        let Some(o) = self.obs.get_mut(&s) else { return false };
        o.samples.clear();
        o.push(0, now);
        true
    }

    /// `statistic-reset-all`.
    pub fn reset_all(&mut self, now: SystemTime) {
        for o in self.obs.values_mut() {
            o.samples.clear();
            o.push(0, now);
        }
    }

    /// `statistic-remove`: false if there is no such one.
    pub fn remove(&mut self, s: KeaStat) -> bool {
        self.obs.remove(&s).is_some()
    }

    /// `statistic-remove-all`.
    pub fn remove_all(&mut self) {
        self.obs.clear();
    }

    /// `statistic-sample-count-set` / `-age-set`: false if there is no
    /// such one.
    pub fn set_limit(&mut self, s: KeaStat, limit: Limit) -> bool {
        let Some(o) = self.obs.get_mut(&s) else { return false };
        o.limit = limit;
        o.prune();
        true
    }

    /// The `-all` variants: every observation, and the default for new ones.
    pub fn set_limit_all(&mut self, limit: Limit) {
        self.default_limit = limit;
        for o in self.obs.values_mut() {
            o.limit = limit;
            o.prune();
        }
    }

    /// Counts `n` occurrences of `c` (under Kea's names, see [`globals_of`]).
    pub fn count(&mut self, c: Counter, n: u64, now: SystemTime) {
        for g in globals_of(c) {
            for _ in 0..n.min(64) {
                self.add(KeaStat::Global(*g), 1, now);
            }
            if n > 64 {
                self.add(KeaStat::Global(*g), clamp(n - 64), now);
            }
        }
    }

    /// Follows the lease store: each subnet whose tally moved adds the
    /// difference to its statistics (so a reset one counts on from zero,
    /// as in Kea), and to the server-wide ones.
    pub fn follow(&mut self, changed: Vec<(u32, SubnetTally)>, now: SystemTime) {
        for (id, t) in changed {
            let old = self.seen.insert(id, t).unwrap_or_default();
            let delta = |new: u64, old: u64| clamp(new) - clamp(old);
            let mut moved = |s: KeaStat, d: i64| {
                if d != 0 {
                    self.add(s, d, now);
                }
            };
            let at = |p| KeaStat::Subnet(id, p);
            moved(at(PerSubnet::AssignedAddresses), delta(t.assigned, old.assigned));
            moved(at(PerSubnet::DeclinedAddresses), delta(t.declined, old.declined));
            moved(KeaStat::Global(Global::DeclinedAddresses), delta(t.declined, old.declined));
            let entered = delta(t.entered, old.entered);
            moved(at(PerSubnet::CumulativeAssignedAddresses), entered);
            moved(KeaStat::Global(Global::CumulativeAssignedAddresses), entered);
            let reclaimed = delta(t.reclaimed, old.reclaimed);
            moved(at(PerSubnet::ReclaimedLeases), reclaimed);
            moved(KeaStat::Global(Global::ReclaimedLeases), reclaimed);
            let declined = delta(t.reclaimed_declined, old.reclaimed_declined);
            moved(at(PerSubnet::ReclaimedDeclinedAddresses), declined);
            moved(KeaStat::Global(Global::ReclaimedDeclinedAddresses), declined);
        }
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The Kea statistics one occurrence of `c` moves, as Kea 2.2's
/// `Dhcpv4Srv::processPacket` counts them. Kernel (XDP) answers count as
/// the request received and the ACK sent that they are, so the numbers
/// match what a Kea in our place would show.
pub fn globals_of(c: Counter) -> &'static [Global] {
    use Global::*;
    match c {
        Counter::Received(Kind::Discover) => &[Pkt4Received, Pkt4DiscoverReceived],
        Counter::Received(Kind::Request) => &[Pkt4Received, Pkt4RequestReceived],
        Counter::Received(Kind::Decline) => &[Pkt4Received, Pkt4DeclineReceived],
        Counter::Received(Kind::Release) => &[Pkt4Received, Pkt4ReleaseReceived],
        Counter::Received(Kind::Inform) => &[Pkt4Received, Pkt4InformReceived],
        // Kea counts a packet it cannot parse as received, failed, dropped.
        Counter::Dropped(
            DropReason::Truncated | DropReason::BadHardwareLength | DropReason::NoMagicCookie | DropReason::BadOption,
        ) => &[Pkt4Received, Pkt4ParseFailed, Pkt4ReceiveDrop],
        Counter::Dropped(DropReason::NotRequest | DropReason::NoMessageType | DropReason::UnexpectedMessageType) => {
            &[Pkt4Received, Pkt4UnknownReceived, Pkt4ReceiveDrop]
        }
        // Kea's `sanityCheck` (no hardware address, no client-id) drops it
        // as an RFC violation after parsing it.
        Counter::Dropped(DropReason::NoIdentifier) => &[Pkt4Received, Pkt4ReceiveDrop],
        // Kea's `accept` refuses these: dropped after being counted by type.
        Counter::Silent(Silence::OtherServerSelected | Silence::NoSubnet) => &[Pkt4ReceiveDrop],
        Counter::Silent(Silence::PoolExhausted) => &[V4AllocationFail, V4AllocationFailSubnet],
        Counter::Silent(_) => &[],
        Counter::Sent(Sent::Offer) => &[Pkt4Sent, Pkt4OfferSent],
        Counter::Sent(Sent::Ack) => &[Pkt4Sent, Pkt4AckSent],
        Counter::Sent(Sent::Nak) => &[Pkt4Sent, Pkt4NakSent],
        Counter::Sent(Sent::Other) => &[Pkt4Sent],
        Counter::Sent(Sent::XdpAck | Sent::XdpReservedAck) => {
            &[Pkt4Received, Pkt4RequestReceived, Pkt4Sent, Pkt4AckSent]
        }
        Counter::HaDropped(HaDrop::NoRelationship | HaDrop::NotInScope | HaDrop::HaDisabled) => &[Pkt4ReceiveDrop],
        Counter::HaDropped(_) | Counter::StoreFailure | Counter::SendFailure => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    fn values(k: &KeaStats, s: KeaStat) -> Vec<i64> {
        k.get(s).map(|o| o.samples().map(|x| x.0).collect()).unwrap_or_default()
    }

    const RX: KeaStat = KeaStat::Global(Global::Pkt4Received);

    #[test]
    fn history_reset_remove_and_limits_follow_kea() {
        let mut k = KeaStats::default();
        for g in Global::ALL {
            k.set(KeaStat::Global(g), 0, t(0));
        }
        k.count(Counter::Received(Kind::Discover), 1, t(1));
        k.count(Counter::Received(Kind::Request), 1, t(2));
        assert_eq!(values(&k, RX), [2, 1, 0]);
        assert_eq!(values(&k, KeaStat::Global(Global::Pkt4DiscoverReceived)), [1, 0]);
        // Removed, then recreated by the next change holding only it.
        assert!(k.remove(RX));
        assert!(!k.remove(RX));
        k.count(Counter::Received(Kind::Discover), 1, t(3));
        k.count(Counter::Received(Kind::Discover), 1, t(4));
        assert_eq!(values(&k, RX), [2, 1]);
        assert!(k.reset(RX, t(5)));
        k.count(Counter::Received(Kind::Discover), 2, t(6));
        assert_eq!(values(&k, RX), [2, 1, 0]);
        assert!(k.set_limit(RX, Limit::Count(2)));
        assert_eq!(values(&k, RX), [2, 1]);
        k.count(Counter::Sent(Sent::XdpAck), 1, t(7));
        assert_eq!(values(&k, RX), [3, 2]);
        assert_eq!(values(&k, KeaStat::Global(Global::Pkt4AckSent)), [1, 0]);
        // By age: samples more than 1 s older than the newest go.
        assert!(k.set_limit(RX, Limit::Age(Duration::from_secs(1))));
        k.count(Counter::Received(Kind::Inform), 1, t(9));
        assert_eq!(values(&k, RX), [4]);
        k.set_limit_all(Limit::Count(1));
        assert!(k.iter().all(|(_, o)| o.samples().count() == 1));
        k.remove_all();
        assert_eq!(k.iter().count(), 0);
    }

    #[test]
    fn lease_tallies_move_subnet_and_global_statistics() {
        let mut k = KeaStats::default();
        k.seen.insert(1, SubnetTally::default());
        let a = |n| SubnetTally { assigned: n, ..Default::default() };
        let assigned = KeaStat::Subnet(1, PerSubnet::AssignedAddresses);
        k.follow(vec![(1, SubnetTally { entered: 1, ..a(1) })], t(1));
        k.follow(vec![(1, SubnetTally { entered: 1, ..a(0) })], t(2));
        k.follow(vec![(1, SubnetTally { entered: 2, ..a(1) })], t(3));
        assert_eq!(values(&k, assigned), [1, 0, 1]);
        assert_eq!(values(&k, KeaStat::Global(Global::CumulativeAssignedAddresses)), [2, 1]);
        // Reset, then one more: Kea counts on from zero.
        k.reset(assigned, t(4));
        k.follow(vec![(1, SubnetTally { entered: 3, ..a(2) })], t(5));
        assert_eq!(values(&k, assigned), [1, 0]);
        let d = SubnetTally { assigned: 2, declined: 1, entered: 3, ..Default::default() };
        k.follow(vec![(1, d)], t(6));
        assert_eq!(values(&k, KeaStat::Global(Global::DeclinedAddresses)), [1]);
        let r = SubnetTally { assigned: 1, declined: 0, entered: 3, reclaimed: 1, reclaimed_declined: 1 };
        k.follow(vec![(1, r)], t(7));
        assert_eq!(values(&k, KeaStat::Global(Global::ReclaimedDeclinedAddresses)), [1]);
        assert_eq!(values(&k, KeaStat::Subnet(1, PerSubnet::ReclaimedLeases)), [1]);
        assert_eq!(values(&k, KeaStat::Subnet(1, PerSubnet::DeclinedAddresses)), [0, 1]);
    }
}
