//! # Reconfiguration
//!
//! The one owner of changing the running configuration: `config-set`,
//! `config-reload`, `config-test` and SIGHUP all come here, so a config is
//! either in force everywhere or nowhere.
//!
//! A new config is first turned into everything derived from it, while
//! the old one keeps serving: the compiled policy, the HA relationship
//! list (peer clients built, TLS files loaded; [`HaRuntime::prepare`]),
//! the loggers' outputs (opened; [`logging::Opened`]), and what the
//! control API needs ([`Edges::prepare`]: listeners bound, credentials,
//! TLS); and it is checked against what cannot change without a restart.
//! If any of that fails, nothing has changed and the error names what.
//! Then it is put in force: the kernel first stops answering in the
//! subnets the change concerns ([`gate`], [`Core::hold_kernel`]); the
//! policy and the HA relationships are swapped in one critical section of
//! the core ([`Core::reconfigure`]), so no packet sees one without the
//! other, and nothing in that section grows with the lease count; the
//! kernel gets the new serving bits at once, then its templates, then
//! rewrites the lease entries the change concerns a page at a time while
//! serving continues; once it has them the held subnets are served by
//! the kernel again. The loggers and listeners switch.
//!
//! - Kept live: every policy setting, HA relationships added, removed or
//!   changed (peers, URLs, mode, timers, TLS files and their contents,
//!   basic auth): a changed relationship restarts from `waiting` and
//!   resyncs, the others keep running; loggers; the control API's
//!   credentials and TLS; the control socket (a new name opens the new
//!   socket and closes the old one, as Kea does); `multi-threading` (the
//!   packet pool switched on, off or resized: [`crate::workers`]).
//! - Refused, naming the key: `interfaces-config.interfaces` (sockets and
//!   XDP attach at start) and `lease-database` (the store is loaded once).
//! - Kernel templates are built by the kernel-sync task from the new
//!   policy; a subnet it cannot template is left to the daemon (the
//!   kernel passes its packets), so templates never refuse a config.

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    time::Instant,
};

use serde_json::Value;

use crate::{
    config::{self, Config, ConfigError, ha::Peer},
    core::Core,
    events::EventLog,
    glue,
    kernel::Relink,
    leases::StoreConfig,
    logging,
    peer::{HaChange, HaRuntime, PeerError},
    workers::Workers,
};

pub mod gate;

/// A boxed future, for the [`Edges`] trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What reconfiguration changes above its layer: the control API (its
/// listeners, credentials and TLS) and the client side of TLS to HA
/// peers. The daemon implements it over the API, which nothing below the
/// API may import.
pub trait Edges: Send + Sync {
    /// The client side of HTTPS for an HA peer entry with TLS files.
    fn peer_tls(&self, peer: &Peer) -> Result<Option<rustls::ClientConfig>, String>;
    /// Builds what `cfg` needs of the control API (binding any new
    /// listener) without putting it in force.
    fn prepare<'a>(&'a self, cfg: &'a Config) -> BoxFuture<'a, Result<Box<dyn Staged>, String>>;
}

/// A control API change built by [`Edges::prepare`], waiting to be put in
/// force (dropped unused when the configuration is refused or only tested).
pub trait Staged: Send {
    /// Puts it in force; returns what changed, if anything, for the event
    /// list.
    fn commit(self: Box<Self>) -> Option<String>;
}

/// The configuration in force, as `config-get` and `status-get` show it.
#[derive(Debug)]
pub struct Applied {
    /// The JSON accepted (comments removed); `None` when the file could
    /// not be shown as plain JSON (it uses `<?include?>`).
    pub json: Option<Value>,
    /// When the last reconfiguration (or the start) put it in force.
    pub reloaded_at: Instant,
    /// What it leaves open ([`security_warnings`]), for the status page
    /// and `/metrics`: recomputed by every reconfiguration.
    pub security_warnings: Vec<String>,
}

/// One warning per HA listener on a non-loopback address with neither
/// basic auth nor TLS: any host on that network can inject lease updates
/// (and, with `restrict-commands: false`, run every command). `xdhcpd
/// check` reports the same listeners
/// ([`crate::config::HaConfig::unprotected_listeners`]).
pub fn security_warnings(cfg: &Config) -> Vec<String> {
    let Some(ha) = cfg.ha() else { return Vec::new() };
    let text = |addr: std::net::SocketAddr, rel: &config::HaRelationship| {
        let what = if rel.restrict_commands() {
            "lease updates and HA commands"
        } else {
            "lease updates and every command (restrict-commands is false)"
        };
        format!(
            "HA listener {addr} of {} has neither basic auth nor TLS: any host that can reach it can send {what}",
            rel.this_server().name()
        )
    };
    ha.unprotected_listeners().into_iter().map(|(addr, rel)| text(addr, rel)).collect()
}

