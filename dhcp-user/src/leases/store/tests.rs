//! The store's tests: memory and files, crash points of writing and
//! cleanup, the periodic cleanup, group commit.

use std::fs;
use std::path::Path;
use std::time::Instant;

use serde_json::json;

use super::*;
use crate::leases::csv::{self, HEADER};
use crate::leases::model::InvalidLease;

fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

fn lease(i: u32, client: u8) -> Lease {
    let mut l = Lease::new(
        ip(i),
        Some(HwAddr::ethernet([2, 0, 0, (i >> 8) as u8, i as u8, client])),
        Some(ClientId::new(vec![1, client, i as u8]).unwrap()),
        1 + i % 3,
        1_700_000_000 + u64::from(i),
        3600,
    );
    l.hostname = format!("host-{i},{client}&x");
    l.user_context = Some(json!({"i": i, "note": "a,b"}));
    l
}

fn config(path: &Path) -> StoreConfig {
    StoreConfig { path: Some(path.to_path_buf()), persist: true, lfc_interval: Duration::ZERO }
}

fn open(path: &Path) -> (LeaseStore, LoadReport) {
    LeaseStore::open(config(path)).unwrap()
}

fn all(store: &LeaseStore) -> Vec<Lease> {
    let all = store.snapshot();
    assert_eq!(store.page_after(None, usize::MAX), all);
    all
}

fn rows(leases: &[Lease]) -> String {
    let mut body = format!("{HEADER}\n");
    for l in leases {
        csv::format_row(l, &mut body).unwrap();
    }
    body
}

#[test]
fn memory_only_store_is_durable_at_once() {
    let (store, report) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    assert_eq!(report, LoadReport::default());
    store.upsert(lease(1, 1)).wait_blocking().unwrap();
    assert_eq!(store.get(ip(1)), Some(lease(1, 1)));
    assert!(store.files().is_none());
    assert_eq!(store.compact_now().unwrap().outcome, LfcOutcome::Disabled);
}

#[test]
fn invalid_leases_change_nothing() {
    let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    let mut l = lease(1, 1);
    l.valid_lifetime = 0;
    let err = store.upsert(l).wait_blocking().unwrap_err();
    assert!(matches!(err, LeaseError::InvalidLease { source: InvalidLease::ZeroLifetime, .. }), "{err}");
    let mut l = lease(1, 1);
    l.user_context = Some(json!({"big": u64::MAX}));
    assert!(store.upsert(l).wait_blocking().is_err());
    assert!(store.is_empty());
}

