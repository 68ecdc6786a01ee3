//! Undoing a change whose row failed (memfile only).
//!
//! Memory changes at once and its row is written afterwards, so when the
//! write fails (disk full, an I/O error, a poisoned file) memory is ahead
//! of the file: without an undo the address would stay held, until the
//! lease expires, by a client that was never acknowledged, and the kernel
//! could renew it. Every row therefore carries the lease as it was before
//! its change ([`Undo`]), and the writer tells [`Undoer`] each row's
//! outcome in queue order, before any handle of the batch completes.
//!
//! The rule: a failed change is undone only if it is still the newest
//! queued for its address (its sequence number is the address's newest in
//! [`Rows`]). If a newer change is queued, memory already holds that one
//! and it decides: when it is durable the failure is moot; when it fails
//! too, memory goes back to the version before the *first* failed change
//! (the last one that reached the file), kept meanwhile in
//! [`Undoer::unresolved`]. The writer group-commits several versions of
//! one address in order, so this never restores over a newer durable
//! version.
//!
//! The lease database needs none of this: a failed database write has its
//! row read again and installed as the database holds it (see
//! [`crate::leases::pgsql::writer`]), which is right also when another
//! server changed the row meanwhile.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::index::Index;
use crate::leases::model::Lease;
use crate::leases::writer::{Settle, Undo};

/// Entries of [`Rows`] kept before settled ones are pruned.
const PRUNE_AT: usize = 4096;

/// The newest queued row's sequence number per address (under the index
/// lock, where rows are queued).
#[derive(Debug)]
pub(super) struct Rows {
    next: u64,
    newest: HashMap<Ipv4Addr, u64>,
    prune_at: usize,
}

impl Default for Rows {
    fn default() -> Self {
        Rows { next: 0, newest: HashMap::new(), prune_at: PRUNE_AT }
    }
}

impl Rows {
    /// Numbers a change of `addr` from `prev`, about to be queued. Entries
    /// whose rows are all settled (`settled`: the writer's watermark) are
    /// pruned now and then, so the map holds about the rows in flight.
    pub(super) fn queue(&mut self, addr: Ipv4Addr, prev: Option<Lease>, settled: u64) -> Undo {
        if self.newest.len() >= self.prune_at {
            self.newest.retain(|_, seq| *seq > settled);
            self.prune_at = (self.newest.len() * 2).max(PRUNE_AT);
        }
        self.next += 1;
        self.newest.insert(addr, self.next);
        Undo { seq: self.next, addr, prev }
    }

    /// Whether `seq` is the newest change queued for `addr`.
    fn is_newest(&self, addr: Ipv4Addr, seq: u64) -> bool {
        self.newest.get(&addr) == Some(&seq)
    }
}

/// Called with each address whose change was undone.
pub(super) type Hook = Arc<dyn Fn(Ipv4Addr) + Send + Sync>;

/// What the store and the writer thread's [`Undoer`] share.
#[derive(Default)]
pub(super) struct Marks {
    /// Every row up to this sequence number is settled.
    settled: AtomicU64,
    /// Rows that failed so far (changed under the index lock).
    failures: AtomicU64,
    /// Told about each undone address (the core queues its kernel entry).
    hook: Mutex<Option<Hook>>,
}

impl fmt::Debug for Marks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Marks").field("settled", &self.settled).field("failures", &self.failures).finish()
    }
}

impl Marks {
    /// The writer's watermark, for [`Rows::queue`].
    pub(super) fn settled(&self) -> u64 {
        self.settled.load(Ordering::Acquire)
    }

    /// Rows that failed so far; read under the index lock it is exact.
    pub(super) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    pub(super) fn set_hook(&self, hook: Hook) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }
}

/// The store's [`Settle`]r, on the writer thread: undoes failed changes.
pub(super) struct Undoer {
    index: Arc<Mutex<Index>>,
    marks: Arc<Marks>,
    /// Addresses whose newest settled row failed while a newer change was
    /// queued, with the version to go back to if that one fails too.
    unresolved: HashMap<Ipv4Addr, Option<Lease>>,
}

