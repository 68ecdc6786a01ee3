//! Checks of one server's configuration that loading does not make.
//!
//! Loading refuses what cannot run; these flag what runs but hurts clients:
//! a pool handing out the router's address, a broadcast-address option
//! contradicting the prefix, a reserved address inside a pool, or HA timers
//! so long that leases run out before the standby takes over. Pool and
//! reservation uniqueness are checked again here (the loader refuses them
//! too) so this module stands on its own for configs built by other means.
//!
//! # Layout
//!
//! - this file: [`check_server`], which runs the checks below.
//! - `subnet.rs`: one subnet's pools, the addresses they must not hand out,
//!   options that contradict the prefix, and its reservations.
//! - `timers.rs`: HA timers against the lease lifetimes of the subnets a
//!   relationship serves.

use std::net::Ipv4Addr;

use crate::config::{Config, Subnet};

use super::{Finding, Input, Severity};

mod subnet;
mod timers;

use subnet::subnet_checks;
use timers::timer_checks;

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
            let r = ha
                .relationships()
                .iter()
                .position(|x| std::ptr::eq(x, rel))
                .unwrap_or(0);
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

#[cfg(test)]
mod tests;
