//! Client classes with real clients: Debian's dhclient on a LAN, and on a
//! remote segment behind Debian's ISC `dhcrelay -a` (which adds option 82
//! with the receiving interface as circuit-id). Root and the lab's tools
//! are required (CI has both).
//!
//! ```text
//!   lan 192.168.50.0/24                                   remote 192.168.60.0/24
//!   lobezno eth0 .2 ── xbr-lan ── eth0 .1  relay -a  eth1 .1 ── xbr-remote ── remoto1
//!   mutante1 (PXEClient), mutante2 (reserved: KNOWN), mutante3 (unknown) on the lan
//! ```
//!
//! - a `PXEClient` vendor class gets its own pool and `boot-file-name`;
//! - the LAN's other pool is for KNOWN clients only: the reserved client
//!   gets an address there, an unknown client gets none;
//! - the relay's circuit-id (`relay4[1]`) selects a class whose option
//!   the remote client receives.
//!
//! The same scenario runs against Kea 2.2 as a cross-check of what the
//! test expects.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{T, Xdhcpd};
use lab::{Host, Ipv4Cidr, Kea, KeaConfig, Lab, Mac, Process, Role, Topology};
use serde_json::json;

const LAN: &str = "lan";
const REMOTE: &str = "remote";
const SERVER: &str = "lobezno";
const RELAY: &str = "relay";
const PXE: &str = "mutante1";
const KNOWN: &str = "mutante2";
const STRANGER: &str = "mutante3";
const REMOTE_CLIENT: &str = "remoto1";

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const RELAY_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 1);
const RELAY_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 168, 60, 1);
const PXE_POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(192, 168, 50, 100), Ipv4Addr::new(192, 168, 50, 109));
const KNOWN_POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(192, 168, 50, 150), Ipv4Addr::new(192, 168, 50, 159));

fn topology() -> Topology {
    let cidr = |a: Ipv4Addr| Some(Ipv4Cidr::new(a, 24));
    let mut t = Topology::new()
        .segment(LAN, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 50, 0), 24))
        .segment(REMOTE, Ipv4Cidr::new(Ipv4Addr::new(192, 168, 60, 0), 24))
        .host(Host::new(SERVER, Role::Server).port(LAN, cidr(SERVER_ADDR), Some(Mac::local(0x50, 2))))
        .host(Host::new(RELAY, Role::Other).port(LAN, cidr(RELAY_LAN), Some(Mac::local(0x50, 1))).port(
            REMOTE,
            cidr(RELAY_REMOTE),
            Some(Mac::local(0x60, 1)),
        ))
        .host(Host::new(REMOTE_CLIENT, Role::Client).port(REMOTE, None, Some(Mac::local(0x60, 0x11))));
    for (i, name) in [PXE, KNOWN, STRANGER].iter().enumerate() {
        t = t.host(Host::new(*name, Role::Client).port(LAN, None, Some(Mac::local(0x50, 0x11 + i as u8))));
    }
    t
}

fn config() -> KeaConfig {
    let range = |p: (Ipv4Addr, Ipv4Addr)| format!("{}-{}", p.0, p.1);
    KeaConfig::from_value(json!({ "Dhcp4": {
        "interfaces-config": { "interfaces": [ "eth0" ] },
        "lease-database": { "type": "memfile", "persist": true, "name": "/var/lib/kea/classes-leases4.csv" },
        "authoritative": true,
        "valid-lifetime": 60,
        "client-classes": [
            { "name": "pxe", "test": "substring(option[vendor-class-identifier].hex,0,9) == 'PXEClient'",
              "boot-file-name": "pxelinux.0", "next-server": SERVER_ADDR.to_string() },
            { "name": "relay-eth1", "test": "relay4[1].hex == 'eth1'",
              "option-data": [ { "name": "domain-name", "data": "circuit.venus.test" } ] }
        ],
        "subnet4": [
            { "id": 1, "subnet": "192.168.50.0/24",
              "option-data": [ { "name": "routers", "data": RELAY_LAN.to_string() },
                               { "name": "domain-name", "data": "venus.test" } ],
              "pools": [ { "pool": range(PXE_POOL), "client-class": "pxe" },
                         { "pool": range(KNOWN_POOL), "client-class": "KNOWN" } ],
              "reservations": [ { "hw-address": Mac::local(0x50, 0x12).to_string(), "hostname": "known" } ] },
            { "id": 2, "subnet": "192.168.60.0/24",
              "option-data": [ { "name": "routers", "data": RELAY_REMOTE.to_string() } ],
              "pools": [ { "pool": "192.168.60.100-192.168.60.149" } ] }
        ]
    } }))
}

