//! Group commit: one thread owns the live file and makes rows durable in
//! batches.
//!
//! `fdatasync` costs about the same for one row as for a thousand, so the
//! writer takes everything queued since its last sync, formats it into one
//! buffer, issues one `write` and one `fdatasync`, and only then completes
//! every handle of the batch. While it syncs, new rows queue up and form the
//! next batch, so throughput grows with the number of concurrent clients
//! while each ACK still waits for its own row to be on disk.
//!
//! Rows are queued under the store's index lock, so the file order is the
//! order in which memory changed: replaying the file rebuilds the same state.
//!
//! Rotation for lease file cleanup is a job in the same queue. Every row
//! queued before it lands in the rotated file (`NAME.1`), every row after it
//! in the new `NAME`, so cleanup never races a write.
//!
//! Memory changed before its row was written, so every row travels with
//! what undoes it ([`Undo`]: the lease as it was before), and after each
//! commit the rows' outcomes go, in queue order, to a [`Settle`]r (the
//! store), which puts back in memory what failed — before any handle of
//! the batch completes, so a caller that sees the error also sees memory
//! as it was.

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::csv;
use super::error::{LeaseError, Result};
use super::file::{LeaseFiles, LiveFile, sync_dir};
use super::model::Lease;

/// Stop collecting a batch beyond this many bytes, to bound memory.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a row records.
#[derive(Debug)]
pub(crate) enum Record {
    /// The lease as it now is.
    Upsert(Lease),
    /// The lease is gone (written as Kea does: valid lifetime 0).
    Delete(Lease),
}

impl Record {
    pub(crate) fn address(&self) -> Ipv4Addr {
        match self {
            Record::Upsert(l) | Record::Delete(l) => l.address,
        }
    }

    fn format(&self, buf: &mut String) -> Result<()> {
        let formatted = match self {
            Record::Upsert(l) => csv::format_row(l, buf),
            Record::Delete(l) => csv::format_deletion(l, buf),
        };
        formatted.map_err(|source| LeaseError::InvalidLease { address: self.address(), source })
    }
}

/// What undoes one row's change in memory if the row fails.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Undo {
    /// The change's place in the store's order (increasing, one per row).
    pub seq: u64,
    /// The lease's address.
    pub addr: Ipv4Addr,
    /// The lease as it was before the change (`None`: there was none).
    pub prev: Option<Lease>,
}

/// Told every row's outcome, in queue order, after each commit and before
/// the rows' handles complete (the store, which undoes what failed).
pub(crate) trait Settle: Send + 'static {
    /// `outcomes`: each row's [`Undo`] and whether the row is durable.
    fn settle(&mut self, outcomes: Vec<(Undo, bool)>);
    /// Rows that failed so far (a live file rewrite checks that none
    /// failed between its snapshot and its turn).
    fn failures(&self) -> u64;
}

/// Completion of one row: `Ok` once fsynced.
pub(crate) type Done = oneshot::Sender<Result<()>>;

// Nearly every job is a `Write`: boxing it would cost an allocation per row.
#[allow(clippy::large_enum_variant)]
enum Job {
    Write(Record, Undo, Done),
    /// Rows queued together, completed together (see [`Writer::submit_many`]).
    WriteMany(Vec<(Record, Undo)>, Done),
    /// Move `NAME` to `NAME.1` and start a new `NAME`; replies whether it
    /// rotated (it does not when an earlier cleanup left `.1` or `.completed`).
    Rotate(mpsc::Sender<Result<bool>>),
    /// Replies whether the live file's name still leads to it.
    Check(mpsc::Sender<bool>),
    /// Replaces the live file with a complete one holding these rows,
    /// taken from memory when [`Settle::failures`] was this count.
    Rewrite(String, u64, mpsc::Sender<Result<()>>),
}

/// The batch being collected: its rows' handles (with the error of a row
/// that could not even be formatted) and outcomes to settle.
#[derive(Default)]
struct Batch {
    done: Vec<(Done, Option<LeaseError>)>,
    undo: Vec<(Undo, bool)>,
}

