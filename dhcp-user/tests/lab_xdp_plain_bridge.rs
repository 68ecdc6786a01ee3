//! xdhcpd on a bridge whose veth ports run nothing — the way Docker, LXC
//! and most VM hosts wire a server — where the kernel silently drops every
//! native XDP_TX reply (`tests/lab_xdp_delivery.rs` measures it). xdhcpd sees
//! it before attaching, runs its program in generic (skb) mode there, says
//! why once at warn level and on the status page and `/metrics`, and
//! clients are served by the kernel path all the same: the reserved
//! mutante3 gets its address from XDP, a client renews (unicast) and
//! rebinds (broadcast, its unicast path cut) with kernel ACKs. The same
//! with GRO-only ports; and a native attachment whose peer loses its
//! program at run time moves to generic mode by itself.

mod common;

use std::time::{Duration, Instant};

use common::{T, Xdhcpd, control_get, xdp_counter};
use lab::{BridgePorts, Lab, names, netns, venus};

fn config(short_timers: bool) -> lab::KeaConfig {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    if short_timers {
        cfg.short_timers().unwrap();
    }
    cfg
}

fn venus(ports: BridgePorts) -> Lab {
    Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap().bridge_ports(ports)).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Lines of `log` at WARN level containing `text`.
fn warnings<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains(text)).collect()
}

#[test]
fn plain_ports_generic_mode_serves_the_reservation_renewals_and_rebinding() {
    let lab = venus(BridgePorts::Plain);
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(true), &[]);
    let log = server.process.log();
    assert!(log.contains("attach mode: generic (skb) XDP on eth0"), "{log}");
    let why = warnings(&log, "veth peer xp-lobezno has no XDP program");
    assert_eq!(why.len(), 1, "one warning saying why:\n{log}");
    assert!(why[0].contains("generic (skb) mode"), "{}", why[0]);

    // Status page and metrics say it too.
    let status: serde_json::Value = serde_json::from_str(&control_get(&lab, venus::PRIMARY, "status.json")).unwrap();
    assert_eq!(status["attach-mode"], "generic (skb) XDP on eth0", "{status}");
    let eth0 = &status["interfaces"][0];
    assert_eq!(
        (&eth0["interface"], &eth0["mode"], &eth0["reason"]),
        (&"eth0".into(), &"generic".into(), &"veth-peer-without-xdp".into()),
        "{status}"
    );
    assert!(eth0["why"].as_str().unwrap().contains("no XDP program"), "{status}");
    let metrics = control_get(&lab, venus::PRIMARY, "metrics");
    assert!(
        metrics.contains(r#"xdhcp_xdp_attach_mode{interface="eth0",mode="generic",reason="veth-peer-without-xdp"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"xdhcp_xdp_fallbacks_total{interface="eth0"} 0"#), "{metrics}");

    // mutante3's reservation, answered in the kernel.
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    let l3 = m3.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    assert_eq!(l3.address, venus::RESERVED_ADDR);

    // A pool client renews by unicast at T1…
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    assert!(venus::in_pool(l1.address), "{l1:?}");
    let renewed = m1.wait_renewal(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    assert_eq!(renewed.address, l1.address);
    // …and rebinds by broadcast at T2 once its unicast path is cut: the
    // server's address resolves to the client's own MAC, which the bridge
    // learned on the client's port and so never forwards back out of it.
    // (dhclient 4.4 still reports the rebinding ACK as RENEW: it only
    // switches to broadcast inside its RENEWING state.)
    let cap = lab.capture_segment(venus::LAN, &["udp", "port", "67"]).unwrap();
    let (server_ip, own_mac) = (venus::PRIMARY_LAN.to_string(), venus::client_mac(1).to_string());
    lab.run(
        &venus::client(1),
        &["ip", "neigh", "replace", &server_ip, "lladdr", &own_mac, "dev", "eth0", "nud", "permanent"],
    )
    .unwrap();
    let rebound = m1.wait_renewal(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    assert_eq!(rebound.address, l1.address);
    let text = cap.stop().unwrap().text().unwrap();
    let rebinding = format!("{}.68 > 255.255.255.255.67", l1.address);
    assert!(text.lines().any(|l| l.contains(&rebinding)), "no REBINDING broadcast from {}:\n{text}", l1.address);
    let unicast = format!("{}.68 > {}.67", l1.address, venus::PRIMARY_LAN);
    assert!(text.lines().any(|l| l.contains(&unicast)), "the unicast renewal was tried first:\n{text}");

    std::thread::sleep(Duration::from_millis(500));
    server.stop();
    let log = server.process.log();
    assert!(xdp_counter(&log, "AnsweredOffer") >= 1, "mutante3's OFFER came from XDP:\n{log}");
    assert!(xdp_counter(&log, "AnsweredReservedAck") >= 1, "mutante3's ACK came from XDP:\n{log}");
    assert!(xdp_counter(&log, "AnsweredAck") >= 2, "the renewal and the rebinding were ACKed by XDP:\n{log}");
}

#[test]
fn gro_only_ports_are_not_trusted_either() {
    let lab = venus(BridgePorts::GroOnly);
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(false), &[]);
    let log = server.process.log();
    assert!(log.contains("attach mode: generic (skb) XDP on eth0"), "{log}");
    assert_eq!(warnings(&log, "veth peer xp-lobezno has GRO but no native XDP program").len(), 1, "{log}");
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    assert_eq!(m3.obtain(T).unwrap().address, venus::RESERVED_ADDR);
    server.stop();
    assert!(xdp_counter(&server.process.log(), "AnsweredReservedAck") >= 1);
}

#[test]
fn native_mode_moves_to_generic_when_the_peer_loses_its_program() {
    let lab = venus(BridgePorts::XdpPass);
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(false), &[]);
    assert!(server.process.log().contains("attach mode: native XDP on eth0"), "{}", server.process.log());
    // The bridge-side port loses its XDP_PASS program (GRO stays on).
    let sw = names::switch_netns(lab.id(), venus::LAN);
    netns::exec(&sw, &["bpftool", "net", "detach", "xdpdrv", "dev", "xp-lobezno"]).unwrap();
    let t0 = Instant::now();
    server
        .process
        .wait_for_log("native replies are not being delivered", T)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    eprintln!("fell back after {:?}", t0.elapsed());
    let log = server.process.log();
    let moved = warnings(&log, "native replies are not being delivered");
    assert_eq!(moved.len(), 1, "one warning:\n{log}");
    assert!(
        moved[0].contains("veth peer xp-lobezno has GRO but no native XDP program")
            && moved[0].contains("now runs in generic (skb) mode"),
        "{}",
        moved[0]
    );
    let metrics = control_get(&lab, venus::PRIMARY, "metrics");
    assert!(metrics.contains(r#"xdhcp_xdp_fallbacks_total{interface="eth0"} 1"#), "{metrics}");
    assert!(
        metrics.contains(r#"xdhcp_xdp_attach_mode{interface="eth0",mode="generic",reason="veth-peer-gro-only"} 1"#),
        "{metrics}"
    );
    // And the kernel path still answers.
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    assert_eq!(
        m3.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log())).address,
        venus::RESERVED_ADDR
    );
    server.stop();
    assert!(xdp_counter(&server.process.log(), "AnsweredReservedAck") >= 1);
}
