//! Kea's messages for the end of a server's life, with Kea's ids, loggers
//! and debug levels (`DBGLVL_START_SHUT` 0, `DBGLVL_COMMAND` 10,
//! `DBGLVL_TRACE_BASIC` 40): operators' monitors and scripts grep
//! `DHCP4_SHUTDOWN`, and a log read for the last lines after a restart
//! shows the stop as Kea's does.

/// A stop was asked for (signal or `shutdown` command): Kea turns both
/// into its shutdown command.
pub fn shutdown_requested() {
    tracing::debug!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_COMMAND_RECEIVED", debuglevel = 0u8,
        "received command shutdown, arguments: (none)");
    tracing::debug!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_SHUTDOWN_REQUEST", debuglevel = 0u8,
        "shutdown of server requested");
}

/// Every task has stopped: the lease database (`memfile` or
/// `postgresql`) is closed and the `commands` are no longer served.
pub fn shut_down(database: &str, commands: &[&str]) {
    tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_SHUTDOWN", "server shutdown");
    tracing::debug!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_CLOSE_DB", debuglevel = 40u8,
        "closing currently open {database} database");
    if tracing::enabled!(target: "kea-dhcp4.commands", tracing::Level::DEBUG) {
        for c in commands {
            tracing::debug!(target: "kea-dhcp4.commands", msgid = "COMMAND_DEREGISTERED", debuglevel = 10u8,
                "Command {c} deregistered");
        }
    }
}
