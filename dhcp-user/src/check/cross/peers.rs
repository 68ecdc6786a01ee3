//! One relationship seen from each of its servers: who is who, the peers
//! lists, primaries, mode and timers must agree; and, across every server
//! given, no two peers may share a URL.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;

use crate::check::{Finding, Input, Severity};
use crate::config::{HaRelationship, Role};

use super::{Member, relationship, role_name};

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

/// The relationship of `group` agrees on every server that has it.
pub(super) fn peer_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
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
}

/// URLs must be distinct: two peers at one address and port cannot both listen.
pub(super) fn url_checks(inputs: &[Input<'_>], out: &mut Vec<Finding>) {
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
