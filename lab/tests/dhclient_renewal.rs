//! dhclient's full life against a lone Kea with short timers: a chosen
//! MAC, a lease, the daemon's own unicast renewal at T1 (which needs the
//! address the lab's script left on the interface), release, stop — all
//! seen on the wire.

use std::time::Duration;

use lab::{Kea, Lab, Mac, venus};
use serde_json::json;

#[test]
fn dhclient_renews_by_unicast_and_releases() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set("/Dhcp4/renew-timer", json!(2)).unwrap();
    cfg.set("/Dhcp4/rebind-timer", json!(4)).unwrap();
    cfg.set("/Dhcp4/valid-lifetime", json!(8)).unwrap();
    let kea = Kea::start(&lab, venus::PRIMARY, &cfg).unwrap();
    let cap = lab.capture(venus::PRIMARY, "eth0", &["udp", "port", "67"]).unwrap();

    let client = lab.dhclient("mutante2").unwrap();
    let mac: Mac = "02:00:00:00:00:aa".parse().unwrap();
    client.set_mac(mac).unwrap();
    let lease = client.obtain(Duration::from_secs(10)).unwrap();
    assert!(venus::in_pool(lease.address), "{lease:?}");
    assert_eq!((lease.server_id, lease.lease_time, lease.renewal_time), (venus::PRIMARY_LAN, 8, Some(2)));
    assert!(client.pid().is_some(), "dhclient should stay running to renew");

    let renewed = client.wait_renewal(Duration::from_secs(10)).unwrap();
    assert_eq!(renewed.address, lease.address);
    assert!(renewed.expire > lease.expire, "{renewed:?}");

    client.release(Duration::from_secs(5)).unwrap();
    assert!(client.pid().is_none());
    assert!(lab.addresses("mutante2", "eth0").unwrap().is_empty());
    let pcap = cap.stop().unwrap();
    let packets = pcap.packets().unwrap();
    let all = packets.join("\n");

    // The renewal: unicast from the leased address straight to the server's
    // MAC and IP; the DISCOVER before it was broadcast.
    let is = |p: &String, ether: &str, msg: &str| {
        p.lines().next().is_some_and(|l| l.contains(ether))
            && p.contains(&format!("DHCP-Message (53), length 1: {msg}"))
    };
    assert!(packets.iter().any(|p| is(p, "02:00:00:00:00:aa > ff:ff:ff:ff:ff:ff", "Discover")), "{all}");
    let renewal = packets
        .iter()
        .find(|p| is(p, "02:00:00:00:00:aa > 02:00:00:00:50:02", "Request"))
        .unwrap_or_else(|| panic!("no unicast REQUEST in capture:\n{all}"));
    assert!(renewal.contains(&format!("{}.68 > 192.168.50.2.67", lease.address)), "{renewal}");
    assert!(packets.iter().any(|p| is(p, "02:00:00:00:00:aa > 02:00:00:00:50:02", "Release")), "{all}");

    // Kea saw the chosen MAC.
    let leases = std::fs::read_to_string(kea.lease_file()).unwrap();
    assert!(leases.contains(&format!("{},02:00:00:00:00:aa", lease.address)), "{leases}");

    // A new lease, then a stop without release: address gone, lease kept.
    let again = client.obtain(Duration::from_secs(10)).unwrap();
    client.stop().unwrap();
    assert!(client.pid().is_none());
    assert!(lab.addresses("mutante2", "eth0").unwrap().is_empty());
    assert_eq!(client.lease().unwrap().unwrap().address, again.address);
}
