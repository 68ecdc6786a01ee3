//! Relayed requests: option 82 (echoed, stored, its server-id override)
//! and replies going back through the relay.

use super::*;

#[test]
fn relay_server_identifier_override_is_accepted() {
    let mut w = World::new(199, true);
    let other = Ipv4Addr::new(192, 168, 50, 253);
    let build = |rai: Option<&[u8]>| {
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(other));
        if let Some(r) = rai {
            m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
        }
        classify(&m.to_vec().unwrap()).unwrap()
    };
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&build(None), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(d.silence, Some(Silence::OtherServerSelected));
    let rai = [11, 4, 192, 168, 50, 253];
    let d = decide(&build(Some(&rai)), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(kind(&d), Some(v4::MessageType::Ack));
}

#[test]
fn relay_agent_information_is_echoed_once() {
    let mut w = World::new(199, true);
    let relay = Ipv4Addr::new(192, 168, 50, 1);
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
    let rai = vec![1, 3, b'a', b'b', b'c'];
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai)));
    let req = classify(&m.to_vec().unwrap()).unwrap();
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    let bytes = d.reply.unwrap().0.to_vec().unwrap();
    let opts = &bytes[240..];
    let n = opts.windows(7).filter(|x| *x == [82, 5, 1, 3, b'a', b'b', b'c']).count();
    assert_eq!(n, 1, "{opts:?}");
    assert_eq!(opts[opts.len() - 8..], [82, 5, 1, 3, b'a', b'b', b'c', 255], "82 goes last");
}

/// Kea's `store-extended-info`: an ACK's lease keeps the relay's option
/// 82 only when the subnet says so.
#[test]
fn extended_info_keeps_option_82_in_the_lease() {
    let mut w = World::new(199, true);
    let relay = Ipv4Addr::new(192, 168, 50, 1);
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 50, 101)));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(SID));
    let rai = vec![1, 6, 6, 1, 6, 2, 6, 3];
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai.clone())));
    let req = classify(&m.to_vec().unwrap()).unwrap();
    for keep in [false, true] {
        w.policy.subnets[0].store_extended_info = keep;
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        let Some(LeaseWrite::Upsert(n)) = d.write else { panic!("no lease written: {d:?}") };
        assert_eq!(n.relay_agent_info, keep.then(|| rai.clone()));
        let want = keep.then(|| serde_json::json!({"ISC": {"relay-agent-info": "0x0106060106020603"}}));
        assert_eq!(crate::glue::to_lease(&n).user_context, want);
    }
}

#[test]
fn relayed_requests_go_back_to_the_relay() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
    let (m, dest) = w.send(&p).reply.unwrap();
    assert_eq!(dest, Destination::Relay(p.giaddr));
    assert_eq!(m.giaddr(), p.giaddr);
    // A NAK through a relay keeps the request's flags (Kea sets none).
    let mut p = pkt(v4::MessageType::Request, M1);
    p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
    p.requested = Some(Ipv4Addr::new(10, 1, 1, 1));
    let (m, dest) = w.send(&p).reply.unwrap();
    assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Nak));
    assert_eq!(dest, Destination::Relay(p.giaddr));
    assert!(!m.flags().broadcast());
    // No subnet for an unknown relay.
    p.giaddr = Ipv4Addr::new(172, 16, 0, 1);
    assert_eq!(w.send(&p).silence, Some(Silence::NoSubnet));
}
