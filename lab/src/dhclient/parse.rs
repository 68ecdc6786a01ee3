//! Reading what dhclient left behind: its lease file and the lab script's
//! event log. Pure text parsing, unit-tested on files from a real run.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// One lease as dhclient recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Interface it was obtained on.
    pub interface: String,
    /// The leased address (`fixed-address`).
    pub address: Ipv4Addr,
    /// Which server granted it (option 54): tells primary from standby.
    pub server_id: Ipv4Addr,
    /// Lease time in seconds (option 51).
    pub lease_time: u32,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (recorded, never installed as a route).
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 12 as the server sent it.
    pub host_name: Option<String>,
    /// T1 (option 58), seconds.
    pub renewal_time: Option<u32>,
    /// T2 (option 59), seconds.
    pub rebinding_time: Option<u32>,
    /// When dhclient will renew (T1 from binding).
    pub renew: Option<SystemTime>,
    /// When it will rebind (T2).
    pub rebind: Option<SystemTime>,
    /// When the lease expires.
    pub expire: Option<SystemTime>,
    /// Every `option` line, name to raw value (quotes removed), for
    /// anything not parsed above; also `filename` and `server-name`.
    pub options: BTreeMap<String, String>,
}

/// One run of the lab's dhclient script: why dhclient called it and what
/// it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// dhclient's `$reason`: PREINIT, BOUND, RENEW, REBIND, REBOOT,
    /// EXPIRE, FAIL, RELEASE, STOP, TIMEOUT.
    pub reason: String,
    /// The script's variables (`interface`, `new_*`, `old_ip_address`).
    pub vars: BTreeMap<String, String>,
    /// The lease it carries (bound/renewed events), with `expire` from
    /// `new_expiry`; renew/rebind times are only in the lease file.
    pub lease: Option<Lease>,
}

/// Parses the lab script's event log (`event REASON`, `key=value` lines,
/// `end`).
pub fn parse_events(text: &str) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    for line in text.lines() {
        if let Some(reason) = line.strip_prefix("event ") {
            current = Some((reason.trim().to_owned(), BTreeMap::new()));
        } else if line == "end" {
            let (reason, vars) = current.take().context("`end` without `event`")?;
            let lease = event_lease(&vars).with_context(|| format!("{reason} event"))?;
            events.push(Event { reason, vars, lease });
        } else if let (Some((_, vars)), Some((k, v))) = (&mut current, line.split_once('=')) {
            vars.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(events)
}

fn event_lease(vars: &BTreeMap<String, String>) -> anyhow::Result<Option<Lease>> {
    let get = |k: &str| vars.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(address) = get("new_ip_address") else { return Ok(None) };
    let ip = |k: &str| -> anyhow::Result<Option<Ipv4Addr>> {
        get(k).map(|v| v.parse().with_context(|| format!("{k}={v:?}"))).transpose()
    };
    let ips = |k: &str| -> anyhow::Result<Vec<Ipv4Addr>> {
        get(k)
            .map(|v| {
                v.split([' ', ','])
                    .filter(|a| !a.is_empty())
                    .map(|a| a.parse().with_context(|| format!("{k}={v:?}")))
                    .collect()
            })
            .unwrap_or(Ok(Vec::new()))
    };
    let num = |k: &str| -> anyhow::Result<Option<u64>> {
        get(k).map(|v| v.parse().with_context(|| format!("{k}={v:?}"))).transpose()
    };
    let secs =
        |k: &str| -> anyhow::Result<Option<u32>> { num(k)?.map(u32::try_from).transpose().context(k.to_owned()) };
    // Option names as dhclient spells them in lease files.
    let options = [
        ("subnet-mask", "new_subnet_mask"),
        ("routers", "new_routers"),
        ("domain-name-servers", "new_domain_name_servers"),
        ("domain-name", "new_domain_name"),
        ("host-name", "new_host_name"),
        ("dhcp-server-identifier", "new_dhcp_server_identifier"),
        ("dhcp-lease-time", "new_dhcp_lease_time"),
        ("dhcp-renewal-time", "new_dhcp_renewal_time"),
        ("dhcp-rebinding-time", "new_dhcp_rebinding_time"),
    ]
    .into_iter()
    .filter_map(|(name, var)| get(var).map(|v| (name.to_owned(), v.to_owned())))
    .collect();
    Ok(Some(Lease {
        interface: get("interface").context("no interface")?.to_owned(),
        address: address.parse().with_context(|| format!("new_ip_address={address:?}"))?,
        server_id: ip("new_dhcp_server_identifier")?.context("no server identifier")?,
        lease_time: secs("new_dhcp_lease_time")?.context("no lease time")?,
        subnet_mask: ip("new_subnet_mask")?,
        routers: ips("new_routers")?,
        dns_servers: ips("new_domain_name_servers")?,
        domain_name: get("new_domain_name").map(str::to_owned),
        host_name: get("new_host_name").map(str::to_owned),
        renewal_time: secs("new_dhcp_renewal_time")?,
        rebinding_time: secs("new_dhcp_rebinding_time")?,
        renew: None,
        rebind: None,
        expire: num("new_expiry")?.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        options,
    }))
}

/// Parses a dhclient lease file (`dhclient.leases(5)`): every `lease { }`
/// block in file order, the newest last.
pub fn parse_leases(text: &str) -> anyhow::Result<Vec<Lease>> {
    let mut leases = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        match (&mut block, line) {
            (None, "lease {") => block = Some(Vec::new()),
            (None, _) => {} // default-duid and other top-level statements
            (Some(b), "}") => {
                leases.push(parse_block(b).with_context(|| format!("lease block ending at line {}", n + 1))?);
                block = None;
            }
            (Some(b), stmt) => b.push(stmt),
        }
    }
    if block.is_some() {
        bail!("unterminated lease block");
    }
    Ok(leases)
}

