//! Read-only views of the machine: its state, switches and timers, and the
//! heartbeat and `status-get` answers built from them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::ha::{HaMode, Role};
use crate::ha::filter::ScopeFilter;
use crate::ha::state::{PartnerState, State};

use super::{HaMachine, HeartbeatReply, Pending, RemoteStatus};

impl HaMachine {
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
}
