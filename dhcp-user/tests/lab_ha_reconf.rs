//! HA changed on a running venus pair, as an operator changes it: through
//! SIGHUP, `config-reload` and `config-set`. Each change of a
//! relationship (timers, mode, peer URLs, basic auth, TLS files and their
//! contents) restarts it from `waiting`: it resyncs and the pair returns
//! to its normal state, with clients served. A config that cannot apply
//! is refused whole, with Kea's log lines, and the pair goes on.

mod common;

use std::time::Duration;

use common::{T, Xdhcpd, pki::pki};
use lab::{KeaConfig, Lab, venus};
use serde_json::{Value, json};

/// waiting → syncing → ready → normal on both sides.
const HA_UP: Duration = Duration::from_secs(30);
const BASE: &str = "/Dhcp4/hooks-libraries/1/parameters/high-availability/0";

/// How a new config reaches the server.
#[derive(Clone, Copy, Debug)]
enum Via {
    Sighup,
    Reload,
    Set,
}

/// Puts `cfg` (with the server's lease file) in force on `x` via `via`;
/// `auth` are the credentials the control listener requires now. Returns
/// the answer (empty for SIGHUP).
fn apply(lab: &Lab, host: &str, x: &mut Xdhcpd, mut cfg: KeaConfig, via: Via, auth: Option<&str>) -> String {
    cfg.lease_file(&x.leases).unwrap();
    let dir = lab.host_dir(host).unwrap();
    if let Via::Sighup | Via::Reload = via {
        cfg.write(&dir.join("xdhcpd.json")).unwrap();
    }
    let body = match via {
        Via::Sighup => {
            x.process.signal(libc::SIGHUP).unwrap();
            return String::new();
        }
        Via::Reload => json!({ "command": "config-reload" }),
        Via::Set => json!({ "command": "config-set", "arguments": cfg.value() }),
    };
    let file = dir.join("command.json");
    std::fs::write(&file, body.to_string()).unwrap();
    let data = format!("@{}", file.display());
    let mut argv = vec!["curl", "-sS", "--max-time", "10", "-H", "Content-Type: application/json", "--data-binary", &data];
    if let Some(a) = auth {
        argv.extend(["-u", a]);
    }
    let control = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    argv.push(&control);
    lab.run(host, &argv).unwrap().stdout
}

/// The answer's result code.
fn result(answer: &str) -> i64 {
    let v: Value = serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    let v = if v.is_array() { v[0].clone() } else { v };
    v["result"].as_i64().unwrap_or_else(|| panic!("no result in {answer}"))
}

fn logs(xs: &[&Xdhcpd]) -> String {
    xs.iter().map(|x| format!("--- {} ---\n{}", x.process.host(), x.process.log())).collect()
}

/// The pair's configs with `edit` made to each relationship entry.
fn both(edit: impl Fn(&mut KeaConfig)) -> [KeaConfig; 2] {
    venus::SERVERS.map(|h| {
        let mut c = venus::kea_config(h).unwrap();
        edit(&mut c);
        c
    })
}

fn load_balancing(c: &mut KeaConfig) {
    c.set(&format!("{BASE}/mode"), json!("load-balancing")).unwrap();
    c.set(&format!("{BASE}/peers/1/role"), json!("secondary")).unwrap();
}

fn port(c: &mut KeaConfig, port: u16) {
    for (i, ip) in [venus::PRIMARY_HA, venus::STANDBY_HA].iter().enumerate() {
        c.set(&format!("{BASE}/peers/{i}/url"), json!(format!("http://{ip}:{port}/"))).unwrap();
    }
}

fn basic_auth(c: &mut KeaConfig) {
    for (i, peer) in venus::SERVERS.iter().enumerate() {
        c.set(&format!("{BASE}/peers/{i}/basic-auth-user"), json!(peer)).unwrap();
        c.set(&format!("{BASE}/peers/{i}/basic-auth-password"), json!(format!("pw-of-{peer}"))).unwrap();
    }
}

