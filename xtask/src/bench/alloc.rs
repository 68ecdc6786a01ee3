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
//!   per second of its test period. A sweep stops after [`PATIENCE`] points
//!   in a row below 85 % of the offered rate: past its knee a server only
//!   sheds more (Kea dips and recovers once, hence more than two).
//! - A run's result is its best point; every server is run `reps` times,
//!   servers interleaved so that background load hits all of them alike.
//! - Cores: perfdhcp needs more CPU per exchange than any server here, so
//!   on a small machine sharing the cores measures perfdhcp as much as the
//!   server. The compared rows therefore give each its own: perfdhcp
//!   (`-g single`) on CPU 0, the server and all its threads on the other
//!   CPUs ([`Lab::pin`]). Diagnostic rows repeat xdhcpd and Kea on shared
//!   cores (perfdhcp's default threads, nothing pinned) and Kea
//!   single-threaded. Ratios divide by Kea as configured with the same
//!   cores. The server's CPU time per ACK at [`REFERENCE_RATE`], which every
//!   server sustains, and its CPU use at the best point (how close to its
//!   own core's limit it was, against perfdhcp's) are recorded.
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
use lab::{Kea, KeaConfig, Lab, Process, venus};

use super::{
    Machine, Running, Section, T, command_line, commit, cpu_seconds, findmnt, js, load_average, remove_lease_files,
    spread, utf8,
};
use crate::build;
/// perfdhcp's address in mutante1: its giaddr.
const RELAY: &str = "192.168.50.250/24";
pub(super) const RELAY_HOST: usize = 1;
const SUBNET: &str = "192.168.0.0/16";
const POOL: &str = "192.168.64.0-192.168.255.254";
pub(super) const FIRST_RATE: u32 = 4_000;
pub(super) const RATE_STEP: u32 = 1_000;
/// Offered rate at which the servers' CPU per ACK is compared: below every
/// knee seen here, so all of them answer (nearly) everything.
pub(super) const REFERENCE_RATE: u32 = 6_000;
const MAX_RATE: u32 = 40_000;
/// A point below this fraction of the offered rate is past the knee.
pub(super) const SATURATED: f64 = 0.85;
/// Points in a row below [`SATURATED`] that end a sweep.
pub(super) const PATIENCE: u32 = 3;

/// Where a point's processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cores {
    /// perfdhcp (`-g single`) on CPU 0, the server on the others.
    Own,
    /// Nothing pinned; perfdhcp with its default threads.
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// xdhcpd, lease file on the lab's disk; `xdp` attaches the program.
    Xdhcpd { xdp: bool, cores: Cores },
    /// kea-dhcp4; `mt: false` turns its multi-threading off.
    Kea { mt: bool, cores: Cores },
}

/// The compared servers first, then the diagnostic variants (each changes
/// one thing, to show where the time goes; not part of the comparison).
const SERVERS: [Server; 6] = [
    Server::Xdhcpd { xdp: false, cores: Cores::Own },
    Server::Xdhcpd { xdp: true, cores: Cores::Own },
    KEA,
    Server::Kea { mt: false, cores: Cores::Own },
    Server::Xdhcpd { xdp: false, cores: Cores::Shared },
    Server::Kea { mt: true, cores: Cores::Shared },
];
/// The reference the compared rows' ratios divide by.
const KEA: Server = Server::Kea { mt: true, cores: Cores::Own };