/// Settings of the running configuration that cannot change without a
/// restart.
#[derive(Clone, Debug, PartialEq)]
struct Fixed {
    interfaces: Vec<String>,
    store: StoreConfig,
}

impl Fixed {
    fn of(cfg: &Config) -> Self {
        let mut interfaces: Vec<String> = cfg.interfaces().interfaces.iter().map(|i| format!("{i:?}")).collect();
        interfaces.sort();
        Fixed { interfaces, store: glue::store_config(cfg) }
    }

    /// The first setting of `new` that differs, as a refusal.
    fn check(&self, new: &Fixed) -> Result<(), Refused> {
        let restart = |key: &'static str, from: String, to: String| Err(Refused::NeedsRestart { key, from, to });
        if self.interfaces != new.interfaces {
            return restart("Dhcp4.interfaces-config.interfaces", self.interfaces.join(","), new.interfaces.join(","));
        }
        let show = |p: &Option<PathBuf>| p.as_deref().map_or_else(|| "(none)".into(), |p| p.display().to_string());
        let (a, b) = (&self.store, &new.store);
        if a.persist != b.persist {
            return restart("Dhcp4.lease-database.persist", a.persist.to_string(), b.persist.to_string());
        }
        if a.path != b.path {
            return restart("Dhcp4.lease-database.name", show(&a.path), show(&b.path));
        }
        if a.lfc_interval != b.lfc_interval {
            let secs = |d: std::time::Duration| d.as_secs().to_string();
            return restart("Dhcp4.lease-database.lfc-interval", secs(a.lfc_interval), secs(b.lfc_interval));
        }
        Ok(())
    }
}

/// Why a configuration was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A setting fixed at start-up differs.
    #[error("{key} changed ({from} → {to}); that needs a restart of xdhcpd. Nothing was changed.")]
    NeedsRestart {
        /// The JSON path of the setting.
        key: &'static str,
        /// Its value in force.
        from: String,
        /// Its value in the new configuration.
        to: String,
    },
    /// An HA peer client could not be built (its TLS files, its URL).
    #[error("Dhcp4.hooks-libraries[libdhcp_ha].high-availability: {0}. Nothing was changed.")]
    Ha(PeerError),
    /// The control API's listeners, credentials or TLS.
    #[error("control API: {0}. Nothing was changed.")]
    Edges(String),
    /// An output of `Dhcp4.loggers` could not be opened.
    #[error("Dhcp4.loggers: {0}. Nothing was changed.")]
    Loggers(logging::OpenError),
}