/// HTTP status of an unauthenticated partner command to `url` from the
/// primary.
fn status_of(lab: &Lab, url: &str) -> String {
    let body = r#"{"command":"ha-heartbeat","service":["dhcp4"]}"#;
    let argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-d", body, url];
    lab.run(venus::PRIMARY, &argv).map(|o| o.stdout).unwrap_or_default()
}

#[test]
fn timers_mode_urls_and_basic_auth_change_live() {
    let lab = Lab::up(venus::topology(4).unwrap()).unwrap();
    let mut p = Xdhcpd::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap(), &[]);
    let mut s = Xdhcpd::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap(), &[]);
    p.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let obtain = |n: usize, xs: &[&Xdhcpd]| {
        lab.dhclient(&venus::client(n)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(xs)))
    };

    // A timer, by SIGHUP on the standby: it restarts and resyncs; the
    // primary serves throughout.
    let [_, mut timer] = both(|_| {});
    timer.set(&format!("{BASE}/max-response-delay"), json!(4000)).unwrap();
    apply(&lab, venus::STANDBY, &mut s, timer, Via::Sighup, None);
    s.process.wait_for_log("dynamic server reconfiguration succeeded with file", T).unwrap();
    assert_eq!(obtain(1, &[&p, &s]).server_id, venus::PRIMARY_LAN);
    s.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    let l = obtain(2, &[&p, &s]);
    assert!(s.last_row(l.address).is_some(), "not replicated after the standby's restart\n{}", logs(&[&s]));

    // The mode, by config-set on both: hot-standby → load-balancing.
    let cfgs = both(load_balancing);
    for ((host, x), cfg) in [(venus::PRIMARY, &mut p), (venus::STANDBY, &mut s)].into_iter().zip(cfgs) {
        let a = apply(&lab, host, x, cfg, Via::Set, None);
        assert_eq!(result(&a), 0, "{host}: {a}");
    }
    p.wait_ha("lobezno", "load-balancing", 1, HA_UP);
    s.wait_ha("tormenta", "load-balancing", 1, HA_UP);
    obtain(3, &[&p, &s]);

    // The peer URLs, by config-reload on both: the HA listeners move.
    let cfgs = both(|c| {
        load_balancing(c);
        port(c, 8011);
    });
    for ((host, x), cfg) in [(venus::PRIMARY, &mut p), (venus::STANDBY, &mut s)].into_iter().zip(cfgs) {
        assert_eq!(result(&apply(&lab, host, x, cfg, Via::Reload, None)), 0, "{host}");
    }
    p.wait_ha("lobezno", "load-balancing", 2, HA_UP);
    s.wait_ha("tormenta", "load-balancing", 2, HA_UP);
    let (old, new) = (format!("http://{}:8000/", venus::STANDBY_HA), format!("http://{}:8011/", venus::STANDBY_HA));
    assert_eq!(status_of(&lab, &new), "200");
    assert_ne!(status_of(&lab, &old), "200", "the old HA listener still answers");

    // Basic auth on both: heartbeats authenticate, strangers get 401.
    let cfgs = both(|c| {
        load_balancing(c);
        port(c, 8011);
        basic_auth(c);
    });
    for ((host, x), cfg) in [(venus::PRIMARY, &mut p), (venus::STANDBY, &mut s)].into_iter().zip(cfgs) {
        assert_eq!(result(&apply(&lab, host, x, cfg, Via::Reload, None)), 0, "{host}");
    }
    p.wait_ha("lobezno", "load-balancing", 3, HA_UP);
    s.wait_ha("tormenta", "load-balancing", 3, HA_UP);
    assert_eq!(status_of(&lab, &new), "401");
    obtain(4, &[&p, &s]);

    // Refused as a whole, with the key named: nothing changes.
    let restarts = |x: &Xdhcpd| x.process.log().matches("HA relationship(s) stopped").count();
    let before = restarts(&p);
    assert_eq!(before, 3, "lobezno's relationship restarts (mode, URLs, basic auth):\n{}", p.process.log());
    let [mut bad, _] = both(|c| {
        load_balancing(c);
        port(c, 8011);
        basic_auth(c);
    });
    bad.set(&format!("{BASE}/heartbeat-delay"), json!(2000)).unwrap();
    bad.set("/Dhcp4/interfaces-config/interfaces", json!(["eth0", "lo"])).unwrap();
    let a = apply(&lab, venus::PRIMARY, &mut p, bad, Via::Set, Some("lobezno:pw-of-lobezno"));
    assert_eq!(result(&a), 1, "{a}");
    assert!(a.contains("Dhcp4.interfaces-config.interfaces") && a.contains("Nothing was changed"), "{a}");
    // A file that does not load, by SIGHUP: Kea's lines, the old config stays.
    let dir = lab.host_dir(venus::PRIMARY).unwrap();
    std::fs::write(dir.join("xdhcpd.json"), "{ \"Dhcp4\": { \"valid-lifetime\": \"x\" } }").unwrap();
    p.process.signal(libc::SIGHUP).unwrap();
    p.process.wait_for_log("dynamic server reconfiguration failed with file", T).unwrap();
    let log = p.process.log();
    assert!(log.contains("DHCP4_CONFIG_LOAD_FAIL") && log.contains("configuration error using file"), "{log}");
    assert_eq!(restarts(&p), before, "a refused config restarted lobezno's relationship:\n{log}");
    let renewed = lab.dhclient(&venus::client(4)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&p, &s])));
    assert!(venus::in_pool(renewed.address));
    p.stop();
    s.stop();
}

