//! `decide`: one request + the lease view + the policy → one [`Decision`].
//!
//! Pure: the caller applies the decision (durable lease write first, then
//! the reply), so every protocol rule is unit-tested here without sockets.
//! Rules follow RFC 2131 and, where the RFC leaves room, what Kea 2.2 does
//! (`Dhcpv4Srv::assignLease`, `AllocEngine::requestLease4`,
//! `adjustRemoteAddr`): e.g. an authoritative server NAKs an INIT-REBOOT
//! from a client it has no lease for, and any server NAKs a renewal of an
//! address leased to someone else but silently ignores one for an address
//! outside its pools.

use std::{collections::HashMap, net::Ipv4Addr};

use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption};

use super::{
    client_name,
    inbound::{Inbound, Kind},
    policy::{ClientIds, Host, OptionBytes, Policy, SubnetPolicy},
};
use crate::classify::{self, ClientClasses, expr::Packet};

/// Who a client is, per the subnet's `match-client-id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// Hardware address bytes.
    pub hwaddr: Vec<u8>,
    /// Client identifier, when the client sent one.
    pub client_id: Option<Vec<u8>>,
    /// Circuit-id of the relay agent that forwarded the request, if any
    /// (a host identifier, not part of lease ownership).
    pub circuit_id: Option<Vec<u8>>,
}

impl ClientKey {
    /// The identifiers host reservations are looked up by.
    fn ids(&self) -> ClientIds<'_> {
        ClientIds {
            hwaddr: &self.hwaddr,
            client_id: self.client_id.as_deref(),
            circuit_id: self.circuit_id.as_deref(),
        }
    }
}

/// Lease states the engine distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldState {
    /// Assigned to a client (maybe expired).
    Active,
    /// Declined: held for the probation period, owned by nobody.
    Declined,
    /// Expired and reclaimed: free.
    Reclaimed,
}

/// The engine's view of a stored lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Leased address.
    pub address: Ipv4Addr,
    /// Subnet id.
    pub subnet_id: u32,
    /// Owner's hardware address (empty when none, e.g. declined).
    pub hwaddr: Vec<u8>,
    /// Owner's client-id.
    pub client_id: Option<Vec<u8>>,
    /// Unix time the lease ends.
    pub expire: u64,
    /// Lifetime it was granted with (so `expire - valid_lifetime` is when
    /// it was last granted, which lease caching needs).
    pub valid_lifetime: u32,
    /// Hostname stored with it.
    pub hostname: String,
    /// State.
    pub state: HeldState,
}

/// Read access to the lease store, as the engine needs it.
pub trait LeaseView {
    /// The lease of an address.
    fn by_address(&self, address: Ipv4Addr) -> Option<Held>;
    /// A lease in `subnet_id` whose hardware address is `hwaddr`.
    fn by_hwaddr(&self, subnet_id: u32, hwaddr: &[u8]) -> Option<Held>;
    /// A lease in `subnet_id` whose client-id is `client_id`.
    fn by_client_id(&self, subnet_id: u32, client_id: &[u8]) -> Option<Held>;
}

/// A lease to make durable before the reply leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLease {
    /// Address.
    pub address: Ipv4Addr,
    /// Subnet id.
    pub subnet_id: u32,
    /// Hardware type (1 = Ethernet).
    pub htype: u8,
    /// Hardware address (empty for declined).
    pub hwaddr: Vec<u8>,
    /// Client-id, if any.
    pub client_id: Option<Vec<u8>>,
    /// Valid lifetime granted.
    pub valid_lifetime: u32,
    /// Unix time it ends.
    pub expire: u64,
    /// Hostname (reservation's or the client's option 12).
    pub hostname: String,
    /// Active or declined.
    pub state: HeldState,
    /// Option 82's payload to keep in the lease's user context (Kea's
    /// `store-extended-info`); `None` when the subnet keeps none.
    pub relay_agent_info: Option<Vec<u8>>,
}

/// Store change implied by a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseWrite {
    /// Create or replace the lease of an address.
    Upsert(NewLease),
    /// Delete the lease of an address (RELEASE).
    Remove(Ipv4Addr),
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent at `giaddr`, port 67.
    Relay(Ipv4Addr),
    /// IP unicast to the client's configured address (`ciaddr`), port 68.
    Ciaddr(Ipv4Addr),
    /// Limited broadcast on the receiving link, port 68.
    Broadcast,
    /// Link-layer unicast to `chaddr` with IP destination `yiaddr`.
    Chaddr {
        /// Client MAC.
        mac: [u8; 6],
        /// Address being offered/acknowledged.
        ip: Ipv4Addr,
    },
}

/// Why no reply was sent; counted per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Silence {
    /// No subnet for the receiving interface or relay.
    NoSubnet,
    /// No free address in any pool.
    PoolExhausted,
    /// REQUEST carries another server's identifier: the client chose it.
    OtherServerSelected,
    /// Not authoritative and no record of the client.
    NotAuthoritative,
    /// RELEASE / DECLINE: the protocol has no reply.
    NoReplyExpected,
    /// RELEASE / DECLINE for a lease the client does not hold.
    NotOwner,
    /// REQUEST in SELECTING without a requested address, or similar.
    Incomplete,
    /// REQUEST for an address outside every pool of the link and not
    /// reserved for the client (Kea drops it rather than NAK).
    UnknownAddress,
    /// The packet is in the `DROP` client class.
    ClassDrop,
}

impl Silence {
    /// Stable snake_case label for counters.
    pub const fn label(self) -> &'static str {
        match self {
            Silence::NoSubnet => "no_subnet",
            Silence::PoolExhausted => "pool_exhausted",
            Silence::OtherServerSelected => "other_server_selected",
            Silence::NotAuthoritative => "not_authoritative",
            Silence::NoReplyExpected => "no_reply_expected",
            Silence::NotOwner => "not_owner",
            Silence::Incomplete => "incomplete",
            Silence::UnknownAddress => "unknown_address",
            Silence::ClassDrop => "class_drop",
        }
    }
}

/// What to do with one request.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Reply message and where it goes, if any.
    pub reply: Option<(Message, Destination)>,
    /// Store change to make durable first, if any.
    pub write: Option<LeaseWrite>,
    /// Why there is no reply (when `reply` is `None`).
    pub silence: Option<Silence>,
}

impl Decision {
    fn silent(why: Silence) -> Self {
        Self { reply: None, write: None, silence: Some(why) }
    }
    fn write_only(write: LeaseWrite) -> Self {
        Self { reply: None, write: Some(write), silence: Some(Silence::NoReplyExpected) }
    }
}

/// Per-packet context: the time, the server identifier on this link, and
/// whether the selected subnet is on the receiving link.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Unix seconds.
    pub now: u64,
    /// Our address on the receiving interface (option 54).
    pub server_id: Ipv4Addr,
    /// The selected subnet is the receiving interface's link
    /// ([`Policy::on_link`]): a client with a ciaddr there is reached by a
    /// frame to its chaddr, as Kea's raw sockets do, without waiting on ARP.
    pub on_link: bool,
}

/// How long an OFFERed address is held for its client, so concurrent
/// DISCOVERs get different addresses and a retransmitted DISCOVER the same
/// one. Kea 2.2 keeps no such hold, so a hold is soft: a DISCOVER that finds
/// nothing else free is offered a held address anyway, and a REQUEST never
/// waits on another client's offer (the first REQUEST wins, as in Kea).
pub const OFFER_HOLD_SECS: u64 = 30;

/// At most this many offers are held at once: a DISCOVER flood from random
/// MACs cannot grow the table without bound. Past the cap an offer is
/// still sent, just not held (holds are soft anyway), and counted.
pub const MAX_HELD_OFFERS: usize = 65_536;

/// Whether other clients' outstanding offers keep an address from being
/// chosen ([`OFFER_HOLD_SECS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offers {
    /// Skip addresses offered to someone else.
    Respect,
    /// Kea's view: an offer holds nothing.
    Ignore,
}

/// Mutable allocation state kept between packets (not persisted: losing it
/// only costs a re-scan or a NAK).
#[derive(Debug, Default)]
pub struct Allocator {
    /// Next address to try per (subnet id, pool index).
    cursors: HashMap<(u32, usize), u32>,
    /// Outstanding offers: address → (client, hold until).
    offers: HashMap<Ipv4Addr, (ClientKey, u64)>,
    /// The same offers by client, so a DISCOVER finds its own offer without
    /// scanning them all (a DISCOVER flood would otherwise make every
    /// DISCOVER slower, found by `cargo xtask bench alloc`).
    by_client: HashMap<ClientKey, Ipv4Addr>,
    /// Offers sent but not held because [`MAX_HELD_OFFERS`] were.
    unheld: u64,
}

impl Allocator {
    /// Forgets offers older than their hold time; call now and then.
    pub fn expire_offers(&mut self, now: u64) {
        let by_client = &mut self.by_client;
        self.offers.retain(|a, (c, until)| {
            let keep = *until > now;
            if !keep && by_client.get(c) == Some(a) {
                by_client.remove(c);
            }
            keep
        });
    }

    fn add_offer(&mut self, a: Ipv4Addr, client: ClientKey, until: u64) {
        if self.offers.len() >= MAX_HELD_OFFERS && !self.offers.contains_key(&a) && !self.by_client.contains_key(&client) {
            self.unheld += 1;
            return;
        }
        if let Some(old) = self.by_client.insert(client.clone(), a)
            && old != a
        {
            self.offers.remove(&old);
        }
        self.offers.insert(a, (client, until));
    }

    fn drop_offer(&mut self, a: Ipv4Addr) {
        if let Some((c, _)) = self.offers.remove(&a)
            && self.by_client.get(&c) == Some(&a)
        {
            self.by_client.remove(&c);
        }
    }

    /// The live offer made to `client`, if any.
    fn offer_of(&self, subnet: &SubnetPolicy, client: &ClientKey, now: u64) -> Option<Ipv4Addr> {
        let a = *self.by_client.get(client)?;
        let (c, until) = self.offers.get(&a)?;
        (*until > now && same_client(subnet, c, client)).then_some(a)
    }

    /// Number of outstanding offers (for the status page).
    pub fn outstanding_offers(&self) -> usize {
        self.offers.len()
    }

    /// Offers sent without a hold since start, the table being full.
    pub fn unheld_offers(&self) -> u64 {
        self.unheld
    }
}

fn client_key(req: &Inbound) -> ClientKey {
    ClientKey {
        hwaddr: req.hwaddr.clone(),
        client_id: req.client_id.clone(),
        circuit_id: req.circuit_id().map(<[u8]>::to_vec),
    }
}

/// Whether `held` belongs to `client` under the subnet's matching rule.
fn owns(subnet: &SubnetPolicy, held: &Held, client: &ClientKey) -> bool {
    if held.state == HeldState::Declined {
        return false;
    }
    match (&held.client_id, &client.client_id) {
        (Some(a), Some(b)) if subnet.match_client_id => a == b,
        _ => !held.hwaddr.is_empty() && held.hwaddr == client.hwaddr,
    }
}

fn same_client(subnet: &SubnetPolicy, a: &ClientKey, b: &ClientKey) -> bool {
    match (&a.client_id, &b.client_id) {
        (Some(x), Some(y)) if subnet.match_client_id => x == y,
        _ => a.hwaddr == b.hwaddr,
    }
}

