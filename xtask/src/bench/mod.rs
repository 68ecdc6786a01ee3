//! `cargo xtask bench [<section>]`: measurements in the venus lab (every
//! section when none is named, with its default options), each
//! written as a section of `BENCHMARKS.md` (between markers, the rest of
//! the file is kept) and as `bench/<section>.json`.
//!
//! - [`alloc`]: completed DORA/s, xdhcpd vs Kea 2.2, perfdhcp.
//! - [`classes`]: allocations/s of xdhcpd with ten client classes vs
//!   none, the cost of classification.
//! - [`ha`]: completed DORA/s through a hot-standby pair, xdhcpd pair vs
//!   Kea 2.2 pair, perfdhcp, replication checked per point.
//! - [`renew`]: renewals/s answered, XDP vs `--no-xdp` vs Kea 2.2 vs a
//!   bare XDP_TX echo, `lab::loadgen`.
//! - [`startup`]: start-up with 1,000,000 leases and memory per lease,
//!   xdhcpd (XDP, `--no-xdp`) vs Kea 2.2.
//! - [`failover`]: client-visible outage when the serving server of a
//!   pair fails, xdhcpd vs a Kea 2.2 pair, from the HA drills.
//! - [`transition`]: ACK delays and drops of a loaded hot-standby pair
//!   with many leases through dhcp-disable/-enable, a config-reload and a
//!   partner-down transition (not in the run of every section: it kills
//!   a server on purpose and takes a while to load its leases).
//! - [`sql`]: completed DORA/s with the leases in PostgreSQL, Kea 2.2 vs
//!   xdhcpd, and 1, 2 and 3 xdhcpd servers on one database.
//! - [`goals`]: every target of the issues beside the last measured ratio,
//!   rewritten after any section (read from `bench/*.json`).
//!
//! Each section is a `measure` function returning its results and a
//! `section()` rendering them, so a run of every section is a loop over
//! them. Shared here: process control, machine description, statistics,
//! the markdown and JSON writers.

pub mod alloc;
pub mod classes;
pub mod failover;
pub mod goals;
pub mod ha;
pub mod renew;
pub mod sql;
pub mod startup;
pub mod transition;

