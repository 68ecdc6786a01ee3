//! The relay path of the fast path with real parts: Debian's ISC
//! `dhcrelay` between the server LAN and a remote segment, a real dhclient
//! behind it (the topology of `lab_relay.rs`). The client obtains its lease
//! from the daemon through the relay; its reboot (INIT-REBOOT, broadcast
//! on the remote segment, relayed with giaddr) and — with the relay agent
//! stopped — its T1 renewal (unicast with ciaddr, routed through the relay
//! host, no giaddr) are answered by the XDP program: dhclient accepts both
//! and keeps its address, the XDP counters show them, the daemon sent no
//! ACK but the first, and the kernel's ACKs reach the lease file through
//! the ring buffer.
//!
//! ```text
//!   lan 192.168.50.0/24                            remote 192.168.60.0/24
//!   lobezno eth0 .2 ── xbr-lan ── eth0 .1  relay  eth1 .1 ── xbr-remote ── remoto1
//! ```

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{T, Xdhcpd, dhcp_packets, lease_rows, route_of};
use lab::{Host, Ipv4Cidr, KeaConfig, Lab, Mac, Process, Role, Topology};

const LAN: &str = "lan";
const REMOTE: &str = "remote";
const SERVER: &str = "lobezno";
const RELAY: &str = "relay";
const CLIENT: &str = "remoto1";

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const RELAY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const RELAY_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);
const SERVER_MAC: Mac = Mac::local(0x50, 2);
const RELAY_LAN_MAC: Mac = Mac::local(0x50, 1);

fn topology() -> Topology {
    let cidr = |a: Ipv4Addr| Some(Ipv4Cidr::new(a, 24));
    Topology::new()
        .segment(LAN, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 50, 0), 24))
        .segment(REMOTE, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 60, 0), 24))
        .host(Host::new(SERVER, Role::Server).port(LAN, cidr(SERVER_ADDR), Some(SERVER_MAC)))
        .host(Host::new(RELAY, Role::Other).port(LAN, cidr(RELAY_LAN), Some(RELAY_LAN_MAC)).port(
            REMOTE,
            cidr(RELAY_REMOTE),
            Some(Mac::local(0x60, 1)),
        ))
        .host(Host::new(CLIENT, Role::Client).port(REMOTE, None, Some(Mac::local(0x60, 0x11))))
}

