//! The store's in-memory indexes (Kea's memfile ones): address (ordered,
//! for paging), subnet + hardware address, subnet + client id, hostname,
//! expiration, and the per-subnet tallies Kea's lease statistics follow.
//! Only touched under the store's one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::net::Ipv4Addr;

use crate::leases::file::LeaseMap;
use crate::leases::model::{Lease, LeaseState};

/// A multimap from key to addresses, pruned when a key has none left.
type Multi<K> = HashMap<K, BTreeSet<Ipv4Addr>>;

fn link<K: Hash + Eq>(map: &mut Multi<K>, key: K, addr: Ipv4Addr) {
    map.entry(key).or_default().insert(addr);
}

fn unlink<K: Hash + Eq>(map: &mut Multi<K>, key: &K, addr: Ipv4Addr) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&addr);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// All leases and their secondary indexes; only touched under one lock.
#[derive(Debug, Default)]
pub(super) struct Index {
    pub(super) by_addr: BTreeMap<Ipv4Addr, Lease>,
    pub(super) by_hwaddr: Multi<(u32, Vec<u8>)>,
    pub(super) by_client_id: Multi<(u32, Vec<u8>)>,
    pub(super) by_hostname: Multi<String>,
    /// Leases not yet reclaimed, by expiration (Kea's expiration index).
    pub(super) by_expiry: BTreeSet<(u64, Ipv4Addr)>,
    /// Reclaimed leases, by expiration: what `flush-reclaimed` removes.
    pub(super) by_reclaimed: BTreeSet<(u64, Ipv4Addr)>,
    /// Per subnet counts for Kea's lease statistics, kept at the one place
    /// every change passes, so no caller can forget them.
    pub(super) tally: HashMap<u32, SubnetTally>,
    /// Subnets whose tally changed since [`LeaseStore::take_tallies`].
    pub(super) dirty: BTreeSet<u32>,
    /// The newest row queued per address, to undo failed ones
    /// ([`super::undo`]).
    pub(super) rows: super::undo::Rows,
}

/// One subnet's lease counts, as Kea's statistics count them: gauges
/// (`assigned`, `declined`) and totals since start (the others).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SubnetTally {
    /// Leases not reclaimed, declined ones included (Kea's
    /// `assigned-addresses`).
    pub assigned: u64,
    /// Declined leases in probation.
    pub declined: u64,
    /// Leases that became assigned (from none or reclaimed) since start
    /// (Kea's `cumulative-assigned-addresses`).
    pub entered: u64,
    /// Reclamations since start (`reclaimed-leases`).
    pub reclaimed: u64,
    /// Reclamations of declined leases since start.
    pub reclaimed_declined: u64,
}

/// What a lease in `state` adds to `assigned` and `declined`.
fn weight(state: LeaseState) -> (u64, u64) {
    match state {
        LeaseState::Default => (1, 0),
        LeaseState::Declined => (1, 1),
        LeaseState::ExpiredReclaimed | LeaseState::Other(_) => (0, 0),
    }
}

/// The expiration index a lease in `state` belongs to: reclaimed leases
/// wait for the flush, the others for reclamation.
fn expiry_index<'a>(
    by_expiry: &'a mut BTreeSet<(u64, Ipv4Addr)>,
    by_reclaimed: &'a mut BTreeSet<(u64, Ipv4Addr)>,
    state: LeaseState,
) -> &'a mut BTreeSet<(u64, Ipv4Addr)> {
    if state == LeaseState::ExpiredReclaimed { by_reclaimed } else { by_expiry }
}

impl Index {
    pub(super) fn from_map(map: LeaseMap) -> Index {
        let mut index = Index::default();
        for lease in map.into_values() {
            index.insert(lease);
        }
        // Loaded leases were assigned before this start.
        for t in index.tally.values_mut() {
            t.entered = 0;
        }
        index
    }

