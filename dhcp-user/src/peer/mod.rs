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
mod rel;
mod sync;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Instant,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use client::{PeerClient, PeerError};
pub use rel::{Rel, SHED_ALL, SHED_NEW};
pub use sync::{notify_maintenance, sync_leases};

use crate::{
    config::ha::HaConfig,
    core::{Core, HaDrop, ServingScopes, pipeline::Gate},
    dhcp::policy::SubnetPolicy,
    events::EventLog,
    ha::{HaMachine, Query, RelStatus, UpdatePlan},
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

/// Every relationship of this server.
pub struct HaRuntime {
    /// In config order.
    pub rels: Vec<Arc<Rel>>,
}

impl HaRuntime {
    /// Builds the relationships (machines in `waiting`, not started) and
    /// their peer clients. `tls` builds the client side of HTTPS for a
    /// peer entry that has TLS files.
    pub fn new(
        cfg: &HaConfig,
        tls: impl Fn(&crate::config::ha::Peer) -> Result<Option<rustls::ClientConfig>, PeerError>,
    ) -> Result<Self, PeerError> {
        let now = Instant::now();
        let mut rels = Vec::new();
        for (index, rc) in cfg.relationships().iter().enumerate() {
            let partner = rc.partner().map(|p| PeerClient::new(p, tls(p)?)).transpose()?;
            let backups = rc
                .backups()
                .filter(|p| p.name() != rc.this_server_name())
                .map(|p| PeerClient::new(p, tls(p)?))
                .collect::<Result<Vec<_>, _>>()?;
            let (atx, arx) = mpsc::unbounded_channel();
            let (qtx, qrx) = mpsc::unbounded_channel();
            let rel = Arc::new(Rel {
                index,
                config: rc.clone(),
                several: cfg.relationships().len() > 1,
                machine: Mutex::new(HaMachine::new(rc, now)),
                partner,
                backups,
                actions: atx,
                inbox: Mutex::new(Some(arx)),
                async_tx: qtx,
                async_rx: Mutex::new(Some(qrx)),
                async_pending: AtomicUsize::new(0),
                backlog: Mutex::new(VecDeque::new()),
                last_heartbeat: Mutex::new(None),
                slots: tokio::sync::Semaphore::new(client::CONNECTIONS),
                waiting: AtomicUsize::new(0),
            });
            // Started here, before any packet or kernel map sees it: a
            // machine not yet in waiting would let both paths serve.
            let actions = rel.machine().start(now);
            rel.dispatch(actions);
            rels.push(rel);
        }
        Ok(HaRuntime { rels })
    }

    /// The relationship serving `subnet`, as Kea maps them: with one
    /// relationship, every subnet; with several, the one naming a peer in
    /// `user-context.ha-server-name`. `None`: Kea drops the packet.
    pub fn rel_for(&self, subnet: &SubnetPolicy) -> Option<&Arc<Rel>> {
        self.rels.iter().find(|r| r.serves(subnet))
    }

    /// The relationship a partner's command is for: the one whose partner
    /// is `server-name`, else the first (Kea's rule).
    pub fn rel_by_sender(&self, server_name: Option<&str>) -> Option<&Arc<Rel>> {
        server_name
            .and_then(|n| self.rels.iter().find(|r| r.partner_name() == Some(n) || r.this_server() == n))
            .or_else(|| self.rels.first())
    }

    /// Every relationship's status, in config order.
    pub fn status(&self) -> Vec<RelStatus> {
        self.rels.iter().map(|r| r.status()).collect()
    }

    /// Starts every relationship: its driver and its kernel-renewal
    /// replicator. `ctx` gives the driver the daemon's state and the event
    /// log.
    pub fn spawn(&self, ctx: HaContext, tasks: &mut tokio::task::JoinSet<()>, shutdown: CancellationToken) {
        for rel in &self.rels {
            tasks.spawn(drive(Arc::clone(rel), ctx.clone(), shutdown.clone()));
            tasks.spawn(replicate_renewals(Arc::clone(rel), shutdown.clone()));
        }
    }
}

impl ServingScopes for HaRuntime {
    /// Nothing for a subnet no relationship serves: Kea drops its packets.
    fn kernel_serving(&self, subnet: &SubnetPolicy) -> crate::fastpath::SubnetServing {
        self.rel_for(subnet).map_or(crate::fastpath::SubnetServing::Off, |r| r.kernel_serving())
    }
}

/// The packet pipeline's view of HA: `None` without HA.
impl Gate for Option<Arc<HaRuntime>> {
    type Rel = Arc<Rel>;

    fn admit(&self, subnet: Option<&SubnetPolicy>, q: &Query<'_>) -> Result<Option<Arc<Rel>>, HaDrop> {
        let Some(ha) = self else { return Ok(None) };
        let rel = match subnet {
            Some(s) => ha.rel_for(s).ok_or(HaDrop::NoRelationship)?,
            None => match ha.rels.first() {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        if !rel.admit(q) {
            return Err(HaDrop::NotInScopeOrDisabled);
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
