//! Load in the `venus` lab: real `perfdhcp` (Kea 2.2) runs 10,000 DORA
//! exchanges for 10,000 distinct clients against xdhcpd in lobezno, and
//! every one of them must complete, each with its own address, durably.
//!
//! Addressing. perfdhcp acts as a relay: it sends from port 67 with giaddr
//! = its own interface address, and xdhcpd answers to giaddr:67. It runs in
//! mutante1 with the static address [`RELAY`] (lab traffic only: no default
//! route, the lab has none). xdhcpd picks the subnet by giaddr, so the
//! venus subnet is widened from 192.168.50.0/24 to [`SUBNET`], which still
//! contains the LAN (so replies to giaddr stay on-link and the routers,
//! DNS and reservation options of the checked-in config stay valid), with
//! a pool of ~49,000 addresses outside the LAN /24. The valid lifetime goes
//! from venus's 60 s to an hour so nothing expires (and is handed out
//! again) while the test runs. `cargo xtask bench alloc` renders the same
//! config for xdhcpd and Kea.
//!
//! The lease file is on tmpfs. The daemon still fdatasyncs every batch
//! before its ACKs, but on a shared machine `fdatasync` on the disk stalls
//! for seconds whenever others write heavily (its few KB queue behind their
//! writeback on the one virtual disk): measured up to 10.8 s here while
//! builds ran. A real client rides that out by retransmitting; perfdhcp
//! does not retransmit and would count the late ACKs as drops. This test
//! is about allocation under load; surviving a crash is `lease_store_kill`'s.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::perfdhcp::{Exchange, parse_report};
use lab::{Lab, process::Process, venus};
use serde_json::json;

const T: Duration = Duration::from_secs(15);
/// Exchanges, each from its own client (`-R` = `-n`).
const CLIENTS: u32 = 10_000;
/// DORA exchanges started per second: 2,000 packets/s into the server
/// (DISCOVERs and REQUESTs), 10 s of load. A debug xdhcpd needs about 60 %
/// of a core for it and kept up with two extra CPU hogs running.
const RATE: u32 = 1_000;
/// perfdhcp's address in mutante1, its giaddr.
const RELAY: &str = "192.168.50.250/24";
const SUBNET: &str = "192.168.0.0/16";
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(192, 168, 64, 0);
const POOL_LAST: Ipv4Addr = Ipv4Addr::new(192, 168, 255, 254);

/// The venus primary's config, no HA, widened for perfdhcp (see the top).
fn write_config(lab: &Lab, leases: &Path) -> PathBuf {
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap().lease_file(leases).unwrap();
    cfg.set("/Dhcp4/valid-lifetime", json!(3600)).unwrap();
    cfg.set("/Dhcp4/subnet4/0/subnet", json!(SUBNET)).unwrap();
    cfg.set("/Dhcp4/subnet4/0/pools", json!([{ "pool": format!("{POOL_FIRST}-{POOL_LAST}") }])).unwrap();
    let path = lab.host_dir(venus::PRIMARY).unwrap().join("xdhcpd-perfdhcp.json");
    cfg.write(&path).unwrap();
    path
}

/// Active leases in a Kea memfile CSV, last row per address winning and
/// rows with valid lifetime 0 (deletions) removing: address → hwaddr.
/// Parsed here, independently of the daemon's own loader.
fn active_leases(path: &Path) -> HashMap<Ipv4Addr, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut leases = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with("address,") && !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let address: Ipv4Addr = f[0].parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        if f[3] == "0" {
            leases.remove(&address);
        } else {
            leases.insert(address, f[1].to_owned());
        }
    }
    leases
}

/// tmpfs if there is one (see the top), else the temp dir.
fn lease_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// Lease dirs are `<prefix><pid>-<random>`: the lab's signal handler ends
/// the process without unwinding, so a killed run cannot remove its own.
const LEASE_DIR_PREFIX: &str = "xdhcp-perfdhcp-";

