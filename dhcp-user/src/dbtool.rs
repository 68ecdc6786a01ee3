//! `xdhcpd lease-dump` and `xdhcpd lease-upload`: the command-line edge of
//! [`crate::leases::pgsql::transfer`], with the database taken from a
//! config file's `lease-database`, as the server would open it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config;
use crate::leases::pgsql::{PgLeaseDb, transfer};

/// Statements in flight during an upload (the pool holds this many).
const UPLOAD_PARALLEL: usize = crate::leases::pgsql::connect::POOL_SIZE;

/// The PostgreSQL database `config_path` names, connected and its schema
/// checked.
async fn open(config_path: &Path) -> anyhow::Result<PgLeaseDb> {
    let cfg = config::load(config_path)?;
    let Some(pg) = cfg.lease_database().postgresql() else {
        anyhow::bail!(
            "{}: lease-database is not \"type\": \"postgresql\"; lease-dump and lease-upload move leases between \
             a memfile CSV and the PostgreSQL database a config names",
            config_path.display()
        );
    };
    Ok(PgLeaseDb::connect(pg).await?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// `xdhcpd lease-dump -c CONFIG -o FILE`: the database's leases as Kea's
/// `kea-admin lease-dump pgsql -4` writes them. Refuses to replace an
/// existing file unless `overwrite`.
pub fn lease_dump(config_path: &Path, output: &Path, overwrite: bool) -> anyhow::Result<()> {
    if !overwrite && output.exists() {
        anyhow::bail!("{}: exists; pass --overwrite to replace it", output.display());
    }
    let loaded = runtime()?.block_on(async { transfer::dump(&open(config_path).await?).await.map_err(anyhow::Error::from) })?;
    for bad in &loaded.bad_rows {
        eprintln!("warning: {bad}; left out of the dump");
    }
    let text = transfer::dump_csv(&loaded.leases)
        .map_err(|(lease, e)| anyhow::anyhow!("lease {}: cannot be written as CSV: {e}", lease.address))?;
    std::fs::write(output, text).with_context(|| format!("writing {}", output.display()))?;
    println!("{}: {} leases dumped ({} unreadable rows left out)", output.display(), loaded.leases.len(), loaded.bad_rows.len());
    Ok(())
}

/// `xdhcpd lease-upload -c CONFIG FILE…`: the leases of memfile CSV
/// files (replayed in the order given, as Kea loads `.2`, `.1`, then the
/// live file) written into the database.
pub fn lease_upload(config_path: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (leases, report) = transfer::read_files(&paths)?;
    for skipped in &report.skipped {
        eprintln!("warning: {skipped}");
    }
    let n = leases.len();
    let written = runtime()?.block_on(async {
        let db = open(config_path).await?;
        transfer::upload(&db, leases, UPLOAD_PARALLEL).await.map_err(|(written, e)| {
            anyhow::anyhow!("{e} (after {written} of {n} leases were written; the upload can be run again)")
        })
    })?;
    println!("{report}; {written} leases uploaded");
    Ok(())
}

/// Runs a `lease-dump` or `lease-upload` command (others are not ours).
pub fn run(command: crate::cli::Command) -> anyhow::Result<()> {
    use crate::cli::Command;
    match command {
        Command::LeaseDump { config, output, overwrite } => lease_dump(&config, &output, overwrite),
        Command::LeaseUpload { config, files } => lease_upload(&config, &files),
        other => anyhow::bail!("not a lease database tool: {other:?}"),
    }
}
