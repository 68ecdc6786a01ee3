//! The live lease file must stay where the next start reads it from.
//!
//! If the file is removed, renamed away or replaced while the server runs
//! (a stray `rm`, a log-rotation rule aimed at the wrong directory, a
//! restore from backup), appends still succeed — into an inode nobody will
//! read — and every lease is lost at the next start, silently. Every
//! [`CHECK_EVERY`] this thread asks the writer whether the name still
//! leads to its file; if not, it says so at error level and writes the
//! whole store, from memory, as a new live file under the name.

use std::time::Duration;

use super::store::LeaseStore;

/// How often the live file's name is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// One check, and the repair when needed: `Ok(None)` when the file was in
/// place, `Ok(Some(n))` when it was rewritten with `n` leases.
pub fn check_once(store: &LeaseStore) -> super::Result<Option<usize>> {
    if store.live_file_in_place()? {
        return Ok(None);
    }
    let path = store.files().map(|f| f.current().display().to_string()).unwrap_or_default();
    tracing::error!(
        "lease file {path} was removed or replaced while in use: rows written since then would be lost at the next \
         start; rewriting it from memory"
    );
    let n = store.rewrite_live_file()?;
    tracing::warn!("lease file {path} rewritten with {n} leases");
    Ok(Some(n))
}

/// [`check_once`] for the store's timer thread: failures are logged.
pub(super) fn tick(store: &LeaseStore) {
    if let Err(e) = check_once(store) {
        tracing::error!("lease file check failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::leases::{HwAddr, Lease, StoreConfig};

    fn open(dir: &std::path::Path) -> LeaseStore {
        let config = StoreConfig { path: Some(dir.join("leases4.csv")), persist: true, lfc_interval: Duration::ZERO };
        LeaseStore::open(config).unwrap().0
    }

    fn lease(i: u8) -> Lease {
        Lease::new(Ipv4Addr::new(10, 0, 0, i), Some(HwAddr::ethernet([2, 0, 0, 0, 0, i])), None, 1, 4_000_000_000, 3600)
    }

    /// Removed, then renamed away: each time the file comes back whole,
    /// and rows written afterwards land in it.
    #[test]
    fn a_removed_or_replaced_live_file_is_rewritten_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for i in 1..=3 {
            store.upsert(lease(i)).wait_blocking().unwrap();
        }
        assert_eq!(check_once(&store).unwrap(), None);
        let path = dir.path().join("leases4.csv");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(check_once(&store).unwrap(), Some(3));
        store.upsert(lease(4)).wait_blocking().unwrap();
        std::fs::rename(&path, dir.path().join("moved.csv")).unwrap();
        std::fs::write(&path, "something else\n").unwrap();
        assert_eq!(check_once(&store).unwrap(), Some(4));
        store.upsert(lease(5)).wait_blocking().unwrap();
        assert_eq!(check_once(&store).unwrap(), None);
        drop(store);
        let again = open(dir.path());
        assert_eq!(again.len(), 5, "every lease survives a restart");
    }
}
