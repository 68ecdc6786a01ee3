//! Checks across servers: do the peers of each HA relationship agree?
//!
//! Relationships are matched across files by peer names (two relationships
//! sharing any peer name are the same relationship seen from two servers),
//! so a typo in one file's peers list shows up as a disagreement rather
//! than as two unrelated relationships. Every subnet a server serves through
//! a relationship must exist, identical in what clients see, on each peer
//! that may take over from it; otherwise failover silently stops serving it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use crate::config::{HaRelationship, InterfaceSpec, Role, Subnet};

use super::{Finding, Input, Severity};

/// One relationship as seen from one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    input: usize,
    rel: usize,
}

/// Groups the relationships of all inputs: those sharing a peer name are one.
fn groups(inputs: &[Input<'_>]) -> Vec<Vec<Member>> {
    let mut members = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if let Some(ha) = input.config.ha() {
            for r in 0..ha.relationships().len() {
                members.push(Member { input: i, rel: r });
            }
        }
    }
    let names = |m: &Member| -> HashSet<String> {
        relationship(inputs, *m)
            .peers()
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    };
    let mut parent: Vec<usize> = (0..members.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for a in 0..members.len() {
        for b in a + 1..members.len() {
            if !names(&members[a]).is_disjoint(&names(&members[b])) {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[rb] = ra;
            }
        }
    }
    let mut by_root: BTreeMap<usize, Vec<Member>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(*m);
    }
    by_root.into_values().collect()
}

fn relationship<'a>(inputs: &[Input<'a>], m: Member) -> &'a HaRelationship {
    &inputs[m.input]
        .config
        .ha()
        .expect("member of an HA config")
        .relationships()[m.rel]
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Primary => "primary",
        Role::Secondary => "secondary",
        Role::Standby => "standby",
        Role::Backup => "backup",
    }
}

/// The peers list as a comparable value: name → (address, role).
fn peer_map(rel: &HaRelationship) -> BTreeMap<String, (SocketAddr, Role)> {
    rel.peers()
        .iter()
        .map(|p| (p.name().to_owned(), (p.url().socket_addr(), p.role())))
        .collect()
}

/// How two peers lists differ, in words; empty when they agree.
pub fn peers_difference(
    a_name: &str,
    a: &BTreeMap<String, (SocketAddr, Role)>,
    b_name: &str,
    b: &BTreeMap<String, (SocketAddr, Role)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (n, (addr, role)) in a {
        match b.get(n) {
            None => out.push(format!(
                "peer {n} is listed in {a_name} but not in {b_name}"
            )),
            Some((addr2, role2)) => {
                if addr != addr2 {
                    out.push(format!(
                        "peer {n} is at {addr} in {a_name} but at {addr2} in {b_name}"
                    ));
                }
                if role != role2 {
                    out.push(format!(
                        "peer {n} is {} in {a_name} but {} in {b_name}",
                        role_name(*role),
                        role_name(*role2)
                    ));
                }
            }
        }
    }
    for n in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!(
            "peer {n} is listed in {b_name} but not in {a_name}"
        ));
    }
    out
}

