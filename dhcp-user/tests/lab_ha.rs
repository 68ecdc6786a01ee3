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

/// Waits until `host` entered `state` for the `n`-th time (logs keep
/// earlier transitions).
fn wait_nth(x: &mut Xdhcpd, host: &str, state: &str, n: usize, timeout: Duration) {
    let needle = format!("→ {state}");
    let until = Instant::now() + timeout;
    while x.process.log().matches(&needle).count() < n {
        assert!(Instant::now() < until, "{host} never entered {state} {n} times:\n{}", x.process.log());
        std::thread::sleep(Duration::from_millis(100));
    }
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

/// A venus config with HA parameters changed (`(key, value)` on the
/// relationship entry) and optionally the standby turned secondary.
fn config(host: &str, params: &[(&str, serde_json::Value)], load_balancing: bool) -> lab::KeaConfig {
    let mut cfg = venus::kea_config(host).unwrap();
    let base = "/Dhcp4/hooks-libraries/1/parameters/high-availability/0";
    for (k, v) in params {
        cfg.set(&format!("{base}/{k}"), v.clone()).unwrap();
    }
    if load_balancing {
        cfg.set(&format!("{base}/mode"), serde_json::json!("load-balancing")).unwrap();
        cfg.set(&format!("{base}/peers/1/role"), serde_json::json!("secondary")).unwrap();
    }
    cfg
}

/// Leases `n` clients, returning (client, address, server id).
fn lease_all(lab: &Lab, ns: &[usize], log: &dyn Fn() -> String) -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    ns.iter()
        .map(|&n| {
            let l = lab.dhclient(&venus::client(n)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
            (venus::client(n), l.address, l.server_id)
        })
        .collect()
}

#[test]
fn freeze_primary_longer_than_max_response_delay() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let before = lease_all(&lab, &[1, 3], &|| primary.process.log());
    primary.process.pause().unwrap();
    let frozen = Instant::now();
    wait_state(&mut standby, "tormenta", "partner-down", Duration::from_secs(20));
    let takeover = frozen.elapsed();
    let during = lease_all(&lab, &[2], &|| standby.process.log());
    assert_eq!(during[0].2, venus::STANDBY_LAN);
    std::thread::sleep(Duration::from_secs(1));
    primary.process.resume().unwrap();
    // The thawed primary finds its partner in partner-down, goes back to
    // waiting and resyncs; then both return to normal.
    wait_nth(&mut primary, "lobezno", "hot-standby", 2, HA_UP);
    wait_nth(&mut standby, "tormenta", "hot-standby", 2, HA_UP);
    let synced = current(&primary);
    assert!(synced.contains_key(&during[0].1.to_string()), "lease made while frozen not synced: {synced:?}");
    let after = lease_all(&lab, &[4], &|| primary.process.log());
    let held: Vec<_> = before.iter().chain(&during).chain(&after).map(|(c, a, _)| (c.clone(), *a)).collect();
    assert_eq!(held[1].1, venus::RESERVED_ADDR);
    assert_no_duplicates(&held);
    eprintln!("drill freeze-primary: partner-down after {takeover:?}");
}

#[test]
fn standby_loss_then_graceful_primary_stop() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    // The standby dies: the primary goes on alone (updates unsent).
    standby.process.kill().unwrap();
    wait_state(&mut primary, "lobezno", "partner-down", Duration::from_secs(20));
    let alone = lease_all(&lab, &[1, 3], &|| primary.process.log());
    assert!(alone.iter().all(|(_, _, sid)| *sid == venus::PRIMARY_LAN));
    // It comes back, pulls the primary's leases, both normal again.
    let mut standby = start(&lab, venus::STANDBY);
    wait_state(&mut standby, "tormenta", "hot-standby", HA_UP);
    wait_state(&mut primary, "lobezno", "hot-standby", HA_UP);
    let synced = current(&standby);
    for (c, a, _) in &alone {
        assert!(synced.contains_key(&a.to_string()), "{c}'s {a} not pulled by the standby: {synced:?}");
    }
    // Graceful stop of the primary: the standby takes over.
    primary.process.stop(T).unwrap();
    let stopped = Instant::now();
    wait_state(&mut standby, "tormenta", "partner-down", Duration::from_secs(20));
    let after = lease_all(&lab, &[2], &|| standby.process.log());
    assert_eq!(after[0].2, venus::STANDBY_LAN);
    eprintln!("drill graceful-stop: standby serving after {:?}", stopped.elapsed());
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    assert_eq!(m1.renew(T).unwrap().address, alone[0].1, "mutante1 kept its address");
    let held: Vec<_> = alone.iter().chain(&after).map(|(c, a, _)| (c.clone(), *a)).collect();
    assert_no_duplicates(&held);
}

