//! The kernel program fuzzed against the daemon (issue 20): random and
//! mutated frames run through the real XDP program under BPF_PROG_TEST_RUN
//! (root and the built eBPF object needed, no network), its maps filled
//! from a random lease store each case. Two rules, checked on every case:
//!
//! - Whenever the kernel answers (XDP_TX), the frame is one the daemon
//!   would have received (Ethernet to us or broadcast, optionally one
//!   802.1Q tag, a valid IPv4 header and checksum, UDP to port 67 with a
//!   valid length — its checksum may be partial, see `delivered` — and a
//!   DHCP request the daemon classifies) and
//!   the daemon's packet pipeline (`core::pipeline::process`, the same
//!   store) answers it with the identical frame, byte for byte.
//! - Otherwise the frame is passed to the daemon untouched (XDP_PASS): a
//!   malformed frame is never answered, and nothing is dropped.
//!
//! Any difference fails the test with its case (RELIABILITY.md lists the
//! ones found and fixed).
//!
//! Cases come from a seeded generator: well-formed requests of every kind
//! built around the configurations' clients, reservations and relays, then
//! mutated (bytes flipped, truncated, extended) or replaced by noise. The
//! seed is printed; `XDHCP_XDP_FUZZ_SEED=S` replays it. The normal suite
//! runs `CASES` cases; `XDHCP_XDP_FUZZ_CASES=N` or
//! `XDHCP_XDP_FUZZ_SECONDS=N` (what `cargo xtask fuzz kernel` sets) runs
//! longer.

mod xdp_rig;

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use dhcp_user::{
    clock::unix_now,
    config,
    core::pipeline::{Arrival, NoHa, View, process},
    dhcp::{
        engine::{self, Allocator, Destination},
        frame::{self, FrameAddrs},
        inbound,
        policy::Policy,
    },
    glue,
    leases::{ClientId, HwAddr, Lease, LeaseState, LeaseStore, StoreConfig},
    net::Interface,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Flags, Message, MessageType, OptionCode},
};
use xdp_rig::{Rig, XDP_PASS, XDP_TX};

/// Cases in the normal suite (a few seconds).
const CASES: u64 = 3000;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
const RELAY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 1];
const GIADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);

/// Clients the configurations know (reserved by MAC or client-id) and
/// strangers.
const MACS: [[u8; 6]; 5] = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0x60, 0x33], [2, 0, 0, 0, 0x60, 0x11], [2, 0, 0, 0, 0, 9]];
const CIDS: [&[u8]; 3] = [&[1, 2, 0, 0, 0, 0, 1], &[1, 2, 0, 0, 0, 0x60, 0x44], &[1, 2, 0, 0, 0, 0x50, 0x44]];
const ADDRS: [Ipv4Addr; 8] = [
    Ipv4Addr::new(192, 168, 50, 120),
    Ipv4Addr::new(192, 168, 50, 33),
    Ipv4Addr::new(192, 168, 50, 150),
    Ipv4Addr::new(192, 168, 50, 44),
    Ipv4Addr::new(192, 168, 60, 120),
    Ipv4Addr::new(192, 168, 60, 33),
    Ipv4Addr::new(192, 168, 60, 44),
    Ipv4Addr::new(10, 9, 8, 7),
];

/// xorshift64*: a seeded generator with no dependency, so a seed replays
/// on any machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
    fn addr(&mut self) -> Ipv4Addr {
        if self.chance(4) { Ipv4Addr::from(self.next() as u32) } else { self.pick(&ADDRS) }
    }
}

/// The relay lab's server with reservations by MAC and client-id on the
/// local and the relayed subnet.
fn relay() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/relay/lobezno.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let subnets = cfg["Dhcp4"]["subnet4"].as_array_mut().unwrap();
    subnets[0]["reservations"] = serde_json::json!([
        { "client-id": "01:02:00:00:00:50:44", "ip-address": "192.168.50.44", "hostname": "lokal44" }
    ]);
    subnets[1]["reservations"] = serde_json::json!([
        { "hw-address": "02:00:00:00:60:33", "ip-address": "192.168.60.33", "hostname": "remoto3" },
        { "client-id": "01:02:00:00:00:60:44", "ip-address": "192.168.60.44", "hostname": "remoto44" }
    ]);
    glue::compile(&config::parse(&cfg.to_string(), "relay.json").unwrap())
}

fn lo() -> Interface {
    Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] }
}

