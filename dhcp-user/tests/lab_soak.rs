//! The soak: an xdhcpd hot-standby pair in the `venus` lab, XDP attached,
//! under continuous mixed load while a fault is injected every 10–30 s at
//! random, for `XDHCP_SOAK_SECONDS` (default 120). `cargo xtask soak
//! --minutes N` runs it and writes the report into `bench/soak.json`;
//! `cargo xtask test` runs the 2-minute version.
//!
//! # Layout
//!
//! - Load, every source bounded in time (the deadline) and count:
//!   - real dhclient in mutante1..5 (mutante3 has its reservation): each
//!     re-obtains its lease (`dhclient -1`: an INIT-REBOOT the kernel
//!     answers, a DISCOVER after a release) or, one time in eight,
//!     releases it;
//!   - perfdhcp in mutante7, a relay (giaddr 192.168.50.250) for 200
//!     clients: new DORAs, renewals (`-f`) and releases (`-F`), in periods
//!     of at most 30 s, broadcast so whichever server serves answers;
//!   - a scripted client in mutante6: DORA for a fresh random MAC, then
//!     DECLINE of what it was ACKed, every ~4 s.
//! - Faults, one at a time on a random server: SIGKILL then restart from
//!   its lease file, SIGSTOP/SIGCONT, its HA link cut and restored, its
//!   lease file's tmpfs (16 MiB) filled for a few seconds. After each, the
//!   test waits (bounded) until both servers are back in hot-standby.
//! - A sampler reads each server's RSS and open file descriptors every
//!   [`SAMPLE_EVERY`] and its counters from `/metrics`.
//! - At the end (load stopped, both servers stopped gracefully): every
//!   dhclient client's newest ACKed lease is in both lease files (same
//!   hardware address, active, expiring no earlier than the client was
//!   told), no address is held by two clients (neither among the clients
//!   nor across the two files: a live address held by different clients
//!   in each), both servers were back in hot-standby, and
//!   RSS and fds after warm-up stay flat ([`flatness`]; asserted from
//!   [`FLAT_FROM_S`] on, reported always).
//!
//! `XDHCP_SOAK_SEED=<n>` replays a run's fault sequence; the report goes
//! to stderr and to `$XDHCP_SOAK_REPORT` when set.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{RawClient, Xdhcpd, msg_type, request, server_id, with_broadcast_flag};
use dhcproto::v4::{DhcpOption, MessageType};
use lab::rng::Rng;
use lab::{Lab, Lease, Tmpfs, venus};
use serde_json::json;

