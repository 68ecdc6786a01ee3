//! The lease database lost and back, under load, with a real PostgreSQL 15
//! stopped and restarted under xdhcpd (XDP attached, as deployed), real
//! dhclient clients and perfdhcp: Kea 2.2's `on-fail` semantics.
//!
//! - `stop-retry-exit` with retries: no reply at all while the database is
//!   down (the daemon's service and the kernel's answers both stop),
//!   Kea's log lines in order, service back within `reconnect-wait-time`
//!   (plus the machine's slack) of the database's return, every ACK seen
//!   on the wire a committed row of that client, no address held twice.
//! - retries exhausted: `stop-retry-exit` exits with a failure status,
//!   `serve-retry-continue` runs on (and still acks nothing).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lab::postgres::Database;
use lab::process::Process;
use lab::{Lab, Postgres, venus};
use serde_json::json;

mod common;
use common::dhcp_packets;

const T: Duration = Duration::from_secs(30);
/// `reconnect-wait-time` of the main test.
const WAIT_MS: u64 = 500;
/// What a loaded shared machine adds to a reconnect (a new login, the
/// schema check, the kernel rescope).
const SLACK: Duration = Duration::from_secs(3);
/// perfdhcp's address in mutante1 (it relays from there).
const RELAY: &str = "192.168.50.250/24";

fn write_config(lab: &Lab, pg: &Postgres, db: &Database, tries: u32, wait_ms: u64, on_fail: &str) -> PathBuf {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set(
        "/Dhcp4/lease-database",
        json!({ "type": "postgresql", "name": db.name, "host": pg.host(), "port": pg.port(),
                "user": db.user, "password": db.password, "connect-timeout": 5,
                "max-reconnect-tries": tries, "reconnect-wait-time": wait_ms, "on-fail": on_fail }),
    )
    .unwrap();
    let path = lab.host_dir(venus::PRIMARY).unwrap().join("xdhcpd-outage.json");
    cfg.write(&path).unwrap();
    path
}

fn start_xdhcpd(lab: &Lab, config: &std::path::Path) -> Process {
    let argv = [env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", config.to_str().unwrap()];
    let mut p = lab.spawn(venus::PRIMARY, "xdhcpd", &argv).unwrap();
    p.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
    p
}

/// Bounded perfdhcp DORA load relayed from mutante1: `rate` exchanges/s
/// for `secs` seconds, at most `n` clients. Returns (offers, acks).
fn perfdhcp(lab: &Lab, rate: u32, n: u32, secs: u32, base_mac: &str) -> (u64, u64) {
    let (rate, n, secs) = (rate.to_string(), n.to_string(), secs.to_string());
    let server = venus::PRIMARY_LAN.to_string();
    let base = format!("mac={base_mac}");
    let argv =
        ["-4", "-l", "eth0", "-r", &rate, "-n", &n, "-R", &n, "-p", &secs, "-d", "2", "-d", "2", "-b", &base, &server];
    let out = lab.cmd(&venus::client(1), "perfdhcp").args(argv).timeout(Duration::from_secs(60)).output().unwrap();
    match lab::perfdhcp::parse_report(&out.stdout) {
        Some(report) => (report.discover_offer.received, report.request_ack.received),
        // No OFFER, so no REQUEST sent: perfdhcp's report has no exchange.
        None if out.stdout.contains("Rate: 0 4-way") && out.stdout.contains("received packets: 0") => (0, 0),
        None => panic!("no perfdhcp report:\n{out}"),
    }
}

/// Every (address, MAC) the server ACKed in a capture.
fn acks(packets: &[String]) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    for p in dhcp_packets(packets, "ACK") {
        let field = |key: &str| p.split(key).nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_owned);
        let (Some(yiaddr), Some(mac)) = (field("Your-IP "), field("Client-Ethernet-Address ")) else { continue };
        out.push((yiaddr.trim_end_matches(',').parse().unwrap(), mac));
    }
    out
}

