//! Relayed requests, routed renewals, INIT-REBOOTs and client-id
//! reservations answered by the real XDP program (BPF_PROG_TEST_RUN, root
//! needed), each compared byte for byte with the frame the daemon would
//! send: the daemon's own subnet selection (`server::select_subnet`), its
//! engine deciding against a real in-memory lease store, the reply encoded
//! and framed for its RFC 2131 §4.1 destination (a relay's port 67 or a
//! routed client's address via the frame's sender). Requests the kernel
//! must leave to the daemon are checked to be passed, with the reason, and
//! where the daemon answers differently, that it does.
//!
//! The config is the relay lab's (`tests/data/relay/lobezno.json`: the
//! server's LAN 192.168.50.0/24, a remote 192.168.60.0/24 behind a relay
//! at 192.168.60.1) plus reservations by MAC and by client-id.

mod xdp_rig;

use std::net::Ipv4Addr;

use xdp_rig::{Rig, XDP_PASS, XDP_TX};
use dhcp_common::{
    counters::Outcome,
    fastpath::{EVENT_RENEWED, EVENT_RESERVED_ACK},
};
use dhcp_user::{
    config,
    dhcp::{
        engine::{self, Allocator, Ctx, Destination},
        frame::{self, FrameAddrs},
        inbound,
        policy::Policy,
    },
    fastpath::{parse_event, reserved_lease},
    glue::{self, StoreView},
    leases::{ClientId, HwAddr, Lease, LeaseStore, StoreConfig},
    net::Interface,
    clock::unix_now,
    server::select_subnet,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Flags, Message, MessageType, OptionCode},
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
/// The relay's LAN port: giaddr is its remote port.
const RELAY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 1];
const GIADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 120);
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 120);
const MAC: [u8; 6] = [2, 0, 0, 0, 0x60, 0x11];
/// Reserved by MAC in the remote subnet.
const R_MAC: [u8; 6] = [2, 0, 0, 0, 0x60, 0x33];
const R_MAC_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 33);
/// Reserved by client-id in the remote subnet, and in the local one.
const R_CID: [u8; 7] = [1, 2, 0, 0, 0, 0x60, 0x44];
const R_CID_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 44);
const L_CID: [u8; 7] = [1, 2, 0, 0, 0, 0x50, 0x44];
const L_CID_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 44);

fn policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/relay/lobezno.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let subnets = cfg["Dhcp4"]["subnet4"].as_array_mut().unwrap();
    subnets[0]["reservations"] = serde_json::json!([
        { "client-id": "01:02:00:00:00:50:44", "ip-address": L_CID_ADDR.to_string(), "hostname": "lokal44" }
    ]);
    subnets[1]["reservations"] = serde_json::json!([
        { "hw-address": "02:00:00:00:60:33", "ip-address": R_MAC_ADDR.to_string(), "hostname": "remoto3" },
        { "client-id": "01:02:00:00:00:60:44", "ip-address": R_CID_ADDR.to_string(), "hostname": "remoto44" }
    ]);
    glue::compile(&config::parse(&cfg.to_string(), "relay.json").unwrap())
}

fn rig() -> Rig {
    // The test run's ingress device is lo (index 1), with the server's LAN
    // address: subnet 1 is its link, subnet 2 is reached through the relay.
    let rig = Rig::new(policy(), Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] });
    assert!(rig.sync.reservations_left.is_empty(), "{:?}", rig.sync.reservations_left);
    rig
}

/// A request as it reaches the server: the DHCP message and the headers
/// around it.
#[derive(Clone)]
struct Req {
    kind: MessageType,
    mac: [u8; 6],
    cid: Option<Vec<u8>>,
    prl: Vec<u8>,
    server_id: Option<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    flag_broadcast: bool,
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    hostname: Option<&'static str>,
    eth_src: [u8; 6],
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    sport: u16,
}

