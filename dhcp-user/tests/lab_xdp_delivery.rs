//! What the kernel does with native XDP_TX on a veth whose bridge-side peer
//! runs nothing, only GRO, or an XDP program — measured, not assumed — and
//! that xdhcpd's probe reads each case right before attaching anything.
//!
//! A server host `srv` and a client `cli` on one lab bridge. The lab's
//! bare XDP_TX echo (UDP to port 67 sent straight back) is attached to
//! srv's eth0; cli sends five datagrams to srv:67 and counts the echoes:
//! - peer with an XDP_PASS program: all five come back, natively;
//! - plain peer: none, and srv's veth counts `rx_queue_0_xdp_tx_errors`;
//! - GRO-only peer: none, although the kernel reports `ndo-xmit` on srv's
//!   eth0 and counts the frames as sent (`rx_queue_0_xdp_tx`): they wait in
//!   the peer's ring because `veth_xdp_flush` schedules the peer's NAPI
//!   only when it has an XDP program;
//! - generic (skb) mode on a plain peer: all five come back.
//!
//! Needs root (namespaces, BPF).

mod common;

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    time::{Duration, Instant},
};

use dhcp_user::xdp::{
    delivery::{self, PeerXdp, Verdict, Why, act},
    probe,
};
use lab::{BridgePorts, Host, Ipv4Cidr, Lab, Role, Topology, netns, xdp_echo::EchoProgram};

const SRV: Ipv4Addr = Ipv4Addr::new(192, 168, 70, 2);
const CLI: Ipv4Addr = Ipv4Addr::new(192, 168, 70, 9);

fn lab(ports: BridgePorts) -> Lab {
    let subnet = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 70, 0), 24);
    let lab = Lab::up(
        Topology::new()
            .segment("lan", subnet)
            .bridge_ports(ports)
            .host(Host::new("srv", Role::Server).port("lan", Some(Ipv4Cidr::new(SRV, 24)), None))
            .host(Host::new("cli", Role::Client).port("lan", Some(Ipv4Cidr::new(CLI, 24)), None)),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    // Checksums in software: the echo copies the UDP checksum, and a veth
    // would leave it to "hardware" that never computes it.
    lab.run("cli", &["ethtool", "-K", "eth0", "tx", "off"]).unwrap();
    lab
}

/// xdhcpd's probe of srv's eth0, run inside srv's namespace.
fn facts(lab: &Lab) -> delivery::LinkFacts {
    common::in_netns(lab, "srv", || Ok(probe::facts("eth0"))).unwrap()
}

/// srv's eth0 `ethtool -S` counters whose name contains `xdp_tx`.
fn tx_counters(lab: &Lab) -> Vec<(String, u64)> {
    common::in_netns(lab, "srv", || Ok(probe::stats("eth0")?))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n.contains("xdp_tx"))
        .collect()
}

fn counter(stats: &[(String, u64)], name: &str) -> u64 {
    stats.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
}

/// Sends five datagrams from cli to srv:67 and counts what comes back
/// within a second of the last.
fn echoes(lab: &Lab) -> usize {
    let sock = common::in_netns(lab, "cli", || Ok(UdpSocket::bind(SocketAddrV4::new(CLI, 0))?)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let to = SocketAddrV4::new(SRV, 67);
    let mut got = 0;
    let mut buf = [0u8; 512];
    for i in 0..5u8 {
        sock.send_to(&[b'x', i], to).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert_eq!(buf[0], b'x', "{:?}", &buf[..n]);
            got += 1;
        }
    }
    got
}

fn srv_ns(lab: &Lab) -> String {
    lab.netns("srv").unwrap()
}

#[test]
fn peer_with_an_xdp_program_delivers_and_is_trusted() {
    let lab = lab(BridgePorts::XdpPass);
    let f = facts(&lab);
    assert_eq!(f.driver.as_deref(), Some("veth"));
    let peer = f.peer.clone().expect("a veth has a peer");
    // The peer lives in the switch namespace: read through its netns id.
    assert_eq!(peer.name.as_deref(), Some("xp-srv"));
    assert_eq!(peer.xdp, PeerXdp::Native);
    let bits = f.xdp_features.clone().unwrap();
    assert!(bits & act::BASIC != 0 && bits & act::NDO_XMIT != 0, "{}", act::names(bits));
    assert_eq!(delivery::decide(&f), Verdict::Native);

    let echo = EchoProgram::load().unwrap();
    let _on = echo.attach(&srv_ns(&lab), "eth0").unwrap();
    assert_eq!(echoes(&lab), 5, "{:?}", tx_counters(&lab));
    assert!(counter(&tx_counters(&lab), "rx_queue_0_xdp_tx") >= 5);
}

#[test]
fn plain_peer_drops_native_xdp_tx_counts_errors_and_is_not_trusted() {
    let lab = lab(BridgePorts::Plain);
    let f = facts(&lab);
    let bits = f.xdp_features.clone().unwrap();
    assert!(bits & act::BASIC != 0, "{}", act::names(bits));
    assert_eq!(bits & act::NDO_XMIT, 0, "no NAPI on the peer: {}", act::names(bits));
    assert_eq!(f.peer.as_ref().unwrap().xdp, PeerXdp::NotNative);
    assert_eq!(delivery::decide(&f), Verdict::Generic(Why::VethPeerWithoutNapi { peer: Some("xp-srv".into()) }));

    let echo = EchoProgram::load().unwrap();
    {
        let _on = echo.attach(&srv_ns(&lab), "eth0").unwrap();
        assert_eq!(echoes(&lab), 0, "native XDP_TX reached a plain veth peer");
        let after = tx_counters(&lab);
        assert!(
            counter(&after, "rx_queue_0_xdp_tx_errors") >= 5,
            "the drops are counted where the run-time watch looks: {after:?}"
        );
    }
    // Generic mode's XDP_TX takes the normal transmit path: delivered.
    let id = echo.id().to_string();
    netns::exec(&srv_ns(&lab), &["bpftool", "net", "attach", "xdpgeneric", "id", &id, "dev", "eth0"]).unwrap();
    assert_eq!(echoes(&lab), 5, "generic XDP_TX to a plain veth peer");
    netns::exec(&srv_ns(&lab), &["bpftool", "net", "detach", "xdpgeneric", "dev", "eth0"]).unwrap();
}

#[test]
fn gro_only_peer_reports_ndo_xmit_but_does_not_deliver_and_is_not_trusted() {
    let lab = lab(BridgePorts::GroOnly);
    let f = facts(&lab);
    let bits = f.xdp_features.clone().unwrap();
    assert!(
        bits & act::NDO_XMIT != 0,
        "GRO on the peer gives it NAPI, so the kernel reports ndo-xmit: {}",
        act::names(bits)
    );
    assert_eq!(f.peer.as_ref().unwrap().xdp, PeerXdp::NotNative);
    assert_eq!(delivery::decide(&f), Verdict::Generic(Why::VethPeerGroOnly { peer: Some("xp-srv".into()) }));

    let echo = EchoProgram::load().unwrap();
    let _on = echo.attach(&srv_ns(&lab), "eth0").unwrap();
    let got = echoes(&lab);
    let after = tx_counters(&lab);
    assert_eq!(got, 0, "GRO-only peer delivered native XDP_TX: {after:?}");
    assert!(
        counter(&after, "rx_queue_0_xdp_tx") >= 5 && counter(&after, "rx_queue_0_xdp_tx_errors") == 0,
        "queued as sent, no error counted: {after:?}"
    );
}