impl Server {
    fn key(self) -> &'static str {
        match self {
            Server::Xdhcpd { xdp: false, cores: Cores::Own } => "xdhcpd-no-xdp",
            Server::Xdhcpd { xdp: true, cores: Cores::Own } => "xdhcpd-xdp",
            Server::Xdhcpd { xdp: false, cores: Cores::Shared } => "xdhcpd-no-xdp-shared-cores",
            Server::Xdhcpd { xdp: true, cores: Cores::Shared } => "xdhcpd-xdp-shared-cores",
            Server::Kea { mt: true, cores: Cores::Own } => "kea",
            Server::Kea { mt: false, cores: Cores::Own } => "kea-single-threaded",
            Server::Kea { mt: true, cores: Cores::Shared } => "kea-shared-cores",
            Server::Kea { mt: false, cores: Cores::Shared } => "kea-single-threaded-shared-cores",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Server::Xdhcpd { xdp: false, cores: Cores::Own } => "xdhcpd --no-xdp",
            Server::Xdhcpd { xdp: true, cores: Cores::Own } => "xdhcpd (XDP attached)",
            Server::Xdhcpd { xdp: false, cores: Cores::Shared } => "xdhcpd --no-xdp, cores shared with perfdhcp",
            Server::Xdhcpd { xdp: true, cores: Cores::Shared } => "xdhcpd (XDP), cores shared with perfdhcp",
            Server::Kea { mt: true, cores: Cores::Own } => "Kea 2.2 (kea-dhcp4)",
            Server::Kea { mt: false, cores: Cores::Own } => "Kea 2.2, multi-threading off",
            Server::Kea { mt: true, cores: Cores::Shared } => "Kea 2.2, cores shared with perfdhcp",
            Server::Kea { mt: false, cores: Cores::Shared } => "Kea 2.2, multi-threading off, cores shared",
        }
    }

    fn cores(self) -> Cores {
        match self {
            Server::Xdhcpd { cores, .. } | Server::Kea { cores, .. } => cores,
        }
    }

    /// Kea as configured on the same cores: what this row's ratio divides by.
    fn reference(self) -> Server {
        Server::Kea { mt: true, cores: self.cores() }
    }

    fn diagnostic(self) -> bool {
        self.cores() == Cores::Shared || self == (Server::Kea { mt: false, cores: Cores::Own })
    }
}

/// One offered rate against one fresh server.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub(super) offered: u32,
    pub(super) report: Report,
    /// Datagrams the server's / perfdhcp's UDP sockets dropped for lack of
    /// buffer (`RcvbufErrors` in the host's /proc/net/snmp).
    pub(super) server_rcvbuf_errors: u64,
    pub(super) client_rcvbuf_errors: u64,
    /// CPU time (user + system, all threads) the server used meanwhile.
    pub(super) server_cpu_s: f64,
}

/// A sweep's points carry a [`Point`] (`bench ha` adds replication).
impl AsRef<Point> for Point {
    fn as_ref(&self) -> &Point {
        self
    }
}

/// One sweep: the result of a run is its best point.
#[derive(Debug)]
pub(super) struct Sweep<P = Point> {
    pub(super) rep: u32,
    pub(super) points: Vec<P>,
    pub(super) best: P,
    pub(super) load_before: String,
}

/// Everything a run needs.
struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    config: KeaConfig,
    seconds: u32,
    attach_modes: Vec<String>,
    clock_ticks: f64,
}

/// Runs the whole benchmark: `reps` sweeps per server, `seconds` of load
/// per point.
pub fn measure(reps: u32, seconds: u32) -> anyhow::Result<Results> {
    let started = Instant::now();
    let (xdhcpd, machine, lab) = prepare()?;
    let mut config = config(venus::PRIMARY)?;
    config.without_ha()?;
    let lease_fs = findmnt(&lab.host_dir(venus::PRIMARY)?);
    let clock_ticks = clock_ticks();
    let mut bench = Bench { lab, xdhcpd, config, seconds, attach_modes: Vec::new(), clock_ticks };

    let sweeps = interleaved(reps, &SERVERS, Server::label, |server, rep| bench.sweep(server, rep))?;
    let kea_mt = bench.config.value().pointer("/Dhcp4/multi-threading").map(|v| v.to_string()).unwrap_or_default();
    let results = Results {
        setup: Setup::now("alloc", started, machine, lease_fs, bench.attach_modes.clone()),
        kea_mt,
        reps,
        seconds,
        sweeps,
    };
    drop(bench);
    println!("\n{}", results.table());
    Ok(results)
}

/// The start of a run: the release xdhcpd, the machine as it was before
/// the run, and the venus lab with perfdhcp's relay address (its giaddr)
/// in mutante1.
pub(super) fn prepare() -> anyhow::Result<(PathBuf, Machine, Lab)> {
    let xdhcpd = build::release()?;
    let machine = Machine::probe();
    println!("machine: {} cores, {}, kernel {}, load {}", machine.cores, machine.cpu, machine.kernel, machine.load);
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS)?).context("bringing up the venus lab")?;
    lab.run(&venus::client(RELAY_HOST), &["ip", "addr", "add", RELAY, "dev", "eth0"])?;
    Ok((xdhcpd, machine, lab))
}

