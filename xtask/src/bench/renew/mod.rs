//! `cargo xtask bench renew`: renewals per second answered — valid
//! DHCPACKs counted by `lab::loadgen` — by xdhcpd with its XDP fast path,
//! by xdhcpd `--no-xdp`, and by Kea 2.2, renewing the same leases in the
//! same lab run; and, as the ceiling of the path, a bare XDP_TX echo on the
//! same veth (`lab::xdp_echo`), measured the same way.
//!
//! Method:
//! - One Kea 2.2 memfile lease CSV of N clients (addresses from
//!   192.168.64.1 in the venus subnet widened to 192.168.0.0/16, one-day
//!   lifetimes) is copied fresh before every run into the lease file of
//!   the server under test; every server gets the same Kea-format config
//!   (venus `lobezno.json`, HA hook removed, subnet and pool widened,
//!   one-day `valid-lifetime`).
//! - The load generator in mutante1 sends each client's RENEWING REQUEST
//!   (unicast, ciaddr set) from the client's MAC to lobezno; closed loop
//!   with a window of outstanding requests, bounded by `--seconds` and a
//!   packet count. lobezno has a connected route for the /16 and a
//!   permanent neighbour entry per client, so no server resolves 10,000
//!   clients by ARP (Kea and the XDP path reply to the request's MAC
//!   anyway; xdhcpd `--no-xdp` replies through its UDP socket).
//! - Every run starts its server fresh, then a warm-up (one pass over the
//!   clients, at most 1 s, not counted), then the measured run. Targets are
//!   interleaved per repeat so background load hits all alike; a target's
//!   result is min/median/max over repeats.
//!
//! Traffic stays inside the lab's namespaces; the lab has no default route.

mod results;
mod run;
#[cfg(test)]
mod tests;

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};
use lab::loadgen::{self, Client, Stats};
use lab::xdp_echo::EchoProgram;
use lab::{Ipv4Cidr, KeaConfig, Lab, venus};

use super::{Machine, command_line, commit, load_average};
use crate::{build, workspace_root};

pub use results::Results;

const SUBNET: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16);
const POOL: &str = "192.168.64.0-192.168.255.254";
const FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 1);
/// Lease lifetime, in the CSV and the config: nothing expires in a run.
const LIFETIME: u32 = 86_400;
/// The load generator's host.
const LOADGEN_HOST: usize = 1;
/// Set in the re-executed, optimised xtask.
const OPTIMISED_ENV: &str = "XTASK_BENCH_OPTIMISED";
/// Targets of issue #4.
const TARGET_VS_KEA: f64 = 50.0;
const TARGET_VS_ECHO: f64 = 0.70;

/// `cargo xtask bench renew` options.
#[derive(clap::Args, Clone, Debug)]
pub struct Opts {
    /// Clients with a lease (one Kea CSV for every server).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Measured runs per target.
    #[arg(long, default_value_t = 3)]
    repeats: u32,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Outstanding requests allowed (closed loop).
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Most requests per run, on top of the time bound.
    #[arg(long, default_value_t = 20_000_000)]
    max_packets: u64,
}

/// What answers the renewals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The bare XDP_TX echo.
    Echo,
    /// xdhcpd with its XDP program attached.
    Xdp,
    /// xdhcpd --no-xdp.
    NoXdp,
    /// kea-dhcp4.
    Kea,
}

const TARGETS: [Target; 4] = [Target::Echo, Target::Xdp, Target::NoXdp, Target::Kea];

impl Target {
    fn key(self) -> &'static str {
        match self {
            Target::Echo => "xdp-echo",
            Target::Xdp => "xdhcpd-xdp",
            Target::NoXdp => "xdhcpd-no-xdp",
            Target::Kea => "kea",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Target::Echo => "bare XDP_TX echo (ceiling)",
            Target::Xdp => "xdhcpd (XDP attached)",
            Target::NoXdp => "xdhcpd --no-xdp",
            Target::Kea => "Kea 2.2 (kea-dhcp4)",
        }
    }

    /// Answers per second in `s`: echoes for the echo, valid ACKs otherwise.
    fn rate(self, s: &Stats) -> f64 {
        if self == Target::Echo { s.echoes_per_s() } else { s.acks_per_s() }
    }

    fn answers(self, s: &Stats) -> u64 {
        if self == Target::Echo { s.echoed } else { s.acked }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    rep: u32,
    stats: Stats,
    /// CPU seconds of the server process (none for the echo).
    server_cpu_s: Option<f64>,
    /// CPU seconds of this process: the load generator, including the
    /// kernel's forwarding work done in its `sendmmsg` calls.
    loadgen_cpu_s: f64,
    /// Share of the machine's CPU time busy during the run (all cores).
    machine_busy: f64,
    /// ACKs the XDP program counted as answered (XDP target only).
    kernel_acks: Option<u64>,
    load_before: String,
}

