//! Tests of [`super`]: pairs of small hot-standby configs that agree, and
//! each kind of disagreement.

use super::*;
use crate::config;

fn server(this: &str, peers: &[(&str, &str, &str)], subnets: &str) -> config::Config {
    let peers: Vec<String> = peers
        .iter()
        .map(|(n, u, r)| format!(r#"{{"name": "{n}", "url": "http://{u}/", "role": "{r}"}}"#))
        .collect();
    let text = format!(
        r#"{{"Dhcp4": {{"interfaces-config": {{"interfaces": ["eth0"]}}, "valid-lifetime": 3600,
        "hooks-libraries": [{{"library": "/x/libdhcp_lease_cmds.so"}}, {{"library": "/x/libdhcp_ha.so", "parameters": {{"high-availability": [{{
            "this-server-name": "{this}", "mode": "hot-standby", "max-unacked-clients": 0, "peers": [{}]}}]}}}}],
        "subnet4": [{subnets}]}}}}"#,
        peers.join(",")
    );
    config::parse(&text, this).unwrap()
}

const FULL: &str = r#"{"id": 1, "subnet": "10.0.0.0/24", "pools": [{"pool": "10.0.0.100-10.0.0.199"}],
    "option-data": [{"name": "routers", "data": "10.0.0.1"}]}"#;
const EMPTY: &str = r#"{"id": 1, "subnet": "10.0.0.0/24"}"#;

fn inputs<'a>(cs: &'a [(&'a str, config::Config)]) -> Vec<Input<'a>> {
    cs.iter()
        .map(|(f, c)| Input {
            file: f,
            config: c,
            ha_hook: Some(1),
        })
        .collect()
}

#[test]
fn matching_pair_is_clean() {
    let peers = [
        ("a", "10.0.0.2:8000", "primary"),
        ("b", "10.0.0.3:8000", "standby"),
    ];
    let cs = [
        ("a.json", server("a", &peers, FULL)),
        ("b.json", server("b", &peers, FULL)),
    ];
    let f = check_peers(&inputs(&cs));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn empty_standby_subnet_means_no_failover() {
    let peers = [
        ("a", "10.0.0.2:8000", "primary"),
        ("b", "10.0.0.3:8000", "standby"),
    ];
    let cs = [
        ("a.json", server("a", &peers, FULL)),
        ("b.json", server("b", &peers, EMPTY)),
    ];
    let f = check_peers(&inputs(&cs));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].file, "b.json");
    assert_eq!(f[0].path, "Dhcp4.subnet4[0]");
    assert!(f[0].message.contains("no pool in b.json"), "{}", f[0]);
    assert!(f[0].message.contains("no options in b.json"), "{}", f[0]);
    assert!(
        f[0].message.contains("subnet 1 has no failover"),
        "{}",
        f[0]
    );
}

#[test]
fn disagreements_on_peers() {
    let pa = [
        ("a", "10.0.0.2:8000", "primary"),
        ("b", "10.0.0.3:8000", "standby"),
    ];
    let pb = [
        ("a", "10.0.0.2:8000", "standby"),
        ("b", "10.0.0.3:8000", "primary"),
    ];
    let cs = [
        ("a.json", server("a", &pa, FULL)),
        ("b.json", server("b", &pb, FULL)),
    ];
    let f = check_peers(&inputs(&cs));
    let text: Vec<String> = f.iter().map(|f| f.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("peer a is primary in a.json but standby in b.json")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|t| t.contains("two primaries")),
        "{text:#?}"
    );

    let same_name = [
        ("a.json", server("a", &pa, FULL)),
        ("a2.json", server("a", &pa, FULL)),
    ];
    let f = check_peers(&inputs(&same_name));
    assert!(
        f.iter()
            .any(|f| f.message.contains("also this-server-name")),
        "{f:#?}"
    );

    let pc = [
        ("a", "10.0.0.2:8000", "primary"),
        ("c", "10.0.0.3:8000", "standby"),
    ];
    let cs = [
        ("a.json", server("a", &pa, FULL)),
        ("c.json", server("c", &pc, FULL)),
    ];
    let f = check_peers(&inputs(&cs));
    assert!(
        f.iter()
            .any(|f| f.message.contains("peers b, c all use 10.0.0.3:8000")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|f| f
            .message
            .contains("peer b is listed in a.json but not in c.json")),
        "{f:#?}"
    );
}

#[test]
fn missing_subnet_and_other_id() {
    let peers = [
        ("a", "10.0.0.2:8000", "primary"),
        ("b", "10.0.0.3:8000", "standby"),
    ];
    let other = r#"{"id": 1, "subnet": "10.9.0.0/24"}"#;
    let cs = [
        ("a.json", server("a", &peers, FULL)),
        ("b.json", server("b", &peers, other)),
    ];
    let f = check_peers(&inputs(&cs));
    assert!(
        f.iter().any(|f| f.message.contains("no pool in b.json")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|f| f
            .message
            .contains("prefix 10.0.0.0/24 in a.json but 10.9.0.0/24")),
        "{f:#?}"
    );

    let renumbered = FULL.replace(r#""id": 1"#, r#""id": 7"#);
    let cs = [
        ("a.json", server("a", &peers, FULL)),
        ("b.json", server("b", &peers, &renumbered)),
    ];
    let f = check_peers(&inputs(&cs));
    assert!(
        f.iter().any(|f| f.message.contains("has id 7 in b.json")),
        "{f:#?}"
    );
}
