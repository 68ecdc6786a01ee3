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

/// Lease time and renewal timers of one subnet, with Kea's semantics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lifetimes {
    /// Default valid lifetime (seconds).
    pub valid: u32,
    /// Lower bound for a client-requested lifetime.
    pub min_valid: u32,
    /// Upper bound for a client-requested lifetime.
    pub max_valid: u32,
    /// Explicit `renew-timer` (T1).
    pub renew: Option<u32>,
    /// Explicit `rebind-timer` (T2).
    pub rebind: Option<u32>,
    /// Kea's `calculate-tee-times`.
    pub calculate_tee_times: bool,
    /// Kea's `t1-percent`.
    pub t1_percent: f64,
    /// Kea's `t2-percent`.
    pub t2_percent: f64,
}

/// Timers to put in a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Option 51.
    pub lease: u32,
    /// Option 58, when sent.
    pub t1: Option<u32>,
    /// Option 59, when sent.
    pub t2: Option<u32>,
}

impl Lifetimes {
    /// Lease time and T1/T2 for a client that asked for `requested` (option
    /// 51), as Kea 2.2 computes them: the request is clamped to
    /// [min, max]; T2 is the explicit rebind-timer or, when calculating,
    /// `t2-percent` of the lease; it is only sent when below the lease time.
    /// T1 likewise, only sent when below T2 (or below the lease if no T2).
    pub fn timers(&self, requested: Option<u32>) -> Timers {
        let lease = match requested {
            Some(r) => r.clamp(self.min_valid, self.max_valid.max(self.min_valid)),
            None => self.valid,
        };
        let t2 = match self.rebind {
            Some(t) => t,
            None if self.calculate_tee_times => (self.t2_percent * f64::from(lease)).round() as u32,
            None => 0,
        };
        let t2 = (t2 > 0 && t2 < lease).then_some(t2);
        let t1 = match self.renew {
            Some(t) => t,
            None if self.calculate_tee_times => (self.t1_percent * f64::from(lease)).round() as u32,
            None => 0,
        };
        let t1 = (t1 > 0 && t1 < t2.unwrap_or(lease)).then_some(t1);
        Timers { lease, t1, t2 }
    }
}

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
}

impl SubnetPolicy {
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
}

/// The compiled configuration.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Subnets in config order.
    pub subnets: Vec<SubnetPolicy>,
    /// Kea `decline-probation-period` (seconds).
    pub decline_probation_period: u32,
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
    /// `addrs`: one pinned to the interface, else one containing an address
    /// of the interface.
    pub fn subnet_for_interface(&self, iface: &str, addrs: &[(Ipv4Addr, u8)]) -> Option<&SubnetPolicy> {
        self.subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(iface))
            .or_else(|| self.subnets.iter().find(|s| s.interface.is_none() && addrs.iter().any(|(a, _)| s.contains(*a))))
    }

    /// Subnet by id.
    pub fn subnet(&self, id: u32) -> Option<&SubnetPolicy> {
        self.subnets.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(valid: u32, renew: Option<u32>, rebind: Option<u32>, calc: bool) -> Lifetimes {
        Lifetimes {
            valid,
            min_valid: valid,
            max_valid: valid,
            renew,
            rebind,
            calculate_tee_times: calc,
            t1_percent: 0.5,
            t2_percent: 0.875,
        }
    }

    #[test]
    fn kea_tee_times_table() {
        // (lifetimes, requested) → (lease, t1, t2)
        let cases = [
            (lt(60, Some(30), Some(45), false), None, (60, Some(30), Some(45))),
            (lt(3600, None, None, false), None, (3600, None, None)),
            (lt(3600, None, None, true), None, (3600, Some(1800), Some(3150))),
            // T2 not below the lease: neither T2 nor (since T1 compares to lease) a T1 ≥ lease.
            (lt(60, Some(30), Some(60), false), None, (60, Some(30), None)),
            // T1 not below T2: T1 dropped.
            (lt(60, Some(50), Some(45), false), None, (60, None, Some(45))),
            // Explicit timers win over calculation.
            (lt(100, Some(10), None, true), None, (100, Some(10), Some(88))),
        ];
        for (l, req, (lease, t1, t2)) in cases {
            assert_eq!(l.timers(req), Timers { lease, t1, t2 }, "{l:?}");
        }
    }

    #[test]
    fn requested_lifetime_is_clamped() {
        let l = Lifetimes { min_valid: 100, max_valid: 720, ..lt(300, None, None, true) };
        assert_eq!(l.timers(Some(5)).lease, 100);
        assert_eq!(l.timers(Some(10_000)).lease, 720);
        assert_eq!(l.timers(Some(400)).lease, 400);
        assert_eq!(l.timers(None).lease, 300);
    }
}