/// A client's request relayed by the agent (hops 1, port 67 to 67).
fn relayed(kind: MessageType, mac: [u8; 6]) -> Req {
    Req {
        kind,
        mac,
        cid: None,
        prl: vec![1, 3, 6, 15, 28, 51, 58, 59],
        server_id: None,
        requested: None,
        flag_broadcast: false,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: GIADDR,
        hostname: None,
        eth_src: RELAY_MAC,
        ip_src: RELAY_LAN,
        ip_dst: SERVER,
        sport: 67,
    }
}

/// A client's broadcast on the server's link.
fn on_link(kind: MessageType, mac: [u8; 6]) -> Req {
    Req {
        giaddr: Ipv4Addr::UNSPECIFIED,
        eth_src: mac,
        ip_src: Ipv4Addr::UNSPECIFIED,
        ip_dst: Ipv4Addr::BROADCAST,
        sport: 68,
        ..relayed(kind, mac)
    }
}

impl Req {
    fn payload(&self) -> Vec<u8> {
        let mut m = Message::new(self.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, self.giaddr, &self.mac);
        m.set_xid(0x0bad_cafe).set_secs(7);
        if self.giaddr != Ipv4Addr::UNSPECIFIED {
            m.set_hops(1);
        }
        if self.flag_broadcast {
            m.set_flags(Flags::default().set_broadcast());
        }
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(self.kind));
        if let Some(c) = &self.cid {
            o.insert(DhcpOption::ClientIdentifier(c.clone()));
        }
        if let Some(a) = self.requested {
            o.insert(DhcpOption::RequestedIpAddress(a));
        }
        if let Some(s) = self.server_id {
            o.insert(DhcpOption::ServerIdentifier(s));
        }
        if let Some(h) = self.hostname {
            o.insert(DhcpOption::Hostname(h.into()));
        }
        o.insert(DhcpOption::ParameterRequestList(self.prl.iter().map(|c| OptionCode::from(*c)).collect()));
        m.to_vec().unwrap()
    }

    fn frame(&self) -> Vec<u8> {
        let dst_mac = if self.ip_dst == Ipv4Addr::BROADCAST { [0xff; 6] } else { SERVER_MAC };
        frame::build(
            &FrameAddrs {
                dst_mac,
                src_mac: self.eth_src,
                src_ip: self.ip_src,
                dst_ip: self.ip_dst,
                src_port: self.sport,
                dst_port: 67,
            },
            &self.payload(),
        )
    }
}

fn lease(addr: Ipv4Addr, subnet: u32, mac: [u8; 6], cid: Option<&[u8]>, expire: u64) -> Lease {
    let cid = cid.map(|c| ClientId::new(c.to_vec()).unwrap());
    let mut l = Lease::new(addr, Some(HwAddr::ethernet(mac)), cid, subnet, expire - 60, 60);
    l.expire = expire;
    l
}

fn store(leases: &[Lease]) -> LeaseStore {
    let (s, _) =
        LeaseStore::open(StoreConfig { path: None, persist: false, lfc_interval: std::time::Duration::ZERO }).unwrap();
    for l in leases {
        drop(s.upsert(l.clone()));
    }
    s
}

/// What the daemon does with `req` given `leases`: the reply's type and
/// the frame it sends, or `None` when it stays silent.
fn daemon(rig: &Rig, req: &Req, leases: &[Lease]) -> Option<(MessageType, Destination, Vec<u8>)> {
    let inb = inbound::classify(&req.payload()).unwrap();
    let subnet = select_subnet(&rig.policy, &rig.lo, &inb.msg, req.ip_src, Some(req.ip_dst));
    let store = store(leases);
    let on_link = subnet.is_some_and(|s| rig.policy.on_link(s, &rig.lo.name, &rig.lo.addrs));
    let d = engine::decide(
        &inb,
        subnet,
        &rig.policy,
        &StoreView(&store, None),
        &mut Allocator::default(),
        Ctx { now: unix_now(), server_id: SERVER, on_link },
    );
    let (msg, dest) = d.reply?;
    // Sent by the UDP socket (relay, ciaddr: the kernel's route leads back
    // through the frame's sender), or raw.
    let (dst_mac, dst_ip, dst_port) = match dest {
        Destination::Relay(g) => (req.eth_src, g, 67),
        Destination::Ciaddr(ip) => (req.eth_src, ip, 68),
        Destination::Broadcast => ([0xff; 6], Ipv4Addr::BROADCAST, 68),
        Destination::Chaddr { mac, ip } => (mac, ip, 68),
    };
    let f = frame::build(
        &FrameAddrs { dst_mac, src_mac: SERVER_MAC, src_ip: SERVER, dst_ip, src_port: 67, dst_port },
        &msg.to_vec().unwrap(),
    );
    Some((msg.opts().msg_type().unwrap(), dest, f))
}

