//! `xdhcpd`: argument parsing (`dhcp_user::cli`) and logging set-up
//! (`dhcp_user::logging`) only; everything else is in the library so it is
//! testable.
use clap::{CommandFactory as _, Parser as _};
use dhcp_user::cli::{Action, Cli};

fn main() {
    let cli = Cli::parse();
    if cli.debug && std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LOG", "debug") };
    }
    let Some(action) = cli.action() else {
        let _ = Cli::command().print_help();
        std::process::exit(1);
    };
    let log = dhcp_user::logging::init();
    let serving = matches!(action, Action::Serve(_));
    // Kea's `loggers` take over before anything is logged, so the start-up
    // lines land where the operator's Kea wrote them. A config that does not
    // parse is reported by the daemon below.
    let mut kea_logs = false;
    let mut config_file = None;
    if let Action::Serve(o) = &action {
        config_file = Some(o.config.clone());
        // A refused config still has its loggers honoured, as Kea does, so
        // the reason reaches the operator's log.
        let loggers = match dhcp_user::config::load(&o.config) {
            Ok(cfg) => Some(cfg.loggers().to_vec()),
            Err(_) => dhcp_user::config::load_loggers(&o.config),
        };
        if let Some(loggers) = loggers {
            match log.configure(&loggers) {
                Ok(()) => kea_logs = !loggers.is_empty(),
                Err(e) => eprintln!("xdhcpd: warning: loggers: {e}"),
            }
        }
    }
    let result = match action {
        Action::Serve(opts) => dhcp_user::daemon::run(opts),
        Action::Test(config, with_db) => dhcp_user::daemon::check_config(&config, with_db),
        Action::Check(files, json) => dhcp_user::check::cli(&files, json),
        Action::Import(args) => dhcp_user::import::cli::run(&args),
        Action::Leases(c) => dhcp_user::dbtool::run(c),
        Action::Version { extended } => {
            println!("{}", if extended { dhcp_user::cli::extended_version() } else { dhcp_user::cli::version().to_owned() });
            Ok(())
        }
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
