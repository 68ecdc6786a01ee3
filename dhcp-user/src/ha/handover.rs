//! Planned handover: what a server about to stop (SIGTERM, the `shutdown`
//! command) asks of its partner, so that the partner serves at once
//! instead of after its failure detection (`max-response-delay`, seconds
//! during which nobody answers).
//!
//! The request is one a Kea 2.2 partner already understands:
//! `ha-maintenance-start`, sent to the partner as an operator would. Kea's
//! `processMaintenanceStart` (ha_service.cc) then sends us
//! `ha-maintenance-notify`; we go `in-maintenance` (DHCP off) and answer 0,
//! it goes `partner-in-maintenance` (every scope served) and answers 0. If
//! our notify answer never reaches it, it goes `partner-down` with every
//! scope and still answers 0; it refuses with 1 in backup, in-maintenance,
//! partner-in-maintenance and terminated, and when we answer its notify
//! with 1001. Once we are gone, its next heartbeat or lease update fails
//! and partner-in-maintenance moves to partner-down without waiting for
//! `max-response-delay` (Kea checks no interruption there).
//!
//! What is pure here: whether asking makes sense ([`plan`]) and what the
//! answer means ([`judge`]). The sending is [`crate::peer`]'s; the
//! machine's side (the notify, and cancelling a maintenance that outlived
//! the process it was meant for) is in [`super::HaMachine`].

use std::fmt;

use super::machine::PeerAnswer;
use super::state::{PartnerState, State};

/// Whether to ask the partner to take over before stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Send `ha-maintenance-start`.
    Ask,
    /// Stop without asking, for this reason (logged).
    Skip(SkipReason),
}

/// Why a stopping server does not ask its partner to take over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A backup or passive-backup server: nobody takes over from it.
    NoPartner,
    /// This server is in this state: already in maintenance (the partner
    /// serves everything), holding its partner in maintenance (nobody is
    /// left to take over), or terminated (Kea refuses maintenance there).
    OwnState(State),
    /// The partner is in this state: unreachable, not synchronised yet
    /// (waiting, syncing: it would serve without our leases sooner than
    /// failure detection makes it), already serving every scope
    /// (partner-down), or in a state Kea refuses maintenance in.
    PartnerState(PartnerState),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoPartner => f.write_str("no active partner"),
            SkipReason::OwnState(s) => write!(f, "this server is {s}"),
            SkipReason::PartnerState(p) => write!(f, "the partner is {p}"),
        }
    }
}

/// Whether a server in `state`, seeing its partner (if it has one) as
/// `partner`, should ask it to take over before stopping: only when the
/// partner holds our leases (normal states, communication-recovery, ready)
/// and both sides are in states where Kea accepts maintenance.
pub fn plan(state: State, partner: Option<PartnerState>) -> Handover {
    let Some(partner) = partner else { return Handover::Skip(SkipReason::NoPartner) };
    if matches!(state, State::Backup | State::PassiveBackup) {
        return Handover::Skip(SkipReason::NoPartner);
    }
    if matches!(state, State::InMaintenance | State::PartnerInMaintenance | State::Terminated) {
        return Handover::Skip(SkipReason::OwnState(state));
    }
    match partner {
        PartnerState::In(State::HotStandby | State::LoadBalancing | State::CommunicationRecovery | State::Ready) => {
            Handover::Ask
        }
        p => Handover::Skip(SkipReason::PartnerState(p)),
    }
}

/// What the partner's answer to `ha-maintenance-start` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 0: it serves every scope now (partner-in-maintenance, or
    /// partner-down if our notify answer was lost).
    TakenOver,
    /// Answered anything else: it did not change state (1 in a state that
    /// refuses maintenance, 2 from a peer without the command, 403 from a
    /// listener restricting commands).
    Refused(i64),
    /// No usable answer within the bound.
    Unreachable,
}

/// Reads the partner's answer to `ha-maintenance-start`.
pub fn judge(answer: PeerAnswer) -> Outcome {
    match answer {
        PeerAnswer::Result(0) => Outcome::TakenOver,
        PeerAnswer::Result(code) => Outcome::Refused(code),
        PeerAnswer::Unreachable => Outcome::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartnerState as P;
    use State::*;

    #[test]
    fn asks_only_a_synchronised_partner_that_kea_lets_take_over() {
        for mine in [HotStandby, LoadBalancing, PartnerDown, CommunicationRecovery, Ready, Waiting, Syncing] {
            for theirs in [HotStandby, LoadBalancing, CommunicationRecovery, Ready] {
                assert_eq!(plan(mine, Some(P::In(theirs))), Handover::Ask, "{mine} seeing {theirs}");
            }
        }
        for p in [P::Unknown, P::Unavailable, P::In(Waiting), P::In(Syncing), P::In(PartnerDown), P::In(Terminated),
            P::In(InMaintenance), P::In(PartnerInMaintenance), P::In(Backup)]
        {
            assert_eq!(plan(HotStandby, Some(p)), Handover::Skip(SkipReason::PartnerState(p)), "{p}");
        }
        for mine in [InMaintenance, PartnerInMaintenance, Terminated] {
            assert_eq!(plan(mine, Some(P::In(HotStandby))), Handover::Skip(SkipReason::OwnState(mine)));
        }
        assert_eq!(plan(Backup, Some(P::In(HotStandby))), Handover::Skip(SkipReason::NoPartner));
        assert_eq!(plan(PassiveBackup, None), Handover::Skip(SkipReason::NoPartner));
        assert_eq!(SkipReason::PartnerState(P::Unavailable).to_string(), "the partner is unavailable");
    }

    #[test]
    fn only_a_zero_answer_is_a_takeover() {
        assert_eq!(judge(PeerAnswer::Result(0)), Outcome::TakenOver);
        assert_eq!(judge(PeerAnswer::Result(1)), Outcome::Refused(1));
        assert_eq!(judge(PeerAnswer::Result(403)), Outcome::Refused(403));
        assert_eq!(judge(PeerAnswer::Unreachable), Outcome::Unreachable);
    }
}
