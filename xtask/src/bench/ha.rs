//! `cargo xtask bench ha`: allocations per second — completed DORA
//! exchanges per second — through a hot-standby HA pair: lobezno primary
//! and tormenta standby, both xdhcpd (XDP attached, as run in production)
//! or both Kea 2.2 (`libdhcp_lease_cmds` + `libdhcp_ha`), driven by real
//! `perfdhcp` in the venus lab. Writes `bench/ha.json` and the `ha`
//! section of `BENCHMARKS.md`.
//!
//! Method: `bench alloc`'s (its [`alloc::sweep`], [`alloc::drive`] and
//! [`alloc::config`]), against a pair instead of one server:
//! - Both pairs get the same configs: `lab/venus/lobezno.json` and
//!   `tormenta.json` as checked in (HA hook included: hot-standby, its
//!   heartbeat and failure-detection parameters), subnet and pool widened
//!   and a one-hour lifetime as in `bench alloc`.
//! - Every point starts both servers fresh with empty lease files and
//!   waits until each has logged its transition into hot-standby *and*
//!   answers its partner's `ha-heartbeat` (asked from the partner's host,
//!   on the HA link) with `hot-standby`; only then perfdhcp (a relay in
//!   mutante1) offers load to the primary.
//! - A point only counts if replication happened: after the load both
//!   servers are asked `ha-heartbeat` again and stopped, and the standby's
//!   lease file must hold at least [`REPLICATED`] of the leases perfdhcp
//!   received an ACK for (both servers send the ACK only after the partner
//!   took the lease update, so it should be all of them); otherwise the
//!   benchmark fails. Lease counts go into the JSON per point.
//! - A run's value is its sweep's best point; pairs interleaved per rep.
//!   CPU per ACK counts both processes of a pair at [`REFERENCE_RATE`].
//!
//! Defaults (about 5 minutes with the build): 3 reps, 2 s per point,
//! sweeps from [`FIRST_RATE`] by [`RATE_STEP`]. `--no-xdp` adds an xdhcpd
//! `--no-xdp` pair (about 3 more minutes). All load is bounded (`-n`, `-p`, a timeout
//! per perfdhcp) and stays inside the lab's namespaces.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lab::{Kea, KeaConfig, Lab, Process, venus};

use super::alloc::{self, Point, Setup, Sweep};
use super::{Running, Section, cpu_seconds, findmnt, js, remove_lease_files, spread};

/// Offered rates of a sweep: an HA pair's knee is below a lone server's.
const FIRST_RATE: u32 = 1_500;
const RATE_STEP: u32 = 500;
/// Offered rate at which the pairs' CPU per ACK is compared: about the
/// Kea pair's knee here. Lower, both pairs' fixed costs (heartbeats, idle
/// threads, perfdhcp's tail) weigh more per ACK.
const REFERENCE_RATE: u32 = 2_000;
/// Bound on waiting → syncing → ready → hot-standby of a fresh pair.
const HA_UP: Duration = Duration::from_secs(40);
/// Least fraction of perfdhcp's ACKs the standby must hold for a point to
/// count: a pair that stopped replicating (a partner-down under load) falls
/// far below, a pair that replicates holds all of them.
const REPLICATED: f64 = 0.95;

/// `cargo xtask bench ha` options.
#[derive(clap::Args)]
pub struct Opts {
    /// Runs per pair (each a full rate sweep, fresh servers per point).
    #[arg(long, default_value_t = 3)]
    reps: u32,
    /// Seconds of load per offered rate.
    #[arg(long, default_value_t = 2)]
    seconds: u32,
    /// Also measure a pair of xdhcpd --no-xdp.
    #[arg(long)]
    no_xdp: bool,
}

/// The defaults, for the run of every section.
#[derive(clap::Parser)]
struct Defaults {
    #[command(flatten)]
    opts: Opts,
}