/// The client's host reservation in `subnet` (its own, else global), in
/// the order of `host-reservation-identifiers`.
fn reservation_of<'a>(subnet: &'a SubnetPolicy, client: &ClientKey) -> Option<&'a Host> {
    subnet.host_of(&client.ids())
}

fn client_lease(view: &impl LeaseView, subnet: &SubnetPolicy, client: &ClientKey) -> Option<Held> {
    if subnet.match_client_id
        && let Some(id) = &client.client_id
        && let Some(h) = view.by_client_id(subnet.id, id)
    {
        return Some(h);
    }
    view.by_hwaddr(subnet.id, &client.hwaddr).filter(|h| owns(subnet, h, client))
}

/// Whether `client` may be given `a` now.
fn available(
    view: &impl LeaseView,
    alloc: &Allocator,
    subnet: &SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
    a: Ipv4Addr,
    now: u64,
    offers: Offers,
) -> bool {
    if !subnet.contains(a) || a == subnet.network || u32::from(a) == u32::from(subnet.network) | !u32::from(subnet.mask()) {
        return false;
    }
    let reserved_for_client = reservation_of(subnet, client).is_some_and(|r| r.address == Some(a));
    if subnet.reserved.contains_key(&a) && !reserved_for_client {
        return false;
    }
    if !reserved_for_client && subnet.allowed_pool_of(a, cls).is_none() {
        return false;
    }
    if let Some(h) = view.by_address(a) {
        let free = match h.state {
            HeldState::Reclaimed => true,
            HeldState::Declined => h.expire <= now,
            HeldState::Active => h.expire <= now || owns(subnet, &h, client),
        };
        if !free {
            return false;
        }
    }
    if offers == Offers::Respect
        && let Some((other, until)) = alloc.offers.get(&a)
        && *until > now
        && !same_client(subnet, other, client)
    {
        return false;
    }
    true
}

/// The client's reservation on `subnet`'s link: in the first subnet of
/// the link (the selected one, then its shared-network siblings) that has
/// one for it.
fn link_reservation<'a>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
) -> Option<(&'a SubnetPolicy, &'a Host)> {
    link_subnets(policy, subnet, cls).find_map(|s| reservation_of(s, client).map(|r| (s, r)))
}

/// The subnets of `subnet`'s link a client in `cls` may use, in Kea's
/// order (`getNextSubnet` skips the others).
fn link_subnets<'a, 'c>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    cls: &'c ClientClasses,
) -> impl Iterator<Item = &'a SubnetPolicy> + use<'a, 'c> {
    policy.link_subnets(subnet).filter(move |s| s.allows(cls))
}

/// The subnet of the link holding `a` that a client in `cls` may use.
fn link_subnet_of<'a>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    a: Ipv4Addr,
    cls: &ClientClasses,
) -> Option<&'a SubnetPolicy> {
    link_subnets(policy, subnet, cls).find(|s| s.contains(a))
}

/// The client's lease on `subnet`'s link, and the subnet holding it.
fn link_client_lease<'a>(
    view: &impl LeaseView,
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
) -> Option<(&'a SubnetPolicy, Held)> {
    link_subnets(policy, subnet, cls).find_map(|s| client_lease(view, s, client).map(|h| (s, h)))
}

/// Picks an address (and the subnet of the link holding it) for a
/// DISCOVER or an allocating REQUEST: the client's reservation, its lease,
/// its outstanding offer, the address it asked for, then the first free
/// pool address, walking the shared network from the selected subnet as
/// Kea does when a subnet is exhausted. Addresses offered to other clients
/// are taken only when nothing else is free ([`OFFER_HOLD_SECS`]).
#[allow(clippy::too_many_arguments)]
fn choose<'a>(
    view: &impl LeaseView,
    alloc: &mut Allocator,
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
    requested: Option<Ipv4Addr>,
    now: u64,
) -> Option<(&'a SubnetPolicy, Ipv4Addr)> {
    choose_with(view, alloc, policy, subnet, client, cls, requested, now, Offers::Respect)
        .or_else(|| choose_with(view, alloc, policy, subnet, client, cls, requested, now, Offers::Ignore))
}

#[allow(clippy::too_many_arguments)]
fn choose_with<'a>(
    view: &impl LeaseView,
    alloc: &mut Allocator,
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
    requested: Option<Ipv4Addr>,
    now: u64,
    offers: Offers,
) -> Option<(&'a SubnetPolicy, Ipv4Addr)> {
    if let Some((s, r)) = link_reservation(policy, subnet, client, cls)
        && let Some(a) = r.address
        && available(view, alloc, s, client, cls, a, now, offers)
    {
        return Some((s, a));
    }
    if let Some((s, h)) = link_client_lease(view, policy, subnet, client, cls)
        && available(view, alloc, s, client, cls, h.address, now, offers)
    {
        return Some((s, h.address));
    }
    for a in [alloc.offer_of(subnet, client, now), requested]
        .into_iter()
        .flatten()
    {
        if let Some(s) = link_subnet_of(policy, subnet, a, cls)
            && available(view, alloc, s, client, cls, a, now, offers)
        {
            return Some((s, a));
        }
    }
    for s in link_subnets(policy, subnet, cls) {
        for (i, pool) in s.pools.iter().enumerate() {
            if !cls.allows(pool.classes.client_class.as_deref()) {
                continue;
            }
            let start = u32::from(pool.start);
            let size = pool.size();
            // A cursor outside the pool (the pool changed under a new
            // configuration with the same subnet id) starts over.
            let mut cursor = alloc.cursors.get(&(s.id, i)).copied().filter(|c| (start..=u32::from(pool.end)).contains(c)).unwrap_or(start);
            for _ in 0..size {
                let a = Ipv4Addr::from(cursor);
                cursor = if cursor >= u32::from(pool.end) {
                    start
                } else {
                    cursor + 1
                };
                if available(view, alloc, s, client, cls, a, now, offers) {
                    alloc.cursors.insert((s.id, i), cursor);
                    return Some((s, a));
                }
            }
            alloc.cursors.insert((s.id, i), cursor);
        }
    }
    None
}

/// Kea's lease caching (`AllocEngine::setLeaseReusable`): the lifetime
/// left on the client's current lease of `a` when the subnet's
/// `cache-threshold` / `cache-max-age` let it be handed out again
/// unchanged (no store write, no partner update), else `None`. `valid` is
/// the lifetime a new grant would get, `hostname` the one it would store.
fn reusable(
    subnet: &SubnetPolicy,
    held: &Held,
    client: &ClientKey,
    valid: u32,
    hostname: &str,
    now: u64,
) -> Option<u32> {
    let cache = subnet.cache;
    if cache.threshold.is_none() && cache.max_age.is_none() {
        return None;
    }
    // Only an unchanged lease is reused (Kea's updateLease4Information).
    let unchanged = held.state == HeldState::Active
        && held.subnet_id == subnet.id
        && held.hwaddr == client.hwaddr
        && held.client_id == client.client_id
        && held.hostname == hostname;
    let granted_at = held.expire.checked_sub(u64::from(held.valid_lifetime))?;
    if !unchanged || now < granted_at {
        return None;
    }
    let age = now - granted_at;
    if age >= u64::from(held.valid_lifetime) {
        return None;
    }
    let mut max_age = 0u64;
    if let Some(m) = cache.max_age {
        if m == 0 || age > u64::from(m) {
            return None;
        }
        max_age = u64::from(m);
    }
    if let Some(t) = cache.threshold {
        max_age = (f64::from(valid) * t) as u64;
        if age > max_age {
            return None;
        }
    }
    (max_age > 0).then(|| held.valid_lifetime - age as u32)
}

/// Decides what to do with `req`, received on a link whose subnet is
/// `subnet` (already selected by [`super::select`]); its shared-network
/// siblings serve the same link.
pub fn decide(
    req: &Inbound,
    subnet: Option<&SubnetPolicy>,
    policy: &Policy,
    view: &impl LeaseView,
    alloc: &mut Allocator,
    ctx: Ctx,
) -> Decision {
    decide_classified(req, subnet, policy, view, alloc, ctx, Classification::default())
}

/// [`decide`] for a packet classified on receipt (`cls`): the engine
/// continues Kea's classification after the host lookup and after the
/// address is chosen, and applies the classes (subnets, pools, options,
/// boot fields, lifetimes).
pub fn decide_classified(
    req: &Inbound,
    subnet: Option<&SubnetPolicy>,
    policy: &Policy,
    view: &impl LeaseView,
    alloc: &mut Allocator,
    ctx: Ctx,
    mut cls: Classification<'_>,
) -> Decision {
    let mut d = decide_dhcp(req, subnet, policy, view, alloc, ctx, &mut cls);
    if let (Some((msg, _)), Some(pkt)) = (&mut d.reply, &cls.packet)
        && !policy.flex.is_empty()
    {
        super::flex::apply(&policy.flex, msg, pkt, &cls.classes);
    }
    if req.bootp { bootp_reply(d) } else { d }
}

/// A packet's client classes as the engine sees them, and the packet the
/// later passes evaluate tests on (`None`: classification is off and
/// nothing is evaluated).
#[derive(Clone, Debug, Default)]
pub struct Classification<'a> {
    /// The classes assigned so far.
    pub classes: ClientClasses,
    /// The packet tests read.
    pub packet: Option<Packet<'a>>,
    /// A global reservation was found before subnet selection
    /// (`early-global-reservations-lookup`): the client is `KNOWN`.
    pub early_known: bool,
}

/// Kea's `earlyGHRLookup`, before subnet selection when
/// `early-global-reservations-lookup` is on: a global reservation's classes
/// join the packet (the receipt tests redone), then `KNOWN` and the tests
/// that depend on it, so the classes can select the subnet. `false`: the
/// packet is now in `DROP`.
pub fn early_global_lookup(policy: &Policy, req: &Inbound, cls: &mut Classification<'_>) -> bool {
    let (Some((hosts, order)), Some(pkt)) = (&policy.early_hosts, cls.packet) else { return true };
    let client = client_key(req);
    let Some(host) = hosts.find(order, &client.ids()) else { return true };
    host_classes(policy, host, &pkt, &mut cls.classes);
    cls.classes.add(classify::KNOWN);
    classify::evaluate(&policy.classes, classify::Pass::AfterHostLookup, &pkt, &mut cls.classes);
    cls.early_known = true;
    !cls.classes.contains(classify::DROP)
}

/// A host's `client-classes` join the packet: the classes set by tests
/// are dropped and the receipt pass redone, so tests see the host's.
fn host_classes(policy: &Policy, host: &Host, pkt: &Packet<'_>, classes: &mut ClientClasses) {
    if host.classes.is_empty() {
        return;
    }
    classes.remove_where(|c| policy.class(c).is_some_and(|d| d.def.test.is_some()));
    for c in &host.classes {
        classes.add(c);
    }
    classify::evaluate(&policy.classes, classify::Pass::OnReceipt, pkt, classes);
}

/// Kea's classification after the host lookup (`Dhcpv4Exchange`): the
/// host's classes (the first pass redone so tests see them), then
/// `KNOWN` or `UNKNOWN` and the tests that depend on them. `known`: a
/// global reservation was already found early.
fn after_host_lookup(policy: &Policy, host: Option<&Host>, known: bool, pkt: &Packet<'_>, classes: &mut ClientClasses) {
    if let Some(h) = host {
        host_classes(policy, h, pkt, classes);
    }
    classes.add(if host.is_some() || known { classify::KNOWN } else { classify::UNKNOWN });
    classify::evaluate(&policy.classes, classify::Pass::AfterHostLookup, pkt, classes);
}

