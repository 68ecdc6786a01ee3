//! Unit tests of the parsers, on a lease file and an event log written in
//! a real lab run.

use std::net::Ipv4Addr;
use std::time::UNIX_EPOCH;

use super::*;
use super::parse::{days_from_civil, parse_time};

/// Written by dhclient 4.4.3-P1 in the venus lab against Kea 2.2:
/// mutante1's DISCOVER lease, then its INIT-REBOOT renewal.
const SAMPLE: &str = include_str!("../../testdata/dhclient.leases");

#[test]
fn parses_a_real_lease_file() {
    let leases = parse_leases(SAMPLE).unwrap();
    assert_eq!(leases.len(), 2);
    let l = leases.last().unwrap();
    assert_eq!(l.interface, "eth0");
    assert_eq!(l.address, Ipv4Addr::new(192, 168, 50, 100));
    assert_eq!(l.server_id, Ipv4Addr::new(192, 168, 50, 2));
    assert_eq!(l.lease_time, 60);
    assert_eq!(l.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(l.routers, [Ipv4Addr::new(192, 168, 50, 1)]);
    assert_eq!(l.dns_servers, [Ipv4Addr::new(192, 168, 50, 2), Ipv4Addr::new(192, 168, 50, 3)]);
    assert_eq!(l.domain_name.as_deref(), Some("venus.test"));
    assert_eq!(l.host_name.as_deref(), Some("mutante1"));
    assert_eq!((l.renewal_time, l.rebinding_time), (Some(30), Some(45)));
    let (renew, expire) = (l.renew.unwrap(), l.expire.unwrap());
    // dhclient schedules renewal a little before T1; expiry is exact.
    let lead = expire.duration_since(renew).unwrap().as_secs();
    assert!((30..=40).contains(&lead), "renew {lead}s before expiry");
    assert_eq!(l.options["dhcp-message-type"], "5");
}

/// Written by the lab's script in the same run: BOUND, a unicast RENEW
/// at T1, then RELEASE.
const EVENTS: &str = include_str!("../../testdata/dhclient.events");

#[test]
fn parses_real_script_events() {
    let events = parse_events(EVENTS).unwrap();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["PREINIT", "BOUND", "RENEW", "RELEASE"]);
    assert!(events[0].lease.is_none() && events[3].lease.is_none());
    assert_eq!(events[3].vars["old_ip_address"], "192.168.50.100");
    let (bound, renew) = (events[1].lease.as_ref().unwrap(), events[2].lease.as_ref().unwrap());
    assert_eq!(bound.address, Ipv4Addr::new(192, 168, 50, 100));
    assert_eq!(bound.server_id, Ipv4Addr::new(192, 168, 50, 2));
    assert_eq!((bound.lease_time, bound.renewal_time, bound.rebinding_time), (8, Some(2), Some(4)));
    assert_eq!(bound.dns_servers, [Ipv4Addr::new(192, 168, 50, 2), Ipv4Addr::new(192, 168, 50, 3)]);
    assert_eq!(bound.routers, [Ipv4Addr::new(192, 168, 50, 1)]);
    assert_eq!(bound.domain_name.as_deref(), Some("venus.test"));
    assert_eq!(renew.address, bound.address);
    assert!(renew.expire.unwrap() > bound.expire.unwrap());
    assert_eq!(renew.options["dhcp-server-identifier"], "192.168.50.2");
}

#[test]
fn time_formats() {
    let t = parse_time("2 2026/11/24 20:28:58").unwrap();
    assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_552_138);
    let e = parse_time("epoch 1795552138").unwrap();
    assert_eq!(t, e);
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert!(parse_time("2 2026/11 20:28:58").is_err());
}

#[test]
fn broken_files_are_errors_not_garbage() {
    assert!(parse_leases("lease {\n  interface \"eth0\";\n").is_err());
    assert!(parse_leases("lease {\n  interface \"eth0\";\n}\n").is_err(), "no address");
    assert!(parse_leases("").unwrap().is_empty());
    assert!(parse_leases("default-duid \"\\000\\001\";\n").unwrap().is_empty());
}
