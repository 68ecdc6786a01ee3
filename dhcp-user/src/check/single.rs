//! Checks of one server's configuration that loading does not make.
//!
//! Loading refuses what cannot run; these flag what runs but hurts clients:
//! a pool handing out the router's address, a broadcast-address option
//! contradicting the prefix, a reserved address inside a pool, or HA timers
//! so long that leases run out before the standby takes over. Pool and
//! reservation uniqueness are checked again here (the loader refuses them
//! too) so this module stands on its own for configs built by other means.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::config::{Cidr, Config, HaMode, HaRelationship, HostId, Subnet};

use super::{Finding, Input, Severity};

/// Checks one loaded server.
pub fn check_server(input: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let c = input.config;
    if c.interfaces().interfaces.is_empty() {
        out.push(Finding::new(
            Severity::Error,
            input.file,
            "Dhcp4.interfaces-config.interfaces",
            "no interface is listed, so no DHCP packet is ever received",
            "list the interfaces facing the clients (or their relays)",
        ));
    }
    let ha_addrs = ha_addresses(c);
    for (i, s) in c.subnets().iter().enumerate() {
        let path = format!("Dhcp4.subnet4[{i}]");
        subnet_checks(input.file, &path, s, &ha_addrs, &mut out);
    }
    if let Some(ha) = c.ha() {
        for (addr, rel) in ha.unprotected_listeners() {
            let r = ha.relationships().iter().position(|x| std::ptr::eq(x, rel)).unwrap_or(0);
            out.push(Finding::new(
                Severity::Warning,
                input.file,
                format!("{}.peers", input.relationship_path(r)),
                format!(
                    "HA listener {addr} of {} has neither basic auth nor TLS: any host that can reach it can inject lease updates",
                    rel.this_server().name()
                ),
                "set basic-auth-user/basic-auth-password, or trust-anchor/cert-file/key-file, on the peers",
            ));
        }
        for (r, rel) in ha.relationships().iter().enumerate() {
            let served: Vec<&Subnet> = c
                .subnets()
                .iter()
                .filter(|s| s.ha_relationship() == Some(r))
                .collect();
            timer_checks(input, r, rel, &served, &mut out);
        }
        if ha.is_hub() {
            for (i, s) in c
                .subnets()
                .iter()
                .enumerate()
                .filter(|(_, s)| s.ha_relationship().is_none())
            {
                out.push(Finding::new(
                    Severity::Warning,
                    input.file,
                    format!("Dhcp4.subnet4[{i}].user-context"),
                    format!(
                        "subnet {} ({}) names no HA relationship; with several relationships its packets are dropped (as in Kea)",
                        s.id(),
                        s.prefix()
                    ),
                    "set user-context.ha-server-name to a peer name of the relationship that serves it",
                ));
            }
        }
    }
    out
}

/// Every address some HA peer listens on: a pool must not hand one out.
fn ha_addresses(c: &Config) -> Vec<(Ipv4Addr, String)> {
    let Some(ha) = c.ha() else { return Vec::new() };
    ha.relationships()
        .iter()
        .flat_map(|r| r.peers())
        .filter_map(|p| match p.url().socket_addr().ip() {
            std::net::IpAddr::V4(a) => Some((a, p.name().to_owned())),
            std::net::IpAddr::V6(_) => None,
        })
        .collect()
}

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

