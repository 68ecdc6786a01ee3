//! Disk full under a running server, in the `venus` lab: xdhcpd (XDP
//! attached) keeps its lease file on a 1 MiB tmpfs the test fills to the
//! last byte and then empties — a real ENOSPC from `write(2)`.
//!
//! While the disk is full:
//! - a new client's DORA gets no ACK (no reply without a durable lease),
//!   and the withheld reply is counted (`xdhcp_store_failures_total`);
//! - a client that gives up there never comes back (a scripted DORA for a
//!   fresh MAC).
//!
//! When space returns:
//! - service resumes: the new client is leased an address;
//! - the copies agree: every lease in the file is in the in-memory store
//!   (`lease4-get-all`) for the same client, and the kernel's lease map
//!   (read with bpftool through the daemon's own map fd) holds exactly
//!   what memory holds; the failed row is not in the file;
//! - no address stays blocked by a failed write: the refused client's
//!   lease is not in memory (nor, then, in the kernel), and memory holds
//!   exactly the file's live leases (the store undoes a change whose row
//!   failed, `dhcp-user/src/leases/store/undo.rs`).

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{RawClient, T, Xdhcpd, msg_type, request, server_id, with_broadcast_flag};
use dhcproto::v4::{DhcpOption, MessageType};
use lab::{Lab, Tmpfs, venus};
use serde_json::{Value, json};

const TMPFS_BYTES: u64 = 1 << 20;

fn metrics(lab: &Lab) -> String {
    common::control_get(lab, venus::PRIMARY, "metrics")
}