impl Opts {
    /// `bench ha` with its default options.
    pub fn defaults() -> Opts {
        <Defaults as clap::Parser>::parse_from(["ha"]).opts
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pair {
    /// Two xdhcpd; `xdp` attaches the program.
    Xdhcpd { xdp: bool },
    /// Two kea-dhcp4 with the HA and lease_cmds hooks.
    Kea,
}

impl Pair {
    fn key(self) -> &'static str {
        match self {
            Pair::Xdhcpd { xdp: true } => "xdhcpd-xdp",
            Pair::Xdhcpd { xdp: false } => "xdhcpd-no-xdp",
            Pair::Kea => "kea",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Pair::Xdhcpd { xdp: true } => "xdhcpd pair (XDP attached)",
            Pair::Xdhcpd { xdp: false } => "xdhcpd pair --no-xdp",
            Pair::Kea => "Kea 2.2 pair (libdhcp_ha)",
        }
    }

    /// The lease file `Kea::start` / `alloc::start_xdhcpd` use in a host dir.
    fn lease_file(self) -> &'static str {
        match self {
            Pair::Xdhcpd { .. } => "leases4.csv",
            Pair::Kea => "kea-leases4.csv",
        }
    }
}

/// One offered rate against one fresh pair.
#[derive(Debug, Clone)]
struct HaPoint {
    /// perfdhcp's report; CPU time of both servers.
    load: Point,
    /// CPU time of the standby alone (the primary's is `load`'s total
    /// minus this).
    standby_cpu_s: f64,
    /// Seconds from starting the primary until both were in hot-standby.
    ready_s: f64,
    /// Live leases in the primary's / the standby's lease file.
    primary_leases: usize,
    standby_leases: usize,
    /// The primary's leases the standby's file lacks.
    missing_on_standby: usize,
    /// Each server's `ha-heartbeat` state right after the load.
    states_after: [String; 2],
}

impl AsRef<Point> for HaPoint {
    fn as_ref(&self) -> &Point {
        &self.load
    }
}

impl HaPoint {
    /// Leases on the standby per ACK perfdhcp received.
    fn replicated(&self) -> f64 {
        let acks = self.load.report.request_ack.received;
        if acks == 0 { 1.0 } else { self.standby_leases as f64 / acks as f64 }
    }
}

/// Everything a run needs.
struct Bench {
    lab: Lab,
    xdhcpd: PathBuf,
    /// Primary's and standby's configs.
    configs: [KeaConfig; 2],
    seconds: u32,
    attach_modes: Vec<String>,
    clock_ticks: f64,
}

/// Runs the whole benchmark.
pub fn measure(opts: &Opts) -> anyhow::Result<Results> {
    let (reps, seconds) = (opts.reps.max(1), opts.seconds.max(1));
    let started = Instant::now();
    let (xdhcpd, machine, lab) = alloc::prepare()?;
    let configs = [alloc::config(venus::PRIMARY)?, alloc::config(venus::STANDBY)?];
    let lease_fs = findmnt(&lab.host_dir(venus::PRIMARY)?);
    let mut bench =
        Bench { lab, xdhcpd, configs, seconds, attach_modes: Vec::new(), clock_ticks: alloc::clock_ticks() };

    let mut pairs = vec![Pair::Xdhcpd { xdp: true }, Pair::Kea];
    if opts.no_xdp {
        pairs.insert(1, Pair::Xdhcpd { xdp: false });
    }
    let sweeps = alloc::interleaved(reps, &pairs, Pair::label, |pair, rep| {
        alloc::sweep(rep, FIRST_RATE, RATE_STEP, |offered| {
            bench.point(pair, offered).with_context(|| format!("{} at {offered}/s", pair.label()))
        })
    })?;
    let Bench { configs, attach_modes, .. } = bench;
    let setup = Setup::now("ha", started, machine, lease_fs, attach_modes);
    let results = Results { setup, ha_params: ha_params(&configs[0]), reps, seconds, sweeps };
    println!("\n{}", results.table());
    Ok(results)
}

