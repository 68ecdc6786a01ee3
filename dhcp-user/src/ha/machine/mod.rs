//! [`HaMachine`]: the state machine itself. See the module docs of
//! [`crate::ha`] for the model.
//!
//! The core lives here (the fields, construction, one step and its
//! housekeeping, events); the rest of the `impl` is split by job.

mod commands;
mod entry;
mod events;
mod handlers;
mod packet;
mod queries;
mod replies;

pub use events::{Action, Event, Notice, PartnerStatus, PeerAnswer, SyncRequest, UpdateOutcome};
pub use replies::{HeartbeatReply, PartnerUpdates, RemoteStatus, Reply, ReplyCode, UpdatePlan};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::ha::{HaMode, HaRelationship, Pause, Role};

use super::detect::{self, ConnectingClients, RejectedClients};
use super::recovery::TerminatedExit;
use super::state::{PartnerState, State};

/// Guard against a handler chain that never settles (none is known; Kea's
/// longest chain is waiting → syncing/ready → normal → …, four steps).
const MAX_CHAIN: usize = 16;

/// Why the handlers run (Kea's "last event", where a handler looks at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Other,
    MaintenanceStart,
    MaintenanceCancel,
    SyncedPartnerUnavailable,
}

/// A request the machine waits on; Kea does these synchronously, so no
/// handler runs until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Sync,
    BacklogFlush,
    HaReset,
    MaintenanceStart,
    MaintenanceCancel,
}

/// The outputs compared before and after a step to emit change actions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outputs {
    dhcp: bool,
    scopes: BTreeSet<String>,
    heartbeat: bool,
}

/// The HA state machine of one relationship. Pure: no I/O, no clock; every
/// entry point takes `now` and returns what to do.
#[derive(Debug)]
pub struct HaMachine {
    // ---- configuration ----
    role: Role,
    mode: HaMode,
    auto_failover: bool,
    partner_name: Option<String>,
    /// Primary's and secondary's names (Kea's failover scopes).
    failover_scopes: BTreeSet<String>,
    primary_name: Option<String>,
    secondary_name: Option<String>,
    peer_names: Vec<String>,
    heartbeat_delay: Duration,
    max_response_delay: Duration,
    max_ack_delay: Duration,
    max_unacked_clients: u32,
    max_rejected_lease_updates: u32,
    sync_leases: bool,
    sync_timeout: Duration,
    sync_page_limit: u32,
    delayed_updates_limit: u32,
    send_lease_updates: bool,
    pauses: Vec<(State, Pause)>,

    // ---- dynamic ----
    state: State,
    prev_state: State,
    /// The handler has not run since the last transition (Kea's on-entry).
    just_entered: bool,
    paused: bool,
    paused_once: Vec<State>,
    partner: PartnerState,
    partner_scopes: BTreeSet<String>,
    /// (previous, latest) `unsent-update-count` of the partner.
    partner_unsent: (u64, u64),
    /// The partner's heartbeats showed new unsent updates (it served
    /// clients we never heard of) since this server last reached `ready`
    /// (after a sync): kept, because the partner may resync from us and
    /// reach `ready` heartbeats after the count stopped changing.
    partner_served_unseen: bool,
    /// A heartbeat has reported the partner's count before (the first one
    /// after our start cannot tell old unsent updates from new ones).
    partner_unsent_known: bool,
    unsent: u64,
    last_contact: Instant,
    clock_skew: i64,
    last_skew_warning: Option<Instant>,
    /// When terminated may be left ([`crate::ha::recovery`]).
    exit: TerminatedExit,
    clients: ConnectingClients,
    rejected: RejectedClients,
    scopes: BTreeSet<String>,
    /// Kea 2.2's HA network-state flag, shared by local transitions and the
    /// partner's dhcp-disable/enable.
    dhcp: bool,
    remote_disable_until: Option<Instant>,
    /// The DHCP switch is off because of a partner's `dhcp-disable`.
    remote_disabled: bool,
    sync_complete_notified: bool,
    /// The partner put this process in maintenance (`ha-maintenance-notify`);
    /// in-maintenance without it is a leftover of a previous run.
    maintenance_notified: bool,
    /// The server is stopping: HA's DHCP switch stays off whatever the
    /// state ([`HaMachine::stop_serving`]).
    stopping: bool,
    backlog_len: u32,
    backlog_overflowed: bool,
    pending: Option<Pending>,
}