#[test]
fn both_servers_restarted_from_disk() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let before = lease_all(&lab, &[1, 2, 3], &|| primary.process.log());
    primary.process.kill().unwrap();
    standby.process.kill().unwrap();
    let (mut primary, mut standby) = (start(&lab, venus::PRIMARY), start(&lab, venus::STANDBY));
    wait_state(&mut primary, "lobezno", "hot-standby", HA_UP);
    wait_state(&mut standby, "tormenta", "hot-standby", HA_UP);
    for (n, (c, a, _)) in before.iter().enumerate() {
        let again = lab.dhclient(c).unwrap().renew(T).unwrap_or_else(|e| panic!("{e:#}\n{}", primary.process.log()));
        assert_eq!(again.address, *a, "client {n} lost its address across the double restart");
    }
}

#[test]
fn ha_link_cut_gives_no_split_brain() {
    // Clients still reach both servers. With max-unacked-clients > 0 the
    // standby only takes over when clients go unanswered, which they do
    // not: the primary answers them. So one server allocates, never two.
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let params = [("max-unacked-clients", serde_json::json!(2)), ("max-ack-delay", serde_json::json!(1000))];
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &config(venus::PRIMARY, &params, false), &[]);
    let mut standby = Xdhcpd::start(&lab, venus::STANDBY, &config(venus::STANDBY, &params, false), &[]);
    wait_state(&mut primary, "lobezno", "hot-standby", HA_UP);
    wait_state(&mut standby, "tormenta", "hot-standby", HA_UP);
    lab.cut_link(venus::PRIMARY, venus::HA).unwrap();
    wait_state(&mut primary, "lobezno", "partner-down", Duration::from_secs(20));
    let during = lease_all(&lab, &[1, 2, 3], &|| primary.process.log());
    for (c, _, sid) in &during {
        assert_eq!(*sid, venus::PRIMARY_LAN, "{c} answered by the standby during the cut");
    }
    assert!(!standby.process.log().contains("→ partner-down"), "standby took over although clients were served:\n{}", standby.process.log());
    lab.restore_link(venus::PRIMARY, venus::HA).unwrap();
    // The standby sees the primary in partner-down, resyncs, pair normal.
    wait_nth(&mut standby, "tormenta", "hot-standby", 2, HA_UP);
    let synced = current(&standby);
    for (c, a, _) in &during {
        assert!(synced.contains_key(&a.to_string()), "{c}'s {a} not resynced: {synced:?}");
    }
    let held: Vec<_> = during.iter().map(|(c, a, _)| (c.clone(), *a)).collect();
    assert_no_duplicates(&held);
}

#[test]
fn load_balancing_splits_clients_and_survives_a_death() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &config(venus::PRIMARY, &[], true), &[]);
    let mut secondary = Xdhcpd::start(&lab, venus::STANDBY, &config(venus::STANDBY, &[], true), &[]);
    wait_state(&mut primary, "lobezno", "load-balancing", HA_UP);
    wait_state(&mut secondary, "tormenta", "load-balancing", HA_UP);
    // RFC 3074 buckets of the chaddrs (Kea's table): mutante1 → 133 (odd,
    // secondary), mutante3 → 182 (even, primary).
    let got = lease_all(&lab, &[1, 3], &|| format!("{}\n{}", primary.process.log(), secondary.process.log()));
    assert_eq!(got[0].2, venus::STANDBY_LAN, "mutante1 belongs to the secondary");
    assert_eq!((got[1].1, got[1].2), (venus::RESERVED_ADDR, venus::PRIMARY_LAN), "mutante3 belongs to the primary");
    // Each server has the other's leases (updates both ways).
    assert!(current(&primary).contains_key(&got[0].1.to_string()));
    assert!(current(&secondary).contains_key(&got[1].1.to_string()));
    // The secondary dies: the primary serves everyone.
    secondary.process.kill().unwrap();
    wait_state(&mut primary, "lobezno", "partner-down", Duration::from_secs(20));
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let again = m1.renew(T).unwrap_or_else(|e| panic!("{e:#}\n{}", primary.process.log()));
    assert_eq!((again.address, again.server_id), (got[0].1, venus::PRIMARY_LAN));
    let more = lease_all(&lab, &[2, 4], &|| primary.process.log());
    let held: Vec<_> = got.iter().chain(&more).map(|(c, a, _)| (c.clone(), *a)).collect();
    assert_no_duplicates(&held);
}