/// What a packet's classes add to a reply from `subnet` for address `a`.
#[derive(Debug, Default)]
struct Extras {
    /// Class options Kea would send: codes no pool, subnet or shared
    /// network sets, the first class setting one winning.
    options: OptionBytes,
    next_server: Option<Ipv4Addr>,
    server_hostname: Option<String>,
    boot_file_name: Option<String>,
}

/// The required classes of the network, subnet and `a`'s pool evaluated
/// (Kea's `requiredClassify`), then what the classes add to the reply
/// (`buildCfgOptionList`, `setFixedFields`).
fn extras(policy: &Policy, subnet: &SubnetPolicy, a: Option<Ipv4Addr>, cls: &Classification<'_>) -> Extras {
    let mut out = Extras::default();
    let Some(pkt) = cls.packet else { return out };
    if policy.classes.is_empty() {
        return out;
    }
    let pool = a.filter(|a| !a.is_unspecified()).and_then(|a| subnet.pool_of(a));
    let required: Vec<&str> =
        subnet.classes.required.iter().chain(pool.into_iter().flat_map(|p| p.classes.required.iter())).map(String::as_str).collect();
    let mut with_required;
    let classes = if required.is_empty() {
        &cls.classes
    } else {
        with_required = cls.classes.clone();
        classify::evaluate_required(&policy.classes, required, &pkt, &mut with_required);
        &with_required
    };
    let scoped = |c: &u8| subnet.classes.scoped_codes.contains(c) || pool.is_some_and(|p| p.classes.scoped_codes.contains(c));
    for def in classes.iter().filter_map(|c| policy.class(c)) {
        for (code, v) in def.options.iter().filter(|(c, _)| !scoped(c)) {
            out.options.entry(*code).or_insert_with(|| v.clone());
        }
        out.next_server = out.next_server.or(def.def.next_server);
        out.server_hostname = out.server_hostname.take().or_else(|| def.def.server_hostname.clone());
        out.boot_file_name = out.boot_file_name.take().or_else(|| def.def.boot_file_name.clone());
    }
    out
}

/// The `valid-lifetime` of the first class of the packet that sets one.
fn class_valid(policy: &Policy, cls: &ClientClasses) -> Option<(u32, u32, u32)> {
    if policy.classes.is_empty() {
        return None;
    }
    cls.iter().find_map(|c| policy.class(c)?.def.valid_lifetime)
}

/// Boot fields a class sets override the subnet's (Kea's
/// `setFixedFields`, step 2).
fn apply_fields(msg: &mut Message, e: &Extras) {
    if let Some(a) = e.next_server {
        msg.set_siaddr(a);
    }
    if let Some(n) = &e.server_hostname {
        msg.set_sname_str(n);
    }
    if let Some(f) = &e.boot_file_name {
        msg.set_fname_str(f);
    }
}

/// DHCP-only options Kea's `libdhcp_bootp.so` removes from a BOOTP reply.
const DHCP_SPECIFIC_OPTIONS: [u8; 11] = [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61];

/// The BOOTP form of a decision: the ACK without its DHCP-only options;
/// no reply where DHCP would NAK.
fn bootp_reply(mut d: Decision) -> Decision {
    if let Some((msg, _)) = &mut d.reply {
        if msg.opts().msg_type() == Some(MessageType::Nak) {
            return Decision { reply: None, write: d.write, silence: Some(Silence::NotAuthoritative) };
        }
        for code in DHCP_SPECIFIC_OPTIONS {
            msg.opts_mut().remove(OptionCode::from(code));
        }
    }
    d
}

/// The bytes of a reply as sent: a BOOTP reply (no message type) is padded
/// to the 300 bytes of RFC 951's fixed format, as Kea pads it.
pub fn reply_bytes(reply: &Message) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
    use dhcproto::Encodable as _;
    let mut bytes = reply.to_vec()?;
    if reply.opts().msg_type().is_none() && bytes.len() < BOOTP_MIN_LEN {
        bytes.resize(BOOTP_MIN_LEN, 0);
    }
    Ok(bytes)
}

/// RFC 951: 236 fixed bytes and 64 of vendor extensions.
const BOOTP_MIN_LEN: usize = 300;

fn decide_dhcp(
    req: &Inbound,
    subnet: Option<&SubnetPolicy>,
    policy: &Policy,
    view: &impl LeaseView,
    alloc: &mut Allocator,
    ctx: Ctx,
    cls: &mut Classification<'_>,
) -> Decision {
    let Some(subnet) = subnet else { return Decision::silent(Silence::NoSubnet) };
    let client = client_key(req);
    let now = ctx.now;
    if let Some(pkt) = cls.packet {
        let host = link_reservation(policy, subnet, &client, &cls.classes).map(|(_, h)| h);
        after_host_lookup(policy, host, cls.early_known, &pkt, &mut cls.classes);
        if cls.classes.contains(classify::DROP) {
            return Decision::silent(Silence::ClassDrop);
        }
    }
    let cls: &Classification<'_> = cls;
    // The lease at `a`, if it belongs to this client as Kea's RELEASE and
    // DECLINE judge it (`Lease4::belongsToClient`: client-ids when both
    // have one, else hardware addresses; whatever the subnet).
    let owned = |a: Ipv4Addr| {
        let h = view.by_address(a).filter(|h| h.state != HeldState::Declined)?;
        let mine = match (&h.client_id, &client.client_id) {
            (Some(x), Some(y)) => x == y,
            _ => !h.hwaddr.is_empty() && h.hwaddr == client.hwaddr,
        };
        mine.then_some(h)
    };
    match req.kind {
        Kind::Discover => {
            // Kea's hint: the requested address, else ciaddr.
            let ciaddr = req.msg.ciaddr();
            let hint = req.requested_ip.or((!ciaddr.is_unspecified()).then_some(ciaddr));
            let Some((s, a)) = choose(view, alloc, policy, subnet, &client, &cls.classes, hint, now) else {
                return Decision::silent(Silence::PoolExhausted);
            };
            alloc.add_offer(a, client.clone(), now + OFFER_HOLD_SECS);
            let valid = class_valid(policy, &cls.classes);
            let timers = lease_times(req, s, &client, a, view.by_address(a).as_ref(), now, valid);
            let msg = grant(req, s, ctx, a, MessageType::Offer, timers.timers, &extras(policy, s, Some(a), cls));
            let dest = destination(req, &msg, ctx);
            Decision { reply: Some((msg, dest)), write: None, silence: None }
        }
        Kind::Request => request(req, policy, subnet, view, alloc, ctx, client, cls),
        Kind::Release => match owned(req.msg.ciaddr()) {
            Some(_) => Decision::write_only(LeaseWrite::Remove(req.msg.ciaddr())),
            None => Decision::silent(Silence::NotOwner),
        },
        Kind::Decline => {
            // Kea: option 50 is mandatory in a DECLINE.
            let Some(a) = req.requested_ip else { return Decision::silent(Silence::Incomplete) };
            match owned(a) {
                Some(h) => {
                    let probation = policy.decline_probation_period;
                    Decision::write_only(LeaseWrite::Upsert(NewLease {
                        address: a,
                        subnet_id: h.subnet_id,
                        htype: req.htype,
                        hwaddr: Vec::new(),
                        client_id: None,
                        valid_lifetime: probation,
                        expire: now + u64::from(probation),
                        hostname: String::new(),
                        state: HeldState::Declined,
                        relay_agent_info: None,
                    }))
                }
                None => Decision::silent(Silence::NotOwner),
            }
        }
        Kind::Inform => {
            // Kea's acceptDirectRequest: an unrelayed INFORM from 0.0.0.0
            // without ciaddr has nowhere to go back to.
            if req.msg.ciaddr().is_unspecified() && req.msg.giaddr().is_unspecified() && req.source.is_unspecified() {
                return Decision::silent(Silence::Incomplete);
            }
            let mut msg = reply_header(req, subnet, MessageType::Ack);
            msg.set_ciaddr(req.msg.ciaddr());
            // Kea: a relayed INFORM without ciaddr goes back through the
            // relay with the broadcast flag, so the relay can deliver it.
            if req.msg.ciaddr().is_unspecified() && !req.msg.giaddr().is_unspecified() {
                msg.set_flags(Flags::default().set_broadcast());
            }
            let extras = extras(policy, subnet, None, cls);
            add_options(&mut msg, req, subnet, ctx, None, reservation_of(subnet, &client), &extras);
            apply_fields(&mut msg, &extras);
            let dest = destination(req, &msg, ctx);
            Decision { reply: Some((msg, dest)), write: None, silence: None }
        }
    }
}

/// The hostname a grant of `a` stores, and whether Kea generated it (then
/// lease caching never reuses the lease): with option 81, the name Kea
/// answers with ([`client_name::answer`]); else the reservation's, else
/// the client's option 12.
fn granted_hostname(req: &Inbound, subnet: &SubnetPolicy, client: &ClientKey, a: Ipv4Addr) -> (String, bool) {
    let reserved = reservation_of(subnet, client).and_then(|r| r.hostname.clone());
    if let Some(fqdn) = &req.fqdn {
        return client_name::answer(fqdn, reserved.as_deref(), &subnet.names, a)
            .map_or((String::new(), false), |ans| (ans.hostname, ans.generated));
    }
    (reserved.or_else(|| req.hostname.clone()).unwrap_or_default(), false)
}

/// Lease time and timers of a grant of `current`'s address in `subnet`,
/// and whether it reuses `current` as it stands (lease caching).
#[allow(clippy::too_many_arguments)]
fn lease_times(
    req: &Inbound,
    subnet: &SubnetPolicy,
    client: &ClientKey,
    a: Ipv4Addr,
    current: Option<&Held>,
    now: u64,
    class_valid: Option<(u32, u32, u32)>,
) -> Grant {
    let (hostname, generated) = granted_hostname(req, subnet, client, a);
    // Kea's BOOTP clients get an infinite lease, never reused.
    if req.bootp {
        let timers = super::policy::Timers { valid: u32::MAX, t1: None, t2: None };
        return Grant { timers, reused: false, hostname };
    }
    // Kea's getValidLft: the first class with a valid-lifetime, else the
    // subnet's; T1/T2 stay the subnet's rules.
    let lifetimes = match class_valid {
        Some((min_valid, valid, max_valid)) => super::policy::Lifetimes { valid, min_valid, max_valid, ..subnet.lifetimes },
        None => subnet.lifetimes,
    };
    let full = lifetimes.lease_times(requested_lease_time(req));
    match current.filter(|_| !generated).and_then(|h| reusable(subnet, h, client, full.valid, &hostname, now)) {
        Some(left) => Grant {
            timers: lifetimes.timers_for(left),
            reused: true,
            hostname,
        },
        None => Grant {
            timers: full,
            reused: false,
            hostname,
        },
    }
}

/// What a grant gives: its timers, and whether it reuses the stored lease.
struct Grant {
    timers: super::policy::Timers,
    reused: bool,
    hostname: String,
}

