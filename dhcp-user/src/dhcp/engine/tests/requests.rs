//! REQUEST, RELEASE and DECLINE: RFC 2131's rules for each client state
//! as Kea 2.2 applies them.

use super::*;

#[test]
fn dora_writes_a_lease_and_renewal_extends_it() {
    let mut w = World::new(199, true);
    let a = w.dora(M1);
    assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 60);
    w.now += 30;
    let mut p = pkt(v4::MessageType::Request, M1);
    p.ciaddr = a;
    let d = w.send(&p);
    let (m, dest) = d.reply.unwrap();
    assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Ack));
    // On the link, a frame to chaddr at ciaddr (no ARP needed); routed,
    // an IP unicast to ciaddr.
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: a });
    assert_eq!(m.ciaddr(), a);
    let subnet = w.policy.subnet(1);
    let off_link = Ctx { now: w.now, server_id: SID, on_link: false };
    let d = decide(&p.build(), subnet, &w.policy, &w.store, &mut w.alloc, off_link);
    assert_eq!(d.reply.unwrap().1, Destination::Ciaddr(a));
    assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 90);
}

#[test]
fn renewing_someone_elses_address_is_nakked_to_ciaddr() {
    let mut w = World::new(199, true);
    let a = w.dora(M1);
    let mut p = pkt(v4::MessageType::Request, M2);
    p.ciaddr = a;
    let d = w.send(&p);
    assert_eq!(kind(&d), Some(v4::MessageType::Nak));
    // Kea's adjustRemoteAddr: ciaddr comes before the NAK broadcast.
    assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M2, ip: a });
    assert!(d.write.is_none());
}

#[test]
fn selecting_another_server_is_silent() {
    let mut w = World::new(199, true);
    w.send(&pkt(v4::MessageType::Discover, M1));
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 101));
    p.server_id = Some(Ipv4Addr::new(192, 168, 50, 3));
    let d = w.send(&p);
    assert_eq!(d.silence, Some(Silence::OtherServerSelected));
    assert_eq!(w.alloc.outstanding_offers(), 0, "our offer is withdrawn");
}

#[test]
fn init_reboot_rules() {
    let mut w = World::new(199, true);
    // Wrong network → NAK.
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Unknown client, free in-pool address, authoritative → NAK (Kea
    // 2.2: it must come back through DISCOVER).
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Known and right about its address → ACK, even expired.
    let a = w.dora(M1);
    p.requested = Some(a);
    w.now += 3600;
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Ack));
    // Holding one, asking for another → NAK.
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 151));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Non-authoritative server with no record stays silent.
    let mut w = World::new(199, false);
    let mut p = pkt(v4::MessageType::Request, M2);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
    assert_eq!(w.send(&p).silence, Some(Silence::NotAuthoritative));
}

#[test]
fn release_frees_and_decline_quarantines() {
    let mut w = World::new(102, true);
    let a = w.dora(M1);
    // A stranger cannot release it.
    let mut p = pkt(v4::MessageType::Release, M2);
    p.ciaddr = a;
    assert_eq!(w.send(&p).silence, Some(Silence::NotOwner));
    p.mac = M1;
    let d = w.send(&p);
    assert_eq!(d.write, Some(LeaseWrite::Remove(a)));
    assert!(d.reply.is_none());

    let b = w.dora(M2);
    let mut p = pkt(v4::MessageType::Decline, M2);
    p.requested = Some(b);
    let d = w.send(&p);
    match d.write {
        Some(LeaseWrite::Upsert(l)) => {
            assert_eq!(l.state, HeldState::Declined);
            assert_eq!(l.expire, NOW + 86400);
            assert!(l.hwaddr.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // The declined address is not offered during probation…
    w.now += OFFER_HOLD_SECS + 1;
    for mac in [[2, 0, 0, 0, 0, 8], [2, 0, 0, 0, 0, 9]] {
        if let Some((m, _)) = w.send(&pkt(v4::MessageType::Discover, mac)).reply {
            assert_ne!(m.yiaddr(), b);
        }
    }
    // …and is after it.
    w.now += 86400;
    w.alloc.expire_offers(w.now);
    let mut p = pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 10]);
    p.requested = Some(b);
    assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), b);
}
