//! What goes in and out of a step: the events fed to [`HaMachine::handle`],
//! the actions and notices every entry point returns. Kept apart from the
//! machine so the driver's vocabulary reads in one place.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::ha::detect::ClientKey;
use crate::ha::state::{PartnerState, State};

#[cfg(doc)]
use super::HaMachine;

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
