//! HTTPS with client certificates on the real control listener (127.0.0.1,
//! port 0): certificates made here with rcgen, clients built the way the
//! HA peer client is (reqwest + `api::tls::client_config`).

mod api_support;

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use api_support::Api;
use base64::Engine as _;
use dhcp_user::api::tls::{
    ControlTls, ListenerTls, ServerTls, TlsError, TlsFiles, client_config, listener_config,
    listener_tls, server_config,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

/// A CA and what it signed, as PEM files in one directory.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    file: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, cert.pem()).unwrap();
        Ca { cert, key, file }
    }

    /// A leaf for `sans` (IP addresses or names); returns its TLS files.
    fn issue(&self, dir: &Path, name: &str, sans: &[&str]) -> TlsFiles {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        TlsFiles {
            trust_anchor: self.file.clone(),
            cert_file,
            key_file,
        }
    }
}

/// Server and client certificates from one CA, plus an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    other_ca: Ca,
    server: TlsFiles,
    client: TlsFiles,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ha-ca");
    let other_ca = Ca::new(dir.path(), "other-ca");
    let server = ca.issue(dir.path(), "server1", &["127.0.0.1"]);
    let client = ca.issue(dir.path(), "server2", &["127.0.0.2"]);
    Pki {
        dir,
        ca,
        other_ca,
        server,
        client,
    }
}

fn server_tls(files: &TlsFiles, require: bool) -> ServerTls {
    server_config(ListenerTls {
        files: files.clone(),
        require_client_certs: require,
        source: "test".into(),
    })
    .unwrap()
}

/// A client trusting `files.trust_anchor` and presenting `files`' cert.
fn client(files: &TlsFiles) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(files).unwrap())
        .tls_info(true)
        .build()
        .unwrap()
}

