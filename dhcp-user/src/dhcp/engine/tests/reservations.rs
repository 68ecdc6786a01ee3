//! Host reservations: which identifiers and flags make one count, and a
//! reserved address never going to anyone else.

use super::*;

fn yiaddr(d: &Decision) -> Ipv4Addr {
    d.reply.as_ref().expect("a reply").0.yiaddr()
}

/// A DISCOVER from `mac` with option 61 and option 82 as given.
fn discover_with(w: &mut World, mac: [u8; 6], cid: Option<&[u8]>, rai: Option<&[u8]>) -> Decision {
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
    if let Some(c) = cid {
        m.opts_mut().insert(DhcpOption::ClientIdentifier(c.to_vec()));
    }
    if let Some(r) = rai {
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
    }
    let req = classify(&m.to_vec().unwrap()).unwrap();
    let subnet = w.policy.subnet(1);
    decide(&req, subnet, &w.policy, &w.store, &mut w.alloc, Ctx { now: w.now, server_id: SID, on_link: true })
}

#[test]
fn host_identifiers_follow_kea_order_and_types() {
    let cfg = |ids: &str| {
        format!(
            r#"{{ "Dhcp4": {{ "host-reservation-identifiers": {ids}, "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24",
            "pools": [ {{ "pool": "192.168.50.1-192.168.50.1" }} ], "reservations": [
            {{ "circuit-id": "060106020603", "ip-address": "192.168.50.10" }},
            {{ "duid": "04:33:44", "ip-address": "192.168.50.11" }},
            {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.12" }},
            {{ "client-id": "01:02:00:00:00:00:01", "ip-address": "192.168.50.13" }} ] }} ] }} }}"#
        )
    };
    let rai: &[u8] = &[1, 6, 6, 1, 6, 2, 6, 3];
    let duid_cid: &[u8] = &[0xff, 1, 2, 3, 0xff, 4, 0x33, 0x44];
    let mut w = World::from_config(&cfg(r#"["circuit-id"]"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 10));
    let mut w = World::from_config(&cfg(r#"["duid"]"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, Some(duid_cid), None)), Ipv4Addr::new(192, 168, 50, 11));
    // Not enabled: the circuit-id reservation does not apply.
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 1));
    // Kea's default order: hw-address before client-id.
    let mut w = World::from_config(&cfg(r#"["hw-address", "duid", "circuit-id", "client-id"]"#));
    let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
    assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 12));
    let mut w = World::from_config(&cfg(r#"["client-id", "hw-address"]"#));
    let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
    assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 13));
}

#[test]
fn reservation_flags_decide_which_reservations_count() {
    let cfg = |flags: &str| {
        format!(
            r#"{{ "Dhcp4": {{ {flags} "reservations": [ {{ "hw-address": "02:00:00:00:00:02", "ip-address": "192.168.50.20", "hostname": "global" }} ],
            "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24", "pools": [ {{ "pool": "192.168.50.1-192.168.50.5" }} ],
            "reservations": [ {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.1" }} ] }} ] }} }}"#
        )
    };
    // Defaults: in-subnet only; the reserved pool address is kept from others.
    let mut w = World::from_config(&cfg(""));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 2));
    assert_eq!(yiaddr(&discover_with(&mut w, M1, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    // Global on: the global reservation's address, and its hostname.
    let mut w = World::from_config(&cfg(r#""reservations-global": true,"#));
    let d = discover_with(&mut w, M2, None, None);
    assert_eq!(yiaddr(&d), Ipv4Addr::new(192, 168, 50, 20));
    assert_eq!(d.reply.unwrap().0.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("global".into())));
    // In-subnet off: the subnet's reservation is ignored, its address free.
    let mut w = World::from_config(&cfg(r#""reservations-in-subnet": false,"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    // Out of pool declared: in-pool reserved addresses are not checked.
    let mut w = World::from_config(&cfg(r#""reservations-out-of-pool": true,"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
}

#[test]
fn reservation_wins_and_sends_hostname() {
    let mut w = World::new(199, true);
    let a = w.dora(M3);
    assert_eq!(a, Ipv4Addr::new(192, 168, 50, 33));
    let (m, _) = w.send(&pkt(v4::MessageType::Discover, M3)).reply.unwrap();
    assert_eq!(m.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("mutante3".into())));
}

#[test]
fn reserved_address_is_never_given_to_another_client() {
    let mut w = World::new(199, true);
    // Asking for it by REQUEST (INIT-REBOOT) and by DISCOVER.
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 33));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 100));
    assert_ne!(w.send(&p).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 50, 100));
}
