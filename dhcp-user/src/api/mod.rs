//! # Control API
//!
//! Existing Kea tooling (keactrl scripts, Stork-style pollers, an HA partner)
//! talks to Kea by POSTing `{"command", "arguments", "service"}` to the
//! control agent. xdhcpd answers the same commands, with Kea 2.2's argument
//! shapes, texts and result codes (recorded from a real `kea-dhcp4` with
//! `libdhcp_lease_cmds.so`), on its own HTTP listener, so those scripts work
//! unchanged. The same listener serves Prometheus metrics and a status page.
//!
//! # Layout
//!
//! - [`access`]: which commands each listener answers (the HA peer
//!   listener only what a partner sends), and the open-listener warning.
//! - [`command`]: a parsed [`Request`] plus [`ApiState`] in, an [`Answer`]
//!   out; every command family in its own function. No HTTP. The codecs
//!   themselves (requests, answers, lease JSON, dates, HA status JSON) are
//!   [`crate::kea`]'s.
//! - `leases`: the `lease4-*` commands.
//! - `ha`: the `ha-*` commands, on the HA runtime.
//! - `service`: `leases-reclaim`, `build-report`, `server-tag-get`, and
//!   what Kea's lease hook registers but xdhcpd does not do.
//! - `statistic`: the `statistic-*` commands and Kea's statistic names
//!   (`pkt4-received`, `subnet[1].…`) over the core's typed statistics.
//! - `stats`: the pool accounting shared with metrics and the status page.
//! - [`unix`]: Kea's command channel on the `control-socket` unix socket
//!   (what `kea-ctrl-agent` forwards to).
//! - [`http`]: axum: routing, body limit, basic auth, Kea's `service`
//!   framing (a JSON array of one answer), status codes.
//! - [`metrics`]: `GET /metrics` in Prometheus text format.
//! - `status`: `GET /` (HTML) and `GET /status.json` it polls.
//!
//! All handlers take the same [`ApiState`], which holds the daemon's
//! [`Core`] handle and HA runtime rather than copies, so the API always
//! shows (and changes) what the packet loop uses. HA status is read typed
//! ([`ApiState::ha_status`]), never by running `status-get` on ourselves.
//! Nothing below the API imports it.

pub mod access;
pub mod command;
mod ha;
pub mod http;
mod leases;
pub mod metrics;
mod service;
mod statistic;
mod stats;
mod status;
pub mod tls;
pub mod unix;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use crate::{
    config::{Config, Secret},
    core::Core,
    events::EventLog,
    ha::RelStatus,
    peer::{HaContext, HaRuntime},
    reconfig::{Applied, Reconfig},
    xdp::Fastpath,
};

pub use access::Listener;
pub use command::{Answer, Request, ResultCode, dispatch};
pub use http::{router, serve};

/// Default control listener: loopback only, so a fresh install exposes
/// nothing. Not Kea's 8000: that is `kea-ctrl-agent`'s default, and the
/// agent often runs beside xdhcpd (in front of its unix socket, as in
/// Forge's runs), so both defaults must be able to coexist on one host.
/// 8067 is free of Kea's defaults (agent 8000, HA listener examples
/// 8001–8005), Stork's (8080/8081) and the Kea Prometheus exporter's
/// (9547); "67" for DHCP.
pub const DEFAULT_CONTROL_ADDR: &str = "127.0.0.1:8067";

/// Where XDP counters come from; a trait so tests (and `--no-xdp`) need no
/// BPF.
pub trait XdpSource: Send + Sync {
    /// Totals per outcome label, summed over CPUs.
    fn counters(&self) -> Result<Vec<(&'static str, u64)>, String>;
    /// Each interface's attach mode and why it is not native; live, since
    /// the run-time watch can move an interface to generic mode.
    fn interfaces(&self) -> Vec<crate::xdp::InterfaceMode> {
        Vec::new()
    }
}

impl XdpSource for Fastpath {
    fn counters(&self) -> Result<Vec<(&'static str, u64)>, String> {
        Fastpath::counters(self)
            .map(|v| v.into_iter().map(|(o, n)| (o.label(), n)).collect())
            .map_err(|e| e.to_string())
    }
    fn interfaces(&self) -> Vec<crate::xdp::InterfaceMode> {
        Fastpath::interfaces(self)
    }
}

/// HTTP basic-auth credentials the listener requires.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password; its `Debug` is redacted, so it cannot reach a log line.
    pub password: Secret,
}

