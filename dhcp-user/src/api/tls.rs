//! HTTPS for the control/HA listener and for the HA client, configured with
//! Kea's names so a Kea HA config works unchanged.
//!
//! Kea turns its listener into HTTPS when this server's own HA peer entry
//! has `trust-anchor`, `cert-file` and `key-file` (relationship-level
//! values, overridden per peer; `config::ha` already resolves that) and
//! then, with `require-client-certs` (default true), refuses clients
//! without a certificate signed by the trust anchor. A server without HA
//! gets the same from CLI options named after Kea's control-agent keys
//! ([`ControlTls`]). The other peer entries' files configure the client
//! side ([`client_config`]).
//!
//! rustls with the ring provider throughout (aws-lc needs cmake), passed
//! explicitly so no process-wide default provider is needed.
//!
//! Peer names: the client checks that the partner's certificate chains to
//! the trust anchor but not that it names the URL's address, as Kea's
//! OpenSSL client does not either; HA pairs built from Kea's documentation
//! have certificates without IP subject alternative names.

use std::{
    fmt, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::{VerifierBuilderError, WebPkiServerVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};
use thiserror::Error;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
pub use crate::config::ha::TlsFiles;

/// Why TLS could not be set up. Every variant names the file and the Kea
/// key it came from; none quotes file contents (a key file is a secret).
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file or directory could not be read.
    #[error("{key} {}: {source}", path.display())]
    Read {
        /// Kea key (`trust-anchor`, `cert-file`, `key-file`).
        key: &'static str,
        /// What was read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds no PEM certificate (or one that does not parse).
    #[error("{key} {}: no PEM certificate in it{}", path.display(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoCertificate {
        /// Kea key.
        key: &'static str,
        /// The file (or directory).
        path: PathBuf,
        /// Parser detail, if any.
        detail: Option<String>,
    },
    /// The key file holds no usable private key.
    #[error("key-file {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A trust-anchor certificate was refused as a root.
    #[error("trust-anchor {}: {source}", path.display())]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// Certificate and key do not form a usable identity (mismatch,
    /// unsupported key type, …).
    #[error("cert-file {} with key-file {}: {source}", cert.display(), key.display())]
    Identity {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
    /// The verifier for the other side could not be built from the trust
    /// anchor.
    #[error("trust-anchor {}: {source}", path.display())]
    Verifier {
        /// The trust anchor.
        path: PathBuf,
        /// rustls' reason.
        source: VerifierBuilderError,
    },
    /// Protocol versions refused by the provider (cannot happen with ring;
    /// kept so a provider change reports instead of panicking).
    #[error("TLS provider: {0}")]
    Provider(rustls::Error),
    /// CLI options given partly (Kea: all three or none).
    #[error("TLS needs --trust-anchor, --cert-file and --key-file together; {missing} is missing")]
    Incomplete {
        /// The missing option.
        missing: &'static str,
    },
    /// `--cert-required` given without the files it would apply to.
    #[error("--cert-required only applies with --trust-anchor, --cert-file and --key-file")]
    CertRequiredAlone,
    /// HA relationships configure this server's one listener differently.
    #[error(
        "this server's peer entries configure its listener differently in relationships {first} and {other} \
         (trust-anchor/cert-file/key-file/require-client-certs must agree)"
    )]
    Conflict {
        /// `this-server-name` of the first relationship.
        first: String,
        /// `this-server-name` of the disagreeing one.
        other: String,
    },
}

/// TLS for the control listener of a server without HA, with the keys of
/// Kea's control agent (`trust-anchor`, `cert-file`, `key-file`,
/// `cert-required`) as CLI options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlTls {
    /// `--trust-anchor`: CA file (or directory of CA files) that client
    /// certificates must chain to.
    pub trust_anchor: Option<PathBuf>,
    /// `--cert-file`: this server's certificate (PEM, chain allowed).
    pub cert_file: Option<PathBuf>,
    /// `--key-file`: its private key (PEM, unencrypted).
    pub key_file: Option<PathBuf>,
    /// `--cert-required`: demand a client certificate; `None` means Kea's
    /// default, true.
    pub cert_required: Option<bool>,
}

/// The listener's TLS settings before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// The three files.
    pub files: TlsFiles,
    /// Refuse clients without a certificate signed by the trust anchor.
    pub require_client_certs: bool,
    /// Where the settings came from, for the start-up log line.
    pub source: String,
}

/// A ready server side, what [`super::ApiState::with_tls`] takes.
#[derive(Clone)]
pub struct ServerTls {
    /// What it was built from.
    pub settings: ListenerTls,
    /// The rustls configuration.
    pub config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Which TLS the listener uses: the CLI options when given, else this
/// server's own HA peer entry (the same in every relationship), else
/// none. Reads no file; see [`server_config`].
pub fn listener_tls(cli: &ControlTls, cfg: &Config) -> Result<Option<ListenerTls>, TlsError> {
    match (&cli.trust_anchor, &cli.cert_file, &cli.key_file) {
        (Some(ca), Some(cert), Some(key)) => {
            return Ok(Some(ListenerTls {
                files: TlsFiles {
                    trust_anchor: ca.clone(),
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                },
                require_client_certs: cli.cert_required.unwrap_or(true),
                source: "command line".into(),
            }));
        }
        (None, None, None) if cli.cert_required.is_some() => {
            return Err(TlsError::CertRequiredAlone);
        }
        (None, None, None) => {}
        (ca, cert, _) => {
            let missing = if ca.is_none() {
                "--trust-anchor"
            } else if cert.is_none() {
                "--cert-file"
            } else {
                "--key-file"
            };
            return Err(TlsError::Incomplete { missing });
        }
    }
    let Some(ha) = cfg.ha() else {
        return Ok(None);
    };
    let mut chosen: Option<(&str, Option<ListenerTls>)> = None;
    for rel in ha.relationships() {
        let me = rel.this_server();
        let this = me.tls().map(|files| ListenerTls {
            files: files.clone(),
            require_client_certs: rel.require_client_certs(),
            source: format!("HA peer entry {:?}", me.name()),
        });
        match &chosen {
            None => chosen = Some((rel.this_server_name(), this)),
            Some((first, prev)) => {
                let same = match (prev, &this) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.files == b.files && a.require_client_certs == b.require_client_certs
                    }
                    _ => false,
                };
                if !same {
                    return Err(TlsError::Conflict {
                        first: (*first).to_owned(),
                        other: rel.this_server_name().to_owned(),
                    });
                }
            }
        }
    }
    Ok(chosen.and_then(|(_, t)| t))
}

