//! Real ISC `dhclient` in a client host, and what it leased.
//!
//! Each client gets its own directory under the lab's temp dir with its own
//! config, lease file, pid file and script, so parallel clients never share
//! state and nothing under /var/lib/dhcp is touched. The lab's script only
//! adds and removes the leased address on the interface: no routes, no
//! resolv.conf, nothing outside the namespace. Keeping the address is what
//! lets the background daemon renew by unicast at T1 later. The script also
//! logs every event with its variables ([`Dhclient::events`]), which is how
//! renewals are seen: dhclient rewrites its lease file at most every 15 s.
//!
//! `dhclient -1` forks a daemon once bound; the helpers stop that daemon
//! (by pid file) before starting another, since a second `dhclient` on the
//! same interface would not replace the first.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::addr::Mac;
use crate::cleanup::Resources;
use crate::cmd::{self, Output};
use crate::netns;
use crate::wait::wait_until;

/// The lab's dhclient script: address on, address off, nothing else.
/// TIMEOUT exits non-zero so dhclient never falls back to a recorded lease
/// (a test must only see leases a server really granted).
const SCRIPT: &str = r#"#!/bin/sh
# xdhcp lab dhclient script: manages only the leased address on $interface.
# Record every event with the lease it carries: dhclient itself writes
# renewals to its lease file at most every 15 s, this log has them all.
{
    echo "event $reason"
    echo "interface=$interface"
    for v in ip_address subnet_mask routers domain_name_servers domain_name host_name \
             dhcp_server_identifier dhcp_lease_time dhcp_renewal_time dhcp_rebinding_time expiry; do
        eval "echo \"new_$v=\$new_$v\""
    done
    echo "old_ip_address=$old_ip_address"
    echo "end"
} >> "$(dirname "$0")/events"
case "$reason" in
PREINIT)
    ip link set dev "$interface" up
    ;;
BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
        ip -4 addr del "$old_ip_address${old_subnet_mask:+/$old_subnet_mask}" dev "$interface" 2>/dev/null
    fi
    ip -4 addr replace "$new_ip_address${new_subnet_mask:+/$new_subnet_mask}" dev "$interface" \
        valid_lft "${new_dhcp_lease_time:-forever}" preferred_lft "${new_dhcp_lease_time:-forever}"
    ;;
EXPIRE|FAIL|RELEASE|STOP)
    if [ -n "$old_ip_address" ]; then
        ip -4 addr del "$old_ip_address${old_subnet_mask:+/$old_subnet_mask}" dev "$interface" 2>/dev/null
    fi
    ;;
TIMEOUT)
    exit 1
    ;;
