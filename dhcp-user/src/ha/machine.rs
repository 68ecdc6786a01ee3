//! [`HaMachine`]: the state machine itself. See the module docs of
//! [`crate::ha`] for the model.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use crate::config::ha::{HaMode, HaRelationship, Pause, Role};

use super::detect::{
    self, CLOCK_SKEW_WARN_INTERVAL_SECS, ClientKey, ConnectingClients, RejectedClients,
    TERM_CLOCK_SKEW_SECS, WARN_CLOCK_SKEW_SECS,
};
use super::filter::{Query, ScopeFilter, ScopeOwner};
use super::handover::{self, Handover};
use super::recovery::{TerminatedExit, Verdict};
use super::state::{PartnerState, State};

/// Guard against a handler chain that never settles (none is known; Kea's
/// longest chain is waiting → syncing/ready → normal → …, four steps).
const MAX_CHAIN: usize = 16;

/// The partner's answer to `ha-heartbeat`, parsed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerStatus {
    /// `state` (a heartbeat whose state does not parse is a failure).
    pub state: PartnerState,
    /// `date-time`, parsed from RFC 1123.
    pub date_time: SystemTime,
    /// `scopes`, when present and well formed (Kea ignores it otherwise).
    pub scopes: Option<BTreeSet<String>>,
    /// `unsent-update-count`, when present.
    pub unsent_update_count: Option<u64>,
}

/// How a batch of lease updates to the partner ended (one event per
/// committed packet, once every update for it was answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Every update was answered 0 or 3. Forgives earlier rejections of
    /// this client.
    Acked(ClientKey),
    /// I/O error, bad answer or any result but 0, 3 and 4: the partner is
    /// taken as unavailable and the DHCP reply must be dropped.
    Failed,
    /// Result 4 (conflict, Kea 2.4+ peers): the reply is dropped, the
    /// partner stays available, the client counts toward
    /// `max-rejected-lease-updates` for 24 h.
    Rejected(ClientKey),
    /// Refused under the lease conflict rule ([`crate::ha::conflict`]):
    /// the partner holds the address for another client with a winning
    /// lease, which this server stores instead. The reply is dropped; the
    /// partner stays available and nothing is counted.
    Superseded,
}

/// What the partner said to a request whose outcome the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAnswer {
    /// No usable answer (connection, HTTP or JSON failure).
    Unreachable,
    /// The `result` of the answer.
    Result(i64),
}

/// Something that happened, fed to [`HaMachine::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A heartbeat answered properly; `received_at` is our wall clock when
    /// the answer arrived (for the clock skew).
    HeartbeatOk {
        /// The parsed answer.
        status: PartnerStatus,
        /// Local wall-clock time of the answer.
        received_at: SystemTime,
    },
    /// A heartbeat failed (no answer, non-zero result, missing or bad
    /// `state`/`date-time`).
    HeartbeatFailed,
    /// The lease updates of one committed packet are all answered.
    LeaseUpdates(UpdateOutcome),
    /// The lease sync asked by [`Action::SyncLeases`] (every page, then
    /// `ha-sync-complete-notify` or `dhcp-enable`) succeeded.
    SyncSucceeded,
    /// The lease sync failed (any request of it); the partner is taken as
    /// unavailable and the sync is retried on a later event.
    SyncFailed,
    /// [`Action::FlushBacklog`] finished: every queued update sent (`true`)
    /// or stopped at the first failure (`false`).
    BacklogFlushed(bool),
    /// [`Action::SendHaReset`] finished (answered 0: `true`).
    HaResetSent(bool),
    /// Time passed (housekeeping only: the partner's `dhcp-disable`
    /// `max-period`). Kea's model never runs on a timer of its own.
    Tick,
}

/// What the caller must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The state changed (log it as Kea does: old, new, partner state).
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// The partner's state that caused it.
        partner: PartnerState,
    },
    /// The machine paused on entering this state (`state-machine` config);
    /// it waits for `ha-continue`.
    Paused(State),
    /// HA's switch of the local DHCP service changed.
    DhcpService(bool),
    /// The served scopes changed: refresh [`HaMachine::filter`] users
    /// (packet path, kernel map).
    ScopesChanged(BTreeSet<String>),
    /// Heartbeats to the partner must run (`true`) or stop (`false`).
    Heartbeat(bool),
    /// Pull the partner's leases: before each `lease4-get-page` page send
    /// `dhcp-disable` with this `max-period`, then on success
    /// `ha-sync-complete-notify` (falling back to `dhcp-enable` when it is
    /// answered 2), on failure `dhcp-enable`. Report with
    /// [`Event::SyncSucceeded`] / [`Event::SyncFailed`].
    SyncLeases(SyncRequest),
    /// Send the queued lease updates one by one, stopping at the first
    /// failure; report [`Event::BacklogFlushed`].
    FlushBacklog,
    /// Forget the queued lease updates (leaving communication-recovery).
    ClearBacklog,
    /// Send `ha-reset` to the partner; report [`Event::HaResetSent`].
    SendHaReset,
    /// Send `ha-maintenance-notify` to the partner; report with
    /// [`HaMachine::maintenance_start_answered`] or
    /// [`HaMachine::maintenance_cancel_answered`].
    SendMaintenanceNotify {
        /// `cancel` argument.
        cancel: bool,
    },
    /// Send `ha-maintenance-cancel` to the partner: it holds this server
    /// in maintenance, but no partner told this process so (it restarted
    /// after a planned stop before the partner saw it gone, see
    /// [`crate::ha::handover`]). The partner answers by notifying the
    /// cancel ([`HaMachine::maintenance_notify`]); nothing to report.
    SendMaintenanceCancel,
    /// Something worth a log line.
    Notice(Notice),
}

