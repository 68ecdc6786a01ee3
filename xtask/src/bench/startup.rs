//! `cargo xtask bench startup`: how long xdhcpd and Kea 2.2 take to start
//! with 1,000,000 leases in their lease file, and how much memory a lease
//! costs each of them. Writes `bench/startup.json` and the `startup`
//! section of `BENCHMARKS.md` (text outside its markers is kept).
//!
//! Method:
//! - One Kea 2.2 memfile lease CSV (`lab::loadgen::lease_csv`, the header
//!   and columns `kea-dhcp4` writes) of N distinct live leases: consecutive
//!   addresses from 192.168.64.1 (no .0/.255), MACs `02:4c:` + the
//!   address, 30-day lifetimes expiring 30 days from now. Both servers run
//!   the same Kea `Dhcp4` config (venus `lobezno.json`, HA hook removed,
//!   subnet widened to 192.160.0.0/11 with a pool of ~1.5 million
//!   addresses that holds every lease, 30-day `valid-lifetime`) and load
//!   the same file, copied fresh before every start (both servers rewrite
//!   their files); the copy is in the page cache for both.
//! - Start-up time is from spawning the server (`ip netns exec` in lobezno,
//!   as every lab server starts) to the log line with which each says it
//!   serves: xdhcpd's `serving` (logged once the store is loaded, the
//!   kernel map synced and the sockets handed to the serving tasks), Kea's
//!   `DHCP4_STARTED` (logged once its configuration, lease file included,
//!   is committed and its sockets are open). Both lines follow the last
//!   step before answering and are found the same way: the log polled every
//!   2 ms. The phases before it are timed from their own lines: xdhcpd's
//!   `lease store loaded` and `kernel lease map loaded`, Kea's
//!   `DHCPSRV_MEMFILE_LEASE_FILE_LOAD` (it starts reading the file).
//! - Every start is checked to be complete: xdhcpd logs the leases in its
//!   store and the kernel map's entries (each must be N); Kea is asked over
//!   its control socket for `subnet[1].assigned-addresses`, which it
//!   recounts from the loaded leases at start-up.
//! - Memory per lease: the server's proportional set size
//!   (`/proc/PID/smaps_rollup` `Pss`, 1 s after it is ready) with the N-lease
//!   file minus the same with a header-only file, divided by N. For xdhcpd
//!   with XDP the kernel's lease map is counted apart: the `memlock` the
//!   kernel reports for the map in `/proc/PID/fdinfo` (the map is not
//!   preallocated, so this follows its elements).
//! - Every repeat starts each server twice (empty file, N-lease file); the
//!   servers interleaved, min/median/max over repeats.
//!
//! No DHCP traffic is sent.

use std::{
    fmt::Write as _,
    io::{Read as _, Write as _},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lab::{Kea, KeaConfig, Lab, Process, loadgen, venus};

use super::{Machine, Running, Section, command_line, commit, js, load_average, remove_lease_files, spread, utf8};
use crate::build;

const SUBNET: &str = "192.160.0.0/11";
const POOL: &str = "192.168.64.0-192.191.255.254";
const FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 1);
/// Lease lifetime, in the CSV and the config: nothing expires in a run.
const LIFETIME: u32 = 30 * 86_400;
/// The kernel lease map's capacity (`XDHCP_LEASES`).
const MAP_CAPACITY: usize = 1 << 20;
/// Bound on one start-up.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on one shutdown (xdhcpd flushes its store).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the log is read while waiting.
const POLL: Duration = Duration::from_millis(2);
/// Settling time between ready and reading the memory.
const SETTLE: Duration = Duration::from_secs(1);
const XDHCPD_LEASES: &str = "leases4.csv";
const KEA_LEASES: &str = "kea-leases4.csv";
/// Goal of issue #8: start-up no slower than Kea.
const TARGET_VS_KEA: f64 = 1.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Xdp,
    NoXdp,
    Kea,
}

const SERVERS: [Server; 3] = [Server::Xdp, Server::NoXdp, Server::Kea];

