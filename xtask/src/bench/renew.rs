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

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lab::loadgen::{self, Client, Options, Stats};
use lab::xdp_echo::EchoProgram;
use lab::{Ipv4Cidr, Kea, KeaConfig, Lab, venus};

use super::{
    Machine, Running, Section, T, command_line, commit, cpu_seconds, js, load_average, remove_lease_files, spread, utf8,
};
use crate::{build, workspace_root};

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

impl Bench {
    fn run(&mut self, target: Target, rep: u32) -> anyhow::Result<Run> {
        let load_before = load_average();
        let (mut running, attached) = match target {
            Target::Echo => {
                let ns = self.lab.netns(venus::PRIMARY)?;
                let attached = self.echo.attach(&ns, "eth0")?;
                let mode = "bare XDP_TX echo: native XDP (xdpdrv) on eth0".to_owned();
                if !self.attach_modes.contains(&mode) {
                    self.attach_modes.push(mode);
                }
                (None, Some(attached))
            }
            _ => (Some(self.start(target)?), None),
        };
        let ns = self.lab.netns(&venus::client(LOADGEN_HOST))?;
        let mut warm = Options::window(
            &ns,
            "eth0",
            self.server,
            self.opts.window,
            self.clients.len() as u64,
            Duration::from_secs(1),
        );
        warm.drain = Duration::from_millis(100);
        loadgen::run(&self.clients, &warm).context("warm-up")?;

        let opts = Options::window(
            &ns,
            "eth0",
            self.server,
            self.opts.window,
            self.opts.max_packets,
            Duration::from_secs(u64::from(self.opts.seconds)),
        );
        let pid = running.as_mut().map(Running::pid);
        let me = std::process::id();
        let server_before = pid.map(|p| cpu_seconds(p, self.clock_ticks)).transpose()?;
        let me_before = cpu_seconds(me, self.clock_ticks)?;
        let busy_before = cpu_times()?;
        let stats = loadgen::run(&self.clients, &opts).context("load generator")?;
        let busy_after = cpu_times()?;
        let me_after = cpu_seconds(me, self.clock_ticks)?;
        let server_cpu_s = match (pid, server_before) {
            (Some(p), Some(before)) => Some(cpu_seconds(p, self.clock_ticks)? - before),
            _ => None,
        };
        drop(attached);
        let mut kernel_acks = None;
        if let Some(r) = running {
            let log = r.stop_with_log()?;
            if target == Target::Xdp {
                kernel_acks = Some(answered_acks(&log).context("xdhcpd's XDP counters")?);
            }
        }
        let (busy, total) = (busy_after.0 - busy_before.0, busy_after.1 - busy_before.1);
        Ok(Run {
            rep,
            stats,
            server_cpu_s,
            loadgen_cpu_s: me_after - me_before,
            machine_busy: if total > 0 { busy as f64 / total as f64 } else { 0.0 },
            kernel_acks,
            load_before,
        })
    }

    /// Starts xdhcpd or Kea in lobezno on a fresh copy of the lease CSV.
    fn start(&mut self, target: Target) -> anyhow::Result<Running> {
        let dir = self.lab.host_dir(venus::PRIMARY)?;
        match target {
            Target::Xdp | Target::NoXdp => {
                remove_lease_files(&dir, "leases4.csv")?;
                let leases = dir.join("leases4.csv");
                std::fs::write(&leases, &self.csv).with_context(|| format!("writing {}", leases.display()))?;
                let mut cfg = self.config.clone();
                cfg.lease_file(&leases)?;
                let path = dir.join("xdhcpd-renew.json");
                cfg.write(&path)?;
                let mut argv = vec![utf8(&self.xdhcpd)?, "run", "-c", utf8(&path)?];
                if target == Target::NoXdp {
                    argv.push("--no-xdp");
                }
                let mut p = self.lab.spawn(venus::PRIMARY, "xdhcpd", &argv)?;
                p.wait_for_log("serving", T).with_context(|| p.log())?;
                let log = p.log();
                let mode = log
                    .lines()
                    .find_map(|l| l.split_once("attach mode"))
                    .map(|(_, m)| m.trim_start_matches(':').trim());
                let entry = format!("{}: {}", target.label(), mode.unwrap_or("(not logged)"));
                if target == Target::Xdp && !log.contains("native XDP") {
                    bail!("xdhcpd did not attach natively: {entry}");
                }
                if !self.attach_modes.contains(&entry) {
                    self.attach_modes.push(entry);
                }
                Ok(Running::Xdhcpd(p))
            }
            Target::Kea => {
                // Kea::start puts the lease file at <host dir>/kea-leases4.csv.
                remove_lease_files(&dir, "kea-leases4.csv")?;
                std::fs::write(dir.join("kea-leases4.csv"), &self.csv).context("writing Kea's lease file")?;
                Ok(Running::Kea(Box::new(Kea::start(&self.lab, venus::PRIMARY, &self.config)?)))
            }
            Target::Echo => bail!("the echo is attached, not started"),
        }
    }
}

