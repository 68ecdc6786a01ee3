//! # HA at run time
//!
//! The I/O around the pure [`crate::ha`] machine: one [`Rel`] per HA
//! relationship in the config, each with its [`HaMachine`] behind a
//! mutex, HTTP clients for the partner and backups, and a driver task
//! that sends heartbeats, runs lease syncs, flushes backlogs and carries
//! out every [`Action`](crate::ha::Action) the machine returns.
//!
//! # Layout
//!
//! - [`client`]: HTTP to one peer in Kea's framing.
//! - `rel`: [`Rel`], one relationship: what the packet path asks of it
//!   (admission, update plans, replication, shedding) and its status.
//! - `driver`: each relationship's tasks (heartbeats, actions, kernel
//!   renewals to the partner).
//! - `sync`: lease exchange outside the packet path (backlog flush,
//!   Kea's lease sync, maintenance notifications).
//! - [`skew`]: the wall clock heartbeats carry, with a testing-only
//!   offset to try the clock-skew rules on a real pair.
//! - `handover`: a planned stop handing the service to the partners
//!   ([`hand_over`]).
//! - this file: [`HaRuntime`], every relationship of the server (what the
//!   packet path, the core and the API hold).
//!
//! # Where HA touches the rest
//!
//! - Packet path: the pipeline asks [`HaRuntime`] as its
//!   [`Gate`](crate::core::pipeline::Gate) ([`Rel::admit`] before deciding:
//!   the scope filter and the DHCP switch; [`Rel::plan`] for the lease
//!   change), then the socket loop (`server.rs`) runs
//!   [`Rel::replicate`] before the reply leaves: the ACK waits for the
//!   partner as in Kea, and is dropped if the partner failed.
//! - Kernel renewals ([`crate::daemon`]'s ring-buffer drain):
//!   [`Rel::replicate_async`]; the queue length is the replication
//!   backlog shown on the status page; failures count as unsent updates.
//! - Kernel maps: every change of the DHCP switch or scopes runs
//!   [`crate::core::Core::rescope_kernel`] (serving bits only, written by
//!   the kernel-sync task) and waits until the kernel has it; the core
//!   asks [`HaRuntime`] as its [`ServingScopes`] per subnet.
//! - Entering `partner-down` starts the reuse grace period
//!   ([`crate::ha::grace`]).
//!
//! Lock order: the core before a machine, never the reverse; the driver
//! takes a machine, collects its actions, lets go, then acts. The core
//! does not know this module: it holds the runtime only as
//! [`ServingScopes`], and the packet path hands it over as a `Gate`.

pub mod client;
mod driver;
mod handover;
mod rel;
pub mod skew;
mod sync;

use std::sync::{Arc, Mutex, RwLock};

use tokio_util::sync::CancellationToken;

pub use client::{PeerClient, PeerError};
pub use handover::hand_over;
pub use rel::{Rel, SHED_ALL, SHED_NEW};
pub use sync::{notify_maintenance, sync_leases};

use crate::{
    config::ha::{HaConfig, Peer},
    core::{Core, HaDrop, ServingScopes, pipeline::Gate},
    dhcp::policy::SubnetPolicy,
    events::EventLog,
    ha::{Query, RelStatus, UpdatePlan},
};
use driver::{drive, replicate_renewals};

/// What the HA runtime changes and reports outside itself: the daemon's
/// state (DHCP, leases, the kernel) and the event log.
#[derive(Clone)]
pub struct HaContext {
    /// The daemon's state.
    pub core: Core,
    /// Where transitions and syncs are recorded for the status page.
    pub events: Arc<EventLog>,
}

/// Every relationship of this server. Without HA it has none, and then
/// it lets every packet through; reconfiguration swaps the list
/// ([`HaRuntime::prepare`], [`HaRuntime::commit`]).
#[derive(Default)]
pub struct HaRuntime {
    /// In config order. Readers take a snapshot ([`HaRuntime::rels`]); a
    /// relationship removed meanwhile finishes what it was doing.
    rels: RwLock<Arc<[Arc<Rel>]>>,
    /// Set once the daemon runs ([`HaRuntime::spawn`]): what the tasks of
    /// relationships added later need.
    running: Mutex<Option<(HaContext, CancellationToken)>>,
}