/// The relationship's parameters as checked in, for the report.
fn ha_params(config: &KeaConfig) -> String {
    let ha = config.value().pointer("/Dhcp4/hooks-libraries/1/parameters/high-availability/0");
    let keys = ["mode", "heartbeat-delay", "max-response-delay", "max-ack-delay", "max-unacked-clients"];
    let mut parts: Vec<String> =
        keys.iter().filter_map(|k| ha.and_then(|h| h.get(*k)).map(|v| format!("\"{k}\": {v}"))).collect();
    if let Some(mt) = ha.and_then(|h| h.get("multi-threading")) {
        parts.push(format!("\"multi-threading\": {mt}"));
    }
    parts.join(", ")
}

impl Bench {
    fn point(&mut self, pair: Pair, offered: u32) -> anyhow::Result<HaPoint> {
        let started = Instant::now();
        let mut servers = self.start(pair)?;
        let ready_s = started.elapsed().as_secs_f64();
        let pids = [servers[0].pid(), servers[1].pid()];
        let standby_before = cpu_seconds(pids[1], self.clock_ticks)?;
        let load = alloc::drive(&self.lab, offered, self.seconds, &pids, self.clock_ticks, false);
        let standby_cpu_s = cpu_seconds(pids[1], self.clock_ticks).map(|s| s - standby_before);
        let states_after = [
            heartbeat(&self.lab, venus::PRIMARY).unwrap_or_else(|e| format!("no answer ({e:#})")),
            heartbeat(&self.lab, venus::STANDBY).unwrap_or_else(|e| format!("no answer ({e:#})")),
        ];
        let [primary, standby] = servers;
        primary.stop()?;
        standby.stop()?;
        let (load, standby_cpu_s) = (load?, standby_cpu_s?);

        // Both stopped: everything either wrote is in its file.
        let file = |host: &str| anyhow::Ok(self.lab.host_dir(host)?.join(pair.lease_file()));
        let on_primary = live_leases(&file(venus::PRIMARY)?)?;
        let on_standby = live_leases(&file(venus::STANDBY)?)?;
        let point = HaPoint {
            load,
            standby_cpu_s,
            ready_s,
            primary_leases: on_primary.len(),
            standby_leases: on_standby.len(),
            missing_on_standby: on_primary.difference(&on_standby).count(),
            states_after,
        };
        println!(
            "  (hot-standby after {:.1} s; ACKs {}, leases primary {} standby {} ({} of the primary's missing); after the load: {} / {})",
            point.ready_s,
            point.load.report.request_ack.received,
            point.primary_leases,
            point.standby_leases,
            point.missing_on_standby,
            point.states_after[0],
            point.states_after[1]
        );
        if point.replicated() < REPLICATED {
            bail!(
                "replication did not happen: the standby holds {} leases for {} ACKs perfdhcp received \
                 ({} of the primary's {} missing); states after the load: {} / {}",
                point.standby_leases,
                point.load.report.request_ack.received,
                point.missing_on_standby,
                point.primary_leases,
                point.states_after[0],
                point.states_after[1]
            );
        }
        Ok(point)
    }

    /// Starts the pair with empty lease files (primary first) and waits
    /// until both are in hot-standby and say so to their partner.
    fn start(&mut self, pair: Pair) -> anyhow::Result<[Running; 2]> {
        let mut servers = Vec::new();
        for (host, config) in venus::SERVERS.iter().zip(&self.configs) {
            let dir = self.lab.host_dir(host)?;
            servers.push(match pair {
                Pair::Xdhcpd { xdp } => {
                    let p = alloc::start_xdhcpd(&self.lab, &self.xdhcpd, host, config, &dir, xdp)?;
                    alloc::note_attach_mode(&p, pair.label(), &mut self.attach_modes);
                    Running::Xdhcpd(p)
                }
                Pair::Kea => {
                    remove_lease_files(&dir, pair.lease_file())?;
                    Running::Kea(Box::new(Kea::start(&self.lab, host, config)?))
                }
            });
        }
        for (server, host) in servers.iter_mut().zip(venus::SERVERS) {
            match server {
                Running::Xdhcpd(p) => wait_xdhcpd_hot_standby(p, host)?,
                Running::Kea(k) => k.wait_ha_state("HOT-STANDBY", HA_UP).with_context(|| format!("Kea in {host}"))?,
            }
        }
        for host in venus::SERVERS {
            let state = heartbeat(&self.lab, host)?;
            if state != "hot-standby" {
                bail!("{host} logged hot-standby but answers ha-heartbeat with {state:?}");
            }
        }
        servers.try_into().map_err(|_| anyhow::anyhow!("a pair is two servers"))
    }
}

