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

mod parse;
#[cfg(test)]
mod tests;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::addr::Mac;
use crate::cleanup::Resources;
use crate::cmd::{self, Output};
use crate::netns;
use crate::wait::wait_until;

pub use parse::{Event, Lease, parse_events, parse_leases};

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