impl Server {
    fn key(self) -> &'static str {
        match self {
            Server::Xdp => "xdhcpd-xdp",
            Server::NoXdp => "xdhcpd-no-xdp",
            Server::Kea => "kea",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Server::Xdp => "xdhcpd (XDP attached)",
            Server::NoXdp => "xdhcpd --no-xdp",
            Server::Kea => "Kea 2.2 (kea-dhcp4)",
        }
    }

    /// The log lines timed, in the order they appear; the last is ready.
    fn phases(self) -> &'static [&'static str] {
        match self {
            Server::Xdp => &["lease store loaded", "kernel lease map loaded", "serving"],
            Server::NoXdp => &["lease store loaded", "serving"],
            Server::Kea => &["DHCPSRV_MEMFILE_LEASE_FILE_LOAD", "DHCP4_STARTED"],
        }
    }
}

/// One start of one server.
#[derive(Debug, Clone)]
struct Start {
    /// Seconds from spawn to each phase's line (the last is ready).
    phases: Vec<f64>,
    /// Leases the server reports loaded.
    loaded: u64,
    /// Entries in the kernel lease map (xdhcpd with XDP).
    kernel_entries: Option<u64>,
    pss_kib: u64,
    rss_kib: u64,
    /// The kernel lease map's `memlock` (xdhcpd with XDP).
    map_memlock: Option<u64>,
    load_before: String,
}

impl Start {
    fn ready_s(&self) -> f64 {
        self.phases.last().copied().unwrap_or(0.0)
    }
}

/// A repeat: the server with an empty file, then with the full one.
#[derive(Debug, Clone)]
struct Rep {
    empty: Start,
    full: Start,
}

struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    config: KeaConfig,
    /// The generated file, kept in the lab dir; copied before every start.
    csv: PathBuf,
    empty_csv: PathBuf,
    leases: usize,
    attach_modes: Vec<String>,
}

/// Runs the benchmark: `reps` repeats per server, `leases` in the file.
pub fn measure(leases: usize, reps: u32) -> anyhow::Result<Results> {
    if leases == 0 || leases > MAP_CAPACITY {
        bail!("--leases must be 1..={MAP_CAPACITY} (the kernel lease map's capacity), got {leases}");
    }
    let started = Instant::now();
    let xdhcpd = build::release()?;
    let machine = Machine::probe();
    println!("machine: {} cores, {}, kernel {}, load {}", machine.cores, machine.cpu, machine.kernel, machine.load);
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS)?).context("bringing up the venus lab")?;
    let mut config = venus::kea_config(venus::PRIMARY)?;
    config.without_ha()?;
    config.set("/Dhcp4/valid-lifetime", LIFETIME.into())?;
    config.set("/Dhcp4/subnet4/0/subnet", SUBNET.into())?;
    config.set("/Dhcp4/subnet4/0/pools/0/pool", POOL.into())?;

    let generated = Instant::now();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let clients = loadgen::clients(leases, FIRST);
    let csv = lab.dir().join("startup-leases4.csv");
    let text = loadgen::lease_csv(&clients, 1, LIFETIME, now + u64::from(LIFETIME));
    std::fs::write(&csv, &text).with_context(|| format!("writing {}", csv.display()))?;
    let empty_csv = lab.dir().join("startup-empty-leases4.csv");
    std::fs::write(&empty_csv, loadgen::lease_csv(&[], 1, LIFETIME, 0)).context("writing the empty lease file")?;
    let last = clients.last().map_or(FIRST, |c| c.addr);
    println!(
        "lease file: {} leases, {FIRST} … {last}, {:.1} MB, written in {:.2} s",
        leases,
        text.len() as f64 / 1e6,
        generated.elapsed().as_secs_f64()
    );
    let file_mb = text.len() as f64 / 1e6;
    drop((text, clients));

    let mut bench =
        Bench { lab, xdhcpd, config, csv, empty_csv, leases, attach_modes: Vec::new() };
    let mut runs: Vec<(Server, Vec<Rep>)> = SERVERS.iter().map(|s| (*s, Vec::new())).collect();
    for rep in 1..=reps {
        for (server, done) in &mut runs {
            let empty = bench.start(*server, false).with_context(|| format!("{} empty, rep {rep}", server.label()))?;
            let full = bench.start(*server, true).with_context(|| format!("{} full, rep {rep}", server.label()))?;
            println!(
                "[{rep}/{}] {:<24} ready {:>6.2} s (phases {})  loaded {}{}  Pss {} → {} MiB{}",
                reps,
                server.label(),
                full.ready_s(),
                full.phases.iter().map(|p| format!("{p:.2}")).collect::<Vec<_>>().join(" / "),
                full.loaded,
                full.kernel_entries.map(|k| format!(" (kernel map {k})")).unwrap_or_default(),
                empty.pss_kib / 1024,
                full.pss_kib / 1024,
                full.map_memlock.map(|m| format!("  map memlock {} MiB", m >> 20)).unwrap_or_default()
            );
            done.push(Rep { empty, full });
        }
    }
    let results = Results {
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine,
        load_after: load_average(),
        lease_fs: super::findmnt(bench.lab.dir()),
        kea_version: command_line("kea-dhcp4", &["-v"]),
        commit: commit(),
        attach_modes: bench.attach_modes.clone(),
        leases,
        file_mb,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        reps: runs,
    };
    drop(bench);
    println!("\n{}", results.tables());
    Ok(results)
}