/// Log-worthy conditions (Kea logs each of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Clock skew above 30 s (repeated at most once a minute).
    HighClockSkew {
        /// Partner minus local, seconds.
        skew_secs: i64,
    },
    /// Clock skew above 60 s: going to terminated.
    ClockSkewTerminates {
        /// Partner minus local, seconds.
        skew_secs: i64,
    },
    /// Too many clients with rejected lease updates: going to terminated.
    RejectedUpdatesTerminate {
        /// Distinct clients.
        clients: usize,
    },
    /// A heartbeat failed and nothing succeeded for max-response-delay.
    CommunicationInterrupted,
    /// A client aimed at the partner has waited longer than max-ack-delay.
    ClientUnacked {
        /// Distinct unacked clients so far.
        unacked: usize,
        /// How many more it takes (Kea's `unacked-clients-left`).
        left: usize,
    },
    /// Waiting while the partner is terminated: restart the partner.
    PartnerTerminated,
    /// The clock skew stayed under the warning limit for the settle
    /// period: leaving terminated to resync ([`crate::ha::recovery`]).
    LeavingTerminated {
        /// Partner minus local, seconds, at the last heartbeat.
        skew_secs: i64,
    },
    /// Left terminated first, but the partner stayed there (a Kea server
    /// never leaves it by itself): back to terminated, retried later.
    PartnerStaysTerminated,
    /// The machine was told to go on after a pause.
    Continued,
    /// In-maintenance: this server may now be shut down safely.
    MaintenanceShutdownSafe,
}

/// Parameters of a lease sync ([`Action::SyncLeases`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The peer to pull from (the partner).
    pub peer: String,
    /// `max-period` of each `dhcp-disable`: `sync-timeout` in whole
    /// seconds, at least 1.
    pub dhcp_disable_max_period: u32,
    /// `limit` of each `lease4-get-page`; fewer leases end the sync.
    pub page_limit: u32,
    /// HTTP timeout of each page request.
    pub page_timeout: Duration,
}

/// Result code of a command answer, as Kea numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// 0.
    Success,
    /// 1.
    Error,
    /// 1001: `ha-maintenance-notify` refused in this state.
    MaintenanceNotAllowed,
}

impl ReplyCode {
    /// The number on the wire.
    pub fn code(self) -> i64 {
        match self {
            ReplyCode::Success => 0,
            ReplyCode::Error => 1,
            ReplyCode::MaintenanceNotAllowed => 1001,
        }
    }
}

/// The answer to an HA command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `result`.
    pub code: ReplyCode,
    /// `text`.
    pub text: String,
}

impl Reply {
    fn ok(text: impl Into<String>) -> Self {
        Reply {
            code: ReplyCode::Success,
            text: text.into(),
        }
    }
    fn error(text: impl Into<String>) -> Self {
        Reply {
            code: ReplyCode::Error,
            text: text.into(),
        }
    }
}

/// What to do with the lease updates of one committed packet
/// ([`HaMachine::plan_lease_updates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdatePlan {
    /// For the partner (the other active server).
    pub partner: PartnerUpdates,
    /// Whether backups get the updates.
    pub backups: bool,
}

/// What happens to the partner's copy of a packet's lease updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerUpdates {
    /// Send them and hold the DHCP reply until they are answered; drop the
    /// reply if they fail.
    Send,
    /// Append them to the communication-recovery backlog; reply at once.
    Queue,
    /// The backlog is full: do not queue (the partner will be reset and
    /// resync); reply at once.
    Overflowed,
    /// Not sent in this state (counted in `unsent-update-count`); reply at
    /// once.
    Skip,
    /// No partner (backup server, passive-backup mode).
    NoPartner,
}

/// The `ha-heartbeat` answer of this server (the caller adds `date-time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// `state`.
    pub state: State,
    /// `scopes`, sorted.
    pub scopes: Vec<String>,
    /// `unsent-update-count`.
    pub unsent_update_count: u64,
}

