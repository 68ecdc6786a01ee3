//! The declaration walk: global scope, shared-network, group, subnet,
//! range, pool and host statements become drafts, with their settings
//! inherited as in dhcpd.

use std::net::Ipv4Addr;

use crate::config::Cidr;
use crate::import::syntax::{Statement, Word};

use super::settings::Settings;
use super::{Converter, HostDraft, Outcome, PoolDraft, SubnetDraft, ip_arg};

fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

impl Converter {
    pub(super) fn top(
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
}
