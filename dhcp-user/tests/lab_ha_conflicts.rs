//! HA clock skew and lease conflicts on a real xdhcpd pair (venus lab,
//! hot-standby, XDP attached), resolved with no human action
//! (`crate::ha::recovery`, `crate::ha::conflict`, RELIABILITY.md):
//!
//! - the standby's clock goes 90 s ahead (a testing-only offset on the
//!   time its heartbeats carry and compare, `XDHCPD_TEST_HA_CLOCK_OFFSET_FILE`:
//!   the host clock is shared and never touched); both servers go to
//!   `terminated` as Kea does, the primary serves on alone; once the clock
//!   is right again both resync and return to hot-standby by themselves,
//!   with what the primary served meanwhile on the standby too;
//! - with the HA link cut, each server is given a lease for the same
//!   addresses for different clients (tie, standby newer, primary newer);
//!   once the link is back the pair converges on the rule's winner in both
//!   stores and returns to hot-standby; a partner update that loses is
//!   refused with Kea's result 1 and the winning lease;
//! - with a real Kea 2.2 primary, the same skew terminates both; Kea stays
//!   there (it never leaves by itself) and xdhcpd, after one attempt,
//!   waits in terminated without disturbing it; once the operator
//!   restarts Kea, xdhcpd leaves terminated and the pair resyncs into
//!   hot-standby (kea#1205 without restarting both).

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{RawClient, T, Xdhcpd, msg_type, request, server_id, with_broadcast_flag};
use dhcproto::v4::{DhcpOption, Message, MessageType};
use lab::{Kea, Lab, venus};
use serde_json::{Value, json};

/// waiting → syncing → ready → hot-standby on both sides.
const HA_UP: Duration = Duration::from_secs(30);

/// Starts xdhcpd in `host` with the venus config; `offset` names the
/// testing-only clock offset file.
fn start(lab: &Lab, host: &str, offset: Option<&PathBuf>) -> Xdhcpd {
    let dir = lab.host_dir(host).unwrap();
    let leases = dir.join("leases4.csv");
    let mut cfg = venus::kea_config(host).unwrap();
    cfg.lease_file(&leases).unwrap();
    let path = dir.join("xdhcpd.json");
    cfg.write(&path).unwrap();
    let mut cmd = lab.cmd(host, env!("CARGO_BIN_EXE_xdhcpd")).args(["run", "-c", path.to_str().unwrap()]);
    if let Some(f) = offset {
        cmd = cmd.env(dhcp_user::peer::skew::OFFSET_FILE_ENV, f);
    }
    let mut process = cmd.spawn("xdhcpd").unwrap();
    process.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", process.log()));
    Xdhcpd { process, leases }
}

fn logs(xs: &[&Xdhcpd]) -> String {
    xs.iter().map(|x| format!("--- {} ---\n{}", x.process.host(), x.process.log())).collect()
}

/// POSTs `body` to `url` from inside `host`; the answer's one element.
fn post(lab: &Lab, host: &str, url: &str, body: &Value) -> Value {
    let file = lab.host_dir(host).unwrap().join("command.json");
    std::fs::write(&file, body.to_string()).unwrap();
    let data = format!("@{}", file.display());
    let argv = ["curl", "-sS", "--max-time", "15", "-H", "Content-Type: application/json", "--data-binary", &data, url];
    let out = lab.run(host, &argv).unwrap().stdout;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    if v.is_array() { v[0].clone() } else { v }
}

/// A control command on `host`'s control listener.
fn control(lab: &Lab, host: &str, command: &str, arguments: Value) -> Value {
    let url = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    post(lab, host, &url, &json!({ "command": command, "service": ["dhcp4"], "arguments": arguments }))
}

