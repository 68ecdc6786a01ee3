//! Protocol corners in the `venus` lab, xdhcpd alone in lobezno (no HA, XDP
//! attached): DECLINE, INFORM, the broadcast flag, NAK, pool exhaustion and
//! garbage. Where dhclient cannot send what a test needs (it never declines
//! or informs on Linux, never sets the broadcast flag), a hand-made client
//! ([`common::RawClient`]) does it from the client's namespace. Root and the
//! lab's tools are required (CI has both).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{
    RawClient, T, Xdhcpd, dhcp_packets, domain_name, ips, msg_type, request, route_of, server_id, with_broadcast_flag,
};
use dhcproto::v4::{DhcpOption, MessageType, OptionCode};
use lab::{KeaConfig, Lab, venus, wait_until};
use serde_json::json;

/// How long to wait for an answer that must not come.
const QUIET: Duration = Duration::from_secs(2);
const SERVER: SocketAddrV4 = SocketAddrV4::new(venus::PRIMARY_LAN, 67);

/// The checked-in venus config of lobezno, minus HA.
fn config() -> KeaConfig {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg
}

/// The venus config with a pool of `first..=last` only.
fn tiny_pool(first: Ipv4Addr, last: Ipv4Addr) -> KeaConfig {
    let mut cfg = config();
    cfg.set("/Dhcp4/subnet4/0/pools/0/pool", json!(format!("{first}-{last}"))).unwrap();
    cfg
}

fn mac(n: usize) -> [u8; 6] {
    venus::client_mac(n).0
}

fn lan_capture(lab: &Lab) -> lab::Capture {
    lab.capture_segment(venus::LAN, &["udp", "port", "67", "or", "udp", "port", "68"]).unwrap()
}

