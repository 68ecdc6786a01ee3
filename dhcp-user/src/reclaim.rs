//! Kea's expired-lease processing (`expired-leases-processing`): every
//! `reclaim-timer-wait-time` seconds, reclaim up to `max-reclaim-leases`
//! expired leases within `max-reclaim-time` milliseconds (removed outright
//! when `hold-reclaimed-time` is 0); every `flush-reclaimed-timer-wait-time`
//! seconds, remove reclaimed leases older than `hold-reclaimed-time`; warn
//! when `unwarned-reclaim-cycles` runs in a row left expired leases behind.
//! A timer set to 0 is off, as in Kea.
//!
//! The schedule is pure ([`Schedule`]); [`Reclamation::tick`] applies it to
//! the store and returns the addresses whose lease changed, for the kernel.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use crate::{config::ExpiredLeases, leases::LeaseStore};

/// Which runs are due, from the configuration and the clock alone.
#[derive(Debug, Default)]
pub struct Schedule {
    next_reclaim: u64,
    next_flush: u64,
}

/// What one tick should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Reclaim expired leases.
    pub reclaim: bool,
    /// Remove reclaimed leases held long enough.
    pub flush: bool,
}

impl Schedule {
    /// The runs due at `now` (Unix seconds); each timer starts one period
    /// after the first call, like Kea's timers after start-up.
    pub fn due(&mut self, cfg: &ExpiredLeases, now: u64) -> Due {
        let step = |next: &mut u64, every: u32| {
            if every == 0 {
                return false;
            }
            if *next == 0 {
                *next = now + u64::from(every);
                return false;
            }
            let due = now >= *next;
            if due {
                *next = now + u64::from(every);
            }
            due
        };
        Due {
            reclaim: step(&mut self.next_reclaim, cfg.reclaim_timer_wait_time),
            flush: step(&mut self.next_flush, cfg.flush_reclaimed_timer_wait_time),
        }
    }
}

/// The reclamation service's state between ticks.
#[derive(Debug, Default)]
pub struct Reclamation {
    schedule: Schedule,
    /// Runs in a row that left expired leases behind.
    incomplete_runs: u32,
}

impl Reclamation {
    /// The clock the timers count in moved by `step` seconds (a
    /// compensated clock step): so do the timers, or a step back would
    /// stop reclamation for as long.
    pub fn shift(&mut self, step: i64) {
        for next in [&mut self.schedule.next_reclaim, &mut self.schedule.next_flush] {
            if *next != 0 {
                *next = next.saturating_add_signed(step);
            }
        }
    }

    /// Runs what is due at `now`; returns the addresses whose lease changed.
    pub fn tick(&mut self, store: &LeaseStore, cfg: &ExpiredLeases, now: u64) -> Vec<Ipv4Addr> {
        let due = self.schedule.due(cfg, now);
        let mut changed = Vec::new();
        if due.reclaim {
            let (done, complete) = reclaim(store, cfg, now);
            changed.extend(done);
            self.incomplete_runs = if complete { 0 } else { self.incomplete_runs + 1 };
            if cfg.unwarned_reclaim_cycles != 0 && self.incomplete_runs >= cfg.unwarned_reclaim_cycles {
                tracing::warn!(
                    runs = self.incomplete_runs,
                    "expired leases are being reclaimed more slowly than they expire: raise max-reclaim-leases or max-reclaim-time"
                );
                self.incomplete_runs = 0;
            }
        }
        if due.flush {
            changed.extend(flush(store, cfg, now));
        }
        changed
    }
}

/// Reclaims expired leases within the run's limits; returns them, and
/// whether none was left behind.
pub fn reclaim(store: &LeaseStore, cfg: &ExpiredLeases, now: u64) -> (Vec<Ipv4Addr>, bool) {
    let started = Instant::now();
    let budget = (cfg.max_reclaim_time != 0).then(|| Duration::from_millis(u64::from(cfg.max_reclaim_time)));
    let limit = if cfg.max_reclaim_leases == 0 { usize::MAX } else { cfg.max_reclaim_leases as usize };
    let mut done = Vec::new();
    let mut expired = store.expired(now).peekable();
    while done.len() < limit && budget.is_none_or(|b| started.elapsed() < b) {
        let Some(lease) = expired.next() else { break };
        done.push(lease.address);
        // hold-reclaimed-time 0: Kea removes the lease instead of keeping
        // it as expired-reclaimed.
        if cfg.hold_reclaimed_time == 0 {
            settle(store.reclaim_and_remove(lease.address), "removing an expired lease");
        } else {
            settle(store.reclaim(lease.address), "reclaiming an expired lease");
        }
    }
    let complete = expired.peek().is_none();
    (done, complete)
}

