//! # Kernel sync
//!
//! The one task that owns every BPF map handle ([`MapSync`]). The daemon's
//! state ([`crate::core::Core`]) never writes a map itself: under its lock
//! it only queues what changed — a lease, the serving scopes, a new policy
//! — on an unbounded channel ([`KernelSync`]), and this task makes the
//! bpf(2) calls after the lock is gone. An HA transition (a handful of
//! scope writes) waits for nothing but the queue ahead of it.
//!
//! Order is the store's: changes are queued under the core's lock in the
//! order the store took them, and applied in that order, so the lease map
//! converges on the store exactly as when the writes were made in place.
//! [`KernelSync::flushed`] waits until everything queued before it has
//! been applied: the HA driver and `dhcp-disable`/`-enable` wait for it
//! before they answer.
//!
//! A new policy ([`Change::Policy`]: start-up, config apply) costs the core
//! nothing proportional to the leases: it carries the policy, the scopes
//! and which subnets' lease entries the policy changes ([`Relink`]); the
//! task installs the templates at once and then *sweeps* the store for
//! those entries a page at a time. It asks for each page only when the
//! previous one is in ([`LeasePages::queue_page`]); the core reads it in
//! one short critical section and queues it on the same channel, so a
//! page sits in store order among the other changes and is never older
//! than a lease change applied after it. The kernel stays exact meanwhile
//! because the subnets being relinked are not served by it: the core
//! turns their serving bits off before it switches policy and back on
//! once [`KernelSync::settled`] says the sweep is over
//! ([`crate::reconfig`]).
//!
//! # Layout
//!
//! - [`Change`]: what the core sends; [`Scope`]: each subnet's serving
//!   bits, computed when the change is queued; [`Relink`]: which leases a
//!   sweep rewrites.
//! - [`Maps`]: what the task needs of the maps, implemented by
//!   [`MapSync`] (and by a recorder in the tests, which need no root).
//! - [`LeasePages`]: where sweep pages come from (the core).
//! - [`run`]: the task; it also rewrites the clock offset once a second.

use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    dhcp::policy::{Policy, SubnetPolicy},
    fastpath::{MapSync, SubnetServing},
    leases::Lease,
    net::Interface,
};

/// Leases per sweep page: a page is read under the core's lock and written
/// to the maps in one go (a few milliseconds each), so neither the packet
/// path nor the task's other changes wait long behind one.
pub const PAGE: usize = 1024;

/// What the kernel may answer in each subnet, by subnet id; a subnet not
/// listed is not served ([`SubnetServing::Off`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope(HashMap<u32, SubnetServing>);

impl Scope {
    /// Every subnet of `policy` with the scope `serving` gives it.
    pub fn of(policy: &Policy, serving: impl Fn(&SubnetPolicy) -> SubnetServing) -> Self {
        Scope(policy.subnets.iter().map(|s| (s.id, serving(s))).collect())
    }

    /// The scope of `subnet`.
    pub fn get(&self, subnet: &SubnetPolicy) -> SubnetServing {
        self.0.get(&subnet.id).copied().unwrap_or(SubnetServing::Off)
    }
}

/// The leases whose kernel entries a new policy changes, by their subnet
/// id (a lease's entry depends only on its own subnet's pools, network and
/// reservations, and on which subnet its address falls in first).
#[derive(Clone, Debug, PartialEq)]
pub enum Relink {
    /// Every lease (start-up).
    All,
    /// The leases of these subnets (none: templates only).
    Subnets(BTreeSet<u32>),
}

impl Relink {
    /// No lease entry changes: no sweep.
    pub fn is_empty(&self) -> bool {
        matches!(self, Relink::Subnets(s) if s.is_empty())
    }

    /// Whether the entry of a lease in `subnet_id` is rewritten.
    pub fn covers(&self, subnet_id: u32) -> bool {
        match self {
            Relink::All => true,
            Relink::Subnets(s) => s.contains(&subnet_id),
        }
    }

    /// Both sets (a sweep restarted by a second policy covers the first's).
    fn union(self, other: Relink) -> Relink {
        match (self, other) {
            (Relink::Subnets(mut a), Relink::Subnets(b)) => {
                a.extend(b);
                Relink::Subnets(a)
            }
            _ => Relink::All,
        }
    }
}