esac
exit 0
"#;

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
fn parse_time(v: &str) -> anyhow::Result<SystemTime> {
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
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A dhclient for one interface of one client host. Dropping it kills its
/// daemon (without a release); lab teardown would too.
#[derive(Debug)]
pub struct Dhclient {
    res: Arc<Resources>,
    host: String,
    netns: String,
    iface: String,
    dir: PathBuf,
}

impl Dhclient {
    /// Prepares the client's directory and script; starts nothing.
    pub(crate) fn new(
        res: Arc<Resources>,
        host: &str,
        netns: &str,
        iface: &str,
        dir: PathBuf,
    ) -> anyhow::Result<Dhclient> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let client = Dhclient { res, host: host.to_owned(), netns: netns.to_owned(), iface: iface.to_owned(), dir };
        let script = client.script_path();
        std::fs::write(&script, SCRIPT).with_context(|| format!("writing {}", script.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", script.display()))?;
        Ok(client)
    }

    /// The interface it manages.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Its private directory (config, leases, pid, script, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its lease file.
    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("dhclient.leases")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("dhclient.pid")
    }

    fn conf_file(&self) -> PathBuf {
        self.dir.join("dhclient.conf")
    }

    fn script_path(&self) -> PathBuf {
        self.dir.join("dhclient-script")
    }

    /// Every dhclient run's output so far, and the script's events: the
    /// first thing to read when a lease did not come.
    pub fn log(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}\n-- script events --\n{}", read(self.dir.join("dhclient.log")), read(self.events_file()))
    }

    fn events_file(&self) -> PathBuf {
        self.dir.join("events")
    }

    /// Every script event so far, oldest first: each bind, renewal,
    /// rebind, release, stop, with the lease it carried.
    pub fn events(&self) -> anyhow::Result<Vec<Event>> {
        match std::fs::read_to_string(self.events_file()) {
            Ok(text) => parse_events(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).context("reading dhclient events"),
        }
    }

    /// Gives the interface this MAC (link briefly down), e.g. to play a
    /// reserved client. Do it before [`Dhclient::obtain`].
    pub fn set_mac(&self, mac: Mac) -> anyhow::Result<()> {
        let mac = mac.to_string();
        netns::ip(&self.netns, &["link", "set", "dev", &self.iface, "down"])?;
        netns::ip(&self.netns, &["link", "set", "dev", &self.iface, "address", &mac])?;
        netns::ip(&self.netns, &["link", "set", "dev", &self.iface, "up"])?;
        Ok(())
    }

    /// Runs `dhclient -1` (DISCOVER, or INIT-REBOOT if a lease is recorded)
    /// and returns the lease it bound, giving up after `timeout`. The
    /// daemon it leaves behind renews by unicast at T1.
    pub fn obtain(&self, timeout: Duration) -> anyhow::Result<Lease> {
        self.obtain_sending(timeout, "")
    }

    /// [`Dhclient::obtain`] with `extra` statements in dhclient.conf, e.g.
    /// `send vendor-class-identifier "PXEClient";`.
    pub fn obtain_sending(&self, timeout: Duration, extra: &str) -> anyhow::Result<Lease> {
        self.kill_daemon()?;
        self.write_conf_with(timeout, extra)?;
        let out = self.dhclient("-1", timeout + Duration::from_secs(5))?;
        if !out.success() {
            bail!("{}: dhclient got no lease within {timeout:?} ({}):\n{}", self.host, out.status, self.log());
        }
        // Exit 0 means bound to a lease a server just ACKed (the script
        // refuses TIMEOUT, so never a recorded one); dhclient appended it.
        let lease = self.lease()?.with_context(|| format!("{}: dhclient bound but wrote no lease", self.host))?;
        // The parent exits once bound; the daemon it forked writes its pid
        // file a moment later (on a loaded machine, after our return).
        wait_until(&format!("{}: dhclient's daemon to write its pid file", self.host), Duration::from_secs(5), || {
            Ok(self.pid().map(|_| ()))
        })?;
        Ok(lease)
    }

    /// Restarts the client the way a rebooting host would: a REQUEST for
    /// the recorded address (INIT-REBOOT, broadcast). For a unicast
    /// RENEWING exchange, keep the daemon running and use
    /// [`Dhclient::wait_renewal`].
    pub fn renew(&self, timeout: Duration) -> anyhow::Result<Lease> {
        self.obtain(timeout)
    }

    /// Waits for the running daemon's own renewal at T1 (unicast to the
    /// server) or rebinding at T2, returning the lease it renewed to (from
    /// the script's event: dhclient writes its lease file at most every
    /// 15 s).
    pub fn wait_renewal(&self, timeout: Duration) -> anyhow::Result<Lease> {
        if self.pid().is_none() {
            bail!("{}: no dhclient daemon running to renew", self.host);
        }
        let seen = self.events()?.len();
        wait_until(&format!("{} to renew its lease", self.host), timeout, || {
            let events = self.events()?;
            Ok(events
                .into_iter()
                .skip(seen)
                .find(|e| matches!(e.reason.as_str(), "RENEW" | "REBIND"))
                .and_then(|e| e.lease))
        })
        .with_context(|| self.log())
    }

    /// Sends DHCPRELEASE for the recorded lease (`dhclient -r`) and removes
    /// the address.
    pub fn release(&self, timeout: Duration) -> anyhow::Result<()> {
        self.kill_daemon()?;
        self.write_conf(timeout)?;
        self.dhclient("-r", timeout)?.check()?;
        Ok(())
    }

    /// Stops the client without releasing (`dhclient -x`): the server
    /// still holds the lease, the address leaves the interface.
    pub fn stop(&self) -> anyhow::Result<()> {
        self.kill_daemon()?;
        self.write_conf(Duration::from_secs(1))?;
        self.dhclient("-x", cmd::SHORT)?.check()?;
        Ok(())
    }

    /// The newest recorded lease, if any.
    pub fn lease(&self) -> anyhow::Result<Option<Lease>> {
        Ok(self.leases()?.pop())
    }

    /// Every recorded lease, oldest first.
    pub fn leases(&self) -> anyhow::Result<Vec<Lease>> {
        let path = self.lease_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_leases(&text).with_context(|| format!("parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The pid of its running daemon, if one is running.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()?;
        is_live_dhclient(pid).then_some(pid)
    }

    fn write_conf(&self, timeout: Duration) -> anyhow::Result<()> {
        self.write_conf_with(timeout, "")
    }

    fn write_conf_with(&self, timeout: Duration, extra: &str) -> anyhow::Result<()> {
        // dhclient's timeout is whole seconds; round up, at least 1.
        let secs = timeout.as_millis().div_ceil(1000).max(1);
        let conf = format!(
            "# xdhcp lab: one client's dhclient.conf\n\
             timeout {secs};\n\
             retry 1;\n\
             initial-interval 1;\n\
             backoff-cutoff 2;\n\
             send host-name \"{host}\";\n\
             request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name,\n\
             \tdhcp-renewal-time, dhcp-rebinding-time;\n{extra}\n",
            host = self.host
        );
        std::fs::write(self.conf_file(), conf).with_context(|| format!("writing {}", self.conf_file().display()))
    }

    fn dhclient(&self, mode: &str, timeout: Duration) -> anyhow::Result<Output> {
        let mut cmd = netns::command(&self.netns, "dhclient");
        cmd.args([mode, "-v", "-cf"])
            .arg(self.conf_file())
            .arg("-lf")
            .arg(self.lease_file())
            .arg("-pf")
            .arg(self.pid_file())
            .arg("-sf")
            .arg(self.script_path())
            .arg(&self.iface)
            .current_dir(&self.dir);
        let out = cmd::run_with(&mut cmd, timeout, |c| self.res.start_in(&self.netns, c))
            .with_context(|| format!("{}: dhclient {mode}", self.host))?;
        let log = format!("$ {}\n{}{}\n", out.command, out.stdout, out.stderr);
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dhclient.log"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, log.as_bytes()));
        Ok(out)
    }

    /// Kills the daemon from our pid file (no release, no script) and
    /// removes the pid file, so the next dhclient neither finds a
    /// competitor nor waits a second for it to exit.
    fn kill_daemon(&self) -> anyhow::Result<()> {
        if let Some(pid) = self.pid() {
            let raw = libc::pid_t::try_from(pid).context("pid out of range")?;
            // SAFETY: kill(2) on a pid just checked to be a dhclient; no
            // memory involved.
            unsafe { libc::kill(raw, libc::SIGKILL) };
            wait_until(&format!("{}: old dhclient {pid} to exit", self.host), Duration::from_secs(5), || {
                Ok((!is_live_dhclient(pid)).then_some(()))
            })?;
        }
        match std::fs::remove_file(self.pid_file()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("removing dhclient pid file"),
        }
    }
}

impl Drop for Dhclient {
    fn drop(&mut self) {
        let _ = self.kill_daemon();
    }
}

/// Whether `pid` is a running (not zombie) dhclient: guards against
/// signalling a recycled pid from a stale pid file.
fn is_live_dhclient(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // State is the field after the parenthesised command name.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    comm.trim() == "dhclient" && !matches!(state, None | Some("Z" | "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by dhclient 4.4.3-P1 in the venus lab against Kea 2.2:
    /// mutante1's DISCOVER lease, then its INIT-REBOOT renewal.
    const SAMPLE: &str = include_str!("../testdata/dhclient.leases");

    #[test]
    fn parses_a_real_lease_file() {
        let leases = parse_leases(SAMPLE).unwrap();
        assert_eq!(leases.len(), 2);
        let l = leases.last().unwrap();
        assert_eq!(l.interface, "eth0");
        assert_eq!(l.address, Ipv4Addr::new(192, 168, 50, 100));
        assert_eq!(l.server_id, Ipv4Addr::new(192, 168, 50, 2));
        assert_eq!(l.lease_time, 60);
        assert_eq!(l.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(l.routers, [Ipv4Addr::new(192, 168, 50, 1)]);
        assert_eq!(l.dns_servers, [Ipv4Addr::new(192, 168, 50, 2), Ipv4Addr::new(192, 168, 50, 3)]);
        assert_eq!(l.domain_name.as_deref(), Some("venus.test"));
        assert_eq!(l.host_name.as_deref(), Some("mutante1"));
        assert_eq!((l.renewal_time, l.rebinding_time), (Some(30), Some(45)));
        let (renew, expire) = (l.renew.unwrap(), l.expire.unwrap());
        // dhclient schedules renewal a little before T1; expiry is exact.
        let lead = expire.duration_since(renew).unwrap().as_secs();
        assert!((30..=40).contains(&lead), "renew {lead}s before expiry");
        assert_eq!(l.options["dhcp-message-type"], "5");
    }

    /// Written by the lab's script in the same run: BOUND, a unicast RENEW
    /// at T1, then RELEASE.
    const EVENTS: &str = include_str!("../testdata/dhclient.events");

    #[test]
    fn parses_real_script_events() {
        let events = parse_events(EVENTS).unwrap();
        let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["PREINIT", "BOUND", "RENEW", "RELEASE"]);
        assert!(events[0].lease.is_none() && events[3].lease.is_none());
        assert_eq!(events[3].vars["old_ip_address"], "192.168.50.100");
        let (bound, renew) = (events[1].lease.as_ref().unwrap(), events[2].lease.as_ref().unwrap());
        assert_eq!(bound.address, Ipv4Addr::new(192, 168, 50, 100));
        assert_eq!(bound.server_id, Ipv4Addr::new(192, 168, 50, 2));
        assert_eq!((bound.lease_time, bound.renewal_time, bound.rebinding_time), (8, Some(2), Some(4)));
        assert_eq!(bound.dns_servers, [Ipv4Addr::new(192, 168, 50, 2), Ipv4Addr::new(192, 168, 50, 3)]);
        assert_eq!(bound.routers, [Ipv4Addr::new(192, 168, 50, 1)]);
        assert_eq!(bound.domain_name.as_deref(), Some("venus.test"));
        assert_eq!(renew.address, bound.address);
        assert!(renew.expire.unwrap() > bound.expire.unwrap());
        assert_eq!(renew.options["dhcp-server-identifier"], "192.168.50.2");
    }

    #[test]
    fn time_formats() {
        let t = parse_time("2 2026/11/24 20:28:58").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_552_138);
        let e = parse_time("epoch 1795552138").unwrap();
        assert_eq!(t, e);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert!(parse_time("2 2026/11 20:28:58").is_err());
    }

    #[test]
    fn broken_files_are_errors_not_garbage() {
        assert!(parse_leases("lease {\n  interface \"eth0\";\n").is_err());
        assert!(parse_leases("lease {\n  interface \"eth0\";\n}\n").is_err(), "no address");
        assert!(parse_leases("").unwrap().is_empty());
        assert!(parse_leases("default-duid \"\\000\\001\";\n").unwrap().is_empty());
    }
}