/// The lab with its routes and `dhcrelay -a` running.
fn up() -> (Lab, Process) {
    let lab = Lab::up(topology()).unwrap();
    lab.run(SERVER, &["ip", "route", "add", "192.168.60.0/24", "via", &RELAY_LAN.to_string()]).unwrap();
    lab.run(RELAY, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    let mut relay = lab
        .spawn(
            RELAY,
            "dhcrelay",
            &["dhcrelay", "-4", "-d", "--no-pid", "-a", "-id", "eth1", "-iu", "eth0", &SERVER_ADDR.to_string()],
        )
        .unwrap();
    relay.wait_for_log("Sending on", T).unwrap();
    (lab, relay)
}

fn scenario(lab: &Lab, log: &dyn Fn() -> String) {
    let in_pool = |a: Ipv4Addr, p: (Ipv4Addr, Ipv4Addr)| (p.0..=p.1).contains(&a);

    let pxe = lab.dhclient(PXE).unwrap();
    let l = pxe
        .obtain_sending(T, "send vendor-class-identifier \"PXEClient:Arch:00000:UNDI:002001\";")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
    assert!(in_pool(l.address, PXE_POOL), "{l:?}");
    assert_eq!(l.options.get("filename").map(String::as_str), Some("pxelinux.0"), "{l:?}");

    let known = lab.dhclient(KNOWN).unwrap();
    let l = known.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
    assert!(in_pool(l.address, KNOWN_POOL), "{l:?}");
    assert!(!l.options.contains_key("filename"), "{l:?}");
    assert_eq!(l.domain_name.as_deref(), Some("venus.test"), "{l:?}");

    // Neither PXE nor reserved: no pool will have it.
    let stranger = lab.dhclient(STRANGER).unwrap();
    let refused = stranger.obtain(Duration::from_secs(4));
    assert!(refused.is_err(), "an unknown client got {refused:?}\n{}", log());

    // Behind the relay: circuit-id "eth1" puts it in relay-eth1.
    let remote = lab.dhclient(REMOTE_CLIENT).unwrap();
    let l = remote.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", log()));
    assert!(l.address.octets()[..3] == [192, 168, 60], "{l:?}");
    assert_eq!(l.routers, [RELAY_REMOTE], "{l:?}");
    assert_eq!(l.domain_name.as_deref(), Some("circuit.venus.test"), "{l:?}");
}

#[test]
fn xdhcpd_classifies_real_clients() {
    let (lab, relay) = up();
    let mut server = Xdhcpd::start(&lab, SERVER, &config(), &[]);
    let path = server.process.log_path().to_owned();
    scenario(&lab, &|| std::fs::read_to_string(&path).unwrap_or_default());
    // Classes decide these subnets' answers: the kernel leaves them to the
    // daemon, and /metrics says so, with the reason.
    let url = format!("http://{}/metrics", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    let metrics = lab.run(SERVER, &["curl", "-sS", "--max-time", "5", &url]).unwrap().stdout;
    let classes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("xdhcp_kernel_daemon_only{kind=\"subnet\",reason=\"classes\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(classes.is_some_and(|n| n >= 1.0), "no daemon-only subnet counted for classes:\n{metrics}");
    // The stranger's DISCOVERs found no pool it may use.
    let stats = server.stop();
    assert!(stats.get("silent", "PoolExhausted") >= 1, "{}", stats.line);
    assert_eq!(stats.get("sent", "nak"), 0, "{}", stats.line);
    assert!(relay.log().contains("Forwarded BOOTREPLY"), "{}", relay.log());
}

#[test]
fn kea_classifies_the_same_clients() {
    let (lab, _relay) = up();
    let mut kea = Kea::start(&lab, SERVER, &config()).unwrap();
    let path = kea.process().log_path().to_owned();
    scenario(&lab, &|| std::fs::read_to_string(&path).unwrap_or_default());
    kea.process().stop(T).unwrap();
}