/// Removes lease dirs of runs whose process is gone.
fn sweep_stale_lease_dirs(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(LEASE_DIR_PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_xdhcpd(lab: &Lab, config: &Path) -> Process {
    let argv = [env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", config.to_str().unwrap()];
    let mut p = lab.spawn(venus::PRIMARY, "xdhcpd", &argv).unwrap();
    p.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", p.log()));
    p
}

#[test]
fn ten_thousand_dora_no_drops_distinct_addresses() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let relay = venus::client(1);
    lab.run(&relay, &["ip", "addr", "add", RELAY, "dev", "eth0"]).unwrap();
    sweep_stale_lease_dirs(&lease_dir());
    let prefix = format!("{LEASE_DIR_PREFIX}{}-", std::process::id());
    let tmpfs = tempfile::Builder::new().prefix(&prefix).tempdir_in(lease_dir()).unwrap();
    let leases = tmpfs.path().join("leases4.csv");
    let config = write_config(&lab, &leases);
    let mut server = start_xdhcpd(&lab, &config);

    let (n, rate) = (CLIENTS.to_string(), RATE.to_string());
    let server_addr = venus::PRIMARY_LAN.to_string();
    // -l eth0: relay from mutante1's address; -R = -n: every exchange a new
    // client (perfdhcp numbers MACs sequentially); -p: stop sending after
    // 60 s whatever happens; -d 5 -d 5: an OFFER or ACK counts as lost only
    // after 5 s (the first -d is DISCOVER-OFFER's, the second
    // REQUEST-ACK's, which otherwise stays at 1 s); -W 5 s: after the last
    // DISCOVER, wait for replies still in flight instead of counting them
    // as drops (perfdhcp waits all of it, it never sees a DORA run as
    // complete); -u: perfdhcp checks no address is handed out twice.
    let argv = [
        "-4",
        "-l",
        "eth0",
        "-r",
        &rate,
        "-n",
        &n,
        "-R",
        &n,
        "-p",
        "60",
        "-d",
        "5",
        "-d",
        "5",
        "-W",
        "5000000",
        "-u",
        &server_addr,
    ];
    let out = lab.cmd(&relay, "perfdhcp").args(argv).timeout(Duration::from_secs(120)).output().unwrap();
    let text = format!("{out}");
    let report = parse_report(&out.stdout).unwrap_or_else(|| panic!("no perfdhcp report:\n{text}"));
    eprintln!("perfdhcp {}: {report:?}", argv.join(" "));

    let n = u64::from(CLIENTS);
    // Orphans (late duplicates) and delays aside. perfdhcp's sending
    // thread may overshoot -n by one exchange on a loaded machine; with
    // -R n that one is client 1 again, rightly given client 1's address,
    // which perfdhcp then counts as non-unique. The lease file below shows
    // one distinct address per client either way.
    let (d, r) = (report.discover_offer, report.request_ack);
    let extra = d.sent.saturating_sub(n);
    let counts = |x: Exchange| (x.sent, x.received, x.drops, x.rejected, x.non_unique);
    let expect = (n + extra, n + extra, 0, 0, extra);
    assert!(
        extra <= 1 && counts(d) == expect && counts(r) == expect,
        "every DISCOVER offered and every REQUEST acked, none rejected or duplicated (expected {expect:?})\n{text}\n{}",
        server.log()
    );
    assert!(out.success(), "perfdhcp reported failure\n{text}");

    // Every ACK was sent after its row was fdatasynced; stop and read them.
    server.stop(T).unwrap();
    let log = server.log();
    assert!(!log.contains("ERROR"), "{log}");
    let active = active_leases(&leases);
    let macs: HashSet<&String> = active.values().collect();
    assert_eq!(active.len(), CLIENTS as usize, "one lease per client in {}", leases.display());
    assert_eq!(macs.len(), CLIENTS as usize, "an address per client, none shared");
    let outside: Vec<_> = active.keys().filter(|a| !(POOL_FIRST..=POOL_LAST).contains(*a)).collect();
    assert!(outside.is_empty(), "leases outside the pool: {outside:?}");
}
