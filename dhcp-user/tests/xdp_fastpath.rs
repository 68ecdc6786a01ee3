//! The real XDP program, run by the kernel on crafted frames with
//! BPF_PROG_TEST_RUN (no network needed; root is). For a table of renewals
//! the kernel's ACK must equal, byte for byte, the frame the daemon builds
//! for the same request: the engine's reply encoded by dhcproto inside
//! `frame::build`'s headers. (When the daemon itself answers a renewal it
//! sends through a UDP socket, and the kernel's stack then picks the IP id,
//! DF and TOS; the DHCP payload and addresses are the same.) Requests the
//! kernel must not answer are checked to be passed, with the reason.
//!
//! The same for reserved clients (mutante3 in venus): DISCOVER → OFFER and
//! SELECTING / INIT-REBOOT / RENEWING REQUEST → ACK, sent where RFC 2131
//! §4.1 says, equal to the daemon's frame, with the ACK reported on the
//! ring buffer; and the requests the kernel must leave to the daemon.

mod xdp_rig;

use std::net::Ipv4Addr;

use xdp_rig::{Rig, XDP_PASS, XDP_TX};
use dhcp_common::counters::Outcome;
use dhcp_user::{
    config,
    dhcp::{
        engine::{self, Allocator, Ctx, Destination, Held, LeaseView},
        frame::{self, FrameAddrs},
        inbound,
        policy::Policy,
    },
    fastpath::{parse_event, reserved_lease},
    glue::{self, held},
    leases::{ClientId, HwAddr, Lease},
    net::Interface,
    clock::unix_now,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Flags, Message, MessageType, OptionCode},
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 120);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn policy() -> Policy {
    xdp_rig::venus_policy()
}

fn rig() -> Rig {
    // The test run's ingress device is lo (index 1) with venus's addresses.
    Rig::new(policy(), Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] })
}

fn lease(mac: [u8; 6], cid: Option<&[u8]>, expire: u64) -> Lease {
    let mut l = Lease::new(CLIENT, Some(HwAddr::ethernet(mac)), cid.map(|c| ClientId::new(c.to_vec()).unwrap()), 1, expire - 60, 60);
    l.expire = expire;
    l
}

#[derive(Clone)]
struct Req {
    kind: MessageType,
    mac: [u8; 6],
    cid: Option<Vec<u8>>,
    prl: Vec<u8>,
    server_id: bool,
    /// Option 54's value when `server_id` is set.
    server_ip: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    flag_broadcast: bool,
    giaddr: Ipv4Addr,
    vlan: Option<u16>,
    broadcast_dst: bool,
    ciaddr: Ipv4Addr,
}

fn renewal() -> Req {
    Req {
        kind: MessageType::Request,
        mac: MAC,
        cid: None,
        prl: vec![1, 3, 6, 15, 119],
        server_id: false,
        server_ip: SERVER,
        requested: None,
        flag_broadcast: false,
        giaddr: Ipv4Addr::UNSPECIFIED,
        vlan: None,
        broadcast_dst: false,
        ciaddr: CLIENT,
    }
}

impl Req {
    fn payload(&self) -> Vec<u8> {
        let mut m = Message::new(self.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, self.giaddr, &self.mac);
        m.set_xid(0x1234_5678).set_secs(3);
        if self.flag_broadcast {
            m.set_flags(Flags::default().set_broadcast());
        }
        m.opts_mut().insert(DhcpOption::MessageType(self.kind));
        if let Some(c) = &self.cid {
            m.opts_mut().insert(DhcpOption::ClientIdentifier(c.clone()));
        }
        if let Some(a) = self.requested {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
        }
        if self.server_id {
            m.opts_mut().insert(DhcpOption::ServerIdentifier(self.server_ip));
        }
        m.opts_mut().insert(DhcpOption::ParameterRequestList(self.prl.iter().map(|c| OptionCode::from(*c)).collect()));
        m.opts_mut().insert(DhcpOption::Hostname("mutante1".into()));
        m.to_vec().unwrap()
    }

    fn frame(&self) -> Vec<u8> {
        let f = frame::build(
            &FrameAddrs {
                dst_mac: if self.broadcast_dst { [0xff; 6] } else { SERVER_MAC },
                src_mac: self.mac,
                src_ip: self.ciaddr,
                dst_ip: if self.broadcast_dst { Ipv4Addr::BROADCAST } else { SERVER },
                src_port: 68,
                dst_port: 67,
            },
            &self.payload(),
        );
        with_vlan(f, self.vlan)
    }
}

