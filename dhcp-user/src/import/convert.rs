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

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::config::Cidr;
use crate::config::options::{encode_csv, option_def_by_name, server_managed};

use super::syntax::{Pos, Statement, Word};

/// What happened to one construct of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Imported with the same meaning.
    Mapped,
    /// Imported in the closest Kea form; the note says what differs.
    Approximated,
    /// Not imported: Kea/xdhcpd has no equivalent (or the value is invalid).
    Refused,
    /// Nothing to import (it configures something xdhcpd does its own way).
    Noted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Mapped => "mapped",
            Outcome::Approximated => "approximated",
            Outcome::Refused => "refused",
            Outcome::Noted => "noted",
        })
    }
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    /// What happened.
    pub outcome: Outcome,
    /// Where the construct is, when it comes from the input.
    pub at: Option<Pos>,
    /// The construct, as written (secrets are never included).
    pub construct: String,
    /// What it became, or why not.
    pub note: String,
}

/// Everything mapped, approximated, refused or noted, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The entries.
    pub entries: Vec<ReportEntry>,
}

impl Report {
    fn add(
        &mut self,
        outcome: Outcome,
        at: Option<&Pos>,
        construct: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.entries.push(ReportEntry {
            outcome,
            at: at.cloned(),
            construct: construct.into(),
            note: note.into(),
        });
    }

    /// Entries with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }

    /// The report as text, one construct per line, then totals.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            let at = e.at.as_ref().map_or_else(|| "-".to_owned(), Pos::to_string);
            s.push_str(&format!(
                "{:<12} {at}: {}: {}\n",
                e.outcome.to_string(),
                e.construct,
                e.note
            ));
        }
        s.push_str(&format!(
            "{} mapped, {} approximated, {} refused, {} noted\n",
            self.count(Outcome::Mapped),
            self.count(Outcome::Approximated),
            self.count(Outcome::Refused),
            self.count(Outcome::Noted)
        ));
        s
    }
}

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

/// Settings any scope (global, shared-network, group, subnet, pool, host) can carry.
#[derive(Debug, Clone, Default)]
struct Settings {
    /// Kea option name → (data, always-send).
    options: BTreeMap<String, String>,
    valid: Option<u32>,
    max: Option<u32>,
    min: Option<u32>,
    renew: Option<u32>,
    rebind: Option<u32>,
    authoritative: Option<bool>,
    next_server: Option<String>,
    filename: Option<String>,
    server_name: Option<String>,
    use_host_decl_names: Option<bool>,
}

impl Settings {
    fn overlaid(&self, specific: &Settings) -> Settings {
        let mut out = self.clone();
        out.options
            .extend(specific.options.iter().map(|(k, v)| (k.clone(), v.clone())));
        macro_rules! take {
            ($($f:ident),*) => { $( if specific.$f.is_some() { out.$f = specific.$f.clone(); } )* };
        }
        take!(
            valid,
            max,
            min,
            renew,
            rebind,
            authoritative,
            next_server,
            filename,
            server_name,
            use_host_decl_names
        );
        out
    }