impl HaMachine {
    /// A machine for `rel` (this server is `rel.this_server()`), started at
    /// `now` in `waiting`. Call [`HaMachine::start`] for the first actions.
    pub fn new(rel: &HaRelationship, now: Instant) -> Self {
        let me = rel.this_server();
        let name_of = |role: Role| {
            rel.peers()
                .iter()
                .find(|p| p.role() == role)
                .map(|p| p.name().to_owned())
        };
        let primary_name = name_of(Role::Primary);
        let secondary_name = name_of(Role::Secondary);
        let failover_scopes = primary_name
            .iter()
            .chain(secondary_name.iter())
            .cloned()
            .collect();
        HaMachine {
            role: me.role(),
            mode: rel.mode(),
            auto_failover: me.auto_failover(),
            partner_name: rel.partner().map(|p| p.name().to_owned()),
            failover_scopes,
            primary_name,
            secondary_name,
            peer_names: rel.peers().iter().map(|p| p.name().to_owned()).collect(),
            heartbeat_delay: rel.heartbeat_delay(),
            max_response_delay: rel.max_response_delay(),
            max_ack_delay: rel.max_ack_delay(),
            max_unacked_clients: rel.max_unacked_clients(),
            max_rejected_lease_updates: rel.max_rejected_lease_updates(),
            sync_leases: rel.sync_leases(),
            sync_timeout: rel.sync_timeout(),
            sync_page_limit: rel.sync_page_limit(),
            delayed_updates_limit: rel.delayed_updates_limit(),
            send_lease_updates: rel.send_lease_updates(),
            pauses: State::ALL
                .iter()
                .map(|s| (*s, rel.pause(s.config_key())))
                .collect(),
            state: State::Waiting,
            prev_state: State::Waiting,
            just_entered: true,
            paused: false,
            paused_once: Vec::new(),
            partner: PartnerState::Unknown,
            partner_scopes: BTreeSet::new(),
            partner_unsent: (0, 0),
            partner_served_unseen: false,
            partner_unsent_known: false,
            unsent: 0,
            last_contact: now,
            clock_skew: 0,
            last_skew_warning: None,
            exit: TerminatedExit::new(rel.max_response_delay(), rel.heartbeat_delay()),
            clients: ConnectingClients::default(),
            rejected: RejectedClients::default(),
            scopes: BTreeSet::new(),
            // Kea starts with DHCP on; waiting's entry turns it off.
            dhcp: true,
            remote_disable_until: None,
            remote_disabled: false,
            sync_complete_notified: false,
            maintenance_notified: false,
            stopping: false,
            backlog_len: 0,
            backlog_overflowed: false,
            pending: None,
        }
    }