fn subnet_checks(
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

/// How long the surviving peer may take to start serving after its partner
/// dies, as Kea's HA state machine works: the partner is noticed missing
/// `max-response-delay` after the last good contact (which can be a
/// `heartbeat-delay` old), and, unless `max-unacked-clients` is 0, clients
/// must then have been left unanswered for `max-ack-delay` before the
/// survivor enters partner-down. `None` for passive-backup (no failover).
pub fn failover_time(rel: &HaRelationship) -> Option<Duration> {
    if rel.mode() == HaMode::PassiveBackup {
        return None;
    }
    let mut t = rel.heartbeat_delay() + rel.max_response_delay();
    if rel.max_unacked_clients() > 0 {
        t += rel.max_ack_delay();
    }
    Some(t)
}

/// The failover time spelled out, for messages.
fn failover_explained(rel: &HaRelationship) -> String {
    let s = |d: Duration| format!("{} s", d.as_secs_f64());
    let mut text = format!(
        "heartbeat-delay {} + max-response-delay {}",
        s(rel.heartbeat_delay()),
        s(rel.max_response_delay())
    );
    if rel.max_unacked_clients() > 0 {
        text += &format!(
            " + max-ack-delay {} (max-unacked-clients is {})",
            s(rel.max_ack_delay()),
            rel.max_unacked_clients()
        );
    }
    text
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn timer_checks(
    input: &Input<'_>,
    r: usize,
    rel: &HaRelationship,
    served: &[&Subnet],
    out: &mut Vec<Finding>,
) {
    let rpath = input.relationship_path(r);
    let name = rel.this_server_name();
    if rel.mode() == HaMode::PassiveBackup {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.mode"),
            format!("relationship of {name} is passive-backup: backups receive leases but never take over"),
            "use hot-standby or load-balancing if clients must be served when the primary fails",
        ));
        return;
    }
    let hb = rel.heartbeat_delay();
    let mrd = rel.max_response_delay();
    if hb.is_zero() {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.heartbeat-delay"),
            format!("relationship of {name}: heartbeat-delay is 0, so a silent partner is only noticed through lease updates"),
            "set heartbeat-delay (Kea's default is 10000 ms)",
        ));
    } else if mrd <= hb {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: max-response-delay ({}) is not longer than heartbeat-delay ({}): one late heartbeat is taken for a dead partner",
                secs(mrd),
                secs(hb)
            ),
            format!("make max-response-delay several heartbeats long, e.g. {} ms", hb.as_millis() * 3),
        ));
    }
    if rel.max_unacked_clients() > 0 {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.max-unacked-clients"),
            format!(
                "relationship of {name}: the survivor takes over only after more than {} clients went unanswered for max-ack-delay ({}); on a quiet network that may take long or never happen",
                rel.max_unacked_clients(),
                secs(rel.max_ack_delay())
            ),
            "set max-unacked-clients to 0 to fail over as soon as max-response-delay passes",
        ));
    }
    let Some(failover) = failover_time(rel) else {
        return;
    };
    // Per subnet: the shortest lease it can hand out and its T1/T2.
    let mut expire_first = Vec::new();
    let mut rebind_first = Vec::new();
    let mut renew_first = Vec::new();
    for s in served {
        let lt = s.lifetimes();
        let shortest = Duration::from_secs(u64::from(lt.min_valid.min(lt.valid)));
        let times = lt.lease_times(None);
        if failover >= shortest {
            expire_first.push((s.id(), shortest));
        } else if times
            .t2
            .is_some_and(|t2| failover >= Duration::from_secs(u64::from(t2)))
        {
            rebind_first.push((
                s.id(),
                Duration::from_secs(u64::from(times.valid)),
                times.t2.unwrap_or(0),
            ));
        } else if times
            .t1
            .is_some_and(|t1| failover >= Duration::from_secs(u64::from(t1)))
        {
            renew_first.push((
                s.id(),
                Duration::from_secs(u64::from(times.valid)),
                times.t1.unwrap_or(0),
            ));
        }
    }
    fn ids(len: usize, f: &dyn Fn(usize) -> String) -> String {
        (0..len).map(f).collect::<Vec<_>>().join(", ")
    }
    if !expire_first.is_empty() {
        out.push(Finding::new(
            Severity::Error,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), not less than the lease time of subnet(s) {}: clients' leases expire before failover",
                secs(failover),
                failover_explained(rel),
                ids(expire_first.len(), &|i| format!("{} ({})", expire_first[i].0, secs(expire_first[i].1)))
            ),
            "shorten heartbeat-delay/max-response-delay (and max-ack-delay, or set max-unacked-clients 0), or lengthen valid-lifetime",
        ));
    }
    if !rebind_first.is_empty() {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), longer than T2 of subnet(s) {}: clients are already rebinding, close to losing their lease, when the partner takes over",
                secs(failover),
                failover_explained(rel),
                ids(rebind_first.len(), &|i| format!(
                    "{} (lease {}, T2 {} s)",
                    rebind_first[i].0,
                    secs(rebind_first[i].1),
                    rebind_first[i].2
                ))
            ),
            "shorten the HA timers or lengthen valid-lifetime/rebind-timer",
        ));
    }
    if !renew_first.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), reaching T1 of subnet(s) {}; renewals in that window fail and are retried, leases survive",
                secs(failover),
                failover_explained(rel),
                ids(renew_first.len(), &|i| format!(
                    "{} (lease {}, T1 {} s)",
                    renew_first[i].0,
                    secs(renew_first[i].1),
                    renew_first[i].2
                ))
            ),
            "nothing required; shorter HA timers or longer leases widen the margin",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn pool_geometry() {
        let pools = [
            (ip("10.0.0.10"), ip("10.0.0.20")),
            (ip("10.0.0.20"), ip("10.0.0.30")),
            (ip("10.0.0.40"), ip("10.0.1.5")),
        ];
        assert_eq!(overlapping_pools(&pools), vec![(0, 1)]);
        let prefix = Cidr::new(ip("10.0.0.0"), 24).unwrap();
        assert_eq!(pools_outside(&prefix, &pools), vec![2]);
    }

    fn ha_config(timers: &str, valid: u32) -> config::Config {
        let text = format!(
            r#"{{"Dhcp4": {{
            "interfaces-config": {{"interfaces": ["eth0"]}},
            "valid-lifetime": {valid}, "renew-timer": {t1}, "rebind-timer": {t2},
            "hooks-libraries": [{{"library": "/x/libdhcp_lease_cmds.so"}}, {{"library": "/x/libdhcp_ha.so", "parameters": {{"high-availability": [{{
                "this-server-name": "a", "mode": "hot-standby" {timers},
                "peers": [{{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"}},
                          {{"name": "b", "url": "http://10.0.0.2:8000/", "role": "standby"}}]}}]}}}}],
            "subnet4": [{{"id": 1, "subnet": "10.0.0.0/24", "pools": [{{"pool": "10.0.0.1-10.0.0.50"}}],
                "option-data": [{{"name": "routers", "data": "10.0.0.254"}}, {{"name": "broadcast-address", "data": "10.0.0.127"}}],
                "reservations": [{{"hw-address": "02:00:00:00:00:01", "ip-address": "10.0.0.20"}}]}}]
            }}}}"#,
            t1 = valid / 2,
            t2 = valid * 7 / 8
        );
        config::parse(&text, "t.json").unwrap()
    }

    fn run(c: &config::Config) -> Vec<Finding> {
        check_server(&Input {
            file: "t.json",
            config: c,
            ha_hook: Some(1),
        })
    }

    #[test]
    fn failover_slower_than_leases_is_an_error() {
        let c = ha_config(
            r#", "heartbeat-delay": 10000, "max-response-delay": 60000"#,
            60,
        );
        let rel = &c.ha().unwrap().relationships()[0];
        assert_eq!(failover_time(rel), Some(Duration::from_secs(80)));
        let f = run(&c);
        let e = f
            .iter()
            .find(|f| f.severity == Severity::Error)
            .expect("an error");
        assert!(e.message.contains("expire before failover"), "{e}");
        assert_eq!(
            e.path,
            "Dhcp4.hooks-libraries[1].parameters.high-availability[0].max-response-delay"
        );
    }

    #[test]
    fn equal_heartbeat_and_response_delay_warns() {
        let c = ha_config(
            r#", "heartbeat-delay": 10000, "max-response-delay": 10000"#,
            3600,
        );
        let f = run(&c);
        assert!(
            f.iter().any(
                |f| f.severity == Severity::Warning && f.message.contains("one late heartbeat")
            )
        );
        assert!(
            f.iter()
                .any(|f| f.severity == Severity::Info && f.path.ends_with("max-unacked-clients"))
        );
        assert!(!f.iter().any(|f| f.severity == Severity::Error), "{f:#?}");
    }

    #[test]
    fn pool_with_network_address_and_reservation_inside() {
        let c = ha_config(r#", "max-unacked-clients": 0"#, 3600);
        let f = run(&c);
        let text: Vec<String> = f.iter().map(|f| f.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("contains 10.0.0.1, the HA address of peer a")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("info") && t.contains("reserved 10.0.0.20")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("broadcast-address 10.0.0.127")),
            "{text:#?}"
        );
        assert!(
            !text.iter().any(|t| t.contains("max-unacked-clients")),
            "{text:#?}"
        );
    }
}
