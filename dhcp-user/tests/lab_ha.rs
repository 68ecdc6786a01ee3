//! HA drills in the `venus` lab: two xdhcpd servers (lobezno primary,
//! tormenta standby) with the checked-in hot-standby configs, real
//! dhclient clients, XDP attached. Each drill runs through
//! [`common::drill`]: background probers keep clients re-obtaining their
//! leases while a server fails, so every drill reports the seconds until
//! the survivor serves and the client-visible outage, and checks what the
//! mission promises: no ACKed lease lost, no address held by two clients,
//! mutante3 keeps its reserved address. `cargo xtask drill` runs them
//! repeatedly and writes DRILLS.md.

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use common::drill::Drill;
use common::{T, Xdhcpd};
use lab::{Lab, venus};

/// Long enough for waiting → syncing → ready → hot-standby on both sides.
const HA_UP: Duration = Duration::from_secs(30);
/// Bound on a takeover (max-response-delay is 3 s).
const TAKEOVER: Duration = Duration::from_secs(20);

fn start(lab: &Lab, host: &str) -> Xdhcpd {
    let cfg = venus::kea_config(host).unwrap();
    Xdhcpd::start(lab, host, &cfg, &[])
}

/// Both servers up and in hot-standby.
fn pair(lab: &Lab) -> (Xdhcpd, Xdhcpd) {
    let mut p = start(lab, venus::PRIMARY);
    let mut s = start(lab, venus::STANDBY);
    p.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    (p, s)
}

/// Current row per address in a Kea lease file (the last one wins).
fn current(x: &Xdhcpd) -> BTreeMap<String, Vec<String>> {
    x.rows().into_iter().map(|r| (r[0].clone(), r)).collect()
}

/// The servers' logs, for failure messages.
fn logs(xs: &[&Xdhcpd]) -> String {
    xs.iter().map(|x| format!("--- {} ---\n{}", x.process.host(), x.process.log())).collect()
}

/// The newest address `client` was answered with in this drill.
fn address_of(drill: &Drill, client: &str) -> Ipv4Addr {
    drill
        .samples()
        .iter()
        .rev()
        .find_map(|s| s.lease.as_ref().filter(|_| s.client == client).map(|l| l.address))
        .unwrap_or_else(|| panic!("{client} was never answered"))
}

/// `client`'s first answer in this drill came from `server`.
fn first_from(drill: &Drill, client: &str, server: Ipv4Addr) {
    let first = drill.samples().into_iter().find_map(|s| s.lease.filter(|_| s.client == client));
    let first = first.unwrap_or_else(|| panic!("{client} was never answered"));
    assert_eq!(first.server_id, server, "{client} first answered by {} instead of {server}", first.server_id);
}

/// Every answer `client` got after `since` came from `server`.
fn all_from(drill: &Drill, client: &str, since: Instant, server: Ipv4Addr) {
    for s in drill.samples().iter().filter(|s| s.client == client && s.started >= since) {
        if let Some(l) = &s.lease {
            assert_eq!(l.server_id, server, "{client} answered by {} instead of {server}", l.server_id);
        }
    }
}