use std::{fmt::Write as _, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use lab::{Kea, Process};

use crate::workspace_root;

/// Bound on server start-up and shutdown.
pub const T: Duration = Duration::from_secs(15);

/// `cargo xtask bench …`
#[derive(clap::Args)]
pub struct Args {
    /// One section; every section (default options) when left out.
    #[command(subcommand)]
    what: Option<What>,
}

/// Default options of `bench renew`, for the run of every section.
#[derive(clap::Parser)]
struct RenewDefaults {
    #[command(flatten)]
    opts: renew::Opts,
}

#[derive(Subcommand)]
enum What {
    /// Completed DORA/s of xdhcpd (--no-xdp, XDP) and Kea 2.2, same config,
    /// perfdhcp in the venus lab; writes BENCHMARKS.md and bench/alloc.json.
    Alloc {
        /// Runs per server (each a full rate sweep, fresh lease files).
        #[arg(long, default_value_t = 3)]
        reps: u32,
        /// Seconds of load per offered rate.
        #[arg(long, default_value_t = 2)]
        seconds: u32,
    },
    /// Allocations/s of xdhcpd --no-xdp with ten client classes against
    /// none, same sweep as alloc; writes BENCHMARKS.md and bench/classes.json.
    Classes {
        /// Runs per variant.
        #[arg(long, default_value_t = 3)]
        reps: u32,
        /// Seconds of load per offered rate.
        #[arg(long, default_value_t = 2)]
        seconds: u32,
    },
    /// Completed DORA/s through a hot-standby pair (lobezno primary,
    /// tormenta standby): xdhcpd pair (XDP) vs Kea 2.2 pair with libdhcp_ha,
    /// same configs, perfdhcp; writes BENCHMARKS.md and bench/ha.json.
    Ha(ha::Opts),
    /// Renewals/s answered: xdhcpd with XDP, --no-xdp, Kea 2.2 and a bare
    /// XDP_TX echo, same leases, lab::loadgen in the venus lab; writes
    /// BENCHMARKS.md and bench/renew.json.
    Renew(renew::Opts),
    /// Start-up with 1,000,000 leases in the lease file, and memory per
    /// lease: xdhcpd (XDP, --no-xdp) and Kea 2.2, same config and file, in
    /// the venus lab; writes BENCHMARKS.md and bench/startup.json.
    Startup {
        /// Leases in the lease file.
        #[arg(long, default_value_t = 1_000_000)]
        leases: usize,
        /// Repeats per server (each an empty and a full start).
        #[arg(long, default_value_t = 3)]
        reps: u32,
    },
    /// Client-visible outage when the serving server fails: the xdhcpd
    /// pair's kill and freeze drills and a Kea 2.2 pair's kill drill;
    /// writes BENCHMARKS.md and bench/failover.json.
    Failover {
        /// Runs of every drill.
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// ACK delays and drops of a hot-standby pair with many leases under
    /// steady perfdhcp load, through dhcp-disable/-enable, a config-reload
    /// and a partner-down; writes BENCHMARKS.md and bench/transition.json.
    Transition(transition::Opts),
    /// Completed DORA/s with the leases in PostgreSQL: Kea 2.2 and xdhcpd
    /// (XDP) on the same database server and cores, and 1, 2 and 3 xdhcpd
    /// servers sharing the database; writes BENCHMARKS.md and
    /// bench/sql.json.
    Sql(sql::Opts),
    /// Only rewrites the goals table from the existing bench/*.json (every
    /// other section does this too).
    Goals,
}

/// Runs the benchmark named on the command line, or all of them.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(what) = &args.what else {
        // The renewal load generator wants an optimised build; the whole
        // run moves there.
        if renew::reexec_optimised()? {
            return Ok(());
        }
        println!("[bench] section alloc");
        publish(&alloc::measure(3, 2)?.section())?;
        println!("[bench] section ha");
        publish(&ha::measure(&ha::Opts::defaults())?.section())?;
        println!("[bench] section renew");
        let renew = <RenewDefaults as clap::Parser>::parse_from(["renew"]).opts;
        publish(&renew::measure(&renew)?.section())?;
        println!("[bench] section startup");
        publish(&startup::measure(1_000_000, 3)?.section())?;
        println!("[bench] section failover");
        publish(&failover::measure(3)?.section())?;
        return publish(&goals::section());
    };
    let section = match what {
        What::Goals => return publish(&goals::section()),
        What::Alloc { reps, seconds } => alloc::measure((*reps).max(1), (*seconds).max(1))?.section(),
        What::Classes { reps, seconds } => classes::measure((*reps).max(1), (*seconds).max(1))?.section(),
        What::Ha(opts) => ha::measure(opts)?.section(),
        What::Renew(opts) => {
            if renew::reexec_optimised()? {
                return Ok(());
            }
            renew::measure(opts)?.section()
        }
        What::Startup { leases, reps } => startup::measure(*leases, (*reps).max(1))?.section(),
        What::Failover { runs } => failover::measure((*runs).max(1))?.section(),
        What::Transition(opts) => transition::measure(opts)?.section(),
        What::Sql(opts) => sql::measure(opts)?.section(),
    };
    publish(&section)?;
    publish(&goals::section())
}

/// One section of BENCHMARKS.md and its JSON.
pub struct Section {
    /// Its name: the marker key and `bench/<key>.json`.
    pub key: &'static str,
    /// The generated markdown (between the markers).
    pub markdown: String,
    /// The full results as JSON.
    pub json: String,
}

/// Writes a section: `bench/<key>.json`, and its part of BENCHMARKS.md
/// between its markers (everything else in the file, other sections and
/// text written by hand, is kept).
pub fn publish(section: &Section) -> anyhow::Result<()> {
    let root = workspace_root();
    std::fs::create_dir_all(root.join("bench")).context("creating bench/")?;
    let json = root.join("bench").join(format!("{}.json", section.key));
    std::fs::write(&json, &section.json).with_context(|| format!("writing {}", json.display()))?;
    update_markdown(&root.join("BENCHMARKS.md"), section.key, &section.markdown)?;
    println!("wrote BENCHMARKS.md and bench/{}.json", section.key);
    Ok(())
}

/// Replaces section `key` of BENCHMARKS.md (between its markers), keeping
/// everything else; appends it if missing.
fn update_markdown(path: &Path, key: &str, section: &str) -> anyhow::Result<()> {
    let start = format!("<!-- bench:{key}:start (generated by `cargo xtask bench {key}`) -->");
    let end = format!("<!-- bench:{key}:end -->");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &old[..a], &old[b + end.len()..]),
        (None, None) => format!("{}\n\n{block}\n", old.trim_end()),
        _ => bail!("{}: unbalanced bench:{key} markers; fix by hand", path.display()),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// A server under test.
pub enum Running {
    /// xdhcpd.
    Xdhcpd(Process),
    /// kea-dhcp4.
    Kea(Box<Kea>),
}

impl Running {
    /// Its process id (for CPU time).
    pub fn pid(&mut self) -> u32 {
        match self {
            Running::Xdhcpd(p) => p.pid(),
            Running::Kea(k) => k.process().pid(),
        }
    }

