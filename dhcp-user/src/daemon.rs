//! Assembles the daemon: config → policy → lease store → XDP → sockets →
//! the core, the kernel-sync task, the HA runtime, the control API's
//! listeners ([`edges`]), one task per interface, the kernel-ACK drain and
//! housekeeping; re-reads the config on SIGHUP ([`crate::reconfig`]);
//! stops cleanly on SIGTERM, SIGINT or the `shutdown` command: first hands
//! the service to the HA partners ([`crate::peer::hand_over`]), then ends
//! every task (they share one cancellation token).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    api, config,
    core::Core,
    glue,
    kernel::KernelSync,
    leases::{
        LeaseStore,
        pgsql::{PgLeaseDb, monitor, reconnect::Reconnect},
    },
    net,
    peer::HaRuntime,
    server::{self, Link},
    xdp::{AttachMode, Fastpath},
};

mod db;
mod edges;
pub(crate) mod lifecycle;
use edges::{ApiEdges, peer_tls};
use crate::reconfig::Edges as _;

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
    /// HTTPS for the control listener of a server without HA.
    pub control_tls: api::tls::ControlTls,
}

/// `xdhcpd test -c FILE` / `-t FILE`: load and validate, print warnings,
/// exit; `with_db` (`-T`) also opens the lease file, as Kea's `-T` opens
/// its lease database.
pub fn check_config(path: &Path, with_db: bool) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    for w in crate::reconfig::security_warnings(&cfg) {
        eprintln!("warning: {w}");
    }
    if with_db {
        let (_store, report) = LeaseStore::open(glue::store_config(&cfg)).context("opening the lease store")?;
        println!("{}: lease store: {report}", path.display());
    }
    let policy = glue::compile(&cfg);
    println!("{}: OK ({} subnets)", path.display(), policy.subnets.len());
    Ok(())
}

/// Runs the daemon until a termination signal.
pub fn run(opts: Options) -> anyhow::Result<()> {
    // Kea's multi-threading: the runtime gets one worker thread per packet
    // worker (a config that does not load is reported by run_async).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some((threads, _)) = config::load(&opts.config).ok().and_then(|c| c.multi_threading().pool()) {
        builder.worker_threads(threads);
    }
    let rt = builder.enable_all().build()?;
    rt.block_on(run_async(opts))
}

/// The lease store over the backend `lease-database` names: the memfile,
/// or Kea's tables in PostgreSQL (schema checked, every row loaded, and
/// the database returned for its monitor). The rest of the daemon sees
/// one `LeaseStore` either way.
async fn open_store(cfg: &config::Config) -> anyhow::Result<(LeaseStore, Option<PgLeaseDb>)> {
    match cfg.lease_database() {
        config::LeaseDatabase::Memfile(_) => {
            let (store, report) = LeaseStore::open(glue::store_config(cfg)).context("opening the lease store")?;
            tracing::info!(?report, "lease store loaded");
            Ok((store, None))
        }
        config::LeaseDatabase::Postgresql(pg) => {
            if let Some(tls) = &pg.tls {
                // Kea's id and text, with its redacted access string's keys.
                tracing::error!(target: "kea-dhcp4.dhcpsrv", msgid = "DHCPSRV_PGSQL_NO_TLS_SUPPORT",
                    "Attempt to configure TLS (unsupported for PostgreSQL): host={} name={} port={} trust-anchor={} \
                     type=postgresql", pg.host, pg.name, pg.port, tls.trust_anchor.display());
            }
            let db = PgLeaseDb::connect(pg).await?;
            let loaded = db.load_all().await?;
            for bad in &loaded.bad_rows {
                tracing::warn!("{bad}; row left as it is");
            }
            tracing::info!(database = db.target(), leases = loaded.leases.len(), skipped = loaded.bad_rows.len(),
                "lease store loaded from PostgreSQL (Kea schema {}.{})", db.schema_version().0, db.schema_version().1);
            Ok((LeaseStore::with_database(loaded.leases, db.clone(), &tokio::runtime::Handle::current()), Some(db)))
        }
    }
}

