//! # HA at run time
//!
//! The I/O around the pure [`crate::ha`] machine: one [`Rel`] per HA
//! relationship in the config, each with its [`HaMachine`] behind a
//! mutex, HTTP clients for the partner and backups, and a driver task
//! ([`drive`]) that sends heartbeats, runs lease syncs, flushes backlogs
//! and carries out every [`Action`] the machine returns.
//!
//! # Layout
//!
//! - [`client`]: HTTP to one peer in Kea's framing.
//! - this file: [`HaRuntime`] (what the packet path and the API call) and
//!   the driver.
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

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use client::{PeerClient, PeerError};

use crate::{
    clock::unix_now,
    config::ha::{HaConfig, HaRelationship},
    core::{Core, HaDrop, ServingScopes, pipeline::Gate},
    dhcp::policy::SubnetPolicy,
    events::EventLog,
    ha::{
        Action, ClientKey, Event, HaMachine, LocalStatus, PartnerUpdates, PartnerView, PeerAnswer, Query, RelStatus,
        State, SyncRequest, Update, UpdateOutcome, UpdatePlan,
    },
    kea::ha::{self as wire, Outbound, PeerReply},
    leases::Lease,
};

/// How a Kea peer answers an update, as HA reads it.
fn update_outcome(r: &Result<PeerReply, PeerError>, client: ClientKey) -> UpdateOutcome {
    match r {
        Ok(r) if r.is_success() => UpdateOutcome::Acked(client),
        Ok(r) if r.result == 4 => UpdateOutcome::Rejected(client),
        _ => UpdateOutcome::Failed,
    }
}

/// One HA relationship at run time.
pub struct Rel {
    /// Position in the config's `high-availability` list.
    pub index: usize,
    /// Its configuration.
    pub config: HaRelationship,
    /// Whether the server has other relationships (then a subnet names
    /// its own in `user-context.ha-server-name`).
    several: bool,
    machine: Mutex<HaMachine>,
    partner: Option<PeerClient>,
    backups: Vec<PeerClient>,
    actions: mpsc::UnboundedSender<Action>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Action>>>,
    /// Kernel renewals waiting to go to the partner.
    async_tx: mpsc::UnboundedSender<Lease>,
    async_rx: Mutex<Option<mpsc::UnboundedReceiver<Lease>>>,
    async_pending: AtomicUsize,
    /// communication-recovery backlog.
    backlog: Mutex<VecDeque<Update>>,
    last_heartbeat: Mutex<Option<Instant>>,
    /// One permit per update in flight to the partner
    /// ([`client::CONNECTIONS`]).
    slots: tokio::sync::Semaphore,
    /// Replies waiting for the partner (in flight or for a permit): the
    /// measure of overload [`Rel::overloaded`] sheds on.
    waiting: AtomicUsize,
}

/// Replies waiting for the partner beyond which new exchanges
/// (DISCOVERs) are dropped, so that the exchanges already under way
/// complete instead of every one of them timing out (Kea bounds its
/// packet queue for the same reason).
pub const SHED_NEW: usize = 4 * client::CONNECTIONS;
/// … and beyond which every query is dropped until the partner catches up.
pub const SHED_ALL: usize = 16 * client::CONNECTIONS;

impl Rel {
    /// The machine (short critical sections only; see the lock order).
    pub fn machine(&self) -> MutexGuard<'_, HaMachine> {
        self.machine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this relationship serves `subnet`, as Kea maps them: with
    /// one relationship, every subnet; with several, the one naming a
    /// peer of it in `user-context.ha-server-name`.
    pub fn serves(&self, subnet: &SubnetPolicy) -> bool {
        !self.several || subnet.ha_server_name.as_deref().is_some_and(|n| self.config.peer(n).is_some())
    }

    /// This server's name in the relationship.
    pub fn this_server(&self) -> &str {
        self.config.this_server_name()
    }

    /// The partner's name, if there is an active partner.
    pub fn partner_name(&self) -> Option<&str> {
        self.partner.as_ref().map(PeerClient::name)
    }

    /// Hands actions to the driver.
    pub fn dispatch(&self, actions: Vec<Action>) {
        for a in actions {
            let _ = self.actions.send(a);
        }
    }

    /// Kea's query filter and DHCP switch for one query; logs and counts
    /// what Kea's failure detection needs.
    pub fn admit(&self, q: &Query<'_>) -> bool {
        let (ok, actions) = self.machine().admit(Instant::now(), q);
        self.dispatch(actions);
        ok
    }