/// A random store: a few leases of the known clients and addresses,
/// live, expired or declined, at most one per client and subnet.
fn random_leases(rng: &mut Rng, now: u64) -> Vec<Lease> {
    let mut out: Vec<Lease> = Vec::new();
    for _ in 0..rng.below(5) {
        let address = rng.pick(&ADDRS);
        if out.iter().any(|l| l.address == address) {
            continue;
        }
        let subnet = if address.octets()[2] == 60 { 2 } else { 1 };
        let cid = rng.chance(3).then(|| ClientId::new(rng.pick(&CIDS).to_vec()).unwrap());
        let hw = (!rng.chance(6) || cid.is_none()).then(|| HwAddr::ethernet(rng.pick(&MACS)));
        let valid = rng.pick(&[60u32, 3600]);
        let expire = match rng.below(4) {
            0 => now - 5,
            1 => now + 30,
            _ => now + u64::from(valid),
        };
        // One lease per client and subnet, as the engine keeps it (see
        // RELIABILITY.md for what the kernel does otherwise).
        let same_client = |o: &Lease| {
            o.subnet_id == subnet && ((hw.is_some() && o.hwaddr == hw) || (cid.is_some() && o.client_id == cid))
        };
        if out.iter().any(same_client) {
            continue;
        }
        let mut l = Lease::new(address, hw, cid, subnet, expire - u64::from(valid), valid);
        if rng.chance(8) {
            l.state = LeaseState::Declined;
        }
        out.push(l);
    }
    out
}

/// A well-formed request of any kind, as a client or a relay sends it;
/// with `renewing`, a renewal of that lease (the kernel's main path).
fn random_request(rng: &mut Rng, renewing: Option<&Lease>) -> Vec<u8> {
    let kind = rng.pick(&[
        MessageType::Discover,
        MessageType::Request,
        MessageType::Request,
        MessageType::Request,
        MessageType::Release,
        MessageType::Decline,
        MessageType::Inform,
        MessageType::Offer,
    ]);
    let kind = if renewing.is_some() { MessageType::Request } else { kind };
    let mac = match renewing.and_then(|l| l.hwaddr.as_ref()) {
        Some(hw) => hw.bytes().try_into().unwrap_or([2, 0, 0, 0, 0, 1]),
        None => rng.pick(&MACS),
    };
    let relayed = rng.chance(3);
    let ciaddr = match renewing {
        Some(l) => l.address,
        None if rng.chance(2) => rng.addr(),
        None => Ipv4Addr::UNSPECIFIED,
    };
    let giaddr = if relayed { if rng.chance(5) { rng.addr() } else { GIADDR } } else { Ipv4Addr::UNSPECIFIED };
    let mut m = Message::new(ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, giaddr, &mac);
    m.set_xid(rng.next() as u32).set_secs(rng.below(10) as u16);
    if relayed {
        m.set_hops(1);
    }
    if rng.chance(3) {
        m.set_flags(Flags::default().set_broadcast());
    }
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    if let Some(cid) = renewing.and_then(|l| l.client_id.as_ref()).filter(|_| !rng.chance(4)) {
        o.insert(DhcpOption::ClientIdentifier(cid.bytes().to_vec()));
    } else if rng.chance(3) {
        o.insert(DhcpOption::ClientIdentifier(rng.pick(&CIDS).to_vec()));
    }
    if rng.chance(if renewing.is_some() { 8 } else { 2 }) {
        o.insert(DhcpOption::RequestedIpAddress(rng.addr()));
    }
    if rng.chance(if renewing.is_some() { 8 } else { 3 }) {
        o.insert(DhcpOption::ServerIdentifier(if rng.chance(4) { rng.addr() } else { SERVER }));
    }
    if rng.chance(2) {
        o.insert(DhcpOption::Hostname(rng.pick(&["mutante1", "mutante3", "x"]).into()));
    }
    if !rng.chance(6) {
        let menu = [1u8, 3, 6, 12, 15, 28, 42, 43, 51, 54, 58, 59, 119, 121, 222];
        let prl: Vec<OptionCode> = (0..rng.below(9)).map(|_| OptionCode::from(rng.pick(&menu))).collect();
        o.insert(DhcpOption::ParameterRequestList(prl));
    }
    let payload = m.to_vec().unwrap();
    let broadcast = !relayed && (ciaddr.is_unspecified() || rng.chance(3));
    let (eth_src, ip_src, sport) = if relayed { (RELAY_MAC, RELAY_LAN, 67) } else { (mac, ciaddr, 68) };
    let dst_ip = if broadcast { Ipv4Addr::BROADCAST } else { SERVER };
    let dst_mac = if broadcast { [0xff; 6] } else { SERVER_MAC };
    let mut f = frame::build(&FrameAddrs { dst_mac, src_mac: eth_src, src_ip: ip_src, dst_ip, src_port: sport, dst_port: 67 }, &payload);
    let vlan = rng.chance(5).then(|| rng.below(4095) as u16 + 1);
    if let Some(id) = vlan {
        f.splice(12..12, [0x81, 0x00, (id >> 8) as u8, id as u8]);
    }
    f
}

