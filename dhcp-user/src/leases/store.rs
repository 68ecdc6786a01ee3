//! The lease store: in-memory indexes in front of a Kea memfile.
//!
//! Reads never touch the disk. A change updates memory at once (so the next
//! DISCOVER sees it) and returns a [`Durable`] that resolves when its row is
//! fsynced; the engine sends the ACK only after that. A change whose row
//! fails is undone in memory before its `Durable` resolves (`undo`). The indexes mirror
//! Kea's memfile ones: address (ordered, for paging), subnet + hardware
//! address, subnet + client id, hostname, and expiration for reclamation.
//!
//! # Layout
//!
//! - this file: [`LeaseStore`] (opening, changes, reads, cleanup and the
//!   file guard's hooks) and where changes become durable (`Sink`).
//! - `durable`: the [`Durable`] handle.
//! - `index`: the indexes and Kea's per-subnet tallies ([`SubnetTally`]).
//! - `undo`: putting back what a failed row changed in memory.
//! - [`shift`]: moving every lease by a compensated clock step.
//! - `tests`: the store's tests.

mod durable;
mod index;
pub mod shift;
mod undo;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

pub use durable::Durable;
use index::Index;
pub use index::SubnetTally;

use super::error::{LeaseError, Result};
use super::file::{LeaseFiles, LeaseMap, LiveFile, LoadReport, load_file, running_pid};
use super::lfc::{self, LfcOutcome, LfcReport};
use super::model::{ClientId, HwAddr, INFINITE_LIFETIME, Lease, LeaseState};
use super::pgsql::PgLeaseDb;
use super::pgsql::writer::DbWriter;
use super::writer::{Record, Undo, Writer};
use undo::{Marks, Undoer};

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
    index: Arc<Mutex<Index>>,
    /// Shared with the writer thread's undo (memfile only).
    marks: Arc<Marks>,
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
    /// Queues `record`, a change of memory from `prev`; `undo` numbers it
    /// for the memfile's undo. The database keeps no undo: a failed row is
    /// read again from it instead (see `undo`'s module doc).
    fn submit(&self, record: Record, prev: Option<Lease>, undo: impl FnOnce(Ipv4Addr, Option<Lease>) -> Undo) -> Pending {
        match self {
            Sink::File(w) => {
                let u = undo(record.address(), prev);
                w.submit(record, u)
            }
            Sink::Database(w) => w.submit(record),
        }
    }

    /// [`Sink::submit`] for rows that complete together.
    fn submit_many(
        &self,
        records: Vec<(Record, Option<Lease>)>,
        mut undo: impl FnMut(Ipv4Addr, Option<Lease>) -> Undo,
    ) -> Pending {
        match self {
            Sink::File(w) => w.submit_many(
                records.into_iter().map(|(r, prev)| {
                    let u = undo(r.address(), prev);
                    (r, u)
                }).collect(),
            ),
            Sink::Database(w) => w.submit_many(records.into_iter().map(|(r, _)| r).collect()),
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

/// A queued row's completion.
type Pending = oneshot::Receiver<Result<()>>;

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
            return Ok((LeaseStore::assemble(Arc::default(), Arc::default(), None, None, Duration::ZERO), report));
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
        let store = LeaseStore::over_file(Index::from_map(leases), live, files, config.lfc_interval)?;
        Ok((store, report))
    }

    /// The store over a lease database: `leases` (everything the database
    /// held at start, [`PgLeaseDb::load_all`]) in memory, every change
    /// committed to the database by tasks on `runtime` before its
    /// [`Durable`] resolves. No files, no cleanup: the database is the file.
    pub fn with_database(leases: Vec<Lease>, db: PgLeaseDb, runtime: &tokio::runtime::Handle) -> LeaseStore {
        let index = Index::from_map(leases.into_iter().map(|l| (l.address, l)).collect());
        let sink = Sink::Database(DbWriter::spawn(db, runtime));
        LeaseStore::assemble(Arc::new(Mutex::new(index)), Arc::default(), None, Some(sink), Duration::ZERO)
    }

    /// The shared database's tracker of failed writes (a lost race is read
    /// back into memory, [`super::pgsql::shared`]); `None` for the memfile.
    pub fn conflicts(&self) -> Option<Arc<super::pgsql::shared::Conflicts>> {
        match &self.shared.writer {
            Some(Sink::Database(w)) => Some(w.conflicts()),
            _ => None,
        }
    }

    /// The store over `live`, whose writer undoes failed rows in `index`.
    fn over_file(index: Index, live: LiveFile, files: LeaseFiles, lfc: Duration) -> Result<LeaseStore> {
        let (index, marks) = (Arc::new(Mutex::new(index)), Arc::new(Marks::default()));
        let writer = Writer::spawn(live, files.clone(), Undoer::new(Arc::clone(&index), Arc::clone(&marks)))?;
        Ok(LeaseStore::assemble(index, marks, Some(files), Some(Sink::File(writer)), lfc))
    }

    /// A store writing to any file, for fault injection (`/dev/full`).
    #[cfg(test)]
    pub(crate) fn over_file_for_test(path: &std::path::Path) -> LeaseStore {
        let live = LiveFile::from_path_for_test(path);
        LeaseStore::over_file(Index::default(), live, LeaseFiles::new(path), Duration::ZERO).unwrap()
    }

    fn assemble(
        index: Arc<Mutex<Index>>,
        marks: Arc<Marks>,
        files: Option<LeaseFiles>,
        writer: Option<Sink>,
        lfc: Duration,
    ) -> LeaseStore {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let guarded = writer.as_ref().and_then(Sink::file).is_some();
        let periodic = !lfc.is_zero() && guarded;
        let shared = Arc::new(Shared {
            index,
            marks,
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

    /// Queues a row while the index lock is held, so file order = memory
    /// order; `prev` is the lease before the change, to undo it if the row
    /// fails.
    fn log(&self, index: &mut Index, record: Record, prev: Option<Lease>) -> Option<Pending> {
        let settled = self.shared.marks.settled();
        self.shared.writer.as_ref().map(|w| w.submit(record, prev, |a, p| index.rows.queue(a, p, settled)))
    }

    /// Tells `hook` each address whose change was undone because its row
    /// failed, once memory holds the lease as it was (the core queues the
    /// kernel's entry again). Called on the writer thread, without the
    /// store's lock: it must not block. Memfile only (see `undo`).
    pub fn on_undo(&self, hook: impl Fn(Ipv4Addr) + Send + Sync + 'static) {
        self.shared.marks.set_hook(Arc::new(hook));
    }

    /// Inserts or replaces the lease for `lease.address`. Memory changes at
    /// once; the handle resolves when the row is fsynced. Leases Kea could
    /// not store (see [`Lease::validate`]) are refused and change nothing.
    ///
    /// If the handle resolves to an error the change is not durable: do
    /// not ACK. With a lease file, memory is already back to the lease's
    /// last durable version by then (unless a newer change of the address
    /// is queued, which then decides; see `undo`); with a lease database,
    /// the row is read again from it. After a failed fsync every later
    /// change fails too ([`LeaseError::Poisoned`], and is undone) until the
    /// daemon restarts and replays the file.
    pub fn upsert(&self, lease: Lease) -> Durable {
        if let Err(source) = lease.validate() {
            return Durable::failed(LeaseError::InvalidLease { address: lease.address, source });
        }
        let record = self.shared.writer.is_some().then(|| Record::Upsert(lease.clone()));
        let mut index = self.index();
        let prev = index.insert(lease);
        let rx = record.and_then(|r| self.log(&mut index, r, prev));
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
            let record = self.shared.writer.is_some().then(|| Record::Upsert(lease.clone()));
            let prev = index.insert(lease);
            records.extend(record.map(|r| (r, prev)));
        }
        let settled = self.shared.marks.settled();
        let rx = match &self.shared.writer {
            Some(w) if !records.is_empty() => Some(w.submit_many(records, |a, p| index.rows.queue(a, p, settled))),
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
        let rx = self.log(&mut index, Record::Delete(old.clone()), Some(old));
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
        let rx = self.log(&mut index, record, Some(old.clone()));
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
        let rx = self.log(&mut index, Record::Delete(old.clone()), Some(old));
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
        let prev = index.insert(lease.clone());
        let rx = self.log(&mut index, Record::Upsert(lease), prev);
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

    /// Writes every lease in memory as a new live file, queued under the
    /// index lock so no change slips between the snapshot and the switch
    /// (and waited for without it: the writer takes it to undo a failed
    /// row); returns how many leases it holds. See [`super::guard`].
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
        let done = writer.rewrite(rows, self.shared.marks.failures())?;
        drop(index);
        done.recv().map_err(|_| LeaseError::WriterStopped)??;
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
mod tests;
