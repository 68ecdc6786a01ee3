//! `libdhcp_ha.so` parameters: HA relationships, peers and their checks.
//!
//! xdhcp pairs with real Kea servers, so it reads the same
//! `"high-availability": [ ... ]` list Kea's HA hook reads, with Kea's
//! defaults (Kea 2.2, plus `max-rejected-lease-updates` from 2.4) and Kea's
//! validation: the list form only (Kea never accepted a bare object), this
//! server among the peers, unique names, at most one primary, secondary and
//! standby, the roles each mode needs, `delayed-updates-limit` 0 and
//! `wait-backup-ack` false where Kea demands it, URLs with an IP address and
//! a port, HTTPS only with TLS files, TLS files all-or-none.
//!
//! Several relationships are Kea's hub-and-spoke (2.6): all hot-standby,
//! peer names unique across relationships, and each subnet tied to one by
//! `user-context.ha-server-name` (any peer name of that relationship).
//!
//! Passwords are [`Secret`]s: their `Debug` is redacted and no error
//! message quotes them.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::error::Invalid;

/// A value that must never be printed: its `Debug` shows `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (building the
    /// `Authorization` header). Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through Value so a mistyped secret is reported without echoing it
        // (serde's own type errors quote the value).
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Secret(s)),
            _ => Err(serde::de::Error::custom("expected a string (value not shown)")),
        }
    }
}

/// Kea's HA modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaMode {
    /// Both active servers answer, splitting clients by hash.
    LoadBalancing,
    /// The primary answers; the standby takes over when it fails.
    HotStandby,
    /// The primary answers and sends leases to backups, no failover.
    PassiveBackup,
}

/// A peer's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Active server (all modes).
    Primary,
    /// Second active server in load-balancing.
    Secondary,
    /// Passive partner in hot-standby.
    Standby,
    /// Receives lease updates only.
    Backup,
}

/// HA states whose pausing can be configured (`state-machine.states`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaState {
    /// `backup`: a backup server's only state.
    Backup,
    /// `communication-recovery`: load balancing without a partner, queueing updates.
    CommunicationRecovery,
    /// `hot-standby`: normal hot-standby operation.
    HotStandby,
    /// `load-balancing`: normal load-balancing operation.
    LoadBalancing,
    /// `in-maintenance`: this server is being maintained.
    InMaintenance,
    /// `partner-down`: serving alone after the partner failed.
    PartnerDown,
    /// `partner-in-maintenance`: serving alone while the partner is maintained.
    PartnerInMaintenance,
    /// `passive-backup`: the primary in passive-backup mode.
    PassiveBackup,
    /// `ready`: synchronised, waiting for the partner.
    Ready,
    /// `syncing`: fetching leases from the partner.
    Syncing,
    /// `terminated`: HA stopped after clock skew or rejected updates.
    Terminated,
    /// `waiting`: starting up, waiting to learn the partner's state.
    Waiting,
    /// `unavailable`: the partner could not be reached.
    Unavailable,
}

/// When the state machine pauses on entering a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pause {
    /// Every time.
    Always,
    /// Never (Kea's default).
    #[default]
    Never,
    /// The first time only.
    Once,
}

// ---- stage 1 -------------------------------------------------------------

