//! # The daemon's state
//!
//! [`Core`]: the compiled policy, the lease store, the allocator, the
//! counters, the DHCP switch and the reuse grace period, behind one
//! cloneable handle with methods and no public fields (tokio's mini-redis
//! `Db` is the model). Every interface, the control API, the HA runtime
//! and housekeeping hold a clone; none of them locks anything.
//!
//! The lock is a `std::sync::Mutex`: every critical section is short,
//! synchronous work on memory — a decision, an in-memory store update,
//! queuing a row for the lease writer — and no method holds it across an
//! `.await`, an fsync, a send or a bpf(2) call. Kernel map writes leave as
//! [`crate::kernel::Change`]s queued on [`KernelSync`]; the core holds no
//! map handle, so it cannot make one (the map-owning task is
//! [`crate::kernel::run`]). What the kernel may serve per subnet comes
//! from [`ServingScopes`], which the HA runtime implements: the core does
//! not know HA's runtime.
//!
//! # Layout
//!
//! - this file: [`Core`] and its state.
//! - `kernel`: the kernel messages, and [`Flushed`], which waits for them.
//! - `tx`: [`Core::write`] and its writes ([`Tx`]).
//! - [`pipeline`]: the pure packet decision, `process(state, inbound,
//!   link) -> Outcome`, and [`Core::process`], which commits it.
//! - [`stats`]: the counters as one enum.
//! - [`kea_stats`]: Kea's statistics with their sample history, moved by
//!   those counters and by the lease store's tallies.

pub mod kea_log;
pub mod kea_stats;
mod kernel;
pub mod pipeline;
pub mod stats;
mod tx;

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

pub use kea_stats::KeaStats;
pub use kernel::Flushed;
pub use stats::{Counter, HaDrop, Sent, Stats};
pub use tx::Tx;

use crate::{
    dhcp::{
        engine::Allocator,
        policy::{Policy, SubnetPolicy},
    },
    fastpath::SubnetServing,
    ha::ReuseGrace,
    kernel::{Change, KernelSync, Relink},
    leases::{Durable, Lease, LeaseStore},
};

/// What the kernel may answer per subnet besides the DHCP switch: with HA,
/// what the subnet's relationship serves now. Implemented by the HA
/// runtime, so that the core need not know it.
pub trait ServingScopes: Send + Sync {
    /// The kernel's scope for `subnet` while DHCP is enabled.
    fn kernel_serving(&self, subnet: &SubnetPolicy) -> SubnetServing;
}

/// The allocator's offer holds ([`Core::offers`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfferCounts {
    /// Offers held now (at most [`crate::dhcp::engine::MAX_HELD_OFFERS`]).
    pub held: u64,
    /// Offers sent without a hold since start, the table being full.
    pub unheld: u64,
}

/// The daemon's state: a cheap handle; clones share one state.
#[derive(Clone)]
pub struct Core {
    state: Arc<Mutex<State>>,
}

struct State {
    policy: Arc<Policy>,
    store: LeaseStore,
    alloc: Allocator,
    stats: Counters,
    /// Set by `dhcp-disable`: unix time until which requests are dropped
    /// unanswered (`u64::MAX`: until `dhcp-enable`). `None`: serving.
    dhcp_disabled_until: Option<u64>,
    /// Whether the kernel was last told to answer.
    kernel_serving: bool,
    /// Subnets the kernel must pass to the daemon whatever HA says, while
    /// a reconfiguration changes them ([`Core::hold_kernel`]).
    held: BTreeSet<u32>,
    /// Started by the last partner-down ([`crate::ha::grace`]).
    reuse_grace: Option<ReuseGrace>,
    /// Where kernel changes go; `None` without XDP.
    kernel: Option<KernelSync>,
    /// HA's part of the kernel's scopes; `None` without HA.
    scopes: Option<Arc<dyn ServingScopes>>,
}

/// The packet counters twice: cumulative ([`Stats`], for metrics and the
/// status page) and as Kea's statistics ([`KeaStats`]), which
/// `statistic-reset` and friends change. One `add` feeds both.
pub(crate) struct Counters {
    cumulative: Stats,
    kea: KeaStats,
    /// The policy the subnet statistics were made for: a new one (config
    /// apply) restarts them, as Kea's reconfiguration does.
    policy: Arc<Policy>,
}

impl Counters {
    fn add(&mut self, c: Counter, n: u64) {
        self.cumulative.add(c, n);
        self.kea.count(c, n, SystemTime::now());
    }

    fn merge(&mut self, other: &Stats) {
        let now = SystemTime::now();
        for (c, n) in other.iter() {
            self.cumulative.add(c, n);
            self.kea.count(c, n, now);
        }
    }
}

/// The core's lock guard: on release, Kea's statistics follow whatever the
/// critical section did to the lease store or the policy, so no method can
/// forget to.
struct Locked<'a>(MutexGuard<'a, State>);

impl Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.follow_store();
    }
}

