//! The lease store: in-memory indexes in front of a Kea memfile.
//!
//! Reads never touch the disk. A change updates memory at once (so the next
//! DISCOVER sees it) and returns a [`Durable`] that resolves when its row is
//! fsynced; the engine sends the ACK only after that. The indexes mirror
//! Kea's memfile ones: address (ordered, for paging), subnet + hardware
//! address, subnet + client id, hostname, and expiration for reclamation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use super::error::{LeaseError, Result};
use super::file::{LeaseFiles, LeaseMap, LiveFile, LoadReport, load_file, running_pid};
use super::lfc::{self, LfcOutcome, LfcReport};
use super::model::{ClientId, HwAddr, INFINITE_LIFETIME, Lease, LeaseState};
use super::pgsql::PgLeaseDb;
use super::pgsql::writer::DbWriter;
use super::writer::{Record, Writer};

/// Kea's default lease file on Debian (`[datadir]/kea-leases4.csv`).
pub const DEFAULT_LEASE_FILE: &str = "/var/lib/kea/kea-leases4.csv";

/// How to open the store (the memfile part of Kea's `lease-database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Live lease file (`name`); `None` means [`DEFAULT_LEASE_FILE`].
    pub path: Option<PathBuf>,
    /// `persist`: false keeps leases in memory only (tests, lab).
    pub persist: bool,
    /// `lfc-interval`: time between cleanups; zero disables them.
    pub lfc_interval: Duration,
}

impl Default for StoreConfig {
    /// Kea's defaults: persist to the default file, clean up hourly.
    fn default() -> Self {
        StoreConfig { path: None, persist: true, lfc_interval: Duration::from_secs(3600) }
    }
}

/// Resolves once a change is on disk (fsynced), or with the error that
/// prevented it. Await it (`store.upsert(l).await?`) or call
/// [`Durable::wait_blocking`] outside async code.
#[must_use = "a change is only durable once its Durable resolves: do not ACK before"]
#[derive(Debug)]
pub struct Durable<T = ()> {
    value: Option<T>,
    wait: Wait,
}

#[derive(Debug)]
enum Wait {
    Done(Option<Result<()>>),
    Pending(oneshot::Receiver<Result<()>>),
}

impl<T> Durable<T> {
    fn ready(value: T) -> Self {
        Durable { value: Some(value), wait: Wait::Done(Some(Ok(()))) }
    }

    fn failed(error: LeaseError) -> Self {
        Durable { value: None, wait: Wait::Done(Some(Err(error))) }
    }

    fn pending(value: T, rx: Option<oneshot::Receiver<Result<()>>>) -> Self {
        match rx {
            Some(rx) => Durable { value: Some(value), wait: Wait::Pending(rx) },
            None => Durable::ready(value),
        }
    }

    /// The change's result, readable before it is durable (for example the
    /// lease that [`LeaseStore::reclaim`] changed).
    pub fn peek(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Waits without an async runtime. Must not be called from async code.
    pub fn wait_blocking(mut self) -> Result<T> {
        let result = match std::mem::replace(&mut self.wait, Wait::Done(None)) {
            Wait::Done(r) => r.unwrap_or(Err(LeaseError::WriterStopped)),
            Wait::Pending(rx) => rx.blocking_recv().unwrap_or(Err(LeaseError::WriterStopped)),
        };
        result.map(|()| self.value.take().expect("value present until completion"))
    }

    /// Async form of waiting; the same as awaiting the handle itself.
    pub async fn wait(self) -> Result<T>
    where
        T: Unpin,
    {
        self.await
    }
}

impl<T: Unpin> Future for Durable<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let result = match &mut this.wait {
            Wait::Done(r) => r.take().expect("Durable polled after completion"),
            Wait::Pending(rx) => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.unwrap_or(Err(LeaseError::WriterStopped)),
            },
        };
        this.wait = Wait::Done(None);
        Poll::Ready(result.map(|()| this.value.take().expect("value present until completion")))
    }
}

/// A multimap from key to addresses, pruned when a key has none left.
type Multi<K> = HashMap<K, BTreeSet<Ipv4Addr>>;