impl Bench {
    /// Starts `server` in lobezno with a fresh copy of the full or empty
    /// lease file, times it until ready, checks the load, reads its memory
    /// and stops it.
    fn start(&mut self, server: Server, full: bool) -> anyhow::Result<Start> {
        let dir = self.lab.host_dir(venus::PRIMARY)?;
        let source = if full { &self.csv } else { &self.empty_csv };
        let name = if server == Server::Kea { KEA_LEASES } else { XDHCPD_LEASES };
        remove_lease_files(&dir, name)?;
        std::fs::copy(source, dir.join(name)).with_context(|| format!("copying {}", source.display()))?;
        let load_before = load_average();
        let (spawned, mut running) = match server {
            Server::Xdp | Server::NoXdp => {
                let mut cfg = self.config.clone();
                cfg.lease_file(&dir.join(name))?;
                let path = dir.join("xdhcpd-bench.json");
                cfg.write(&path)?;
                let mut argv = vec![utf8(&self.xdhcpd)?, "run", "-c", utf8(&path)?];
                if server == Server::NoXdp {
                    argv.push("--no-xdp");
                }
                let spawned = Instant::now();
                (spawned, Running::Xdhcpd(self.lab.spawn(venus::PRIMARY, "xdhcpd", &argv)?))
            }
            Server::Kea => {
                let mut cfg = self.config.clone();
                cfg.set("/Dhcp4/control-socket", control_socket(&dir)?)?;
                let spawned = Instant::now();
                (spawned, Running::Kea(Box::new(Kea::spawn(&self.lab, venus::PRIMARY, &cfg)?)))
            }
        };
        let measured = self.measure_start(server, full, spawned, &mut running, load_before);
        // Stopped whatever the outcome; an error measuring comes first.
        let stopped = match running {
            Running::Xdhcpd(mut p) => p.stop(STOP_TIMEOUT).map(|_| ()),
            Running::Kea(mut k) => k.process().stop(STOP_TIMEOUT).map(|_| ()),
        };
        let start = measured?;
        stopped?;
        Ok(start)
    }