/// A REQUEST, decided as Kea 2.2 does (`Dhcpv4Srv::assignLease`, then
/// `AllocEngine::requestLease4`): INIT-REBOOT first checks that the client
/// is known and right about its address (an unknown client is NAKed only
/// by an authoritative server, ignored otherwise); then, whatever the
/// state, the address asked for (option 50, else ciaddr) is refused with a
/// NAK when reserved for another client, leased to another, or not the
/// client's free reservation; an address outside every pool of the link
/// and not reserved for the client is ignored; otherwise it is granted.
#[allow(clippy::too_many_arguments)]
fn request(
    req: &Inbound,
    policy: &Policy,
    subnet: &SubnetPolicy,
    view: &impl LeaseView,
    alloc: &mut Allocator,
    ctx: Ctx,
    client: ClientKey,
    cls: &Classification<'_>,
) -> Decision {
    let classes = &cls.classes;
    let now = ctx.now;
    let ciaddr = req.msg.ciaddr();
    let nak = |why: &str| {
        let msg = nak(req, subnet, ctx, why);
        let dest = destination(req, &msg, ctx);
        Decision { reply: Some((msg, dest)), write: None, silence: None }
    };
    if let Some(sid) = req.server_id
        && !is_our_server_id(req, policy, classes, sid, ctx)
    {
        // SELECTING another server's offer.
        if let Some(a) = alloc.offer_of(subnet, &client, ctx.now) {
            alloc.drop_offer(a);
        }
        return Decision::silent(Silence::OtherServerSelected);
    }
    if req.server_id.is_none()
        && let Some(a) = req.requested_ip
    {
        // INIT-REBOOT.
        match link_client_lease(view, policy, subnet, &client, classes) {
            None if !subnet.authoritative => return Decision::silent(Silence::NotAuthoritative),
            None => return nak("unknown client"),
            Some((_, h)) if h.address != a => return nak("client holds another address"),
            Some(_) => {}
        }
    }
    let reservation = link_reservation(policy, subnet, &client, classes).and_then(|(s, r)| Some((s, r.address?)));
    // Kea's hint: option 50, else ciaddr; an option 50 of 0.0.0.0 names no
    // address (Kea then allocates afresh, or NAKs when nothing is free).
    let hint = match req.requested_ip {
        Some(a) => (!a.is_unspecified()).then_some(a),
        None => (!ciaddr.is_unspecified()).then_some(ciaddr),
    };
    let Some(target) = hint.or(reservation.map(|(_, a)| a)) else {
        // A REQUEST naming no address: Kea picks one from the pools.
        return match choose(view, alloc, policy, subnet, &client, classes, None, now) {
            Some((s, a)) => ack(req, s, policy, view, alloc, ctx, &client, cls, a),
            None => nak("no address available"),
        };
    };
    let target_subnet = policy.link_subnet_of(subnet, target);
    let reserved_for_client = reservation.is_some_and(|(_, a)| a == target);
    // Kea's addressReserved: another client's reservation in the subnet.
    if !reserved_for_client && target_subnet.is_some_and(|s| s.reserved.contains_key(&target)) {
        return nak("address is reserved for another client");
    }
    if let Some(h) = view.by_address(target)
        && h.state != HeldState::Reclaimed
        && h.expire > now
        && !target_subnet.is_some_and(|s| owns(s, &h, &client))
    {
        return nak("address is leased to another client");
    }
    // The client should come back for its reservation, which is free.
    if let Some((_, a)) = reservation
        && a != target
        && view.by_address(a).is_none_or(|h| h.state == HeldState::Reclaimed || h.expire <= now)
    {
        return nak("client has a reservation for another address");
    }
    let in_allowed_pool = |s: &SubnetPolicy| s.allows(classes) && s.allowed_pool_of(target, classes).is_some();
    let Some(target_subnet) = target_subnet.filter(|s| reserved_for_client || in_allowed_pool(s)) else {
        return Decision::silent(Silence::UnknownAddress);
    };
    if !available(view, alloc, target_subnet, &client, classes, target, now, Offers::Ignore) {
        return nak("address not available");
    }
    ack(req, target_subnet, policy, view, alloc, ctx, &client, cls, target)
}

/// Kea's `acceptServerId`: our address on this link, the relay's server
/// identifier override (RFC 5107), or an option 54 configured for any
/// subnet (with its network and global options merged in) or for one of
/// the client's classes — before subnet selection Kea cannot know which.
fn is_our_server_id(req: &Inbound, policy: &Policy, classes: &ClientClasses, sid: Ipv4Addr, ctx: Ctx) -> bool {
    let configured = |o: &OptionBytes| o.get(&54).is_some_and(|o| o.data == sid.octets());
    sid == ctx.server_id
        || req.server_id_override() == Some(sid)
        || policy.subnets.iter().any(|s| configured(&s.options))
        || classes.iter().filter_map(|c| policy.class(c)).any(|c| configured(&c.options))
}

/// The ACK granting `target` in `subnet`, with the lease write unless
/// lease caching reuses the client's lease as it stands.
#[allow(clippy::too_many_arguments)]
fn ack(
    req: &Inbound,
    subnet: &SubnetPolicy,
    policy: &Policy,
    view: &impl LeaseView,
    alloc: &mut Allocator,
    ctx: Ctx,
    client: &ClientKey,
    cls: &Classification<'_>,
    target: Ipv4Addr,
) -> Decision {
    alloc.drop_offer(target);
    let current = view.by_address(target).filter(|h| owns(subnet, h, client));
    let grant_of =
        lease_times(req, subnet, client, target, current.as_ref(), ctx.now, class_valid(policy, &cls.classes));
    let extras = extras(policy, subnet, Some(target), cls);
    let msg = grant(req, subnet, ctx, target, MessageType::Ack, grant_of.timers, &extras);
    let dest = destination(req, &msg, ctx);
    if grant_of.reused {
        return Decision { reply: Some((msg, dest)), write: None, silence: None };
    }
    let write = LeaseWrite::Upsert(NewLease {
        address: target,
        subnet_id: subnet.id,
        htype: req.htype,
        hwaddr: req.hwaddr.clone(),
        client_id: req.client_id.clone(),
        valid_lifetime: grant_of.timers.valid,
        expire: ctx.now + u64::from(grant_of.timers.valid),
        hostname: grant_of.hostname,
        state: HeldState::Active,
        relay_agent_info: req.relay_agent_info.clone().filter(|_| subnet.store_extended_info),
    });
    Decision { reply: Some((msg, dest)), write: Some(write), silence: None }
}

fn requested_lease_time(req: &Inbound) -> Option<u32> {
    match req.msg.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
        _ => None,
    }
}

/// The fixed part of any reply: BOOTREPLY echoing the request's identity.
fn reply_header(req: &Inbound, subnet: &SubnetPolicy, kind: MessageType) -> Message {
    let m = &req.msg;
    let mut r = Message::new_with_id(
        m.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        subnet.next_server,
        m.giaddr(),
        m.chaddr(),
    );
    r.set_opcode(Opcode::BootReply);
    r.set_htype(HType::from(req.htype));
    r.set_hops(m.hops());
    r.set_flags(m.flags());
    // Kea's copyDefaultOptions: the relay agent information and the subnet
    // selection option go back unchanged, asked for or not.
    if let Some(rai) = req.relay_agent_info.as_deref().and_then(relay_agent_option) {
        r.opts_mut().insert(rai);
    }
    if let Some(sel) = m.opts().get(OptionCode::SubnetSelection) {
        r.opts_mut().insert(sel.clone());
    }
    if let Some(name) = &subnet.server_hostname {
        r.set_sname_str(name);
    }
    if let Some(file) = &subnet.boot_file_name {
        r.set_fname_str(file);
    }
    r.opts_mut().insert(DhcpOption::MessageType(kind));
    r
}

/// Option 82 from its payload, as the typed option: the encoder writes an
/// untyped 82 twice (once in code order, once last). Sub-options come out
/// in code order, as Kea packs the option it parsed.
fn relay_agent_option(payload: &[u8]) -> Option<DhcpOption> {
    use dhcproto::Decodable as _;
    let info = dhcproto::v4::relay::RelayAgentInformation::decode(&mut dhcproto::Decoder::new(payload)).ok()?;
    Some(DhcpOption::RelayAgentInformation(info))
}

/// OFFER or ACK of `a`, with `timers`.
fn grant(
    req: &Inbound,
    subnet: &SubnetPolicy,
    ctx: Ctx,
    a: Ipv4Addr,
    kind: MessageType,
    timers: super::policy::Timers,
    extras: &Extras,
) -> Message {
    let mut msg = reply_header(req, subnet, kind);
    msg.set_yiaddr(a);
    if kind == MessageType::Ack {
        msg.set_ciaddr(req.msg.ciaddr());
    }
    let client = client_key(req);
    // Kea sends the host's options and hostname whatever address it got.
    let reservation = reservation_of(subnet, &client);
    add_options(&mut msg, req, subnet, ctx, Some(timers), reservation, extras);
    apply_fields(&mut msg, extras);
    msg
}

fn nak(req: &Inbound, subnet: &SubnetPolicy, ctx: Ctx, why: &str) -> Message {
    let mut msg = reply_header(req, subnet, MessageType::Nak);
    // A NAK carries no boot parameters; it goes where Kea sends it (see
    // `destination`), with the request's flags as Kea copies them.
    msg.set_siaddr(Ipv4Addr::UNSPECIFIED);
    msg.clear_sname();
    msg.clear_fname();
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(ctx.server_id));
    msg.opts_mut().insert(DhcpOption::Message(why.to_string()));
    if subnet.echo_client_id
        && let Some(id) = &req.client_id
    {
        msg.opts_mut().insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    msg
}

/// Options Kea always sends when configured, besides those requested
/// (its `appendBasicOptions`): a configured server identifier (option 54
/// in `option-data` at any level) replaces our address on the link.
const BASIC_OPTIONS: [u8; 4] = [3, 6, 15, 54];

fn add_options(
    msg: &mut Message,
    req: &Inbound,
    subnet: &SubnetPolicy,
    ctx: Ctx,
    timers: Option<super::policy::Timers>,
    reservation: Option<&Host>,
    extras: &Extras,
) {
    let opts = msg.opts_mut();
    if let Some(t) = timers {
        opts.insert(DhcpOption::AddressLeaseTime(t.valid));
        if let Some(t1) = t.t1 {
            opts.insert(DhcpOption::Renewal(t1));
        }
        if let Some(t2) = t.t2 {
            opts.insert(DhcpOption::Rebinding(t2));
        }
    }
    if subnet.echo_client_id
        && let Some(id) = &req.client_id
    {
        opts.insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    // Merge: subnet (already over global) < pool < reservation.
    let yiaddr = msg.yiaddr();
    let mut merged: OptionBytes = subnet.options.clone();
    if let Some(pool) = subnet.pool_of(yiaddr) {
        merged.extend(pool.options.iter().map(|(k, v)| (*k, v.clone())));
    }
    merged.extend(extras.options.iter().map(|(k, v)| (*k, v.clone())));
    if let Some(r) = reservation {
        merged.extend(r.options.iter().map(|(k, v)| (*k, v.clone())));
    }
    let opts = msg.opts_mut();
    // Kea's appendServerID: our address on the link, unless a server
    // identifier is configured for this client (added below).
    if !merged.contains_key(&54) {
        opts.insert(DhcpOption::ServerIdentifier(ctx.server_id));
    }
    // Kea gives every lease the subnet's own mask (a configured
    // subnet-mask only goes where there is no lease, e.g. DHCPINFORM).
    if timers.is_some() {
        opts.insert(DhcpOption::SubnetMask(subnet.mask()));
    }
    // A grant answers option 81 with Kea's name and flags (and then sends
    // no option 12); otherwise a reserved hostname goes in option 12.
    match (&req.fqdn, timers) {
        (Some(fqdn), Some(_)) => {
            let reserved = reservation.and_then(|r| r.hostname.as_deref());
            if let Some(ans) = client_name::answer(fqdn, reserved, &subnet.names, yiaddr) {
                opts.insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::ClientFQDN, ans.option.encode())));
            }
        }
        _ => {
            if let Some(name) = reservation.and_then(|r| r.hostname.as_ref()) {
                opts.insert(DhcpOption::Hostname(name.clone()));
            }
        }
    }
    // Kea's appendRequestedOptions: a configured option is added when the
    // client asks for it, it is always-send or basic, and the reply does
    // not carry that code yet (lease time, T1/T2, mask, server identifier,
    // message type and the echoes of 61, 82 and 118 are the server's).
    for (code, value) in &merged {
        let wanted =
            value.always_send || BASIC_OPTIONS.contains(code) || req.parameter_request_list.contains(code);
        if wanted && !opts.contains(OptionCode::from(*code)) {
            let opt = match code {
                82 => relay_agent_option(&value.data),
                _ => Some(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(*code), value.data.clone()))),
            };
            if let Some(opt) = opt {
                opts.insert(opt);
            }
        }
    }
}