/// `parameters` of `libdhcp_ha.so`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireParameters {
    #[serde(rename = "high-availability")]
    high_availability: Vec<WireRelationship>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WireRelationship {
    this_server_name: String,
    mode: HaMode,
    heartbeat_delay: Option<u32>,
    max_response_delay: Option<u32>,
    max_ack_delay: Option<u32>,
    max_unacked_clients: Option<u32>,
    max_rejected_lease_updates: Option<u32>,
    sync_leases: Option<bool>,
    sync_page_limit: Option<u32>,
    sync_timeout: Option<u32>,
    delayed_updates_limit: Option<u32>,
    send_lease_updates: Option<bool>,
    wait_backup_ack: Option<bool>,
    multi_threading: Option<WireMultiThreading>,
    trust_anchor: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    require_client_certs: Option<bool>,
    restrict_commands: Option<bool>,
    state_machine: Option<WireStateMachine>,
    peers: Vec<WirePeer>,
    user_context: Option<Map<String, Value>>,
    comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WireMultiThreading {
    enable_multi_threading: Option<bool>,
    http_dedicated_listener: Option<bool>,
    http_listener_threads: Option<u32>,
    http_client_threads: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireStateMachine {
    states: Option<Vec<WireState>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireState {
    state: HaState,
    pause: Option<Pause>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct WirePeer {
    name: String,
    url: String,
    role: Role,
    auto_failover: Option<bool>,
    basic_auth_user: Option<String>,
    basic_auth_password: Option<Secret>,
    basic_auth_password_file: Option<String>,
    trust_anchor: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    user_context: Option<Map<String, Value>>,
    comment: Option<String>,
}

// ---- stage 2 -------------------------------------------------------------

/// A peer's URL: `http(s)://<IPv4 or [IPv6]>:<port>/…` (Kea needs an address,
/// not a host name; xdhcp also needs the port written out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUrl {
    text: String,
    https: bool,
    addr: SocketAddr,
}

impl PeerUrl {
    /// Parses and checks a URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("{text:?} lacks an http:// or https:// scheme"))?;
        let https = match scheme {
            "http" => false,
            "https" => true,
            _ => return Err(format!("{text:?}: scheme must be http or https")),
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("{text:?}: missing ] after IPv6 address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?}: missing host"));
        }
        let ip: IpAddr = host.parse().map_err(|_| format!("{text:?}: host must be an IP address, not {host:?}"))?;
        let port = port.filter(|p| !p.is_empty()).ok_or_else(|| format!("{text:?}: missing port"))?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("{text:?}: bad port {port:?}"))?;
        Ok(PeerUrl { text: text.to_owned(), https, addr: SocketAddr::new(ip, port) })
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Address and port to connect to (or, for this server, listen on).
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// HTTP basic authentication credentials for talking to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// User name (no `:`).
    pub user: String,
    /// Password (from `basic-auth-password` or the password file).
    pub password: Secret,
}

/// Trust anchor, certificate and key, all set (Kea requires all or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA file or directory.
    pub trust_anchor: PathBuf,
    /// Certificate file.
    pub cert_file: PathBuf,
    /// Private key file.
    pub key_file: PathBuf,
}

/// One HA peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    name: String,
    url: PeerUrl,
    role: Role,
    auto_failover: bool,
    basic_auth: Option<BasicAuth>,
    tls: Option<TlsFiles>,
}

impl Peer {
    /// Peer name (also its scope name in load balancing).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Where the peer listens.
    pub fn url(&self) -> &PeerUrl {
        &self.url
    }
    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Kea's `auto-failover` (default true).
    pub fn auto_failover(&self) -> bool {
        self.auto_failover
    }
    /// Credentials to send to this peer, if any.
    pub fn basic_auth(&self) -> Option<&BasicAuth> {
        self.basic_auth.as_ref()
    }
    /// TLS files for this peer (its own or the relationship's), if TLS is on.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }
}

/// HA's own multi-threading settings (Kea 2.2 defaults: all off / 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HaMultiThreading {
    /// `enable-multi-threading`.
    pub enable_multi_threading: bool,
    /// `http-dedicated-listener`.
    pub http_dedicated_listener: bool,
    /// `http-listener-threads` (0: as many as DHCP threads).
    pub http_listener_threads: u32,
    /// `http-client-threads` (0: as many as DHCP threads).
    pub http_client_threads: u32,
}

/// One HA relationship (one element of `high-availability`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaRelationship {
    this_server_name: String,
    mode: HaMode,
    heartbeat_delay: Duration,
    max_response_delay: Duration,
    max_ack_delay: Duration,
    max_unacked_clients: u32,
    max_rejected_lease_updates: u32,
    sync_leases: bool,
    sync_page_limit: u32,
    sync_timeout: Duration,
    delayed_updates_limit: u32,
    send_lease_updates: bool,
    wait_backup_ack: bool,
    require_client_certs: bool,
    restrict_commands: bool,
    multi_threading: HaMultiThreading,
    pauses: Vec<(HaState, Pause)>,
    peers: Vec<Peer>,
}