fn with_vlan(mut f: Vec<u8>, vlan: Option<u16>) -> Vec<u8> {
    if let Some(id) = vlan {
        let tag = [0x81, 0x00, (id >> 8) as u8, id as u8];
        f.splice(12..12, tag);
    }
    f
}

struct View(Lease);

impl LeaseView for View {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        (a == self.0.address).then(|| held(&self.0))
    }
    fn by_hwaddr(&self, _: u32, hw: &[u8]) -> Option<Held> {
        (self.0.hwaddr.as_ref().map(|h| h.bytes()) == Some(hw)).then(|| held(&self.0))
    }
    fn by_client_id(&self, _: u32, id: &[u8]) -> Option<Held> {
        (self.0.client_id.as_ref().map(|c| c.bytes()) == Some(id)).then(|| held(&self.0))
    }
}

/// The frame the daemon would send for `req` given `lease`.
fn daemon_reply(rig: &Rig, req: &Req, lease: &Lease) -> Vec<u8> {
    let inb = inbound::classify(&req.payload()).unwrap();
    let d = engine::decide(
        &inb,
        rig.policy.subnet(1),
        &rig.policy,
        &View(lease.clone()),
        &mut Allocator::default(),
        Ctx { now: unix_now(), server_id: SERVER, on_link: true },
    );
    ack_frame(req, d.reply)
}

/// The frame of the daemon's `reply` (an ACK) to `req`.
fn ack_frame(req: &Req, reply: Option<(Message, Destination)>) -> Vec<u8> {
    let (msg, dest) = reply.expect("the daemon answers this renewal");
    assert_eq!(msg.opts().msg_type(), Some(MessageType::Ack));
    // On the link: a frame to chaddr at ciaddr, as Kea sends it.
    assert_eq!(dest, Destination::Chaddr { mac: req.mac, ip: req.ciaddr });
    let f = frame::build(
        &FrameAddrs { dst_mac: req.mac, src_mac: SERVER_MAC, src_ip: SERVER, dst_ip: req.ciaddr, src_port: 67, dst_port: 68 },
        &msg.to_vec().unwrap(),
    );
    with_vlan(f, req.vlan)
}

#[test]
fn kernel_ack_equals_daemon_ack_byte_for_byte() {
    let mut rig = rig();
    let cid: Vec<u8> = vec![1, 2, 0, 0, 0, 0, 1];
    let cases: Vec<(&str, Req, Lease)> = vec![
        ("plain renewal", renewal(), lease(MAC, None, unix_now() + 30)),
        ("rebinding (broadcast)", Req { broadcast_dst: true, ..renewal() }, lease(MAC, None, unix_now() + 30)),
        ("client-id echoed", Req { cid: Some(cid.clone()), ..renewal() }, lease(MAC, Some(&cid), unix_now() + 30)),
        (
            "matched by client-id despite a new NIC",
            Req { cid: Some(cid.clone()), mac: [2, 0, 0, 0, 0, 0x77], ..renewal() },
            lease(MAC, Some(&cid), unix_now() + 30),
        ),
        ("802.1Q tagged", Req { vlan: Some(42), ..renewal() }, lease(MAC, None, unix_now() + 30)),
        ("empty PRL", Req { prl: vec![], ..renewal() }, lease(MAC, None, unix_now() + 30)),
    ];
    for (name, req, l) in cases {
        rig.sync.sync_lease(&rig.policy, CLIENT, Some(&l));
        let before = rig.counters();
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered in the kernel; counters {:?}", rig.counters());
        assert_eq!(rig.delta(&before, Outcome::AnsweredAck), 1, "{name}");
        let want = daemon_reply(&rig, &req, &l);
        assert_eq!(out.len(), want.len(), "{name}: length");
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "{name}: byte {i} differs (kernel {a:#04x}, daemon {b:#04x})");
        }
        // The kernel extended its copy and told the daemon.
        let (_, e) = rig.sync.lease_entries().into_iter().find(|(a, _)| *a == CLIENT).unwrap();
        let now = unix_now();
        assert!((now + 59..=now + 61).contains(&e.expire), "{name}: expire {} now {now}", e.expire);
        let ev = rig.events.next().map(|item| parse_event(&item).unwrap()).expect("a renewal event");
        assert_eq!((Ipv4Addr::from(ev.addr), ev.subnet_id, ev.valid_lifetime, ev.expire), (CLIENT, 1, 60, e.expire));
    }
}

