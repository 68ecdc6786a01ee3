//! Settings any scope can carry (options, lease times, boot fields) and the
//! statements that set them, plus the statements with nothing to import.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::config::options::{encode_csv, option_def_by_name, server_managed};
use crate::import::syntax::{Statement, Word};

use super::{Converter, DHCPD_DEFAULT_LEASE_TIME, DHCPD_MAX_LEASE_TIME, Outcome, u32_arg};

/// Settings any scope (global, shared-network, group, subnet, pool, host) can carry.
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    /// Kea option name → CSV data.
    pub(super) options: BTreeMap<String, String>,
    pub(super) valid: Option<u32>,
    pub(super) max: Option<u32>,
    pub(super) min: Option<u32>,
    pub(super) renew: Option<u32>,
    pub(super) rebind: Option<u32>,
    pub(super) authoritative: Option<bool>,
    pub(super) next_server: Option<String>,
    pub(super) filename: Option<String>,
    pub(super) server_name: Option<String>,
    pub(super) use_host_decl_names: Option<bool>,
}

impl Settings {
    pub(super) fn overlaid(&self, specific: &Settings) -> Settings {
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
    pub(super) fn write(&self, obj: &mut Map<String, Value>) {
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

impl Converter {
    /// Handles statements any scope may contain; false if not one of them.
    pub(super) fn setting(&mut self, s: &Statement, into: &mut Settings) -> bool {
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
    pub(super) fn noted(&mut self, s: &Statement) -> bool {
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

    /// The global settings with dhcpd's implicit lease times written out.
    pub(super) fn global_settings(&mut self) -> Settings {
        // Global lease times: dhcpd's implicit defaults made explicit.
        let mut global = self.global.clone();
        if global.valid.is_none() {
            global.valid = Some(DHCPD_DEFAULT_LEASE_TIME.min(global.max.unwrap_or(u32::MAX)));
            self.report.add(
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
            self.report.add(
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
            self.report.add(
                Outcome::Approximated,
                None,
                "default-lease-time > max-lease-time",
                format!("valid-lifetime lowered to {m}"),
            );
        }
        if global.min.is_none() {
            self.report.add(
                Outcome::Approximated,
                None,
                "(no min-lease-time)",
                "Kea's min-valid-lifetime defaults to valid-lifetime: a client asking for a shorter lease gets valid-lifetime, where dhcpd would grant it",
            );
        }
        global
    }
}