/// Why a reload of the config file failed; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The daemon was not started from a file.
    #[error("no configuration file")]
    NoFile,
    /// The file does not load (unreadable, not JSON, invalid).
    #[error(transparent)]
    Load(#[from] ConfigError),
    /// It loads, but cannot be put in force.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// What a reconfiguration changed.
#[derive(Debug)]
pub struct Done {
    /// Subnets in the new policy.
    pub subnets: usize,
    /// What changed besides the policy (HA relationships, control API).
    pub changes: Vec<String>,
}

/// Everything derived from a new configuration, built and not in force.
struct Prepared {
    policy: crate::dhcp::policy::Policy,
    ha: HaChange,
    edges: Option<Box<dyn Staged>>,
    loggers: logging::Opened,
    fixed: Fixed,
    multi_threading: config::multi_threading::MultiThreading,
}

/// The reconfiguration service; one per daemon, shared by the control
/// API and the SIGHUP handler.
pub struct Reconfig {
    core: Core,
    ha: Arc<HaRuntime>,
    config_path: Option<PathBuf>,
    applied: Arc<Mutex<Applied>>,
    fixed: Arc<Mutex<Fixed>>,
    edges: OnceLock<Arc<dyn Edges>>,
    workers: OnceLock<Arc<Workers>>,
    events: Arc<EventLog>,
    /// One reconfiguration at a time: each is prepared against what the
    /// previous one left.
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Reconfig {
    /// The service for a daemon started from `cfg` (read from
    /// `config_path`), changing `core` and `ha`.
    pub fn new(core: Core, ha: Arc<HaRuntime>, cfg: &Config, config_path: Option<PathBuf>, events: Arc<EventLog>) -> Self {
        let json = config_path.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| plain_json(&t));
        Reconfig {
            core,
            ha,
            config_path,
            applied: Arc::new(Mutex::new(Applied {
                json,
                reloaded_at: Instant::now(),
                security_warnings: security_warnings(cfg),
            })),
            fixed: Arc::new(Mutex::new(Fixed::of(cfg))),
            edges: OnceLock::new(),
            workers: OnceLock::new(),
            events,
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Lets reconfiguration change the control API and build peer TLS
    /// (the daemon; without it, HA peers with TLS are refused and the API
    /// is left as it is).
    pub fn set_edges(&self, edges: Arc<dyn Edges>) {
        let _ = self.edges.set(edges);
    }

    /// Lets reconfiguration change the multi-threading pool (the daemon;
    /// without it, `multi-threading` changes nothing).
    pub fn set_workers(&self, workers: Arc<Workers>) {
        let _ = self.workers.set(workers);
    }

    /// The configuration in force (shared with the API).
    pub fn applied(&self) -> Arc<Mutex<Applied>> {
        Arc::clone(&self.applied)
    }

    /// The file `config-reload` and SIGHUP read.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// `config-test`: builds everything `cfg` needs and throws it away.
    pub async fn test(&self, cfg: &Config) -> Result<usize, Refused> {
        let _one = self.one_at_a_time.lock().await;
        let p = self.prepare(cfg).await?;
        Ok(p.policy.subnets.len())
    }

    /// `config-set` (and the file's reload): puts `cfg` in force
    /// everywhere, or refuses it and changes nothing. `json` is what
    /// `config-get` shows from now on. Returns once the kernel has it
    /// (its lease entries too, which it rewrites while serving continues).
    pub async fn apply(&self, cfg: &Config, json: Option<Value>, how: &str) -> Result<Done, Refused> {
        let one = Arc::clone(&self.one_at_a_time).lock_owned().await;
        let p = self.prepare(cfg).await?;
        for w in &cfg.warnings {
            tracing::warn!("{how}: {w}");
        }
        let warnings = security_warnings(cfg);
        for w in &warnings {
            tracing::warn!("{how}: {w}");
        }
        let switch = Switch {
            core: self.core.clone(),
            ha: Arc::clone(&self.ha),
            applied: Arc::clone(&self.applied),
            fixed: Arc::clone(&self.fixed),
            workers: self.workers.get().cloned(),
            events: Arc::clone(&self.events),
        };
        let how = how.to_owned();
        // Once it starts, a switch runs to its end even if the caller goes
        // away (a closed connection): only it releases the subnets it holds
        // in the kernel, and half of it must never stay applied.
        let task = tokio::spawn(async move {
            let _one = one;
            switch.run(p, json, warnings, &how).await
        });
        Ok(task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
    }

    /// `config-reload` and SIGHUP: reads the config file again and
    /// applies it; on failure the running configuration stays. Logs what
    /// Kea logs (ids and texts of Kea 2.2's `ControlledDhcpv4Srv`).
    pub async fn reload(&self) -> Result<Done, ReloadError> {
        let Some(path) = self.config_path.clone() else { return Err(ReloadError::NoFile) };
        let file = path.display().to_string();
        tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DYNAMIC_RECONFIGURATION",
            "initiate server reconfiguration using file: {file}, after receiving SIGHUP signal or config-reload command");
        let result = match config::load(&path) {
            Ok(cfg) => {
                let json = std::fs::read_to_string(&path).ok().and_then(|t| plain_json(&t));
                self.apply(&cfg, json, "config-reload").await.map_err(ReloadError::from)
            }
            Err(e) => Err(ReloadError::Load(e)),
        };
        match &result {
            Ok(_) => tracing::info!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DYNAMIC_RECONFIGURATION_SUCCESS",
                "dynamic server reconfiguration succeeded with file: {file}"),
            Err(e) => {
                if let ReloadError::Load(ce) = e
                    && let Some((element, reason)) = ce.kea_parser_fail()
                {
                    tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_PARSER_FAIL",
                        "failed to create or run parser for configuration element {element}: {reason}");
                }
                tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_CONFIG_LOAD_FAIL",
                    "configuration error using file: {file}, reason: {e}");
                tracing::error!(target: "kea-dhcp4.dhcp4", msgid = "DHCP4_DYNAMIC_RECONFIGURATION_FAIL", fatal = true,
                    "dynamic server reconfiguration failed with file: {file}");
            }
        }
        result
    }

    /// Builds everything derived from `cfg`; changes nothing.
    async fn prepare(&self, cfg: &Config) -> Result<Prepared, Refused> {
        let fixed = Fixed::of(cfg);
        self.fixed.lock().unwrap_or_else(|e| e.into_inner()).check(&fixed)?;
        let policy = glue::compile(cfg);
        let edges = self.edges.get().cloned();
        let tls = |peer: &Peer| -> Result<Option<rustls::ClientConfig>, PeerError> {
            let setup = |reason: String| PeerError::Setup { peer: peer.name().to_owned(), reason };
            match (&edges, peer.tls()) {
                (_, None) => Ok(None),
                (Some(e), Some(_)) => e.peer_tls(peer).map_err(setup),
                (None, Some(_)) => Err(setup("TLS to HA peers needs the daemon's TLS support".into())),
            }
        };
        let ha = self.ha.prepare(cfg.ha(), tls).map_err(Refused::Ha)?;
        let loggers = logging::Opened::open(cfg.loggers()).map_err(Refused::Loggers)?;
        let edges = match &edges {
            Some(e) => Some(e.prepare(cfg).await.map_err(Refused::Edges)?),
            None => None,
        };
        Ok(Prepared { policy, ha, edges, loggers, fixed, multi_threading: cfg.multi_threading() })
    }
}