/// Venus with options from `option-def`: 43 carrying a sub-option of
/// `vendor-encapsulated-options-space` (always sent), a custom record
/// (sent when asked for) and 125 assembled from an always-send option of
/// `vendor-41112`.
fn option_def_policy() -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = &mut v["Dhcp4"];
    d["option-def"] = serde_json::json!([
        { "name": "vlanid", "code": 2, "space": "vendor-encapsulated-options-space", "type": "uint32" },
        { "name": "foo", "code": 222, "type": "record", "record-types": "ipv4-address, uint16" },
        { "name": "unifi-address", "code": 1, "space": "vendor-41112", "type": "ipv4-address" }
    ]);
    d["option-data"] = serde_json::json!([
        { "name": "vendor-encapsulated-options", "always-send": true },
        { "name": "vlanid", "space": "vendor-encapsulated-options-space", "data": "123" },
        { "name": "foo", "data": "192.0.2.1, 7" },
        { "name": "vivso-suboptions", "data": "41112", "always-send": true },
        { "name": "unifi-address", "space": "vendor-41112", "data": "192.0.2.11", "always-send": true }
    ]);
    glue::compile(&config::parse(&v.to_string(), "lobezno-option-def.json").unwrap())
}

#[test]
fn kernel_ack_with_option_def_options_equals_the_daemons() {
    let lo = Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] };
    let mut rig = Rig::new(option_def_policy(), lo);
    let l = lease(MAC, None, unix_now() + 30);
    // The custom record is sent only when asked for, so such a renewal is
    // the daemon's (its reply is not the template's).
    rig.sync.sync_lease(&rig.policy, CLIENT, Some(&l));
    let (action, _) = rig.run(&Req { prl: vec![1, 3, 6, 15, 222], ..renewal() }.frame());
    assert_eq!(action, XDP_PASS, "a renewal asking for the custom record is passed");
    let asking = Req { prl: vec![43, 125], ..renewal() };
    for (name, req) in [("default PRL", renewal()), ("asking for 43 and 125", asking)] {
        rig.sync.sync_lease(&rig.policy, CLIENT, Some(&l));
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered in the kernel; counters {:?}", rig.counters());
        let want = daemon_reply(&rig, &req, &l);
        assert!(want.windows(8).any(|w| w == [43, 6, 2, 4, 0, 0, 0, 123]), "{name}: 43 in the daemon's reply");
        assert!(want.windows(13).any(|w| w == [125, 11, 0, 0, 0xa0, 0x98, 6, 1, 4, 192, 0, 2, 11]), "{name}: 125");
        assert_eq!(out, want, "{name}: the kernel's ACK differs from the daemon's");
    }
}

#[test]
fn kernel_passes_what_it_must_not_answer() {
    let mut rig = rig();
    let good = lease(MAC, None, unix_now() + 30);
    let cases: Vec<(&str, Req, Option<Lease>, Outcome)> = vec![
        ("expired lease", renewal(), Some(lease(MAC, None, unix_now() - 5)), Outcome::PassedExpired),
        ("lease for another address", Req { ciaddr: Ipv4Addr::new(192, 168, 50, 150), ..renewal() }, Some(good.clone()), Outcome::PassedNoLease),
        ("unknown client", Req { mac: [2, 0, 0, 0, 0, 0x66], ..renewal() }, Some(good.clone()), Outcome::PassedNotOwner),
        ("asks for an option the template lacks", Req { prl: vec![1, 3, 42], ..renewal() }, Some(good.clone()), Outcome::PassedNotRenewal),
        ("SELECTING (server id)", Req { server_id: true, ..renewal() }, Some(good.clone()), Outcome::PassedNotRenewal),
        ("no lease in the map at all", renewal(), None, Outcome::PassedNoLease),
    ];
    // The daemon answers an on-link ciaddr with a frame to chaddr; a frame
    // sent from another MAC is its to answer.
    let mut spoofed = renewal().frame();
    spoofed[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    let cases: Vec<(&str, Vec<u8>, Option<Lease>, Outcome)> = cases
        .into_iter()
        .map(|(n, r, l, o)| (n, r.frame(), l, o))
        .chain([("sent from a MAC other than chaddr", spoofed, Some(good.clone()), Outcome::PassedNotRenewal)])
        .chain(other_destinations().into_iter().map(|(n, f)| (n, f, Some(good.clone()), Outcome::PassedOtherDestination)))
        .chain(unreadable_options().into_iter().map(|(n, f)| (n, f, Some(good.clone()), Outcome::PassedNotRenewal)))
        .collect();
    for (name, frame, l, why) in cases {
        rig.sync.sync_lease(&rig.policy, CLIENT, l.as_ref());
        let before = rig.counters();
        let (action, out) = rig.run(&frame);
        assert_eq!(action, XDP_PASS, "{name}");
        assert_eq!(out, frame, "{name}: a passed frame is untouched");
        assert_eq!(rig.delta(&before, why), 1, "{name}: reason");
        assert_eq!(rig.delta(&before, Outcome::PassedToDaemon), 1, "{name}");
    }
    // A subnet this server does not serve right now (HA scope off).
    rig.sync.sync_lease(&rig.policy, CLIENT, Some(&good));
    let lo = rig.lo.clone();
    rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&lo), |_| false).unwrap();
    let before = rig.counters();
    let (action, _) = rig.run(&renewal().frame());
    assert_eq!(action, XDP_PASS);
    assert_eq!(rig.delta(&before, Outcome::PassedNotServing), 1);
    assert!(rig.events.next().is_none(), "no event for passed requests");
}