    fn measure_start(
        &mut self,
        server: Server,
        full: bool,
        spawned: Instant,
        running: &mut Running,
        load_before: String,
    ) -> anyhow::Result<Start> {
        let pid = running.pid();
        let process = match running {
            Running::Xdhcpd(p) => p,
            Running::Kea(k) => k.process(),
        };
        let phases = wait_phases(process, server.phases(), spawned)?;
        let log = process.log();
        let want = if full { self.leases as u64 } else { 0 };
        let (loaded, kernel_entries) = match server {
            Server::Kea => {
                let dir = self.lab.host_dir(venus::PRIMARY)?;
                (kea_assigned(&dir.join(CONTROL_SOCKET))?, None)
            }
            Server::Xdp | Server::NoXdp => {
                let store = line_with(&log, "lease store loaded")
                    .and_then(|l| number_after(l.rsplit_once("leases: ")?.1))
                    .context("xdhcpd logged no lease count")?;
                let kernel = match server {
                    Server::Xdp => Some(
                        line_with(&log, "kernel lease map loaded")
                            .and_then(|l| number_after(l.split_once("leases=")?.1))
                            .context("xdhcpd logged no kernel map count")?,
                    ),
                    _ => None,
                };
                if let Some(mode) = line_with(&log, "attach mode") {
                    let mode = mode.split_once("attach mode").map_or(mode, |(_, m)| m).trim_start_matches(':').trim();
                    let entry = format!("{}: {mode}", server.label());
                    if !self.attach_modes.contains(&entry) {
                        self.attach_modes.push(entry);
                    }
                }
                (store, kernel)
            }
        };
        if loaded != want || kernel_entries.is_some_and(|k| k != want) {
            bail!(
                "{} loaded {loaded} leases (kernel map {kernel_entries:?}), expected {want}; log:\n{log}",
                server.label()
            );
        }
        std::thread::sleep(SETTLE);
        let (pss_kib, rss_kib) = smaps_rollup(pid)?;
        let map_memlock = match server {
            Server::Xdp => Some(lease_map_memlock(pid)?),
            _ => None,
        };
        Ok(Start { phases, loaded, kernel_entries, pss_kib, rss_kib, map_memlock, load_before })
    }
}

/// Waits for each of `needles` in turn in the log, returning the seconds
/// from `spawned` at which each was first seen.
fn wait_phases(process: &mut Process, needles: &[&str], spawned: Instant) -> anyhow::Result<Vec<f64>> {
    let mut seen = Vec::with_capacity(needles.len());
    while seen.len() < needles.len() {
        let log = process.log();
        let at = spawned.elapsed().as_secs_f64();
        while needles.get(seen.len()).is_some_and(|n| log.contains(*n)) {
            seen.push(at);
        }
        if seen.len() == needles.len() {
            break;
        }
        if let Some(status) = process.try_status()? {
            bail!("{} exited ({status}) while starting; log:\n{log}", process.name());
        }
        if spawned.elapsed() > READY_TIMEOUT {
            bail!("{} not ready after {READY_TIMEOUT:?}; log:\n{log}", process.name());
        }
        std::thread::sleep(POLL);
    }
    Ok(seen)
}

fn line_with<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    log.lines().find(|l| l.contains(needle))
}

/// The decimal number at the start of `s`.
fn number_after(s: &str) -> Option<u64> {
    let digits: String = s.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Kea's control socket, in lobezno's dir.
const CONTROL_SOCKET: &str = "kea4-ctrl.sock";

/// Kea's `control-socket` entry (a JSON object, built without naming
/// serde_json, which xtask does not depend on).
fn control_socket<V: FromIterator<(&'static str, String)>>(dir: &Path) -> anyhow::Result<V> {
    let path = utf8(&dir.join(CONTROL_SOCKET))?.to_owned();
    Ok([("socket-type", "unix".to_owned()), ("socket-name", path)].into_iter().collect())
}

/// `subnet[1].assigned-addresses` from Kea's control socket (Kea recounts
/// it from the loaded leases when it starts).
fn kea_assigned(socket: &Path) -> anyhow::Result<u64> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to Kea's control socket {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(br#"{ "command": "statistic-get", "arguments": { "name": "subnet[1].assigned-addresses" } }"#)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).context("reading Kea's answer")?;
    // {"arguments": {"subnet[1].assigned-addresses": [[1000000, "…"]]}, "result": 0}
    answer
        .split_once("assigned-addresses\"")
        .and_then(|(_, rest)| number_after(rest.trim_start_matches([':', ' ', '['])))
        .with_context(|| format!("no assigned-addresses in Kea's answer: {answer}"))
}

