//! Hub-and-spoke, as in seed 004: three xdhcpd servers, two HA
//! relationships. The hub (zaldua1zerb1) is primary for net1 with spoke
//! zaldua1zerb2 as its standby, and standby for net2 whose primary is
//! spoke zaldua2zerb1. Subnets are tied to relationships by
//! `user-context.ha-server-name`; the hub listens on a different URL in
//! each relationship. Each server is failed in turn.

mod common;

use std::{
    net::Ipv4Addr,
    time::Duration,
};

use common::{T, Xdhcpd, drill::Drill};
use lab::{Host, Ipv4Cidr, KeaConfig, Lab, Mac, Role, Topology};
use serde_json::{Value, json};

const HA_UP: Duration = Duration::from_secs(40);
const HUB: &str = "zaldua1zerb1";
const SPOKE1: &str = "zaldua1zerb2";
const SPOKE2: &str = "zaldua2zerb1";
// Relationship peer names, as in seed 004.
const HUB_R1: &str = "zaldua1zerb1-zaldua1";
const SPOKE1_R1: &str = "zaldua1zerb2-zaldua1";
const HUB_R2: &str = "zaldua1zerb1-zaldua2";
const SPOKE2_R2: &str = "zaldua2zerb1-zaldua2";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn topology() -> Topology {
    let cidr = |a: &str, p| Ipv4Cidr::new(ip(a), p);
    let mut t = Topology::new()
        .segment("net1", cidr("192.168.42.0", 23))
        .segment("net2", cidr("192.168.4.0", 22))
        .host(
            Host::new(HUB, Role::Server)
                .port("net1", Some(cidr("192.168.42.4", 23)), Some(Mac::local(0x42, 4)))
                .port("net2", Some(cidr("192.168.4.4", 22)), Some(Mac::local(0x04, 4))),
        )
        .host(Host::new(SPOKE1, Role::Server).port("net1", Some(cidr("192.168.42.5", 23)), Some(Mac::local(0x42, 5))))
        .host(Host::new(SPOKE2, Role::Server).port("net2", Some(cidr("192.168.4.5", 22)), Some(Mac::local(0x04, 5))));
    for n in 1..=3u8 {
        t = t.host(Host::new(format!("net1c{n}"), Role::Client).port("net1", None, Some(Mac::local(0x10, n))));
        t = t.host(Host::new(format!("net2c{n}"), Role::Client).port("net2", None, Some(Mac::local(0x20, n))));
    }
    t
}

fn relationship(me: &str, primary: (&str, &str), standby: (&str, &str)) -> Value {
    json!({
        "this-server-name": me, "mode": "hot-standby",
        "heartbeat-delay": 1000, "max-response-delay": 3000, "max-ack-delay": 1000, "max-unacked-clients": 0,
        "peers": [
            { "name": primary.0, "url": primary.1, "role": "primary", "auto-failover": true },
            { "name": standby.0, "url": standby.1, "role": "standby", "auto-failover": true }
        ]
    })
}

fn subnet(id: u32, net: &str, pool: &str, router: &str, rel_name: &str) -> Value {
    json!({ "id": id, "subnet": net, "user-context": { "ha-server-name": rel_name },
            "pools": [ { "pool": pool } ],
            "option-data": [ { "name": "routers", "data": router } ] })
}

