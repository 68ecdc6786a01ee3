//! `xdhcpd`: argument parsing and logging set-up (`dhcp_user::logging`) only; everything else is
//! in the library so it is testable.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xdhcpd", version, about = "High-availability DHCPv4 server with an XDP fast path; reads Kea Dhcp4 configs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long, default_value = dhcp_user::api::DEFAULT_CONTROL_ADDR)]
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
    ImportDhcpd(dhcp_user::import::cli::Args),
}

fn main() {
    let log = dhcp_user::logging::init();
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Run { .. });
    // Kea's `loggers` take over before anything is logged, so the start-up
    // lines land where the operator's Kea wrote them. A config that does not
    // parse is reported by the daemon below.
    let mut kea_logs = false;
    let mut config_file = None;
    if let Command::Run { config, .. } = &cli.command {
        config_file = Some(config.clone());
        // A refused config still has its loggers honoured, as Kea does, so
        // the reason reaches the operator's log.
        let loggers = match dhcp_user::config::load(config) {
            Ok(cfg) => Some(cfg.loggers().to_vec()),
            Err(_) => dhcp_user::config::load_loggers(config),
        };
        if let Some(loggers) = loggers {
            match log.configure(&loggers) {
                Ok(()) => kea_logs = !loggers.is_empty(),
                Err(e) => eprintln!("xdhcpd: warning: loggers: {e}"),
            }
        }
    }
    let result = match cli.command {
        Command::Run {
            config,
            no_xdp,
            control_addr,
            control_user,
            control_password_file,
            trust_anchor,
            cert_file,
            key_file,
            cert_required,
        } => dhcp_user::daemon::run(dhcp_user::daemon::Options {
            config,
            no_xdp,
            control_addr,
            control_user,
            control_password_file,
            control_tls: dhcp_user::api::tls::ControlTls { trust_anchor, cert_file, key_file, cert_required },
        }),
        Command::Test { config } => dhcp_user::daemon::check_config(&config),
        Command::Check { files, json } => dhcp_user::check::cli(&files, json),
        Command::ImportDhcpd(args) => dhcp_user::import::cli::run(&args),
    };
    if let Err(e) = result {
        if serving {
            // Kea's message id and text, which scripts and test suites
            // (ISC Forge) look for when a start must fail.
            eprintln!("DHCP4_INIT_FAIL failed to initialize Kea server: {e:#}");
            if kea_logs && let Some(ce) = e.downcast_ref::<dhcp_user::config::ConfigError>() {
                if let Some((element, reason)) = ce.kea_parser_fail() {
                    tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_PARSER_FAIL",
                        "failed to create or run parser for configuration element {element}: {reason}");
                }
                let file = config_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
                tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_CONFIG_LOAD_FAIL",
                    "configuration error using file: {file}, reason: {ce}");
            }
            if kea_logs {
                tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_INIT_FAIL", "failed to initialize Kea server: {e:#}");
            }
        }
        eprintln!("xdhcpd: error: {e:#}");
        log.flush();
        std::process::exit(1);
    }
    log.flush();
}