impl HaRelationship {
    /// This server's name in the relationship.
    pub fn this_server_name(&self) -> &str {
        &self.this_server_name
    }
    /// This server's peer entry (always present).
    pub fn this_server(&self) -> &Peer {
        self.peer(&self.this_server_name).expect("validated: this server is a peer")
    }
    /// The other active server (primary/secondary/standby), if this server
    /// is not a backup and there is one.
    pub fn partner(&self) -> Option<&Peer> {
        let me = self.this_server();
        if me.role == Role::Backup {
            return None;
        }
        self.peers.iter().find(|p| p.name != me.name && p.role != Role::Backup)
    }
    /// Backup servers.
    pub fn backups(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().filter(|p| p.role == Role::Backup)
    }
    /// The peer called `name`.
    pub fn peer(&self, name: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == name)
    }
    /// All peers, in configuration order.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }
    /// HA mode.
    pub fn mode(&self) -> HaMode {
        self.mode
    }
    /// `heartbeat-delay` (default 10 s; 0: no heartbeats).
    pub fn heartbeat_delay(&self) -> Duration {
        self.heartbeat_delay
    }
    /// `max-response-delay` (default 60 s).
    pub fn max_response_delay(&self) -> Duration {
        self.max_response_delay
    }
    /// `max-ack-delay` (default 10 s).
    pub fn max_ack_delay(&self) -> Duration {
        self.max_ack_delay
    }
    /// `max-unacked-clients` (default 10).
    pub fn max_unacked_clients(&self) -> u32 {
        self.max_unacked_clients
    }
    /// `max-rejected-lease-updates` (default 10; 0: never terminate).
    pub fn max_rejected_lease_updates(&self) -> u32 {
        self.max_rejected_lease_updates
    }
    /// `sync-leases` (default true).
    pub fn sync_leases(&self) -> bool {
        self.sync_leases
    }
    /// `sync-page-limit` (default 10000).
    pub fn sync_page_limit(&self) -> u32 {
        self.sync_page_limit
    }
    /// `sync-timeout` (default 60 s).
    pub fn sync_timeout(&self) -> Duration {
        self.sync_timeout
    }
    /// `delayed-updates-limit` (default 100 in load-balancing, else 0).
    pub fn delayed_updates_limit(&self) -> u32 {
        self.delayed_updates_limit
    }
    /// `send-lease-updates` (default true).
    pub fn send_lease_updates(&self) -> bool {
        self.send_lease_updates
    }
    /// `wait-backup-ack` (default false).
    pub fn wait_backup_ack(&self) -> bool {
        self.wait_backup_ack
    }
    /// `require-client-certs` (default true).
    pub fn require_client_certs(&self) -> bool {
        self.require_client_certs
    }
    /// `restrict-commands`: the HA listener answers only what a partner
    /// sends. Default true, as in Kea 3.0 (Kea 2.2 defaulted to false,
    /// which let anyone who can reach the peer URL run `lease4-wipe` or
    /// `shutdown`); `false` restores that.
    pub fn restrict_commands(&self) -> bool {
        self.restrict_commands
    }
    /// HA multi-threading settings.
    pub fn multi_threading(&self) -> HaMultiThreading {
        self.multi_threading
    }
    /// Pausing configured for `state` (default never).
    pub fn pause(&self, state: HaState) -> Pause {
        self.pauses.iter().find(|(s, _)| *s == state).map_or(Pause::Never, |(_, p)| *p)
    }
}

/// All relationships of this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    relationships: Vec<HaRelationship>,
}

impl HaConfig {
    /// The relationships, in configuration order (at least one).
    pub fn relationships(&self) -> &[HaRelationship] {
        &self.relationships
    }

    /// This server's HA listeners that any host on their network may talk
    /// to: not on loopback, with neither basic auth nor TLS. One per
    /// address (the first relationship using it).
    pub fn unprotected_listeners(&self) -> Vec<(std::net::SocketAddr, &HaRelationship)> {
        let mut out: Vec<(std::net::SocketAddr, &HaRelationship)> = Vec::new();
        for rel in &self.relationships {
            let me = rel.this_server();
            let addr = me.url().socket_addr();
            if addr.ip().is_loopback() || out.iter().any(|(a, _)| *a == addr) {
                continue;
            }
            if me.basic_auth().is_none() && me.tls().is_none() {
                out.push((addr, rel));
            }
        }
        out
    }

