//! One subnet alone: its pools against its prefix and each other, the
//! addresses a pool must not hand out (network and broadcast addresses,
//! routers, HA peers), options that contradict the prefix, and its
//! reservations.

use std::net::Ipv4Addr;

use crate::check::{Finding, Severity};
use crate::config::{Cidr, HostId, Subnet};

/// Decodes an option made of IPv4 addresses (routers, broadcast, mask).
pub(crate) fn addresses(data: &[u8]) -> Vec<Ipv4Addr> {
    data.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

/// Pairs of pool indexes (into `pools`, as `(start, end)`) that share addresses.
pub fn overlapping_pools(pools: &[(Ipv4Addr, Ipv4Addr)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, a) in pools.iter().enumerate() {
        for (j, b) in pools.iter().enumerate().skip(i + 1) {
            if a.0 <= b.1 && b.0 <= a.1 {
                out.push((i, j));
            }
        }
    }
    out
}

/// Indexes of pools (as `(start, end)`) not entirely inside `prefix`.
pub fn pools_outside(prefix: &Cidr, pools: &[(Ipv4Addr, Ipv4Addr)]) -> Vec<usize> {
    pools
        .iter()
        .enumerate()
        .filter(|(_, p)| !prefix.contains(p.0) || !prefix.contains(p.1))
        .map(|(i, _)| i)
        .collect()
}

pub(super) fn subnet_checks(
    file: &str,
    path: &str,
    s: &Subnet,
    ha_addrs: &[(Ipv4Addr, String)],
    out: &mut Vec<Finding>,
) {
    let id = s.id();
    let prefix = s.prefix();
    let ranges: Vec<(Ipv4Addr, Ipv4Addr)> =
        s.pools().iter().map(|p| (p.start(), p.end())).collect();
    let range = |i: usize| format!("{}-{}", ranges[i].0, ranges[i].1);
    for i in pools_outside(&prefix, &ranges) {
        out.push(Finding::new(
            Severity::Error,
            file,
            format!("{path}.pools"),
            format!("subnet {id}: pool {} is not inside {prefix}", range(i)),
            "shrink the pool to the subnet's addresses",
        ));
    }
    for (a, b) in overlapping_pools(&ranges) {
        out.push(Finding::new(
            Severity::Error,
            file,
            format!("{path}.pools"),
            format!("subnet {id}: pools {} and {} overlap", range(a), range(b)),
            "make the pools disjoint",
        ));
    }

    // Addresses a pool must not hand out: the prefix's own network and
    // broadcast addresses, routers, and the HA peers themselves.
    let mut reserved_by_others: Vec<(Ipv4Addr, String)> = Vec::new();
    if prefix.prefix_len() < 31 {
        reserved_by_others.push((prefix.network(), "the network address".into()));
        reserved_by_others.push((prefix.last(), "the broadcast address".into()));
    }
    if let Some(r) = s.options().get(3) {
        for a in addresses(r.data()) {
            reserved_by_others.push((a, "a router (option routers)".into()));
            if !prefix.contains(a) {
                out.push(Finding::new(
                    Severity::Warning,
                    file,
                    format!("{path}.option-data"),
                    format!("subnet {id}: router {a} is not inside {prefix}; clients cannot reach it directly"),
                    "set routers to the gateway's address in this subnet",
                ));
            }
        }
    }
    for (a, name) in ha_addrs {
        reserved_by_others.push((*a, format!("the HA address of peer {name}")));
    }
    for (addr, what) in &reserved_by_others {
        if let Some(p) = s.pool_containing(*addr) {
            out.push(Finding::new(
                Severity::Warning,
                file,
                format!("{path}.pools"),
                format!(
                    "subnet {id}: pool {}-{} contains {addr}, {what}; it can be leased to a client",
                    p.start(),
                    p.end()
                ),
                format!("start or end the pool so that it excludes {addr}"),
            ));
        }
        if let Some(r) = s.reservation_for_address(*addr) {
            out.push(Finding::new(
                Severity::Warning,
                file,
                format!("{path}.reservations"),
                format!(
                    "subnet {id}: reservation {} is {addr}, {what}",
                    host_id(r.id())
                ),
                "reserve another address",
            ));
        }
    }
    if let Some(b) = s.options().get(28)
        && let [a] = addresses(b.data())[..]
        && a != prefix.last()
    {
        out.push(Finding::new(
            Severity::Warning,
            file,
            format!("{path}.option-data"),
            format!(
                "subnet {id}: broadcast-address {a} is not {prefix}'s broadcast address {}",
                prefix.last()
            ),
            format!(
                "set it to {} or remove it (clients derive it from the mask)",
                prefix.last()
            ),
        ));
    }
    if let Some(m) = s.options().get(1)
        && let [a] = addresses(m.data())[..]
        && a != prefix.netmask()
    {
        out.push(Finding::new(
            Severity::Warning,
            file,
            format!("{path}.option-data"),
            format!(
                "subnet {id}: subnet-mask {a} contradicts the prefix {prefix} (mask {})",
                prefix.netmask()
            ),
            "remove the subnet-mask option; the server sends the prefix's mask",
        ));
    }

    reservation_checks(file, path, s, out);
}

fn host_id(id: &HostId) -> String {
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    match id {
        HostId::HwAddress(b) => format!("hw-address {}", hex(b)),
        HostId::ClientId(b) => format!("client-id {}", hex(b)),
        HostId::Duid(b) => format!("duid {}", hex(b)),
        HostId::CircuitId(b) => format!("circuit-id {}", hex(b)),
    }
}

fn reservation_checks(file: &str, path: &str, s: &Subnet, out: &mut Vec<Finding>) {
    let id = s.id();
    let rs = s.reservations();
    for (i, r) in rs.iter().enumerate() {
        let rpath = format!("{path}.reservations[{i}]");
        if rs[..i].iter().any(|o| o.id() == r.id()) {
            out.push(Finding::new(
                Severity::Error,
                file,
                rpath.clone(),
                format!("subnet {id}: {} is reserved twice", host_id(r.id())),
                "keep one reservation per client",
            ));
        }
        let Some(addr) = r.ip_address() else { continue };
        if rs[..i].iter().any(|o| o.ip_address() == Some(addr)) {
            out.push(Finding::new(
                Severity::Error,
                file,
                format!("{rpath}.ip-address"),
                format!("subnet {id}: {addr} is reserved for two clients"),
                "give each client its own address",
            ));
        }
        if let Some(p) = s.pool_containing(addr) {
            let (severity, message, fix) = if s.reservation_flags().out_of_pool {
                (
                    Severity::Warning,
                    format!(
                        "subnet {id}: reserved {addr} ({}) is inside pool {}-{} but reservations-out-of-pool is true, so dynamic allocation does not look reservations up and may lease {addr} to another client",
                        host_id(r.id()),
                        p.start(),
                        p.end()
                    ),
                    format!(
                        "set reservations-out-of-pool to false, or move {addr} out of the pool"
                    ),
                )
            } else {
                (
                    Severity::Info,
                    format!(
                        "subnet {id}: reserved {addr} ({}) is inside pool {}-{}; allowed, but if another client already holds {addr} the reserved client gets a different address until that lease ends",
                        host_id(r.id()),
                        p.start(),
                        p.end()
                    ),
                    format!(
                        "for a predictable address, reserve one outside {}-{} or shrink the pool",
                        p.start(),
                        p.end()
                    ),
                )
            };
            out.push(Finding::new(
                severity,
                file,
                format!("{rpath}.ip-address"),
                message,
                fix,
            ));
        }
    }
}
