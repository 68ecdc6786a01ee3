//! The control API as reconfiguration changes it ([`crate::reconfig::Edges`]):
//! its listeners (the control address, and Kea's dedicated HA listener on
//! the URL of this server's own peer entry in each relationship), the
//! credentials they require and their TLS; and the client side of TLS to
//! HA peers. Start-up sets them up through the same [`ApiEdges::prepare`]
//! as every later reconfiguration.
//!
//! Kea's command channel (`control-socket`) is one of them: a changed
//! socket name opens the new socket and closes the old one, as Kea does.
//!
//! A new listener is bound while preparing, so a busy port refuses the
//! configuration before anything changes. A TLS change restarts every
//! listener (a rustls server config is fixed per listener), a change of
//! `restrict-commands` the listener it concerns: the old one
//! stops accepting (connections under way, like the `config-set` that
//! asked for it, finish) and the same address is bound again.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::Options;
use crate::{
    api::{self, ApiState, Credentials, Listener, tls},
    config::{Config, ha::Peer},
    reconfig::{BoxFuture, Edges, Staged},
};

/// The client side of HTTPS to an HA peer entry that has TLS files.
pub fn peer_tls(peer: &Peer) -> Result<Option<rustls::ClientConfig>, String> {
    peer.tls().map(tls::client_config).transpose().map_err(|e| e.to_string())
}

/// What is serving now.
#[derive(Default)]
struct Running {
    /// One stop token per bound address, and who may use it.
    listeners: HashMap<SocketAddr, (CancellationToken, Listener)>,
    /// What the listeners' TLS was built from: settings and the files'
    /// contents (`None`: plain HTTP).
    tls: Option<(String, u64)>,
    auth: Option<(String, u64)>,
    /// Kea's command channel (`control-socket`), if configured: its path
    /// and the stop token of the task serving it.
    unix: Option<(PathBuf, CancellationToken)>,
}

/// The daemon's [`Edges`].
pub struct ApiEdges {
    state: Weak<ApiState>,
    control_addr: SocketAddr,
    control_tls: tls::ControlTls,
    /// `--control-user` with its password, which override the HA peer
    /// entry's credentials.
    cli_auth: Option<Credentials>,
    running: Arc<Mutex<Running>>,
}

impl ApiEdges {
    /// For the daemon's API state and command line.
    pub fn new(state: &Arc<ApiState>, opts: &Options, cfg: &Config) -> anyhow::Result<Self> {
        let cli_auth = match (&opts.control_user, &opts.control_password_file) {
            (None, None) => None,
            (user, file) => api::credentials(user.as_deref(), file.as_deref(), cfg)?,
        };
        Ok(ApiEdges {
            state: Arc::downgrade(state),
            control_addr: opts.control_addr,
            control_tls: opts.control_tls.clone(),
            cli_auth,
            running: Arc::default(),
        })
    }
}

