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

mod results;
mod start;
#[cfg(test)]
mod tests;

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lab::{KeaConfig, Lab, loadgen, venus};

use super::{Machine, command_line, commit, load_average};
use crate::build;

pub use results::Results;

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