/// Everything the API needs; one per daemon, shared by all connections.
pub struct ApiState {
    /// The state the packet loop uses.
    pub core: Core,
    /// The HA runtime (no relationship without `libdhcp_ha`; see
    /// [`ApiState::ha_active`]).
    pub ha: Arc<HaRuntime>,
    /// The config file (`config-reload`, default of `config-write`).
    pub config_path: Option<PathBuf>,
    /// Where `config-set`, `config-reload` and `config-test` go (shared
    /// with the SIGHUP handler).
    pub reconfig: Arc<Reconfig>,
    /// The configuration in force, as `config-get` shows it.
    pub(crate) applied: Arc<Mutex<Applied>>,
    /// The daemon's end: every listener stops on it.
    pub shutdown: CancellationToken,
    /// Cancelled by the `shutdown` command. The same token as `shutdown`
    /// unless the daemon sets its own ([`ApiState::with_stop_request`]):
    /// then it hands over to the HA partners first, which needs the
    /// listeners still up (the partner notifies us back).
    pub stop_request: CancellationToken,
    started: Instant,
    /// How DHCP traffic reaches us (shown by `status-get` and the page).
    pub attach_mode: String,
    /// XDP counters, when the program is attached.
    pub xdp: Option<Arc<dyn XdpSource>>,
    /// Kea's multi-threading (the pool in force, if any).
    pub packet_pool: Option<Arc<crate::workers::Workers>>,
    /// What the kernel leaves to the daemon, per reason (XDP attached).
    pub kernel_coverage: Option<crate::coverage::Coverage>,
    /// Required credentials; `None` accepts anyone who can connect.
    /// Reconfiguration may change them ([`ApiState::set_auth`]).
    auth: RwLock<Option<Credentials>>,
    /// HTTPS (and client certificates) on the listeners started from now
    /// on; `None` is plain HTTP. See [`tls::listener_config`].
    tls: RwLock<Option<tls::ServerTls>>,
    /// Recent notable events (config changes, dhcp-disable, HA
    /// transitions, …) for the page; shared with the HA runtime.
    pub events: Arc<EventLog>,
}

impl ApiState {
    /// State for a daemon started from `cfg` (read from `config_path`).
    pub fn new(
        core: Core,
        ha: Option<Arc<HaRuntime>>,
        cfg: &Config,
        config_path: Option<PathBuf>,
        shutdown: CancellationToken,
    ) -> Self {
        let ha = ha.unwrap_or_default();
        let events = Arc::new(EventLog::default());
        let reconfig =
            Arc::new(Reconfig::new(core.clone(), Arc::clone(&ha), cfg, config_path.clone(), Arc::clone(&events)));
        ApiState {
            core,
            ha,
            config_path,
            applied: reconfig.applied(),
            reconfig,
            stop_request: shutdown.clone(),
            shutdown,
            started: Instant::now(),
            attach_mode: "userspace-only".into(),
            xdp: None,
            packet_pool: None,
            kernel_coverage: None,
            auth: RwLock::new(None),
            tls: RwLock::new(None),
            events,
        }
    }