/// Flips, truncates or extends a frame (or replaces it with noise).
fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    match rng.below(10) {
        0 => {
            let n = rng.below(f.len() + 1);
            f.truncate(n);
        }
        1 => f.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
        2 => {
            let n = rng.below(600);
            *f = (0..n).map(|_| rng.next() as u8).collect();
        }
        _ => {
            for _ in 0..=rng.below(4) {
                if f.is_empty() {
                    break;
                }
                let i = rng.below(f.len());
                // Headers are where the kernel decides: aim there most.
                let i = if rng.chance(2) { i % f.len().min(64) } else { i };
                f[i] ^= 1 << rng.below(8);
            }
        }
    }
}

/// What the daemon's socket would deliver for `f`: `None` if the kernel's
/// stack drops it or it is not for the DHCP server.
struct Delivered {
    payload: Vec<u8>,
    eth_src: [u8; 6],
    vlan: Option<u16>,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
}

fn delivered(f: &[u8]) -> Result<Delivered, &'static str> {
    let eth_dst: [u8; 6] = f.get(0..6).ok_or("short ethernet")?.try_into().unwrap();
    if eth_dst != SERVER_MAC && eth_dst != [0xff; 6] {
        return Err("ethernet destination is not us");
    }
    let eth_src: [u8; 6] = f[6..12].try_into().unwrap();
    let (vlan, ip_at) = match f.get(12..14) {
        Some([0x81, 0x00]) => {
            let tci = f.get(14..16).ok_or("short VLAN tag")?;
            (Some(u16::from_be_bytes([tci[0], tci[1]]) & 0x0fff), 18)
        }
        _ => (None, 14),
    };
    if f.get(ip_at - 2..ip_at) != Some(&[0x08, 0x00]) {
        return Err("not IPv4");
    }
    let ip = &f[ip_at..];
    let ihl = usize::from(ip.first().ok_or("no IP header")? & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return Err("bad IP header");
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl + 8 || total > ip.len() {
        return Err("bad IP total length");
    }
    if frame::checksum(0, &ip[..ihl]) != 0 {
        return Err("bad IP checksum");
    }
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Err("IP fragment");
    }
    if ip[9] != 17 {
        return Err("not UDP");
    }
    let ip_src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let ip_dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if ip_dst != SERVER && ip_dst != Ipv4Addr::BROADCAST {
        return Err("IP destination is not us");
    }
    let udp = &ip[ihl..total];
    if u16::from_be_bytes([udp[2], udp[3]]) != 67 {
        return Err("not to port 67");
    }
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if ulen < 8 || ulen > udp.len() {
        return Err("bad UDP length");
    }
    // The UDP checksum is not part of the model: a local or virtual sender
    // leaves it partial (CHECKSUM_PARTIAL) and the stack still delivers the
    // datagram, so the kernel cannot use it (dhcp-ebpf/src/parse.rs).
    Ok(Delivered { payload: udp[8..ulen].to_vec(), eth_src, vlan, ip_src, ip_dst })
}