/// A client that trusts `trust_anchor` but has no certificate of its own.
fn anonymous_client(trust_anchor: &Path) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(trust_anchor).unwrap();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .build()
        .unwrap()
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    body: &Value,
    auth: Option<&str>,
) -> reqwest::Result<(u16, Value)> {
    let mut req = c.post(url).json(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

fn url(addr: SocketAddr) -> String {
    format!("https://{addr}/")
}

/// The full error chain (reqwest hides rustls' reason in its sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[tokio::test]
async fn client_certificate_required() {
    let pki = pki();
    let api = Api::with_tls(None, server_tls(&pki.server, true));
    let addr = api.listen().await;
    let status = json!({"command": "status-get", "service": ["dhcp4"]});

    // Good certificate: Kea framing works over HTTPS.
    let good = client(&pki.client);
    let (code, v) = post(&good, &url(addr), &status, None).await.unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v[0]["result"], 0, "{v}");
    assert!(v[0]["arguments"]["uptime"].is_u64(), "{v}");

    // Metrics and the page are behind the same handshake.
    let r = good
        .get(format!("https://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("xdhcp_dhcp_enabled"));

    // No client certificate: the handshake fails, nothing runs.
    let before = api.fingerprint();
    let add = json!({"command": "lease4-add", "arguments": {"ip-address": "192.0.2.11", "hw-address": "02:00:00:00:00:01"}});
    let e = post(&anonymous_client(&pki.ca.file), &url(addr), &add, None)
        .await
        .expect_err("no client certificate must be refused");
    assert!(e.is_connect() || e.is_request(), "{}", chain(&e));

    // A certificate from another CA: refused too.
    let stranger = pki
        .other_ca
        .issue(pki.dir.path(), "stranger", &["127.0.0.9"]);
    let stranger = TlsFiles {
        trust_anchor: pki.ca.file.clone(), // it trusts us; we do not trust it
        ..stranger
    };
    let e = post(&client(&stranger), &url(addr), &add, None)
        .await
        .expect_err("a certificate from another CA must be refused");
    assert!(e.is_connect() || e.is_request(), "{}", chain(&e));

    // Plain HTTP on the HTTPS port: no answer to it either.
    let plain = reqwest::Client::new();
    let r = plain
        .post(format!("http://{addr}/"))
        .json(&add)
        .send()
        .await;
    match r {
        Err(_) => {}
        Ok(resp) => panic!("plain HTTP answered: {}", resp.status()),
    }
    assert_eq!(api.fingerprint(), before, "refused clients changed state");
    assert!(api.leases().is_empty());

    // The good client still can, and its change lands.
    let (code, v) = post(&good, &url(addr), &add, None).await.unwrap();
    assert_eq!((code, &v["result"]), (200, &json!(0)), "{v}");
    assert_eq!(api.leases().len(), 1);
}

#[tokio::test]
async fn client_verifies_the_server_against_its_trust_anchor() {
    let pki = pki();
    let api = Api::with_tls(None, server_tls(&pki.server, true));
    let addr = api.listen().await;
    let status = json!({"command": "status-get"});

    // Trusting another CA: our client refuses the server.
    let wrong_anchor = TlsFiles {
        trust_anchor: pki.other_ca.file.clone(),
        ..pki.client.clone()
    };
    let e = post(&client(&wrong_anchor), &url(addr), &status, None)
        .await
        .expect_err("server from an untrusted CA accepted");
    assert!(
        chain(&e).contains("UnknownIssuer") || chain(&e).contains("unknown issuer"),
        "{}",
        chain(&e)
    );

    // The server's certificate names 127.0.0.1; reached as localhost it is
    // still accepted (the chain is what counts, as for Kea's client).
    let port = addr.port();
    let (code, v) = post(
        &client(&pki.client),
        &format!("https://localhost:{port}/"),
        &status,
        None,
    )
    .await
    .unwrap();
    assert_eq!((code, &v["result"]), (200, &json!(0)), "{v}");
}

#[tokio::test]
async fn client_certificate_optional() {
    let pki = pki();
    let api = Api::with_tls(None, server_tls(&pki.server, false));
    let addr = api.listen().await;
    let status = json!({"command": "status-get"});
    let (code, _) = post(&anonymous_client(&pki.ca.file), &url(addr), &status, None)
        .await
        .unwrap();
    assert_eq!(
        code, 200,
        "require-client-certs false: no certificate is fine"
    );
    // …but a certificate that is sent must still be valid.
    let stranger = TlsFiles {
        trust_anchor: pki.ca.file.clone(),
        ..pki
            .other_ca
            .issue(pki.dir.path(), "stranger", &["127.0.0.9"])
    };
    post(&client(&stranger), &url(addr), &status, None)
        .await
        .expect_err("an invalid client certificate must still be refused");
}

/// Collects every log line (tracing and the `log` crate, which rustls
/// uses) at TRACE level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn basic_auth_on_top_of_tls_and_no_credentials_in_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test binary's only global subscriber");

    const PASSWORD: &str = "tls-and-basic-s3cret";
    let pki = pki();
    let api = Api::with_tls(Some(("kea", PASSWORD)), server_tls(&pki.server, true));
    let addr = api.listen().await;
    let c = client(&pki.client);
    let basic = |up: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(up)
        )
    };
    let add = json!({"command": "lease4-add", "arguments": {"ip-address": "192.0.2.12", "hw-address": "02:00:00:00:00:02"}});
    let before = api.fingerprint();
    for auth in [
        None,
        Some(basic("kea:wrong")),
        Some(basic(&format!("other:{PASSWORD}"))),
    ] {
        let (code, v) = post(&c, &url(addr), &add, auth.as_deref()).await.unwrap();
        assert_eq!(code, 401, "{auth:?}");
        assert_eq!(v, json!({"result": 401, "text": "Unauthorized"}));
    }
    assert_eq!(api.fingerprint(), before, "a 401 changed something");
    let good = basic(&format!("kea:{PASSWORD}"));
    let (code, v) = post(&c, &url(addr), &add, Some(&good)).await.unwrap();
    assert_eq!((code, &v["result"]), (200, &json!(0)), "{v}");
    assert_eq!(api.leases().len(), 1);
    // A refused handshake is logged too (and must not leak anything).
    let _ = post(
        &anonymous_client(&pki.ca.file),
        &url(addr),
        &add,
        Some(&good),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = logs.text();
    assert!(
        text.contains("request without valid credentials refused"),
        "the refusals must be logged (capture works):\n{text}"
    );
    assert!(text.contains("TLS handshake failed"), "{text}");
    for secret in [
        PASSWORD.to_owned(),
        good.clone(),
        good.trim_start_matches("Basic ").to_owned(),
        basic("kea:wrong").trim_start_matches("Basic ").to_owned(),
    ] {
        assert!(!text.contains(&secret), "{secret:?} in the logs:\n{text}");
    }
    let key = std::fs::read_to_string(&pki.server.key_file).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!text.contains(key_body), "key material in the logs");
}