impl Undoer {
    pub(super) fn new(index: Arc<Mutex<Index>>, marks: Arc<Marks>) -> Undoer {
        Undoer { index, marks, unresolved: HashMap::new() }
    }

    /// Applies the rule (module doc) to one batch's outcomes; returns the
    /// addresses whose lease memory now holds as it was.
    fn undo(&mut self, index: &mut Index, outcomes: Vec<(Undo, bool)>) -> Vec<Ipv4Addr> {
        let mut restored = Vec::new();
        for (u, durable) in outcomes {
            if durable {
                self.unresolved.remove(&u.addr);
                continue;
            }
            let base = self.unresolved.remove(&u.addr).unwrap_or(u.prev);
            if index.rows.is_newest(u.addr, u.seq) {
                index.rows.newest.remove(&u.addr);
                index.restore(u.addr, base);
                restored.push(u.addr);
            } else {
                self.unresolved.insert(u.addr, base);
            }
        }
        restored
    }
}

impl Settle for Undoer {
    fn settle(&mut self, outcomes: Vec<(Undo, bool)>) {
        let Some(last) = outcomes.last().map(|(u, _)| u.seq) else { return };
        let failed = outcomes.iter().filter(|(_, durable)| !durable).count() as u64;
        if failed == 0 {
            if !self.unresolved.is_empty() {
                for (u, _) in &outcomes {
                    self.unresolved.remove(&u.addr);
                }
            }
            self.marks.settled.store(last, Ordering::Release);
            return;
        }
        let index = Arc::clone(&self.index);
        let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
        let restored = self.undo(&mut index, outcomes);
        self.marks.failures.fetch_add(failed, Ordering::AcqRel);
        drop(index);
        self.marks.settled.store(last, Ordering::Release);
        tracing::warn!(
            failed,
            undone = restored.len(),
            "lease writes failed: no reply for them, and their leases are as before in memory and the kernel"
        );
        let hook = self.marks.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            for addr in restored {
                hook(addr);
            }
        }
    }

    fn failures(&self) -> u64 {
        self.marks.failures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::model::HwAddr;

    fn ip() -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, 7)
    }

    fn version(expire: u64) -> Lease {
        Lease::new(ip(), Some(HwAddr::ethernet([2, 0, 0, 0, 0, 7])), None, 1, expire, 3600)
    }

    /// A store's index and the rows it queued, driven without a writer:
    /// each change is numbered as the store numbers it, and the test
    /// settles the rows with the outcomes it chooses, in queue order.
    struct Bench {
        index: Arc<Mutex<Index>>,
        undoer: Undoer,
    }

    impl Bench {
        fn new(durable: Option<Lease>) -> Bench {
            let index = Arc::new(Mutex::new(Index::default()));
            if let Some(l) = durable {
                index.lock().unwrap().insert(l);
            }
            let undoer = Undoer::new(Arc::clone(&index), Arc::default());
            Bench { index, undoer }
        }

        /// Memory changes to `lease` (`None`: removed); its row is queued.
        fn change(&self, lease: Option<Lease>) -> Undo {
            let mut index = self.index.lock().unwrap();
            let prev = match lease {
                Some(l) => index.insert(l),
                None => index.remove(ip()),
            };
            index.rows.queue(ip(), prev, 0)
        }

        fn settle(&mut self, outcomes: Vec<(Undo, bool)>) {
            self.undoer.settle(outcomes);
        }

        fn memory(&self) -> Option<Lease> {
            self.index.lock().unwrap().by_addr.get(&ip()).cloned()
        }
    }

    #[test]
    fn a_failed_change_is_undone_and_a_new_lease_removed() {
        let mut b = Bench::new(Some(version(100)));
        let u = b.change(Some(version(200)));
        b.settle(vec![(u, false)]);
        assert_eq!(b.memory(), Some(version(100)));
        let mut b = Bench::new(None);
        let u = b.change(Some(version(200)));
        b.settle(vec![(u, false)]);
        assert_eq!(b.memory(), None, "a lease that never reached the file is gone");
        let t = b.index.lock().unwrap().tally.get(&1).copied().unwrap_or_default();
        assert_eq!((t.assigned, t.entered), (0, 1), "the gauge follows; the attempt stays in the cumulative count");
        assert_eq!(b.undoer.failures(), 1);
    }

    #[test]
    fn a_removal_that_failed_brings_the_lease_back() {
        let mut b = Bench::new(Some(version(100)));
        let u = b.change(None);
        b.settle(vec![(u, false)]);
        assert_eq!(b.memory(), Some(version(100)));
    }

    /// v1 durable; v2 fails while v3 is queued; v3 is durable: memory
    /// keeps v3 (never restored over a newer durable version).
    #[test]
    fn a_failure_superseded_by_a_durable_change_changes_nothing() {
        let mut b = Bench::new(Some(version(100)));
        let (u2, u3) = (b.change(Some(version(200))), b.change(Some(version(300))));
        b.settle(vec![(u2, false)]);
        assert_eq!(b.memory(), Some(version(300)), "the newer change is still in flight");
        b.settle(vec![(u3, true)]);
        assert_eq!(b.memory(), Some(version(300)));
        assert!(b.undoer.unresolved.is_empty());
    }

    /// v2 and v3 both fail, in one batch or in two: memory goes back to
    /// v1, the last version that reached the file, not to v2.
    #[test]
    fn failures_in_a_row_go_back_to_the_last_durable_version() {
        for one_batch in [true, false] {
            let mut b = Bench::new(Some(version(100)));
            let (u2, u3) = (b.change(Some(version(200))), b.change(Some(version(300))));
            if one_batch {
                b.settle(vec![(u2, false), (u3, false)]);
            } else {
                b.settle(vec![(u2, false)]);
                b.settle(vec![(u3, false)]);
            }
            assert_eq!(b.memory(), Some(version(100)), "one batch: {one_batch}");
        }
    }

    /// v2 durable, v3 fails: back to v2 (the file's newest row).
    #[test]
    fn a_failure_after_a_durable_change_goes_back_to_it() {
        let mut b = Bench::new(Some(version(100)));
        let (u2, u3) = (b.change(Some(version(200))), b.change(Some(version(300))));
        b.settle(vec![(u2, true), (u3, false)]);
        assert_eq!(b.memory(), Some(version(200)));
    }

    /// A failed row settled after a newer change of the address was made
    /// (identical lease, as a retransmitted REQUEST writes): not undone.
    #[test]
    fn an_identical_newer_change_is_not_undone() {
        let mut b = Bench::new(None);
        let (u2, u3) = (b.change(Some(version(200))), b.change(Some(version(200))));
        b.settle(vec![(u2, false)]);
        assert_eq!(b.memory(), Some(version(200)));
        b.settle(vec![(u3, true)]);
        assert_eq!(b.memory(), Some(version(200)));
    }

    #[test]
    fn the_hook_hears_each_undone_address() {
        let mut b = Bench::new(None);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = Arc::clone(&heard);
        b.undoer.marks.set_hook(Arc::new(move |a| h.lock().unwrap().push(a)));
        let (u2, u3) = (b.change(Some(version(200))), b.change(Some(version(300))));
        b.settle(vec![(u2, false)]);
        assert!(heard.lock().unwrap().is_empty(), "nothing undone yet");
        b.settle(vec![(u3, false)]);
        assert_eq!(*heard.lock().unwrap(), [ip()]);
    }

    #[test]
    fn settled_rows_are_pruned() {
        let mut rows = Rows::default();
        for i in 0..PRUNE_AT as u32 {
            rows.queue(Ipv4Addr::from(i), None, 0);
        }
        rows.queue(Ipv4Addr::from(u32::MAX), None, PRUNE_AT as u64);
        assert_eq!(rows.newest.len(), 1, "only the row in flight is kept");
    }
}
