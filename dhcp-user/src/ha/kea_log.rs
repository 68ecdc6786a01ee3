//! The lines Kea's HA hook logs when its state machine moves, with Kea's
//! message ids and texts (`ha_messages.mes`, `HAService::verboseTransition`),
//! so an operator's `grep HA_STATE_TRANSITION` and the log-watching tools
//! built on it keep working. Pure: the driver writes them to the
//! `kea-dhcp4.ha-hooks` logger.

use super::state::{PartnerState, State};

/// One INFO line: Kea's message id and its text.
pub type Line = (&'static str, String);

/// Kea's upper-case state label; a partner never heard from is Kea's
/// label for an unset state, `UNDEFINED`.
fn partner_label(p: PartnerState) -> String {
    match p {
        PartnerState::Unknown => "UNDEFINED".to_owned(),
        other => other.name().to_uppercase(),
    }
}

/// The lines for a transition `from` → `to`: `HA_STATE_TRANSITION` with
/// the partner's state (or `HA_STATE_TRANSITION_PASSIVE_BACKUP`, where Kea
/// knows no partner state), and Kea's reminder when `waiting` goes straight
/// to `ready` because lease syncing is off.
pub fn transition(from: State, to: State, partner: PartnerState, passive_backup: bool) -> Vec<Line> {
    let (f, t) = (from.name().to_uppercase(), to.name().to_uppercase());
    let mut lines = vec![if passive_backup {
        ("HA_STATE_TRANSITION_PASSIVE_BACKUP", format!("server transitions from {f} to {t} state"))
    } else {
        ("HA_STATE_TRANSITION", format!("server transitions from {f} to {t} state, partner state is {}", partner_label(partner)))
    }];
    if from == State::Waiting && to == State::Ready {
        lines.push((
            "HA_CONFIG_LEASE_SYNCING_DISABLED_REMINDER",
            "bypassing SYNCING state because lease database synchronization is administratively disabled".to_owned(),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_reads_as_kea_writes_it() {
        let l = transition(State::Waiting, State::Syncing, PartnerState::In(State::Ready), false);
        assert_eq!(l, vec![("HA_STATE_TRANSITION", "server transitions from WAITING to SYNCING state, partner state is READY".to_owned())]);
        let l = transition(State::HotStandby, State::PartnerDown, PartnerState::Unavailable, false);
        assert_eq!(l[0].1, "server transitions from HOT-STANDBY to PARTNER-DOWN state, partner state is UNAVAILABLE");
        let l = transition(State::Waiting, State::Waiting, PartnerState::Unknown, false);
        assert_eq!(l[0].1, "server transitions from WAITING to WAITING state, partner state is UNDEFINED");
    }

    #[test]
    fn passive_backup_has_no_partner_state_and_sync_off_is_reminded() {
        let l = transition(State::Waiting, State::PassiveBackup, PartnerState::Unknown, true);
        assert_eq!(l, vec![("HA_STATE_TRANSITION_PASSIVE_BACKUP", "server transitions from WAITING to PASSIVE-BACKUP state".to_owned())]);
        let l = transition(State::Waiting, State::Ready, PartnerState::In(State::Waiting), false);
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].0, "HA_CONFIG_LEASE_SYNCING_DISABLED_REMINDER");
    }
}