/// A relationship list built from a new configuration, not yet in use:
/// kept relationships are the running ones, changed or added ones are new
/// (their machines in `waiting`).
pub struct HaChange {
    rels: Vec<Arc<Rel>>,
    added: Vec<Arc<Rel>>,
    removed: Vec<Arc<Rel>>,
}

impl HaChange {
    /// What changes, for the log and the event list (`None`: nothing).
    pub fn summary(&self) -> Option<String> {
        let names = |v: &[Arc<Rel>]| v.iter().map(|r| r.this_server().to_owned()).collect::<Vec<_>>().join(", ");
        match (self.added.is_empty(), self.removed.is_empty()) {
            (true, true) => None,
            (false, true) => Some(format!("HA relationship(s) started: {}", names(&self.added))),
            (true, false) => Some(format!("HA relationship(s) stopped: {}", names(&self.removed))),
            (false, false) => Some(format!(
                "HA relationship(s) stopped: {}; started from waiting: {}",
                names(&self.removed),
                names(&self.added)
            )),
        }
    }
}

impl HaRuntime {
    /// Builds the relationships of `cfg` (none without HA), machines in
    /// `waiting`; nothing runs until [`HaRuntime::spawn`]. `tls` builds
    /// the client side of HTTPS for a peer entry that has TLS files.
    pub fn new(
        cfg: Option<&HaConfig>,
        tls: impl Fn(&Peer) -> Result<Option<rustls::ClientConfig>, PeerError>,
    ) -> Result<Self, PeerError> {
        let ha = HaRuntime::default();
        let change = ha.prepare(cfg, tls)?;
        *ha.rels.write().unwrap_or_else(|p| p.into_inner()) = change.rels.into();
        Ok(ha)
    }