    /// What the configuration in force leaves open (HA listeners anyone on
    /// their network may talk to; [`crate::reconfig::security_warnings`]),
    /// as of the last reconfiguration.
    pub fn security_warnings(&self) -> Vec<String> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).security_warnings.clone()
    }

    /// Adds the XDP attach mode and counter source.
    pub fn with_xdp(
        mut self,
        attach_mode: impl Into<String>,
        xdp: Option<Arc<dyn XdpSource>>,
    ) -> Self {
        self.attach_mode = attach_mode.into();
        self.xdp = xdp;
        self
    }

    /// Adds the report of what the kernel leaves to the daemon.
    pub fn with_kernel_coverage(mut self, coverage: Option<crate::coverage::Coverage>) -> Self {
        self.kernel_coverage = coverage;
        self
    }

    /// Adds the multi-threading pool `status-get` reports.
    pub fn with_packet_pool(mut self, pool: Arc<crate::workers::Workers>) -> Self {
        self.packet_pool = Some(pool);
        self
    }

    /// The `shutdown` command cancels `token` instead of the daemon's end.
    pub fn with_stop_request(mut self, token: CancellationToken) -> Self {
        self.stop_request = token;
        self
    }

    /// Requires these credentials on every request.
    pub fn with_auth(self, auth: Option<Credentials>) -> Self {
        self.set_auth(auth);
        self
    }

    /// Serves HTTPS with these settings instead of plain HTTP.
    pub fn with_tls(self, tls: Option<tls::ServerTls>) -> Self {
        self.set_tls(tls);
        self
    }

    /// The credentials every request must carry now.
    pub fn auth(&self) -> Option<Credentials> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requires `auth` from the next request on (reconfiguration).
    pub fn set_auth(&self, auth: Option<Credentials>) {
        *self.auth.write().unwrap_or_else(|p| p.into_inner()) = auth;
    }

    /// The TLS listeners started from now on use.
    pub fn tls(&self) -> Option<tls::ServerTls> {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `tls` on listeners started from now on (reconfiguration
    /// restarts them).
    pub fn set_tls(&self, tls: Option<tls::ServerTls>) {
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
    }

    /// Credentials of this server's own HA peer entry, which Kea's partner
    /// sends with every request (`basic-auth-user`/`-password`); `None`
    /// without HA or without auth there.
    pub fn ha_credentials(cfg: &Config) -> Option<Credentials> {
        let rel = cfg.ha()?.relationships().first()?;
        let auth = rel.this_server().basic_auth()?;
        Some(Credentials {
            user: auth.user.clone(),
            password: auth.password.clone(),
        })
    }

    /// Records an event for the status page (and the log).
    pub(crate) fn event(&self, text: impl Into<String>) {
        self.events.record(text);
    }

    /// What the HA runtime needs from the daemon: the core and the event
    /// log this API shows.
    pub fn ha_context(&self) -> HaContext {
        HaContext { core: self.core.clone(), events: Arc::clone(&self.events) }
    }

    /// The HA runtime, when HA is configured (Kea's HA hook loaded).
    pub fn ha_active(&self) -> Option<Arc<HaRuntime>> {
        self.ha.is_active().then(|| Arc::clone(&self.ha))
    }

    /// Every HA relationship's status; `None` without HA.
    pub fn ha_status(&self) -> Option<Vec<RelStatus>> {
        Some(self.ha_active()?.status())
    }
}

/// The listener's credentials: `--control-user` with the password read
/// from `--control-password-file` (so it shows in no process list), else
/// those of this server's HA peer entry, else none.
pub fn credentials(
    user: Option<&str>,
    password_file: Option<&std::path::Path>,
    cfg: &Config,
) -> anyhow::Result<Option<Credentials>> {
    use anyhow::Context as _;
    match (user, password_file) {
        (Some(user), Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the control password file {}", file.display()))?;
            let password = text.trim_end_matches(['\r', '\n']).to_owned();
            anyhow::ensure!(!user.contains(':'), "--control-user must not contain ':'");
            Ok(Some(Credentials {
                user: user.to_owned(),
                password: Secret::new(password),
            }))
        }
        (None, None) => Ok(ApiState::ha_credentials(cfg)),
        _ => anyhow::bail!("--control-user and --control-password-file go together"),
    }
}

/// Starts the listener: binds `addr` (port 0 picks one), then serves until
/// `state.shutdown` fires. Returns the bound address and the serving future,
/// so callers (and tests) learn the port before anything waits on it.
/// `listener` says which commands it answers.
pub async fn bind(
    state: Arc<ApiState>,
    addr: SocketAddr,
    listener: Listener,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()> + Send)> {
    let socket = tokio::net::TcpListener::bind(addr).await?;
    let local = socket.local_addr()?;
    Ok((local, http::serve_on(socket, state, listener)))
}

/// Serves an opened control socket ([`unix::open`]) until `stop` fires.
pub async fn serve_unix(state: Arc<ApiState>, socket: unix::ControlSocket, stop: CancellationToken) {
    unix::serve(socket, state, stop).await
}

/// Serves an already bound listener until `stop` fires (reconfiguration
/// stops and starts listeners one by one; `stop` should be a child of
/// `state.shutdown`).
pub async fn serve_until(state: Arc<ApiState>, listener: tokio::net::TcpListener, access: Listener, stop: CancellationToken) {
    http::serve_until(listener, state, access, stop).await
}