/// One change for the kernel's copy, in store order.
#[derive(Debug)]
pub enum Change {
    /// The store's lease at this address now (`None`: gone).
    Lease(Ipv4Addr, Option<Lease>),
    /// Only who serves changed (HA transition, scopes, the DHCP switch):
    /// rewrite the serving bits, nothing else.
    Serving(Scope),
    /// The policy changed (start-up, config apply): install every
    /// template now, then sweep the store for the entries in `relink`.
    Policy {
        /// The policy the packet path now uses.
        policy: Arc<Policy>,
        /// Who serves.
        scope: Scope,
        /// The leases whose entries it changes.
        relink: Relink,
    },
    /// Read the store's lease at this address again and queue it (the
    /// store undid a change whose row failed, outside the core's lock: the
    /// core's read, [`LeasePages::queue_lease`], puts it in store order).
    Reread(Ipv4Addr),
    /// One page of a sweep, queued by the core in store order.
    Page {
        /// The sweep it was asked for (a later policy restarts the sweep
        /// and a page of the old one is ignored).
        sweep: u64,
        /// The page's leases that the sweep covers.
        leases: Vec<Lease>,
        /// Where the next page starts (`None`: the store is done).
        next: Option<Ipv4Addr>,
    },
    /// Answered once every change queued before it has been applied.
    Flushed(oneshot::Sender<()>),
    /// Answered once every change queued before it has been applied and no
    /// sweep is running.
    Settled(oneshot::Sender<()>),
}

/// Where the sweep's pages come from: the core, which reads the store
/// under its lock and queues the page as a [`Change::Page`] on the same
/// channel, in store order.
pub trait LeasePages: Send + Sync {
    /// Queues up to `limit` stored leases after `after` (from the lowest
    /// address when `None`), only those `relink` covers.
    fn queue_page(&self, sweep: u64, after: Option<Ipv4Addr>, limit: usize, relink: &Relink);
    /// Queues the stored lease of `addr` as a [`Change::Lease`].
    fn queue_lease(&self, addr: Ipv4Addr);
}

/// The sending half: cheap to clone, never blocks, makes no syscall. The
/// core queues its changes here under its lock.
#[derive(Clone, Debug)]
pub struct KernelSync {
    tx: mpsc::UnboundedSender<Change>,
}

impl KernelSync {
    /// A handle and the receiver [`run`] takes.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Change>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (KernelSync { tx }, rx)
    }

    /// Queues a change (dropped silently once the task has stopped: the
    /// daemon is shutting down).
    pub fn send(&self, c: Change) {
        let _ = self.tx.send(c);
    }

    /// Queues a marker and returns a future that completes when everything
    /// queued before it is in the kernel (at once if the task is gone).
    pub fn flushed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.marker(Change::Flushed)
    }

    /// As [`KernelSync::flushed`], and also once the sweep of the last
    /// policy has rewritten every lease entry it changes.
    pub fn settled(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.marker(Change::Settled)
    }

    fn marker(&self, c: fn(oneshot::Sender<()>) -> Change) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.send(c(tx));
        async move {
            let _ = rx.await;
        }
    }
}

/// The map writes the task makes; [`MapSync`] in the daemon.
pub trait Maps: Send + 'static {
    /// Every template (subnets, reservations, relays) from `policy`; lease
    /// entries are left as they are.
    fn install(&mut self, policy: &Policy, ifaces: &[Interface], scope: &Scope);
    /// Only the serving bits.
    fn set_serving(&mut self, policy: &Policy, scope: &Scope);
    /// One lease entry (and the reservation entries it concerns).
    fn lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>);
    /// The clock offset the kernel computes expiry with.
    fn set_clock(&mut self);
}

impl Maps for MapSync {
    fn install(&mut self, policy: &Policy, ifaces: &[Interface], scope: &Scope) {
        match self.install_subnets_scoped(policy, ifaces, |s| scope.get(s)) {
            Ok(left) => {
                for (id, why) in left {
                    tracing::info!(subnet = id, reason = ?why, "subnet answered by the daemon only");
                }
            }
            Err(e) => tracing::error!(error = %e, "updating the kernel's reply templates"),
        }
    }

