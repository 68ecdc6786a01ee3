//! Noticing that the lease database is gone, and getting it back the way
//! Kea 2.2 does ([`super::reconnect`] holds the rules; this is the I/O).
//!
//! # Why it looks like this
//!
//! - [`Health`] is one flag shared by every user of the pool. A statement
//!   that fails because the connection is unusable (Kea's SQLSTATE classes,
//!   [`PgError::is_unavailable`]) marks it down and wakes the monitor; while
//!   it is down every statement fails at once with [`PgError::Lost`]
//!   instead of waiting `connect-timeout` for a dead server, so a request
//!   gets no reply quickly and nothing is half-written. Kea does the same
//!   (`markUnusable`, then `checkUnusable` throws).
//! - The monitor also pings the database once a second while it is up:
//!   Kea only notices on a failed statement, but here the kernel answers
//!   renewals by itself and writes them afterwards, so a loss must stop it
//!   (through [`DbEvent::Lost`]) even when no statement happens to fail.
//! - A reconnect attempt drops every idle pooled connection (they died
//!   with the server) and checks the schema version on a new one, as
//!   Kea's `LeaseMgrFactory::create` does; only then is the flag up again.
//! - The daemon hears of each step as a [`DbEvent`] and owns what it does
//!   to the service and the process; this module logs Kea's messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::reconnect::{Reconnect, Step};
use super::{PgError, PgLeaseDb};

/// How often the monitor checks a healthy database.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// Whether the lease database is usable, shared by every statement.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    lost: Notify,
}

impl Health {
    /// Whether statements may be sent.
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    /// Looks at a failed statement's error: a lost connection marks the
    /// database down (logged once per loss, as Kea's
    /// `DATABASE_PGSQL_FATAL_ERROR`) and wakes the monitor.
    pub fn saw(&self, what: &str, e: &PgError) {
        if !e.is_unavailable() || self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        let code = match e {
            PgError::Db(e) => e.code().map_or("<sqlstate null>".to_owned(), |c| c.code().to_owned()),
            _ => "<sqlstate null>".to_owned(),
        };
        tracing::error!(target: "kea-dhcp4.database", msgid = "DATABASE_PGSQL_FATAL_ERROR",
            "Unrecoverable PostgreSQL error occurred: Statement: <{what}>, reason: {e} (error code: {code}).");
        self.lost.notify_one();
    }

    fn set_up(&self) {
        self.down.store(false, Ordering::Release);
    }
}

/// What the daemon must do about the lease database's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEvent {
    /// The database is lost: no lease can be committed. Stop the kernel's
    /// answers (they are written afterwards) and, if `stop_service`
    /// (`on-fail` `stop-retry-exit`), all DHCP service.
    Lost {
        /// Disable DHCP service until [`DbEvent::Recovered`].
        stop_service: bool,
    },
    /// The database is back: resume what [`DbEvent::Lost`] stopped.
    Recovered {
        /// Enable DHCP service again.
        start_service: bool,
    },
    /// No more reconnecting: shut down with a failure status if `exit`,
    /// else serve on without a database (`serve-retry-continue`).
    GaveUp {
        /// Shut the server down.
        exit: bool,
    },
}

/// Watches `db` until `shutdown`: pings it while up, and on a loss runs
/// Kea's reconnect procedure with `ctl`, sending each step to `events`.
pub async fn run(db: PgLeaseDb, mut ctl: Reconnect, events: mpsc::UnboundedSender<DbEvent>, shutdown: CancellationToken) {
    let health = Arc::clone(db.health());
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = health.lost.notified() => {}
            _ = tick.tick() => {
                if health.is_up() && let Err(e) = db.ping().await {
                    health.saw("ping", &e);
                }
            }
        }
        if health.is_up() {
            continue;
        }
        let step = ctl.lost();
        tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DB_RECONNECT_LOST_CONNECTION", "database connection lost.");
        match step {
            Step::Lost { stop_service } => {
                let _ = events.send(DbEvent::Lost { stop_service });
            }
            Step::Disabled { stop_service, exit } => {
                let _ = events.send(DbEvent::Lost { stop_service });
                tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DB_RECONNECT_DISABLED",
                    "database reconnect is disabled: max-reconnect-tries {}, reconnect-wait-time {}",
                    ctl.max_tries(), ctl.wait().as_millis());
                let _ = events.send(DbEvent::GaveUp { exit });
                return;
            }
            other => unreachable!("lost() returned {other:?}"),
        }
        if !reconnect(&db, &mut ctl, &events, &shutdown).await {
            return;
        }
    }
}

/// Kea's `dbReconnect` loop: true once reconnected, false when retries
/// ran out or the server is shutting down.
async fn reconnect(
    db: &PgLeaseDb,
    ctl: &mut Reconnect,
    events: &mpsc::UnboundedSender<DbEvent>,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        match db.reopen().await {
            Ok(()) => {
                db.health().set_up();
                let Step::Recovered { start_service } = ctl.recovered() else { unreachable!() };
                tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DB_RECONNECT_SUCCEEDED",
                    "database connection recovered.");
                let _ = events.send(DbEvent::Recovered { start_service });
                return true;
            }
            Err(e) => {
                tracing::error!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_FAILED",
                    "database reconnect failed: {e}");
            }
        }
        match ctl.attempt_failed() {
            Step::Retry { attempt, max, wait } => {
                tracing::info!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_SCHEDULE",
                    "scheduling attempt {attempt} of {max} in {} milliseconds", wait.as_millis());
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Step::Failed { max, exit } => {
                tracing::error!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_PGSQL_LEASE_DB_RECONNECT_FAILED",
                    "maximum number of database reconnect attempts: {max}, has been exhausted without success");
                tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DB_RECONNECT_FAILED",
                    "maximum number of database reconnect attempts: {max}, has been exhausted without success");
                let _ = events.send(DbEvent::GaveUp { exit });
                return false;
            }
            other => unreachable!("attempt_failed() returned {other:?}"),
        }
    }
}
