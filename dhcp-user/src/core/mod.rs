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
//! - this file: [`Core`], its writes ([`Tx`]) and the kernel messages.
//! - [`pipeline`]: the pure packet decision, `process(state, inbound,
//!   link) -> Outcome`, and [`Core::process`], which commits it.
//! - [`stats`]: the counters as one enum.
//! - [`kea_stats`]: Kea's statistics with their sample history, moved by
//!   those counters and by the lease store's tallies.

pub mod kea_log;
pub mod kea_stats;
pub mod pipeline;
pub mod stats;

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::SystemTime,
};

pub use kea_stats::KeaStats;
pub use stats::{Counter, HaDrop, Sent, Stats};

use crate::{
    dhcp::{
        engine::Allocator,
        policy::{Policy, SubnetPolicy},
    },
    fastpath::SubnetServing,
    ha::ReuseGrace,
    kernel::{Change, KernelSync, LeasePages, Relink, Scope},
    leases::{ClientId, Durable, HwAddr, Lease, LeaseError, LeaseStore},
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

    /// What the kernel may answer in each subnet now, with the DHCP
    /// switch at `serving`. (A reuse grace period needs nothing here: the
    /// kernel only renews a client's own lease.)
    fn scope(&self, serving: bool) -> Scope {
        Scope::of(&self.policy, |s| match &self.scopes {
            _ if !serving || self.held.contains(&s.id) => SubnetServing::Off,
            None => SubnetServing::All,
            Some(h) => h.kernel_serving(s),
        })
    }

    /// Queues the serving bits for the kernel (no template, no lease).
    fn rescope(&mut self, now: u64) {
        self.kernel_serving = self.dhcp_enabled(now);
        if let Some(k) = &self.kernel {
            k.send(Change::Serving(self.scope(self.kernel_serving)));
        }
    }

    /// Queues the policy in force for the kernel: its templates at once,
    /// then a sweep of the lease entries `relink` names. O(subnets): the
    /// sweep's pages are read later, one short critical section each.
    fn new_policy(&mut self, now: u64, relink: Relink) {
        self.kernel_serving = self.dhcp_enabled(now);
        if let Some(k) = &self.kernel {
            let scope = self.scope(self.kernel_serving);
            k.send(Change::Policy { policy: Arc::clone(&self.policy), scope, relink });
        }
    }

    /// Queues the store's lease of `addr` for the kernel.
    fn lease_changed(&self, addr: Ipv4Addr) {
        if let Some(k) = &self.kernel {
            k.send(Change::Lease(addr, self.store.get(addr)));
        }
    }

    fn flushed(&self) -> Flushed {
        Flushed(self.kernel.as_ref().map(|k| Box::pin(k.flushed()) as _))
    }

    fn settled(&self) -> Flushed {
        Flushed(self.kernel.as_ref().map(|k| Box::pin(k.settled()) as _))
    }
}

/// The kernel-sync task's source of sweep pages: the core's store, read
/// in one short critical section per page. Weak, so the task does not
/// keep the core alive.
struct Pages(Weak<Mutex<State>>);

impl LeasePages for Pages {
    fn queue_page(&self, sweep: u64, after: Option<Ipv4Addr>, limit: usize, relink: &Relink) {
        let Some(state) = self.0.upgrade() else { return };
        let st = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = &st.kernel {
            let (leases, next) = st.store.scan_after(after, limit, |l| relink.covers(l.subnet_id));
            k.send(Change::Page { sweep, leases, next });
        }
    }

    fn queue_lease(&self, addr: Ipv4Addr) {
        let Some(state) = self.0.upgrade() else { return };
        let st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.lease_changed(addr);
    }
}

/// Completes when the kernel has applied every change queued before it
/// was made (at once without XDP).
#[must_use = "await it to know the kernel has the change"]
pub struct Flushed(Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>);

impl std::future::IntoFuture for Flushed {
    type Output = ();
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        self.0.unwrap_or_else(|| Box::pin(async {}))
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

    /// Where the kernel-sync task reads its sweep pages
    /// ([`crate::kernel::run`]).
    pub fn lease_pages(&self) -> Arc<dyn LeasePages> {
        Arc::new(Pages(Arc::downgrade(&self.state)))
    }

    /// Queues every template and lease for the kernel (start-up); the
    /// returned future completes once every lease entry is in.
    pub fn rebuild_kernel(&self) -> Flushed {
        let mut st = self.lock();
        st.new_policy(crate::clock::unix_now(), Relink::All);
        st.settled()
    }

    /// Stops the kernel answering in `subnets` (their serving bits off,
    /// whatever HA says) until [`Core::release_kernel`]: a reconfiguration
    /// holds the subnets it changes before the daemon switches policy, so
    /// the kernel never answers there with the old one, nor with lease
    /// entries the new one has not rewritten yet.
    pub fn hold_kernel(&self, subnets: BTreeSet<u32>) -> Flushed {
        let mut st = self.lock();
        st.held = subnets;
        st.rescope(crate::clock::unix_now());
        st.flushed()
    }

    /// Ends [`Core::hold_kernel`].
    pub fn release_kernel(&self) -> Flushed {
        let mut st = self.lock();
        st.held.clear();
        st.rescope(crate::clock::unix_now());
        st.flushed()
    }

    /// Queues only who serves (an HA transition or scope change): the
    /// kernel has it when the returned future completes.
    pub fn rescope_kernel(&self) -> Flushed {
        let mut st = self.lock();
        st.rescope(crate::clock::unix_now());
        st.flushed()
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

    /// Several reads and writes as one step, so that no DHCP exchange can
    /// slip between a check and its write; every write reaches the kernel.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> T) -> T {
        let mut st = self.lock();
        f(&mut Tx { st: &mut st })
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

/// The store inside one [`Core::write`]: reads, and writes that also go to
/// the kernel.
pub struct Tx<'a> {
    st: &'a mut State,
}

impl Tx<'_> {
    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.st.policy
    }

    /// The lease of `addr`.
    pub fn get(&self, addr: Ipv4Addr) -> Option<Lease> {
        self.st.store.get(addr)
    }

    /// The leases of a MAC in a subnet.
    pub fn by_hwaddr(&self, subnet_id: u32, hw: &HwAddr) -> Vec<Lease> {
        self.st.store.by_hwaddr(subnet_id, hw)
    }

    /// The leases of a client-id in a subnet.
    pub fn by_client_id(&self, subnet_id: u32, id: &ClientId) -> Vec<Lease> {
        self.st.store.by_client_id(subnet_id, id)
    }

    /// Every lease (a copy).
    pub fn snapshot(&self) -> Vec<Lease> {
        self.st.store.snapshot()
    }

    /// Writes `lease`; durable when the returned value completes.
    pub fn upsert(&mut self, lease: Lease) -> Durable {
        let addr = lease.address;
        let d = self.st.store.upsert(lease);
        self.st.lease_changed(addr);
        d
    }

    /// Writes many leases as one writer job; returns those refused.
    pub fn upsert_many(&mut self, leases: Vec<Lease>) -> (Durable, Vec<(Lease, LeaseError)>) {
        let addrs: Vec<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
        let (d, refused) = self.st.store.upsert_many(leases);
        for a in addrs {
            self.st.lease_changed(a);
        }
        (d, refused)
    }

    /// Deletes the lease of `addr`.
    pub fn remove(&mut self, addr: Ipv4Addr) -> Durable {
        let d = self.st.store.remove(addr);
        self.st.lease_changed(addr);
        d
    }

    /// Counts in the same step.
    pub fn count(&mut self, c: Counter, n: u64) {
        self.st.stats.add(c, n);
    }
}
