//! The perfdhcp method `bench alloc` shares with the other perfdhcp
//! benchmarks (`bench ha`, `bench classes`): the lab, a sweep of offered
//! rates, one point of load and the xdhcpd it runs against.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use lab::perfdhcp::{Report, parse_report};
use lab::{KeaConfig, Lab, Process, venus};

use super::{MAX_RATE, PATIENCE, POOL, RELAY, RELAY_HOST, SATURATED, SUBNET};
use crate::bench::{Machine, T, command_line, cpu_seconds, load_average, remove_lease_files, utf8};
use crate::build;

/// One offered rate against one fresh server.
#[derive(Debug, Clone, Copy)]
pub(in crate::bench) struct Point {
    pub(in crate::bench) offered: u32,
    pub(in crate::bench) report: Report,
    /// Datagrams the server's / perfdhcp's UDP sockets dropped for lack of
    /// buffer (`RcvbufErrors` in the host's /proc/net/snmp).
    pub(in crate::bench) server_rcvbuf_errors: u64,
    pub(in crate::bench) client_rcvbuf_errors: u64,
    /// CPU time (user + system, all threads) the server used meanwhile.
    pub(in crate::bench) server_cpu_s: f64,
}

/// A sweep's points carry a [`Point`] (`bench ha` adds replication).
impl AsRef<Point> for Point {
    fn as_ref(&self) -> &Point {
        self
    }
}

/// One sweep: the result of a run is its best point.
#[derive(Debug)]
pub(in crate::bench) struct Sweep<P = Point> {
    pub(in crate::bench) rep: u32,
    pub(in crate::bench) points: Vec<P>,
    pub(in crate::bench) best: P,
    pub(in crate::bench) load_before: String,
}

/// The start of a run: the release xdhcpd, the machine as it was before
/// the run, and the venus lab with perfdhcp's relay address (its giaddr)
/// in mutante1.
pub(in crate::bench) fn prepare() -> anyhow::Result<(PathBuf, Machine, Lab)> {
    let xdhcpd = build::release()?;
    let machine = Machine::probe();
    println!("machine: {} cores, {}, kernel {}, load {}", machine.cores, machine.cpu, machine.kernel, machine.load);
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS)?).context("bringing up the venus lab")?;
    lab.run(&venus::client(RELAY_HOST), &["ip", "addr", "add", RELAY, "dev", "eth0"])?;
    Ok((xdhcpd, machine, lab))
}

/// `reps` runs (`run(server, rep)`) of every server, servers interleaved
/// so that background load hits all of them alike.
pub(in crate::bench) fn interleaved<S: Copy, P>(
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
pub(in crate::bench) fn config(server: &str) -> anyhow::Result<KeaConfig> {
    let mut config = venus::kea_config(server)?;
    config.set("/Dhcp4/valid-lifetime", 3600.into())?;
    config.set("/Dhcp4/subnet4/0/subnet", SUBNET.into())?;
    config.set("/Dhcp4/subnet4/0/pools/0/pool", POOL.into())?;
    Ok(config)
}

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
pub(in crate::bench) fn clock_ticks() -> f64 {
    command_line("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0)
}

/// One run: `point(offered)` for offered rates from `first` upwards by
/// `step`, until [`PATIENCE`] points in a row fall below [`SATURATED`] of the offered
/// rate (past its knee a server only sheds more) or [`MAX_RATE`].
pub(in crate::bench) fn sweep<P: AsRef<Point> + Clone>(
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
pub(in crate::bench) fn drive(
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

/// CPU 0 for perfdhcp, CPUs 1 to n-1 for the server (n: the CPUs this
/// process may use).
pub(in crate::bench) fn own_cores() -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    anyhow::ensure!(n >= 2, "giving perfdhcp and the server a core each needs 2 CPUs; this machine has {n}");
    Ok((vec![0], (1..n).collect()))
}

/// Starts xdhcpd (`bin`) in `host` with `config`, its lease file
/// `<lease_dir>/leases4.csv` emptied first, XDP attached unless `xdp` is
/// false, and waits until it serves.
pub(in crate::bench) fn start_xdhcpd(
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
pub(in crate::bench) fn note_attach_mode(p: &Process, label: &str, modes: &mut Vec<String>) {
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
