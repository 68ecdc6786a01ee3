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

use std::net::Ipv4Addr;

use dhcproto::v4::{Flags, Message, MessageType};

use super::{
    client_name,
    inbound::{Inbound, Kind},
    policy::{ClientIds, Host, OptionBytes, Policy, SubnetPolicy},
};
use crate::classify::{self, ClientClasses, expr::Packet};

mod alloc;
mod grant;
mod reply;

pub use alloc::{Allocator, MAX_HELD_OFFERS, OFFER_HOLD_SECS};
use alloc::*;
use grant::*;
pub use reply::reply_bytes;
use reply::*;

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

#[cfg(test)]
mod tests;