/// If this is a debug build of xtask, builds the release one and runs the
/// same command with it: the load generator's per-packet loops are ~10×
/// slower unoptimised and would measure themselves. Returns whether it did.
pub fn reexec_optimised() -> anyhow::Result<bool> {
    if !cfg!(debug_assertions) || std::env::var_os(OPTIMISED_ENV).is_some() {
        return Ok(false);
    }
    let root = workspace_root();
    println!("bench renew: building an optimised xtask for the load generator");
    crate::run_cmd(Command::new(env!("CARGO")).current_dir(&root).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "xtask",
    ]))
    .context("building the release xtask")?;
    let status = Command::new(crate::target_dir().join("release/xtask"))
        .args(std::env::args_os().skip(1))
        .env(OPTIMISED_ENV, "1")
        .status()
        .context("running the release xtask")?;
    if !status.success() {
        bail!("release xtask bench renew failed: {status}");
    }
    Ok(true)
}

/// Everything the runs share.
struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    config: KeaConfig,
    clients: Vec<Client>,
    csv: String,
    echo: EchoProgram,
    server: loadgen::Server,
    opts: Opts,
    attach_modes: Vec<String>,
    clock_ticks: f64,
}

/// Runs the benchmark.
pub fn measure(opts: &Opts) -> anyhow::Result<Results> {
    if opts.clients == 0 || opts.clients > 60_000 {
        bail!("--clients must be 1..=60000 (the pool has ~49,000 addresses past 192.168.64.1), got {}", opts.clients);
    }
    let started = Instant::now();
    let xdhcpd = build::release()?;
    let machine = Machine::probe();
    println!("machine: {} cores, {}, kernel {}, load {}", machine.cores, machine.cpu, machine.kernel, machine.load);
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS)?).context("bringing up the venus lab")?;
    let clients = loadgen::clients(opts.clients, FIRST);
    loadgen::make_reachable(&lab, venus::PRIMARY, "eth0", SUBNET, &clients)?;
    loadgen::prepare_client(&lab, &venus::client(LOADGEN_HOST), "eth0")?;
    let server = loadgen::server_of(&lab, venus::PRIMARY, venus::LAN)?;
    let mut config = venus::kea_config(venus::PRIMARY)?;
    config.without_ha()?;
    config.set("/Dhcp4/valid-lifetime", LIFETIME.into())?;
    config.set("/Dhcp4/subnet4/0/subnet", SUBNET.to_string().into())?;
    config.set("/Dhcp4/subnet4/0/pools/0/pool", POOL.into())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let csv = loadgen::lease_csv(&clients, 1, LIFETIME, now + u64::from(LIFETIME));
    std::fs::write(lab.dir().join("renew-leases4.csv"), &csv).context("writing the lease CSV")?;
    let clock_ticks = command_line("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0);
    let echo = EchoProgram::load()?;
    let mut bench = Bench {
        lab,
        xdhcpd,
        config,
        clients,
        csv,
        echo,
        server,
        opts: opts.clone(),
        attach_modes: Vec::new(),
        clock_ticks,
    };

    let mut runs: Vec<(Target, Vec<Run>)> = TARGETS.iter().map(|t| (*t, Vec::new())).collect();
    for rep in 1..=opts.repeats.max(1) {
        for (target, done) in &mut runs {
            print!("[{rep}/{}] {:<28}", opts.repeats, target.label());
            let run = bench.run(*target, rep).with_context(|| format!("{} run {rep}", target.label()))?;
            let s = &run.stats;
            println!(
                " {:>9.0}/s  sent {} acked {} naks {} echoed {} invalid {} unanswered {} rx-dropped {} stalls {}{}",
                target.rate(s),
                s.sent,
                s.acked,
                s.naks,
                s.echoed,
                s.invalid,
                s.unanswered(),
                s.rx_dropped,
                s.stalls,
                run.kernel_acks.map(|k| format!(" kernel-acks {k}")).unwrap_or_default()
            );
            done.push(run);
        }
    }
    let results = Results {
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine,
        load_after: load_average(),
        kea_version: command_line("kea-dhcp4", &["-v"]),
        commit: commit(),
        attach_modes: bench.attach_modes.clone(),
        opts: opts.clone(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
        runs,
    };
    drop(bench);
    println!("\n{}", results.table());
    Ok(results)
}
