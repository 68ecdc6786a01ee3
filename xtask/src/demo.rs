//! `cargo xtask demo`: the first thing a newcomer runs. Sets the machine
//! up, builds, and walks through the mission in the `venus` lab, step by
//! step: lobezno (primary) and tormenta (standby) run xdhcpd as a Kea-style
//! hot-standby pair with the checked-in configs; real dhclient clients
//! lease (mutante3 gets its reservation) and renew every 2 s, answered by
//! the XDP program in lobezno's kernel; lobezno is killed with SIGKILL and
//! tormenta takes over; lobezno restarts from its lease file, resyncs, and
//! the pair returns to hot-standby. Prints timings and a short report, and
//! draws ACKs per second per server over time, with the failure and the
//! recovery marked, into `target/demo/timeline.svg`. The lab is torn down
//! at the end, also on error or Ctrl-C.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::Ipv4Addr,
    path::Path,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use lab::{Dhclient, Lab, Process, venus};

use crate::{build, setup, workspace_root};

const CLIENTS: usize = 8;
const T: Duration = Duration::from_secs(15);
/// HA start-up: waiting → syncing → ready → hot-standby on both sides.
const HA_UP: Duration = Duration::from_secs(30);
/// How often the servers' counters are read for the timeline.
const SAMPLE: Duration = Duration::from_secs(1);

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// Sets up, builds and runs the demo.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    step(1, "setting up this machine (cargo xtask setup)");
    setup::run()?;
    step(2, "building xdhcpd with its embedded XDP program (cargo xtask build)");
    let xdhcpd = build::release()?;

    step(3, &format!("bringing up the venus lab: lobezno, tormenta, mutante1..{CLIENTS} in network namespaces"));
    let lab = Lab::up(venus::topology(CLIENTS)?).context("bringing up the venus lab")?;
    println!("    lab {} up: namespaces {}", lab.id(), lab.namespaces().join(" "));
    let result = demo(&lab, &xdhcpd, started);
    lab.down()?;
    result
}

/// A server's counters at one moment: ACKs sent by the daemon, ACKs sent
/// by its XDP program.
#[derive(Clone, Copy, Debug)]
struct Counts {
    user: u64,
    xdp: u64,
}

/// The demo's record of time: counter samples per server and marked events.
#[derive(Default)]
struct Timeline {
    /// (unix seconds, server, counts; `None` = no answer from its API).
    samples: Vec<(f64, &'static str, Option<Counts>)>,
    /// (unix seconds, label).
    events: Vec<(f64, String)>,
}

fn demo(lab: &Lab, xdhcpd: &Path, started: Instant) -> anyhow::Result<()> {
    let t0 = unix_now();
    step(4, "starting xdhcpd on lobezno (primary) and tormenta (standby) with lab/venus/<server>.json");
    println!("    (Kea's Dhcp4 format with the HA hook as checked in; renew-timer 2 s, rebind-timer 4 s so renewals show)");
    let mut servers = BTreeMap::new();
    for host in venus::SERVERS {
        servers.insert(host, start(lab, host, xdhcpd)?);
    }
    let timeline = Mutex::new(Timeline::default());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let sampler = scope.spawn(|| sample(lab, &timeline, &stop));
        let r = story(lab, xdhcpd, &mut servers, &timeline, t0, started);
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        r
    })?;
    let mut tl = timeline.into_inner().unwrap_or_else(|e| e.into_inner());
    for (host, p) in &servers {
        for (at, what) in ha_transitions(&p.log(), host) {
            tl.events.push((at, what));
        }
    }
    let svg = workspace_root().join("target/demo/timeline.svg");
    std::fs::create_dir_all(svg.parent().context("no parent")?)?;
    std::fs::write(&svg, draw(&tl, t0)).with_context(|| format!("writing {}", svg.display()))?;
    println!("    timeline: {}", svg.display());
    Ok(())
}