    fn set_serving(&mut self, policy: &Policy, scope: &Scope) {
        if let Err(e) = MapSync::set_serving(self, policy, |s| scope.get(s)) {
            tracing::error!(error = %e, "updating the kernel's serving scopes");
        }
    }

    fn lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        self.sync_lease(policy, addr, lease);
    }

    fn set_clock(&mut self) {
        if let Err(e) = MapSync::set_clock(self) {
            tracing::warn!(error = %e, "updating the kernel's clock offset");
        }
    }
}

/// The sweep in progress.
struct Sweep {
    id: u64,
    relink: Relink,
    started: Instant,
    leases: usize,
}

/// The task's state between changes.
struct Task<M> {
    maps: M,
    ifaces: Vec<Interface>,
    pages: Arc<dyn LeasePages>,
    policy: Option<Arc<Policy>>,
    sweep: Option<Sweep>,
    sweeps: u64,
    /// [`Change::Settled`] markers waiting for the sweep to end.
    settled: Vec<oneshot::Sender<()>>,
}

/// The kernel-sync task: applies changes in order until `shutdown` (then
/// what is already queued, without starting new pages) or until every
/// [`KernelSync`] is dropped. Changes before the first [`Change::Policy`]
/// are skipped: the kernel has no template yet, and that policy's sweep
/// reads the store as it is by then.
pub async fn run<M: Maps>(
    mut maps: M,
    ifaces: Vec<Interface>,
    pages: Arc<dyn LeasePages>,
    mut rx: mpsc::UnboundedReceiver<Change>,
    shutdown: CancellationToken,
) {
    maps.set_clock();
    let mut task = Task { maps, ifaces, pages, policy: None, sweep: None, sweeps: 0, settled: Vec::new() };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let c = tokio::select! {
            biased;
            c = rx.recv() => match c {
                Some(c) => c,
                None => return,
            },
            _ = tick.tick() => {
                task.maps.set_clock();
                continue;
            }
            _ = shutdown.cancelled() => {
                task.sweep = None;
                while let Ok(c) = rx.try_recv() {
                    task.apply(c);
                }
                return;
            }
        };
        task.apply(c);
    }
}

impl<M: Maps> Task<M> {
    fn apply(&mut self, c: Change) {
        match c {
            Change::Lease(addr, lease) => {
                if let Some(p) = &self.policy {
                    self.maps.lease(p, addr, lease.as_ref());
                }
            }
            Change::Reread(addr) => self.pages.queue_lease(addr),
            Change::Serving(scope) => {
                if let Some(p) = &self.policy {
                    self.maps.set_serving(p, &scope);
                }
            }
            Change::Policy { policy, scope, relink } => {
                // A compensated clock step queues a policy to sweep the
                // moved leases: the kernel's clock moves with them, here,
                // not at the next tick (harmless otherwise).
                self.maps.set_clock();
                self.maps.install(&policy, &self.ifaces, &scope);
                self.policy = Some(policy);
                let relink = match self.sweep.take() {
                    Some(running) => running.relink.union(relink),
                    None => relink,
                };
                if !relink.is_empty() {
                    self.sweeps += 1;
                    self.pages.queue_page(self.sweeps, None, PAGE, &relink);
                    self.sweep = Some(Sweep { id: self.sweeps, relink, started: Instant::now(), leases: 0 });
                }
                self.settle();
            }
            Change::Page { sweep, leases, next } => {
                let (Some(s), Some(p)) = (&mut self.sweep, &self.policy) else { return };
                if s.id != sweep {
                    return;
                }
                for l in &leases {
                    self.maps.lease(p, l.address, Some(l));
                }
                s.leases += leases.len();
                match next {
                    Some(after) => self.pages.queue_page(s.id, Some(after), PAGE, &s.relink),
                    None => {
                        tracing::info!(leases = s.leases, relink = ?s.relink, ms = s.started.elapsed().as_millis() as u64,
                            "kernel lease entries rewritten for the new policy");
                        self.sweep = None;
                        self.settle();
                    }
                }
            }
            Change::Flushed(done) => {
                let _ = done.send(());
            }
            Change::Settled(done) => {
                self.settled.push(done);
                self.settle();
            }
        }
    }

    /// Answers the [`Change::Settled`] markers once no sweep runs.
    fn settle(&mut self) {
        if self.sweep.is_none() {
            for done in self.settled.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests;
