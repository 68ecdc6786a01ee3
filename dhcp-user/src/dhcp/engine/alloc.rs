//! Address allocation: the held offers (`Allocator`) and the walk over a
//! link's subnets and pools that picks an address for a client.

use std::{collections::HashMap, net::Ipv4Addr};

use super::*;

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
pub(super) enum Offers {
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
    pub(super) cursors: HashMap<(u32, usize), u32>,
    /// Outstanding offers: address → (client, hold until).
    pub(super) offers: HashMap<Ipv4Addr, (ClientKey, u64)>,
    /// The same offers by client, so a DISCOVER finds its own offer without
    /// scanning them all (a DISCOVER flood would otherwise make every
    /// DISCOVER slower, found by `cargo xtask bench alloc`).
    pub(super) by_client: HashMap<ClientKey, Ipv4Addr>,
    /// Offers sent but not held because [`MAX_HELD_OFFERS`] were.
    pub(super) unheld: u64,
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

    pub(super) fn add_offer(&mut self, a: Ipv4Addr, client: ClientKey, until: u64) {
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

    pub(super) fn drop_offer(&mut self, a: Ipv4Addr) {
        if let Some((c, _)) = self.offers.remove(&a)
            && self.by_client.get(&c) == Some(&a)
        {
            self.by_client.remove(&c);
        }
    }

    /// The live offer made to `client`, if any.
    pub(super) fn offer_of(&self, subnet: &SubnetPolicy, client: &ClientKey, now: u64) -> Option<Ipv4Addr> {
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

/// Whether `client` may be given `a` now.
pub(super) fn available(
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
pub(super) fn link_reservation<'a>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    client: &ClientKey,
    cls: &ClientClasses,
) -> Option<(&'a SubnetPolicy, &'a Host)> {
    link_subnets(policy, subnet, cls).find_map(|s| reservation_of(s, client).map(|r| (s, r)))
}

/// The subnets of `subnet`'s link a client in `cls` may use, in Kea's
/// order (`getNextSubnet` skips the others).
pub(super) fn link_subnets<'a, 'c>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    cls: &'c ClientClasses,
) -> impl Iterator<Item = &'a SubnetPolicy> + use<'a, 'c> {
    policy.link_subnets(subnet).filter(move |s| s.allows(cls))
}

/// The subnet of the link holding `a` that a client in `cls` may use.
pub(super) fn link_subnet_of<'a>(
    policy: &'a Policy,
    subnet: &'a SubnetPolicy,
    a: Ipv4Addr,
    cls: &ClientClasses,
) -> Option<&'a SubnetPolicy> {
    link_subnets(policy, subnet, cls).find(|s| s.contains(a))
}

/// The client's lease on `subnet`'s link, and the subnet holding it.
pub(super) fn link_client_lease<'a>(
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
pub(super) fn choose<'a>(
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
pub(super) fn choose_with<'a>(
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
