//! `cargo xtask bench alloc`: allocations per second — completed DORA
//! exchanges (REQUEST-ACK received) per second — of xdhcpd and of Kea 2.2
//! running the same Kea `Dhcp4` config, driven by real `perfdhcp` in the
//! venus lab. Writes `bench/alloc.json` and the results section of
//! `BENCHMARKS.md` (text outside its markers is kept).
//!
//! Method, per server:
//! - Addressing as in `dhcp-user/tests/lab_perfdhcp.rs`: perfdhcp is a
//!   relay in mutante1 (192.168.50.250, its giaddr), the server lobezno;
//!   the venus subnet widened to 192.168.0.0/16 with a ~49,000-address pool
//!   and a one-hour lifetime; HA hook removed, everything else as checked in.
//! - A sweep of offered rates (`-r`, 4,000 DORA/s upwards in steps of
//!   1,000), each point `seconds` long (`-n` = rate × seconds, every
//!   exchange a new client, `-p` bound) against a freshly started server
//!   with an empty lease file. perfdhcp's `Rate` is REQUEST-ACKs received
//!   per second of its test period. A sweep stops after two points in a row
//!   below 85 % of the offered rate: past its knee a server only sheds more.
//! - A run's result is its best point; every server is run `reps` times,
//!   servers interleaved so that background load hits all of them alike.
//! - perfdhcp shares the two cores with the server and near the knee drops
//!   replies itself (its socket's `RcvbufErrors` are recorded per point), so
//!   rates up there are lower bounds. The server's CPU time per ACK at
//!   [`REFERENCE_RATE`], which every server sustains, does not depend on it.
//!
//! All load is bounded (`-n` and `-p`, and a timeout per perfdhcp) and
//! stays inside the lab's namespaces.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use lab::perfdhcp::{Exchange, Report, parse_report};
use lab::{Kea, KeaConfig, Lab, venus};

use super::{
    Machine, Running, Section, T, command_line, commit, cpu_seconds, findmnt, js, load_average, remove_lease_files,
    spread, utf8,
};
use crate::build;
/// perfdhcp's address in mutante1: its giaddr.
const RELAY: &str = "192.168.50.250/24";
const RELAY_HOST: usize = 1;
const SUBNET: &str = "192.168.0.0/16";
const POOL: &str = "192.168.64.0-192.168.255.254";
const FIRST_RATE: u32 = 4_000;
const RATE_STEP: u32 = 1_000;
/// Offered rate at which the servers' CPU per ACK is compared: below every
/// knee seen here, so all of them answer (nearly) everything.
const REFERENCE_RATE: u32 = 6_000;
const MAX_RATE: u32 = 40_000;
/// A point below this fraction of the offered rate is past the knee.
const SATURATED: f64 = 0.85;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// xdhcpd, lease file on the lab's disk; `xdp` attaches the program.
    Xdhcpd { xdp: bool, tmpfs: bool },
    /// kea-dhcp4.
    Kea(KeaVariant),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeaVariant {
    /// The config as checked in (HA hook aside).
    AsConfigured,
    /// Per-lease INFO lines (`kea-dhcp4.leases`) off.
    LeaseLogOff,
    /// `enable-multi-threading: false`.
    SingleThreaded,
}

/// The compared servers first, then the diagnostic variants (each changes
/// one thing, to show where the time goes; not part of the comparison).
const SERVERS: [Server; 6] = [
    Server::Xdhcpd { xdp: false, tmpfs: false },
    Server::Xdhcpd { xdp: true, tmpfs: false },
    KEA,
    Server::Xdhcpd { xdp: false, tmpfs: true },
    Server::Kea(KeaVariant::LeaseLogOff),
    Server::Kea(KeaVariant::SingleThreaded),
];
/// The reference the ratios divide by.
const KEA: Server = Server::Kea(KeaVariant::AsConfigured);