/// Run length, seconds.
const SECONDS_ENV: &str = "XDHCP_SOAK_SECONDS";
/// File the JSON report is written to.
const REPORT_ENV: &str = "XDHCP_SOAK_REPORT";
/// Seed of the fault sequence.
const SEED_ENV: &str = "XDHCP_SOAK_SEED";
/// Faults to draw from, comma-separated (`kill,stop,cut,disk`; default all).
const FAULTS_ENV: &str = "XDHCP_SOAK_FAULTS";
/// Every kind of fault, in the order drawn.
const FAULTS: [&str; 4] = ["kill", "stop", "cut", "disk"];
/// Bound on both servers returning to hot-standby after a fault.
const RECOVER: Duration = Duration::from_secs(90);
/// Fewest and most seconds of plain load between two faults.
const GAP_S: (u64, u64) = (10, 30);
/// How often RSS, fds and counters are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Allowed growth from the first half's peak RSS to the second half's median.
const RSS_GROWTH: f64 = 1.10;
/// Plus this much, for allocator noise on a small heap.
const RSS_SLACK_KB: u64 = 4096;
/// Allowed growth from the first half's peak of open fds to the second half's median.
const FD_GROWTH: u64 = 4;
/// Flatness is asserted from this run length on: a shorter run has too few
/// faults for its first half to have filled every pool.
const FLAT_FROM_S: u64 = 600;
/// Size of each server's lease-file tmpfs.
const TMPFS_BYTES: u64 = 16 << 20;
/// dhclient clients (mutante1..5), the decliner and the perfdhcp relay.
const DHCLIENTS: usize = 5;
const DECLINER: usize = 6;
const RELAY: usize = 7;
const RELAY_ADDR: &str = "192.168.50.250/24";
/// perfdhcp's clients and its rates per second (exchanges, renewals, releases).
const PERF_CLIENTS: &str = "200";
const PERF_RATE: (&str, &str, &str) = ("20", "4", "2");
/// What a client is told and the store may round: see `common::drill`.
const EXPIRE_SLACK: u64 = 2;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Both servers' configs: venus's, the subnet widened to a /16 (perfdhcp
/// relays from the LAN and the subnet is chosen by giaddr, as in
/// `lab_perfdhcp`) with a second pool for perfdhcp's clients, leases of 5
/// minutes (nothing a client holds expires during a fault), a 60 s decline
/// probation (declined addresses come back), lease file cleanup every 20 s
/// (the file stays small on its tmpfs).
fn config(host: &str) -> lab::KeaConfig {
    let mut cfg = venus::kea_config(host).unwrap();
    cfg.set("/Dhcp4/subnet4/0/subnet", json!("192.168.0.0/16")).unwrap();
    cfg.set(
        "/Dhcp4/subnet4/0/pools",
        json!([{ "pool": "192.168.50.100-192.168.50.199" }, { "pool": "192.168.64.0-192.168.65.255" }]),
    )
    .unwrap();
    cfg.set("/Dhcp4/valid-lifetime", json!(300)).unwrap();
    cfg.set("/Dhcp4/renew-timer", json!(150)).unwrap();
    cfg.set("/Dhcp4/rebind-timer", json!(225)).unwrap();
    cfg.set("/Dhcp4/decline-probation-period", json!(60)).unwrap();
    cfg.set("/Dhcp4/lease-database/lfc-interval", json!(20)).unwrap();
    cfg
}

/// One server of the pair: its process, lease tmpfs and config.
struct Server {
    host: &'static str,
    x: Xdhcpd,
    tmpfs: Tmpfs,
    cfg: lab::KeaConfig,
}

impl Server {
    fn start(lab: &Lab, host: &'static str) -> Server {
        let tmpfs = Tmpfs::mount(&lab.host_dir(host).unwrap().join("leases"), TMPFS_BYTES).unwrap();
        let cfg = config(host);
        let x = Xdhcpd::start_with_leases(lab, host, &cfg, &tmpfs.path().join("leases4.csv"), &[]);
        Server { host, x, tmpfs, cfg }
    }

    fn restart(&mut self, lab: &Lab) {
        self.x = Xdhcpd::start_with_leases(lab, self.host, &self.cfg, &self.x.leases.clone(), &[]);
    }
}

/// This server's HA state per `status-get` on its control listener
/// (`None` while it does not answer).
fn ha_state(lab: &Lab, host: &str) -> Option<String> {
    let out = lab
        .run(host, &[
            "curl",
            "-sS",
            "--max-time",
            "3",
            "-d",
            r#"{"command":"status-get"}"#,
            &format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR),
        ])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let v = if v.is_array() { v[0].clone() } else { v };
    v.pointer("/arguments/high-availability/0/ha-servers/local/state")?.as_str().map(str::to_owned)
}