fn config(interfaces: &[&str], rels: Vec<Value>, subnets: Vec<Value>) -> KeaConfig {
    KeaConfig::from_value(json!({ "Dhcp4": {
        "interfaces-config": { "interfaces": interfaces },
        "lease-database": { "type": "memfile", "persist": true, "name": "/var/lib/kea/x.csv" },
        "valid-lifetime": 60, "renew-timer": 30, "rebind-timer": 45,
        "hooks-libraries": [
            { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so" },
            { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so",
              "parameters": { "high-availability": rels } }
        ],
        "subnet4": subnets
    }}))
}

const R1_P: (&str, &str) = (HUB_R1, "http://192.168.42.4:8001/");
const R1_S: (&str, &str) = (SPOKE1_R1, "http://192.168.42.5:8001/");
const R2_P: (&str, &str) = (SPOKE2_R2, "http://192.168.4.5:8002/");
const R2_S: (&str, &str) = (HUB_R2, "http://192.168.4.4:8002/");

fn net1() -> Value {
    subnet(1, "192.168.42.0/23", "192.168.43.10-192.168.43.99", "192.168.42.2", HUB_R1)
}
fn net2() -> Value {
    subnet(2, "192.168.4.0/22", "192.168.5.10-192.168.5.99", "192.168.4.1", HUB_R2)
}

fn start(lab: &Lab, host: &str) -> Xdhcpd {
    let cfg = match host {
        HUB => config(&["eth0", "eth1"], vec![relationship(HUB_R1, R1_P, R1_S), relationship(HUB_R2, R2_P, R2_S)], vec![net1(), net2()]),
        SPOKE1 => config(&["eth0"], vec![relationship(SPOKE1_R1, R1_P, R1_S)], vec![subnet(1, "192.168.42.0/23", "192.168.43.10-192.168.43.99", "192.168.42.2", SPOKE1_R1)]),
        _ => config(&["eth0"], vec![relationship(SPOKE2_R2, R2_P, R2_S)], vec![subnet(2, "192.168.4.0/22", "192.168.5.10-192.168.5.99", "192.168.4.1", SPOKE2_R2)]),
    };
    Xdhcpd::start(lab, host, &cfg, &[])
}

fn obtain(drill: &mut Drill, client: &str, log: &dyn Fn() -> String) -> (Ipv4Addr, Ipv4Addr) {
    let l = drill.obtain(client, T).unwrap_or_else(|e| panic!("{client}: {e:#}\n{}", log()));
    (l.address, l.server_id)
}

#[test]
fn hub_and_spoke_each_server_fails_in_turn() {
    let lab = Lab::up(topology()).unwrap();
    let mut hub = start(&lab, HUB);
    let mut s1 = start(&lab, SPOKE1);
    let mut s2 = start(&lab, SPOKE2);
    hub.wait_ha(HUB_R1, "hot-standby", 1, HA_UP);
    hub.wait_ha(HUB_R2, "hot-standby", 1, HA_UP);
    s1.wait_ha(SPOKE1_R1, "hot-standby", 1, HA_UP);
    s2.wait_ha(SPOKE2_R2, "hot-standby", 1, HA_UP);

    let mut drill = Drill::new(&lab, "hub-and-spoke");
    // Normal: the hub serves net1 (its primary role), spoke 2 serves net2.
    let hub_log = || hub.process.log();
    let (a, sid) = obtain(&mut drill, "net1c1", &hub_log);
    assert_eq!(sid, ip("192.168.42.4"));
    let mut held = vec![a];
    let (a, sid) = obtain(&mut drill, "net2c1", &|| s2.process.log());
    assert_eq!(sid, ip("192.168.4.5"));
    held.push(a);
    // Each lease went to its relationship's partner only.
    assert!(common::lease_rows(&s1.leases).iter().any(|r| r[0] == held[0].to_string()));
    assert!(common::lease_rows(&hub.leases).iter().any(|r| r[0] == held[1].to_string()));
    assert!(!common::lease_rows(&s1.leases).iter().any(|r| r[0] == held[1].to_string()), "net2 lease leaked to spoke 1");

    // 1. Spoke 2 dies: the hub takes over net2 and still serves net1.
    s2.process.kill().unwrap();
    drill.fault("spoke 2 SIGKILL", ip("192.168.4.4"));
    hub.wait_ha(HUB_R2, "partner-down", 1, Duration::from_secs(20));
    let (a, sid) = obtain(&mut drill, "net2c2", &|| hub.process.log());
    assert_eq!(sid, ip("192.168.4.4"), "the hub serves net2 for the dead spoke");
    held.push(a);
    let (a, sid) = obtain(&mut drill, "net1c2", &|| hub.process.log());
    assert_eq!(sid, ip("192.168.42.4"));
    held.push(a);
    let mut s2 = start(&lab, SPOKE2);
    s2.wait_ha(SPOKE2_R2, "hot-standby", 1, HA_UP);
    hub.wait_ha(HUB_R2, "hot-standby", 2, HA_UP);
    assert!(common::lease_rows(&s2.leases).iter().any(|r| r[0] == held[2].to_string()), "spoke 2 did not resync");

    // 2. The hub dies: spoke 1 takes over net1; spoke 2 goes on with net2.
    hub.process.kill().unwrap();
    drill.fault("hub SIGKILL", ip("192.168.42.5"));
    s1.wait_ha(SPOKE1_R1, "partner-down", 1, Duration::from_secs(20));
    let (a, sid) = obtain(&mut drill, "net1c3", &|| s1.process.log());
    assert_eq!(sid, ip("192.168.42.5"));
    held.push(a);
    let again = drill.renew("net1c1", T).unwrap_or_else(|e| panic!("{e:#}\n{}", s1.process.log()));
    assert_eq!(again.address, held[0], "net1c1 kept its address through the hub's death");
    let (a, sid) = obtain(&mut drill, "net2c3", &|| s2.process.log());
    assert_eq!(sid, ip("192.168.4.5"));
    held.push(a);
    let mut hub = start(&lab, HUB);
    hub.wait_ha(HUB_R1, "hot-standby", 1, HA_UP);
    hub.wait_ha(HUB_R2, "hot-standby", 1, HA_UP);
    let rows = common::lease_rows(&hub.leases);
    for a in [held[4], held[5]] {
        assert!(rows.iter().any(|r| r[0] == a.to_string()), "hub did not resync {a}");
    }

    // 3. Spoke 1 dies: the hub serves net1 alone.
    s1.process.kill().unwrap();
    drill.fault("spoke 1 SIGKILL", ip("192.168.42.4"));
    hub.wait_ha(HUB_R1, "partner-down", 1, Duration::from_secs(20));
    let again = drill.renew("net1c3", T).unwrap_or_else(|e| panic!("{e:#}\n{}", hub.process.log()));
    assert_eq!((again.address, again.server_id), (held[4], ip("192.168.42.4")));

    let distinct: std::collections::BTreeSet<_> = held.iter().collect();
    assert_eq!(distinct.len(), held.len(), "duplicate address: {held:?}");
    // The hub is in both relationships: after its resyncs it holds every
    // lease any client was ACKed.
    drill.finish(&[("hub", &hub.leases)]).assert_ok();
}