#[tokio::test]
async fn indexes_follow_changes_and_survive_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases4.csv");
    let (store, report) = open(&path);
    assert_eq!(report.leases, 0);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"), "created with a header");
    for i in 0..10 {
        store.upsert(lease(i, 7)).await.unwrap();
    }
    // Same client moves to a new address in subnet 2.
    let l3 = lease(3, 7);
    let mut moved = l3.clone();
    moved.hostname = "renamed".into();
    moved.expire += 100;
    store.upsert(moved.clone()).await.unwrap();
    let hw = l3.hwaddr.clone().unwrap();
    assert_eq!(store.by_hwaddr(l3.subnet_id, &hw), vec![moved.clone()]);
    assert_eq!(store.by_client_id(l3.subnet_id, l3.client_id.as_ref().unwrap()), vec![moved.clone()]);
    assert!(store.by_hostname(&l3.hostname).is_empty());
    assert_eq!(store.by_hostname("renamed"), vec![moved.clone()]);
    assert!(store.by_hwaddr(l3.subnet_id + 1, &hw).is_empty(), "subnet scoped");

    store.remove(ip(4)).await.unwrap();
    store.remove(ip(99)).await.unwrap();
    assert_eq!(store.get(ip(4)), None);
    assert!(store.by_hostname(&lease(4, 7).hostname).is_empty());

    // Expiry: leases 0.. expire at 1_700_003_600 + i.
    let now = 1_700_003_600 + 3;
    let expired: Vec<Ipv4Addr> = store.expired(now).map(|l| l.address).collect();
    assert_eq!(expired, vec![ip(0), ip(1), ip(2)]);
    let before = store.reclaim(ip(1)).await.unwrap().unwrap();
    assert_eq!(before, lease(1, 7));
    let reclaimed = store.get(ip(1)).unwrap();
    assert_eq!((reclaimed.state, reclaimed.hostname.as_str()), (LeaseState::ExpiredReclaimed, ""));
    assert_eq!(store.reclaim(ip(1)).await.unwrap(), None, "already reclaimed");
    assert_eq!(store.expired(now).map(|l| l.address).collect::<Vec<_>>(), vec![ip(0), ip(2)]);

    // Declined: identity dropped, probation expiry; reclaiming deletes it.
    store.decline(ip(5), 86_400, now).await.unwrap();
    let declined = store.get(ip(5)).unwrap();
    assert_eq!((declined.state, declined.expire, declined.hwaddr.clone()), (LeaseState::Declined, now + 86_400, None));
    assert!(!store.expired(now + 86_400).any(|l| l.address == ip(5)));
    assert!(store.expired(now + 86_401).any(|l| l.address == ip(5)));
    store.decline(ip(6), 10, now).await.unwrap();
    store.reclaim(ip(6)).await.unwrap();
    assert_eq!(store.get(ip(6)), None);

    let page1 = store.page_after(None, 3);
    let page2 = store.page_after(Some(page1[2].address), 3);
    assert_eq!(page1.iter().chain(&page2).map(|l| l.address).collect::<Vec<_>>(), [0, 1, 2, 3, 5, 7].map(ip));

    let snapshot = all(&store);
    drop(store);
    let (again, report) = open(&path);
    assert_eq!(all(&again), snapshot);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!((report.leases, report.deleted), (snapshot.len(), 2));
    assert_eq!(again.by_hostname("renamed"), vec![moved]);
}

#[test]
fn torn_last_row_at_every_offset_is_ignored_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases4.csv");
    let (store, _) = open(&path);
    for i in 0..3 {
        store.upsert(lease(i, 1)).wait_blocking().unwrap();
    }
    drop(store);
    let full = fs::read(&path).unwrap();
    let last_start = full[..full.len() - 1].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    for cut in last_start..=full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let (store, report) = open(&path);
        let torn = cut > last_start && cut < full.len();
        assert_eq!(report.torn(), usize::from(torn), "cut at {cut}: {:?}", report.skipped);
        if torn {
            let where_ = report.skipped[0].to_string();
            assert!(where_.contains("leases4.csv:4: torn"), "{where_}");
        }
        assert_eq!(store.len(), if cut == full.len() { 3 } else { 2 }, "cut at {cut}");
        // The next row must not glue onto the fragment.
        store.upsert(lease(50, 2)).wait_blocking().unwrap();
        drop(store);
        let (store, report) = open(&path);
        assert!(report.skipped.is_empty(), "cut at {cut}: {:?}", report.skipped);
        assert_eq!(store.get(ip(50)), Some(lease(50, 2)));
    }
}

