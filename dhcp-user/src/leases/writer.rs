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

/// Completion of one row: `Ok` once fsynced.
pub(crate) type Done = oneshot::Sender<Result<()>>;

enum Job {
    Write(Record, Done),
    /// Rows queued together, completed together (see [`Writer::submit_many`]).
    WriteMany(Vec<Record>, Done),
    /// Move `NAME` to `NAME.1` and start a new `NAME`; replies whether it
    /// rotated (it does not when an earlier cleanup left `.1` or `.completed`).
    Rotate(mpsc::Sender<Result<bool>>),
    /// Replies whether the live file's name still leads to it.
    Check(mpsc::Sender<bool>),
    /// Replaces the live file with a complete one holding these rows.
    Rewrite(String, mpsc::Sender<Result<()>>),
}

/// Handle to the writer thread. Dropping it flushes the queue and joins.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `live`.
    pub fn spawn(live: LiveFile, files: LeaseFiles) -> Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lease-writer".into())
            .spawn(move || WriterThread { live, files, poisoned: None }.run(rx))
            .map_err(|e| LeaseError::io("lease-writer", "spawn thread", e))?;
        Ok(Writer { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues a row; the receiver resolves once it is durable.
    pub fn submit(&self, record: Record) -> oneshot::Receiver<Result<()>> {
        let (done, rx) = oneshot::channel();
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(Job::Write(_, done))) = tx.send(Job::Write(record, done))
        {
            let _ = done.send(Err(LeaseError::WriterStopped));
        }
        rx
    }

    /// Queues rows that complete together: one channel message and one
    /// wakeup for all of them. They land in one commit; if any row cannot
    /// be formatted, none is written and the handle reports it.
    pub fn submit_many(&self, records: Vec<Record>) -> oneshot::Receiver<Result<()>> {
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

    /// Writes `rows` (formatted CSV lines) as a new complete live file,
    /// renamed into place and fsynced, and appends to it from then on
    /// (blocking). Rows queued before land in the old file first.
    pub fn rewrite(&self, rows: String) -> Result<()> {
        let (reply, rx) = mpsc::channel();
        let tx = self.tx.as_ref().ok_or(LeaseError::WriterStopped)?;
        tx.send(Job::Rewrite(rows, reply)).map_err(|_| LeaseError::WriterStopped)?;
        rx.recv().map_err(|_| LeaseError::WriterStopped)?
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
}

impl WriterThread {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut buf = String::with_capacity(64 << 10);
        let mut batch: Vec<Done> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write(record, done) => {
                        let formatted = match &record {
                            Record::Upsert(l) => csv::format_row(l, &mut buf),
                            Record::Delete(l) => csv::format_deletion(l, &mut buf),
                        };
                        match formatted {
                            Ok(()) => batch.push(done),
                            Err(source) => {
                                let address = match record {
                                    Record::Upsert(l) | Record::Delete(l) => l.address,
                                };
                                let _ = done.send(Err(LeaseError::InvalidLease { address, source }));
                            }
                        }
                    }
                    Job::WriteMany(records, done) => {
                        let start = buf.len();
                        let mut failed = None;
                        for record in &records {
                            let formatted = match record {
                                Record::Upsert(l) => csv::format_row(l, &mut buf),
                                Record::Delete(l) => csv::format_deletion(l, &mut buf),
                            };
                            if let Err(source) = formatted {
                                let address = match record {
                                    Record::Upsert(l) | Record::Delete(l) => l.address,
                                };
                                failed = Some(LeaseError::InvalidLease { address, source });
                                break;
                            }
                        }
                        match failed {
                            None => batch.push(done),
                            Some(e) => {
                                buf.truncate(start);
                                let _ = done.send(Err(e));
                            }
                        }
                    }
                    Job::Rotate(reply) => {
                        self.commit(&mut buf, &mut batch);
                        let _ = reply.send(self.rotate());
                    }
                    Job::Check(reply) => {
                        let _ = reply.send(self.live.still_named());
                    }
                    Job::Rewrite(rows, reply) => {
                        self.commit(&mut buf, &mut batch);
                        let _ = reply.send(self.rewrite(rows.as_bytes()));
                    }
                }
                if buf.len() < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.commit(&mut buf, &mut batch);
        }
    }

    /// One write, one fdatasync, then every handle of the batch completes.
    fn commit(&mut self, buf: &mut String, batch: &mut Vec<Done>) {
        if batch.is_empty() {
            buf.clear();
            return;
        }
        let result = self.write_and_sync(buf.as_bytes());
        buf.clear();
        for done in batch.drain(..) {
            let _ = done.send(result.clone());
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
    use std::net::Ipv4Addr;
    use std::path::Path;

    use super::*;
    use crate::leases::model::HwAddr;

    fn lease() -> Lease {
        Lease::new(Ipv4Addr::new(192, 0, 2, 1), Some(HwAddr::ethernet([1; 6])), None, 1, 100, 60)
    }

    /// A full disk must never be acknowledged, and a file we could not cut
    /// back must not be written to again.
    #[test]
    fn write_failures_are_reported_not_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let files = LeaseFiles::new(dir.path().join("l.csv"));
        let writer = Writer::spawn(LiveFile::from_path_for_test(Path::new("/dev/full")), files).unwrap();
        let first = writer.submit(Record::Upsert(lease())).blocking_recv().unwrap();
        match first {
            Err(LeaseError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("expected ENOSPC, got {other:?}"),
        }
        // /dev/full cannot be truncated back, so the writer gives up for good.
        let second = writer.submit(Record::Delete(lease())).blocking_recv().unwrap();
        assert!(matches!(second, Err(LeaseError::Poisoned(_))), "{second:?}");
        assert!(matches!(writer.rotate(), Err(LeaseError::Poisoned(_))));
    }
}
