//! End to end in the `venus` lab: xdhcpd in lobezno with its control
//! listener on its LAN address; a real dhclient gets a lease; curl, run in
//! a client's namespace, sees it through the Kea command API, then shuts
//! the daemon down with the `shutdown` command. Root and the lab's tools
//! are required (CI has both).

use std::time::Duration;

mod common;

use common::Xdhcpd;
use lab::{Lab, venus};
use serde_json::Value;

const T: Duration = Duration::from_secs(15);

fn curl(lab: &Lab, host: &str, url: &str, body: Option<&str>) -> String {
    let mut argv = vec!["curl", "-sS", "--max-time", "5", url];
    if let Some(b) = body {
        argv.extend(["-H", "Content-Type: application/json", "-d", b]);
    }
    // `run` fails on a non-zero exit, with curl's stderr in the error.
    lab.run(host, &argv)
        .unwrap_or_else(|e| panic!("curl {url}: {e:#}"))
        .stdout
}

#[test]
fn lease_seen_through_the_control_api() {
    let lab = Lab::up(venus::topology(3).unwrap()).unwrap();
    let control = format!("{}:8000", venus::PRIMARY_LAN);
    let mut cfg = venus::kea_config(venus::PRIMARY).unwrap();
    cfg.without_ha().unwrap();
    let mut xdhcpd = Xdhcpd::start(&lab, venus::PRIMARY, &cfg, &["--control-addr", &control]);
    let server = &mut xdhcpd.process;
    assert!(
        server.log().contains("control API listening"),
        "{}",
        server.log()
    );

    let m1 = lab.dhclient(&venus::client(1)).unwrap();
    let lease = m1
        .obtain(T)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));

    // From the client (it has an address now), as an operator's script
    // would, with Kea control-agent framing.
    let url = format!("http://{control}/");
    let body = curl(
        &lab,
        &venus::client(1),
        &url,
        Some(r#"{"command": "lease4-get-all", "service": ["dhcp4"]}"#),
    );
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v[0]["result"], 0, "{v}");
    let leases = v[0]["arguments"]["leases"].as_array().unwrap();
    let mac = venus::client_mac(1).to_string();
    let ours = leases
        .iter()
        .find(|l| l["hw-address"] == mac.as_str())
        .unwrap_or_else(|| panic!("{mac} not in {v}"));
    assert_eq!(ours["ip-address"], lease.address.to_string());
    assert_eq!(ours["valid-lft"], venus::LEASE_TIME);

    let metrics = curl(
        &lab,
        &venus::client(1),
        &format!("http://{control}/metrics"),
        None,
    );
    assert!(
        metrics.contains(r#"xdhcp_packets_total{path="user",type="discover"}"#),
        "{metrics}"
    );

    let body = curl(
        &lab,
        &venus::client(1),
        &url,
        Some(r#"{"command": "shutdown"}"#),
    );
    assert!(body.contains("Shutting down."), "{body}");
    let deadline = std::time::Instant::now() + T;
    while server.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !server.is_running(),
        "shutdown command did not stop xdhcpd:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("shutdown command: shutting down"),
        "{}",
        server.log()
    );
}