/// A renewal seen on a promiscuous port but meant for another host (its
/// MAC) or another address: the stack, not the kernel, decides.
fn other_destinations() -> Vec<(&'static str, Vec<u8>)> {
    let mut other_mac = renewal().frame();
    other_mac[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x99]);
    let addrs = FrameAddrs {
        dst_mac: SERVER_MAC,
        src_mac: MAC,
        src_ip: CLIENT,
        dst_ip: Ipv4Addr::new(192, 168, 50, 9),
        src_port: 68,
        dst_port: 67,
    };
    let other_ip = frame::build(&addrs, &renewal().payload());
    vec![("to another host's MAC", other_mac), ("to another IP address", other_ip)]
}

/// Renewals whose options the daemon reads differently from a plain scan:
/// the kernel leaves them to it.
fn unreadable_options() -> Vec<(&'static str, Vec<u8>)> {
    let addrs = FrameAddrs {
        dst_mac: SERVER_MAC,
        src_mac: MAC,
        src_ip: CLIENT,
        dst_ip: SERVER,
        src_port: 68,
        dst_port: 67,
    };
    // END only in the Ethernet padding after the UDP datagram.
    let mut unended = renewal().payload();
    assert_eq!(unended.pop(), Some(255));
    let mut padded = frame::build(&addrs, &unended);
    padded.push(255);
    // A second message type (the daemon joins consecutive copies).
    let mut twice = renewal().payload();
    let end = twice.len() - 1;
    twice.splice(end..end, [53, 1, 3]);
    // A message type of two bytes (the daemon drops it).
    let mut long = renewal().payload();
    let end = long.len() - 1;
    long.splice(end..end, [53, 2, 3, 3]);
    vec![
        ("END beyond the UDP length", padded),
        ("option 53 twice", frame::build(&addrs, &twice)),
        ("option 53 of two bytes", frame::build(&addrs, &long)),
    ]
}

// ---- Reserved clients -------------------------------------------------

const M3: [u8; 6] = [2, 0, 0, 0, 0, 3];
const RESERVED: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 33);
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// A reserved client's request: broadcast from 0.0.0.0 unless `ciaddr`.
fn m3(kind: MessageType) -> Req {
    Req {
        kind,
        mac: M3,
        prl: vec![1, 3, 6, 12, 15, 28, 58, 59],
        ciaddr: Ipv4Addr::UNSPECIFIED,
        broadcast_dst: true,
        ..renewal()
    }
}

fn selecting() -> Req {
    Req { server_id: true, requested: Some(RESERVED), ..m3(MessageType::Request) }
}

fn init_reboot() -> Req {
    Req { requested: Some(RESERVED), ..m3(MessageType::Request) }
}

fn renewing() -> Req {
    Req { ciaddr: RESERVED, broadcast_dst: false, ..m3(MessageType::Request) }
}

fn held_lease(addr: Ipv4Addr, mac: [u8; 6], expire: u64) -> Lease {
    let mut l = Lease::new(addr, Some(HwAddr::ethernet(mac)), None, 1, expire - 60, 60);
    l.expire = expire;
    l
}

/// The store as the engine sees it (same choice among several leases of
/// one MAC as the daemon's `StoreView`).
struct Store(Vec<Lease>);

impl LeaseView for Store {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        self.0.iter().find(|l| l.address == a).map(held)
    }
    fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
        self.0
            .iter()
            .filter(|l| l.subnet_id == s && l.hwaddr.as_ref().map(|h| h.bytes()) == Some(hw))
            .max_by_key(|l| l.expire)
            .map(held)
    }
    fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
        self.0
            .iter()
            .filter(|l| l.subnet_id == s && l.client_id.as_ref().map(|c| c.bytes()) == Some(id))
            .max_by_key(|l| l.expire)
            .map(held)
    }
}

