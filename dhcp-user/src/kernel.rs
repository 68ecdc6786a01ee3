//! # Kernel sync
//!
//! The one task that owns every BPF map handle ([`MapSync`]). The daemon's
//! state ([`crate::core::Core`]) never writes a map itself: under its lock
//! it only queues what changed — a lease, the serving scopes, a full
//! rebuild — on an unbounded channel ([`KernelSync`]), and this task makes
//! the bpf(2) calls after the lock is gone. So a reload of a million lease
//! entries stalls no interface, and an HA transition (a handful of scope
//! writes) waits for nothing but the queue ahead of it.
//!
//! Order is the store's: changes are queued under the core's lock in the
//! order the store took them, and applied in that order, so the lease map
//! converges on the store exactly as when the writes were made in place.
//! [`KernelSync::flushed`] waits until everything queued before it has
//! been applied: start-up waits for it before serving, the HA driver and
//! `dhcp-disable`/`-enable` before they answer.
//!
//! # Layout
//!
//! - [`Change`]: what the core sends; [`Scope`]: each subnet's serving
//!   bits, computed when the change is queued.
//! - [`Maps`]: what the task needs of the maps, implemented by
//!   [`MapSync`] (and by a recorder in the tests, which need no root).
//! - [`run`]: the task; it also rewrites the clock offset once a second.

use std::{collections::HashMap, net::Ipv4Addr, sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    dhcp::policy::{Policy, SubnetPolicy},
    fastpath::{MapSync, SubnetServing},
    leases::Lease,
    net::Interface,
};

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

/// One change for the kernel's copy, in store order.
#[derive(Debug)]
pub enum Change {
    /// The store's lease at this address now (`None`: gone).
    Lease(Ipv4Addr, Option<Lease>),
    /// Only who serves changed (HA transition, scopes, the DHCP switch):
    /// rewrite the serving bits, nothing else.
    Serving(Scope),
    /// The policy changed (start-up, config apply): rebuild every
    /// template and reload every lease.
    Rebuild {
        /// The policy the packet path now uses.
        policy: Arc<Policy>,
        /// The store's leases when the policy was swapped.
        leases: Vec<Lease>,
        /// Who serves.
        scope: Scope,
    },
    /// Answered once every change queued before it has been applied.
    Flushed(oneshot::Sender<()>),
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
        let (tx, rx) = oneshot::channel();
        self.send(Change::Flushed(tx));
        async move {
            let _ = rx.await;
        }
    }
}

/// The map writes the task makes; [`MapSync`] in the daemon.
pub trait Maps: Send + 'static {
    /// Every template and lease entry from `policy` and `leases`.
    fn rebuild(&mut self, policy: &Policy, ifaces: &[Interface], leases: &[Lease], scope: &Scope);
    /// Only the serving bits.
    fn set_serving(&mut self, policy: &Policy, scope: &Scope);
    /// One lease entry (and the reservation entries it concerns).
    fn lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>);
    /// The clock offset the kernel computes expiry with.
    fn set_clock(&mut self);
}

impl Maps for MapSync {
    fn rebuild(&mut self, policy: &Policy, ifaces: &[Interface], leases: &[Lease], scope: &Scope) {
        match self.install_subnets_scoped(policy, ifaces, |s| scope.get(s)) {
            Ok(left) => {
                for (id, why) in left {
                    tracing::info!(subnet = id, reason = ?why, "subnet answered by the daemon only");
                }
            }
            Err(e) => tracing::error!(error = %e, "updating the kernel's reply templates"),
        }
        self.load_all(policy, leases);
        tracing::info!(leases = self.loaded(), skipped_full = self.skipped_full, "kernel lease map loaded");
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

/// The kernel-sync task: applies changes in order until `shutdown` (then
/// what is already queued) or until every [`KernelSync`] is dropped.
/// Changes before the first [`Change::Rebuild`] are skipped: the kernel
/// has no template yet, and the rebuild carries the store and scopes as
/// they are by then.
pub async fn run<M: Maps>(
    mut maps: M,
    ifaces: Vec<Interface>,
    mut rx: mpsc::UnboundedReceiver<Change>,
    shutdown: CancellationToken,
) {
    maps.set_clock();
    let mut policy = None;
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
                maps.set_clock();
                continue;
            }
            _ = shutdown.cancelled() => {
                while let Ok(c) = rx.try_recv() {
                    apply(&mut maps, &mut policy, &ifaces, c);
                }
                return;
            }
        };
        apply(&mut maps, &mut policy, &ifaces, c);
    }
}

