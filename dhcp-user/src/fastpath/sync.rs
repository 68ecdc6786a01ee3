//! [`MapSync`], the one owner of the map handles: the writes, and the
//! indexes of the store it keeps to make them (who holds what, for the
//! reservation entries and `sole`); the entries themselves are pure.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    net::Ipv4Addr,
};

use aya::maps::{
    Array, HashMap as BpfHashMap, MapData, RingBuf,
    lpm_trie::{Key as LpmKey, LpmTrie},
};
use dhcp_common::fastpath::{
    CID_PASS_MISSING, EVENTS_MAP, LEASES_MAP, LeaseEntry, LeaseKey, RELAYS_MAP, RESERVATIONS_MAP, ReservationEntry,
    ReservationKey, SETTINGS_MAP, SUBNETS_MAP, Settings, SubnetKey, SubnetReply,
};

use super::{
    NotEligible, ResId, SubnetServing, is_link, lease_entry, relay_entries, reservation::with_store_state,
    reservation_entry, subnet_reply,
};
use crate::{
    dhcp::policy::{Policy, Reservation, SubnetPolicy},
    leases::Lease,
    net::Interface,
};

/// Errors talking to the maps.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A map is missing from the object or has the wrong type.
    #[error("map {name}: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Cause.
        #[source]
        source: aya::maps::MapError,
    },
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> SyncError {
    move |source| SyncError::Map { name, source }
}

/// A client identity in a subnet: (subnet id, MAC or client-id).
type ClientIn = (u32, ResId);

/// The identities of a lease that the daemon looks its client up by.
fn identities(l: &Lease) -> Vec<ResId> {
    let mut out = Vec::new();
    if let Some(m) = l.hwaddr.as_ref().and_then(|h| <[u8; 6]>::try_from(h.bytes()).ok()) {
        out.push(ResId::Mac(m));
    }
    if let Some(c) = l.client_id.as_ref().filter(|c| !c.bytes().is_empty()) {
        out.push(ResId::ClientId(c.bytes().to_vec()));
    }
    out
}

/// The one owner of the fast-path map handles.
pub struct MapSync {
    leases: BpfHashMap<MapData, LeaseKey, LeaseEntry>,
    subnets: BpfHashMap<MapData, SubnetKey, SubnetReply>,
    reservations: BpfHashMap<MapData, ReservationKey, ReservationEntry>,
    relays: LpmTrie<MapData, [u8; 4], u32>,
    settings: Array<MapData, Settings>,
    /// Leases the map could not take (full); served by the daemon.
    pub skipped_full: u64,
    /// What the last install left to the daemon, per reason, for the API.
    coverage: crate::coverage::Coverage,
    /// Reservations left to the daemon at the last install, and why
    /// (subnet id, client, interface index, relayed subnet or 0).
    pub reservations_left: Vec<(u32, ResId, u32, u32, NotEligible)>,
    /// Installed reservation templates, before the store's state is added,
    /// with the subnet's match-client-id.
    res_base: HashMap<ReservationKey, (ReservationEntry, bool)>,
    res_by_addr: HashMap<Ipv4Addr, Vec<ReservationKey>>,
    res_by_who: HashMap<ResId, Vec<ReservationKey>>,
    /// The store's leases that matter to reservations (at a reserved
    /// address, or held by a reserved client), and those by client.
    relevant: HashMap<Ipv4Addr, Lease>,
    who_leases: HashMap<ResId, BTreeSet<Ipv4Addr>>,
    /// Every stored lease's identities, for [`LeaseEntry::sole`].
    clients: HashMap<ClientIn, BTreeSet<Ipv4Addr>>,
    lease_ids: HashMap<Ipv4Addr, Vec<ClientIn>>,
    /// Relay map keys written at the last install.
    relay_keys: BTreeSet<(u32, [u8; 4])>,
    /// Lease entries the last [`MapSync::load_all`] left in the map.
    loaded: usize,
}

/// Whether `l` can change what the daemon answers a reserved client.
fn matters_to_reservations(policy: &Policy, l: &Lease) -> bool {
    policy.subnet(l.subnet_id).is_some_and(|s| {
        s.reserved.contains_key(&l.address)
            || s.may_have_host(
                l.hwaddr.as_ref().map(|h| h.bytes()).unwrap_or_default(),
                l.client_id.as_ref().map(|c| c.bytes()).unwrap_or_default(),
            )
    })
}