/// A digest of a TLS or credential setting, to tell whether it changed
/// (secrets never leave this process; the digest is compared, not shown).
fn digest(parts: &[&[u8]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The listener TLS of `cfg` and what identifies it.
fn tls_key(t: &tls::ServerTls) -> (String, u64) {
    let f = &t.settings.files;
    let read = |p: &std::path::Path| std::fs::read(p).unwrap_or_default();
    let key = format!("{:?} {}", f, t.settings.require_client_certs);
    let d = digest(&[key.as_bytes(), &read(&f.trust_anchor), &read(&f.cert_file), &read(&f.key_file)]);
    (t.settings.source.clone(), d)
}

impl Edges for ApiEdges {
    fn peer_tls(&self, peer: &Peer) -> Result<Option<rustls::ClientConfig>, String> {
        peer_tls(peer)
    }

    fn prepare<'a>(&'a self, cfg: &'a Config) -> BoxFuture<'a, Result<Box<dyn Staged>, String>> {
        Box::pin(async move {
            let auth = match &self.cli_auth {
                Some(a) => Some(a.clone()),
                None => ApiState::ha_credentials(cfg),
            };
            let tls = tls::listener_config(&self.control_tls, cfg).map_err(|e| format!("TLS: {e}"))?;
            // A control address that is also an HA listener is reachable
            // by the partner's network: it answers as the peer listener does.
            let rels = cfg.ha().map_or(&[][..], |h| h.relationships());
            let peer = |addr: SocketAddr| {
                rels.iter()
                    .find(|r| r.this_server().url().socket_addr() == addr)
                    .map(|r| Listener::Peer { restrict: r.restrict_commands() })
            };
            let mut wanted = vec![(self.control_addr, peer(self.control_addr).unwrap_or(Listener::Control))];
            for rel in rels {
                let addr = rel.this_server().url().socket_addr();
                if !wanted.iter().any(|(a, _)| *a == addr) {
                    wanted.push((addr, Listener::Peer { restrict: rel.restrict_commands() }));
                }
            }
            let (new_tls, new_auth) = (
                tls.as_ref().map(tls_key),
                auth.as_ref().map(|a| (a.user.clone(), digest(&[a.user.as_bytes(), a.password.expose().as_bytes()]))),
            );
            let want_unix = cfg.control_socket().map(|c| c.socket_name.clone());
            let (bind, stop, restart, tls_changed, auth_changed, unix_changed) = {
                let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
                let tls_changed = r.tls != new_tls;
                let bind: Vec<(SocketAddr, Listener)> =
                    wanted.iter().filter(|(a, _)| !r.listeners.contains_key(a)).copied().collect();
                let stop: Vec<SocketAddr> =
                    r.listeners.keys().filter(|a| !wanted.iter().any(|(w, _)| w == *a)).copied().collect();
                // A TLS change restarts every listener; a change of who may
                // use one (restrict-commands) restarts that one.
                let restart: Vec<(SocketAddr, Listener)> = wanted
                    .iter()
                    .filter(|(a, access)| r.listeners.get(a).is_some_and(|(_, was)| tls_changed || was != access))
                    .copied()
                    .collect();
                let unix_changed = r.unix.as_ref().map(|(p, _)| p) != want_unix.as_ref();
                (bind, stop, restart, tls_changed, r.auth != new_auth, unix_changed)
            };
            // A moved control socket is opened now (Kea moves it on
            // reconfiguration), so one that cannot be refuses the config.
            let unix = match (unix_changed, want_unix) {
                (false, _) => None,
                (true, None) => Some(None),
                (true, Some(p)) => {
                    let socket = api::unix::open(&p).map_err(|e| format!("control-socket: {e}"))?;
                    Some(Some((p, socket)))
                }
            };
            let mut bound = Vec::new();
            for (addr, access) in bind {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                bound.push((addr, access, l));
            }
            Ok(Box::new(Change {
                state: self.state.clone(),
                running: Arc::clone(&self.running),
                auth: (auth, new_auth, auth_changed),
                tls: (tls, new_tls, tls_changed),
                bound,
                stop,
                restart,
                unix,
            }) as Box<dyn Staged>)
        })
    }
}

/// A prepared change of the listeners.
struct Change {
    state: Weak<ApiState>,
    running: Arc<Mutex<Running>>,
    auth: (Option<Credentials>, Option<(String, u64)>, bool),
    tls: (Option<tls::ServerTls>, Option<(String, u64)>, bool),
    bound: Vec<(SocketAddr, Listener, tokio::net::TcpListener)>,
    stop: Vec<SocketAddr>,
    restart: Vec<(SocketAddr, Listener)>,
    /// `Some` when the control socket changes: the new one, opened, or
    /// none any more.
    unix: Option<Option<(PathBuf, api::unix::ControlSocket)>>,
}

impl Staged for Change {
    fn commit(self: Box<Self>) -> Option<String> {
        let state = self.state.upgrade()?;
        let mut said = Vec::new();
        let mut r = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let starting = r.listeners.is_empty() && r.unix.is_none();
        if let Some(new) = self.unix {
            // The old socket stops accepting (the command that asked for
            // this, under way on it, is still answered) and its files go.
            if let Some((path, stop)) = r.unix.take() {
                stop.cancel();
                said.push(format!("control socket {} closed", path.display()));
            }
            if let Some((path, socket)) = new {
                let stop = state.shutdown.child_token();
                if !starting {
                    said.push(format!("control socket {} opened", path.display()));
                }
                r.unix = Some((path, stop.clone()));
                tokio::spawn(api::serve_unix(Arc::clone(&state), socket, stop));
            }
        }
        let (auth, auth_key, auth_changed) = self.auth;
        if auth_changed && !r.listeners.is_empty() {
            said.push(match &auth {
                Some(a) => format!("credentials changed (user {})", a.user),
                None => "credentials removed".to_owned(),
            });
        }
        state.set_auth(auth);
        r.auth = auth_key;
        let (tls, tls_key, tls_changed) = self.tls;
        if tls_changed && !r.listeners.is_empty() {
            said.push(if tls.is_some() { "TLS changed".to_owned() } else { "TLS removed".to_owned() });
        }
        state.set_tls(tls);
        r.tls = tls_key;
        for addr in self.stop {
            if let Some((t, _)) = r.listeners.remove(&addr) {
                t.cancel();
                said.push(format!("listener on {addr} stopped"));
            }
        }
        for (addr, access) in self.restart {
            let Some((old, _)) = r.listeners.remove(&addr) else { continue };
            old.cancel();
            let stop = state.shutdown.child_token();
            r.listeners.insert(addr, (stop.clone(), access));
            tokio::spawn(rebind(Arc::clone(&state), addr, access, stop));
            said.push(format!("listener on {addr} restarted"));
        }
        let first = r.listeners.is_empty();
        for (addr, access, l) in self.bound {
            let stop = state.shutdown.child_token();
            r.listeners.insert(addr, (stop.clone(), access));
            let local = l.local_addr().map_or_else(|_| addr.to_string(), |a| a.to_string());
            tracing::info!(control_addr = %local, "control API listening");
            if !first {
                said.push(format!("listener on {addr} started"));
            }
            tokio::spawn(api::serve_until(Arc::clone(&state), l, access, stop));
        }
        (!said.is_empty()).then(|| format!("control API: {}", said.join(", ")))
    }
}

/// Binds `addr` again once its old listener has let go of it (it stops
/// accepting at once; the port is free within moments), then serves.
async fn rebind(state: Arc<ApiState>, addr: SocketAddr, access: Listener, stop: CancellationToken) {
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return api::serve_until(state, l, access, stop).await,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    tracing::error!(%addr, "control API: cannot listen again after a TLS change");
}