/// RFC 2131 §4.1 destination of a reply.
/// Where a reply goes, in Kea 2.2's order (`adjustRemoteAddr`): an INFORM
/// to its ciaddr, else through its relay; anything relayed to the relay;
/// a client with a ciaddr to that address (a NAK too); a NAK otherwise by
/// broadcast; an OFFER/ACK by broadcast when the client asks, else to
/// chaddr at yiaddr.
fn destination(req: &Inbound, reply: &Message, ctx: Ctx) -> Destination {
    let m = &req.msg;
    let chaddr = <[u8; 6]>::try_from(req.hwaddr.as_slice()).ok().filter(|_| req.htype == 1);
    let to_ciaddr = |ip: Ipv4Addr| match chaddr {
        Some(mac) if ctx.on_link => Destination::Chaddr { mac, ip },
        _ => Destination::Ciaddr(ip),
    };
    if req.kind == Kind::Inform && !m.ciaddr().is_unspecified() {
        return to_ciaddr(m.ciaddr());
    }
    if req.kind == Kind::Inform && m.giaddr().is_unspecified() && !req.source.is_unspecified() {
        return to_ciaddr(req.source);
    }
    if !m.giaddr().is_unspecified() {
        return Destination::Relay(m.giaddr());
    }
    if !m.ciaddr().is_unspecified() {
        return to_ciaddr(m.ciaddr());
    }
    let is_nak = reply.opts().msg_type() == Some(MessageType::Nak);
    match chaddr {
        Some(mac) if !is_nak && !m.flags().broadcast() && !reply.yiaddr().is_unspecified() => {
            Destination::Chaddr { mac, ip: reply.yiaddr() }
        }
        _ => Destination::Broadcast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::{
        inbound::classify,
        policy::{Lifetimes, OptionValue, Pool},
    };
    use dhcproto::{Encodable as _, v4};
    use std::collections::BTreeMap;

    const NOW: u64 = 1_800_000_000;
    const SID: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
    const M3: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[derive(Default)]
    struct Store(BTreeMap<Ipv4Addr, Held>);

    impl LeaseView for Store {
        fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
            self.0.get(&a).cloned()
        }
        fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
            self.0.values().find(|h| h.subnet_id == s && h.hwaddr == hw).cloned()
        }
        fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
            self.0.values().find(|h| h.subnet_id == s && h.client_id.as_deref() == Some(id)).cloned()
        }
    }

    impl Store {
        fn apply(&mut self, w: &LeaseWrite) {
            match w {
                LeaseWrite::Upsert(l) => {
                    let state = l.state;
                    self.0.insert(
                        l.address,
                        Held {
                            address: l.address,
                            subnet_id: l.subnet_id,
                            hwaddr: l.hwaddr.clone(),
                            client_id: l.client_id.clone(),
                            expire: l.expire,
                            valid_lifetime: l.valid_lifetime,
                            hostname: l.hostname.clone(),
                            state,
                        },
                    );
                }
                LeaseWrite::Remove(a) => {
                    self.0.remove(a);
                }
            }
        }
    }

    fn opt(data: &[u8]) -> OptionValue {
        OptionValue { data: data.to_vec(), always_send: false }
    }

    fn venus(pool_end: u8, authoritative: bool) -> Policy {
        let mut options = BTreeMap::new();
        options.insert(3, opt(&[192, 168, 50, 1]));
        options.insert(6, opt(&[192, 168, 50, 2, 192, 168, 50, 3]));
        options.insert(15, opt(b"venus.test"));
        options.insert(42, opt(&[192, 168, 50, 9])); // ntp: only when asked
        let r = Host {
            address: Some(Ipv4Addr::new(192, 168, 50, 33)),
            hostname: Some("mutante3".into()),
            options: BTreeMap::new(),
            classes: Vec::new(),
        };
        let reserved_in_pool =
            Host { address: Some(Ipv4Addr::new(192, 168, 50, 100)), hostname: None, options: BTreeMap::new(), classes: Vec::new() };
        let mut hosts = crate::dhcp::policy::HostTable::default();
        hosts.by_hwaddr.insert(M3.to_vec(), r);
        hosts.by_hwaddr.insert(vec![2, 0, 0, 0, 0, 0x99], reserved_in_pool);
        let reserved = hosts.by_hwaddr.values().filter_map(|r| Some((r.address?, ()))).collect();
        Policy {
            subnets: vec![SubnetPolicy {
                id: 1,
                network: Ipv4Addr::new(192, 168, 50, 0),
                prefix_len: 24,
                pools: vec![Pool {
                    start: Ipv4Addr::new(192, 168, 50, 100),
                    end: Ipv4Addr::new(192, 168, 50, pool_end),
                    options: BTreeMap::new(),
                    classes: Default::default(),
                }],
                options,
                by_hwaddr: HashMap::new(),
                by_client_id: HashMap::new(),
                hosts,
                global_hosts: None,
                identifiers: vec![crate::dhcp::policy::HostIdentifierType::HwAddress],
                reserved,
                lifetimes: Lifetimes {
                    valid: 60,
                    min_valid: 60,
                    max_valid: 60,
                    renew: Some(30),
                    rebind: Some(45),
                    calculate_tee_times: false,
                    t1_percent: 0.5,
                    t2_percent: 0.875,
                },
                authoritative,
                match_client_id: true,
                store_extended_info: false,
                echo_client_id: true,
                next_server: Ipv4Addr::UNSPECIFIED,
                server_hostname: None,
                boot_file_name: None,
                relay_addresses: vec![],
                interface: None,
                ha_server_name: None,
                shared_network: None,
                cache: Default::default(),
                names: Default::default(),
                classes: Default::default(),
                network_client_class: None,
            }],
            decline_probation_period: 86400,
            expired_leases: Default::default(),
            bootp: false,
            networks: Vec::new(),
            classes: Vec::new(),
            classify: false,
            flex: Default::default(),
            early_hosts: None,
        }
    }

    /// Option 81 as Forge's lease-caching test sends it: S set, an ASCII
    /// partial name.
    fn fqdn_s(name: &str) -> Option<Vec<u8>> {
        Some([&[1u8, 0, 0][..], name.as_bytes()].concat())
    }

    fn option_81(d: &Decision) -> Option<Vec<u8>> {
        let (m, _) = d.reply.as_ref()?;
        match m.opts().get(OptionCode::ClientFQDN)? {
            DhcpOption::Unknown(u) => Some(u.data().to_vec()),
            other => panic!("option 81 as {other:?}"),
        }
    }

    fn written_hostname(d: &Decision) -> Option<&str> {
        match &d.write {
            Some(LeaseWrite::Upsert(l)) => Some(&l.hostname),
            _ => None,
        }
    }

    #[test]
    fn option_81_is_answered_with_keas_name_and_flags_and_stored() {
        let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "ddns-qualifying-suffix": "example.org",
            "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
        let mut w = World::from_config(cfg);
        let mut d = pkt(v4::MessageType::Discover, M1);
        d.fqdn = fqdn_s("Laptop");
        let offer = w.send(&d);
        // N (updates off) and O (the client's S overridden), the name
        // lower-cased, qualified and made full.
        assert_eq!(option_81(&offer).unwrap(), b"\x0a\x00\x00laptop.example.org.");
        let a = offer.reply.unwrap().0.yiaddr();
        let mut r = pkt(v4::MessageType::Request, M1);
        (r.requested, r.server_id, r.fqdn) = (Some(a), Some(SID), fqdn_s("Laptop"));
        let ack = w.send(&r);
        assert_eq!(option_81(&ack).unwrap(), b"\x0a\x00\x00laptop.example.org.");
        assert_eq!(written_hostname(&ack), Some("laptop.example.org."));
        assert!(option_81(&w.request(M1, a)).is_none(), "no option 81 asked, none sent");
    }

    #[test]
    fn a_new_fqdn_name_ends_lease_caching_and_a_generated_one_is_never_cached() {
        let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "cache-max-age": 50,
            "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
        let mut w = World::from_config(cfg);
        let a = w.dora(M1);
        let renew = |w: &mut World, fqdn: Option<Vec<u8>>| {
            w.now += 1;
            let mut r = pkt(v4::MessageType::Request, M1);
            (r.ciaddr, r.fqdn) = (a, fqdn);
            w.send(&r)
        };
        assert_eq!(written_hostname(&renew(&mut w, fqdn_s("abc"))), Some("abc."), "a name is a change");
        assert!(renew(&mut w, fqdn_s("abc")).write.is_none(), "the same name: reused");
        assert_eq!(written_hostname(&renew(&mut w, fqdn_s("xyz"))), Some("xyz."));
        // An empty name is generated from the address, and never reused.
        let generated = format!("myhost-{}.", a.to_string().replace('.', "-"));
        assert_eq!(written_hostname(&renew(&mut w, fqdn_s(""))), Some(generated.as_str()));
        assert_eq!(written_hostname(&renew(&mut w, fqdn_s(""))), Some(generated.as_str()));
    }

    #[test]
    fn a_malformed_option_81_drops_the_packet() {
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.fqdn = Some(vec![0x09, 0, 0, b'a']); // N and S both set
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
        m.opts_mut().insert(DhcpOption::Unknown(v4::UnknownOption::new(OptionCode::ClientFQDN, p.fqdn.unwrap())));
        assert_eq!(classify(&m.to_vec().unwrap()).err(), Some(crate::dhcp::inbound::DropReason::BadOption));
    }

    struct Pkt {
        kind: v4::MessageType,
        mac: [u8; 6],
        ciaddr: Ipv4Addr,
        giaddr: Ipv4Addr,
        requested: Option<Ipv4Addr>,
        server_id: Option<Ipv4Addr>,
        prl: Vec<u8>,
        broadcast: bool,
        fqdn: Option<Vec<u8>>,
    }

    fn pkt(kind: v4::MessageType, mac: [u8; 6]) -> Pkt {
        Pkt {
            kind,
            mac,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            server_id: None,
            prl: vec![1, 3, 6, 15],
            broadcast: false,
            fqdn: None,
        }
    }

    impl Pkt {
        fn build(&self) -> Inbound {
            let mut m = Message::new(self.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, self.giaddr, &self.mac);
            if self.broadcast {
                m.set_flags(Flags::default().set_broadcast());
            }
            m.opts_mut().insert(DhcpOption::MessageType(self.kind));
            if let Some(a) = self.requested {
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
            }
            if let Some(a) = self.server_id {
                m.opts_mut().insert(DhcpOption::ServerIdentifier(a));
            }
            m.opts_mut().insert(DhcpOption::ParameterRequestList(
                self.prl.iter().map(|c| OptionCode::from(*c)).collect(),
            ));
            if let Some(v) = &self.fqdn {
                m.opts_mut().insert(DhcpOption::Unknown(v4::UnknownOption::new(OptionCode::ClientFQDN, v.clone())));
            }
            classify(&m.to_vec().unwrap()).unwrap()
        }
    }

    struct World {
        policy: Policy,
        store: Store,
        alloc: Allocator,
        now: u64,
    }

    impl World {
        fn new(pool_end: u8, authoritative: bool) -> Self {
            Self { policy: venus(pool_end, authoritative), store: Store::default(), alloc: Allocator::default(), now: NOW }
        }
        fn send(&mut self, p: &Pkt) -> Decision {
            let req = p.build();
            let subnet = if p.giaddr != Ipv4Addr::UNSPECIFIED {
                self.policy.subnet_for_relay(p.giaddr)
            } else {
                self.policy.subnet(1)
            };
            let d = decide(&req, subnet, &self.policy, &self.store, &mut self.alloc, Ctx { now: self.now, server_id: SID, on_link: true });
            if let Some(w) = &d.write {
                self.store.apply(w);
            }
            d
        }
        /// Full DORA; returns the ACKed address.
        fn dora(&mut self, mac: [u8; 6]) -> Ipv4Addr {
            let offer = self.send(&pkt(v4::MessageType::Discover, mac));
            let a = offer.reply.expect("offer").0.yiaddr();
            let mut req = pkt(v4::MessageType::Request, mac);
            req.requested = Some(a);
            req.server_id = Some(SID);
            let ack = self.send(&req);
            let (m, _) = ack.reply.expect("ack");
            assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Ack));
            m.yiaddr()
        }
    }

    impl World {
        /// A world built from a Kea config (first subnet selected, as if
        /// every request came in on its link).
        fn from_config(json: &str) -> Self {
            let policy = crate::glue::compile(&crate::config::parse(json, "test").unwrap());
            Self {
                policy,
                store: Store::default(),
                alloc: Allocator::default(),
                now: NOW,
            }
        }
        fn request(&mut self, mac: [u8; 6], ciaddr: Ipv4Addr) -> Decision {
            let mut r = pkt(v4::MessageType::Request, mac);
            r.ciaddr = ciaddr;
            self.send(&r)
        }
    }

    /// One link with two subnets of one address each (Forge's shape).
    const TWO_ON_A_LINK: &str = r#"{ "Dhcp4": { "valid-lifetime": 60, "authoritative": true, "shared-networks": [
        { "name": "lan", "authoritative": true, "subnet4": [
            { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.1" } ],
              "reservations": [ { "hw-address": "02:00:00:00:00:09", "ip-address": "192.168.50.9" } ] },
            { "id": 2, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ],
              "reservations": [ { "hw-address": "02:00:00:00:00:03", "ip-address": "192.168.51.33" } ] } ] } ] } }"#;

    /// Forge's overlapping pools: subnets of one network overlap; once the
    /// first is exhausted, a requested address in the sibling's pool (but
    /// also inside the first's prefix) is granted from the sibling.
    #[test]
    fn overlapping_siblings_grant_from_the_subnet_whose_pool_holds_the_address() {
        let mut w = World::from_config(
            r#"{ "Dhcp4": { "authoritative": true, "shared-networks": [ { "name": "n", "subnet4": [
                { "id": 2, "subnet": "192.168.0.0/27", "pools": [ { "pool": "192.168.0.1-192.168.0.5" } ] },
                { "id": 1, "subnet": "192.168.0.0/25", "pools": [ { "pool": "192.168.0.2-192.168.0.4" } ] } ] } ] } }"#,
        );
        for i in 1..=3 {
            w.dora([2, 0, 0, 0, 0x70, i]);
        }
        assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(w.store.0[&Ipv4Addr::new(192, 168, 0, 1)].subnet_id, 2);
    }

    #[test]
    fn shared_network_falls_through_to_the_next_subnet_when_one_is_exhausted() {
        let mut w = World::from_config(TWO_ON_A_LINK);
        assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
        assert_eq!(w.dora(M2), Ipv4Addr::new(192, 168, 51, 1));
        assert_eq!(
            w.store.0[&Ipv4Addr::new(192, 168, 51, 1)].subnet_id,
            2,
            "the lease names its own subnet"
        );
        // Both exhausted: silence, counted as such.
        assert_eq!(
            w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 0x77]))
                .silence,
            Some(Silence::PoolExhausted)
        );
        // Renewals in either subnet are answered from the selected one's link.
        assert_eq!(
            kind(&w.request(M2, Ipv4Addr::new(192, 168, 51, 1))),
            Some(v4::MessageType::Ack)
        );
        assert_eq!(
            kind(&w.request(M1, Ipv4Addr::new(192, 168, 50, 1))),
            Some(v4::MessageType::Ack)
        );
        // A reservation in the sibling subnet is found from the first one.
        assert_eq!(w.dora(M3), Ipv4Addr::new(192, 168, 51, 33));
        // Release and decline work for a lease of the sibling subnet.
        let mut rel = pkt(v4::MessageType::Release, M2);
        rel.ciaddr = Ipv4Addr::new(192, 168, 51, 1);
        assert_eq!(
            w.send(&rel).write,
            Some(LeaseWrite::Remove(Ipv4Addr::new(192, 168, 51, 1)))
        );
        // A client holding nothing asks for an address off the link: NAK.
        let mut reboot = pkt(v4::MessageType::Request, [2, 0, 0, 0, 0, 0x78]);
        reboot.requested = Some(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(kind(&w.send(&reboot)), Some(v4::MessageType::Nak));
    }

    #[test]
    fn lease_caching_reuses_an_unchanged_lease_inside_the_threshold() {
        let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "renew-timer": 300, "rebind-timer": 800, "cache-threshold": 0.25,
            "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
        let mut w = World::from_config(cfg);
        let a = w.dora(M1);
        let lease_time = |d: &Decision| match d
            .reply
            .as_ref()
            .unwrap()
            .0
            .opts()
            .get(OptionCode::AddressLeaseTime)
        {
            Some(DhcpOption::AddressLeaseTime(t)) => *t,
            other => panic!("{other:?}"),
        };
        let timers = |d: &Decision| {
            let o = d.reply.as_ref().unwrap().0.opts();
            (
                o.contains(OptionCode::Renewal),
                o.contains(OptionCode::Rebinding),
            )
        };
        // 200 s later (≤ 25 % of 1000): the same lease, 800 s left, no write.
        w.now += 200;
        let d = w.request(M1, a);
        assert_eq!(
            (kind(&d), lease_time(&d), d.write.as_ref()),
            (Some(v4::MessageType::Ack), 800, None)
        );
        // T2 (800) is not below what is left, so only T1 goes out (Kea's setTeeTimes).
        assert_eq!(timers(&d), (true, false));
        // A DISCOVER from the same client is offered what is left, too.
        let d = w.send(&pkt(v4::MessageType::Discover, M1));
        assert_eq!(lease_time(&d), 800);
        // Past the threshold: a fresh lease, written.
        w.now += 100;
        let d = w.request(M1, a);
        assert_eq!(lease_time(&d), 1000);
        assert!(d.write.is_some());
        assert_eq!(timers(&d), (true, true));
    }

    #[test]
    fn lease_caching_honours_max_age_and_refuses_changed_leases() {
        let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "cache-max-age": 50,
            "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
        let mut w = World::from_config(cfg);
        let a = w.dora(M1);
        w.now += 40;
        assert!(
            w.request(M1, a).write.is_none(),
            "40 s old, max age 50: reused"
        );
        w.now += 20;
        assert!(w.request(M1, a).write.is_some(), "60 s old: renewed");
        // A new hostname is a change: never reused.
        w.now += 1;
        let mut r = pkt(v4::MessageType::Request, M1);
        r.ciaddr = a;
        let mut req = r.build();
        req.hostname = Some("renamed".into());
        let subnet = w.policy.subnet(1);
        let d = decide(
            &req,
            subnet,
            &w.policy,
            &w.store,
            &mut w.alloc,
            Ctx { now: w.now, server_id: SID, on_link: true },
        );
        assert!(d.write.is_some());
    }

    fn yiaddr(d: &Decision) -> Ipv4Addr {
        d.reply.as_ref().expect("a reply").0.yiaddr()
    }

    /// A DISCOVER from `mac` with option 61 and option 82 as given.
    fn discover_with(w: &mut World, mac: [u8; 6], cid: Option<&[u8]>, rai: Option<&[u8]>) -> Decision {
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
        if let Some(c) = cid {
            m.opts_mut().insert(DhcpOption::ClientIdentifier(c.to_vec()));
        }
        if let Some(r) = rai {
            m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
        }
        let req = classify(&m.to_vec().unwrap()).unwrap();
        let subnet = w.policy.subnet(1);
        decide(&req, subnet, &w.policy, &w.store, &mut w.alloc, Ctx { now: w.now, server_id: SID, on_link: true })
    }

    #[test]
    fn host_identifiers_follow_kea_order_and_types() {
        let cfg = |ids: &str| {
            format!(
                r#"{{ "Dhcp4": {{ "host-reservation-identifiers": {ids}, "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24",
                "pools": [ {{ "pool": "192.168.50.1-192.168.50.1" }} ], "reservations": [
                {{ "circuit-id": "060106020603", "ip-address": "192.168.50.10" }},
                {{ "duid": "04:33:44", "ip-address": "192.168.50.11" }},
                {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.12" }},
                {{ "client-id": "01:02:00:00:00:00:01", "ip-address": "192.168.50.13" }} ] }} ] }} }}"#
            )
        };
        let rai: &[u8] = &[1, 6, 6, 1, 6, 2, 6, 3];
        let duid_cid: &[u8] = &[0xff, 1, 2, 3, 0xff, 4, 0x33, 0x44];
        let mut w = World::from_config(&cfg(r#"["circuit-id"]"#));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 10));
        let mut w = World::from_config(&cfg(r#"["duid"]"#));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, Some(duid_cid), None)), Ipv4Addr::new(192, 168, 50, 11));
        // Not enabled: the circuit-id reservation does not apply.
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 1));
        // Kea's default order: hw-address before client-id.
        let mut w = World::from_config(&cfg(r#"["hw-address", "duid", "circuit-id", "client-id"]"#));
        let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
        assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 12));
        let mut w = World::from_config(&cfg(r#"["client-id", "hw-address"]"#));
        let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
        assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 13));
    }

    #[test]
    fn reservation_flags_decide_which_reservations_count() {
        let cfg = |flags: &str| {
            format!(
                r#"{{ "Dhcp4": {{ {flags} "reservations": [ {{ "hw-address": "02:00:00:00:00:02", "ip-address": "192.168.50.20", "hostname": "global" }} ],
                "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24", "pools": [ {{ "pool": "192.168.50.1-192.168.50.5" }} ],
                "reservations": [ {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.1" }} ] }} ] }} }}"#
            )
        };
        // Defaults: in-subnet only; the reserved pool address is kept from others.
        let mut w = World::from_config(&cfg(""));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 2));
        assert_eq!(yiaddr(&discover_with(&mut w, M1, None, None)), Ipv4Addr::new(192, 168, 50, 1));
        // Global on: the global reservation's address, and its hostname.
        let mut w = World::from_config(&cfg(r#""reservations-global": true,"#));
        let d = discover_with(&mut w, M2, None, None);
        assert_eq!(yiaddr(&d), Ipv4Addr::new(192, 168, 50, 20));
        assert_eq!(d.reply.unwrap().0.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("global".into())));
        // In-subnet off: the subnet's reservation is ignored, its address free.
        let mut w = World::from_config(&cfg(r#""reservations-in-subnet": false,"#));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
        // Out of pool declared: in-pool reserved addresses are not checked.
        let mut w = World::from_config(&cfg(r#""reservations-out-of-pool": true,"#));
        assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    }

    #[test]
    fn relay_server_identifier_override_is_accepted() {
        let mut w = World::new(199, true);
        let other = Ipv4Addr::new(192, 168, 50, 253);
        let build = |rai: Option<&[u8]>| {
            let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
            m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
            m.opts_mut().insert(DhcpOption::ServerIdentifier(other));
            if let Some(r) = rai {
                m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
            }
            classify(&m.to_vec().unwrap()).unwrap()
        };
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&build(None), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        assert_eq!(d.silence, Some(Silence::OtherServerSelected));
        let rai = [11, 4, 192, 168, 50, 253];
        let d = decide(&build(Some(&rai)), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        assert_eq!(kind(&d), Some(v4::MessageType::Ack));
    }

    #[test]
    fn bootp_requests_get_an_infinite_lease_and_a_plain_bootreply() {
        let cfg = r#"{ "Dhcp4": { "valid-lifetime": 600, "hooks-libraries": [ { "library": "/usr/lib/kea/hooks/libdhcp_bootp.so" } ],
            "option-data": [ { "name": "routers", "data": "192.168.50.1" } ],
            "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.10" } ] } ] } }"#;
        let mut w = World::from_config(cfg);
        assert!(w.policy.bootp);
        let m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
        let mut bytes = m.to_vec().unwrap();
        // A BOOTP request: cookie and END, no option 53.
        bytes.truncate(240);
        bytes.push(255);
        assert_eq!(classify(&bytes).unwrap_err(), crate::dhcp::inbound::DropReason::NoMessageType);
        let req = crate::dhcp::inbound::classify_bootp(&bytes).unwrap();
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        let (reply, _) = d.reply.clone().unwrap();
        assert_eq!(reply.yiaddr(), Ipv4Addr::new(192, 168, 50, 1));
        assert_eq!(reply.opts().msg_type(), None, "no DHCP message type");
        for code in DHCP_SPECIFIC_OPTIONS {
            assert!(!reply.opts().contains(OptionCode::from(code)), "option {code} left in");
        }
        assert!(reply.opts().contains(OptionCode::Router));
        assert_eq!(reply_bytes(&reply).unwrap().len(), 300);
        match &d.write {
            Some(LeaseWrite::Upsert(l)) => assert_eq!(l.valid_lifetime, u32::MAX),
            other => panic!("{other:?}"),
        }
        // The same client later through DHCP keeps its address.
        w.store.apply(d.write.as_ref().unwrap());
        assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
    }

    fn kind(d: &Decision) -> Option<v4::MessageType> {
        d.reply.as_ref().and_then(|(m, _)| m.opts().msg_type())
    }

    #[test]
    fn discover_offers_first_free_pool_address_unicast_to_chaddr() {
        let mut w = World::new(199, true);
        let d = w.send(&pkt(v4::MessageType::Discover, M1));
        let (m, dest) = d.reply.unwrap();
        // .100 is reserved for another host, so the first free one is .101.
        assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 168, 50, 101));
        assert_eq!(dest, Destination::Chaddr { mac: M1, ip: m.yiaddr() });
        assert_eq!(m.opcode(), Opcode::BootReply);
        let o = m.opts();
        assert_eq!(o.get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SID)));
        assert_eq!(o.get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(60)));
        assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(30)));
        assert_eq!(o.get(OptionCode::Rebinding), Some(&DhcpOption::Rebinding(45)));
        assert_eq!(o.get(OptionCode::SubnetMask), Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0))));
        assert!(o.contains(OptionCode::Router));
        assert!(!o.contains(OptionCode::NtpServers), "not requested, not basic");
        assert!(d.write.is_none(), "an OFFER writes nothing");
    }

    /// The store as seen under an HA reuse grace period.
    struct Graced<'a>(&'a Store, crate::ha::ReuseGrace, u64);

    impl LeaseView for Graced<'_> {
        fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
            self.0.by_address(a).map(|h| self.1.apply(self.2, h))
        }
        fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
            self.0.by_hwaddr(s, hw).map(|h| self.1.apply(self.2, h))
        }
        fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
            self.0.by_client_id(s, id).map(|h| self.1.apply(self.2, h))
        }
    }

    #[test]
    fn reuse_grace_keeps_a_recently_expired_address_for_its_holder() {
        // mutante1 held .101 until NOW-10 in our copy; the dead partner may
        // have renewed it unseen. Partner-down began at NOW-5.
        let mut w = World::new(199, true);
        let first = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
        let mut r = pkt(v4::MessageType::Request, M1);
        (r.requested, r.server_id) = (Some(first), Some(SID));
        w.send(&r);
        w.store.0.get_mut(&first).unwrap().expire = NOW - 10;
        w.alloc = Allocator::default();
        let grace = crate::ha::ReuseGrace::new(NOW - 5, 60);
        let ctx = Ctx { now: NOW, server_id: SID, on_link: true };
        // Without the rule the expired address goes to the next client…
        let other = pkt(v4::MessageType::Discover, M2).build();
        let plain = decide(&other, w.policy.subnet(1), &w.policy, &w.store, &mut Allocator::default(), ctx);
        assert_eq!(plain.reply.unwrap().0.yiaddr(), first);
        // …with it, another address; the holder still gets its own back.
        let view = Graced(&w.store, grace, NOW);
        let held = decide(&other, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
        assert_ne!(held.reply.unwrap().0.yiaddr(), first);
        let own = pkt(v4::MessageType::Discover, M1).build();
        let back = decide(&own, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
        assert_eq!(back.reply.unwrap().0.yiaddr(), first);
        // Once the grace period is over, the address is free again.
        let after = Graced(&w.store, grace, grace.until());
        let later = decide(&other, w.policy.subnet(1), &w.policy, &after, &mut Allocator::default(), Ctx { now: grace.until(), server_id: SID, on_link: true });
        assert_eq!(later.reply.unwrap().0.yiaddr(), first);
    }

    #[test]
    fn offer_index_stays_in_step_with_offers() {
        let mut w = World::new(199, true);
        for i in 0..50u8 {
            w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, i]));
        }
        assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (50, 50));
        // A client asking again finds its own offer through the index.
        let first = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, 7])).reply.unwrap().0.yiaddr();
        assert_eq!(w.alloc.offers[&first].0.hwaddr, vec![2, 0, 0, 1, 0, 7]);
        // Accepting one removes it from both maps; expiry clears the rest.
        let mut req = pkt(v4::MessageType::Request, [2, 0, 0, 1, 0, 7]);
        req.requested = Some(first);
        req.server_id = Some(SID);
        assert_eq!(kind(&w.send(&req)), Some(v4::MessageType::Ack));
        assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (49, 49));
        w.alloc.expire_offers(NOW + OFFER_HOLD_SECS);
        assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (0, 0));
    }

    #[test]
    fn requested_options_are_sent() {
        let mut w = World::new(199, true);
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.prl = vec![42];
        let (m, _) = w.send(&p).reply.unwrap();
        assert!(m.opts().contains(OptionCode::NtpServers));
    }

    #[test]
    fn configured_options_follow_keas_append_rules() {
        let mut w = World::new(199, true);
        let s = &mut w.policy.subnets[0];
        for (code, data) in [
            (50, &[188u8, 188, 188, 2][..]),
            (57, &[0x09, 0x2d]),
            (1, &[255, 255, 0, 0]),
            (51, &[0, 0, 0, 9]),
            (61, &[9, 9]),
        ] {
            s.options.insert(code, opt(data));
        }
        let raw = |m: &Message, c: u8| match m.opts().get(OptionCode::from(c)) {
            Some(DhcpOption::Unknown(u)) => Some(u.data().to_vec()),
            Some(o) => Some(o.to_vec().unwrap()[2..].to_vec()),
            None => None,
        };
        // Asked for and not set by the server: the configured value.
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.prl = vec![50, 57, 1, 51, 61];
        let (m, _) = w.send(&p).reply.unwrap();
        assert_eq!(raw(&m, 50).unwrap(), [188, 188, 188, 2]);
        assert_eq!(raw(&m, 57).unwrap(), [0x09, 0x2d]);
        // Set by the server with a lease: its own mask and lease time.
        assert_eq!(raw(&m, 1).unwrap(), [255, 255, 255, 0]);
        assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 60]);
        // No client identifier to echo: the configured one, when asked.
        assert_eq!(raw(&m, 61).unwrap(), [9, 9]);
        // Without a lease (INFORM) the configured mask and lease time go.
        let mut p = pkt(v4::MessageType::Inform, M1);
        p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
        p.prl = vec![1, 51];
        let (m, _) = w.send(&p).reply.unwrap();
        assert_eq!(raw(&m, 1).unwrap(), [255, 255, 0, 0]);
        assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 9]);
        // Not asked for, not basic, not always-send: not sent.
        let (m, _) = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap();
        assert!(raw(&m, 50).is_none() && raw(&m, 57).is_none());
    }

    #[test]
    fn broadcast_flag_means_broadcast() {
        let mut w = World::new(199, true);
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.broadcast = true;
        assert_eq!(w.send(&p).reply.unwrap().1, Destination::Broadcast);
    }

    #[test]
    fn reservation_wins_and_sends_hostname() {
        let mut w = World::new(199, true);
        let a = w.dora(M3);
        assert_eq!(a, Ipv4Addr::new(192, 168, 50, 33));
        let (m, _) = w.send(&pkt(v4::MessageType::Discover, M3)).reply.unwrap();
        assert_eq!(m.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("mutante3".into())));
    }

    #[test]
    fn reserved_address_is_never_given_to_another_client() {
        let mut w = World::new(199, true);
        // Asking for it by REQUEST (INIT-REBOOT) and by DISCOVER.
        let mut p = pkt(v4::MessageType::Request, M1);
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 33));
        assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 100));
        assert_ne!(w.send(&p).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 50, 100));
    }

    #[test]
    fn concurrent_discovers_get_distinct_offers() {
        let mut w = World::new(199, true);
        let a = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
        let b = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr();
        assert_ne!(a, b);
        // The same client asking again gets the same offer.
        let a2 = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
        assert_eq!(a, a2);
    }

    /// Kea 2.2 holds nothing for an OFFER: with one free address left, a
    /// second client is offered it too, and the first REQUEST wins.
    #[test]
    fn an_offer_is_a_soft_hold() {
        let mut w = World::new(101, true);
        let only = Ipv4Addr::new(192, 168, 50, 101);
        assert_eq!(w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr(), only);
        assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), only);
        let mut r = pkt(v4::MessageType::Request, M2);
        (r.requested, r.server_id) = (Some(only), Some(SID));
        assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Ack));
        let mut r = pkt(v4::MessageType::Request, M1);
        (r.requested, r.server_id) = (Some(only), Some(SID));
        assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
    }

    /// A DISCOVER flood: the offer table stops at its cap, every DISCOVER
    /// is still answered, the overflow is counted, and the table empties as
    /// holds expire.
    #[test]
    fn held_offers_are_capped_and_counted() {
        let mut w = World::from_config(
            r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
                { "id": 1, "subnet": "10.0.0.0/8", "pools": [ { "pool": "10.0.0.1-10.255.255.254" } ] } ] } }"#,
        );
        let extra = 100;
        for i in 0..MAX_HELD_OFFERS + extra {
            let b = (i as u32).to_be_bytes();
            let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, b[0], b[1], b[2], b[3]]));
            assert!(d.reply.is_some(), "DISCOVER {i} unanswered");
        }
        assert_eq!(w.alloc.outstanding_offers(), MAX_HELD_OFFERS);
        assert_eq!(w.alloc.unheld_offers(), extra as u64);
        w.alloc.expire_offers(w.now + OFFER_HOLD_SECS);
        assert_eq!(w.alloc.outstanding_offers(), 0);
    }

    /// A new configuration may keep a subnet id and change its pool (Forge's
    /// config-set tests): the pool cursor of the old pool must not leave
    /// the new one looking exhausted.
    #[test]
    fn a_stale_pool_cursor_starts_over() {
        let mut w = World::new(199, true);
        w.dora(M1);
        w.policy = World::from_config(
            r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
                { "id": 1, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ] } ] } }"#,
        )
        .policy;
        assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 51, 1));
    }

    /// Kea's DISCOVER hint: option 50, else ciaddr (a client that released
    /// its lease and comes back gets the same address).
    /// Forge's exhausted-pool DORA: a REQUEST carrying our server id and a
    /// requested address of 0.0.0.0 is NAKed when nothing is free.
    #[test]
    fn request_for_zero_address_allocates_or_naks() {
        let mut w = World::new(101, true);
        w.dora(M1);
        let mut r = pkt(v4::MessageType::Request, M2);
        (r.requested, r.server_id) = (Some(Ipv4Addr::UNSPECIFIED), Some(SID));
        assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
    }

    #[test]
    fn discover_hint_falls_back_to_ciaddr() {
        let mut w = World::new(199, true);
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.ciaddr = Ipv4Addr::new(192, 168, 50, 150);
        assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), p.ciaddr);
    }

    #[test]
    fn dora_writes_a_lease_and_renewal_extends_it() {
        let mut w = World::new(199, true);
        let a = w.dora(M1);
        assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 60);
        w.now += 30;
        let mut p = pkt(v4::MessageType::Request, M1);
        p.ciaddr = a;
        let d = w.send(&p);
        let (m, dest) = d.reply.unwrap();
        assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Ack));
        // On the link, a frame to chaddr at ciaddr (no ARP needed); routed,
        // an IP unicast to ciaddr.
        assert_eq!(dest, Destination::Chaddr { mac: M1, ip: a });
        assert_eq!(m.ciaddr(), a);
        let subnet = w.policy.subnet(1);
        let off_link = Ctx { now: w.now, server_id: SID, on_link: false };
        let d = decide(&p.build(), subnet, &w.policy, &w.store, &mut w.alloc, off_link);
        assert_eq!(d.reply.unwrap().1, Destination::Ciaddr(a));
        assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 90);
    }

    #[test]
    fn renewing_someone_elses_address_is_nakked_to_ciaddr() {
        let mut w = World::new(199, true);
        let a = w.dora(M1);
        let mut p = pkt(v4::MessageType::Request, M2);
        p.ciaddr = a;
        let d = w.send(&p);
        assert_eq!(kind(&d), Some(v4::MessageType::Nak));
        // Kea's adjustRemoteAddr: ciaddr comes before the NAK broadcast.
        assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M2, ip: a });
        assert!(d.write.is_none());
    }

    #[test]
    fn selecting_another_server_is_silent() {
        let mut w = World::new(199, true);
        w.send(&pkt(v4::MessageType::Discover, M1));
        let mut p = pkt(v4::MessageType::Request, M1);
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 101));
        p.server_id = Some(Ipv4Addr::new(192, 168, 50, 3));
        let d = w.send(&p);
        assert_eq!(d.silence, Some(Silence::OtherServerSelected));
        assert_eq!(w.alloc.outstanding_offers(), 0, "our offer is withdrawn");
    }

    #[test]
    fn init_reboot_rules() {
        let mut w = World::new(199, true);
        // Wrong network → NAK.
        let mut p = pkt(v4::MessageType::Request, M1);
        p.requested = Some(Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
        // Unknown client, free in-pool address, authoritative → NAK (Kea
        // 2.2: it must come back through DISCOVER).
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
        assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
        // Known and right about its address → ACK, even expired.
        let a = w.dora(M1);
        p.requested = Some(a);
        w.now += 3600;
        assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Ack));
        // Holding one, asking for another → NAK.
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 151));
        assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
        // Non-authoritative server with no record stays silent.
        let mut w = World::new(199, false);
        let mut p = pkt(v4::MessageType::Request, M2);
        p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
        assert_eq!(w.send(&p).silence, Some(Silence::NotAuthoritative));
    }

    #[test]
    fn exhaustion_is_silent_and_expired_leases_are_reused() {
        // Pool .100-.102 with .100 reserved: two dynamic addresses.
        let mut w = World::new(102, true);
        let a = w.dora(M1);
        let b = w.dora(M2);
        assert_ne!(a, b);
        let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 7]));
        assert_eq!(d.silence, Some(Silence::PoolExhausted));
        w.now += 61 + OFFER_HOLD_SECS;
        let c = w.dora([2, 0, 0, 0, 0, 7]);
        assert!(c == a || c == b);
    }

    #[test]
    fn release_frees_and_decline_quarantines() {
        let mut w = World::new(102, true);
        let a = w.dora(M1);
        // A stranger cannot release it.
        let mut p = pkt(v4::MessageType::Release, M2);
        p.ciaddr = a;
        assert_eq!(w.send(&p).silence, Some(Silence::NotOwner));
        p.mac = M1;
        let d = w.send(&p);
        assert_eq!(d.write, Some(LeaseWrite::Remove(a)));
        assert!(d.reply.is_none());

        let b = w.dora(M2);
        let mut p = pkt(v4::MessageType::Decline, M2);
        p.requested = Some(b);
        let d = w.send(&p);
        match d.write {
            Some(LeaseWrite::Upsert(l)) => {
                assert_eq!(l.state, HeldState::Declined);
                assert_eq!(l.expire, NOW + 86400);
                assert!(l.hwaddr.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // The declined address is not offered during probation…
        w.now += OFFER_HOLD_SECS + 1;
        for mac in [[2, 0, 0, 0, 0, 8], [2, 0, 0, 0, 0, 9]] {
            if let Some((m, _)) = w.send(&pkt(v4::MessageType::Discover, mac)).reply {
                assert_ne!(m.yiaddr(), b);
            }
        }
        // …and is after it.
        w.now += 86400;
        w.alloc.expire_offers(w.now);
        let mut p = pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 10]);
        p.requested = Some(b);
        assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), b);
    }

    #[test]
    fn relay_agent_information_is_echoed_once() {
        let mut w = World::new(199, true);
        let relay = Ipv4Addr::new(192, 168, 50, 1);
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
        let rai = vec![1, 3, b'a', b'b', b'c'];
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai)));
        let req = classify(&m.to_vec().unwrap()).unwrap();
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        let bytes = d.reply.unwrap().0.to_vec().unwrap();
        let opts = &bytes[240..];
        let n = opts.windows(7).filter(|x| *x == [82, 5, 1, 3, b'a', b'b', b'c']).count();
        assert_eq!(n, 1, "{opts:?}");
        assert_eq!(opts[opts.len() - 8..], [82, 5, 1, 3, b'a', b'b', b'c', 255], "82 goes last");
    }

    /// Kea's `store-extended-info`: an ACK's lease keeps the relay's option
    /// 82 only when the subnet says so.
    #[test]
    fn extended_info_keeps_option_82_in_the_lease() {
        let mut w = World::new(199, true);
        let relay = Ipv4Addr::new(192, 168, 50, 1);
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 50, 101)));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(SID));
        let rai = vec![1, 6, 6, 1, 6, 2, 6, 3];
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai.clone())));
        let req = classify(&m.to_vec().unwrap()).unwrap();
        for keep in [false, true] {
            w.policy.subnets[0].store_extended_info = keep;
            let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
            let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
            let Some(LeaseWrite::Upsert(n)) = d.write else { panic!("no lease written: {d:?}") };
            assert_eq!(n.relay_agent_info, keep.then(|| rai.clone()));
            let want = keep.then(|| serde_json::json!({"ISC": {"relay-agent-info": "0x0106060106020603"}}));
            assert_eq!(crate::glue::to_lease(&n).user_context, want);
        }
    }

    #[test]
    fn relayed_requests_go_back_to_the_relay() {
        let mut w = World::new(199, true);
        let mut p = pkt(v4::MessageType::Discover, M1);
        p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
        let (m, dest) = w.send(&p).reply.unwrap();
        assert_eq!(dest, Destination::Relay(p.giaddr));
        assert_eq!(m.giaddr(), p.giaddr);
        // A NAK through a relay keeps the request's flags (Kea sets none).
        let mut p = pkt(v4::MessageType::Request, M1);
        p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
        p.requested = Some(Ipv4Addr::new(10, 1, 1, 1));
        let (m, dest) = w.send(&p).reply.unwrap();
        assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Nak));
        assert_eq!(dest, Destination::Relay(p.giaddr));
        assert!(!m.flags().broadcast());
        // No subnet for an unknown relay.
        p.giaddr = Ipv4Addr::new(172, 16, 0, 1);
        assert_eq!(w.send(&p).silence, Some(Silence::NoSubnet));
    }

    #[test]
    fn inform_gets_options_without_a_lease() {
        let mut w = World::new(199, true);
        let mut p = pkt(v4::MessageType::Inform, M1);
        p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
        let d = w.send(&p);
        let (m, dest) = d.reply.unwrap();
        assert_eq!(dest, Destination::Chaddr { mac: M1, ip: p.ciaddr });
        assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(!m.opts().contains(OptionCode::AddressLeaseTime));
        assert!(m.opts().contains(OptionCode::Router));
        assert!(d.write.is_none());
        // Without ciaddr: back to the source address, or (from 0.0.0.0,
        // unrelayed) dropped as Kea does.
        p.ciaddr = Ipv4Addr::UNSPECIFIED;
        let subnet = w.policy.subnet(1);
        let from = Ipv4Addr::new(192, 168, 50, 8);
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&p.build().from_source(from), subnet, &w.policy, &w.store, &mut w.alloc, ctx);
        assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M1, ip: from });
        assert_eq!(w.send(&p).silence, Some(Silence::Incomplete));
    }
}
