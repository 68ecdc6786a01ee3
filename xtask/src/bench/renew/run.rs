//! One measured run of a target: start it fresh, warm up, load it, read
//! the CPU times and xdhcpd's own count of ACKs on the way out.

use std::time::Duration;

use anyhow::{Context as _, bail};
use lab::loadgen::{self, Options};
use lab::{Kea, venus};

use super::{Bench, LOADGEN_HOST, Run, Target};
use crate::bench::{Running, T, cpu_seconds, load_average, remove_lease_files, utf8};

impl Bench {
    pub(super) fn run(&mut self, target: Target, rep: u32) -> anyhow::Result<Run> {
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
pub(super) fn answered_acks(log: &str) -> Option<u64> {
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
pub(super) fn parse_cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|f| f.parse().unwrap_or(0)).collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}