async fn run_async(opts: Options) -> anyhow::Result<()> {
    // Refuse bad config before touching anything.
    let cfg = config::load(&opts.config)?;
    // Kea's pid file: a second server on this config stops here.
    let _pid_file = crate::pidfile::PidFile::create(&opts.config)?;
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

    crate::core::kea_log::configured(&cfg);
    let (store, lease_db) = open_store(&cfg).await?;

    let mut fastpath = if opts.no_xdp {
        tracing::info!("attach mode: {}", AttachMode::UserspaceOnly("--no-xdp".into()));
        None
    } else {
        match Fastpath::attach(&interfaces) {
            Ok(f) => {
                tracing::info!("attach mode: {}", f.summary());
                Some(f)
            }
            Err(e) => {
                tracing::warn!("attach mode: {}", AttachMode::UserspaceOnly(e.to_string()));
                None
            }
        }
    };

    // The kernel's copy: the map handles go to the kernel-sync task alone
    // (started below); the ring buffer to the renewal drain.
    let ifaces: Vec<net::Interface> = links.iter().map(|l| l.iface.clone()).collect();
    let mut events = None;
    let mut coverage = None;
    let maps = match fastpath.as_mut().map(|f| crate::fastpath::MapSync::take(f.ebpf_mut())) {
        None => None,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "fast-path maps unavailable; the kernel passes every request");
            None
        }
        Some(Ok((mut sync, ring))) => {
            sync.set_clock()?;
            events = Some(ring);
            coverage = Some(sync.coverage());
            Some(sync)
        }
    };

    // HA: one machine per relationship, all in waiting until started
    // (none without HA; reconfiguration adds and removes them).
    let ha = Arc::new(
        HaRuntime::new(cfg.ha(), |peer| {
            peer_tls(peer).map_err(|reason| crate::peer::PeerError::Setup { peer: peer.name().to_owned(), reason })
        })
        .context("setting up the HA peers")?,
    );

    let shutdown = CancellationToken::new();
    // The `shutdown` command asks; the daemon hands over, then ends.
    let stop_request = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let (kernel, kernel_rx) = match maps {
        Some(maps) => {
            let (sync, rx) = KernelSync::channel();
            (Some(sync), Some((maps, rx)))
        }
        None => (None, None),
    };
    let core = Core::new(policy, store, kernel);
    if let Some((maps, rx)) = kernel_rx {
        tasks.spawn(crate::kernel::run(maps, ifaces, core.lease_pages(), rx, shutdown.clone()));
    }
    // The kernel serves what HA allows, and nothing while the lease
    // database is lost (its answers are written afterwards).
    let gate = Arc::new(db::DbGate::new(Arc::clone(&ha) as Arc<dyn crate::core::ServingScopes>));
    core.set_scopes(Arc::clone(&gate) as Arc<dyn crate::core::ServingScopes>);
    let db_failed = Arc::new(AtomicBool::new(false));
    if let (Some(lease_db), Some(pg)) = (lease_db, cfg.lease_database().postgresql()) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tasks.spawn(monitor::run(lease_db.clone(), Reconnect::new(pg), tx, shutdown.clone()));
        tasks.spawn(db::adopt(lease_db.clone(), core.clone(), shutdown.clone()));
        tasks.spawn(db::follow(rx, lease_db, core.clone(), gate, Arc::clone(&db_failed), shutdown.clone()));
    }
    // The kernel's copy: templates (serving only what HA allows, so
    // nothing before the HA machine says so), then every lease; in the
    // kernel before the first packet is served.
    core.rebuild_kernel().await;
    // Control API: bound before serving so a busy port fails start-up.
    let fastpath = fastpath.map(Arc::new);
    let mode = fastpath.as_ref().map_or_else(|| "userspace-only".to_owned(), |f| f.summary());
    // Kea's multi-threading: a packet queue and its workers, changed by
    // reconfigurations as Kea changes them.
    let workers = crate::workers::Workers::start(core.clone(), Some(Arc::clone(&ha)), shutdown.clone(), cfg.multi_threading());
    let api_state = api::ApiState::new(core.clone(), Some(Arc::clone(&ha)), &cfg, Some(opts.config.clone()), shutdown.clone())
        .with_packet_pool(Arc::clone(&workers))
        .with_xdp(mode, fastpath.clone().map(|f| f as Arc<dyn api::XdpSource>))
        .with_kernel_coverage(coverage)
        .with_stop_request(stop_request.clone());
    let api_state = Arc::new(api_state);
    for w in &api_state.security_warnings() {
        tracing::warn!("{w}");
    }
    // The listeners (control, and Kea's dedicated HA listener on the URL
    // of our own peer entry in each relationship), who may use them, their
    // credentials and TLS: set up now as every reconfiguration sets them up.
    let edges = Arc::new(ApiEdges::new(&api_state, &opts, &cfg)?);
    edges.prepare(&cfg).await.map_err(anyhow::Error::msg)?.commit();
    api_state.reconfig.set_edges(edges);
    api_state.reconfig.set_workers(Arc::clone(&workers));
    ha.spawn(api_state.ha_context(), &mut tasks, shutdown.clone());
    for link in &links {
        tracing::info!(interface = %link.iface.name, addrs = ?link.iface.addrs, "serving");
        tasks.spawn(server::serve(Arc::clone(link), core.clone(), Some(Arc::clone(&ha)), shutdown.clone(), workers.receivers()));
    }
    // Kea's id and text: Forge and operators wait for this line.
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_STARTED", "Kea DHCPv4 server version {version} started");
    tasks.spawn(housekeeping(core.clone(), shutdown.clone()));
    if let Some(f) = &fastpath {
        tasks.spawn(crate::xdp::watch::run(Arc::clone(f), shutdown.clone()));
    }
    if let Some(ring) = events {
        tasks.spawn(drain_renewals(ring, core.clone(), Arc::clone(&ha), shutdown.clone()));
    }

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = stop_request.cancelled() => tracing::info!("shutdown command: shutting down"),
            // A task that ends the daemon itself (the lease database lost
            // for good and on-fail says exit).
            _ = shutdown.cancelled() => {}
            _ = hangup.recv() => {
                // Kea's SIGHUP: the config file again, as config-reload;
                // on failure the running configuration stays (logged).
                let reconfig = Arc::clone(&api_state.reconfig);
                tokio::spawn(async move { let _ = reconfig.reload().await; });
                continue;
            }
        }
        break;
    }
    lifecycle::shutdown_requested();
    // Planned stop: the partners serve before we leave, not after their
    // failure detection (bounded by peer::handover::BUDGET).
    crate::peer::hand_over(&ha, &core).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    if let Some(f) = &fastpath {
        match f.counters() {
            Ok(c) => tracing::info!(counters = ?c, "XDP counters"),
            Err(e) => tracing::warn!(error = %e, "reading XDP counters"),
        }
    }
    drop(fastpath); // detaches the XDP links
    let stats = core.stats();
    tracing::info!(?stats, "stopped");
    let database = if cfg.lease_database().postgresql().is_some() { "postgresql" } else { "memfile" };
    lifecycle::shut_down(database, api::command::COMMANDS);
    anyhow::ensure!(!db_failed.load(Ordering::Acquire), "the lease database was lost and on-fail says exit");
    Ok(())
}

