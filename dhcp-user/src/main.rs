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
    if let Action::Serve(o) = &action
        && let Ok(cfg) = dhcp_user::config::load(&o.config)
    {
        match log.configure(cfg.loggers()) {
            Ok(()) => kea_logs = !cfg.loggers().is_empty(),
            Err(e) => eprintln!("xdhcpd: warning: loggers: {e}"),
        }
    }
    let result = match action {
        Action::Serve(opts) => dhcp_user::daemon::run(opts),
        Action::Test(config, with_db) => dhcp_user::daemon::check_config(&config, with_db),
        Action::Check(files, json) => dhcp_user::check::cli(&files, json),
        Action::Import(args) => dhcp_user::import::cli::run(&args),
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
