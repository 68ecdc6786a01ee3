//! xdhcpd's command line as clap types, in the library so that the binary parses with them and
//! `cargo xtask package` generates the man pages and shell completions from the same definitions.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// xdhcpd's command line.
#[derive(Parser)]
#[command(name = "xdhcpd", version, about = "High-availability DHCPv4 server with an XDP fast path; reads Kea Dhcp4 configs")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// xdhcpd's subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Serve DHCP with the given Kea-format configuration.
    Run {
        /// Kea `Dhcp4` JSON configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Do not load the XDP program: answer everything in userspace.
        #[arg(long)]
        no_xdp: bool,
        /// Control API listener (Kea commands, /metrics, status page).
        /// Loopback by default; with HA, this server's peer URL address.
        #[arg(long, default_value = crate::api::DEFAULT_CONTROL_ADDR)]
        control_addr: std::net::SocketAddr,
        /// Require HTTP basic auth with this user (default: the
        /// basic-auth-user of this server's HA peer entry, if any).
        #[arg(long, requires = "control_password_file")]
        control_user: Option<String>,
        /// File holding the --control-user password.
        #[arg(long, requires = "control_user")]
        control_password_file: Option<PathBuf>,
        /// HTTPS for the control listener without HA (with HA, this
        /// server's peer entry sets it): CA file or directory client
        /// certificates must chain to (Kea: trust-anchor).
        #[arg(long)]
        trust_anchor: Option<PathBuf>,
        /// This server's certificate, PEM (Kea: cert-file).
        #[arg(long)]
        cert_file: Option<PathBuf>,
        /// Its private key, PEM, unencrypted (Kea: key-file).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Require a client certificate; default true (Kea: cert-required).
        #[arg(long)]
        cert_required: Option<bool>,
    },
    /// Check a configuration and exit (like `kea-dhcp4 -t`).
    Test {
        /// Kea `Dhcp4` JSON configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Check configurations, and the servers of each HA relationship
    /// together: peers, roles, timers, and that every subnet served by a
    /// relationship is identical on each peer that may serve it. Prints one
    /// finding per line (severity, file:line:col, JSON path, message, fix);
    /// exits 1 when any finding is an error.
    Check {
        /// Kea `Dhcp4` JSON files, typically one per HA peer.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the findings as a JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Convert an ISC dhcpd configuration (and optionally its leases) to a
    /// Kea-format config for xdhcpd/Kea, with a report of every construct
    /// mapped, approximated or refused.
    ///
    /// Writes DIR/<name>.json, DIR/<name>-import-report.txt (also printed)
    /// and, with --leases, DIR/<name>-leases4.csv (Kea memfile CSV with the
    /// active leases). <name> is --server-name, else this server's name in
    /// the failover peer, else the config file's stem. A failover peer
    /// becomes an HA relationship whose URLs are http://<address>:<ha-port>/.
    ImportDhcpd(crate::import::cli::Args),
}
