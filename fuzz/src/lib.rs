//! # Layout
//!
//! Shared by the cargo-fuzz targets in `fuzz_targets/` (one per untrusted
//! input of xdhcpd, issue 20): the configurations the targets run against,
//! all taken from the repository's own lab and test data, and a control API
//! state built the way the daemon builds it (in a temporary directory, an
//! in-memory lease store, no socket).
//!
//! Every target builds its state afresh for each input, so a crash found
//! after millions of inputs reproduces from its one input file.

use std::sync::{Arc, OnceLock};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use dhcp_user::{api::ApiState, config, core::Core, glue, leases::LeaseStore, peer::HaRuntime};
use http_body_util::BodyExt as _;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Venus's primary (`lab/venus/lobezno.json`): reservations, options, HA
/// hot-standby with tormenta.
pub const VENUS: &str = include_str!("../../lab/venus/lobezno.json");
/// The relay lab's server: subnets reached through relays and a shared
/// network.
pub const RELAY: &str = include_str!("../../dhcp-user/tests/data/relay/lobezno.json");
/// A Kea 2.2 load-balancing example with two relationships' worth of keys.
pub const KEA_HA_EXAMPLE: &str = include_str!("../../dhcp-user/tests/data/kea22-ha-example.json");

/// `text` with every HA peer URL moved to 127.0.0.1's discard port and the
/// lease file kept in memory: a command that talks to the partner fails at
/// once (connection refused) instead of waiting on a lab address, and
/// nothing is written outside the input's temporary directory.
pub fn contained(text: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("repository config is JSON");
    let d = &mut v["Dhcp4"];
    d["lease-database"] = serde_json::json!({ "type": "memfile", "persist": false, "lfc-interval": 0 });
    if let Some(hooks) = d["hooks-libraries"].as_array_mut() {
        for h in hooks {
            if let Some(rels) = h.pointer_mut("/parameters/high-availability").and_then(|v| v.as_array_mut()) {
                for r in rels {
                    if let Some(peers) = r["peers"].as_array_mut() {
                        for (i, p) in peers.iter_mut().enumerate() {
                            p["url"] = format!("http://127.0.0.1:{}/", 9 + i).into();
                        }
                    }
                }
            }
        }
    }
    v.to_string()
}

/// One current-thread runtime per fuzzing process (HTTP handlers are async).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime"))
}

/// A daemon's control API over `config_text` (written to a temporary
/// directory, so `config-write`/`config-reload` stay inside it), with the
/// HA runtime when the config loads the HA hook. The runtime's machines are
/// started but not driven: commands see them as a partner would.
pub struct Api {
    /// The state the handlers share.
    pub state: Arc<ApiState>,
    /// The axum router, as the listener serves it.
    pub router: Router,
    /// Holds the config file.
    pub dir: tempfile::TempDir,
}

impl Api {
    /// Builds the API; panics if the repository's config does not load.
    pub fn new(config_text: &str) -> Api {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config_path = dir.path().join("kea-dhcp4.conf");
        std::fs::write(&config_path, config_text).expect("write config");
        let cfg = config::load(&config_path).expect("repository config loads");
        let (store, _) = LeaseStore::open(glue::store_config(&cfg)).expect("in-memory store");
        let core = Core::new(glue::compile(&cfg), store, None);
        let ha = cfg.ha().map(|h| Arc::new(HaRuntime::new(Some(h), |_| Ok(None)).expect("HA runtime")));
        let state = Arc::new(
            ApiState::new(core, ha, &cfg, Some(config_path), CancellationToken::new())
                .with_xdp("userspace-only (fuzz)", None),
        );
        let router = dhcp_user::api::router(Arc::clone(&state));
        Api { state, router, dir }
    }

    /// Sends one request; returns the status and body.
    pub fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        runtime().block_on(async {
            let resp = self.router.clone().oneshot(req).await.expect("router is infallible");
            let status = resp.status();
            let body = resp.into_body().collect().await.expect("body").to_bytes().to_vec();
            (status, body)
        })
    }

    /// POSTs `body` to `/` and checks what every answer must be: a known
    /// status with a JSON body (an answer, or Kea's array of answers) whose
    /// `result` is an integer.
    pub fn post(&self, body: Vec<u8>) -> serde_json::Value {
        let req = Request::post("/").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
        let (status, bytes) = self.send(req);
        assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE].contains(&status),
            "unexpected status {status}"
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        let answers = match &v {
            serde_json::Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        for a in &answers {
            assert!(a["result"].is_i64(), "answer without an integer result: {a}");
        }
        v
    }

    /// The status page, its JSON and the metrics after a command: whatever
    /// the command stored must render.
    pub fn render_all(&self) {
        for path in ["/", "/status.json", "/metrics"] {
            let (status, _) = self.send(Request::get(path).body(Body::empty()).unwrap());
            assert_eq!(status, StatusCode::OK, "GET {path}");
        }
    }
}