/// (Pss, Rss) in KiB.
fn smaps_rollup(pid: u32) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .with_context(|| format!("reading /proc/{pid}/smaps_rollup"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').and_then(number_after))
            .with_context(|| format!("no {name} in smaps_rollup"))
    };
    Ok((field("Pss")?, field("Rss")?))
}

/// The `memlock` of the process's `XDHCP_LEASES` map (from fdinfo; the
/// name from `bpftool map show id`).
fn lease_map_memlock(pid: u32) -> anyhow::Result<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        let Ok(text) = std::fs::read_to_string(entry?.path()) else { continue };
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name).and_then(number_after));
        let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) else { continue };
        if field("max_entries:") != Some(MAP_CAPACITY as u64) {
            continue;
        }
        let shown = command_line("bpftool", &["map", "show", "id", &id.to_string()]);
        if shown.split_whitespace().skip_while(|w| *w != "name").nth(1) == Some("XDHCP_LEASES") {
            return Ok(memlock);
        }
    }
    bail!("xdhcpd (pid {pid}) holds no XDHCP_LEASES map")
}

/// Everything measured, ready to write out.
pub struct Results {
    date: String,
    machine: Machine,
    load_after: String,
    lease_fs: String,
    kea_version: String,
    commit: String,
    attach_modes: Vec<String>,
    leases: usize,
    file_mb: f64,
    minutes: f64,
    reps: Vec<(Server, Vec<Rep>)>,
}

impl Results {
    /// The BENCHMARKS.md section and bench/startup.json.
    pub fn section(&self) -> Section {
        Section { key: "startup", markdown: self.markdown(), json: self.json() }
    }

    fn runs(&self, server: Server) -> &[Rep] {
        self.reps.iter().find(|(s, _)| *s == server).map_or(&[], |(_, r)| r)
    }

    fn ready(&self, server: Server) -> Vec<f64> {
        self.runs(server).iter().map(|r| r.full.ready_s()).collect()
    }

    /// Per repeat: (full − empty) Pss per lease, in bytes.
    fn bytes_per_lease(&self, server: Server) -> Vec<f64> {
        self.runs(server)
            .iter()
            .map(|r| (r.full.pss_kib as f64 - r.empty.pss_kib as f64) * 1024.0 / self.leases as f64)
            .collect()
    }

    fn map_bytes_per_lease(&self, server: Server) -> Vec<f64> {
        let n = self.leases as f64;
        self.runs(server)
            .iter()
            .filter_map(|r| Some((r.full.map_memlock? as f64 - r.empty.map_memlock? as f64) / n))
            .collect()
    }