    /// Whether a query of DHCP message type `msg_type` should be dropped
    /// because too many replies already wait for the partner: DISCOVERs
    /// past [`SHED_NEW`], everything past [`SHED_ALL`].
    pub fn overloaded(&self, msg_type: u8) -> bool {
        shed(self.waiting.load(Ordering::Relaxed), msg_type)
    }

    /// What to do with one committed packet's updates.
    pub fn plan(&self, changes: usize) -> UpdatePlan {
        self.machine().plan_lease_updates(changes)
    }

    /// Carries out `plan` for `updates`: sends them to the partner and
    /// waits (true when the DHCP reply may go), queues them, or skips;
    /// backups get theirs without waiting.
    pub async fn replicate(&self, plan: UpdatePlan, updates: Vec<Update>) -> bool {
        if plan.backups && self.config.wait_backup_ack() {
            // passive-backup with wait-backup-ack: the reply waits for every
            // backup and is dropped if one failed, as in Kea.
            if !send_to_backups(&self.backups, &updates).await {
                return false;
            }
        } else if plan.backups {
            spawn_backup_updates(&self.backups, updates.clone());
        }
        match plan.partner {
            PartnerUpdates::Send => self.send_updates(updates).await,
            PartnerUpdates::Queue => {
                self.backlog.lock().unwrap_or_else(|p| p.into_inner()).extend(updates);
                true
            }
            PartnerUpdates::Overflowed | PartnerUpdates::Skip | PartnerUpdates::NoPartner => true,
        }
    }

    /// Sends updates one by one, stopping at the first failure; feeds the
    /// outcome to the machine. True when all were accepted.
    async fn send_updates(&self, updates: Vec<Update>) -> bool {
        let Some(partner) = &self.partner else { return true };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = scopeguard(|| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        });
        // Never closed, so acquiring only waits.
        let _slot = self.slots.acquire().await;
        let mut outcome = UpdateOutcome::Acked(updates.first().map_or_else(|| ClientKey::new(&[], None), Update::client));
        for u in updates {
            let r = partner.send(Outbound::from(&u), client::REQUEST_TIMEOUT).await;
            if let Err(e) = &r {
                tracing::warn!(error = %e, "lease update to partner failed");
            }
            outcome = update_outcome(&r, u.client());
            if !matches!(outcome, UpdateOutcome::Acked(_)) {
                break;
            }
        }
        let ok = matches!(outcome, UpdateOutcome::Acked(_));
        let actions = self.machine().handle(Instant::now(), Event::LeaseUpdates(outcome));
        self.dispatch(actions);
        ok
    }

    /// Queues a lease the kernel renewed for the partner (no reply waits
    /// for it: the kernel already answered).
    pub fn replicate_async(&self, lease: Lease) {
        let plan = self.plan(1);
        match plan.partner {
            PartnerUpdates::Send => {
                self.async_pending.fetch_add(1, Ordering::Relaxed);
                let _ = self.async_tx.send(lease.clone());
            }
            PartnerUpdates::Queue => {
                self.backlog.lock().unwrap_or_else(|p| p.into_inner()).push_back(Update::Put(lease.clone()));
            }
            _ => {}
        }
        if plan.backups {
            spawn_backup_updates(&self.backups, vec![Update::Put(lease)]);
        }
    }

    /// Kernel renewals not yet acknowledged by the partner.
    pub fn replication_backlog(&self) -> usize {
        self.async_pending.load(Ordering::Relaxed)
            + self.backlog.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// What the kernel may answer for this relationship's subnets now:
    /// nothing while HA's DHCP switch is off, else the served scopes (the
    /// kernel applies Kea's load-balancing hash itself).
    pub fn kernel_serving(&self) -> crate::fastpath::SubnetServing {
        let m = self.machine();
        let f = m.filter();
        if !m.dhcp_enabled() || !(f.primary || f.secondary) {
            return crate::fastpath::SubnetServing::Off;
        }
        crate::fastpath::SubnetServing::Scopes(f)
    }

    /// This relationship as `status-get`, the status page and metrics
    /// show it.
    pub fn status(&self) -> RelStatus {
        let now = Instant::now();
        let m = self.machine();
        let me = self.config.this_server();
        RelStatus {
            mode: self.config.mode(),
            local: LocalStatus {
                role: me.role(),
                state: m.state(),
                scopes: m.serving_scopes().iter().cloned().collect(),
                server_name: me.name().to_owned(),
            },
            remote: self.config.partner().map(|p| PartnerView {
                status: m.remote_status(now),
                role: p.role(),
                server_name: p.name().to_owned(),
                url: p.url().as_str().to_owned(),
            }),
            unsent_update_count: m.unsent_update_count(),
            replication_backlog: self.replication_backlog(),
            last_heartbeat_age: self
                .last_heartbeat
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|t| now.duration_since(t).as_secs()),
            paused: m.is_paused(),
            clock_skew: m.clock_skew_secs(),
        }
    }
}