/// A Kea `Dhcp4` config with an HA pair; `rel`/`me` are extra JSON
/// members for the relationship and this server's peer entry (`https` URLs
/// when they set a trust anchor, as Kea requires).
fn ha_config(dir: &Path, rel: &str, me: &str) -> dhcp_user::config::Config {
    let scheme = if rel.contains("trust-anchor") || me.contains("trust-anchor") {
        "https"
    } else {
        "http"
    };
    let text = format!(
        r#"{{ "Dhcp4": {{
        "interfaces-config": {{ "interfaces": ["eth0"] }},
        "lease-database": {{ "type": "memfile", "persist": false, "name": "{lease}" }},
        "valid-lifetime": 3600,
        "hooks-libraries": [
          {{ "library": "/usr/lib/kea/hooks/libdhcp_lease_cmds.so" }},
          {{ "library": "/usr/lib/kea/hooks/libdhcp_ha.so", "parameters": {{ "high-availability": [ {{
            "this-server-name": "server1", "mode": "hot-standby" {rel},
            "peers": [
              {{ "name": "server1", "url": "{scheme}://127.0.0.1:8000/", "role": "primary" {me} }},
              {{ "name": "server2", "url": "{scheme}://127.0.0.2:8000/", "role": "standby" }} ] }} ] }} }} ],
        "subnet4": [ {{ "id": 1, "subnet": "192.0.2.0/24", "pools": [ {{ "pool": "192.0.2.10-192.0.2.20" }} ] }} ]
    }} }}"#,
        lease = dir.join("l.csv").display()
    );
    dhcp_user::config::parse(&text, "test").unwrap_or_else(|e| panic!("{e}"))
}

fn files_json(f: &TlsFiles) -> String {
    format!(
        r#", "trust-anchor": "{}", "cert-file": "{}", "key-file": "{}""#,
        f.trust_anchor.display(),
        f.cert_file.display(),
        f.key_file.display()
    )
}

