//! HA drills in the `venus` lab: two xdhcpd servers (lobezno primary,
//! tormenta standby) with the checked-in hot-standby configs, real
//! dhclient clients, XDP attached. Each drill measures the seconds until
//! the survivor serves and checks what the mission promises: no ACKed
//! lease lost, no address held by two clients, mutante3 keeps its
//! reserved address.

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use common::{T, Xdhcpd};
use lab::{Lab, venus};

/// Long enough for waiting → syncing → ready → hot-standby on both sides.
const HA_UP: Duration = Duration::from_secs(30);

fn start(lab: &Lab, host: &str) -> Xdhcpd {
    let cfg = venus::kea_config(host).unwrap();
    Xdhcpd::start(lab, host, &cfg, &[])
}

fn wait_state(x: &mut Xdhcpd, host: &str, state: &str, timeout: Duration) {
    let needle = format!("→ {state}");
    x.process
        .wait_for_log(&needle, timeout)
        .unwrap_or_else(|e| panic!("{host} never reached {state}: {e:#}\n{}", x.process.log()));
}

/// Both servers up and in hot-standby.
fn pair(lab: &Lab) -> (Xdhcpd, Xdhcpd) {
    let mut p = start(lab, venus::PRIMARY);
    let mut s = start(lab, venus::STANDBY);
    wait_state(&mut p, "lobezno", "hot-standby", HA_UP);
    wait_state(&mut s, "tormenta", "hot-standby", HA_UP);
    (p, s)
}

/// Current row per address in a Kea lease file (the last one wins).
fn current(x: &Xdhcpd) -> BTreeMap<String, Vec<String>> {
    x.rows().into_iter().map(|r| (r[0].clone(), r)).collect()
}

/// Every address any client holds, asserting no two clients share one.
fn assert_no_duplicates(held: &[(String, Ipv4Addr)]) {
    let mut by_addr: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for (client, a) in held {
        if let Some(other) = by_addr.insert(*a, client) {
            panic!("{a} held by both {other} and {client}");
        }
    }
}

#[test]
fn kill_primary_standby_takes_over_primary_rejoins() {
    let lab = Lab::up(venus::topology(5).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);

    // Clients lease through the primary; each ACK waited for the standby.
    let mut held = Vec::new();
    let mut clients = BTreeMap::new();
    for n in [1, 2, 3] {
        let c = lab.dhclient(&venus::client(n)).unwrap();
        let l = c.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", primary.process.log()));
        assert_eq!(l.server_id, venus::PRIMARY_LAN, "hot-standby: the primary answers");
        held.push((venus::client(n), l.address));
        clients.insert(n, c);
    }
    assert_eq!(held[2].1, venus::RESERVED_ADDR, "mutante3 gets its reservation");
    let on_standby = current(&standby);
    for (c, a) in &held {
        let row = on_standby.get(&a.to_string()).unwrap_or_else(|| panic!("{c}'s {a} not replicated: {on_standby:?}"));
        assert_eq!(row[9], "0", "{row:?}");
    }

    // SIGKILL the primary: the standby must serve on its own.
    primary.process.kill().unwrap();
    let killed = Instant::now();
    wait_state(&mut standby, "tormenta", "partner-down", Duration::from_secs(20));
    let takeover = killed.elapsed();
    let m4 = lab.dhclient(&venus::client(4)).unwrap();
    let l4 = m4.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", standby.process.log()));
    let serving = killed.elapsed();
    assert_eq!(l4.server_id, venus::STANDBY_LAN);
    held.push((venus::client(4), l4.address));
    // Old clients keep their addresses with the standby; mutante3 too.
    for n in [1, 3] {
        let again = clients[&n].renew(T).unwrap_or_else(|e| panic!("{e:#}\n{}", standby.process.log()));
        assert_eq!(again.address, held[n - 1].1, "mutante{n} lost its address");
        assert_eq!(again.server_id, venus::STANDBY_LAN);
    }
    assert_no_duplicates(&held);
    eprintln!("drill kill-primary: partner-down after {takeover:?}, new client served after {serving:?}");

    // The primary restarts from its lease file, resyncs, and the pair
    // returns to hot-standby with the primary serving.
    let mut primary = start(&lab, venus::PRIMARY);
    wait_state(&mut primary, "lobezno", "syncing", HA_UP);
    wait_state(&mut primary, "lobezno", "hot-standby", HA_UP);
    wait_state(&mut standby, "tormenta", "hot-standby", HA_UP);
    let synced = current(&primary);
    assert!(synced.contains_key(&l4.address.to_string()), "mutante4's lease from the standby not synced: {synced:?}");
    let m5 = lab.dhclient(&venus::client(5)).unwrap();
    let l5 = m5.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", primary.process.log()));
    assert_eq!(l5.server_id, venus::PRIMARY_LAN, "the primary serves again");
    held.push((venus::client(5), l5.address));
    assert_no_duplicates(&held);
}
