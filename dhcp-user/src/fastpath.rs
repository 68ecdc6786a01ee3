//! Keeping the kernel's copy in step with the daemon: the lease map, the
//! per-subnet reply templates, the reservation map, the clock offset, and
//! the ring buffer of ACKs the kernel sent.
//!
//! The reply template of a subnet is produced by the engine itself — a
//! synthetic renewal is decided and encoded exactly as a real one would be
//! — so the kernel's ACK equals the daemon's byte for byte by construction,
//! and the unit tests check the split and the pass rules. Leases the kernel
//! could not answer identically (reserved clients, addresses reserved for
//! someone else, long client-ids, subnets with pool-level options or boot
//! fields) are left out of the lease map: those clients are served by the
//! daemon.
//!
//! Reserved clients (by MAC) get a template of their own, probed the same
//! way (a DISCOVER from the reserved MAC: the engine's OFFER of the
//! reserved address, with its hostname and reservation options); the
//! kernel turns it into the ACK. Each entry also says whether the store
//! holds anything that would change the daemon's answer (the reserved
//! address held by someone else, the client holding another address), kept
//! in step by [`MapSync::sync_lease`], which sees every store change.
//! Client-id reservations stay with the daemon.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    net::Ipv4Addr,
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use dhcp_common::fastpath::{
    EVENT_RESERVED_ACK, EVENTS_MAP, LEASES_MAP, LeaseEntry, LeaseKey, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL,
    RESERVATIONS_MAP, RenewEvent, ReservationEntry, ReservationKey, SETTINGS_MAP, SUBNETS_MAP, Settings, SubnetReply,
    word_sum,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use crate::{
    dhcp::{
        engine::{self, Allocator, Ctx, Held, HeldState, LeaseView, NewLease},
        inbound,
        policy::{Policy, Reservation, SubnetPolicy},
    },
    leases::{Lease, LeaseState},
    net::Interface,
};

/// A hardware address no real client has (locally administered, all
/// bits set): the synthetic client of a template.
const PROBE_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xfe];

/// The interface a subnet is served on, as the daemon selects it for
/// directly connected clients.
pub fn serving_interface<'a>(subnet: &SubnetPolicy, ifaces: &'a [Interface]) -> Option<&'a Interface> {
    ifaces.iter().find(|i| subnet.interface.as_deref() == Some(i.name.as_str())).or_else(|| {
        ifaces.iter().find(|i| subnet.interface.is_none() && i.addrs.iter().any(|(a, _)| subnet.contains(*a)))
    })
}

struct OneLease(Held);

impl LeaseView for OneLease {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        (a == self.0.address).then(|| self.0.clone())
    }
    fn by_hwaddr(&self, _: u32, hw: &[u8]) -> Option<Held> {
        (hw == self.0.hwaddr).then(|| self.0.clone())
    }
    fn by_client_id(&self, _: u32, _: &[u8]) -> Option<Held> {
        None
    }
}

struct NoLeases;

impl LeaseView for NoLeases {
    fn by_address(&self, _: Ipv4Addr) -> Option<Held> {
        None
    }
    fn by_hwaddr(&self, _: u32, _: &[u8]) -> Option<Held> {
        None
    }
    fn by_client_id(&self, _: u32, _: &[u8]) -> Option<Held> {
        None
    }
}

/// Option codes the engine never adds because a client asked for them.
const SERVER_MANAGED: [u8; 6] = [51, 53, 54, 58, 59, 61];

