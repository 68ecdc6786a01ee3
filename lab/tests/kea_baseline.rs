//! Baseline with the reference server: real Kea 2.2 as the venus HA pair,
//! real dhclient as the clients. What xdhcpd must later match.

use std::time::{Duration, Instant};

use lab::{Lab, venus};

#[test]
fn kea_pair_leases_reservation_and_pool_addresses() {
    let started = Instant::now();
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (mut primary, mut standby) = venus::start_kea_pair(&lab, Duration::from_secs(20)).unwrap();
    eprintln!("kea pair serving after {:?}", started.elapsed());

    // The reserved client gets its reservation, from the primary.
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    let lease = m3.obtain(Duration::from_secs(10)).unwrap();
    assert_eq!(lease.address, venus::RESERVED_ADDR, "{lease:?}");
    assert_eq!(lease.server_id, venus::PRIMARY_LAN, "{lease:?}");
    assert_eq!(lease.lease_time, venus::LEASE_TIME);
    assert_eq!(lease.subnet_mask, Some(venus::LAN_SUBNET.netmask()));
    assert_eq!(lease.routers, ["192.168.50.1".parse::<std::net::Ipv4Addr>().unwrap()]);
    assert_eq!(lease.dns_servers, [venus::PRIMARY_LAN, venus::STANDBY_LAN]);
    assert_eq!(lease.domain_name.as_deref(), Some("venus.test"));
    assert_eq!((lease.renewal_time, lease.rebinding_time), (Some(30), Some(45)));

    // The script put the address on eth0 and added no route but the
    // connected one.
    let addrs = lab.addresses(&venus::client(3), "eth0").unwrap();
    assert_eq!(addrs, ["192.168.50.33/24".parse().unwrap()]);
    let routes = lab.run(&venus::client(3), &["ip", "-4", "route", "show"]).unwrap().stdout;
    assert!(!routes.contains("default") && routes.lines().count() == 1, "routes:\n{routes}");

    // A dynamic client gets a pool address, from the primary; on the wire
    // only the primary answers (hot-standby).
    let cap = lab.capture(&venus::client(1), "eth0", &["udp", "port", "67", "or", "port", "68"]).unwrap();
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let lease1 = m1.obtain(Duration::from_secs(10)).unwrap();
    assert!(venus::in_pool(lease1.address), "{lease1:?}");
    assert_eq!(lease1.server_id, venus::PRIMARY_LAN);
    assert_eq!(lease1.lease_time, venus::LEASE_TIME);
    let packets = cap.stop().unwrap().packets().unwrap();
    let from = |mac: &str| {
        let sent_by = format!(" {mac} > ");
        packets.iter().filter(|p| p.lines().next().is_some_and(|l| l.contains(&sent_by))).count()
    };
    assert_eq!(from("02:00:00:00:50:02"), 2, "OFFER and ACK from lobezno:\n{}", packets.join("\n"));
    assert_eq!(from("02:00:00:00:50:03"), 0, "tormenta answered:\n{}", packets.join("\n"));
    assert!(packets.iter().any(|p| p.contains("Server-ID (54), length 4: 192.168.50.2")));

    // Renewing (INIT-REBOOT) keeps the address; a release frees it.
    let again = m1.renew(Duration::from_secs(10)).unwrap();
    assert_eq!(again.address, lease1.address);
    m1.release(Duration::from_secs(10)).unwrap();
    assert!(lab.addresses(&venus::client(1), "eth0").unwrap().is_empty());

    // The primary replicated the reservation's lease to the standby.
    let standby_leases = std::fs::read_to_string(standby.lease_file()).unwrap();
    assert!(standby_leases.contains("192.168.50.33,02:00:00:00:00:03"), "standby leases:\n{standby_leases}");

    assert!(primary.process().is_running() && standby.process().is_running());
    eprintln!("kea baseline done in {:?}", started.elapsed());
}

#[test]
fn cutting_only_the_ha_link_sends_kea_standby_to_partner_down() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let (_primary, mut standby) = venus::start_kea_pair(&lab, Duration::from_secs(20)).unwrap();
    lab.cut_link(venus::PRIMARY, venus::HA).unwrap();
    let cut = Instant::now();
    // A silent cut (no RST, unlike a killed peer) is noticed when Kea's
    // heartbeat HTTP request times out, ~10 s; with max-unacked-clients 0
    // the standby then takes over at once (measured here: ~11 s).
    standby.wait_ha_state("PARTNER-DOWN", Duration::from_secs(30)).unwrap();
    eprintln!("standby in PARTNER-DOWN {:?} after the cut", cut.elapsed());
    // Clients still reach the standby over the LAN: it now serves them.
    let lease = lab.dhclient(&venus::client(2)).unwrap().obtain(Duration::from_secs(10)).unwrap();
    assert!(venus::in_pool(lease.address), "{lease:?}");
    lab.restore_link(venus::PRIMARY, venus::HA).unwrap();
}
