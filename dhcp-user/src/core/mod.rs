//! The daemon's state every interface, the control API and the HA runtime
//! share: the compiled policy, the lease store, the allocator, the
//! counters, the DHCP switch and the reuse grace period.

pub mod stats;

use std::{net::Ipv4Addr, sync::Arc};

pub use stats::{Counter, HaDrop, Sent, Stats};

use crate::{
    clock::unix_now,
    dhcp::{
        engine::Allocator,
        policy::{Policy, SubnetPolicy},
    },
    leases::LeaseStore,
};

/// State shared by every interface task.
pub struct Shared {
    /// The compiled configuration.
    pub policy: Policy,
    /// The lease store (authoritative copy of all leases).
    pub store: LeaseStore,
    /// Offers and pool cursors.
    pub alloc: Allocator,
    /// Counters.
    pub stats: Stats,
    /// The kernel's copy (None when running userspace-only).
    pub sync: Option<crate::fastpath::MapSync>,
    /// Set by the API's `dhcp-disable`: unix time until which requests are
    /// dropped unanswered (`u64::MAX`: until `dhcp-enable`). `None`: serving.
    pub dhcp_disabled_until: Option<u64>,
    /// The serving interfaces (the kernel's reply templates name them).
    pub ifaces: Vec<crate::net::Interface>,
    /// Whether the kernel was last told to answer (see [`Shared::resync_kernel`]).
    pub kernel_serving: bool,
    /// HA relationships, when the config loads `libdhcp_ha`.
    pub ha: Option<Arc<crate::peer::HaRuntime>>,
    /// The reuse grace period started by the last partner-down
    /// ([`crate::ha::grace`]).
    pub reuse_grace: Option<crate::ha::ReuseGrace>,
}

impl Shared {
    /// Whether this server answers DHCP right now (not `dhcp-disable`d).
    pub fn dhcp_enabled(&self, now: u64) -> bool {
        self.dhcp_disabled_until.is_none_or(|t| now >= t)
    }

    /// What the kernel may answer in each subnet now: nothing while the
    /// daemon's DHCP switch is off; with HA, only while the subnet's
    /// relationship serves it. (A reuse grace period needs nothing here:
    /// the kernel only renews a client's own lease.)
    fn kernel_scope(&self, serving: bool) -> impl Fn(&SubnetPolicy) -> crate::fastpath::SubnetServing + use<> {
        let ha = self.ha.clone();
        move |s: &SubnetPolicy| match &ha {
            _ if !serving => crate::fastpath::SubnetServing::Off,
            None => crate::fastpath::SubnetServing::All,
            Some(h) => h.kernel_serving(s),
        }
    }

    /// Rewrites every kernel template and lease entry from the current
    /// policy and store, serving only when the daemon serves: at start-up
    /// and after a config change (templates and lease entries depend on
    /// the policy). Who serves alone changing is
    /// [`Shared::rescope_kernel`]'s job.
    pub fn resync_kernel(&mut self) {
        let serving = self.dhcp_enabled(unix_now());
        self.kernel_serving = serving;
        let scope = self.kernel_scope(serving);
        let Some(sync) = &mut self.sync else { return };
        match sync.install_subnets_scoped(&self.policy, &self.ifaces, scope) {
            Ok(left) => {
                for (id, why) in left {
                    tracing::info!(subnet = id, reason = ?why, "subnet answered by the daemon only");
                }
            }
            Err(e) => tracing::error!(error = %e, "updating the kernel's reply templates"),
        }
        sync.load_all(&self.policy, &self.store.snapshot());
    }

    /// Rewrites only who the kernel answers for (each subnet's serving
    /// scope), after an HA transition, a scope change or the DHCP switch
    /// moving: no template is rebuilt and no lease entry rewritten, so it
    /// costs the same with a million leases as with none.
    pub fn rescope_kernel(&mut self) {
        let serving = self.dhcp_enabled(unix_now());
        self.kernel_serving = serving;
        let scope = self.kernel_scope(serving);
        let Some(sync) = &mut self.sync else { return };
        if let Err(e) = sync.set_serving(&self.policy, scope) {
            tracing::error!(error = %e, "updating the kernel's serving scopes");
        }
    }

    /// Brings the kernel's entry for `addr` in line with the store; call
    /// after every store change.
    pub fn sync_lease(&mut self, addr: Ipv4Addr) {
        if let Some(sync) = &mut self.sync {
            sync.sync_lease(&self.policy, addr, self.store.get(addr).as_ref());
        }
    }
}

