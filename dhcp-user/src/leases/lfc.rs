//! Lease file cleanup (Kea's LFC), done in-process but with Kea's files and
//! steps, so that Kea and xdhcp can take over each other's directory and
//! `kea-lfc` can finish a cleanup we started (and the reverse).
//!
//! The steps, and why each crash point is safe:
//!
//! 1. Rotate (in the writer thread, between two batches): `NAME` → `NAME.1`,
//!    fresh `NAME` with a header, directory fsynced. Skipped when `NAME.1` or
//!    `NAME.completed` is left over from an interrupted run; that run's files
//!    are finished first, and `NAME` keeps growing meanwhile.
//! 2. Unless `NAME.completed` exists: replay `NAME.2` then `NAME.1` into
//!    memory, write the survivors in address order to `NAME.output`, fsync,
//!    rename to `NAME.completed`, fsync the directory. A crash before the
//!    rename leaves `.2` and `.1` intact, and startup ignores `.output`.
//! 3. Remove `NAME.2` and `NAME.1`, fsync, rename `NAME.completed` → `NAME.2`,
//!    fsync. While `.completed` exists startup loads it *instead of* `.2` and
//!    `.1` (it is their merge), so a crash between the removals loses nothing
//!    and a half-removed `.1` cannot resurrect an old lease.
//!
//! `kea-lfc` does not fsync, so after a power loss its `.completed` may be
//! empty or cut short; while `.2` or `.1` still exist such a file is ignored
//! (startup) or redone (cleanup) instead of trusted.
//!
//! Startup replays `.completed` or (`.2`, `.1`), then `NAME`; each file only
//! holds rows newer than the one before, so replay order equals write order.
//! Writes racing a cleanup go to the new `NAME`, which cleanup never reads.
//! Like `kea-lfc`, we hold `NAME.pid` while working and give up after more
//! than 100 unreadable rows in one file, rather than compact away data we
//! might be misreading.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::csv;
use super::error::{LeaseError, Result};
use super::file::{LeaseFiles, LeaseMap, LoadReport, load_file, running_pid, sync_dir, write_new_file};

/// `kea-lfc`'s limit of unreadable rows per file.
pub const MAX_BAD_ROWS: usize = 100;

/// How a cleanup run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LfcOutcome {
    /// `.2` and `.1` were merged into a new `.2`.
    #[default]
    Compacted,
    /// A `.completed` file from an interrupted run was moved into place.
    Resumed,
    /// Another cleanup in this process is running; nothing done.
    Busy,
    /// The store does not persist leases.
    Disabled,
}

/// What one cleanup run did.
#[derive(Debug, Clone, Default)]
pub struct LfcReport {
    /// How it ended.
    pub outcome: LfcOutcome,
    /// True when this run moved the live file to `.1`.
    pub rotated: bool,
    /// Leases written to the new `.2` (when compacted).
    pub leases: usize,
    /// What replaying `.2` and `.1` found.
    pub input: LoadReport,
}

/// Removes the pid file when the run ends, however it ends.
struct PidGuard(PathBuf);

impl PidGuard {
    fn take(path: PathBuf) -> Result<PidGuard> {
        let me = std::process::id() as i32;
        if let Some(pid) = running_pid(&path)
            && pid != me
        {
            return Err(LeaseError::LfcRunning { pid_file: path, pid });
        }
        fs::write(&path, format!("{me}\n")).map_err(|e| LeaseError::io(&path, "write pid file", e))?;
        Ok(PidGuard(path))
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LeaseError::io(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Runs one cleanup; `rotate` asks the writer to move `NAME` to `NAME.1`.
pub(crate) fn run(files: &LeaseFiles, rotate: impl FnOnce() -> Result<bool>) -> Result<LfcReport> {
    let _pid = PidGuard::take(files.pid())?;
    let dir = files.dir();
    let mut report = LfcReport::default();
    if files.use_finish() {
        report.outcome = LfcOutcome::Resumed;
    } else {
        // Cut short by a power loss (only possible for Kea's unsynced one).
        remove_if_exists(&files.finish())?;
        report.rotated = rotate()?;
        let mut leases = LeaseMap::new();
        for path in [files.previous(), files.input()] {
            let before = report.input.skipped.len();
            load_file(&path, &mut leases, &mut report.input)?;
            let bad = report.input.skipped.len() - before;
            if bad > MAX_BAD_ROWS {
                return Err(LeaseError::TooManyBadRows { file: path, count: bad, max: MAX_BAD_ROWS });
            }
        }
        let mut body = String::with_capacity(leases.len() * 96);
        for lease in leases.values() {
            csv::format_row(lease, &mut body)
                .map_err(|source| LeaseError::InvalidLease { address: lease.address, source })?;
        }
        report.leases = leases.len();
        report.input.leases = leases.len();
        let (output, finish) = (files.output(), files.finish());
        write_new_file(&output, body.as_bytes())?;
        fs::rename(&output, &finish).map_err(|e| LeaseError::io(&output, "rename to .completed", e))?;
        sync_dir(&dir)?;
    }
    // Kea's `fileRotate`, with the fsyncs Kea leaves out.
    remove_if_exists(&files.previous())?;
    remove_if_exists(&files.input())?;
    sync_dir(&dir)?;
    fs::rename(files.finish(), files.previous())
        .map_err(|e| LeaseError::io(files.finish(), "rename to .2", e))?;
    sync_dir(&dir)?;
    Ok(report)
}