impl Server {
    fn key(self) -> &'static str {
        match self {
            Server::Xdhcpd { xdp: false, tmpfs: false } => "xdhcpd-no-xdp",
            Server::Xdhcpd { xdp: true, tmpfs: false } => "xdhcpd-xdp",
            Server::Xdhcpd { xdp: false, tmpfs: true } => "xdhcpd-no-xdp-tmpfs",
            Server::Xdhcpd { xdp: true, tmpfs: true } => "xdhcpd-xdp-tmpfs",
            Server::Kea(KeaVariant::AsConfigured) => "kea",
            Server::Kea(KeaVariant::LeaseLogOff) => "kea-lease-log-off",
            Server::Kea(KeaVariant::SingleThreaded) => "kea-single-threaded",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Server::Xdhcpd { xdp: false, tmpfs: false } => "xdhcpd --no-xdp",
            Server::Xdhcpd { xdp: true, tmpfs: false } => "xdhcpd (XDP attached)",
            Server::Xdhcpd { xdp: false, tmpfs: true } => "xdhcpd --no-xdp, lease file on tmpfs",
            Server::Xdhcpd { xdp: true, tmpfs: true } => "xdhcpd (XDP), lease file on tmpfs",
            Server::Kea(KeaVariant::AsConfigured) => "Kea 2.2 (kea-dhcp4)",
            Server::Kea(KeaVariant::LeaseLogOff) => "Kea 2.2, per-lease INFO log lines off",
            Server::Kea(KeaVariant::SingleThreaded) => "Kea 2.2, multi-threading off",
        }
    }

    fn diagnostic(self) -> bool {
        self != KEA && matches!(self, Server::Xdhcpd { tmpfs: true, .. } | Server::Kea(_))
    }
}

/// One offered rate against one fresh server.
#[derive(Debug, Clone, Copy)]
struct Point {
    offered: u32,
    report: Report,
    /// Datagrams the server's / perfdhcp's UDP sockets dropped for lack of
    /// buffer (`RcvbufErrors` in the host's /proc/net/snmp).
    server_rcvbuf_errors: u64,
    client_rcvbuf_errors: u64,
    /// CPU time (user + system, all threads) the server used meanwhile.
    server_cpu_s: f64,
}

/// One sweep: the result of a run is its best point.
#[derive(Debug)]
struct Sweep {
    rep: u32,
    points: Vec<Point>,
    best: Point,
    load_before: String,
}

/// Everything a run needs.
struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    config: KeaConfig,
    tmpfs: TmpDir,
    seconds: u32,
    attach_modes: Vec<String>,
    clock_ticks: f64,
}

/// A directory removed on drop (xtask has no tempfile dependency).
struct TmpDir(PathBuf);

/// Tmpfs lease dirs are `<prefix><pid>`: the lab's signal handler ends the
/// process without unwinding, so a killed run cannot remove its own.
const TMP_PREFIX: &str = "xdhcp-bench-";

/// Removes tmpfs lease dirs of runs whose process is gone.
fn sweep_stale_tmp_dirs(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the whole benchmark: `reps` sweeps per server, `seconds` of load
/// per point.
pub fn measure(reps: u32, seconds: u32) -> anyhow::Result<Results> {
    let started = Instant::now();
    let xdhcpd = build::release()?;
    let machine = Machine::probe();
    println!("machine: {} cores, {}, kernel {}, load {}", machine.cores, machine.cpu, machine.kernel, machine.load);

    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS)?).context("bringing up the venus lab")?;
    lab.run(&venus::client(RELAY_HOST), &["ip", "addr", "add", RELAY, "dev", "eth0"])?;
    let shm = Path::new("/dev/shm");
    let tmpfs_parent = if shm.is_dir() { shm } else { lab.dir() };
    sweep_stale_tmp_dirs(tmpfs_parent);
    let tmpfs = TmpDir(tmpfs_parent.join(format!("{TMP_PREFIX}{}", std::process::id())));
    std::fs::create_dir_all(&tmpfs.0).with_context(|| format!("creating {}", tmpfs.0.display()))?;
    let mut config = venus::kea_config(venus::PRIMARY)?;
    config.without_ha()?;
    config.set("/Dhcp4/valid-lifetime", 3600.into())?;
    config.set("/Dhcp4/subnet4/0/subnet", SUBNET.into())?;
    config.set("/Dhcp4/subnet4/0/pools/0/pool", POOL.into())?;
    let lease_fs = findmnt(&lab.host_dir(venus::PRIMARY)?);
    let clock_ticks = command_line("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0);
    let mut bench = Bench { lab, xdhcpd, config, tmpfs, seconds, attach_modes: Vec::new(), clock_ticks };

    let mut sweeps: Vec<(Server, Vec<Sweep>)> = SERVERS.iter().map(|s| (*s, Vec::new())).collect();
    for rep in 1..=reps {
        for (server, runs) in &mut sweeps {
            println!("\n[{rep}/{reps}] {}", server.label());
            runs.push(bench.sweep(*server, rep)?);
        }
    }
    let kea_mt = bench.config.value().pointer("/Dhcp4/multi-threading").map(|v| v.to_string()).unwrap_or_default();
    let results = Results {
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine,
        load_after: load_average(),
        lease_fs,
        kea_version: command_line("kea-dhcp4", &["-v"]),
        perfdhcp_version: command_line("perfdhcp", &["-v"]).trim_start_matches("VERSION: ").to_owned(),
        commit: commit(),
        kea_mt,
        attach_modes: bench.attach_modes.clone(),
        reps,
        seconds,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        sweeps,
    };
    drop(bench);
    println!("\n{}", results.table());
    Ok(results)
}