#[test]
fn declined_address_is_quarantined() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let pool = (Ipv4Addr::new(192, 168, 50, 100), Ipv4Addr::new(192, 168, 50, 101));
    let mut cfg = tiny_pool(pool.0, pool.1);
    cfg.set("/Dhcp4/decline-probation-period", json!(3600)).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &[]);

    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let declined = m1.obtain(T).unwrap().address;
    assert!((pool.0..=pool.1).contains(&declined));
    // The client finds the address in use: its dhclient goes away (killed,
    // no release), the address leaves the interface, and it declines.
    drop(m1);
    lab.run(&venus::client(1), &["ip", "-4", "addr", "flush", "dev", "eth0"]).unwrap();
    let client = RawClient::open(&lab, &venus::client(1), "eth0", mac(1));
    let mut decline = request(MessageType::Decline, mac(1), 0xdec1_0001);
    decline.opts_mut().insert(DhcpOption::RequestedIpAddress(declined));
    decline.opts_mut().insert(DhcpOption::ServerIdentifier(venus::PRIMARY_LAN));
    client.broadcast(&decline);
    assert!(client.recv(decline.xid(), QUIET).is_none(), "a DECLINE has no reply");

    // Stored as Kea stores a declined lease: state 1, owned by nobody, for
    // the probation period.
    let row = wait_until("the decline to be stored", Duration::from_secs(3), || {
        Ok(server.last_row(declined).filter(|r| r[9] == "1"))
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{:?}\n{}", server.rows(), server.process.log()));
    assert_eq!((row[1].as_str(), row[2].as_str(), row[3].as_str()), ("", "", "3600"), "{row:?}");

    // Another client gets the other pool address…
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    let other = m2.obtain(T).unwrap().address;
    assert!((pool.0..=pool.1).contains(&other) && other != declined, "{other}");
    // …and with only the declined one left, nobody gets it: not dhclient,
    // not a DISCOVER asking for it by name.
    let m4 = lab.dhclient(&venus::client(4)).unwrap();
    let refused = m4.obtain(Duration::from_secs(3));
    assert!(refused.is_err(), "{refused:?}");
    let asker = RawClient::open(&lab, &venus::client(4), "eth0", mac(4));
    let mut discover = with_broadcast_flag(request(MessageType::Discover, mac(4), 0xdec1_0002));
    discover.opts_mut().insert(DhcpOption::RequestedIpAddress(declined));
    let offer = asker.exchange(&discover, QUIET);
    assert!(offer.is_none(), "offered during probation: {offer:?}");

    let stats = server.stop();
    assert_eq!(stats.get("received", "decline"), 1, "{}", stats.line);
    assert!(stats.get("silent", "PoolExhausted") >= 2, "{}", stats.line);
    assert_eq!(stats.get("silent", "NotOwner"), 0, "{}", stats.line);
}

#[test]
fn inform_gets_options_and_no_lease() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(), &[]);
    // A host configured by hand, asking only for its other parameters.
    let host = venus::client(1);
    let static_ip = Ipv4Addr::new(192, 168, 50, 7);
    lab.run(&host, &["ip", "addr", "add", "192.168.50.7/24", "dev", "eth0"]).unwrap();
    let capture = lan_capture(&lab);
    let client = RawClient::open(&lab, &host, "eth0", mac(1));
    let mut inform = request(MessageType::Inform, mac(1), 0x1f0_0001);
    inform.set_ciaddr(static_ip);
    let ack = client.exchange(&inform, T).unwrap_or_else(|| panic!("no reply to INFORM\n{}", server.process.log()));

    assert_eq!(msg_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.ciaddr(), static_ip);
    assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED, "INFORM assigns no address");
    assert!(!ack.opts().contains(OptionCode::AddressLeaseTime), "{ack:?}");
    assert!(!ack.opts().contains(OptionCode::Renewal) && !ack.opts().contains(OptionCode::Rebinding), "{ack:?}");
    assert_eq!(server_id(&ack), Some(venus::PRIMARY_LAN));
    assert_eq!(ips(&ack, OptionCode::Router), [Ipv4Addr::new(192, 168, 50, 1)]);
    assert_eq!(ips(&ack, OptionCode::DomainNameServer), [venus::PRIMARY_LAN, venus::STANDBY_LAN]);
    assert_eq!(domain_name(&ack).as_deref(), Some("venus.test"));

    // Unicast to ciaddr, at IP and link level, though the INFORM was
    // broadcast.
    let packets = capture.stop().unwrap().packets().unwrap();
    let acks = dhcp_packets(&packets, "ACK");
    assert_eq!(acks.len(), 1, "{packets:#?}");
    let (eth, ip) = route_of(&acks[0]);
    assert!(eth.contains(&format!(" > {},", venus::client_mac(1))), "{}", acks[0]);
    assert!(ip.starts_with(&format!("{}.67 > {static_ip}.68:", venus::PRIMARY_LAN)), "{}", acks[0]);

    // Nothing stored.
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.rows().is_empty(), "{:?}", server.rows());
    let stats = server.stop();
    assert_eq!(stats.get("received", "inform"), 1, "{}", stats.line);
    assert_eq!(stats.map("sent"), [("ack".to_owned(), 1)].into(), "{}", stats.line);
}

