//! Subnets across the servers of one relationship: each subnet a server
//! serves through it must exist, with the same id and the same pools,
//! options and reservations, on every peer that may take over from it.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::check::{Finding, Input, Severity};
use crate::config::{HaRelationship, Role, Subnet};

use super::{Member, relationship, role_name, served};

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

pub(super) fn subnet_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
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
