//! One HA relationship at run time ([`Rel`]): its machine, its peer
//! clients, and what the packet path asks of it (admission, the update
//! plan, replication to the partner and backups, overload shedding).

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Instant,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{self, PeerClient, PeerError};
use crate::{
    config::ha::{HaRelationship, Peer},
    dhcp::policy::SubnetPolicy,
    ha::{
        Action, ClientKey, Event, HaMachine, LocalStatus, PartnerUpdates, PartnerView, Query, RelStatus, Update,
        UpdateOutcome, UpdatePlan,
    },
    kea::ha::{Outbound, PeerReply},
    leases::Lease,
};

/// How a Kea peer answers an update, as HA reads it (and an xdhcpd peer's
/// refusal under the lease conflict rule, [`winning_lease`]).
pub(super) fn update_outcome(r: &Result<PeerReply, PeerError>, client: ClientKey) -> UpdateOutcome {
    match r {
        Ok(r) if r.is_success() => UpdateOutcome::Acked(client),
        Ok(r) if winning_lease(r).is_some() => UpdateOutcome::Superseded,
        Ok(r) if r.result == 4 => UpdateOutcome::Rejected(client),
        _ => UpdateOutcome::Failed,
    }
}

/// The lease an xdhcpd partner kept when it refused our update under the
/// lease conflict rule ([`crate::ha::conflict`]): result 1, Kea's failure,
/// with the conflict text and the lease in `arguments.lease`.
pub(super) fn winning_lease(r: &PeerReply) -> Option<&serde_json::Value> {
    if r.result != 1 || !r.text.starts_with(crate::ha::conflict::CONFLICT_TEXT) {
        return None;
    }
    r.arguments.as_ref()?.get("lease").filter(|l| l.is_object())
}

/// One HA relationship at run time.
pub struct Rel {
    /// Its configuration.
    pub config: HaRelationship,
    /// Whether the server has other relationships (then a subnet names
    /// its own in `user-context.ha-server-name`); follows reconfiguration,
    /// which adds and removes the others without restarting this one.
    pub(super) several: AtomicBool,
    /// What the peer clients were built from besides `config`: the
    /// contents of the TLS files, so that a rotated certificate at the
    /// same path counts as a change ([`tls_fingerprint`]).
    pub(super) tls_fingerprint: u64,
    /// Cancelled when reconfiguration removes or replaces this
    /// relationship (and at shutdown): its tasks stop.
    pub(super) stop: CancellationToken,
    pub(super) machine: Mutex<HaMachine>,
    pub(super) partner: Option<PeerClient>,
    pub(super) backups: Vec<PeerClient>,
    pub(super) actions: mpsc::UnboundedSender<Action>,
    pub(super) inbox: Mutex<Option<mpsc::UnboundedReceiver<Action>>>,
    /// Kernel renewals waiting to go to the partner.
    pub(super) async_tx: mpsc::UnboundedSender<Lease>,
    pub(super) async_rx: Mutex<Option<mpsc::UnboundedReceiver<Lease>>>,
    pub(super) async_pending: AtomicUsize,
    /// communication-recovery backlog.
    pub(super) backlog: Mutex<VecDeque<Update>>,
    /// Leases the partner kept under the conflict rule, for the driver to
    /// store in place of ours (the packet path has no store to write).
    pub(super) adopt_tx: mpsc::UnboundedSender<serde_json::Value>,
    pub(super) adopt_rx: Mutex<Option<mpsc::UnboundedReceiver<serde_json::Value>>>,
    pub(super) last_heartbeat: Mutex<Option<Instant>>,
    /// One permit per update in flight to the partner
    /// ([`client::CONNECTIONS`]).
    pub(super) slots: tokio::sync::Semaphore,
    /// Replies waiting for the partner (in flight or for a permit): the
    /// measure of overload [`Rel::overloaded`] sheds on.
    pub(super) waiting: AtomicUsize,
}

/// Replies waiting for the partner beyond which new exchanges
/// (DISCOVERs) are dropped, so that the exchanges already under way
/// complete instead of every one of them timing out (Kea bounds its
/// packet queue for the same reason).
pub const SHED_NEW: usize = 4 * client::CONNECTIONS;
/// … and beyond which every query is dropped until the partner catches up.
pub const SHED_ALL: usize = 16 * client::CONNECTIONS;

