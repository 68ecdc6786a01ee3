//! Kea's schema version, checked once at start.
//!
//! xdhcpd reads and writes Kea's tables exactly as the Kea version it was
//! written against does, so it refuses any schema version it has not been
//! checked against: a newer Kea may have changed a column's meaning (as
//! 2.3's lease4 `relay_id`/`remote_id` columns and new states did), and
//! guessing could corrupt leases Kea relies on. It never creates or
//! upgrades the schema: that is `kea-admin db-init` / `db-upgrade`.

use tokio_postgres::error::SqlState;

use super::error::{PgError, PgResult};

/// Schema versions whose lease4 table xdhcpd reads and writes: Kea 2.2's.
pub const KNOWN_VERSIONS: [(i64, i64); 1] = [(13, 0)];

/// Checks `found` against [`KNOWN_VERSIONS`].
pub fn check(target: &str, found: (i64, i64)) -> PgResult<()> {
    if KNOWN_VERSIONS.contains(&found) {
        return Ok(());
    }
    let known = KNOWN_VERSIONS.iter().map(|(v, m)| format!("{v}.{m}, Kea 2.2")).collect::<Vec<_>>().join("; ");
    Err(PgError::UnknownSchema { target: target.to_owned(), found, known })
}

/// Reads `schema_version` over `client` and checks it.
pub async fn verify(client: &tokio_postgres::Client, target: &str) -> PgResult<(i64, i64)> {
    let row = match client.query_opt("SELECT version::bigint, minor::bigint FROM schema_version", &[]).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(PgError::NoSchema { target: target.to_owned() }),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            return Err(PgError::NoSchema { target: target.to_owned() });
        }
        Err(e) => return Err(e.into()),
    };
    let found = (row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?);
    check(target, found)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kea_2_2_schema_is_accepted() {
        assert!(check("kea on h:5432", (13, 0)).is_ok());
        for v in [(13, 1), (14, 0), (12, 0)] {
            let e = check("kea on h:5432", v).unwrap_err().to_string();
            assert!(e.contains(&format!("version {}.{}", v.0, v.1)) && e.contains("13.0"), "{e}");
        }
    }
}
