//! Moving to a state and its entry effects (scopes, DHCP switch, pausing,
//! clean-ups): what changes on a transition, whatever caused it.

use std::collections::BTreeSet;

use crate::config::ha::{Pause, Role};
use crate::ha::state::State;

use super::{Action, Cause, HaMachine, Notice};

impl HaMachine {
    /// Moves to `to` and applies its entry effects (scopes, DHCP switch,
    /// pausing, clean-ups).
    pub(super) fn transition(&mut self, to: State, cause: Cause, out: &mut Vec<Action>) {
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
    pub(super) fn enter(
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
}
