//! What the daemon does when its lease database is lost and comes back
//! (`on-fail`, as Kea 2.2 does it; the rules are in
//! [`crate::leases::pgsql::reconnect`], the detection in
//! [`crate::leases::pgsql::monitor`]).
//!
//! # The promise: no reply without a committed lease
//!
//! - The daemon's replies wait for their row's commit, and while the
//!   database is lost every write fails at once, so no ACK leaves.
//! - The kernel answers renewals first and writes them afterwards, so it
//!   must not answer while the database is lost, whatever `on-fail` says:
//!   [`DbGate`] (the core's [`ServingScopes`], in front of HA's) turns
//!   every subnet's kernel scope off from the loss until the reconnect.
//! - `stop-retry-exit` also disables the DHCP service (the `dhcp-disable`
//!   switch, so the status page and `status-get` show it) until the
//!   database is back; the `serve-retry-*` settings leave the daemon
//!   answering what needs no write (OFFERs, INFORMs), as Kea's service
//!   stays enabled. The switch is shared with `dhcp-disable`: a
//!   recovery enables DHCP again even if an operator disabled it during
//!   the outage (Kea keeps the two origins apart).
//! - Writes that failed leave memory (and the kernel) ahead of the
//!   database: [`adopt`] reads those rows again and installs them as they
//!   are ([`crate::leases::pgsql::shared`], rule 3); after an outage that is
//!   done before the kernel answers again.
//! - When reconnecting is off or runs out, every setting but
//!   `serve-retry-continue` shuts the server down with a failure status
//!   (systemd restarts it); `serve-retry-continue` runs on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::{Core, ServingScopes};
use crate::dhcp::policy::SubnetPolicy;
use crate::fastpath::SubnetServing;
use crate::leases::Lease;
use crate::leases::pgsql::PgLeaseDb;
use crate::leases::pgsql::monitor::DbEvent;

/// Pause before reading failed rows again when the database did not answer.
const ADOPT_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// How long a recovery waits for the failed rows to be read again before
/// the kernel answers again.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The kernel's scope: nothing while the lease database is lost, else
/// what HA allows.
pub struct DbGate {
    ha: Arc<dyn ServingScopes>,
    lost: AtomicBool,
}

impl DbGate {
    /// A gate in front of `ha`, open.
    pub fn new(ha: Arc<dyn ServingScopes>) -> DbGate {
        DbGate { ha, lost: AtomicBool::new(false) }
    }
}

impl ServingScopes for DbGate {
    fn kernel_serving(&self, subnet: &SubnetPolicy) -> SubnetServing {
        if self.lost.load(Ordering::Acquire) { SubnetServing::Off } else { self.ha.kernel_serving(subnet) }
    }
}

/// Until `shutdown`: reads again the rows of addresses whose writes
/// failed and installs each in memory as the database has it.
pub async fn adopt(db: PgLeaseDb, core: Core, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = db.conflicts().wait() => {}
        }
        if !adopt_pending(&db, &core).await {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(ADOPT_RETRY) => {}
            }
        }
    }
}

/// One pass over the pending addresses; false if some could not be read
/// (they stay pending).
async fn adopt_pending(db: &PgLeaseDb, core: &Core) -> bool {
    let mut all = true;
    for addr in db.conflicts().take() {
        match db.get(addr).await {
            Ok(row) => install(db, core, addr, row).await,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "reading a lease row again failed; will retry");
                db.conflicts().failed(addr);
                all = false;
            }
        }
        db.conflicts().read(addr);
    }
    all
}

/// Puts the database's `row` for `addr` in memory (and the kernel)
/// without writing it back.
async fn install(db: &PgLeaseDb, core: &Core, addr: std::net::Ipv4Addr, row: Option<Lease>) {
    if core.lease(addr) == row {
        return;
    }
    tracing::info!(%addr, "lease adopted from the database: a write failed, memory and kernel now hold the row as it is");
    db.conflicts().adopting(addr, row.clone());
    let durable = core.write(|tx| match row {
        Some(lease) => tx.upsert(lease),
        None => tx.remove(addr),
    });
    let _ = durable.await;
    db.conflicts().adopted(addr);
}

/// Applies each [`DbEvent`] to the core until `shutdown`; on a
/// [`DbEvent::GaveUp`] that says exit, sets `failed` and cancels
/// `shutdown` so the daemon stops with a failure status.
pub async fn follow(
    mut events: mpsc::UnboundedReceiver<DbEvent>,
    db: PgLeaseDb,
    core: Core,
    gate: Arc<DbGate>,
    failed: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => match e { Some(e) => e, None => return },
        };
        match event {
            DbEvent::Lost { stop_service } => {
                gate.lost.store(true, Ordering::Release);
                if stop_service {
                    core.disable_dhcp(u64::MAX).await;
                } else {
                    core.rescope_kernel().await;
                }
                tracing::warn!(stop_service, "lease database lost: the kernel answers nothing until it is back");
            }
            DbEvent::Recovered { start_service } => {
                // Memory (and so the kernel) back to what the database
                // holds for every write that failed during the outage.
                let settle = async { while !adopt_pending(&db, &core).await { tokio::time::sleep(ADOPT_RETRY).await } };
                if tokio::time::timeout(SETTLE, settle).await.is_err() {
                    tracing::warn!("lease rows written during the outage not all read again yet");
                }
                gate.lost.store(false, Ordering::Release);
                if start_service {
                    core.enable_dhcp().await;
                } else {
                    core.rescope_kernel().await;
                }
            }
            DbEvent::GaveUp { exit: true } => {
                tracing::error!("lease database lost for good: shutting down (on-fail)");
                failed.store(true, Ordering::Release);
                shutdown.cancel();
                return;
            }
            DbEvent::GaveUp { exit: false } => {
                tracing::warn!("lease database lost for good: serving on without it (serve-retry-continue)");
            }
        }
    }
}
