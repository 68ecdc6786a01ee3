//! The store's durable sink when leases live in PostgreSQL: the same
//! records the memfile writer appends, applied as Kea's statements.
//!
//! The store keeps its in-memory indexes (reads never wait for the
//! database) and hands each change here; its `Durable` resolves once the
//! database has committed the row, so an ACK still goes out only after
//! that. Changes to one address are applied in the order memory made them
//! (each address always goes to the same lane, a task applying its queue
//! in order), while changes to different addresses run in parallel over
//! the pool — the database's counterpart of group commit.
//!
//! Records are written as a server sharing the database may write them
//! ([`super::shared`]): never over another client's live row, a release
//! fenced; a record that fails for any reason has its address read again
//! and the row installed in memory (the daemon does that), and a record
//! that is such an installation's echo is not written back.

use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::super::error::{LeaseError, Result};
use super::super::writer::{Done, Record};
use super::{PgError, PgLeaseDb};

/// Parallel lanes; matches the pool so each can hold a connection.
pub const LANES: usize = super::connect::POOL_SIZE;

type Job = (Vec<Record>, Done);

/// Sends records to the lane tasks; dropping it lets them finish and stop.
#[derive(Debug)]
pub(crate) struct DbWriter {
    lanes: Vec<mpsc::UnboundedSender<Job>>,
    runtime: tokio::runtime::Handle,
    conflicts: std::sync::Arc<super::shared::Conflicts>,
}

fn lane_of(addr: Ipv4Addr) -> usize {
    // Consecutive addresses land in different lanes.
    u32::from(addr) as usize % LANES
}

impl DbWriter {
    /// Starts the lane tasks on `runtime`.
    pub fn spawn(db: PgLeaseDb, runtime: &tokio::runtime::Handle) -> DbWriter {
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                runtime.spawn(run_lane(db.clone(), rx));
                tx
            })
            .collect();
        DbWriter { lanes, runtime: runtime.clone(), conflicts: std::sync::Arc::clone(db.conflicts()) }
    }

    /// The database's lost-race tracker ([`super::shared::Conflicts`]).
    pub fn conflicts(&self) -> std::sync::Arc<super::shared::Conflicts> {
        std::sync::Arc::clone(&self.conflicts)
    }

    /// Queues one record; the receiver resolves once it is committed.
    pub fn submit(&self, record: Record) -> oneshot::Receiver<Result<()>> {
        let lane = lane_of(record.address());
        self.send(lane, vec![record])
    }

    /// Queues records that complete together (each in its address's
    /// lane); the receiver resolves once all are committed, with the
    /// first error if any failed.
    pub fn submit_many(&self, records: Vec<Record>) -> oneshot::Receiver<Result<()>> {
        let mut by_lane: Vec<Vec<Record>> = (0..LANES).map(|_| Vec::new()).collect();
        for r in records {
            by_lane[lane_of(r.address())].push(r);
        }
        let parts: Vec<_> =
            by_lane.into_iter().enumerate().filter(|(_, rs)| !rs.is_empty()).map(|(i, rs)| self.send(i, rs)).collect();
        let (done, rx) = oneshot::channel();
        // On the writer's runtime, so a caller outside one can submit too.
        self.runtime.spawn(async move {
            let mut result = Ok(());
            for part in parts {
                let r = part.await.unwrap_or(Err(LeaseError::WriterStopped));
                if result.is_ok() {
                    result = r;
                }
            }
            let _ = done.send(result);
        });
        rx
    }

    fn send(&self, lane: usize, records: Vec<Record>) -> oneshot::Receiver<Result<()>> {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, done))) = self.lanes[lane].send((records, done)) {
            let _ = done.send(Err(LeaseError::WriterStopped));
        }
        rx
    }
}

async fn run_lane(db: PgLeaseDb, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some((records, done)) = rx.recv().await {
        // Every record is tried (a failed one must not hold back the
        // others of a batch); the first error is the job's.
        let mut result = Ok(());
        for record in records {
            if let Err(e) = apply(&db, record).await
                && result.is_ok()
            {
                result = Err(LeaseError::Database(Arc::new(e)));
            }
        }
        let _ = done.send(result);
    }
}

async fn apply(db: &PgLeaseDb, record: Record) -> std::result::Result<(), PgError> {
    let conflicts = db.conflicts();
    let addr = record.address();
    let result = match &record {
        Record::Upsert(lease) if conflicts.is_echo(addr, Some(lease)) => return Ok(()),
        Record::Delete(_) if conflicts.is_echo(addr, None) => return Ok(()),
        Record::Upsert(lease) => db.write_shared(lease).await,
        Record::Delete(lease) => match db.remove_shared(lease).await {
            // Changed or gone since memory read it: nothing of this
            // lease left to remove, but memory must learn what is there.
            Err(PgError::Changed(addr)) => {
                tracing::debug!(%addr, "lease to remove was already changed or gone in the database");
                conflicts.failed(addr);
                return Ok(());
            }
            other => other,
        },
    };
    if let Err(e) = &result {
        tracing::debug!(%addr, error = %e, "lease write failed; the row will be read again");
        conflicts.failed(addr);
    }
    result
}
