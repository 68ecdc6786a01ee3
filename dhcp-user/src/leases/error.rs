//! The store's error type.
//!
//! It is `Clone` because one failed `fdatasync` must be reported to every
//! lease of the batch that shared it; I/O errors are kept behind an `Arc`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use super::csv::HeaderError;
use super::model::InvalidLease;

/// Everything that can go wrong in the lease store.
#[derive(Debug, Clone, Error)]
pub enum LeaseError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What we were doing ("open", "fdatasync", "rename to …").
        op: String,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A lease file whose header is not a Kea v4 lease file header.
    #[error("{}:{line}: not a Kea DHCPv4 lease file: {source}", file.display())]
    Header {
        /// The file.
        file: PathBuf,
        /// Line of the header (1-based).
        line: u64,
        /// What is wrong with it.
        #[source]
        source: HeaderError,
    },
    /// The lease cannot be stored in Kea's format.
    #[error("lease {address}: {source}")]
    InvalidLease {
        /// The lease address.
        address: std::net::Ipv4Addr,
        /// Why.
        #[source]
        source: InvalidLease,
    },
    /// A lease file cleanup process (ours or `kea-lfc`) holds the pid file.
    #[error("lease file cleanup (pid {pid}) is running, see {}", pid_file.display())]
    LfcRunning {
        /// The pid file.
        pid_file: PathBuf,
        /// The running process.
        pid: i32,
    },
    /// Compaction met more unreadable rows than `kea-lfc` tolerates.
    #[error("{}: {count} unreadable rows, more than the {max} lease file cleanup accepts", file.display())]
    TooManyBadRows {
        /// The file with the bad rows.
        file: PathBuf,
        /// Bad rows seen so far.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier `fdatasync` failed; after that the kernel may have dropped
    /// dirty pages, so nothing more is acknowledged until restart.
    #[error("lease file unusable after an earlier failure: {0}")]
    Poisoned(Box<LeaseError>),
    /// The writer thread is gone (store shut down or thread panicked).
    #[error("lease writer stopped")]
    WriterStopped,
    /// A live file rewrite was not made: a row queued before its snapshot
    /// of memory failed meanwhile, so the snapshot may hold a change that
    /// was undone (the file guard tries again at its next check).
    #[error("lease file not rewritten: a lease write failed while the rewrite waited")]
    RewriteStale,
    /// The lease database did not commit the change (see
    /// [`super::pgsql::PgError::is_unavailable`] for an outage).
    #[error("{0}")]
    Database(Arc<super::pgsql::PgError>),
}

impl LeaseError {
    /// The address whose insert lost the race to another server on a
    /// shared database, if that is what failed: the request can be decided
    /// again once the row is read back ([`super::pgsql::shared`]).
    pub fn lost_race(&self) -> Option<std::net::Ipv4Addr> {
        match self {
            LeaseError::Database(e) => match **e {
                super::pgsql::PgError::AddressTaken(a) => Some(a),
                _ => None,
            },
            _ => None,
        }
    }

    /// Wraps an I/O error with the path and the operation.
    pub(crate) fn io(path: impl Into<PathBuf>, op: impl Into<String>, source: io::Error) -> Self {
        LeaseError::Io { path: path.into(), op: op.into(), source: Arc::new(source) }
    }
}

/// Shorthand for results in this module.
pub type Result<T, E = LeaseError> = std::result::Result<T, E>;
