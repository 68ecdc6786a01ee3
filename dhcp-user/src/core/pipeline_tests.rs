//! [`process`] for each message type and each HA outcome, on an in-memory
//! store: no socket, no root.

use std::net::Ipv4Addr;

use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use super::*;
use crate::{
    dhcp::engine::Silence,
    ha::PartnerUpdates,
    leases::{HwAddr, StoreConfig},
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// One subnet on eth0 (192.0.2.0/24, pool .10–.20), authoritative.
struct World {
    policy: Policy,
    store: LeaseStore,
    alloc: Allocator,
    enabled: bool,
}

impl World {
    fn new() -> Self {
        let cfg = crate::config::parse(
            r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "authoritative": true,
                "valid-lifetime": 3600,
                "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ] } ] } }"#,
            "test",
        )
        .unwrap();
        let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
        World { policy: crate::glue::compile(&cfg), store, alloc: Allocator::default(), enabled: true }
    }

    fn run<G: Gate>(&mut self, req: &Inbound, at: &Arrival<'_>, gate: &G) -> Outcome<G::Rel> {
        let now = crate::clock::unix_now();
        let v = View { policy: &self.policy, store: &self.store, alloc: &mut self.alloc, grace: None, enabled: self.enabled, now };
        process(v, req, at, gate)
    }

    fn handle(&mut self, req: &Inbound) -> Outcome<()> {
        self.run(req, &eth0(Ipv4Addr::UNSPECIFIED), &NoHa)
    }

    /// Makes a lease the store's, as a committed write would.
    fn hold(&self, mac: [u8; 6], addr: Ipv4Addr) {
        let now = crate::clock::unix_now();
        let _ = self.store.upsert(Lease::new(addr, Some(HwAddr::ethernet(mac)), None, 1, now, 3600));
    }
}

const ADDRS: &[(Ipv4Addr, u8)] = &[(SERVER, 24)];

fn eth0(from: Ipv4Addr) -> Arrival<'static> {
    Arrival { iface: "eth0", iface_addrs: ADDRS, server_id: SERVER, from, to: Some(Ipv4Addr::BROADCAST) }
}

fn packet(kind: MessageType, mac: [u8; 6], ciaddr: Ipv4Addr, opts: &[DhcpOption]) -> Inbound {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new(ciaddr, u, u, u, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    for o in opts {
        m.opts_mut().insert(o.clone());
    }
    crate::dhcp::inbound::classify(&m.to_vec().unwrap()).unwrap()
}

fn reply_type<R>(o: &Outcome<R>) -> Option<MessageType> {
    o.reply.as_ref().and_then(|(m, _)| m.opts().msg_type())
}

fn written<R>(o: &Outcome<R>) -> Option<Ipv4Addr> {
    match &o.write {
        Some(LeaseWrite::Upsert(l)) => Some(l.address),
        _ => None,
    }
}

/// DISCOVER → REQUEST as a client in SELECTING sends it.
fn selecting(addr: Ipv4Addr) -> Inbound {
    packet(MessageType::Request, MAC, Ipv4Addr::UNSPECIFIED, &[
        DhcpOption::RequestedIpAddress(addr),
        DhcpOption::ServerIdentifier(SERVER),
    ])
}

#[test]
fn discover_is_offered_an_address_and_nothing_is_written() {
    let mut w = World::new();
    let o = w.handle(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]));
    assert_eq!(reply_type(&o), Some(MessageType::Offer));
    assert!(o.write.is_none() && o.replication.is_none());
    assert_eq!(o.counts.get(Counter::Received(inbound::Kind::Discover)), 1);
}

#[test]
fn request_for_the_offer_is_acked_with_a_lease_write() {
    let mut w = World::new();
    let offer = w.handle(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]));
    let addr = offer.reply.unwrap().0.yiaddr();
    let o = w.handle(&selecting(addr));
    assert_eq!(reply_type(&o), Some(MessageType::Ack));
    assert_eq!(written(&o), Some(addr));
    assert_eq!(o.counts.get(Counter::Received(inbound::Kind::Request)), 1);
}

#[test]
fn request_for_an_address_another_client_holds_is_naked() {
    let mut w = World::new();
    let taken = Ipv4Addr::new(192, 0, 2, 12);
    w.hold(OTHER, taken);
    let o = w.handle(&selecting(taken));
    assert_eq!(reply_type(&o), Some(MessageType::Nak));
    assert!(o.write.is_none());
}

