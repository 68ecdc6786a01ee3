//! Interoperability with the real Kea 2.2 binaries: `kea-lfc` compacts our
//! files with Kea's own parser and writer, and `kea-dhcp4` serves leases from
//! our file and appends its own rows, which we then load.
//!
//! Each test prints `SKIPPED` and passes when its Kea binary is not
//! installed (Debian: `apt install kea-dhcp4-server kea-common`).

use std::fs;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::csv::{self, HEADER};
use super::file::{LeaseFiles, LeaseMap, LoadReport, SkipReason, load_file};
use super::json::from_kea_json;
use super::model::{ClientId, HwAddr, Lease, LeaseState};
use super::store::{LeaseStore, StoreConfig};

fn kea_binary(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let found = ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .iter()
        .map(PathBuf::from)
        .chain(path_dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: {name} is not installed; this test needs Kea 2.2's {name}");
    }
    found
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn open(path: &Path) -> (LeaseStore, LoadReport) {
    LeaseStore::open(StoreConfig { path: Some(path.to_path_buf()), persist: true, lfc_interval: Duration::ZERO })
        .unwrap()
}

fn all(store: &LeaseStore) -> Vec<Lease> {
    store.page_after(None, usize::MAX)
}

fn read_leases(path: &Path) -> (Vec<Lease>, LoadReport) {
    let (mut map, mut report) = (LeaseMap::new(), LoadReport::default());
    load_file(path, &mut map, &mut report).unwrap().expect("file exists");
    (map.into_values().collect(), report)
}

/// Leases exercising every column and the encodings Kea is picky about.
fn varied(now: u64) -> Vec<Lease> {
    let hw = |last: u8| HwAddr::ethernet([0xaa, 0xbb, 0xcc, 0xdd, 0xee, last]);
    let mut full = Lease::new(
        Ipv4Addr::new(192, 0, 2, 10),
        Some(hw(1)),
        Some(ClientId::new(vec![1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 1]).unwrap()),
        1,
        now - 100,
        3600,
    );
    full.hostname = "a,b&c&#x2c.example.org".into();
    full.fqdn_fwd = true;
    full.fqdn_rev = true;
    full.user_context = Some(json!({
        "ISC": {"relay-agent-info": {"remote-id": "01:02", "sub-options": "0x0104"}},
        "note": "é€ \"q\" \\ x,y&z\ttab",
        "n": -5, "f": 0.25, "list": [1, "two", null, true, {}, []]
    }));
    let mut hw_only = Lease::new(Ipv4Addr::new(192, 0, 2, 11), Some(hw(2)), None, 1, now, 7200);
    hw_only.fqdn_rev = true;
    let id_only = Lease::new(
        Ipv4Addr::new(192, 0, 2, 12),
        None,
        Some(ClientId::new(b"\x00opaque-id".to_vec()).unwrap()),
        1,
        now,
        600,
    );
    let declined = Lease::declined(Ipv4Addr::new(192, 0, 2, 13), 1, 86_400, now);
    let mut reclaimed = Lease::new(Ipv4Addr::new(192, 0, 2, 14), Some(hw(4)), None, 1, now, 60);
    reclaimed.state = LeaseState::ExpiredReclaimed;
    let infinite = Lease::new(Ipv4Addr::new(198, 51, 100, 20), Some(hw(5)), None, 2, now, u32::MAX);
    let big = Lease::new(
        Ipv4Addr::new(198, 51, 100, 21),
        Some(HwAddr::new(1, (0..20).collect::<Vec<u8>>()).unwrap()),
        Some(ClientId::new((0..128).map(|b: u32| b as u8).collect::<Vec<u8>>()).unwrap()),
        2,
        now,
        3600,
    );
    vec![full, hw_only, id_only, declined, reclaimed, infinite, big]
}

/// Writes `leases` with some history (an older version, a deleted lease)
/// so the file exercises replacement and deletion rows too.
fn write_with_history(store: &LeaseStore, leases: &[Lease]) {
    let mut early = leases[1].clone();
    early.hostname = "older".into();
    early.expire -= 50;
    store.upsert(early).wait_blocking().unwrap();
    let mut doomed = leases[0].clone();
    doomed.address = Ipv4Addr::new(192, 0, 2, 99);
    store.upsert(doomed).wait_blocking().unwrap();
    for l in leases {
        store.upsert(l.clone()).wait_blocking().unwrap();
    }
    store.remove(Ipv4Addr::new(192, 0, 2, 99)).wait_blocking().unwrap();
}

/// Runs `kea-lfc` on `files` the way Kea's server does: the live file has
/// been moved to `.1` before.
fn run_kea_lfc(kea_lfc: &Path, files: &LeaseFiles) {
    let out = Command::new(kea_lfc)
        .arg("-4")
        .arg("-x")
        .arg(files.previous())
        .arg("-i")
        .arg(files.input())
        .arg("-o")
        .arg(files.output())
        .arg("-f")
        .arg(files.finish())
        .arg("-p")
        .arg(files.pid())
        .arg("-c")
        .arg("ignored-path")
        .arg("-d")
        .env("KEA_LOCKFILE_DIR", "none")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kea-lfc failed: {log}{}", String::from_utf8_lossy(&out.stderr));
    assert!(files.previous().exists(), "kea-lfc wrote no .2: {log}");
    assert!(!files.input().exists() && !files.finish().exists(), "kea-lfc did not finish: {log}");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Our file through Kea's parser and writer gives back our leases, byte for
/// byte what our own cleanup writes; and we carry on from Kea's output.
#[test]
fn kea_lfc_reads_our_files_and_compacts_them_like_we_do() {
    let Some(kea_lfc) = kea_binary("kea-lfc") else { return };
    let now = now();
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let our_files = LeaseFiles::new(ours.path().join("kea-leases4.csv"));
    let kea_files = LeaseFiles::new(theirs.path().join("kea-leases4.csv"));

    let leases = varied(now);
    let (store, _) = open(our_files.current());
    write_with_history(&store, &leases);
    let expected = all(&store);
    drop(store);

    for round in 0..2 {
        copy_dir(ours.path(), theirs.path());
        fs::rename(kea_files.current(), kea_files.input()).unwrap();
        run_kea_lfc(&kea_lfc, &kea_files);
        let (store, _) = open(our_files.current());
        store.compact_now().unwrap();
        drop(store);

        let kea_out = fs::read_to_string(kea_files.previous()).unwrap();
        let our_out = fs::read_to_string(our_files.previous()).unwrap();
        assert_eq!(our_out, kea_out, "round {round}: our cleanup output differs from kea-lfc's");
        let (from_kea, report) = read_leases(&kea_files.previous());
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let expected = if round == 0 { expected.clone() } else { all(&open(our_files.current()).0) };
        assert_eq!(from_kea, expected, "round {round}");

        // Continue on Kea's output: open its directory, change things in
        // both, then compact both again.
        let (store, _) = open(kea_files.current());
        assert_eq!(all(&store), expected);
        drop(store);
        for dir in [&our_files, &kea_files] {
            let (store, _) = open(dir.current());
            let mut changed = leases[0].clone();
            changed.hostname = format!("round{round},renamed");
            store.upsert(changed).wait_blocking().unwrap();
            store.remove(leases[2].address).wait_blocking().unwrap();
        }
        fs::remove_file(kea_files.current()).unwrap();
        fs::remove_file(kea_files.previous()).unwrap();
    }
}

/// A file written the way Kea writes and accepts it, with an old header,
/// every identifier spelling and some bad rows: Kea's replay (through
/// `kea-lfc`) and ours agree, and our cleanup writes Kea's bytes.
#[test]
fn kea_and_we_replay_a_kea_format_file_identically() {
    let Some(kea_lfc) = kea_binary("kea-lfc") else { return };
    let v1 = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname";
    let fixture = [
        v1,
        "192.0.2.1,aa:bb:cc:dd:ee:01,01:aa:bb:cc:dd:ee:01,3600,2000000000,1,1,0,one&#x2ctwo.example",
        "192.0.2.2,0a:b,,3600,2000000000,1,0,0,",
        "192.0.2.3,aa:bb:cc:dd:ee:03,0xAABBCC,3600,2000000000,1,+1,-0,x&#x26y",
        "192.0.2.4,aa:bb:cc:dd:ee:04,aa bb cc,3600,2000000000,1,0,0,,2,",
        "",
        "192.0.2.5,,,86400,2000086400,2,0,0,,1,",
        "192.0.2.6,aa:bb:cc:dd:ee:06,1aabb,4294967295,6294967295,2,0,1,h,0,{\"a\": [1&#x2c 2]&#x2c \"u\": \"\\u00c3\\u00a9\"}",
        "192.0.2.2,0a:0b,,0,1999996400,1,0,0,,0,",
        "192.0.2.1,aa:bb:cc:dd:ee:01,01:aa:bb:cc:dd:ee:01,7200,2000003600,1,1,0,one-renamed",
        "192.0.2.77,aa:bb:cc:dd:ee:77,,0,1000,1,0,0,,0,",
        "192.0.2.300,aa:bb:cc:dd:ee:08,,3600,2000000000,1,0,0,",
        "192.0.2.9,aa:bb:cc:dd:ee:09,,3600,2000000000,1,true,0,",
        "192.0.2.10,aa:bb:cc:dd:ee:10,01,3600,2000000000,1,0,0,",
        "192.0.2.11,,,3600,2000000000,1,0,0,,0,",
        "192.0.2.12,aa:bb:cc:dd:ee:12,,3600,2000000000,1,0,0,,9,",
        "192.0.2.13,aa:bb:cc:dd:ee:13,,3600",
    ]
    .join("\n")
        + "\n";
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let our_files = LeaseFiles::new(ours.path().join("kea-leases4.csv"));
    let kea_files = LeaseFiles::new(theirs.path().join("kea-leases4.csv"));
    fs::write(our_files.current(), &fixture).unwrap();
    fs::write(kea_files.input(), &fixture).unwrap();

    let (store, report) = open(our_files.current());
    let bad_lines: Vec<u64> = report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(bad_lines, vec![12, 13, 14, 15, 17], "{:#?}", report.skipped);
    assert!(report.skipped.iter().all(|s| matches!(s.reason, SkipReason::Invalid(_))));
    assert_eq!(report.converted, vec![our_files.current().to_path_buf()]);
    assert_eq!((report.replaced, report.deleted, report.deletions_ignored), (1, 1, 1));
    let ctx = store.get(Ipv4Addr::new(192, 0, 2, 6)).unwrap().user_context.unwrap();
    assert_eq!(ctx, json!({"a": [1, 2], "u": "é"}));
    assert_eq!(store.get(Ipv4Addr::new(192, 0, 2, 12)).unwrap().state, LeaseState::Other(9), "kept like Kea does");
    let mine = all(&store);
    store.compact_now().unwrap();
    drop(store);

    run_kea_lfc(&kea_lfc, &kea_files);
    let (from_kea, report) = read_leases(&kea_files.previous());
    assert!(report.skipped.is_empty());
    assert_eq!(from_kea, mine);
    assert_eq!(fs::read_to_string(our_files.previous()).unwrap(), fs::read_to_string(kea_files.previous()).unwrap());
}

/// A running `kea-dhcp4`, killed when dropped.
struct Kea {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Kea {
    fn start(binary: &Path, dir: &Path, lease_file: &Path) -> Kea {
        let socket = dir.join("kea.sock");
        let log = dir.join("kea.log");
        let config = json!({"Dhcp4": {
            "interfaces-config": {"interfaces": []},
            "control-socket": {"socket-type": "unix", "socket-name": socket},
            "lease-database": {"type": "memfile", "name": lease_file, "lfc-interval": 0},
            "hooks-libraries": [{"library": "libdhcp_lease_cmds.so"}],
            "subnet4": [
                {"id": 1, "subnet": "192.0.2.0/24"},
                {"id": 2, "subnet": "198.51.100.0/24"}
            ],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}]
        }});
        let config_path = dir.join("kea-dhcp4.json");
        fs::write(&config_path, config.to_string()).unwrap();
        let hooks = ["/usr/lib/x86_64-linux-gnu/kea/hooks", "/usr/lib/aarch64-linux-gnu/kea/hooks", "/usr/lib/kea/hooks"]
            .into_iter()
            .find(|d| Path::new(d).join("libdhcp_lease_cmds.so").exists())
            .expect("kea-dhcp4 is installed but its lease_cmds hook library is not");
        let text = fs::read_to_string(&config_path).unwrap().replace("libdhcp_lease_cmds.so", &format!("{hooks}/libdhcp_lease_cmds.so"));
        fs::write(&config_path, text).unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .env("KEA_PIDFILE_DIR", dir)
            .env("KEA_LOCKFILE_DIR", "none")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let kea = Kea { child, socket, log };
        let started = Instant::now();
        while UnixStream::connect(&kea.socket).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "kea-dhcp4 did not start: {}", kea.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        kea
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn command(&self, command: &str, arguments: Value) -> Value {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = if arguments.is_null() {
            json!({"command": command})
        } else {
            json!({"command": command, "arguments": arguments})
        };
        stream.write_all(request.to_string().as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        // Kea answers in its own JSON dialect (UTF-8 as per-byte escapes).
        let value = from_kea_json(&response).unwrap();
        assert!(value["result"].as_i64().unwrap() <= 3, "{command}: {value}");
        value
    }

    fn leases(&self) -> Vec<Lease> {
        let answer = self.command("lease4-get-all", Value::Null);
        let mut leases: Vec<Lease> =
            answer["arguments"]["leases"].as_array().unwrap().iter().map(lease_from_kea).collect();
        leases.sort_by_key(|l| l.address);
        leases
    }

    fn stop(mut self) {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "kea-dhcp4 ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kea's control-API view of a lease, in our model.
fn lease_from_kea(v: &Value) -> Lease {
    let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
    let hw = text("hw-address");
    let valid_lifetime = v["valid-lft"].as_u64().unwrap() as u32;
    Lease {
        address: text("ip-address").parse().unwrap(),
        hwaddr: (!hw.is_empty()).then(|| hw.parse().unwrap()),
        client_id: v.get("client-id").map(|c| c.as_str().unwrap().parse().unwrap()),
        valid_lifetime,
        expire: v["cltt"].as_u64().unwrap() + u64::from(valid_lifetime),
        subnet_id: v["subnet-id"].as_u64().unwrap() as u32,
        fqdn_fwd: v["fqdn-fwd"].as_bool().unwrap(),
        fqdn_rev: v["fqdn-rev"].as_bool().unwrap(),
        hostname: text("hostname").to_owned(),
        state: LeaseState::from_code(v["state"].as_u64().unwrap() as u32),
        user_context: v.get("user-context").cloned(),
    }
}

/// The real server loads our file (every lease, every field as we meant
/// it), then appends its own add/update/delete rows, which we load.
#[test]
fn kea_dhcp4_serves_our_file_and_we_load_what_it_writes() {
    let Some(kea_dhcp4) = kea_binary("kea-dhcp4") else { return };
    let now = now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kea-leases4.csv");
    let leases = varied(now);
    let (store, _) = open(&path);
    write_with_history(&store, &leases);
    let ours = all(&store);
    drop(store);

    let kea = Kea::start(&kea_dhcp4, dir.path(), &path);
    assert_eq!(kea.leases(), ours, "kea-dhcp4 log:\n{}", kea.log());

    kea.command(
        "lease4-add",
        json!({"ip-address": "192.0.2.50", "hw-address": "1a:1b:1c:1d:1e:1f", "subnet-id": 1,
               "valid-lft": 1800, "expire": now + 1800, "hostname": "added,by&kea",
               "client-id": "01:1a:1b:1c:1d:1e:1f", "user-context": {"by": "kea", "é": [1, 2]}}),
    );
    kea.command(
        "lease4-update",
        json!({"ip-address": "192.0.2.11", "hw-address": "aa:bb:cc:dd:ee:02", "subnet-id": 1,
               "valid-lft": 900, "expire": now + 900, "hostname": "updated.example", "fqdn-fwd": true}),
    );
    kea.command("lease4-del", json!({"ip-address": "192.0.2.12"}));
    let kea_view = kea.leases();
    assert_eq!(kea_view.len(), ours.len());
    kea.stop();

    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&format!("{HEADER}\n")));
    assert!(text.contains("added&#x2cby&#x26kea"), "Kea escaped the hostname:\n{text}");
    let (store, report) = open(&path);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(all(&store), kea_view);
    let added = store.get(Ipv4Addr::new(192, 0, 2, 50)).unwrap();
    assert_eq!(added.user_context, Some(json!({"by": "kea", "é": [1, 2]})));
    assert_eq!(store.get(Ipv4Addr::new(192, 0, 2, 12)), None, "Kea's deletion row honoured");
    // And our rows appended after Kea's are what we expect Kea to read next.
    let mut row = String::new();
    csv::format_row(&added, &mut row).unwrap();
    assert!(text.contains(&row), "we format the row Kea wrote identically:\n{row}\n{text}");
}
