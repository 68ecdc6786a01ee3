//! Three xdhcpd servers (XDP attached) on one PostgreSQL database serving
//! one LAN of real dhclient clients, no HA. Half the clients get leases,
//! then another writer (standing in for a server the three never heard
//! of) takes the next free addresses in the database behind their backs,
//! so their memories are stale when the other half arrive; then each
//! server is killed in turn (SIGKILL) and started again while the clients
//! keep renewing and rebinding on short timers. From a capture of every
//! ACK on the LAN:
//!
//! - no address is ever held by two clients (an ACK of an address to a
//!   client while another client's ACKed lease, or the other writer's
//!   row, on it has not run out);
//! - no committed lease is lost: each client's last ACK is in the database
//!   with that client and at least that expiration;
//! - mutante3 is only ever given its reservation;
//! - every client is bound at the end;
//! - a request whose insert lost the race to the other writer's row is
//!   decided again at once, never left unanswered.
//!
//! The shared-database rule that makes this hold with kernel answers is in
//! `dhcp-user/src/leases/pgsql/shared.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::postgres::Database;
use lab::process::Process;
use lab::{Host, Ipv4Cidr, Lab, Mac, Postgres, Role, venus};
use serde_json::json;

mod common;
use common::dhcp_packets;

const T: Duration = Duration::from_secs(30);
/// The third server, beside venus's two.
const THIRD: &str = "coloso";
const THIRD_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 4);
const SERVERS: [&str; 3] = [venus::PRIMARY, venus::STANDBY, THIRD];
/// Clients (mutante3 has a reservation).
const CLIENTS: usize = 8;
/// Short timers, so killing a server sends its clients to the others
/// (rebinding) within seconds.
const VALID: u64 = 16;
const RENEW: u64 = 5;
const REBIND: u64 = 9;

/// Rows the other writer adds behind the servers' backs.
const OUTSIDER_ROWS: usize = 3;

/// Inserts `n` hour-long leases for made-up clients on the lowest pool
/// addresses the database has no row for; returns (address, MAC).
fn outsider_rows(pg: &Postgres, db: &Database, n: usize) -> Vec<(Ipv4Addr, String)> {
    let used = pg.kea_lease_dump(db).unwrap();
    let free = (u32::from(venus::POOL_FIRST)..=u32::from(venus::POOL_LAST))
        .map(Ipv4Addr::from)
        .filter(|a| !used.contains(&format!("\n{a},")))
        .take(n);
    free.enumerate()
        .map(|(i, addr)| {
            let mac = format!("0a:00:00:00:00:{:02x}", i + 1);
            let sql = format!(
                "INSERT INTO lease4 (address, hwaddr, client_id, valid_lifetime, expire, subnet_id, fqdn_fwd, fqdn_rev, \
                 hostname, state, user_context) VALUES ({}, '\\x{}'::bytea, ''::bytea, 3600, now() + interval '1 hour', 1, \
                 false, false, '', 0, '')",
                u32::from(addr),
                mac.replace(':', "")
            );
            pg.psql(&db.name, &sql).unwrap();
            (addr, mac)
        })
        .collect()
}

fn write_config(lab: &Lab, server: &str, pg: &Postgres, db: &Database) -> PathBuf {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set("/Dhcp4/valid-lifetime", json!(VALID)).unwrap();
    cfg.set("/Dhcp4/renew-timer", json!(RENEW)).unwrap();
    cfg.set("/Dhcp4/rebind-timer", json!(REBIND)).unwrap();
    cfg.set(
        "/Dhcp4/lease-database",
        json!({ "type": "postgresql", "name": db.name, "host": pg.host(), "port": pg.port(),
                "user": db.user, "password": db.password, "max-reconnect-tries": 10, "reconnect-wait-time": 500 }),
    )
    .unwrap();
    let path = lab.host_dir(server).unwrap().join("xdhcpd-shared.json");
    cfg.write(&path).unwrap();
    path
}