/// address → hw-address of every live lease in `host`'s store.
fn holders(lab: &Lab, host: &str) -> BTreeMap<String, String> {
    let a = control(lab, host, "lease4-get-all", json!({ "subnets": [1] }));
    let leases = a["arguments"]["leases"].as_array().cloned().unwrap_or_default();
    leases
        .iter()
        .filter(|l| l["state"] == 0)
        .map(|l| (l["ip-address"].as_str().unwrap().to_owned(), l["hw-address"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// A REQUEST for `addr` from `mac` (broadcast flag set: the client has no
/// address), naming `server` (SELECTING) or none (INIT-REBOOT); the reply.
fn ask(lab: &Lab, mac: [u8; 6], addr: Ipv4Addr, server: Option<Ipv4Addr>) -> Message {
    ask_within(lab, mac, addr, server, T).unwrap_or_else(|| panic!("no answer to {mac:02x?} asking {addr} of {server:?}"))
}

/// [`ask`], `None` when nothing answers within `wait`.
fn ask_within(lab: &Lab, mac: [u8; 6], addr: Ipv4Addr, server: Option<Ipv4Addr>, wait: Duration) -> Option<Message> {
    let c = RawClient::open(lab, &venus::client(1), "eth0", mac);
    let xid = u32::from_be_bytes([mac[4], mac[5], addr.octets()[3], server.map_or(0, |s| s.octets()[3])]);
    let mut req = with_broadcast_flag(request(MessageType::Request, mac, xid));
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    if let Some(s) = server {
        req.opts_mut().insert(DhcpOption::ServerIdentifier(s));
    }
    c.exchange(&req, wait)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn clock_skew_terminates_then_the_pair_recovers_by_itself() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let offset = lab.host_dir(venus::STANDBY).unwrap().join("ha-clock-offset");
    std::fs::write(&offset, "0").unwrap();
    let mut p = start(&lab, venus::PRIMARY, None);
    let mut s = start(&lab, venus::STANDBY, Some(&offset));
    p.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let obtain = |n: usize, xs: &[&Xdhcpd]| {
        lab.dhclient(&venus::client(n)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(xs)))
    };
    let l1 = obtain(1, &[&p, &s]);
    assert!(s.last_row(l1.address).is_some(), "mutante1 not replicated\n{}", logs(&[&s]));

    // The standby's clock runs 90 s ahead: both see the skew over Kea's
    // 60 s and go to terminated, as Kea would.
    std::fs::write(&offset, "90").unwrap();
    p.wait_ha("lobezno", "terminated", 1, T);
    s.wait_ha("tormenta", "terminated", 1, T);
    for x in [&p, &s] {
        assert!(x.process.log().contains("ClockSkewTerminates"), "{}", x.process.log());
    }
    // Terminated as Kea: the primary serves its scope alone, sending the
    // standby nothing; the standby serves nothing.
    let l2 = obtain(2, &[&p, &s]);
    assert_eq!(l2.server_id, venus::PRIMARY_LAN);
    std::thread::sleep(Duration::from_secs(5));
    assert!(s.last_row(l2.address).is_none(), "a lease update crossed a terminated pair\n{}", logs(&[&s]));
    let state = |host| control(&lab, host, "status-get", json!({}))["arguments"]["high-availability"][0]["ha-servers"]["local"]["state"].clone();
    assert_eq!((state(venus::PRIMARY), state(venus::STANDBY)), (json!("terminated"), json!("terminated")), "still skewed");

    // The clock is fixed. Nobody restarts anything: after the settle
    // period (3 s here) the standby leaves first, the primary follows,
    // both resync and return to hot-standby.
    std::fs::write(&offset, "1").unwrap();
    for (x, name) in [(&mut s, "tormenta"), (&mut p, "lobezno")] {
        x.wait_ha(name, "waiting", 1, HA_UP); // the first waiting (start) is not a transition
        x.wait_ha(name, "syncing", 2, HA_UP);
        x.wait_ha(name, "hot-standby", 2, HA_UP);
        assert!(x.process.log().contains("LeavingTerminated"), "{}", x.process.log());
    }
    // What the primary served alone is on the standby now, and the pair
    // replicates again.
    let row = s.last_row(l2.address).unwrap_or_else(|| panic!("{} not synced\n{}", l2.address, logs(&[&p, &s])));
    assert_eq!(row[1], venus::client_mac(2).to_string(), "{row:?}");
    let l3 = obtain(3, &[&p, &s]);
    assert!(s.last_row(l3.address).is_some(), "not replicated after recovery\n{}", logs(&[&s]));
    p.stop();
    s.stop();
}

#[test]
fn conflicting_leases_from_a_split_converge_on_the_rule() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut p = start(&lab, venus::PRIMARY, None);
    let mut s = start(&lab, venus::STANDBY, None);
    p.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);

    // The HA link is cut: each server serves on its own (partner-down on
    // both sides) and gives the same address to a different client, both
    // ACKed: two clients with randomised MACs, each asking one server
    // for 192.168.50.183 by name.
    lab.cut_link(venus::PRIMARY, venus::HA).unwrap();
    p.wait_ha("lobezno", "partner-down", 1, HA_UP);
    s.wait_ha("tormenta", "partner-down", 1, HA_UP);
    let contested = Ipv4Addr::new(192, 168, 50, 183);
    let macs = [[0x0e, 0, 0, 0, 0, 1], [0x0e, 0, 0, 0, 0, 2]];
    for (mac, server) in macs.iter().zip([venus::PRIMARY_LAN, venus::STANDBY_LAN]) {
        let ack = ask(&lab, *mac, contested, Some(server));
        assert_eq!(msg_type(&ack), Some(MessageType::Ack), "{server}: {ack:?}\n{}", logs(&[&p, &s]));
        assert_eq!((ack.yiaddr(), server_id(&ack)), (contested, Some(server)));
    }
    // Who wins by the rule: the later cltt, the primary's on a tie.
    let cltt = |host: &str| {
        let l = control(&lab, host, "lease4-get", json!({ "ip-address": contested.to_string() }))["arguments"].clone();
        l["cltt"].as_u64().unwrap_or_else(|| panic!("{host}: {l}"))
    };
    let (pc, sc) = (cltt(venus::PRIMARY), cltt(venus::STANDBY));
    let (winner, loser) = if sc > pc { (macs[1], macs[0]) } else { (macs[0], macs[1]) };
    let hex = |m: [u8; 6]| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    // And leases set by the operator on each side, for exact times.
    let base = unix_now() + 3000;
    // (address, primary's expire, standby's expire, who must win)
    let cases = [
        ("192.168.50.180", base, base, venus::PRIMARY), // tie: the primary's copy
        ("192.168.50.181", base - 100, base, venus::STANDBY), // the standby's is newer
        ("192.168.50.182", base, base - 100, venus::PRIMARY), // the primary's is newer
    ];
    let mac = |host: &str, i: usize| format!("{}:00:00:00:00:{:02x}", if host == venus::PRIMARY { "0a" } else { "0b" }, i);
    for (i, (addr, pe, se, _)) in cases.iter().enumerate() {
        for (host, expire) in [(venus::PRIMARY, pe), (venus::STANDBY, se)] {
            let a = control(&lab, host, "lease4-add", json!({
                "ip-address": addr, "hw-address": mac(host, i), "subnet-id": 1, "valid-lft": 3600, "expire": expire,
            }));
            assert_eq!(a["result"], 0, "{host}: {a}");
        }
    }

    // The link is back: both served clients the other never heard of
    // (unsent updates), so both resync, and the pair returns to
    // hot-standby.
    lab.restore_link(venus::PRIMARY, venus::HA).unwrap();
    p.wait_ha("lobezno", "hot-standby", 2, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    p.wait_ha("lobezno", "syncing", 2, HA_UP);
    s.wait_ha("tormenta", "syncing", 2, HA_UP);
    let (on_p, on_s) = (holders(&lab, venus::PRIMARY), holders(&lab, venus::STANDBY));
    let c = contested.to_string();
    assert_eq!((on_p.get(&c), on_s.get(&c)), (Some(&hex(winner)), Some(&hex(winner))), "cltt {pc} vs {sc}\n{}", logs(&[&p, &s]));
    // The losing client is told at its next request (INIT-REBOOT): NAK;
    // the winner keeps the address.
    let nak = ask(&lab, loser, contested, None);
    assert_eq!(msg_type(&nak), Some(MessageType::Nak), "{nak:?}");
    let ack = ask(&lab, winner, contested, None);
    assert_eq!((msg_type(&ack), ack.yiaddr()), (Some(MessageType::Ack), contested));
    for (i, (addr, _, _, winner)) in cases.iter().enumerate() {
        let want = mac(winner, i);
        assert_eq!(on_p.get(*addr), Some(&want), "{addr} on the primary\n{on_p:?}\n{}", logs(&[&p, &s]));
        assert_eq!(on_s.get(*addr), Some(&want), "{addr} on the standby\n{on_s:?}\n{}", logs(&[&p, &s]));
    }
    // No address is held by two clients across the stores.
    for (addr, hw) in &on_p {
        if let Some(other) = on_s.get(addr) {
            assert_eq!(hw, other, "{addr} held by two clients");
        }
    }

    // A partner's lease4-update that loses (older, another client) is
    // refused with Kea's failure code and the winning lease; the store
    // keeps the winner. One that wins overwrites, as in Kea.
    let peer = format!("http://{}:8000/", venus::STANDBY_HA);
    let (addr, _, _, winner) = cases[1];
    let update = |hw: &str, expire: u64| {
        json!({ "command": "lease4-update", "service": ["dhcp4"], "arguments": {
            "ip-address": addr, "hw-address": hw, "subnet-id": 1, "valid-lft": 3600, "expire": expire,
            "force-create": true, "fqdn-fwd": false, "fqdn-rev": false, "hostname": "", "state": 0 } })
    };
    let a = post(&lab, venus::PRIMARY, &peer, &update("0c:00:00:00:00:01", base - 500));
    assert_eq!(a["result"], 1, "{a}");
    assert!(a["text"].as_str().unwrap().starts_with("IPv4 lease conflict:"), "{a}");
    assert_eq!(a["arguments"]["lease"]["hw-address"], json!(mac(winner, 1)), "{a}");
    assert_eq!(holders(&lab, venus::STANDBY).get(addr), Some(&mac(winner, 1)));
    let a = post(&lab, venus::PRIMARY, &peer, &update("0c:00:00:00:00:01", base + 10));
    assert_eq!((a["result"].clone(), a["text"].clone()), (json!(0), json!("IPv4 lease updated.")), "{a}");

    // A live conflict on the sender's side: the standby holds .190 for a
    // client with a later cltt than anything the primary commits now (its
    // clock ahead, within Kea's limits), which the primary never heard of
    // (an operator's lease4-add is not replicated). A client asks the
    // primary for .190: the primary commits, the standby refuses the
    // update with the winning lease, the primary drops its ACK and stores
    // the winner; the client's retry is NAKed. Both stores agree.
    let late = Ipv4Addr::new(192, 168, 50, 190);
    let now = unix_now();
    let a = control(&lab, venus::STANDBY, "lease4-add", json!({
        "ip-address": late.to_string(), "hw-address": "0d:00:00:00:00:01", "subnet-id": 1, "valid-lft": 3600,
        "expire": now + 3600 + 50,
    }));
    assert_eq!(a["result"], 0, "{a}");
    let asker = [0x0d, 0, 0, 0, 0, 2];
    let first = ask_within(&lab, asker, late, Some(venus::PRIMARY_LAN), Duration::from_secs(5));
    assert!(first.is_none(), "the primary ACKed an address its partner holds for another client: {first:?}");
    let l = late.to_string();
    for host in venus::SERVERS {
        let h = holders(&lab, host);
        assert_eq!(h.get(&l).map(String::as_str), Some("0d:00:00:00:00:01"), "{host}: {h:?}\n{}", logs(&[&p, &s]));
    }
    assert!(p.process.log().contains("lease conflict rule"), "{}", p.process.log());
    let retry = ask(&lab, asker, late, None);
    assert_eq!(msg_type(&retry), Some(MessageType::Nak), "{retry:?}");
    // The pair is still in its normal state and serves.
    assert!(!p.process.log().contains("→ terminated") && !s.process.log().contains("→ terminated"));
    let l = lab.dhclient(&venus::client(2)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&p, &s])));
    assert_eq!(l.server_id, venus::PRIMARY_LAN);
    p.stop();
    s.stop();
}

