//! `failover peer` → one Kea HA relationship: the block's statements read
//! into a [`FailoverDraft`], then the relationship written with its peer
//! names, roles, mode, URLs and timers.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::import::syntax::{Statement, Word};

use super::{Converter, FailoverDraft, ImportOptions, Outcome, ip_arg, u32_arg};

impl Converter {
    pub(super) fn failover(&mut self, s: &Statement) {
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

    /// This server's name and, from the first `failover peer`, its HA
    /// relationship (`None` without one, or without both addresses).
    pub(super) fn ha_relationship(&mut self, opts: &ImportOptions) -> (String, Option<Value>) {
        let Some(f) = self.failover.first().cloned() else {
            let name = opts
                .server_name
                .clone()
                .unwrap_or_else(|| opts.fallback_name.clone());
            return (name, None);
        };
        let primary = f.primary.unwrap_or_else(|| {
            self.report.add(
                Outcome::Approximated,
                f.at.as_ref(),
                format!("failover peer {:?}", f.name),
                "neither primary nor secondary; assumed primary",
            );
            true
        });
        let derived = |p: bool| format!("{}-{}", f.name, if p { "primary" } else { "secondary" });
        let me = opts.server_name.clone().unwrap_or_else(|| derived(primary));
        let partner = opts.peer_name.clone().unwrap_or_else(|| derived(!primary));
        if !f.split_seen {
            let note = if primary {
                "no split: dhcpd's default 128, load-balancing"
            } else {
                "a secondary takes split from its primary; assumed 128 (load-balancing). If the primary has split 255 or 0, set mode to hot-standby (xdhcpd check compares both files)"
            };
            self.report.add(
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
                self.report.add(
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
                self.report.add(Outcome::Refused, f.at.as_ref(), format!("failover peer {:?}", f.name), "needs both address and peer address as IPv4 addresses; no HA relationship written");
                (me, None)
            }
        }
    }
}
