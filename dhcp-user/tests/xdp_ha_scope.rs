//! HA scopes in the kernel: the real XDP program (BPF_PROG_TEST_RUN, root
//! needed) answers a client only when Kea's query filter puts it in a
//! scope this server serves. For the shared HA notes' §8 vectors and for
//! random MACs and client-ids, under every scope a server can be given,
//! three answers must agree: the kernel's (answered, or passed and counted
//! as `PassedOutOfScope` on one CPU), the daemon's `ha::ScopeFilter`, and
//! the published owner of the key's hash. Reserved clients obey the same
//! scope.

mod xdp_rig;

use std::net::Ipv4Addr;

use aya::maps::PerCpuArray;
use xdp_rig::{Rig, XDP_PASS, XDP_TX};
use dhcp_common::counters::{Counters, MAP_NAME, Outcome};
use dhcp_user::{
    config::{self, ha::HaMode},
    dhcp::frame::{self, FrameAddrs},
    fastpath::SubnetServing,
    glue,
    ha::{Query, ScopeFilter, rfc3074_bucket},
    leases::{ClientId, HwAddr, Lease},
    net::Interface,
    clock::unix_now,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0x50, 2];
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 120);
const M3: [u8; 6] = [2, 0, 0, 0, 0, 3];

fn rig() -> Rig {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
    let policy = glue::compile(&config::parse(&text, "lobezno.json").unwrap());
    Rig::bare(policy, Interface { name: "lo".into(), index: 1, mac: SERVER_MAC, addrs: vec![(SERVER, 24)] })
}

/// A client's key: its MAC, and its client-id when it sends one.
#[derive(Clone, Debug)]
struct Client {
    mac: [u8; 6],
    cid: Option<Vec<u8>>,
}

/// A REQUEST (unicast renewal of CLIENT) or DISCOVER (broadcast) from `c`.
fn frame_of(c: &Client, kind: MessageType) -> Vec<u8> {
    let renew = kind == MessageType::Request;
    let ciaddr = if renew { CLIENT } else { Ipv4Addr::UNSPECIFIED };
    let mut m = Message::new(ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &c.mac);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(id) = &c.cid {
        m.opts_mut().insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    m.opts_mut().insert(DhcpOption::ParameterRequestList([1u8, 3, 6, 15].map(OptionCode::from).to_vec()));
    let (dst_mac, dst_ip) = if renew { (SERVER_MAC, SERVER) } else { ([0xff; 6], Ipv4Addr::BROADCAST) };
    frame::build(
        &FrameAddrs { dst_mac, src_mac: c.mac, src_ip: ciaddr, dst_ip, src_port: 68, dst_port: 67 },
        &m.to_vec().unwrap(),
    )
}

fn per_cpu(rig: &Rig) -> Vec<Counters> {
    let a = PerCpuArray::<_, Counters>::try_from(rig.ebpf.map(MAP_NAME).unwrap()).unwrap();
    a.get(&0, 0).unwrap().iter().copied().collect()
}

/// Runs `frame` and returns whether it was answered; a passed frame must
/// be counted once, on one CPU, under `why`.
fn answered(rig: &mut Rig, frame: &[u8], why: Outcome, ctx: &str) -> bool {
    let before = per_cpu(rig);
    let action = rig.run(frame).0;
    while rig.events.next().is_some() {}
    let after = per_cpu(rig);
    let moved: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a.get(why) - b.get(why)).collect();
    match action {
        XDP_TX => {
            assert!(moved.iter().all(|d| *d == 0), "{ctx}: answered yet counted as {why:?}");
            true
        }
        XDP_PASS => {
            assert_eq!(moved.iter().sum::<u64>(), 1, "{ctx}: passed, not as {why:?}: {after:?}");
            assert_eq!(moved.iter().filter(|d| **d == 1).count(), 1, "{ctx}: one CPU's counter");
            false
        }
        other => panic!("{ctx}: XDP action {other}"),
    }
}

/// Tiny deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The notes' §8 table: (key, hash), the key a chaddr (6 bytes) or a
/// client-id (7 bytes); an even hash is the primary's scope.
const VECTORS: [(&[u8], u8); 7] = [
    (&[2, 0, 0, 0, 0, 1], 133),
    (&[2, 0, 0, 0, 0, 3], 182),
    (&[0, 0, 0, 0, 0, 0], 254),
    (&[1, 2, 3, 4, 5, 6], 179),
    (&[0xff; 6], 79),
    (&[1, 2, 0, 0, 0, 0, 1], 14),
    (&[1, 8, 0, 0x27, 0, 0, 1], 45),
];

