//! Keeping the kernel's copy in step with the daemon: the lease map, the
//! reply templates, the reservation map, the relay map, the clock offset,
//! and the ring buffer of ACKs the kernel sent.
//!
//! The reply template of a subnet is produced by the engine itself — a
//! synthetic renewal is decided and encoded exactly as a real one would be
//! — so the kernel's ACK equals the daemon's byte for byte by construction,
//! and the unit tests check the split and the pass rules. There is one
//! template per subnet and serving interface (the reply names the
//! receiving interface's address): on the subnet's own link it answers
//! every renewal; elsewhere only relayed requests and unicast renewals,
//! which the daemon also takes on any interface. Leases the kernel could
//! not answer identically (reserved clients, addresses reserved for
//! someone else or outside the pools, long client-ids, subnets with
//! pool-level options or boot fields) are left out of the lease map: those
//! clients are served by the daemon.
//!
//! Reserved clients (by MAC or client-id) get a template of their own,
//! probed the same way (a DISCOVER from the reserved client: the engine's
//! OFFER of the reserved address, with its hostname and reservation
//! options); the kernel turns it into the ACK. Each entry also says whether
//! the store holds anything that would change the daemon's answer (the
//! reserved address held by someone else, the client holding another
//! address), kept in step by [`MapSync::sync_lease`], which sees every
//! store change. Relayed requests select their subnet by giaddr; the relay
//! map is an LPM trie written so that its longest match is the daemon's
//! first match ([`relay_entries`]).
//!
//! The HA scope of each subnet ([`SubnetServing`]) is written into every
//! template on each HA transition; the kernel applies Kea's load-balancing
//! hash from `dhcp_common::ha` itself.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::Ipv4Addr,
};

use aya::maps::{
    Array, HashMap as BpfHashMap, MapData, RingBuf,
    lpm_trie::{Key as LpmKey, LpmTrie},
};
use dhcp_common::fastpath::{
    CID_PASS_ANY, CID_PASS_MISSING, EVENT_RESERVED_ACK, EVENTS_MAP, LEASES_MAP, LeaseEntry, LeaseKey, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL,
    RELAYS_MAP, RES_BY_CLIENT_ID, RES_BY_MAC, RESERVATIONS_MAP, RenewEvent, ReservationEntry, ReservationKey,
    SERVE_LOAD_BALANCING, SERVE_PRIMARY, SERVE_SECONDARY, SETTINGS_MAP, SUBNETS_MAP, Settings, SubnetKey,
    SubnetReply, word_sum,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use crate::{
    config::ha::HaMode,
    dhcp::{
        engine::{self, Allocator, Ctx, Held, HeldState, LeaseView, NewLease},
        inbound,
        policy::{Policy, Reservation, SubnetPolicy},
    },
    ha::ScopeFilter,
    leases::{Lease, LeaseState},
    net::Interface,
};

/// What the kernel may answer for one subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubnetServing {
    /// Nothing: every request goes to the daemon (DHCP disabled, or HA
    /// serves no scope of the subnet).
    Off,
    /// Every client (no HA relationship for the subnet).
    All,
    /// The scopes of an HA relationship: the kernel answers a client only
    /// when Kea's query filter puts it in a served scope.
    Scopes(ScopeFilter),
}

