//! The configuration in the shape the engine (and later the XDP option map)
//! consumes: per subnet, pools, reservations and option bytes already merged
//! and encoded. Built once per config load from [`crate::config::Config`],
//! so the per-packet path does no lookups by name and no encoding.

use std::{
    collections::{BTreeMap, HashMap},
    net::Ipv4Addr,
};

/// Option code → encoded value (without code and length bytes).
pub type OptionBytes = BTreeMap<u8, OptionValue>;

/// One configured option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionValue {
    /// Encoded payload.
    pub data: Vec<u8>,
    /// Kea's `always-send`: include even when the client did not ask.
    pub always_send: bool,
}

/// Lease time and timers: the config's type, whose `lease_times` follows
/// Kea 2.2 exactly (one implementation, unit-tested in `config`).
pub use crate::config::{LeaseCache, LeaseTimes as Timers, Lifetimes};

/// A host reservation (Kea `reservations` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Reserved address (in or out of pool).
    pub address: Ipv4Addr,
    /// Hostname sent in option 12.
    pub hostname: Option<String>,
    /// Options that override subnet and pool values for this host.
    pub options: OptionBytes,
}

/// A dynamic range, inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
    /// Pool-level options (override the subnet's).
    pub options: OptionBytes,
}

impl Pool {
    /// Whether `a` is inside the range.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.start <= a && a <= self.end
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        u64::from(u32::from(self.end)) - u64::from(u32::from(self.start)) + 1
    }
}

/// Everything the engine needs about one subnet.
#[derive(Clone, Debug)]
pub struct SubnetPolicy {
    /// Kea subnet id (stored in leases).
    pub id: u32,
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Dynamic pools.
    pub pools: Vec<Pool>,
    /// Subnet options merged over global ones (subnet wins).
    pub options: OptionBytes,
    /// Reservations by hardware address.
    pub by_hwaddr: HashMap<Vec<u8>, Reservation>,
    /// Reservations by client identifier.
    pub by_client_id: HashMap<Vec<u8>, Reservation>,
    /// Reserved address → true, to keep them out of dynamic allocation.
    pub reserved: HashMap<Ipv4Addr, ()>,
    /// Lease time and timers.
    pub lifetimes: Lifetimes,
    /// NAK requests for addresses we cannot give (Kea `authoritative`).
    pub authoritative: bool,
    /// Identify clients by client-id when they send one.
    pub match_client_id: bool,
    /// Echo option 61 in replies (RFC 6842).
    pub echo_client_id: bool,
    /// `siaddr` of replies.
    pub next_server: Ipv4Addr,
    /// `sname` of replies.
    pub server_hostname: Option<String>,
    /// `file` of replies.
    pub boot_file_name: Option<String>,
    /// Relay addresses that select this subnet.
    pub relay_addresses: Vec<Ipv4Addr>,
    /// Interface this subnet is reachable on, if pinned.
    pub interface: Option<String>,
    /// HA relationship serving this subnet (`user-context.ha-server-name`).
    pub ha_server_name: Option<String>,
    /// Index into [`Policy::networks`] of the shared network holding this
    /// subnet: its siblings serve the same link.
    pub shared_network: Option<usize>,
    /// Kea's lease caching parameters.
    pub cache: LeaseCache,
}

impl SubnetPolicy {
    /// Subnet mask as an address.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len))
        })
    }

    /// Whether `a` is inside the subnet.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask()) == u32::from(self.network)
    }

    /// The pool holding `a`, if any.
    pub fn pool_of(&self, a: Ipv4Addr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(a))
    }
}

/// The compiled configuration.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Subnets in config order.
    pub subnets: Vec<SubnetPolicy>,
    /// Kea `decline-probation-period` (seconds).
    pub decline_probation_period: u32,
    /// Shared networks: indices into `subnets` of each network's subnets,
    /// in configuration order.
    pub networks: Vec<Vec<usize>>,
}

impl Policy {
    /// Subnet for a relayed packet: a subnet listing `giaddr` among its
    /// relay addresses, else the one containing it.
    pub fn subnet_for_relay(&self, giaddr: Ipv4Addr) -> Option<&SubnetPolicy> {
        self.subnets
            .iter()
            .find(|s| s.relay_addresses.contains(&giaddr))
            .or_else(|| self.subnets.iter().find(|s| s.contains(giaddr)))
    }

    /// Subnet for a packet received directly on `iface` whose addresses are
    /// `addrs`: one bound to the interface (by its own or its shared
    /// network's `interface`), else the one holding the interface's address
    /// (Kea's `selectSubnet(iface)`, then `getAddress4`).
    pub fn subnet_for_interface(
        &self,
        iface: &str,
        addrs: &[(Ipv4Addr, u8)],
    ) -> Option<&SubnetPolicy> {
        self.subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(iface))
            .or_else(|| {
                addrs
                    .iter()
                    .find_map(|(a, _)| self.subnets.iter().find(|s| s.contains(*a)))
            })
    }

    /// Subnet by id.
    pub fn subnet(&self, id: u32) -> Option<&SubnetPolicy> {
        self.subnets.iter().find(|s| s.id == id)
    }

    /// The subnets a client selected into `subnet` may be served from:
    /// `subnet` first, then the other subnets of its shared network in
    /// configuration order after it, wrapping around (Kea's
    /// `getNextSubnet` walk). A subnet outside any network stands alone.
    pub fn link_subnets<'a>(
        &'a self,
        subnet: &'a SubnetPolicy,
    ) -> impl Iterator<Item = &'a SubnetPolicy> + 'a {
        let members: &[usize] = subnet
            .shared_network
            .and_then(|n| self.networks.get(n))
            .map_or(&[], Vec::as_slice);
        let start = members
            .iter()
            .position(|&i| self.subnets[i].id == subnet.id)
            .unwrap_or(0);
        let others = members
            .iter()
            .cycle()
            .skip(start + 1)
            .take(members.len().saturating_sub(1));
        std::iter::once(subnet).chain(others.map(|&i| &self.subnets[i]))
    }

    /// The subnet of `subnet`'s link (itself or a shared-network sibling)
    /// whose prefix holds `a`.
    pub fn link_subnet_of<'a>(
        &'a self,
        subnet: &'a SubnetPolicy,
        a: Ipv4Addr,
    ) -> Option<&'a SubnetPolicy> {
        self.link_subnets(subnet).find(|s| s.contains(a))
    }
}
