//! The HA pair over HTTPS with client certificates and basic auth, set the
//! way Kea sets them: `trust-anchor`/`cert-file`/`key-file` on the
//! relationship (this server's certificate, used as server and client
//! certificate), `https://` peer URLs, `basic-auth-user`/`-password` per
//! peer (sent to that peer, required by it). Certificates are made here.

mod common;

use std::time::Duration;

use common::{T, Xdhcpd, pki::pki};
use lab::{Lab, venus};
use serde_json::json;

const HA_UP: Duration = Duration::from_secs(30);

fn config(host: &str, files: &(String, String, String)) -> lab::KeaConfig {
    let mut cfg = venus::kea_config(host).unwrap();
    let base = "/Dhcp4/hooks-libraries/1/parameters/high-availability/0";
    cfg.set(&format!("{base}/trust-anchor"), json!(files.0)).unwrap();
    cfg.set(&format!("{base}/cert-file"), json!(files.1)).unwrap();
    cfg.set(&format!("{base}/key-file"), json!(files.2)).unwrap();
    cfg.set(&format!("{base}/require-client-certs"), json!(true)).unwrap();
    for (i, (peer, ip)) in [(venus::PRIMARY, venus::PRIMARY_HA), (venus::STANDBY, venus::STANDBY_HA)].iter().enumerate() {
        cfg.set(&format!("{base}/peers/{i}/url"), json!(format!("https://{ip}:8000/"))).unwrap();
        cfg.set(&format!("{base}/peers/{i}/basic-auth-user"), json!(peer)).unwrap();
        cfg.set(&format!("{base}/peers/{i}/basic-auth-password"), json!(format!("pw-of-{peer}"))).unwrap();
    }
    cfg
}

#[test]
fn ha_over_https_with_client_certificates_and_basic_auth() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let files = pki(lab.dir());
    let mut primary = Xdhcpd::start(&lab, venus::PRIMARY, &config(venus::PRIMARY, &files[0]), &[]);
    let mut standby = Xdhcpd::start(&lab, venus::STANDBY, &config(venus::STANDBY, &files[1]), &[]);
    primary.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    standby.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let l = lab.dhclient(&venus::client(1)).unwrap().obtain(T).unwrap();
    assert!(standby.last_row(l.address).is_some(), "lease not replicated over HTTPS");

    // Without a client certificate the peer listener refuses; with one
    // but without credentials it answers 401 and changes nothing.
    let url = format!("https://{}:8000/", venus::STANDBY_HA);
    let body = r#"{"command": "lease4-wipe", "service": ["dhcp4"]}"#;
    let no_cert = lab
        .run(venus::PRIMARY, &["curl", "-sS", "--max-time", "5", "--cacert", &files[0].0, "-d", body, &url])
        .map(|o| o.stdout)
        .unwrap_or_default();
    assert!(!no_cert.contains("result"), "answered without a client certificate: {no_cert}");
    let no_auth = lab
        .run(
            venus::PRIMARY,
            &["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert", &files[0].0,
              "--cert", &files[0].1, "--key", &files[0].2, "-d", body, &url],
        )
        .unwrap()
        .stdout;
    assert_eq!(no_auth.trim(), "401");
    assert!(standby.last_row(l.address).is_some_and(|r| r[3] != "0"), "lease wiped by an unauthenticated request");
    for p in [&primary, &standby] {
        assert!(!p.process.log().contains("pw-of-"), "a password reached the log");
    }
}
