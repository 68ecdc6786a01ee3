//! The real XDP program, run by the kernel on crafted frames with
//! BPF_PROG_TEST_RUN (no network needed; root is). For a table of renewals
//! the kernel's ACK must equal, byte for byte, the frame the daemon builds
//! for the same request: the engine's reply encoded by dhcproto inside
//! `frame::build`'s headers. (When the daemon itself answers a renewal it
//! sends through a UDP socket, and the kernel's stack then picks the IP id,
//! DF and TOS; the DHCP payload and addresses are the same.) Requests the
//! kernel must not answer are checked to be passed, with the reason.

use std::net::Ipv4Addr;

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{TestRun, TestRunOptions, Xdp},
};
use dhcp_common::counters::{Counters, MAP_NAME, Outcome};
use dhcp_user::{
    config,
    dhcp::{
        engine::{self, Allocator, Ctx, Destination, Held, HeldState, LeaseView},
        frame::{self, FrameAddrs},
        inbound,
        policy::{OptionValue, Policy},
    },
    fastpath::{MapSync, parse_event},
    glue,
    leases::{ClientId, HwAddr, Lease},
    net::Interface,
    server::unix_now,
    xdp::EBPF_OBJECT,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 120);
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

struct Rig {
    ebpf: Ebpf,
    sync: MapSync,
    events: RingBuf<MapData>,
    policy: Policy,
    lo: Interface,
}

fn policy() -> Policy {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let mut p = glue::compile(&config::parse(&text, "lobezno.json").unwrap());
    // An option only sent when asked for, and one always sent above 61.
    let s = &mut p.subnets[0];
    for (code, v) in [
        (42, OptionValue { data: vec![192, 168, 50, 9], always_send: false }),
        (119, OptionValue { data: b"\x05venus\x04test\x00".to_vec(), always_send: true }),
    ] {
        s.options.insert(code, v.clone());
        // Pools carry effective options: a subnet-level change shows there too.
        for pool in &mut s.pools {
            pool.options.insert(code, v.clone());
        }
    }
    p
}

fn rig() -> Rig {
    let mut ebpf = Ebpf::load(EBPF_OBJECT).expect("load (needs root and a built eBPF object)");
    let prog: &mut Xdp = ebpf.program_mut("xdhcp").unwrap().try_into().unwrap();
    prog.load().unwrap();
    let (mut sync, events) = MapSync::take(&mut ebpf).unwrap();
    sync.set_clock().unwrap();
    let policy = policy();
    // The test run's ingress device is lo (index 1) with venus's addresses.
    let lo = Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] };
    let left = sync.install_subnets(&policy, std::slice::from_ref(&lo), |_| true).unwrap();
    assert!(left.is_empty(), "{left:?}");
    Rig { ebpf, sync, events, policy, lo }
}

fn lease(mac: [u8; 6], cid: Option<&[u8]>, expire: u64) -> Lease {
    let mut l = Lease::new(CLIENT, Some(HwAddr::ethernet(mac)), cid.map(|c| ClientId::new(c.to_vec()).unwrap()), 1, expire - 60, 60);
    l.expire = expire;
    l
}

#[derive(Clone)]
struct Req {
    mac: [u8; 6],
    cid: Option<Vec<u8>>,
    prl: Vec<u8>,
    server_id: bool,
    vlan: Option<u16>,
    broadcast_dst: bool,
    ciaddr: Ipv4Addr,
}

fn renewal() -> Req {
    Req { mac: MAC, cid: None, prl: vec![1, 3, 6, 15, 119], server_id: false, vlan: None, broadcast_dst: false, ciaddr: CLIENT }
}

impl Req {
    fn payload(&self) -> Vec<u8> {
        let mut m = Message::new(self.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &self.mac);
        m.set_xid(0x1234_5678).set_secs(3);
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
        if let Some(c) = &self.cid {
            m.opts_mut().insert(DhcpOption::ClientIdentifier(c.clone()));
        }
        if self.server_id {
            m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
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

fn held(l: &Lease) -> Held {
    Held {
        address: l.address,
        subnet_id: l.subnet_id,
        hwaddr: l.hwaddr.as_ref().map(|h| h.bytes().to_vec()).unwrap_or_default(),
        client_id: l.client_id.as_ref().map(|c| c.bytes().to_vec()),
        expire: l.expire,
        state: HeldState::Active,
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
        Ctx { now: unix_now(), server_id: SERVER },
    );
    let (msg, dest) = d.reply.expect("the daemon answers this renewal");
    assert_eq!(msg.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(dest, Destination::Ciaddr(req.ciaddr));
    let f = frame::build(
        &FrameAddrs { dst_mac: req.mac, src_mac: SERVER_MAC, src_ip: SERVER, dst_ip: req.ciaddr, src_port: 67, dst_port: 68 },
        &msg.to_vec().unwrap(),
    );
    with_vlan(f, req.vlan)
}

fn run(rig: &mut Rig, frame: &[u8]) -> (u32, Vec<u8>) {
    let prog: &mut Xdp = rig.ebpf.program_mut("xdhcp").unwrap().try_into().unwrap();
    let mut out = vec![0u8; 4096];
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
    let mut md = [0u8; 24];
    md[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    md[12..16].copy_from_slice(&rig.lo.index.to_ne_bytes());
    let r = prog
        .test_run(TestRunOptions { data_in: Some(frame), data_out: Some(&mut out), ctx_in: Some(&md), ..TestRunOptions::new() })
        .unwrap();
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

fn counters(rig: &Rig) -> Counters {
    let a = PerCpuArray::<_, Counters>::try_from(rig.ebpf.map(MAP_NAME).unwrap()).unwrap();
    a.get(&0, 0).unwrap().iter().fold(Counters::default(), |acc, c| acc.add(c))
}

fn delta(rig: &Rig, before: &Counters, o: Outcome) -> u64 {
    counters(rig).get(o) - before.get(o)
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
        let before = counters(&rig);
        let (action, out) = run(&mut rig, &req.frame());
        assert_eq!(action, XDP_TX, "{name}: not answered in the kernel; counters {:?}", counters(&rig));
        assert_eq!(delta(&rig, &before, Outcome::AnsweredAck), 1, "{name}");
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
    for (name, req, l, why) in cases {
        rig.sync.sync_lease(&rig.policy, CLIENT, l.as_ref());
        let before = counters(&rig);
        let frame = req.frame();
        let (action, out) = run(&mut rig, &frame);
        assert_eq!(action, XDP_PASS, "{name}");
        assert_eq!(out, frame, "{name}: a passed frame is untouched");
        assert_eq!(delta(&rig, &before, why), 1, "{name}: reason");
        assert_eq!(delta(&rig, &before, Outcome::PassedToDaemon), 1, "{name}");
    }
    // A subnet this server does not serve right now (HA scope off).
    rig.sync.sync_lease(&rig.policy, CLIENT, Some(&good));
    let lo = rig.lo.clone();
    rig.sync.install_subnets(&rig.policy, std::slice::from_ref(&lo), |_| false).unwrap();
    let before = counters(&rig);
    let (action, _) = run(&mut rig, &renewal().frame());
    assert_eq!(action, XDP_PASS);
    assert_eq!(delta(&rig, &before, Outcome::PassedNotServing), 1);
    assert!(rig.events.next().is_none(), "no event for passed requests");
}