impl Bench {
    fn sweep(&mut self, server: Server, rep: u32) -> anyhow::Result<Sweep> {
        let load_before = load_average();
        let mut points: Vec<Point> = Vec::new();
        let mut below = 0;
        let mut offered = FIRST_RATE;
        while offered <= MAX_RATE {
            let p = self.point(server, offered).with_context(|| format!("{} at {offered}/s", server.label()))?;
            let (d, r) = (p.report.discover_offer, p.report.request_ack);
            println!(
                "  -r {offered:>6}: {:>8.0} ACK/s  DO {}/{} RA {}/{}  ACK delay avg {:.1} max {:.0} ms  rcvbuf drops server {} perfdhcp {}",
                p.report.rate,
                d.received,
                d.sent,
                r.received,
                r.sent,
                r.avg_ms,
                r.max_ms,
                p.server_rcvbuf_errors,
                p.client_rcvbuf_errors
            );
            below = if p.report.rate < SATURATED * f64::from(offered) { below + 1 } else { 0 };
            points.push(p);
            if below >= 2 {
                break;
            }
            offered += RATE_STEP;
        }
        let best = *points.iter().max_by(|a, b| a.report.rate.total_cmp(&b.report.rate)).context("no points")?;
        Ok(Sweep { rep, points, best, load_before })
    }

    fn point(&mut self, server: Server, offered: u32) -> anyhow::Result<Point> {
        let relay = venus::client(RELAY_HOST);
        let mut running = self.start(server)?;
        let pid = running.pid();
        let cpu_before = cpu_seconds(pid, self.clock_ticks)?;
        let (server_before, client_before) =
            (rcvbuf_errors(&self.lab, venus::PRIMARY)?, rcvbuf_errors(&self.lab, &relay)?);
        let n = (offered * self.seconds).to_string();
        let period = (self.seconds * 3).to_string();
        let (rate, target) = (offered.to_string(), venus::PRIMARY_LAN.to_string());
        // -d 2 -d 2: an OFFER or ACK later than 2 s counts as dropped (the
        // second -d is REQUEST-ACK's). No -W: the test period ends with the
        // last DISCOVER, so the rate is not diluted by a tail wait.
        let argv = ["-4", "-l", "eth0", "-r", &rate, "-n", &n, "-R", &n, "-p", &period, "-d", "2", "-d", "2", &target];
        let out = self
            .lab
            .cmd(&relay, "perfdhcp")
            .args(argv)
            .timeout(Duration::from_secs(u64::from(self.seconds) * 3 + 30))
            .output();
        let server_after = rcvbuf_errors(&self.lab, venus::PRIMARY)?;
        let client_after = rcvbuf_errors(&self.lab, &relay)?;
        let cpu_after = cpu_seconds(pid, self.clock_ticks)?;
        running.stop()?;
        let out = out?;
        let report = parse_report(&out.stdout)
            .with_context(|| format!("perfdhcp {} printed no report:\n{out}", argv.join(" ")))?;
        Ok(Point {
            offered,
            report,
            server_rcvbuf_errors: server_after.saturating_sub(server_before),
            client_rcvbuf_errors: client_after.saturating_sub(client_before),
            server_cpu_s: cpu_after - cpu_before,
        })
    }