    /// Moves the tally from `old` to `new` (either may be absent).
    fn retally(&mut self, old: Option<(u32, LeaseState)>, new: Option<(u32, LeaseState)>) {
        if let Some((subnet, state)) = old {
            let (a, d) = weight(state);
            let t = self.tally.entry(subnet).or_default();
            t.assigned = t.assigned.saturating_sub(a);
            t.declined = t.declined.saturating_sub(d);
            self.dirty.insert(subnet);
        }
        if let Some((subnet, state)) = new {
            let (a, d) = weight(state);
            let was_assigned = old.is_some_and(|(s, st)| s == subnet && weight(st).0 == 1);
            let t = self.tally.entry(subnet).or_default();
            t.assigned += a;
            t.declined += d;
            if a == 1 && !was_assigned {
                t.entered += 1;
            }
            self.dirty.insert(subnet);
        }
    }

    pub(super) fn insert(&mut self, lease: Lease) -> Option<Lease> {
        let addr = lease.address;
        let old = self.by_addr.get(&addr).map(|l| (l.subnet_id, l.state));
        let new = (lease.subnet_id, lease.state);
        if old != Some(new) {
            self.retally(old, Some(new));
        }
        // A renewal changes only times: the secondary keys stay, so only
        // the expiration index moves (no key allocations, no relinking).
        if let Some(old) = self.by_addr.get_mut(&addr)
            && old.subnet_id == lease.subnet_id
            && old.hwaddr == lease.hwaddr
            && old.client_id == lease.client_id
            && old.hostname == lease.hostname
        {
            expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, old.state).remove(&(old.expire, addr));
            expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).insert((lease.expire, addr));
            return Some(std::mem::replace(old, lease));
        }
        let old = self.unindex(addr);
        if let Some(hw) = &lease.hwaddr {
            link(&mut self.by_hwaddr, (lease.subnet_id, hw.bytes().to_vec()), addr);
        }
        if let Some(id) = &lease.client_id {
            link(&mut self.by_client_id, (lease.subnet_id, id.bytes().to_vec()), addr);
        }
        if !lease.hostname.is_empty() {
            link(&mut self.by_hostname, lease.hostname.clone(), addr);
        }
        expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).insert((lease.expire, addr));
        self.by_addr.insert(addr, lease);
        old
    }

    /// Puts `addr` back as it was before a change whose row failed
    /// (`None`: no lease). Gauges follow; the cumulative `entered` keeps
    /// the attempt and does not count the undo as an assignment.
    pub(super) fn restore(&mut self, addr: Ipv4Addr, prev: Option<Lease>) {
        let subnets = [self.by_addr.get(&addr).map(|l| l.subnet_id), prev.as_ref().map(|l| l.subnet_id)];
        let entered: Vec<(u32, u64)> =
            subnets.into_iter().flatten().map(|s| (s, self.tally.get(&s).map_or(0, |t| t.entered))).collect();
        match prev {
            Some(lease) => {
                self.insert(lease);
            }
            None => {
                self.remove(addr);
            }
        }
        for (s, n) in entered {
            self.tally.entry(s).or_default().entered = n;
        }
    }

    pub(super) fn remove(&mut self, addr: Ipv4Addr) -> Option<Lease> {
        let lease = self.unindex(addr)?;
        self.retally(Some((lease.subnet_id, lease.state)), None);
        Some(lease)
    }

    /// Removes `addr` from every index but the tally.
    fn unindex(&mut self, addr: Ipv4Addr) -> Option<Lease> {
        let lease = self.by_addr.remove(&addr)?;
        if let Some(hw) = &lease.hwaddr {
            unlink(&mut self.by_hwaddr, &(lease.subnet_id, hw.bytes().to_vec()), addr);
        }
        if let Some(id) = &lease.client_id {
            unlink(&mut self.by_client_id, &(lease.subnet_id, id.bytes().to_vec()), addr);
        }
        if !lease.hostname.is_empty() {
            unlink(&mut self.by_hostname, &lease.hostname, addr);
        }
        expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).remove(&(lease.expire, addr));
        Some(lease)
    }

    pub(super) fn collect<'a>(&self, addrs: impl IntoIterator<Item = &'a Ipv4Addr>) -> Vec<Lease> {
        addrs.into_iter().filter_map(|a| self.by_addr.get(a).cloned()).collect()
    }
}
