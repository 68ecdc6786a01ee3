//! The fast path end to end in the venus lab: real dhclient renewals are
//! answered by the XDP program (its counters prove it) and accepted by
//! dhclient; each renewal reaches the lease file through the ring buffer;
//! and after a seeded random workload every entry of the kernel's lease map
//! matches the store.

use std::{collections::BTreeMap, net::Ipv4Addr, process::Command, time::Duration};

use dhcp_user::{
    config,
    fastpath::lease_entry,
    glue,
    leases::{LeaseStore, StoreConfig},
};
use lab::{Lab, venus};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);

/// Tiny deterministic generator (xorshift), so a failing run can be replayed
/// with `LAB_XDP_SEED`.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The id of the XDHCP_LEASES map held open by process `pid` (its
/// `/proc/PID/fdinfo` lists the map id of each BPF map descriptor), so tests
/// running side by side never read each other's map.
fn leases_map_of(pid: u32) -> u64 {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        if let Some(id) = info.lines().find_map(|l| l.strip_prefix("map_id:")) {
            ids.push(id.trim().parse::<u64>().unwrap());
        }
    }
    for id in &ids {
        let out = Command::new("bpftool").args(["-j", "map", "show", "id", &id.to_string()]).output().expect("bpftool");
        let m: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if m["name"] == "XDHCP_LEASES" {
            return *id;
        }
    }
    panic!("pid {pid} holds no XDHCP_LEASES map (map ids {ids:?})")
}

/// The map as `bpftool map dump` prints it (BTF-formatted fields).
fn dump(map_id: u64) -> BTreeMap<Ipv4Addr, Value> {
    let out = Command::new("bpftool").args(["-j", "map", "dump", "id", &map_id.to_string()]).output().unwrap();
    let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = &e["formatted"];
            let a: Vec<u8> = f["key"]["addr"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            (Ipv4Addr::new(a[0], a[1], a[2], a[3]), f["value"].clone())
        })
        .collect()
}

fn counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("XDP counters")).unwrap_or_else(|| panic!("no counters in\n{log}"));
    let at = line.find(&format!("({name}, ")).unwrap_or_else(|| panic!("{name} not in {line}"));
    line[at + name.len() + 3..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn renewals_are_answered_in_the_kernel_and_the_map_matches_the_store() {
    let seed: u64 = std::env::var("LAB_XDP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234);
    eprintln!("LAB_XDP_SEED={seed}");
    let lab = Lab::up(venus::topology(5).unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let lease_file = dir.join("leases4.csv");
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    // Short timers so dhclient renews (unicast, at T1) within the test.
    cfg.without_ha()
        .unwrap()
        .lease_file(&lease_file)
        .unwrap()
        .short_timers()
        .unwrap();
    let cfg_path = dir.join("xdhcpd.json");
    cfg.write(&cfg_path).unwrap();
    let policy = glue::compile(&config::load(&cfg_path).unwrap());
    let mut server =
        lab.spawn(venus::PRIMARY, "xdhcpd", &[env!("CARGO_BIN_EXE_xdhcpd"), "run", "-c", cfg_path.to_str().unwrap()]).unwrap();
    server.wait_for_log("serving", T).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert!(server.log().contains("attach mode: native XDP on eth0"), "{}", server.log());
    let map = leases_map_of(server.pid());

    // Renewals by the dhclient daemon itself: unicast REQUEST with ciaddr.
    let mut cap = Some(lab.capture(&venus::client(1), "eth0", &["udp", "port", "67", "or", "port", "68"]).unwrap());
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    for _ in 0..3 {
        let r = m1.wait_renewal(T).unwrap_or_else(|e| {
            let text = cap.take().unwrap().stop().map(|p| p.text().unwrap_or_default()).unwrap_or_default();
            let _ = server.stop(T);
            panic!("{e:#}\n{}\n--- capture at mutante1 ---\n{text}", server.log())
        });
        assert_eq!(r.address, l1.address, "dhclient accepted the kernel's ACK and kept its address");
    }
    drop(cap);
    // mutante3 is reserved: its renewals are the daemon's (not in the map).
    let m3 = lab.dhclient(&venus::client(venus::RESERVED_CLIENT)).unwrap();
    assert_eq!(m3.obtain(T).unwrap().address, venus::RESERVED_ADDR);
    assert_eq!(m3.wait_renewal(T).unwrap().address, venus::RESERVED_ADDR);

    // A seeded random workload over the other clients.
    let mut rng = Rng(seed | 1);
    let clients: Vec<_> = [2, 4, 5].iter().map(|n| lab.dhclient(&venus::client(*n)).unwrap()).collect();
    let mut bound = [false; 3];
    for step in 0..12 {
        let i = rng.below(3) as usize;
        let c = &clients[i];
        match (bound[i], rng.below(3)) {
            (false, _) => {
                c.obtain(T).unwrap();
                bound[i] = true;
            }
            (true, 0) => {
                c.release(T).unwrap();
                bound[i] = false;
            }
            (true, 1) => {
                c.wait_renewal(T).unwrap();
            }
            (true, _) => {
                c.renew(T).unwrap();
            }
        }
        eprintln!("step {step}: client {i} bound={}", bound[i]);
    }
    // Let the last ring-buffer events reach the store.
    std::thread::sleep(Duration::from_millis(500));

    // Every map entry equals what the daemon derives from its store, and
    // every lease that belongs in the map is there.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&lease_file, copy.path().join("leases4.csv")).unwrap();
    let (store, _) = LeaseStore::open(StoreConfig {
        path: Some(copy.path().join("leases4.csv")),
        persist: true,
        lfc_interval: Duration::ZERO,
    })
    .unwrap();
    let in_map = dump(map);
    let mut expected = BTreeMap::new();
    for l in store.snapshot() {
        if let Some(e) = lease_entry(&policy, &l) {
            expected.insert(l.address, e);
        }
    }
    assert!(!expected.is_empty(), "the workload left no lease for the kernel to hold");
    assert_eq!(in_map.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "map keys vs store");
    for (addr, e) in &expected {
        let v = &in_map[addr];
        let hw: Vec<u8> = v["hwaddr"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
        assert_eq!(&hw[..], &e.hwaddr[..], "{addr}: MAC");
        assert_eq!(v["subnet_id"].as_u64(), Some(u64::from(e.subnet_id)), "{addr}: subnet");
        // The kernel may have extended a lease whose event is still in flight.
        let kernel_expire = v["expire"].as_u64().unwrap();
        assert!(kernel_expire >= e.expire && kernel_expire <= e.expire + 8, "{addr}: expire {kernel_expire} vs {}", e.expire);
    }
    assert!(!in_map.contains_key(&venus::RESERVED_ADDR), "reserved clients stay with the daemon");

    server.stop(T).unwrap();
    let log = server.log();
    eprintln!("{}", log.lines().filter(|l| l.contains("counters") || l.contains("stopped")).collect::<Vec<_>>().join("\n"));
    let answered = counter(&log, "AnsweredAck");
    assert!(answered >= 3, "mutante1's three renewals were answered in the kernel (AnsweredAck={answered})");
    assert!(log.contains("\"xdp_ack\""), "kernel renewals reached the store: {log}");
    // The lease file's last row for mutante1 carries a renewed expiry.
    let text = std::fs::read_to_string(&lease_file).unwrap();
    let rows: Vec<&str> = text.lines().filter(|r| r.starts_with(&format!("{},", l1.address))).collect();
    assert!(rows.len() >= 4, "allocation + renewals stored: {rows:?}");
}