fn link<K: Hash + Eq>(map: &mut Multi<K>, key: K, addr: Ipv4Addr) {
    map.entry(key).or_default().insert(addr);
}

fn unlink<K: Hash + Eq>(map: &mut Multi<K>, key: &K, addr: Ipv4Addr) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&addr);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// All leases and their secondary indexes; only touched under one lock.
#[derive(Debug, Default)]
struct Index {
    by_addr: BTreeMap<Ipv4Addr, Lease>,
    by_hwaddr: Multi<(u32, Vec<u8>)>,
    by_client_id: Multi<(u32, Vec<u8>)>,
    by_hostname: Multi<String>,
    /// Leases not yet reclaimed, by expiration (Kea's expiration index).
    by_expiry: BTreeSet<(u64, Ipv4Addr)>,
    /// Reclaimed leases, by expiration: what `flush-reclaimed` removes.
    by_reclaimed: BTreeSet<(u64, Ipv4Addr)>,
    /// Per subnet counts for Kea's lease statistics, kept at the one place
    /// every change passes, so no caller can forget them.
    tally: HashMap<u32, SubnetTally>,
    /// Subnets whose tally changed since [`LeaseStore::take_tallies`].
    dirty: BTreeSet<u32>,
}

/// One subnet's lease counts, as Kea's statistics count them: gauges
/// (`assigned`, `declined`) and totals since start (the others).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SubnetTally {
    /// Leases not reclaimed, declined ones included (Kea's
    /// `assigned-addresses`).
    pub assigned: u64,
    /// Declined leases in probation.
    pub declined: u64,
    /// Leases that became assigned (from none or reclaimed) since start
    /// (Kea's `cumulative-assigned-addresses`).
    pub entered: u64,
    /// Reclamations since start (`reclaimed-leases`).
    pub reclaimed: u64,
    /// Reclamations of declined leases since start.
    pub reclaimed_declined: u64,
}

/// What a lease in `state` adds to `assigned` and `declined`.
fn weight(state: LeaseState) -> (u64, u64) {
    match state {
        LeaseState::Default => (1, 0),
        LeaseState::Declined => (1, 1),
        LeaseState::ExpiredReclaimed | LeaseState::Other(_) => (0, 0),
    }
}

/// The expiration index a lease in `state` belongs to: reclaimed leases
/// wait for the flush, the others for reclamation.
fn expiry_index<'a>(
    by_expiry: &'a mut BTreeSet<(u64, Ipv4Addr)>,
    by_reclaimed: &'a mut BTreeSet<(u64, Ipv4Addr)>,
    state: LeaseState,
) -> &'a mut BTreeSet<(u64, Ipv4Addr)> {
    if state == LeaseState::ExpiredReclaimed { by_reclaimed } else { by_expiry }
}

impl Index {
    fn from_map(map: LeaseMap) -> Index {
        let mut index = Index::default();
        for lease in map.into_values() {
            index.insert(lease);
        }
        // Loaded leases were assigned before this start.
        for t in index.tally.values_mut() {
            t.entered = 0;
        }
        index
    }

    /// Moves the tally from `old` to `new` (either may be absent).
    fn retally(&mut self, old: Option<(u32, LeaseState)>, new: Option<(u32, LeaseState)>) {
        if let Some((subnet, state)) = old {
            let (a, d) = weight(state);
            let t = self.tally.entry(subnet).or_default();
            t.assigned = t.assigned.saturating_sub(a);
            t.declined = t.declined.saturating_sub(d);
            self.dirty.insert(subnet);
        }
        if let Some((subnet, state)) = new {
            let (a, d) = weight(state);
            let was_assigned = old.is_some_and(|(s, st)| s == subnet && weight(st).0 == 1);
            let t = self.tally.entry(subnet).or_default();
            t.assigned += a;
            t.declined += d;
            if a == 1 && !was_assigned {
                t.entered += 1;
            }
            self.dirty.insert(subnet);
        }
    }

