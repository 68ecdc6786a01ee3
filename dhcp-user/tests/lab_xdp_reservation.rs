//! A reserved client served by the kernel in the venus lab: mutante3
//! (02:00:00:00:00:03, reserved 192.168.50.33, hostname mutante3) gets its
//! OFFER and ACK from the XDP program, reboots (dhclient restarted:
//! INIT-REBOOT) and is ACKed by XDP again, keeping its address; the daemon
//! never sees those requests, and the lease file gets the reserved lease
//! from the ring buffer.

use std::time::Duration;

use lab::{Lab, venus};

const T: Duration = Duration::from_secs(15);

fn counter(log: &str, name: &str) -> u64 {
    let line =
        log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find(&format!("({name}, ")).unwrap_or_else(|| panic!("{name} not in {line}"));
    line[at + name.len() + 3..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn mutante3_reboot_is_answered_by_xdp_from_the_reservation_map() {
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let lease_file = dir.join("leases4.csv");
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap().lease_file(&lease_file).unwrap();
    let cfg_path = dir.join("xdhcpd.json");
    cfg.write(&cfg_path).unwrap();
    let mut server = lab
        .spawn(venus::PRIMARY, "xdhcpd", &[env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", cfg_path.to_str().unwrap()])
        .unwrap();
    server.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert!(server.log().contains("attach mode: native XDP on eth0"), "{}", server.log());

    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    // DISCOVER → OFFER, SELECTING REQUEST → ACK.
    let first = m3.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert_eq!(first.address, venus::RESERVED_ADDR);
    assert_eq!(first.server_id, venus::PRIMARY_LAN);
    // Reboot: dhclient restarts with its recorded lease → INIT-REBOOT.
    for _ in 0..2 {
        let again = m3.renew(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
        assert_eq!(again.address, venus::RESERVED_ADDR, "mutante3 keeps its reserved address");
    }
    // Let the ring-buffer events reach the store.
    std::thread::sleep(Duration::from_millis(500));
    server.stop(T).unwrap();
    let log = server.log();
    eprintln!(
        "{}",
        log.lines().filter(|l| l.contains("counters") || l.contains("stopped")).collect::<Vec<_>>().join("\n")
    );

    let offers = counter(&log, "AnsweredOffer");
    let acks = counter(&log, "AnsweredReservedAck");
    assert!(offers >= 1, "the OFFER came from XDP (AnsweredOffer={offers})");
    assert!(acks >= 3, "SELECTING and two INIT-REBOOT ACKs came from XDP (AnsweredReservedAck={acks})");
    assert_eq!(counter(&log, "PassedReservedHeld"), 0);
    // The daemon answered none of mutante3's requests itself, and stored
    // every kernel ACK.
    let stopped = log.lines().rev().find(|l| l.contains("stopped")).unwrap();
    assert!(!stopped.contains("\"offer\"") && !stopped.contains("\"ack\""), "the daemon replied itself: {stopped}");
    assert!(stopped.contains("\"xdp_reserved_ack\""), "kernel ACKs reached the store: {stopped}");

    // The lease file's rows for .33 come from the ring buffer: mutante3's
    // MAC and the reservation's hostname.
    let text = std::fs::read_to_string(&lease_file).unwrap();
    let rows: Vec<&str> = text.lines().filter(|r| r.starts_with(&format!("{},", venus::RESERVED_ADDR))).collect();
    assert!(rows.len() >= 3, "one row per kernel ACK: {rows:?}");
    let last = rows.last().unwrap();
    assert!(last.contains("02:00:00:00:00:03") && last.contains("mutante3"), "{last}");
}
