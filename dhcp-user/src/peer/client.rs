//! HTTP to one HA peer, framed as Kea frames it: `POST /` with the
//! command body, basic auth when that peer entry has credentials, a
//! persistent connection, and a one-element JSON array back.

use std::time::Duration;

use base64::Engine as _;
use crate::{
    config::ha::Peer,
    kea::ha::{self as wire, Outbound, PeerReply, WireError},
};

/// Kea's timeout for every HA request but `lease4-get-page`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Persistent connections kept to a peer, and at most this many lease
/// updates in flight to it (`Rel` holds the matching permits): more
/// concurrency than that only opened and closed a TCP connection per
/// update under load, which fed on itself until the pair collapsed.
pub const CONNECTIONS: usize = 64;

/// Why an exchange with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Connection, TLS, timeout or HTTP failure.
    #[error("{peer} ({url}): {source}")]
    Http {
        /// Peer name.
        peer: String,
        /// Its URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The answer could not be used.
    #[error("{peer}: {command}: {source}")]
    Wire {
        /// Peer name.
        peer: String,
        /// The command sent.
        command: String,
        /// What was wrong with the answer.
        source: WireError,
    },
    /// The client could not be built (bad TLS files).
    #[error("{peer}: {reason}")]
    Setup {
        /// Peer name.
        peer: String,
        /// What failed.
        reason: String,
    },
}

/// A client for one peer's URL.
#[derive(Debug, Clone)]
pub struct PeerClient {
    name: String,
    url: String,
    auth: Option<String>,
    http: reqwest::Client,
}

impl PeerClient {
    /// A client for `peer`; `tls` is the client side of HTTPS (our
    /// certificate and the trust anchor), required for an `https://` URL.
    pub fn new(peer: &Peer, tls: Option<rustls::ClientConfig>) -> Result<Self, PeerError> {
        let setup = |reason: String| PeerError::Setup { peer: peer.name().to_owned(), reason };
        let mut b = reqwest::Client::builder()
            .no_proxy() // peers are IP literals on our own networks
            .pool_max_idle_per_host(CONNECTIONS)
            .connect_timeout(Duration::from_secs(5));
        match tls {
            Some(cfg) => b = b.use_preconfigured_tls(cfg),
            None if peer.url().is_https() => {
                return Err(setup(format!("{} needs trust-anchor, cert-file and key-file", peer.url().as_str())));
            }
            None => {}
        }
        let http = b.build().map_err(|e| setup(e.to_string()))?;
        let auth = peer.basic_auth().map(|a| {
            let raw = format!("{}:{}", a.user, a.password.expose());
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
        });
        Ok(PeerClient { name: peer.name().to_owned(), url: peer.url().as_str().to_owned(), auth, http })
    }

    /// The peer's name (its scope name too).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `command` and decodes the answer (whatever its result code).
    pub async fn send(&self, command: Outbound<'_>, timeout: Duration) -> Result<PeerReply, PeerError> {
        let http_err = |source| PeerError::Http { peer: self.name.clone(), url: self.url.clone(), source };
        let mut req = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(command.body());
        if let Some(a) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = req.send().await.map_err(http_err)?;
        let body = resp.bytes().await.map_err(http_err)?;
        wire::parse_reply(&body).map_err(|source| PeerError::Wire {
            peer: self.name.clone(),
            command: command.name().to_owned(),
            source,
        })
    }
}