impl Running {
    /// Stops it and returns its log (xdhcpd prints its XDP counters on
    /// the way out).
    fn stop_with_log(mut self) -> anyhow::Result<String> {
        let log = match &mut self {
            Running::Xdhcpd(p) => {
                p.stop(T)?;
                p.log()
            }
            Running::Kea(k) => {
                k.process().stop(T)?;
                k.process().log()
            }
        };
        Ok(log)
    }
}

/// `(AnsweredAck, N)` from xdhcpd's shutdown line of XDP counters.
fn answered_acks(log: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("XDP counters"))?;
    let at = line.find("(AnsweredAck, ")? + "(AnsweredAck, ".len();
    line[at..].split(')').next()?.trim().parse().ok()
}

/// (busy, total) jiffies of all CPUs from /proc/stat.
fn cpu_times() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_cpu_times(&stat).context("no cpu line in /proc/stat")
}

/// user nice system idle iowait irq softirq steal …: idle + iowait are
/// idle, the rest busy (guest time is already inside user).
fn parse_cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|f| f.parse().unwrap_or(0)).collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// Everything measured.
pub struct Results {
    date: String,
    machine: Machine,
    load_after: String,
    kea_version: String,
    commit: String,
    attach_modes: Vec<String>,
    opts: Opts,
    minutes: f64,
    runs: Vec<(Target, Vec<Run>)>,
}