/// Cross-checks all relationships and subnets among `inputs`.
pub fn check_peers(inputs: &[Input<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for group in groups(inputs) {
        group_checks(inputs, &group, &mut out);
    }
    url_checks(inputs, &mut out);
    out
}

fn group_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
    let first = group[0];
    let reference = relationship(inputs, first);
    let ref_input = &inputs[first.input];
    let ref_name = ref_input.short();
    let ref_peers = peer_map(reference);

    // Who is who: this-server-name must be a different peer in each file.
    let mut claimed: HashMap<&str, Member> = HashMap::new();
    for &m in group {
        let rel = relationship(inputs, m);
        let input = &inputs[m.input];
        if let Some(other) = claimed.get(rel.this_server_name()) {
            out.push(Finding::new(
                Severity::Error,
                input.file,
                format!("{}.this-server-name", input.relationship_path(m.rel)),
                format!(
                    "this-server-name {:?} is also this-server-name in {}: two servers would act as the same peer",
                    rel.this_server_name(),
                    inputs[other.input].short()
                ),
                "give each server its own peer name as this-server-name",
            ));
        } else {
            claimed.insert(rel.this_server_name(), m);
        }
    }

    for &m in &group[1..] {
        let rel = relationship(inputs, m);
        let input = &inputs[m.input];
        let rpath = input.relationship_path(m.rel);
        let diff = peers_difference(ref_name, &ref_peers, input.short(), &peer_map(rel));
        if !diff.is_empty() {
            out.push(Finding::new(
                Severity::Error,
                input.file,
                format!("{rpath}.peers"),
                format!(
                    "peers of relationship {} differ from {ref_name}: {}",
                    rel.this_server_name(),
                    diff.join("; ")
                ),
                "use identical peers lists (names, URLs, roles) on every server of the relationship",
            ));
        }
        let primaries = |r: &HaRelationship| -> BTreeSet<String> {
            r.peers()
                .iter()
                .filter(|p| p.role() == Role::Primary)
                .map(|p| p.name().to_owned())
                .collect()
        };
        let (p1, p2) = (primaries(reference), primaries(rel));
        if !p1.is_empty() && !p2.is_empty() && p1 != p2 {
            out.push(Finding::new(
                Severity::Error,
                input.file,
                format!("{rpath}.peers"),
                format!(
                    "{ref_name} makes {} the primary but {} makes {} the primary: the relationship has two primaries",
                    p1.iter().cloned().collect::<Vec<_>>().join(", "),
                    input.short(),
                    p2.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                "agree on one primary in every file",
            ));
        }
        if rel.mode() != reference.mode() {
            out.push(Finding::new(
                Severity::Error,
                input.file,
                format!("{rpath}.mode"),
                format!(
                    "mode {:?} differs from {:?} in {ref_name}",
                    rel.mode(),
                    reference.mode()
                ),
                "use the same mode on every peer",
            ));
        }
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let timers: [(&str, u64, u64); 4] = [
            (
                "heartbeat-delay",
                ms(rel.heartbeat_delay()),
                ms(reference.heartbeat_delay()),
            ),
            (
                "max-response-delay",
                ms(rel.max_response_delay()),
                ms(reference.max_response_delay()),
            ),
            (
                "max-ack-delay",
                ms(rel.max_ack_delay()),
                ms(reference.max_ack_delay()),
            ),
            (
                "max-unacked-clients",
                u64::from(rel.max_unacked_clients()),
                u64::from(reference.max_unacked_clients()),
            ),
        ];
        for (key, mine, theirs) in timers {
            if mine != theirs {
                out.push(Finding::new(
                    Severity::Warning,
                    input.file,
                    format!("{rpath}.{key}"),
                    format!(
                        "{key} is {mine} here but {theirs} in {ref_name}: failover timing depends on which server survives"
                    ),
                    format!("set {key} to the same value on every peer"),
                ));
            }
        }
    }

    // Peers whose configuration was not given.
    let present: HashSet<&str> = group
        .iter()
        .map(|m| relationship(inputs, *m).this_server_name())
        .collect();
    for name in ref_peers.keys().filter(|n| !present.contains(n.as_str())) {
        out.push(Finding::new(
            Severity::Info,
            ref_input.file,
            format!("{}.peers", ref_input.relationship_path(first.rel)),
            format!("the configuration of peer {name} was not given; its side of the relationship is not checked"),
            format!("pass {name}'s file too"),
        ));
    }

    subnet_checks(inputs, group, out);
    interface_checks(inputs, group, out);
}

/// Subnets this member serves through its relationship, with their index.
fn served<'a>(inputs: &[Input<'a>], m: Member) -> Vec<(usize, &'a Subnet)> {
    inputs[m.input]
        .config
        .subnets()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.ha_relationship() == Some(m.rel))
        .collect()
}