/// `reps` runs (`run(server, rep)`) of every server, servers interleaved
/// so that background load hits all of them alike.
pub(super) fn interleaved<S: Copy, P>(
    reps: u32,
    servers: &[S],
    label: impl Fn(S) -> &'static str,
    mut run: impl FnMut(S, u32) -> anyhow::Result<Sweep<P>>,
) -> anyhow::Result<Vec<(S, Vec<Sweep<P>>)>> {
    let mut sweeps: Vec<(S, Vec<Sweep<P>>)> = servers.iter().map(|s| (*s, Vec::new())).collect();
    for rep in 1..=reps {
        for (server, runs) in &mut sweeps {
            println!("\n[{rep}/{reps}] {}", label(*server));
            runs.push(run(*server, rep)?);
        }
    }
    Ok(sweeps)
}

/// `server`'s checked-in venus config with the benchmark's changes: the
/// subnet widened to [`SUBNET`] with [`POOL`], a one-hour lifetime.
pub(super) fn config(server: &str) -> anyhow::Result<KeaConfig> {
    let mut config = venus::kea_config(server)?;
    config.set("/Dhcp4/valid-lifetime", 3600.into())?;
    config.set("/Dhcp4/subnet4/0/subnet", SUBNET.into())?;
    config.set("/Dhcp4/subnet4/0/pools/0/pool", POOL.into())?;
    Ok(config)
}

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
pub(super) fn clock_ticks() -> f64 {
    command_line("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0)
}

/// One run: `point(offered)` for offered rates from `first` upwards by
/// `step`, until [`PATIENCE`] points in a row fall below [`SATURATED`] of the offered
/// rate (past its knee a server only sheds more) or [`MAX_RATE`].
pub(super) fn sweep<P: AsRef<Point> + Clone>(
    rep: u32,
    first: u32,
    step: u32,
    mut point: impl FnMut(u32) -> anyhow::Result<P>,
) -> anyhow::Result<Sweep<P>> {
    let load_before = load_average();
    let mut points: Vec<P> = Vec::new();
    let mut below = 0;
    let mut offered = first;
    while offered <= MAX_RATE {
        let measured = point(offered)?;
        let p = measured.as_ref();
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
        points.push(measured);
        if below >= PATIENCE {
            break;
        }
        offered += step;
    }
    let best =
        points.iter().max_by(|a, b| a.as_ref().report.rate.total_cmp(&b.as_ref().report.rate)).context("no points")?;
    Ok(Sweep { rep, best: best.clone(), points, load_before })
}

/// Offers `offered` DORA/s from perfdhcp (relaying in mutante1) to the
/// server in lobezno for `seconds`, with the CPU time of the server
/// processes `pids` meanwhile.
///
/// `single_thread` runs perfdhcp with `-g single` (for when it is pinned to
/// one CPU, where its receiver thread would only compete with its sender).
pub(super) fn drive(
    lab: &Lab,
    offered: u32,
    seconds: u32,
    pids: &[u32],
    clock_ticks: f64,
    single_thread: bool,
) -> anyhow::Result<Point> {
    let relay = venus::client(RELAY_HOST);
    let cpu = || pids.iter().map(|pid| cpu_seconds(*pid, clock_ticks)).sum::<anyhow::Result<f64>>();
    let cpu_before = cpu()?;
    let (server_before, client_before) = (rcvbuf_errors(lab, venus::PRIMARY)?, rcvbuf_errors(lab, &relay)?);
    let n = (offered * seconds).to_string();
    let period = (seconds * 3).to_string();
    let (rate, target) = (offered.to_string(), venus::PRIMARY_LAN.to_string());
    // -d 2 -d 2: an OFFER or ACK later than 2 s counts as dropped (the
    // second -d is REQUEST-ACK's). No -W: the test period ends with the
    // last DISCOVER, so the rate is not diluted by a tail wait.
    let mut argv = vec!["-4", "-l", "eth0", "-r", &rate, "-n", &n, "-R", &n, "-p", &period, "-d", "2", "-d", "2"];
    if single_thread {
        argv.extend(["-g", "single"]);
    }
    argv.push(&target);
    let out =
        lab.cmd(&relay, "perfdhcp").args(&argv).timeout(Duration::from_secs(u64::from(seconds) * 3 + 30)).output()?;
    let server_after = rcvbuf_errors(lab, venus::PRIMARY)?;
    let client_after = rcvbuf_errors(lab, &relay)?;
    let cpu_after = cpu()?;
    let report =
        parse_report(&out.stdout).with_context(|| format!("perfdhcp {} printed no report:\n{out}", argv.join(" ")))?;
    Ok(Point {
        offered,
        report,
        server_rcvbuf_errors: server_after.saturating_sub(server_before),
        client_rcvbuf_errors: client_after.saturating_sub(client_before),
        server_cpu_s: cpu_after - cpu_before,
    })
}

impl Bench {
    fn sweep(&mut self, server: Server, rep: u32) -> anyhow::Result<Sweep> {
        sweep(rep, FIRST_RATE, RATE_STEP, |offered| {
            self.point(server, offered).with_context(|| format!("{} at {offered}/s", server.label()))
        })
    }

    fn point(&mut self, server: Server, offered: u32) -> anyhow::Result<Point> {
        self.place(server.cores())?;
        let mut running = self.start(server)?;
        let own = server.cores() == Cores::Own;
        let point = drive(&self.lab, offered, self.seconds, &[running.pid()], self.clock_ticks, own);
        running.stop()?;
        point
    }

    /// Pins perfdhcp's host and the server's (or unpins both) before the
    /// server starts, so that its threads start confined too.
    fn place(&self, cores: Cores) -> anyhow::Result<()> {
        let relay = venus::client(RELAY_HOST);
        match cores {
            Cores::Own => {
                let (client, server) = own_cores()?;
                self.lab.pin(&relay, Some(&client))?;
                self.lab.pin(venus::PRIMARY, Some(&server))
            }
            Cores::Shared => {
                self.lab.pin(&relay, None)?;
                self.lab.pin(venus::PRIMARY, None)
            }
        }
    }

    /// Starts `server` in lobezno with an empty lease file.
    fn start(&mut self, server: Server) -> anyhow::Result<Running> {
        let dir = self.lab.host_dir(venus::PRIMARY)?;
        match server {
            Server::Xdhcpd { xdp, .. } => {
                let p = start_xdhcpd(&self.lab, &self.xdhcpd, venus::PRIMARY, &self.config, &dir, xdp)?;
                note_attach_mode(&p, server.label(), &mut self.attach_modes);
                Ok(Running::Xdhcpd(p))
            }
            Server::Kea { mt, .. } => {
                // Kea::start puts the lease file at <host dir>/kea-leases4.csv.
                remove_lease_files(&dir, "kea-leases4.csv")?;
                let mut cfg = self.config.clone();
                if !mt {
                    cfg.set("/Dhcp4/multi-threading/enable-multi-threading", false.into())?;
                }
                Ok(Running::Kea(Box::new(Kea::start(&self.lab, venus::PRIMARY, &cfg)?)))
            }
        }
    }
}

/// CPU 0 for perfdhcp, CPUs 1 to n-1 for the server (n: the CPUs this
/// process may use).
pub(super) fn own_cores() -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    anyhow::ensure!(n >= 2, "giving perfdhcp and the server a core each needs 2 CPUs; this machine has {n}");
    Ok((vec![0], (1..n).collect()))
}