    /// The relationships now, in config order.
    pub fn rels(&self) -> Arc<[Arc<Rel>]> {
        Arc::clone(&self.rels.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether HA is configured (at least one relationship).
    pub fn is_active(&self) -> bool {
        !self.rels().is_empty()
    }

    /// The relationship serving `subnet`, as Kea maps them: with one
    /// relationship, every subnet; with several, the one naming a peer in
    /// `user-context.ha-server-name`. `None`: Kea drops the packet.
    pub fn rel_for(&self, subnet: &SubnetPolicy) -> Option<Arc<Rel>> {
        self.rels().iter().find(|r| r.serves(subnet)).cloned()
    }

    /// The relationship a partner's command is for: the one whose partner
    /// is `server-name`, else the first (Kea's rule).
    pub fn rel_by_sender(&self, server_name: Option<&str>) -> Option<Arc<Rel>> {
        let rels = self.rels();
        server_name
            .and_then(|n| rels.iter().find(|r| r.partner_name() == Some(n) || r.this_server() == n))
            .or_else(|| rels.first())
            .cloned()
    }

    /// Every relationship's status, in config order.
    pub fn status(&self) -> Vec<RelStatus> {
        self.rels().iter().map(|r| r.status()).collect()
    }

    /// Starts every relationship: its driver and its kernel-renewal
    /// replicator. `ctx` gives the drivers the daemon's state and the
    /// event log; relationships added later get the same.
    pub fn spawn(&self, ctx: HaContext, tasks: &mut tokio::task::JoinSet<()>, shutdown: CancellationToken) {
        for rel in self.rels().iter() {
            for task in rel_tasks(rel, &ctx, &shutdown) {
                tasks.spawn(task);
            }
        }
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some((ctx, shutdown));
    }

    /// Builds the relationship list of `cfg` against the running one: a
    /// relationship whose configuration (and TLS files' contents) is
    /// unchanged is kept running; any other is built anew, its machine in
    /// `waiting`, so that it resyncs from the start as Kea does after a
    /// restart. Changes nothing; fails as a whole when a peer client
    /// cannot be built.
    pub fn prepare(
        &self,
        cfg: Option<&HaConfig>,
        tls: impl Fn(&Peer) -> Result<Option<rustls::ClientConfig>, PeerError>,
    ) -> Result<HaChange, PeerError> {
        let old = self.rels();
        let wanted = cfg.map_or(&[][..], |c| c.relationships());
        let several = wanted.len() > 1;
        let mut kept: Vec<&Arc<Rel>> = Vec::new();
        let (mut rels, mut added) = (Vec::new(), Vec::new());
        for rc in wanted {
            let fingerprint = rel::tls_fingerprint(rc);
            let same = old.iter().find(|r| r.runs(rc, fingerprint) && !kept.iter().any(|k| Arc::ptr_eq(k, r)));
            match same {
                Some(r) => {
                    kept.push(r);
                    rels.push(Arc::clone(r));
                }
                None => {
                    let r = Arc::new(Rel::new(rc, several, &tls)?);
                    added.push(Arc::clone(&r));
                    rels.push(r);
                }
            }
        }
        let removed = old.iter().filter(|r| !kept.iter().any(|k| Arc::ptr_eq(k, r))).cloned().collect();
        Ok(HaChange { rels, added, removed })
    }

    /// Puts `change` in force: the list is swapped, removed relationships
    /// stop (their tasks end; a packet already admitted finishes with
    /// them), added ones start. Call it where the packet path cannot run
    /// meanwhile ([`crate::core::Core::reconfigure`]), so that no packet
    /// sees the new relationships with the old policy.
    pub fn commit(&self, change: HaChange) {
        let several = change.rels.len() > 1;
        for r in &change.rels {
            r.several.store(several, std::sync::atomic::Ordering::Relaxed);
        }
        *self.rels.write().unwrap_or_else(|p| p.into_inner()) = change.rels.into();
        for r in &change.removed {
            r.stop.cancel();
        }
        if let Some((ctx, shutdown)) = &*self.running.lock().unwrap_or_else(|p| p.into_inner()) {
            for r in &change.added {
                for task in rel_tasks(r, ctx, shutdown) {
                    tokio::spawn(task);
                }
            }
        }
    }
}

/// A relationship's tasks: its driver and its kernel-renewal replicator,
/// each ending at shutdown or when the relationship is stopped.
fn rel_tasks(rel: &Arc<Rel>, ctx: &HaContext, shutdown: &CancellationToken) -> [BoxedTask; 2] {
    [
        until(rel.stop.clone(), shutdown.clone(), Box::pin(drive(Arc::clone(rel), ctx.clone()))),
        until(rel.stop.clone(), shutdown.clone(), Box::pin(replicate_renewals(Arc::clone(rel)))),
    ]
}

type BoxedTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// `task` until either token fires.
fn until(stop: CancellationToken, shutdown: CancellationToken, task: BoxedTask) -> BoxedTask {
    Box::pin(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = shutdown.cancelled() => {}
            () = task => {}
        }
    })
}

impl ServingScopes for HaRuntime {
    /// Nothing for a subnet no relationship serves: Kea drops its packets.
    fn kernel_serving(&self, subnet: &SubnetPolicy) -> crate::fastpath::SubnetServing {
        let rels = self.rels();
        if rels.is_empty() {
            return crate::fastpath::SubnetServing::All;
        }
        rels.iter().find(|r| r.serves(subnet)).map_or(crate::fastpath::SubnetServing::Off, |r| r.kernel_serving())
    }
}

/// The packet pipeline's view of HA: `None` without HA.
impl Gate for Option<Arc<HaRuntime>> {
    type Rel = Arc<Rel>;

    fn admit(&self, subnet: Option<&SubnetPolicy>, q: &Query<'_>) -> Result<Option<Arc<Rel>>, HaDrop> {
        let Some(ha) = self else { return Ok(None) };
        let rels = ha.rels();
        if rels.is_empty() {
            return Ok(None); // HA not configured (or removed by a reconfiguration)
        }
        let rel = match subnet {
            Some(s) => rels.iter().find(|r| r.serves(s)).ok_or(HaDrop::NoRelationship)?,
            None => &rels[0],
        };
        if !rel.admit(q) {
            // Kea checks its network state before HA's scope filter.
            return Err(if rel.machine().dhcp_enabled() { HaDrop::NotInScope } else { HaDrop::HaDisabled });
        }
        if rel.overloaded(q.msg_type) {
            return Err(HaDrop::PartnerUpdatesBackedUp);
        }
        Ok(Some(Arc::clone(rel)))
    }

    fn plan(&self, rel: &Arc<Rel>, changes: usize) -> UpdatePlan {
        rel.plan(changes)
    }
}
