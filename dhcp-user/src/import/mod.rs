//! `xdhcpd import-dhcpd`: an ISC dhcpd server's configuration (and leases)
//! turned into a Kea-format configuration that xdhcpd and Kea accept.
//!
//! ISC dhcpd is end-of-life; sites running a dhcpd failover pair move to
//! Kea's HA (or to xdhcpd, which reads Kea's format). The import is per
//! server: each peer's dhcpd.conf gives that peer's Kea file, and
//! `xdhcpd check` then compares the two results like any Kea pair.
//!
//! # Layout
//!
//! - `syntax.rs`: dhcpd's statement/block syntax (both files), includes,
//!   positions; pure, never panics.
//! - `convert/`: statements → Kea JSON plus a [`Report`] of every
//!   construct mapped, approximated, refused or noted (the declaration
//!   walk, per-scope settings, failover → HA, `subnet4`; see its layout).
//! - `leases.rs`: dhcpd.leases → active [`Lease`](crate::leases::Lease)s → Kea CSV.
//! - `cli.rs`: the file-reading and file-writing shell.

#![warn(missing_docs)]

pub mod cli;
pub mod convert;
pub mod leases;
pub mod syntax;

pub use convert::{DEFAULT_HA_PORT, ImportOptions, Imported, Outcome, Report, ReportEntry};
pub use leases::LeasesImport;
pub use syntax::{IncludeReader, Pos, SyntaxError};

/// Parses and converts one dhcpd.conf `text` (named `file`), reading
/// includes through `include`.
pub fn import_conf(
    text: &str,
    file: &str,
    include: &mut IncludeReader<'_>,
    opts: &ImportOptions,
) -> Result<Imported, SyntaxError> {
    let stmts = syntax::parse(text, file, include)?;
    Ok(convert::convert(&stmts, opts))
}

/// Parses dhcpd.leases `text` and keeps the active leases that fall in
/// `imported`'s subnets.
pub fn import_leases(
    text: &str,
    file: &str,
    imported: &Imported,
) -> Result<LeasesImport, SyntaxError> {
    let stmts = syntax::parse(text, file, &mut |name: &str| {
        Err(format!("include {name:?} in a leases file"))
    })?;
    Ok(leases::import(&stmts, &imported.subnets))
}

#[cfg(test)]
mod proptests;