/// Starts xdhcpd (`bin`) in `host` with `config`, its lease file
/// `<lease_dir>/leases4.csv` emptied first, XDP attached unless `xdp` is
/// false, and waits until it serves.
pub(super) fn start_xdhcpd(
    lab: &Lab,
    bin: &Path,
    host: &str,
    config: &KeaConfig,
    lease_dir: &Path,
    xdp: bool,
) -> anyhow::Result<Process> {
    remove_lease_files(lease_dir, "leases4.csv")?;
    let mut cfg = config.clone();
    cfg.lease_file(&lease_dir.join("leases4.csv"))?;
    let path = lab.host_dir(host)?.join("xdhcpd-bench.json");
    cfg.write(&path)?;
    let mut argv = vec![utf8(bin)?, "run", "-c", utf8(&path)?];
    if !xdp {
        argv.push("--no-xdp");
    }
    let mut p = lab.spawn(host, "xdhcpd", &argv)?;
    p.wait_for_log("serving", T)?;
    Ok(p)
}

/// Adds "`label`: <attach mode>" from xdhcpd's log to `modes` (once).
pub(super) fn note_attach_mode(p: &Process, label: &str, modes: &mut Vec<String>) {
    if let Some(mode) = p.log().lines().find(|l| l.contains("attach mode")) {
        let mode = mode.split_once("attach mode").map_or(mode, |(_, m)| m).trim_start_matches(':').trim();
        let entry = format!("{label}: {mode}");
        if !modes.contains(&entry) {
            modes.push(entry);
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

/// Where and with what a perfdhcp benchmark ran: the head of its report
/// (`bench alloc`'s and `bench ha`'s).
pub(super) struct Setup {
    /// The section: `bench/<key>.json`.
    pub(super) key: &'static str,
    pub(super) date: String,
    pub(super) machine: Machine,
    pub(super) load_after: String,
    pub(super) lease_fs: String,
    pub(super) kea_version: String,
    pub(super) perfdhcp_version: String,
    pub(super) commit: String,
    pub(super) attach_modes: Vec<String>,
    /// Minutes the whole run took.
    pub(super) minutes: f64,
}

impl Setup {
    /// Completes what run `key` noted (`machine` probed before it) at its end.
    pub(super) fn now(
        key: &'static str,
        started: Instant,
        machine: Machine,
        lease_fs: String,
        attach_modes: Vec<String>,
    ) -> Setup {
        Setup {
            key,
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine,
            load_after: load_average(),
            lease_fs,
            kea_version: command_line("kea-dhcp4", &["-v"]),
            perfdhcp_version: command_line("perfdhcp", &["-v"]).trim_start_matches("VERSION: ").to_owned(),
            commit: commit(),
            attach_modes,
            minutes: started.elapsed().as_secs_f64() / 60.0,
        }
    }

    /// The report's list: machine, load, lease files (`lease_note` after
    /// them), xdhcpd, `kea_line`, perfdhcp, the run's duration.
    pub(super) fn markdown(&self, m: &mut String, lease_note: &str, kea_line: &str) {
        m.push_str(&self.machine.markdown(&self.load_after));
        let _ = writeln!(m, "- Lease files: {} (lab dir){lease_note}", self.lease_fs);
        let _ = writeln!(m, "- xdhcpd: release build of {}", self.commit);
        for mode in &self.attach_modes {
            let _ = writeln!(m, "  - {mode}");
        }
        let _ = writeln!(m, "{kea_line}");
        let _ = writeln!(m, "- perfdhcp {}, in mutante1, relaying (giaddr 192.168.50.250)", self.perfdhcp_version);
        let _ = writeln!(m, "- Whole benchmark: {:.1} min; every point in `bench/{}.json`", self.minutes, self.key);
    }

    /// The JSON members `benchmark`, `date`, `machine`, `versions` and
    /// `xdhcpd_attach_modes`, each on a line ending in a comma.
    pub(super) fn json(&self, j: &mut String) {
        let _ = writeln!(j, "  \"benchmark\": {},", js(self.key));
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
    }
}

/// Median over `runs` of `f` of their best point.
pub(super) fn at_best<P: AsRef<Point>>(runs: &[Sweep<P>], f: impl Fn(&Point) -> f64) -> f64 {
    spread(&runs.iter().map(|r| f(r.best.as_ref())).collect::<Vec<_>>()).1
}

/// Median over `runs` of CPU time (`cpu_s` of a point, seconds) per ACK
/// at offered rate `rate`, in microseconds.
pub(super) fn cpu_per_ack_us<'a, P: AsRef<Point> + 'a>(
    runs: impl IntoIterator<Item = &'a Sweep<P>>,
    rate: u32,
    cpu_s: impl Fn(&P) -> f64,
) -> Option<f64> {
    let per_run: Vec<f64> = runs
        .into_iter()
        .filter_map(|run| run.points.iter().find(|p| p.as_ref().offered == rate))
        .filter(|p| p.as_ref().report.request_ack.received > 0)
        .map(|p| cpu_s(p) / p.as_ref().report.request_ack.received as f64 * 1e6)
        .collect();
    (!per_run.is_empty()).then(|| spread(&per_run).1)
}

/// The JSON member `"<name>": [...]`, an object per server: `head`'s
/// members (key, label, statistics), then its `runs`, each with its points
/// (`point`).
pub(super) fn sweeps_json<S: Copy, P: AsRef<Point>>(
    j: &mut String,
    name: &str,
    sweeps: &[(S, Vec<Sweep<P>>)],
    head: impl Fn(S) -> String,
    point: impl Fn(&P) -> String,
) {
    let _ = writeln!(j, "  \"{name}\": [");
    for (i, (server, runs)) in sweeps.iter().enumerate() {
        let _ = writeln!(j, "    {{{}, \"runs\": [", head(*server));
        runs_json(j, runs, &point);
        j.push_str(if i + 1 < sweeps.len() { "    ]},\n" } else { "    ]}\n" });
    }
    j.push_str("  ]\n");
}

/// `runs` as the items of a JSON array, each with its points (`point`).
fn runs_json<P: AsRef<Point>>(j: &mut String, runs: &[Sweep<P>], point: impl Fn(&P) -> String) {
    for (k, run) in runs.iter().enumerate() {
        let points: Vec<String> = run.points.iter().map(&point).collect();
        let best = run.best.as_ref();
        let _ = write!(
            j,
            "      {{\"rep\": {}, \"load_before\": {}, \"best_acks_per_s\": {:.1}, \"best_offered\": {}, \"points\": [\n        {}\n      ]}}",
            run.rep,
            js(&run.load_before),
            best.report.rate,
            best.offered,
            points.join(",\n        ")
        );
        j.push_str(if k + 1 < runs.len() { ",\n" } else { "\n" });
    }
}

/// Everything measured, ready to write out.
pub struct Results {
    setup: Setup,
    kea_mt: String,
    reps: u32,
    seconds: u32,
    sweeps: Vec<(Server, Vec<Sweep>)>,
}

pub(super) fn drop_pct(x: &Exchange) -> f64 {
    if x.sent == 0 { 0.0 } else { 100.0 * x.drops as f64 / x.sent as f64 }
}

impl Results {
    /// The BENCHMARKS.md section and bench/alloc.json.
    pub fn section(&self) -> Section {
        Section { key: "alloc", markdown: self.markdown(), json: self.json() }
    }

    /// Every run of `server`.
    fn runs(&self, server: Server) -> impl Iterator<Item = &Sweep> {
        self.sweeps.iter().filter(move |(s, _)| *s == server).flat_map(|(_, runs)| runs)
    }

    fn bests(&self, server: Server) -> Vec<f64> {
        self.runs(server).map(|r| r.best.report.rate).collect()
    }

    fn median(&self, server: Server) -> f64 {
        spread(&self.bests(server)).1
    }

    /// Median over runs of the server's CPU time per ACK at the reference
    /// rate, in microseconds.
    fn cpu_per_ack_us(&self, server: Server) -> Option<f64> {
        cpu_per_ack_us(self.runs(server), REFERENCE_RATE, |p| p.server_cpu_s)
    }

    fn kea(&self) -> f64 {
        self.median(KEA)
    }

    /// This row's median ÷ Kea's (as configured, same cores).
    fn ratio(&self, server: Server) -> f64 {
        self.ratio_to(server, server.reference())
    }

    /// `server`'s median ÷ `reference`'s (0 without a reference).
    fn ratio_to(&self, server: Server, reference: Server) -> f64 {
        let r = self.median(reference);
        if r > 0.0 { self.median(server) / r } else { 0.0 }
    }

    /// Server CPU seconds per second of load at the best point (median
    /// over runs): near the CPUs it was given, the server was the limit;
    /// well below, perfdhcp was.
    fn cpu_use_at_best(&self, server: Server) -> f64 {
        let uses: Vec<f64> = self.runs(server).map(|r| r.best.server_cpu_s / f64::from(self.seconds)).collect();
        spread(&uses).1
    }

    fn table(&self) -> String {
        let mut t = String::new();
        t.push_str("| server | min | median | max | ÷ Kea, same cores (medians) | best at `-r` (median) | REQUEST-ACK drops at best (median) | ACK delay avg / max at best (median) | server CPU per ACK at ");
        let _ = writeln!(t, "{REFERENCE_RATE}/s (median) | server CPU use at best (median) |");
        t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (server, runs) in &self.sweeps {
            let (min, median, max) = spread(&self.bests(*server));
            let ratio = self.ratio(*server);
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
                "| {name} | {min:.0} | **{median:.0}** | {max:.0} | {ratio:.2}× | {:.0} | {:.1} % | {:.1} / {:.0} ms | {cpu} | {:.2} CPU |",
                at_best(runs, |p| f64::from(p.offered)),
                at_best(runs, |p| drop_pct(&p.report.request_ack)),
                at_best(runs, |p| p.report.request_ack.avg_ms),
                at_best(runs, |p| p.report.request_ack.max_ms),
                self.cpu_use_at_best(*server)
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "### Allocations per second (completed DORA/s), {}\n", self.setup.date);
        m.push_str(&self.table());
        let _ = writeln!(
            m,
            "\nOne value per run: the best REQUEST-ACK rate perfdhcp measured in that run's sweep of offered \
             rates (`-r` {FIRST_RATE}, +{RATE_STEP}, … until {PATIENCE} points in a row fall below {:.0} % of the \
             offered rate); {} runs per server, {} s of load per point, servers interleaved, fresh server and \
             lease file for every point. Server CPU per ACK: user + system time of the server process (all \
             threads, kernel work on its behalf included) during the {REFERENCE_RATE}/s point, divided by the \
             ACKs perfdhcp received. Server CPU use at best: that CPU time at the best point divided by its \
             seconds of load (the server had {} CPU(s) to itself; perfdhcp, pinned to the other, was the limit \
             when this stays well below). Compared rows: perfdhcp `-g single` on CPU 0, the server and every \
             thread of it on the other CPUs; ratios divide by Kea as configured on the same cores. Diagnostic \
             rows change one thing each and are not part of the comparison.\n",
            SATURATED * 100.0,
            self.reps,
            self.seconds,
            own_cores().map_or(0, |(_, server)| server.len())
        );
        let st = Server::Kea { mt: false, cores: Cores::Own };
        let vs_st = |server: Server| self.ratio_to(server, st);
        let _ = writeln!(
            m,
            "Against Kea single-threaded on the same core (its faster setting there): {:.2}× `--no-xdp`, {:.2}× \
             with XDP attached.\n",
            vs_st(Server::Xdhcpd { xdp: false, cores: Cores::Own }),
            vs_st(Server::Xdhcpd { xdp: true, cores: Cores::Own })
        );
        let kea = format!(
            "- Kea {} with `\"multi-threading\": {}` from `lab/venus/lobezno.json`",
            self.setup.kea_version, self.kea_mt
        );
        self.setup.markdown(&mut m, "", &kea);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        self.setup.json(&mut j);
        let _ =
            writeln!(j, "  \"kea_multi_threading\": {},", if self.kea_mt.is_empty() { "null" } else { &self.kea_mt });
        let _ = writeln!(
            j,
            "  \"method\": {{\"reps\": {}, \"seconds_per_point\": {}, \"first_rate\": {FIRST_RATE}, \"rate_step\": {RATE_STEP}, \"reference_rate\": {REFERENCE_RATE}, \"saturated_below\": {SATURATED}, \"patience\": {PATIENCE}, \"subnet\": {}, \"pool\": {}, \"valid_lifetime\": 3600, \"perfdhcp\": {}}},",
            self.reps,
            self.seconds,
            js(SUBNET),
            js(POOL),
            js("perfdhcp -4 -l eth0 -r RATE -n RATE*SECONDS -R RATE*SECONDS -p SECONDS*3 -d 2 -d 2 [-g single] 192.168.50.2")
        );
        let _ = writeln!(j, "  \"kea_median_acks_per_s\": {:.1},", self.kea());
        let head = |server: Server| {
            let (min, median, max) = spread(&self.bests(server));
            format!(
                "\"key\": {}, \"label\": {}, \"diagnostic\": {}, \"min\": {min:.1}, \"median\": {median:.1}, \"max\": {max:.1}, \"ratio_to_kea_median\": {:.3}, \"cpu_us_per_ack_at_reference_rate\": {}, \"server_cpu_use_at_best\": {:.3}, \"cores\": {}",
                js(server.key()),
                js(server.label()),
                server.diagnostic(),
                self.ratio(server),
                self.cpu_per_ack_us(server).map_or("null".into(), |us| format!("{us:.1}")),
                self.cpu_use_at_best(server),
                js(match server.cores() {
                    Cores::Own => "perfdhcp -g single on CPU 0, the server on the others",
                    Cores::Shared => "shared, nothing pinned",
                })
            )
        };
        sweeps_json(&mut j, "servers", &self.sweeps, head, point_json);
        j.push_str("}\n");
        j
    }
}

pub(super) fn point_json(p: &Point) -> String {
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