fn with<F: FnOnce(&mut Req)>(mut r: Req, f: F) -> Req {
    f(&mut r);
    r
}

#[test]
fn relayed_routed_and_client_id_requests_equal_the_daemons_byte_for_byte() {
    let mut rig = rig();
    let now = unix_now();
    let cid: Vec<u8> = vec![1, 2, 0, 0, 0, 0x60, 0x11];
    let remote = lease(REMOTE, 2, MAC, None, now + 5);
    let remote_cid = lease(REMOTE, 2, MAC, Some(&cid), now + 5);
    let local = lease(LOCAL, 1, MAC, None, now + 30);
    let r_mac_held = lease(R_MAC_ADDR, 2, R_MAC, None, now + 5);
    let r_cid_held = lease(R_CID_ADDR, 2, [2, 0, 0, 0, 0x60, 0x45], Some(&R_CID), now + 5);
    let l_cid_held = lease(L_CID_ADDR, 1, [2, 0, 0, 0, 0x50, 0x45], Some(&L_CID), now + 30);
    let rebinding = with(relayed(MessageType::Request, MAC), |r| r.ciaddr = REMOTE);
    let reboot = with(relayed(MessageType::Request, MAC), |r| r.requested = Some(REMOTE));
    let selecting = |r: Req, a: Ipv4Addr| {
        with(r, |r| {
            r.server_id = Some(SERVER);
            r.requested = Some(a);
        })
    };
    let cid_of = |r: Req, c: &[u8]| with(r, |r| r.cid = Some(c.to_vec()));
    let relay = Destination::Relay(GIADDR);
    let ack = MessageType::Ack;
    let offer = MessageType::Offer;
    let cases: Vec<(&str, Req, Vec<Lease>, MessageType, Destination)> = vec![
        // Leases in the lease map.
        ("relayed REBINDING", rebinding.clone(), vec![remote.clone()], ack, relay.clone()),
        ("relayed REBINDING, client-id echoed", cid_of(rebinding.clone(), &cid), vec![remote_cid.clone()], ack, relay.clone()),
        ("relayed INIT-REBOOT", reboot.clone(), vec![remote.clone()], ack, relay.clone()),
        (
            "relayed INIT-REBOOT, matched by client-id from a new NIC",
            with(cid_of(reboot.clone(), &cid), |r| r.mac = [2, 0, 0, 0, 0x60, 0x77]),
            vec![remote_cid.clone()],
            ack,
            relay.clone(),
        ),
        (
            "relayed INIT-REBOOT, broadcast flag (still via the relay)",
            with(reboot.clone(), |r| r.flag_broadcast = true),
            vec![remote.clone(), local.clone()],
            ack,
            relay.clone(),
        ),
        (
            "routed unicast RENEWING (no giaddr, from the router's MAC)",
            with(rebinding.clone(), |r| {
                r.giaddr = Ipv4Addr::UNSPECIFIED;
                r.ip_src = REMOTE;
                r.sport = 68;
            }),
            vec![remote.clone()],
            ack,
            Destination::Ciaddr(REMOTE),
        ),
        (
            "INIT-REBOOT on the link",
            with(on_link(MessageType::Request, MAC), |r| r.requested = Some(LOCAL)),
            vec![local.clone(), remote.clone()],
            ack,
            Destination::Chaddr { mac: MAC, ip: LOCAL },
        ),
        (
            "INIT-REBOOT on the link, broadcast flag",
            with(on_link(MessageType::Request, MAC), |r| {
                r.requested = Some(LOCAL);
                r.flag_broadcast = true;
            }),
            vec![local.clone()],
            ack,
            Destination::Broadcast,
        ),
        // A MAC reservation behind the relay.
        ("reserved (MAC) relayed DISCOVER", relayed(MessageType::Discover, R_MAC), vec![], offer, relay.clone()),
        (
            "reserved (MAC) relayed SELECTING",
            selecting(relayed(MessageType::Request, R_MAC), R_MAC_ADDR),
            vec![],
            ack,
            relay.clone(),
        ),
        (
            "reserved (MAC) relayed INIT-REBOOT, its lease",
            with(relayed(MessageType::Request, R_MAC), |r| r.requested = Some(R_MAC_ADDR)),
            vec![r_mac_held.clone()],
            ack,
            relay.clone(),
        ),
        (
            "reserved (MAC) relayed REBINDING",
            with(relayed(MessageType::Request, R_MAC), |r| r.ciaddr = R_MAC_ADDR),
            vec![r_mac_held],
            ack,
            relay.clone(),
        ),
        // Client-id reservations, relayed and on the link.
        ("reserved (client-id) relayed DISCOVER", cid_of(relayed(MessageType::Discover, MAC), &R_CID), vec![], offer, relay.clone()),
        (
            "reserved (client-id) relayed SELECTING",
            cid_of(selecting(relayed(MessageType::Request, MAC), R_CID_ADDR), &R_CID),
            vec![remote.clone()],
            ack,
            relay.clone(),
        ),
        (
            "reserved (client-id) relayed INIT-REBOOT from another NIC, its lease by client-id",
            cid_of(with(relayed(MessageType::Request, MAC), |r| r.requested = Some(R_CID_ADDR)), &R_CID),
            vec![r_cid_held.clone()],
            ack,
            relay.clone(),
        ),
        (
            "reserved (client-id) DISCOVER on the link",
            cid_of(on_link(MessageType::Discover, MAC), &L_CID),
            vec![],
            offer,
            Destination::Chaddr { mac: MAC, ip: L_CID_ADDR },
        ),
        (
            "reserved (client-id) SELECTING on the link, broadcast flag",
            with(cid_of(selecting(on_link(MessageType::Request, MAC), L_CID_ADDR), &L_CID), |r| r.flag_broadcast = true),
            vec![],
            ack,
            Destination::Broadcast,
        ),
        (
            "reserved (client-id) RENEWING on the link",
            with(cid_of(on_link(MessageType::Request, MAC), &L_CID), |r| {
                r.ciaddr = L_CID_ADDR;
                r.ip_src = L_CID_ADDR;
                r.ip_dst = SERVER;
            }),
            vec![l_cid_held],
            ack,
            Destination::Chaddr { mac: MAC, ip: L_CID_ADDR },
        ),
    ];
    for (name, req, leases, kind, dest) in cases {
        rig.sync.load_all(&rig.policy, &leases);
        let before = rig.counters();
        let (action, out) = rig.run(&req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered in the kernel; counters {:?}", rig.counters());
        let (want_kind, want_dest, want) = daemon(&rig, &req, &leases).expect("the daemon answers");
        assert_eq!((want_kind, &want_dest), (kind, &dest), "{name}: the daemon's answer");
        assert_eq!(out.len(), want.len(), "{name}: length");
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert_eq!(a, b, "{name}: byte {i} differs (kernel {a:#04x}, daemon {b:#04x})");
        }
        let reserved = [R_MAC_ADDR, R_CID_ADDR, L_CID_ADDR].contains(&Ipv4Addr::from(<[u8; 4]>::try_from(&out[58..62]).unwrap()));
        let answered = match (kind, reserved) {
            (MessageType::Offer, _) => Outcome::AnsweredOffer,
            (_, true) => Outcome::AnsweredReservedAck,
            (_, false) => Outcome::AnsweredAck,
        };
        assert_eq!(rig.delta(&before, answered), 1, "{name}: counted as {answered:?}");
        let ev = rig.events.next().map(|item| parse_event(&item).unwrap());
        match answered {
            Outcome::AnsweredOffer => assert!(ev.is_none(), "{name}: an OFFER writes nothing"),
            Outcome::AnsweredAck => {
                let ev = ev.expect("a renewal event");
                assert_eq!(ev.kind, EVENT_RENEWED, "{name}");
                let l = &leases[0];
                assert_eq!((Ipv4Addr::from(ev.addr), ev.subnet_id), (l.address, l.subnet_id), "{name}");
            }
            _ => {
                let ev = ev.expect("an ACK event");
                assert_eq!(ev.kind, EVENT_RESERVED_ACK, "{name}");
                let stored = reserved_lease(&rig.policy, &ev, leases.iter().find(|l| l.address == Ipv4Addr::from(ev.addr)), now)
                    .expect("the daemon stores the kernel's ACK");
                assert_eq!(stored.hwaddr, Some(HwAddr::ethernet(req.mac)), "{name}");
                assert_eq!(stored.client_id.as_ref().map(|c| c.bytes().to_vec()), req.cid, "{name}");
            }
        }
    }
}