    /// Starts `server` in lobezno with an empty lease file.
    fn start(&mut self, server: Server) -> anyhow::Result<Running> {
        let dir = self.lab.host_dir(venus::PRIMARY)?;
        match server {
            Server::Xdhcpd { xdp, tmpfs } => {
                let lease_dir = if tmpfs { self.tmpfs.0.clone() } else { dir.clone() };
                remove_lease_files(&lease_dir, "leases4.csv")?;
                let mut cfg = self.config.clone();
                cfg.lease_file(&lease_dir.join("leases4.csv"))?;
                let path = dir.join("xdhcpd-bench.json");
                cfg.write(&path)?;
                let mut argv = vec![utf8(&self.xdhcpd)?, "run", "-c", utf8(&path)?];
                if !xdp {
                    argv.push("--no-xdp");
                }
                let mut p = self.lab.spawn(venus::PRIMARY, "xdhcpd", &argv)?;
                p.wait_for_log("serving", T)?;
                if let Some(mode) = p.log().lines().find(|l| l.contains("attach mode")) {
                    let mode = mode.split_once("attach mode").map_or(mode, |(_, m)| m).trim_start_matches(':').trim();
                    let entry = format!("{}: {mode}", server.label());
                    if !self.attach_modes.contains(&entry) {
                        self.attach_modes.push(entry);
                    }
                }
                Ok(Running::Xdhcpd(p))
            }
            Server::Kea(variant) => {
                // Kea::start puts the lease file at <host dir>/kea-leases4.csv.
                remove_lease_files(&dir, "kea-leases4.csv")?;
                let mut cfg = self.config.clone();
                if variant == KeaVariant::SingleThreaded {
                    cfg.set("/Dhcp4/multi-threading/enable-multi-threading", false.into())?;
                }
                if variant == KeaVariant::LeaseLogOff {
                    // Only the per-lease lines (DHCP4_LEASE_ADVERT, _ALLOC)
                    // go: Kea::start waits for an INFO line of kea-dhcp4.
                    let loggers = cfg.value().pointer("/Dhcp4/loggers").context("config has no loggers")?;
                    let mut leases = loggers.get(0).context("config has no logger")?.clone();
                    leases["name"] = "kea-dhcp4.leases".into();
                    leases["severity"] = "WARN".into();
                    let mut loggers = loggers.clone();
                    loggers.as_array_mut().context("loggers is not a list")?.push(leases);
                    cfg.set("/Dhcp4/loggers", loggers)?;
                }
                Ok(Running::Kea(Box::new(Kea::start(&self.lab, venus::PRIMARY, &cfg)?)))
            }
        }
    }
}

/// `RcvbufErrors` of the UDP MIB in `host`'s namespace.
fn rcvbuf_errors(lab: &Lab, host: &str) -> anyhow::Result<u64> {
    let out = lab.run(host, &["cat", "/proc/net/snmp"])?;
    let mut udp = out.stdout.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().context("no Udp: header")?, udp.next().context("no Udp: values")?);
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors").context("no RcvbufErrors")?;
    values.split_whitespace().nth(column).context("short Udp: line")?.parse().context("RcvbufErrors")
}

/// Everything measured, ready to write out.
pub struct Results {
    date: String,
    machine: Machine,
    load_after: String,
    lease_fs: String,
    kea_version: String,
    perfdhcp_version: String,
    commit: String,
    kea_mt: String,
    attach_modes: Vec<String>,
    reps: u32,
    seconds: u32,
    minutes: f64,
    sweeps: Vec<(Server, Vec<Sweep>)>,
}

fn drop_pct(x: &Exchange) -> f64 {
    if x.sent == 0 { 0.0 } else { 100.0 * x.drops as f64 / x.sent as f64 }
}

impl Results {
    /// The BENCHMARKS.md section and bench/alloc.json.
    pub fn section(&self) -> Section {
        Section { key: "alloc", markdown: self.markdown(), json: self.json() }
    }

    fn bests(&self, server: Server) -> Vec<f64> {
        self.sweeps
            .iter()
            .filter(|(s, _)| *s == server)
            .flat_map(|(_, runs)| runs.iter().map(|r| r.best.report.rate))
            .collect()
    }

    fn median(&self, server: Server) -> f64 {
        spread(&self.bests(server)).1
    }

