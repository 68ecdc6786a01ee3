//! The wall clock steps an hour forward and an hour back while a lease is
//! live, in the `venus` lab, with XDP attached. The host's clock is never
//! touched (other tests share it): xdhcpd runs with the test-only hook
//! `XDHCPD_TEST_CLOCK_OFFSET_FILE` (`dhcp-user/src/clock.rs`), a file whose
//! number of seconds it adds to its own wall clock — the store's, the lease
//! file's and the kernel's clock offset alike, as a real step would.
//!
//! After each step:
//! - the daemon compensates: the lease's expiry moved by the step in
//!   memory, in the lease file and in the kernel's map;
//! - no lease expired early: the lease is still live in the store a few
//!   reclamation passes later; on the kernel's clock (boot clock plus the
//!   offset in its settings map) it has its time left too, and a second
//!   client's (dhclient's) renewals are answered by the kernel, none
//!   passed to the daemon as expired;
//! - none lives on: its time left is at most its lifetime.
//!
//! At the end, with no more renewals, the lease expires on time: it leaves
//! memory and the kernel's map within its lifetime plus a margin.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{RawClient, T, Xdhcpd, msg_type, request, server_id, with_broadcast_flag};
use dhcproto::v4::{DhcpOption, MessageType};
use lab::{Lab, venus};
use serde_json::json;

const LIFETIME: u64 = 30;
const RENEW: u64 = 4;
const HOUR: i64 = 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The store's expiry of `addr` (`cltt + valid-lft`), if it holds a live
/// (default-state) lease for it.
fn in_memory(lab: &Lab, addr: Ipv4Addr) -> Option<u64> {
    let v = common::control_command(lab, venus::PRIMARY, "lease4-get-all");
    let leases = v["arguments"]["leases"].as_array().cloned().unwrap_or_default();
    leases
        .iter()
        .find(|l| l["ip-address"] == addr.to_string() && l["state"] == 0)
        .map(|l| l["cltt"].as_u64().unwrap() + l["valid-lft"].as_u64().unwrap())
}

/// The kernel's lease map of `pid`: address → expiry.
fn in_kernel(pid: u32) -> BTreeMap<Ipv4Addr, u64> {
    let id = lab::bpf::map_of(pid, "XDHCP_LEASES").unwrap();
    lab::bpf::dump(id)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let a: Vec<u8> = k["addr"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            (Ipv4Addr::new(a[0], a[1], a[2], a[3]), v["expire"].as_u64().unwrap())
        })
        .collect()
}

/// The lease file's newest expiry for `addr`.
fn on_disk(server: &Xdhcpd, addr: Ipv4Addr) -> Option<u64> {
    server.last_row(addr).map(|r| r[4].parse().unwrap())
}

