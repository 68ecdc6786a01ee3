//! Shared networks: a request selects a link, and the lease comes from
//! whichever of its subnets can serve it.

use super::*;

/// One link with two subnets of one address each (Forge's shape).
const TWO_ON_A_LINK: &str = r#"{ "Dhcp4": { "valid-lifetime": 60, "authoritative": true, "shared-networks": [
    { "name": "lan", "authoritative": true, "subnet4": [
        { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.1" } ],
          "reservations": [ { "hw-address": "02:00:00:00:00:09", "ip-address": "192.168.50.9" } ] },
        { "id": 2, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ],
          "reservations": [ { "hw-address": "02:00:00:00:00:03", "ip-address": "192.168.51.33" } ] } ] } ] } }"#;

/// Forge's overlapping pools: subnets of one network overlap; once the
/// first is exhausted, a requested address in the sibling's pool (but
/// also inside the first's prefix) is granted from the sibling.
#[test]
fn overlapping_siblings_grant_from_the_subnet_whose_pool_holds_the_address() {
    let mut w = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "shared-networks": [ { "name": "n", "subnet4": [
            { "id": 2, "subnet": "192.168.0.0/27", "pools": [ { "pool": "192.168.0.1-192.168.0.5" } ] },
            { "id": 1, "subnet": "192.168.0.0/25", "pools": [ { "pool": "192.168.0.2-192.168.0.4" } ] } ] } ] } }"#,
    );
    for i in 1..=3 {
        w.dora([2, 0, 0, 0, 0x70, i]);
    }
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(w.store.0[&Ipv4Addr::new(192, 168, 0, 1)].subnet_id, 2);
}

#[test]
fn shared_network_falls_through_to_the_next_subnet_when_one_is_exhausted() {
    let mut w = World::from_config(TWO_ON_A_LINK);
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(w.dora(M2), Ipv4Addr::new(192, 168, 51, 1));
    assert_eq!(
        w.store.0[&Ipv4Addr::new(192, 168, 51, 1)].subnet_id,
        2,
        "the lease names its own subnet"
    );
    // Both exhausted: silence, counted as such.
    assert_eq!(
        w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 0x77]))
            .silence,
        Some(Silence::PoolExhausted)
    );
    // Renewals in either subnet are answered from the selected one's link.
    assert_eq!(
        kind(&w.request(M2, Ipv4Addr::new(192, 168, 51, 1))),
        Some(v4::MessageType::Ack)
    );
    assert_eq!(
        kind(&w.request(M1, Ipv4Addr::new(192, 168, 50, 1))),
        Some(v4::MessageType::Ack)
    );
    // A reservation in the sibling subnet is found from the first one.
    assert_eq!(w.dora(M3), Ipv4Addr::new(192, 168, 51, 33));
    // Release and decline work for a lease of the sibling subnet.
    let mut rel = pkt(v4::MessageType::Release, M2);
    rel.ciaddr = Ipv4Addr::new(192, 168, 51, 1);
    assert_eq!(
        w.send(&rel).write,
        Some(LeaseWrite::Remove(Ipv4Addr::new(192, 168, 51, 1)))
    );
    // A client holding nothing asks for an address off the link: NAK.
    let mut reboot = pkt(v4::MessageType::Request, [2, 0, 0, 0, 0, 0x78]);
    reboot.requested = Some(Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(kind(&w.send(&reboot)), Some(v4::MessageType::Nak));
}