impl SubnetServing {
    /// The kernel's `SERVE_*` bits ([`SubnetReply::serving`]); 0 when no
    /// client can be in scope.
    pub fn bits(self) -> u32 {
        match self {
            SubnetServing::Off => 0,
            SubnetServing::All => SERVE_PRIMARY,
            SubnetServing::Scopes(f) if f.mode == HaMode::LoadBalancing => {
                let bits = (u32::from(f.primary) * SERVE_PRIMARY) | (u32::from(f.secondary) * SERVE_SECONDARY);
                if bits == 0 { 0 } else { bits | SERVE_LOAD_BALANCING }
            }
            // Outside load balancing every query is the primary's scope.
            SubnetServing::Scopes(f) => u32::from(f.primary) * SERVE_PRIMARY,
        }
    }
}

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
use dhcp_common::dhcp::SERVER_MANAGED;

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
        // Never reusable under lease caching: a template must grant a
        // full lease (subnets with caching are answered by the daemon).
        valid_lifetime: 0,
        hostname: String::new(),
        state: HeldState::Active,
    };
    let d = engine::decide(&req, Some(subnet), policy, &OneLease(held), &mut Allocator::default(), Ctx { now, server_id, on_link: true });
    let (msg, _) = d.reply?;
    (msg.opts().msg_type() == Some(MessageType::Ack)).then_some(msg)
}

/// Splits encoded options at code 61: (codes below, codes above + END).
/// A client-id echo (the probe's own, when probed with one) is dropped:
/// the kernel inserts the requester's there.
fn split_options(opts: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1,
            255 => return Some((head, opts[i..].to_vec())),
            code => {
                let len = *opts.get(i + 1)? as usize;
                let option = opts.get(i..i + 2 + len)?;
                if code > 61 {
                    return Some((head, opts[i..].to_vec()));
                }
                if code != 61 {
                    head.extend_from_slice(option);
                }
                i += 2 + len;
            }
        }
    }
    None
}

/// Why a subnet (or a reservation) gets no template (served by the daemon
/// only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotEligible {
    /// No interface of ours is on the subnet (for requests received
    /// directly) or no serving interface at all.
    NoInterface,
    /// Pools override options: the reply depends on the address.
    PoolOptions,
    /// Boot fields (sname/file) are configured.
    BootFields,
    /// No pool to probe, or the engine would not ACK the probe.
    NoProbe,
    /// The options do not fit the kernel's buffer.
    TooLarge,
    /// Lease caching (`cache-threshold`/`cache-max-age`): a renewal may be
    /// answered with the lease as it stands, which the kernel cannot judge.
    LeaseCaching,
    /// Client classes may change the reply: the subnet (or its link) is
    /// restricted to a class, or a class that can apply here sets options,
    /// boot fields or a lifetime, or a `DROP` class exists. The kernel
    /// cannot evaluate classes ([`Policy::class_dependent`]).
    Classes,
    /// `libdhcp_flex_option.so` edits replies by expressions over each
    /// query, which the kernel cannot evaluate.
    FlexOption,
}

impl NotEligible {
    /// Stable label for logs, `/metrics` and the status page.
    pub const fn label(&self) -> &'static str {
        match self {
            NotEligible::NoInterface => "no_interface",
            NotEligible::PoolOptions => "pool_options",
            NotEligible::BootFields => "boot_fields",
            NotEligible::NoProbe => "no_probe",
            NotEligible::TooLarge => "too_large",
            NotEligible::LeaseCaching => "lease_caching",
            NotEligible::Classes => "classes",
            NotEligible::FlexOption => "flex_option",
        }
    }
}

/// Whether a broadcast received on `iface` without giaddr selects
/// `subnet` in the daemon (`dhcp::select`), or a subnet of its shared
/// network (whose leases the daemon then serves from their own subnet).
fn is_link(policy: &Policy, subnet: &SubnetPolicy, iface: &Interface) -> bool {
    policy.on_link(subnet, &iface.name, &iface.addrs)
}

/// The subnet a unicast from (or for) `a` selects in the daemon: the first
/// containing it.
fn subnet_of_address(policy: &Policy, a: Ipv4Addr) -> Option<u32> {
    policy.subnets.iter().find(|s| s.contains(a)).map(|s| s.id)
}

