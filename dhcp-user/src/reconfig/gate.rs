//! What a new policy changes in the kernel, found before it is in force
//! (outside the core's lock, in O(subnets²) at worst, never O(leases)).
//!
//! Two sets of subnet ids:
//! - `held`: subnets whose kernel answers could differ from the daemon's
//!   under the new policy (a template, a reservation entry, the relay or
//!   link selection, a lease entry). The kernel passes their packets to the
//!   daemon from before the daemon switches until the kernel has it all
//!   ([`crate::core::Core::hold_kernel`]).
//! - `relink`: subnets whose leases' kernel entries the new policy changes
//!   (a lease's entry depends on its own subnet's network, pools and
//!   reservations, and on which subnet its address falls in first); the
//!   kernel-sync task rewrites them a page at a time. Always inside `held`.
//!
//! When in doubt a subnet is held: holding costs renewals a trip to the
//! daemon for the moment of the switch, missing one would let the kernel
//! answer what the daemon no longer would.

use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
};

use crate::{
    dhcp::policy::{HostTable, Policy, SubnetPolicy},
    fastpath::relay_entries,
};

/// The subnets the kernel must stop serving, and those whose lease entries
/// must be rewritten, for a change from one policy to another.
#[derive(Debug, Default, PartialEq)]
pub struct KernelGate {
    /// Not answered by the kernel until it has the new policy.
    pub held: BTreeSet<u32>,
    /// Lease entries to rewrite (a subset of `held`).
    pub relink: BTreeSet<u32>,
}

/// What of a subnet its leases' kernel entries (and the reservation
/// entries' view of the store) depend on.
#[derive(PartialEq)]
struct LeaseInputs<'a> {
    network: Ipv4Addr,
    prefix_len: u8,
    pools: Vec<(Ipv4Addr, Ipv4Addr)>,
    reserved: &'a HashMap<Ipv4Addr, ()>,
    hosts: &'a HostTable,
    global_hosts: Option<&'a HostTable>,
}

impl<'a> LeaseInputs<'a> {
    fn of(s: &'a SubnetPolicy) -> Self {
        LeaseInputs {
            network: s.network,
            prefix_len: s.prefix_len,
            pools: s.pools.iter().map(|p| (p.start, p.end)).collect(),
            reserved: &s.reserved,
            hosts: &s.hosts,
            global_hosts: s.global_hosts.as_deref(),
        }
    }
}

/// Whether two CIDR subnets share an address (they nest or are disjoint).
fn overlap(a: &SubnetPolicy, b: &SubnetPolicy) -> bool {
    a.contains(b.network) || b.contains(a.network)
}

/// In config order, the subnets of `policy` overlapping `a` or `b` (the
/// subnet before and after), as (id, network, prefix): which of them an
/// address of the subnet falls in first.
fn neighbours(policy: &Policy, a: Option<&SubnetPolicy>, b: Option<&SubnetPolicy>) -> Vec<(u32, Ipv4Addr, u8)> {
    let near = |s: &SubnetPolicy| a.is_some_and(|a| overlap(a, s)) || b.is_some_and(|b| overlap(b, s));
    policy.subnets.iter().filter(|s| near(s)).map(|s| (s.id, s.network, s.prefix_len)).collect()
}

/// Everything but the subnets, for equality: a new field of [`Policy`]
/// fails to compile here until it is considered.
fn same_globals(old: &Policy, new: &Policy) -> bool {
    let Policy { subnets: _, decline_probation_period, bootp, expired_leases, networks, classes, classify, flex, early_hosts } =
        old;
    *decline_probation_period == new.decline_probation_period
        && *bootp == new.bootp
        && *expired_leases == new.expired_leases
        && *networks == new.networks
        && *classes == new.classes
        && *classify == new.classify
        && *flex == new.flex
        && *early_hosts == new.early_hosts
}

/// How subnets are selected by the link a request arrives on: their order,
/// ranges and interfaces.
fn layout(p: &Policy) -> Vec<(u32, Ipv4Addr, u8, Option<&str>, Option<usize>)> {
    p.subnets.iter().map(|s| (s.id, s.network, s.prefix_len, s.interface.as_deref(), s.shared_network)).collect()
}

