//! Issue #20, "nobody in who does not belong": the venus HA pair with its
//! peer URLs on the LAN, no basic auth and no TLS (as most Kea HA configs
//! in the field). From a DHCP client's namespace, administrative commands
//! posted to the primary's peer listener are refused (403, nothing
//! changes, the server keeps running), while the pair still replicates;
//! the same commands work on the control address. Both servers warn at
//! start-up that their HA listener is open. Root and the lab's tools are
//! required.

use std::time::Duration;

mod common;

use common::{T, Xdhcpd};
use lab::{Lab, venus};
use serde_json::Value;

const HA_UP: Duration = Duration::from_secs(30);

fn post(lab: &Lab, host: &str, url: &str, body: &str) -> (String, String) {
    let out = lab
        .run(host, &["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", "-d", body, url])
        .unwrap_or_else(|e| panic!("curl {url}: {e:#}"));
    let (body, code) = out.stdout.rsplit_once('\n').unwrap();
    (code.to_owned(), body.to_owned())
}

#[test]
fn peer_listener_refuses_administrative_commands_from_the_lan() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let lan_url = |ip| format!("http://{ip}:8000/");
    let mut xs = Vec::new();
    for host in venus::SERVERS {
        let mut cfg = venus::kea_config(host).unwrap();
        cfg.peer_url("lobezno", &lan_url(venus::PRIMARY_LAN)).unwrap();
        cfg.peer_url("tormenta", &lan_url(venus::STANDBY_LAN)).unwrap();
        xs.push(Xdhcpd::start(&lab, host, &cfg, &["--no-xdp"]));
    }
    xs[0].wait_ha("lobezno", "hot-standby", 1, HA_UP);
    xs[1].wait_ha("tormenta", "hot-standby", 1, HA_UP);
    for x in &xs {
        let log = x.process.log();
        assert!(log.contains("has neither basic auth nor TLS"), "no open-listener warning:\n{log}");
    }

    let client = venus::client(1);
    let l = lab.dhclient(&client).unwrap().obtain(T).unwrap();
    assert!(xs[1].last_row(l.address).is_some(), "lease not replicated");

    // From the client: the peer listener refuses what a partner never sends.
    let peer = lan_url(venus::PRIMARY_LAN);
    for cmd in ["lease4-wipe", "shutdown", "config-write", "lease4-add"] {
        let (code, body) = post(&lab, &client, &peer, &format!(r#"{{"command": "{cmd}", "service": ["dhcp4"]}}"#));
        assert_eq!(code, "403", "{cmd}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"], 403, "{body}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(xs[0].process.is_running(), "shutdown obeyed on the peer listener:\n{}", xs[0].process.log());
    assert!(xs[0].last_row(l.address).is_some_and(|r| r[3] != "0"), "lease wiped from the peer listener");
    // What a partner sends is still answered there.
    let (code, body) = post(&lab, &client, &peer, r#"{"command": "ha-heartbeat", "service": ["dhcp4"]}"#);
    assert_eq!(code, "200", "{body}");

    // The control address (loopback in the server's namespace) runs them.
    let control = format!("http://{}/", dhcp_user::api::DEFAULT_CONTROL_ADDR);
    let get = format!(r#"{{"command": "lease4-get", "arguments": {{"ip-address": "{}"}}}}"#, l.address);
    let (code, body) = post(&lab, venus::PRIMARY, &control, &get);
    assert_eq!(code, "200", "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"], 0, "{body}");

    // The pair still replicates after all that.
    let l2 = lab.dhclient(&venus::client(2)).unwrap().obtain(T).unwrap();
    assert!(xs[1].last_row(l2.address).is_some(), "second lease not replicated:\n{}", xs[1].process.log());
    for x in &mut xs {
        x.stop();
    }
}