#[test]
fn kea_primary_stays_terminated_and_xdhcpd_follows_its_restart() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let offset = lab.host_dir(venus::STANDBY).unwrap().join("ha-clock-offset");
    std::fs::write(&offset, "0").unwrap();
    let mut kea = Kea::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap()).unwrap();
    let mut s = start(&lab, venus::STANDBY, Some(&offset));
    let kea_log = |k: &mut Kea| k.process().log();
    kea.wait_ha_state("HOT-STANDBY", HA_UP).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);

    // xdhcpd's HA clock runs 90 s ahead: Kea sees it in our heartbeat
    // answers, we in its; both terminate.
    std::fs::write(&offset, "90").unwrap();
    kea.wait_ha_state("TERMINATED", T).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    s.wait_ha("tormenta", "terminated", 1, T);

    // The clock is right again. Kea stays terminated; xdhcpd (not the
    // primary) tries once, sees Kea stay, and returns to terminated
    // without trying again within ten settle periods (30 s here).
    std::fs::write(&offset, "0").unwrap();
    s.wait_ha("tormenta", "terminated", 2, HA_UP);
    assert!(s.process.log().contains("PartnerStaysTerminated"), "{}", s.process.log());
    std::thread::sleep(Duration::from_secs(10));
    let waits = s.process.log().matches("→ waiting (").count();
    assert_eq!(waits, 1, "xdhcpd retried within the backoff:\n{}", s.process.log());
    let kea_text = kea_log(&mut kea);
    assert!(!kea_text.contains("from TERMINATED to"), "Kea left terminated:\n{kea_text}");
    // Kea serves its scope throughout, as Kea in terminated does.
    let l = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{kea_text}"));
    assert_eq!(l.server_id, venus::PRIMARY_LAN);

    // The operator restarts Kea (only Kea): it comes back in waiting, and
    // xdhcpd, seeing it out of terminated, leaves too; the pair resyncs
    // and returns to hot-standby.
    kea.process().kill().unwrap();
    let mut kea = Kea::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap()).unwrap();
    kea.wait_ha_state("HOT-STANDBY", HA_UP).unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", kea_log(&mut kea), s.process.log()));
    s.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    s.wait_ha("tormenta", "syncing", 2, HA_UP);
    let row = s.last_row(l.address).unwrap_or_else(|| panic!("{} served by Kea alone not synced\n{}", l.address, s.process.log()));
    assert_eq!(row[1], venus::client_mac(1).to_string());
    let l2 = lab.dhclient(&venus::client(2)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", kea_log(&mut kea)));
    assert_eq!(l2.server_id, venus::PRIMARY_LAN);
    s.stop();
}
