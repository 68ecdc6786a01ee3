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
//!
//! # Layout
//!
//! - this file: [`SubnetServing`], the lease and relay map entries, the
//!   ring buffer's records, and what the others share.
//! - [`template`]: a subnet's reply template, probed from the engine.
//! - [`reservation`]: a reserved client's template and its store state.
//! - [`sync`]: [`MapSync`], the one owner of the map handles.

mod reservation;
mod sync;
mod template;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, net::Ipv4Addr};

use dhcp_common::fastpath::{
    LeaseEntry, MAX_CLIENT_ID, RenewEvent, SERVE_LOAD_BALANCING, SERVE_PRIMARY, SERVE_SECONDARY,
};

pub use reservation::{ResId, probe_offer, reservation_entry, reserved_lease};
pub use sync::{MapSync, SyncError};
pub use template::{NotEligible, probe_ack, serving_interface, subnet_reply};

use crate::{
    config::ha::HaMode,
    dhcp::policy::{Policy, SubnetPolicy},
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
    /// The kernel's `SERVE_*` bits
    /// ([`SubnetReply::serving`](dhcp_common::fastpath::SubnetReply::serving)); 0 when no
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

/// Decodes one ring-buffer record.
pub fn parse_event(bytes: &[u8]) -> Option<RenewEvent> {
    if bytes.len() < std::mem::size_of::<RenewEvent>() {
        return None;
    }
    // SAFETY: RenewEvent is Pod (any bytes valid); read_unaligned copes
    // with the ring buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RenewEvent>()) })
}