#[test]
fn release_removes_the_lease_without_a_reply() {
    let mut w = World::new();
    let addr = Ipv4Addr::new(192, 0, 2, 13);
    w.hold(MAC, addr);
    let o = w.handle(&packet(MessageType::Release, MAC, addr, &[DhcpOption::ServerIdentifier(SERVER)]));
    assert!(o.reply.is_none());
    assert!(matches!(o.write, Some(LeaseWrite::Remove(a)) if a == addr));
    assert_eq!(o.counts.get(Counter::Silent(Silence::NoReplyExpected)), 1);
}

#[test]
fn decline_quarantines_the_address_without_a_reply() {
    let mut w = World::new();
    let addr = Ipv4Addr::new(192, 0, 2, 14);
    w.hold(MAC, addr);
    let o = w.handle(&packet(MessageType::Decline, MAC, Ipv4Addr::UNSPECIFIED, &[
        DhcpOption::RequestedIpAddress(addr),
        DhcpOption::ServerIdentifier(SERVER),
    ]));
    assert!(o.reply.is_none());
    assert_eq!(written(&o), Some(addr));
    let Some(LeaseWrite::Upsert(l)) = &o.write else { unreachable!() };
    assert_eq!(l.state, crate::dhcp::engine::HeldState::Declined);
}

#[test]
fn inform_is_acked_without_a_lease() {
    let mut w = World::new();
    let ciaddr = Ipv4Addr::new(192, 0, 2, 50);
    let o = w.handle(&packet(MessageType::Inform, MAC, ciaddr, &[]));
    assert_eq!(reply_type(&o), Some(MessageType::Ack));
    assert!(o.write.is_none());
}

#[test]
fn disabled_decides_and_counts_nothing() {
    let mut w = World::new();
    w.enabled = false;
    let o = w.handle(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]));
    assert!(o.reply.is_none() && o.write.is_none());
    assert_eq!(o.counts.iter().count(), 0);
}

#[test]
fn a_link_without_a_subnet_is_silent() {
    let mut w = World::new();
    let addrs = [(Ipv4Addr::new(10, 9, 9, 1), 24)];
    let at = Arrival { iface: "eth9", iface_addrs: &addrs, server_id: addrs[0].0, from: Ipv4Addr::UNSPECIFIED, to: None };
    let o = w.run(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]), &at, &NoHa);
    assert!(o.reply.is_none());
    assert_eq!(o.counts.get(Counter::Silent(Silence::NoSubnet)), 1);
}

/// HA as the pipeline sees it: a fixed answer from the query filter and
/// a fixed plan.
struct FakeHa {
    admit: Result<Option<&'static str>, HaDrop>,
    plan: UpdatePlan,
}

impl Gate for FakeHa {
    type Rel = &'static str;

    fn admit(&self, _: Option<&SubnetPolicy>, _: &Query<'_>) -> Result<Option<&'static str>, HaDrop> {
        self.admit
    }

    fn plan(&self, _: &&'static str, _: usize) -> UpdatePlan {
        self.plan
    }
}

const SEND: UpdatePlan = UpdatePlan { partner: PartnerUpdates::Send, backups: false };

#[test]
fn ha_drops_are_counted_and_decide_nothing() {
    for why in [HaDrop::NoRelationship, HaDrop::NotInScope, HaDrop::HaDisabled, HaDrop::PartnerUpdatesBackedUp] {
        let mut w = World::new();
        let ha = FakeHa { admit: Err(why), plan: SEND };
        let o = w.run(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]), &eth0(Ipv4Addr::UNSPECIFIED), &ha);
        assert!(o.reply.is_none() && o.write.is_none() && o.replication.is_none(), "{why:?}");
        assert_eq!(o.counts.get(Counter::HaDropped(why)), 1);
    }
}

#[test]
fn ha_ack_carries_the_partner_update_and_its_plan() {
    let mut w = World::new();
    let ha = FakeHa { admit: Ok(Some("rel")), plan: SEND };
    let at = eth0(Ipv4Addr::UNSPECIFIED);
    let offer = w.run(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]), &at, &ha);
    assert!(offer.replication.is_none(), "an OFFER writes nothing to replicate");
    let addr = offer.reply.unwrap().0.yiaddr();
    let o = w.run(&selecting(addr), &at, &ha);
    assert_eq!(reply_type(&o), Some(MessageType::Ack));
    let r = o.replication.expect("replicated");
    assert_eq!((r.rel, r.plan), ("rel", SEND));
    assert!(matches!(r.updates.as_slice(), [Update::Put(l)] if l.address == addr));
}

