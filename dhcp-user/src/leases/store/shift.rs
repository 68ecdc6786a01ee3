//! Moving every lease's times by a clock step ([`crate::clock`]): the
//! daemon holds a wall-clock step back until the leases follow it, so
//! that none expires early (a step forward) or lives on (a step back).
//!
//! Memory is shifted in one critical section — O(leases), but only a walk
//! over the values and a rebuild of the two expiration indexes (a shift
//! keeps their order), once per step — and the rows go to the file (or
//! the database) as one writer job, through the normal durable path, so
//! replay and cleanup see them as any other change. A shift row that
//! fails is not undone: memory must follow the clock the daemon now runs
//! on; the file then keeps the old times until the lease's next change
//! (logged by the caller).

use std::net::Ipv4Addr;

use super::index::Index;
use super::{Durable, LeaseStore, Record};
use crate::leases::model::{INFINITE_LIFETIME, Lease};

/// `lease` moved by `step` seconds (positive: later): its expiry, and so
/// its cltt (expiry minus valid lifetime), which Kea's row derives from
/// it. Leases that never expire are left alone; `false` then.
pub fn shift_lease(lease: &mut Lease, step: i64) -> bool {
    if lease.valid_lifetime == INFINITE_LIFETIME || step == 0 {
        return false;
    }
    let floor = u64::from(lease.valid_lifetime);
    lease.expire = lease.expire.saturating_add_signed(step).max(floor);
    true
}

/// `leases` moved by `step` (see [`shift_lease`]), those that moved only.
pub fn shifted(leases: impl IntoIterator<Item = Lease>, step: i64) -> Vec<Lease> {
    leases.into_iter().filter_map(|mut l| shift_lease(&mut l, step).then_some(l)).collect()
}

impl Index {
    /// Moves every lease by `step` in place; returns the moved ones.
    fn shift(&mut self, step: i64) -> Vec<Lease> {
        let mut moved = Vec::new();
        for lease in self.by_addr.values_mut() {
            if shift_lease(lease, step) {
                moved.push(lease.clone());
            }
        }
        let expiry = |set: &std::collections::BTreeSet<(u64, Ipv4Addr)>, by_addr: &std::collections::BTreeMap<_, Lease>| {
            set.iter().map(|(_, a)| (by_addr[a].expire, *a)).collect()
        };
        self.by_expiry = expiry(&self.by_expiry, &self.by_addr);
        self.by_reclaimed = expiry(&self.by_reclaimed, &self.by_addr);
        moved
    }
}

impl LeaseStore {
    /// Moves every lease's times by `step` seconds (a compensated clock
    /// step): memory at once, the rows as one writer job; returns the
    /// handle for the rows and how many leases moved.
    pub fn shift_times(&self, step: i64) -> (Durable, usize) {
        let mut index = self.index();
        let moved = index.shift(step);
        let n = moved.len();
        let Some(writer) = &self.shared.writer else { return (Durable::ready(()), n) };
        if moved.is_empty() {
            return (Durable::ready(()), 0);
        }
        // A failed shift row "undoes" to the shifted lease: memory stays
        // on the daemon's clock.
        let records = moved.into_iter().map(|l| (Record::Upsert(l.clone()), Some(l))).collect();
        let settled = self.shared.marks.settled();
        let rx = writer.submit_many(records, |a, p| index.rows.queue(a, p, settled));
        drop(index);
        (Durable::pending((), Some(rx)), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::model::HwAddr;
    use crate::leases::{LeaseState, LeaseStore, StoreConfig};

    /// A lease of an hour ending at `expire`.
    fn lease(last: u8, expire: u64) -> Lease {
        let hw = Some(HwAddr::ethernet([2, 0, 0, 0, 0, last]));
        Lease::new(Ipv4Addr::new(192, 0, 2, last), hw, None, 1, expire - 3600, 3600)
    }

    const NOW: u64 = 1_796_000_000;

    /// The pure rule on a fake clock pair: before the step a lease has
    /// `left` seconds; after the clock moved by `step` and the leases by
    /// the same, it still has `left` — none expires early, none lives on.
    #[test]
    fn a_shift_keeps_each_lease_its_time_left() {
        for step in [3600i64, -3600, 7, -7] {
            let leases: Vec<Lease> = [(1, NOW + 10), (2, NOW + 1800), (3, NOW - 5)].map(|(i, e)| lease(i, e)).to_vec();
            let after = NOW.saturating_add_signed(step);
            let moved = shifted(leases.clone(), step);
            for (old, new) in leases.iter().zip(&moved) {
                assert_eq!(new.expire as i64 - after as i64, old.expire as i64 - NOW as i64, "step {step}");
                assert_eq!(new.valid_lifetime, old.valid_lifetime, "cltt moves with the expiry");
                assert_eq!((&new.hwaddr, new.subnet_id, new.state), (&old.hwaddr, old.subnet_id, old.state));
            }
        }
    }

    #[test]
    fn leases_that_never_expire_do_not_move() {
        let mut forever = lease(1, u64::from(u32::MAX));
        forever.valid_lifetime = INFINITE_LIFETIME;
        assert!(shifted([forever.clone()], 3600).is_empty());
        assert!(shifted([lease(2, NOW)], 0).is_empty(), "no step, nothing to write");
    }

    /// In the store: reclamation sees the moved times (the expiration
    /// indexes follow), and a reload of the file reads them.
    #[test]
    fn the_store_and_its_file_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases4.csv");
        let config = StoreConfig { path: Some(path.clone()), persist: true, lfc_interval: std::time::Duration::ZERO };
        let (store, _) = LeaseStore::open(config.clone()).unwrap();
        let (live, gone) = (lease(1, NOW + 600), lease(2, NOW - 100));
        let mut reclaimed = lease(3, NOW - 100);
        reclaimed.state = LeaseState::ExpiredReclaimed;
        for l in [&live, &gone, &reclaimed] {
            store.upsert(l.clone()).wait_blocking().unwrap();
        }
        let (rows, n) = store.shift_times(-3600);
        rows.wait_blocking().unwrap();
        assert_eq!(n, 3);
        let now = NOW - 3600;
        let expired: Vec<Ipv4Addr> = store.expired(now).map(|l| l.address).collect();
        assert_eq!(expired, [gone.address], "the live lease does not expire early on the new clock");
        assert_eq!(store.reclaimed_before(now - 99), vec![reclaimed.address]);
        assert!(store.reclaimed_before(now - 100).is_empty());
        drop(store);
        let (reloaded, _) = LeaseStore::open(config).unwrap();
        assert_eq!(reloaded.get(live.address).unwrap().expire, NOW + 600 - 3600);
    }

    /// What a shift costs under the lock, printed (a debug build on a
    /// shared host: not asserted); `--no-capture` to read it.
    #[test]
    fn shift_cost() {
        let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
        let n = 200_000u32;
        let leases = (0..n).map(|i| {
            let a = Ipv4Addr::from(0x0a00_0000 + i);
            Lease::new(a, Some(HwAddr::ethernet([2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 1])), None, 1, NOW + u64::from(i % 3600), 3600)
        });
        let _ = store.upsert_many(leases.collect()).0.wait_blocking();
        let t = std::time::Instant::now();
        let (_, moved) = store.shift_times(3600);
        eprintln!("shifting {moved} leases in memory: {:?}", t.elapsed());
        assert_eq!(moved, n as usize);
    }
}