fn pool_list(s: &Subnet) -> String {
    s.pools()
        .iter()
        .map(|p| format!("{}-{}", p.start(), p.end()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn option_names(s: &Subnet) -> String {
    s.options()
        .iter()
        .map(|o| {
            o.name()
                .map_or_else(|| format!("option {}", o.code()), str::to_owned)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What differs in what clients see between the same subnet on two peers,
/// each difference in words; and whether one side has no pool at all while
/// the other has (the "no failover" case).
pub fn subnet_difference(a_name: &str, a: &Subnet, b_name: &str, b: &Subnet) -> Vec<String> {
    let mut out = Vec::new();
    if a.prefix() != b.prefix() {
        out.push(format!(
            "prefix {} in {a_name} but {} in {b_name}",
            a.prefix(),
            b.prefix()
        ));
    }
    if a.pools() != b.pools() {
        match (a.pools().is_empty(), b.pools().is_empty()) {
            (false, true) => out.push(format!(
                "no pool in {b_name} ({a_name} has {})",
                pool_list(a)
            )),
            (true, false) => out.push(format!(
                "no pool in {a_name} ({b_name} has {})",
                pool_list(b)
            )),
            _ if pool_list(a) == pool_list(b) => out.push("pool options differ".into()),
            _ => out.push(format!(
                "pools {} in {a_name} but {} in {b_name}",
                pool_list(a),
                pool_list(b)
            )),
        }
    }
    if a.options() != b.options() {
        match (a.options().is_empty(), b.options().is_empty()) {
            (false, true) => out.push(format!(
                "no options in {b_name} ({a_name} has {})",
                option_names(a)
            )),
            (true, false) => out.push(format!(
                "no options in {a_name} ({b_name} has {})",
                option_names(b)
            )),
            _ => {
                let codes: BTreeSet<u8> = a
                    .options()
                    .iter()
                    .chain(b.options().iter())
                    .map(|o| o.code())
                    .collect();
                let differing: Vec<String> = codes
                    .into_iter()
                    .filter(|c| a.options().get(*c) != b.options().get(*c))
                    .map(|c| {
                        crate::config::options::option_def(c)
                            .map_or_else(|| format!("option {c}"), |d| d.name.to_owned())
                    })
                    .collect();
                out.push(format!("options differ: {}", differing.join(", ")));
            }
        }
    }
    let only_in = |x: &Subnet, y: &Subnet| {
        x.reservations()
            .iter()
            .filter(|r| !y.reservations().contains(r))
            .count()
    };
    let (ra, rb) = (only_in(a, b), only_in(b, a));
    if ra > 0 || rb > 0 {
        out.push(format!(
            "reservations differ ({ra} only or different in {a_name}, {rb} only or different in {b_name}; {} vs {} in all)",
            a.reservations().len(),
            b.reservations().len()
        ));
    }
    out
}

fn subnet_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
    let by_name: HashMap<&str, Member> = group
        .iter()
        .map(|m| (relationship(inputs, *m).this_server_name(), *m))
        .collect();
    let mut compared: HashSet<(usize, usize, u32)> = HashSet::new();
    for &m in group {
        let rel = relationship(inputs, m);
        let a_in = &inputs[m.input];
        if rel.this_server().role() == Role::Backup {
            continue;
        }
        for (ai, s) in served(inputs, m) {
            for peer in rel
                .peers()
                .iter()
                .filter(|p| p.name() != rel.this_server_name() && p.role() != Role::Backup)
            {
                let Some(&n) = by_name.get(peer.name()) else {
                    continue;
                };
                let b_in = &inputs[n.input];
                let b_subnets = b_in.config.subnets();
                let found = b_subnets.iter().position(|t| t.id() == s.id());
                let Some(bi) = found else {
                    let same_prefix = b_subnets.iter().position(|t| t.prefix() == s.prefix());
                    let (msg, fix, file, path) = match same_prefix {
                        Some(k) => (
                            format!(
                                "subnet {} ({}) of {} has id {} in {}: lease updates between the peers name the subnet by id and are refused or misfiled",
                                s.id(),
                                s.prefix(),
                                a_in.short(),
                                b_subnets[k].id(),
                                b_in.short()
                            ),
                            format!("use id {} for {} on every peer", s.id(), s.prefix()),
                            b_in.file,
                            format!("Dhcp4.subnet4[{k}].id"),
                        ),
                        None => (
                            format!(
                                "subnet {} ({}) is served by {} ({}) but its {} {} ({}) has no such subnet: subnet {} has no failover",
                                s.id(),
                                s.prefix(),
                                rel.this_server_name(),
                                a_in.short(),
                                role_name(peer.role()),
                                peer.name(),
                                b_in.short(),
                                s.id()
                            ),
                            format!("copy subnet {} to {}", s.id(), b_in.short()),
                            a_in.file,
                            format!("Dhcp4.subnet4[{ai}]"),
                        ),
                    };
                    out.push(Finding::new(Severity::Error, file, path, msg, fix));
                    continue;
                };
                let key = (m.input.min(n.input), m.input.max(n.input), s.id().0);
                if !compared.insert(key) {
                    continue;
                }
                let t = &b_subnets[bi];
                let b_rel = relationship(inputs, n);
                if t.ha_relationship() != Some(n.rel) {
                    let names = match t.ha_server_name() {
                        Some(h) => format!("its ha-server-name {h:?} names another relationship"),
                        None => "it names no relationship".into(),
                    };
                    out.push(Finding::new(
                        Severity::Error,
                        b_in.file,
                        format!("Dhcp4.subnet4[{bi}].user-context"),
                        format!(
                            "subnet {} is served by the relationship of {} in {}, but in {} {}: {} never takes it over",
                            s.id(),
                            rel.this_server_name(),
                            a_in.short(),
                            b_in.short(),
                            names,
                            b_rel.this_server_name()
                        ),
                        format!("set user-context.ha-server-name to {:?}", b_rel.this_server_name()),
                    ));
                }
                let diff = subnet_difference(a_in.short(), s, b_in.short(), t);
                if !diff.is_empty() {
                    // Point at the side missing something when one is.
                    let a_lacks = (s.pools().is_empty() && !t.pools().is_empty())
                        || (s.options().is_empty() && !t.options().is_empty());
                    let (lacking, full, path, lacking_rel, full_rel) = if a_lacks {
                        (a_in, b_in, format!("Dhcp4.subnet4[{ai}]"), rel, b_rel)
                    } else {
                        (b_in, a_in, format!("Dhcp4.subnet4[{bi}]"), b_rel, rel)
                    };
                    let lacking_pools = if a_lacks { s } else { t }.pools().is_empty();
                    let full_pools = !if a_lacks { t } else { s }.pools().is_empty();
                    let consequence = if lacking_pools && full_pools {
                        format!(
                            ": when {} takes over from {} it has no address to give, so subnet {} has no failover",
                            lacking_rel.this_server_name(),
                            full_rel.this_server_name(),
                            s.id()
                        )
                    } else {
                        ": clients see different pools, options or reservations after failover"
                            .to_owned()
                    };
                    let self_role = |r: &HaRelationship| role_name(r.this_server().role());
                    out.push(Finding::new(
                        Severity::Error,
                        lacking.file,
                        path,
                        format!(
                            "subnet {} ({}) is served on {} ({}) but its {} {} has it with {}{consequence}",
                            s.id(),
                            s.prefix(),
                            full.short(),
                            self_role(full_rel),
                            self_role(lacking_rel),
                            lacking.short(),
                            diff.join("; ")
                        ),
                        format!(
                            "copy subnet {}'s pools, option-data and reservations from {} to {} so both peers serve it identically (or, if {} is not meant to serve it, tie the subnet by user-context.ha-server-name to a relationship whose peers all serve it)",
                            s.id(),
                            full.short(),
                            lacking.short(),
                            lacking.short()
                        ),
                    ));
                }
                if s.lifetimes() != t.lifetimes() {
                    out.push(Finding::new(
                        Severity::Warning,
                        b_in.file,
                        format!("Dhcp4.subnet4[{bi}]"),
                        format!(
                            "subnet {}: lease lifetimes differ from {} (valid {} s vs {} s): clients get other lease times after failover",
                            s.id(),
                            a_in.short(),
                            t.lifetimes().valid,
                            s.lifetimes().valid
                        ),
                        "use the same valid-lifetime, renew-timer and rebind-timer on every peer",
                    ));
                }
            }
        }
    }
}

fn interface_names(input: &Input<'_>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for i in &input.config.interfaces().interfaces {
        match i {
            InterfaceSpec::All => return None,
            InterfaceSpec::Named { name, .. } => {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    Some(names)
}

/// A peer that takes over several directly connected subnets needs to hear
/// each of them. Configs do not say which link carries which subnet, so the
/// heuristic is: a peer listening on fewer interfaces than the subnets it
/// shares with a partner that listens on more is suspicious.
fn interface_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
    for &m in group {
        for &n in group {
            if m.input == n.input {
                continue;
            }
            let (a, b) = (&inputs[m.input], &inputs[n.input]);
            let (Some(ai), Some(bi)) = (interface_names(a), interface_names(b)) else {
                continue;
            };
            let a_served: BTreeSet<u32> = served(inputs, m).iter().map(|(_, s)| s.id().0).collect();
            let shared: Vec<u32> = served(inputs, n)
                .iter()
                .map(|(_, s)| s.id().0)
                .filter(|id| a_served.contains(id))
                .collect();
            let relayed = |id: u32| {
                b.config
                    .subnets()
                    .iter()
                    .any(|s| s.id().0 == id && !s.relay_addresses().is_empty())
            };
            let direct: Vec<u32> = shared.iter().copied().filter(|id| !relayed(*id)).collect();
            if direct.len() > bi.len() && ai.len() > bi.len() {
                out.push(Finding::new(
                    Severity::Warning,
                    b.file,
                    "Dhcp4.interfaces-config.interfaces",
                    format!(
                        "{} listens on {} interface(s) ({}) but serves subnets {} with {}, which listens on {} ({}): unless those subnets reach {} through relays or share a link, it cannot hear some of their clients when it takes over",
                        b.short(),
                        bi.len(),
                        bi.join(", "),
                        direct.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                        a.short(),
                        ai.len(),
                        ai.join(", "),
                        b.short()
                    ),
                    "listen on the interface of every subnet this server may take over (or give the subnets relay addresses)",
                ));
            }
        }
    }
}

/// URLs must be distinct: two peers at one address and port cannot both listen.
fn url_checks(inputs: &[Input<'_>], out: &mut Vec<Finding>) {
    let mut by_addr: BTreeMap<SocketAddr, BTreeMap<String, (usize, usize, usize)>> =
        BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let Some(ha) = input.config.ha() else {
            continue;
        };
        for (r, rel) in ha.relationships().iter().enumerate() {
            for (p, peer) in rel.peers().iter().enumerate() {
                by_addr
                    .entry(peer.url().socket_addr())
                    .or_default()
                    .entry(peer.name().to_owned())
                    .or_insert((i, r, p));
            }
        }
    }
    for (addr, names) in by_addr {
        if names.len() > 1 {
            let (i, r, p) = *names.values().last().expect("non-empty");
            let input = &inputs[i];
            out.push(Finding::new(
                Severity::Error,
                input.file,
                format!("{}.peers[{p}].url", input.relationship_path(r)),
                format!(
                    "peers {} all use {addr}: only one of them can listen there",
                    names.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                "give every peer (and every relationship of one server) its own address and port",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn server(this: &str, peers: &[(&str, &str, &str)], subnets: &str) -> config::Config {
        let peers: Vec<String> = peers
            .iter()
            .map(|(n, u, r)| format!(r#"{{"name": "{n}", "url": "http://{u}/", "role": "{r}"}}"#))
            .collect();
        let text = format!(
            r#"{{"Dhcp4": {{"interfaces-config": {{"interfaces": ["eth0"]}}, "valid-lifetime": 3600,
            "hooks-libraries": [{{"library": "/x/libdhcp_lease_cmds.so"}}, {{"library": "/x/libdhcp_ha.so", "parameters": {{"high-availability": [{{
                "this-server-name": "{this}", "mode": "hot-standby", "max-unacked-clients": 0, "peers": [{}]}}]}}}}],
            "subnet4": [{subnets}]}}}}"#,
            peers.join(",")
        );
        config::parse(&text, this).unwrap()
    }

    const FULL: &str = r#"{"id": 1, "subnet": "10.0.0.0/24", "pools": [{"pool": "10.0.0.100-10.0.0.199"}],
        "option-data": [{"name": "routers", "data": "10.0.0.1"}]}"#;
    const EMPTY: &str = r#"{"id": 1, "subnet": "10.0.0.0/24"}"#;

    fn inputs<'a>(cs: &'a [(&'a str, config::Config)]) -> Vec<Input<'a>> {
        cs.iter()
            .map(|(f, c)| Input {
                file: f,
                config: c,
                ha_hook: Some(1),
            })
            .collect()
    }

    #[test]
    fn matching_pair_is_clean() {
        let peers = [
            ("a", "10.0.0.2:8000", "primary"),
            ("b", "10.0.0.3:8000", "standby"),
        ];
        let cs = [
            ("a.json", server("a", &peers, FULL)),
            ("b.json", server("b", &peers, FULL)),
        ];
        let f = check_peers(&inputs(&cs));
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn empty_standby_subnet_means_no_failover() {
        let peers = [
            ("a", "10.0.0.2:8000", "primary"),
            ("b", "10.0.0.3:8000", "standby"),
        ];
        let cs = [
            ("a.json", server("a", &peers, FULL)),
            ("b.json", server("b", &peers, EMPTY)),
        ];
        let f = check_peers(&inputs(&cs));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].file, "b.json");
        assert_eq!(f[0].path, "Dhcp4.subnet4[0]");
        assert!(f[0].message.contains("no pool in b.json"), "{}", f[0]);
        assert!(f[0].message.contains("no options in b.json"), "{}", f[0]);
        assert!(
            f[0].message.contains("subnet 1 has no failover"),
            "{}",
            f[0]
        );
    }

    #[test]
    fn disagreements_on_peers() {
        let pa = [
            ("a", "10.0.0.2:8000", "primary"),
            ("b", "10.0.0.3:8000", "standby"),
        ];
        let pb = [
            ("a", "10.0.0.2:8000", "standby"),
            ("b", "10.0.0.3:8000", "primary"),
        ];
        let cs = [
            ("a.json", server("a", &pa, FULL)),
            ("b.json", server("b", &pb, FULL)),
        ];
        let f = check_peers(&inputs(&cs));
        let text: Vec<String> = f.iter().map(|f| f.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("peer a is primary in a.json but standby in b.json")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|t| t.contains("two primaries")),
            "{text:#?}"
        );

        let same_name = [
            ("a.json", server("a", &pa, FULL)),
            ("a2.json", server("a", &pa, FULL)),
        ];
        let f = check_peers(&inputs(&same_name));
        assert!(
            f.iter()
                .any(|f| f.message.contains("also this-server-name")),
            "{f:#?}"
        );

        let pc = [
            ("a", "10.0.0.2:8000", "primary"),
            ("c", "10.0.0.3:8000", "standby"),
        ];
        let cs = [
            ("a.json", server("a", &pa, FULL)),
            ("c.json", server("c", &pc, FULL)),
        ];
        let f = check_peers(&inputs(&cs));
        assert!(
            f.iter()
                .any(|f| f.message.contains("peers b, c all use 10.0.0.3:8000")),
            "{f:#?}"
        );
        assert!(
            f.iter().any(|f| f
                .message
                .contains("peer b is listed in a.json but not in c.json")),
            "{f:#?}"
        );
    }

    #[test]
    fn missing_subnet_and_other_id() {
        let peers = [
            ("a", "10.0.0.2:8000", "primary"),
            ("b", "10.0.0.3:8000", "standby"),
        ];
        let other = r#"{"id": 1, "subnet": "10.9.0.0/24"}"#;
        let cs = [
            ("a.json", server("a", &peers, FULL)),
            ("b.json", server("b", &peers, other)),
        ];
        let f = check_peers(&inputs(&cs));
        assert!(
            f.iter().any(|f| f.message.contains("no pool in b.json")),
            "{f:#?}"
        );
        assert!(
            f.iter().any(|f| f
                .message
                .contains("prefix 10.0.0.0/24 in a.json but 10.9.0.0/24")),
            "{f:#?}"
        );

        let renumbered = FULL.replace(r#""id": 1"#, r#""id": 7"#);
        let cs = [
            ("a.json", server("a", &peers, FULL)),
            ("b.json", server("b", &peers, &renumbered)),
        ];
        let f = check_peers(&inputs(&cs));
        assert!(
            f.iter().any(|f| f.message.contains("has id 7 in b.json")),
            "{f:#?}"
        );
    }
}