/// Waits for xdhcpd's `HA <server>: <from> → hot-standby (partner …)`.
fn wait_xdhcpd_hot_standby(p: &mut Process, host: &str) -> anyhow::Result<()> {
    // Its log has its own transitions only, one relationship here.
    p.wait_for_log("→ hot-standby (", HA_UP).with_context(|| format!("xdhcpd in {host}"))
}

/// `host`'s HA state as it answers `ha-heartbeat` to its partner: asked
/// from the partner's namespace, on `host`'s peer URL (the HA link).
fn heartbeat(lab: &Lab, host: &str) -> anyhow::Result<String> {
    let (partner, ip) =
        if host == venus::PRIMARY { (venus::STANDBY, venus::PRIMARY_HA) } else { (venus::PRIMARY, venus::STANDBY_HA) };
    let body = r#"{"command": "ha-heartbeat", "service": ["dhcp4"]}"#;
    let url = format!("http://{ip}:8000/");
    let out = lab
        .cmd(partner, "curl")
        .args(["-sS", "-m", "2", "-H", "Content-Type: application/json", "-d", body, &url])
        .timeout(Duration::from_secs(5))
        .run()?;
    json_string_field(&out.stdout, "state")
        .with_context(|| format!("ha-heartbeat answer without a state: {}", out.stdout))
}

/// The string value of the first `"key": "value"` in `json` (xtask has no
/// JSON parser; the heartbeat's `state` is a plain word).
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let after = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let value = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(value[..value.find('"')?].to_owned())
}

/// Addresses with a live lease in a Kea memfile CSV (`address,hwaddr,
/// client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,
/// state,…`): the last row of an address wins; a released or reclaimed
/// lease has valid lifetime 0 or a state other than 0.
fn live_leases(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut live = BTreeSet::new();
    for row in text.lines().filter(|l| !l.is_empty() && !l.starts_with("address,")) {
        let fields: Vec<&str> = row.split(',').collect();
        let (Some(address), Some(lifetime), Some(state)) = (fields.first(), fields.get(3), fields.get(9)) else {
            bail!("{}: short row {row:?}", path.display());
        };
        if *lifetime != "0" && *state == "0" {
            live.insert((*address).to_owned());
        } else {
            live.remove(*address);
        }
    }
    Ok(live)
}

/// Everything measured, ready to write out.
pub struct Results {
    setup: Setup,
    ha_params: String,
    reps: u32,
    seconds: u32,
    sweeps: Vec<(Pair, Vec<Sweep<HaPoint>>)>,
}

impl Results {
    /// The BENCHMARKS.md section and bench/ha.json.
    pub fn section(&self) -> Section {
        Section { key: "ha", markdown: self.markdown(), json: self.json() }
    }

    fn runs(&self, pair: Pair) -> impl Iterator<Item = &Sweep<HaPoint>> {
        self.sweeps.iter().filter(move |(p, _)| *p == pair).flat_map(|(_, runs)| runs)
    }

    fn bests(&self, pair: Pair) -> Vec<f64> {
        self.runs(pair).map(|r| r.best.load.report.rate).collect()
    }

    /// The xdhcpd pair's median over the Kea pair's.
    fn ratio(&self, pair: Pair) -> f64 {
        let kea = spread(&self.bests(Pair::Kea)).1;
        if kea > 0.0 { spread(&self.bests(pair)).1 / kea } else { 0.0 }
    }

    /// Median over runs of both servers' CPU time per ACK at the reference
    /// rate, in microseconds.
    fn cpu_per_ack_us(&self, pair: Pair) -> Option<f64> {
        alloc::cpu_per_ack_us(self.runs(pair), REFERENCE_RATE, |p| p.load.server_cpu_s)
    }