    /// Median over runs of the server's CPU time per ACK at the reference
    /// rate, in microseconds.
    fn cpu_per_ack_us(&self, server: Server) -> Option<f64> {
        let per_run: Vec<f64> = self
            .sweeps
            .iter()
            .filter(|(s, _)| *s == server)
            .flat_map(|(_, runs)| runs.iter())
            .filter_map(|run| run.points.iter().find(|p| p.offered == REFERENCE_RATE))
            .filter(|p| p.report.request_ack.received > 0)
            .map(|p| p.server_cpu_s / p.report.request_ack.received as f64 * 1e6)
            .collect();
        (!per_run.is_empty()).then(|| spread(&per_run).1)
    }

    fn kea(&self) -> f64 {
        self.median(KEA)
    }

    fn table(&self) -> String {
        let mut t = String::new();
        t.push_str("| server | min | median | max | ÷ Kea (medians) | best at `-r` (median) | REQUEST-ACK drops at best (median) | ACK delay avg / max at best (median) | server CPU per ACK at ");
        let _ = writeln!(t, "{REFERENCE_RATE}/s (median) |");
        t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (server, runs) in &self.sweeps {
            let (min, median, max) = spread(&self.bests(*server));
            let offered: Vec<f64> = runs.iter().map(|r| f64::from(r.best.offered)).collect();
            let drops: Vec<f64> = runs.iter().map(|r| drop_pct(&r.best.report.request_ack)).collect();
            let avg: Vec<f64> = runs.iter().map(|r| r.best.report.request_ack.avg_ms).collect();
            let max_delay: Vec<f64> = runs.iter().map(|r| r.best.report.request_ack.max_ms).collect();
            let ratio = if self.kea() > 0.0 { median / self.kea() } else { 0.0 };
            let cpu = match self.cpu_per_ack_us(*server) {
                Some(us) => format!("{us:.0} µs"),
                None => "–".into(),
            };
            let name = if server.diagnostic() {
                format!("*{}* (diagnostic)", server.label())
            } else {
                server.label().to_owned()
            };
            let _ = writeln!(
                t,
                "| {name} | {min:.0} | **{median:.0}** | {max:.0} | {ratio:.2}× | {:.0} | {:.1} % | {:.1} / {:.0} ms | {cpu} |",
                spread(&offered).1,
                spread(&drops).1,
                spread(&avg).1,
                spread(&max_delay).1
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "### Allocations per second (completed DORA/s), {}\n", self.date);
        m.push_str(&self.table());
        let _ = writeln!(
            m,
            "\nOne value per run: the best REQUEST-ACK rate perfdhcp measured in that run's sweep of offered \
             rates (`-r` {FIRST_RATE}, +{RATE_STEP}, … until two points in a row fall below {:.0} % of the \
             offered rate); {} runs per server, {} s of load per point, servers interleaved, fresh server and \
             lease file for every point. Server CPU per ACK: user + system time of the server process (all \
             threads, kernel work on its behalf included) during the {REFERENCE_RATE}/s point, divided by the \
             ACKs perfdhcp received. Diagnostic rows change one thing each and are not part of the comparison.\n",
            SATURATED * 100.0,
            self.reps,
            self.seconds
        );
        let _ = writeln!(
            m,
            "- Machine: {} cores ({}), kernel {}",
            self.machine.cores, self.machine.cpu, self.machine.kernel
        );
        let _ = writeln!(
            m,
            "- Load average (1/5/15 min) before: {}, after: {} — a shared machine; other people's builds run meanwhile",
            self.machine.load, self.load_after
        );
        let _ = writeln!(m, "- Lease files: {} (lab dir); tmpfs for the diagnostic row", self.lease_fs);
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(
            m,
            "- Kea {} with `\"multi-threading\": {}` from `lab/venus/lobezno.json`",
            self.kea_version, self.kea_mt
        );
        let _ = writeln!(m, "- perfdhcp {}, in mutante1, relaying (giaddr 192.168.50.250)", self.perfdhcp_version);
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every point in `bench/alloc.json`", self.minutes);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        let _ = writeln!(j, "  \"benchmark\": \"alloc\",");
        let _ = writeln!(j, "  \"date\": {},", js(&self.date));
        let _ = writeln!(
            j,
            "  \"machine\": {{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"load_before\": {}, \"load_after\": {}, \"lease_fs\": {}}},",
            self.machine.cores,
            js(&self.machine.cpu),
            js(&self.machine.kernel),
            js(&self.machine.load),
            js(&self.load_after),
            js(&self.lease_fs)
        );
        let _ = writeln!(
            j,
            "  \"versions\": {{\"xdhcpd\": {}, \"kea\": {}, \"perfdhcp\": {}}},",
            js(&self.commit),
            js(&self.kea_version),
            js(&self.perfdhcp_version)
        );
        let modes: Vec<String> = self.attach_modes.iter().map(|m| js(m)).collect();
        let _ = writeln!(j, "  \"xdhcpd_attach_modes\": [{}],", modes.join(", "));
        let _ =
            writeln!(j, "  \"kea_multi_threading\": {},", if self.kea_mt.is_empty() { "null" } else { &self.kea_mt });
        let _ = writeln!(
            j,
            "  \"method\": {{\"reps\": {}, \"seconds_per_point\": {}, \"first_rate\": {FIRST_RATE}, \"rate_step\": {RATE_STEP}, \"reference_rate\": {REFERENCE_RATE}, \"saturated_below\": {SATURATED}, \"subnet\": {}, \"pool\": {}, \"valid_lifetime\": 3600, \"perfdhcp\": {}}},",
            self.reps,
            self.seconds,
            js(SUBNET),
            js(POOL),
            js("perfdhcp -4 -l eth0 -r RATE -n RATE*SECONDS -R RATE*SECONDS -p SECONDS*3 -d 2 -d 2 192.168.50.2")
        );
        let _ = writeln!(j, "  \"kea_median_acks_per_s\": {:.1},", self.kea());
        j.push_str("  \"servers\": [\n");
        for (i, (server, runs)) in self.sweeps.iter().enumerate() {
            let (min, median, max) = spread(&self.bests(*server));
            let _ = writeln!(
                j,
                "    {{\"key\": {}, \"label\": {}, \"diagnostic\": {}, \"min\": {min:.1}, \"median\": {median:.1}, \"max\": {max:.1}, \"ratio_to_kea_median\": {:.3}, \"cpu_us_per_ack_at_reference_rate\": {}, \"runs\": [",
                js(server.key()),
                js(server.label()),
                server.diagnostic(),
                if self.kea() > 0.0 { median / self.kea() } else { 0.0 },
                self.cpu_per_ack_us(*server).map_or("null".into(), |us| format!("{us:.1}"))
            );
            for (k, run) in runs.iter().enumerate() {
                let points: Vec<String> = run.points.iter().map(point_json).collect();
                let _ = write!(
                    j,
                    "      {{\"rep\": {}, \"load_before\": {}, \"best_acks_per_s\": {:.1}, \"best_offered\": {}, \"points\": [\n        {}\n      ]}}",
                    run.rep,
                    js(&run.load_before),
                    run.best.report.rate,
                    run.best.offered,
                    points.join(",\n        ")
                );
                j.push_str(if k + 1 < runs.len() { ",\n" } else { "\n" });
            }
            j.push_str(if i + 1 < self.sweeps.len() { "    ]},\n" } else { "    ]}\n" });
        }
        j.push_str("  ]\n}\n");
        j
    }
}

fn point_json(p: &Point) -> String {
    let x = |e: &Exchange| {
        format!(
            "{{\"sent\": {}, \"received\": {}, \"drops\": {}, \"orphans\": {}, \"avg_ms\": {:.3}, \"max_ms\": {:.3}}}",
            e.sent, e.received, e.drops, e.orphans, e.avg_ms, e.max_ms
        )
    };
    format!(
        "{{\"offered\": {}, \"acks_per_s\": {:.1}, \"discover_offer\": {}, \"request_ack\": {}, \"server_rcvbuf_errors\": {}, \"perfdhcp_rcvbuf_errors\": {}, \"server_cpu_s\": {:.2}}}",
        p.offered,
        p.report.rate,
        x(&p.report.discover_offer),
        x(&p.report.request_ack),
        p.server_rcvbuf_errors,
        p.client_rcvbuf_errors,
        p.server_cpu_s
    )
}