/// The gate for a change from `old` to `new`.
pub fn kernel_gate(old: &Policy, new: &Policy) -> KernelGate {
    let ids: BTreeSet<u32> = old.subnets.iter().chain(&new.subnets).map(|s| s.id).collect();
    let mut relink = BTreeSet::new();
    for &id in &ids {
        let (a, b) = (old.subnet(id), new.subnet(id));
        if a.map(LeaseInputs::of) != b.map(LeaseInputs::of) || neighbours(old, a, b) != neighbours(new, a, b) {
            relink.insert(id);
        }
    }
    let mut held = if !same_globals(old, new) || layout(old) != layout(new) {
        ids.clone()
    } else {
        ids.iter().copied().filter(|&id| old.subnet(id) != new.subnet(id)).collect()
    };
    // A relay address (or prefix) now selecting another subnet: both.
    let (ro, rn) = (relay_entries(old), relay_entries(new));
    for (k, id) in ro.iter().chain(&rn) {
        if ro.get(k) != rn.get(k) {
            held.insert(*id);
        }
    }
    held.extend(&relink);
    KernelGate { held, relink }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn policy(v: &Value) -> Policy {
        crate::glue::compile(&crate::config::parse(&v.to_string(), "test").unwrap())
    }

    /// Two disjoint subnets, a reservation in the first.
    fn base() -> Value {
        json!({ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
            "lease-database": { "type": "memfile", "persist": false },
            "subnet4": [
                { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.200" } ],
                  "reservations": [ { "hw-address": "02:00:00:00:00:01", "ip-address": "192.0.2.5" } ] },
                { "id": 2, "subnet": "198.51.100.0/24", "pools": [ { "pool": "198.51.100.10-198.51.100.200" } ] } ] } })
    }

    fn gate(edit: impl FnOnce(&mut Value)) -> KernelGate {
        let v = base();
        let mut w = v.clone();
        edit(&mut w);
        kernel_gate(&policy(&v), &policy(&w))
    }

    fn set(ids: &[u32]) -> BTreeSet<u32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn the_same_config_holds_nothing() {
        assert_eq!(gate(|_| {}), KernelGate::default());
    }

    #[test]
    fn an_option_holds_its_subnet_and_relinks_nothing() {
        let g = gate(|w| w["Dhcp4"]["subnet4"][1]["option-data"] = json!([{ "name": "domain-name", "data": "x.example" }]));
        assert_eq!(g, KernelGate { held: set(&[2]), relink: set(&[]) });
    }

    #[test]
    fn a_global_option_holds_every_subnet_and_relinks_nothing() {
        let g = gate(|w| w["Dhcp4"]["option-data"] = json!([{ "name": "domain-name", "data": "x.example" }]));
        assert_eq!(g, KernelGate { held: set(&[1, 2]), relink: set(&[]) });
    }

    #[test]
    fn a_pool_or_a_reservation_relinks_its_subnet() {
        let g = gate(|w| w["Dhcp4"]["subnet4"][0]["pools"][0]["pool"] = json!("192.0.2.10-192.0.2.100"));
        assert_eq!(g, KernelGate { held: set(&[1]), relink: set(&[1]) });
        let g = gate(|w| w["Dhcp4"]["subnet4"][0]["reservations"] = json!([]));
        assert_eq!(g, KernelGate { held: set(&[1]), relink: set(&[1]) });
    }

    #[test]
    fn a_removed_subnet_is_relinked_so_its_entries_go() {
        let g = gate(|w| {
            w["Dhcp4"]["subnet4"].as_array_mut().unwrap().remove(1);
        });
        assert!(g.relink.contains(&2) && g.held.contains(&2), "{g:?}");
        assert!(!g.relink.contains(&1), "{g:?}");
    }

    /// A new subnet listed first and containing subnet 1's addresses takes
    /// them (the daemon selects the first subnet holding an address): 1's
    /// leases are relinked, 2's are not.
    #[test]
    fn a_new_overlapping_subnet_relinks_the_one_it_covers() {
        let g = gate(|w| {
            let wide = json!({ "id": 3, "subnet": "192.0.0.0/16", "pools": [ { "pool": "192.0.3.1-192.0.3.9" } ] });
            w["Dhcp4"]["subnet4"].as_array_mut().unwrap().insert(0, wide);
        });
        assert!(g.relink.contains(&1) && g.relink.contains(&3), "{g:?}");
        assert!(!g.relink.contains(&2), "{g:?}");
        assert!(g.held.contains(&2), "the link layout changed: every subnet is held");
    }
}