fn parse_block(lines: &[&str]) -> anyhow::Result<Lease> {
    let mut interface = None;
    let mut address = None;
    let mut options = BTreeMap::new();
    let mut times = BTreeMap::new();
    for line in lines {
        let stmt = line.strip_suffix(';').unwrap_or(line).trim();
        let (key, value) = stmt.split_once(' ').unwrap_or((stmt, ""));
        match key {
            "interface" => interface = Some(unquote(value).to_owned()),
            "fixed-address" => {
                address = Some(value.parse::<Ipv4Addr>().with_context(|| format!("fixed-address {value:?}"))?)
            }
            "option" => {
                let (name, v) = value.split_once(' ').unwrap_or((value, ""));
                options.insert(name.to_owned(), unquote(v).to_owned());
            }
            // The BOOTP fields, kept with the options under their names.
            "filename" | "server-name" => {
                options.insert(key.to_owned(), unquote(value).to_owned());
            }
            "renew" | "rebind" | "expire" => {
                times.insert(key, parse_time(value).with_context(|| format!("{key} {value:?}"))?);
            }
            _ => {}
        }
    }
    let opt = |name: &str| options.get(name).map(String::as_str);
    let ip = |name: &str| -> anyhow::Result<Option<Ipv4Addr>> {
        opt(name).map(|v| v.parse().with_context(|| format!("option {name} {v:?}"))).transpose()
    };
    let ips = |name: &str| -> anyhow::Result<Vec<Ipv4Addr>> {
        opt(name)
            .map(|v| v.split(',').map(|a| a.trim().parse().with_context(|| format!("option {name} {v:?}"))).collect())
            .unwrap_or(Ok(Vec::new()))
    };
    let secs = |name: &str| -> anyhow::Result<Option<u32>> {
        opt(name).map(|v| v.parse().with_context(|| format!("option {name} {v:?}"))).transpose()
    };
    Ok(Lease {
        interface: interface.context("no interface")?,
        address: address.context("no fixed-address")?,
        server_id: ip("dhcp-server-identifier")?.context("no dhcp-server-identifier")?,
        lease_time: secs("dhcp-lease-time")?.context("no dhcp-lease-time")?,
        subnet_mask: ip("subnet-mask")?,
        routers: ips("routers")?,
        dns_servers: ips("domain-name-servers")?,
        domain_name: opt("domain-name").map(str::to_owned),
        host_name: opt("host-name").map(str::to_owned),
        renewal_time: secs("dhcp-renewal-time")?,
        rebinding_time: secs("dhcp-rebinding-time")?,
        renew: times.get("renew").copied(),
        rebind: times.get("rebind").copied(),
        expire: times.get("expire").copied(),
        options,
    })
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
}

/// Parses `W YYYY/MM/DD HH:MM:SS` (UTC, dhclient's default) or `epoch N`
/// (its `db-time-format local` form, a trailing comment already stripped
/// or not).
pub(super) fn parse_time(v: &str) -> anyhow::Result<SystemTime> {
    let mut words = v.split_whitespace();
    let first = words.next().context("empty time")?;
    if first == "epoch" {
        let secs: u64 = words.next().context("epoch without seconds")?.parse()?;
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let date = words.next().context("no date")?;
    let time = words.next().context("no time")?;
    let nums = |s: &str, sep: char| -> anyhow::Result<Vec<i64>> {
        s.split(sep).map(|p| p.parse::<i64>().with_context(|| format!("{s:?}"))).collect()
    };
    let (d, t) = (nums(date, '/')?, nums(time, ':')?);
    let (&[y, m, dd], &[hh, mm, ss]) = (d.as_slice(), t.as_slice()) else { bail!("bad date/time {v:?}") };
    let secs = days_from_civil(y, m, dd) * 86_400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).context("time before 1970")?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm, rewritten here).
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