/// The frame the daemon sends for `d` given `leases`, or `None` if it does
/// not answer (or could not parse the datagram).
fn daemon_frame(policy: &Policy, d: &Delivered, leases: &[Lease], now: u64) -> Result<(MessageType, Vec<u8>), String> {
    let req = inbound::classify(&d.payload).map_err(|e| format!("the daemon drops it: {e:?}"))?.from_source(d.ip_src);
    let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    for l in leases {
        store.upsert(l.clone()).wait_blocking().unwrap();
    }
    let lo = lo();
    let at = Arrival { iface: &lo.name, iface_addrs: &lo.addrs, server_id: SERVER, from: d.ip_src, to: Some(d.ip_dst) };
    let mut alloc = Allocator::default();
    let view = View { policy, store: &store, alloc: &mut alloc, grace: None, enabled: true, now };
    let out = process(view, &req, &at, &NoHa);
    let (msg, dest) = out.reply.ok_or_else(|| format!("the daemon does not answer ({:?})", out.counts))?;
    let (dst_mac, dst_ip, dst_port) = match dest {
        Destination::Relay(g) => (d.eth_src, g, 67),
        Destination::Ciaddr(ip) => (d.eth_src, ip, 68),
        Destination::Broadcast => ([0xff; 6], Ipv4Addr::BROADCAST, 68),
        Destination::Chaddr { mac, ip } => (mac, ip, 68),
    };
    let mut f = frame::build(
        &FrameAddrs { dst_mac, src_mac: SERVER_MAC, src_ip: SERVER, dst_ip, src_port: 67, dst_port },
        &engine::reply_bytes(&msg).unwrap(),
    );
    if let Some(id) = d.vlan {
        f.splice(12..12, [0x81, 0x00, (id >> 8) as u8, id as u8]);
    }
    Ok((msg.opts().msg_type().unwrap_or(MessageType::Ack), f))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Default, Debug)]
struct Tally {
    cases: u64,
    mutated: u64,
    offers: u64,
    acks: u64,
    passed: u64,
}

#[test]
fn kernel_answers_only_what_the_daemon_answers_the_same_way() {
    let seed = std::env::var("XDHCP_XDP_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let seconds = env("XDHCP_XDP_FUZZ_SECONDS");
    let cases = env("XDHCP_XDP_FUZZ_CASES").unwrap_or(if seconds.is_some() { u64::MAX } else { CASES });
    let deadline = Instant::now() + Duration::from_secs(seconds.unwrap_or(600));
    eprintln!("xdp-differential: seed {seed} (replay with XDHCP_XDP_FUZZ_SEED={seed})");
    let mut rigs = [Rig::new(xdp_rig::venus_policy(), lo()), Rig::new(relay(), lo())];
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    while t.cases < cases && Instant::now() < deadline {
        t.cases += 1;
        let which = rng.below(rigs.len());
        let rig = &mut rigs[which];
        let now = unix_now();
        let leases = random_leases(&mut rng, now);
        rig.sync.load_all(&rig.policy, &leases);
        let renewing = if !leases.is_empty() && rng.chance(2) { Some(&leases[rng.below(leases.len())]) } else { None };
        let mut f = random_request(&mut rng, renewing);
        if rng.chance(3) {
            mutate(&mut rng, &mut f);
            t.mutated += 1;
        }
        // No driver hands XDP less than an Ethernet header (and
        // BPF_PROG_TEST_RUN refuses it).
        while f.len() < 14 {
            f.push(rng.next() as u8);
        }
        let (action, out) = rig.run(&f);
        while rig.events.next().is_some() {}
        let case = || format!("case {} (seed {seed}, rig {which}): frame {}\nleases {leases:#?}", t.cases, hex(&f));
        match action {
            XDP_PASS => {
                assert_eq!(out, f, "a passed frame is untouched; {}", case());
                t.passed += 1;
            }
            XDP_TX => {
                let d = delivered(&f)
                    .unwrap_or_else(|why| panic!("the kernel answered a frame the daemon never gets ({why}); {}", case()));
                let (kind, want) = daemon_frame(&rig.policy, &d, &leases, now)
                    .unwrap_or_else(|why| panic!("the kernel answered, but {why}; {}", case()));
                assert!(
                    out == want,
                    "the kernel's answer differs from the daemon's; {}\nkernel {}\ndaemon {}",
                    case(),
                    hex(&out),
                    hex(&want)
                );
                if kind == MessageType::Offer { t.offers += 1 } else { t.acks += 1 }
            }
            other => panic!("the kernel returned action {other}; {}", case()),
        }
    }
    eprintln!(
        "xdp-differential: {} cases (seed {seed}): {} mutated, {} answered by the kernel ({} OFFERs, {} ACKs) and equal to the daemon's, {} passed",
        t.cases,
        t.mutated,
        t.offers + t.acks,
        t.offers,
        t.acks,
        t.passed,
    );
    assert!(t.offers + t.acks > 0, "no case was answered by the kernel: the generator misses the fast path");
}