#[test]
fn kill_primary_standby_takes_over_primary_rejoins() {
    let lab = Lab::up(venus::topology(5).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let mut drill = Drill::new(&lab, "kill-primary");
    let m3 = venus::client(venus::RESERVED_CLIENT);

    // Clients lease through the primary; each ACK waited for the standby.
    for n in [1, 2] {
        let l = drill.obtain(&venus::client(n), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
        assert_eq!(l.server_id, venus::PRIMARY_LAN, "hot-standby: the primary answers");
    }
    drill.probe(&m3);
    let l3 = drill.wait_answer(&m3, venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(l3.address, venus::RESERVED_ADDR, "mutante3 gets its reservation");
    let on_standby = current(&standby);
    for c in [venus::client(1), venus::client(2), m3.clone()] {
        let a = address_of(&drill, &c);
        let row = on_standby.get(&a.to_string()).unwrap_or_else(|| panic!("{c}'s {a} not replicated: {on_standby:?}"));
        assert_eq!(row[9], "0", "{row:?}");
    }

    // SIGKILL the primary: the standby must serve on its own.
    primary.process.kill().unwrap();
    drill.fault("primary SIGKILL", venus::STANDBY_LAN);
    standby.wait_ha("tormenta", "partner-down", 1, TAKEOVER);
    drill.wait_served_by(venus::STANDBY_LAN, TAKEOVER).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    let l4 = drill.obtain(&venus::client(4), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    assert_eq!(l4.server_id, venus::STANDBY_LAN);
    // Old clients keep their addresses with the standby; mutante3 too.
    let m1 = venus::client(1);
    let before = address_of(&drill, &m1);
    let again = drill.renew(&m1, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    assert_eq!((again.address, again.server_id), (before, venus::STANDBY_LAN), "mutante1 lost its address");

    // The primary restarts from its lease file, resyncs, and the pair
    // returns to hot-standby with the primary serving.
    let mut primary = start(&lab, venus::PRIMARY);
    drill.recovery("primary restarted", venus::PRIMARY_LAN);
    primary.wait_ha("lobezno", "syncing", 1, HA_UP);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let synced = current(&primary);
    assert!(synced.contains_key(&l4.address.to_string()), "mutante4's lease from the standby not synced: {synced:?}");
    let l5 = drill.obtain(&venus::client(5), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(l5.server_id, venus::PRIMARY_LAN, "the primary serves again");
    drill.finish(&[("lobezno", &primary.leases), ("tormenta", &standby.leases)]).assert_ok();
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

#[test]
fn freeze_primary_longer_than_max_response_delay() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let mut drill = Drill::new(&lab, "freeze-primary");
    drill.obtain(&venus::client(1), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    drill.probe(&venus::client(3));
    drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    primary.process.pause().unwrap();
    drill.fault("primary SIGSTOP", venus::STANDBY_LAN);
    // A new client tries from the first moment: only the standby can
    // allocate (a frozen primary's kernel program still renews known
    // leases, never allocates).
    drill.probe(&venus::client(2));
    standby.wait_ha("tormenta", "partner-down", 1, TAKEOVER);
    drill.wait_answer(&venus::client(2), venus::STANDBY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    first_from(&drill, &venus::client(2), venus::STANDBY_LAN);
    std::thread::sleep(Duration::from_secs(1));
    primary.process.resume().unwrap();
    drill.recovery("primary SIGCONT", venus::PRIMARY_LAN);
    // The thawed primary finds its partner in partner-down, goes back to
    // waiting and resyncs; then both return to normal.
    primary.wait_ha("lobezno", "hot-standby", 2, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    let synced = current(&primary);
    let during = address_of(&drill, &venus::client(2));
    assert!(synced.contains_key(&during.to_string()), "lease made while frozen not synced: {synced:?}");
    drill.obtain(&venus::client(4), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(address_of(&drill, &venus::client(3)), venus::RESERVED_ADDR);
    drill.finish(&[("lobezno", &primary.leases), ("tormenta", &standby.leases)]).assert_ok();
}

#[test]
fn standby_loss_then_graceful_primary_stop() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let mut drill = Drill::new(&lab, "standby-loss-then-graceful-stop");
    let (m1, m3) = (venus::client(1), venus::client(3));
    drill.probe(&m3);
    drill.wait_answer(&m3, venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    // The standby dies: the primary goes on alone (updates unsent).
    standby.process.kill().unwrap();
    let lost_standby = Instant::now();
    drill.fault("standby SIGKILL", venus::PRIMARY_LAN);
    primary.wait_ha("lobezno", "partner-down", 1, TAKEOVER);
    let alone = drill.obtain(&m1, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(alone.server_id, venus::PRIMARY_LAN);
    all_from(&drill, &m3, lost_standby, venus::PRIMARY_LAN);
    // It comes back, pulls the primary's leases, both normal again.
    let mut standby = start(&lab, venus::STANDBY);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    let synced = current(&standby);
    for c in [&m1, &m3] {
        let a = address_of(&drill, c);
        assert!(synced.contains_key(&a.to_string()), "{c}'s {a} not pulled by the standby: {synced:?}");
    }
    // Graceful stop of the primary: the standby takes over.
    drill.fault("primary SIGTERM", venus::STANDBY_LAN);
    primary.process.stop(T).unwrap();
    standby.wait_ha("tormenta", "partner-down", 1, TAKEOVER);
    drill.wait_served_by(venus::STANDBY_LAN, TAKEOVER).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    let after = drill.obtain(&venus::client(2), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&standby])));
    assert_eq!(after.server_id, venus::STANDBY_LAN);
    assert_eq!(drill.renew(&m1, T).unwrap().address, alone.address, "mutante1 kept its address");
    drill.finish(&[("tormenta", &standby.leases)]).assert_ok();
}

#[test]
fn both_servers_restarted_from_disk() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (mut primary, mut standby) = pair(&lab);
    let mut drill = Drill::new(&lab, "double-restart");
    for n in [1, 2] {
        drill.obtain(&venus::client(n), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    }
    drill.probe(&venus::client(3));
    drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    let before: Vec<_> = (1..=3).map(|n| (venus::client(n), address_of(&drill, &venus::client(n)))).collect();
    primary.process.kill().unwrap();
    standby.process.kill().unwrap();
    drill.fault("both SIGKILL, both restarted", venus::PRIMARY_LAN);
    let (mut primary, mut standby) = (start(&lab, venus::PRIMARY), start(&lab, venus::STANDBY));
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    for (c, a) in &before[..2] {
        let again = drill.renew(c, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
        assert_eq!(again.address, *a, "{c} lost its address across the double restart");
    }
    let l3 = drill.wait_answer(&before[2].0, venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(l3.address, before[2].1);
    drill.finish(&[("lobezno", &primary.leases), ("tormenta", &standby.leases)]).assert_ok();
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
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let mut drill = Drill::new(&lab, "ha-link-cut");
    drill.probe(&venus::client(3));
    drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    lab.cut_link(venus::PRIMARY, venus::HA).unwrap();
    let cut = Instant::now();
    drill.fault("HA link cut", venus::PRIMARY_LAN);
    primary.wait_ha("lobezno", "partner-down", 1, TAKEOVER);
    for n in [1, 2] {
        let l = drill.obtain(&venus::client(n), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
        assert_eq!(l.server_id, venus::PRIMARY_LAN, "mutante{n} answered by the standby during the cut");
    }
    all_from(&drill, &venus::client(3), cut, venus::PRIMARY_LAN);
    assert!(!standby.process.log().contains("→ partner-down"), "standby took over although clients were served:\n{}", standby.process.log());
    lab.restore_link(venus::PRIMARY, venus::HA).unwrap();
    // The standby sees the primary in partner-down, resyncs, pair normal.
    standby.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    let synced = current(&standby);
    for c in (1..=3).map(venus::client) {
        let a = address_of(&drill, &c);
        assert!(synced.contains_key(&a.to_string()), "{c}'s {a} not resynced: {synced:?}");
    }
    drill.finish(&[("lobezno", &primary.leases), ("tormenta", &standby.leases)]).assert_ok();
}

#[test]
fn load_balancing_splits_clients_and_survives_a_death() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &config(venus::PRIMARY, &[], true), &[]);
    let mut secondary = Xdhcpd::start(&lab, venus::STANDBY, &config(venus::STANDBY, &[], true), &[]);
    primary.wait_ha("lobezno", "load-balancing", 1, HA_UP);
    secondary.wait_ha("tormenta", "load-balancing", 1, HA_UP);
    let mut drill = Drill::new(&lab, "load-balancing-death");
    let (m1, m3) = (venus::client(1), venus::client(3));
    // RFC 3074 buckets of the chaddrs (Kea's table): mutante1 → 133 (odd,
    // secondary), mutante3 → 182 (even, primary).
    let both = || logs(&[&primary, &secondary]);
    drill.probe(&m1);
    drill.wait_answer(&m1, venus::STANDBY_LAN, T).unwrap_or_else(|e| panic!("{e:#}\n{}", both()));
    all_from(&drill, &m1, drill.started(), venus::STANDBY_LAN);
    let l3 = drill.obtain(&m3, T).unwrap_or_else(|e| panic!("{e:#}\n{}", both()));
    assert_eq!((l3.address, l3.server_id), (venus::RESERVED_ADDR, venus::PRIMARY_LAN), "mutante3 belongs to the primary");
    // Each server has the other's leases (updates both ways).
    let a1 = address_of(&drill, &m1);
    assert!(current(&primary).contains_key(&a1.to_string()));
    assert!(current(&secondary).contains_key(&l3.address.to_string()));
    // The secondary dies: the primary serves everyone.
    secondary.process.kill().unwrap();
    drill.fault("secondary SIGKILL", venus::PRIMARY_LAN);
    primary.wait_ha("lobezno", "partner-down", 1, TAKEOVER);
    let again = drill.wait_answer(&m1, venus::PRIMARY_LAN, TAKEOVER).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    assert_eq!(again.address, a1, "mutante1 kept its address");
    for n in [2, 4] {
        drill.obtain(&venus::client(n), T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&primary])));
    }
    drill.finish(&[("lobezno", &primary.leases)]).assert_ok();
}
