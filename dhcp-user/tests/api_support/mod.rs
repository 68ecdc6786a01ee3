//! Shared by the `api_*` tests: a daemon's API state over a real lease
//! store in a temporary directory, driven through the axum router with
//! `oneshot` (no sockets, no root).
#![allow(dead_code)]

use std::{path::PathBuf, sync::Arc};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use dhcp_user::{
    api::{ApiState, Credentials, tls::ServerTls},
    config,
    core::Core,
    glue,
    leases::{Lease, LeaseStore},
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Two subnets: 192.0.2.0/24 (id 1, pool .10–.20, 11 addresses) and
/// 198.51.100.0/24 (id 2, pool .100–.149).
pub fn config_text(lease_file: &std::path::Path, persist: bool) -> String {
    json!({ "Dhcp4": {
        "interfaces-config": { "interfaces": ["eth0"] },
        "lease-database": { "type": "memfile", "persist": persist, "name": lease_file, "lfc-interval": 0 },
        "valid-lifetime": 3600,
        "subnet4": [
            { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ] },
            { "id": 2, "subnet": "198.51.100.0/24", "pools": [ { "pool": "198.51.100.100-198.51.100.149" } ] }
        ]
    }})
    .to_string()
}

/// A test daemon's API.
pub struct Api {
    pub state: Arc<ApiState>,
    pub router: Router,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub lease_file: PathBuf,
    pub shutdown: CancellationToken,
}

impl Api {
    /// With a lease file on disk (every change fsynced before answering).
    pub fn new() -> Api {
        Api::build(true, None)
    }

    /// In-memory store: fast, for fuzzing.
    pub fn in_memory() -> Api {
        Api::build(false, None)
    }

    /// Requiring basic auth.
    pub fn with_auth(user: &str, password: &str) -> Api {
        Api::build(
            true,
            Some(Credentials {
                user: user.into(),
                password: config::Secret::new(password),
            }),
        )
    }

    /// Serving HTTPS with `tls` (and basic auth when `auth` is set);
    /// start a real listener with [`Api::listen`].
    pub fn with_tls(auth: Option<(&str, &str)>, tls: ServerTls) -> Api {
        let auth = auth.map(|(user, password)| Credentials {
            user: user.into(),
            password: config::Secret::new(password),
        });
        Api::build_with(true, auth, Some(tls))
    }

    fn build(persist: bool, auth: Option<Credentials>) -> Api {
        Api::build_with(persist, auth, None)
    }

    fn build_with(persist: bool, auth: Option<Credentials>, tls: Option<ServerTls>) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let lease_file = dir.path().join("leases4.csv");
        let config_path = dir.path().join("kea-dhcp4.conf");
        std::fs::write(&config_path, config_text(&lease_file, persist)).unwrap();
        let cfg = config::load(&config_path).unwrap();
        let (store, _) = LeaseStore::open(glue::store_config(&cfg)).unwrap();
        let core = Core::new(glue::compile(&cfg), store, None);
        let shutdown = CancellationToken::new();
        let state = Arc::new(
            ApiState::new(core, None, &cfg, Some(config_path.clone()), shutdown.clone())
                .with_xdp("userspace-only (test)", None)
                .with_auth(auth)
                .with_tls(tls),
        );
        let router = dhcp_user::api::router(Arc::clone(&state));
        Api {
            state,
            router,
            dir,
            config_path,
            lease_file,
            shutdown,
        }
    }

    /// Binds the real listener on 127.0.0.1:0 (TLS if configured) and
    /// serves it in the background until `shutdown`; returns its address.
    pub async fn listen(&self) -> std::net::SocketAddr {
        let (addr, serving) =
            dhcp_user::api::bind(Arc::clone(&self.state), "127.0.0.1:0".parse().unwrap(), dhcp_user::api::Listener::Control)
                .await
                .unwrap();
        tokio::spawn(serving);
        addr
    }

    /// POSTs `body` to `/` (with an optional Authorization header value).
    pub async fn post_raw(
        &self,
        body: impl Into<Body>,
        authorization: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = Request::post("/").header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// POSTs and parses the JSON answer.
    pub async fn post(&self, body: &Value) -> (StatusCode, Value) {
        let (s, text) = self.post_raw(body.to_string(), None).await;
        (
            s,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }

    /// Runs a command without service framing; asserts HTTP 200.
    pub async fn cmd(&self, command: &str, arguments: Option<Value>) -> Value {
        let mut body = json!({ "command": command });
        if let Some(a) = arguments {
            body["arguments"] = a;
        }
        let (status, v) = self.post(&body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// The store's leases.
    pub fn leases(&self) -> Vec<Lease> {
        self.state.core.leases()
    }

    /// Everything a command could change, for "nothing changed" checks.
    pub fn fingerprint(&self) -> String {
        let core = &self.state.core;
        let subnets: Vec<_> = core
            .policy()
            .subnets
            .iter()
            .map(|s| (s.id, s.pools.clone(), s.lifetimes.valid))
            .collect();
        format!(
            "{:?}|{:?}|{:?}|{}|{}",
            core.leases(),
            subnets,
            core.dhcp_disabled_until(),
            self.shutdown.is_cancelled(),
            std::fs::read_to_string(&self.config_path).unwrap_or_default()
        )
    }
}

/// `(result, text)` of an answer object.
pub fn rt(v: &Value) -> (i64, String) {
    (
        v["result"].as_i64().unwrap(),
        v["text"].as_str().unwrap_or_default().to_owned(),
    )
}
