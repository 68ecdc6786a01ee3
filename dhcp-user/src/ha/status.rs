//! One relationship's state as data: what `status-get`, the status page
//! and `/metrics` show. Read once from the machine and the runtime's
//! counters, then rendered by each reader (Kea's JSON in
//! [`crate::kea::status`], gauges in the API's metrics) instead of every
//! reader parsing another's JSON.

use super::{RemoteStatus, State};
use crate::config::ha::{HaMode, Role};

/// This server's side of a relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStatus {
    /// Its role.
    pub role: Role,
    /// Its HA state.
    pub state: State,
    /// The scopes it serves now.
    pub scopes: Vec<String>,
    /// Its name in the relationship.
    pub server_name: String,
}

/// What this server knows of its partner.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerView {
    /// Failure detection's view (last state, contact, unacked clients).
    pub status: RemoteStatus,
    /// The partner's role.
    pub role: Role,
    /// The partner's name.
    pub server_name: String,
    /// The partner's URL.
    pub url: String,
}

/// One relationship, as the outside sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelStatus {
    /// The relationship's mode.
    pub mode: HaMode,
    /// This server.
    pub local: LocalStatus,
    /// The partner, when the relationship has one (not for backups).
    pub remote: Option<PartnerView>,
    /// Lease updates not sent to the partner (Kea's counter).
    pub unsent_update_count: u64,
    /// Kernel renewals and recovery backlog waiting for the partner.
    pub replication_backlog: usize,
    /// Seconds since the partner last answered a heartbeat.
    pub last_heartbeat_age: Option<u64>,
    /// Whether the machine is paused (`state-machine` pause).
    pub paused: bool,
    /// Partner clock minus ours, whole seconds.
    pub clock_skew: i64,
}

impl RelStatus {
    /// The partner's state as metrics label it: `unavailable` while out of
    /// touch or interrupted, else the last state it reported; `None`
    /// without a partner or before any exchange.
    pub fn partner_state_label(&self) -> Option<&'static str> {
        let r = self.remote.as_ref()?;
        if !r.status.in_touch || r.status.communication_interrupted {
            return Some(super::PartnerState::Unavailable.name());
        }
        r.status.last_state.map(super::PartnerState::name)
    }
}
