//! Interop drills: xdhcpd paired with a real Kea 2.2 (Debian's kea-dhcp4
//! with libdhcp_ha and libdhcp_lease_cmds, its dedicated HA listener) in
//! the venus lab, both ways round. Leases must replicate both ways, a
//! SIGKILL of either side must fail over, and the side that comes back
//! must resync from the survivor.

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    time::Duration,
};

use common::{T, Xdhcpd, drill::Drill};
use lab::{Kea, Lab, venus};

const HA_UP: Duration = Duration::from_secs(40);
/// Bound on a takeover (max-response-delay is 3 s).
const TAKEOVER: Duration = Duration::from_secs(20);

/// Current row per address of a Kea-format lease file.
fn rows(path: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    common::lease_rows(path).into_iter().map(|r| (r[0].clone(), r)).collect()
}

fn obtain(drill: &mut Drill, n: usize, log: &dyn Fn() -> String) -> (Ipv4Addr, Ipv4Addr) {
    let l = drill.obtain(&venus::client(n), T).unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
    (l.address, l.server_id)
}

fn kea_log(k: &mut Kea) -> String {
    k.process().log()
}

/// A Kea log reader that needs no `&mut` (for closures).
fn log_of(k: &mut Kea) -> impl Fn() -> String + use<> {
    let path = k.process().log_path().to_owned();
    move || std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn xdhcpd_primary_with_kea_standby() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap(), &[]);
    let mut kea = Kea::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap()).unwrap();
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    kea.wait_ha_state("HOT-STANDBY", HA_UP).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    let mut drill = Drill::new(&lab, "kea-standby-takes-over");

    // xdhcpd → Kea: every ACKed lease is in Kea's lease file.
    let (a1, s1) = obtain(&mut drill, 1, &|| primary.process.log());
    // mutante3 keeps re-obtaining its reservation in the background.
    drill.probe(&venus::client(3));
    let a3 = drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap().address;
    assert_eq!((s1, a3), (venus::PRIMARY_LAN, venus::RESERVED_ADDR));
    let on_kea = rows(kea.lease_file());
    for a in [a1, a3] {
        assert!(on_kea.contains_key(&a.to_string()), "{a} not replicated to Kea: {on_kea:?}\n{}", kea_log(&mut kea));
    }

    // SIGKILL xdhcpd: Kea takes over and serves new and old clients.
    primary.process.kill().unwrap();
    drill.fault("xdhcpd primary SIGKILL", venus::STANDBY_LAN);
    kea.wait_ha_state("PARTNER-DOWN", TAKEOVER).unwrap();
    let (a2, s2) = obtain(&mut drill, 2, &log_of(&mut kea));
    assert_eq!(s2, venus::STANDBY_LAN);
    let again = drill.renew(&venus::client(1), T).unwrap();
    assert_eq!(again.address, a1);

    // xdhcpd comes back, pulls Kea's leases (lease4-get-page from Kea),
    // both return to hot-standby with xdhcpd serving.
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap(), &[]);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    drill.recovery("xdhcpd primary restarted", venus::PRIMARY_LAN);
    let synced = rows(&primary.leases);
    assert!(synced.contains_key(&a2.to_string()), "Kea's lease {a2} not synced: {synced:?}\n{}", primary.process.log());
    let (_, s4) = obtain(&mut drill, 4, &|| primary.process.log());
    assert_eq!(s4, venus::PRIMARY_LAN);
    drill.finish(&[("lobezno", &primary.leases), ("tormenta (Kea)", kea.lease_file())]).assert_ok();
}