    fn insert(&mut self, lease: Lease) -> Option<Lease> {
        let addr = lease.address;
        let old = self.by_addr.get(&addr).map(|l| (l.subnet_id, l.state));
        let new = (lease.subnet_id, lease.state);
        if old != Some(new) {
            self.retally(old, Some(new));
        }
        // A renewal changes only times: the secondary keys stay, so only
        // the expiration index moves (no key allocations, no relinking).
        if let Some(old) = self.by_addr.get_mut(&addr)
            && old.subnet_id == lease.subnet_id
            && old.hwaddr == lease.hwaddr
            && old.client_id == lease.client_id
            && old.hostname == lease.hostname
        {
            expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, old.state).remove(&(old.expire, addr));
            expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).insert((lease.expire, addr));
            return Some(std::mem::replace(old, lease));
        }
        let old = self.unindex(addr);
        if let Some(hw) = &lease.hwaddr {
            link(&mut self.by_hwaddr, (lease.subnet_id, hw.bytes().to_vec()), addr);
        }
        if let Some(id) = &lease.client_id {
            link(&mut self.by_client_id, (lease.subnet_id, id.bytes().to_vec()), addr);
        }
        if !lease.hostname.is_empty() {
            link(&mut self.by_hostname, lease.hostname.clone(), addr);
        }
        expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).insert((lease.expire, addr));
        self.by_addr.insert(addr, lease);
        old
    }

    fn remove(&mut self, addr: Ipv4Addr) -> Option<Lease> {
        let lease = self.unindex(addr)?;
        self.retally(Some((lease.subnet_id, lease.state)), None);
        Some(lease)
    }

    /// Removes `addr` from every index but the tally.
    fn unindex(&mut self, addr: Ipv4Addr) -> Option<Lease> {
        let lease = self.by_addr.remove(&addr)?;
        if let Some(hw) = &lease.hwaddr {
            unlink(&mut self.by_hwaddr, &(lease.subnet_id, hw.bytes().to_vec()), addr);
        }
        if let Some(id) = &lease.client_id {
            unlink(&mut self.by_client_id, &(lease.subnet_id, id.bytes().to_vec()), addr);
        }
        if !lease.hostname.is_empty() {
            unlink(&mut self.by_hostname, &lease.hostname, addr);
        }
        expiry_index(&mut self.by_expiry, &mut self.by_reclaimed, lease.state).remove(&(lease.expire, addr));
        Some(lease)
    }

    fn collect<'a>(&self, addrs: impl IntoIterator<Item = &'a Ipv4Addr>) -> Vec<Lease> {
        addrs.into_iter().filter_map(|a| self.by_addr.get(a).cloned()).collect()
    }
}

/// Wakes the periodic cleanup and file guard threads for shutdown.
#[derive(Debug)]
struct LfcTimer {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Drop for LfcTimer {
    fn drop(&mut self) {
        let (flag, cvar) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }
}

#[derive(Debug)]
struct Shared {
    index: Mutex<Index>,
    files: Option<LeaseFiles>,
    // Field order matters for Drop: stop the timer, then flush the writer.
    _timer: Option<LfcTimer>,
    writer: Option<Sink>,
    lfc_running: Mutex<()>,
}

/// Where changes become durable: the memfile's writer thread, or the lease
/// database. Everything above the store sees only `Durable`s, whichever it is.
#[derive(Debug)]
enum Sink {
    /// Kea's memfile, group-committed by the writer thread.
    File(Writer),
    /// Kea's `lease4` table (see [`super::pgsql`]).
    Database(DbWriter),
}

impl Sink {
    fn submit(&self, record: Record) -> oneshot::Receiver<Result<()>> {
        match self {
            Sink::File(w) => w.submit(record),
            Sink::Database(w) => w.submit(record),
        }
    }

    fn submit_many(&self, records: Vec<Record>) -> oneshot::Receiver<Result<()>> {
        match self {
            Sink::File(w) => w.submit_many(records),
            Sink::Database(w) => w.submit_many(records),
        }
    }

    /// The file writer, for what only a memfile has (cleanup, the guard).
    fn file(&self) -> Option<&Writer> {
        match self {
            Sink::File(w) => Some(w),
            Sink::Database(_) => None,
        }
    }
}

/// The lease store. Cheap to clone; all clones share one store, and the
/// writer thread flushes and stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    shared: Arc<Shared>,
}