    fn tables(&self) -> String {
        let kea = spread(&self.ready(Server::Kea)).1;
        let kea_mem = spread(&self.bytes_per_lease(Server::Kea)).1;
        let ratio = |x: f64, of: f64| if of > 0.0 { format!("{:.2}×", x / of) } else { "–".into() };
        let mut t = String::new();
        t.push_str("| server | min | median | max | ÷ Kea (medians) | phases (median s after spawn) |\n");
        t.push_str("|---|---:|---:|---:|---:|---|\n");
        for (server, runs) in &self.reps {
            let (min, median, max) = spread(&self.ready(*server));
            let phases: Vec<String> = server
                .phases()
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let at: Vec<f64> = runs.iter().filter_map(|r| r.full.phases.get(i).copied()).collect();
                    format!("`{name}` {:.2}", spread(&at).1)
                })
                .collect();
            let _ = writeln!(
                t,
                "| {} | {min:.2} s | **{median:.2} s** | {max:.2} s | {} | {} |",
                server.label(),
                ratio(median, kea),
                phases.join(", ")
            );
        }
        t.push_str("\n| memory per lease | min | median | max | ÷ Kea (medians) | Pss empty → full (median) |\n");
        t.push_str("|---|---:|---:|---:|---:|---:|\n");
        for (server, runs) in &self.reps {
            let (min, median, max) = spread(&self.bytes_per_lease(*server));
            let empty: Vec<f64> = runs.iter().map(|r| r.empty.pss_kib as f64 / 1024.0).collect();
            let full: Vec<f64> = runs.iter().map(|r| r.full.pss_kib as f64 / 1024.0).collect();
            let _ = writeln!(
                t,
                "| {}, process (Pss) | {min:.0} B | **{median:.0} B** | {max:.0} B | {} | {:.0} → {:.0} MiB |",
                server.label(),
                ratio(median, kea_mem),
                spread(&empty).1,
                spread(&full).1
            );
            let map = self.map_bytes_per_lease(*server);
            if !map.is_empty() {
                let (min, median, max) = spread(&map);
                let total: Vec<f64> = runs.iter().filter_map(|r| r.full.map_memlock).map(|m| m as f64 / 1048576.0).collect();
                let _ = writeln!(
                    t,
                    "| {}, kernel lease map (memlock) | {min:.0} B | **{median:.0} B** | {max:.0} B | – | {:.0} MiB full |",
                    server.label(),
                    spread(&total).1
                );
            }
        }
        t
    }

    fn markdown(&self) -> String {
        let xdp = spread(&self.ready(Server::Xdp)).1;
        let kea = spread(&self.ready(Server::Kea)).1;
        let mut m = String::new();
        let _ = writeln!(m, "### Start-up with {} leases, and memory per lease, {}\n", self.leases, self.date);
        m.push_str(&self.tables());
        let verdict = if kea > 0.0 && xdp / kea <= TARGET_VS_KEA { "met" } else { "**not met**" };
        let _ = writeln!(
            m,
            "\nGoal (issue #8): start-up no slower than Kea — xdhcpd with XDP {:.2}× Kea's time: {verdict}.\n",
            if kea > 0.0 { xdp / kea } else { 0.0 }
        );
        let _ = writeln!(
            m,
            "Start-up: spawn (`ip netns exec` in lobezno) to the line each server logs once it serves — xdhcpd \
             `serving` (store loaded, kernel map synced, sockets handed to the serving tasks), Kea \
             `DHCP4_STARTED` (configuration with the lease file committed, sockets open) — both found by \
             reading the log every 2 ms. Every start checked complete: xdhcpd's logged store size and kernel \
             map entries, Kea's `subnet[1].assigned-addresses` over its control socket, all {}. Memory per \
             lease: `Pss` of the server process 1 s after it is ready, with the {0}-lease file minus with a \
             header-only file, ÷ {0}; the kernel lease map's `memlock` (fdinfo; the map is not preallocated) \
             apart. {} repeats, each server started with the empty then the full file, servers interleaved; \
             the same Kea config and a fresh copy of the same {:.0} MB Kea 2.2 lease file for every start \
             (page-cached). No DHCP traffic.\n",
            self.leases,
            self.runs(Server::Kea).len(),
            self.file_mb
        );
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- Lease files: {} (lab dir)", self.lease_fs);
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(
            m,
            "- Kea {}, `lab/venus/lobezno.json` without HA, subnet {SUBNET}, pool {POOL}",
            self.kea_version
        );
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every start in `bench/startup.json`", self.minutes);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"benchmark\": \"startup\",");
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(j, "  \"machine\": {},", self.machine.json(&self.load_after, &self.lease_fs));
        let _ = writeln!(j, "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}}},", js(&self.commit), js(&self.kea_version));
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"xdhcpd_attach_modes\": [{}],", modes.join(", "));
        let _ = writeln!(
            j,
            "  \"method\": {{\"leases\": {}, \"lease_file_mb\": {:.1}, \"subnet\": {}, \"pool\": {}, \"valid_lifetime\": {LIFETIME}, \"ready\": {}, \"memory\": {}}},",
            self.leases,
            self.file_mb,
            js(SUBNET),
            js(POOL),
            js("spawn to xdhcpd `serving` / Kea `DHCP4_STARTED` in the log, polled every 2 ms"),
            js("(Pss with the full file - Pss with a header-only file) / leases, 1 s after ready")
        );
        j.push_str("  \"servers\": [\n");
        for (i, (server, runs)) in self.reps.iter().enumerate() {
            let (min, median, max) = spread(&self.ready(*server));
            let (bmin, bmed, bmax) = spread(&self.bytes_per_lease(*server));
            let map = self.map_bytes_per_lease(*server);
            let map = if map.is_empty() {
                "null".to_owned()
            } else {
                let (a, b, c) = spread(&map);
                format!("{{\"min\": {a:.1}, \"median\": {b:.1}, \"max\": {c:.1}}}")
            };
            let phases: Vec<String> = server.phases().iter().map(|p| js(p)).collect();
            let _ = writeln!(
                j,
                "    {{\"key\": {}, \"label\": {}, \"phases\": [{}], \"ready_s\": {{\"min\": {min:.3}, \"median\": {median:.3}, \"max\": {max:.3}}}, \"bytes_per_lease\": {{\"min\": {bmin:.1}, \"median\": {bmed:.1}, \"max\": {bmax:.1}}}, \"kernel_map_bytes_per_lease\": {map}, \"reps\": [",
                js(server.key()),
                js(server.label()),
                phases.join(", ")
            );
            for (k, rep) in runs.iter().enumerate() {
                let _ = write!(
                    j,
                    "      {{\"empty\": {}, \"full\": {}}}",
                    start_json(&rep.empty),
                    start_json(&rep.full)
                );
                j.push_str(if k + 1 < runs.len() { ",\n" } else { "\n" });
            }
            j.push_str(if i + 1 < self.reps.len() { "    ]},\n" } else { "    ]}\n" });
        }
        j.push_str("  ]\n}\n");
        j
    }
}