/// Loads the files and builds the server side.
pub fn server_config(settings: ListenerTls) -> Result<ServerTls, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&settings.files.trust_anchor)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
    let verifier = if settings.require_client_certs {
        verifier
    } else {
        // A certificate, if sent, is still checked.
        verifier.allow_unauthenticated()
    }
    .build()
    .map_err(|source| TlsError::Verifier {
        path: settings.files.trust_anchor.clone(),
        source,
    })?;
    let (certs, key) = load_identity(&settings.files)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Identity {
            cert: settings.files.cert_file.clone(),
            key: settings.files.key_file.clone(),
            source,
        })?;
    Ok(ServerTls {
        settings,
        config: Arc::new(config),
    })
}

/// [`listener_tls`] then [`server_config`]: what the daemon calls.
pub fn listener_config(cli: &ControlTls, cfg: &Config) -> Result<Option<ServerTls>, TlsError> {
    listener_tls(cli, cfg)?.map(server_config).transpose()
}

/// Client side for talking to an HA peer: `files` of the peer's entry
/// (its trust anchor verifies the peer, our certificate and key are the
/// client identity). The same rustls as reqwest 0.12, so it goes into
/// `reqwest::ClientBuilder::use_preconfigured_tls` as is.
pub fn client_config(files: &TlsFiles) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&files.trust_anchor)?);
    let inner = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|source| TlsError::Verifier {
            path: files.trust_anchor.clone(),
            source,
        })?;
    let (certs, key) = load_identity(files)?;
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        .with_client_auth_cert(certs, key)
        .map_err(|source| TlsError::Identity {
            cert: files.cert_file.clone(),
            key: files.key_file.clone(),
            source,
        })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchor: a PEM file, or a directory whose files are read in
/// name order (OpenSSL's hashed links just repeat certificates; files with
/// no certificate in them are skipped).
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    const KEY: &str = "trust-anchor";
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsError::Read {
            key: KEY,
            path: p.to_owned(),
            source,
        })
    };
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        key: KEY,
        path: path.to_owned(),
        source,
    })?;
    let mut certs = Vec::new();
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .and_then(|d| d.map(|e| e.map(|e| e.path())).collect())
            .map_err(|source| TlsError::Read {
                key: KEY,
                path: path.to_owned(),
                source,
            })?;
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            // Not every file in a CA directory is a certificate.
            certs.extend(CertificateDer::pem_slice_iter(&read(f)?).filter_map(Result::ok));
        }
    } else {
        certs = parse_certs(KEY, path, &read(path)?)?;
    }
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|source| TlsError::TrustAnchor {
            path: path.to_owned(),
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            key: KEY,
            path: path.to_owned(),
            detail: None,
        });
    }
    Ok(roots)
}

fn parse_certs(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NoCertificate {
            key,
            path: path.to_owned(),
            detail: Some(e.to_string()),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key,
            path: path.to_owned(),
            detail: None,
        });
    }
    Ok(certs)
}

fn load_identity(
    files: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let pem = std::fs::read(&files.cert_file).map_err(|source| TlsError::Read {
        key: "cert-file",
        path: files.cert_file.clone(),
        source,
    })?;
    let certs = parse_certs("cert-file", &files.cert_file, &pem)?;
    let pem = std::fs::read(&files.key_file).map_err(|source| TlsError::Read {
        key: "key-file",
        path: files.key_file.clone(),
        source,
    })?;
    // The parser's error is dropped on purpose: nothing derived from a key
    // file's bytes goes into a message.
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoKey {
        path: files.key_file.clone(),
    })?;
    Ok((certs, key))
}

/// Chain, validity and signature checks of the webpki verifier, without
/// the name check (see the module doc).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Longest a client may take to finish its handshake; a silent or plain
/// HTTP client is dropped after it instead of holding a task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; more connections wait in the kernel's
/// accept queue.
const MAX_HANDSHAKES: usize = 256;

/// A TCP listener whose connections come out TLS-terminated, for
/// `axum::serve`. Handshakes run in their own tasks so that one slow or
/// hostile client cannot stall the others; failures are logged (peer and
/// rustls' reason, nothing the client sent) and the connection dropped.
pub(crate) struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; stops when `shutdown` fires.
    pub(crate) fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        shutdown: CancellationToken,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(16);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx, shutdown));
        Ok(TlsListener { incoming, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning (as
                    // axum's own TCP listener does).
                    tracing::warn!(error = %e, "control API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let done = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
            };
            match done {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "control API: TLS handshake failed")
                }
                Err(_) => tracing::warn!(%peer, "control API: TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(c) => c,
            // The accept loop ended (shutdown): nothing more will come, and
            // axum's graceful shutdown is what ends `serve`.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