impl MapSync {
    /// Takes the maps out of the loaded object; the ring buffer is returned
    /// separately for the drain task.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<(Self, RingBuf<MapData>), SyncError> {
        let missing = |name: &'static str| SyncError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        };
        let leases = BpfHashMap::try_from(ebpf.take_map(LEASES_MAP).ok_or_else(|| missing(LEASES_MAP))?)
            .map_err(map_err(LEASES_MAP))?;
        let subnets = BpfHashMap::try_from(ebpf.take_map(SUBNETS_MAP).ok_or_else(|| missing(SUBNETS_MAP))?)
            .map_err(map_err(SUBNETS_MAP))?;
        let reservations =
            BpfHashMap::try_from(ebpf.take_map(RESERVATIONS_MAP).ok_or_else(|| missing(RESERVATIONS_MAP))?)
                .map_err(map_err(RESERVATIONS_MAP))?;
        let relays = LpmTrie::try_from(ebpf.take_map(RELAYS_MAP).ok_or_else(|| missing(RELAYS_MAP))?)
            .map_err(map_err(RELAYS_MAP))?;
        let settings = Array::try_from(ebpf.take_map(SETTINGS_MAP).ok_or_else(|| missing(SETTINGS_MAP))?)
            .map_err(map_err(SETTINGS_MAP))?;
        let events = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).ok_or_else(|| missing(EVENTS_MAP))?)
            .map_err(map_err(EVENTS_MAP))?;
        let sync = Self {
            leases,
            subnets,
            reservations,
            relays,
            settings,
            skipped_full: 0,
            coverage: crate::coverage::Coverage::default(),
            reservations_left: Vec::new(),
            res_base: HashMap::new(),
            res_by_addr: HashMap::new(),
            res_by_who: HashMap::new(),
            relevant: HashMap::new(),
            who_leases: HashMap::new(),
            clients: HashMap::new(),
            lease_ids: HashMap::new(),
            relay_keys: BTreeSet::new(),
            loaded: 0,
        };
        Ok((sync, events))
    }

    /// The report of what each install leaves to the daemon (shared: the
    /// API reads it while the kernel-sync task owns the maps).
    pub fn coverage(&self) -> crate::coverage::Coverage {
        self.coverage.clone()
    }

    /// Writes the clock offset (at start-up and periodically, in case the
    /// wall clock is stepped).
    pub fn set_clock(&mut self) -> Result<(), SyncError> {
        self.settings.set(0, Settings { unix_minus_boot_ns: crate::clock::unix_minus_boot_ns() }, 0).map_err(map_err(SETTINGS_MAP))
    }

    /// [`MapSync::install_subnets_scoped`] with every subnet either fully
    /// served or not at all.
    pub fn install_subnets(
        &mut self,
        policy: &Policy,
        ifaces: &[Interface],
        serving: impl Fn(&SubnetPolicy) -> bool,
    ) -> Result<Vec<(u32, NotEligible)>, SyncError> {
        self.install_subnets_scoped(policy, ifaces, |s| {
            if serving(s) { SubnetServing::All } else { SubnetServing::Off }
        })
    }

    /// Replaces every subnet template, the relay map and every reservation
    /// template (start-up, config reload, every HA transition), each with
    /// its subnet's HA scope. Returns the subnets without any template (the
    /// daemon answers all their clients) and why.
    pub fn install_subnets_scoped(
        &mut self,
        policy: &Policy,
        ifaces: &[Interface],
        serving: impl Fn(&SubnetPolicy) -> SubnetServing,
    ) -> Result<Vec<(u32, NotEligible)>, SyncError> {
        let now = crate::clock::unix_now();
        let missing = self.install_reservations(policy, ifaces, &|s: &SubnetPolicy| serving(s).bits());
        let mut left = Vec::new();
        let mut keep = HashSet::new();
        for s in &policy.subnets {
            let bits = serving(s).bits();
            let mut why = None;
            for iface in ifaces {
                let key = SubnetKey { subnet_id: s.id, ifindex: iface.index };
                match subnet_reply(policy, s, iface, bits, now) {
                    Ok(mut r) => {
                        if missing.contains(&key) {
                            r.cid_pass |= CID_PASS_MISSING;
                        }
                        self.subnets.insert(key, r, 0).map_err(map_err(SUBNETS_MAP))?;
                        keep.insert(key);
                    }
                    Err(e) => why = why.or(Some(e)),
                }
            }
            if !keep.iter().any(|k| k.subnet_id == s.id) {
                left.push((s.id, why.unwrap_or(NotEligible::NoInterface)));
            }
        }
        let stale: Vec<SubnetKey> = self.subnets.keys().filter_map(Result::ok).filter(|k| !keep.contains(k)).collect();
        for k in stale {
            let _ = self.subnets.remove(&k);
        }
        self.install_relays(policy)?;
        let installed = self.res_by_who.keys().flat_map(|who| {
            self.res_by_who[who].iter().filter_map(|k| Some((self.res_base.get(k)?.0.subnet_id, who.clone())))
        });
        let installed = installed.collect();
        let left_res = self.reservations_left.iter().map(|(s, who, _, _, why)| (*s, who, why));
        self.coverage.set(crate::coverage::DaemonOnly::count(&left, left_res, &installed));
        Ok(left)
    }

    /// Rewrites only the `serving` bits of every installed subnet and
    /// reservation entry, for an HA transition or `dhcp-disable`/`-enable`:
    /// neither the templates nor the lease map depend on who serves, so a
    /// transition costs a read and a write per template, however many
    /// leases the store holds (a full [`MapSync::install_subnets_scoped`]
    /// plus [`MapSync::load_all`] took seconds with a million leases).
    pub fn set_serving(&mut self, policy: &Policy, serving: impl Fn(&SubnetPolicy) -> SubnetServing) -> Result<(), SyncError> {
        let bits = |id: u32| policy.subnet(id).map_or(0, |s| serving(s).bits());
        let keys: Vec<SubnetKey> = self.subnets.keys().filter_map(Result::ok).collect();
        for k in keys {
            let Ok(mut r) = self.subnets.get(&k, 0) else { continue };
            let b = bits(k.subnet_id);
            if r.serving != b {
                r.serving = b;
                self.subnets.insert(k, r, 0).map_err(map_err(SUBNETS_MAP))?;
            }
        }
        let mut changed = Vec::new();
        for (k, (e, _)) in &mut self.res_base {
            let b = bits(e.subnet_id);
            if e.reply.serving != b {
                e.reply.serving = b;
                changed.push(*k);
            }
        }
        for k in changed {
            self.refresh_reservation(k);
        }
        Ok(())
    }

    /// Rewrites the relay map from the policy.
    fn install_relays(&mut self, policy: &Policy) -> Result<(), SyncError> {
        let want = relay_entries(policy);
        for k in self.relay_keys.iter().filter(|k| !want.contains_key(k)) {
            let _ = self.relays.remove(&LpmKey::new(k.0, k.1));
        }
        self.relay_keys.clear();
        for (&(len, addr), &id) in &want {
            self.relays.insert(&LpmKey::new(len, addr), id, 0).map_err(map_err(RELAYS_MAP))?;
            self.relay_keys.insert((len, addr));
        }
        Ok(())
    }

    /// Replaces every reservation template (with the subnets': same
    /// moments, same scope), keeping the store's state already known: one
    /// entry per reservation, serving interface and way of arriving
    /// (directly on the subnet's link, or relayed). Returns the (subnet,
    /// interface) pairs where some client-id reservation has no entry.
    fn install_reservations(
        &mut self,
        policy: &Policy,
        ifaces: &[Interface],
        serving: &impl Fn(&SubnetPolicy) -> u32,
    ) -> HashSet<SubnetKey> {
        let mut missing = HashSet::new();
        let now = crate::clock::unix_now();
        self.res_base.clear();
        self.res_by_addr.clear();
        self.res_by_who.clear();
        self.reservations_left.clear();
        for s in &policy.subnets {
            let bits = serving(s);
            let by_mac = s.by_hwaddr.iter().filter_map(|(m, r)| Some((ResId::Mac(m.as_slice().try_into().ok()?), r)));
            let by_cid = s.by_client_id.iter().map(|(c, r)| (ResId::ClientId(c.clone()), r));
            let all: Vec<(ResId, &Reservation)> = by_cid.chain(by_mac).collect();
            for iface in ifaces {
                // Received directly, only the subnet's link selects it.
                let ways = if is_link(policy, s, iface) { &[0, s.id][..] } else { &[s.id][..] };
                for &relay_subnet in ways {
                    let mut group = Vec::new();
                    let mut cid_missing = false;
                    for (who, r) in &all {
                        match reservation_entry(policy, s, who, r, iface, relay_subnet, bits, now) {
                            Ok(ke) => group.push((who.clone(), r.address, ke)),
                            Err(why) => {
                                cid_missing |= matches!(who, ResId::ClientId(_));
                                self.reservations_left.push((s.id, who.clone(), iface.index, relay_subnet, why));
                            }
                        }
                    }
                    if cid_missing {
                        missing.insert(SubnetKey { subnet_id: s.id, ifindex: iface.index });
                    }
                    for (who, addr, (k, mut e)) in group {
                        // A client-id the kernel lacks could be any
                        // requester's: MAC entries then pass option 61.
                        e.reply.cid_pass = if cid_missing { CID_PASS_MISSING } else { 0 };
                        self.res_by_addr.entry(addr).or_default().push(k);
                        self.res_by_who.entry(who).or_default().push(k);
                        self.res_base.insert(k, (e, s.match_client_id));
                    }
                }
            }
        }
        let stale: Vec<ReservationKey> =
            self.reservations.keys().filter_map(Result::ok).filter(|k| !self.res_base.contains_key(k)).collect();
        for k in stale {
            let _ = self.reservations.remove(&k);
        }
        let keys: Vec<ReservationKey> = self.res_base.keys().copied().collect();
        for k in keys {
            self.refresh_reservation(k);
        }
        missing
    }

    /// Writes the entry of reservation `k`: template plus the store's state.
    fn refresh_reservation(&mut self, k: ReservationKey) {
        let Some((base, match_cid)) = self.res_base.get(&k) else { return };
        let who = ResId::of_key(&k);
        let at = self.relevant.get(&Ipv4Addr::from(base.addr));
        let held = self.who_leases.get(&who).into_iter().flatten().filter_map(|a| self.relevant.get(a));
        let e = with_store_state(*base, &who, *match_cid, at, held);
        if self.reservations.insert(k, e, 0).is_err() {
            // Full: the daemon serves this client.
            self.skipped_full += 1;
            let _ = self.reservations.remove(&k);
        }
    }

    /// Records the store's lease of `addr` if it matters to a reservation,
    /// and rewrites the reservations it (or the lease it replaced) touches.
    fn track(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        let mut whos = Vec::new();
        if let Some(old) = self.relevant.remove(&addr) {
            for w in identities(&old) {
                if let Some(set) = self.who_leases.get_mut(&w) {
                    set.remove(&addr);
                }
                whos.push(w);
            }
        }
        if let Some(l) = lease.filter(|l| matters_to_reservations(policy, l)) {
            for w in identities(l) {
                self.who_leases.entry(w.clone()).or_default().insert(addr);
                whos.push(w);
            }
            self.relevant.insert(addr, l.clone());
        }
        let mut keys: HashSet<ReservationKey> = self.res_by_addr.get(&addr).into_iter().flatten().copied().collect();
        for w in whos {
            keys.extend(self.res_by_who.get(&w).into_iter().flatten().copied());
        }
        for k in keys {
            self.refresh_reservation(k);
        }
    }

    /// Every reservation entry (tests, status page).
    pub fn reservation_entries(&self) -> Vec<(ReservationKey, ReservationEntry)> {
        self.reservations.iter().filter_map(Result::ok).collect()
    }

    /// Whether the lease at `addr` is its client's only one in its subnet
    /// (no other lease shares its MAC or client-id).
    fn is_sole(&self, addr: Ipv4Addr) -> bool {
        self.lease_ids.get(&addr).into_iter().flatten().all(|c| self.clients.get(c).is_none_or(|set| set.len() == 1))
    }

    /// Updates the identity index for the lease at `addr`; returns the
    /// other addresses whose `sole` may have changed.
    fn index_client(&mut self, addr: Ipv4Addr, lease: Option<&Lease>) -> BTreeSet<Ipv4Addr> {
        let mut touched = BTreeSet::new();
        for c in self.lease_ids.remove(&addr).unwrap_or_default() {
            if let Some(set) = self.clients.get_mut(&c) {
                set.remove(&addr);
                touched.extend(set.iter().copied());
                if set.is_empty() {
                    self.clients.remove(&c);
                }
            }
        }
        if let Some(l) = lease {
            let ids: Vec<ClientIn> = identities(l).into_iter().map(|w| (l.subnet_id, w)).collect();
            for c in &ids {
                let set = self.clients.entry(c.clone()).or_default();
                touched.extend(set.iter().copied());
                set.insert(addr);
            }
            self.lease_ids.insert(addr, ids);
        }
        touched.remove(&addr);
        touched
    }

    /// Makes the map entry of `addr` match `lease` (present or gone), and
    /// the reservation entries and other leases' `sole` that lease concerns.
    pub fn sync_lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        self.track(policy, addr, lease);
        let touched = self.index_client(addr, lease);
        self.write_lease(addr, lease.and_then(|l| lease_entry(policy, l)));
        // Read-modify-write of `sole` only: the kernel may have extended
        // `expire` meanwhile, and its event will reach the store.
        for other in touched {
            let key = LeaseKey { addr: other.octets() };
            if let Ok(mut e) = self.leases.get(&key, 0) {
                let sole = u8::from(self.is_sole(other));
                if e.sole != sole {
                    e.sole = sole;
                    let _ = self.leases.insert(key, e, 0);
                }
            }
        }
    }

    fn write_lease(&mut self, addr: Ipv4Addr, entry: Option<LeaseEntry>) {
        let key = LeaseKey { addr: addr.octets() };
        match entry {
            Some(mut e) => {
                e.sole = u8::from(self.is_sole(addr));
                if self.leases.insert(key, e, 0).is_err() {
                    self.skipped_full += 1;
                    let _ = self.leases.remove(&key);
                }
            }
            None => {
                let _ = self.leases.remove(&key);
            }
        }
    }

    /// Loads every lease at once (the tests; the daemon sweeps the store a
    /// page at a time, [`crate::kernel`]): entries not in `leases`
    /// are removed.
    pub fn load_all(&mut self, policy: &Policy, leases: &[Lease]) {
        // At start-up the map is empty: no set of a million addresses to
        // compare it with.
        let present: Vec<LeaseKey> = self.leases.keys().filter_map(Result::ok).collect();
        if !present.is_empty() {
            let want: HashSet<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
            for k in present.iter().filter(|k| !want.contains(&Ipv4Addr::from(k.addr))) {
                let _ = self.leases.remove(k);
            }
        }
        self.relevant.clear();
        self.who_leases.clear();
        self.clients.clear();
        self.lease_ids.clear();
        self.clients.reserve(leases.len());
        self.lease_ids.reserve(leases.len());
        for l in leases {
            self.track(policy, l.address, Some(l));
            self.index_client(l.address, Some(l));
        }
        self.loaded = 0;
        for l in leases {
            let full = self.skipped_full;
            let entry = lease_entry(policy, l);
            let written = entry.is_some();
            self.write_lease(l.address, entry);
            self.loaded += usize::from(written && self.skipped_full == full);
        }
        // Reservations whose address and client have no lease at all.
        let keys: Vec<ReservationKey> = self.res_base.keys().copied().collect();
        for k in keys {
            self.refresh_reservation(k);
        }
    }

    /// Lease entries the last [`MapSync::load_all`] left in the map (the
    /// start-up log; counting the map itself costs two syscalls an entry).
    pub fn loaded(&self) -> usize {
        self.loaded
    }

    /// Every lease entry (for the consistency test and the status page).
    pub fn lease_entries(&self) -> Vec<(Ipv4Addr, LeaseEntry)> {
        self.leases.iter().filter_map(Result::ok).map(|(k, v)| (Ipv4Addr::from(k.addr), v)).collect()
    }
}
