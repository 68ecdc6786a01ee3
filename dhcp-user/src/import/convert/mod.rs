//! dhcpd.conf statements → one Kea `Dhcp4` configuration, plus the report.
//!
//! Every statement ends up in the [`Report`]: mapped (same meaning in Kea),
//! approximated (closest Kea form, with what differs), refused (no Kea
//! form; left out) or noted (nothing to map, e.g. `ddns-update-style none`).
//! An operator migrating a failover pair must be able to see that nothing
//! they configured vanished silently.
//!
//! Choices that are not obvious, all written in the report too:
//!
//! - Subnet ids are 1, 2, … in order of network address, not file order,
//!   so two peers whose files list the same subnets differently still agree
//!   (HA lease updates name subnets by id).
//! - A `failover peer` becomes one HA relationship. dhcpd peers share one
//!   name; Kea needs one per server, so they are `<peer>-primary` and
//!   `<peer>-secondary` (dhcpd's roles, stable across both imports) unless
//!   `--server-name`/`--peer-name` say otherwise. URLs are
//!   `http://<address>:<ha-port>/`: dhcpd's failover port speaks another
//!   protocol, Kea's HA speaks HTTP.
//! - `split 128` (or no split: dhcpd's default, and what a secondary, which
//!   may not set split, gets from its primary) → load-balancing; `split
//!   255` → hot-standby with dhcpd's primary as Kea's primary; `split 0` →
//!   hot-standby with dhcpd's secondary as Kea's primary. `hba` likewise
//!   when all-ones or all-zeros, otherwise load-balancing.
//! - dhcpd's implicit lease times (12 h default, 24 h maximum) are written
//!   out, because Kea's defaults differ (2 h).
//!
//! # Layout
//!
//! - this file: the options, the result, the drafts the walk collects and
//!   [`convert`], which runs the steps below in order (the report follows
//!   that order).
//! - `scopes.rs`: the declaration walk (global, shared-network, group,
//!   subnet, range, pool, host) into drafts.
//! - `settings.rs`: what any scope can set (options, lease times, boot
//!   fields), statements with nothing to import, dhcpd's implicit lease times.
//! - `failover.rs`: `failover peer` → the HA relationship.
//! - `subnet4.rs`: subnet ids, hosts → reservations, `subnet4`.
//! - `report.rs`: [`Report`] and [`Outcome`].

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::config::Cidr;

use super::syntax::{Pos, Statement, Word};

mod failover;
mod report;
mod scopes;
mod settings;
mod subnet4;

pub use report::{Outcome, Report, ReportEntry};
use settings::Settings;

/// Choices the input cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// This server's HA peer name (and output name); derived when `None`.
    pub server_name: Option<String>,
    /// The partner's HA peer name; derived when `None`.
    pub peer_name: Option<String>,
    /// Port of the HA HTTP listeners in the peer URLs.
    pub ha_port: u16,
    /// Interfaces to listen on (dhcpd takes them on its command line);
    /// empty means `"*"`.
    pub interfaces: Vec<String>,
    /// Output name when there is neither a server name nor a failover peer.
    pub fallback_name: String,
}

/// Default port for the HA listeners (Kea's examples use 8000).
pub const DEFAULT_HA_PORT: u16 = 8000;

/// The result of converting one dhcpd.conf.
#[derive(Debug, Clone)]
pub struct Imported {
    /// This server's name: output file stem and HA `this-server-name`.
    pub name: String,
    /// The Kea configuration (`{"Dhcp4": …}`).
    pub config: Value,
    /// What was done with every construct.
    pub report: Report,
    /// Subnet ids and prefixes, for placing imported leases.
    pub subnets: Vec<(u32, Cidr)>,
    /// Lease lifetime used for leases whose subnet has none of its own.
    pub valid_lifetime: u32,
}

/// dhcpd's `default-lease-time` when none is set (12 hours).
pub const DHCPD_DEFAULT_LEASE_TIME: u32 = 43_200;
/// dhcpd's `max-lease-time` when none is set (24 hours).
pub const DHCPD_MAX_LEASE_TIME: u32 = 86_400;