/// What putting a prepared configuration in force changes, owned, so that
/// it runs in its own task.
struct Switch {
    core: Core,
    ha: Arc<HaRuntime>,
    applied: Arc<Mutex<Applied>>,
    fixed: Arc<Mutex<Fixed>>,
    workers: Option<Arc<Workers>>,
    events: Arc<EventLog>,
}

impl Switch {
    async fn run(self, p: Prepared, json: Option<Value>, warnings: Vec<String>, how: &str) -> Done {
        let subnets = p.policy.subnets.len();
        let mut changes: Vec<String> = p.ha.summary().into_iter().collect();
        let ha_changed = !changes.is_empty();
        if let Some(h) = logging::global() {
            h.install(p.loggers);
        }
        // Before the switch: the kernel stops answering where the new
        // policy could answer otherwise (found outside the core's lock).
        let started = Instant::now();
        let old = self.core.policy();
        let mut gate = gate::kernel_gate(&old, &p.policy);
        if ha_changed {
            // A relationship started or stopped: which subnets it serves
            // is HA's to say; hold them all for the moment of the switch.
            gate.held.extend(old.subnets.iter().chain(&p.policy.subnets).map(|s| s.id));
        }
        let held = gate.held.len();
        if held > 0 {
            self.core.hold_kernel(gate.held).await;
        }
        let (ha, change) = (&self.ha, p.ha);
        let settled = self.core.reconfigure(p.policy, Relink::Subnets(gate.relink), || ha.commit(change));
        changes.extend(p.edges.and_then(|e| e.commit()));
        changes.extend(self.workers.as_ref().and_then(|w| w.apply(p.multi_threading)));
        *self.fixed.lock().unwrap_or_else(|e| e.into_inner()) = p.fixed;
        {
            let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
            applied.json = json;
            applied.reloaded_at = Instant::now();
            applied.security_warnings = warnings;
        }
        settled.await;
        if held > 0 {
            self.core.release_kernel().await;
        }
        tracing::debug!(held, ms = started.elapsed().as_millis() as u64, "{how}: the kernel has the new configuration");
        for c in &changes {
            self.events.record(format!("{how}: {c}"));
        }
        self.events.record(format!("{how}: new configuration applied ({subnets} subnets)"));
        Done { subnets, changes }
    }
}

/// Kea accepts `#`, `//` and `/* */` comments in its files; `config-get`
/// must answer plain JSON, so they are blanked by the config loader's own
/// stripper. Returns `None` for a file with `<?include?>` (it is not one
/// JSON document to show) and for anything still not JSON.
pub fn plain_json(text: &str) -> Option<Value> {
    let ex = config::expand_comments(text, "config-get").ok()?;
    if ex.text.len() != text.len() {
        return None; // an include was spliced in
    }
    serde_json::from_str(&ex.text).ok()
}

#[cfg(test)]
mod tests;