/// The partner part of `status-get`'s `high-availability` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStatus {
    /// Seconds since the last successful heartbeat (0 before any).
    pub age: u64,
    /// Whether any exchange finished yet.
    pub in_touch: bool,
    /// `last-state` (`None` before any exchange).
    pub last_state: Option<PartnerState>,
    /// `last-scopes`.
    pub last_scopes: Vec<String>,
    /// `communication-interrupted`.
    pub communication_interrupted: bool,
    /// `connecting-clients`.
    pub connecting_clients: usize,
    /// `unacked-clients`.
    pub unacked_clients: usize,
    /// `unacked-clients-left`.
    pub unacked_clients_left: usize,
    /// `analyzed-packets`.
    pub analyzed_packets: u64,
}

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

    // ---- queries -------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The partner's state as last learned.
    pub fn partner_state(&self) -> PartnerState {
        self.partner
    }

    /// Whether the machine is paused (waiting for `ha-continue`).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Scope names served now (peer names), sorted as Kea reports them.
    pub fn serving_scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// Snapshot of the served scopes for the packet path and kernel map.
    pub fn filter(&self) -> ScopeFilter {
        let served = |n: &Option<String>| n.as_ref().is_some_and(|n| self.scopes.contains(n));
        ScopeFilter {
            mode: self.mode,
            primary: served(&self.primary_name),
            secondary: served(&self.secondary_name),
        }
    }

    /// HA's switch of the local DHCP service (Kea 2.2's network state as HA
    /// and the partner's `dhcp-disable`/`dhcp-enable` set it; an
    /// operator's own `dhcp-disable` is the caller's business).
    pub fn dhcp_enabled(&self) -> bool {
        self.dhcp
    }

    /// Whether heartbeats should be running now.
    pub fn heartbeat_enabled(&self) -> bool {
        !self.heartbeat_delay.is_zero()
            && self.role != Role::Backup
            && self.mode != HaMode::PassiveBackup
            // Beyond Kea: heartbeats go on in terminated, to see the clock
            // skew end (crate::ha::recovery).
            && !matches!(self.state, State::PassiveBackup | State::Backup)
            && self.pending != Some(Pending::Sync)
    }

    /// The `heartbeat-delay` between heartbeats.
    pub fn heartbeat_delay(&self) -> Duration {
        self.heartbeat_delay
    }

    /// Whether communication with the partner is interrupted: nothing
    /// succeeded for strictly more than `max-response-delay`.
    pub fn communication_interrupted(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_contact) > self.max_response_delay
    }

    /// When communication will count as interrupted if nothing succeeds
    /// before then: the driver tries the partner again right after it,
    /// so a dead partner is declared down at the deadline rather than up
    /// to one `heartbeat-delay` later.
    pub fn interruption_deadline(&self) -> Instant {
        self.last_contact + self.max_response_delay
    }

    /// Partner's clock minus ours at the last heartbeat, in seconds.
    pub fn clock_skew_secs(&self) -> i64 {
        self.clock_skew
    }

    /// This server's cumulative `unsent-update-count`.
    pub fn unsent_update_count(&self) -> u64 {
        self.unsent
    }

    /// Whether the partner's last two heartbeats show new unsent updates
    /// (it served clients without telling us).
    pub fn partner_has_new_unsent_updates(&self) -> bool {
        let (prev, last) = self.partner_unsent;
        last > 0 && prev != last
    }

    /// This server's answer to `ha-heartbeat` (without `date-time`).
    pub fn heartbeat_reply(&self) -> HeartbeatReply {
        HeartbeatReply {
            state: self.state,
            scopes: self.scopes.iter().cloned().collect(),
            unsent_update_count: self.unsent,
        }
    }

    /// The partner part of `status-get`.
    pub fn remote_status(&self, now: Instant) -> RemoteStatus {
        let in_touch = self.partner != PartnerState::Unknown;
        let interrupted = self.communication_interrupted(now);
        let max = self.max_unacked_clients as usize;
        let unacked = self.clients.unacked();
        RemoteStatus {
            age: if in_touch {
                now.saturating_duration_since(self.last_contact).as_secs()
            } else {
                0
            },
            in_touch,
            last_state: in_touch.then_some(self.partner),
            last_scopes: self.partner_scopes.iter().cloned().collect(),
            communication_interrupted: interrupted,
            connecting_clients: self.clients.connecting(),
            unacked_clients: unacked,
            unacked_clients_left: if interrupted && max >= unacked {
                max - unacked + 1
            } else {
                0
            },
            analyzed_packets: self.clients.analyzed(),
        }
    }

    // ---- the packet path -----------------------------------------------

    /// Whether to answer this query: HA's DHCP switch on and the query in a
    /// served scope. A query for the partner's scope seen while
    /// communication is interrupted feeds the unacked-clients count (Kea
    /// analyses exactly those). Returns the notices to log.
    pub fn admit(&mut self, now: Instant, q: &Query<'_>) -> (bool, Vec<Action>) {
        let filter = self.filter();
        let in_scope = filter.in_scope(q);
        let mut out = Vec::new();
        if !in_scope && self.communication_interrupted(now) {
            let unacked = detect::is_unacked(q.secs, self.max_ack_delay);
            if self
                .clients
                .record(ClientKey::new(q.chaddr, q.client_id), unacked)
            {
                let max = self.max_unacked_clients as usize;
                let n = self.clients.unacked();
                let left = if max >= n { max - n + 1 } else { 0 };
                out.push(Action::Notice(Notice::ClientUnacked { unacked: n, left }));
            }
        }
        (in_scope && self.dhcp, out)
    }

    /// The scope a query falls in, by peer name (Kea tags the query with
    /// the class `HA_<name>`).
    pub fn scope_name(&self, q: &Query<'_>) -> Option<&str> {
        match self.filter().owner(q)? {
            ScopeOwner::Primary => self.primary_name.as_deref(),
            ScopeOwner::Secondary => self.secondary_name.as_deref(),
        }
    }

    /// Decides what to do with the lease updates of one committed packet
    /// holding `leases` changes (updates plus deletions), and does the
    /// bookkeeping: `unsent-update-count` (once per packet) when the
    /// partner is skipped, backlog accounting in communication-recovery.
    pub fn plan_lease_updates(&mut self, leases: usize) -> UpdatePlan {
        let backups = self.send_lease_updates;
        let partner = if self.partner_name.is_none() {
            PartnerUpdates::NoPartner
        } else if self.send_lease_updates && self.state == State::CommunicationRecovery {
            let room = self.delayed_updates_limit.saturating_sub(self.backlog_len) as usize;
            if leases > room || self.backlog_overflowed {
                self.backlog_len = self.delayed_updates_limit;
                self.backlog_overflowed = true;
                PartnerUpdates::Overflowed
            } else {
                self.backlog_len += leases as u32;
                PartnerUpdates::Queue
            }
        } else if self.send_lease_updates
            && self.role != Role::Backup
            && matches!(
                self.state,
                State::HotStandby | State::LoadBalancing | State::PartnerInMaintenance
            )
        {
            PartnerUpdates::Send
        } else {
            // Zero means "just started", so the count wraps to 1.
            self.unsent = self.unsent.checked_add(1).unwrap_or(1);
            PartnerUpdates::Skip
        };
        UpdatePlan { partner, backups }
    }

    /// Counts one committed packet whose updates never reached the partner
    /// although they were due (an asynchronous kernel-renewal update that
    /// failed), so the partner sees `unsent-update-count` change and
    /// resyncs before trusting its copy.
    pub fn count_unsent(&mut self) {
        self.unsent = self.unsent.checked_add(1).unwrap_or(1);
    }

    // ---- commands from the partner -------------------------------------

    /// `ha-reset`: back to `waiting` from any state.
    pub fn ha_reset(&mut self, now: Instant) -> (Reply, Vec<Action>) {
        if self.state == State::Waiting {
            return (
                Reply::ok("HA state machine already in WAITING state."),
                Vec::new(),
            );
        }
        let actions = self.step(now, |m, now, out| {
            m.transition(State::Waiting, Cause::Other, out);
            m.run(now, Cause::Other, out);
        });
        (Reply::ok("HA state machine reset."), actions)
    }

    /// `ha-maintenance-notify` from the partner.
    pub fn maintenance_notify(&mut self, now: Instant, cancel: bool) -> (Reply, Vec<Action>) {
        if cancel {
            if self.state != State::InMaintenance {
                return (
                    Reply::error(
                        "Unable to cancel the maintenance for the server not in the in-maintenance state.",
                    ),
                    Vec::new(),
                );
            }
            // Kea 2.2 returns to the previous state even when that was
            // in-maintenance too (notified twice), which sticks; later Kea
            // goes to waiting then, and so do we.
            let back = if self.prev_state == State::InMaintenance {
                State::Waiting
            } else {
                self.prev_state
            };
            let actions = self.step(now, |m, now, out| {
                m.maintenance_notified = false;
                m.transition(back, Cause::MaintenanceCancel, out);
                m.run(now, Cause::MaintenanceCancel, out);
            });
            return (Reply::ok("Server maintenance canceled."), actions);
        }
        if matches!(
            self.state,
            State::Backup | State::PartnerInMaintenance | State::Terminated
        ) {
            return (
                Reply {
                    code: ReplyCode::MaintenanceNotAllowed,
                    text: format!(
                        "Unable to transition the server from the {} to in-maintenance state.",
                        self.state
                    ),
                },
                Vec::new(),
            );
        }
        let actions = self.step(now, |m, now, out| {
            m.maintenance_notified = true;
            m.transition(State::InMaintenance, Cause::Other, out);
            m.run(now, Cause::Other, out);
        });
        (Reply::ok("Server is in-maintenance state."), actions)
    }

    /// `ha-sync-complete-notify`: the partner finished pulling our leases.
    /// In Kea 2.2 this re-enables our DHCP service (the partner disabled it
    /// while paging), except in partner-down, where the next heartbeat
    /// decides.
    pub fn sync_complete_notify(&mut self, now: Instant) -> (Reply, Vec<Action>) {
        let actions = self.step(now, |m, _, _| {
            if m.state == State::PartnerDown {
                m.sync_complete_notified = true;
            } else {
                m.set_dhcp(true);
            }
        });
        (
            Reply::ok("Server successfully notified about the synchronization completion."),
            actions,
        )
    }

    /// `dhcp-disable` with origin `ha-partner`: the partner is pulling our
    /// leases. With `max_period` the service comes back by itself then.
    pub fn partner_dhcp_disable(
        &mut self,
        now: Instant,
        max_period: Option<Duration>,
    ) -> Vec<Action> {
        self.step(now, |m, now, _| {
            m.dhcp = false;
            m.remote_disable_until = max_period.map(|p| now + p);
            m.remote_disabled = true;
        })
    }

    /// Turns the service back on if a partner's `dhcp-disable` turned it
    /// off, and changes nothing otherwise. A hub has one DHCP service for
    /// all its relationships (as Kea's network state is server-wide): a
    /// spoke's `dhcp-disable` stops all of them, so its
    /// `ha-sync-complete-notify` must release the others too.
    pub fn release_partner_disable(&mut self, now: Instant) -> Vec<Action> {
        self.step(now, |m, _, _| {
            if m.remote_disabled {
                m.set_dhcp(true);
            }
        })
    }

    /// `dhcp-enable` with origin `ha-partner`.
    pub fn partner_dhcp_enable(&mut self, now: Instant) -> Vec<Action> {
        self.step(now, |m, _, _| m.set_dhcp(true))
    }

    // ---- operator commands ---------------------------------------------

    /// `ha-continue`: leave a pause. The machine moves on at the next event.
    pub fn resume(&mut self, now: Instant) -> (Reply, Vec<Action>) {
        if !self.paused {
            return (Reply::ok("HA state machine is not paused."), Vec::new());
        }
        let actions = self.step(now, |m, _, out| {
            m.paused = false;
            out.push(Action::Notice(Notice::Continued));
        });
        (Reply::ok("HA state machine continues."), actions)
    }

    /// `ha-scopes`: serve exactly these scopes (peer names) until the next
    /// state change. Refused, changing nothing, if a name is not a peer.
    pub fn set_scopes(&mut self, now: Instant, scopes: &[String]) -> (Reply, Vec<Action>) {
        if let Some(bad) = scopes.iter().find(|s| !self.peer_names.contains(s)) {
            return (
                Reply::error(format!(
                    "invalid server name specified '{bad}' while enabling/disabling HA scopes"
                )),
                Vec::new(),
            );
        }
        let actions = self.step(now, |m, _, _| {
            m.scopes = scopes.iter().cloned().collect();
            m.adjust_dhcp();
        });
        (Reply::ok("New HA scopes configured."), actions)
    }

    /// `ha-maintenance-start`, first half: refused in backup,
    /// in-maintenance, partner-in-maintenance and terminated; otherwise
    /// asks for `ha-maintenance-notify` to the partner. Finish with
    /// [`HaMachine::maintenance_start_answered`].
    pub fn maintenance_start(&mut self) -> Result<Vec<Action>, Reply> {
        if matches!(
            self.state,
            State::Backup | State::InMaintenance | State::PartnerInMaintenance | State::Terminated
        ) || self.partner_name.is_none()
        {
            return Err(Reply::error(format!(
                "Unable to transition the server from the {} to partner-in-maintenance state.",
                self.state
            )));
        }
        self.pending = Some(Pending::MaintenanceStart);
        Ok(vec![Action::SendMaintenanceNotify { cancel: false }])
    }

    /// `ha-maintenance-start`, second half: the partner answered 0 →
    /// partner-in-maintenance; it could not be reached or answered 1 →
    /// partner-down serving every scope (it is presumably already down);
    /// anything else (1001) → refused, no change.
    pub fn maintenance_start_answered(
        &mut self,
        now: Instant,
        answer: PeerAnswer,
    ) -> (Reply, Vec<Action>) {
        if self.pending != Some(Pending::MaintenanceStart) {
            return (
                Reply::error("No maintenance start is in progress."),
                Vec::new(),
            );
        }
        let mut reply = Reply::ok(
            "Server is now in the partner-in-maintenance state and its partner is in-maintenance state. \
             The partner can be now safely shut down.",
        );
        let actions = self.step(now, |m, now, out| {
            m.pending = None;
            if answer != PeerAnswer::Result(0) {
                m.partner = PartnerState::Unavailable;
            }
            let to = match answer {
                PeerAnswer::Result(0) => State::PartnerInMaintenance,
                PeerAnswer::Unreachable | PeerAnswer::Result(1) => {
                    reply = Reply::ok(
                        "Server is now in the partner-down state as its partner appears to be offline for maintenance.",
                    );
                    State::PartnerDown
                }
                PeerAnswer::Result(code) => {
                    reply = Reply::error(format!(
                        "Unable to transition to the partner-in-maintenance state. The partner server \
                         responded with result {code} to the ha-maintenance-notify command."
                    ));
                    return;
                }
            };
            m.transition(to, Cause::MaintenanceStart, out);
            m.run(now, Cause::MaintenanceStart, out);
        });
        (reply, actions)
    }

    /// `ha-maintenance-cancel`, first half: only in partner-in-maintenance;
    /// asks for `ha-maintenance-notify` with cancel to the partner. Finish
    /// with [`HaMachine::maintenance_cancel_answered`].
    pub fn maintenance_cancel(&mut self) -> Result<Vec<Action>, Reply> {
        if self.state != State::PartnerInMaintenance {
            return Err(Reply::error(
                "Unable to cancel maintenance request because the server is not in the partner-in-maintenance state.",
            ));
        }
        self.pending = Some(Pending::MaintenanceCancel);
        Ok(vec![Action::SendMaintenanceNotify { cancel: true }])
    }

    /// `ha-maintenance-cancel`, second half: on 0 both servers return to
    /// their previous states; otherwise the partner is taken as
    /// unavailable and nothing else changes.
    pub fn maintenance_cancel_answered(
        &mut self,
        now: Instant,
        answer: PeerAnswer,
    ) -> (Reply, Vec<Action>) {
        if self.pending != Some(Pending::MaintenanceCancel) {
            return (
                Reply::error("No maintenance cancel is in progress."),
                Vec::new(),
            );
        }
        let mut reply = Reply::ok("Server maintenance successfully canceled.");
        let actions = self.step(now, |m, now, out| {
            m.pending = None;
            if answer != PeerAnswer::Result(0) {
                m.partner = PartnerState::Unavailable;
                reply = Reply::error(format!(
                    "Unable to cancel maintenance. The partner server answered the ha-maintenance-notify \
                     command with {answer:?}."
                ));
                return;
            }
            let back = m.prev_state;
            m.transition(back, Cause::MaintenanceCancel, out);
            m.run(now, Cause::MaintenanceCancel, out);
        });
        (reply, actions)
    }

    // ---- planned stop ----------------------------------------------------

    /// Whether to ask the partner to take over before this server stops
    /// ([`crate::ha::handover::plan`] on the current states).
    pub fn handover(&self) -> Handover {
        handover::plan(self.state, self.partner_name.is_some().then_some(self.partner))
    }

    /// The server is stopping: HA's DHCP switch goes off and stays off in
    /// every state, so that nothing is answered (by the daemon or the
    /// kernel) that the partner might not learn before taking over.
    pub fn stop_serving(&mut self, now: Instant) -> Vec<Action> {
        self.step(now, |m, _, _| {
            m.stopping = true;
            m.set_dhcp(false);
        })
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

    /// Moves to `to` and applies its entry effects (scopes, DHCP switch,
    /// pausing, clean-ups).
    fn transition(&mut self, to: State, cause: Cause, out: &mut Vec<Action>) {
        let from = self.state;
        out.push(Action::StateChanged {
            from,
            to,
            partner: self.partner,
        });
        self.enter(to, from, to != from, cause, out);
    }

    /// `changed`: Kea's on-entry flag (the state really changed); entry
    /// effects apply only then.
    fn enter(
        &mut self,
        to: State,
        from: State,
        changed: bool,
        cause: Cause,
        out: &mut Vec<Action>,
    ) {
        self.prev_state = from;
        self.state = to;
        self.just_entered = changed;
        self.pending = None;
        if !changed {
            return;
        }
        if to == State::Ready {
            self.partner_served_unseen = false;
        }
        if from == State::CommunicationRecovery {
            self.backlog_len = 0;
            self.backlog_overflowed = false;
            out.push(Action::ClearBacklog);
        }
        if !self.paused && self.should_pause(to) {
            self.paused = true;
            out.push(Action::Paused(to));
        }
        self.scopes = match to {
            State::Waiting
            | State::Syncing
            | State::Ready
            | State::InMaintenance
            | State::Backup => BTreeSet::new(),
            State::PartnerInMaintenance => self.failover_scopes.clone(),
            State::PartnerDown if cause == Cause::MaintenanceStart || self.auto_failover => {
                self.failover_scopes.clone()
            }
            _ => self.default_scopes(),
        };
        self.adjust_dhcp();
        if matches!(
            to,
            State::Waiting | State::Syncing | State::Ready | State::PartnerDown | State::Terminated
        ) {
            self.rejected.clear();
        }
        if to == State::InMaintenance {
            out.push(Action::Notice(Notice::MaintenanceShutdownSafe));
        }
        if to == State::Terminated {
            self.exit.entered();
        }
    }

    fn should_pause(&mut self, s: State) -> bool {
        let pause = self
            .pauses
            .iter()
            .find(|(st, _)| *st == s)
            .map_or(Pause::Never, |(_, p)| *p);
        match pause {
            Pause::Never => false,
            Pause::Always => true,
            Pause::Once if self.paused_once.contains(&s) => false,
            Pause::Once => {
                self.paused_once.push(s);
                true
            }
        }
    }

    fn default_scopes(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        if matches!(self.role, Role::Primary | Role::Secondary)
            && let Some(me) = self.own_name()
        {
            s.insert(me);
        }
        s
    }

    fn own_name(&self) -> Option<String> {
        match self.role {
            Role::Primary => self.primary_name.clone(),
            Role::Secondary => self.secondary_name.clone(),
            _ => None,
        }
    }

    fn normal_state(&self) -> State {
        if self.role == Role::Backup {
            return State::Backup;
        }
        match self.mode {
            HaMode::LoadBalancing => State::LoadBalancing,
            HaMode::HotStandby => State::HotStandby,
            HaMode::PassiveBackup => State::PassiveBackup,
        }
    }

    fn sync_or_ready(&self) -> State {
        if self.sync_leases {
            State::Syncing
        } else {
            State::Ready
        }
    }

    /// Kea's `shouldPartnerDown`, asked only while the partner is
    /// unavailable.
    fn should_partner_down(&self, now: Instant) -> bool {
        if !self.communication_interrupted(now) {
            return false;
        }
        // With DHCP on, a load-balancing peer or a standby can watch the
        // partner's clients; a hot-standby primary (whose partner answers
        // nobody) or a server with DHCP off cannot, and fails over at once.
        if self.dhcp && (self.mode == HaMode::LoadBalancing || self.role == Role::Standby) {
            return self.clients.failure_detected(self.max_unacked_clients);
        }
        true
    }

    /// Kea's `shouldTerminate`: skew over 60 s, else a (rate-limited)
    /// warning over 30 s, then the rejected-updates limit.
    fn should_terminate(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let skew = self.clock_skew;
        if skew.abs() > TERM_CLOCK_SKEW_SECS {
            out.push(Action::Notice(Notice::ClockSkewTerminates {
                skew_secs: skew,
            }));
            return true;
        }
        if skew.abs() > WARN_CLOCK_SKEW_SECS {
            let due = self.last_skew_warning.is_none_or(|t| {
                now.saturating_duration_since(t).as_secs() > CLOCK_SKEW_WARN_INTERVAL_SECS
            });
            if due {
                self.last_skew_warning = Some(now);
                out.push(Action::Notice(Notice::HighClockSkew { skew_secs: skew }));
            }
        }
        if self.max_rejected_lease_updates > 0 {
            let clients = self.rejected.count(now);
            if clients >= self.max_rejected_lease_updates as usize {
                out.push(Action::Notice(Notice::RejectedUpdatesTerminate { clients }));
                return true;
            }
        }
        false
    }

    /// Kea's `isPartnerStateInvalid`: a partner state that cannot exist in
    /// this mode (configuration mismatch between the peers).
    fn partner_invalid(&self) -> bool {
        match self.partner {
            PartnerState::In(State::CommunicationRecovery | State::LoadBalancing) => {
                self.mode != HaMode::LoadBalancing
            }
            PartnerState::In(State::HotStandby) => self.mode != HaMode::HotStandby,
            _ => false,
        }
    }

    /// The checks every active state starts with; `Some(None)` = stay,
    /// `Some(Some(s))` = go to `s`, `None` = go on with the state's rules.
    fn guard(
        &mut self,
        now: Instant,
        cause: Cause,
        out: &mut Vec<Action>,
    ) -> Option<Option<State>> {
        if cause == Cause::MaintenanceCancel || self.paused {
            return Some(None);
        }
        if self.should_terminate(now, out) {
            return Some(Some(State::Terminated));
        }
        if self.partner_invalid() {
            return Some(Some(State::Waiting));
        }
        None
    }

    /// One state's handler; returns the state to move to, if any.
    fn handler(
        &mut self,
        now: Instant,
        cause: Cause,
        entered: bool,
        out: &mut Vec<Action>,
    ) -> Option<State> {
        use PartnerState::{In, Unavailable};
        use State::*;
        let pd_if_due = |m: &Self| m.should_partner_down(now).then_some(PartnerDown);
        match self.state {
            Backup | PassiveBackup => None,
            // Kea never leaves terminated by itself; we do once the skew
            // is gone (crate::ha::recovery).
            Terminated if self.paused => None,
            Terminated => match self.exit.in_terminated(now, self.partner, self.role == Role::Primary) {
                Verdict::Leave => {
                    out.push(Action::Notice(Notice::LeavingTerminated { skew_secs: self.clock_skew }));
                    Some(Waiting)
                }
                Verdict::Stay | Verdict::Return => None,
            },
            // Kea's in-maintenance waits for the cancel. One the partner
            // put a previous run of this server in (a planned stop, then a
            // restart before the partner saw it gone) is asked to be
            // cancelled; and if the partner no longer holds us there, we
            // resync from waiting rather than stay silent for good.
            InMaintenance if self.maintenance_notified || self.paused => None,
            InMaintenance => match self.partner {
                In(PartnerInMaintenance) => {
                    out.push(Action::SendMaintenanceCancel);
                    None
                }
                In(_) => Some(Waiting),
                _ => None,
            },
            Waiting => {
                if cause == Cause::MaintenanceCancel || self.paused {
                    return None;
                }
                if self.role == Role::Backup {
                    return Some(Backup);
                }
                if self.mode == HaMode::PassiveBackup {
                    return Some(PassiveBackup);
                }
                if self.should_terminate(now, out) {
                    return Some(Terminated);
                }
                if self.partner_invalid() {
                    return None;
                }
                if self.exit.waiting(now, self.partner) == Verdict::Return {
                    out.push(Action::Notice(Notice::PartnerStaysTerminated));
                    return Some(Terminated);
                }
                match self.partner {
                    In(
                        CommunicationRecovery
                        | HotStandby
                        | LoadBalancing
                        | InMaintenance
                        | PartnerDown
                        | PartnerInMaintenance
                        | Ready,
                    ) => Some(self.sync_or_ready()),
                    In(Waiting) if self.role == Role::Primary => Some(self.sync_or_ready()),
                    In(Terminated) => {
                        out.push(Action::Notice(Notice::PartnerTerminated));
                        None
                    }
                    Unavailable => pd_if_due(self),
                    _ => None,
                }
            }
            Syncing => {
                if let Some(verdict) = self.guard(now, cause, out) {
                    return verdict;
                }
                match self.partner {
                    In(Terminated) => Some(Terminated),
                    Unavailable => pd_if_due(self),
                    _ => {
                        let secs = u32::try_from(self.sync_timeout.as_secs())
                            .unwrap_or(u32::MAX)
                            .max(1);
                        self.pending = Some(Pending::Sync);
                        out.push(Action::SyncLeases(SyncRequest {
                            peer: self.partner_name.clone().unwrap_or_default(),
                            dhcp_disable_max_period: secs,
                            page_limit: self.sync_page_limit,
                            page_timeout: self.sync_timeout,
                        }));
                        None
                    }
                }
            }
            Ready => {
                if let Some(verdict) = self.guard(now, cause, out) {
                    return verdict;
                }
                match self.partner {
                    In(HotStandby | LoadBalancing | CommunicationRecovery) => {
                        Some(self.normal_state())
                    }
                    In(InMaintenance) => Some(PartnerInMaintenance),
                    In(PartnerInMaintenance) => Some(InMaintenance),
                    // Both ready: the primary goes first.
                    In(Ready) if self.role == Role::Primary => Some(self.normal_state()),
                    In(Terminated) => Some(Terminated),
                    Unavailable => pd_if_due(self),
                    _ => None,
                }
            }
            HotStandby | LoadBalancing => {
                if let Some(verdict) = self.guard(now, cause, out) {
                    return verdict;
                }
                match self.partner {
                    In(InMaintenance) => Some(PartnerInMaintenance),
                    In(PartnerDown) => Some(Waiting),
                    In(PartnerInMaintenance) => Some(InMaintenance),
                    In(Terminated) => Some(Terminated),
                    Unavailable if self.should_partner_down(now) => Some(PartnerDown),
                    Unavailable if self.delayed_updates_limit > 0 => Some(CommunicationRecovery),
                    _ => None,
                }
            }
            CommunicationRecovery => {
                if let Some(verdict) = self.guard(now, cause, out) {
                    return verdict;
                }
                match self.partner {
                    In(InMaintenance) => Some(PartnerInMaintenance),
                    In(PartnerDown) => Some(Waiting),
                    In(PartnerInMaintenance) => Some(InMaintenance),
                    In(Terminated) => Some(Terminated),
                    Unavailable => pd_if_due(self),
                    // The partner is resyncing: only an overflowed backlog
                    // obliges us to resync as well.
                    In(Waiting | Syncing | Ready) => (!self.communication_interrupted(now)
                        && self.backlog_overflowed)
                        .then_some(Waiting),
                    _ if self.communication_interrupted(now) => None,
                    In(LoadBalancing | CommunicationRecovery) => {
                        if self.backlog_overflowed {
                            self.pending = Some(Pending::HaReset);
                            out.push(Action::SendHaReset);
                        } else {
                            self.pending = Some(Pending::BacklogFlush);
                            out.push(Action::FlushBacklog);
                        }
                        None
                    }
                    _ => Some(Waiting),
                }
            }
            PartnerDown => {
                if !entered && cause == Cause::SyncedPartnerUnavailable {
                    self.adjust_dhcp();
                }
                if let Some(verdict) = self.guard(now, cause, out) {
                    return verdict;
                }
                match self.partner {
                    In(CommunicationRecovery | PartnerDown | PartnerInMaintenance) => Some(Waiting),
                    // The partner is back and synced from us; if it served
                    // clients we never heard of, resync from it first (also
                    // when it reached `ready` after its count stopped
                    // changing: a race Kea's two-heartbeat check loses).
                    In(Ready) if self.partner_served_unseen || self.partner_has_new_unsent_updates() => Some(Waiting),
                    In(Ready) => Some(self.normal_state()),
                    In(Terminated) => Some(Terminated),
                    _ => None,
                }
            }
            PartnerInMaintenance => {
                if self.paused {
                    return None;
                }
                if self.should_terminate(now, out) {
                    return Some(Terminated);
                }
                (self.partner == Unavailable).then_some(PartnerDown)
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