#[test]
fn kea_primary_with_xdhcpd_standby() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut kea = Kea::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap()).unwrap();
    let mut standby = Xdhcpd::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap(), &[]);
    kea.wait_ha_state("HOT-STANDBY", HA_UP).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let mut drill = Drill::new(&lab, "xdhcpd-standby-takes-over-from-kea");

    // Kea → xdhcpd: Kea's lease4-update lands in xdhcpd's store.
    let (a1, s1) = obtain(&mut drill, 1, &log_of(&mut kea));
    drill.probe(&venus::client(3));
    let a3 = drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap().address;
    assert_eq!((s1, a3), (venus::PRIMARY_LAN, venus::RESERVED_ADDR));
    let on_x = rows(&standby.leases);
    for a in [a1, a3] {
        assert!(on_x.contains_key(&a.to_string()), "{a} not replicated to xdhcpd: {on_x:?}\n{}", standby.process.log());
    }

    // SIGKILL Kea: xdhcpd takes over.
    kea.process().kill().unwrap();
    drill.fault("Kea primary SIGKILL", venus::STANDBY_LAN);
    standby.wait_ha("tormenta", "partner-down", 1, TAKEOVER);
    let (a2, s2) = obtain(&mut drill, 2, &|| standby.process.log());
    assert_eq!(s2, venus::STANDBY_LAN);
    assert_eq!(drill.renew(&venus::client(1), T).unwrap().address, a1);

    // Kea restarts, syncs from xdhcpd (our lease4-get-page), pair normal.
    let mut kea = Kea::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap()).unwrap();
    kea.wait_ha_state("HOT-STANDBY", HA_UP).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    standby.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    drill.recovery("Kea primary restarted", venus::PRIMARY_LAN);
    let synced = rows(kea.lease_file());
    assert!(synced.contains_key(&a2.to_string()), "xdhcpd's lease {a2} not synced to Kea: {synced:?}");
    let (_, s4) = obtain(&mut drill, 4, &log_of(&mut kea));
    assert_eq!(s4, venus::PRIMARY_LAN);
    let kea_file = kea.lease_file().to_owned();
    drill.finish(&[("lobezno (Kea)", &kea_file), ("tormenta", &standby.leases)]).assert_ok();
}

/// The reference for the failover figures: a Kea 2.2 pair with the same
/// checked-in HA config, the same clients and the same SIGKILL as
/// `lab_ha::kill_primary_standby_takes_over_primary_rejoins`, so
/// DRILLS.md and `cargo xtask bench failover` can set xdhcpd's time to
/// serve and outage against Kea's own under identical timers.
#[test]
fn kea_pair_kill_primary_reference() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let (mut primary, mut standby) = venus::start_kea_pair(&lab, HA_UP).unwrap();
    let mut drill = Drill::new(&lab, "kea-pair-kill-primary");

    let (a1, s1) = obtain(&mut drill, 1, &log_of(&mut primary));
    assert_eq!(s1, venus::PRIMARY_LAN, "hot-standby: the primary answers");
    drill.probe(&venus::client(3));
    let a3 = drill.wait_answer(&venus::client(3), venus::PRIMARY_LAN, T).unwrap().address;
    assert_eq!(a3, venus::RESERVED_ADDR, "mutante3 gets its reservation");
    let on_standby = rows(standby.lease_file());
    for a in [a1, a3] {
        assert!(on_standby.contains_key(&a.to_string()), "{a} not replicated: {on_standby:?}");
    }

    primary.process().kill().unwrap();
    drill.fault("Kea primary SIGKILL", venus::STANDBY_LAN);
    let standby_log = log_of(&mut standby);
    standby.wait_ha_state("PARTNER-DOWN", TAKEOVER).unwrap_or_else(|e| panic!("{e:#}\n{}", standby_log()));
    drill.wait_served_by(venus::STANDBY_LAN, TAKEOVER).unwrap_or_else(|e| panic!("{e:#}\n{}", standby_log()));
    let (_, s2) = obtain(&mut drill, 2, &standby_log);
    assert_eq!(s2, venus::STANDBY_LAN);
    assert_eq!(drill.renew(&venus::client(1), T).unwrap().address, a1, "mutante1 lost its address");
    // The survivor holds every lease any client was ACKed.
    let standby_file = standby.lease_file().to_owned();
    drill.finish(&[("tormenta (Kea)", &standby_file)]).assert_ok();
}