fn clients() -> Vec<(Client, Option<u8>)> {
    let mut out = Vec::new();
    for (key, hash) in VECTORS {
        let c = match <[u8; 6]>::try_from(key) {
            // chaddr keys; 02:..:03 is venus's reserved mutante3: not renewed here.
            Ok(mac) if mac != M3 => Client { mac, cid: None },
            Ok(_) => continue,
            Err(_) => Client { mac: [2, 0, 0, 0, 0x77, 1], cid: Some(key.to_vec()) },
        };
        out.push((c, Some(hash)));
    }
    let mut rng = Rng(0x5c09_e5ee_d123_4567);
    for i in 0..300 {
        let r = rng.next();
        let mac = [2, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8, (r >> 32) as u8, (r >> 40) as u8];
        if i % 2 == 0 {
            out.push((Client { mac, cid: None }, None));
        } else {
            // Client-ids of every length RFC 2132 allows that the kernel takes (2..=32).
            let len = 2 + (r >> 48) as usize % 31;
            let cid: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            out.push((Client { mac, cid: Some(cid) }, None));
        }
    }
    out
}

fn filters() -> Vec<ScopeFilter> {
    let mut out = Vec::new();
    for mode in [HaMode::LoadBalancing, HaMode::HotStandby] {
        for (primary, secondary) in [(true, false), (false, true), (true, true), (false, false)] {
            out.push(ScopeFilter { mode, primary, secondary });
        }
    }
    out
}

#[test]
fn kernel_scope_agrees_with_the_filter_and_the_published_split() {
    let mut rig = rig();
    let now = unix_now();
    let clients = clients();
    for (c, _) in &clients {
        let key = c.cid.as_deref().filter(|k| !k.is_empty()).unwrap_or(&c.mac);
        assert_eq!(dhcp_common::ha::rfc3074_hash(key), rfc3074_bucket(key), "one hash on both sides: {key:02x?}");
    }
    let lo = rig.lo.clone();
    let policy = rig.policy.clone();
    for (i, f) in filters().into_iter().enumerate() {
        // Every other filter arrives the way an HA transition writes it:
        // templates installed serving nothing, then only the serving bits
        // rewritten (MapSync::set_serving), which must answer the same.
        let installed = if i % 2 == 0 { SubnetServing::Scopes(f) } else { SubnetServing::Off };
        let left = rig.sync.install_subnets_scoped(&policy, std::slice::from_ref(&lo), |_| installed).unwrap();
        assert!(left.is_empty(), "{left:?}");
        if i % 2 == 1 {
            rig.sync.set_serving(&policy, |_| SubnetServing::Scopes(f)).unwrap();
        }
        // No scope served at all: nothing is in scope, the subnet is off.
        let why = if f.primary || (f.secondary && f.mode == HaMode::LoadBalancing) {
            Outcome::PassedOutOfScope
        } else {
            Outcome::PassedNotServing
        };
        let mut seen = [0u32; 2];
        for (c, published) in &clients {
            let cid = c.cid.as_ref().map(|v| ClientId::new(v.clone()).unwrap());
            let mut l = Lease::new(CLIENT, Some(HwAddr::ethernet(c.mac)), cid, 1, now - 10, 60);
            l.expire = now + 50;
            rig.sync.sync_lease(&policy, CLIENT, Some(&l));
            let q = Query { msg_type: 3, chaddr: &c.mac, client_id: c.cid.as_deref(), secs: 0 };
            let want = f.in_scope(&q);
            let ctx = format!("{f:?} {c:02x?}");
            assert_eq!(answered(&mut rig, &frame_of(c, MessageType::Request), why, &ctx), want, "{ctx}");
            seen[usize::from(want)] += 1;
            if let Some(hash) = published {
                let primary_scope = f.mode != HaMode::LoadBalancing || hash % 2 == 0;
                assert_eq!(want, if primary_scope { f.primary } else { f.secondary }, "{ctx}: published hash {hash}");
            }
        }
        // Load balancing with one scope splits the keys; others are all-or-nothing.
        if f.mode == HaMode::LoadBalancing && f.primary != f.secondary {
            assert!(seen[0] > 100 && seen[1] > 100, "{f:?}: split {seen:?}");
        }
        // The reserved client (hash 182, the primary's) follows the same scope.
        rig.sync.load_all(&policy, &[]);
        let m3 = Client { mac: M3, cid: None };
        let q = Query { msg_type: 1, chaddr: &M3, client_id: None, secs: 0 };
        let ctx = format!("{f:?} reserved mutante3 DISCOVER");
        assert_eq!(answered(&mut rig, &frame_of(&m3, MessageType::Discover), why, &ctx), f.in_scope(&q), "{ctx}");
    }
    // Back to serving everything (no HA): every client is answered again.
    rig.sync.install_subnets(&policy, std::slice::from_ref(&lo), |_| true).unwrap();
    for (c, _) in clients.iter().take(20) {
        let cid = c.cid.as_ref().map(|v| ClientId::new(v.clone()).unwrap());
        let mut l = Lease::new(CLIENT, Some(HwAddr::ethernet(c.mac)), cid, 1, now - 10, 60);
        l.expire = now + 50;
        rig.sync.sync_lease(&policy, CLIENT, Some(&l));
        assert!(answered(&mut rig, &frame_of(c, MessageType::Request), Outcome::PassedOutOfScope, "all"));
    }
}