impl LeaseStore {
    /// Loads the lease files (Kea's order: `.completed` or `.2`+`.1`, then
    /// the live file), repairs a torn tail and starts the writer and, when
    /// `lfc_interval` is non-zero, the periodic cleanup.
    ///
    /// Fails if a cleanup process (ours or `kea-lfc`) is running on these
    /// files, as Kea does, or on a file that is not a v4 lease file.
    pub fn open(config: StoreConfig) -> Result<(LeaseStore, LoadReport)> {
        let mut report = LoadReport::default();
        if !config.persist {
            return Ok((LeaseStore::assemble(Index::default(), None, None, Duration::ZERO), report));
        }
        let files = LeaseFiles::new(config.path.unwrap_or_else(|| PathBuf::from(DEFAULT_LEASE_FILE)));
        if let Some(pid) = running_pid(&files.pid())
            && pid != std::process::id() as i32
        {
            return Err(LeaseError::LfcRunning { pid_file: files.pid(), pid });
        }
        let mut leases = LeaseMap::new();
        let mut live_scan = None;
        for path in files.load_order() {
            let scan = load_file(&path, &mut leases, &mut report)?;
            if path == files.current() {
                live_scan = scan;
            }
        }
        report.leases = leases.len();
        // Enough to find the problem without flooding the log.
        for skipped in report.skipped.iter().take(20) {
            tracing::warn!("lease file: {skipped}");
        }
        tracing::info!("lease store: {report}");
        let live = LiveFile::open(files.current(), live_scan)?;
        let writer = Writer::spawn(live, files.clone())?;
        let store =
            LeaseStore::assemble(Index::from_map(leases), Some(files), Some(Sink::File(writer)), config.lfc_interval);
        Ok((store, report))
    }

    /// The store over a lease database: `leases` (everything the database
    /// held at start, [`PgLeaseDb::load_all`]) in memory, every change
    /// committed to the database by tasks on `runtime` before its
    /// [`Durable`] resolves. No files, no cleanup: the database is the file.
    pub fn with_database(leases: Vec<Lease>, db: PgLeaseDb, runtime: &tokio::runtime::Handle) -> LeaseStore {
        let index = Index::from_map(leases.into_iter().map(|l| (l.address, l)).collect());
        LeaseStore::assemble(index, None, Some(Sink::Database(DbWriter::spawn(db, runtime))), Duration::ZERO)
    }

    fn assemble(index: Index, files: Option<LeaseFiles>, writer: Option<Sink>, lfc: Duration) -> LeaseStore {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let guarded = writer.as_ref().and_then(Sink::file).is_some();
        let periodic = !lfc.is_zero() && guarded;
        let shared = Arc::new(Shared {
            index: Mutex::new(index),
            files,
            _timer: guarded.then(|| LfcTimer { stop: stop.clone() }),
            writer,
            lfc_running: Mutex::new(()),
        });
        if guarded {
            let weak = Arc::downgrade(&shared);
            let (stop, every) = (stop.clone(), super::guard::CHECK_EVERY);
            let spawned = std::thread::Builder::new()
                .name("lease-guard".into())
                .spawn(move || self::every(weak, stop, every, super::guard::tick));
            if let Err(e) = spawned {
                tracing::error!("cannot start the lease file guard: {e}");
            }
        }
        if periodic {
            let weak = Arc::downgrade(&shared);
            let spawned = std::thread::Builder::new()
                .name("lease-lfc".into())
                .spawn(move || self::every(weak, stop, lfc, cleanup));
            if let Err(e) = spawned {
                tracing::error!("cannot start periodic lease file cleanup: {e}");
            }
        }
        LeaseStore { shared }
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        self.shared.index.lock().expect("lease index lock poisoned")
    }

    /// Queues a row while the index lock is held, so file order = memory order.
    fn log(&self, _index: &MutexGuard<'_, Index>, record: Record) -> Option<oneshot::Receiver<Result<()>>> {
        self.shared.writer.as_ref().map(|w| w.submit(record))
    }