#[test]
fn broadcast_flag_decides_how_replies_travel() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(), &[]);
    let capture = lan_capture(&lab);

    // mutante1 sets the broadcast flag on DISCOVER and REQUEST.
    let client = RawClient::open(&lab, &venus::client(1), "eth0", mac(1));
    let discover = with_broadcast_flag(request(MessageType::Discover, mac(1), 0xb0_0001));
    let offer = client.exchange(&discover, T).unwrap_or_else(|| panic!("no OFFER\n{}", server.process.log()));
    assert_eq!(msg_type(&offer), Some(MessageType::Offer));
    assert!(offer.flags().broadcast(), "the flag is echoed");
    let a = offer.yiaddr();
    assert!(venus::in_pool(a), "{offer:?}");
    let mut req = with_broadcast_flag(request(MessageType::Request, mac(1), 0xb0_0001));
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(venus::PRIMARY_LAN));
    let ack = client.exchange(&req, T).unwrap_or_else(|| panic!("no ACK\n{}", server.process.log()));
    assert_eq!((msg_type(&ack), ack.yiaddr()), (Some(MessageType::Ack), a));
    assert!(server.last_row(a).is_some_and(|r| r[1] == venus::client_mac(1).to_string()), "{:?}", server.rows());

    // mutante2 is plain dhclient, which leaves the flag clear.
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    let b = m2.obtain(T).unwrap().address;

    let packets = capture.stop().unwrap().packets().unwrap();
    let replies = |kind: &str, mac: lab::Mac| -> Vec<String> {
        let chaddr = format!("Client-Ethernet-Address {mac}");
        dhcp_packets(&packets, kind).into_iter().filter(|p| p.contains(&chaddr)).collect()
    };
    let from_server = format!("{}.67 > ", venus::PRIMARY_LAN);
    for kind in ["Offer", "ACK"] {
        // Flag set: Ethernet and IP broadcast.
        let flagged = replies(kind, venus::client_mac(1));
        assert_eq!(flagged.len(), 1, "{kind}: {packets:#?}");
        let (eth, ip) = route_of(&flagged[0]);
        assert!(eth.contains(" > ff:ff:ff:ff:ff:ff,"), "{}", flagged[0]);
        assert!(ip.starts_with(&format!("{from_server}255.255.255.255.68:")), "{}", flagged[0]);
        assert!(flagged[0].contains("Flags [Broadcast]"), "{}", flagged[0]);
        // Flag clear: unicast to chaddr, IP destination the address given.
        let plain = replies(kind, venus::client_mac(2));
        assert_eq!(plain.len(), 1, "{kind}: {packets:#?}");
        let (eth, ip) = route_of(&plain[0]);
        assert!(eth.contains(&format!(" > {},", venus::client_mac(2))), "{}", plain[0]);
        assert!(ip.starts_with(&format!("{from_server}{b}.68:")), "{}", plain[0]);
    }
    let stats = server.stop();
    assert_eq!(stats.get("sent", "offer"), 2, "{}", stats.line);
    assert_eq!(stats.get("sent", "ack"), 2, "{}", stats.line);
}

#[test]
fn init_reboot_for_a_foreign_address_is_nakked_by_broadcast() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(), &[]);
    let capture = lan_capture(&lab);
    // A client back from another network asks for its old address
    // (INIT-REBOOT: requested address, no server identifier, no ciaddr),
    // broadcast flag clear.
    let client = RawClient::open(&lab, &venus::client(1), "eth0", mac(1));
    let mut req = request(MessageType::Request, mac(1), 0x4a_0001);
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 9, 9, 9)));
    let nak = client.exchange(&req, T).unwrap_or_else(|| panic!("no NAK\n{}", server.process.log()));
    assert_eq!(msg_type(&nak), Some(MessageType::Nak));
    assert_eq!(nak.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(server_id(&nak), Some(venus::PRIMARY_LAN));
    assert!(!nak.opts().contains(OptionCode::AddressLeaseTime), "{nak:?}");

    let packets = capture.stop().unwrap().packets().unwrap();
    let naks = dhcp_packets(&packets, "NACK");
    assert_eq!(naks.len(), 1, "{packets:#?}");
    let (eth, ip) = route_of(&naks[0]);
    assert!(eth.contains(" > ff:ff:ff:ff:ff:ff,"), "{}", naks[0]);
    assert!(ip.starts_with(&format!("{}.67 > 255.255.255.255.68:", venus::PRIMARY_LAN)), "{}", naks[0]);
    assert!(server.rows().is_empty(), "{:?}", server.rows());
    let stats = server.stop();
    assert_eq!(stats.map("sent"), [("nak".to_owned(), 1)].into(), "{}", stats.line);
}