/// The daemon's frame for `req` with `store`, sent per its destination.
fn daemon_frame(rig: &Rig, req: &Req, store: &[Lease], want: MessageType) -> (Vec<u8>, Destination) {
    let inb = inbound::classify(&req.payload()).unwrap();
    let d = engine::decide(
        &inb,
        rig.policy.subnet(1),
        &rig.policy,
        &Store(store.to_vec()),
        &mut Allocator::default(),
        Ctx { now: unix_now(), server_id: SERVER, on_link: true },
    );
    let (msg, dest) = d.reply.expect("the daemon answers");
    assert_eq!(msg.opts().msg_type(), Some(want));
    let (dst_mac, dst_ip) = match dest {
        Destination::Ciaddr(ip) => (req.mac, ip),
        Destination::Broadcast => (BROADCAST_MAC, Ipv4Addr::BROADCAST),
        Destination::Chaddr { mac, ip } => (mac, ip),
        Destination::Relay(_) => panic!("not relayed"),
    };
    let f = frame::build(
        &FrameAddrs { dst_mac, src_mac: SERVER_MAC, src_ip: SERVER, dst_ip, src_port: 67, dst_port: 68 },
        &msg.to_vec().unwrap(),
    );
    (with_vlan(f, req.vlan), dest)
}

#[test]
fn reserved_client_offer_and_ack_equal_the_daemons_byte_for_byte() {
    let mut rig = rig();
    // One for requests received directly, one for requests relayed to lo.
    assert_eq!(rig.sync.reservation_entries().len(), 2, "mutante3's reservation is installed");
    let cid: Vec<u8> = vec![1, 2, 0, 0, 0, 0, 3];
    let mine = held_lease(RESERVED, M3, unix_now() + 30);
    let chaddr = Destination::Chaddr { mac: M3, ip: RESERVED };
    let cases: Vec<(&str, Req, Vec<Lease>, MessageType, Destination)> = vec![
        ("DISCOVER", m3(MessageType::Discover), vec![], MessageType::Offer, chaddr.clone()),
        (
            "DISCOVER, broadcast flag",
            Req { flag_broadcast: true, ..m3(MessageType::Discover) },
            vec![],
            MessageType::Offer,
            Destination::Broadcast,
        ),
        (
            "DISCOVER with client-id (echoed)",
            Req { cid: Some(cid.clone()), ..m3(MessageType::Discover) },
            vec![],
            MessageType::Offer,
            chaddr.clone(),
        ),
        (
            "DISCOVER, 802.1Q tagged, empty PRL",
            Req { vlan: Some(42), prl: vec![], ..m3(MessageType::Discover) },
            vec![],
            MessageType::Offer,
            chaddr.clone(),
        ),
        ("DISCOVER, address already its own", m3(MessageType::Discover), vec![mine.clone()], MessageType::Offer, chaddr.clone()),
        ("SELECTING", selecting(), vec![], MessageType::Ack, chaddr.clone()),
        (
            "SELECTING with client-id, broadcast flag",
            Req { cid: Some(cid.clone()), flag_broadcast: true, ..selecting() },
            vec![],
            MessageType::Ack,
            Destination::Broadcast,
        ),
        ("INIT-REBOOT, its lease", init_reboot(), vec![mine.clone()], MessageType::Ack, chaddr.clone()),
        (
            "INIT-REBOOT, broadcast flag",
            Req { flag_broadcast: true, ..init_reboot() },
            vec![mine.clone()],
            MessageType::Ack,
            Destination::Broadcast,
        ),
        ("RENEWING", renewing(), vec![mine.clone()], MessageType::Ack, Destination::Chaddr { mac: M3, ip: RESERVED }),
        (
            "REBINDING (broadcast)",
            Req { broadcast_dst: true, ..renewing() },
            vec![mine.clone()],
            MessageType::Ack,
            Destination::Chaddr { mac: M3, ip: RESERVED },
        ),
    ];
    for (name, req, store, kind, dest) in cases {
        rig.sync.load_all(&rig.policy, &store);
        let before = rig.counters();
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered in the kernel; counters {:?}", rig.counters());
        let answered = if kind == MessageType::Offer { Outcome::AnsweredOffer } else { Outcome::AnsweredReservedAck };
        assert_eq!(rig.delta(&before, answered), 1, "{name}");
        let (want, want_dest) = daemon_frame(&rig, &req, &store, kind);
        assert_eq!(want_dest, dest, "{name}: the daemon's destination");
        assert_eq!(out.len(), want.len(), "{name}: length");
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "{name}: byte {i} differs (kernel {a:#04x}, daemon {b:#04x})");
        }
        let ev = rig.events.next().map(|item| parse_event(&item).unwrap());
        if kind == MessageType::Offer {
            assert!(ev.is_none(), "{name}: an OFFER writes nothing");
            continue;
        }
        // The ACK reaches the daemon as the lease its engine would write.
        let ev = ev.expect("an ACK event");
        let now = unix_now();
        let lease = reserved_lease(&rig.policy, &ev, store.first(), now).expect("a lease to store");
        assert_eq!((lease.address, lease.subnet_id, lease.valid_lifetime), (RESERVED, 1, 60), "{name}");
        assert_eq!(lease.hwaddr, Some(HwAddr::ethernet(M3)), "{name}");
        assert_eq!(lease.client_id.as_ref().map(|c| c.bytes().to_vec()), req.cid, "{name}");
        assert_eq!(lease.hostname, "mutante3", "{name}");
        assert!((now + 59..=now + 61).contains(&lease.expire), "{name}: expire {} now {now}", lease.expire);
    }
}