fn store_failures(lab: &Lab) -> u64 {
    metrics(lab)
        .lines()
        .find(|l| l.starts_with("xdhcp_store_failures_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Live leases in memory: address → hardware address.
fn in_memory(lab: &Lab) -> BTreeMap<Ipv4Addr, String> {
    let url = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    let body = json!({"command": "lease4-get-all"}).to_string();
    let out = lab.run(venus::PRIMARY, &["curl", "-sS", "--max-time", "5", "-d", &body, &url]).unwrap().stdout;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let v = if v.is_array() { v[0].clone() } else { v };
    let leases = v["arguments"]["leases"].as_array().cloned().unwrap_or_default();
    leases
        .iter()
        .filter(|l| l["state"] == 0)
        .map(|l| (l["ip-address"].as_str().unwrap().parse().unwrap(), l["hw-address"].as_str().unwrap().to_owned()))
        .collect()
}

/// Live rows of the lease files (Kea's load order, the last row winning):
/// address → hardware address.
fn on_disk(leases: &std::path::Path, now: u64) -> BTreeMap<Ipv4Addr, String> {
    let mut rows = BTreeMap::new();
    for f in dhcp_user::leases::LeaseFiles::new(leases).load_order() {
        for r in common::lease_rows(&f) {
            rows.insert(r[0].parse::<Ipv4Addr>().unwrap(), r);
        }
    }
    rows.into_iter()
        .filter(|(_, r)| r[3] != "0" && r[9] == "0" && r[4].parse::<u64>().unwrap_or(0) > now)
        .map(|(a, r)| (a, r[1].clone()))
        .collect()
}

/// The kernel's lease map of `pid`: address → hardware address.
fn in_kernel(pid: u32) -> BTreeMap<Ipv4Addr, String> {
    let id = lab::bpf::map_of(pid, "XDHCP_LEASES").unwrap();
    let byte = |b: &Value| b.as_u64().unwrap() as u8;
    lab::bpf::dump(id)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let a: Vec<u8> = k["addr"].as_array().unwrap().iter().map(byte).collect();
            let hlen = v["hlen"].as_u64().unwrap() as usize;
            let hw: Vec<String> = v["hwaddr"].as_array().unwrap()[..hlen].iter().map(|b| format!("{:02x}", byte(b))).collect();
            (Ipv4Addr::new(a[0], a[1], a[2], a[3]), hw.join(":"))
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Fills the disk under a serving xdhcpd and checks what must hold while
/// it is full and after it empties (see the module doc).
#[test]
fn a_failed_write_leaves_no_lease_behind() {
    let lab = Lab::up(venus::topology(5).unwrap()).unwrap();
    let tmpfs = Tmpfs::mount(&lab.host_dir(venus::PRIMARY).unwrap().join("leases"), TMPFS_BYTES).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    let leases = tmpfs.path().join("leases4.csv");
    let mut server = Xdhcpd::start_with_leases(&lab, venus::PRIMARY, &cfg, &leases, &[]);
    let log = |s: &mut Xdhcpd| s.process.log();

    let first = lab.dhclient(&venus::client(1)).unwrap();
    first.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", log(&mut server)));

    let filler = tmpfs.fill().unwrap();
    assert!(tmpfs.free().unwrap() < 4096, "the tmpfs is not full");
    let before = store_failures(&lab);
    // The lease file's last page may still take a few rows; fresh clients
    // (each a DORA for a new MAC) fill it until a write fails. The first
    // client refused gives up there and never comes back.
    let c = RawClient::open(&lab, &venus::client(4), "eth0", venus::client_mac(4).0);
    let mut refused = None;
    for i in 0..200u8 {
        let mac = [0x02, 0x66, 0, 0, 0, i];
        let xid = 0x5000 + u32::from(i);
        let offer = c.exchange(&with_broadcast_flag(request(MessageType::Discover, mac, xid)), T).expect("no OFFER");
        assert_eq!(msg_type(&offer), Some(MessageType::Offer), "{offer:?}");
        let mut req = with_broadcast_flag(request(MessageType::Request, mac, xid));
        req.opts_mut().insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        req.opts_mut().insert(DhcpOption::ServerIdentifier(server_id(&offer).unwrap()));
        if c.exchange(&req, Duration::from_secs(2)).is_none() {
            refused = Some((i, offer.yiaddr()));
            break;
        }
    }
    let (rows_fitted, offered) = refused.expect("200 leases written to a full disk");
    eprintln!("{rows_fitted} leases fitted in the lease file's last page; {offered} refused");
    // A new dhclient client: no ACK either while nothing can be made durable.
    let newcomer = lab.dhclient(&venus::client(2)).unwrap();
    assert!(newcomer.obtain(Duration::from_secs(4)).is_err(), "ACKed with a full disk:\n{}", log(&mut server));
    let withheld = store_failures(&lab) - before;
    assert!(withheld >= 2, "{withheld} replies counted as withheld (store failures)");

    filler.release();
    // Service resumes.
    let l = newcomer.obtain(T).unwrap_or_else(|e| panic!("after space returned: {e:#}\n{}", log(&mut server)));
    assert_ne!(l.address, offered, "{l:?}");
    first.obtain(T).unwrap_or_else(|e| panic!("first client after space returned: {e:#}"));
    // Kernel writes are asynchronous (a task owns the map): give it a moment.
    std::thread::sleep(Duration::from_secs(2));

    let now = unix_now();
    let (memory, kernel, disk) = (in_memory(&lab), in_kernel(server.process.pid()), on_disk(&leases, now));
    eprintln!("memory {memory:?}\nkernel {kernel:?}\ndisk {disk:?}");
    // Nothing durable was lost, and the kernel answers from what memory holds.
    for (a, hw) in &disk {
        assert_eq!(memory.get(a), Some(hw), "{a} on disk for {hw}, in memory {:?}", memory.get(a));
    }
    assert_eq!(kernel, memory, "the kernel's map and memory disagree");
    assert!(!disk.contains_key(&offered), "{offered} on disk though its write failed: {disk:?}");
    // No address stays held by the writes that failed.
    assert!(!memory.contains_key(&offered), "{offered} stays held in memory after its write failed");
    assert_eq!(memory, disk, "memory and the lease file disagree");
    server.stop();
}