    /// The same for the standby alone.
    fn standby_cpu_per_ack_us(&self, pair: Pair) -> Option<f64> {
        alloc::cpu_per_ack_us(self.runs(pair), REFERENCE_RATE, |p| p.standby_cpu_s)
    }

    /// The point of `pair` whose standby held the fewest leases per ACK.
    fn least_replicated(&self, pair: Pair) -> Option<&HaPoint> {
        self.runs(pair).flat_map(|r| &r.points).min_by(|a, b| a.replicated().total_cmp(&b.replicated()))
    }

    fn table(&self) -> String {
        let mut t = String::new();
        t.push_str(
            "| pair | min | median | max | ÷ Kea pair (medians) | best at `-r` (median) | REQUEST-ACK drops at best \
             (median) | ACK delay avg / max at best (median) | standby's leases ÷ ACKs (lowest point) | CPU per ACK, \
             both servers, at ",
        );
        let _ = writeln!(t, "{REFERENCE_RATE}/s (median) |");
        t.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (pair, runs) in &self.sweeps {
            let (min, median, max) = spread(&self.bests(*pair));
            let replicated = match self.least_replicated(*pair) {
                Some(p) => {
                    format!("{:.3} ({} / {})", p.replicated(), p.standby_leases, p.load.report.request_ack.received)
                }
                None => "–".into(),
            };
            let cpu = match (self.cpu_per_ack_us(*pair), self.standby_cpu_per_ack_us(*pair)) {
                (Some(both), Some(standby)) => format!("{both:.0} µs (standby {standby:.0})"),
                _ => "–".into(),
            };
            let _ = writeln!(
                t,
                "| {} | {min:.0} | **{median:.0}** | {max:.0} | {:.2}× | {:.0} | {:.1} % | {:.1} / {:.0} ms | {replicated} | {cpu} |",
                pair.label(),
                self.ratio(*pair),
                alloc::at_best(runs, |p| f64::from(p.offered)),
                alloc::at_best(runs, |p| alloc::drop_pct(&p.report.request_ack)),
                alloc::at_best(runs, |p| p.report.request_ack.avg_ms),
                alloc::at_best(runs, |p| p.report.request_ack.max_ms),
            );
        }
        t
    }

    fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "### HA allocations per second (completed DORA/s through a hot-standby pair), {}\n",
            self.setup.date
        );
        m.push_str(&self.table());
        let ratio = self.ratio(Pair::Xdhcpd { xdp: true });
        let _ = writeln!(
            m,
            "\n**Goal: xdhcpd pair ≥ 2× the Kea pair: {ratio:.2}× ({}).**\n",
            if ratio >= 2.0 { "met" } else { "not met" }
        );
        let _ = writeln!(
            m,
            "One value per run: the best REQUEST-ACK rate perfdhcp measured in that run's sweep of offered rates \
             (`-r` {FIRST_RATE}, +{RATE_STEP}, … until {} points in a row fall below {:.0} % of the offered rate), \
             offered to the primary; {} runs per pair, {} s of load per point, pairs interleaved, both servers \
             started fresh with empty lease files for every point and loaded only once both were in hot-standby \
             (their log and their `ha-heartbeat` answer to the partner). After every point both are stopped and \
             the standby's lease file must hold at least {:.0} % as many live leases as perfdhcp received ACKs, or \
             the benchmark fails. CPU per ACK: user + system time of both server processes during the \
             {REFERENCE_RATE}/s point, divided by the ACKs perfdhcp received; the standby's own share in \
             brackets.\n",
            alloc::PATIENCE,
            alloc::SATURATED * 100.0,
            self.reps,
            self.seconds,
            REPLICATED * 100.0
        );
        let kea = format!(
            "- Kea {} with `libdhcp_lease_cmds.so` and `libdhcp_ha.so`; both pairs configured by \
             `lab/venus/lobezno.json` / `tormenta.json` (widened as in `bench alloc`): {}",
            self.setup.kea_version, self.ha_params
        );
        self.setup.markdown(&mut m, "", &kea);
        m
    }

    fn json(&self) -> String {
        let mut j = String::from("{\n");
        self.setup.json(&mut j);
        let _ = writeln!(j, "  \"ha\": {{{}}},", self.ha_params);
        let _ = writeln!(
            j,
            "  \"method\": {{\"reps\": {}, \"seconds_per_point\": {}, \"first_rate\": {FIRST_RATE}, \"rate_step\": {RATE_STEP}, \"reference_rate\": {REFERENCE_RATE}, \"saturated_below\": {}, \"replicated_at_least\": {REPLICATED}}},",
            self.reps,
            self.seconds,
            alloc::SATURATED
        );
        let head = |pair: Pair| {
            let (min, median, max) = spread(&self.bests(pair));
            format!(
                "\"key\": {}, \"label\": {}, \"min\": {min:.1}, \"median\": {median:.1}, \"max\": {max:.1}, \"ratio_to_kea_median\": {:.3}, \"cpu_us_per_ack_at_reference_rate\": {}, \"standby_cpu_us_per_ack_at_reference_rate\": {}",
                js(pair.key()),
                js(pair.label()),
                self.ratio(pair),
                self.cpu_per_ack_us(pair).map_or("null".into(), |us| format!("{us:.1}")),
                self.standby_cpu_per_ack_us(pair).map_or("null".into(), |us| format!("{us:.1}"))
            )
        };
        alloc::sweeps_json(&mut j, "pairs", &self.sweeps, head, point_json);
        j.push_str("}\n");
        j
    }
}

