//! Which commands each listener answers (issue #20, "nobody in who does
//! not belong"). The HA peer listener must be reachable by the partner,
//! which usually means by the whole HA network; without restriction,
//! anyone there could `lease4-wipe` or `shutdown` the server. As Kea 3.0's
//! `restrict-commands` (now the default) does, the peer listener answers
//! only what a partner sends; every command stays available on the control
//! address (loopback by default) and the unix control socket.
//!
//! The warning for an HA listener anyone on its network can talk to (no
//! basic auth, no TLS) is [`crate::reconfig::security_warnings`], kept
//! with the configuration in force.

/// Where a request came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The control address or the unix socket: every command.
    Control,
    /// An HA peer listener; with `restrict`, only [`PARTNER_COMMANDS`].
    Peer {
        /// The relationship's `restrict-commands`.
        restrict: bool,
    },
}

/// What an HA partner sends: Kea 3.0's `CommandCreator::ha_commands4_`,
/// plus `ha-maintenance-start`/`-cancel`, which xdhcpd sends its partner
/// when it stops (to hand over at once) and when it comes back while still
/// held in maintenance (see [`crate::ha::handover`]). At worst a sender
/// makes this server serve every scope, or end that.
pub const PARTNER_COMMANDS: &[&str] = &[
    "dhcp-disable",
    "dhcp-enable",
    "ha-heartbeat",
    "ha-maintenance-cancel",
    "ha-maintenance-notify",
    "ha-maintenance-start",
    "ha-reset",
    "ha-sync-complete-notify",
    "lease4-del",
    "lease4-get-all",
    "lease4-get-page",
    "lease4-update",
    "list-commands",
    "status-get",
];

impl Listener {
    /// Whether `command` may run on this listener.
    pub fn permits(self, command: &str) -> bool {
        match self {
            Listener::Control | Listener::Peer { restrict: false } => true,
            Listener::Peer { restrict: true } => PARTNER_COMMANDS.contains(&command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_peer_listener_answers_only_partner_commands() {
        let peer = Listener::Peer { restrict: true };
        for c in ["ha-heartbeat", "lease4-update", "lease4-get-page", "dhcp-disable", "ha-sync-complete-notify",
            "ha-maintenance-start", "ha-maintenance-cancel"]
        {
            assert!(peer.permits(c), "{c}");
        }
        for c in ["lease4-wipe", "shutdown", "config-set", "config-write", "lease4-add", "statistic-reset-all"] {
            assert!(!peer.permits(c), "{c}");
            assert!(Listener::Control.permits(c));
            assert!(Listener::Peer { restrict: false }.permits(c));
        }
    }
}