/// Removes reclaimed leases that expired more than `hold-reclaimed-time` ago.
pub fn flush(store: &LeaseStore, cfg: &ExpiredLeases, now: u64) -> Vec<Ipv4Addr> {
    let gone = store.reclaimed_before(now.saturating_sub(u64::from(cfg.hold_reclaimed_time)));
    for a in &gone {
        settle(store.remove(*a), "removing a reclaimed lease");
    }
    gone
}

/// Waits for a store write in the background, logging a failure.
fn settle<T: Send + Unpin + 'static>(durable: crate::leases::Durable<T>, what: &'static str) {
    tokio::spawn(async move {
        if let Err(e) = durable.await {
            tracing::error!(error = %e, "{what} failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a compensated step back of an hour, reclamation keeps its
    /// period on the moved clock instead of pausing for the hour.
    #[test]
    fn timers_follow_a_compensated_clock_step() {
        let cfg = ExpiredLeases { reclaim_timer_wait_time: 10, flush_reclaimed_timer_wait_time: 0, ..Default::default() };
        let mut r = Reclamation::default();
        assert!(!r.schedule.due(&cfg, 10_000).reclaim);
        r.shift(-3600);
        let fired: Vec<u64> = (6400..6430).filter(|t| r.schedule.due(&cfg, *t).reclaim).collect();
        assert_eq!(fired, [6410, 6420]);
        assert_eq!(r.schedule.next_flush, 0, "a timer that is off stays off");
    }

    #[test]
    fn timers_fire_every_period_and_zero_turns_them_off() {
        let cfg = ExpiredLeases { reclaim_timer_wait_time: 10, flush_reclaimed_timer_wait_time: 25, ..Default::default() };
        let mut s = Schedule::default();
        let fired: Vec<(u64, Due)> = (1000..1060).map(|t| (t, s.due(&cfg, t))).filter(|(_, d)| d.reclaim || d.flush).collect();
        let reclaims: Vec<u64> = fired.iter().filter(|(_, d)| d.reclaim).map(|(t, _)| *t).collect();
        let flushes: Vec<u64> = fired.iter().filter(|(_, d)| d.flush).map(|(t, _)| *t).collect();
        assert_eq!(reclaims, [1010, 1020, 1030, 1040, 1050]);
        assert_eq!(flushes, [1025, 1050]);
        let off = ExpiredLeases { reclaim_timer_wait_time: 0, flush_reclaimed_timer_wait_time: 0, ..Default::default() };
        let mut s = Schedule::default();
        assert!((0..100).all(|t| s.due(&off, t) == Due { reclaim: false, flush: false }));
    }

    fn store_with_expired(n: u8, expire: u64) -> LeaseStore {
        use crate::leases::{HwAddr, Lease, StoreConfig};
        let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
        for i in 0..n {
            let hw = HwAddr::new(1, vec![2, 0, 0, 0, 0, i]).unwrap();
            let l = Lease::new(Ipv4Addr::new(10, 0, 0, i), Some(hw), None, 1, expire - 60, 60);
            drop(store.upsert(l));
        }
        store
    }

    #[tokio::test]
    async fn reclaim_respects_the_lease_limit_and_flush_the_hold_time() {
        let now = 1_800_000_000;
        let store = store_with_expired(5, now - 10);
        let cfg = ExpiredLeases { max_reclaim_leases: 3, hold_reclaimed_time: 100, ..Default::default() };
        let (done, complete) = reclaim(&store, &cfg, now);
        assert_eq!((done.len(), complete), (3, false));
        let (done, complete) = reclaim(&store, &cfg, now);
        assert_eq!((done.len(), complete), (2, true));
        assert_eq!(store.len(), 5, "reclaimed leases are kept for hold-reclaimed-time");
        assert!(flush(&store, &cfg, now).is_empty(), "held 10 s of 100");
        assert_eq!(flush(&store, &cfg, now + 95).len(), 5);
        assert_eq!(store.len(), 0);
        // hold-reclaimed-time 0: removed when reclaimed.
        let store = store_with_expired(2, now - 10);
        let cfg = ExpiredLeases { hold_reclaimed_time: 0, ..Default::default() };
        assert_eq!(reclaim(&store, &cfg, now).0.len(), 2);
        assert_eq!(store.len(), 0);
    }
}