#[test]
fn kernel_passes_what_the_daemon_decides_otherwise() {
    let mut rig = rig();
    let now = unix_now();
    let remote = lease(REMOTE, 2, MAC, None, now + 5);
    let rebinding = with(relayed(MessageType::Request, MAC), |r| r.ciaddr = REMOTE);
    let reboot = with(relayed(MessageType::Request, MAC), |r| r.requested = Some(REMOTE));
    let nak = Some(MessageType::Nak);
    // (name, request, store, reason, what the daemon does: None = silent,
    // Some(type) = that reply; the daemon's answer differs from anything
    // the kernel could send, or it is a case the kernel cannot know.)
    type Case = (&'static str, Req, Vec<Lease>, Outcome, Option<Option<MessageType>>);
    let cases: Vec<Case> = vec![
        (
            "relayed from a giaddr no subnet has",
            with(rebinding.clone(), |r| r.giaddr = Ipv4Addr::new(10, 9, 9, 1)),
            vec![remote.clone()],
            Outcome::PassedNotServing,
            Some(None),
        ),
        (
            "relayed REBINDING whose giaddr selects another subnet",
            with(rebinding.clone(), |r| r.giaddr = RELAY_LAN),
            vec![remote.clone()],
            Outcome::PassedNotRenewal,
            Some(nak),
        ),
        (
            "relayed INIT-REBOOT of a client holding a newer lease too",
            reboot.clone(),
            vec![remote.clone(), lease(Ipv4Addr::new(192, 168, 60, 121), 2, MAC, None, now + 10)],
            Outcome::PassedNotRenewal,
            Some(nak),
        ),
        (
            "REBINDING broadcast on a link that is not the lease's subnet",
            with(rebinding.clone(), |r| {
                r.giaddr = Ipv4Addr::UNSPECIFIED;
                r.ip_src = REMOTE;
                r.ip_dst = Ipv4Addr::BROADCAST;
                r.eth_src = MAC;
            }),
            vec![remote.clone()],
            Outcome::PassedNotServing,
            Some(nak),
        ),
        (
            "unicast INIT-REBOOT from a configured address (subnet by source)",
            with(reboot.clone(), |r| {
                r.giaddr = Ipv4Addr::UNSPECIFIED;
                r.ip_src = Ipv4Addr::new(192, 168, 60, 7);
            }),
            vec![remote.clone()],
            Outcome::PassedNotRenewal,
            None,
        ),
        (
            "routed unicast RENEWING with a client-id, subnet with client-id reservations (no entries off the link)",
            with(rebinding.clone(), |r| {
                r.giaddr = Ipv4Addr::UNSPECIFIED;
                r.ip_src = REMOTE;
                r.sport = 68;
                r.cid = Some(vec![1, 9, 9]);
            }),
            vec![remote.clone()],
            Outcome::PassedNotRenewal,
            Some(Some(MessageType::Ack)),
        ),
        (
            "a reserved client-id renewing a dynamic lease (the daemon moves it)",
            with(rebinding.clone(), |r| r.cid = Some(R_CID.to_vec())),
            vec![remote.clone()],
            Outcome::PassedReservation,
            Some(nak),
        ),
        (
            "client-id reservation's INIT-REBOOT without its lease (the daemon looks up the MAC)",
            with(relayed(MessageType::Request, MAC), |r| {
                r.requested = Some(R_CID_ADDR);
                r.cid = Some(R_CID.to_vec());
            }),
            vec![remote.clone()],
            Outcome::PassedReservation,
            Some(nak),
        ),
        (
            "client-id reservation's address held by another client",
            cid_req(relayed(MessageType::Discover, MAC)),
            vec![lease(R_CID_ADDR, 2, [2, 0, 0, 0, 0x60, 0x99], Some(&[1, 9]), now + 5)],
            Outcome::PassedReservedHeld,
            None,
        ),
    ];
    for (name, req, leases, why, daemon_does) in cases {
        rig.sync.load_all(&rig.policy, &leases);
        let before = rig.counters();
        let frame = req.frame();
        let (action, out) = rig.run(&frame);
        assert_eq!(action, XDP_PASS, "{name}");
        assert_eq!(out, frame, "{name}: a passed frame is untouched");
        assert_eq!(rig.delta(&before, why), 1, "{name}: reason; counters {:?}", rig.counters());
        assert_eq!(rig.delta(&before, Outcome::PassedToDaemon), 1, "{name}");
        if let Some(want) = daemon_does {
            assert_eq!(daemon(&rig, &req, &leases).map(|(k, _, _)| k), want, "{name}: the daemon's answer");
        }
    }
    assert!(rig.events.next().is_none(), "no event for passed requests");
}

fn cid_req(r: Req) -> Req {
    with(r, |r| r.cid = Some(R_CID.to_vec()))
}

#[test]
fn sole_follows_the_store() {
    // INIT-REBOOT needs the client's only lease: a second lease of the same
    // MAC (added, then removed) switches the kernel off and on again.
    let mut rig = rig();
    let now = unix_now();
    let remote = lease(REMOTE, 2, MAC, None, now + 5);
    let other = Ipv4Addr::new(192, 168, 60, 121);
    let reboot = with(relayed(MessageType::Request, MAC), |r| r.requested = Some(REMOTE)).frame();
    rig.sync.load_all(&rig.policy, std::slice::from_ref(&remote));
    assert_eq!(rig.run(&reboot).0, XDP_TX);
    rig.sync.sync_lease(&rig.policy, other, Some(&lease(other, 2, MAC, None, now + 10)));
    assert_eq!(rig.run(&reboot).0, XDP_PASS);
    rig.sync.sync_lease(&rig.policy, other, None);
    assert_eq!(rig.run(&reboot).0, XDP_TX);
    // The same for a lease sharing only the client-id.
    let cid = [1u8, 7, 7];
    let with_cid = lease(REMOTE, 2, MAC, Some(&cid), now + 5);
    let reboot_cid = with(relayed(MessageType::Request, MAC), |r| r.requested = Some(REMOTE));
    rig.sync.load_all(&rig.policy, std::slice::from_ref(&with_cid));
    // (A request with a client-id in a subnet with client-id reservations
    // is passed anyway; without one, the MAC decides.)
    assert_eq!(rig.run(&reboot_cid.frame()).0, XDP_TX);
    rig.sync.sync_lease(&rig.policy, other, Some(&lease(other, 2, [2, 0, 0, 0, 0x60, 0x12], Some(&cid), now + 10)));
    assert_eq!(rig.run(&reboot_cid.frame()).0, XDP_PASS);
    while rig.events.next().is_some() {}
}