    /// Inserts or replaces the lease for `lease.address`. Memory changes at
    /// once; the handle resolves when the row is fsynced. Leases Kea could
    /// not store (see [`Lease::validate`]) are refused and change nothing.
    ///
    /// If the handle resolves to an I/O error the change stays in memory but
    /// is not durable: do not ACK. After a failed fsync every later change
    /// fails too ([`LeaseError::Poisoned`]) until the daemon restarts and
    /// replays the file.
    pub fn upsert(&self, lease: Lease) -> Durable {
        if let Err(source) = lease.validate() {
            return Durable::failed(LeaseError::InvalidLease { address: lease.address, source });
        }
        let record = self.shared.writer.is_some().then(|| Record::Upsert(lease.clone()));
        let mut index = self.index();
        index.insert(lease);
        let rx = record.and_then(|r| self.log(&index, r));
        Durable::pending((), rx)
    }

    /// [`Self::upsert`] for many leases under one lock, with one handle
    /// for all their rows (one queue entry and one completion instead of
    /// one per row). Invalid leases are skipped and returned.
    pub fn upsert_many(&self, leases: Vec<Lease>) -> (Durable, Vec<(Lease, LeaseError)>) {
        let mut refused = Vec::new();
        let mut records = Vec::with_capacity(leases.len());
        let mut index = self.index();
        for lease in leases {
            if let Err(source) = lease.validate() {
                let address = lease.address;
                refused.push((lease, LeaseError::InvalidLease { address, source }));
                continue;
            }
            if self.shared.writer.is_some() {
                records.push(Record::Upsert(lease.clone()));
            }
            index.insert(lease);
        }
        let rx = match &self.shared.writer {
            Some(w) if !records.is_empty() => Some(w.submit_many(records)),
            _ => None,
        };
        drop(index);
        (Durable::pending((), rx), refused)
    }

    /// Deletes the lease for `addr` (a row with valid lifetime 0, as Kea
    /// writes it). Without a lease nothing is written and the handle is
    /// ready at once.
    pub fn remove(&self, addr: Ipv4Addr) -> Durable {
        let mut index = self.index();
        let Some(old) = index.remove(addr) else {
            return Durable::ready(());
        };
        let rx = self.log(&index, Record::Delete(old));
        Durable::pending((), rx)
    }

    /// Reclaims the lease for `addr` as Kea's allocation engine does: a
    /// declined lease is deleted; any other becomes expired-reclaimed with
    /// hostname and DNS flags cleared (the engine removes DNS records first).
    /// Resolves to the lease as it was before, `None` if there was nothing to
    /// reclaim (no lease, or already reclaimed).
    pub fn reclaim(&self, addr: Ipv4Addr) -> Durable<Option<Lease>> {
        let mut index = self.index();
        let Some(old) = index.by_addr.get(&addr).filter(|l| l.state != LeaseState::ExpiredReclaimed).cloned()
        else {
            return Durable::ready(None);
        };
        let t = index.tally.entry(old.subnet_id).or_default();
        t.reclaimed += 1;
        if old.state == LeaseState::Declined {
            t.reclaimed_declined += 1;
        }
        index.dirty.insert(old.subnet_id);
        let record = if old.state == LeaseState::Declined {
            index.remove(addr);
            Record::Delete(old.clone())
        } else {
            let mut lease = old.clone();
            lease.state = LeaseState::ExpiredReclaimed;
            lease.hostname.clear();
            lease.fqdn_fwd = false;
            lease.fqdn_rev = false;
            index.insert(lease.clone());
            Record::Upsert(lease)
        };
        let rx = self.log(&index, record);
        Durable::pending(Some(old), rx)
    }

    /// Reclaims the lease for `addr` by deleting it (Kea's reclamation
    /// with `hold-reclaimed-time` 0, or `leases-reclaim` with `remove`):
    /// counted as reclaimed like [`Self::reclaim`].
    pub fn reclaim_and_remove(&self, addr: Ipv4Addr) -> Durable {
        let mut index = self.index();
        let Some(old) = index.remove(addr) else {
            return Durable::ready(());
        };
        let t = index.tally.entry(old.subnet_id).or_default();
        t.reclaimed += 1;
        if old.state == LeaseState::Declined {
            t.reclaimed_declined += 1;
        }
        index.dirty.insert(old.subnet_id);
        let rx = self.log(&index, Record::Delete(old));
        Durable::pending((), rx)
    }

