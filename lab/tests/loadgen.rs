//! The renewal load generator and the bare echo against real kernels and a
//! real xdhcpd (root):
//!
//! - the echo program, run with BPF_PROG_TEST_RUN, swaps exactly what it
//!   should and passes everything else;
//! - attached to lobezno's veth, it echoes every request the load
//!   generator sends from mutante1, and the load generator counts them;
//! - against xdhcpd with its XDP program, a few thousand renewals of
//!   leases read from a Kea CSV come back as valid ACKs, and the kernel's
//!   own counter of ACKs it answered covers every one of them.
//!
//! xdhcpd is not built by this crate: the test takes `$XDHCPD`, else the
//! newest of `target/{debug,release}/xdhcpd` (a workspace `cargo test` or
//! `cargo xtask build` leaves one there).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use lab::loadgen::{self, Options, Parsed};
use lab::xdp_echo::{EchoProgram, XDP_PASS, XDP_TX};
use lab::{Ipv4Cidr, Lab, venus};

const T: Duration = Duration::from_secs(15);
const SUBNET: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16);
const FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 1);

fn xdhcpd() -> PathBuf {
    if let Some(p) = std::env::var_os("XDHCPD") {
        return PathBuf::from(p);
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("xdhcpd"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .expect("no xdhcpd binary: set XDHCPD or run `cargo build -p dhcp-user` first")
}

fn lab_with_clients(clients: &[loadgen::Client]) -> Lab {
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    loadgen::make_reachable(&lab, venus::PRIMARY, "eth0", SUBNET, clients).unwrap();
    loadgen::prepare_client(&lab, &venus::client(1), "eth0").unwrap();
    lab
}

#[test]
fn echo_program_swaps_addresses_and_ports_of_udp_to_67_only() {
    let echo = EchoProgram::load().unwrap_or_else(|e| panic!("{e:#}"));
    let server = loadgen::Server { mac: [2, 0, 0, 0, 0x50, 2], ip: venus::PRIMARY_LAN };
    let c = loadgen::clients(1, FIRST)[0];
    let req = loadgen::renew_frame(&c, &server, 42);
    let (verdict, out) = echo.test_run(&req).unwrap();
    assert_eq!(verdict, XDP_TX);
    let mut expect = req.clone();
    expect[0..6].copy_from_slice(&req[6..12]);
    expect[6..12].copy_from_slice(&req[0..6]);
    expect[26..30].copy_from_slice(&req[30..34]);
    expect[30..34].copy_from_slice(&req[26..30]);
    expect[34..36].copy_from_slice(&req[36..38]);
    expect[36..38].copy_from_slice(&req[34..36]);
    assert_eq!(out, expect);
    let Parsed::Reply(r) = loadgen::parse_reply(&out) else { panic!("echo is not read as a reply") };
    assert_eq!(loadgen::judge(&r, 42, 1, &[c]), loadgen::Verdict::Echo(0));

    let mut to_68 = req.clone();
    to_68[36..38].copy_from_slice(&68u16.to_be_bytes());
    let mut arp = req.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    for (what, frame) in [("UDP to 68", &to_68[..]), ("ARP", &arp[..]), ("runt", &req[..40])] {
        assert_eq!(echo.test_run(frame).unwrap().0, XDP_PASS, "{what}");
    }
}

#[test]
fn echo_on_the_server_veth_returns_every_request() {
    let clients = loadgen::clients(500, FIRST);
    let lab = lab_with_clients(&clients);
    let echo = EchoProgram::load().unwrap();
    let attached = echo.attach(&lab.netns(venus::PRIMARY).unwrap(), "eth0").unwrap_or_else(|e| panic!("{e:#}"));
    let server = loadgen::server_of(&lab, venus::PRIMARY, venus::LAN).unwrap();
    let opts = Options::window(&lab.netns(&venus::client(1)).unwrap(), "eth0", server, 64, 5_000, T);
    let stats = loadgen::run(&clients, &opts).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{stats:?}, {:.0} echoes/s", stats.echoes_per_s());
    drop(attached);
    assert_eq!(stats.sent, 5_000);
    assert_eq!((stats.acked, stats.naks, stats.invalid, stats.duplicates), (0, 0, 0, 0));
    // On a shared machine a frame can be lost in a full ring; not many.
    assert!(stats.echoed >= 4_900, "{stats:?}");
}

/// `(AnsweredAck, N)` in xdhcpd's shutdown line of XDP counters.
fn answered_acks(log: &str) -> u64 {
    let line =
        log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find("(AnsweredAck, ").unwrap_or_else(|| panic!("no AnsweredAck in {line}"));
    line[at + "(AnsweredAck, ".len()..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn xdhcpd_answers_renewals_in_the_kernel_and_loadgen_counts_them() {
    let clients = loadgen::clients(1_000, FIRST);
    let lab = lab_with_clients(&clients);
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let lease_file = dir.join("leases4.csv");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    std::fs::write(&lease_file, loadgen::lease_csv(&clients, 1, 86_400, now + 86_400)).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap().lease_file(&lease_file).unwrap();
    cfg.set("/Dhcp4/valid-lifetime", 86_400.into()).unwrap();
    cfg.set("/Dhcp4/subnet4/0/subnet", SUBNET.to_string().into()).unwrap();
    cfg.set("/Dhcp4/subnet4/0/pools/0/pool", "192.168.64.0-192.168.255.254".into()).unwrap();
    let cfg_path = dir.join("xdhcpd.json");
    cfg.write(&cfg_path).unwrap();
    let bin = xdhcpd();
    let mut server =
        lab.spawn(venus::PRIMARY, "xdhcpd", &[bin.to_str().unwrap(), "run", "-c", cfg_path.to_str().unwrap()]).unwrap();
    server.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert!(server.log().contains("attach mode: native XDP on eth0"), "{}", server.log());

    let target = loadgen::server_of(&lab, venus::PRIMARY, venus::LAN).unwrap();
    let opts = Options::window(&lab.netns(&venus::client(1)).unwrap(), "eth0", target, 64, 3_000, T);
    let stats = loadgen::run(&clients, &opts).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{stats:?}, {:.0} ACKs/s", stats.acks_per_s());
    server.stop(T).unwrap();
    let log = server.log();
    let kernel = answered_acks(&log);
    eprintln!("kernel AnsweredAck = {kernel}");
    assert_eq!(stats.sent, 3_000);
    assert_eq!((stats.naks, stats.invalid, stats.echoed, stats.duplicates), (0, 0, 0, 0), "{stats:?}");
    assert!(stats.acked >= 2_900, "nearly every renewal ACKed: {stats:?}\n{log}");
    assert!(kernel >= stats.acked, "every counted ACK came from the kernel: {kernel} < {}", stats.acked);
    assert!(kernel <= stats.sent, "the kernel answered nothing but our renewals: {kernel} > {}", stats.sent);
}