/// The lab with its inter-subnet routes, and dhcrelay running.
fn up() -> (Lab, Process) {
    let lab = Lab::up(topology()).unwrap_or_else(|e| panic!("{e:#}"));
    lab.run(SERVER, &["ip", "route", "add", "192.168.60.0/24", "via", &RELAY_LAN.to_string()]).unwrap();
    lab.run(RELAY, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
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

/// `bpftool -j map dump` of the map `name` held open by process `pid`
/// (its fdinfo lists the map ids), so parallel tests never mix maps.
fn bpftool_dump(pid: u32, name: &str) -> serde_json::Value {
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        let Some(id) = info.lines().find_map(|l| l.strip_prefix("map_id:")) else { continue };
        let id = id.trim();
        let show = Command::new("bpftool").args(["-j", "map", "show", "id", id]).output().expect("bpftool");
        let m: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
        if m["name"] == name {
            let out = Command::new("bpftool").args(["-j", "map", "dump", "id", id]).output().unwrap();
            return serde_json::from_slice(&out.stdout).unwrap();
        }
    }
    panic!("pid {pid} holds no map {name}")
}

/// A counter from the daemon's final `XDP counters` line.
fn counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find(&format!("({name}, ")).unwrap_or_else(|| panic!("{name} not in {line}"));
    line[at + name.len() + 3..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn relayed_reboot_and_routed_renewal_are_answered_by_xdp() {
    let (lab, mut relay) = up();
    let cfg = KeaConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/relay/lobezno.json")).unwrap();
    let mut server = Xdhcpd::start(&lab, SERVER, &cfg, &[]);
    let log = || server.process.log();
    assert!(log().contains("attach mode: native XDP on eth0"), "{}", log());
    // On the segment: frames sent with XDP_TX bypass the server's own
    // packet sockets.
    let on_lan = lab.capture_segment(LAN, &["udp", "port", "67", "or", "udp", "port", "68"]).unwrap();

    // DORA through the relay: the daemon (a dynamic client's first lease).
    let c = lab.dhclient(CLIENT).unwrap();
    let first = c.obtain(T).unwrap_or_else(|e| panic!("{e:#}\nserver:\n{}\nrelay:\n{}", log(), relay.log()));
    lab.run(CLIENT, &["ip", "route", "add", "192.168.50.0/24", "via", &RELAY_REMOTE.to_string(), "dev", "eth0"]).unwrap();
    // Reboot: INIT-REBOOT broadcast on the remote segment, relayed.
    let again = c.renew(T).unwrap_or_else(|e| panic!("{e:#}\nserver:\n{}", log()));
    assert_eq!(again.address, first.address, "the relayed INIT-REBOOT was ACKed");
    assert_eq!(again.server_id, SERVER_ADDR);

    // T1 (3 s in the remote subnet): unicast REQUEST with ciaddr, routed
    // through the relay host; the agent is stopped so it cannot relay a
    // copy it picked up on its way through (see lab_relay.rs).
    relay.stop(T).unwrap();
    let renewed = c.wait_renewal(Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e:#}\nserver:\n{}", log()));
    assert_eq!(renewed.address, first.address, "the routed renewal was ACKed");
    std::thread::sleep(Duration::from_millis(500)); // ring buffer → store
    let lan = on_lan.stop().unwrap().packets().unwrap();
    // What an operator sees with bpftool: fields by name (BTF).
    let pid = server.process.pid();
    let relays = bpftool_dump(pid, "XDHCP_RELAYS");
    let subnets = bpftool_dump(pid, "XDHCP_SUBNETS");
    let formatted: Vec<&serde_json::Value> = subnets.as_array().unwrap().iter().map(|e| &e["formatted"]).collect();
    let remote = formatted.iter().find(|e| e["key"]["subnet_id"] == 2).unwrap_or_else(|| panic!("{subnets:#}"));
    assert_eq!((&remote["value"]["serving"], &remote["value"]["link"]), (&1.into(), &0.into()), "{remote:#}");
    let relay_entries = relays.as_array().unwrap();
    assert!(
        relay_entries.iter().any(|e| e["formatted"]["value"] == 2 && e["formatted"]["key"]["prefix_len"] == 24),
        "{relays:#}"
    );
    let stats = server.stop();
    let log = server.process.log();
    eprintln!("{}", log.lines().filter(|l| l.contains("counters") || l.contains("stopped")).collect::<Vec<_>>().join("\n"));

    // The kernel answered the reboot and the renewal; the daemon only the
    // DORA (one OFFER, one ACK).
    let answered = counter(&log, "AnsweredAck");
    assert!(answered >= 2, "relayed INIT-REBOOT and routed renewal answered by XDP (AnsweredAck={answered})");
    assert_eq!(stats.get("sent", "offer"), 1, "{}", stats.line);
    assert_eq!(stats.get("sent", "ack"), 1, "the daemon ACKed only the DORA: {}", stats.line);
    // (The reboot's ACK, in the DORA's second, extends nothing; the
    // renewal's does.)
    assert!(stats.get("sent", "xdp_ack") >= 1, "kernel ACKs reached the store: {}", stats.line);
    // On the wire: the kernel's relayed ACK went to the relay's port 67 via
    // its LAN MAC, the routed one to the client's address via the same MAC.
    let acks = dhcp_packets(&lan, "ACK");
    let to_relay = format!("{SERVER_ADDR}.67 > {RELAY_REMOTE}.67:");
    let to_client = format!("{SERVER_ADDR}.67 > {}.68:", first.address);
    assert!(acks.iter().filter(|p| route_of(p).1.contains(&to_relay)).count() >= 2, "{acks:#?}");
    assert!(acks.iter().any(|p| route_of(p).1.contains(&to_client)), "{acks:#?}");
    for p in &acks {
        assert!(route_of(p).0.contains(&format!(" {SERVER_MAC} > {RELAY_LAN_MAC},")), "{p}");
    }
    assert!(dhcp_packets(&lan, "NACK").is_empty(), "{lan:#?}");
    // The lease file's last row for the address carries the renewed expiry.
    let a = first.address.to_string();
    let rows: Vec<_> = lease_rows(&server.leases).into_iter().filter(|r| r[0] == a).collect();
    assert!(rows.len() >= 2, "allocation and the kernel's renewal stored: {rows:?}");
    let expire = |r: &Vec<String>| r[4].parse::<u64>().unwrap();
    assert!(expire(rows.last().unwrap()) > expire(&rows[0]), "{rows:?}");
}
