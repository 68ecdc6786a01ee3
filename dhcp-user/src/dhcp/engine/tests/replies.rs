//! What a reply carries and where it goes: options (requested, configured,
//! always sent), the broadcast flag, INFORM and BOOTP replies.

use super::*;

#[test]
fn requested_options_are_sent() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.prl = vec![42];
    let (m, _) = w.send(&p).reply.unwrap();
    assert!(m.opts().contains(OptionCode::NtpServers));
}

#[test]
fn configured_options_follow_keas_append_rules() {
    let mut w = World::new(199, true);
    let s = &mut w.policy.subnets[0];
    for (code, data) in [
        (50, &[188u8, 188, 188, 2][..]),
        (57, &[0x09, 0x2d]),
        (1, &[255, 255, 0, 0]),
        (51, &[0, 0, 0, 9]),
        (61, &[9, 9]),
    ] {
        s.options.insert(code, opt(data));
    }
    let raw = |m: &Message, c: u8| match m.opts().get(OptionCode::from(c)) {
        Some(DhcpOption::Unknown(u)) => Some(u.data().to_vec()),
        Some(o) => Some(o.to_vec().unwrap()[2..].to_vec()),
        None => None,
    };
    // Asked for and not set by the server: the configured value.
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.prl = vec![50, 57, 1, 51, 61];
    let (m, _) = w.send(&p).reply.unwrap();
    assert_eq!(raw(&m, 50).unwrap(), [188, 188, 188, 2]);
    assert_eq!(raw(&m, 57).unwrap(), [0x09, 0x2d]);
    // Set by the server with a lease: its own mask and lease time.
    assert_eq!(raw(&m, 1).unwrap(), [255, 255, 255, 0]);
    assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 60]);
    // No client identifier to echo: the configured one, when asked.
    assert_eq!(raw(&m, 61).unwrap(), [9, 9]);
    // Without a lease (INFORM) the configured mask and lease time go.
    let mut p = pkt(v4::MessageType::Inform, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
    p.prl = vec![1, 51];
    let (m, _) = w.send(&p).reply.unwrap();
    assert_eq!(raw(&m, 1).unwrap(), [255, 255, 0, 0]);
    assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 9]);
    // Not asked for, not basic, not always-send: not sent.
    let (m, _) = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap();
    assert!(raw(&m, 50).is_none() && raw(&m, 57).is_none());
}

#[test]
fn broadcast_flag_means_broadcast() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.broadcast = true;
    assert_eq!(w.send(&p).reply.unwrap().1, Destination::Broadcast);
}

#[test]
fn bootp_requests_get_an_infinite_lease_and_a_plain_bootreply() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 600, "hooks-libraries": [ { "library": "/usr/lib/kea/hooks/libdhcp_bootp.so" } ],
        "option-data": [ { "name": "routers", "data": "192.168.50.1" } ],
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.10" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    assert!(w.policy.bootp);
    let m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
    let mut bytes = m.to_vec().unwrap();
    // A BOOTP request: cookie and END, no option 53.
    bytes.truncate(240);
    bytes.push(255);
    assert_eq!(classify(&bytes).unwrap_err(), crate::dhcp::inbound::DropReason::NoMessageType);
    let req = crate::dhcp::inbound::classify_bootp(&bytes).unwrap();
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    let (reply, _) = d.reply.clone().unwrap();
    assert_eq!(reply.yiaddr(), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(reply.opts().msg_type(), None, "no DHCP message type");
    for code in DHCP_SPECIFIC_OPTIONS {
        assert!(!reply.opts().contains(OptionCode::from(code)), "option {code} left in");
    }
    assert!(reply.opts().contains(OptionCode::Router));
    assert_eq!(reply_bytes(&reply).unwrap().len(), 300);
    match &d.write {
        Some(LeaseWrite::Upsert(l)) => assert_eq!(l.valid_lifetime, u32::MAX),
        other => panic!("{other:?}"),
    }
    // The same client later through DHCP keeps its address.
    w.store.apply(d.write.as_ref().unwrap());
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
}

#[test]
fn inform_gets_options_without_a_lease() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Inform, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
    let d = w.send(&p);
    let (m, dest) = d.reply.unwrap();
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: p.ciaddr });
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(!m.opts().contains(OptionCode::AddressLeaseTime));
    assert!(m.opts().contains(OptionCode::Router));
    assert!(d.write.is_none());
    // Without ciaddr: back to the source address, or (from 0.0.0.0,
    // unrelayed) dropped as Kea does.
    p.ciaddr = Ipv4Addr::UNSPECIFIED;
    let subnet = w.policy.subnet(1);
    let from = Ipv4Addr::new(192, 168, 50, 8);
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&p.build().from_source(from), subnet, &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M1, ip: from });
    assert_eq!(w.send(&p).silence, Some(Silence::Incomplete));
}
