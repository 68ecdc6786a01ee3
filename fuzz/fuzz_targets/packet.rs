//! Received DHCP datagrams → classify → decide → reply, through the daemon's
//! pure pipeline (`core::pipeline::process`, the code `Core::receive` runs
//! under its lock), with each decided lease write committed to an in-memory
//! store so a later datagram of the same input sees it.
//!
//! Input: one selector byte (configuration, arrival, BOOTP hook), then
//! datagrams, each a big-endian u16 length and that many bytes (the last
//! one takes whatever is left).
//!
//! Beyond "never panics", every reply must be what a client can use: it
//! encodes, decodes again, carries the request's xid, is an OFFER, ACK or
//! NAK (or a BOOTREPLY under the BOOTP hook), offers only an address of a
//! configured subnet, and an ACK of a REQUEST is backed by the lease write
//! for the acknowledged address (no reply without a durable lease).
#![no_main]

use std::{net::Ipv4Addr, sync::OnceLock};

use dhcp_user::{
    config,
    core::pipeline::{Arrival, NoHa, View, process},
    dhcp::{
        engine::{self, Allocator, Destination, LeaseWrite},
        frame::{self, FrameAddrs},
        inbound::{self, Kind},
        policy::Policy,
    },
    glue,
    leases::{LeaseStore, StoreConfig},
};
use dhcproto::{Decodable as _, v4::{Message, MessageType}};
use libfuzzer_sys::fuzz_target;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const ADDRS: &[(Ipv4Addr, u8)] = &[(SERVER, 24)];

fn policies() -> &'static [Policy] {
    static P: OnceLock<Vec<Policy>> = OnceLock::new();
    P.get_or_init(|| {
        [xdhcp_fuzz::VENUS, xdhcp_fuzz::RELAY, xdhcp_fuzz::KEA_HA_EXAMPLE]
            .iter()
            .map(|t| glue::compile(&config::parse(t, "fuzz").expect("repository config parses")))
            .collect()
    })
}

/// Where the datagrams arrive: broadcast from an unconfigured client,
/// unicast from a client with an address, or from a relay agent.
fn arrival(sel: u8) -> Arrival<'static> {
    let (from, to) = match sel % 3 {
        0 => (Ipv4Addr::UNSPECIFIED, Some(Ipv4Addr::BROADCAST)),
        1 => (Ipv4Addr::new(192, 168, 50, 120), Some(SERVER)),
        _ => (Ipv4Addr::new(192, 168, 60, 1), Some(SERVER)),
    };
    Arrival { iface: "eth0", iface_addrs: ADDRS, server_id: SERVER, from, to }
}

fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < 16 {
        let (len, rest) = match data {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => break,
        };
        let n = len.min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let policy = &policies()[usize::from(sel) % policies().len()];
    let at = arrival(sel / 4);
    let bootp = sel & 0x80 != 0;
    let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    let mut alloc = Allocator::default();
    let now = 1_800_000_000 + u64::from(sel);
    for (i, bytes) in datagrams(rest).into_iter().enumerate() {
        let classify = if bootp { inbound::classify_bootp } else { inbound::classify };
        let Ok(req) = classify(bytes) else { continue };
        let req = req.from_source(at.from);
        let now = now + i as u64 * 7;
        let v = View { policy, store: &store, alloc: &mut alloc, grace: None, enabled: true, now };
        let out = process(v, &req, &at, &NoHa);
        if let Some((msg, dest)) = &out.reply {
            check_reply(policy, &req, msg, dest, out.write.as_ref());
        }
        match &out.write {
            Some(LeaseWrite::Upsert(l)) => {
                let lease = glue::to_lease(l);
                lease.validate().unwrap_or_else(|e| panic!("the engine decided a lease Kea could not store: {e}"));
                store.upsert(lease).wait_blocking().expect("in-memory upsert");
            }
            Some(LeaseWrite::Remove(a)) => store.remove(*a).wait_blocking().expect("in-memory remove"),
            None => {}
        }
    }
});

fn check_reply(policy: &Policy, req: &inbound::Inbound, msg: &Message, dest: &Destination, write: Option<&LeaseWrite>) {
    let bytes = engine::reply_bytes(msg).expect("the reply encodes");
    let back = Message::from_bytes(&bytes).expect("the reply decodes");
    assert_eq!(back.xid(), req.msg.xid(), "xid echoed");
    let kind = msg.opts().msg_type();
    match kind {
        Some(MessageType::Offer | MessageType::Ack | MessageType::Nak) => {}
        None => assert!(req.bootp, "a reply without a message type to a DHCP request"),
        Some(k) => panic!("reply of type {k:?}"),
    }
    let yiaddr = msg.yiaddr();
    if matches!(kind, Some(MessageType::Offer)) || (kind == Some(MessageType::Ack) && !yiaddr.is_unspecified()) {
        assert!(
            policy.subnets.iter().any(|s| u32::from(s.network) == u32::from(yiaddr) & mask(s.prefix_len)),
            "{yiaddr} offered outside every subnet"
        );
    }
    let acked_request = (kind == Some(MessageType::Ack) || kind.is_none()) && req.kind == Kind::Request;
    if acked_request {
        match write {
            Some(LeaseWrite::Upsert(l)) => assert_eq!(l.address, yiaddr, "the ACK's address is the lease written"),
            other => panic!("ACK of {yiaddr} without a lease write ({other:?})"),
        }
    }
    // The frame the daemon would send there builds.
    let (dst_mac, dst_ip) = match dest {
        Destination::Relay(ip) | Destination::Ciaddr(ip) => ([2, 0, 0, 0, 0, 9], *ip),
        Destination::Broadcast => ([0xff; 6], Ipv4Addr::BROADCAST),
        Destination::Chaddr { mac, ip } => (*mac, *ip),
    };
    let f = frame::build(
        &FrameAddrs { dst_mac, src_mac: [2, 0, 0, 0, 0x50, 2], src_ip: SERVER, dst_ip, src_port: 67, dst_port: 68 },
        &bytes,
    );
    assert_eq!(f.len(), 42 + bytes.len());
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) }
}
