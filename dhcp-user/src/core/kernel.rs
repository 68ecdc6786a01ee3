//! The core's side of the kernel sync: what it queues for the map-owning
//! task ([`crate::kernel`]) and the future that waits for it. Apart from
//! the state, so that every kernel change visibly leaves through the queue.

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    sync::{Arc, Mutex, Weak},
};

use super::{Core, State};
use crate::{
    fastpath::SubnetServing,
    kernel::{Change, LeasePages, Relink, Scope},
};

impl State {
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
    pub(super) fn rescope(&mut self, now: u64) {
        self.kernel_serving = self.dhcp_enabled(now);
        if let Some(k) = &self.kernel {
            k.send(Change::Serving(self.scope(self.kernel_serving)));
        }
    }

    /// Queues the policy in force for the kernel: its templates at once,
    /// then a sweep of the lease entries `relink` names. O(subnets): the
    /// sweep's pages are read later, one short critical section each.
    pub(super) fn new_policy(&mut self, now: u64, relink: Relink) {
        self.kernel_serving = self.dhcp_enabled(now);
        if let Some(k) = &self.kernel {
            let scope = self.scope(self.kernel_serving);
            k.send(Change::Policy { policy: Arc::clone(&self.policy), scope, relink });
        }
    }

    /// Queues the store's lease of `addr` for the kernel.
    pub(super) fn lease_changed(&self, addr: Ipv4Addr) {
        if let Some(k) = &self.kernel {
            k.send(Change::Lease(addr, self.store.get(addr)));
        }
    }

    pub(super) fn flushed(&self) -> Flushed {
        Flushed(self.kernel.as_ref().map(|k| Box::pin(k.flushed()) as _))
    }

    pub(super) fn settled(&self) -> Flushed {
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
}