/// The ACK the engine sends to a renewing client of `subnet` (no client-id,
/// no parameter request list), received on `iface`.
pub fn probe_ack(policy: &Policy, subnet: &SubnetPolicy, iface: &Interface, now: u64) -> Option<Message> {
    let server_id = iface.primary_ipv4()?;
    let addr = subnet.pools.first()?.start;
    let mut m = Message::new(addr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &PROBE_MAC);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    let req = inbound::classify(&m.to_vec().ok()?).ok()?;
    let held = Held {
        address: addr,
        subnet_id: subnet.id,
        hwaddr: PROBE_MAC.to_vec(),
        client_id: None,
        expire: now + 3600,
        state: HeldState::Active,
    };
    let d = engine::decide(&req, Some(subnet), policy, &OneLease(held), &mut Allocator::default(), Ctx { now, server_id });
    let (msg, _) = d.reply?;
    (msg.opts().msg_type() == Some(MessageType::Ack)).then_some(msg)
}

/// Splits encoded options at code 61: (codes below, codes above + END).
fn split_options(opts: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1,
            255 => return Some((opts[..i].to_vec(), opts[i..].to_vec())),
            code => {
                let len = *opts.get(i + 1)? as usize;
                if code > 61 {
                    return Some((opts[..i].to_vec(), opts[i..].to_vec()));
                }
                if code == 61 {
                    return None; // the probe sends no client-id: cannot happen
                }
                i += 2 + len;
            }
        }
    }
    None
}

/// Why a subnet gets no template (served by the daemon only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotEligible {
    /// No interface of ours is on the subnet.
    NoInterface,
    /// Pools override options: the reply depends on the address.
    PoolOptions,
    /// Boot fields (sname/file) are configured.
    BootFields,
    /// No pool to probe, or the engine would not ACK the probe.
    NoProbe,
    /// The options do not fit the kernel's buffer.
    TooLarge,
}