/// `bench alloc`'s point object with the pair's fields added.
fn point_json(p: &HaPoint) -> String {
    let load = alloc::point_json(&p.load);
    let load = load.strip_suffix('}').unwrap_or(&load);
    format!(
        "{load}, \"standby_cpu_s\": {:.2}, \"ready_s\": {:.2}, \"acks\": {}, \"primary_leases\": {}, \"standby_leases\": {}, \"missing_on_standby\": {}, \"states_after\": [{}, {}]}}",
        p.standby_cpu_s,
        p.ready_s,
        p.load.report.request_ack.received,
        p.primary_leases,
        p.standby_leases,
        p.missing_on_standby,
        js(&p.states_after[0]),
        js(&p.states_after[1])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let o = Opts::defaults();
        assert_eq!((o.reps, o.seconds, o.no_xdp), (3, 2, false));
    }

    #[test]
    fn heartbeat_state_is_read_from_kea_and_xdhcpd_answers() {
        let kea = r#"[ { "arguments": { "date-time": "Tue, 01 Dec 2026 10:00:00 GMT", "scopes": [ "lobezno" ], "state": "hot-standby", "unsent-update-count": 0 }, "result": 0, "text": "HA peer status returned." } ]"#;
        assert_eq!(json_string_field(kea, "state").as_deref(), Some("hot-standby"));
        assert_eq!(json_string_field(r#"{"state":"partner-down"}"#, "state").as_deref(), Some("partner-down"));
        assert_eq!(json_string_field(r#"{"result": 1}"#, "state"), None);
    }

    #[test]
    fn live_leases_take_the_last_row_per_address() {
        let path = std::env::temp_dir().join(format!("xtask-ha-leases-{}.csv", std::process::id()));
        std::fs::write(
            &path,
            "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
             192.168.64.1,00:01,,3600,100,1,0,0,,0,\n\
             192.168.64.2,00:02,,3600,100,1,0,0,,0,\n\
             192.168.64.2,00:02,,0,100,1,0,0,,0,\n\
             192.168.64.3,00:03,,3600,100,1,0,0,,2,\n\
             192.168.64.1,00:01,,3600,200,1,0,0,,0,\n",
        )
        .unwrap();
        let live = live_leases(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(live.into_iter().collect::<Vec<_>>(), ["192.168.64.1"]);
        assert!(live_leases(Path::new("/nonexistent/leases4.csv")).unwrap().is_empty());
    }
}
