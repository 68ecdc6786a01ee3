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

mod method;
mod report;
mod results;

use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use lab::{Kea, KeaConfig, Lab, venus};

use super::{Running, findmnt, remove_lease_files};

pub(super) use method::{
    Point, Sweep, clock_ticks, config, drive, interleaved, note_attach_mode, own_cores, prepare, start_xdhcpd, sweep,
};
pub(super) use report::{Setup, at_best, cpu_per_ack_us, drop_pct, point_json, sweeps_json};
pub use results::Results;

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