    /// Stops it (SIGTERM, bounded wait).
    pub fn stop(self) -> anyhow::Result<()> {
        match self {
            Running::Xdhcpd(mut p) => p.stop(T).map(|_| ()),
            Running::Kea(mut k) => k.process().stop(T).map(|_| ()),
        }
    }
}

/// Removes `name` and its cleanup siblings (`name.1`, `.2`, `.completed`,
/// `.output`, pid files) so the next server starts empty.
pub fn remove_lease_files(dir: &Path, name: &str) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(name)) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

pub fn utf8(path: &Path) -> anyhow::Result<&str> {
    path.to_str().with_context(|| format!("non-UTF-8 path {}", path.display()))
}

/// CPU time (user + system) of process `pid` and all its threads so far.
pub fn cpu_seconds(pid: u32, clock_ticks: f64) -> anyhow::Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: state is the 3rd field
    // of the line, utime the 14th and stime the 15th.
    let rest = stat.rsplit_once(')').context("odd /proc/PID/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).context("odd /proc/PID/stat");
    Ok((ticks(11)? + ticks(12)?) / clock_ticks)
}

/// The machine as the report describes it.
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub kernel: String,
    pub load: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            load: load_average(),
        }
    }

    /// The report's lines on the machine: cores, CPU, kernel, and the load
    /// before (at the probe) and `load_after`.
    pub fn markdown(&self, load_after: &str) -> String {
        format!(
            "- Machine: {} cores ({}), kernel {}\n- Load average (1/5/15 min) before: {}, after: {load_after} — a \
             shared machine; other people's builds run meanwhile\n",
            self.cores, self.cpu, self.kernel, self.load
        )
    }

    /// The JSON `"machine"` object, with the lease files' filesystem.
    pub fn json(&self, load_after: &str, lease_fs: &str) -> String {
        format!(
            "{{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"load_before\": {}, \"load_after\": {}, \"lease_fs\": {}}}",
            self.cores,
            js(&self.cpu),
            js(&self.kernel),
            js(&self.load),
            js(load_after),
            js(lease_fs)
        )
    }
}

pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// First line of a command's output, or what went wrong.
pub fn command_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) => {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned()
        }
        Err(e) => format!("({program}: {e})"),
    }
}

/// Filesystem, device and options under `dir` (where fsync goes).
pub fn findmnt(dir: &Path) -> String {
    let line = command_line("findmnt", &["-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", &dir.to_string_lossy()]);
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The commit xdhcpd was built from, flagged when the daemon's sources had
/// uncommitted changes (others work in the same tree).
pub fn commit() -> String {
    let root = workspace_root();
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&root)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]).ok().filter(|h| !h.is_empty()) else {
        // A clean `git archive` export (others' uncommitted work left out)
        // has no .git: whoever exported it says what it is.
        return match std::env::var("XDHCP_BENCH_COMMIT") {
            Ok(c) if !c.is_empty() => c,
            _ => "unknown commit (not a git checkout; set XDHCP_BENCH_COMMIT)".into(),
        };
    };
    let dirty = git(&["status", "--porcelain", "--", "dhcp-user/src", "dhcp-common", "dhcp-ebpf", "Cargo.lock"])
        .is_ok_and(|s| !s.is_empty());
    if dirty { format!("{head} + uncommitted daemon changes") } else { head }
}

/// min, median, max.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
    (v[0], median, v[v.len() - 1])
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renew_defaults_parse() {
        let _ = <RenewDefaults as clap::Parser>::try_parse_from(["renew"]).unwrap();
    }

    #[test]
    fn spread_and_json_strings() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0]), (1.0, 2.5, 4.0));
        assert_eq!(js("a \"b\"\\\n"), "\"a \\\"b\\\"\\\\\\n\"");
    }

    #[test]
    fn markdown_sections_are_replaced_in_place_and_kept_apart() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, "# B\n\nintro\n").unwrap();
        update_markdown(&path, "alloc", "one\n").unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with("# B\n\nintro\n\n") && first.contains("one\n"), "{first}");
        std::fs::write(&path, format!("{first}\n## Analysis\nkept\n")).unwrap();
        update_markdown(&path, "renew", "other\n").unwrap();
        update_markdown(&path, "alloc", "two\n").unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(
            second.contains("two\n") && !second.contains("one\n") && second.contains("## Analysis\nkept"),
            "{second}"
        );
        assert!(second.contains("<!-- bench:renew:start") && second.contains("other\n"), "{second}");
        std::fs::write(&path, second.replace("<!-- bench:renew:end -->", "")).unwrap();
        assert!(update_markdown(&path, "renew", "x\n").is_err(), "unbalanced markers are refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
