//! One timed start of one server and the probes it needs: its log
//! phases, Kea's control socket, /proc memory and the kernel map's memlock.

use std::{
    io::{Read as _, Write as _},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use lab::{Kea, Process, venus};

use super::{Bench, KEA_LEASES, MAP_CAPACITY, POLL, READY_TIMEOUT, SETTLE, STOP_TIMEOUT, Server, Start, XDHCPD_LEASES};
use crate::bench::{Running, command_line, load_average, remove_lease_files, utf8};

impl Bench {
    /// Starts `server` in lobezno with a fresh copy of the full or empty
    /// lease file, times it until ready, checks the load, reads its memory
    /// and stops it.
    pub(super) fn start(&mut self, server: Server, full: bool) -> anyhow::Result<Start> {
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
pub(super) fn number_after(s: &str) -> Option<u64> {
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