fn story(
    lab: &Lab,
    xdhcpd: &Path,
    servers: &mut BTreeMap<&'static str, Process>,
    timeline: &Mutex<Timeline>,
    t0: f64,
    started: Instant,
) -> anyhow::Result<()> {
    let mark = |what: &str| timeline.lock().unwrap().events.push((unix_now(), what.to_owned()));
    for host in venus::SERVERS {
        let p = servers.get_mut(host).context("server")?;
        p.wait_for_log("→ hot-standby", HA_UP).with_context(|| p.log())?;
        print_matching(&p.log(), "attach mode", host);
        for (at, what) in ha_transitions(&p.log(), host) {
            println!("    {:>5.1} s  {what}", at - t0);
            timeline.lock().unwrap().events.push((at, what));
        }
    }

    step(5, "clients ask for addresses with the real ISC dhclient");
    let mut clients: Vec<(String, Dhclient, Ipv4Addr)> = Vec::new();
    for n in 1..=CLIENTS {
        let name = venus::client(n);
        let dh = lab.dhclient(&name)?;
        let t = Instant::now();
        let lease = dh.obtain(T).with_context(|| format!("{name} got no lease\n{}", servers[venus::PRIMARY].log()))?;
        let note = if n == venus::RESERVED_CLIENT { "  <- reservation" } else { "" };
        println!(
            "    {name:<10} {}  {:<15} from {} in {:>4} ms{note}",
            venus::client_mac(n),
            lease.address,
            lease.server_id,
            t.elapsed().as_millis()
        );
        if n == venus::RESERVED_CLIENT {
            anyhow::ensure!(lease.address == venus::RESERVED_ADDR, "mutante3 did not get its reservation: {lease:?}");
        }
        clients.push((name, dh, lease.address));
    }

    step(6, "clients renew by unicast every 2 s; lobezno's XDP program answers from its lease map");
    for (name, dh, addr) in &clients {
        let lease = dh.wait_renewal(T).with_context(|| format!("{name} renewal"))?;
        anyhow::ensure!(lease.address == *addr, "{name} renewed to {} instead of {addr}", lease.address);
    }
    std::thread::sleep(Duration::from_secs(4));
    let c = counts(lab, venus::PRIMARY).context("lobezno's counters")?;
    println!("    every client renewed; lobezno so far: {} ACKs from the daemon, {} from XDP", c.user, c.xdp);

    step(7, "disaster: SIGKILL xdhcpd on lobezno");
    let seen: Vec<usize> = clients.iter().map(|(_, dh, _)| dh.events().map_or(0, |e| e.len())).collect();
    servers.get_mut(venus::PRIMARY).context("primary")?.kill()?;
    let killed = Instant::now();
    mark("lobezno SIGKILL");
    let tormenta = servers.get_mut(venus::STANDBY).context("standby")?;
    tormenta.wait_for_log("→ partner-down", Duration::from_secs(20)).with_context(|| tormenta.log())?;
    let takeover = killed.elapsed();
    println!("    tormenta in partner-down {:.1} s after the kill", takeover.as_secs_f64());
    let moved = wait_all(&clients, &seen, venus::STANDBY_LAN, killed, Duration::from_secs(30))
        .with_context(|| format!("clients never reached tormenta\n{}", tormenta.log()))?;
    for ((name, _, addr), after) in clients.iter().zip(&moved) {
        println!("    {name:<10} kept {addr:<15} now from tormenta, {:>4.1} s after the kill", after.as_secs_f64());
    }

    step(8, "lobezno restarts from its lease file, resyncs from tormenta, the pair returns to hot-standby");
    let restarted = Instant::now();
    let seen: Vec<usize> = clients.iter().map(|(_, dh, _)| dh.events().map_or(0, |e| e.len())).collect();
    mark("lobezno restarted");
    let mut p = start(lab, venus::PRIMARY, xdhcpd)?;
    p.wait_for_log("→ hot-standby", HA_UP).with_context(|| p.log())?;
    let resync = restarted.elapsed();
    print_matching(&p.log(), "synced", venus::PRIMARY);
    print_matching(&p.log(), "kernel lease map loaded", venus::PRIMARY);
    for (at, what) in ha_transitions(&p.log(), venus::PRIMARY) {
        println!("    {:>5.1} s  {what}", at - t0);
    }
    servers.insert(venus::PRIMARY, p);
    let tormenta = servers.get_mut(venus::STANDBY).context("standby")?;
    tormenta.wait_for_log("partner-down → hot-standby", HA_UP).with_context(|| tormenta.log())?;
    let back = wait_all(&clients, &seen, venus::PRIMARY_LAN, restarted, Duration::from_secs(30))
        .context("clients never returned to lobezno")?
        .into_iter()
        .max()
        .unwrap_or_default();
    println!("    every client renews with lobezno again {:.1} s after its restart", back.as_secs_f64());
    std::thread::sleep(Duration::from_secs(4));

    step(9, "stopping both servers (their counters) and tearing the lab down");
    let mut totals = BTreeMap::new();
    for host in venus::SERVERS {
        let c = counts(lab, host);
        let p = servers.get_mut(host).context("server")?;
        p.stop(T)?;
        print_matching(&p.log(), "XDP counters", host);
        totals.insert(host, c);
    }
    let rows = |host: &str| -> usize {
        let path = lab.host_dir(host).map(|d| d.join("leases4.csv")).unwrap_or_default();
        std::fs::read_to_string(path).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0)
    };
    println!("\n== report ==");
    println!(
        "  {} clients served; mutante3 on {} throughout; no client changed address",
        clients.len(),
        venus::RESERVED_ADDR
    );
    for host in venus::SERVERS {
        match totals[host] {
            Some(c) => println!(
                "  {host:<9} since its last start: {} ACKs, {} of them by XDP in the kernel; lease file {} rows",
                c.user + c.xdp,
                c.xdp,
                rows(host)
            ),
            None => println!("  {host:<9} counters unavailable"),
        }
    }
    let slowest = moved.iter().max().copied().unwrap_or_default();
    println!(
        "  failover: tormenta in partner-down after {:.1} s; every client served by it within {:.1} s of the kill",
        takeover.as_secs_f64(),
        slowest.as_secs_f64()
    );
    println!(
        "  recovery: lobezno back in hot-standby {:.1} s after its restart, every client back on it after {:.1} s",
        resync.as_secs_f64(),
        back.as_secs_f64()
    );
    println!("  demo done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Starts xdhcpd in `host` with its checked-in config (lease file in the
/// lab, renewals every 2 s) and waits until it serves.
fn start(lab: &Lab, host: &str, xdhcpd: &Path) -> anyhow::Result<Process> {
    let dir = lab.host_dir(host)?;
    let mut cfg = venus::kea_config(host)?;
    cfg.lease_file(&dir.join("leases4.csv"))?.set("/Dhcp4/renew-timer", 2.into())?.set("/Dhcp4/rebind-timer", 4.into())?;
    let path = dir.join("xdhcpd.json");
    cfg.write(&path)?;
    let argv = [utf8(xdhcpd)?, "run", "-c", utf8(&path)?];
    let mut p = lab.spawn(host, "xdhcpd", &argv)?;
    p.wait_for_log("serving", T).with_context(|| p.log())?;
    Ok(p)
}

fn utf8(p: &Path) -> anyhow::Result<&str> {
    p.to_str().with_context(|| format!("non-UTF-8 path {}", p.display()))
}

/// Watches every client's dhclient events at once (those after the first
/// `seen[i]` of client i) until each has renewed or rebound with `server`,
/// keeping its address; returns how long after `since` each did (to the
/// 50 ms poll).
fn wait_all(
    clients: &[(String, Dhclient, Ipv4Addr)],
    seen: &[usize],
    server: Ipv4Addr,
    since: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let mut done: Vec<Option<Duration>> = vec![None; clients.len()];
    while done.iter().any(Option::is_none) {
        anyhow::ensure!(since.elapsed() < timeout, "not every client reached {server} within {timeout:?}: {done:?}");
        for (i, (name, dh, addr)) in clients.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let events = dh.events()?;
            if let Some(l) = events.iter().skip(seen[i]).filter_map(|e| e.lease.as_ref()).find(|l| l.server_id == server) {
                anyhow::ensure!(l.address == *addr, "{name} lost {addr}: now {}", l.address);
                done[i] = Some(since.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(done.into_iter().flatten().collect())
}

/// The server's ACK counters from its /metrics (on its HA listener).
fn counts(lab: &Lab, host: &str) -> Option<Counts> {
    let ip = if host == venus::PRIMARY { venus::PRIMARY_HA } else { venus::STANDBY_HA };
    let out = lab
        .cmd(host, "curl")
        .args(["-s", "-m", "1", &format!("http://{ip}:8000/metrics")])
        .timeout(Duration::from_secs(3))
        .output()
        .ok()?;
    if !out.success() {
        return None;
    }
    let mut c = Counts { user: 0, xdp: 0 };
    for line in out.stdout.lines() {
        let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        if line.starts_with("xdhcp_replies_total{") && line.contains("type=\"ack\"") {
            c.user += value();
        } else if line.starts_with("xdhcp_packets_total{")
            && line.contains("path=\"xdp\"")
            && (line.contains("type=\"answered_ack\"") || line.contains("type=\"answered_reserved_ack\""))
        {
            c.xdp += value();
        }
    }
    Some(c)
}

/// Reads both servers' counters every [`SAMPLE`] until `stop`.
fn sample(lab: &Lab, timeline: &Mutex<Timeline>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + SAMPLE;
        for host in venus::SERVERS {
            let c = counts(lab, host);
            timeline.lock().unwrap().samples.push((unix_now(), host, c));
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `(unix seconds, "lobezno: waiting → syncing")` for every `HA <host>: a →
/// b` line of an xdhcpd log (tracing's UTC timestamps).
fn ha_transitions(log: &str, host: &str) -> Vec<(f64, String)> {
    let needle = format!("HA {host}: ");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&needle)? + needle.len()..];
            rest.contains('→').then_some(())?;
            let what = rest.split(" (partner").next().unwrap_or(rest);
            Some((log_time(l)?, format!("{host}: {what}")))
        })
        .collect()
}

/// `2026-11-24T23:05:24.519874Z …` → unix seconds.
fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (&[y, m, day], mut t) = (d.as_slice(), time.split(':')) else { return None };
    let (h, mi, s): (f64, f64, f64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + s)
}

fn print_matching(log: &str, needle: &str, host: &str) {
    for line in log.lines().filter(|l| l.contains(needle)) {
        let text = line.split_once(" INFO ").or(line.split_once(" WARN ")).map_or(line, |(_, r)| r).trim();
        println!("    {host}: {text}");
    }
}

/// ACKs per second per server (daemon + XDP, XDP part dashed) over time,
/// HA transitions and the demo's events as labelled vertical lines.
fn draw(tl: &Timeline, t0: f64) -> String {
    const W: f64 = 960.0;
    const H: f64 = 460.0;
    const L: f64 = 60.0;
    const R: f64 = 20.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 190.0;
    let colour = |h: &str| if h == venus::PRIMARY { "#1f77b4" } else { "#d62728" };
    // (t, total/s, xdp/s) per server from consecutive samples.
    let mut rates: BTreeMap<&str, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for host in venus::SERVERS {
        let mut prev: Option<(f64, Counts)> = None;
        let mut points = Vec::new();
        for &(t, h, c) in tl.samples.iter().filter(|s| s.1 == host) {
            let _ = h;
            match (prev, c) {
                (Some((pt, pc)), Some(c)) if t > pt => {
                    let dt = t - pt;
                    // A restarted server counts from zero again.
                    let (du, dx) = if c.user < pc.user || c.xdp < pc.xdp {
                        (c.user, c.xdp)
                    } else {
                        (c.user - pc.user, c.xdp - pc.xdp)
                    };
                    points.push((t - t0, (du + dx) as f64 / dt, dx as f64 / dt));
                }
                (_, None) => points.push((t - t0, f64::NAN, f64::NAN)),
                _ => {}
            }
            prev = c.map(|c| (t, c));
        }
        rates.insert(host, points);
    }
    let end = tl.samples.last().map_or(1.0, |s| s.0 - t0).max(1.0);
    let ymax = rates.values().flatten().map(|p| p.1).filter(|v| v.is_finite()).fold(1.0, f64::max).ceil();
    let x = |t: f64| L + (t / end) * (W - L - R);
    let y = |v: f64| H - BOTTOM - (v / ymax) * (H - BOTTOM - TOP);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{L}" y="20" font-size="14">xdhcp demo: ACKs per second per server (solid: all, dashed: by XDP in the kernel)</text>"#
    );
    // Axes and grid.
    let _ = writeln!(s, r##"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##, y(0.0), W - R, y(0.0));
    let _ = writeln!(s, r##"<line x1="{L}" y1="{TOP}" x2="{L}" y2="{}" stroke="#333"/>"##, y(0.0));
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/><text x="{2}" y="{3:.1}" text-anchor="end">{v:.1}</text>"##,
            y(v),
            W - R,
            L - 5.0,
            y(v) + 4.0
        );
    }
    let step = if end > 60.0 { 10.0 } else { 5.0 };
    let mut t = 0.0;
    while t <= end {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0} s</text>"#, x(t), y(0.0) + 15.0);
        t += step;
    }
    // Rate lines; NaN (server unreachable) breaks a line. The XDP part is
    // drawn dashed under the total.
    for (host, points) in &rates {
        for (idx, dash) in [(2, r#" stroke-dasharray="5 3" stroke-opacity="0.5""#), (1, "")] {
            let mut d = String::new();
            let mut pen_up = true;
            for p in points {
                let v = if idx == 1 { p.1 } else { p.2 };
                if !v.is_finite() {
                    pen_up = true;
                    continue;
                }
                let _ = write!(d, "{}{:.1},{:.1} ", if pen_up { "M" } else { "L" }, x(p.0), y(v));
                pen_up = false;
            }
            let width = if idx == 2 { 4.0 } else { 1.5 };
            let _ = writeln!(s, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{width}"{dash}/>"#, colour(host));
        }
    }
    // Legend.
    for (i, host) in venus::SERVERS.iter().enumerate() {
        let ly = TOP + 14.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{2}" stroke-width="2"/><text x="{3}" y="{4}">{host}</text>"#,
            W - R - 140.0,
            W - R - 120.0,
            colour(host),
            W - R - 115.0,
            ly + 4.0
        );
    }
    // Events: vertical lines, labels listed under the chart.
    let mut events = tl.events.clone();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    // HA transitions are read from logs more than once.
    events.dedup();
    for (i, (at, what)) in events.iter().enumerate() {
        let t = at - t0;
        let big = !what.contains(':');
        let stroke = if big { "#000" } else { "#999" };
        let _ = writeln!(
            s,
            r#"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="{stroke}" stroke-width="{2}" stroke-dasharray="2 2"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle" fill="{stroke}">{4}</text>"#,
            x(t),
            y(0.0),
            if big { 1.5 } else { 0.8 },
            TOP - 4.0,
            i + 1
        );
        // Two columns of labels under the axis.
        let (col, row) = (i / 10, i % 10);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{stroke}">{}. {t:.1} s  {}</text>"#,
            L + col as f64 * (W - L) / 2.0,
            H - BOTTOM + 34.0 + 14.0 * row as f64,
            i + 1,
            what.replace('&', "&amp;").replace('<', "&lt;")
        );
    }
    s.push_str("</svg>\n");
    s
}