/// The kernel template of `subnet` for requests received on `iface`, with
/// HA scope bits `serving` ([`SubnetServing::bits`]), or why it has none.
pub fn subnet_reply(
    policy: &Policy,
    subnet: &SubnetPolicy,
    iface: &Interface,
    serving: u32,
    now: u64,
) -> Result<SubnetReply, NotEligible> {
    if subnet.pools.iter().any(|p| !p.options.is_empty() && p.options != subnet.options) {
        return Err(NotEligible::PoolOptions);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    if subnet.cache.threshold.is_some() || subnet.cache.max_age.is_some() {
        return Err(NotEligible::LeaseCaching);
    }
    if policy.class_dependent(subnet) {
        return Err(NotEligible::Classes);
    }
    if !policy.flex.is_empty() {
        return Err(NotEligible::FlexOption);
    }
    let ack = probe_ack(policy, subnet, iface, now).ok_or(NotEligible::NoProbe)?;
    // Option 12 is only sent to reserved clients, who are not in the map.
    let may_add = subnet.options.keys().chain(subnet.by_hwaddr.values().flat_map(|r| r.options.keys()));
    let mut r = reply_template(&ack, subnet, iface, serving, may_add.copied())?;
    r.link = u32::from(is_link(policy, subnet, iface));
    // A client-id reservation's client renewing a dynamic lease is moved
    // by the daemon; the kernel finds it in the reservation map first,
    // except off the link without a relay. [`MapSync`] adds
    // CID_PASS_MISSING when some are not in the map.
    r.cid_pass = if subnet.client_id_selects_hosts() { CID_PASS_ANY } else { 0 };
    Ok(r)
}

/// The kernel template of the engine's reply `msg`: its options split at
/// code 61 (where the client-id echo goes) with their checksum sums, and a
/// pass bit for every code in `may_add` the reply lacks (a client asking
/// for one of those gets a different reply from the daemon).
fn reply_template(
    msg: &Message,
    subnet: &SubnetPolicy,
    iface: &Interface,
    serving: u32,
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
        serving,
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
        link: 0,
        cid_pass: 0,
        prl_pass,
        head: head_bytes,
        tail: tail_bytes,
    })
}

/// How a reservation names its client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResId {
    /// By hardware address (Ethernet).
    Mac([u8; 6]),
    /// By client identifier (option 61 payload).
    ClientId(Vec<u8>),
}

impl ResId {
    fn key(&self, ifindex: u32, relay_subnet: u32) -> Option<ReservationKey> {
        let (kind, bytes) = match self {
            ResId::Mac(m) => (RES_BY_MAC, &m[..]),
            ResId::ClientId(c) => (RES_BY_CLIENT_ID, &c[..]),
        };
        if bytes.is_empty() || bytes.len() > MAX_CLIENT_ID {
            return None;
        }
        let mut id = [0; MAX_CLIENT_ID];
        id[..bytes.len()].copy_from_slice(bytes);
        Some(ReservationKey { ifindex, relay_subnet, kind, len: bytes.len() as u32, id })
    }

    fn of_key(k: &ReservationKey) -> ResId {
        let bytes = &k.id[..(k.len as usize).min(MAX_CLIENT_ID)];
        if k.kind == RES_BY_MAC {
            let mut m = [0; 6];
            m.copy_from_slice(&bytes[..6.min(bytes.len())]);
            ResId::Mac(m)
        } else {
            ResId::ClientId(bytes.to_vec())
        }
    }
}