    /// Enters `waiting` and runs its handler once (Kea's `startModel`):
    /// the initial DHCP switch, scopes and heartbeat actions; a backup
    /// server moves to `backup` and a passive-backup primary to
    /// `passive-backup` here.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.step(now, |m, now, out| {
            // Kea's startModel: entering waiting counts as a change (pausing
            // and entry effects apply) even though we start there.
            let before = m.state;
            m.enter(State::Waiting, before, true, Cause::Other, out);
            m.run(now, Cause::Other, out);
        })
    }

    /// Feeds one event; returns what to do.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        self.step(now, |m, now, out| m.on_event(now, event, out))
    }

    // ---- internals -----------------------------------------------------

    /// Runs `f` between housekeeping and the change actions.
    fn step(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Self, Instant, &mut Vec<Action>),
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let before = self.outputs();
        if self.remote_disable_until.is_some_and(|t| now >= t) {
            // The partner's max-period ran out (Kea re-enables the service).
            self.set_dhcp(true);
        }
        f(self, now, &mut out);
        let after = self.outputs();
        if after.dhcp != before.dhcp {
            out.push(Action::DhcpService(after.dhcp));
        }
        if after.scopes != before.scopes {
            out.push(Action::ScopesChanged(after.scopes.clone()));
        }
        if after.heartbeat != before.heartbeat {
            out.push(Action::Heartbeat(after.heartbeat));
        }
        out
    }

    fn outputs(&self) -> Outputs {
        Outputs {
            dhcp: self.dhcp,
            scopes: self.scopes.clone(),
            heartbeat: self.heartbeat_enabled(),
        }
    }

    fn set_dhcp(&mut self, on: bool) {
        self.dhcp = on && !self.stopping;
        self.remote_disable_until = None;
        self.remote_disabled = false;
    }

    /// Kea's `adjustNetworkState`: the service as the state wants it.
    fn adjust_dhcp(&mut self) {
        self.set_dhcp(self.state.dhcp_enabled());
    }

    fn on_event(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::HeartbeatOk {
                status,
                received_at,
            } => {
                self.sync_complete_notified = false;
                self.partner = status.state;
                self.clock_skew = detect::clock_skew_secs(status.date_time, received_at);
                self.exit.measured(now, self.clock_skew);
                if let Some(scopes) = status.scopes {
                    self.partner_scopes = scopes;
                }
                if let Some(n) = status.unsent_update_count {
                    self.partner_unsent = (self.partner_unsent.1, n);
                    self.partner_served_unseen |= self.partner_unsent_known && self.partner_has_new_unsent_updates();
                    self.partner_unsent_known = true;
                }
                // The link works: restart the interruption clock and forget
                // the clients counted against the partner.
                self.last_contact = now;
                self.clients.clear();
                self.run(now, Cause::Other, out);
            }
            Event::HeartbeatFailed => {
                let notified = std::mem::take(&mut self.sync_complete_notified);
                self.partner = PartnerState::Unavailable;
                if self.communication_interrupted(now) {
                    out.push(Action::Notice(Notice::CommunicationInterrupted));
                }
                // The partner synced from us, re-enabled nothing and then
                // vanished: partner-down serves on (Kea's
                // synced-partner-unavailable event).
                let cause = if notified {
                    Cause::SyncedPartnerUnavailable
                } else {
                    Cause::Other
                };
                self.run(now, cause, out);
            }
            Event::LeaseUpdates(outcome) => {
                match outcome {
                    UpdateOutcome::Acked(client) => self.rejected.forgive(&client),
                    UpdateOutcome::Failed => self.partner = PartnerState::Unavailable,
                    UpdateOutcome::Rejected(client) => self.rejected.record(client, now),
                    UpdateOutcome::Superseded => {}
                }
                self.run(now, Cause::Other, out);
            }
            Event::SyncSucceeded => {
                if self.pending == Some(Pending::Sync) && self.state == State::Syncing {
                    self.pending = None;
                    self.transition(State::Ready, Cause::Other, out);
                    self.run(now, Cause::Other, out);
                }
            }
            Event::SyncFailed => {
                if self.pending == Some(Pending::Sync) {
                    self.pending = None;
                    self.partner = PartnerState::Unavailable;
                }
            }
            Event::BacklogFlushed(ok) => {
                if self.pending == Some(Pending::BacklogFlush)
                    && self.state == State::CommunicationRecovery
                {
                    if ok {
                        self.pending = None;
                        let normal = self.normal_state();
                        self.transition(normal, Cause::Other, out);
                        self.run(now, Cause::Other, out);
                    } else {
                        self.pending = Some(Pending::HaReset);
                        out.push(Action::SendHaReset);
                    }
                }
            }
            Event::HaResetSent(ok) => {
                if self.pending == Some(Pending::HaReset) {
                    self.pending = None;
                    if ok {
                        self.transition(State::Waiting, Cause::Other, out);
                        self.run(now, Cause::Other, out);
                    }
                }
            }
            Event::Tick => {}
        }
    }

    /// Runs the current state's handler, and the next one's after each
    /// transition, until a handler stays (Kea's `runModel`).
    fn run(&mut self, now: Instant, cause: Cause, out: &mut Vec<Action>) {
        for _ in 0..MAX_CHAIN {
            if self.pending.is_some() {
                return;
            }
            let entered = std::mem::take(&mut self.just_entered);
            match self.handler(now, cause, entered, out) {
                Some(next) => self.transition(next, cause, out),
                None => return,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn put(&mut self, s: State) {
        let mut sink = Vec::new();
        let from = self.state;
        self.enter(s, from, true, Cause::Other, &mut sink);
        // In-maintenance as the partner's notify puts us there.
        self.maintenance_notified = s == State::InMaintenance;
        // As if the state's handler had already run once.
        self.just_entered = false;
        self.paused = false;
    }
}
