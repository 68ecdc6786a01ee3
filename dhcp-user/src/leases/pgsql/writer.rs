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
//! One server per database for now: a record is written as it stands
//! (`upsert`). Several active servers need the allocator to see another
//! server's row ([`super::PgError::AddressTaken`]) — issue 21's next step.

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
}

fn lane_of(addr: Ipv4Addr) -> usize {
    // Consecutive addresses land in different lanes.
    u32::from(addr) as usize % LANES
}

fn address(record: &Record) -> Ipv4Addr {
    match record {
        Record::Upsert(l) | Record::Delete(l) => l.address,
    }
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
        DbWriter { lanes, runtime: runtime.clone() }
    }

    /// Queues one record; the receiver resolves once it is committed.
    pub fn submit(&self, record: Record) -> oneshot::Receiver<Result<()>> {
        let lane = lane_of(address(&record));
        self.send(lane, vec![record])
    }

    /// Queues records that complete together (each in its address's
    /// lane); the receiver resolves once all are committed, with the
    /// first error if any failed.
    pub fn submit_many(&self, records: Vec<Record>) -> oneshot::Receiver<Result<()>> {
        let mut by_lane: Vec<Vec<Record>> = (0..LANES).map(|_| Vec::new()).collect();
        for r in records {
            by_lane[lane_of(address(&r))].push(r);
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
        let mut result = Ok(());
        for record in records {
            if let Err(e) = apply(&db, record).await {
                result = Err(LeaseError::Database(Arc::new(e)));
                break;
            }
        }
        let _ = done.send(result);
    }
}

async fn apply(db: &PgLeaseDb, record: Record) -> std::result::Result<(), PgError> {
    match record {
        Record::Upsert(lease) => db.upsert(&lease).await,
        // The row as memory had it: gone or changed already is the same
        // outcome for this server (nothing of ours left to delete).
        Record::Delete(lease) => match db.delete(&lease).await {
            Err(PgError::Changed(addr)) => {
                tracing::debug!(%addr, "lease to delete was already changed or gone in the database");
                Ok(())
            }
            other => other,
        },
    }
}
