//! Measuring HA drills: what a client sees while a server fails, and what
//! the survivor remembers afterwards.
//!
//! A [`Drill`] holds real dhclient clients in a lab. [`Drill::probe`]
//! starts a background prober: a client that re-obtains its lease over and
//! over (`dhclient -1`, an INIT-REBOOT once it has a lease, a DISCOVER
//! before), one attempt at most every [`PROBE_INTERVAL`], each given
//! [`PROBE_TIMEOUT`], bounded by [`PROBE_MAX`] attempts and
//! [`PROBE_LIMIT`]. [`Drill::obtain`] and [`Drill::renew`] run one
//! exchange on the test's thread and record it the same way.
//! [`Drill::fault`] marks the moment something breaks and which server
//! should answer from then on.
//!
//! [`Drill::finish`] stops the probers and measures:
//! - time to serve, per fault: from the fault to the first answer carrying
//!   the survivor's server identifier;
//! - outage, per fault: the longest gap between consecutive answers (any
//!   client, any server) from the last answer before the fault to the
//!   first answer from the survivor;
//! - lost ACKed leases: every lease any client was ACKed (each client's
//!   dhclient script events, so also daemon renewals), newest per client
//!   and address, must be in every given lease store — same hardware
//!   address, state 0, expiry no earlier than the client's (less
//!   [`EXPIRE_SLACK`]) — within [`STORE_SETTLE`] of the end;
//! - duplicates: addresses whose newest lease is held by two clients;
//! - whether mutante3 only ever held 192.168.50.33 (`None` if it took no
//!   part).
//!
//! The [`Report`] is printed and, when `XDHCP_DRILL_REPORT` names a file,
//! appended to it as one JSON line (`XDHCP_DRILL_RUN` numbers the run);
//! `cargo xtask drill` collects those lines into DRILLS.md.
//! [`Report::assert_ok`] then fails the test on a lost lease, a duplicate,
//! a moved reservation, or a fault the survivor never answered after.
//!
//! ```ignore
//! let mut drill = Drill::new(&lab, "kill-primary");
//! drill.obtain(&venus::client(1))?;
//! drill.probe(&venus::client(3));
//! primary.process.kill()?;
//! drill.fault("primary SIGKILL", venus::STANDBY_LAN);
//! drill.wait_served_by(venus::STANDBY_LAN, Duration::from_secs(20))?;
//! drill.finish(&[("tormenta", &standby.leases)]).assert_ok();
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use lab::{Dhclient, Lab, Lease, venus};

/// Environment variable naming the file each report is appended to.
pub const REPORT_ENV: &str = "XDHCP_DRILL_REPORT";
/// Environment variable with the run number written into reports.
pub const RUN_ENV: &str = "XDHCP_DRILL_RUN";
/// Fewest time between the starts of two attempts of one prober.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(300);
/// What one attempt waits for an answer (dhclient counts whole seconds).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most attempts per prober.
pub const PROBE_MAX: usize = 400;
/// Longest a prober runs.
pub const PROBE_LIMIT: Duration = Duration::from_secs(90);
/// Server and client compute a lease's expiry from their own clocks a few
/// milliseconds apart, each rounding to whole seconds.
pub const EXPIRE_SLACK: Duration = Duration::from_secs(2);
/// Longest [`Drill::finish`] waits for a kernel-ACKed lease to reach a
/// store: the drain runs every few milliseconds and the writer commits in
/// groups, so this bound is generous; a lease missing after it is lost.
pub const STORE_SETTLE: Duration = Duration::from_secs(3);

/// One exchange a client attempted.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The client host.
    pub client: String,
    /// When the attempt started.
    pub started: Instant,
    /// When it ended (the answer, or giving up).
    pub ended: Instant,
    /// The lease it got, `None` if no server answered in time.
    pub lease: Option<Lease>,
}

/// One failure injected into the drill.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What was done ("primary SIGKILL").
    pub what: String,
    /// When.
    pub at: Instant,
    /// The server identifier that must answer from then on.
    pub survivor: Ipv4Addr,
    /// A recovery (a server back), not a failure.
    pub recovery: bool,
}