#[tokio::test]
async fn ha_peer_entry_configures_the_listener() {
    let pki = pki();
    // Relationship-level files (the client pair's), overridden for this
    // server's own entry by its own cert and key; client certs optional.
    let own = &pki.server;
    let cfg = ha_config(
        pki.dir.path(),
        &format!(
            r#"{}, "require-client-certs": false"#,
            files_json(&pki.client)
        ),
        &format!(
            r#", "cert-file": "{}", "key-file": "{}""#,
            own.cert_file.display(),
            own.key_file.display()
        ),
    );
    let settings = listener_tls(&ControlTls::default(), &cfg).unwrap().unwrap();
    assert_eq!(settings.files, *own);
    assert!(!settings.require_client_certs);
    assert!(settings.source.contains("server1"), "{}", settings.source);

    let served = listener_config(&ControlTls::default(), &cfg)
        .unwrap()
        .unwrap();
    let api = Api::with_tls(None, served);
    let addr = api.listen().await;
    let r = anonymous_client(&pki.ca.file)
        .post(url(addr))
        .json(&json!({"command": "status-get"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "require-client-certs false honoured");
    // The per-peer certificate is the one served.
    let r = client(&pki.client)
        .post(url(addr))
        .json(&json!({"command": "status-get"}))
        .send()
        .await
        .unwrap();
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .unwrap()
        .to_vec();
    let pem = std::fs::read(&own.cert_file).unwrap();
    let expected: rustls::pki_types::CertificateDer =
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    assert_eq!(der, expected.as_ref());

    // Default require-client-certs is true.
    let cfg = ha_config(pki.dir.path(), &files_json(own), "");
    assert!(
        listener_tls(&ControlTls::default(), &cfg)
            .unwrap()
            .unwrap()
            .require_client_certs
    );
    // No TLS in the HA config: plain HTTP.
    let cfg = ha_config(pki.dir.path(), "", "");
    assert!(
        listener_tls(&ControlTls::default(), &cfg)
            .unwrap()
            .is_none()
    );
}

#[test]
fn cli_options_like_the_control_agent() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let plain = dhcp_user::config::parse(
        &api_support::config_text(&dir.path().join("l.csv"), false),
        "test",
    )
    .unwrap();
    assert!(
        listener_tls(&ControlTls::default(), &plain)
            .unwrap()
            .is_none()
    );

    let all = ControlTls {
        trust_anchor: Some(pki.ca.file.clone()),
        cert_file: Some(pki.server.cert_file.clone()),
        key_file: Some(pki.server.key_file.clone()),
        cert_required: None,
    };
    let s = listener_tls(&all, &plain).unwrap().unwrap();
    assert!(s.require_client_certs, "cert-required defaults to true");
    assert_eq!(s.files, pki.server);
    let s = listener_tls(
        &ControlTls {
            cert_required: Some(false),
            ..all.clone()
        },
        &plain,
    )
    .unwrap()
    .unwrap();
    assert!(!s.require_client_certs);

    let e = listener_tls(
        &ControlTls {
            key_file: None,
            ..all.clone()
        },
        &plain,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            TlsError::Incomplete {
                missing: "--key-file"
            }
        ),
        "{e}"
    );
    let e = listener_tls(
        &ControlTls {
            cert_required: Some(true),
            ..ControlTls::default()
        },
        &plain,
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::CertRequiredAlone), "{e}");

    // The CLI wins over the HA peer entry.
    let ha = ha_config(pki.dir.path(), &files_json(&pki.client), "");
    assert_eq!(listener_tls(&all, &ha).unwrap().unwrap().files, pki.server);
}

#[test]
fn file_errors_name_the_key_and_never_quote_a_key_file() {
    let pki = pki();
    let missing = TlsFiles {
        cert_file: pki.dir.path().join("nope.crt"),
        ..pki.server.clone()
    };
    let e = server_config(ListenerTls {
        files: missing,
        require_client_certs: true,
        source: "test".into(),
    })
    .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("cert-file ") && m.contains("nope.crt"), "{m}");

    // A key file that holds something else (here: a secret-looking text).
    let bad_key = pki.dir.path().join("bad.key");
    std::fs::write(
        &bad_key,
        "-----BEGIN NOTAKEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END NOTAKEY-----\n",
    )
    .unwrap();
    let e = client_config(&TlsFiles {
        key_file: bad_key,
        ..pki.client.clone()
    })
    .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("key-file ") && !m.contains("c2VjcmV0"), "{m}");

    // Key and certificate that do not belong together.
    let e = server_config(ListenerTls {
        files: TlsFiles {
            key_file: pki.client.key_file.clone(),
            ..pki.server.clone()
        },
        require_client_certs: true,
        source: "test".into(),
    })
    .unwrap_err();
    assert!(matches!(e, TlsError::Identity { .. }), "{e}");

    // A trust anchor with no certificate in it.
    let e = client_config(&TlsFiles {
        trust_anchor: pki.client.key_file.clone(),
        ..pki.client.clone()
    })
    .unwrap_err();
    assert!(e.to_string().starts_with("trust-anchor "), "{e}");
}

#[tokio::test]
async fn trust_anchor_directory() {
    let pki = pki();
    let cadir = pki.dir.path().join("cadir");
    std::fs::create_dir(&cadir).unwrap();
    std::fs::copy(&pki.other_ca.file, cadir.join("a-other.pem")).unwrap();
    std::fs::copy(&pki.ca.file, cadir.join("b-ours.pem")).unwrap();
    std::fs::write(cadir.join("README"), "not a certificate\n").unwrap();
    let files = TlsFiles {
        trust_anchor: cadir,
        ..pki.server.clone()
    };
    let api = Api::with_tls(None, server_tls(&files, true));
    let addr = api.listen().await;
    let (code, _) = post(
        &client(&pki.client),
        &url(addr),
        &json!({"command": "status-get"}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(code, 200);
}