/// A target's per-run rates as (min, median, max).
fn rates(target: Target, runs: &[Run]) -> (f64, f64, f64) {
    spread(&runs.iter().map(|r| target.rate(&r.stats)).collect::<Vec<_>>())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Results {
    /// The BENCHMARKS.md section and bench/renew.json.
    pub fn section(&self) -> Section {
        Section { key: "renew", markdown: self.markdown(), json: self.json() }
    }

    fn median(&self, target: Target) -> f64 {
        self.runs.iter().find(|(t, _)| *t == target).map_or(0.0, |(t, r)| rates(*t, r).1)
    }

    /// Median over runs of `f(run)`, skipping runs where it is undefined.
    fn median_of(&self, target: Target, f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> =
            self.runs.iter().filter(|(t, _)| *t == target).flat_map(|(_, r)| r.iter().filter_map(&f)).collect();
        (!v.is_empty()).then(|| spread(&v).1)
    }

    fn table(&self) -> String {
        let mut t = String::from(
            "| target | min /s | median /s | max /s | ÷ XDP (medians) | sent/s (median) | unanswered (median) | server CPU per answer (median) | load generator CPU per answer (median) | machine busy (median) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let xdp = self.median(Target::Xdp);
        for (target, runs) in &self.runs {
            let (min, median, max) = rates(*target, runs);
            let per_answer = |cpu: Option<f64>, r: &Run| {
                let n = target.answers(&r.stats);
                cpu.filter(|_| n > 0).map(|c| c / n as f64 * 1e6)
            };
            let server = self.median_of(*target, |r| per_answer(r.server_cpu_s, r));
            let loadgen = self.median_of(*target, |r| per_answer(Some(r.loadgen_cpu_s), r));
            let sent = self.median_of(*target, |r| Some(r.stats.sent_per_s())).unwrap_or(0.0);
            let lost = self
                .median_of(*target, |r| Some(100.0 * r.stats.unanswered() as f64 / r.stats.sent.max(1) as f64))
                .unwrap_or(0.0);
            let busy = self.median_of(*target, |r| Some(100.0 * r.machine_busy)).unwrap_or(0.0);
            let us = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1} µs"));
            let _ = writeln!(
                t,
                "| {} | {min:.0} | **{median:.0}** | {max:.0} | {:.2} | {sent:.0} | {lost:.2} % | {} | {} | {busy:.0} % |",
                target.label(),
                ratio(median, xdp),
                us(server),
                us(loadgen)
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let (xdp, kea, no_xdp, echo) =
            (self.median(Target::Xdp), self.median(Target::Kea), self.median(Target::NoXdp), self.median(Target::Echo));
        let mut m = String::new();
        let _ = writeln!(m, "### Renewals per second answered, {}\n", self.date);
        m.push_str(&self.table());
        let verdict = |ok: bool| if ok { "met" } else { "**not met**" };
        let _ = writeln!(
            m,
            "\nRatios of medians: **XDP / Kea = {:.1}×** (target ≥ {TARGET_VS_KEA:.0}×: {}), XDP / --no-xdp = {:.1}×, \
             **XDP / bare echo = {:.0} %** (target ≥ {:.0} %: {}).\n",
            ratio(xdp, kea),
            verdict(ratio(xdp, kea) >= TARGET_VS_KEA),
            ratio(xdp, no_xdp),
            100.0 * ratio(xdp, echo),
            TARGET_VS_ECHO * 100.0,
            verdict(ratio(xdp, echo) >= TARGET_VS_ECHO),
        );
        let o = &self.opts;
        let _ = writeln!(
            m,
            "One value per run: valid DHCPACKs (the echo: echoed requests) per second of sending, counted by \
             `lab::loadgen` in mutante1 — {} clients renewing leases from one Kea CSV, closed loop with {} requests \
             outstanding, {} s per run after a warm-up pass, {} runs per target, targets interleaved, every server \
             started fresh on a fresh copy of the CSV. Server CPU: user + system time of the server process; \
             load generator CPU: this process's (its `sendmmsg` calls carry the veth/bridge forwarding in \
             softirq, so much of the path's kernel work is billed here); machine busy: all cores, from /proc/stat.\n",
            o.clients, o.window, o.seconds, o.repeats
        );
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(m, "- Kea {} as configured in `lab/venus/lobezno.json` (HA hook removed)", self.kea_version);
        let kernel: Vec<String> = self
            .runs
            .iter()
            .filter(|(t, _)| *t == Target::Xdp)
            .flat_map(|(_, r)| r.iter())
            .filter_map(|r| r.kernel_acks.map(|k| format!("{k} / {}", r.stats.acked)))
            .collect();
        if !kernel.is_empty() {
            let _ = writeln!(
                m,
                "- XDP runs, ACKs the kernel counted (`AnsweredAck`, its warm-up pass of {} included) / valid ACKs the load generator counted in the measured run: {}",
                self.opts.clients,
                kernel.join("; ")
            );
        }
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every run in `bench/renew.json`", self.minutes);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"benchmark\": \"renew\",");
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(
            j,
            "  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"load_before\": {}, \"load_after\": {}}},",
            self.machine.cores,
            js(&self.machine.cpu),
            js(&self.machine.kernel),
            js(&self.machine.load),
            js(&self.load_after)
        );
        let _ =
            writeln!(j, "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}}},", js(&self.commit), js(&self.kea_version));
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"attach_modes\": [{}],", modes.join(", "));
        let o = &self.opts;
        let _ = writeln!(
            j,
            "  \"method\": {{\"clients\": {}, \"repeats\": {}, \"seconds\": {}, \"window\": {}, \"max_packets\": {}, \"subnet\": {}, \"pool\": {}, \"first_address\": {}, \"valid_lifetime\": {LIFETIME}}},",
            o.clients,
            o.repeats,
            o.seconds,
            o.window,
            o.max_packets,
            js(&SUBNET.to_string()),
            js(POOL),
            js(&FIRST.to_string())
        );
        let (xdp, kea, no_xdp, echo) =
            (self.median(Target::Xdp), self.median(Target::Kea), self.median(Target::NoXdp), self.median(Target::Echo));
        let _ = writeln!(
            j,
            "  \"ratios_of_medians\": {{\"xdp_over_kea\": {:.3}, \"xdp_over_no_xdp\": {:.3}, \"xdp_over_echo\": {:.4}}},",
            ratio(xdp, kea),
            ratio(xdp, no_xdp),
            ratio(xdp, echo)
        );
        j.push_str("  \"targets\": [\n");
        for (i, (target, runs)) in self.runs.iter().enumerate() {
            let (min, median, max) = rates(*target, runs);
            let _ = writeln!(
                j,
                "    {{\"key\": {}, \"label\": {}, \"min_per_s\": {min:.1}, \"median_per_s\": {median:.1}, \"max_per_s\": {max:.1}, \"runs\": [",
                js(target.key()),
                js(target.label())
            );
            let rows: Vec<String> = runs.iter().map(|r| run_json(*target, r)).collect();
            let _ = writeln!(j, "      {}", rows.join(",\n      "));
            j.push_str(if i + 1 < self.runs.len() { "    ]},\n" } else { "    ]}\n" });
        }
        j.push_str("  ]\n}\n");
        j
    }
}

fn run_json(target: Target, r: &Run) -> String {
    let s = &r.stats;
    let opt = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.3}"));
    format!(
        "{{\"rep\": {}, \"per_s\": {:.1}, \"sent\": {}, \"acked\": {}, \"naks\": {}, \"echoed\": {}, \"invalid\": {}, \"duplicates\": {}, \"unanswered\": {}, \"send_errors\": {}, \"rx_dropped\": {}, \"stalls\": {}, \"sending_s\": {:.3}, \"server_cpu_s\": {}, \"loadgen_cpu_s\": {:.3}, \"machine_busy\": {:.3}, \"kernel_answered_acks\": {}, \"load_before\": {}}}",
        r.rep,
        target.rate(s),
        s.sent,
        s.acked,
        s.naks,
        s.echoed,
        s.invalid,
        s.duplicates,
        s.unanswered(),
        s.send_errors,
        s.rx_dropped,
        s.stalls,
        s.sending.as_secs_f64(),
        opt(r.server_cpu_s),
        r.loadgen_cpu_s,
        r.machine_busy,
        r.kernel_acks.map_or("null".to_owned(), |k| k.to_string()),
        js(&r.load_before)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_answered_acks_from_the_shutdown_line() {
        let log =
            "INFO serving\nINFO XDP counters counters=[(NotDhcp, 4), (AnsweredAck, 123456), (PassedNoLease, 0)]\n";
        assert_eq!(answered_acks(log), Some(123_456));
        assert_eq!(answered_acks("INFO serving\n"), None);
    }

    #[test]
    fn busy_is_everything_but_idle_and_iowait() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_cpu_times(stat), Some((160, 1000)));
        assert_eq!(parse_cpu_times("intr 1\n"), None);
    }

    fn run(rep: u32, acked: u64, echoed: u64) -> Run {
        Run {
            rep,
            stats: Stats { sent: acked + echoed, acked, echoed, sending: Duration::from_secs(1), ..Stats::default() },
            server_cpu_s: None,
            loadgen_cpu_s: 0.5,
            machine_busy: 0.9,
            kernel_acks: None,
            load_before: "1 1 1".into(),
        }
    }

    #[test]
    fn echo_is_rated_by_echoes_and_servers_by_acks() {
        assert_eq!(rates(Target::Echo, &[run(1, 5, 100), run(2, 0, 300), run(3, 0, 200)]), (100.0, 200.0, 300.0));
        assert_eq!(rates(Target::Kea, &[run(1, 10, 100), run(2, 30, 0)]), (10.0, 20.0, 30.0));
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