#[test]
fn kernel_passes_reserved_requests_it_must_not_answer() {
    let mut rig = rig();
    let now = unix_now();
    let stranger = held_lease(RESERVED, [2, 0, 0, 0, 0, 9], now + 30);
    let elsewhere = held_lease(Ipv4Addr::new(192, 168, 50, 150), M3, now + 30);
    let cases: Vec<(&str, Req, Vec<Lease>, Outcome)> = vec![
        ("reserved address held by another client", m3(MessageType::Discover), vec![stranger.clone()], Outcome::PassedReservedHeld),
        ("… and its INIT-REBOOT", init_reboot(), vec![stranger], Outcome::PassedReservedHeld),
        ("client holds another address", init_reboot(), vec![elsewhere], Outcome::PassedReservedHeld),
        // Kea NAKs an INIT-REBOOT from a client it has no lease for.
        ("INIT-REBOOT, no lease yet", init_reboot(), vec![], Outcome::PassedReservation),
        (
            "SELECTING another server",
            Req { server_ip: Ipv4Addr::new(192, 168, 50, 3), ..selecting() },
            vec![],
            Outcome::PassedReservation,
        ),
        (
            "INIT-REBOOT for another address",
            Req { requested: Some(Ipv4Addr::new(192, 168, 50, 120)), ..init_reboot() },
            vec![],
            Outcome::PassedReservation,
        ),
        (
            "SELECTING another address",
            Req { requested: Some(Ipv4Addr::new(192, 168, 50, 120)), ..selecting() },
            vec![],
            Outcome::PassedReservation,
        ),
        ("asks for an option the template lacks", Req { prl: vec![1, 42], ..selecting() }, vec![], Outcome::PassedReservation),
        (
            "INIT-REBOOT with a client-id (the daemon looks it up)",
            Req { cid: Some(vec![1, 2, 0, 0, 0, 0, 3]), ..init_reboot() },
            vec![],
            Outcome::PassedReservation,
        ),
        (
            "renewing another address",
            Req { ciaddr: Ipv4Addr::new(192, 168, 50, 120), ..renewing() },
            vec![],
            Outcome::PassedReservation,
        ),
    ];
    for (name, req, store, why) in cases {
        rig.sync.load_all(&rig.policy, &store);
        let before = rig.counters();
        let frame = req.frame();
        let (action, out) = rig.run(&frame);
        assert_eq!(action, XDP_PASS, "{name}");
        assert_eq!(out, frame, "{name}: a passed frame is untouched");
        assert_eq!(rig.delta(&before, why), 1, "{name}: reason; counters {:?}", rig.counters());
        assert_eq!(rig.delta(&before, Outcome::PassedToDaemon), 1, "{name}");
    }
    // Store changes reach the entry: the stranger's lease goes, the kernel
    // answers again; it comes back, the kernel passes.
    let stranger = held_lease(RESERVED, [2, 0, 0, 0, 0, 9], now + 30);
    rig.sync.load_all(&rig.policy, &[]);
    rig.sync.sync_lease(&rig.policy, RESERVED, Some(&stranger));
    assert_eq!(rig.run(&m3(MessageType::Discover).frame()).0, XDP_PASS);
    rig.sync.sync_lease(&rig.policy, RESERVED, None);
    assert_eq!(rig.run(&m3(MessageType::Discover).frame()).0, XDP_TX);
    // The client's other address is released: SELECTING answered again.
    let elsewhere = Ipv4Addr::new(192, 168, 50, 150);
    rig.sync.sync_lease(&rig.policy, elsewhere, Some(&held_lease(elsewhere, M3, now + 30)));
    assert_eq!(rig.run(&selecting().frame()).0, XDP_PASS);
    rig.sync.sync_lease(&rig.policy, elsewhere, None);
    assert_eq!(rig.run(&selecting().frame()).0, XDP_TX);
    // HA scope off.
    let lo = rig.lo.clone();
    rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&lo), |_| false).unwrap();
    let before = rig.counters();
    assert_eq!(rig.run(&m3(MessageType::Discover).frame()).0, XDP_PASS);
    assert_eq!(rig.delta(&before, Outcome::PassedNotServing), 1);
}

