//! The configuration in the shape the engine (and later the XDP option map)
//! consumes: per subnet, pools, reservations and option bytes already merged
//! and encoded. Built once per config load from [`crate::config::Config`],
//! so the per-packet path does no lookups by name and no encoding.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::Ipv4Addr,
    sync::Arc,
};

use crate::classify::{self, ClientClasses, expr::Bool};

pub use crate::config::HostIdentifierType;

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

/// A host reservation as the engine sees it: Kea's host, which may reserve
/// an address, a hostname, options, or any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Reserved address, if any.
    pub address: Option<Ipv4Addr>,
    /// Hostname sent in option 12.
    pub hostname: Option<String>,
    /// Options that override subnet and pool values for this host.
    pub options: OptionBytes,
    /// `client-classes`: classes the client joins when this host is found.
    pub classes: Vec<String>,
}

/// The identifiers a client presents for host lookup.
#[derive(Clone, Copy, Debug)]
pub struct ClientIds<'a> {
    /// chaddr.
    pub hwaddr: &'a [u8],
    /// Option 61.
    pub client_id: Option<&'a [u8]>,
    /// Option 82's circuit-id sub-option.
    pub circuit_id: Option<&'a [u8]>,
}

impl ClientIds<'_> {
    /// The DUID inside an RFC 4361 client identifier (type 255, a 4-byte
    /// IAID, then the DUID), as Kea reads it for `duid` reservations.
    pub fn duid(&self) -> Option<&[u8]> {
        self.client_id.filter(|c| c.len() > 5 && c[0] == 255).map(|c| &c[5..])
    }
}

/// The host reservations of one scope (a subnet or the global level), by
/// identifier type; only the types `host-reservation-identifiers` enables.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostTable {
    /// By hardware address.
    pub by_hwaddr: HashMap<Vec<u8>, Host>,
    /// By client identifier (option 61's whole payload).
    pub by_client_id: HashMap<Vec<u8>, Host>,
    /// By DUID (RFC 4361 client identifier).
    pub by_duid: HashMap<Vec<u8>, Host>,
    /// By relay circuit-id.
    pub by_circuit_id: HashMap<Vec<u8>, Host>,
}

impl HostTable {
    /// The client's host, trying identifier types in `order` (Kea's
    /// `host-reservation-identifiers` order).
    pub fn find(&self, order: &[HostIdentifierType], ids: &ClientIds<'_>) -> Option<&Host> {
        order.iter().find_map(|t| match t {
            HostIdentifierType::HwAddress => self.by_hwaddr.get(ids.hwaddr),
            HostIdentifierType::ClientId => ids.client_id.and_then(|c| self.by_client_id.get(c)),
            HostIdentifierType::Duid => ids.duid().and_then(|d| self.by_duid.get(d)),
            HostIdentifierType::CircuitId => ids.circuit_id.and_then(|c| self.by_circuit_id.get(c)),
        })
    }

    /// Whether a client known by chaddr `hw` and option 61 `cid` (empty:
    /// none) may have a host here, whatever circuit it comes through.
    pub fn may_match(&self, hw: &[u8], cid: &[u8]) -> bool {
        let ids = ClientIds { hwaddr: hw, client_id: (!cid.is_empty()).then_some(cid), circuit_id: None };
        self.by_hwaddr.contains_key(hw)
            || (!cid.is_empty() && self.by_client_id.contains_key(cid))
            || ids.duid().is_some_and(|d| self.by_duid.contains_key(d))
    }

    /// Whether no host is reserved here.
    pub fn is_empty(&self) -> bool {
        self.by_hwaddr.is_empty() && self.by_client_id.is_empty() && self.by_duid.is_empty() && self.by_circuit_id.is_empty()
    }
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
    /// Client class settings.
    pub classes: ScopeClasses,
}