struct Prober {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Dhclient>,
}

/// A drill in progress: its clients, probers, samples and faults.
pub struct Drill<'a> {
    lab: &'a Lab,
    name: String,
    started: Instant,
    clients: BTreeMap<String, Dhclient>,
    probers: Vec<(String, Prober)>,
    samples: Arc<Mutex<Vec<Sample>>>,
    faults: Vec<Fault>,
}

impl<'a> Drill<'a> {
    /// Starts drill `name` (its key in reports) in `lab`.
    pub fn new(lab: &'a Lab, name: &str) -> Drill<'a> {
        Drill {
            lab,
            name: name.to_owned(),
            started: Instant::now(),
            clients: BTreeMap::new(),
            probers: Vec::new(),
            samples: Arc::new(Mutex::new(Vec::new())),
            faults: Vec::new(),
        }
    }

    /// Seconds since the drill started, for log lines.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// `client` obtains a lease (DISCOVER, or INIT-REBOOT of one it holds)
    /// on this thread, within `timeout`; recorded like a probe.
    pub fn obtain(&mut self, client: &str, timeout: Duration) -> anyhow::Result<Lease> {
        if !self.clients.contains_key(client) {
            anyhow::ensure!(!self.probing(client), "{client} is a prober");
            self.clients.insert(client.to_owned(), self.lab.dhclient(client)?);
        }
        let sample = attempt(client, &self.clients[client], timeout);
        let lease = sample.lease.clone();
        self.samples.lock().unwrap().push(sample);
        lease.with_context(|| format!("{client} got no lease within {timeout:?}:\n{}", self.clients[client].log()))
    }

    /// `client` renews the lease it holds (INIT-REBOOT); same as
    /// [`Drill::obtain`] for a client that has one.
    pub fn renew(&mut self, client: &str, timeout: Duration) -> anyhow::Result<Lease> {
        anyhow::ensure!(self.clients.contains_key(client), "{client} has not obtained a lease in this drill");
        self.obtain(client, timeout)
    }

    /// Starts a background prober in `client` (a host no other call uses).
    pub fn probe(&mut self, client: &str) {
        assert!(!self.clients.contains_key(client) && !self.probing(client), "{client} already in the drill");
        let dh = self.lab.dhclient(client).unwrap_or_else(|e| panic!("{client}: {e:#}"));
        let stop = Arc::new(AtomicBool::new(false));
        let (samples, flag, name) = (Arc::clone(&self.samples), Arc::clone(&stop), client.to_owned());
        let handle = std::thread::spawn(move || {
            let begun = Instant::now();
            for _ in 0..PROBE_MAX {
                if flag.load(Ordering::Relaxed) || begun.elapsed() > PROBE_LIMIT {
                    break;
                }
                let s = attempt(&name, &dh, PROBE_TIMEOUT);
                let next = s.started + PROBE_INTERVAL;
                samples.lock().unwrap().push(s);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            dh
        });
        self.probers.push((client.to_owned(), Prober { stop, handle }));
    }

    fn probing(&self, client: &str) -> bool {
        self.probers.iter().any(|(c, _)| c == client)
    }

    /// Marks a fault now: from here on `survivor` (a server identifier)
    /// must answer.
    pub fn fault(&mut self, what: &str, survivor: Ipv4Addr) {
        self.mark(what, survivor, false);
    }

    /// Marks a recovery now (a server back): measured like a fault, with
    /// `server` the one that must answer again, and reported apart.
    pub fn recovery(&mut self, what: &str, server: Ipv4Addr) {
        self.mark(what, server, true);
    }

    /// Takes back the last fault or recovery marked: the drill abandoned
    /// that attempt (a timing it needed did not happen) and tries again, so
    /// nothing is measured for it (its window would end at the next mark
    /// with no probe in it).
    pub fn withdraw_last(&mut self, why: &str) {
        if let Some(f) = self.faults.pop() {
            eprintln!("drill {}: {:.2} s: withdrawn {:?}: {why}", self.name, self.elapsed(), f.what);
        }
    }

    fn mark(&mut self, what: &str, survivor: Ipv4Addr, recovery: bool) {
        eprintln!("drill {}: {:.2} s: {what}", self.name, self.elapsed());
        self.faults.push(Fault { what: what.to_owned(), at: Instant::now(), survivor, recovery });
    }

    /// When the drill started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Every attempt so far, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let mut s = self.samples.lock().unwrap().clone();
        s.sort_by_key(|s| s.ended);
        s
    }

    /// Waits until some client got an answer from `server` after the last
    /// fault (or the start), returning when.
    pub fn wait_served_by(&self, server: Ipv4Addr, timeout: Duration) -> anyhow::Result<Instant> {
        let since = self.faults.last().map_or(self.started, |f| f.at);
        lab::wait_until(&format!("a client to be served by {server}"), timeout, || {
            Ok(self.samples().iter().find(|s| s.started >= since && server_of(s) == Some(server)).map(|s| s.ended))
        })
    }

    /// Waits until `client` got an answer from `server` after the last
    /// fault (or the start), returning that lease.
    pub fn wait_answer(&self, client: &str, server: Ipv4Addr, timeout: Duration) -> anyhow::Result<Lease> {
        let since = self.faults.last().map_or(self.started, |f| f.at);
        lab::wait_until(&format!("{client} to be answered by {server}"), timeout, || {
            Ok(self
                .samples()
                .into_iter()
                .find(|s| s.client == client && s.started >= since && server_of(s) == Some(server))
                .and_then(|s| s.lease))
        })
    }

    /// Stops the probers and measures, checking leases against each
    /// `(name, lease file)` store.
    pub fn finish(mut self, stores: &[(&str, &Path)]) -> Report {
        for (_, p) in &self.probers {
            p.stop.store(true, Ordering::Relaxed);
        }
        for (client, p) in std::mem::take(&mut self.probers) {
            let dh = p.handle.join().unwrap_or_else(|_| panic!("prober {client} panicked"));
            self.clients.insert(client, dh);
        }
        let samples = self.samples();
        let faults: Vec<FaultReport> = self
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let until = self.faults.get(i + 1).map(|n| n.at);
                measure_fault(f, self.started, until, &samples)
            })
            .collect();

