//! The server states and what the partner can be seen as.

use std::fmt;

use crate::config::ha::HaState;

/// A state this server can be in: Kea's HA states, with Kea's names on the
/// wire (`ha-heartbeat`, `status-get`). `unavailable` is not here: it only
/// ever describes the partner (see [`PartnerState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// `backup`: a backup server; receives lease updates, never serves.
    Backup,
    /// `communication-recovery`: load balancing with the partner out of
    /// reach, lease updates queued for later.
    CommunicationRecovery,
    /// `hot-standby`: normal operation in hot-standby mode.
    HotStandby,
    /// `load-balancing`: normal operation in load-balancing mode.
    LoadBalancing,
    /// `in-maintenance`: the operator is maintaining this server; DHCP off.
    InMaintenance,
    /// `partner-down`: serving without the partner.
    PartnerDown,
    /// `partner-in-maintenance`: serving everything while the partner is
    /// maintained.
    PartnerInMaintenance,
    /// `passive-backup`: the primary in passive-backup mode.
    PassiveBackup,
    /// `ready`: synchronised, waiting for the partner before serving.
    Ready,
    /// `syncing`: pulling the partner's leases.
    Syncing,
    /// `terminated`: HA given up (clock skew, rejected updates) until the
    /// skew is gone ([`crate::ha::recovery`]); serves its own scope and
    /// sends the partner heartbeats only.
    Terminated,
    /// `waiting`: starting up, waiting to learn the partner's state.
    Waiting,
}

impl State {
    /// Every state, for tables and tests.
    pub const ALL: [State; 12] = [
        State::Backup,
        State::CommunicationRecovery,
        State::HotStandby,
        State::LoadBalancing,
        State::InMaintenance,
        State::PartnerDown,
        State::PartnerInMaintenance,
        State::PassiveBackup,
        State::Ready,
        State::Syncing,
        State::Terminated,
        State::Waiting,
    ];

    /// Kea's name for the state (lower case, as sent in heartbeats).
    pub fn name(self) -> &'static str {
        match self {
            State::Backup => "backup",
            State::CommunicationRecovery => "communication-recovery",
            State::HotStandby => "hot-standby",
            State::LoadBalancing => "load-balancing",
            State::InMaintenance => "in-maintenance",
            State::PartnerDown => "partner-down",
            State::PartnerInMaintenance => "partner-in-maintenance",
            State::PassiveBackup => "passive-backup",
            State::Ready => "ready",
            State::Syncing => "syncing",
            State::Terminated => "terminated",
            State::Waiting => "waiting",
        }
    }

    /// The state called `name`, if any.
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the local DHCP service runs in this state (Kea's
    /// `adjustNetworkState`): the normal states, partner-down,
    /// partner-in-maintenance, communication-recovery, passive-backup and
    /// terminated. Which clients are answered is then up to the scopes.
    pub fn dhcp_enabled(self) -> bool {
        matches!(
            self,
            State::CommunicationRecovery
                | State::LoadBalancing
                | State::HotStandby
                | State::PartnerDown
                | State::PartnerInMaintenance
                | State::PassiveBackup
                | State::Terminated
        )
    }

    /// The configuration's name for this state (`state-machine.states`).
    pub fn config_key(self) -> HaState {
        match self {
            State::Backup => HaState::Backup,
            State::CommunicationRecovery => HaState::CommunicationRecovery,
            State::HotStandby => HaState::HotStandby,
            State::LoadBalancing => HaState::LoadBalancing,
            State::InMaintenance => HaState::InMaintenance,
            State::PartnerDown => HaState::PartnerDown,
            State::PartnerInMaintenance => HaState::PartnerInMaintenance,
            State::PassiveBackup => HaState::PassiveBackup,
            State::Ready => HaState::Ready,
            State::Syncing => HaState::Syncing,
            State::Terminated => HaState::Terminated,
            State::Waiting => HaState::Waiting,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What this server knows of its partner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartnerState {
    /// No exchange has finished yet (Kea starts with an undefined partner
    /// state, which no transition reacts to).
    Unknown,
    /// The last exchange with the partner failed (heartbeat, lease update,
    /// sync or maintenance notification).
    Unavailable,
    /// The state the partner reported in its last heartbeat.
    In(State),
}

impl PartnerState {
    /// Parses the `state` of a heartbeat answer (`"unavailable"` included,
    /// as Kea accepts it); `None` for anything else, which makes the
    /// heartbeat a failure.
    pub fn from_name(name: &str) -> Option<PartnerState> {
        if name == "unavailable" {
            return Some(PartnerState::Unavailable);
        }
        State::from_name(name).map(PartnerState::In)
    }

    /// Kea's name (`"unavailable"`; `"unknown"` before any exchange).
    pub fn name(self) -> &'static str {
        match self {
            PartnerState::Unknown => "unknown",
            PartnerState::Unavailable => "unavailable",
            PartnerState::In(s) => s.name(),
        }
    }
}

impl fmt::Display for PartnerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
