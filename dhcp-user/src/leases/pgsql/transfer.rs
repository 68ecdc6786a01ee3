//! Moving leases between a memfile and the database: `xdhcpd lease-dump`
//! and `xdhcpd lease-upload`, so a site can move a memfile pair's leases
//! into PostgreSQL (and back, or into Kea's memfile).
//!
//! The dump is the file `kea-admin lease-dump pgsql -4` writes: Kea's
//! memfile header and one memfile row per lease in address order, so it is
//! itself a lease file Kea and xdhcpd load, and `lease-upload` reads it
//! back. Rows are formatted by the memfile's own writer
//! ([`super::super::csv::format_row`]); the only differences from Kea's tool
//! are escapes Kea's SQL does not make (`&`, newlines in a hostname or
//! context), which both readers undo the same way.
//!
//! An upload reads files with the memfile's rules (header and schema, the
//! last row of an address wins, a row with valid lifetime 0 deletes it,
//! bad rows skipped and reported) and writes each lease over whatever the
//! database holds for its address ([`PgLeaseDb::upsert`]): it is for
//! moving a site's leases in while no server serves from the database.

use std::path::Path;

use super::super::LoadReport;
use super::super::csv::{HEADER, format_row};
use super::super::file::{LeaseMap, load_file};
use super::super::model::{INFINITE_LIFETIME, InvalidLease, Lease};
use super::{PgLeaseDb, PgResult};

/// Kea's lease-dump CSV of `leases` (in the order given: the database's
/// is by address). The `expire` column is the database's, as Kea's dump
/// prints it: for an infinite lease that is its cltt (a memfile row has
/// cltt + 2^32 - 1 there; [`from_dump`] tells the two apart).
pub fn dump_csv(leases: &[Lease]) -> Result<String, (Lease, InvalidLease)> {
    let mut out = String::with_capacity(64 + leases.len() * 96);
    out.push_str(HEADER);
    out.push('\n');
    for lease in leases {
        let mut row = lease.clone();
        row.expire = super::row::db_expire(lease);
        format_row(&row, &mut out).map_err(|e| (lease.clone(), e))?;
    }
    Ok(out)
}

/// A lease read from a CSV row, as it was meant: an infinite lease whose
/// `expire` is below 2^32 - 1 comes from a database dump (Kea's or ours),
/// where the column is its cltt; a memfile writes cltt + 2^32 - 1, which
/// no cltt after 1970 keeps that low.
pub fn from_dump(mut lease: Lease) -> Lease {
    if lease.valid_lifetime == INFINITE_LIFETIME && lease.expire < u64::from(INFINITE_LIFETIME) {
        lease.expire += u64::from(INFINITE_LIFETIME);
    }
    lease
}

/// The leases of the memfile CSV files `paths`, replayed in that order as
/// Kea loads its lease files, with what was skipped.
pub fn read_files(paths: &[&Path]) -> super::super::Result<(Vec<Lease>, LoadReport)> {
    let (mut leases, mut report) = (LeaseMap::new(), LoadReport::default());
    for path in paths {
        if load_file(path, &mut leases, &mut report)?.is_none() {
            return Err(super::super::LeaseError::io(
                path,
                "open",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    report.leases = leases.len();
    Ok((leases.into_values().map(from_dump).collect(), report))
}

/// Writes every lease to `db` (each over whatever row its address has),
/// up to `parallel` at a time. Stops at the first failure, returning it
/// with how many were written before.
pub async fn upload(db: &PgLeaseDb, leases: Vec<Lease>, parallel: usize) -> Result<usize, (usize, super::PgError)> {
    let mut written = 0;
    let mut running = tokio::task::JoinSet::new();
    let mut leases = leases.into_iter();
    loop {
        while running.len() < parallel.max(1)
            && let Some(lease) = leases.next()
        {
            let db = db.clone();
            running.spawn(async move { db.upsert(&lease).await });
        }
        let Some(done) = running.join_next().await else { return Ok(written) };
        match done.expect("an upload task panicked") {
            Ok(()) => written += 1,
            Err(e) => return Err((written, e)),
        }
    }
}

/// Every lease of `db` in address order, with the rows that cannot be
/// read (left out of the dump, as Kea's memfile would refuse them).
pub async fn dump(db: &PgLeaseDb) -> PgResult<super::Loaded> {
    db.load_all().await
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::leases::csv::Schema;
    use crate::leases::model::HwAddr;

    #[test]
    fn a_dump_is_a_lease_file_that_reads_back() {
        let mut a = Lease::new(Ipv4Addr::new(10, 0, 0, 5), Some(HwAddr::ethernet([2, 0, 0, 0, 0, 5])), None, 7, 1_700_000_000, 3600);
        a.hostname = "a,b&c.example".into();
        a.user_context = Some(serde_json::json!({ "k": "v,w" }));
        let b = Lease::declined(Ipv4Addr::new(10, 0, 0, 9), 7, 86_400, 1_700_000_000);
        let text = dump_csv(&[a.clone(), b.clone()]).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER));
        let schema = Schema::parse_header(HEADER).unwrap();
        let back: Vec<Lease> = lines.map(|l| schema.parse_row(l).unwrap()).collect();
        assert_eq!(back, [a, b]);
        assert!(text.starts_with(&format!("{HEADER}\n10.0.0.5,02:00:00:00:00:05,,3600,1700003600,7,0,0,a&#x2cb&#x26c.example,0,")), "{text}");
    }

    #[test]
    fn an_infinite_lease_dumps_its_cltt_and_reads_back_whole() {
        let mut a = Lease::new(Ipv4Addr::new(10, 0, 0, 5), Some(HwAddr::ethernet([2, 0, 0, 0, 0, 5])), None, 7, 1_700_000_000, 60);
        a.valid_lifetime = INFINITE_LIFETIME;
        a.expire = 1_700_000_000 + u64::from(INFINITE_LIFETIME);
        let text = dump_csv(std::slice::from_ref(&a)).unwrap();
        assert!(text.contains(",4294967295,1700000000,7,"), "{text}");
        let row = Schema::parse_header(HEADER).unwrap().parse_row(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(from_dump(row.clone()), a);
        // A memfile's own row of it is taken as it is.
        let mut memfile = String::new();
        format_row(&a, &mut memfile).unwrap();
        let row = Schema::parse_header(HEADER).unwrap().parse_row(memfile.trim_end()).unwrap();
        assert_eq!(from_dump(row), a);
    }
}