/// Sends updates to every backup and waits; true when all accepted them.
async fn send_to_backups(backups: &[PeerClient], ups: &[Update]) -> bool {
    let mut ok = true;
    for b in backups {
        for u in ups {
            match b.send(Outbound::from(u), client::REQUEST_TIMEOUT).await {
                Ok(r) if r.is_success() => {}
                Ok(r) => {
                    tracing::warn!(backup = b.name(), result = r.result, text = %r.text, "backup refused a lease update");
                    ok = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease update to backup failed");
                    ok = false;
                }
            }
        }
    }
    ok
}

/// Sends updates to the backups without waiting: Kea's backups never hold
/// a reply (`wait-backup-ack` is false in hot-standby and load balancing).
fn spawn_backup_updates(backups: &[PeerClient], ups: Vec<Update>) {
    if backups.is_empty() {
        return;
    }
    let backups = backups.to_vec();
    tokio::spawn(async move { send_to_backups(&backups, &ups).await });
}

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

/// Sends kernel renewals to the partner in order, one at a time.
async fn replicate_renewals(rel: Arc<Rel>, shutdown: CancellationToken) {
    let Some(mut rx) = rel.async_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let Some(partner) = rel.partner.clone() else { return };
    loop {
        let lease = tokio::select! {
            _ = shutdown.cancelled() => return,
            l = rx.recv() => match l { Some(l) => l, None => return },
        };
        let u = Update::Put(lease);
        let r = partner.send(Outbound::from(&u), client::REQUEST_TIMEOUT).await;
        rel.async_pending.fetch_sub(1, Ordering::Relaxed);
        let outcome = update_outcome(&r, u.client());
        if let Err(e) = &r {
            tracing::warn!(error = %e, "replicating a kernel renewal failed");
        }
        let actions = {
            let mut m = rel.machine();
            if !matches!(outcome, UpdateOutcome::Acked(_)) {
                m.count_unsent();
            }
            m.handle(Instant::now(), Event::LeaseUpdates(outcome))
        };
        rel.dispatch(actions);
    }
}

/// [`Rel::overloaded`]'s rule, given the replies waiting for the partner.
fn shed(waiting: usize, msg_type: u8) -> bool {
    use dhcp_common::dhcp::msg_type::DISCOVER;
    waiting >= SHED_ALL || (msg_type == DISCOVER && waiting >= SHED_NEW)
}

/// Runs `f` when dropped (also when the future holding it is dropped).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// The relationship's driver: starts the machine, then heartbeats and
/// actions until shutdown.
async fn drive(rel: Arc<Rel>, ctx: HaContext, shutdown: CancellationToken) {
    let Some(mut inbox) = rel.inbox.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    // The machine was started in `HaRuntime::new`; its first actions
    // wait in the inbox.
    let heartbeat = rel.machine().heartbeat_enabled() && rel.partner.is_some();
    let mut d = Driver { rel: Arc::clone(&rel), ctx, heartbeat, next_heartbeat: tokio::time::Instant::now() };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let hb_at = d.next_heartbeat;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(a) = inbox.recv() => d.run_all(vec![a]).await,
            _ = tokio::time::sleep_until(hb_at), if d.heartbeat => {
                let ev = d.heartbeat_once().await;
                let failed = matches!(ev, Event::HeartbeatFailed);
                let actions = rel.machine().handle(Instant::now(), ev);
                d.next_heartbeat = next_heartbeat(&rel.machine(), failed, Instant::now());
                d.run_all(actions).await;
            }
            _ = tick.tick() => {
                let actions = rel.machine().handle(Instant::now(), Event::Tick);
                d.run_all(actions).await;
            }
        }
    }
}

/// When to send the next heartbeat: one `heartbeat-delay` on, except
/// that after a failure the partner is tried again just past the moment
/// communication counts as interrupted (Kea's rule, `max-response-delay`),
/// so partner-down comes when the timers say and not up to a
/// `heartbeat-delay` later.
fn next_heartbeat(m: &HaMachine, failed: bool, now: Instant) -> tokio::time::Instant {
    let mut wait = m.heartbeat_delay();
    if failed {
        let deadline = m.interruption_deadline() + INTERRUPTION_MARGIN;
        if deadline > now {
            wait = wait.min(deadline - now);
        }
    }
    tokio::time::Instant::now() + wait
}