/// The kernel's count of `outcome` so far (`xdhcp_packets_total`, path
/// xdp): `answered_ack` (renewals it answered), `passed_expired`
/// (renewals of leases expired on its clock, passed to the daemon).
fn kernel_count(lab: &Lab, outcome: &str) -> u64 {
    let label = format!(r#"type="{outcome}""#);
    common::control_get(lab, venus::PRIMARY, "metrics")
        .lines()
        .filter(|l| l.starts_with("xdhcp_packets_total{") && l.contains(r#"path="xdp""#) && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn kernel_acks(lab: &Lab) -> u64 {
    kernel_count(lab, "answered_ack")
}

/// The kernel's clock now, unix seconds: the boot clock plus the offset
/// the daemon keeps in its settings map.
fn kernel_now(pid: u32) -> i64 {
    let id = lab::bpf::map_of(pid, "XDHCP_SETTINGS").unwrap();
    let (_, v) = lab::bpf::dump(id).unwrap().into_iter().next().expect("no settings entry");
    let offset = v["unix_minus_boot_ns"].as_i64().unwrap_or_else(|| panic!("no offset in {v}"));
    let (_, boot) = dhcp_user::clock::wall_and_boot_ns();
    ((boot + i128::from(offset)) / 1_000_000_000) as i64
}

/// Waits until the daemon's log holds `needle` `n` times.
fn wait_log(server: &mut Xdhcpd, needle: &str, n: usize) {
    let until = Instant::now() + T;
    while server.process.log().matches(needle).count() < n {
        assert!(Instant::now() < until, "no {n}× {needle:?} in the log:\n{}", server.process.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn clock_steps_move_the_leases_none_expires_early_none_lives_on() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    cfg.set("/Dhcp4/valid-lifetime", LIFETIME.into()).unwrap();
    cfg.set("/Dhcp4/renew-timer", RENEW.into()).unwrap();
    cfg.set("/Dhcp4/rebind-timer", (LIFETIME * 3 / 4).into()).unwrap();
    cfg.set(
        "/Dhcp4/expired-leases-processing",
        json!({"reclaim-timer-wait-time": 1, "flush-reclaimed-timer-wait-time": 1, "hold-reclaimed-time": 0}),
    )
    .unwrap();
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let offset_file = dir.join("clock-offset");
    std::fs::write(&offset_file, "0\n").unwrap();
    let hook = [(dhcp_user::clock::TEST_OFFSET_FILE_ENV, offset_file.to_str().unwrap())];
    let mut server = Xdhcpd::start_with_env(&lab, venus::PRIMARY, &cfg, &dir.join("leases4.csv"), &[], &hook);
    let pid = server.process.pid();

    // A client renewing every few seconds, for the kernel to answer.
    let renewing = lab.dhclient(&venus::client(2)).unwrap();
    renewing.obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.process.log()));
    renewing.wait_renewal(T).unwrap();
    assert!(kernel_acks(&lab) > 0, "the kernel answers no renewal before any step");

    // A lease that is not renewed, by DORA.
    let mac = venus::client_mac(1).0;
    let c = RawClient::open(&lab, &venus::client(1), "eth0", mac);
    let offer = c.exchange(&with_broadcast_flag(request(MessageType::Discover, mac, 0x7001)), T).expect("no OFFER");
    let addr = offer.yiaddr();
    let mut req = with_broadcast_flag(request(MessageType::Request, mac, 0x7001));
    req.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    req.opts_mut().insert(DhcpOption::ServerIdentifier(server_id(&offer).unwrap()));
    let ack = c.exchange(&req, T).expect("no ACK");
    assert_eq!(msg_type(&ack), Some(MessageType::Ack));
    std::thread::sleep(Duration::from_secs(1));
    let before = in_memory(&lab, addr).expect("no lease in memory");
    assert_eq!(in_kernel(pid).get(&addr), Some(&before), "kernel and memory disagree before any step");

    let mut daemon_offset = 0i64;
    for (step, dir, n) in [(HOUR, "forward", 1), (-HOUR, "back", 2)] {
        let expire = in_memory(&lab, addr).expect("lease gone before the step");
        let expired_in_kernel = kernel_count(&lab, "passed_expired");
        daemon_offset += step;
        std::fs::write(&offset_file, format!("{daemon_offset}\n")).unwrap();
        wait_log(&mut server, &format!("the wall clock stepped {dir} by 3600 s"), 1);
        wait_log(&mut server, "kernel lease entries moved with the clock step", n);

        let moved = expire.checked_add_signed(step).unwrap();
        assert_eq!(in_memory(&lab, addr), Some(moved), "memory after the step {dir}");
        assert_eq!(in_kernel(pid).get(&addr), Some(&moved), "the kernel's map after the step {dir}");
        assert_eq!(on_disk(&server, addr), Some(moved), "the lease file after the step {dir}");
        // The daemon's clock is the host's plus the offset: the lease has
        // as much time left as before the step, not an hour more or less.
        let left = moved as i64 - (unix_now() as i64 + daemon_offset);
        assert!(left > 0 && left <= LIFETIME as i64, "{left} s left after the step {dir}");
        let left = moved as i64 - kernel_now(pid);
        assert!(left > 0 && left <= LIFETIME as i64, "{left} s left on the kernel's clock after the step {dir}");

        // Several reclamation passes later it is still live, and the
        // kernel (which answers only live leases) renews it.
        std::thread::sleep(Duration::from_secs(3));
        assert!(in_memory(&lab, addr).is_some(), "reclaimed early after the step {dir}:\n{}", server.process.log());
        let acks = kernel_acks(&lab);
        renewing.wait_renewal(T).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let xdp: Vec<String> = common::control_get(&lab, venus::PRIMARY, "metrics")
            .lines()
            .filter(|l| l.contains(r#"path="xdp""#) && !l.ends_with(" 0"))
            .map(str::to_owned)
            .collect();
        assert!(kernel_acks(&lab) > acks, "the kernel answered no renewal after the step {dir}: {xdp:?}");
        assert_eq!(kernel_count(&lab, "passed_expired"), expired_in_kernel, "a lease expired early in the kernel: {xdp:?}");
        assert_eq!(in_memory(&lab, addr), Some(moved), "the lease that is not renewed did not change");
    }

    // Not renewed: it expires on time, in memory and in the kernel.
    let expire = in_memory(&lab, addr).unwrap();
    let until = Instant::now() + Duration::from_secs(LIFETIME + 10);
    while in_memory(&lab, addr).is_some() || in_kernel(pid).contains_key(&addr) {
        assert!(Instant::now() < until, "the lease outlived its expiry {expire}:\n{}", server.process.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(unix_now() + 1 >= expire, "gone before its expiry {expire}");
    server.stop();
}