    /// Index of the relationship having a peer called `name` (how a subnet's
    /// `ha-server-name` is resolved).
    pub fn relationship_of_peer(&self, name: &str) -> Option<usize> {
        self.relationships.iter().position(|r| r.peer(name).is_some())
    }

    /// Whether this is a hub-and-spoke setup (several relationships).
    pub fn is_hub(&self) -> bool {
        self.relationships.len() > 1
    }
}

/// Kea 2.2 stored these three as 16-bit values.
const KEA22_U16_LIMIT: u32 = u16::MAX as u32;

/// Stage 2 for HA parameters. `path` is the `parameters` value's JSON path;
/// `warn` receives (path, message) warnings.
pub(crate) fn build(
    wire: WireParameters,
    path: &str,
    warn: &mut dyn FnMut(String, String),
) -> Result<HaConfig, Invalid> {
    let list_path = format!("{path}.high-availability");
    if wire.high_availability.is_empty() {
        return Err(Invalid::new(list_path, "needs at least one relationship"));
    }
    let mut relationships = Vec::new();
    for (i, w) in wire.high_availability.into_iter().enumerate() {
        relationships.push(relationship(w, &format!("{list_path}[{i}]"), warn)?);
    }
    if relationships.len() > 1 {
        let mut names = HashSet::new();
        let mut listeners = HashSet::new();
        for (i, r) in relationships.iter().enumerate() {
            let rp = format!("{list_path}[{i}]");
            if r.mode != HaMode::HotStandby {
                return Err(Invalid::new(
                    format!("{rp}.mode"),
                    "several HA relationships (hub-and-spoke) are only supported in hot-standby mode",
                ));
            }
            for (j, p) in r.peers.iter().enumerate() {
                if !names.insert(p.name.clone()) {
                    return Err(Invalid::new(
                        format!("{rp}.peers[{j}].name"),
                        format!(
                            "peer name {:?} is used in another relationship; names must be unique across relationships",
                            p.name
                        ),
                    ));
                }
            }
            if !listeners.insert(r.this_server().url.addr) {
                return Err(Invalid::new(
                    format!("{rp}.this-server-name"),
                    format!(
                        "this server's URL {} is also its URL in another relationship; each relationship needs its own address and port",
                        r.this_server().url
                    ),
                ));
            }
        }
    }
    Ok(HaConfig { relationships })
}

