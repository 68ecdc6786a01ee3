//! Tests of [`super`]: pool geometry, and [`check_server`] on small
//! hot-standby configs.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::subnet::{overlapping_pools, pools_outside};
use super::timers::failover_time;
use super::*;
use crate::config::{self, Cidr};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn pool_geometry() {
    let pools = [
        (ip("10.0.0.10"), ip("10.0.0.20")),
        (ip("10.0.0.20"), ip("10.0.0.30")),
        (ip("10.0.0.40"), ip("10.0.1.5")),
    ];
    assert_eq!(overlapping_pools(&pools), vec![(0, 1)]);
    let prefix = Cidr::new(ip("10.0.0.0"), 24).unwrap();
    assert_eq!(pools_outside(&prefix, &pools), vec![2]);
}

fn ha_config(timers: &str, valid: u32) -> config::Config {
    let text = format!(
        r#"{{"Dhcp4": {{
        "interfaces-config": {{"interfaces": ["eth0"]}},
        "valid-lifetime": {valid}, "renew-timer": {t1}, "rebind-timer": {t2},
        "hooks-libraries": [{{"library": "/x/libdhcp_lease_cmds.so"}}, {{"library": "/x/libdhcp_ha.so", "parameters": {{"high-availability": [{{
            "this-server-name": "a", "mode": "hot-standby" {timers},
            "peers": [{{"name": "a", "url": "http://10.0.0.1:8000/", "role": "primary"}},
                      {{"name": "b", "url": "http://10.0.0.2:8000/", "role": "standby"}}]}}]}}}}],
        "subnet4": [{{"id": 1, "subnet": "10.0.0.0/24", "pools": [{{"pool": "10.0.0.1-10.0.0.50"}}],
            "option-data": [{{"name": "routers", "data": "10.0.0.254"}}, {{"name": "broadcast-address", "data": "10.0.0.127"}}],
            "reservations": [{{"hw-address": "02:00:00:00:00:01", "ip-address": "10.0.0.20"}}]}}]
        }}}}"#,
        t1 = valid / 2,
        t2 = valid * 7 / 8
    );
    config::parse(&text, "t.json").unwrap()
}

fn run(c: &config::Config) -> Vec<Finding> {
    check_server(&Input {
        file: "t.json",
        config: c,
        ha_hook: Some(1),
    })
}

#[test]
fn failover_slower_than_leases_is_an_error() {
    let c = ha_config(
        r#", "heartbeat-delay": 10000, "max-response-delay": 60000"#,
        60,
    );
    let rel = &c.ha().unwrap().relationships()[0];
    assert_eq!(failover_time(rel), Some(Duration::from_secs(80)));
    let f = run(&c);
    let e = f
        .iter()
        .find(|f| f.severity == Severity::Error)
        .expect("an error");
    assert!(e.message.contains("expire before failover"), "{e}");
    assert_eq!(
        e.path,
        "Dhcp4.hooks-libraries[1].parameters.high-availability[0].max-response-delay"
    );
}

#[test]
fn equal_heartbeat_and_response_delay_warns() {
    let c = ha_config(
        r#", "heartbeat-delay": 10000, "max-response-delay": 10000"#,
        3600,
    );
    let f = run(&c);
    assert!(
        f.iter()
            .any(|f| f.severity == Severity::Warning && f.message.contains("one late heartbeat"))
    );
    assert!(
        f.iter()
            .any(|f| f.severity == Severity::Info && f.path.ends_with("max-unacked-clients"))
    );
    assert!(!f.iter().any(|f| f.severity == Severity::Error), "{f:#?}");
}

#[test]
fn pool_with_network_address_and_reservation_inside() {
    let c = ha_config(r#", "max-unacked-clients": 0"#, 3600);
    let f = run(&c);
    let text: Vec<String> = f.iter().map(|f| f.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("contains 10.0.0.1, the HA address of peer a")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("info") && t.contains("reserved 10.0.0.20")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("broadcast-address 10.0.0.127")),
        "{text:#?}"
    );
    assert!(
        !text.iter().any(|t| t.contains("max-unacked-clients")),
        "{text:#?}"
    );
}
