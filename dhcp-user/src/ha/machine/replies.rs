//! The answers of commands and queries (results, lease update plans,
//! heartbeat and status replies): what the machine says rather than does.

use crate::ha::state::{PartnerState, State};

#[cfg(doc)]
use super::HaMachine;

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
    pub(super) fn ok(text: impl Into<String>) -> Self {
        Reply {
            code: ReplyCode::Success,
            text: text.into(),
        }
    }
    pub(super) fn error(text: impl Into<String>) -> Self {
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