fn relationship(
    w: WireRelationship,
    path: &str,
    warn: &mut dyn FnMut(String, String),
) -> Result<HaRelationship, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    if w.user_context.is_some() {
        warn(at("user-context"), "ignored".into());
    }
    let _ = w.comment;
    for (key, v) in [
        ("heartbeat-delay", w.heartbeat_delay),
        ("max-response-delay", w.max_response_delay),
        ("max-ack-delay", w.max_ack_delay),
    ] {
        if let Some(v) = v.filter(|v| *v > KEA22_U16_LIMIT) {
            warn(at(key), format!("{v} ms is accepted here but Kea 2.2 refuses values above {KEA22_U16_LIMIT}"));
        }
    }
    let this_server_name = w.this_server_name.trim().to_owned();
    if this_server_name.is_empty() {
        return Err(Invalid::new(at("this-server-name"), "must not be empty"));
    }
    let lb = w.mode == HaMode::LoadBalancing;
    let delayed_updates_limit = w.delayed_updates_limit.unwrap_or(if lb { 100 } else { 0 });
    let wait_backup_ack = w.wait_backup_ack.unwrap_or(false);

    let rel_tls = (w.trust_anchor, w.cert_file, w.key_file);
    if w.peers.is_empty() {
        return Err(Invalid::new(at("peers"), "needs at least one peer"));
    }
    let mut peers: Vec<Peer> = Vec::new();
    for (j, p) in w.peers.into_iter().enumerate() {
        let pp = format!("{path}.peers[{j}]");
        let peer = build_peer(p, &pp, &rel_tls, warn)?;
        if peers.iter().any(|q| q.name == peer.name) {
            return Err(Invalid::new(format!("{pp}.name"), format!("peer {:?} is listed twice", peer.name)));
        }
        peers.push(peer);
    }
    if !peers.iter().any(|p| p.name == this_server_name) {
        return Err(Invalid::new(at("this-server-name"), format!("{this_server_name:?} is not one of the peers")));
    }

    let count = |r: Role| peers.iter().filter(|p| p.role == r).count();
    let role_at = |r: Role| {
        let j = peers.iter().rposition(|p| p.role == r).unwrap_or(0);
        format!("{path}.peers[{j}].role")
    };
    for (r, word) in [(Role::Primary, "primary"), (Role::Secondary, "secondary"), (Role::Standby, "standby")] {
        if count(r) > 1 {
            return Err(Invalid::new(role_at(r), format!("only one {word} server is allowed")));
        }
    }
    let need = |r: Role, word: &str, mode: &str| -> Result<(), Invalid> {
        if count(r) == 0 {
            Err(Invalid::new(at("peers"), format!("{mode} mode needs a {word} server")))
        } else {
            Ok(())
        }
    };
    let forbid = |r: Role, word: &str, mode: &str| -> Result<(), Invalid> {
        if count(r) > 0 {
            Err(Invalid::new(role_at(r), format!("{word} servers are not allowed in {mode} mode")))
        } else {
            Ok(())
        }
    };
    match w.mode {
        HaMode::LoadBalancing => {
            forbid(Role::Standby, "standby", "load-balancing")?;
            need(Role::Primary, "primary", "load-balancing")?;
            need(Role::Secondary, "secondary", "load-balancing")?;
            if wait_backup_ack {
                return Err(Invalid::new(at("wait-backup-ack"), "must be false in load-balancing mode"));
            }
        }
        HaMode::HotStandby => {
            forbid(Role::Secondary, "secondary", "hot-standby")?;
            need(Role::Primary, "primary", "hot-standby")?;
            need(Role::Standby, "standby", "hot-standby")?;
            if wait_backup_ack {
                return Err(Invalid::new(at("wait-backup-ack"), "must be false in hot-standby mode"));
            }
            if delayed_updates_limit > 0 {
                return Err(Invalid::new(at("delayed-updates-limit"), "must be 0 in hot-standby mode"));
            }
        }
        HaMode::PassiveBackup => {
            forbid(Role::Secondary, "secondary", "passive-backup")?;
            forbid(Role::Standby, "standby", "passive-backup")?;
            need(Role::Primary, "primary", "passive-backup")?;
            if delayed_updates_limit > 0 {
                return Err(Invalid::new(at("delayed-updates-limit"), "must be 0 in passive-backup mode"));
            }
        }
    }

    let mut pauses: Vec<(HaState, Pause)> = Vec::new();
    if let Some(states) = w.state_machine.and_then(|s| s.states) {
        for (k, s) in states.into_iter().enumerate() {
            if pauses.iter().any(|(st, _)| *st == s.state) {
                return Err(Invalid::new(
                    format!("{path}.state-machine.states[{k}].state"),
                    "this state is configured twice",
                ));
            }
            pauses.push((s.state, s.pause.unwrap_or_default()));
        }
    }
    let mt = w.multi_threading.map_or(HaMultiThreading::default(), |m| HaMultiThreading {
        enable_multi_threading: m.enable_multi_threading.unwrap_or(false),
        http_dedicated_listener: m.http_dedicated_listener.unwrap_or(false),
        http_listener_threads: m.http_listener_threads.unwrap_or(0),
        http_client_threads: m.http_client_threads.unwrap_or(0),
    });
    let ms = |v: Option<u32>, d: u64| Duration::from_millis(v.map_or(d, u64::from));
    Ok(HaRelationship {
        this_server_name,
        mode: w.mode,
        heartbeat_delay: ms(w.heartbeat_delay, 10_000),
        max_response_delay: ms(w.max_response_delay, 60_000),
        max_ack_delay: ms(w.max_ack_delay, 10_000),
        max_unacked_clients: w.max_unacked_clients.unwrap_or(10),
        max_rejected_lease_updates: w.max_rejected_lease_updates.unwrap_or(10),
        sync_leases: w.sync_leases.unwrap_or(true),
        sync_page_limit: w.sync_page_limit.unwrap_or(10_000),
        sync_timeout: ms(w.sync_timeout, 60_000),
        delayed_updates_limit,
        send_lease_updates: w.send_lease_updates.unwrap_or(true),
        wait_backup_ack,
        require_client_certs: w.require_client_certs.unwrap_or(true),
        restrict_commands: w.restrict_commands.unwrap_or(true),
        multi_threading: mt,
        pauses,
        peers,
    })
}