fn start_json(s: &Start) -> String {
    let phases: Vec<String> = s.phases.iter().map(|p| format!("{p:.3}")).collect();
    let opt = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
    format!(
        "{{\"phases_s\": [{}], \"loaded\": {}, \"kernel_entries\": {}, \"pss_kib\": {}, \"rss_kib\": {}, \"map_memlock\": {}, \"load_before\": {}}}",
        phases.join(", "),
        s.loaded,
        opt(s.kernel_entries),
        s.pss_kib,
        s.rss_kib,
        opt(s.map_memlock),
        js(&s.load_before)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_log_lines_and_kea_answers() {
        let line = "INFO xdhcpd::daemon: lease store loaded report=LoadReport { files: [], loaded: 7, leases: 1000000 }";
        assert_eq!(number_after(line.rsplit_once("leases: ").unwrap().1), Some(1_000_000));
        assert_eq!(number_after(" 12 kB"), Some(12));
        assert_eq!(number_after("x"), None);
    }

    #[test]
    fn the_pool_holds_every_lease_the_map_can() {
        let clients = loadgen::clients(MAP_CAPACITY, FIRST);
        let (lo, hi) = POOL.split_once('-').unwrap();
        let (lo, hi): (Ipv4Addr, Ipv4Addr) = (lo.parse().unwrap(), hi.parse().unwrap());
        assert!(clients.iter().all(|c| c.addr >= lo && c.addr <= hi));
        let net: Ipv4Addr = SUBNET.split_once('/').unwrap().0.parse().unwrap();
        let prefix: u32 = SUBNET.split_once('/').unwrap().1.parse().unwrap();
        let mask = u32::MAX << (32 - prefix);
        assert_eq!(u32::from(hi) & mask, u32::from(net));
        assert_eq!(u32::from(venus::PRIMARY_LAN) & mask, u32::from(net), "the server's own address is in it");
    }
}
