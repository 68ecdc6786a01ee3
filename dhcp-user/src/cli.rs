//! xdhcpd's command line, in the library so that `xtask` can generate
//! man pages and shell completions from the same definition.
//!
//! Two styles: Kea's (`xdhcpd -c FILE`, `-t FILE`, `-T FILE`, `-d`, `-v`,
//! `-V`), so that a unit file or script written for `kea-dhcp4` runs
//! xdhcpd by changing only the binary's name; and subcommands (`run`,
//! `test`, `check`, `import-dhcpd`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "xdhcpd",
    about = "High-availability DHCPv4 server with an XDP fast path; reads Kea Dhcp4 configs",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Serve DHCP with this Kea `Dhcp4` configuration (as `kea-dhcp4 -c`).
    #[arg(short = 'c', value_name = "FILE", conflicts_with_all = ["test", "test_with_db"])]
    pub config: Option<PathBuf>,
    /// Check this configuration and exit (as `kea-dhcp4 -t`).
    #[arg(short = 't', value_name = "FILE", conflicts_with = "test_with_db")]
    pub test: Option<PathBuf>,
    /// Check this configuration, opening the lease file too, and exit (as
    /// `kea-dhcp4 -T`).
    #[arg(short = 'T', value_name = "FILE")]
    pub test_with_db: Option<PathBuf>,
    /// Debug logging to stderr (as `kea-dhcp4 -d`; `RUST_LOG` wins if set).
    #[arg(short = 'd')]
    pub debug: bool,
    /// Print the version and exit.
    #[arg(short = 'v')]
    pub version: bool,
    /// Print the extended version (build details) and exit.
    #[arg(short = 'V')]
    pub extended_version: bool,
    /// Serving options for `-c` (the same as `run`'s).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Subcommand style.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How to serve, beside the config file.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Do not load the XDP program: answer everything in userspace.
    #[arg(long)]
    pub no_xdp: bool,
    /// Control API listener (Kea commands, /metrics, status page).
    /// Loopback by default; not Kea's 8000, which kea-ctrl-agent uses.
    #[arg(long, default_value = crate::api::DEFAULT_CONTROL_ADDR)]
    pub control_addr: std::net::SocketAddr,
    /// Require HTTP basic auth with this user (default: the
    /// basic-auth-user of this server's HA peer entry, if any).
    #[arg(long, requires = "control_password_file")]
    pub control_user: Option<String>,
    /// File holding the --control-user password.
    #[arg(long, requires = "control_user")]
    pub control_password_file: Option<PathBuf>,
    /// HTTPS for the control listener without HA (with HA, this
    /// server's peer entry sets it): CA file or directory client
    /// certificates must chain to (Kea: trust-anchor).
    #[arg(long)]
    pub trust_anchor: Option<PathBuf>,
    /// This server's certificate, PEM (Kea: cert-file).
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// Its private key, PEM, unencrypted (Kea: key-file).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Require a client certificate; default true (Kea: cert-required).
    #[arg(long)]
    pub cert_required: Option<bool>,
}