/// Handle to the writer thread. Dropping it flushes the queue and joins.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `live`; `settle` hears every row's
    /// outcome.
    pub fn spawn(live: LiveFile, files: LeaseFiles, settle: impl Settle) -> Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let settle = Box::new(settle);
        let thread = std::thread::Builder::new()
            .name("lease-writer".into())
            .spawn(move || WriterThread { live, files, poisoned: None, settle }.run(rx))
            .map_err(|e| LeaseError::io("lease-writer", "spawn thread", e))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues a row; the receiver resolves once it is durable.
    pub fn submit(&self, record: Record, undo: Undo) -> oneshot::Receiver<Result<()>> {
        let (done, rx) = oneshot::channel();
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(Job::Write(_, _, done))) = tx.send(Job::Write(record, undo, done))
        {
            let _ = done.send(Err(LeaseError::WriterStopped));
        }
        rx
    }

    /// Queues rows that complete together: one channel message and one
    /// wakeup for all of them. They land in one commit; if any row cannot
    /// be formatted, none is written and the handle reports it.
    pub fn submit_many(&self, records: Vec<(Record, Undo)>) -> oneshot::Receiver<Result<()>> {
        let (done, rx) = oneshot::channel();
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(Job::WriteMany(_, done))) = tx.send(Job::WriteMany(records, done))
        {
            let _ = done.send(Err(LeaseError::WriterStopped));
        }
        rx
    }

    /// Whether the live file is still reachable under its name (blocking;
    /// answered between two batches, so never during a rotation).
    pub fn check(&self) -> Result<bool> {
        let (reply, rx) = mpsc::channel();
        let tx = self.tx.as_ref().ok_or(LeaseError::WriterStopped)?;
        tx.send(Job::Check(reply)).map_err(|_| LeaseError::WriterStopped)?;
        rx.recv().map_err(|_| LeaseError::WriterStopped)
    }

    /// Queues `rows` (formatted CSV lines, taken from memory when
    /// [`Settle::failures`] was `failures`) to be written as a new complete
    /// live file, renamed into place and fsynced, and appended to from then
    /// on; rows queued before land in the old file first. Wait on the
    /// receiver without holding the store's lock: the writer takes it to
    /// undo a failed row. Refused if a row failed since the snapshot (it
    /// may hold that row's change).
    pub fn rewrite(&self, rows: String, failures: u64) -> Result<mpsc::Receiver<Result<()>>> {
        let (reply, rx) = mpsc::channel();
        let tx = self.tx.as_ref().ok_or(LeaseError::WriterStopped)?;
        tx.send(Job::Rewrite(rows, failures, reply)).map_err(|_| LeaseError::WriterStopped)?;
        Ok(rx)
    }

    /// Rotates the live file between two batches (blocking).
    pub fn rotate(&self) -> Result<bool> {
        let (reply, rx) = mpsc::channel();
        let tx = self.tx.as_ref().ok_or(LeaseError::WriterStopped)?;
        tx.send(Job::Rotate(reply)).map_err(|_| LeaseError::WriterStopped)?;
        rx.recv().map_err(|_| LeaseError::WriterStopped)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct WriterThread {
    live: LiveFile,
    files: LeaseFiles,
    /// Set after a failure that leaves the file state unknown.
    poisoned: Option<LeaseError>,
    settle: Box<dyn Settle>,
}

impl WriterThread {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut buf = String::with_capacity(64 << 10);
        let mut batch = Batch::default();
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write(record, undo, done) => {
                        let start = buf.len();
                        let formatted = record.format(&mut buf);
                        if formatted.is_err() {
                            buf.truncate(start);
                        }
                        batch.undo.push((undo, formatted.is_ok()));
                        batch.done.push((done, formatted.err()));
                    }
                    Job::WriteMany(records, done) => {
                        let start = buf.len();
                        let failed = records.iter().find_map(|(r, _)| r.format(&mut buf).err());
                        if failed.is_some() {
                            buf.truncate(start);
                        }
                        batch.undo.extend(records.into_iter().map(|(_, u)| (u, failed.is_none())));
                        batch.done.push((done, failed));
                    }
                    Job::Rotate(reply) => {
                        self.commit(&mut buf, &mut batch);
                        let _ = reply.send(self.rotate());
                    }
                    Job::Check(reply) => {
                        let _ = reply.send(self.live.still_named());
                    }
                    Job::Rewrite(rows, failures, reply) => {
                        self.commit(&mut buf, &mut batch);
                        let result = if self.settle.failures() == failures {
                            self.rewrite(rows.as_bytes())
                        } else {
                            Err(LeaseError::RewriteStale)
                        };
                        let _ = reply.send(result);
                    }
                }
                if buf.len() < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(&mut buf, &mut batch);
        }
    }

    /// One write, one fdatasync; then the rows' outcomes are settled
    /// (what failed is undone in memory) and every handle of the batch
    /// completes.
    fn commit(&mut self, buf: &mut String, batch: &mut Batch) {
        if batch.done.is_empty() {
            buf.clear();
            return;
        }
        let result = if buf.is_empty() { Ok(()) } else { self.write_and_sync(buf.as_bytes()) };
        buf.clear();
        let mut undo = std::mem::take(&mut batch.undo);
        if result.is_err() {
            for (_, durable) in &mut undo {
                *durable = false;
            }
        }
        self.settle.settle(undo);
        for (done, own) in batch.done.drain(..) {
            let _ = done.send(match own {
                Some(e) => Err(e),
                None => result.clone(),
            });
        }
    }

    fn write_and_sync(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.poisoned {
            return Err(LeaseError::Poisoned(Box::new(e.clone())));
        }
        if let Err((e, restored)) = self.live.append(data) {
            if !restored {
                self.poisoned = Some(e.clone());
            }
            return Err(e);
        }
        if let Err(e) = self.live.sync() {
            // After a failed fsync the kernel may have dropped the dirty
            // pages and a retry could "succeed" without the data.
            self.poisoned = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn rewrite(&mut self, rows: &[u8]) -> Result<()> {
        if let Some(e) = &self.poisoned {
            return Err(LeaseError::Poisoned(Box::new(e.clone())));
        }
        let current = self.files.current().to_path_buf();
        let mut temp = current.clone().into_os_string();
        temp.push(".repair");
        let temp = std::path::PathBuf::from(temp);
        super::file::write_new_file(&temp, rows)?;
        std::fs::rename(&temp, &current).map_err(|e| LeaseError::io(&current, "rename repaired file into place", e))?;
        sync_dir(&self.files.dir())?;
        self.live = LiveFile::append_to(&current)?;
        Ok(())
    }

    fn rotate(&mut self) -> Result<bool> {
        if let Some(e) = &self.poisoned {
            return Err(LeaseError::Poisoned(Box::new(e.clone())));
        }
        let (current, input) = (self.files.current().to_path_buf(), self.files.input());
        if self.files.finish().exists() || input.exists() {
            return Ok(false);
        }
        std::fs::rename(&current, &input).map_err(|e| LeaseError::io(&current, "rename to .1", e))?;
        match LiveFile::create(&current) {
            Ok(live) => {
                // The old handle now points at NAME.1 and is closed here.
                self.live = live;
                Ok(true)
            }
            Err(e) => {
                // Put the old file back so rows keep going where they are read.
                let undone = std::fs::rename(&input, &current).is_ok() && sync_dir(&self.files.dir()).is_ok();
                if !undone {
                    self.poisoned = Some(e.clone());
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::leases::model::HwAddr;

    fn lease() -> Lease {
        Lease::new(Ipv4Addr::new(192, 0, 2, 1), Some(HwAddr::ethernet([1; 6])), None, 1, 100, 60)
    }

    /// Records the outcomes it is told, as the store would undo them.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(u64, bool)>>>);

    impl Settle for Recorder {
        fn settle(&mut self, outcomes: Vec<(Undo, bool)>) {
            self.0.lock().unwrap().extend(outcomes.into_iter().map(|(u, ok)| (u.seq, ok)));
        }
        fn failures(&self) -> u64 {
            self.0.lock().unwrap().iter().filter(|(_, ok)| !ok).count() as u64
        }
    }

    fn undo(seq: u64) -> Undo {
        Undo { seq, addr: lease().address, prev: None }
    }

    /// A full disk must never be acknowledged, and a file we could not cut
    /// back must not be written to again; every failed row is settled as
    /// failed, in order, before its handle completes.
    #[test]
    fn write_failures_are_reported_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let files = LeaseFiles::new(dir.path().join("l.csv"));
        let seen = Recorder::default();
        let writer = Writer::spawn(LiveFile::from_path_for_test(Path::new("/dev/full")), files, seen.clone()).unwrap();
        let first = writer.submit(Record::Upsert(lease()), undo(1)).blocking_recv().unwrap();
        match first {
            Err(LeaseError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("expected ENOSPC, got {other:?}"),
        }
        assert_eq!(*seen.0.lock().unwrap(), [(1, false)], "settled before the handle completed");
        // /dev/full cannot be truncated back, so the writer gives up for good.
        let second = writer.submit(Record::Delete(lease()), undo(2)).blocking_recv().unwrap();
        assert!(matches!(second, Err(LeaseError::Poisoned(_))), "{second:?}");
        assert!(matches!(writer.rotate(), Err(LeaseError::Poisoned(_))));
        let many = vec![(Record::Upsert(lease()), undo(3)), (Record::Delete(lease()), undo(4))];
        assert!(writer.submit_many(many).blocking_recv().unwrap().is_err());
        assert_eq!(*seen.0.lock().unwrap(), [(1, false), (2, false), (3, false), (4, false)]);
    }

    /// Durable rows are settled as such, in queue order; a rewrite whose
    /// snapshot may hold a row that failed since is refused.
    #[test]
    fn outcomes_are_settled_in_order_and_a_stale_rewrite_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = LeaseFiles::new(dir.path().join("l.csv"));
        let seen = Recorder::default();
        let writer = Writer::spawn(LiveFile::create(files.current()).unwrap(), files, seen.clone()).unwrap();
        let rx: Vec<_> = (1..=3).map(|i| writer.submit(Record::Upsert(lease()), undo(i))).collect();
        for r in rx {
            r.blocking_recv().unwrap().unwrap();
        }
        assert_eq!(*seen.0.lock().unwrap(), [(1, true), (2, true), (3, true)]);
        writer.rewrite(String::new(), 0).unwrap().recv().unwrap().unwrap();
        let stale = writer.rewrite(String::new(), 7).unwrap().recv().unwrap();
        assert!(matches!(stale, Err(LeaseError::RewriteStale)), "{stale:?}");
    }
}