#[test]
fn exhausted_pool_is_silent_counted_and_recovers() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let pool = (Ipv4Addr::new(192, 168, 50, 100), Ipv4Addr::new(192, 168, 50, 101));
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &tiny_pool(pool.0, pool.1), &[]);
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let a = m1.obtain(T).unwrap().address;
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    let b = m2.obtain(T).unwrap().address;
    assert_eq!([a.min(b), a.max(b)], [pool.0, pool.1]);

    // A third client (mutante3 has a reservation, so mutante4) hears nothing.
    let capture = lan_capture(&lab);
    let m4 = lab.dhclient(&venus::client(4)).unwrap();
    let refused = m4.obtain(Duration::from_secs(3));
    assert!(refused.is_err(), "{refused:?}");
    let packets = capture.stop().unwrap().packets().unwrap();
    let chaddr = format!("Client-Ethernet-Address {}", venus::client_mac(4));
    let discovers = dhcp_packets(&packets, "Discover").iter().filter(|p| p.contains(&chaddr)).count();
    assert!(discovers >= 2, "dhclient retried: {packets:#?}");
    assert!(dhcp_packets(&packets, "Offer").is_empty(), "{packets:#?}");
    assert!(server.process.is_running());

    // Still serving: once mutante1 releases, mutante4 gets its address.
    m1.release(T).unwrap();
    assert_eq!(m4.obtain(T).unwrap().address, a);

    let stats = server.stop();
    assert_eq!(stats.get("silent", "PoolExhausted"), discovers as u64, "one per unanswered DISCOVER: {}", stats.line);
}

/// A well-formed BOOTREQUEST header (DISCOVER from `mac`) with `options`
/// after the magic cookie, then the end option.
fn bootrequest(mac: [u8; 6], options: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&0xbad0_0001u32.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    p.extend_from_slice(options);
    p.push(255);
    p
}

#[test]
fn malformed_packets_are_dropped_and_counted_by_reason() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut server = Xdhcpd::start(&lab, venus::PRIMARY, &config(), &[]);
    // An address, so it can also send by unicast to the server.
    lab.run(&venus::client(1), &["ip", "addr", "add", "192.168.50.8/24", "dev", "eth0"]).unwrap();
    let client = RawClient::open(&lab, &venus::client(1), "eth0", mac(1));
    let m = mac(1);
    let discover = [53, 1, 1];
    let valid = bootrequest(m, &discover);
    let mut reply_op = valid.clone();
    reply_op[0] = 2;
    let mut long_hlen = valid.clone();
    long_hlen[2] = 17;
    let mut no_cookie = valid.clone();
    no_cookie[236..240].copy_from_slice(b"BOOT");
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("Truncated", Vec::new()),
        ("Truncated", b"hello, server".to_vec()),
        ("Truncated", valid[..239].to_vec()),
        ("NotRequest", reply_op),
        ("BadHardwareLength", long_hlen),
        ("NoMagicCookie", no_cookie),
        // Parameter request list claiming 200 bytes.
        ("BadOption", bootrequest(m, &[53, 1, 1, 55, 200, 1, 3])),
        ("NoMessageType", bootrequest(m, &[55, 2, 1, 3])),
        // An OFFER sent to a server.
        ("UnexpectedMessageType", bootrequest(m, &[53, 1, 2])),
    ];
    for (_, bytes) in &garbage {
        client.broadcast_bytes(bytes);
        client.send_bytes(bytes, SERVER);
    }
    // Still serving, after all of it (same socket, so it was all read).
    let m2 = lab.dhclient(&venus::client(2)).unwrap();
    assert!(venus::in_pool(m2.obtain(T).unwrap().address));
    assert!(server.process.is_running());

    let stats = server.stop();
    let mut expected = std::collections::BTreeMap::new();
    for (reason, _) in &garbage {
        *expected.entry(reason.to_string()).or_insert(0) += 2; // broadcast + unicast
    }
    assert_eq!(stats.map("dropped"), expected, "{}", stats.line);
    let received = stats.map("received");
    assert!(received.keys().all(|k| k == "discover" || k == "request"), "only mutante2's DORA: {}", stats.line);
}
