//! Checks across servers: do the peers of each HA relationship agree?
//!
//! Relationships are matched across files by peer names (two relationships
//! sharing any peer name are the same relationship seen from two servers),
//! so a typo in one file's peers list shows up as a disagreement rather
//! than as two unrelated relationships. Every subnet a server serves through
//! a relationship must exist, identical in what clients see, on each peer
//! that may take over from it; otherwise failover silently stops serving it.
//!
//! # Layout
//!
//! - this file: grouping relationships across files ([`check_peers`]), and
//!   what the checks below share.
//! - `peers.rs`: the relationship itself: this-server-name, peers lists,
//!   roles, mode, timers; URLs distinct across all servers.
//! - `subnets.rs`: each subnet served through a relationship exists,
//!   identical, on every peer that may take over.
//! - `interfaces.rs`: a peer taking over hears the subnets it takes over.

use std::collections::{BTreeMap, HashSet};

use crate::config::{HaRelationship, Role, Subnet};

use super::{Finding, Input};

mod interfaces;
mod peers;
mod subnets;

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

/// Cross-checks all relationships and subnets among `inputs`.
pub fn check_peers(inputs: &[Input<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for group in groups(inputs) {
        peers::peer_checks(inputs, &group, &mut out);
        subnets::subnet_checks(inputs, &group, &mut out);
        interfaces::interface_checks(inputs, &group, &mut out);
    }
    peers::url_checks(inputs, &mut out);
    out
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

#[cfg(test)]
mod tests;