/// Rows of `lease4` as address → MAC text.
fn rows(pg: &Postgres, db: &Database) -> HashMap<Ipv4Addr, String> {
    let dump = pg.kea_lease_dump(db).unwrap();
    dump.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (f.next().unwrap().parse().unwrap(), f.next().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn database_stopped_and_restarted_under_load() {
    let mut pg = Postgres::start().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    lab.run(&venus::client(1), &["ip", "addr", "add", RELAY, "dev", "eth0"]).unwrap();
    let config = write_config(&lab, &pg, &db, 1000, WAIT_MS, "stop-retry-exit");
    let mut server = start_xdhcpd(&lab, &config);
    let filter = ["udp", "src", "port", "67"];
    let all = lab.capture_segment(venus::LAN, &filter).unwrap();

    // Up: real clients and a burst of perfdhcp clients get leases.
    let clients: Vec<_> = (2..=4).map(|i| lab.dhclient(&venus::client(i)).unwrap()).collect();
    for c in &clients {
        c.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    }
    let (offers, acked) = perfdhcp(&lab, 20, 20, 2, "02:aa:00:00:00:00");
    assert!(offers > 0 && acked > 0, "no service before the outage:\n{}", server.log());

    // Down: the server notices (its ping, or the next write) and from then
    // on answers nothing, the kernel included.
    pg.stop().unwrap();
    server.wait_for_log("DHCP4_DB_RECONNECT_LOST_CONNECTION", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    std::thread::sleep(Duration::from_millis(300)); // the rescope is on its way to the kernel
    let down = lab.capture_segment(venus::LAN, &filter).unwrap();
    let (offers, acked) = perfdhcp(&lab, 20, 40, 3, "02:bb:00:00:00:00");
    for c in &clients {
        assert!(c.renew(Duration::from_secs(3)).is_err(), "a renewal was answered while the database was down");
    }
    let down = down.stop().unwrap().packets().unwrap();
    assert_eq!((offers, acked), (0, 0), "perfdhcp was answered while the database was down");
    let replies: Vec<_> = down.into_iter().filter(|p| p.contains("BOOTP/DHCP, Reply")).collect();
    assert!(replies.is_empty(), "replies while the database was down:\n{}", replies.join("\n"));
    let log = server.log();
    for id in ["DATABASE_PGSQL_FATAL_ERROR", "DHCP4_DB_RECONNECT_LOST_CONNECTION", "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_FAILED", "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_SCHEDULE"] {
        assert!(log.contains(id), "no {id} in the log:\n{log}");
    }
    assert!(server.is_running());

    // Back: service returns within reconnect-wait-time of the database.
    pg.start_server().unwrap();
    let back = Instant::now();
    server.wait_for_log("DHCP4_DB_RECONNECT_SUCCEEDED", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    let took = back.elapsed();
    assert!(took <= Duration::from_millis(WAIT_MS) + SLACK, "reconnected {took:?} after the database returned");
    for c in &clients {
        c.renew(T).unwrap_or_else(|e| panic!("no renewal after the database returned: {e:#}\n{}", server.log()));
    }
    let (offers, acked) = perfdhcp(&lab, 20, 20, 2, "02:cc:00:00:00:00");
    assert!(offers > 0 && acked > 0, "no new leases after the database returned:\n{}", server.log());

    // Every ACK on the wire, before, during and after, is a committed row
    // of that client, and no address went to two clients.
    let all = all.stop().unwrap().packets().unwrap();
    let acks = acks(&all);
    assert!(acks.len() >= 6, "too few ACKs seen: {acks:?}");
    let rows = rows(&pg, &db);
    let mut holder: HashMap<Ipv4Addr, &str> = HashMap::new();
    for (addr, mac) in &acks {
        assert_eq!(rows.get(addr), Some(mac), "{addr} acked to {mac} but the database says {:?}", rows.get(addr));
        let first = holder.entry(*addr).or_insert(mac.as_str());
        assert_eq!(first, mac, "{addr} acked to two clients");
    }
    server.stop(Duration::from_secs(10)).unwrap();
}

#[test]
fn retries_exhausted_exit_or_serve_on() {
    let mut pg = Postgres::start().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    lab.run(&venus::client(1), &["ip", "addr", "add", RELAY, "dev", "eth0"]).unwrap();

    // stop-retry-exit, 2 tries 200 ms apart: the server exits, failing.
    let config = write_config(&lab, &pg, &db, 2, 200, "stop-retry-exit");
    let mut server = start_xdhcpd(&lab, &config);
    lab.dhclient(&venus::client(2)).unwrap().obtain(T).unwrap();
    pg.stop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_status().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after its retries:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "exited with {status:?}");
    let log = server.log();
    for id in ["DHCP4_DB_RECONNECT_LOST_CONNECTION", "attempt 2 of 2", "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_FAILED", "DHCP4_DB_RECONNECT_FAILED"] {
        assert!(log.contains(id), "no {id} in the log:\n{log}");
    }

    // serve-retry-continue: runs on after its retries, acking nothing.
    pg.start_server().unwrap();
    let config = write_config(&lab, &pg, &db, 1, 200, "serve-retry-continue");
    let mut server = start_xdhcpd(&lab, &config);
    pg.stop().unwrap();
    server.wait_for_log("DHCP4_DB_RECONNECT_FAILED", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    let (_, acked) = perfdhcp(&lab, 10, 10, 2, "02:dd:00:00:00:00");
    assert_eq!(acked, 0, "acked without a database:\n{}", server.log());
    assert!(server.is_running(), "serve-retry-continue exited:\n{}", server.log());
    server.stop(Duration::from_secs(10)).unwrap();
}