impl State {
    /// Brings Kea's lease statistics up to date with the store and policy.
    fn follow_store(&mut self) {
        let now = SystemTime::now();
        let changed = self.store.take_tallies();
        if !Arc::ptr_eq(&self.stats.policy, &self.policy) {
            self.stats.policy = Arc::clone(&self.policy);
            self.stats.kea.reconfigure(&self.policy, &self.store.tallies(), now);
        } else if !changed.is_empty() {
            self.stats.kea.follow(changed, now);
        }
    }

    fn dhcp_enabled(&self, now: u64) -> bool {
        self.dhcp_disabled_until.is_none_or(|t| now >= t)
    }
}

impl Core {
    /// The state for `policy` and `store`; kernel changes go to `kernel`
    /// (none is sent until [`Core::rebuild_kernel`]).
    ///
    /// A change the store undoes because its row failed
    /// ([`LeaseStore::on_undo`]) is undone outside the core's lock, on the
    /// writer thread; the kernel-sync task is asked to read the address
    /// again ([`Change::Reread`]), which it does under the lock, so the
    /// entry it queues comes after any older one a critical section may
    /// still be queuing.
    pub fn new(policy: Policy, store: LeaseStore, kernel: Option<KernelSync>) -> Self {
        let policy = Arc::new(policy);
        if let Some(k) = &kernel {
            let k = k.clone();
            store.on_undo(move |addr| k.send(Change::Reread(addr)));
        }
        let _ = store.take_tallies();
        let kea = KeaStats::new(&policy, &store.tallies(), SystemTime::now());
        Core {
            state: Arc::new(Mutex::new(State {
                policy: Arc::clone(&policy),
                store,
                alloc: Allocator::default(),
                stats: Counters { cumulative: Stats::default(), kea, policy },
                dhcp_disabled_until: None,
                kernel_serving: true,
                held: BTreeSet::new(),
                reuse_grace: None,
                kernel,
                scopes: None,
            })),
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether nobody holds the lock right now (the kernel-sync tests
    /// check that no map is written from inside a critical section).
    #[cfg(test)]
    pub(crate) fn lock_is_free(&self) -> bool {
        self.state.try_lock().is_ok()
    }

    /// Lets HA decide what the kernel serves (before
    /// [`Core::rebuild_kernel`], so the kernel never serves more).
    pub fn set_scopes(&self, scopes: Arc<dyn ServingScopes>) {
        self.lock().scopes = Some(scopes);
    }

    /// The shared database's tracker of writes to read again (`None` for
    /// the memfile): a request whose write lost the race waits on it
    /// before it is decided again.
    pub fn conflicts(&self) -> Option<Arc<crate::leases::pgsql::shared::Conflicts>> {
        self.lock().store.conflicts()
    }

    /// The policy the packet path uses now (shared, never copied).
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.lock().policy)
    }

    /// Config apply ([`crate::reconfig`]): swaps the policy and, in the
    /// same critical section, runs `swap` (the HA runtime's new
    /// relationships), so no packet sees one without the other. Nothing in
    /// it is proportional to the leases. The kernel first gets the serving
    /// bits the new relationships allow on its current templates — a
    /// relationship restarted from `waiting` stops the kernel's answers
    /// for its subnets at once — then the new templates and a sweep of the
    /// lease entries in `relink`; the returned future completes once the
    /// sweep is over.
    pub fn reconfigure(&self, policy: Policy, relink: Relink, swap: impl FnOnce()) -> Flushed {
        let mut st = self.lock();
        let now = crate::clock::unix_now();
        swap();
        st.rescope(now);
        st.policy = Arc::new(policy);
        st.new_policy(now, relink);
        st.settled()
    }

    /// Whether this server answers DHCP at `now` (not `dhcp-disable`d).
    pub fn dhcp_enabled(&self, now: u64) -> bool {
        self.lock().dhcp_enabled(now)
    }

    /// The end of a `dhcp-disable` in force (`u64::MAX`: until
    /// `dhcp-enable`), or of one that ran out and nobody re-enabled.
    pub fn dhcp_disabled_until(&self) -> Option<u64> {
        self.lock().dhcp_disabled_until
    }

    /// `dhcp-disable`: stops answering until `until` (unix seconds), the
    /// kernel too.
    pub fn disable_dhcp(&self, until: u64) -> Flushed {
        let mut st = self.lock();
        st.dhcp_disabled_until = Some(until);
        st.rescope(crate::clock::unix_now());
        st.flushed()
    }

    /// `dhcp-enable`.
    pub fn enable_dhcp(&self) -> Flushed {
        let mut st = self.lock();
        st.dhcp_disabled_until = None;
        st.rescope(crate::clock::unix_now());
        st.flushed()
    }

    /// Starts the reuse grace period of a partner-down entered at `now`.
    pub fn start_reuse_grace(&self, now: u64) {
        let mut st = self.lock();
        let max_valid = st.policy.subnets.iter().map(|s| s.lifetimes.max_valid).max().unwrap_or(0);
        st.reuse_grace = Some(ReuseGrace::new(now, max_valid));
    }

    /// Adds `n` to a counter.
    pub fn count(&self, c: Counter, n: u64) {
        if n > 0 {
            self.lock().stats.add(c, n);
        }
    }

    /// Adds a batch of counts at once.
    pub fn count_all(&self, s: &Stats) {
        if s.iter().next().is_some() {
            self.lock().stats.merge(s);
        }
    }

    /// Offers held now and offers sent unheld since start (the hold table
    /// being full): what a DISCOVER flood costs, for `/metrics` and the
    /// status page.
    pub fn offers(&self) -> OfferCounts {
        let st = self.lock();
        OfferCounts { held: st.alloc.outstanding_offers() as u64, unheld: st.alloc.unheld_offers() }
    }

    /// A copy of every counter.
    pub fn stats(&self) -> Stats {
        self.lock().stats.cumulative.clone()
    }

    /// Reads or changes Kea's statistics (the `statistic-*` commands), up
    /// to date with the store.
    pub fn kea_stats<T>(&self, f: impl FnOnce(&mut KeaStats) -> T) -> T {
        let mut st = self.lock();
        st.follow_store();
        f(&mut st.stats.kea)
    }

    /// The lease of `addr`.
    pub fn lease(&self, addr: Ipv4Addr) -> Option<Lease> {
        self.lock().store.get(addr)
    }

    /// Every lease (a copy).
    pub fn leases(&self) -> Vec<Lease> {
        self.lock().store.snapshot()
    }

    /// Up to `limit` leases after `after`, in address order (Kea's paging).
    pub fn leases_after(&self, after: Option<Ipv4Addr>, limit: usize) -> Vec<Lease> {
        self.lock().store.page_after(after, limit)
    }

    /// Moves every lease (store, file, kernel) and every timer kept in
    /// unix time by the clock step the daemon's clock holds back
    /// ([`crate::clock::pending_step`]), and stops holding it back, in one
    /// critical section; `None` when there is none. Call before
    /// [`Core::housekeeping`], so reclamation runs on the moved leases.
    ///
    /// The store's shift is O(leases) in memory under the lock (a walk and
    /// two index rebuilds, once per step); the rows are written and the
    /// kernel's entries rewritten (a sweep) after it. Offers held are
    /// dropped (their hold times are on the old clock).
    pub fn compensate_clock_step(&self, reclamation: &mut crate::reclaim::Reclamation) -> Option<ClockShift> {
        let mut st = self.lock();
        let step = crate::clock::pending_step();
        if step == 0 {
            return None;
        }
        let started = std::time::Instant::now();
        let (rows, leases) = st.store.shift_times(step);
        crate::clock::step_compensated(step);
        reclamation.shift(step);
        st.alloc.expire_offers(u64::MAX);
        if let Some(until) = st.dhcp_disabled_until.as_mut()
            && *until != u64::MAX
        {
            *until = until.saturating_add_signed(step);
        }
        if let Some(g) = st.reuse_grace.as_mut() {
            g.since = g.since.saturating_add_signed(step);
        }
        st.new_policy(crate::clock::unix_now(), Relink::All);
        Some(ClockShift { step, leases, rows, kernel: st.settled(), locked: started.elapsed() })
    }

    /// Once a second: forgets stale offers, runs Kea's expired-lease
    /// processing when due (`reclamation` keeps its schedule), and lets
    /// the kernel resume when a `dhcp-disable` period ran out.
    pub fn housekeeping(&self, now: u64, reclamation: &mut crate::reclaim::Reclamation) {
        let mut st = self.lock();
        st.alloc.expire_offers(now);
        let expired = st.policy.expired_leases;
        for addr in reclamation.tick(&st.store, &expired, now) {
            st.lease_changed(addr);
        }
        if st.dhcp_enabled(now) != st.kernel_serving {
            st.rescope(now);
        }
    }
}

impl Core {
    /// `leases-reclaim`: reclaims every expired lease now, without the
    /// configured per-run limits; with `remove`, deletes them instead of
    /// keeping them as expired-reclaimed. Returns how many.
    pub fn reclaim_now(&self, remove: bool, now: u64) -> usize {
        let st = self.lock();
        let cfg = crate::config::ExpiredLeases {
            max_reclaim_leases: 0,
            max_reclaim_time: 0,
            hold_reclaimed_time: u32::from(!remove),
            ..st.policy.expired_leases
        };
        let (done, _) = crate::reclaim::reclaim(&st.store, &cfg, now);
        for addr in &done {
            st.lease_changed(*addr);
        }
        done.len()
    }
}

/// A compensated clock step ([`Core::compensate_clock_step`]).
#[must_use = "await the rows and the kernel to know the step is compensated"]
pub struct ClockShift {
    /// The step, seconds (positive: forward).
    pub step: i64,
    /// Leases moved.
    pub leases: usize,
    /// Their rows.
    pub rows: Durable,
    /// Completes once the kernel's entries are moved too.
    pub kernel: Flushed,
    /// How long the core's lock was held.
    pub locked: std::time::Duration,
}
