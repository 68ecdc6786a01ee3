//! Interfaces: a peer that takes over subnets must be able to hear their
//! clients.

use std::collections::BTreeSet;

use crate::check::{Finding, Input, Severity};
use crate::config::InterfaceSpec;

use super::{Member, served};

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
pub(super) fn interface_checks(inputs: &[Input<'_>], group: &[Member], out: &mut Vec<Finding>) {
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
