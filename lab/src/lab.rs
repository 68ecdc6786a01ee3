//! A running topology: [`Lab::up`] builds it, dropping the [`Lab`] (or a
//! panic, or a signal) tears it down.
//!
//! Layout on the machine, for a lab with id `xlab-<pid>-<n>`:
//! - host `h` is namespace `xlab-<pid>-<n>-h`, its ports `eth0`, `eth1`, …;
//! - segment `s` is namespace `xlab-<pid>-<n>-sw-s` holding bridge `xbr-s`
//!   and one veth `xp-<host>` per attached host, the other end of which is
//!   the host's `eth<i>`.
//!
//! Nothing is created in the root namespace: veths are made inside the
//! switch namespace with their peer placed straight into the host
//! namespace. No host gets a default route or any route but the connected
//! ones of its own addresses, and IPv6 is off everywhere (no router
//! solicitations or MLD reports cluttering captures). The lab's traffic
//! cannot leave its namespaces.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;

use crate::addr::Ipv4Cidr;
use crate::capture::Capture;
use crate::cleanup::{self, Resources};
use crate::cmd::{self, Output};
use crate::dhclient::Dhclient;
use crate::names;
use crate::netns;
use crate::process::Process;
use crate::topology::{BridgePorts, Topology};

/// Environment variable: set to `1` to keep lab temp dirs (logs, pcaps,
/// rendered configs, lease files) after teardown for a post-mortem.
pub const KEEP_ENV: &str = "XLAB_KEEP";

/// A topology brought up on this machine. Torn down on drop.
#[derive(Debug)]
pub struct Lab {
    res: Arc<Resources>,
    topology: Topology,
    captures: AtomicU32,
    /// CPUs that programs started in a host may run on ([`Lab::pin`]).
    pinned: Mutex<BTreeMap<String, String>>,
}