/// Waits until both servers report hot-standby; returns the seconds it took.
fn wait_normal(lab: &Lab) -> anyhow::Result<f64> {
    let started = Instant::now();
    lab::wait_until("both servers back in hot-standby", RECOVER, || {
        let ok = [venus::PRIMARY, venus::STANDBY].iter().all(|h| ha_state(lab, h).as_deref() == Some("hot-standby"));
        Ok(ok.then_some(()))
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// One sample of one server process.
#[derive(Clone, Debug)]
struct Sample {
    t: f64,
    host: &'static str,
    pid: u32,
    rss_kb: u64,
    fds: u64,
}

/// `VmRSS` (kB) and open fds of `pid`, `None` once it is gone.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// `GET /metrics` from `host`'s control listener; `None` while it does
/// not answer (frozen, restarting).
fn metrics(lab: &Lab, host: &str) -> Option<String> {
    let url = format!("http://{}/metrics", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    lab.run(host, &["curl", "-sS", "--max-time", "3", &url]).ok().map(|o| o.stdout)
}

/// What `pid`'s open fds point at, counted by kind (`socket`,
/// `anon_inode:bpf-map`, a file's path…), to tell a leak's source.
fn fd_kinds(pid: u32) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else { continue };
        let t = target.to_string_lossy();
        let kind = if t.starts_with("socket:") || t.starts_with("pipe:") { t.split(':').next().unwrap_or("") } else { &t };
        *kinds.entry(kind.to_owned()).or_insert(0) += 1;
    }
    kinds
}

/// TCP sockets in `host`, counted by state, local and remote port (the
/// HA listener is 8000, the control listener 8067): which side holds what.
fn tcp_states(lab: &Lab, host: &str) -> BTreeMap<String, u64> {
    let mut states = BTreeMap::new();
    let Ok(out) = lab.run(host, &["ss", "-tanH"]) else { return states };
    for l in out.stdout.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |i: usize| f.get(i).and_then(|a| a.rsplit(':').next()).unwrap_or("?");
        let (local, remote) = (port(3), port(4));
        // Ephemeral ports as one bucket.
        let bucket = |p: &str| if p.parse::<u32>().is_ok_and(|n| n >= 32768) { "eph".to_owned() } else { p.to_owned() };
        let key = format!("{} {}->{}", f.first().unwrap_or(&"?"), bucket(local), bucket(remote));
        *states.entry(key).or_insert(0) += 1;
    }
    states
}

/// Counters of one server process from `/metrics`: ACKs the kernel sent
/// (renewals of known leases and reserved clients), ACKs the daemon sent.
fn ack_counters(lab: &Lab, host: &str) -> Option<(u64, u64)> {
    let text = metrics(lab, host)?;
    let value = |l: &str| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).map(|v| v as u64);
    let (mut xdp, mut user, mut seen) = (0, 0, false);
    for l in text.lines() {
        if l.starts_with("xdhcp_packets_total{")
            && l.contains(r#"path="xdp""#)
            && (l.contains(r#"type="answered_ack""#) || l.contains(r#"type="answered_reserved_ack""#))
        {
            xdp += value(l)?;
        } else if l.starts_with("xdhcp_replies_total{") && l.contains(r#"type="ack""#) {
            user += value(l)?;
            seen = true;
        }
    }
    seen.then_some((xdp, user))
}

/// Samples every server process until `stop`: usage per process, and the
/// newest ACK counters per process (they restart at 0 with the process).
struct Sampler {
    pids: Arc<Mutex<BTreeMap<&'static str, u32>>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    acks: Arc<Mutex<BTreeMap<u32, (u64, u64)>>>,
}

impl Sampler {
    fn spawn<'s>(
        sc: &'s std::thread::Scope<'s, '_>,
        lab: &'s Lab,
        start: Instant,
        stop: &'s AtomicBool,
    ) -> (Sampler, std::thread::ScopedJoinHandle<'s, ()>) {
        let s = Sampler { pids: Arc::default(), samples: Arc::default(), acks: Arc::default() };
        let (pids, samples, acks) = (s.pids.clone(), s.samples.clone(), s.acks.clone());
        let handle = sc.spawn(move || {
            // Bounded by the test's own length (a run is at most a few hours).
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let now: Vec<(&'static str, u32)> = pids.lock().unwrap().iter().map(|(h, p)| (*h, *p)).collect();
                for (host, pid) in now {
                    if let Some((rss_kb, fds)) = proc_usage(pid) {
                        let t = start.elapsed().as_secs_f64();
                        samples.lock().unwrap().push(Sample { t, host, pid, rss_kb, fds });
                    }
                    if let Some(c) = ack_counters(lab, host) {
                        acks.lock().unwrap().insert(pid, c);
                    }
                }
                let next = Instant::now() + SAMPLE_EVERY;
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
        (s, handle)
    }

    fn track(&self, host: &'static str, pid: u32) {
        self.pids.lock().unwrap().insert(host, pid);
    }
}

/// Whether usage stayed flat after warm-up: per server, the second half's
/// median against the first half's peak. Medians, because a fault's
/// moment briefly opens sockets and allocates; the first half's peak,
/// because bounded pools (up to `peer::client::CONNECTIONS` HA connections
/// each way) fill at the first fault that needs them and then stay: a
/// leak keeps climbing past them. One line per finding.
fn flatness(samples: &[Sample], warmup: f64, end: f64) -> Vec<String> {
    let mid = warmup + (end - warmup) / 2.0;
    let mut problems = Vec::new();
    for host in [venus::PRIMARY, venus::STANDBY] {
        let half = |from: f64, to: f64, f: fn(&Sample) -> u64| {
            let mut v: Vec<u64> = samples.iter().filter(|s| s.host == host && s.t >= from && s.t < to).map(f).collect();
            v.sort_unstable();
            Some((v.get(v.len() / 2).copied()?, *v.last()?))
        };
        let (Some((_, r1)), Some((r2, _))) = (half(warmup, mid, |s| s.rss_kb), half(mid, f64::MAX, |s| s.rss_kb)) else {
            problems.push(format!("{host}: too few samples after warm-up"));
            continue;
        };
        let (f1, f2) = (half(warmup, mid, |s| s.fds).map_or(0, |h| h.1), half(mid, f64::MAX, |s| s.fds).map_or(0, |h| h.0));
        if r2 as f64 > r1 as f64 * RSS_GROWTH + RSS_SLACK_KB as f64 {
            problems.push(format!("{host}: RSS median {r2} kB in the second half, first half's peak {r1} kB"));
        }
        if f2 > f1 + FD_GROWTH {
            problems.push(format!("{host}: open fds median {f2} in the second half, first half's peak {f1}"));
        }
    }
    problems
}

/// What each dhclient client did and holds.
#[derive(Default, Debug)]
struct ClientLog {
    obtains: u64,
    answered: u64,
    releases: u64,
    /// The lease it holds now (newest ACK), `None` after a release.
    held: Option<Lease>,
}

/// A dhclient client's loop: re-obtain (mostly) or release, until the
/// deadline or its bound on attempts.
fn dhclient_loop(lab: &Lab, n: usize, seed: u64, deadline: Instant, stop: &AtomicBool) -> ClientLog {
    let host = venus::client(n);
    let dh = lab.dhclient(&host).unwrap();
    let mut rng = Rng::new(seed);
    let mut log = ClientLog::default();
    for _ in 0..20_000 {
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        if log.held.is_some() && rng.range(1, 8) == 1 && n != venus::RESERVED_CLIENT {
            if dh.release(Duration::from_secs(2)).is_ok() {
                log.releases += 1;
                log.held = None;
            }
        } else {
            log.obtains += 1;
            if dh.obtain(Duration::from_secs(3)).is_ok() {
                log.answered += 1;
                // The script's newest event: the lease file lags renewals.
                log.held = dh.events().ok().and_then(|e| e.into_iter().rev().find_map(|e| e.lease));
            }
        }
        std::thread::sleep((started + Duration::from_millis(700)).saturating_duration_since(Instant::now()));
    }
    log
}

/// The decliner: DORA for a fresh MAC, then DECLINE; returns (ACKed, declined).
fn decline_loop(lab: &Lab, seed: u64, deadline: Instant, stop: &AtomicBool) -> (u64, u64) {
    let host = venus::client(DECLINER);
    let mac = venus::client_mac(DECLINER).0;
    let c = RawClient::open(lab, &host, "eth0", mac);
    let mut rng = Rng::new(seed);
    let (mut acked, mut declined) = (0, 0);
    for _ in 0..5_000 {
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let mut mac = [0x02, 0x5e, 0, 0, 0, 0];
        mac[2..].copy_from_slice(&(rng.next() as u32).to_be_bytes());
        let xid = rng.next() as u32;
        let offer = c.exchange(&with_broadcast_flag(request(MessageType::Discover, mac, xid)), Duration::from_secs(2));
        if let Some(offer) = offer.filter(|m| msg_type(m) == Some(MessageType::Offer)) {
            let (addr, sid) = (offer.yiaddr(), server_id(&offer).unwrap_or(Ipv4Addr::UNSPECIFIED));
            let mut req = with_broadcast_flag(request(MessageType::Request, mac, xid));
            req.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
            req.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
            if c.exchange(&req, Duration::from_secs(2)).is_some_and(|m| msg_type(&m) == Some(MessageType::Ack)) {
                acked += 1;
                let mut d = request(MessageType::Decline, mac, xid.wrapping_add(1));
                d.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
                d.opts_mut().insert(DhcpOption::ServerIdentifier(sid));
                c.send(&d, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67));
                declined += 1;
            }
        }
        std::thread::sleep((started + Duration::from_secs(4)).saturating_duration_since(Instant::now()));
    }
    (acked, declined)
}

/// perfdhcp's totals over its runs.
#[derive(Default, Debug, Clone, Copy)]
struct PerfTotals {
    runs: u64,
    /// Runs without a report.
    failed: u64,
    discovers: u64,
    offers: u64,
    requests: u64,
    acks: u64,
}

/// perfdhcp in periods of at most 30 s until the deadline.
fn perfdhcp_loop(lab: &Lab, deadline: Instant, stop: &AtomicBool) -> PerfTotals {
    let host = venus::client(RELAY);
    lab.run(&host, &["ip", "addr", "add", RELAY_ADDR, "dev", "eth0"]).unwrap();
    let mut t = PerfTotals::default();
    for _ in 0..10_000 {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        if left < 3 || stop.load(Ordering::Relaxed) {
            break;
        }
        let period = left.min(30).to_string();
        let (rate, renew, release) = PERF_RATE;
        // -l eth0 without a server: relayed from eth0's address, sent to
        // the broadcast address, so the standby serves when it must.
        let argv = [
            "-4", "-l", "eth0", "-r", rate, "-f", renew, "-F", release, "-R", PERF_CLIENTS, "-p", &period, "-d", "5",
            "-d", "5", "-W", "2000000",
        ];
        let out = match lab.cmd(&host, "perfdhcp").args(argv).timeout(Duration::from_secs(90)).output() {
            Ok(out) => out,
            Err(e) => {
                eprintln!("soak: perfdhcp: {e:#}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Some(r) = lab::perfdhcp::parse_report(&out.stdout) {
            t.runs += 1;
            t.discovers += r.discover_offer.sent;
            t.offers += r.discover_offer.received;
            t.requests += r.request_ack.sent;
            t.acks += r.request_ack.received;
        } else {
            t.failed += 1;
            if t.failed <= 2 {
                eprintln!("soak: perfdhcp gave no report:\n{out}");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    t
}

/// One injected fault.
#[derive(Debug)]
struct FaultRecord {
    at: f64,
    what: String,
    /// Seconds from undoing the fault to both servers in hot-standby.
    recovered: Option<f64>,
}

/// The current row per address of a memfile store: its files in Kea's
/// load order (lease file cleanup leaves older rows in `.2`/`.1`/
/// `.completed`), the last row winning.
fn current_rows(path: &Path) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let files = dhcp_user::leases::LeaseFiles::new(path).load_order();
    let rows = files.iter().flat_map(|f| common::lease_rows(f));
    rows.filter_map(|r| Some((r.first()?.parse().ok()?, r))).collect()
}

/// Live rows (state 0, not expired, not a deletion): address → hwaddr.
fn live(rows: &BTreeMap<Ipv4Addr, Vec<String>>, now: u64) -> BTreeMap<Ipv4Addr, String> {
    rows.iter()
        .filter(|(_, r)| {
            r.get(9).map(String::as_str) == Some("0")
                && r.get(3).is_some_and(|v| v != "0")
                && r.get(4).and_then(|e| e.parse::<u64>().ok()).is_some_and(|e| e > now)
        })
        .map(|(a, r)| (*a, r[1].clone()))
        .collect()
}

#[test]
#[ignore = "long: `cargo xtask soak --minutes N` (and `cargo xtask test`, 2 minutes) run it"]
fn soak_ha_pair_under_load_and_faults() {
    let seconds: u64 = std::env::var(SECONDS_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let seed: u64 = std::env::var(SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| Rng::seeded().next());
    eprintln!("soak: {seconds} s, seed {seed} ({SEED_ENV}={seed} to replay the faults)");
    let mut rng = Rng::new(seed);
    let kinds: Vec<&str> = match std::env::var(FAULTS_ENV) {
        Ok(list) if !list.is_empty() => {
            FAULTS.into_iter().filter(|f| list.split(',').any(|k| k.trim() == *f)).collect()
        }
        _ => FAULTS.to_vec(),
    };
    assert!(!kinds.is_empty(), "{FAULTS_ENV} names none of {FAULTS:?}");

    let lab = Lab::up(venus::topology(RELAY).unwrap()).unwrap();
    let mut servers = [Server::start(&lab, venus::PRIMARY), Server::start(&lab, venus::STANDBY)];
    wait_normal(&lab).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&servers)));

    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let stop = AtomicBool::new(false);
    let mut faults: Vec<FaultRecord> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut withheld = 0u64;
    let (logs_, declines, perf, ha_final, state, fds, tcp, end, sampler) = std::thread::scope(|sc| {
        let (sampler, sampler_thread) = Sampler::spawn(sc, &lab, start, &stop);
        for s in &servers {
            sampler.track(s.host, s.x.process.pid());
        }
        let (lab, stop_ref) = (&lab, &stop);
        let clients: Vec<_> = (1..=DHCLIENTS)
            .map(|n| {
                let seed = rng.next();
                sc.spawn(move || dhclient_loop(lab, n, seed, deadline, stop_ref))
            })
            .collect();
        let seed = rng.next();
        let decliner = sc.spawn(move || decline_loop(lab, seed, deadline, stop_ref));
        let perf = sc.spawn(move || perfdhcp_loop(lab, deadline, stop_ref));

        loop {
            let gap = Duration::from_secs(rng.range(GAP_S.0, GAP_S.1));
            if Instant::now() + gap + Duration::from_secs(15) >= deadline {
                break;
            }
            std::thread::sleep(gap);
            let i = rng.range(0, 1) as usize;
            let (host, at) = (servers[i].host, start.elapsed().as_secs_f64());
            let what = match kinds[rng.range(0, kinds.len() as u64 - 1) as usize] {
                "kill" => {
                    servers[i].x.process.kill().unwrap();
                    std::thread::sleep(Duration::from_millis(rng.range(500, 5000)));
                    servers[i].restart(lab);
                    sampler.track(host, servers[i].x.process.pid());
                    format!("{host} SIGKILL, restarted from its lease file")
                }
                "stop" => {
                    let ms = rng.range(1000, 8000);
                    servers[i].x.process.pause().unwrap();
                    std::thread::sleep(Duration::from_millis(ms));
                    servers[i].x.process.resume().unwrap();
                    format!("{host} SIGSTOP for {:.1} s", ms as f64 / 1000.0)
                }
                "cut" => {
                    let ms = rng.range(2000, 10_000);
                    lab.cut_link(host, venus::HA).unwrap();
                    std::thread::sleep(Duration::from_millis(ms));
                    lab.restore_link(host, venus::HA).unwrap();
                    format!("{host} HA link cut for {:.1} s", ms as f64 / 1000.0)
                }
                _ => {
                    let ms = rng.range(1000, 5000);
                    let before = store_failures(lab, host);
                    let filler = servers[i].tmpfs.fill().unwrap();
                    std::thread::sleep(Duration::from_millis(ms));
                    filler.release();
                    withheld += store_failures(lab, host).saturating_sub(before);
                    format!("{host} lease disk full for {:.1} s", ms as f64 / 1000.0)
                }
            };
            eprintln!("soak: {at:.1} s: {what}");
            let recovered = match wait_normal(lab) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!("after {what} at {at:.0} s: {e:#}"));
                    None
                }
            };
            for s in &mut servers {
                if !s.x.process.is_running() {
                    problems.push(format!("{} exited on its own after {what}:\n{}", s.host, s.x.process.log()));
                    s.restart(lab);
                    sampler.track(s.host, s.x.process.pid());
                }
            }
            faults.push(FaultRecord { at, what, recovered });
        }

        // Load ends at the deadline; then the pair must be in its normal state.
        let logs_: Vec<ClientLog> = clients.into_iter().map(|h| h.join().expect("a dhclient loop panicked")).collect();
        let declines = decliner.join().expect("the decliner panicked");
        let perf = perf.join().expect("the perfdhcp loop panicked");
        let ha_final = match wait_normal(lab) {
            Ok(_) => true,
            Err(e) => {
                problems.push(format!("at the end: {e:#}"));
                false
            }
        };
        // One more sample round, so the counters are final.
        std::thread::sleep(SAMPLE_EVERY + Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        sampler_thread.join().unwrap();
        let end = start.elapsed().as_secs_f64();
        let state = [venus::PRIMARY, venus::STANDBY].map(|h| ha_state(lab, h));
        let fds: BTreeMap<&str, BTreeMap<String, u64>> =
            servers.iter_mut().map(|s| (s.host, fd_kinds(s.x.process.pid()))).collect();
        let tcp: BTreeMap<&str, BTreeMap<String, u64>> = servers.iter().map(|s| (s.host, tcp_states(lab, s.host))).collect();
        (logs_, declines, perf, ha_final, state, fds, tcp, end, sampler)
    });
    let (declines_acked, declined) = declines;
    for s in &mut servers {
        s.x.stop();
    }

    // Every client's newest ACKed lease, in both stores.
    let now = unix_now();
    let stores: Vec<(&str, BTreeMap<Ipv4Addr, Vec<String>>)> =
        servers.iter().map(|s| (s.host, current_rows(&s.x.leases))).collect();
    let mut lost = Vec::new();
    let mut holders: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    let mut acked_checked = 0;
    for (i, log) in logs_.iter().enumerate() {
        let client = venus::client(i + 1);
        let Some(l) = &log.held else { continue };
        holders.entry(l.address).or_default().push(client.clone());
        let told = l.expire.and_then(|e| e.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        if told <= now {
            continue;
        }
        acked_checked += 1;
        let mac = venus::client_mac(i + 1).to_string();
        for (store, rows) in &stores {
            let why = match rows.get(&l.address) {
                None => Some("no row".to_owned()),
                Some(r) if r[3] == "0" => Some("deleted".to_owned()),
                Some(r) if r[1] != mac => Some(format!("hwaddr {}", r[1])),
                Some(r) if r[9] != "0" => Some(format!("state {}", r[9])),
                Some(r) if r[4].parse::<u64>().unwrap_or(0) + EXPIRE_SLACK < told => {
                    Some(format!("expires {}, the client was told {told}", r[4]))
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                lost.push(format!("{client}'s {} not in {store}'s store: {why}", l.address));
            }
        }
    }
    let duplicates: Vec<String> = holders
        .iter()
        .filter(|(_, cs)| cs.len() > 1)
        .map(|(a, cs)| format!("{a} held by {}", cs.join(" and ")))
        .collect();
    // No live address held by one client in one store and another client
    // in the other (both may have ACKed it). An address live in one store
    // only is counted, not a failure: a primary keeps a lease it wrote when
    // the update to its partner failed (partner frozen, link cut, disk
    // full there) and withholds the ACK, as Kea does; the dhclient clients'
    // ACKed leases are checked in both stores above.
    let (p, s) = (live(&stores[0].1, now + 5), live(&stores[1].1, now + 5));
    let (mut conflicts, mut one_sided) = (Vec::new(), Vec::new());
    for (a, hw) in &p {
        match s.get(a) {
            Some(h) if h == hw => {}
            Some(h) => conflicts.push(format!("{a}: {hw} on {}, {h} on {}", stores[0].0, stores[1].0)),
            None => one_sided.push(format!("{a}: {hw} on {} only", stores[0].0)),
        }
    }
    for (a, hw) in s.iter().filter(|(a, _)| !p.contains_key(a)) {
        one_sided.push(format!("{a}: {hw} on {} only", stores[1].0));
    }

    let samples = sampler.samples.lock().unwrap().clone();
    let warmup = (seconds as f64 * 0.25).min(120.0);
    let flat = flatness(&samples, warmup, end);
    let (xdp_acks, daemon_acks) = sampler.acks.lock().unwrap().values().fold((0, 0), |(x, u), (a, b)| (x + a, u + b));
    let totals = |f: fn(&ClientLog) -> u64| logs_.iter().map(f).sum::<u64>();
    let report = json!({
        "seconds": seconds,
        "seed": seed,
        "unix_time": unix_now(),
        "faults": faults.iter().map(|f| json!({"at_s": (f.at * 10.0).round() / 10.0, "what": f.what,
            "recovered_s": f.recovered.map(|r| (r * 10.0).round() / 10.0)})).collect::<Vec<_>>(),
        "fault_counts": {
            "kill_restart": faults.iter().filter(|f| f.what.contains("SIGKILL")).count(),
            "stop_cont": faults.iter().filter(|f| f.what.contains("SIGSTOP")).count(),
            "ha_link_cut": faults.iter().filter(|f| f.what.contains("link cut")).count(),
            "disk_full": faults.iter().filter(|f| f.what.contains("disk full")).count(),
        },
        "replies_withheld_disk_full": withheld,
        "load": {
            "dhclient_obtains": totals(|l| l.obtains),
            "dhclient_answered": totals(|l| l.answered),
            "dhclient_releases": totals(|l| l.releases),
            "declines": declined,
            "decline_dora_acked": declines_acked,
            "perfdhcp_runs": perf.runs,
            "perfdhcp_failed_runs": perf.failed,
            "perfdhcp_discovers": perf.discovers,
            "perfdhcp_offers": perf.offers,
            "perfdhcp_requests": perf.requests,
            "perfdhcp_acks": perf.acks,
            "xdp_acks": xdp_acks,
            "daemon_acks": daemon_acks,
        },
        "acked_leases_checked": acked_checked,
        "lost": lost,
        "duplicates": duplicates,
        "store_conflicts": conflicts,
        "one_sided_leases": one_sided,
        "ha_final": state,
        "ha_normal_at_end": ha_final,
        "warmup_s": warmup,
        "flatness_problems": flat,
        "fds_at_end": fds,
        "tcp_at_end": tcp,
        "samples": samples.iter().map(|s| json!({"t": (s.t * 10.0).round() / 10.0, "host": s.host, "pid": s.pid,
            "rss_kb": s.rss_kb, "fds": s.fds})).collect::<Vec<_>>(),
        "problems": problems,
    });
    eprintln!("soak report: {report}");
    if let Some(path) = std::env::var_os(REPORT_ENV).filter(|p| !p.is_empty()) {
        std::fs::write(PathBuf::from(&path), format!("{report:#}\n")).unwrap();
    }

    assert!(problems.is_empty(), "faults not recovered from:\n{}", problems.join("\n"));
    assert!(lost.is_empty(), "ACKed leases lost:\n{}", lost.join("\n"));
    assert!(duplicates.is_empty(), "addresses held by two clients:\n{}", duplicates.join("\n"));
    assert!(conflicts.is_empty(), "live addresses held by different clients in the two stores:\n{}", conflicts.join("\n"));
    assert!(flat.is_empty() || seconds < FLAT_FROM_S, "usage not flat after warm-up:\n{}", flat.join("\n"));
    assert!(acked_checked > 0, "no client held a lease at the end: {logs_:?}");
    assert!(xdp_acks > 0 && daemon_acks > 0, "ACKs from the kernel {xdp_acks}, from the daemon {daemon_acks}");
    assert!(perf.acks > 0 && declined > 0, "perfdhcp {perf:?}, declines {declined}");
    assert!(!faults.is_empty() || seconds < 40, "no fault injected in {seconds} s");
}

/// Replies withheld because the lease write failed, per `/metrics`.
fn store_failures(lab: &Lab, host: &str) -> u64 {
    metrics(lab, host)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("xdhcp_store_failures_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn logs(servers: &[Server]) -> String {
    servers.iter().map(|s| format!("--- {} ---\n{}", s.host, s.x.process.log())).collect()
}

#[test]
fn flatness_flags_growth_only_after_warm_up() {
    let s = |t: f64, rss_kb: u64, fds: u64| Sample { t, host: venus::PRIMARY, pid: 1, rss_kb, fds };
    // Warm-up, then a pool filled by the first half's fault, then flat.
    let mut flat: Vec<Sample> =
        (0..20).map(|i| s(f64::from(i), if i < 5 { 90_000 } else { 20_000 }, if i < 9 { 30 } else { 90 })).collect();
    flat.extend((0..20).map(|i| Sample { host: venus::STANDBY, ..s(f64::from(i), 20_000, 30) }));
    assert!(flatness(&flat, 5.0, 20.0).is_empty(), "{:?}", flatness(&flat, 5.0, 20.0));
    // Climbing through the second half: a leak.
    let mut grows = flat.clone();
    for i in 13..20u64 {
        grows.push(s(i as f64 + 0.5, 20_000 + 3000 * i, 90 + 10 * i));
    }
    assert_eq!(flatness(&grows, 5.0, 20.0).len(), 2, "{:?}", flatness(&grows, 5.0, 20.0));
}