/// Writers hammer the store while cleanup runs over and over; a reload
/// must see exactly what memory had.
#[test]
fn cleanup_racing_writes_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases4.csv");
    let (store, _) = open(&path);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4u8)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 300 {
                    let i = (n * 7 + u32::from(t) * 13) % 400;
                    let pending: Vec<Durable> = (0..8)
                        .map(|k| {
                            if (n + k).is_multiple_of(11) {
                                store.remove(ip(i + k))
                            } else {
                                store.upsert(lease(i + k, t))
                            }
                        })
                        .collect();
                    for d in pending {
                        d.wait_blocking().unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut compacted = 0;
    let started = Instant::now();
    while compacted < 15 && started.elapsed() < Duration::from_secs(5) {
        let report = store.compact_now().unwrap();
        assert_eq!(report.outcome, LfcOutcome::Compacted);
        assert!(report.input.skipped.is_empty(), "{:?}", report.input.skipped);
        compacted += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(rounds > 0);
    let snapshot = all(&store);
    let files = store.files().unwrap().clone();
    drop(store);
    assert!(files.previous().exists());
    for leftover in [files.input(), files.output(), files.finish(), files.pid()] {
        assert!(!leftover.exists(), "{}", leftover.display());
    }
    let (again, report) = open(&path);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(all(&again), snapshot);
    // One more cleanup with everything quiet: .2 alone holds the state.
    again.compact_now().unwrap();
    drop(again);
    let (mut map, mut report) = (LeaseMap::new(), LoadReport::default());
    load_file(&files.previous(), &mut map, &mut report).unwrap();
    assert_eq!(map.into_values().collect::<Vec<_>>(), snapshot);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
}

#[test]
fn interrupted_cleanup_before_completed_is_finished_later() {
    let dir = tempfile::tempdir().unwrap();
    let files = LeaseFiles::new(dir.path().join("leases4.csv"));
    let (a1, a2, b, c1, c2) = (lease(1, 1), lease(1, 2), lease(2, 1), lease(3, 1), lease(3, 2));
    fs::write(files.previous(), rows(&[a1, b.clone()])).unwrap();
    let mut input = rows(&[a2.clone(), c1.clone()]);
    csv::format_deletion(&b, &mut input).unwrap();
    fs::write(files.input(), input).unwrap();
    fs::write(files.output(), "address,hwaddr,cli").unwrap();
    fs::write(files.current(), rows(std::slice::from_ref(&c2))).unwrap();
    let (store, report) = open(files.current());
    assert_eq!(all(&store), vec![a2.clone(), c2.clone()]);
    assert_eq!(report.files, vec![files.previous(), files.input(), files.current().to_path_buf()]);
    let lfc = store.compact_now().unwrap();
    assert_eq!((lfc.outcome, lfc.rotated, lfc.leases), (LfcOutcome::Compacted, false, 2));
    assert_eq!(fs::read_to_string(files.previous()).unwrap(), rows(&[a2.clone(), c1]));
    assert!(!files.input().exists() && !files.output().exists());
    drop(store);
    assert_eq!(all(&open(files.current()).0), vec![a2, c2]);
}

#[test]
fn completed_file_wins_over_stale_previous_and_input() {
    let dir = tempfile::tempdir().unwrap();
    let files = LeaseFiles::new(dir.path().join("leases4.csv"));
    let (a, d, e) = (lease(1, 1), lease(4, 1), lease(5, 1));
    // Crash after the merge was completed and `.1` (deleting d) removed,
    // but before `.2` went: replaying `.2` would resurrect d.
    fs::write(files.previous(), rows(&[a.clone(), d])).unwrap();
    fs::write(files.finish(), rows(std::slice::from_ref(&a))).unwrap();
    fs::write(files.current(), rows(std::slice::from_ref(&e))).unwrap();
    let (store, _) = open(files.current());
    assert_eq!(all(&store), vec![a.clone(), e.clone()]);
    let lfc = store.compact_now().unwrap();
    assert_eq!((lfc.outcome, lfc.rotated), (LfcOutcome::Resumed, false));
    assert_eq!(fs::read_to_string(files.previous()).unwrap(), rows(std::slice::from_ref(&a)));
    assert!(!files.finish().exists());
    // The live file was not rotated this time; the next cleanup does it.
    let lfc = store.compact_now().unwrap();
    assert_eq!((lfc.outcome, lfc.rotated, lfc.leases), (LfcOutcome::Compacted, true, 2));
    drop(store);
    assert_eq!(all(&open(files.current()).0), vec![a, e]);
}

/// Helper process for the next test: a process with our name, as another
/// xdhcp instance cleaning up would be.
#[test]
fn pid_holder_child() {
    if std::env::var_os("XDHCP_PID_HOLDER").is_some() {
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// Kea's kea-lfc renames an unsynced `.completed`; after a power loss it
/// may be cut short, and then `.2` + `.1` must win over it.
#[test]
fn cut_short_completed_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let files = LeaseFiles::new(dir.path().join("leases4.csv"));
    let (a, b) = (lease(1, 1), lease(2, 1));
    fs::write(files.previous(), rows(&[a.clone(), b.clone()])).unwrap();
    let full = rows(std::slice::from_ref(&a));
    fs::write(files.finish(), &full[..full.len() - 5]).unwrap();
    let (store, _) = open(files.current());
    assert_eq!(all(&store), vec![a.clone(), b.clone()]);
    let lfc = store.compact_now().unwrap();
    assert_eq!((lfc.outcome, lfc.leases), (LfcOutcome::Compacted, 2));
    assert_eq!(fs::read_to_string(files.previous()).unwrap(), rows(&[a.clone(), b.clone()]));
    drop(store);
    // With .2 and .1 already gone, the completed file is all there is.
    fs::remove_file(files.previous()).unwrap();
    fs::write(files.finish(), rows(std::slice::from_ref(&b))).unwrap();
    assert_eq!(all(&open(files.current()).0), vec![b]);
}

#[test]
fn running_cleanup_process_blocks_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = LeaseFiles::new(dir.path().join("leases4.csv"));
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leases::store::tests::pid_holder_child", "--test-threads=1"])
        .env("XDHCP_PID_HOLDER", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is our image (not the fork before exec).
    let started = Instant::now();
    let ours = fs::read_to_string("/proc/self/comm").unwrap();
    while fs::read_to_string(format!("/proc/{}/comm", holder.id())).unwrap_or_default() != ours {
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    fs::write(files.pid(), format!("{}\n", holder.id())).unwrap();
    let err = LeaseStore::open(config(files.current())).unwrap_err();
    assert!(matches!(err, LeaseError::LfcRunning { .. }), "{err}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Stale pid file (process gone): Kea and we both go ahead.
    drop(LeaseStore::open(config(files.current())).unwrap());
    // A pid reused by an unrelated process (typical after a reboot) does
    // not block us either.
    let mut other = std::process::Command::new("sleep").arg("10").spawn().unwrap();
    fs::write(files.pid(), format!("{}\n", other.id())).unwrap();
    let opened = LeaseStore::open(config(files.current()));
    other.kill().unwrap();
    other.wait().unwrap();
    opened.unwrap();
}

#[test]
fn periodic_cleanup_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases4.csv");
    let cfg = StoreConfig { lfc_interval: Duration::from_millis(20), ..config(&path) };
    let (store, _) = LeaseStore::open(cfg).unwrap();
    store.upsert(lease(1, 1)).wait_blocking().unwrap();
    let files = store.files().unwrap().clone();
    let started = Instant::now();
    while !(files.previous().exists() && fs::read_to_string(files.previous()).unwrap().lines().count() == 2) {
        assert!(started.elapsed() < Duration::from_secs(5), "no cleanup ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(store);
    assert_eq!(all(&open(&path).0), vec![lease(1, 1)]);
}

/// Not an assertion: prints what group commit achieves on this machine
/// (`cargo test -p dhcp-user --lib group_commit_throughput -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir.path().join("leases4.csv"));
    let single = Instant::now();
    for i in 0..50 {
        store.upsert(lease(i, 1)).await.unwrap();
    }
    let single_rate = 50.0 / single.elapsed().as_secs_f64();
    let clients = 512u32;
    let per_client = 40u32;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..per_client {
                    store.upsert(lease(c * per_client + k, 9)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let total = f64::from(clients * per_client);
    let rate = total / started.elapsed().as_secs_f64();
    println!(
        "group commit: {rate:.0} durable upserts/s with {clients} concurrent clients \
         ({single_rate:.0}/s one at a time)"
    );
}

/// Every address the store's undo hook heard.
fn undo_heard(store: &LeaseStore) -> std::sync::Arc<std::sync::Mutex<Vec<Ipv4Addr>>> {
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = std::sync::Arc::clone(&heard);
    store.on_undo(move |a| h.lock().unwrap().push(a));
    heard
}

/// A full disk (`/dev/full`: every write fails with ENOSPC and cannot be
/// cut back, so the writer is poisoned after it): no change that failed
/// stays in memory, single or grouped, and the undo hook hears each.
#[test]
fn a_write_that_fails_leaves_nothing_behind() {
    let store = LeaseStore::over_file_for_test(Path::new("/dev/full"));
    let heard = undo_heard(&store);
    match store.upsert(lease(1, 1)).wait_blocking() {
        Err(LeaseError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ENOSPC)),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    assert_eq!(store.get(ip(1)), None, "memory is back as it was when the handle fails");
    let (durable, refused) = store.upsert_many(vec![lease(2, 1), lease(3, 1)]);
    assert!(refused.is_empty());
    assert!(matches!(durable.wait_blocking(), Err(LeaseError::Poisoned(_))));
    assert!(store.is_empty(), "{:?}", store.snapshot());
    assert_eq!(store.tallies().values().map(|t| t.assigned).sum::<u64>(), 0);
    assert_eq!(*heard.lock().unwrap(), [ip(1), ip(2), ip(3)]);
}

/// Helper process for the next test: writes beyond `RLIMIT_FSIZE` fail
/// with EFBIG, a real I/O error other than ENOSPC. The limit is the
/// process's, so it runs alone in a child.
#[test]
fn file_size_limit_child() {
    let Some(dir) = std::env::var_os("XDHCP_FSIZE_CHILD") else { return };
    let path = Path::new(&dir).join("leases4.csv");
    let (store, _) = open(&path);
    let heard = undo_heard(&store);
    let (first, second) = (lease(1, 1), lease(2, 1));
    store.upsert(first.clone()).wait_blocking().unwrap();
    store.upsert(second.clone()).wait_blocking().unwrap();
    let limit = |bytes: u64| {
        let lim = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: plain syscalls on this process; SIGXFSZ ignored so the
        // write returns EFBIG instead of killing the process.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
    };
    let on_file = || {
        let (leases, _) = crate::leases::file::replay_bytes(&fs::read(&path).unwrap(), &path).unwrap();
        leases
    };
    limit(fs::metadata(&path).unwrap().len());
    // A renewal, a release and a new lease, all refused by the file.
    let mut renewed = first.clone();
    renewed.expire += 3600;
    for d in [store.upsert(renewed.clone()), store.remove(ip(2)), store.upsert(lease(3, 1))] {
        match d.wait_blocking() {
            Err(LeaseError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EFBIG)),
            other => panic!("expected EFBIG, got {other:?}"),
        }
    }
    assert_eq!(all(&store), vec![first.clone(), second.clone()], "memory is what the file holds");
    assert_eq!(on_file(), all(&store));
    assert_eq!(*heard.lock().unwrap(), [ip(1), ip(2), ip(3)]);
    // The failed append was cut back: nothing poisoned, service resumes.
    limit(libc::RLIM_INFINITY);
    store.upsert(renewed.clone()).wait_blocking().unwrap();
    assert_eq!(on_file(), vec![renewed, second]);
    assert_eq!(on_file(), all(&store));
}

/// See [`file_size_limit_child`].
#[test]
fn a_failed_renewal_release_or_new_lease_is_undone_on_efbig() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leases::store::tests::file_size_limit_child", "--test-threads=1", "--nocapture"])
        .env("XDHCP_FSIZE_CHILD", dir.path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