/// A pool's, subnet's or shared network's client class settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeClasses {
    /// `client-class`: only its members are served here.
    pub client_class: Option<String>,
    /// `require-client-classes` (a subnet's: its network's first).
    pub required: Vec<String>,
    /// Option codes set at this level or between it and the global level:
    /// a class option of such a code is not sent (Kea's precedence: pool,
    /// subnet, shared network, classes, global).
    pub scoped_codes: BTreeSet<u8>,
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
#[derive(Clone, Debug, PartialEq)]
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
    /// Address reservations by hardware address that the kernel may
    /// answer (a subset of `hosts`).
    pub by_hwaddr: HashMap<Vec<u8>, Reservation>,
    /// The same by client identifier.
    pub by_client_id: HashMap<Vec<u8>, Reservation>,
    /// Every host reservation of the subnet the daemon looks up (empty
    /// with `reservations-in-subnet` off).
    pub hosts: HostTable,
    /// Global reservations, when `reservations-global` is on.
    pub global_hosts: Option<Arc<HostTable>>,
    /// `host-reservation-identifiers`, in lookup order.
    pub identifiers: Vec<HostIdentifierType>,
    /// Addresses reserved in the subnet, kept from other clients (Kea's
    /// `addressReserved`; in-pool ones not with `reservations-out-of-pool`).
    pub reserved: HashMap<Ipv4Addr, ()>,
    /// Lease time and timers.
    pub lifetimes: Lifetimes,
    /// NAK requests for addresses we cannot give (Kea `authoritative`).
    pub authoritative: bool,
    /// Identify clients by client-id when they send one.
    pub match_client_id: bool,
    /// Keep a relayed client's option 82 in its lease (Kea's
    /// `store-extended-info`), for lease queries and the lease commands.
    pub store_extended_info: bool,
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
    /// What a client's option 81 name becomes (`ddns-*`, `hostname-char-*`).
    pub names: crate::config::client_names::NamePolicy,
    /// The subnet's client class settings.
    pub classes: ScopeClasses,
    /// Its shared network's `client-class`.
    pub network_client_class: Option<String>,
}

impl SubnetPolicy {
    /// Whether a client in `classes` may use this subnet (Kea's
    /// `Subnet4::clientSupported`: the network's class, then its own).
    pub fn allows(&self, classes: &ClientClasses) -> bool {
        classes.allows(self.network_client_class.as_deref()) && classes.allows(self.classes.client_class.as_deref())
    }

    /// The pool holding `a` that a client in `classes` may use.
    pub fn allowed_pool_of(&self, a: Ipv4Addr, classes: &ClientClasses) -> Option<&Pool> {
        self.pool_of(a).filter(|p| classes.allows(p.classes.client_class.as_deref()))
    }

    /// Subnet mask as an address.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(if self.prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix_len)) })
    }

    /// Whether `a` is inside the subnet.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask()) == u32::from(self.network)
    }

    /// The pool holding `a`, if any.
    pub fn pool_of(&self, a: Ipv4Addr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(a))
    }

    /// The client's host reservation: the subnet's, else the global one
    /// (Kea's `currentHost`).
    pub fn host_of(&self, ids: &ClientIds<'_>) -> Option<&Host> {
        self.hosts.find(&self.identifiers, ids).or_else(|| self.global_hosts.as_ref()?.find(&self.identifiers, ids))
    }

    /// Whether a client with chaddr `hw` and option 61 `cid` (empty: none)
    /// may have a host reservation here (the kernel leaves such clients
    /// to the daemon).
    pub fn may_have_host(&self, hw: &[u8], cid: &[u8]) -> bool {
        self.hosts.may_match(hw, cid) || self.global_hosts.as_ref().is_some_and(|g| g.may_match(hw, cid))
    }

    /// Whether a client's option 61 can select a host reservation here.
    pub fn client_id_selects_hosts(&self) -> bool {
        let cid = |t: &HostTable| !t.by_client_id.is_empty() || !t.by_duid.is_empty();
        cid(&self.hosts) || self.global_hosts.as_deref().is_some_and(cid)
    }
}