#[test]
fn ha_release_sends_the_partner_a_delete() {
    let mut w = World::new();
    let addr = Ipv4Addr::new(192, 0, 2, 15);
    w.hold(MAC, addr);
    let ha = FakeHa { admit: Ok(Some("rel")), plan: SEND };
    let o = w.run(&packet(MessageType::Release, MAC, addr, &[DhcpOption::ServerIdentifier(SERVER)]), &eth0(addr), &ha);
    let r = o.replication.expect("replicated");
    assert!(matches!(r.updates.as_slice(), [Update::Del(l)] if l.address == addr));
}

#[test]
fn ha_without_a_relationship_for_the_request_replicates_nothing() {
    let mut w = World::new();
    let ha = FakeHa { admit: Ok(None), plan: SEND };
    let addr = Ipv4Addr::new(192, 0, 2, 16);
    w.hold(MAC, addr);
    let o = w.run(&packet(MessageType::Release, MAC, addr, &[DhcpOption::ServerIdentifier(SERVER)]), &eth0(addr), &ha);
    assert!(o.write.is_some() && o.replication.is_none());
}

/// Through the core: the decision is committed (store and counters) under
/// its lock, and the row is what the reply waits for.
#[test]
fn core_process_commits_the_write_and_the_counts() {
    let w = World::new();
    let core = Core::new(w.policy, w.store, None);
    let at = eth0(Ipv4Addr::UNSPECIFIED);
    let offer = core.process(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]), &at, &NoHa);
    let addr = offer.reply.unwrap().0.yiaddr();
    let ack = core.process(&selecting(addr), &at, &NoHa);
    assert!(ack.durable.is_some());
    assert_eq!(core.lease(addr).and_then(|l| l.hwaddr).map(|h| h.bytes().to_vec()), Some(MAC.to_vec()));
    assert_eq!(core.stats().get(Counter::Received(inbound::Kind::Request)), 1);
}

/// A request decided again after a lost race is the same packet: counted
/// as received once, and decided each time.
#[test]
fn a_request_decided_again_is_received_once() {
    let w = World::new();
    let core = Core::new(w.policy, w.store, None);
    let at = eth0(Ipv4Addr::UNSPECIFIED);
    let mut discover = packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]).msg;
    discover.set_xid(7);
    let bytes = discover.to_vec().unwrap();
    assert!(core.receive(&bytes, &at, &NoHa).unwrap().reply.is_some());
    assert!(core.receive_again(&bytes, &at, &NoHa).unwrap().reply.is_some());
    let stats = core.stats();
    assert_eq!(stats.get(Counter::Received(inbound::Kind::Discover)), 1);
}

/// Forge's `test_v4_host_reservation_conflicts_reconfigure_server_add_reservation_for_host_that_has_lease`:
/// a reload adds an out-of-pool reservation for a client that holds the
/// pool's only address; Kea offers that client its reserved address and
/// has nothing for anyone else.
#[test]
fn a_reservation_added_for_a_client_with_a_lease_is_offered() {
    let mut w = World::new();
    let cfg = crate::config::parse(
        r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "valid-lifetime": 3600,
            "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.5-192.0.2.5" } ],
              "reservations": [ { "hw-address": "02:00:00:00:00:01", "ip-address": "192.0.2.50" } ] } ] } }"#,
        "test",
    )
    .unwrap();
    w.policy = crate::glue::compile(&cfg);
    w.hold(MAC, Ipv4Addr::new(192, 0, 2, 5));
    let o = w.handle(&packet(MessageType::Discover, OTHER, Ipv4Addr::UNSPECIFIED, &[]));
    assert!(o.reply.is_none(), "the pool's one address is leased");
    let o = w.handle(&packet(MessageType::Discover, MAC, Ipv4Addr::UNSPECIFIED, &[]));
    assert_eq!(o.reply.as_ref().map(|(m, _)| (m.opts().msg_type(), m.yiaddr())), Some((Some(MessageType::Offer), Ipv4Addr::new(192, 0, 2, 50))));
    // Its REQUEST moves it: Kea deletes the old lease, so the pool's
    // address is the next client's.
    let core = Core::new(w.policy, w.store, None);
    let at = eth0(Ipv4Addr::UNSPECIFIED);
    let ack = core.process(&selecting(Ipv4Addr::new(192, 0, 2, 50)), &at, &NoHa);
    assert_eq!(ack.reply.as_ref().map(|(m, _)| m.opts().msg_type()), Some(Some(MessageType::Ack)));
    assert!(core.lease(Ipv4Addr::new(192, 0, 2, 5)).is_none(), "the old lease is gone");
    let o = core.process(&packet(MessageType::Discover, OTHER, Ipv4Addr::UNSPECIFIED, &[]), &at, &NoHa);
    assert_eq!(o.reply.as_ref().map(|(m, _)| m.yiaddr()), Some(Ipv4Addr::new(192, 0, 2, 5)));
}