/// Venus's LAN subnet and 10.77.0.0/24 (id 77) as one shared network,
/// each with `extra` merged into its JSON.
fn shared_policy(extra: serde_json::Value) -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = &mut v["Dhcp4"];
    let mut lan = d["subnet4"][0].clone();
    let mut second = serde_json::json!({ "id": 77, "subnet": "10.77.0.0/24", "pools": [ { "pool": "10.77.0.10-10.77.0.20" } ],
        "option-data": [ { "name": "routers", "data": "10.77.0.1" } ] });
    for s in [&mut lan, &mut second] {
        for (k, x) in extra.as_object().unwrap() {
            s[k] = x.clone();
        }
    }
    d["subnet4"] = serde_json::json!([]);
    d["shared-networks"] = serde_json::json!([{ "name": "lan", "subnet4": [lan, second] }]);
    glue::compile(&config::parse(&v.to_string(), "shared.json").unwrap())
}

#[test]
fn shared_network_sibling_renewal_equals_the_daemons_and_lease_caching_stays_with_the_daemon() {
    let lo = Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] };
    let addr = Ipv4Addr::new(10, 77, 0, 10);
    let mk = |expire: u64| {
        let mut l = Lease::new(addr, Some(HwAddr::ethernet(MAC)), None, 77, expire - 60, 60);
        l.expire = expire;
        l
    };
    // A lease of the second subnet, renewed on the first subnet's link:
    // the kernel answers from subnet 77's template, as the daemon would.
    let mut rig = Rig::new(shared_policy(serde_json::json!({})), lo.clone());
    for (name, req) in [
        ("renewal", Req { ciaddr: addr, ..renewal() }),
        ("rebinding (broadcast)", Req { ciaddr: addr, broadcast_dst: true, ..renewal() }),
    ] {
        let l = mk(unix_now() + 30);
        rig.sync.sync_lease(&rig.policy, addr, Some(&l));
        let before = rig.counters();
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered; counters {:?}", rig.counters());
        assert_eq!(rig.delta(&before, Outcome::AnsweredAck), 1, "{name}");
        assert_eq!(out, daemon_reply(&rig, &req, &l), "{name}: kernel and daemon frames differ");
        let _ = rig.events.next();
    }
    // Lease caching: the kernel cannot tell a reusable lease, so it passes.
    let mut rig = Rig::bare(shared_policy(serde_json::json!({ "cache-threshold": 0.5 })), lo.clone());
    let left = rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&lo), |_| true).unwrap();
    assert_eq!(left.len(), 2, "both caching subnets stay with the daemon: {left:?}");
    // ... and the report the API shows says so, per reason.
    assert_eq!(rig.sync.coverage().get().subnets, std::collections::BTreeMap::from([("lease_caching", 2)]));
    rig.sync.sync_lease(&rig.policy, addr, Some(&mk(unix_now() + 30)));
    let (action, _) = rig.run(&Req { ciaddr: addr, ..renewal() }.frame());
    assert_eq!(action, XDP_PASS, "a caching subnet's renewal is the daemon's");
}

/// Venus's config with `classes` as its `client-classes` and `extra`
/// merged into the LAN subnet.
fn classes_policy(classes: serde_json::Value, extra: serde_json::Value) -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["Dhcp4"]["client-classes"] = classes;
    for (k, x) in extra.as_object().unwrap() {
        v["Dhcp4"]["subnet4"][0][k] = x.clone();
    }
    glue::compile(&config::parse(&v.to_string(), "classes.json").unwrap())
}

/// The frame the daemon's whole packet path (classification included)
/// sends for `req` with `lease` in the store.
fn classified_daemon_reply(rig: &Rig, req: &Req, lease: &Lease) -> Vec<u8> {
    use dhcp_user::core::pipeline::{self, Arrival, NoHa, View};
    use dhcp_user::leases::{LeaseStore, StoreConfig};
    let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    let _ = store.upsert(lease.clone());
    let mut alloc = Allocator::default();
    let view = View { policy: &rig.policy, store: &store, alloc: &mut alloc, grace: None, enabled: true, now: unix_now() };
    let addrs = [(SERVER, 24)];
    let at = Arrival { iface: "lo", iface_addrs: &addrs, server_id: SERVER, from: req.ciaddr, to: Some(SERVER) };
    let inb = inbound::classify(&req.payload()).unwrap().from_source(req.ciaddr);
    ack_frame(req, pipeline::process(view, &inb, &at, &NoHa).reply)
}