/// Once a second: compensate a clock step (see [`crate::clock`]), forget
/// stale offers, reclaim expired leases, let the kernel resume after a
/// `dhcp-disable` period (the kernel-sync task keeps its clock offset
/// itself).
async fn housekeeping(core: Core, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut reclamation = crate::reclaim::Reclamation::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Some(offset) = crate::clock::poll_test_offset() {
            tracing::warn!(
                offset_seconds = offset,
                "TEST HOOK ({}): the daemon's wall clock is the host's plus {offset} s",
                crate::clock::TEST_OFFSET_FILE_ENV
            );
        }
        if let Some(shift) = core.compensate_clock_step(&mut reclamation) {
            let (step, leases) = (shift.step, shift.leases);
            let dir = if step > 0 { "forward" } else { "back" };
            tracing::warn!(
                step_seconds = step,
                leases,
                locked_ms = shift.locked.as_millis() as u64,
                "the wall clock stepped {dir} by {} s: every lease's expiry moved by as much (store, lease file, \
                 kernel), so none expires early or lives on; leases from an HA partner whose clock did not step \
                 carry its times",
                step.abs()
            );
            tokio::spawn(async move {
                if let Err(e) = shift.rows.await {
                    tracing::error!(error = %e, "writing the moved leases failed: the lease file keeps their old times \
                        until each lease changes again");
                }
                shift.kernel.await;
                tracing::info!(leases, "kernel lease entries moved with the clock step");
            });
        }
        core.housekeeping(crate::clock::unix_now(), &mut reclamation);
    }
}