#[test]
fn tls_turned_on_and_certificates_rotated_live() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let mut p = Xdhcpd::start(&lab, venus::PRIMARY, &venus::kea_config(venus::PRIMARY).unwrap(), &[]);
    let mut s = Xdhcpd::start(&lab, venus::STANDBY, &venus::kea_config(venus::STANDBY).unwrap(), &[]);
    p.wait_ha("lobezno", "hot-standby", 1, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 1, HA_UP);
    let files = pki(lab.dir());
    let tls = |host: &str, f: &(String, String, String)| {
        let mut c = venus::kea_config(host).unwrap();
        for (k, v) in [("trust-anchor", &f.0), ("cert-file", &f.1), ("key-file", &f.2)] {
            c.set(&format!("{BASE}/{k}"), json!(v)).unwrap();
        }
        for (i, ip) in [venus::PRIMARY_HA, venus::STANDBY_HA].iter().enumerate() {
            c.set(&format!("{BASE}/peers/{i}/url"), json!(format!("https://{ip}:8000/"))).unwrap();
        }
        c
    };
    let replicated = |n: usize, p: &Xdhcpd, s: &Xdhcpd, what: &str| {
        let l = lab.dhclient(&venus::client(n)).unwrap().obtain(T).unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[p, s])));
        assert!(s.last_row(l.address).is_some(), "{what}: not replicated\n{}", logs(&[p, s]));
    };

    // Plain HTTP → HTTPS with client certificates, by config-reload.
    for (i, (host, x)) in [(venus::PRIMARY, &mut p), (venus::STANDBY, &mut s)].into_iter().enumerate() {
        assert_eq!(result(&apply(&lab, host, x, tls(host, &files[i]), Via::Reload, None)), 0, "{host}");
    }
    p.wait_ha("lobezno", "hot-standby", 2, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 2, HA_UP);
    let url = format!("http://{}:8000/", venus::STANDBY_HA);
    assert_ne!(status_of(&lab, &url), "200", "plain HTTP still answered after the switch to TLS");
    replicated(1, &p, &s, "over HTTPS");

    // New certificates from a new CA at the same paths, by SIGHUP: the
    // contents changed, so the relationship restarts with them.
    let again = pki(lab.dir());
    assert_eq!(again, files, "same paths");
    for (i, (host, x)) in [(venus::PRIMARY, &mut p), (venus::STANDBY, &mut s)].into_iter().enumerate() {
        apply(&lab, host, x, tls(host, &files[i]), Via::Sighup, None);
    }
    p.wait_ha("lobezno", "hot-standby", 3, HA_UP);
    s.wait_ha("tormenta", "hot-standby", 3, HA_UP);
    replicated(2, &p, &s, "after the rotation");
    p.stop();
    s.stop();
}
