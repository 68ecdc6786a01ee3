//! What goes wrong with the PostgreSQL lease backend, in the terms callers
//! branch on: an address another server took first (try another), a lease
//! changed under us, a schema we do not know, a database we cannot reach.
//!
//! No variant carries the password: connection errors name the database
//! by `name on host:port` only.

use std::net::Ipv4Addr;

use thiserror::Error;

/// Errors of [`super::PgLeaseDb`].
#[derive(Debug, Error)]
pub enum PgError {
    /// The settings cannot be turned into a connection (before any I/O).
    #[error("lease database {target}: {reason}")]
    Settings {
        /// `name on host:port`.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// The database has no Kea schema at all.
    #[error(
        "lease database {target}: no Kea schema (no schema_version table); create it with \
         `kea-admin db-init pgsql` (xdhcpd never creates or alters Kea's tables)"
    )]
    NoSchema {
        /// `name on host:port`.
        target: String,
    },
    /// A schema version this server was not written against.
    #[error(
        "lease database {target}: Kea schema version {}.{} is not one xdhcpd knows ({known}); \
         refusing to read or write it",
        found.0, found.1
    )]
    UnknownSchema {
        /// `name on host:port`.
        target: String,
        /// The `(version, minor)` found.
        found: (i64, i64),
        /// The versions known, for the message.
        known: String,
    },
    /// An insert lost the race for its address: another server (or Kea)
    /// holds a row for it. The reply is withheld and the row read back
    /// into memory, so the client's next try gets another address.
    #[error("lease {0}: the address already has a lease in the database")]
    AddressTaken(Ipv4Addr),
    /// A conditional update or delete found the row changed (or gone)
    /// since it was read: someone else renewed, released or reassigned it.
    #[error("lease {0}: changed or removed in the database since it was read")]
    Changed(Ipv4Addr),
    /// A lease Kea's schema cannot hold (it would refuse it too).
    #[error("lease {address}: cannot be written to the database: {reason}")]
    Unwritable {
        /// The lease's address.
        address: Ipv4Addr,
        /// Why.
        reason: String,
    },
    /// A row that neither Kea nor xdhcpd can read as a lease.
    #[error("lease database row {address}: {reason}")]
    BadRow {
        /// The row's address, as text.
        address: String,
        /// Why.
        reason: String,
    },
    /// No connection could be had from the pool in time (database down,
    /// unreachable, refusing logins).
    #[error("lease database {target}: {source}")]
    Pool {
        /// `name on host:port`.
        target: String,
        /// The pool's error (it wraps the driver's).
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The database was found lost and is not back yet: nothing is sent
    /// to it until the monitor has reconnected (see [`super::monitor`]).
    #[error("lease database {target}: connection lost; reconnecting")]
    Lost {
        /// `name on host:port`.
        target: String,
    },
    /// A statement failed.
    #[error("lease database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

impl PgError {
    /// Whether the error is the database's unavailability (connection
    /// lost, server shutting down, no connection in time) rather than
    /// something about the lease: what `on-fail` and reconnects are about.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::Lost { .. } => true,
            // Waiting for a free pooled connection timed out: the pool is
            // saturated by load, the database may be fine (a new
            // connection that cannot be made is `Create` or `Backend`).
            PgError::Pool { source: deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait), .. } => false,
            PgError::Pool { .. } => true,
            PgError::Db(e) => e.is_closed() || e.code().is_none_or(|c| {
                let class = &c.code()[..2];
                // Kea's list: connection exception, insufficient resources,
                // program limit, operator intervention, system error.
                matches!(class, "08" | "53" | "54" | "57" | "58")
            }),
            _ => false,
        }
    }
}

/// Shorthand for this module's results.
pub type PgResult<T> = Result<T, PgError>;

#[cfg(test)]
mod tests {
    use deadpool_postgres::{PoolError, TimeoutType};

    use super::*;

    fn pool(source: PoolError) -> PgError {
        PgError::Pool { target: "kea on h:5432".into(), source }
    }

    #[test]
    fn a_saturated_pool_is_load_not_a_lost_database() {
        assert!(!pool(PoolError::Timeout(TimeoutType::Wait)).is_unavailable());
        assert!(pool(PoolError::Timeout(TimeoutType::Create)).is_unavailable());
        assert!(pool(PoolError::Closed).is_unavailable());
        assert!(PgError::Lost { target: "kea on h:5432".into() }.is_unavailable());
        assert!(!PgError::AddressTaken(Ipv4Addr::LOCALHOST).is_unavailable());
        assert!(!PgError::Changed(Ipv4Addr::LOCALHOST).is_unavailable());
    }
}