        // Every lease each client was ACKed, from its script's events.
        let mut acked: BTreeMap<(String, Ipv4Addr), Lease> = BTreeMap::new();
        let mut newest: BTreeMap<String, Lease> = BTreeMap::new();
        let mut reserved: Option<bool> = None;
        for (client, dh) in &self.clients {
            let leases: Vec<Lease> = dh.events().unwrap().into_iter().filter_map(|e| e.lease).collect();
            if client == &venus::client(venus::RESERVED_CLIENT) {
                reserved = Some(!leases.is_empty() && leases.iter().all(|l| l.address == venus::RESERVED_ADDR));
            }
            for l in leases {
                newest.insert(client.clone(), l.clone());
                let key = (client.clone(), l.address);
                if acked.get(&key).is_none_or(|old| old.expire < l.expire) {
                    acked.insert(key, l);
                }
            }
        }
        // A kernel ACK reaches the lease file just after the client has it
        // (the ring-buffer drain, then the writer's group commit), so the
        // stores are read again until they hold every lease or
        // STORE_SETTLE has passed; a lease still missing then is lost.
        let settle = Instant::now() + STORE_SETTLE;
        let lost = loop {
            let mut lost = Vec::new();
            for (store, path) in stores {
                let rows = current_rows(path);
                for ((client, addr), l) in &acked {
                    if let Err(why) = held_in(self.lab, client, l, rows.get(addr)) {
                        lost.push(format!("{client}'s {addr} not in {store}'s store: {why}"));
                    }
                }
            }
            if lost.is_empty() || Instant::now() >= settle {
                break lost;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut by_addr: BTreeMap<Ipv4Addr, Vec<&str>> = BTreeMap::new();
        for (client, l) in &newest {
            by_addr.entry(l.address).or_default().push(client);
        }
        let duplicates: Vec<String> = by_addr
            .iter()
            .filter(|(_, cs)| cs.len() > 1)
            .map(|(a, cs)| format!("{a} held by {}", cs.join(" and ")))
            .collect();
        let report = Report {
            drill: self.name.clone(),
            run: std::env::var(RUN_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(1),
            seconds: self.elapsed(),
            attempts: samples.len(),
            answers: samples.iter().filter(|s| s.lease.is_some()).count(),
            acked_leases: acked.len(),
            faults,
            lost,
            duplicates,
            reserved_kept: reserved,
        };
        report.emit();
        report
    }
}

/// One exchange with `dh`: the lease from the script's newest event (the
/// lease file lags renewals).
fn attempt(client: &str, dh: &Dhclient, timeout: Duration) -> Sample {
    let started = Instant::now();
    let ok = dh.obtain(timeout).is_ok();
    let ended = Instant::now();
    let lease = ok.then(|| dh.events().ok()?.into_iter().rev().find_map(|e| e.lease)).flatten();
    Sample { client: client.to_owned(), started, ended, lease }
}

fn server_of(s: &Sample) -> Option<Ipv4Addr> {
    s.lease.as_ref().map(|l| l.server_id)
}

/// The current row per address of a Kea lease file (the last one wins).
fn current_rows(path: &Path) -> BTreeMap<Ipv4Addr, Vec<String>> {
    super::lease_rows(path).into_iter().filter_map(|r| Some((r.first()?.parse().ok()?, r))).collect()
}

/// Whether `row` holds `client`'s lease `l`.
fn held_in(lab: &Lab, client: &str, l: &Lease, row: Option<&Vec<String>>) -> Result<(), String> {
    let row = row.ok_or("no row")?;
    let mac = lab.topology().get_host(client).ok().and_then(|h| h.ports.first()?.mac).map(|m| m.to_string());
    if mac.as_deref() != row.get(1).map(String::as_str) {
        return Err(format!("hwaddr {:?} instead of {mac:?}", row.get(1)));
    }
    if row.get(9).map(String::as_str) != Some("0") {
        return Err(format!("state {:?}", row.get(9)));
    }
    let stored = row.get(4).and_then(|e| e.parse::<u64>().ok()).ok_or("no expire")?;
    let client_expire = l.expire.and_then(|e| e.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    if stored + EXPIRE_SLACK.as_secs() < client_expire {
        return Err(format!("expires {stored}, the client was told {client_expire}"));
    }
    Ok(())
}

fn measure_fault(f: &Fault, start: Instant, until: Option<Instant>, samples: &[Sample]) -> FaultReport {
    let answered: Vec<&Sample> = samples.iter().filter(|s| s.lease.is_some()).collect();
    let first = answered
        .iter()
        .find(|s| s.started >= f.at && until.is_none_or(|u| s.ended <= u) && server_of(s) == Some(f.survivor));
    let serve = first.map(|s| s.ended.duration_since(f.at).as_secs_f64());
    // Gaps between consecutive answers, from the last one before the fault
    // to the survivor's first.
    let outage = first.map(|first| {
        let before = answered.iter().rev().find(|s| s.ended <= f.at).map_or(f.at, |s| s.ended);
        let mut last = before;
        let mut longest = Duration::ZERO;
        for s in answered.iter().filter(|s| s.ended > before && s.ended <= first.ended) {
            longest = longest.max(s.ended - last);
            last = s.ended;
        }
        longest.as_secs_f64()
    });
    FaultReport {
        what: f.what.clone(),
        recovery: f.recovery,
        at: f.at.duration_since(start).as_secs_f64(),
        survivor: f.survivor,
        time_to_serve: serve,
        outage,
    }
}

/// What one fault cost the clients.
#[derive(Debug, Clone)]
pub struct FaultReport {
    /// What was done.
    pub what: String,
    /// A recovery rather than a failure.
    pub recovery: bool,
    /// Seconds into the drill.
    pub at: f64,
    /// The server identifier that had to answer.
    pub survivor: Ipv4Addr,
    /// Seconds from the fault to the survivor's first answer.
    pub time_to_serve: Option<f64>,
    /// Longest gap between answers across the fault, seconds.
    pub outage: Option<f64>,
}

/// A drill's result: the numbers, and what went wrong.
#[derive(Debug, Clone)]
pub struct Report {
    /// The drill's name.
    pub drill: String,
    /// Run number (`XDHCP_DRILL_RUN`, default 1).
    pub run: u32,
    /// Length of the drill, seconds.
    pub seconds: f64,
    /// Exchanges attempted.
    pub attempts: usize,
    /// Exchanges answered.
    pub answers: usize,
    /// Distinct (client, address) leases ACKed.
    pub acked_leases: usize,
    /// Per fault, in order.
    pub faults: Vec<FaultReport>,
    /// ACKed leases missing from a store, one line each.
    pub lost: Vec<String>,
    /// Addresses held by two clients, one line each.
    pub duplicates: Vec<String>,
    /// Whether mutante3 only ever held its reserved address (`None`: not
    /// in this drill).
    pub reserved_kept: Option<bool>,
}

impl Report {
    /// The slowest failure's time to serve (`None` if one was never
    /// served, or there was none).
    pub fn time_to_serve(&self) -> Option<f64> {
        worst(self.faults.iter().filter(|f| !f.recovery).map(|f| f.time_to_serve))
    }

    /// The longest outage over all failures.
    pub fn outage(&self) -> Option<f64> {
        worst(self.faults.iter().filter(|f| !f.recovery).map(|f| f.outage))
    }

    /// The slowest recovery: seconds until the returning server answered.
    pub fn rejoin(&self) -> Option<f64> {
        worst(self.faults.iter().filter(|f| f.recovery).map(|f| f.time_to_serve))
    }

    /// The report as one JSON line.
    pub fn json(&self) -> String {
        let faults: Vec<serde_json::Value> = self
            .faults
            .iter()
            .map(|f| {
                serde_json::json!({
                    "what": f.what, "recovery": f.recovery, "at_s": round(f.at), "survivor": f.survivor.to_string(),
                    "time_to_serve_s": f.time_to_serve.map(round), "outage_s": f.outage.map(round),
                })
            })
            .collect();
        serde_json::json!({
            "drill": self.drill,
            // libtest names each test's thread after the test.
            "test": std::thread::current().name().unwrap_or(""),
            "run": self.run,
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "seconds": round(self.seconds),
            "time_to_serve_s": self.time_to_serve().map(round),
            "outage_s": self.outage().map(round),
            "rejoin_s": self.rejoin().map(round),
            "lost": self.lost.len(),
            "duplicates": self.duplicates.len(),
            "reserved_kept": self.reserved_kept,
            "attempts": self.attempts,
            "answers": self.answers,
            "acked_leases": self.acked_leases,
            "faults": faults,
            "problems": self.lost.iter().chain(&self.duplicates).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// Prints the JSON line and appends it to `$XDHCP_DRILL_REPORT` if set.
    pub fn emit(&self) {
        let line = self.json();
        eprintln!("drill report: {line}");
        if let Some(path) = std::env::var_os(REPORT_ENV).filter(|p| !p.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("opening {}: {e}", Path::new(&path).display()));
            f.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
    }

    /// Fails the test on a lost lease, a duplicate address, a moved
    /// reservation, or a fault the survivor never answered after.
    pub fn assert_ok(&self) {
        assert!(self.lost.is_empty(), "{}: ACKed leases lost:\n{}", self.drill, self.lost.join("\n"));
        assert!(self.duplicates.is_empty(), "{}: duplicate addresses:\n{}", self.drill, self.duplicates.join("\n"));
        assert_ne!(self.reserved_kept, Some(false), "{}: mutante3 left {}", self.drill, venus::RESERVED_ADDR);
        for f in &self.faults {
            assert!(f.time_to_serve.is_some(), "{}: {} never answered after {:?}", self.drill, f.survivor, f.what);
        }
    }
}

/// The largest value; `None` if any is missing or there are none.
fn worst(mut values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.try_fold(None, |m: Option<f64>, t| t.map(|t| Some(m.map_or(t, |m| m.max(t)))))?
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