    /// Marks the lease for `addr` declined for `probation` seconds from
    /// `now`, dropping the client's identity (Kea's `Lease4::decline`).
    /// Resolves to the lease as it was before, `None` if there was none.
    pub fn decline(&self, addr: Ipv4Addr, probation: u32, now: u64) -> Durable<Option<Lease>> {
        let mut index = self.index();
        let Some(old) = index.by_addr.get(&addr).cloned() else {
            return Durable::ready(None);
        };
        let mut lease = Lease::declined(addr, old.subnet_id, probation, now);
        lease.user_context = old.user_context.clone();
        if let Err(source) = lease.validate() {
            return Durable::failed(LeaseError::InvalidLease { address: addr, source });
        }
        index.insert(lease.clone());
        let rx = self.log(&index, Record::Upsert(lease));
        Durable::pending(Some(old), rx)
    }

    /// The tallies of the subnets that changed since the last call (Kea's
    /// lease statistics follow them).
    pub fn take_tallies(&self) -> Vec<(u32, SubnetTally)> {
        let mut index = self.index();
        let dirty = std::mem::take(&mut index.dirty);
        dirty.into_iter().map(|s| (s, index.tally.get(&s).copied().unwrap_or_default())).collect()
    }

    /// Every subnet's tally now.
    pub fn tallies(&self) -> HashMap<u32, SubnetTally> {
        self.index().tally.clone()
    }

    /// The lease for `addr`.
    pub fn get(&self, addr: Ipv4Addr) -> Option<Lease> {
        self.index().by_addr.get(&addr).cloned()
    }

    /// Leases of a hardware address in a subnet (the type byte is ignored,
    /// as Kea does not persist it).
    pub fn by_hwaddr(&self, subnet_id: u32, hwaddr: &HwAddr) -> Vec<Lease> {
        let index = self.index();
        let addrs = index.by_hwaddr.get(&(subnet_id, hwaddr.bytes().to_vec()));
        index.collect(addrs.into_iter().flatten())
    }

    /// Leases of a client identifier in a subnet.
    pub fn by_client_id(&self, subnet_id: u32, client_id: &ClientId) -> Vec<Lease> {
        let index = self.index();
        let addrs = index.by_client_id.get(&(subnet_id, client_id.bytes().to_vec()));
        index.collect(addrs.into_iter().flatten())
    }

    /// Leases with exactly this hostname.
    pub fn by_hostname(&self, hostname: &str) -> Vec<Lease> {
        let index = self.index();
        let addrs = index.by_hostname.get(hostname);
        index.collect(addrs.into_iter().flatten())
    }

