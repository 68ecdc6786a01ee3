//! Kea's per-state handlers and the checks they share: given the partner's
//! state, where each state goes next. Separate from the entry effects so the
//! transition rules read as one table.

use std::time::Instant;

use crate::config::ha::{HaMode, Role};
use crate::ha::detect::{CLOCK_SKEW_WARN_INTERVAL_SECS, TERM_CLOCK_SKEW_SECS, WARN_CLOCK_SKEW_SECS};
use crate::ha::recovery::Verdict;
use crate::ha::state::{PartnerState, State};

use super::{Action, Cause, HaMachine, Notice, Pending, SyncRequest};

impl HaMachine {
    pub(super) fn normal_state(&self) -> State {
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
    pub(super) fn handler(
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
}