/// Makes every ACK the kernel sent durable in the store: renewals extend
/// the lease (the kernel already extended its own copy), reserved clients'
/// ACKs write the lease the engine would have written.
///
/// The kernel wakes this task only once per
/// [`EVENTS_WAKE_EVERY`](dhcp_common::fastpath::EVENTS_WAKE_EVERY) pending
/// events (a wakeup per ACK cost more than answering it), so it also drains
/// every [`EVENTS_POLL_MS`](dhcp_common::fastpath::EVENTS_POLL_MS) ms: a
/// kernel ACK's row is queued for the writer within that bound (plus the
/// time to take the store lock), then fsynced with the next group commit.
/// A last drain on shutdown leaves nothing behind.
async fn drain_renewals(
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    core: Core,
    ha: Arc<HaRuntime>,
    shutdown: CancellationToken,
) {
    // SAFETY: the ring buffer owns its descriptor and outlives the AsyncFd,
    // which deregisters before the ring buffer is dropped.
    let mut fd = match unsafe { tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) } {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!(error = %e.into_parts().1, "cannot poll the renewal ring buffer; kernel renewals will not be stored");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(dhcp_common::fastpath::EVENTS_POLL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            g = fd.readable_mut() => match g {
                // Cleared before draining: an event written meanwhile wakes us again.
                Ok(mut g) => { g.clear_ready(); false }
                Err(e) => {
                    tracing::error!(error = %e, "polling the renewal ring buffer");
                    true
                }
            },
            _ = tick.tick() => false,
        };
        let ring = fd.get_mut();
        while let Some(item) = ring.next() {
            if let Some(ev) = crate::fastpath::parse_event(&item) {
                batch.push(ev);
            }
        }
        if !batch.is_empty() {
            store_kernel_acks(&core, &ha, &mut batch);
        }
        if stop {
            return;
        }
    }
}

/// Commits a drained batch of kernel ACKs ([`Core::store_kernel_acks`]:
/// one lock, the renewals' rows as one writer job), then queues each lease
/// for the HA partner (asynchronously: the client already has its answer;
/// see [`crate::ha::grace`] for why that cannot cause a duplicate address).
fn store_kernel_acks(core: &Core, ha: &HaRuntime, batch: &mut Vec<dhcp_common::fastpath::RenewEvent>) {
    let acks = core.store_kernel_acks(batch);
    if ha.is_active() {
        let policy = core.policy();
        for lease in acks.leases {
            if let Some(rel) = policy.subnet(lease.subnet_id).and_then(|s| ha.rel_for(s)) {
                rel.replicate_async(lease);
            }
        }
    }
    for durable in acks.reserved {
        tokio::spawn(async move {
            if let Err(e) = durable.await {
                tracing::error!(error = %e, "storing a kernel ACK of a reserved client failed");
            }
        });
    }
    if let Some(durable) = acks.renewals {
        tokio::spawn(async move {
            if let Err(e) = durable.await {
                tracing::error!(error = %e, "storing kernel renewals failed");
            }
        });
    }
}