/// The kernel template of `subnet`, or why it has none.
pub fn subnet_reply(
    policy: &Policy,
    subnet: &SubnetPolicy,
    ifaces: &[Interface],
    serving: bool,
    now: u64,
) -> Result<SubnetReply, NotEligible> {
    let iface = serving_interface(subnet, ifaces).ok_or(NotEligible::NoInterface)?;
    if subnet.pools.iter().any(|p| !p.options.is_empty() && p.options != subnet.options) {
        return Err(NotEligible::PoolOptions);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    let ack = probe_ack(policy, subnet, iface, now).ok_or(NotEligible::NoProbe)?;
    // Option 12 is only sent to reserved clients, who are not in the map.
    let may_add = subnet.options.keys().chain(subnet.by_hwaddr.values().flat_map(|r| r.options.keys()));
    reply_template(&ack, subnet, iface, serving, may_add.copied())
}

/// The kernel template of the engine's reply `msg`: its options split at
/// code 61 (where the client-id echo goes) with their checksum sums, and a
/// pass bit for every code in `may_add` the reply lacks (a client asking
/// for one of those gets a different reply from the daemon).
fn reply_template(
    msg: &Message,
    subnet: &SubnetPolicy,
    iface: &Interface,
    serving: bool,
    may_add: impl Iterator<Item = u8>,
) -> Result<SubnetReply, NotEligible> {
    let bytes = msg.to_vec().map_err(|_| NotEligible::NoProbe)?;
    let (head, tail) = split_options(&bytes[inbound::MIN_LEN..]).ok_or(NotEligible::NoProbe)?;
    if head.is_empty() || head.len() > MAX_HEAD || tail.len() > MAX_TAIL {
        return Err(NotEligible::TooLarge);
    }
    let sent: BTreeSet<u8> = msg.opts().iter().map(|(c, _)| u8::from(*c)).collect();
    let mut prl_pass = [0u8; 32];
    for code in may_add.filter(|c| !sent.contains(c)) {
        prl_pass[usize::from(code >> 3)] |= 1 << (code & 7);
    }
    let mut head_bytes = [0u8; MAX_HEAD];
    head_bytes[..head.len()].copy_from_slice(&head);
    let mut tail_bytes = [0u8; MAX_TAIL];
    tail_bytes[..tail.len()].copy_from_slice(&tail);
    Ok(SubnetReply {
        ifindex: iface.index,
        serving: u32::from(serving),
        server_ip: iface.primary_ipv4().map(|a| a.octets()).unwrap_or_default(),
        server_mac: iface.mac,
        _pad_mac: [0; 2],
        next_server: subnet.next_server.octets(),
        lease_time: subnet.lifetimes.lease_times(None).valid,
        match_client_id: u32::from(subnet.match_client_id),
        echo_client_id: u32::from(subnet.echo_client_id),
        head_len: head.len() as u32,
        tail_len: tail.len() as u32,
        head_sum: word_sum(&head),
        tail_sum: word_sum(&tail),
        _pad: 0,
        prl_pass,
        head: head_bytes,
        tail: tail_bytes,
    })
}

/// The OFFER the engine sends to the reserved client `mac` of `subnet` on
/// `iface` (DISCOVER without options, nothing in the store).
pub fn probe_offer(policy: &Policy, subnet: &SubnetPolicy, iface: &Interface, mac: [u8; 6], now: u64) -> Option<Message> {
    let server_id = iface.primary_ipv4()?;
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new(u, u, u, u, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    let req = inbound::classify(&m.to_vec().ok()?).ok()?;
    let d = engine::decide(&req, Some(subnet), policy, &NoLeases, &mut Allocator::default(), Ctx { now, server_id });
    let (msg, _) = d.reply?;
    (msg.opts().msg_type() == Some(MessageType::Offer)).then_some(msg)
}

/// Offset of option 53's value byte in `head`.
fn type_offset(head: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < head.len() {
        match head[i] {
            0 => i += 1,
            53 => return Some(i + 2),
            _ => i += 2 + head[i + 1] as usize,
        }
    }
    None
}

/// The kernel entry of the reservation of `mac` in `subnet` (with `clean`
/// and `held` still to be filled from the store), or why it has none.
pub fn reservation_entry(
    policy: &Policy,
    subnet: &SubnetPolicy,
    mac: &[u8],
    r: &Reservation,
    ifaces: &[Interface],
    serving: bool,
    now: u64,
) -> Result<(ReservationKey, ReservationEntry), NotEligible> {
    let mac: [u8; 6] = mac.try_into().map_err(|_| NotEligible::NoProbe)?;
    let iface = serving_interface(subnet, ifaces).ok_or(NotEligible::NoInterface)?;
    // Broadcast requests on the interface select their subnet by it.
    if policy.subnet_for_interface(&iface.name, &iface.addrs).map(|s| s.id) != Some(subnet.id) {
        return Err(NotEligible::NoInterface);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    let offer = probe_offer(policy, subnet, iface, mac, now).ok_or(NotEligible::NoProbe)?;
    if offer.yiaddr() != r.address {
        return Err(NotEligible::NoProbe);
    }
    let pool = subnet.pool_of(r.address).map(|p| &p.options);
    let may_add = subnet.options.keys().chain(pool.into_iter().flat_map(|o| o.keys())).chain(r.options.keys());
    let reply =
        reply_template(&offer, subnet, iface, serving, may_add.copied().filter(|c| !SERVER_MANAGED.contains(c)))?;
    let type_off = type_offset(&reply.head[..reply.head_len as usize]).ok_or(NotEligible::NoProbe)?;
    let key = ReservationKey { mac, _pad: [0; 2], ifindex: iface.index };
    let entry = ReservationEntry {
        addr: r.address.octets(),
        subnet_id: subnet.id,
        type_off: type_off as u32,
        clean: 0,
        held: 0,
        authoritative: u32::from(subnet.authoritative),
        client_hostname: u32::from(r.hostname.is_none()),
        cid_reservations: u32::from(!subnet.by_client_id.is_empty()),
        held_cid_len: 0,
        _pad: 0,
        held_cid: [0; MAX_CLIENT_ID],
        reply,
    };
    Ok((key, entry))
}

/// Fills `clean`, `held` and `held_cid` of a reservation entry from the
/// store's lease of its address and the leases its MAC holds in its subnet.
fn with_store_state<'a>(
    mut e: ReservationEntry,
    mac: &[u8; 6],
    at_addr: Option<&Lease>,
    mac_leases: impl Iterator<Item = &'a Lease>,
) -> ReservationEntry {
    let addr = Ipv4Addr::from(e.addr);
    let mut clean = true;
    e.held = 0;
    e.held_cid_len = 0;
    e.held_cid = [0; MAX_CLIENT_ID];
    if let Some(l) = at_addr {
        let mine = l.state != LeaseState::Declined && l.hwaddr.as_ref().is_some_and(|h| h.bytes() == mac);
        let cid = l.client_id.as_ref().map(|c| c.bytes()).unwrap_or_default();
        if mine && cid.len() <= MAX_CLIENT_ID {
            e.held = 1;
            e.held_cid_len = cid.len() as u32;
            e.held_cid[..cid.len()].copy_from_slice(cid);
        } else {
            clean = false; // someone else's (or declined): the daemon decides
        }
    }
    // The client holding another address: the daemon NAKs an INIT-REBOOT.
    if mac_leases.into_iter().any(|l| l.address != addr && l.subnet_id == e.subnet_id && l.state == LeaseState::Default) {
        clean = false;
    }
    e.clean = u32::from(clean);
    e
}

/// The lease the daemon's engine would have written for a reserved ACK
/// the kernel sent, given the store's current lease of that address;
/// `None` for other events, unknown reservations, stale events, or an
/// address someone else took meanwhile (the daemon answered them).
pub fn reserved_lease(policy: &Policy, ev: &RenewEvent, current: Option<&Lease>, now: u64) -> Option<Lease> {
    if ev.kind != EVENT_RESERVED_ACK {
        return None;
    }
    if let Some(c) = current {
        let theirs = c.hwaddr.as_ref().is_none_or(|h| h.bytes() != ev.mac);
        if theirs && c.state == LeaseState::Default && !c.is_expired(now) {
            return None;
        }
        if !theirs && c.expire > ev.expire {
            return None;
        }
    }
    let subnet = policy.subnet(ev.subnet_id)?;
    let r = subnet.by_hwaddr.get(&ev.mac[..])?;
    let cid_len = usize::from(ev.client_id_len).min(MAX_CLIENT_ID);
    let n = NewLease {
        address: Ipv4Addr::from(ev.addr),
        subnet_id: ev.subnet_id,
        htype: 1,
        hwaddr: ev.mac.to_vec(),
        client_id: (cid_len > 0).then(|| ev.client_id[..cid_len].to_vec()),
        valid_lifetime: ev.valid_lifetime,
        expire: ev.expire,
        hostname: r.hostname.clone().unwrap_or_default(),
        state: HeldState::Active,
    };
    Some(crate::glue::to_lease(&n))
}

/// The map entry of `lease`, or `None` when the kernel must not answer its
/// client (see the module docs).
pub fn lease_entry(policy: &Policy, lease: &Lease) -> Option<LeaseEntry> {
    if lease.state != LeaseState::Default {
        return None;
    }
    let subnet = policy.subnet(lease.subnet_id)?;
    let hw = lease.hwaddr.as_ref()?.bytes();
    let cid = lease.client_id.as_ref().map(|c| c.bytes()).unwrap_or_default();
    if hw.len() > 16 || cid.len() > MAX_CLIENT_ID {
        return None;
    }
    // A reserved client is steered by the daemon; a reserved address held
    // by someone else is NAKed by it.
    if subnet.reserved.contains_key(&lease.address)
        || subnet.by_hwaddr.contains_key(hw)
        || (!cid.is_empty() && subnet.by_client_id.contains_key(cid))
    {
        return None;
    }
    let mut e = LeaseEntry {
        expire: lease.expire,
        subnet_id: lease.subnet_id,
        hlen: hw.len() as u8,
        client_id_len: cid.len() as u8,
        _pad: [0; 2],
        hwaddr: [0; 16],
        client_id: [0; MAX_CLIENT_ID],
    };
    e.hwaddr[..hw.len()].copy_from_slice(hw);
    e.client_id[..cid.len()].copy_from_slice(cid);
    Some(e)
}

/// Unix time minus `CLOCK_BOOTTIME`, in seconds.
pub fn unix_minus_boot() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    crate::server::unix_now() as i64 - ts.tv_sec
}

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

/// The one owner of the fast-path map handles.
pub struct MapSync {
    leases: BpfHashMap<MapData, LeaseKey, LeaseEntry>,
    subnets: BpfHashMap<MapData, u32, SubnetReply>,
    reservations: BpfHashMap<MapData, ReservationKey, ReservationEntry>,
    settings: Array<MapData, Settings>,
    /// Leases the map could not take (full); served by the daemon.
    pub skipped_full: u64,
    /// Reservations left to the daemon at the last install, and why
    /// (subnet id, MAC).
    pub reservations_left: Vec<(u32, Vec<u8>, NotEligible)>,
    /// Installed reservation templates, before the store's state is added.
    res_base: HashMap<ReservationKey, ReservationEntry>,
    res_by_addr: HashMap<Ipv4Addr, Vec<ReservationKey>>,
    res_by_mac: HashMap<[u8; 6], Vec<ReservationKey>>,
    /// The store's leases that matter to reservations (at a reserved
    /// address, or held by a reserved MAC), and those by MAC.
    relevant: HashMap<Ipv4Addr, Lease>,
    mac_leases: HashMap<[u8; 6], BTreeSet<Ipv4Addr>>,
}

fn mac6(l: &Lease) -> Option<[u8; 6]> {
    l.hwaddr.as_ref()?.bytes().try_into().ok()
}

/// Whether `l` can change what the daemon answers a reserved client.
fn matters_to_reservations(policy: &Policy, l: &Lease) -> bool {
    policy.subnet(l.subnet_id).is_some_and(|s| {
        s.reserved.contains_key(&l.address) || l.hwaddr.as_ref().is_some_and(|h| s.by_hwaddr.contains_key(h.bytes()))
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
        let settings = Array::try_from(ebpf.take_map(SETTINGS_MAP).ok_or_else(|| missing(SETTINGS_MAP))?)
            .map_err(map_err(SETTINGS_MAP))?;
        let events = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).ok_or_else(|| missing(EVENTS_MAP))?)
            .map_err(map_err(EVENTS_MAP))?;
        let sync = Self {
            leases,
            subnets,
            reservations,
            settings,
            skipped_full: 0,
            reservations_left: Vec::new(),
            res_base: HashMap::new(),
            res_by_addr: HashMap::new(),
            res_by_mac: HashMap::new(),
            relevant: HashMap::new(),
            mac_leases: HashMap::new(),
        };
        Ok((sync, events))
    }

    /// Writes the clock offset (at start-up and periodically, in case the
    /// wall clock is stepped).
    pub fn set_clock(&mut self) -> Result<(), SyncError> {
        self.settings.set(0, Settings { unix_minus_boot: unix_minus_boot() }, 0).map_err(map_err(SETTINGS_MAP))
    }

    /// Replaces every subnet template (start-up, config reload, HA state
    /// change). Returns the subnets left to the daemon and why.
    pub fn install_subnets(
        &mut self,
        policy: &Policy,
        ifaces: &[Interface],
        serving: impl Fn(&SubnetPolicy) -> bool,
    ) -> Result<Vec<(u32, NotEligible)>, SyncError> {
        let now = crate::server::unix_now();
        let mut left = Vec::new();
        let keep: BTreeSet<u32> = policy.subnets.iter().map(|s| s.id).collect();
        let stale: Vec<u32> = self.subnets.keys().filter_map(Result::ok).filter(|k| !keep.contains(k)).collect();
        for k in stale {
            let _ = self.subnets.remove(&k);
        }
        for s in &policy.subnets {
            match subnet_reply(policy, s, ifaces, serving(s), now) {
                Ok(r) => self.subnets.insert(s.id, r, 0).map_err(map_err(SUBNETS_MAP))?,
                Err(why) => {
                    let _ = self.subnets.remove(&s.id);
                    left.push((s.id, why));
                }
            }
        }
        self.install_reservations(policy, ifaces, &serving);
        Ok(left)
    }

    /// Replaces every reservation template (with the subnets': same
    /// moments, same `serving`), keeping the store's state already known.
    fn install_reservations(&mut self, policy: &Policy, ifaces: &[Interface], serving: &impl Fn(&SubnetPolicy) -> bool) {
        let now = crate::server::unix_now();
        self.res_base.clear();
        self.res_by_addr.clear();
        self.res_by_mac.clear();
        self.reservations_left.clear();
        for s in &policy.subnets {
            for (mac, r) in &s.by_hwaddr {
                match reservation_entry(policy, s, mac, r, ifaces, serving(s), now) {
                    Ok((k, e)) => {
                        self.res_by_addr.entry(r.address).or_default().push(k);
                        self.res_by_mac.entry(k.mac).or_default().push(k);
                        self.res_base.insert(k, e);
                    }
                    Err(why) => self.reservations_left.push((s.id, mac.clone(), why)),
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
    }

    /// Writes the entry of reservation `k`: template plus the store's state.
    fn refresh_reservation(&mut self, k: ReservationKey) {
        let Some(base) = self.res_base.get(&k) else { return };
        let at = self.relevant.get(&Ipv4Addr::from(base.addr));
        let held = self.mac_leases.get(&k.mac).into_iter().flatten().filter_map(|a| self.relevant.get(a));
        let e = with_store_state(*base, &k.mac, at, held);
        if self.reservations.insert(k, e, 0).is_err() {
            // Full: the daemon serves this client.
            self.skipped_full += 1;
            let _ = self.reservations.remove(&k);
        }
    }

    /// Records the store's lease of `addr` if it matters to a reservation,
    /// and rewrites the reservations it (or the lease it replaced) touches.
    fn track(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        let mut macs = Vec::new();
        if let Some(old) = self.relevant.remove(&addr)
            && let Some(m) = mac6(&old)
        {
            if let Some(set) = self.mac_leases.get_mut(&m) {
                set.remove(&addr);
            }
            macs.push(m);
        }
        if let Some(l) = lease.filter(|l| matters_to_reservations(policy, l)) {
            if let Some(m) = mac6(l) {
                self.mac_leases.entry(m).or_default().insert(addr);
                macs.push(m);
            }
            self.relevant.insert(addr, l.clone());
        }
        let mut keys: HashSet<ReservationKey> = self.res_by_addr.get(&addr).into_iter().flatten().copied().collect();
        for m in macs {
            keys.extend(self.res_by_mac.get(&m).into_iter().flatten().copied());
        }
        for k in keys {
            self.refresh_reservation(k);
        }
    }

    /// Every reservation entry (tests, status page).
    pub fn reservation_entries(&self) -> Vec<(ReservationKey, ReservationEntry)> {
        self.reservations.iter().filter_map(Result::ok).collect()
    }

    /// Makes the map entry of `addr` match `lease` (present or gone), and
    /// the reservation entries that lease concerns.
    pub fn sync_lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        self.track(policy, addr, lease);
        let key = LeaseKey { addr: addr.octets() };
        match lease.and_then(|l| lease_entry(policy, l)) {
            Some(e) => {
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

    /// Loads every lease (start-up, config reload): entries not in `leases`
    /// are removed.
    pub fn load_all(&mut self, policy: &Policy, leases: &[Lease]) {
        let want: BTreeSet<[u8; 4]> = leases.iter().map(|l| l.address.octets()).collect();
        let stale: Vec<LeaseKey> =
            self.leases.keys().filter_map(Result::ok).filter(|k| !want.contains(&k.addr)).collect();
        for k in stale {
            let _ = self.leases.remove(&k);
        }
        self.relevant.clear();
        self.mac_leases.clear();
        for l in leases {
            self.sync_lease(policy, l.address, Some(l));
        }
        // Reservations whose address and MAC have no lease at all.
        let keys: Vec<ReservationKey> = self.res_base.keys().copied().collect();
        for k in keys {
            self.refresh_reservation(k);
        }
    }

    /// Every lease entry (for the consistency test and the status page).
    pub fn lease_entries(&self) -> Vec<(Ipv4Addr, LeaseEntry)> {
        self.leases.iter().filter_map(Result::ok).map(|(k, v)| (Ipv4Addr::from(k.addr), v)).collect()
    }
}

/// Decodes one ring-buffer record.
pub fn parse_event(bytes: &[u8]) -> Option<RenewEvent> {
    if bytes.len() < std::mem::size_of::<RenewEvent>() {
        return None;
    }
    // SAFETY: RenewEvent is Pod (any bytes valid); read_unaligned copes
    // with the ring buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RenewEvent>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, glue};

    fn venus_policy() -> Policy {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
        glue::compile(&config::parse(&text, "lobezno.json").unwrap())
    }

    fn eth0() -> Interface {
        Interface { name: "eth0".into(), index: 7, mac: [2, 0, 0, 0, 0x50, 2], addrs: vec![(Ipv4Addr::new(192, 168, 50, 2), 24)] }
    }

    #[test]
    fn template_is_the_engines_ack_split_at_61() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let r = subnet_reply(&p, s, &[eth0()], true, 1_800_000_000).unwrap();
        assert_eq!((r.ifindex, r.serving, r.server_ip), (7, 1, [192, 168, 50, 2]));
        assert_eq!(r.lease_time, 60);
        let head = &r.head[..r.head_len as usize];
        let tail = &r.tail[..r.tail_len as usize];
        assert_eq!(r.head_sum, dhcp_common::fastpath::word_sum(head));
        assert_eq!(tail, &[255], "venus has no option above 61");
        // Walk the head: codes ascending, all below 61, message type ACK.
        let mut codes = Vec::new();
        let mut i = 0;
        while i < head.len() {
            codes.push(head[i]);
            if head[i] == 53 {
                assert_eq!(head[i + 2], 5);
            }
            i += 2 + head[i + 1] as usize;
        }
        assert_eq!(codes, [1, 3, 6, 15, 51, 53, 54, 58, 59]);
    }

    #[test]
    fn no_interface_or_boot_fields_means_no_template() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let other = Interface { addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
        assert_eq!(subnet_reply(&p, s, &[other], true, 0).unwrap_err(), NotEligible::NoInterface);
        let mut s2 = s.clone();
        s2.boot_file_name = Some("pxelinux.0".into());
        assert_eq!(subnet_reply(&p, &s2, &[eth0()], true, 0).unwrap_err(), NotEligible::BootFields);
    }

    #[test]
    fn reserved_clients_and_addresses_stay_out_of_the_map() {
        use crate::leases::{ClientId, HwAddr};
        let p = venus_policy();
        let mk = |addr: [u8; 4], mac: [u8; 6]| {
            Lease::new(Ipv4Addr::from(addr), Some(HwAddr::ethernet(mac)), None, 1, 1_800_000_000, 60)
        };
        let dynamic = mk([192, 168, 50, 120], [2, 0, 0, 0, 0, 1]);
        let e = lease_entry(&p, &dynamic).unwrap();
        assert_eq!((e.hlen, e.subnet_id, e.expire), (6, 1, 1_800_000_060));
        assert_eq!(&e.hwaddr[..6], &[2, 0, 0, 0, 0, 1]);
        // mutante3 (reserved MAC) and its reserved address.
        assert!(lease_entry(&p, &mk([192, 168, 50, 33], [2, 0, 0, 0, 0, 3])).is_none());
        assert!(lease_entry(&p, &mk([192, 168, 50, 33], [2, 0, 0, 0, 0, 9])).is_none());
        // A long client-id, a declined lease, an unknown subnet.
        let mut long = dynamic.clone();
        long.client_id = Some(ClientId::new(vec![1; 40]).unwrap());
        assert!(lease_entry(&p, &long).is_none());
        let mut declined = dynamic.clone();
        declined.state = LeaseState::Declined;
        assert!(lease_entry(&p, &declined).is_none());
        let mut elsewhere = dynamic;
        elsewhere.subnet_id = 99;
        assert!(lease_entry(&p, &elsewhere).is_none());
    }

    #[test]
    fn reservation_template_is_the_engines_offer_with_hostname() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let (mac, r) = s.by_hwaddr.iter().next().unwrap();
        let (k, e) = reservation_entry(&p, s, mac, r, &[eth0()], true, 1_800_000_000).unwrap();
        assert_eq!((k.mac, k.ifindex), ([2, 0, 0, 0, 0, 3], 7));
        assert_eq!((Ipv4Addr::from(e.addr), e.subnet_id, e.authoritative, e.client_hostname), (r.address, 1, 1, 0));
        let head = &e.reply.head[..e.reply.head_len as usize];
        assert_eq!(head[e.type_off as usize], 2, "an OFFER; the kernel writes 5 for an ACK");
        assert_eq!(head[e.type_off as usize - 2], 53);
        assert!(head.windows(10).any(|w| w == b"\x0c\x08mutante3"), "hostname option 12");
        assert_eq!(e.reply.head_sum, word_sum(head));
        // A client on another interface's subnet: no entry.
        let other = Interface { addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
        assert_eq!(reservation_entry(&p, s, mac, r, &[other], true, 0).unwrap_err(), NotEligible::NoInterface);
    }

    #[test]
    fn reservation_is_clean_only_when_the_store_agrees() {
        use crate::leases::HwAddr;
        let p = venus_policy();
        let s = &p.subnets[0];
        let (mac, r) = s.by_hwaddr.iter().next().unwrap();
        let (k, e) = reservation_entry(&p, s, mac, r, &[eth0()], true, 0).unwrap();
        let mk = |addr: Ipv4Addr, mac: [u8; 6]| Lease::new(addr, Some(HwAddr::ethernet(mac)), None, 1, 1_800_000_000, 60);
        let free = with_store_state(e, &k.mac, None, std::iter::empty());
        assert_eq!((free.clean, free.held), (1, 0));
        let own = mk(r.address, k.mac);
        let held = with_store_state(e, &k.mac, Some(&own), [&own].into_iter());
        assert_eq!((held.clean, held.held), (1, 1));
        let theirs = mk(r.address, [2, 0, 0, 0, 0, 9]);
        assert_eq!(with_store_state(e, &k.mac, Some(&theirs), std::iter::empty()).clean, 0);
        let other = mk(Ipv4Addr::new(192, 168, 50, 150), k.mac);
        assert_eq!(with_store_state(e, &k.mac, None, [&other].into_iter()).clean, 0);
    }

    #[test]
    fn prl_pass_marks_configured_options_not_sent_by_default() {
        let mut p = venus_policy();
        let ntp = crate::dhcp::policy::OptionValue { data: vec![192, 168, 50, 9], always_send: false };
        p.subnets[0].options.insert(42, ntp.clone());
        // Pools carry effective options: a subnet-level change shows there too.
        p.subnets[0].pools[0].options.insert(42, ntp);
        let r = subnet_reply(&p, &p.subnets[0], &[eth0()], true, 0).unwrap();
        let bit = |c: u8| r.prl_pass[usize::from(c >> 3)] & (1 << (c & 7)) != 0;
        assert!(bit(42), "NTP is only sent when requested: the kernel must pass such clients");
        assert!(!bit(3) && !bit(6) && !bit(15) && !bit(1), "basic options are always in the template");
    }
}