/// The OFFER the engine sends to the reserved client `who` of `subnet` on
/// `iface` (DISCOVER with no other option, nothing in the store; a
/// client-id reservation's probe comes from a MAC no client has).
pub fn probe_offer(policy: &Policy, subnet: &SubnetPolicy, iface: &Interface, who: &ResId, now: u64) -> Option<Message> {
    let server_id = iface.primary_ipv4()?;
    let u = Ipv4Addr::UNSPECIFIED;
    let mac = match who {
        ResId::Mac(m) => *m,
        ResId::ClientId(_) => PROBE_MAC,
    };
    let mut m = Message::new(u, u, u, u, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    if let ResId::ClientId(c) = who {
        m.opts_mut().insert(DhcpOption::ClientIdentifier(c.clone()));
    }
    let req = inbound::classify(&m.to_vec().ok()?).ok()?;
    let d = engine::decide(&req, Some(subnet), policy, &NoLeases, &mut Allocator::default(), Ctx { now, server_id, on_link: true });
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

/// The kernel entry of reservation `r` of `who` in `subnet` for requests
/// received on `iface` — directly (`relay_subnet` 0: only on the subnet's
/// link) or relayed with a giaddr selecting the subnet (`relay_subnet` =
/// its id) — with `clean` and `held` still to be filled from the store, or
/// why it has none.
#[allow(clippy::too_many_arguments)]
pub fn reservation_entry(
    policy: &Policy,
    subnet: &SubnetPolicy,
    who: &ResId,
    r: &Reservation,
    iface: &Interface,
    relay_subnet: u32,
    serving: u32,
    now: u64,
) -> Result<(ReservationKey, ReservationEntry), NotEligible> {
    let key = who.key(iface.index, relay_subnet).ok_or(NotEligible::NoProbe)?;
    // Broadcast requests on the interface select their subnet by it, a
    // unicast renewal by its address.
    if relay_subnet == 0
        && (!is_link(policy, subnet, iface) || subnet_of_address(policy, r.address) != Some(subnet.id))
    {
        return Err(NotEligible::NoInterface);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    if policy.class_dependent(subnet) {
        return Err(NotEligible::Classes);
    }
    if !policy.flex.is_empty() {
        return Err(NotEligible::FlexOption);
    }
    let offer = probe_offer(policy, subnet, iface, who, now).ok_or(NotEligible::NoProbe)?;
    if offer.yiaddr() != r.address {
        return Err(NotEligible::NoProbe);
    }
    let pool = subnet.pool_of(r.address).map(|p| &p.options);
    let may_add = subnet.options.keys().chain(pool.into_iter().flat_map(|o| o.keys())).chain(r.options.keys());
    let reply =
        reply_template(&offer, subnet, iface, serving, may_add.copied().filter(|c| !SERVER_MANAGED.contains(c)))?;
    let type_off = type_offset(&reply.head[..reply.head_len as usize]).ok_or(NotEligible::NoProbe)?;
    let entry = ReservationEntry {
        addr: r.address.octets(),
        subnet_id: subnet.id,
        type_off: type_off as u32,
        clean: 0,
        held: 0,
        authoritative: u32::from(subnet.authoritative),
        client_hostname: u32::from(r.hostname.is_none()),
        by_client_id: u32::from(matches!(who, ResId::ClientId(_))),
        held_cid_len: 0,
        _pad: 0,
        held_cid: [0; MAX_CLIENT_ID],
        reply,
    };
    Ok((key, entry))
}

/// Fills `clean`, `held` and `held_cid` of a reservation entry from the
/// store's lease of its address and the leases its client holds in its
/// subnet (by MAC, or by client-id for a client-id reservation).
fn with_store_state<'a>(
    mut e: ReservationEntry,
    who: &ResId,
    match_client_id: bool,
    at_addr: Option<&Lease>,
    client_leases: impl Iterator<Item = &'a Lease>,
) -> ReservationEntry {
    let addr = Ipv4Addr::from(e.addr);
    let mut clean = true;
    e.held = 0;
    e.held_cid_len = 0;
    e.held_cid = [0; MAX_CLIENT_ID];
    if let Some(l) = at_addr {
        let cid = l.client_id.as_ref().map(|c| c.bytes()).unwrap_or_default();
        // A client-id reservation's client may come with any MAC: only a
        // lease it owns by client-id is known to be its own.
        let mine = l.state != LeaseState::Declined
            && match who {
                ResId::Mac(mac) => l.hwaddr.as_ref().is_some_and(|h| h.bytes() == mac),
                ResId::ClientId(id) => match_client_id && cid == &id[..],
            };
        if mine && cid.len() <= MAX_CLIENT_ID {
            e.held = 1;
            e.held_cid_len = cid.len() as u32;
            e.held_cid[..cid.len()].copy_from_slice(cid);
        } else {
            clean = false; // someone else's (or declined): the daemon decides
        }
    }
    // The client holding another address: the daemon NAKs an INIT-REBOOT.
    if client_leases.into_iter().any(|l| l.address != addr && l.subnet_id == e.subnet_id && l.state == LeaseState::Default)
    {
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
    let subnet = policy.subnet(ev.subnet_id)?;
    let cid_len = usize::from(ev.client_id_len).min(MAX_CLIENT_ID);
    let cid = (cid_len > 0).then(|| ev.client_id[..cid_len].to_vec());
    if let Some(c) = current {
        // The engine's `owns`: by client-id when both have one and
        // match-client-id is on, else by MAC.
        let held_cid = c.client_id.as_ref().map(|x| x.bytes().to_vec());
        let theirs = match (&held_cid, &cid) {
            (Some(a), Some(b)) if subnet.match_client_id => a != b,
            _ => c.hwaddr.as_ref().is_none_or(|h| h.bytes() != ev.mac),
        };
        if theirs && c.state == LeaseState::Default && !c.is_expired(now) {
            return None;
        }
        if !theirs && c.expire > ev.expire {
            return None;
        }
    }
    // The engine's `reservation_of`: client-id first, then MAC.
    let r = cid.as_ref().and_then(|c| subnet.by_client_id.get(c)).or_else(|| subnet.by_hwaddr.get(&ev.mac[..]))?;
    if r.address != Ipv4Addr::from(ev.addr) {
        return None;
    }
    let n = NewLease {
        address: Ipv4Addr::from(ev.addr),
        subnet_id: ev.subnet_id,
        htype: 1,
        hwaddr: ev.mac.to_vec(),
        client_id: cid,
        valid_lifetime: ev.valid_lifetime,
        expire: ev.expire,
        hostname: r.hostname.clone().unwrap_or_default(),
        state: HeldState::Active,
        relay_agent_info: None,
    };
    Some(crate::glue::to_lease(&n))
}

/// The map entry of `lease`, or `None` when the kernel must not answer its
/// client (see the module docs). `sole` is left 0: [`MapSync`] knows the
/// other leases.
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
    if subnet.reserved.contains_key(&lease.address) || subnet.may_have_host(hw, cid) {
        return None;
    }
    // The daemon NAKs an address outside the pools (a config change) and
    // selects a unicast renewal's subnet by its address.
    let a = u32::from(lease.address);
    let broadcast = u32::from(subnet.network) | !u32::from(subnet.mask());
    if subnet.pool_of(lease.address).is_none()
        || a == u32::from(subnet.network)
        || a == broadcast
        || subnet_of_address(policy, lease.address) != Some(subnet.id)
    {
        return None;
    }
    let mut e = LeaseEntry {
        expire: lease.expire,
        subnet_id: lease.subnet_id,
        hlen: hw.len() as u8,
        client_id_len: cid.len() as u8,
        sole: 0,
        _pad: 0,
        hwaddr: [0; 16],
        client_id: [0; MAX_CLIENT_ID],
    };
    e.hwaddr[..hw.len()].copy_from_slice(hw);
    e.client_id[..cid.len()].copy_from_slice(cid);
    Some(e)
}

/// The relay map's entries (prefix length, address, subnet id) such that
/// the longest match for any giaddr is the subnet the daemon's
/// `Policy::subnet_for_relay` picks: a /32 per configured relay address,
/// and per subnet prefix the first subnet (config order) containing that
/// whole prefix. (CIDR prefixes nest or are disjoint, so the subnets
/// containing an address are exactly those containing its longest
/// matching prefix.)
pub fn relay_entries(policy: &Policy) -> BTreeMap<(u32, [u8; 4]), u32> {
    let mut out = BTreeMap::new();
    for s in &policy.subnets {
        let first = policy.subnets.iter().find(|o| o.prefix_len <= s.prefix_len && o.contains(s.network));
        if let Some(f) = first {
            out.entry((u32::from(s.prefix_len), s.network.octets())).or_insert(f.id);
        }
    }
    for s in &policy.subnets {
        for g in &s.relay_addresses {
            if let Some(f) = policy.subnet_for_relay(*g) {
                out.insert((32, g.octets()), f.id);
            }
        }
    }
    out
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
        let r = subnet_reply(&p, s, &eth0(), SERVE_PRIMARY, 1_800_000_000).unwrap();
        assert_eq!((r.ifindex, r.serving, r.server_ip, r.link), (7, 1, [192, 168, 50, 2], 1));
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
    fn other_interfaces_get_relay_only_templates_and_boot_fields_none() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let other = Interface { index: 9, addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
        let r = subnet_reply(&p, s, &other, SERVE_PRIMARY, 0).unwrap();
        assert_eq!((r.ifindex, r.link, r.server_ip), (9, 0, [10, 0, 0, 1]), "option 54 is the receiving interface's");
        let head = &r.head[..r.head_len as usize];
        assert!(head.windows(6).any(|w| w == [54, 4, 10, 0, 0, 1]), "{head:?}");
        let mut s2 = s.clone();
        s2.boot_file_name = Some("pxelinux.0".into());
        assert_eq!(subnet_reply(&p, &s2, &eth0(), SERVE_PRIMARY, 0).unwrap_err(), NotEligible::BootFields);
    }

    #[test]
    fn split_drops_the_probes_client_id_echo() {
        let opts = [1, 4, 255, 255, 255, 0, 53, 1, 2, 61, 3, 1, 2, 3, 119, 2, 0, 0, 255];
        let (head, tail) = split_options(&opts).unwrap();
        assert_eq!(head, [1, 4, 255, 255, 255, 0, 53, 1, 2]);
        assert_eq!(tail, [119, 2, 0, 0, 255]);
    }

    /// Three subnets, one nested in another and listed after it (the
    /// config refuses overlaps; the map must not depend on that), one with
    /// relay addresses (one inside another subnet).
    fn relay_policy() -> Policy {
        let cfg = crate::config::parse(
            r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "subnet4": [
                { "id": 1, "subnet": "10.0.0.0/16", "pools": [ { "pool": "10.0.1.10-10.0.1.20" } ] },
                { "id": 3, "subnet": "192.168.60.0/24", "pools": [ { "pool": "192.168.60.100-192.168.60.149" } ],
                  "relay": { "ip-addresses": [ "10.0.5.1", "172.16.0.1" ] } } ] } }"#,
            "test",
        )
        .unwrap();
        let mut p = crate::glue::compile(&cfg);
        let mut nested = p.subnets[0].clone();
        (nested.id, nested.network, nested.prefix_len) = (2, Ipv4Addr::new(10, 0, 5, 0), 24);
        p.subnets.insert(1, nested);
        p
    }

    /// The LPM trie's answer for `g`, computed as the kernel does.
    fn longest_match(entries: &BTreeMap<(u32, [u8; 4]), u32>, g: Ipv4Addr) -> Option<u32> {
        entries
            .iter()
            .filter(|((len, net), _)| {
                let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(g) & mask == u32::from(Ipv4Addr::from(*net))
            })
            .max_by_key(|((len, _), _)| *len)
            .map(|(_, id)| *id)
    }

    #[test]
    fn relay_map_longest_match_is_the_daemons_first_match() {
        let p = relay_policy();
        let entries = relay_entries(&p);
        // The nested /24 is the /16's (config order), the relay address wins.
        assert_eq!(longest_match(&entries, Ipv4Addr::new(10, 0, 5, 7)), Some(1));
        assert_eq!(longest_match(&entries, Ipv4Addr::new(10, 0, 5, 1)), Some(3));
        assert_eq!(longest_match(&entries, Ipv4Addr::new(172, 16, 0, 1)), Some(3));
        assert_eq!(longest_match(&entries, Ipv4Addr::new(172, 16, 0, 2)), None);
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut probes: Vec<Ipv4Addr> = (0..20_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Mostly near the configured prefixes, some anywhere.
                let base = [0x0a00_0000u32, 0x0a00_0500, 0xc0a8_3c00, 0xac10_0000, rng as u32][(rng >> 40) as usize % 5];
                Ipv4Addr::from(base ^ ((rng >> 8) as u32 & 0x0000_07ff))
            })
            .collect();
        probes.extend(p.subnets.iter().flat_map(|s| s.relay_addresses.clone()));
        for g in probes {
            assert_eq!(longest_match(&entries, g), p.subnet_for_relay(g).map(|s| s.id), "{g}");
        }
    }

    #[test]
    fn serving_bits_follow_the_scope_filter() {
        use crate::ha::{Query, ScopeFilter};
        let filters = [HaMode::LoadBalancing, HaMode::HotStandby].into_iter().flat_map(|mode| {
            [(false, false), (true, false), (false, true), (true, true)]
                .map(|(primary, secondary)| ScopeFilter { mode, primary, secondary })
        });
        for f in filters {
            let bits = SubnetServing::Scopes(f).bits();
            for i in 0u32..2000 {
                let mac = [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x5a];
                for kind in [1u8, 3] {
                    let q = Query { msg_type: kind, chaddr: &mac, client_id: None, secs: 0 };
                    let kernel = bits != 0 && dhcp_common::ha::serves(bits, dhcp_common::ha::rfc3074_hash(&mac));
                    assert_eq!(kernel, f.in_scope(&q), "{f:?} {mac:02x?}");
                }
            }
        }
        assert_eq!(SubnetServing::All.bits(), SERVE_PRIMARY);
        assert_eq!(SubnetServing::Off.bits(), 0);
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
        let who = ResId::Mac(mac.as_slice().try_into().unwrap());
        let (k, e) = reservation_entry(&p, s, &who, r, &eth0(), 0, SERVE_PRIMARY, 1_800_000_000).unwrap();
        assert_eq!((&k.id[..6], k.kind, k.len, k.ifindex, k.relay_subnet), (&[2, 0, 0, 0, 0, 3][..], RES_BY_MAC, 6, 7, 0));
        assert_eq!((Ipv4Addr::from(e.addr), e.subnet_id, e.authoritative, e.client_hostname), (r.address, 1, 1, 0));
        let head = &e.reply.head[..e.reply.head_len as usize];
        assert_eq!(head[e.type_off as usize], 2, "an OFFER; the kernel writes 5 for an ACK");
        assert_eq!(head[e.type_off as usize - 2], 53);
        assert!(head.windows(10).any(|w| w == b"\x0c\x08mutante3"), "hostname option 12");
        assert_eq!(e.reply.head_sum, word_sum(head));
        // Received directly on another link: no entry; relayed there: one.
        let other = Interface { addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
        assert_eq!(reservation_entry(&p, s, &who, r, &other, 0, 1, 0).unwrap_err(), NotEligible::NoInterface);
        let (k, e) = reservation_entry(&p, s, &who, r, &other, 1, 1, 0).unwrap();
        assert_eq!((k.relay_subnet, e.reply.server_ip), (1, [10, 0, 0, 1]));
        // By client-id: probed with option 61, whose echo the kernel writes.
        let mut p = p.clone();
        let by_cid = Reservation { address: Ipv4Addr::new(192, 168, 50, 44), hostname: None, options: Default::default() };
        p.subnets[0].by_client_id.insert(vec![1, 2, 3, 4], by_cid.clone());
        let host = crate::dhcp::policy::Host { address: Some(by_cid.address), hostname: None, options: Default::default(), classes: Vec::new() };
        p.subnets[0].hosts.by_client_id.insert(vec![1, 2, 3, 4], host);
        p.subnets[0].reserved.insert(by_cid.address, ());
        let cid = ResId::ClientId(vec![1, 2, 3, 4]);
        let (k, e) = reservation_entry(&p, &p.subnets[0], &cid, &by_cid, &eth0(), 0, 1, 0).unwrap();
        assert_eq!((k.kind, k.len, &k.id[..4], e.by_client_id), (RES_BY_CLIENT_ID, 4, &[1, 2, 3, 4][..], 1));
        let head = &e.reply.head[..e.reply.head_len as usize];
        assert!(!head.windows(3).any(|w| w == [61, 4, 1]), "no probe echo in the template");
    }

    #[test]
    fn reservation_is_clean_only_when_the_store_agrees() {
        use crate::leases::HwAddr;
        let p = venus_policy();
        let s = &p.subnets[0];
        let (mac, r) = s.by_hwaddr.iter().next().unwrap();
        let mac: [u8; 6] = mac.as_slice().try_into().unwrap();
        let who = ResId::Mac(mac);
        let (_, e) = reservation_entry(&p, s, &who, r, &eth0(), 0, 1, 0).unwrap();
        let mk = |addr: Ipv4Addr, mac: [u8; 6]| Lease::new(addr, Some(HwAddr::ethernet(mac)), None, 1, 1_800_000_000, 60);
        let free = with_store_state(e, &who, true, None, std::iter::empty());
        assert_eq!((free.clean, free.held), (1, 0));
        let own = mk(r.address, mac);
        let held = with_store_state(e, &who, true, Some(&own), [&own].into_iter());
        assert_eq!((held.clean, held.held), (1, 1));
        let theirs = mk(r.address, [2, 0, 0, 0, 0, 9]);
        assert_eq!(with_store_state(e, &who, true, Some(&theirs), std::iter::empty()).clean, 0);
        let other = mk(Ipv4Addr::new(192, 168, 50, 150), mac);
        assert_eq!(with_store_state(e, &who, true, None, [&other].into_iter()).clean, 0);
        // A client-id reservation holds its address only by client-id, and
        // only under match-client-id.
        let cid = ResId::ClientId(vec![1, 2, 3, 4]);
        let mut by_cid = mk(r.address, [2, 0, 0, 0, 0, 9]);
        by_cid.client_id = Some(crate::leases::ClientId::new(vec![1, 2, 3, 4]).unwrap());
        let h = with_store_state(e, &cid, true, Some(&by_cid), [&by_cid].into_iter());
        assert_eq!((h.clean, h.held, h.held_cid_len), (1, 1, 4));
        assert_eq!(with_store_state(e, &cid, false, Some(&by_cid), std::iter::empty()).clean, 0);
        assert_eq!(with_store_state(e, &cid, true, Some(&theirs), std::iter::empty()).clean, 0);
    }

    #[test]
    fn prl_pass_marks_configured_options_not_sent_by_default() {
        let mut p = venus_policy();
        let ntp = crate::dhcp::policy::OptionValue { data: vec![192, 168, 50, 9], always_send: false };
        p.subnets[0].options.insert(42, ntp.clone());
        // Pools carry effective options: a subnet-level change shows there too.
        p.subnets[0].pools[0].options.insert(42, ntp);
        let r = subnet_reply(&p, &p.subnets[0], &eth0(), SERVE_PRIMARY, 0).unwrap();
        let bit = |c: u8| r.prl_pass[usize::from(c >> 3)] & (1 << (c & 7)) != 0;
        assert!(bit(42), "NTP is only sent when requested: the kernel must pass such clients");
        assert!(!bit(3) && !bit(6) && !bit(15) && !bit(1), "basic options are always in the template");
    }
}