/// The compiled configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Subnets in config order.
    pub subnets: Vec<SubnetPolicy>,
    /// Kea `decline-probation-period` (seconds).
    pub decline_probation_period: u32,
    /// `libdhcp_bootp.so`: answer BOOTP clients.
    pub bootp: bool,
    /// `expired-leases-processing`.
    pub expired_leases: crate::config::ExpiredLeases,
    /// Shared networks: indices into `subnets` of each network's subnets,
    /// in subnet id order.
    pub networks: Vec<Vec<usize>>,
    /// `client-classes`, in order; empty when none are configured.
    pub classes: Vec<ClassPolicy>,
    /// Whether packets are classified at all: classes are configured, or
    /// some scope names one (`client-class`, `require-client-classes`, a
    /// reservation's `client-classes`) or the flex-option hook reads the
    /// query. Off, nothing is evaluated.
    pub classify: bool,
    /// `libdhcp_flex_option.so`: what it changes in each reply.
    pub flex: crate::config::flex_option::FlexOptions,
    /// With `early-global-reservations-lookup`: the global reservations,
    /// looked up before subnet selection, and the identifier order.
    pub early_hosts: Option<(Arc<HostTable>, Vec<HostIdentifierType>)>,
}

/// One client class as the packet path uses it: the validated class and
/// its options in the engine's form.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassPolicy {
    /// The class as configured (name, test, boot fields, lifetime).
    pub def: crate::config::ClientClass,
    /// `option-data`, encoded.
    pub options: OptionBytes,
}

impl classify::ClassDef for ClassPolicy {
    fn name(&self) -> &str {
        &self.def.name
    }
    fn test(&self) -> Option<&Bool> {
        self.def.test.as_deref()
    }
    fn required(&self) -> bool {
        self.def.required
    }
    fn depends_on_known(&self) -> bool {
        self.def.depends_on_known
    }
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

    /// Whether a reply from `subnet` may depend on the client's classes,
    /// so that only the daemon (which evaluates them) may answer there.
    /// The rule, deliberately simple: classification is on and either a
    /// `DROP` class exists (the daemon drops what the kernel would answer),
    /// or a class that can apply in `subnet` sets options, boot fields or
    /// a lifetime (any class not `only-if-required`, or a required one the
    /// subnet's network, the subnet or one of its pools requires), or a
    /// subnet of its link, its network or one of their pools is restricted
    /// to a class (a client may be refused there, or served elsewhere).
    pub fn class_dependent(&self, subnet: &SubnetPolicy) -> bool {
        if !self.classify {
            return false;
        }
        let required = |name: &str| {
            subnet.classes.required.iter().chain(subnet.pools.iter().flat_map(|p| p.classes.required.iter())).any(|r| r == name)
        };
        let acting = self.classes.iter().any(|c| {
            c.def.name == classify::DROP || (c.def.acts() && (!c.def.required || required(&c.def.name)))
        });
        let restricted = self.link_subnets(subnet).any(|s| {
            s.network_client_class.is_some()
                || s.classes.client_class.is_some()
                || s.pools.iter().any(|p| p.classes.client_class.is_some())
        });
        acting || restricted
    }

    /// The class called `name`, if configured.
    pub fn class(&self, name: &str) -> Option<&ClassPolicy> {
        self.classes.iter().find(|c| c.def.name == name)
    }

    /// Subnet by id.
    pub fn subnet(&self, id: u32) -> Option<&SubnetPolicy> {
        self.subnets.iter().find(|s| s.id == id)
    }

    /// Whether `subnet` is the link of interface `iface` (with addresses
    /// `addrs`): a broadcast received there selects it or a subnet of its
    /// shared network.
    pub fn on_link(&self, subnet: &SubnetPolicy, iface: &str, addrs: &[(Ipv4Addr, u8)]) -> bool {
        self.subnet_for_interface(iface, addrs).is_some_and(|selected| self.link_subnets(selected).any(|s| s.id == subnet.id))
    }

    /// The subnets a client selected into `subnet` may be served from:
    /// `subnet` first, then the other subnets of its shared network in
    /// subnet id order after it, wrapping around (Kea's
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
    /// that `a` belongs to: the first whose pools hold it, else the first
    /// whose prefix does (a reserved address out of the pools). Subnets may
    /// overlap, so a prefix match alone could name a subnet whose pools do
    /// not have `a` while a sibling's do (Kea's `inAllowedPool` walk).
    pub fn link_subnet_of<'a>(
        &'a self,
        subnet: &'a SubnetPolicy,
        a: Ipv4Addr,
    ) -> Option<&'a SubnetPolicy> {
        self.link_subnets(subnet)
            .find(|s| s.pool_of(a).is_some())
            .or_else(|| self.link_subnets(subnet).find(|s| s.contains(a)))
    }
}