    /// Writes the scope's keys into a Kea object (`global` adds nothing special).
    fn write(&self, obj: &mut Map<String, Value>) {
        if !self.options.is_empty() {
            let list: Vec<Value> = self
                .options
                .iter()
                .map(|(n, d)| json!({"name": n, "data": d}))
                .collect();
            obj.insert("option-data".into(), Value::Array(list));
        }
        for (key, v) in [
            ("valid-lifetime", self.valid),
            ("max-valid-lifetime", self.max),
            ("min-valid-lifetime", self.min),
            ("renew-timer", self.renew),
            ("rebind-timer", self.rebind),
        ] {
            if let Some(v) = v {
                obj.insert(key.into(), json!(v));
            }
        }
        if let Some(a) = self.authoritative {
            obj.insert("authoritative".into(), json!(a));
        }
        for (key, v) in [
            ("next-server", &self.next_server),
            ("boot-file-name", &self.filename),
            ("server-hostname", &self.server_name),
        ] {
            if let Some(v) = v {
                obj.insert(key.into(), json!(v));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct PoolDraft {
    ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    settings: Settings,
    failover: bool,
}

#[derive(Debug, Clone)]
struct SubnetDraft {
    at: Pos,
    prefix: Cidr,
    settings: Settings,
    pools: Vec<PoolDraft>,
}

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

/// The Kea name of a dhcpd option name (most are the same).
fn kea_option_name(dhcpd: &str) -> &str {
    match dhcpd {
        "bootfile-name" => "boot-file-name",
        other => other,
    }
}

/// dhcpd's value words → Kea CSV `data`.
fn option_data(words: &[Word]) -> String {
    let mut parts = Vec::new();
    for w in words {
        match w {
            Word::Comma => {}
            Word::Bare(b) if b.eq_ignore_ascii_case("on") => parts.push("true".to_owned()),
            Word::Bare(b) if b.eq_ignore_ascii_case("off") => parts.push("false".to_owned()),
            other => parts.push(other.text()),
        }
    }
    parts.join(", ")
}

fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

impl Converter {
    /// Handles statements any scope may contain; false if not one of them.
    fn setting(&mut self, s: &Statement, into: &mut Settings) -> bool {
        let head = s.head();
        let at = Some(&s.at);
        let kw = |k: &str| s.words.first().is_some_and(|w| w.is(k));
        if s.block.is_some() {
            return false;
        }
        if s.starts_with(&["not", "authoritative"]) {
            into.authoritative = Some(false);
            self.report
                .add(Outcome::Mapped, at, head, "authoritative: false");
        } else if kw("authoritative") && s.words.len() == 1 {
            into.authoritative = Some(true);
            self.report
                .add(Outcome::Mapped, at, head, "authoritative: true");
        } else if kw("default-lease-time") || kw("max-lease-time") || kw("min-lease-time") {
            let Some(v) = u32_arg(s, 1) else {
                self.report
                    .add(Outcome::Refused, at, head, "expected a number of seconds");
                return true;
            };
            let key = if kw("default-lease-time") {
                into.valid = Some(v);
                "valid-lifetime"
            } else if kw("max-lease-time") {
                into.max = Some(v);
                "max-valid-lifetime"
            } else {
                into.min = Some(v);
                "min-valid-lifetime"
            };
            self.report
                .add(Outcome::Mapped, at, head, format!("{key}: {v}"));
        } else if kw("next-server") || kw("filename") || kw("server-name") {
            let v = s.words.get(1).map(Word::text).unwrap_or_default();
            let key = if kw("next-server") {
                if v.parse::<Ipv4Addr>().is_err() {
                    self.report.add(
                        Outcome::Refused,
                        at,
                        head,
                        "next-server must be an IPv4 address for Kea",
                    );
                    return true;
                }
                into.next_server = Some(v.clone());
                "next-server"
            } else if kw("filename") {
                into.filename = Some(v.clone());
                "boot-file-name"
            } else {
                into.server_name = Some(v.clone());
                "server-hostname"
            };
            self.report
                .add(Outcome::Mapped, at, head, format!("{key}: {v:?}"));
        } else if kw("use-host-decl-names") {
            let on = s.words.get(1).is_some_and(|w| w.is("on") || w.is("true"));
            into.use_host_decl_names = Some(on);
            self.report.add(
                Outcome::Mapped,
                at,
                head,
                if on {
                    "reservations get their host declaration's name as hostname"
                } else {
                    "no effect"
                },
            );
        } else if kw("option") {
            self.option(s, into);
        } else {
            return false;
        }
        true
    }

    fn option(&mut self, s: &Statement, into: &mut Settings) {
        let head = s.head();
        let at = Some(&s.at);
        let Some(name) = s.words.get(1).map(Word::text) else {
            self.report
                .add(Outcome::Refused, at, head, "option without a name");
            return;
        };
        if s.words.iter().any(|w| w.is("code"))
            || name.contains('.')
            || s.words.get(1).is_some_and(|w| w.is("space"))
        {
            self.report.add(
                Outcome::Refused,
                at,
                head,
                "option definitions and option spaces are not supported by xdhcpd",
            );
            return;
        }
        let data = option_data(&s.words[2..]);
        match name.as_str() {
            "dhcp-renewal-time" | "dhcp-rebinding-time" | "dhcp-lease-time" => {
                let v = data.parse::<u32>().ok();
                let key = match (name.as_str(), v) {
                    (_, None) => {
                        self.report
                            .add(Outcome::Refused, at, head, "expected a number of seconds");
                        return;
                    }
                    ("dhcp-renewal-time", v) => {
                        into.renew = v;
                        "renew-timer"
                    }
                    ("dhcp-rebinding-time", v) => {
                        into.rebind = v;
                        "rebind-timer"
                    }
                    (_, v) => {
                        into.valid = v;
                        "valid-lifetime"
                    }
                };
                self.report.add(
                    Outcome::Approximated,
                    at,
                    head,
                    format!("{key}: {data} (Kea computes this option per lease from the timer)"),
                );
                return;
            }
            "dhcp-client-identifier" => {
                self.report.add(
                    Outcome::Refused,
                    at,
                    head,
                    "client identifiers are only imported in host declarations",
                );
                return;
            }
            _ => {}
        }
        let kea = kea_option_name(&name);
        let Some(def) = option_def_by_name(kea) else {
            self.report.add(
                Outcome::Refused,
                at,
                head,
                format!("no standard DHCPv4 option called {kea:?}"),
            );
            return;
        };
        if let Some(why) = server_managed(def.code) {
            self.report.add(Outcome::Refused, at, head, why);
            return;
        }
        if let Err(e) = encode_csv(def, &data) {
            self.report.add(
                Outcome::Refused,
                at,
                head,
                format!("value not valid for {kea}: {e}"),
            );
            return;
        }
        into.options.insert(kea.to_owned(), data.clone());
        self.report.add(
            Outcome::Mapped,
            at,
            head,
            format!("option-data {kea}: {data:?}"),
        );
    }

    /// Statements xdhcpd has its own way of doing, or that have no effect.
    fn noted(&mut self, s: &Statement) -> bool {
        let at = Some(&s.at);
        let first = s
            .words
            .first()
            .map(Word::text)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (outcome, note): (Outcome, String) = match first.as_str() {
            "ddns-update-style" => {
                if s.words.get(1).is_some_and(|w| w.is("none")) {
                    (Outcome::Noted, "no DNS updates, as in xdhcpd".into())
                } else {
                    (Outcome::Refused, "DNS updates are not supported by xdhcpd; clients are served without them".into())
                }
            }
            "ddns-updates" | "ddns-domainname" | "ddns-rev-domainname" | "ddns-hostname" | "update-static-leases"
            | "update-optimization" | "update-conflict-detection" | "ignore-client-updates" | "allow-client-updates"
            | "deny-client-updates" => (Outcome::Refused, "DNS updates are not supported by xdhcpd".into()),
            "omapi-port" | "omapi-key" => (
                Outcome::Noted,
                "OMAPI is not imported: xdhcpd's control API (Kea-style commands over HTTP) has its own authentication".into(),
            ),
            "key" => (
                Outcome::Noted,
                "TSIG/OMAPI key not imported (secret not shown); the control API uses its own authentication".into(),
            ),
            "log-facility" => (Outcome::Noted, "xdhcpd logs through tracing to stderr (RUST_LOG)".into()),
            "lease-file-name" | "pid-file-name" => {
                (Outcome::Noted, "xdhcpd's lease file is lease-database.name (see the leases import)".into())
            }
            "ping-check" | "ping-timeout" | "one-lease-per-client" | "stash-agent-options" | "local-port"
            | "local-address" | "db-time-format" => (Outcome::Refused, "no equivalent in Kea/xdhcpd; left out".into()),
            _ => return false,
        };
        let construct = if first == "key" {
            format!("key {}", s.words.get(1).map(Word::text).unwrap_or_default())
        } else {
            s.head()
        };
        self.report.add(outcome, at, construct, note);
        true
    }

    fn top(
        &mut self,
        stmts: &[Statement],
        inherited: &Settings,
        subnet: Option<usize>,
        depth: usize,
    ) {
        // Scope settings first, so they apply to every subnet/host in the scope
        // regardless of order (as in dhcpd).
        let mut scope = Settings::default();
        let mut rest = Vec::new();
        for s in stmts {
            if !self.setting(s, &mut scope) {
                rest.push(s);
            }
        }
        let settings = inherited.overlaid(&scope);
        if depth == 0 {
            self.global = scope;
        }
        for s in rest {
            let at = Some(&s.at);
            if s.starts_with(&["subnet"]) && s.block.is_some() {
                self.subnet(
                    s,
                    &if depth == 0 {
                        Settings::default()
                    } else {
                        settings.clone()
                    },
                );
            } else if s.starts_with(&["shared-network"]) && s.block.is_some() {
                self.report.add(
                    Outcome::Approximated,
                    at,
                    s.head(),
                    "xdhcpd has no shared networks: its subnets are imported as independent subnets with the shared settings copied in",
                );
                self.top(
                    s.block.as_deref().unwrap_or_default(),
                    &if depth == 0 {
                        Settings::default()
                    } else {
                        settings.clone()
                    },
                    subnet,
                    depth + 1,
                );
            } else if s.starts_with(&["group"]) && s.block.is_some() {
                self.report.add(
                    Outcome::Approximated,
                    at,
                    "group",
                    "its settings are copied into each host/subnet it contains",
                );
                self.top(
                    s.block.as_deref().unwrap_or_default(),
                    &if depth == 0 {
                        Settings::default()
                    } else {
                        settings.clone()
                    },
                    subnet,
                    depth + 1,
                );
            } else if s.starts_with(&["host"]) && s.block.is_some() {
                self.host(
                    s,
                    &if depth == 0 {
                        Settings::default()
                    } else {
                        settings.clone()
                    },
                    subnet,
                );
            } else if s.starts_with(&["failover", "peer"]) && s.block.is_some() {
                self.failover(s);
            } else if !self.noted(s) {
                self.report.add(
                    Outcome::Refused,
                    at,
                    s.head(),
                    "unknown or unsupported statement; not imported",
                );
            }
        }
    }

    fn subnet(&mut self, s: &Statement, inherited: &Settings) {
        let at = Some(&s.at);
        let (Some(net), true, Some(mask)) = (
            ip_arg(s, 1),
            s.words.get(2).is_some_and(|w| w.is("netmask")),
            ip_arg(s, 3),
        ) else {
            self.report.add(
                Outcome::Refused,
                at,
                s.head(),
                "expected: subnet A.B.C.D netmask M.M.M.M { … }",
            );
            return;
        };
        let Some(len) = mask_len(mask) else {
            self.report.add(
                Outcome::Refused,
                at,
                s.head(),
                format!("netmask {mask} is not contiguous"),
            );
            return;
        };
        let prefix = Cidr::new(net, len).expect("len ≤ 32");
        if prefix.network() != net {
            self.report.add(
                Outcome::Approximated,
                at,
                s.head(),
                format!("host bits set; imported as {prefix}"),
            );
        }
        if let Some(other) = self.subnets.iter().find(|o| o.prefix.overlaps(&prefix)) {
            self.report.add(
                Outcome::Refused,
                at,
                s.head(),
                format!("overlaps subnet {} declared at {}", other.prefix, other.at),
            );
            return;
        }
        let index = self.subnets.len();
        self.subnets.push(SubnetDraft {
            at: s.at.clone(),
            prefix,
            settings: Settings::default(),
            pools: Vec::new(),
        });
        self.report
            .add(Outcome::Mapped, at, s.head(), format!("subnet4 {prefix}"));
        let mut own = Settings::default();
        let mut pools = Vec::new();
        let mut loose = PoolDraft {
            ranges: Vec::new(),
            settings: Settings::default(),
            failover: false,
        };
        for st in s.block.as_deref().unwrap_or_default() {
            if self.setting(st, &mut own) {
                continue;
            }
            let sat = Some(&st.at);
            if st.starts_with(&["range"]) && st.block.is_none() {
                if let Some(r) = self.range(st, &prefix) {
                    loose.ranges.push(r);
                }
            } else if st.starts_with(&["pool"]) && st.block.is_some() {
                pools.push(self.pool(st, &prefix));
            } else if st.starts_with(&["host"]) && st.block.is_some() {
                self.host(st, inherited, Some(index));
            } else if !self.noted(st) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "unknown or unsupported statement in a subnet; not imported",
                );
            }
        }
        if !loose.ranges.is_empty() {
            pools.insert(0, loose);
        }
        let d = &mut self.subnets[index];
        d.settings = inherited.overlaid(&own);
        d.pools = pools;
    }

    fn range(&mut self, s: &Statement, prefix: &Cidr) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let at = Some(&s.at);
        let bootp = s.words.get(1).is_some_and(|w| w.is("dynamic-bootp"));
        let first = if bootp { 2 } else { 1 };
        let a = ip_arg(s, first);
        let b = if s.words.len() > first + 1 {
            ip_arg(s, first + 1)
        } else {
            a
        };
        match (a, b) {
            (Some(a), Some(b)) if a <= b && prefix.contains(a) && prefix.contains(b) => {
                if bootp {
                    self.report.add(
                        Outcome::Approximated,
                        at,
                        s.head(),
                        format!("pool {a}-{b}; BOOTP clients are not served from it (xdhcpd answers DHCP only)"),
                    );
                } else {
                    self.report
                        .add(Outcome::Mapped, at, s.head(), format!("pool {a}-{b}"));
                }
                Some((a, b))
            }
            _ => {
                self.report.add(
                    Outcome::Refused,
                    at,
                    s.head(),
                    format!("not a range of addresses inside {prefix}"),
                );
                None
            }
        }
    }

    fn pool(&mut self, s: &Statement, prefix: &Cidr) -> PoolDraft {
        let mut pool = PoolDraft {
            ranges: Vec::new(),
            settings: Settings::default(),
            failover: false,
        };
        self.report.add(
            Outcome::Mapped,
            Some(&s.at),
            "pool",
            "its ranges become pools sharing its options",
        );
        for st in s.block.as_deref().unwrap_or_default() {
            let sat = Some(&st.at);
            let mut settings = std::mem::take(&mut pool.settings);
            let handled = self.setting(st, &mut settings);
            pool.settings = settings;
            if handled {
                continue;
            }
            if st.starts_with(&["range"]) {
                if let Some(r) = self.range(st, prefix) {
                    pool.ranges.push(r);
                }
            } else if st.starts_with(&["failover", "peer"]) && st.block.is_none() {
                pool.failover = true;
                self.report.add(
                    Outcome::Mapped,
                    sat,
                    st.head(),
                    "the subnet is served by the HA relationship (user-context.ha-server-name)",
                );
            } else if st
                .words
                .first()
                .is_some_and(|w| w.is("allow") || w.is("deny") || w.is("ignore"))
            {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "pool permit lists (client classes) are not supported; the pool is open to every client",
                );
            } else if !self.noted(st) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "unknown or unsupported statement in a pool; not imported",
                );
            }
        }
        // Lease times are per subnet in Kea pools.
        for (v, what) in [
            (pool.settings.valid, "lease time"),
            (pool.settings.max, "maximum lease time"),
        ] {
            if v.is_some() {
                self.report.add(
                    Outcome::Refused,
                    Some(&s.at),
                    "pool",
                    format!("a per-pool {what} is not possible in Kea; left out"),
                );
            }
        }
        pool
    }

    fn host(&mut self, s: &Statement, inherited: &Settings, subnet: Option<usize>) {
        let name = s.words.get(1).map(Word::text).unwrap_or_default();
        let mut h = HostDraft {
            at: s.at.clone(),
            name: name.clone(),
            hw: None,
            client_id: None,
            address: None,
            settings: Settings::default(),
            subnet,
        };
        let mut own = Settings::default();
        for st in s.block.as_deref().unwrap_or_default() {
            let sat = Some(&st.at);
            if st.starts_with(&["hardware", "ethernet"]) {
                match st.words.get(2).map(Word::text) {
                    Some(mac)
                        if mac.split(':').count() == 6
                            && mac.split(':').all(|b| {
                                !b.is_empty() && b.len() <= 2 && u8::from_str_radix(b, 16).is_ok()
                            }) =>
                    {
                        let mac = mac
                            .split(':')
                            .map(|b| format!("{:02x}", u8::from_str_radix(b, 16).unwrap_or(0)))
                            .collect::<Vec<_>>()
                            .join(":");
                        self.report.add(
                            Outcome::Mapped,
                            sat,
                            st.head(),
                            format!("hw-address {mac}"),
                        );
                        h.hw = Some(mac);
                    }
                    _ => {
                        self.report
                            .add(Outcome::Refused, sat, st.head(), "not an Ethernet address")
                    }
                }
            } else if st.starts_with(&["hardware"]) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "only Ethernet hardware addresses are imported",
                );
            } else if st.starts_with(&["fixed-address"]) {
                let addrs: Vec<&Word> = st.words[1..]
                    .iter()
                    .filter(|w| **w != Word::Comma)
                    .collect();
                match addrs
                    .first()
                    .and_then(|w| w.text().parse::<Ipv4Addr>().ok())
                {
                    Some(a) => {
                        if addrs.len() > 1 {
                            self.report.add(Outcome::Approximated, sat, st.head(), format!("ip-address {a}: Kea reserves one address per host; the others are left out"));
                        } else {
                            self.report.add(
                                Outcome::Mapped,
                                sat,
                                st.head(),
                                format!("ip-address {a}"),
                            );
                        }
                        h.address = Some(a);
                    }
                    None => self.report.add(
                        Outcome::Refused,
                        sat,
                        st.head(),
                        "Kea reservations need an IPv4 address, not a host name",
                    ),
                }
            } else if st.starts_with(&["option", "dhcp-client-identifier"]) {
                let id = match st.words.get(2) {
                    Some(Word::Quoted(b)) => Some(
                        b.iter()
                            .map(|x| format!("{x:02x}"))
                            .collect::<Vec<_>>()
                            .join(":"),
                    ),
                    Some(Word::Bare(b))
                        if b.split(':').all(|x| u8::from_str_radix(x, 16).is_ok()) =>
                    {
                        Some(b.to_ascii_lowercase())
                    }
                    _ => None,
                };
                match id {
                    Some(id) => {
                        self.report
                            .add(Outcome::Mapped, sat, st.head(), format!("client-id {id}"));
                        h.client_id = Some(id);
                    }
                    None => self.report.add(
                        Outcome::Refused,
                        sat,
                        st.head(),
                        "cannot read the client identifier",
                    ),
                }
            } else if st.starts_with(&["option", "host-name"]) {
                let v = st.words.get(2).map(Word::text).unwrap_or_default();
                self.report.add(
                    Outcome::Mapped,
                    sat,
                    st.head(),
                    format!("reservation hostname {v:?}"),
                );
                own.options.insert("host-name".into(), v);
            } else if st.starts_with(&["host-identifier"]) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "only hardware ethernet and dhcp-client-identifier identify hosts",
                );
            } else if !self.setting(st, &mut own) && !self.noted(st) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    st.head(),
                    "unknown or unsupported statement in a host; not imported",
                );
            }
        }
        h.settings = inherited.overlaid(&own);
        self.hosts.push(h);
    }

    fn failover(&mut self, s: &Statement) {
        let name = s.words.get(2).map(Word::text).unwrap_or_default();
        let mut f = FailoverDraft {
            at: Some(s.at.clone()),
            name: name.clone(),
            ..Default::default()
        };
        if s.words.len() > 3 {
            // `failover peer "x" state { … }` belongs to dhcpd.leases.
            self.report.add(
                Outcome::Refused,
                Some(&s.at),
                s.head(),
                "failover state is runtime data; not imported",
            );
            return;
        }
        for st in s.block.as_deref().unwrap_or_default() {
            let sat = Some(&st.at);
            let head = st.head();
            if st.starts_with(&["primary"]) || st.starts_with(&["secondary"]) {
                f.primary = Some(st.starts_with(&["primary"]));
                self.report.add(
                    Outcome::Mapped,
                    sat,
                    head,
                    "this server's role (see the relationship below)",
                );
            } else if st.starts_with(&["peer", "address"]) {
                f.peer_address = ip_arg(st, 2);
                self.report_addr(st, f.peer_address, "the partner's HA URL");
            } else if st.starts_with(&["address"]) {
                f.address = ip_arg(st, 1);
                self.report_addr(st, f.address, "this server's HA URL");
            } else if st.starts_with(&["port"]) || st.starts_with(&["peer", "port"]) {
                self.report.add(
                    Outcome::Approximated,
                    sat,
                    head,
                    "dhcpd's failover protocol port; Kea's HA speaks HTTP on --ha-port instead",
                );
            } else if st.starts_with(&["max-response-delay"]) {
                f.max_response_delay = u32_arg(st, 1);
                self.report.add(
                    Outcome::Mapped,
                    sat,
                    head,
                    "max-response-delay (in milliseconds)",
                );
            } else if st.starts_with(&["split"]) {
                f.split_seen = true;
                f.standby_led_by_primary = match u32_arg(st, 1) {
                    Some(255) => Some(true),
                    Some(0) => Some(false),
                    _ => None,
                };
                let note = match f.standby_led_by_primary {
                    Some(true) => {
                        "hot-standby: dhcpd's primary answers everything, as Kea's primary"
                    }
                    Some(false) => {
                        "hot-standby: dhcpd's secondary answers everything, so it becomes Kea's primary"
                    }
                    None if u32_arg(st, 1) == Some(128) => {
                        "load-balancing (Kea splits clients evenly by hash, like split 128)"
                    }
                    None => "load-balancing; Kea always splits evenly, not in this proportion",
                };
                let outcome = if u32_arg(st, 1).is_some_and(|v| [0, 128, 255].contains(&v)) {
                    Outcome::Mapped
                } else {
                    Outcome::Approximated
                };
                self.report.add(outcome, sat, head, note);
            } else if st.starts_with(&["hba"]) {
                f.split_seen = true;
                let hex: String = st
                    .words
                    .get(1)
                    .map(Word::text)
                    .unwrap_or_default()
                    .replace(':', "")
                    .to_ascii_lowercase();
                f.standby_led_by_primary = if !hex.is_empty() && hex.chars().all(|c| c == 'f') {
                    Some(true)
                } else if !hex.is_empty() && hex.chars().all(|c| c == '0') {
                    Some(false)
                } else {
                    None
                };
                self.report.add(Outcome::Approximated, sat, "hba …", "all-ones/all-zeros → hot-standby, anything else → load-balancing (Kea splits evenly)");
            } else if st.starts_with(&["mclt"]) {
                self.report.add(Outcome::Refused, sat, head, "Kea's HA has no MCLT: lease updates are sent to the partner before the client is answered");
            } else if st.starts_with(&["max-unacked-updates"]) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    head,
                    "no equivalent: Kea's HA sends each lease update synchronously",
                );
            } else if st.starts_with(&["load", "balance", "max", "seconds"]) {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    head,
                    "no equivalent: Kea's load balancing has no secs threshold",
                );
            } else if st.starts_with(&["auto-partner-down"]) {
                self.report.add(
                    Outcome::Approximated,
                    sat,
                    head,
                    "Kea's auto-failover (on) takes over after max-response-delay instead",
                );
            } else {
                self.report.add(
                    Outcome::Refused,
                    sat,
                    head,
                    "failover parameter with no HA equivalent; not imported",
                );
            }
        }
        if self.failover.is_empty() {
            self.failover.push(f);
        } else {
            self.report.add(
                Outcome::Refused,
                Some(&s.at),
                s.head(),
                "only one failover peer per server is imported",
            );
        }
    }

    fn report_addr(&mut self, st: &Statement, a: Option<Ipv4Addr>, what: &str) {
        if a.is_some() {
            self.report
                .add(Outcome::Mapped, Some(&st.at), st.head(), what);
        } else {
            self.report.add(
                Outcome::Refused,
                Some(&st.at),
                st.head(),
                "Kea's HA URLs need an IPv4 address, not a host name",
            );
        }
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

    // Global lease times: dhcpd's implicit defaults made explicit.
    let mut global = c.global.clone();
    if global.valid.is_none() {
        global.valid = Some(DHCPD_DEFAULT_LEASE_TIME.min(global.max.unwrap_or(u32::MAX)));
        c.report.add(
            Outcome::Approximated,
            None,
            "(no default-lease-time)",
            format!(
                "valid-lifetime {} (dhcpd's default; Kea's would be 7200)",
                global.valid.unwrap_or(0)
            ),
        );
    }
    if global.max.is_none() {
        global.max = Some(DHCPD_MAX_LEASE_TIME.max(global.valid.unwrap_or(0)));
        c.report.add(
            Outcome::Approximated,
            None,
            "(no max-lease-time)",
            format!(
                "max-valid-lifetime {} (dhcpd's default)",
                global.max.unwrap_or(0)
            ),
        );
    }
    if let (Some(v), Some(m)) = (global.valid, global.max)
        && v > m
    {
        global.valid = Some(m);
        c.report.add(
            Outcome::Approximated,
            None,
            "default-lease-time > max-lease-time",
            format!("valid-lifetime lowered to {m}"),
        );
    }
    if global.min.is_none() {
        c.report.add(
            Outcome::Approximated,
            None,
            "(no min-lease-time)",
            "Kea's min-valid-lifetime defaults to valid-lifetime: a client asking for a shorter lease gets valid-lifetime, where dhcpd would grant it",
        );
    }

    // HA relationship.
    let fo = c.failover.first().cloned();
    let (name, ha) = match &fo {
        Some(f) => {
            let primary = f.primary.unwrap_or_else(|| {
                c.report.add(
                    Outcome::Approximated,
                    f.at.as_ref(),
                    format!("failover peer {:?}", f.name),
                    "neither primary nor secondary; assumed primary",
                );
                true
            });
            let derived =
                |p: bool| format!("{}-{}", f.name, if p { "primary" } else { "secondary" });
            let me = opts.server_name.clone().unwrap_or_else(|| derived(primary));
            let partner = opts.peer_name.clone().unwrap_or_else(|| derived(!primary));
            if !f.split_seen {
                let note = if primary {
                    "no split: dhcpd's default 128, load-balancing"
                } else {
                    "a secondary takes split from its primary; assumed 128 (load-balancing). If the primary has split 255 or 0, set mode to hot-standby (xdhcpd check compares both files)"
                };
                c.report.add(
                    Outcome::Approximated,
                    f.at.as_ref(),
                    format!("failover peer {:?}", f.name),
                    note,
                );
            }
            let (mode, my_role, partner_role) = match f.standby_led_by_primary {
                None => (
                    "load-balancing",
                    if primary { "primary" } else { "secondary" },
                    if primary { "secondary" } else { "primary" },
                ),
                Some(led_by_primary) => {
                    let i_lead = led_by_primary == primary;
                    (
                        "hot-standby",
                        if i_lead { "primary" } else { "standby" },
                        if i_lead { "standby" } else { "primary" },
                    )
                }
            };
            let url = |a: Option<Ipv4Addr>| a.map(|a| format!("http://{a}:{}/", opts.ha_port));
            match (url(f.address), url(f.peer_address)) {
                (Some(mine), Some(theirs)) => {
                    let mrd_ms = f.max_response_delay.unwrap_or(60).saturating_mul(1000);
                    let heartbeat = if mrd_ms > 30_000 {
                        10_000
                    } else {
                        (mrd_ms / 3).max(1000)
                    };
                    let mut me_peer =
                        json!({"name": me, "url": mine, "role": my_role, "auto-failover": true});
                    let mut them = json!({"name": partner, "url": theirs, "role": partner_role, "auto-failover": true});
                    if !primary {
                        std::mem::swap(&mut me_peer, &mut them);
                    }
                    c.report.add(
                        Outcome::Approximated,
                        f.at.as_ref(),
                        format!("failover peer {:?}", f.name),
                        format!(
                            "HA relationship, mode {mode}: this server {me} ({my_role}, {mine}), partner {partner} ({partner_role}, {theirs}); heartbeat-delay {heartbeat} ms, max-response-delay {mrd_ms} ms; libdhcp_lease_cmds.so and libdhcp_ha.so loaded"
                        ),
                    );
                    let rel = json!({
                        "this-server-name": me,
                        "mode": mode,
                        "heartbeat-delay": heartbeat,
                        "max-response-delay": mrd_ms,
                        "peers": [me_peer, them],
                    });
                    (me, Some(rel))
                }
                _ => {
                    c.report.add(Outcome::Refused, f.at.as_ref(), format!("failover peer {:?}", f.name), "needs both address and peer address as IPv4 addresses; no HA relationship written");
                    (me, None)
                }
            }
        }
        None => (
            opts.server_name
                .clone()
                .unwrap_or_else(|| opts.fallback_name.clone()),
            None,
        ),
    };

    // Subnets, numbered by network address.
    let mut order: Vec<usize> = (0..c.subnets.len()).collect();
    order.sort_by_key(|&i| u32::from(c.subnets[i].prefix.network()));
    let mut ids = vec![0u32; c.subnets.len()];
    for (n, &i) in order.iter().enumerate() {
        ids[i] = n as u32 + 1;
    }
    if !c.subnets.is_empty() {
        c.report.add(
            Outcome::Approximated,
            None,
            "subnet ids",
            "numbered 1, 2, … by network address so both peers agree",
        );
    }
    let mut reservations: Vec<Vec<Value>> = vec![Vec::new(); c.subnets.len()];
    let hosts = std::mem::take(&mut c.hosts);
    for h in &hosts {
        let target = match h.address {
            Some(a) => c.subnets.iter().position(|s| s.prefix.contains(a)),
            None => h.subnet,
        };
        let construct = format!("host {}", h.name);
        let Some(si) = target else {
            c.report.add(Outcome::Refused, Some(&h.at), construct, "no imported subnet contains its fixed-address (or it has none outside a subnet); not imported");
            continue;
        };
        let mut r = Map::new();
        match (&h.hw, &h.client_id) {
            (Some(hw), _) => {
                r.insert("hw-address".into(), json!(hw));
            }
            (None, Some(id)) => {
                r.insert("client-id".into(), json!(id));
            }
            (None, None) => {
                c.report.add(
                    Outcome::Refused,
                    Some(&h.at),
                    construct,
                    "no hardware ethernet or client identifier; not imported",
                );
                continue;
            }
        }
        let key = r.iter().next().map(|(k, v)| (k.clone(), v.clone()));
        let dup = reservations[si]
            .iter()
            .any(|o| key.as_ref().is_some_and(|(k, v)| o.get(k) == Some(v)))
            || h.address.is_some_and(|a| {
                reservations[si]
                    .iter()
                    .any(|o| o.get("ip-address") == Some(&json!(a.to_string())))
            });
        if dup {
            c.report.add(
                Outcome::Refused,
                Some(&h.at),
                construct,
                "same identifier or address as an earlier host in this subnet; Kea allows one",
            );
            continue;
        }
        if let Some(a) = h.address {
            r.insert("ip-address".into(), json!(a.to_string()));
        }
        let mut settings = h.settings.clone();
        let hostname = settings.options.remove("host-name").or_else(|| {
            settings
                .use_host_decl_names
                .unwrap_or(false)
                .then(|| h.name.clone())
        });
        if let Some(hn) = hostname {
            r.insert("hostname".into(), json!(hn));
        }
        if !settings.options.is_empty() {
            let list: Vec<Value> = settings
                .options
                .iter()
                .map(|(n, d)| json!({"name": n, "data": d}))
                .collect();
            r.insert("option-data".into(), Value::Array(list));
        }
        for (k, v) in [
            ("next-server", &settings.next_server),
            ("boot-file-name", &settings.filename),
            ("server-hostname", &settings.server_name),
        ] {
            if let Some(v) = v {
                r.insert(k.into(), json!(v));
            }
        }
        c.report.add(
            Outcome::Mapped,
            Some(&h.at),
            construct,
            format!(
                "reservation in subnet {} ({})",
                ids[si], c.subnets[si].prefix
            ),
        );
        reservations[si].push(Value::Object(r));
    }

    let mut subnet4 = Vec::new();
    let mut placed = Vec::new();
    for &i in &order {
        let s = &c.subnets[i];
        let mut obj = Map::new();
        obj.insert("id".into(), json!(ids[i]));
        obj.insert("subnet".into(), json!(s.prefix.to_string()));
        let mut pools = Vec::new();
        for p in &s.pools {
            for (a, b) in &p.ranges {
                let mut po = Map::new();
                po.insert("pool".into(), json!(format!("{a}-{b}")));
                if !p.settings.options.is_empty() {
                    let list: Vec<Value> = p
                        .settings
                        .options
                        .iter()
                        .map(|(n, d)| json!({"name": n, "data": d}))
                        .collect();
                    po.insert("option-data".into(), Value::Array(list));
                }
                pools.push(Value::Object(po));
            }
        }
        if !pools.is_empty() {
            obj.insert("pools".into(), Value::Array(pools));
        }
        s.settings.write(&mut obj);
        if !reservations[i].is_empty() {
            obj.insert(
                "reservations".into(),
                Value::Array(std::mem::take(&mut reservations[i])),
            );
        }
        if ha.is_some() {
            obj.insert("user-context".into(), json!({"ha-server-name": name}));
            if !s.pools.iter().any(|p| p.failover) {
                c.report.add(
                    Outcome::Approximated,
                    Some(&s.at),
                    format!("subnet {}", s.prefix),
                    "no pool names the failover peer, but with one HA relationship Kea serves every subnet through it",
                );
            }
        }
        subnet4.push(Value::Object(obj));
        placed.push((ids[i], s.prefix));
    }

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
mod tests {
    use super::*;
    use crate::import::syntax::parse;

    fn conv(text: &str) -> Imported {
        let stmts = parse(text, "t.conf", &mut |_| Err("no".into())).unwrap();
        convert(
            &stmts,
            &ImportOptions {
                server_name: None,
                peer_name: None,
                ha_port: 8000,
                interfaces: vec![],
                fallback_name: "t".into(),
            },
        )
    }

    #[test]
    fn split_and_roles() {
        let fo = |role: &str, split: &str| {
            format!(
                "failover peer \"p\" {{ {role}; address 10.0.0.1; peer address 10.0.0.2; max-response-delay 30; {split} }}\nsubnet 10.0.0.0 netmask 255.255.255.0 {{ pool {{ failover peer \"p\"; range 10.0.0.10 10.0.0.20; }} }}"
            )
        };
        let rel = |i: &Imported| {
            i.config["Dhcp4"]["hooks-libraries"][1]["parameters"]["high-availability"][0].clone()
        };
        let lb = conv(&fo("primary", "split 128;"));
        assert_eq!(lb.name, "p-primary");
        assert_eq!(rel(&lb)["mode"], "load-balancing");
        assert_eq!(rel(&lb)["peers"][0]["name"], "p-primary");
        assert_eq!(rel(&lb)["peers"][1]["role"], "secondary");
        assert_eq!(rel(&lb)["peers"][1]["url"], "http://10.0.0.2:8000/");
        assert_eq!(rel(&lb)["max-response-delay"], 30000);
        let hs = conv(&fo("secondary", "split 255;"));
        assert_eq!(hs.name, "p-secondary");
        assert_eq!(rel(&hs)["mode"], "hot-standby");
        assert_eq!(rel(&hs)["peers"][0]["name"], "p-primary");
        assert_eq!(rel(&hs)["peers"][0]["role"], "primary");
        assert_eq!(rel(&hs)["peers"][1]["role"], "standby");
        assert_eq!(rel(&hs)["peers"][0]["url"], "http://10.0.0.2:8000/");
        let zero = conv(&fo("primary", "split 0;"));
        assert_eq!(rel(&zero)["peers"][0]["role"], "standby");
        assert_eq!(rel(&zero)["peers"][1]["role"], "primary");
        assert_eq!(
            lb.config["Dhcp4"]["subnet4"][0]["user-context"]["ha-server-name"],
            "p-primary"
        );
    }

    #[test]
    fn unknown_and_refused_are_reported() {
        let i = conv(
            "frobnicate 3;\nddns-update-style interim;\nkey k { algorithm hmac-md5; secret \"s3cr3t\"; }\nsubnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.5 10.0.0.9; option bogus-opt 1; pool { allow members of \"x\"; range 10.0.0.20 10.0.0.30; } }",
        );
        let text = i.report.render();
        assert!(
            text.contains("refused      t.conf:1:1: frobnicate 3: unknown"),
            "{text}"
        );
        assert!(
            text.contains("ddns-update-style interim: DNS updates are not supported"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("bogus-opt"), "{text}");
        assert!(text.contains("permit lists"), "{text}");
        assert_eq!(
            i.config["Dhcp4"]["subnet4"][0]["pools"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn hosts_land_in_the_subnet_of_their_address() {
        let i = conv(
            "subnet 10.0.1.0 netmask 255.255.255.0 {}\nsubnet 10.0.0.0 netmask 255.255.255.0 {}\nhost h { hardware ethernet 2:0:0:0:0:A; fixed-address 10.0.1.7; }\nhost far { hardware ethernet 02:00:00:00:00:0b; fixed-address 192.0.2.1; }",
        );
        let s = &i.config["Dhcp4"]["subnet4"];
        assert_eq!(s[0]["subnet"], "10.0.0.0/24");
        assert_eq!(s[0]["id"], 1);
        assert_eq!(s[1]["reservations"][0]["hw-address"], "02:00:00:00:00:0a");
        assert_eq!(s[1]["reservations"][0]["ip-address"], "10.0.1.7");
        assert!(i.report.render().contains("host far: no imported subnet"));
        assert_eq!(
            i.config["Dhcp4"]["valid-lifetime"],
            DHCPD_DEFAULT_LEASE_TIME
        );
    }
}
