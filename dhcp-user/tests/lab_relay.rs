//! A relayed subnet with a real relay agent: Debian's ISC `dhcrelay`
//! between the server LAN and a remote segment, real dhclient clients on
//! the remote side. Root and the lab's tools are required (CI has both).
//!
//! ```text
//!   lan 192.168.50.0/24                            remote 192.168.60.0/24
//!   lobezno eth0 .2 ── xbr-lan ── eth0 .1  relay  eth1 .1 ── xbr-remote ── remoto1, remoto2
//! ```
//!
//! Routes exist only between the two lab subnets, through the relay: the
//! server reaches giaddr 192.168.60.1, and a bound client reaches the
//! server identifier for its unicast renewal and release (as a real
//! routed client would). No host has a default route.
//!
//! The same scenario runs against Kea 2.2 as a cross-check of what the
//! test expects.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::{T, Xdhcpd, dhcp_packets, lease_rows, route_of};
use lab::{Host, Ipv4Cidr, Kea, KeaConfig, Lab, Mac, Process, Role, Topology, wait_until};

const LAN: &str = "lan";
const REMOTE: &str = "remote";
const SERVER: &str = "lobezno";
const RELAY: &str = "relay";
const CLIENTS: [&str; 2] = ["remoto1", "remoto2"];

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const RELAY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const RELAY_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);
const RELAY_LAN_MAC: Mac = Mac::local(0x50, 1);
const SERVER_MAC: Mac = Mac::local(0x50, 2);

/// Remote subnet's pool and timers, as in `data/relay/lobezno.json`.
const REMOTE_POOL: std::ops::RangeInclusive<Ipv4Addr> =
    Ipv4Addr::new(192, 168, 60, 100)..=Ipv4Addr::new(192, 168, 60, 149);
const REMOTE_LEASE: u32 = 12;

fn client_mac(n: usize) -> Mac {
    Mac::local(0x60, 0x10 + u8::try_from(n).unwrap())
}

fn topology() -> Topology {
    let cidr = |a: Ipv4Addr| Some(Ipv4Cidr::new(a, 24));
    let mut t = Topology::new()
        .segment(LAN, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 50, 0), 24))
        .segment(REMOTE, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 60, 0), 24))
        .host(Host::new(SERVER, Role::Server).port(LAN, cidr(SERVER_ADDR), Some(SERVER_MAC)))
        .host(Host::new(RELAY, Role::Other).port(LAN, cidr(RELAY_LAN), Some(RELAY_LAN_MAC)).port(
            REMOTE,
            cidr(RELAY_REMOTE),
            Some(Mac::local(0x60, 1)),
        ));
    for (i, name) in CLIENTS.iter().enumerate() {
        t = t.host(Host::new(*name, Role::Client).port(REMOTE, None, Some(client_mac(i + 1))));
    }
    t
}

fn config() -> KeaConfig {
    KeaConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/relay/lobezno.json")).unwrap()
}

/// The lab with its inter-subnet routes, and dhcrelay running.
fn up() -> (Lab, Process) {
    let lab = Lab::up(topology()).unwrap();
    lab.run(SERVER, &["ip", "route", "add", "192.168.60.0/24", "via", &RELAY_LAN.to_string()]).unwrap();
    lab.run(RELAY, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    // -id: client side, -iu: server side; foreground, no pid file.
    let mut relay = lab
        .spawn(
            RELAY,
            "dhcrelay",
            &["dhcrelay", "-4", "-d", "--no-pid", "-id", "eth1", "-iu", "eth0", &SERVER_ADDR.to_string()],
        )
        .unwrap();
    relay.wait_for_log("Sending on", T).unwrap();
    (lab, relay)
}

/// What a client of the remote subnet must be given, whoever serves it.
fn assert_remote_lease(lease: &lab::Lease) {
    assert!(REMOTE_POOL.contains(&lease.address), "{lease:?}");
    assert_eq!(lease.server_id, SERVER_ADDR, "{lease:?}");
    assert_eq!(lease.routers, [RELAY_REMOTE], "{lease:?}");
    assert_eq!(lease.dns_servers, [SERVER_ADDR, RELAY_REMOTE], "{lease:?}");
    assert_eq!(lease.domain_name.as_deref(), Some("remote.venus.test"), "{lease:?}");
    assert_eq!(lease.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)), "{lease:?}");
    assert_eq!(lease.lease_time, REMOTE_LEASE, "{lease:?}");
    assert_eq!((lease.renewal_time, lease.rebinding_time), (Some(3), Some(6)), "{lease:?}");
}