    /// Up to `limit` leases in address order, strictly after `after` (from
    /// the lowest address when `None`): pass the last address of a page to
    /// get the next one, as Kea's `lease4-get-page` does.
    pub fn page_after(&self, after: Option<Ipv4Addr>, limit: usize) -> Vec<Lease> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        self.index().by_addr.range((lower, Unbounded)).take(limit).map(|(_, l)| l.clone()).collect()
    }

    /// Scans up to `limit` leases in address order after `after` and copies
    /// only those `keep` accepts; returns them and where the next scan
    /// starts (`None`: no lease is left). A sweep through a million leases
    /// for a few subnets copies only theirs, in bounded steps.
    pub fn scan_after(&self, after: Option<Ipv4Addr>, limit: usize, keep: impl Fn(&Lease) -> bool) -> (Vec<Lease>, Option<Ipv4Addr>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        let index = self.index();
        let mut last = None;
        let mut scanned = 0;
        let mut out = Vec::new();
        for (a, l) in index.by_addr.range((lower, Unbounded)).take(limit) {
            scanned += 1;
            last = Some(*a);
            if keep(l) {
                out.push(l.clone());
            }
        }
        (out, if scanned == limit { last } else { None })
    }

    /// All leases in address order (a copy; prefer [`Self::page_after`] for
    /// large stores).
    pub fn snapshot(&self) -> Vec<Lease> {
        self.index().by_addr.values().cloned().collect()
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.index().by_addr.len()
    }

    /// True when there are no leases.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Leases that expired before `now` and are not reclaimed yet (declined
    /// ones whose probation ended included), oldest expiration first.
    pub fn expired(&self, now: u64) -> impl Iterator<Item = Lease> + use<> {
        let index = self.index();
        let leases: Vec<Lease> = index
            .by_expiry
            .range(..(now, Ipv4Addr::UNSPECIFIED))
            .filter_map(|(_, a)| index.by_addr.get(a))
            .filter(|l| l.valid_lifetime != INFINITE_LIFETIME)
            .cloned()
            .collect();
        leases.into_iter()
    }

    /// Reclaimed leases that expired before `cutoff`, oldest first (Kea's
    /// `deleteExpiredReclaimedLeases4`).
    pub fn reclaimed_before(&self, cutoff: u64) -> Vec<Ipv4Addr> {
        self.index().by_reclaimed.range(..(cutoff, Ipv4Addr::UNSPECIFIED)).map(|(_, a)| *a).collect()
    }

    /// Runs a lease file cleanup now, in the calling thread (blocking; use
    /// `spawn_blocking` from async code). Writes continue meanwhile.
    pub fn compact_now(&self) -> Result<LfcReport> {
        let (Some(files), Some(writer)) = (&self.shared.files, self.shared.writer.as_ref().and_then(Sink::file)) else {
            return Ok(LfcReport { outcome: LfcOutcome::Disabled, ..LfcReport::default() });
        };
        let Ok(_running) = self.shared.lfc_running.try_lock() else {
            return Ok(LfcReport { outcome: LfcOutcome::Busy, ..LfcReport::default() });
        };
        lfc::run(files, || writer.rotate())
    }

    /// Whether the live file is still under its name (always, without
    /// persistence). See [`super::guard`].
    pub fn live_file_in_place(&self) -> Result<bool> {
        match self.shared.writer.as_ref().and_then(Sink::file) {
            Some(w) => w.check(),
            None => Ok(true),
        }
    }

    /// Writes every lease in memory as a new live file, under the index
    /// lock so no change slips between the snapshot and the switch; returns
    /// how many leases it holds. See [`super::guard`].
    pub fn rewrite_live_file(&self) -> Result<usize> {
        let Some(writer) = self.shared.writer.as_ref().and_then(Sink::file) else { return Ok(0) };
        let index = self.index();
        let mut rows = String::new();
        let mut n = 0;
        for lease in index.by_addr.values() {
            if let Err(source) = super::csv::format_row(lease, &mut rows) {
                return Err(LeaseError::InvalidLease { address: lease.address, source });
            }
            n += 1;
        }
        writer.rewrite(rows)?;
        drop(index);
        Ok(n)
    }

    /// The file names in use, `None` when not persisting.
    pub fn files(&self) -> Option<&LeaseFiles> {
        self.shared.files.as_ref()
    }
}

/// Runs `tick` on the store every `every` until `stop` is set or the store
/// is gone (the periodic cleanup and the file guard).
fn every(store: Weak<Shared>, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration, tick: impl Fn(&LeaseStore)) {
    let (flag, cvar) = &*stop;
    loop {
        let stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = cvar.wait_timeout_while(stopped, every, |s| !*s).unwrap_or_else(|e| e.into_inner());
        if *stopped {
            return;
        }
        drop(stopped);
        let Some(shared) = store.upgrade() else { return };
        tick(&LeaseStore { shared });
    }
}

fn cleanup(store: &LeaseStore) {
    match store.compact_now() {
        Ok(report) => tracing::info!(
            outcome = ?report.outcome,
            leases = report.leases,
            skipped = report.input.skipped.len(),
            "lease file cleanup done"
        ),
        Err(e) => tracing::warn!("lease file cleanup failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
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
}