impl Rel {
    /// Builds relationship `rc` (its machine started, so in `waiting`,
    /// before any packet or kernel map can see it: a machine not yet in
    /// waiting would let both paths serve) and its peer clients. `tls`
    /// builds the client side of HTTPS for a peer entry with TLS files.
    pub(super) fn new(
        rc: &HaRelationship,
        several: bool,
        tls: &dyn Fn(&Peer) -> Result<Option<rustls::ClientConfig>, PeerError>,
    ) -> Result<Self, PeerError> {
        let now = Instant::now();
        let partner = rc.partner().map(|p| PeerClient::new(p, tls(p)?)).transpose()?;
        let backups = rc
            .backups()
            .filter(|p| p.name() != rc.this_server_name())
            .map(|p| PeerClient::new(p, tls(p)?))
            .collect::<Result<Vec<_>, _>>()?;
        let (atx, arx) = mpsc::unbounded_channel();
        let (qtx, qrx) = mpsc::unbounded_channel();
        let (wtx, wrx) = mpsc::unbounded_channel();
        let rel = Rel {
            config: rc.clone(),
            several: AtomicBool::new(several),
            tls_fingerprint: tls_fingerprint(rc),
            stop: CancellationToken::new(),
            machine: Mutex::new(HaMachine::new(rc, now)),
            partner,
            backups,
            actions: atx,
            inbox: Mutex::new(Some(arx)),
            async_tx: qtx,
            async_rx: Mutex::new(Some(qrx)),
            async_pending: AtomicUsize::new(0),
            backlog: Mutex::new(VecDeque::new()),
            adopt_tx: wtx,
            adopt_rx: Mutex::new(Some(wrx)),
            last_heartbeat: Mutex::new(None),
            slots: tokio::sync::Semaphore::new(client::CONNECTIONS),
            waiting: AtomicUsize::new(0),
        };
        let actions = rel.machine().start(now);
        rel.dispatch(actions);
        Ok(rel)
    }

    /// Whether `rc` (with `tls_fingerprint`) is what this relationship
    /// runs: then reconfiguration keeps it running untouched.
    pub(super) fn runs(&self, rc: &HaRelationship, tls_fingerprint: u64) -> bool {
        self.config == *rc && self.tls_fingerprint == tls_fingerprint
    }

    /// Whether the server has other relationships.
    pub(super) fn several(&self) -> bool {
        self.several.load(Ordering::Relaxed)
    }

    /// The machine (short critical sections only; see the lock order).
    pub fn machine(&self) -> MutexGuard<'_, HaMachine> {
        self.machine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this relationship serves `subnet`, as Kea maps them: with
    /// one relationship, every subnet; with several, the one naming a
    /// peer of it in `user-context.ha-server-name`.
    pub fn serves(&self, subnet: &SubnetPolicy) -> bool {
        !self.several() || subnet.ha_server_name.as_deref().is_some_and(|n| self.config.peer(n).is_some())
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
            self.adopt_winner(&r);
            if !matches!(outcome, UpdateOutcome::Acked(_)) {
                break;
            }
        }
        let ok = matches!(outcome, UpdateOutcome::Acked(_));
        let actions = self.machine().handle(Instant::now(), Event::LeaseUpdates(outcome));
        self.dispatch(actions);
        ok
    }

    /// Hands the lease the partner kept under the conflict rule, if it
    /// refused an update for that, to the driver to store.
    pub(super) fn adopt_winner(&self, r: &Result<PeerReply, PeerError>) {
        if let Some(l) = r.as_ref().ok().and_then(winning_lease) {
            let _ = self.adopt_tx.send(l.clone());
        }
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

    /// Updates to the partner not yet answered: kernel renewals queued or
    /// in flight, and replies waiting for theirs (a planned stop waits for
    /// these before the partner takes over).
    pub fn in_flight(&self) -> usize {
        self.async_pending.load(Ordering::Relaxed) + self.waiting.load(Ordering::Relaxed)
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
pub(super) async fn send_to_backups(backups: &[PeerClient], ups: &[Update]) -> bool {
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
pub(super) fn spawn_backup_updates(backups: &[PeerClient], ups: Vec<Update>) {
    if backups.is_empty() {
        return;
    }
    let backups = backups.to_vec();
    tokio::spawn(async move { send_to_backups(&backups, &ups).await });
}

/// A digest of the contents of every TLS file `rc`'s peer entries name
/// (0 without TLS). An unreadable file digests as empty: building its
/// peer client fails and refuses the configuration anyway.
pub fn tls_fingerprint(rc: &HaRelationship) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for p in rc.peers() {
        if let Some(f) = p.tls() {
            for path in [&f.trust_anchor, &f.cert_file, &f.key_file] {
                path.hash(&mut h);
                std::fs::read(path).unwrap_or_default().hash(&mut h);
            }
        }
    }
    h.finish()
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
    fn only_a_conflict_refusal_with_a_lease_supersedes() {
        let reply = |result: i64, text: &str, arguments: Option<serde_json::Value>| PeerReply {
            result,
            text: text.to_owned(),
            arguments,
        };
        let lease = serde_json::json!({ "lease": { "ip-address": "192.168.50.180" } });
        let conflict = reply(1, "IPv4 lease conflict: 192.168.50.180 is held by another client", Some(lease.clone()));
        assert_eq!(winning_lease(&conflict), Some(&lease["lease"]));
        let client = ClientKey::new(&[2, 0, 0, 0, 0, 1], None);
        assert_eq!(update_outcome(&Ok(conflict), client.clone()), UpdateOutcome::Superseded);
        // Any other failure is what Kea makes of it: a failed update.
        for r in [reply(1, "IPv4 lease conflict: no lease", None), reply(1, "some error", Some(lease.clone())),
            reply(4, "IPv4 lease conflict: x", Some(lease))]
        {
            assert_eq!(winning_lease(&r), None, "{r:?}");
        }
        assert_eq!(update_outcome(&Ok(reply(1, "some error", None)), client.clone()), UpdateOutcome::Failed);
        assert_eq!(update_outcome(&Ok(reply(0, "IPv4 lease updated.", None)), client.clone()), UpdateOutcome::Acked(client));
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