type TlsTriple = (Option<String>, Option<String>, Option<String>);

fn build_peer(
    p: WirePeer,
    path: &str,
    rel_tls: &TlsTriple,
    warn: &mut dyn FnMut(String, String),
) -> Result<Peer, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    if p.user_context.is_some() {
        warn(at("user-context"), "ignored".into());
    }
    let _ = p.comment;
    let name = p.name.trim().to_owned();
    if name.is_empty() {
        return Err(Invalid::new(at("name"), "must not be empty"));
    }
    let url = PeerUrl::parse(&p.url).map_err(|m| Invalid::new(at("url"), m))?;

    // TLS: the peer's own value, else the relationship's; empty means unset.
    let pick =
        |own: &Option<String>, rel: &Option<String>| own.clone().or_else(|| rel.clone()).filter(|s| !s.is_empty());
    let ca = pick(&p.trust_anchor, &rel_tls.0);
    let cert = pick(&p.cert_file, &rel_tls.1);
    let key = pick(&p.key_file, &rel_tls.2);
    let tls = match (ca, cert, key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => {
            for (k, f) in [("trust-anchor", &ca), ("cert-file", &cert), ("key-file", &key)] {
                if !Path::new(f).exists() {
                    return Err(Invalid::new(at(k), format!("{f:?} does not exist")));
                }
            }
            Some(TlsFiles { trust_anchor: ca.into(), cert_file: cert.into(), key_file: key.into() })
        }
        (ca, cert, _) => {
            let missing = if ca.is_none() {
                "trust-anchor"
            } else if cert.is_none() {
                "cert-file"
            } else {
                "key-file"
            };
            return Err(Invalid::new(
                path,
                format!("TLS needs trust-anchor, cert-file and key-file together; {missing} is missing or empty"),
            ));
        }
    };
    if url.is_https() && tls.is_none() {
        return Err(Invalid::new(at("url"), "https needs TLS (trust-anchor, cert-file and key-file)"));
    }

    let password = match (p.basic_auth_password, p.basic_auth_password_file) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(
                at("basic-auth-password-file"),
                "only one of basic-auth-password and basic-auth-password-file may be set",
            ));
        }
        (Some(pw), None) => Some(pw),
        (None, Some(file)) => {
            let meta = std::fs::metadata(&file)
                .map_err(|e| Invalid::new(at("basic-auth-password-file"), format!("{file:?}: {e}")))?;
            if !meta.is_file() {
                return Err(Invalid::new(at("basic-auth-password-file"), format!("{file:?} is not a regular file")));
            }
            let content = std::fs::read_to_string(&file)
                .map_err(|e| Invalid::new(at("basic-auth-password-file"), format!("{file:?}: {e}")))?;
            if content.ends_with('\n') {
                warn(
                    at("basic-auth-password-file"),
                    "the file ends with a newline, which is part of the password (as in Kea)".into(),
                );
            }
            Some(Secret(content))
        }
        (None, None) => None,
    };
    let basic_auth = match p.basic_auth_user {
        Some(user) if !user.is_empty() => {
            if user.contains(':') {
                return Err(Invalid::new(at("basic-auth-user"), "must not contain ':'"));
            }
            Some(BasicAuth { user, password: password.unwrap_or_else(|| Secret(String::new())) })
        }
        _ => {
            if password.is_some() {
                warn(path.to_owned(), "a basic-auth password without basic-auth-user is ignored (as in Kea)".into());
            }
            None
        }
    };
    Ok(Peer { name, url, role: p.role, auto_failover: p.auto_failover.unwrap_or(true), basic_auth, tls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<HaConfig, Invalid> {
        let v: Value = serde_json::from_str(json).unwrap();
        let w: WireParameters = serde_json::from_value(v).map_err(|e| Invalid::new("serde", e.to_string()))?;
        build(w, "P", &mut |_, _| {})
    }

    fn hs(extra: &str, peers: &str) -> String {
        format!(
            r#"{{"high-availability": [{{"this-server-name": "a", "mode": "hot-standby" {extra}, "peers": [{peers}]}}]}}"#
        )
    }

    const AB: &str = r#"{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"},
                        {"name": "b", "url": "http://10.0.0.2:8000/", "role": "standby"}"#;

    #[test]
    fn defaults_match_kea() {
        let c = parse(&hs("", AB)).unwrap();
        let r = &c.relationships()[0];
        assert_eq!(r.heartbeat_delay(), Duration::from_secs(10));
        assert_eq!(r.max_response_delay(), Duration::from_secs(60));
        assert_eq!(r.max_ack_delay(), Duration::from_secs(10));
        assert_eq!(r.max_unacked_clients(), 10);
        assert_eq!(r.max_rejected_lease_updates(), 10);
        assert_eq!(r.sync_page_limit(), 10_000);
        assert_eq!(r.sync_timeout(), Duration::from_secs(60));
        assert_eq!(r.delayed_updates_limit(), 0);
        assert!(r.sync_leases() && r.send_lease_updates() && !r.wait_backup_ack());
        assert!(r.require_client_certs() && r.restrict_commands(), "Kea 3.0's default");
        assert!(r.peers().iter().all(|p| p.auto_failover()));
        assert_eq!(r.this_server().role(), Role::Primary);
        assert_eq!(r.partner().unwrap().name(), "b");
        assert_eq!(r.partner().unwrap().url().socket_addr(), "10.0.0.2:8000".parse().unwrap());
        assert_eq!(r.pause(HaState::Waiting), Pause::Never);
    }

    #[test]
    fn load_balancing_defaults_delayed_updates_to_100() {
        let j = r#"{"high-availability": [{"this-server-name": "a", "mode": "load-balancing", "peers": [
            {"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"},
            {"name": "b", "url": "http://[2001:db8::2]:8000/", "role": "secondary"},
            {"name": "c", "url": "http://10.0.0.3:8000/", "role": "backup"}]}]}"#;
        let c = parse(j).unwrap();
        assert_eq!(c.relationships()[0].delayed_updates_limit(), 100);
        assert_eq!(c.relationships()[0].backups().count(), 1);
    }

    #[test]
    fn refuses_what_kea_refuses() {
        let primary2 = r#"{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"},
                          {"name": "b", "url": "http://10.0.0.2:8000/", "role": "primary"}"#;
        let cases: Vec<(String, &str)> = vec![
            (hs("", primary2), "only one primary"),
            (hs("", r#"{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"}"#), "needs a standby"),
            (
                hs(
                    "",
                    r#"{"name": "b", "url": "http://10.0.0.1:8000/", "role": "primary"}, {"name": "c", "url": "http://10.0.0.2:8000/", "role": "standby"}"#,
                ),
                "not one of the peers",
            ),
            (
                hs(
                    "",
                    r#"{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"}, {"name": "a", "url": "http://10.0.0.2:8000/", "role": "standby"}"#,
                ),
                "listed twice",
            ),
            (
                hs(
                    "",
                    r#"{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"}, {"name": "b", "url": "http://10.0.0.2:8000/", "role": "secondary"}"#,
                ),
                "secondary servers are not allowed",
            ),
            (hs(r#", "delayed-updates-limit": 5"#, AB), "must be 0 in hot-standby"),
            (hs(r#", "wait-backup-ack": true"#, AB), "must be false in hot-standby"),
            (hs("", &AB.replace("http://10.0.0.2:8000/", "http://peer.example:8000/")), "must be an IP address"),
            (hs("", &AB.replace("http://10.0.0.2:8000/", "http://10.0.0.2/")), "missing port"),
            (hs("", &AB.replace("http://10.0.0.2:8000/", "ftp://10.0.0.2:8000/")), "http or https"),
            (hs("", &AB.replace("http://10.0.0.2:8000/", "https://10.0.0.2:8000/")), "https needs TLS"),
            (hs(r#", "trust-anchor": "/etc/ca.pem""#, AB), "TLS needs"),
            (
                hs(
                    r#", "state-machine": {"states": [{"state": "waiting", "pause": "once"}, {"state": "waiting"}]}"#,
                    AB,
                ),
                "twice",
            ),
            (
                hs("", &AB.replace(r#""role": "standby""#, r#""role": "standby", "basic-auth-user": "x:y""#)),
                "must not contain",
            ),
            (
                hs(
                    "",
                    &AB.replace(
                        r#""role": "standby""#,
                        r#""role": "standby", "basic-auth-password": "p", "basic-auth-password-file": "/f""#,
                    ),
                ),
                "only one of",
            ),
            (
                hs(
                    "",
                    &AB.replace(
                        r#""role": "standby""#,
                        r#""role": "standby", "basic-auth-password-file": "/nonexistent/pw""#,
                    ),
                ),
                "basic-auth-password-file",
            ),
            (r#"{"high-availability": []}"#.into(), "at least one"),
        ];
        for (json, want) in cases {
            let e = parse(&json).unwrap_err();
            assert!(e.to_string().contains(want), "{json}\n=> {e}");
        }
        assert!(
            parse(r#"{"high-availability": {"this-server-name": "a"}}"#).is_err(),
            "Kea only accepts the list form"
        );
        assert!(parse(&hs(r#", "mode2": 1"#, AB)).is_err());
    }

    #[test]
    fn hub_and_spoke_rules() {
        let two = |mode2: &str, peer_b2: &str| {
            format!(
                r#"{{"high-availability": [
                {{"this-server-name": "hub-1", "mode": "hot-standby", "peers": [
                    {{"name": "hub-1", "url": "http://10.0.0.1:8001/", "role": "primary"}},
                    {{"name": "spoke-1", "url": "http://10.0.0.2:8001/", "role": "standby"}}]}},
                {{"this-server-name": "hub-2", "mode": "{mode2}", "peers": [
                    {{"name": "hub-2", "url": "http://10.0.1.1:8002/", "role": "standby"}},
                    {{"name": "{peer_b2}", "url": "http://10.0.1.2:8002/", "role": "primary"}}]}}]}}"#
            )
        };
        let c = parse(&two("hot-standby", "spoke-2")).unwrap();
        assert!(c.is_hub());
        assert_eq!(c.relationship_of_peer("spoke-2"), Some(1));
        assert_eq!(c.relationship_of_peer("hub-1"), Some(0));
        assert_eq!(c.relationship_of_peer("nobody"), None);
        assert!(parse(&two("hot-standby", "spoke-1")).unwrap_err().message.contains("unique across"));
        assert!(parse(&two("passive-backup", "spoke-2")).is_err());
    }

    #[test]
    fn passwords_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let pwf = dir.path().join("pw");
        std::fs::write(&pwf, "hunter2-from-file\n").unwrap();
        let peers = AB
            .replace(
                r#""role": "primary""#,
                r#""role": "primary", "basic-auth-user": "u", "basic-auth-password": "hunter2-inline""#,
            )
            .replace(
                r#""role": "standby""#,
                &format!(
                    r#""role": "standby", "basic-auth-user": "v", "basic-auth-password-file": {:?}"#,
                    pwf.to_str().unwrap()
                ),
            );
        let mut warnings = Vec::new();
        let v: Value = serde_json::from_str(&hs("", &peers)).unwrap();
        let c = build(serde_json::from_value(v).unwrap(), "P", &mut |p, m| warnings.push(format!("{p}: {m}"))).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        let r = &c.relationships()[0];
        assert_eq!(r.peer("a").unwrap().basic_auth().unwrap().password.expose(), "hunter2-inline");
        assert_eq!(r.peer("b").unwrap().basic_auth().unwrap().password.expose(), "hunter2-from-file\n");
        assert!(warnings.iter().any(|w| w.contains("newline")));
        // A mistyped password is reported without its value.
        let bad = hs("", &AB.replace(r#""role": "standby""#, r#""role": "standby", "basic-auth-password": 987654321"#));
        let v: Value = serde_json::from_str(&bad).unwrap();
        let e = serde_json::from_value::<WireParameters>(v).unwrap_err().to_string();
        assert!(!e.contains("987654321"), "{e}");
    }
}