/// How far past the interruption deadline the retry is sent (the machine
/// counts strictly longer than `max-response-delay`).
const INTERRUPTION_MARGIN: Duration = Duration::from_millis(20);

struct Driver {
    rel: Arc<Rel>,
    ctx: HaContext,
    heartbeat: bool,
    next_heartbeat: tokio::time::Instant,
}

impl Driver {
    /// Runs actions, and the actions their results cause, until none is left.
    async fn run_all(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            let more = self.run(a).await;
            queue.extend(more);
        }
    }

    async fn run(&mut self, a: Action) -> Vec<Action> {
        let rel = Arc::clone(&self.rel);
        let now = Instant::now;
        match a {
            Action::StateChanged { from, to, partner } => {
                self.ctx.events.record(format!(
                    "HA {}: {} → {} (partner {})",
                    rel.this_server(),
                    from.name(),
                    to.name(),
                    partner.name()
                ));
                if to == State::PartnerDown {
                    self.ctx.core.start_reuse_grace(unix_now());
                }
                // The kernel has the new scopes before the driver acts on
                // the transition (syncs, heartbeats, further actions).
                self.ctx.core.rescope_kernel().await;
                Vec::new()
            }
            Action::Paused(s) => {
                self.ctx.events.record(format!("HA {}: paused in {}", rel.this_server(), s.name()));
                Vec::new()
            }
            Action::DhcpService(_) | Action::ScopesChanged(_) => {
                self.ctx.core.rescope_kernel().await;
                Vec::new()
            }
            Action::Heartbeat(on) => {
                self.heartbeat = on && rel.partner.is_some();
                self.next_heartbeat = tokio::time::Instant::now();
                Vec::new()
            }
            Action::SyncLeases(req) => {
                let ok = sync_leases(&rel, &self.ctx, &req).await;
                rel.machine().handle(now(), if ok { Event::SyncSucceeded } else { Event::SyncFailed })
            }
            Action::FlushBacklog => {
                let ok = flush_backlog(&rel).await;
                rel.machine().handle(now(), Event::BacklogFlushed(ok))
            }
            Action::ClearBacklog => {
                rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).clear();
                Vec::new()
            }
            Action::SendHaReset => {
                let ok = match &rel.partner {
                    Some(p) => p
                        .send(Outbound::Reset { server: rel.this_server() }, client::REQUEST_TIMEOUT)
                        .await
                        .is_ok_and(|r| r.result == 0),
                    None => false,
                };
                rel.machine().handle(now(), Event::HaResetSent(ok))
            }
            Action::SendMaintenanceNotify { .. } => Vec::new(), // the API command sends it itself
            Action::Notice(n) => {
                tracing::warn!(relationship = rel.this_server(), notice = ?n, "HA");
                Vec::new()
            }
        }
    }

    /// One heartbeat to the partner, as an event for the machine.
    async fn heartbeat_once(&self) -> Event {
        let Some(p) = &self.rel.partner else { return Event::HeartbeatFailed };
        // Kea waits its 10 s request timeout for a heartbeat; a frozen
        // partner (SIGSTOP, hung host) keeps the TCP connection open, so
        // that would delay failover by 10 s. Waiting longer than
        // max-response-delay cannot change the verdict, so stop there.
        let timeout = client::REQUEST_TIMEOUT.min(self.rel.config.max_response_delay().max(Duration::from_secs(1)));
        match p.send(Outbound::Heartbeat { server: self.rel.this_server() }, timeout).await {
            Ok(r) => match wire::parse_heartbeat(&r) {
                Ok(status) => {
                    *self.rel.last_heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    Event::HeartbeatOk { status, received_at: SystemTime::now() }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat answer unusable");
                    Event::HeartbeatFailed
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                Event::HeartbeatFailed
            }
        }
    }
}

/// Sends the communication-recovery backlog in order, stopping at the
/// first failure (Kea sends it synchronously too).
async fn flush_backlog(rel: &Rel) -> bool {
    let Some(p) = &rel.partner else { return false };
    loop {
        let next = rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).front().cloned();
        let Some(u) = next else { return true };
        match p.send(Outbound::from(&u), client::REQUEST_TIMEOUT).await {
            Ok(r) if r.is_success() => {
                rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            }
            _ => return false,
        }
    }
}

