//! HA with the kernel fast path: renewals answered by XDP on the primary
//! reach the standby through the ring buffer and the asynchronous
//! replicator; the standby's kernel answers nothing until it serves;
//! operator maintenance (`ha-maintenance-start`/`-cancel`) hands the
//! service over and back without losing a lease.

mod common;

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use common::{T, Xdhcpd, control_command};
use lab::{Lab, venus};

const HA_UP: Duration = Duration::from_secs(30);

/// A venus config with short timers so dhclient renews within the test.
fn fast(host: &str) -> lab::KeaConfig {
    let mut cfg = venus::kea_config(host).unwrap();
    cfg.set("/Dhcp4/renew-timer", 2.into()).unwrap().set("/Dhcp4/rebind-timer", 4.into()).unwrap();
    cfg
}

/// The `expire` of `addr`'s current row in a lease file.
fn expire(x: &Xdhcpd, addr: Ipv4Addr) -> u64 {
    x.last_row(addr).map(|r| r[4].parse().unwrap()).unwrap_or(0)
}

/// XDP ACK count from the XDP counter summary a stopped xdhcpd logs.
fn xdp_acks(log: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find("(AnsweredAck, ").unwrap_or_else(|| panic!("no AnsweredAck in {line}"));
    line[at + "(AnsweredAck, ".len()..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn kernel_renewals_reach_the_standby() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &fast(venus::PRIMARY), &[]);
    let mut standby = Xdhcpd::start(&lab, venus::STANDBY, &fast(venus::STANDBY), &[]);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);

    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    let first = expire(&standby, l1.address);
    assert!(first > 0, "the DORA's lease was replicated before the ACK");
    // Renewals at T1 = 2 s, unicast to the primary: answered by its kernel.
    for _ in 0..3 {
        assert_eq!(m1.wait_renewal(T).unwrap().address, l1.address);
    }
    // Their ring-buffer events became lease4-updates to the standby.
    let until = Instant::now() + T;
    while expire(&standby, l1.address) <= first {
        assert!(Instant::now() < until, "no kernel renewal reached the standby:\n{}", primary.process.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = control_command(&lab, venus::PRIMARY, "status-get");
    let rel = &status["arguments"]["high-availability"][0];
    assert_eq!(rel["ha-servers"]["local"]["state"], "hot-standby", "{status}");
    assert!(rel["replication-backlog"].is_u64() && rel["unsent-update-count"] == 0, "{status}");

    primary.process.stop(T).unwrap();
    assert!(xdp_acks(&primary.process.log()) >= 3, "renewals were not the kernel's:\n{}", primary.process.log());
    standby.process.stop(T).unwrap();
    assert_eq!(xdp_acks(&standby.process.log()), 0, "the standby's kernel answered while in hot-standby");
}

#[test]
fn maintenance_hands_over_and_back_without_loss() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap(), &[]);
    let mut standby = Xdhcpd::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap(), &[]);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let m1 = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap();

    // The operator takes lobezno out: tormenta serves everything.
    let r = control_command(&lab, venus::STANDBY, "ha-maintenance-start");
    assert_eq!(r["result"], 0, "{r}");
    standby.wait_ha("tormenta", "partner-in-maintenance", 1, T);
    primary.wait_ha("lobezno", "in-maintenance", 1, T);
    let m2 = lab.dhclient(&venus::client(2)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", standby.process.log()));
    assert_eq!(m2.server_id, venus::STANDBY_LAN);
    let again = lab.dhclient(&venus::client(1)).unwrap().renew(T).unwrap();
    assert_eq!((again.address, again.server_id), (m1.address, venus::STANDBY_LAN));
    // partner-in-maintenance still replicates: lobezno has m2's lease.
    assert!(primary.last_row(m2.address).is_some(), "update not sent during maintenance");

    // Cancel: both return to hot-standby, lobezno serves again.
    let r = control_command(&lab, venus::STANDBY, "ha-maintenance-cancel");
    assert_eq!(r["result"], 0, "{r}");
    primary.wait_ha("lobezno", "hot-standby", 2, T);
    standby.wait_ha("tormenta", "hot-standby", 2, T);
    let m3 = lab.dhclient(&venus::client(3)).unwrap().obtain(T).unwrap();
    assert_eq!((m3.address, m3.server_id), (venus::RESERVED_ADDR, venus::PRIMARY_LAN));
    assert!(m1.address != m2.address);
}

#[test]
fn passive_backup_waits_for_the_backup_when_asked() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let cfg = |host: &str| {
        let mut c = venus::kea_config(host).unwrap();
        let base = "/Dhcp4/hooks-libraries/1/parameters/high-availability/0";
        c.set(&format!("{base}/mode"), "passive-backup".into()).unwrap();
        c.set(&format!("{base}/peers/1/role"), "backup".into()).unwrap();
        c.set(&format!("{base}/wait-backup-ack"), true.into()).unwrap();
        c
    };
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &cfg(venus::PRIMARY), &[]);
    let mut backup = Xdhcpd::start(&lab, venus::STANDBY, &cfg(venus::STANDBY), &[]);
    primary.wait_ha("lobezno", "passive-backup", 1, T);
    backup.wait_ha("tormenta", "backup", 1, T);
    // Every lease reaches the backup before its ACK.
    let l1 = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", primary.process.log()));
    assert_eq!(l1.server_id, venus::PRIMARY_LAN);
    assert!(backup.last_row(l1.address).is_some(), "lease not on the backup before the ACK");
    // With wait-backup-ack, no ACK goes out while the backup cannot take it.
    backup.process.kill().unwrap();
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    assert!(m2.obtain(Duration::from_secs(6)).is_err(), "ACKed although the backup is gone");
    assert!(primary.process.log().contains("lease update to backup failed"), "{}", primary.process.log());
}
