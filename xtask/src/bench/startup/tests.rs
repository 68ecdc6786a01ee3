//! Unit tests of the log and answer parsing, and of the benchmark's
//! address plan against the kernel map's capacity.

use super::*;
use super::start::number_after;

#[test]
fn numbers_are_read_from_log_lines_and_kea_answers() {
    let line = "INFO xdhcpd::daemon: lease store loaded report=LoadReport { files: [], loaded: 7, leases: 1000000 }";
    assert_eq!(number_after(line.rsplit_once("leases: ").unwrap().1), Some(1_000_000));
    assert_eq!(number_after(" 12 kB"), Some(12));
    assert_eq!(number_after("x"), None);
}

#[test]
fn the_pool_holds_every_lease_the_map_can() {
    let clients = loadgen::clients(MAP_CAPACITY, FIRST);
    let (lo, hi) = POOL.split_once('-').unwrap();
    let (lo, hi): (Ipv4Addr, Ipv4Addr) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(clients.iter().all(|c| c.addr >= lo && c.addr <= hi));
    let net: Ipv4Addr = SUBNET.split_once('/').unwrap().0.parse().unwrap();
    let prefix: u32 = SUBNET.split_once('/').unwrap().1.parse().unwrap();
    let mask = u32::MAX << (32 - prefix);
    assert_eq!(u32::from(hi) & mask, u32::from(net));
    assert_eq!(u32::from(venus::PRIMARY_LAN) & mask, u32::from(net), "the server's own address is in it");
}