impl ServeArgs {
    /// The daemon's options for `config`.
    pub fn options(&self, config: PathBuf) -> crate::daemon::Options {
        crate::daemon::Options {
            config,
            no_xdp: self.no_xdp,
            control_addr: self.control_addr,
            control_user: self.control_user.clone(),
            control_password_file: self.control_password_file.clone(),
            control_tls: crate::api::tls::ControlTls {
                trust_anchor: self.trust_anchor.clone(),
                cert_file: self.cert_file.clone(),
                key_file: self.key_file.clone(),
                cert_required: self.cert_required,
            },
        }
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve DHCP with the given Kea-format configuration.
    Run {
        /// Kea `Dhcp4` JSON configuration file.
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// How to serve.
        #[command(flatten)]
        serve: ServeArgs,
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
    /// Write the leases of the PostgreSQL database a config names as a
    /// Kea memfile CSV, as `kea-admin lease-dump pgsql -4` does.
    LeaseDump {
        /// Kea `Dhcp4` JSON configuration file (its `lease-database`).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// The CSV file to write.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Write the leases of Kea memfile CSV files (replayed in the order
    /// given, e.g. `.2`, `.1`, then the live file) into the PostgreSQL
    /// database a config names, each over its address's row.
    LeaseUpload {
        /// Kea `Dhcp4` JSON configuration file (its `lease-database`).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Memfile CSV files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// What one invocation asks for, both styles folded together.
#[derive(Debug)]
pub enum Action {
    /// Serve with these options.
    Serve(crate::daemon::Options),
    /// Check a config; `true` also opens the lease file (`-T`).
    Test(PathBuf, bool),
    /// `xdhcpd check`.
    Check(Vec<PathBuf>, bool),
    /// `xdhcpd import-dhcpd`.
    Import(crate::import::cli::Args),
    /// `xdhcpd lease-dump` / `lease-upload`.
    Leases(Command),
    /// `-v` / `-V`.
    Version {
        /// `-V`.
        extended: bool,
    },
}

impl Cli {
    /// The action; `None` when nothing was asked (print help).
    pub fn action(self) -> Option<Action> {
        if self.version || self.extended_version {
            return Some(Action::Version { extended: self.extended_version });
        }
        match self.command {
            Some(Command::Run { config, serve }) => return Some(Action::Serve(serve.options(config))),
            Some(Command::Test { config }) => return Some(Action::Test(config, false)),
            Some(Command::Check { files, json }) => return Some(Action::Check(files, json)),
            Some(Command::ImportDhcpd(a)) => return Some(Action::Import(a)),
            Some(c @ (Command::LeaseDump { .. } | Command::LeaseUpload { .. })) => return Some(Action::Leases(c)),
            None => {}
        }
        if let Some(t) = self.test {
            return Some(Action::Test(t, false));
        }
        if let Some(t) = self.test_with_db {
            return Some(Action::Test(t, true));
        }
        self.config.map(|c| Action::Serve(self.serve.options(c)))
    }
}

/// `-v`: the version alone, as Kea prints it.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `-V`: the version and how it was built.
pub fn extended_version() -> String {
    format!(
        "{}\nxdhcpd (Kea 2.2 compatible DHCPv4 server), {} build for {}-{}\nlease backends: memfile, postgresql; hooks built in: libdhcp_lease_cmds, libdhcp_ha, libdhcp_bootp",
        version(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(args: &[&str]) -> Option<Action> {
        Cli::try_parse_from(std::iter::once("xdhcpd").chain(args.iter().copied())).unwrap().action()
    }

    #[test]
    fn kea_style_and_subcommands_parse_to_the_same_actions() {
        let Some(Action::Serve(o)) = action(&["-c", "/etc/kea/kea-dhcp4.conf"]) else { panic!() };
        assert_eq!(o.config, PathBuf::from("/etc/kea/kea-dhcp4.conf"));
        assert_eq!(o.control_addr.to_string(), crate::api::DEFAULT_CONTROL_ADDR);
        let Some(Action::Serve(o)) = action(&["-d", "-c", "f.json", "--no-xdp"]) else { panic!() };
        assert!(o.no_xdp);
        let Some(Action::Serve(o)) = action(&["run", "-c", "f.json", "--control-addr", "127.0.0.1:9"]) else { panic!() };
        assert_eq!(o.control_addr.port(), 9);
        assert!(matches!(action(&["-t", "f.json"]), Some(Action::Test(_, false))));
        assert!(matches!(action(&["-T", "f.json"]), Some(Action::Test(_, true))));
        assert!(matches!(action(&["test", "-c", "f.json"]), Some(Action::Test(_, false))));
        assert!(matches!(action(&["-v"]), Some(Action::Version { extended: false })));
        assert!(matches!(action(&["-V"]), Some(Action::Version { extended: true })));
        assert!(action(&[]).is_none());
        assert!(Cli::try_parse_from(["xdhcpd", "-c", "a", "-t", "b"]).is_err());
    }
}