#[test]
fn classes_that_cannot_change_a_renewal_keep_the_kernel_exact_and_the_others_leave_it_to_the_daemon() {
    let lo = Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] };
    // Classes are evaluated, but none can change this subnet's replies: a
    // vendor test, and an acting class only another subnet would require.
    let quiet = serde_json::json!([
        { "name": "phones", "test": "substring(option[60].hex,0,4) == 'SIP/'" },
        { "name": "late", "test": "member('ALL')", "only-if-required": true, "boot-file-name": "late.bin" }
    ]);
    let mut rig = Rig::new(classes_policy(quiet, serde_json::json!({})), lo.clone());
    assert!(rig.policy.classify);
    for (name, req) in [("renewal", renewal()), ("rebinding (broadcast)", Req { broadcast_dst: true, ..renewal() })] {
        let l = lease(MAC, None, unix_now() + 30);
        rig.sync.sync_lease(&rig.policy, CLIENT, Some(&l));
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered; counters {:?}", rig.counters());
        assert_eq!(out, classified_daemon_reply(&rig, &req, &l), "{name}: kernel and daemon frames differ");
        let _ = rig.events.next();
    }
    // Each of these makes the reply depend on classes: the subnet stays
    // with the daemon, which answers what the classes say.
    let acting = serde_json::json!([{ "name": "all-dns", "test": "member('ALL')",
        "option-data": [ { "name": "domain-name-servers", "data": "192.0.2.53" } ] }]);
    let drop = serde_json::json!([{ "name": "DROP", "test": "option[12].text == 'evil'" }]);
    let required = serde_json::json!([{ "name": "late", "test": "member('ALL')", "only-if-required": true, "valid-lifetime": 30 }]);
    for (name, policy) in [
        ("a class with options", classes_policy(acting, serde_json::json!({}))),
        ("a DROP class", classes_policy(drop, serde_json::json!({}))),
        ("a required class with a lifetime", classes_policy(required, serde_json::json!({ "require-client-classes": ["late"] }))),
        ("a KNOWN-only pool", classes_policy(serde_json::json!([]), serde_json::json!({ "client-class": "KNOWN" }))),
    ] {
        let mut rig = Rig::bare(policy, lo.clone());
        let left = rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&lo), |_| true).unwrap();
        assert!(left.iter().any(|(id, why)| *id == 1 && *why == dhcp_user::fastpath::NotEligible::Classes), "{name}: {left:?}");
        let report = rig.sync.coverage().get();
        assert_eq!(report.subnets.values().sum::<u64>(), left.len() as u64, "{name}: {report:?}");
        assert!(report.subnets.get("classes").is_some_and(|n| *n >= 1), "{name}: {report:?}");
        rig.sync.sync_lease(&rig.policy, CLIENT, Some(&lease(MAC, None, unix_now() + 30)));
        assert_eq!(rig.run(&renewal().frame()).0, XDP_PASS, "{name}: the renewal is the daemon's");
    }
}

/// "Never a black hole" for the event ring: while the daemon does not
/// drain it, the kernel answers renewals until only its headroom is left,
/// then leaves them to the daemon (PassedRingFull) rather than answer what
/// the store would never learn; no event is ever lost, and once the ring
/// is drained the kernel answers again.
#[test]
fn a_full_event_ring_passes_renewals_to_the_daemon_and_loses_none() {
    let mut rig = rig();
    rig.sync.sync_lease(&rig.policy, CLIENT, Some(&lease(MAC, None, unix_now() + 30)));
    let record = (std::mem::size_of::<dhcp_common::fastpath::RenewEvent>() + 8).div_ceil(8) * 8;
    let capacity = dhcp_common::fastpath::EVENTS_BYTES as usize / record;
    let before = rig.counters();
    let frame = renewal().frame();
    let mut answered = 0;
    let mut passed = false;
    for _ in 0..capacity + 16 {
        match rig.run(&frame).0 {
            XDP_TX => answered += 1,
            XDP_PASS => {
                passed = true;
                break;
            }
            other => panic!("action {other}"),
        }
    }
    assert!(passed, "the kernel answered {answered} renewals into a full ring");
    assert!(answered > capacity / 2 && answered < capacity, "answered {answered} of a {capacity}-event ring");
    assert_eq!(rig.delta(&before, Outcome::PassedRingFull), 1);
    assert_eq!(rig.delta(&before, Outcome::EventLost), 0);
    let drained = std::iter::from_fn(|| rig.events.next().map(|item| item.len())).count();
    assert_eq!(drained, answered, "one event per kernel answer");
    assert_eq!(rig.run(&frame).0, XDP_TX, "answered again once drained");
}