/// Pulls the partner's leases (Kea's `synchronize`): per page
/// `dhcp-disable` then `lease4-get-page`; take each lease we lack or hold
/// an older copy of; then `ha-sync-complete-notify` (or `dhcp-enable` for
/// a peer that does not know it). On failure the partner's service is
/// re-enabled and false returned.
pub async fn sync_leases(rel: &Rel, ctx: &HaContext, req: &SyncRequest) -> bool {
    let Some(p) = &rel.partner else { return false };
    match pull_pages(rel, p, ctx, req).await {
        Ok(n) => {
            ctx.events.record(format!("HA {}: synced {n} leases from {}", rel.this_server(), p.name()));
            let notify = p.send(Outbound::SyncCompleteNotify { server: rel.this_server() }, client::REQUEST_TIMEOUT).await;
            match notify {
                Ok(r) if r.result == 2 => {
                    let _ = p.send(Outbound::DhcpEnable, client::REQUEST_TIMEOUT).await;
                    true
                }
                Ok(r) if r.result == 0 => true,
                Ok(r) => {
                    tracing::warn!(result = r.result, text = %r.text, "ha-sync-complete-notify refused");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ha-sync-complete-notify failed");
                    false
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, peer = p.name(), "lease sync failed");
            let _ = p.send(Outbound::DhcpEnable, client::REQUEST_TIMEOUT).await;
            false
        }
    }
}

async fn pull_pages(rel: &Rel, p: &PeerClient, ctx: &HaContext, req: &SyncRequest) -> anyhow::Result<usize> {
    let mut from = "start".to_owned();
    let mut writes = Vec::new();
    let mut taken = 0;
    loop {
        let r = p.send(Outbound::DhcpDisable { max_period: req.dhcp_disable_max_period }, client::REQUEST_TIMEOUT).await?;
        anyhow::ensure!(r.result == 0, "dhcp-disable answered {}: {}", r.result, r.text);
        let r = p.send(Outbound::LeaseGetPage { from: &from, limit: req.page_limit }, req.page_timeout).await?;
        anyhow::ensure!(r.is_success(), "lease4-get-page answered {}: {}", r.result, r.text);
        let leases = r
            .arguments
            .as_ref()
            .and_then(|a| a.get("leases"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ctx.core.write(|tx| {
            for v in &leases {
                let Some(upd) = wire::page_lease_as_update(v) else {
                    tracing::warn!(lease = %v, "sync: lease without cltt/valid-lft skipped");
                    continue;
                };
                let Some(map) = upd.as_object() else { continue };
                let lease = match crate::kea::lease::parse_lease(&crate::kea::command::Args(map), tx.policy(), unix_now()) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(lease = %v, error = %e, "sync: lease refused");
                        continue;
                    }
                };
                if !tx.policy().subnet(lease.subnet_id).map_or(!rel.several, |s| rel.serves(s)) {
                    continue;
                }
                if wire::sync_takes(tx.get(lease.address).as_ref(), &lease) {
                    writes.push(tx.upsert(lease));
                    taken += 1;
                }
            }
        });
        let last = leases.last().and_then(|l| l.get("ip-address")).and_then(Value::as_str).map(str::to_owned);
        match last {
            Some(a) if leases.len() >= req.page_limit as usize => from = a,
            _ => break,
        }
    }
    for w in writes {
        w.await?;
    }
    Ok(taken)
}

/// Sends `ha-maintenance-notify` for an operator's maintenance command.
pub async fn notify_maintenance(rel: &Rel, cancel: bool) -> PeerAnswer {
    let Some(p) = &rel.partner else { return PeerAnswer::Unreachable };
    match p.send(Outbound::MaintenanceNotify { server: rel.this_server(), cancel }, client::REQUEST_TIMEOUT).await {
        Ok(r) => PeerAnswer::Result(r.result),
        Err(_) => PeerAnswer::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_sheds_new_exchanges_first_then_everything() {
        let (discover, request) = (dhcp_common::dhcp::msg_type::DISCOVER, dhcp_common::dhcp::msg_type::REQUEST);
        assert!(!shed(0, discover) && !shed(SHED_NEW - 1, discover));
        assert!(shed(SHED_NEW, discover), "new exchanges go first");
        assert!(!shed(SHED_NEW, request) && !shed(SHED_ALL - 1, request), "exchanges under way complete");
        assert!(shed(SHED_ALL, request) && shed(SHED_ALL, discover));
    }

    #[test]
    fn the_guard_runs_once_when_dropped() {
        let n = std::cell::Cell::new(0);
        {
            let _g = scopeguard(|| n.set(n.get() + 1));
            assert_eq!(n.get(), 0);
        }
        assert_eq!(n.get(), 1);
    }
}
