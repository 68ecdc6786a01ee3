//! Reserved clients' templates (the engine's OFFER to a synthetic DISCOVER
//! from the reserved client) and the store's say over them: a reservation
//! depends on other clients' leases, which a subnet template never does.

use std::net::Ipv4Addr;

use dhcp_common::fastpath::{
    EVENT_RESERVED_ACK, MAX_CLIENT_ID, RES_BY_CLIENT_ID, RES_BY_MAC, RenewEvent, ReservationEntry, ReservationKey,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use super::{NotEligible, PROBE_MAC, is_link, subnet_of_address, template::reply_template};
use crate::{
    dhcp::{
        engine::{self, Allocator, Ctx, Held, HeldState, LeaseView, NewLease},
        inbound,
        policy::{Policy, Reservation, SubnetPolicy},
    },
    leases::{Lease, LeaseState},
    net::Interface,
};

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

    pub(super) fn of_key(k: &ReservationKey) -> ResId {
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
pub(super) fn with_store_state<'a>(
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
