//! Assembles the daemon: config → policy → lease store → XDP → sockets →
//! one task per interface, plus housekeeping; stops cleanly on SIGTERM or
//! SIGINT (every task shares one cancellation token).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    api, config,
    dhcp::engine::Allocator,
    glue,
    leases::LeaseStore,
    net,
    server::{self, Link, Shared, Stats},
    xdp::{AttachMode, Fastpath},
};

/// How `xdhcpd run` was invoked.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kea-format config file.
    pub config: PathBuf,
    /// Userspace only.
    pub no_xdp: bool,
    /// Control API listener (`--control-addr`).
    pub control_addr: std::net::SocketAddr,
    /// Basic-auth user for the control API (`--control-user`).
    pub control_user: Option<String>,
    /// File holding that user's password (`--control-password-file`).
    pub control_password_file: Option<PathBuf>,
}

/// `xdhcpd test -c FILE`: load and validate, print warnings, exit.
pub fn check_config(path: &Path) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    let policy = glue::compile(&cfg);
    println!("{}: OK ({} subnets)", path.display(), policy.subnets.len());
    Ok(())
}

/// Runs the daemon until a termination signal.
pub fn run(opts: Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run_async(opts))
}

async fn run_async(opts: Options) -> anyhow::Result<()> {
    // Refuse bad config before touching anything.
    let cfg = config::load(&opts.config)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let policy = glue::compile(&cfg);
    let interfaces = glue::interface_names(&cfg);
    anyhow::ensure!(!interfaces.is_empty(), "{}: interfaces-config lists no interface", opts.config.display());
    let links: Vec<Arc<Link>> = interfaces
        .iter()
        .map(|name| -> anyhow::Result<Arc<Link>> {
            let iface = net::interface(name)?;
            Ok(Arc::new(Link::open(iface).with_context(|| format!("opening sockets on {name}"))?))
        })
        .collect::<anyhow::Result<_>>()?;

    let (store, report) = LeaseStore::open(glue::store_config(&cfg)).context("opening the lease store")?;
    tracing::info!(?report, "lease store loaded");

    let fastpath = if opts.no_xdp {
        tracing::info!("attach mode: {}", AttachMode::UserspaceOnly("--no-xdp".into()));
        None
    } else {
        match Fastpath::attach(&interfaces) {
            Ok(f) => {
                tracing::info!("attach mode: {} on {}", f.mode(), interfaces.join(", "));
                Some(f)
            }
            Err(e) => {
                tracing::warn!("attach mode: {}", AttachMode::UserspaceOnly(e.to_string()));
                None
            }
        }
    };

    let shared = Arc::new(Mutex::new(Shared { policy, store, alloc: Allocator::default(), stats: Stats::default(), dhcp_disabled_until: None }));
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    // Control API: bound before serving so a busy port fails start-up.
    let fastpath = fastpath.map(Arc::new);
    let mode = fastpath.as_ref().map_or_else(|| "userspace-only".to_owned(), |f| f.mode().to_string());
    let creds = api::credentials(opts.control_user.as_deref(), opts.control_password_file.as_deref(), &cfg)?;
    let api_state = api::ApiState::new(Arc::clone(&shared), &cfg, Some(opts.config.clone()), shutdown.clone())
        .with_xdp(mode, fastpath.clone().map(|f| f as Arc<dyn api::XdpSource>))
        .with_auth(creds);
    let (control_addr, api_task) = api::bind(Arc::new(api_state), opts.control_addr)
        .await
        .with_context(|| format!("control API on {}", opts.control_addr))?;
    tracing::info!(%control_addr, "control API listening");
    tasks.spawn(api_task);
    for link in &links {
        tracing::info!(interface = %link.iface.name, addrs = ?link.iface.addrs, "serving");
        tasks.spawn(server::serve(Arc::clone(link), Arc::clone(&shared), shutdown.clone()));
    }
    tasks.spawn(housekeeping(Arc::clone(&shared), shutdown.clone()));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = shutdown.cancelled() => tracing::info!("shutdown command: shutting down"),
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    if let Some(f) = &fastpath {
        match f.counters() {
            Ok(c) => tracing::info!(counters = ?c, "XDP counters"),
            Err(e) => tracing::warn!(error = %e, "reading XDP counters"),
        }
    }
    drop(fastpath); // detaches the XDP links
    let stats = shared.lock().unwrap_or_else(|p| p.into_inner()).stats.clone();
    tracing::info!(?stats, "stopped");
    Ok(())
}

/// Once a second: forget stale offers, reclaim expired leases.
async fn housekeeping(shared: Arc<Mutex<Shared>>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = server::unix_now();
        let mut st = shared.lock().unwrap_or_else(|p| p.into_inner());
        st.alloc.expire_offers(now);
        glue::reclaim_expired(&mut st.store, now);
    }
}
