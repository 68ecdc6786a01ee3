//! The HA commands: those the partner sends, the operator's, and the
//! planned stop; each checks its preconditions, then takes one step.

use std::time::{Duration, Instant};

use crate::ha::handover::{self, Handover};
use crate::ha::state::{PartnerState, State};

use super::{Action, Cause, HaMachine, Notice, Pending, PeerAnswer, Reply, ReplyCode};

impl HaMachine {
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
}
