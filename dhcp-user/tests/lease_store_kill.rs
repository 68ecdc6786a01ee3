//! `kill -9` at random moments must never lose an acknowledged lease.
//!
//! The test binary re-executes itself as the child (`child_writer`, which
//! does nothing unless `XDHCP_LEASE_KILL_DIR` is set). The child upserts
//! leases from many concurrent tasks, with cleanup running every few
//! milliseconds, and prints a line for each lease only after its durable
//! handle resolved; that line stands for the DHCPACK. The parent SIGKILLs it
//! at a random moment, reloads the store and checks every printed lease.
//! Rounds share one directory, so later rounds also recover from the torn
//! tails and half-done cleanups that earlier kills left.

use std::collections::HashMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dhcp_user::leases::{ClientId, HwAddr, Lease, LeaseStore, StoreConfig};

const DIR_ENV: &str = "XDHCP_LEASE_KILL_DIR";
const ROUND_ENV: &str = "XDHCP_LEASE_KILL_ROUND";
const ROUNDS: u32 = 8;

fn lease_file(dir: &Path) -> std::path::PathBuf {
    dir.join("kea-leases4.csv")
}

fn address(round: u32, i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (round << 16) | (i & 0xffff))
}

fn client(round: u32, i: u32) -> ClientId {
    ClientId::new(vec![1, round as u8, (i >> 8) as u8, i as u8, 0x5a]).unwrap()
}

/// The child: writes until killed (or 20 s, as a safety net).
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else { return };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let config = StoreConfig {
            path: Some(lease_file(Path::new(&dir))),
            persist: true,
            lfc_interval: Duration::from_millis(25),
        };
        let (store, _) = LeaseStore::open(config).unwrap();
        let next = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (store, next) = (store.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= 0xffff {
                            return;
                        }
                        let hw = HwAddr::new(1, vec![2, round as u8, (i >> 8) as u8, i as u8, 0, 1]).unwrap();
                        let lease = Lease::new(address(round, i), Some(hw), Some(client(round, i)), 1, 1_700_000_000, 3600);
                        store.upsert(lease).await.unwrap();
                        println!("ACK {} {}", address(round, i), client(round, i));
                        // Every 5th lease is released again: "RM" before the
                        // request, "DEL" once the deletion is durable.
                        if i.is_multiple_of(5) {
                            println!("RM {}", address(round, i));
                            store.remove(address(round, i)).await.unwrap();
                            println!("DEL {}", address(round, i));
                        }
                    }
                })
            })
            .collect();
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    });
}

/// What the child promised about one address.
#[derive(Debug, Default, Clone)]
struct Promise {
    acked: Option<String>,
    remove_requested: bool,
    deleted: bool,
}

fn parse_promises(output: &[u8], promises: &mut HashMap<Ipv4Addr, Promise>) -> usize {
    // A line cut by the kill has no newline; it promised nothing.
    let complete = match output.iter().rposition(|&b| b == b'\n') {
        Some(end) => &output[..=end],
        None => &[][..],
    };
    let mut acks = 0;
    for line in String::from_utf8_lossy(complete).lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["ACK", addr, client] => {
                promises.entry(addr.parse().unwrap()).or_default().acked = Some((*client).to_owned());
                acks += 1;
            }
            ["RM", addr] => promises.entry(addr.parse().unwrap()).or_default().remove_requested = true,
            ["DEL", addr] => promises.entry(addr.parse().unwrap()).or_default().deleted = true,
            _ => {}
        }
    }
    acks
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn sigkill_never_loses_an_acknowledged_lease() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = XorShift(seed);
    eprintln!("seed {seed}");
    let mut promises: HashMap<Ipv4Addr, Promise> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let first_ack = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let first_ack = first_ack.clone();
            std::thread::spawn(move || {
                let (mut out, mut chunk) = (Vec::new(), [0u8; 8192]);
                while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                    out.extend_from_slice(&chunk[..n]);
                    if !first_ack.load(Ordering::Relaxed) && out.windows(4).any(|w| w == b"ACK ") {
                        first_ack.store(true, Ordering::Relaxed);
                    }
                }
                out
            })
        };
        // Mostly kill while leases flow (mid-batch, mid-fsync, mid-rotation,
        // mid-cleanup); every fourth round anywhere from process start, which
        // includes replay and repair at startup.
        let started = Instant::now();
        if round % 4 != 3 {
            while !first_ack.load(Ordering::Relaxed) {
                assert!(started.elapsed() < Duration::from_secs(10), "round {round}: child never acknowledged");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_millis(10 + rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let files = dhcp_user::leases::LeaseFiles::new(lease_file(dir.path()));
        let leftovers: Vec<&str> = [(files.input(), ".1"), (files.output(), ".output"), (files.finish(), ".completed")]
            .into_iter()
            .filter(|(p, _)| p.exists())
            .map(|(_, name)| name)
            .collect();
        let acks = parse_promises(&reader.join().unwrap(), &mut promises);

        let config = StoreConfig { path: Some(lease_file(dir.path())), persist: true, lfc_interval: Duration::ZERO };
        let (store, report) = LeaseStore::open(config).unwrap();
        assert_eq!(report.invalid(), 0, "only torn tails may be skipped: {:?}", report.skipped);
        let mut checked = 0;
        for (addr, promise) in &promises {
            let found = store.get(*addr);
            if promise.deleted {
                assert_eq!(found, None, "round {round}: {addr} was deleted durably but came back");
            } else if let Some(client) = &promise.acked {
                match found {
                    Some(lease) => assert_eq!(
                        lease.client_id.map(|c| c.to_string()).as_deref(),
                        Some(client.as_str()),
                        "round {round}: {addr} has the wrong client"
                    ),
                    None => assert!(promise.remove_requested, "round {round}: acknowledged {addr} lost"),
                }
                checked += 1;
            }
        }
        eprintln!(
            "round {round}: {acks} acks, {checked} acknowledged leases verified, {} in store, \
             torn tails {}, cleanup files left by the kill: {leftovers:?}",
            store.len(),
            report.torn()
        );
    }
}