/// A `pool` block, or a subnet's loose `range`s, as the walk read it.
#[derive(Debug, Clone)]
struct PoolDraft {
    ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    settings: Settings,
    failover: bool,
}

/// A `subnet` declaration with its inherited settings (ids come later).
#[derive(Debug, Clone)]
struct SubnetDraft {
    at: Pos,
    prefix: Cidr,
    settings: Settings,
    pools: Vec<PoolDraft>,
}

/// A `host` declaration, placed in a subnet only when `subnet4` is written.
#[derive(Debug, Clone)]
struct HostDraft {
    at: Pos,
    name: String,
    hw: Option<String>,
    client_id: Option<String>,
    address: Option<Ipv4Addr>,
    settings: Settings,
    /// The subnet the declaration sits in, if any (index into subnets).
    subnet: Option<usize>,
}

/// A `failover peer` block (`failover.rs`).
#[derive(Debug, Clone, Default)]
struct FailoverDraft {
    at: Option<Pos>,
    name: String,
    primary: Option<bool>,
    address: Option<Ipv4Addr>,
    peer_address: Option<Ipv4Addr>,
    max_response_delay: Option<u32>,
    /// `Some(true)`: hot-standby led by dhcpd's primary; `Some(false)`:
    /// led by the secondary; `None`: load-balancing.
    standby_led_by_primary: Option<bool>,
    split_seen: bool,
}

/// The walk's state: the report so far and the drafts.
struct Converter {
    report: Report,
    global: Settings,
    subnets: Vec<SubnetDraft>,
    hosts: Vec<HostDraft>,
    failover: Vec<FailoverDraft>,
}

fn u32_arg(s: &Statement, idx: usize) -> Option<u32> {
    match s.words.get(idx) {
        Some(Word::Bare(b)) => b.parse().ok(),
        _ => None,
    }
}

fn ip_arg(s: &Statement, idx: usize) -> Option<Ipv4Addr> {
    match s.words.get(idx) {
        Some(Word::Bare(b)) => b.parse().ok(),
        _ => None,
    }
}

/// Converts parsed dhcpd.conf statements into a Kea configuration.
pub fn convert(stmts: &[Statement], opts: &ImportOptions) -> Imported {
    let mut c = Converter {
        report: Report::default(),
        global: Settings::default(),
        subnets: Vec::new(),
        hosts: Vec::new(),
        failover: Vec::new(),
    };
    c.top(stmts, &Settings::default(), None, 0);
    let global = c.global_settings();
    let (name, ha) = c.ha_relationship(opts);
    let (subnet4, placed) = c.subnet4(ha.is_some().then_some(name.as_str()));

    let mut dhcp4 = Map::new();
    let interfaces: Vec<Value> = if opts.interfaces.is_empty() {
        vec![json!("*")]
    } else {
        opts.interfaces.iter().map(|i| json!(i)).collect()
    };
    if opts.interfaces.is_empty() {
        c.report.add(Outcome::Approximated, None, "(interfaces)", "dhcpd takes interfaces on its command line; wrote \"*\" — list the interfaces dhcpd was started with (--interface)");
    }
    dhcp4.insert(
        "interfaces-config".into(),
        json!({"interfaces": interfaces}),
    );
    dhcp4.insert(
        "lease-database".into(),
        json!({"type": "memfile", "persist": true, "name": format!("/var/lib/kea/{name}-leases4.csv"), "lfc-interval": 3600}),
    );
    global.write(&mut dhcp4);
    if let Some(rel) = ha {
        dhcp4.insert(
            "hooks-libraries".into(),
            json!([
                {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so"},
                {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so", "parameters": {"high-availability": [rel]}}
            ]),
        );
    }
    dhcp4.insert("subnet4".into(), Value::Array(subnet4));
    let valid_lifetime = global.valid.unwrap_or(DHCPD_DEFAULT_LEASE_TIME);
    Imported {
        name,
        config: json!({"Dhcp4": dhcp4}),
        report: c.report,
        subnets: placed,
        valid_lifetime,
    }
}

#[cfg(test)]
mod tests;