fn apply<M: Maps>(maps: &mut M, policy: &mut Option<Arc<Policy>>, ifaces: &[Interface], c: Change) {
    match c {
        Change::Lease(addr, lease) => {
            if let Some(p) = policy {
                maps.lease(p, addr, lease.as_ref());
            }
        }
        Change::Serving(scope) => {
            if let Some(p) = policy {
                maps.set_serving(p, &scope);
            }
        }
        Change::Rebuild { policy: p, leases, scope } => {
            maps.rebuild(&p, ifaces, &leases, &scope);
            *policy = Some(p);
        }
        Change::Flushed(done) => {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{core::Core, leases::LeaseStore};

    /// What a [`Maps`] call saw: its kind, and whether the core's lock was
    /// free at that moment.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Rebuild { leases: usize, serving: Vec<(u32, SubnetServing)> },
        Serving(Vec<(u32, SubnetServing)>),
        Lease(Ipv4Addr, bool),
    }

    /// Records every map write instead of making it, and checks that the
    /// core is not locked by its caller: on a current-thread runtime the
    /// task only runs when the test awaits, so a write made from inside
    /// one of the core's critical sections would find the lock taken.
    struct Recorder {
        core: Arc<Mutex<Option<Core>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Recorder {
        fn check(&self) {
            if let Some(core) = &*self.core.lock().unwrap() {
                assert!(core.lock_is_free(), "a map write under the core's lock");
            }
        }

        fn push(&self, s: Seen) {
            self.check();
            self.seen.lock().unwrap().push(s);
        }
    }

    fn sorted(policy: &Policy, scope: &Scope) -> Vec<(u32, SubnetServing)> {
        policy.subnets.iter().map(|s| (s.id, scope.get(s))).collect()
    }

    impl Maps for Recorder {
        fn rebuild(&mut self, policy: &Policy, _: &[Interface], leases: &[Lease], scope: &Scope) {
            self.push(Seen::Rebuild { leases: leases.len(), serving: sorted(policy, scope) });
        }
        fn set_serving(&mut self, policy: &Policy, scope: &Scope) {
            self.push(Seen::Serving(sorted(policy, scope)));
        }
        fn lease(&mut self, _: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
            self.push(Seen::Lease(addr, lease.is_some()));
        }
        fn set_clock(&mut self) {
            self.check();
        }
    }

    fn core_with_kernel() -> (Core, KernelSync, mpsc::UnboundedReceiver<Change>) {
        let cfg = crate::config::parse(
            r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
                "lease-database": { "type": "memfile", "persist": false },
                "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ] } ] } }"#,
            "test",
        )
        .unwrap();
        let (store, _) = LeaseStore::open(crate::glue::store_config(&cfg)).unwrap();
        let (sync, rx) = KernelSync::channel();
        (Core::new(crate::glue::compile(&cfg), store, Some(sync.clone())), sync, rx)
    }

    fn lease(last: u8) -> Lease {
        let hw = crate::leases::HwAddr::ethernet([2, 0, 0, 0, 0, last]);
        Lease::new(Ipv4Addr::new(192, 0, 2, last), Some(hw), None, 1, crate::clock::unix_now(), 3600)
    }

    /// The core's changes reach the maps in store order, each after the
    /// core's lock was released; `flushed` completes once they are in.
    #[tokio::test(flavor = "current_thread")]
    async fn changes_reach_the_maps_in_order_and_never_under_the_core_lock() {
        let (core, _sync, rx) = core_with_kernel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let maps = Recorder { core: Arc::new(Mutex::new(Some(core.clone()))), seen: Arc::clone(&seen) };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(maps, Vec::new(), rx, shutdown.clone()));

        // Before the first rebuild nothing is written: the rebuild carries it.
        let _ = core.write(|tx| tx.upsert(lease(10)));
        core.rebuild_kernel().await;
        let _ = core.write(|tx| tx.upsert(lease(11)));
        let _ = core.write(|tx| tx.remove(Ipv4Addr::new(192, 0, 2, 10)));
        core.disable_dhcp(u64::MAX).await;
        core.enable_dhcp().await;
        let all = vec![(1, SubnetServing::All)];
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                Seen::Rebuild { leases: 1, serving: all.clone() },
                Seen::Lease(Ipv4Addr::new(192, 0, 2, 11), true),
                Seen::Lease(Ipv4Addr::new(192, 0, 2, 10), false),
                Seen::Serving(vec![(1, SubnetServing::Off)]),
                Seen::Serving(all),
            ]
        );
        shutdown.cancel();
        task.await.unwrap();
    }

    /// The recorder itself catches a write made under the lock, so the
    /// test above would fail if the core wrote maps in place.
    #[test]
    #[should_panic(expected = "under the core's lock")]
    fn the_recorder_catches_a_write_under_the_lock() {
        let (core, _sync, _rx) = core_with_kernel();
        let maps = Recorder { core: Arc::new(Mutex::new(Some(core.clone()))), seen: Arc::default() };
        core.write(|_| maps.push(Seen::Lease(Ipv4Addr::UNSPECIFIED, false)));
    }

    /// A scope lists every subnet; one it does not know is off.
    #[test]
    fn scope_of_a_subnet_not_listed_is_off() {
        let (core, _sync, _rx) = core_with_kernel();
        let policy = core.policy();
        let scope = Scope::of(&policy, |_| SubnetServing::All);
        assert_eq!(scope.get(&policy.subnets[0]), SubnetServing::All);
        assert_eq!(Scope::default().get(&policy.subnets[0]), SubnetServing::Off);
    }
}
