//! DISCOVER and the allocator: which address is offered, offer holds,
//! exhaustion and addresses coming free again.

use super::*;

#[test]
fn discover_offers_first_free_pool_address_unicast_to_chaddr() {
    let mut w = World::new(199, true);
    let d = w.send(&pkt(v4::MessageType::Discover, M1));
    let (m, dest) = d.reply.unwrap();
    // .100 is reserved for another host, so the first free one is .101.
    assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 168, 50, 101));
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: m.yiaddr() });
    assert_eq!(m.opcode(), Opcode::BootReply);
    let o = m.opts();
    assert_eq!(o.get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SID)));
    assert_eq!(o.get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(60)));
    assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(30)));
    assert_eq!(o.get(OptionCode::Rebinding), Some(&DhcpOption::Rebinding(45)));
    assert_eq!(o.get(OptionCode::SubnetMask), Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0))));
    assert!(o.contains(OptionCode::Router));
    assert!(!o.contains(OptionCode::NtpServers), "not requested, not basic");
    assert!(d.write.is_none(), "an OFFER writes nothing");
}

/// The store as seen under an HA reuse grace period.
struct Graced<'a>(&'a Store, crate::ha::ReuseGrace, u64);

impl LeaseView for Graced<'_> {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        self.0.by_address(a).map(|h| self.1.apply(self.2, h))
    }
    fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
        self.0.by_hwaddr(s, hw).map(|h| self.1.apply(self.2, h))
    }
    fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
        self.0.by_client_id(s, id).map(|h| self.1.apply(self.2, h))
    }
}

#[test]
fn reuse_grace_keeps_a_recently_expired_address_for_its_holder() {
    // mutante1 held .101 until NOW-10 in our copy; the dead partner may
    // have renewed it unseen. Partner-down began at NOW-5.
    let mut w = World::new(199, true);
    let first = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    let mut r = pkt(v4::MessageType::Request, M1);
    (r.requested, r.server_id) = (Some(first), Some(SID));
    w.send(&r);
    w.store.0.get_mut(&first).unwrap().expire = NOW - 10;
    w.alloc = Allocator::default();
    let grace = crate::ha::ReuseGrace::new(NOW - 5, 60);
    let ctx = Ctx { now: NOW, server_id: SID, on_link: true };
    // Without the rule the expired address goes to the next client…
    let other = pkt(v4::MessageType::Discover, M2).build();
    let plain = decide(&other, w.policy.subnet(1), &w.policy, &w.store, &mut Allocator::default(), ctx);
    assert_eq!(plain.reply.unwrap().0.yiaddr(), first);
    // …with it, another address; the holder still gets its own back.
    let view = Graced(&w.store, grace, NOW);
    let held = decide(&other, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
    assert_ne!(held.reply.unwrap().0.yiaddr(), first);
    let own = pkt(v4::MessageType::Discover, M1).build();
    let back = decide(&own, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
    assert_eq!(back.reply.unwrap().0.yiaddr(), first);
    // Once the grace period is over, the address is free again.
    let after = Graced(&w.store, grace, grace.until());
    let later = decide(&other, w.policy.subnet(1), &w.policy, &after, &mut Allocator::default(), Ctx { now: grace.until(), server_id: SID, on_link: true });
    assert_eq!(later.reply.unwrap().0.yiaddr(), first);
}

#[test]
fn offer_index_stays_in_step_with_offers() {
    let mut w = World::new(199, true);
    for i in 0..50u8 {
        w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, i]));
    }
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (50, 50));
    // A client asking again finds its own offer through the index.
    let first = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, 7])).reply.unwrap().0.yiaddr();
    assert_eq!(w.alloc.offers[&first].0.hwaddr, vec![2, 0, 0, 1, 0, 7]);
    // Accepting one removes it from both maps; expiry clears the rest.
    let mut req = pkt(v4::MessageType::Request, [2, 0, 0, 1, 0, 7]);
    req.requested = Some(first);
    req.server_id = Some(SID);
    assert_eq!(kind(&w.send(&req)), Some(v4::MessageType::Ack));
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (49, 49));
    w.alloc.expire_offers(NOW + OFFER_HOLD_SECS);
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (0, 0));
}

#[test]
fn concurrent_discovers_get_distinct_offers() {
    let mut w = World::new(199, true);
    let a = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    let b = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr();
    assert_ne!(a, b);
    // The same client asking again gets the same offer.
    let a2 = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    assert_eq!(a, a2);
}

/// Kea 2.2 holds nothing for an OFFER: with one free address left, a
/// second client is offered it too, and the first REQUEST wins.
#[test]
fn an_offer_is_a_soft_hold() {
    let mut w = World::new(101, true);
    let only = Ipv4Addr::new(192, 168, 50, 101);
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr(), only);
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), only);
    let mut r = pkt(v4::MessageType::Request, M2);
    (r.requested, r.server_id) = (Some(only), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Ack));
    let mut r = pkt(v4::MessageType::Request, M1);
    (r.requested, r.server_id) = (Some(only), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
}

/// A DISCOVER flood: the offer table stops at its cap, every DISCOVER
/// is still answered, the overflow is counted, and the table empties as
/// holds expire.
#[test]
fn held_offers_are_capped_and_counted() {
    let mut w = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
            { "id": 1, "subnet": "10.0.0.0/8", "pools": [ { "pool": "10.0.0.1-10.255.255.254" } ] } ] } }"#,
    );
    let extra = 100;
    for i in 0..MAX_HELD_OFFERS + extra {
        let b = (i as u32).to_be_bytes();
        let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, b[0], b[1], b[2], b[3]]));
        assert!(d.reply.is_some(), "DISCOVER {i} unanswered");
    }
    assert_eq!(w.alloc.outstanding_offers(), MAX_HELD_OFFERS);
    assert_eq!(w.alloc.unheld_offers(), extra as u64);
    w.alloc.expire_offers(w.now + OFFER_HOLD_SECS);
    assert_eq!(w.alloc.outstanding_offers(), 0);
}

/// A new configuration may keep a subnet id and change its pool (Forge's
/// config-set tests): the pool cursor of the old pool must not leave
/// the new one looking exhausted.
#[test]
fn a_stale_pool_cursor_starts_over() {
    let mut w = World::new(199, true);
    w.dora(M1);
    w.policy = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
            { "id": 1, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ] } ] } }"#,
    )
    .policy;
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 51, 1));
}

/// Kea's DISCOVER hint: option 50, else ciaddr (a client that released
/// its lease and comes back gets the same address).
/// Forge's exhausted-pool DORA: a REQUEST carrying our server id and a
/// requested address of 0.0.0.0 is NAKed when nothing is free.
#[test]
fn request_for_zero_address_allocates_or_naks() {
    let mut w = World::new(101, true);
    w.dora(M1);
    let mut r = pkt(v4::MessageType::Request, M2);
    (r.requested, r.server_id) = (Some(Ipv4Addr::UNSPECIFIED), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
}

#[test]
fn discover_hint_falls_back_to_ciaddr() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 150);
    assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), p.ciaddr);
}

#[test]
fn exhaustion_is_silent_and_expired_leases_are_reused() {
    // Pool .100-.102 with .100 reserved: two dynamic addresses.
    let mut w = World::new(102, true);
    let a = w.dora(M1);
    let b = w.dora(M2);
    assert_ne!(a, b);
    let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 7]));
    assert_eq!(d.silence, Some(Silence::PoolExhausted));
    w.now += 61 + OFFER_HOLD_SECS;
    let c = w.dora([2, 0, 0, 0, 0, 7]);
    assert!(c == a || c == b);
}
