//! The fast path end to end in the venus lab: real dhclient renewals are
//! answered by the XDP program (its counters prove it) and accepted by
//! dhclient; each renewal reaches the lease file through the ring buffer;
//! and after a seeded random workload every entry of the kernel's lease map
//! matches the store.

mod common;

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

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

/// The map as `bpftool map dump` prints it (BTF-formatted fields).
fn dump(map_id: u64) -> BTreeMap<Ipv4Addr, Value> {
    lab::bpf::dump(map_id)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let a: Vec<u8> = k["addr"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            (Ipv4Addr::new(a[0], a[1], a[2], a[3]), v)
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
    // The server's own map (tests running side by side each have one).
    let map = lab::bpf::map_of(server.pid(), "XDHCP_LEASES").unwrap();

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

/// `config-set` answers once the kernel has the new configuration (issue
/// #19): an option changed leaves the kernel's lease entries as they were;
/// the pool shrunk so a client's lease falls outside it removes that
/// entry (the daemon NAKs its renewal now; the kernel must not ACK it),
/// and the map equals what the daemon derives from its store.
#[test]
fn a_config_set_leaves_the_kernel_map_as_the_new_policy_derives_it() {
    let lab = Lab::up(venus::topology(venus::MIN_CLIENTS).unwrap()).unwrap_or_else(|e| panic!("{e:#}"));
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    let mut server = common::Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &[]);
    let lease_file = server.leases.clone();
    cfg.lease_file(&lease_file).unwrap();
    let cfg_path = dir.join("expected.json");
    let map = lab::bpf::map_of(server.process.pid(), "XDHCP_LEASES").unwrap();
    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let l1 = m1.obtain(T).unwrap();
    // The ACK leaves once the lease is stored; the kernel has it moments later.
    let held = (0..40).any(|_| {
        let there = dump(map).contains_key(&l1.address);
        if !there {
            std::thread::sleep(Duration::from_millis(50));
        }
        there
    });
    assert!(held, "the kernel holds the new lease");

    let set = |cfg: &lab::KeaConfig| -> String {
        let file = dir.join("command.json");
        std::fs::write(&file, serde_json::json!({ "command": "config-set", "arguments": cfg.value() }).to_string()).unwrap();
        let data = format!("@{}", file.display());
        let control = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
        let argv = ["curl", "-sS", "--max-time", "10", "-H", "Content-Type: application/json", "--data-binary", &data, &control];
        let out = lab.run(venus::PRIMARY, &argv).unwrap().stdout;
        assert!(out.contains("\"result\": 0") || out.contains("\"result\":0"), "{out}\n{}", server.process.log());
        out
    };
    let expected = |cfg: &lab::KeaConfig| {
        cfg.write(&cfg_path).unwrap();
        let policy = glue::compile(&config::load(&cfg_path).unwrap());
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(&lease_file, copy.path().join("leases4.csv")).unwrap();
        let store = LeaseStore::open(StoreConfig {
            path: Some(copy.path().join("leases4.csv")),
            persist: true,
            lfc_interval: Duration::ZERO,
        })
        .unwrap()
        .0;
        store.snapshot().iter().filter(|l| lease_entry(&policy, l).is_some()).map(|l| l.address).collect::<Vec<_>>()
    };

    cfg.set("/Dhcp4/subnet4/0/option-data", serde_json::json!([{ "name": "domain-name", "data": "after.example" }])).unwrap();
    set(&cfg);
    let keys: Vec<Ipv4Addr> = dump(map).into_keys().collect();
    assert_eq!(keys, [l1.address], "an option change keeps the lease entry");
    assert_eq!(keys, expected(&cfg));

    let pool = if l1.address.octets()[3] == 150 { "192.168.50.151-192.168.50.151" } else { "192.168.50.150-192.168.50.150" };
    cfg.set("/Dhcp4/subnet4/0/pools/0/pool", pool.into()).unwrap();
    set(&cfg);
    assert!(expected(&cfg).is_empty(), "{} is outside {pool}", l1.address);
    let log = server.process.log();
    assert_eq!(dump(map).into_keys().collect::<Vec<_>>(), Vec::<Ipv4Addr>::new(), "the entry left with the pool\n{log}");
    server.stop();
}