/// Obtain through the relay, an INIT-REBOOT through the relay, then —
/// with the relay agent stopped, so the relay host is a plain router as
/// far as DHCP goes — a unicast T1 renewal and a release. Checks the store
/// and the wire; `log` shows the server's log on failure.
///
/// dhcrelay is stopped for the unicast part because its LPF socket also
/// picks up a client's unicast to the server as it is routed through, and
/// relays a copy: the server would see each renewal and release twice,
/// and the relayed copy would hide how the direct one was answered.
fn relayed_scenario(lab: &Lab, relay: &mut Process, leases: &Path, log: &dyn Fn() -> String) {
    // On the LAN segment, not the server's port: the XDP program answers
    // relayed requests and renewals before a capture there could see them.
    let on_lan = lab.capture_segment(LAN, &["udp", "port", "67", "or", "udp", "port", "68"]).unwrap();
    let on_remote = lab.capture_segment(REMOTE, &["udp", "port", "67", "or", "udp", "port", "68"]).unwrap();

    let c1 = lab.dhclient(CLIENTS[0]).unwrap();
    let l1 = c1.obtain(T).unwrap_or_else(|e| panic!("{e:#}\nserver:\n{}\nrelay:\n{}", log(), relay.log()));
    assert_remote_lease(&l1);
    // A routed client reaches its server identifier through the relay.
    lab.run(CLIENTS[0], &["ip", "route", "add", "192.168.50.0/24", "via", &RELAY_REMOTE.to_string(), "dev", "eth0"])
        .unwrap();

    let row = lease_rows(leases).into_iter().rev().find(|r| r[0] == l1.address.to_string());
    let row = row.unwrap_or_else(|| panic!("{} not stored:\n{}", l1.address, log()));
    assert_eq!(
        (row[1].as_str(), row[3].as_str(), row[5].as_str()),
        (&*client_mac(1).to_string(), "12", "2"),
        "{row:?}"
    );

    let c2 = lab.dhclient(CLIENTS[1]).unwrap();
    let l2 = c2.obtain(T).unwrap();
    assert_remote_lease(&l2);
    assert_ne!(l1.address, l2.address);
    // Killed, not stopped: `dhclient -x` would first send a REQUEST of its
    // own. Its lease stays with the server.
    drop(c2);

    // A reboot: INIT-REBOOT, broadcast on the remote segment, relayed.
    let again = c1.renew(T).unwrap();
    assert_eq!(again.address, l1.address);
    assert_remote_lease(&again);

    relay.stop(T).unwrap();
    // T1 (3 s): dhclient unicasts a REQUEST to 192.168.50.2 with ciaddr
    // set and no giaddr, routed through the relay host. It must be
    // answered (RENEW); unanswered, the broadcast REBIND at T2 would find
    // no relay agent and the lease would run out.
    let seen = c1.events().unwrap().len();
    let renewed = c1.wait_renewal(Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e:#}\nserver:\n{}", log()));
    let kinds: Vec<String> = c1.events().unwrap().into_iter().skip(seen).map(|e| e.reason).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("RENEW"), "{kinds:?}\n{}\nserver:\n{}", c1.log(), log());
    assert_eq!(renewed.address, l1.address);
    assert_remote_lease(&renewed);

    // Release, unicast to the server identifier: the store drops it.
    c1.release(T).unwrap();
    let a = l1.address.to_string();
    wait_until("the release to be stored", Duration::from_secs(3), || {
        let last = lease_rows(leases).into_iter().rev().find(|r| r[0] == a);
        Ok(last.is_some_and(|r| r[3] == "0").then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{:?}\nserver:\n{}", lease_rows(leases), log()));

    // On the server's wire: every OFFER went to the relay, port 67 to port
    // 67, link-addressed to the relay's LAN port; nothing was broadcast.
    let lan = on_lan.stop().unwrap().packets().unwrap();
    let offers = dhcp_packets(&lan, "Offer");
    assert_eq!(offers.len(), 2, "{lan:#?}");
    let to_relay = format!("{SERVER_ADDR}.67 > {RELAY_REMOTE}.67:");
    for p in &offers {
        let (eth, ip) = route_of(p);
        assert!(eth.contains(&format!(" {SERVER_MAC} > {RELAY_LAN_MAC},")), "{p}");
        assert!(ip.contains(&to_relay), "{p}");
    }
    // ACKs: each relayed REQUEST (two DORAs and the INIT-REBOOT; more if
    // a T1 renewal came before the agent stopped and was relayed too) is
    // answered via the relay, each direct renewal by unicast to the
    // client's address, routed back.
    let acks = dhcp_packets(&lan, "ACK");
    let relayed = acks.iter().filter(|p| route_of(p).1.contains(&to_relay)).count();
    let renewal_to = format!("{SERVER_ADDR}.67 > {}.68:", l1.address);
    let unicast = acks.iter().filter(|p| route_of(p).1.contains(&renewal_to)).count();
    let requests = dhcp_packets(&lan, "Request");
    let from_relay = format!("{RELAY_LAN}.67 > {SERVER_ADDR}.67:");
    let relayed_requests = requests.iter().filter(|p| route_of(p).1.contains(&from_relay)).count();
    assert!(relayed_requests >= 3, "{lan:#?}");
    assert_eq!(relayed, relayed_requests, "every relayed REQUEST is ACKed via the relay: {lan:#?}");
    let direct = format!("{}.68 > {SERVER_ADDR}.67:", l1.address);
    let renewals = requests.iter().filter(|p| route_of(p).1.contains(&direct)).count();
    assert!(renewals >= 1, "{lan:#?}");
    assert_eq!(unicast, renewals, "every unicast renewal gets its ACK: {lan:#?}");
    assert_eq!(relayed + unicast, acks.len(), "{acks:#?}");
    assert!(
        !lan.iter().any(|p| p.contains(&format!("{SERVER_ADDR}.67 > 255.255.255.255"))),
        "the server broadcast on its LAN: {lan:#?}"
    );
    assert!(dhcp_packets(&lan, "NACK").is_empty(), "{lan:#?}");
    let releases = dhcp_packets(&lan, "Release");
    assert_eq!(releases.len(), 1, "{lan:#?}");
    assert!(route_of(&releases[0]).1.contains(&direct), "{releases:#?}");

    // On the remote segment the relay handed the OFFERs on from port 67.
    let remote = on_remote.stop().unwrap().packets().unwrap();
    let offers = dhcp_packets(&remote, "Offer");
    assert_eq!(offers.len(), 2, "{remote:#?}");
    for p in &offers {
        assert!(route_of(p).1.starts_with(&format!("{RELAY_REMOTE}.67 > 192.168.60.")), "{p}");
    }
    let relay_log = relay.log();
    for n in 1..=2 {
        assert!(relay_log.contains(&format!("Forwarded BOOTREPLY for {}", client_mac(n))), "{relay_log}");
    }
}

#[test]
fn xdhcpd_serves_a_relayed_subnet() {
    let (lab, mut relay) = up();
    let mut server = Xdhcpd::start(&lab, SERVER, &config(), &[]);
    let log = server.process.log();
    assert!(log.contains("attach mode: native XDP on eth0"), "{log}");
    let leases = server.leases.clone();
    let process_log = server.process.log_path().to_owned();
    relayed_scenario(&lab, &mut relay, &leases, &|| std::fs::read_to_string(&process_log).unwrap_or_default());

    let stats = server.stop();
    assert_eq!(stats.get("sent", "offer"), 2, "{}", stats.line);
    assert_eq!(stats.get("sent", "nak"), 0, "{}", stats.line);
    assert_eq!(stats.get("received", "release"), 1, "{}", stats.line);
    // The release is the only request without a reply; a release the
    // server did not take as the owner's would count as NotOwner.
    assert_eq!(stats.map("silent"), [("NoReplyExpected".to_owned(), 1)].into(), "{}", stats.line);
    assert!(stats.map("dropped").is_empty(), "{}", stats.line);
}

#[test]
fn kea_serves_the_same_relayed_subnet() {
    let (lab, mut relay) = up();
    let mut kea = Kea::start(&lab, SERVER, &config()).unwrap();
    let leases = kea.lease_file().to_owned();
    let log_path = kea.process().log_path().to_owned();
    relayed_scenario(&lab, &mut relay, &leases, &|| std::fs::read_to_string(&log_path).unwrap_or_default());
    kea.process().stop(T).unwrap();
}