fn start(lab: &Lab, server: &str, config: &Path) -> Process {
    let argv = [env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", config.to_str().unwrap()];
    let mut p = lab.spawn(server, "xdhcpd", &argv).unwrap();
    p.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
    p
}

/// tcpdump's time of day, in seconds.
fn time_of(packet: &str) -> f64 {
    let hms = packet.split_whitespace().next().unwrap();
    let mut f = hms.split(':').map(|x| x.parse::<f64>().unwrap());
    let (h, m, s) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    h * 3600.0 + m * 60.0 + s
}

fn field(packet: &str, key: &str) -> Option<String> {
    packet.split(key).nth(1).and_then(|r| r.split_whitespace().next()).map(|v| v.trim_end_matches(',').to_owned())
}

/// Every ACK on the wire: (time, address, client MAC, lease time).
fn acks(packets: &[String]) -> Vec<(f64, Ipv4Addr, String, u64)> {
    let mut out: Vec<_> = dhcp_packets(packets, "ACK")
        .iter()
        .map(|p| {
            let lease = field(p, "Lease-Time (51), length 4: ").and_then(|v| v.parse().ok()).unwrap_or(VALID);
            (time_of(p), field(p, "Your-IP ").unwrap().parse().unwrap(), field(p, "Client-Ethernet-Address ").unwrap(), lease)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

#[test]
fn three_servers_one_database_each_killed_in_turn() {
    let pg = Postgres::start().unwrap();
    let db = pg.create_kea_database("kea", "kea", "kea-pw").unwrap();
    let topology = venus::topology(CLIENTS).unwrap().host(Host::new(THIRD, Role::Server).port(
        venus::LAN,
        Some(Ipv4Cidr::new(THIRD_LAN, 24)),
        Some(Mac::local(0x50, 4)),
    ));
    let lab = Lab::up(topology).unwrap();
    let configs: Vec<PathBuf> = SERVERS.iter().map(|s| write_config(&lab, s, &pg, &db)).collect();
    let capture = lab.capture_segment(venus::LAN, &["udp", "port", "67", "or", "udp", "port", "68"]).unwrap();
    let mut servers: Vec<Process> = SERVERS.iter().zip(&configs).map(|(s, c)| start(&lab, s, c)).collect();
    let logs = |servers: &mut [Process]| servers.iter().map(|p| p.log()).collect::<Vec<_>>().join("\n----\n");

    let clients: Vec<_> = (1..=CLIENTS).map(|n| lab.dhclient(&venus::client(n)).unwrap()).collect();
    for c in &clients[..CLIENTS / 2] {
        c.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&mut servers)));
    }
    // The other writer takes the next free pool addresses for an hour.
    let taken = outsider_rows(&pg, &db, OUTSIDER_ROWS);
    for c in &clients[CLIENTS / 2..] {
        c.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&mut servers)));
    }
    // Their first offers were of the other writer's addresses (memories
    // are stale): each REQUEST's insert lost the race; it is decided again
    // once the row is read back (a NAK, and the client starts over at
    // once), never left unanswered until the client retransmits. Read
    // before the kills below replace the servers' logs.
    let raced = logs(&mut servers);
    for l in raced.lines().filter(|l| l.contains("decided again")) {
        eprintln!("{l}");
    }
    assert!(raced.contains("request decided again"), "no lost race was decided again:\n{raced}");
    assert!(!raced.contains("reply withheld"), "a reply was withheld:\n{raced}");
    // Each server killed in turn: its clients' renewals go unanswered and
    // they rebind to the others; then it starts again from the database.
    for i in 0..SERVERS.len() {
        servers[i].kill().unwrap();
        std::thread::sleep(Duration::from_secs(VALID));
        servers[i] = start(&lab, SERVERS[i], &configs[i]);
        std::thread::sleep(Duration::from_secs(RENEW));
    }
    std::thread::sleep(Duration::from_secs(2)); // the last kernel ACKs reach the database
    let packets = capture.stop().unwrap().packets().unwrap();
    let acks = acks(&packets);
    let rows: HashMap<Ipv4Addr, String> = {
        let dump = pg.kea_lease_dump(&db).unwrap();
        let mut lines = dump.lines();
        let schema = dhcp_user::leases::csv::Schema::parse_header(lines.next().unwrap()).unwrap();
        lines
            .map(|l| dhcp_user::leases::pgsql::transfer::from_dump(schema.parse_row(l).unwrap()))
            .map(|l| (l.address, format!("{}|{}", l.hwaddr.map(|h| h.to_string()).unwrap_or_default(), l.expire)))
            .collect()
    };
    let all_logs = logs(&mut servers);
    assert!(acks.len() >= CLIENTS * 4, "too few ACKs: {}\n{all_logs}", acks.len());
    for (addr, mac) in &taken {
        assert_eq!(rows.get(addr).and_then(|r| r.split_once('|')).map(|r| r.0), Some(mac.as_str()), "the other writer's {addr} was overwritten");
    }
    assert!(all_logs.contains("lease adopted from the database"), "no server ever met the other writer's rows:\n{all_logs}");

    // No address held by two clients: on each address, an ACK to another
    // client only after the previous holder's lease ran out.
    let mut holder: HashMap<Ipv4Addr, (String, f64)> = taken.iter().map(|(a, m)| (*a, (m.clone(), f64::INFINITY))).collect();
    for (t, addr, mac, lease) in &acks {
        if let Some((prev, until)) = holder.get(addr)
            && prev != mac
        {
            assert!(*t >= *until, "{addr} acked to {mac} at {t} while {prev} held it until {until}\n{all_logs}");
        }
        let until = holder.get(addr).filter(|(m, _)| m == mac).map_or(0.0, |h| h.1).max(t + *lease as f64);
        holder.insert(*addr, (mac.clone(), until));
    }

    // The reservation, always.
    let m3 = venus::client_mac(venus::RESERVED_CLIENT).to_string();
    let m3_acks: Vec<_> = acks.iter().filter(|a| a.2 == m3).collect();
    assert!(!m3_acks.is_empty() && m3_acks.iter().all(|a| a.1 == venus::RESERVED_ADDR), "{m3_acks:?}");

    // No lost commit: each client's last ACK is its row, expiring no
    // earlier than that ACK said (the database keeps seconds; tcpdump's
    // clock is this machine's, as the servers').
    let mut last: BTreeMap<String, (f64, Ipv4Addr, u64)> = BTreeMap::new();
    for (t, addr, mac, lease) in &acks {
        last.insert(mac.clone(), (*t, *addr, *lease));
    }
    assert_eq!(last.len(), CLIENTS, "not every client was acked: {last:?}");
    let day_start = {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        now - now % 86_400
    };
    for (mac, (t, addr, lease)) in &last {
        let row = rows.get(addr).unwrap_or_else(|| panic!("{mac}'s last lease {addr} is not in the database: {rows:?}"));
        let (row_mac, expire) = row.split_once('|').unwrap();
        assert_eq!(row_mac, mac, "{addr}: the database holds {row_mac}, {mac} was acked last");
        let acked_until = day_start as f64 + t + *lease as f64;
        assert!(expire.parse::<f64>().unwrap() >= acked_until.floor() - 1.0, "{addr} of {mac}: row expires {expire}, acked until {acked_until}");
    }
    // Every client still has an address.
    for c in &clients {
        assert!(c.lease().unwrap().is_some(), "{} unbound", c.iface());
    }
    for s in &mut servers {
        s.stop(Duration::from_secs(10)).unwrap();
    }
}
