//! The lease store: Kea-compatible memfile CSV, crash-safe with group commit.
//!
//! # Why it looks like this
//!
//! xdhcp replaces Kea in place, so the lease file *is* Kea 2.2's DHCPv4
//! memfile: same columns, escaping and append-log semantics, and the same
//! cleanup file names, so either server (and `kea-lfc`) can pick up the
//! other's directory. On top of Kea's scheme we add what an ACK needs: a
//! change is acknowledged only after its row is fsynced, many rows share one
//! fsync (group commit), and every crash point of writing or cleanup is
//! recoverable without losing an acknowledged lease or resurrecting a
//! deleted one.
//!
//! # Layout
//!
//! - [`model`]: [`Lease`], [`HwAddr`], [`ClientId`], [`LeaseState`].
//! - [`csv`]: pure parsing and formatting of rows and headers.
//! - [`json`]: Kea's JSON dialect for the `user_context` column.
//! - [`file`](mod@file): file names, replaying files, the append-only live file.
//! - `writer`: the group-commit thread.
//! - [`guard`]: notices a live file removed or replaced underneath and
//!   rewrites it from memory.
//! - [`lfc`]: lease file cleanup (compaction) with Kea's files and steps.
//! - [`store`]: [`LeaseStore`], its indexes and the [`Durable`] handle.
//! - `kea_tests`: interop tests against the installed `kea-lfc` and
//!   `kea-dhcp4`; `tests/lease_store_kill.rs` SIGKILLs a writer process.
#![warn(missing_docs)]
pub mod csv;
mod error;
pub mod file;
pub mod guard;
pub mod json;
pub mod lfc;
pub mod model;
pub mod store;
mod writer;

#[cfg(test)]
mod kea_tests;

pub use error::{LeaseError, Result};
pub use file::{LeaseFiles, LoadReport, SkipReason, Skipped};
pub use lfc::{LfcOutcome, LfcReport};
pub use model::{ClientId, HwAddr, INFINITE_LIFETIME, InvalidLease, Lease, LeaseState};
pub use store::{DEFAULT_LEASE_FILE, Durable, LeaseStore, StoreConfig, SubnetTally};