impl Lab {
    /// Validates `topology`, sweeps stale leftovers of dead runs, and builds
    /// the lab under fresh unique names. If building fails half-way the
    /// partial lab is torn down before the error is returned.
    pub fn up(topology: Topology) -> anyhow::Result<Lab> {
        topology.validate().context("invalid topology")?;
        if let Err(e) = cleanup::cleanup_stale() {
            eprintln!("lab: sweeping stale labs failed (continuing): {e:#}");
        }
        let id = names::next_lab_id();
        let namespaces = topology
            .hosts
            .iter()
            .map(|h| names::host_netns(&id, &h.name))
            .chain(topology.segments.iter().map(|s| names::switch_netns(&id, &s.name)))
            .collect();
        let keep_dir = std::env::var(KEEP_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        let dir = std::env::temp_dir().join(&id);
        let res = Arc::new(Resources { id, namespaces, dir, keep_dir, up: std::sync::Mutex::new(false) });
        // Registered before anything exists, so a signal mid-build cleans up.
        cleanup::register(Arc::clone(&res));
        let lab = Lab { res, topology, captures: AtomicU32::new(0), pinned: Mutex::new(BTreeMap::new()) };
        lab.ensure_up()?;
        Ok(lab)
    }

    /// Builds the lab if it is down (after [`Lab::down`]); a no-op if it is
    /// up. Rebuilding reuses the same names.
    pub fn ensure_up(&self) -> anyhow::Result<()> {
        let mut up = self.res.lock();
        if *up {
            return Ok(());
        }
        let built = self.build();
        if built.is_err() {
            let _ = self.res.teardown_locked(&mut up);
        } else {
            *up = true;
        }
        built.with_context(|| format!("bringing lab {} up", self.res.id))
    }

    /// Tears the lab down: kills every process in its namespaces, deletes
    /// them (and so every bridge and veth), removes its temp dir. Idempotent.
    pub fn down(&self) -> anyhow::Result<()> {
        let mut up = self.res.lock();
        self.res.teardown_locked(&mut up).with_context(|| format!("tearing lab {} down", self.res.id))
    }

    /// Whether the lab is currently built.
    pub fn is_up(&self) -> bool {
        *self.res.lock()
    }

    fn build(&self) -> anyhow::Result<()> {
        let id = &self.res.id;
        // Leftovers of an earlier failed build under the same names.
        for ns in &self.res.namespaces {
            netns::remove(ns)?;
        }
        std::fs::create_dir_all(&self.res.dir).with_context(|| format!("creating {}", self.res.dir.display()))?;
        if let Some(start) = cleanup::own_start_time() {
            std::fs::write(self.res.dir.join(cleanup::OWNER_FILE), start.to_string()).context("writing owner file")?;
        }
        let no_ipv6 = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"];
        for seg in &self.topology.segments {
            let sw = names::switch_netns(id, &seg.name);
            let br = names::bridge(&seg.name);
            netns::add(&sw)?;
            netns::sysctl(&sw, &no_ipv6)?;
            // No STP, no forwarding delay, no multicast snooping: a port
            // forwards the moment it is up, and broadcasts reach every port.
            netns::ip(
                &sw,
                &["link", "add", &br, "type", "bridge", "forward_delay", "0", "stp_state", "0", "mcast_snooping", "0"],
            )?;
            netns::ip(&sw, &["link", "set", &br, "up"])?;
        }
        let pass = crate::xdp_pass::PassProgram::load()?;
        self.add_hosts(id, &no_ipv6, &pass)
    }

    fn add_hosts(&self, id: &str, no_ipv6: &[&str], pass: &crate::xdp_pass::PassProgram) -> anyhow::Result<()> {
        for host in &self.topology.hosts {
            let ns = names::host_netns(id, &host.name);
            netns::add(&ns)?;
            netns::sysctl(&ns, no_ipv6)?;
            netns::ip(&ns, &["link", "set", "lo", "up"])?;
            for (i, port) in host.ports.iter().enumerate() {
                let sw = names::switch_netns(id, &port.segment);
                let side = names::port(&host.name);
                let eth = names::host_iface(i);
                let mut add = vec!["link", "add", &side, "type", "veth", "peer", "name", &eth];
                let mac = port.mac.map(|m| m.to_string());
                if let Some(mac) = &mac {
                    add.extend(["address", mac]);
                }
                add.extend(["netns", &ns]);
                netns::ip(&sw, &add)?;
                netns::ip(&sw, &["link", "set", &side, "master", &names::bridge(&port.segment), "up"])?;
                // The bridge-side veth needs NAPI, without which frames a
                // server sends back with XDP_TX are silently dropped: GRO
                // alone does not get them delivered on kernel 6.18, an XDP
                // program does (see xdp_pass.rs) — unless the topology asks
                // for ports as container hosts leave them.
                match self.topology.bridge_ports {
                    BridgePorts::XdpPass => {
                        netns::exec(&sw, &["ethtool", "-K", &side, "gro", "on"])?;
                        pass.attach(&sw, &side)?;
                    }
                    BridgePorts::GroOnly => {
                        netns::exec(&sw, &["ethtool", "-K", &side, "gro", "on"])?;
                    }
                    BridgePorts::Plain => {
                        netns::exec(&sw, &["ethtool", "-K", &side, "gro", "off"])?;
                    }
                }
                if let Some(addr) = port.address {
                    netns::ip(&ns, &["addr", "add", &addr.to_string(), "dev", &eth])?;
                }
                netns::ip(&ns, &["link", "set", &eth, "up"])?;
            }
        }
        Ok(())
    }

    /// This lab's unique id (`xlab-<pid>-<n>`), the prefix of all its
    /// namespace names.
    pub fn id(&self) -> &str {
        &self.res.id
    }

    /// The topology it was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The lab's temp dir: logs, pcaps, configs, lease files. Removed at
    /// teardown unless `XLAB_KEEP=1`.
    pub fn dir(&self) -> &Path {
        &self.res.dir
    }

    /// A per-host subdirectory of [`Lab::dir`], created on demand.
    pub fn host_dir(&self, host: &str) -> anyhow::Result<PathBuf> {
        self.topology.get_host(host)?;
        let dir = self.res.dir.join(host);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Every namespace of the lab (hosts, then switches), for inspection
    /// and for checking that teardown removed them.
    pub fn namespaces(&self) -> &[String] {
        &self.res.namespaces
    }

    /// The namespace name of `host`, for tools run by hand
    /// (`ip netns exec <name> …`).
    pub fn netns(&self, host: &str) -> anyhow::Result<String> {
        self.topology.get_host(host)?;
        Ok(names::host_netns(&self.res.id, host))
    }

    /// The host-side interface of `host` on `segment` (`eth0`, …).
    pub fn iface(&self, host: &str, segment: &str) -> anyhow::Result<String> {
        self.topology
            .get_host(host)?
            .iface_on(segment)
            .with_context(|| format!("host {host:?} has no port on segment {segment:?}"))
    }

    /// Names of the bridges and bridge-side veths the lab made (they live
    /// in switch namespaces; none may ever show up in the root namespace).
    pub fn switch_links(&self) -> Vec<String> {
        let bridges = self.topology.segments.iter().map(|s| names::bridge(&s.name));
        let ports = self.topology.hosts.iter().filter(|h| !h.ports.is_empty()).map(|h| names::port(&h.name));
        bridges.chain(ports).collect()
    }

    /// Confines every program started in `host` from now on to `cpus`
    /// (`taskset -c` around `ip netns exec`; threads inherit it), or lifts
    /// that with `None`. Benchmarks use it to give a load generator and a
    /// server a core each instead of letting them fight over the same ones.
    pub fn pin(&self, host: &str, cpus: Option<&[usize]>) -> anyhow::Result<()> {
        self.topology.get_host(host)?;
        let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        match cpus {
            Some([]) => anyhow::bail!("pinning host {host:?} to no CPU at all"),
            Some(cpus) => {
                let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
                pinned.insert(host.to_owned(), list.join(","));
            }
            None => {
                pinned.remove(host);
            }
        }
        Ok(())
    }

    /// A command to run in `host`; finish it with `.run()`, `.output()` or
    /// `.spawn(name)`.
    pub fn cmd(&self, host: &str, program: impl AsRef<OsStr>) -> HostCommand<'_> {
        HostCommand {
            lab: self,
            host: host.to_owned(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            timeout: cmd::SHORT,
        }
    }

    /// Runs `argv` in `host` (10 s bound), failing on a non-zero exit.
    pub fn run(&self, host: &str, argv: &[&str]) -> anyhow::Result<Output> {
        let (program, args) = argv.split_first().context("empty command line")?;
        self.cmd(host, program).args(args).run()
    }

    /// Starts a long-running program in `host`, logging to
    /// `<host dir>/<name>.log`.
    pub fn spawn(&self, host: &str, name: &str, argv: &[&str]) -> anyhow::Result<Process> {
        let (program, args) = argv.split_first().context("empty command line")?;
        self.cmd(host, program).args(args).spawn(name)
    }

    /// Unplugs `host` from `segment` by setting its bridge-side veth down:
    /// the host sees carrier loss, nothing crosses until restored.
    pub fn cut_link(&self, host: &str, segment: &str) -> anyhow::Result<()> {
        self.set_link(host, segment, "down")
    }

    /// Plugs the link cut by [`Lab::cut_link`] back in; it forwards at once
    /// (no STP delay).
    pub fn restore_link(&self, host: &str, segment: &str) -> anyhow::Result<()> {
        self.set_link(host, segment, "up")
    }

    fn set_link(&self, host: &str, segment: &str, state: &str) -> anyhow::Result<()> {
        self.iface(host, segment)?;
        let sw = names::switch_netns(&self.res.id, segment);
        netns::ip(&sw, &["link", "set", &names::port(host), state])?;
        Ok(())
    }

    /// A dhclient for `host`'s `eth0`.
    pub fn dhclient(&self, host: &str) -> anyhow::Result<Dhclient> {
        self.dhclient_on(host, &names::host_iface(0))
    }

    /// A dhclient for one interface of `host`, with its own files under
    /// the host's dir.
    pub fn dhclient_on(&self, host: &str, iface: &str) -> anyhow::Result<Dhclient> {
        let dir = self.host_dir(host)?.join(format!("dhclient-{iface}"));
        Dhclient::new(Arc::clone(&self.res), host, &self.netns(host)?, iface, dir)
    }

    /// Starts tcpdump on `iface` in `host` with an optional filter
    /// expression (e.g. `["udp", "port", "67", "or", "port", "68"]`);
    /// returns once it is capturing.
    pub fn capture(&self, host: &str, iface: &str, filter: &[&str]) -> anyhow::Result<Capture> {
        let ns = self.netns(host)?;
        self.start_capture(&ns, self.host_dir(host)?, iface, filter)
    }

    /// Starts tcpdump on a segment's bridge, inside its switch namespace:
    /// every frame between any hosts of the segment, from one place (who
    /// answered a broadcast DISCOVER, both servers' replies side by side).
    pub fn capture_segment(&self, segment: &str, filter: &[&str]) -> anyhow::Result<Capture> {
        if !self.topology.segments.iter().any(|s| s.name == segment) {
            anyhow::bail!("no segment {segment:?} in this topology");
        }
        let dir = self.res.dir.join(format!("sw-{segment}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ns = names::switch_netns(&self.res.id, segment);
        self.start_capture(&ns, dir, &names::bridge(segment), filter)
    }

    fn start_capture(&self, ns: &str, dir: PathBuf, iface: &str, filter: &[&str]) -> anyhow::Result<Capture> {
        let n = self.captures.fetch_add(1, Ordering::Relaxed);
        let name = format!("capture-{iface}-{n}");
        let pcap = dir.join(format!("{name}.pcap"));
        let mut cmd = netns::command(ns, "tcpdump");
        // --immediate-mode: hand each packet over at once (TPACKET_V3 would
        // hold it up to a block timeout, and a stop right after would lose
        // it); -U: write it at once; -Z root: Debian's tcpdump would
        // otherwise drop to a user that cannot write the lab dir.
        cmd.args(["-i", iface, "-n", "--immediate-mode", "-U", "-Z", "root", "-w"]).arg(&pcap).args(filter);
        cmd.current_dir(&dir);
        let log = dir.join(format!("{name}.log"));
        let process = Process::spawn(&name, ns, cmd, log, |c| self.res.start_in(ns, c))?;
        Capture::start(process, pcap, Duration::from_secs(10))
    }

    /// IPv4 addresses on `iface` in `host`, as `ip -4 addr` shows them.
    pub fn addresses(&self, host: &str, iface: &str) -> anyhow::Result<Vec<Ipv4Cidr>> {
        let out = self.run(host, &["ip", "-4", "-o", "addr", "show", "dev", iface])?;
        out.stdout
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                words.find(|w| *w == "inet").and_then(|_| words.next())
            })
            .map(str::parse)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!("lab {}: {e:#}", self.res.id);
        }
        cleanup::unregister(&self.res.id);
    }
}

/// A command for one lab host, built up like [`std::process::Command`].
/// Runs inside the host's namespace, in the host's dir, bounded by a
/// timeout (10 s unless set).
#[derive(Debug)]
pub struct HostCommand<'a> {
    lab: &'a Lab,
    host: String,
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl HostCommand<'_> {
    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Bounds `output`/`run` (not `spawn`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command(&self) -> anyhow::Result<(String, Command)> {
        let ns = self.lab.netns(&self.host)?;
        let cpus = self.lab.pinned.lock().unwrap_or_else(PoisonError::into_inner).get(&self.host).cloned();
        let mut c = match cpus {
            // taskset execs `ip`, which execs the program: one pid throughout.
            Some(cpus) => {
                let inner = netns::command(&ns, &self.program);
                let mut c = Command::new("taskset");
                c.args(["-c", &cpus]).arg(inner.get_program()).args(inner.get_args());
                c
            }
            None => netns::command(&ns, &self.program),
        };
        c.args(&self.args).envs(self.envs.iter().map(|(k, v)| (k, v))).current_dir(self.lab.host_dir(&self.host)?);
        Ok((ns, c))
    }

    /// Runs to completion; any exit status is returned, not an error.
    pub fn output(self) -> anyhow::Result<Output> {
        let (ns, mut c) = self.command()?;
        cmd::run_with(&mut c, self.timeout, |c| self.lab.res.start_in(&ns, c))
            .with_context(|| format!("in host {}", self.host))
    }

    /// Runs to completion, failing on a non-zero exit.
    pub fn run(self) -> anyhow::Result<Output> {
        let host = self.host.clone();
        self.output()?.check().with_context(|| format!("in host {host}"))
    }

    /// Starts it as a long-running [`Process`] logging to
    /// `<host dir>/<name>.log`.
    pub fn spawn(self, name: &str) -> anyhow::Result<Process> {
        let (ns, c) = self.command()?;
        let log = self.lab.host_dir(&self.host)?.join(format!("{name}.log"));
        Process::spawn(name, &self.host, c, log, |c| self.lab.res.start_in(&ns, c))
    }
}
