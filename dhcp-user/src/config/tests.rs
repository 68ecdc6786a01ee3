//! Whole-file tests: the seed deployments load unchanged, bad inputs are
//! refused with file, position and JSON path, and nothing panics on garbage.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn opt<'a>(set: &'a OptionSet, name: &str) -> &'a [u8] {
    set.get(options::option_def_by_name(name).unwrap().code).unwrap_or_else(|| panic!("no {name}")).data()
}

/// Writes `text` to a temporary file and loads it; returns the file path too.
fn load_text(text: &str) -> (tempfile::TempDir, String, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kea-dhcp4.conf");
    std::fs::write(&path, text).unwrap();
    let r = load(&path);
    (dir, path.display().to_string(), r)
}

/// Loads `text`, expecting an error; checks it names the file and `json_path`.
fn refused(text: &str, json_path: &str) -> String {
    let (_dir, file, r) = load_text(text);
    let e = r.expect_err("config should be refused");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{file}:")), "error does not start with the file name:\n{msg}");
    assert!(msg.contains(&format!(": {json_path}: ")), "error does not name {json_path}:\n{msg}");
    assert!(e.location().unwrap().line.is_some(), "no line in {msg}");
    msg
}

const BASE: &str = r#"{
  "Dhcp4": {
    "interfaces-config": { "interfaces": [ "eth0" ] },
    "valid-lifetime": 600,
    "subnet4": [
      {
        "id": 1,
        "subnet": "10.0.0.0/24",
        "pools": [ { "pool": "10.0.0.10-10.0.0.100" } ]
      }
    ]
  }
}"#;

#[test]
fn seed_zaldua1zerb1_hub_with_two_relationships() {
    let c = load(data("seed004/zaldua1zerb1.json")).unwrap();
    let names: Vec<_> = c
        .interfaces()
        .interfaces
        .iter()
        .map(|i| match i {
            InterfaceSpec::Named { name, address: None } => name.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["enp0s17", "enp0s18", "enp0s19"]);
    assert_eq!(c.interfaces().socket_type, SocketType::Raw);
    assert_eq!(c.lease_database().memfile().unwrap().name, PathBuf::from("/var/lib/kea/kea-leases4.csv"));
    assert!(c.lease_database().memfile().unwrap().persist);
    assert!(c.authoritative());
    assert!(c.lease_cmds());
    assert_eq!(c.control_socket().map(|s| s.socket_name.as_path()), Some(std::path::Path::new("/run/kea/kea4-ctrl-socket")));

    let ha = c.ha().unwrap();
    assert!(ha.is_hub());
    let [r1, r2] = ha.relationships() else { panic!() };
    assert_eq!(r1.mode(), HaMode::HotStandby);
    assert_eq!(r1.this_server_name(), "zaldua1zerb1-zaldua1");
    assert_eq!(r1.this_server().role(), Role::Primary);
    assert_eq!(r1.partner().unwrap().name(), "zaldua1zerb2-zaldua1");
    assert_eq!(r1.partner().unwrap().role(), Role::Standby);
    assert_eq!(r1.partner().unwrap().url().socket_addr(), "192.168.42.5:8001".parse().unwrap());
    assert_eq!(r1.heartbeat_delay(), Duration::from_secs(10));
    assert_eq!(r1.max_response_delay(), Duration::from_secs(10));
    assert_eq!(r1.max_ack_delay(), Duration::from_secs(10));
    assert_eq!(r2.this_server_name(), "zaldua1zerb1-zaldua2");
    assert_eq!(r2.this_server().role(), Role::Standby);
    assert_eq!(r2.this_server().url().socket_addr(), "192.168.4.4:8002".parse().unwrap());
    assert_eq!(r2.partner().unwrap().name(), "zaldua2zerb1-zaldua2");

    let ids: Vec<u32> = c.subnets().iter().map(|s| s.id().0).collect();
    assert_eq!(ids, [1, 2, 3]);
    let s1 = c.subnet(SubnetId(1)).unwrap();
    assert_eq!(s1.prefix().to_string(), "192.168.42.0/23");
    assert_eq!((s1.pools()[0].start(), s1.pools()[0].end()), (ip("192.168.42.100"), ip("192.168.42.200")));
    assert_eq!(s1.pools()[0].size(), 101);
    assert_eq!(opt(s1.options(), "routers"), [192, 168, 42, 2]);
    assert_eq!(opt(s1.options(), "broadcast-address"), [192, 168, 43, 255]);
    assert_eq!(opt(s1.options(), "domain-name"), b"zalduabat.eus");
    assert_eq!(opt(s1.options(), "domain-name-servers"), [192, 168, 42, 4, 192, 168, 42, 5]);
    let r = s1.reservation_for_hw(&[0, 1, 2, 3, 2, 2]).unwrap();
    assert_eq!(r.ip_address(), Some(ip("192.168.42.10")));
    assert_eq!(r.hostname(), Some("zaldua1bez1"));
    assert_eq!(s1.reservation_for_address(ip("192.168.42.10")), Some(r));
    assert_eq!(s1.ha_server_name(), Some("zaldua1zerb1-zaldua1"));
    assert_eq!(s1.ha_relationship(), Some(0));
    assert_eq!(c.subnet(SubnetId(2)).unwrap().ha_relationship(), Some(1));
    assert_eq!(c.subnet(SubnetId(3)).unwrap().ha_relationship(), Some(0));
    assert_eq!(c.subnet(SubnetId(3)).unwrap().reservations()[0].ip_address(), Some(ip("192.168.1.140")));

    let l = s1.lifetimes();
    assert_eq!((l.valid, l.min_valid, l.max_valid, l.renew, l.rebind), (60, 60, 720, Some(30), Some(45)));
    assert_eq!(l.lease_times(None), LeaseTimes { valid: 60, t1: Some(30), t2: Some(45) });
    assert_eq!(l.lease_times(Some(3600)).valid, 720);

    // Selection helpers.
    assert_eq!(c.subnet_containing(ip("192.168.43.7")).unwrap().id(), SubnetId(1));
    assert_eq!(c.subnet_for_interface_address(ip("192.168.4.4")).unwrap().id(), SubnetId(2));
    assert_eq!(c.subnet_for_relay(ip("192.168.1.129")).unwrap().id(), SubnetId(3));
    assert!(c.subnet_containing(ip("10.1.1.1")).is_none());
    assert!(c.subnet_for_interface("enp0s17").is_none(), "no subnet sets `interface`");
}

#[test]
fn seed_zaldua1zerb2_standby_with_empty_placeholder_subnet() {
    let text = std::fs::read_to_string(data("seed004/zaldua1zerb2.json")).unwrap();
    assert!(text.contains("\t\t\"id\": 3"), "the seed keeps its tab indentation");
    let c = load(data("seed004/zaldua1zerb2.json")).unwrap();
    let ha = c.ha().unwrap();
    assert!(!ha.is_hub());
    let r = &ha.relationships()[0];
    assert_eq!(r.this_server().role(), Role::Standby);
    assert_eq!(r.partner().unwrap().name(), "zaldua1zerb1-zaldua1");
    assert_eq!(c.subnets().len(), 2);
    let s3 = c.subnet(SubnetId(3)).unwrap();
    assert!(s3.pools().is_empty() && s3.options().is_empty() && s3.reservations().is_empty());
    assert_eq!(s3.ha_relationship(), Some(0));
    assert_eq!(c.subnet(SubnetId(1)).unwrap().reservations().len(), 1);
}

#[test]
fn seed_zaldua2zerb1_primary() {
    let c = load(data("seed004/zaldua2zerb1.json")).unwrap();
    let r = &c.ha().unwrap().relationships()[0];
    assert_eq!(r.this_server_name(), "zaldua2zerb1-zaldua2");
    assert_eq!(r.this_server().role(), Role::Primary);
    assert_eq!(r.this_server().url().socket_addr(), "192.168.4.5:8002".parse().unwrap());
    let [s] = c.subnets() else { panic!() };
    assert_eq!(s.id(), SubnetId(2));
    assert_eq!(s.prefix().to_string(), "192.168.4.0/22");
    assert_eq!(s.reservations()[0].id(), &HostId::HwAddress(vec![0, 1, 2, 3, 3, 2]));
    assert_eq!(opt(s.options(), "routers"), [192, 168, 4, 1]);
}

#[test]
fn kea22_ha_example_from_notes() {
    let c = load(data("kea22-ha-example.json")).unwrap();
    let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    assert!(!paths.contains(&"Dhcp4.multi-threading") && !paths.contains(&"Dhcp4.loggers"), "{paths:?}");
    assert_eq!(c.multi_threading().pool(), Some((2, 64)), "Kea's example's pool");
    assert_eq!(c.loggers()[0].name, "kea-dhcp4");
    let r = &c.ha().unwrap().relationships()[0];
    assert_eq!(r.this_server_name(), "lobezno");
    assert_eq!(r.partner().unwrap().name(), "tormenta");
    assert_eq!(r.heartbeat_delay(), Duration::from_millis(1000));
    assert_eq!(r.max_response_delay(), Duration::from_millis(3000));
    assert_eq!(r.max_ack_delay(), Duration::from_millis(1000));
    assert_eq!(r.max_unacked_clients(), 0);
    let mt = r.multi_threading();
    assert!(mt.enable_multi_threading && mt.http_dedicated_listener);
    assert_eq!((mt.http_listener_threads, mt.http_client_threads), (2, 2));
    let s = c.subnet(SubnetId(1)).unwrap();
    assert_eq!(opt(s.options(), "domain-name-servers"), [192, 168, 50, 2, 192, 168, 50, 3]);
    assert_eq!(s.reservations()[0].hostname(), Some("mutante3"));
    assert_eq!(s.lifetimes().lease_times(Some(500)), LeaseTimes { valid: 60, t1: Some(30), t2: Some(45) });
}

#[test]
fn comments_includes_and_inheritance() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("subnets.json"),
        r#"// included from main
        {
          "id": 7, "subnet": "192.0.2.0/24",
          "valid-lifetime": 300, "max-valid-lifetime": 900,
          "option-data": [ { "name": "routers", "data": "192.0.2.1" } ],
          "pools": [
            { "pool": "192.0.2.10 - 192.0.2.19",
              "option-data": [ { "name": "domain-name", "data": "pool.example" } ] },
            { "pool": "192.0.2.64/26" }
          ],
          "reservations": [
            { "client-id": "01:02:03:04", "ip-address": "192.0.2.15",
              "option-data": [ { "code": 15, "data": "host.example", "always-send": true } ],
              "next-server": "192.0.2.2", "boot-file-name": "pxe.0" }
          ],
          "relay": { "ip-addresses": [ "198.51.100.1" ] },
          "interface": "eth1"
        }"#,
    )
    .unwrap();
    let main = dir.path().join("main.json");
    std::fs::write(
        &main,
        r#"# Kea allows three comment styles
        { "Dhcp4": {
          /* global settings */
          "interfaces-config": { "interfaces": [ "eth1", "eth2/10.9.9.9", "*" ], "dhcp-socket-type": "udp" },
          "valid-lifetime": 100, "min-valid-lifetime": 50,
          "renew-timer": 40, "calculate-tee-times": true,
          "next-server": "10.0.0.254", "server-hostname": "boot",
          "option-data": [
            { "name": "domain-name", "data": "global.example" },
            { "name": "domain-search", "data": "a.example, b.example" },
            { "code": 252, "csv-format": false, "data": "'http://wpad/wpad.dat'" }
          ],
          "subnet4": [ <?include "subnets.json"?> ]
        } }"#,
    )
    .unwrap();
    let c = load(&main).unwrap();
    let s = c.subnet(SubnetId(7)).unwrap();
    // Lifetimes: valid/max from the subnet, min and timers inherited.
    let l = s.lifetimes();
    assert_eq!((l.min_valid, l.valid, l.max_valid, l.renew, l.rebind), (50, 300, 900, Some(40), None));
    assert!(l.calculate_tee_times);
    assert_eq!(l.lease_times(None), LeaseTimes { valid: 300, t1: Some(40), t2: Some(263) });
    // Options: global < subnet < pool < reservation.
    assert_eq!(opt(s.options(), "domain-name"), b"global.example");
    assert_eq!(opt(s.options(), "routers"), [192, 0, 2, 1]);
    assert_eq!(s.options().get(252).unwrap().data(), b"http://wpad/wpad.dat");
    assert_eq!(opt(s.options(), "domain-search"), b"\x01a\x07example\x00\x01b\x07example\x00");
    let in_pool = s.options_for(Some(ip("192.0.2.12")), None);
    assert_eq!(opt(&in_pool, "domain-name"), b"pool.example");
    assert_eq!(opt(&in_pool, "routers"), [192, 0, 2, 1]);
    let out_of_pool = s.options_for(Some(ip("192.0.2.30")), None);
    assert_eq!(opt(&out_of_pool, "domain-name"), b"global.example");
    let r = s.reservation_for_client_id(&[1, 2, 3, 4]).unwrap();
    let host = s.options_for(r.ip_address(), Some(r));
    assert_eq!(opt(&host, "domain-name"), b"host.example");
    assert!(host.get(15).unwrap().always_send());
    assert_eq!(r.next_server(), Some(ip("192.0.2.2")));
    assert_eq!(r.boot_file_name(), Some("pxe.0"));
    // Pools sorted, /26 expanded.
    assert_eq!(s.pools()[1].start(), ip("192.0.2.64"));
    assert_eq!(s.pools()[1].end(), ip("192.0.2.127"));
    // Boot parameters inherited.
    assert_eq!(s.boot().next_server, ip("10.0.0.254"));
    assert_eq!(s.boot().server_hostname, "boot");
    // Selection.
    assert_eq!(c.subnet_for_relay(ip("198.51.100.1")).unwrap().id(), SubnetId(7));
    assert_eq!(c.subnet_for_interface("eth1").unwrap().id(), SubnetId(7));
    assert_eq!(c.interfaces().socket_type, SocketType::Udp);
    assert_eq!(
        c.interfaces().interfaces[1],
        InterfaceSpec::Named { name: "eth2".into(), address: Some(ip("10.9.9.9")) }
    );
    assert!(c.interfaces().serves("anything"));
    assert!(c.ha().is_none());
}

#[test]
fn error_inside_an_included_file_names_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pools.json"), "{ \"pool\": \"10.0.0.50-10.0.0.5\" }").unwrap();
    let main = dir.path().join("main.json");
    std::fs::write(&main, BASE.replace(r#"{ "pool": "10.0.0.10-10.0.0.100" }"#, r#"<?include "pools.json"?>"#))
        .unwrap();
    let msg = load(&main).unwrap_err().to_string();
    let inc = dir.path().join("pools.json").display().to_string();
    assert_eq!(msg, format!("{inc}:1:11: Dhcp4.subnet4[0].pools[0].pool: 10.0.0.50-10.0.0.5: start is after end"));
}

#[test]
fn exact_location_of_a_bad_pool() {
    let text = BASE.replace("10.0.0.10-10.0.0.100", "10.0.0.5-10.0.0.1");
    let (_d, file, r) = load_text(&text);
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("{file}:9:30: Dhcp4.subnet4[0].pools[0].pool: 10.0.0.5-10.0.0.1: start is after end")
    );
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let msg = refused(&BASE.replace(r#""id": 1,"#, r#""id": 1, "client-klass": "x","#), "Dhcp4.subnet4[0].client-klass");
    assert!(msg.contains("unknown or unsupported key \"client-klass\""), "{msg}");
    refused(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""valid-lifetime": 600, "shared-networks": [ { "name": "a", "frob": 1 } ],"#,
        ),
        "Dhcp4.shared-networks[0].frob",
    );
    refused(
        &BASE.replace(r#""pool": "10.0.0.10-10.0.0.100""#, r#""pool": "10.0.0.10-10.0.0.100", "frob": 1"#),
        "Dhcp4.subnet4[0].pools[0].frob",
    );
    refused(&BASE.replace(r#""Dhcp4": {"#, r#""Dhcp6": {}, "Dhcp4": {"#), "Dhcp6");
    let (_d, _f, r) = load_text(&BASE.replace(r#""id": 1,"#, r#""id": 1, "client-klass": "x","#));
    assert!(matches!(r, Err(ConfigError::UnknownKey { ref key, .. }) if key == "client-klass"));
}

#[test]
fn wrong_types_are_refused_with_their_path() {
    let m = refused(&BASE.replace(r#""valid-lifetime": 600"#, r#""valid-lifetime": "600""#), "Dhcp4.valid-lifetime");
    assert!(m.contains("invalid type"), "{m}");
    refused(&BASE.replace(r#""valid-lifetime": 600"#, r#""valid-lifetime": -1"#), "Dhcp4.valid-lifetime");
    refused(&BASE.replace(r#"[ "eth0" ]"#, r#""eth0""#), "Dhcp4.interfaces-config.interfaces");
    refused(&BASE.replace(r#""id": 1"#, r#""id": true"#), "Dhcp4.subnet4[0].id");
    refused(&BASE.replace(r#""id": 1,"#, r#""id": 1, "authoritative": "yes","#), "Dhcp4.subnet4[0].authoritative");
    refused(&BASE.replace(r#""subnet": "10.0.0.0/24","#, ""), "Dhcp4.subnet4[0]");
}

#[test]
fn bad_pools_subnets_and_reservations() {
    let two_pools = |a: &str, b: &str| {
        BASE.replace(r#"{ "pool": "10.0.0.10-10.0.0.100" }"#, &format!(r#"{{ "pool": "{a}" }}, {{ "pool": "{b}" }}"#))
    };
    let m = refused(&two_pools("10.0.0.10-10.0.0.100", "10.0.0.100-10.0.0.120"), "Dhcp4.subnet4[0].pools[1].pool");
    assert!(m.contains("overlaps"), "{m}");
    let m = refused(&two_pools("10.0.0.10-10.0.0.20", "10.0.0.250-10.0.1.5"), "Dhcp4.subnet4[0].pools[1].pool");
    assert!(m.contains("10.0.0.250-10.0.1.5 does not match the prefix of a subnet: 10.0.0.0/24"), "{m}");
    refused(&two_pools("10.0.0.10-10.0.0.20", "10.0.0.30"), "Dhcp4.subnet4[0].pools[1].pool");
    refused(&two_pools("10.0.0.10-10.0.0.20", "10.0.0.30-10.0.0.x"), "Dhcp4.subnet4[0].pools[1].pool");

    for bad in ["10.0.0.0/33", "10.0.0.0", "10.0.0.300/24", "10.0.0.0/0", "fe80::/64"] {
        let m = refused(&BASE.replace("10.0.0.0/24", bad), "Dhcp4.subnet4[0].subnet");
        assert!(m.contains(bad), "{m}");
    }

    let two_subnets = |second: &str| {
        BASE.replace(
            r#"      }
    ]"#,
            &format!("      }},\n      {second}\n    ]"),
        )
    };
    let m = refused(&two_subnets(r#"{ "id": 1, "subnet": "10.0.1.0/24" }"#), "Dhcp4.subnet4[1].id");
    assert!(m.contains("already used"), "{m}");
    let m = refused(&two_subnets(r#"{ "id": 2, "subnet": "10.0.0.0/24" }"#), "Dhcp4.subnet4[1].subnet");
    assert!(m.contains("subnet with the prefix of '10.0.0.0/24' already exists"), "{m}");

    let with_res = |r: &str| BASE.replace(r#""pools": ["#, &format!(r#""reservations": [ {r} ], "pools": ["#));
    let m = refused(
        &with_res(
            r#"{ "hw-address": "aa:bb:cc:dd:ee:ff", "ip-address": "10.0.0.5" }, { "hw-address": "AABBCCDDEEFF", "ip-address": "10.0.0.6" }"#,
        ),
        "Dhcp4.subnet4[0].reservations[1].hw-address",
    );
    assert!(m.contains("failed to add new host using the HW address") && m.contains("as this host has already been added"), "{m}");
    let m = refused(
        &with_res(
            r#"{ "hw-address": "aa:bb:cc:dd:ee:01", "ip-address": "10.0.0.5" }, { "client-id": "0102", "ip-address": "10.0.0.5" }"#,
        ),
        "Dhcp4.subnet4[0].reservations[1].ip-address",
    );
    assert!(m.contains("There's already a reservation for this address"), "{m}");
    refused(
        &with_res(r#"{ "hw-address": "aa:bb:cc:dd:ee:01", "ip-address": "10.0.1.5" }"#),
        "Dhcp4.subnet4[0].reservations[0].ip-address",
    );
    refused(
        &with_res(r#"{ "hw-address": "zz", "ip-address": "10.0.0.5" }"#),
        "Dhcp4.subnet4[0].reservations[0].hw-address",
    );
    refused(&with_res(r#"{ "ip-address": "10.0.0.5" }"#), "Dhcp4.subnet4[0].reservations[0]");
    let m = refused(&with_res(r#"{ "flex-id": "'x'", "ip-address": "10.0.0.5" }"#), "Dhcp4.subnet4[0].reservations[0].flex-id");
    assert!(m.contains("libdhcp_flex_id.so"), "{m}");
    let m = refused(
        &with_res(r#"{ "duid": "01:02", "hw-address": "00:01:02:03:04:05", "ip-address": "10.0.0.5" }"#),
        "Dhcp4.subnet4[0].reservations[0]",
    );
    assert!(m.contains("one identifier"), "{m}");
}

#[test]
fn every_host_identifier_and_global_reservations_load() {
    let c = parse(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""valid-lifetime": 600, "host-reservation-identifiers": [ "circuit-id", "duid" ],
               "reservations": [ { "hw-address": "02:00:00:00:00:07", "ip-address": "172.16.0.7", "hostname": "far" } ],"#,
        )
        .replace(
            r#""pools": [ { "pool": "10.0.0.10-10.0.0.100" } ]"#,
            r#""pools": [ { "pool": "10.0.0.10-10.0.0.100" } ], "reservations": [
                { "duid": "04:33:44", "ip-address": "10.0.0.4" },
                { "circuit-id": "060106020603", "ip-address": "10.0.0.6" },
                { "client-id": "01:02:00:00:00:00:09", "hostname": "no-address" } ]"#,
        ),
        "t",
    )
    .unwrap();
    let ids: Vec<_> = c.subnets()[0].reservations().iter().map(|r| r.id().kind()).collect();
    assert_eq!(ids, [HostIdentifierType::Duid, HostIdentifierType::CircuitId, HostIdentifierType::ClientId]);
    assert_eq!(c.host_reservation_identifiers(), [HostIdentifierType::CircuitId, HostIdentifierType::Duid]);
    // A global reservation may name any address.
    assert_eq!(c.global_reservations()[0].ip_address(), Some(ip("172.16.0.7")));
    let m = refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""valid-lifetime": 600, "host-reservation-identifiers": [ "hw-address", "flex-id" ],"#),
        "Dhcp4.host-reservation-identifiers[1]",
    );
    assert!(m.contains("libdhcp_flex_id.so"), "{m}");
}

#[test]
fn syntax_comment_and_include_errors() {
    let (_d, file, r) =
        load_text(&BASE.replace(r#""valid-lifetime": 600,"#, r#""valid-lifetime": 600, /* never closed"#));
    let m = r.unwrap_err().to_string();
    assert!(m.starts_with(&format!("{file}:4:28: comment not closed")), "{m}");

    let (_d, file, r) = load_text(&BASE.replace(r#""valid-lifetime": 600,"#, r#""valid-lifetime": 600 "#));
    let m = r.unwrap_err().to_string();
    assert!(m.starts_with(&format!("{file}:5:")), "{m}");

    let (_d, file, r) =
        load_text(&BASE.replace(r#"{ "pool": "10.0.0.10-10.0.0.100" }"#, r#"<?include "no-such-file.json"?>"#));
    let e = r.unwrap_err();
    assert!(matches!(e, ConfigError::Include { .. }));
    let m = e.to_string();
    assert!(m.starts_with(&format!("{file}:9:20: cannot include \"no-such-file.json\": file not found")), "{m}");

    let (_d, _f, r) = load_text("{ \"Dhcp4\": {} } trailing");
    assert!(matches!(r, Err(ConfigError::Syntax { .. })), "{r:?}");
    assert!(matches!(load("/nonexistent/kea.conf"), Err(ConfigError::Read { .. })));
}

#[test]
fn option_data_errors() {
    let with_opts = |o: &str| BASE.replace(r#""id": 1,"#, &format!(r#""id": 1, "option-data": [ {o} ],"#));
    let p = "Dhcp4.subnet4[0].option-data[0]";
    let m = refused(&with_opts(r#"{ "name": "routerz", "data": "10.0.0.1" }"#), &format!("{p}.name"));
    assert!(m.contains("no definition for the option 'dhcp4.routerz'"), "{m}");
    // Kea's csv-format defaults to true, which needs a definition.
    refused(&with_opts(r#"{ "code": 160, "data": "0x0102" }"#), &format!("{p}.code"));
    refused(&with_opts(r#"{ "name": "classless-static-route", "data": "10.0.0.0/8 - 10.0.0.1" }"#), &format!("{p}.name"));
    refused(&with_opts(r#"{ "name": "routers", "data": "10.0.0.300" }"#), &format!("{p}.data"));
    // Kea finds the definition by code and the name must be its name.
    let m = refused(&with_opts(r#"{ "name": "routers", "code": 4, "data": "10.0.0.1" }"#), &format!("{p}.name"));
    assert!(m.contains("'dhcp4.time-servers'"), "{m}");
    refused(&with_opts(r#"{ "code": 300, "data": "01" }"#), &format!("{p}.code"));
    refused(&with_opts(r#"{ "code": 0, "csv-format": false, "data": "01" }"#), p);
    refused(&with_opts(r#"{ "code": 150, "csv-format": true, "data": "10.0.0.1" }"#), &format!("{p}.csv-format"));
    refused(&with_opts(r#"{ "code": 150, "csv-format": false, "data": "0g" }"#), &format!("{p}.data"));
    refused(&with_opts(r#"{ "name": "routers", "csv-format": false, "data": "0a0000" }"#), &format!("{p}.data"));
    refused(&with_opts(r#"{ "name": "routers", "space": "dhcp6", "data": "10.0.0.1" }"#), &format!("{p}.space"));
    refused(&with_opts(r#"{ "name": "routers", "space": "bad space", "data": "10.0.0.1" }"#), &format!("{p}.space"));
    refused(&with_opts(r#"{ "name": "routers", "space": "vendor-4491", "data": "10.0.0.1" }"#), &format!("{p}.name"));
    refused(&with_opts(r#"{ "data": "10.0.0.1" }"#), p);
    // Forge's malformed values (test_v4_options_malformed_values_*).
    for (name, data) in [
        ("ip-forwarding", "2"),
        ("subnet-mask", "255.255.266.0"),
        ("time-offset", "-2147483649"),
        ("time-offset", "2147483648"),
        ("boot-size", "65536"),
        ("boot-size", "-1"),
        ("arp-cache-timeout", "-1"),
        ("arp-cache-timeout", "4294967296"),
    ] {
        refused(&with_opts(&format!(r#"{{ "name": "{name}", "data": "{data}" }}"#)), &format!("{p}.data"));
    }
    // Forge's csv_incorrect_hex / csv_incorrect_address: not hex.
    refused(&with_opts(r#"{ "code": 6, "data": "C000020Z1", "csv-format": false }"#), &format!("{p}.data"));
    refused(&with_opts(r#"{ "code": 6, "data": "199.0.2.1", "csv-format": false }"#), &format!("{p}.data"));

    // Accepted: binary by code, a long option (split when sent).
    let (_d, _f, r) = load_text(&with_opts(&format!(
        r#"{{ "code": 150, "csv-format": false, "data": "0A:00:00:01" }}, {{ "code": 160, "csv-format": false, "data": "0x0102" }},
           {{ "code": 6, "data": "C0000201", "csv-format": false }}, {{ "name": "domain-name", "data": "{}" }}"#,
        "a".repeat(300)
    )));
    let c = r.unwrap();
    let s = &c.subnets()[0];
    assert_eq!(s.options().get(150).unwrap().data(), [10, 0, 0, 1]);
    assert_eq!(s.options().get(160).unwrap().data(), [1, 2]);
    assert_eq!(s.options().get(6).unwrap().data(), [192, 0, 2, 1]);
    assert_eq!(s.options().get(15).unwrap().data().len(), 300);

    // Accepted as Kea accepts them, with a warning: a duplicate (the last
    // wins), extra values for a single-valued option (the first is sent),
    // options the server sets itself (sent only where it sets none).
    let (_d, _f, r) = load_text(&with_opts(
        r#"{ "name": "routers", "data": "10.0.0.1" }, { "code": 3, "data": "10.0.0.2" },
           { "name": "domain-name", "data": "a.example, b.example" },
           { "name": "dhcp-lease-time", "data": "60" }, { "name": "dhcp-requested-address", "data": "188.188.188.2" },
           { "name": "dhcp-option-overload", "data": "1" }, { "name": "dhcp-max-message-size", "data": "2349" }"#,
    ));
    let c = r.unwrap();
    let o = c.subnets()[0].options();
    // Kea 2.2 sends the last of two (checked against kea-dhcp4's OFFER).
    assert_eq!(o.get(3).unwrap().data(), [10, 0, 0, 2]);
    assert_eq!(o.get(15).unwrap().data(), b"a.example");
    assert_eq!(o.get(51).unwrap().data(), [0, 0, 0, 60]);
    assert_eq!(o.get(50).unwrap().data(), [188, 188, 188, 2]);
    assert_eq!(o.get(52).unwrap().data(), [1]);
    assert_eq!(o.get(57).unwrap().data(), [0x09, 0x2d]);
    let warned = |path: &str| c.warnings.iter().any(|w| w.path == path);
    assert!(warned(&format!("{}[1]", &p[..p.len() - 3])), "{:?}", c.warnings);
    assert!(warned("Dhcp4.subnet4[0].option-data[2].data") && warned("Dhcp4.subnet4[0].option-data[3]"));
}

/// A config with `option-def` and global `option-data` lists.
fn with_defs(defs: &str, data: &str) -> String {
    BASE.replace(
        r#""valid-lifetime": 600,"#,
        &format!(r#""valid-lifetime": 600, "option-def": [ {defs} ], "option-data": [ {data} ],"#),
    )
}

#[test]
fn custom_options_from_the_kea_arm() {
    // "Custom DHCPv4 Options": foo (uint32) and bar (record), both sent
    // by subnets through the global level.
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "name": "foo", "code": 222, "type": "uint32", "array": false, "record-types": "", "space": "dhcp4", "encapsulate": "" },
           { "name": "bar", "code": 223, "space": "dhcp4", "type": "record", "array": false,
             "record-types": "ipv4-address, uint16, boolean, string", "encapsulate": "" }"#,
        r#"{ "name": "foo", "code": 222, "space": "dhcp4", "csv-format": true, "data": "12345" },
           { "name": "bar", "space": "dhcp4", "code": 223, "csv-format": true, "data": "192.0.2.100, 123, true, Hello World" }"#,
    ));
    let c = r.unwrap();
    let o = c.subnets()[0].options();
    assert_eq!(o.get(222).unwrap().data(), [0, 0, 0x30, 0x39]);
    assert_eq!(o.get(223).unwrap().data(), b"\xc0\x00\x02\x64\x00\x7b\x01Hello World");
    // Forge's test_v4_options_user_custom_option: foo/176 uint8 123.
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "code": 176, "name": "foo", "space": "dhcp4", "encapsulate": "", "record-types": "", "array": false, "type": "uint8" }"#,
        r#"{ "code": 176, "csv-format": true, "data": "123", "name": "foo", "space": "dhcp4" }"#,
    ));
    assert_eq!(r.unwrap().options().get(176).unwrap().data(), [123]);
}

#[test]
fn option_def_errors_name_their_entry() {
    // Forge: test_v4_options_user_custom_option_code_0 / _using_standard_code.
    let m = refused(&with_defs(r#"{ "name": "foo", "code": 0, "type": "uint8" }"#, ""), "Dhcp4.option-def[0].code");
    assert!(m.contains("PAD"), "{m}");
    let m = refused(&with_defs(r#"{ "name": "foo", "code": 12, "type": "uint8" }"#, ""), "Dhcp4.option-def[0]");
    assert!(m.contains("standard option space"), "{m}");
    refused(
        &with_defs(r#"{ "name": "foo", "code": 200, "type": "uint8", "bogus": 1 }"#, ""),
        "Dhcp4.option-def[0].bogus",
    );
    let m = refused(
        &with_defs(
            r#"{ "name": "a", "code": 200, "type": "uint8" }, { "name": "b", "code": 200, "type": "uint8" }"#,
            "",
        ),
        "Dhcp4.option-def[1]",
    );
    assert!(m.contains("already exists"), "{m}");
    refused(
        &with_defs(r#"{ "name": "foo", "code": 200, "type": "record", "record-types": "uint8" }"#, ""),
        "Dhcp4.option-def[0]",
    );
    // The data must match the definition.
    let m = refused(
        &with_defs(r#"{ "name": "foo", "code": 200, "type": "uint8" }"#, r#"{ "name": "foo", "data": "300" }"#),
        "Dhcp4.option-data[0].data",
    );
    assert!(m.contains("out of range"), "{m}");
}

#[test]
fn vendor_encapsulated_options_from_the_kea_arm() {
    // "DHCPv4 Vendor-Specific Options": foo in option 43's space.
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "name": "foo", "code": 1, "space": "vendor-encapsulated-options-space", "type": "record", "array": false,
             "record-types": "ipv4-address, uint16, string", "encapsulate": "" }"#,
        r#"{ "name": "foo", "space": "vendor-encapsulated-options-space", "code": 1, "csv-format": true,
             "data": "192.0.2.3, 123, Hello World" },
           { "name": "vendor-encapsulated-options" }"#,
    ));
    let c = r.unwrap();
    let mut want = vec![1, 17, 192, 0, 2, 3, 0, 123];
    want.extend(b"Hello World");
    assert_eq!(c.subnets()[0].options().get(43).unwrap().data(), want);
    // Forge: test_v4_options_vendor_encapsulated_space (43 by code, data "").
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "code": 1, "name": "foo", "space": "vendor-encapsulated-options-space", "encapsulate": "", "record-types": "", "array": false, "type": "uint16" }"#,
        r#"{ "code": 1, "csv-format": true, "data": "66", "name": "foo", "space": "vendor-encapsulated-options-space" },
           { "code": 43, "csv-format": true, "data": "", "name": "vendor-encapsulated-options", "space": "dhcp4" }"#,
    ));
    assert_eq!(r.unwrap().options().get(43).unwrap().data(), [1, 2, 0, 0x42]);
    // Forge: test_v4_options_vendor_encapsulated_options_space_global_level.
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "name": "vlanid", "code": 2, "array": false, "encapsulate": "", "record-types": "", "space": "vendor-encapsulated-options-space", "type": "uint32" },
           { "name": "dls", "code": 3, "array": false, "encapsulate": "", "record-types": "", "space": "vendor-encapsulated-options-space", "type": "string" }"#,
        r#"{ "name": "vendor-encapsulated-options" },
           { "always-send": true, "data": "123", "name": "vlanid", "space": "vendor-encapsulated-options-space" },
           { "always-send": true, "data": "sdlp://192.0.2.11:18443", "name": "dls", "space": "vendor-encapsulated-options-space" }"#,
    ));
    let got = r.unwrap().options().get(43).unwrap().data().to_vec();
    let mut want = vec![2, 4, 0, 0, 0, 0x7b, 3, 0x17];
    want.extend(b"sdlp://192.0.2.11:18443");
    assert_eq!(got, want);
}

#[test]
fn nested_options_from_the_kea_arm() {
    // "Nested DHCPv4 Options (Custom Option Spaces)": container (222)
    // carries isc's subopt1 and subopt2.
    let defs = r#"{ "name": "subopt1", "code": 1, "space": "isc", "type": "ipv4-address", "record-types": "", "array": false, "encapsulate": "" },
        { "name": "subopt2", "code": 2, "space": "isc", "type": "string", "record-types": "", "array": false, "encapsulate": "" },
        { "name": "container", "code": 222, "space": "dhcp4", "type": "empty", "array": false, "record-types": "", "encapsulate": "isc" }"#;
    let (_d, _f, r) = load_text(&with_defs(
        defs,
        r#"{ "name": "subopt1", "code": 1, "space": "isc", "data": "192.0.2.3" },
           { "name": "subopt2", "code": 2, "space": "isc", "data": "Hello world" },
           { "name": "container", "code": 222, "space": "dhcp4" }"#,
    ));
    let c = r.unwrap();
    let mut want = vec![1, 4, 192, 0, 2, 3, 2, 11];
    want.extend(b"Hello world");
    assert_eq!(c.options().get(222).unwrap().data(), want);
    assert!(c.warnings.is_empty() || c.warnings.iter().all(|w| !w.path.contains("option-data")), "{:?}", c.warnings);
    // Sub-options are taken from the same level only: set globally, the
    // subnet's container carries none (Kea's per-scope encapsulation),
    // and the subnet is warned about nothing, the global level is.
    let text = with_defs(defs, r#"{ "name": "subopt1", "code": 1, "space": "isc", "data": "192.0.2.3" }"#)
        .replace(r#""id": 1,"#, r#""id": 1, "option-data": [ { "name": "container" } ],"#);
    let (_d, _f, r) = load_text(&text);
    let c = r.unwrap();
    assert_eq!(c.subnets()[0].options().get(222).unwrap().data(), Vec::<u8>::new());
    assert!(
        c.warnings.iter().any(|w| w.path == "Dhcp4.option-data[0]" && w.message.contains("never sent")),
        "{:?}",
        c.warnings
    );
    // A container with a uint16 before its sub-options ("… would then
    // have the following data structure: DHCP header, uint16 value,
    // sub-options").
    let (_d, _f, r) = load_text(&with_defs(
        &defs.replace(
            r#""type": "empty", "array": false, "record-types": "", "encapsulate": "isc""#,
            r#""type": "uint16", "encapsulate": "isc""#,
        ),
        r#"{ "name": "subopt1", "space": "isc", "data": "192.0.2.3" }, { "name": "container", "data": "123" }"#,
    ));
    assert_eq!(r.unwrap().options().get(222).unwrap().data(), [0, 123, 1, 4, 192, 0, 2, 3]);
    // Spaces carrying each other are refused.
    let m = refused(
        &with_defs(
            r#"{ "name": "a", "code": 1, "space": "s1", "type": "empty", "encapsulate": "s2" },
               { "name": "b", "code": 1, "space": "s2", "type": "empty", "encapsulate": "s1" },
               { "name": "top", "code": 222, "type": "empty", "encapsulate": "s1" }"#,
            r#"{ "name": "a", "space": "s1" }, { "name": "b", "space": "s2" }, { "name": "top" }"#,
        ),
        "Dhcp4.option-data[2]",
    );
    assert!(m.contains("loop"), "{m}");
}

#[test]
fn vivso_options_are_assembled_like_keas() {
    // Forge: test_v4_options_vivso_suboptions_unifi_address, with the
    // class's option-data at the global level.
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "name": "unifi-address", "code": 1, "array": false, "space": "vendor-41112", "type": "ipv4-address" }"#,
        r#"{ "name": "vivso-suboptions", "data": "41112" },
           { "name": "unifi-address", "space": "vendor-41112", "data": "192.0.2.11", "always-send": true }"#,
    ));
    let c = r.unwrap();
    assert_eq!(c.subnets()[0].options().get(125).unwrap().data(), [0, 0, 0xa0, 0x98, 6, 1, 4, 192, 0, 2, 11]);
    // Forge: test_v4_options_vivso_suboptions_siemens (two sub-options).
    let (_d, _f, r) = load_text(&with_defs(
        r#"{ "name": "vlanid", "code": 2, "array": false, "encapsulate": "", "record-types": "", "space": "vendor-339", "type": "uint32" },
           { "name": "dls", "code": 3, "array": false, "encapsulate": "", "record-types": "", "space": "vendor-339", "type": "string" }"#,
        r#"{ "name": "vivso-suboptions", "data": "339" },
           { "always-send": true, "data": "123", "name": "vlanid", "space": "vendor-339" },
           { "always-send": true, "data": "sdlp://192.0.2.11:18443", "name": "dls", "space": "vendor-339" }"#,
    ));
    let mut want = vec![0, 0, 1, 0x53, 0x1f, 2, 4, 0, 0, 0, 0x7b, 3, 0x17];
    want.extend(b"sdlp://192.0.2.11:18443");
    assert_eq!(r.unwrap().options().get(125).unwrap().data(), want);
    // Kea's DOCSIS definitions: vendor-4491 tftp-servers, needing no
    // option-def; vivso at the subnet, the vendor option global, and a
    // reservation overriding it gets its own vivso bytes.
    let text = with_defs(
        "",
        r#"{ "name": "tftp-servers", "space": "vendor-4491", "data": "10.1.1.202, 10.1.1.203", "always-send": true }"#,
    )
    .replace(
        r#""id": 1,"#,
        r#""id": 1, "option-data": [ { "name": "vivso-suboptions", "data": "4491" } ],
           "reservations": [ { "hw-address": "02:00:00:00:00:01", "ip-address": "10.0.0.5",
             "option-data": [ { "name": "tftp-servers", "space": "vendor-4491", "data": "10.1.1.9", "always-send": true } ] } ],"#,
    );
    let (_d, _f, r) = load_text(&text);
    let c = r.unwrap();
    let s = &c.subnets()[0];
    assert_eq!(s.options().get(125).unwrap().data(), [0, 0, 0x11, 0x8b, 10, 2, 8, 10, 1, 1, 202, 10, 1, 1, 203]);
    let host = s.reservations()[0].options();
    assert_eq!(host.get(125).unwrap().data(), [0, 0, 0x11, 0x8b, 6, 2, 4, 10, 1, 1, 9]);
    assert_eq!(s.options_for(None, Some(&s.reservations()[0])).get(125), host.get(125));
    // A vendor option without always-send is only sent on request (DOCSIS
    // ORO), which xdhcp does not answer: it says so.
    let (_d, _f, r) = load_text(&with_defs(
        "",
        r#"{ "name": "vivso-suboptions", "data": "4491" }, { "name": "tftp-servers", "space": "vendor-4491", "data": "10.1.1.202" }"#,
    ));
    let c = r.unwrap();
    assert_eq!(c.options().get(125).unwrap().data(), [0, 0, 0x11, 0x8b, 0]);
    assert!(c.warnings.iter().any(|w| w.path == "Dhcp4.option-data[1]" && w.message.contains("always-send")));
}

#[test]
fn lifetime_and_global_errors() {
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""valid-lifetime": 600, "max-valid-lifetime": 100,"#),
        "Dhcp4.valid-lifetime",
    );
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""renew-timer": 50, "rebind-timer": 40,"#),
        "Dhcp4.renew-timer",
    );
    refused(
        &BASE.replace(r#""id": 1,"#, r#""id": 1, "calculate-tee-times": true, "t1-percent": 0.9, "t2-percent": 0.5,"#),
        "Dhcp4.subnet4[0].t1-percent",
    );
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""lease-database": { "type": "mysql", "name": "kea" },"#),
        "Dhcp4.lease-database.type",
    );
    refused(&BASE.replace(r#""valid-lifetime": 600,"#, r#""next-server": "boot.example","#), "Dhcp4.next-server");
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""host-reservation-identifiers": [ "hw-address", "mac" ],"#),
        "Dhcp4.host-reservation-identifiers[1]",
    );
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""dhcp-ddns": { "enable-updates": true },"#),
        "Dhcp4.dhcp-ddns.enable-updates",
    );
    refused(
        &BASE.replace(r#""valid-lifetime": 600,"#, r#""reservation-mode": "all", "reservations-global": true,"#),
        "Dhcp4.reservation-mode",
    );
    refused(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""hooks-libraries": [ { "library": "/usr/lib/kea/hooks/libdhcp_flex_id.so" } ],"#,
        ),
        "Dhcp4.hooks-libraries[0].library",
    );
}

const HA_HOOK: &str = r#""hooks-libraries": [ { "library": "/usr/lib/kea/hooks/libdhcp_ha.so", "parameters": { "high-availability": [ {
      "this-server-name": "a", "mode": "hot-standby",
      "peers": [ { "name": "a", "url": "http://10.0.0.2:8000/", "role": "primary", "basic-auth-user": "kea", "basic-auth-password": "s3cr3t-pw" },
                 { "name": "b", "url": "http://10.0.0.3:8000/", "role": "standby", "basic-auth-user": "kea", "basic-auth-password": "s3cr3t-pw" } ] } ] } } ],"#;

#[test]
fn ha_errors_carry_full_paths_and_no_secrets() {
    let with_ha = |h: &str| BASE.replace(r#""valid-lifetime": 600,"#, &format!(r#""valid-lifetime": 600, {h}"#));
    let (_d, _f, r) = load_text(&with_ha(HA_HOOK));
    let c = r.unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert_eq!(c.subnets()[0].ha_relationship(), Some(0));
    assert_eq!(c.ha().unwrap().relationships()[0].this_server().basic_auth().unwrap().password.expose(), "s3cr3t-pw");

    let base = "Dhcp4.hooks-libraries[0].parameters.high-availability[0]";
    let m = refused(
        &with_ha(&HA_HOOK.replace(r#""role": "standby""#, r#""role": "standby", "colour": "red""#)),
        &format!("{base}.peers[1].colour"),
    );
    assert!(!m.contains("s3cr3t"), "{m}");
    let m = refused(
        &with_ha(&HA_HOOK.replace(r#""role": "standby""#, r#""role": "stanby""#)),
        &format!("{base}.peers[1].role"),
    );
    assert!(!m.contains("s3cr3t"), "{m}");
    refused(
        &with_ha(&HA_HOOK.replace(r#""this-server-name": "a""#, r#""this-server-name": "c""#)),
        &format!("{base}.this-server-name"),
    );
    refused(
        &with_ha(&HA_HOOK.replace(r#""http://10.0.0.3:8000/""#, r#""http://10.0.0.3/""#)),
        &format!("{base}.peers[1].url"),
    );
    let m = refused(
        &with_ha(&HA_HOOK.replace(
            r#""basic-auth-password": "s3cr3t-pw" },"#,
            r#""basic-auth-password": "s3cr3t-pw", "basic-auth-user": "x" },"#,
        )),
        &format!("{base}.peers[0].basic-auth-user"),
    );
    assert!(m.contains("duplicate"), "{m}");
    assert!(!m.contains("s3cr3t"), "{m}");
    refused(
        &with_ha(
            &HA_HOOK
                .replace(
                    "libdhcp_ha.so\", \"parameters\": { \"high-availability\": [ {",
                    "libdhcp_ha.so\", \"parameters\": { \"high-availability\": {",
                )
                .replace("} ] } } ],", "} } } ],"),
        ),
        "Dhcp4.hooks-libraries[0].parameters.high-availability",
    );
}

#[test]
fn hub_subnet_must_name_a_known_relationship() {
    let hub = std::fs::read_to_string(data("seed004/zaldua1zerb1.json")).unwrap();
    let bad = hub.replacen(r#""ha-server-name": "zaldua1zerb1-zaldua2""#, r#""ha-server-name": "somebody-else""#, 1);
    let m = refused(&bad, "Dhcp4.subnet4[1].user-context.ha-server-name");
    assert!(m.contains("somebody-else"), "{m}");
    // Without a name the subnet is accepted (Kea drops its packets) with a warning.
    let unnamed = hub.replacen(r#""user-context": { "ha-server-name": "zaldua1zerb1-zaldua2" },"#, "", 1);
    let (_d, _f, r) = load_text(&unnamed);
    let c = r.unwrap();
    assert_eq!(c.subnet(SubnetId(2)).unwrap().ha_relationship(), None);
    assert!(c.warnings.iter().any(|w| w.path == "Dhcp4.subnet4[1]" && w.message.contains("dropped")));
}

#[test]
fn harmless_keys_warn_and_keep_user_context() {
    let text = BASE.replace(
        r#""valid-lifetime": 600,"#,
        r#""valid-lifetime": 600, "loggers": [], "sanity-checks": { "lease-checks": "warn" }, "comment": "fine", "user-context": { "a": 1 },"#,
    )
    .replace(r#""id": 1,"#, r#""id": 1, "user-context": { "site": "venus", "ha-server-name": "x" }, "comment": "c","#);
    let (_d, file, r) = load_text(&text);
    let c = r.unwrap();
    let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    for p in
        ["Dhcp4.sanity-checks", "Dhcp4.user-context", "Dhcp4.subnet4[0].user-context.ha-server-name"]
    {
        assert!(paths.contains(&p), "{p} not in {paths:?}");
    }
    assert!(!paths.iter().any(|p| p.contains("comment")));
    let w = c.warnings.iter().find(|w| w.path == "Dhcp4.sanity-checks").unwrap();
    assert!(w.to_string().starts_with(&format!("{file}:4:")), "{w}");
    let s = &c.subnets()[0];
    assert_eq!(s.context().other.get("site").unwrap(), "venus");
    assert_eq!(s.ha_server_name(), Some("x"));
}

#[test]
fn kea_defaults_apply() {
    let (_d, _f, r) =
        load_text(r#"{ "Dhcp4": { "subnet4": [ { "subnet": "10.0.0.0/8" }, { "subnet": "11.0.0.0/8", "id": 0 } ] } }"#);
    let c = r.unwrap();
    assert_eq!(c.subnets()[0].id(), SubnetId(1));
    assert_eq!(c.subnets()[1].id(), SubnetId(2));
    let l = c.subnets()[0].lifetimes();
    assert_eq!(
        (l.valid, l.min_valid, l.max_valid, l.renew, l.rebind, l.calculate_tee_times),
        (7200, 7200, 7200, None, None, false)
    );
    assert!(!c.authoritative() && c.match_client_id() && c.echo_client_id());
    assert_eq!(c.decline_probation_period(), 86_400);
    assert_eq!(c.lease_database().memfile().unwrap().lfc_interval, 3600);
    assert!(c.interfaces().interfaces.is_empty());
    assert_eq!(c.host_reservation_identifiers()[0], HostIdentifierType::HwAddress);
    let f = c.subnets()[0].reservation_flags();
    assert!(!f.global && f.in_subnet && !f.out_of_pool);
}

/// Small mutations of a real seed: flip, drop or insert bytes.
fn mutated_seed() -> impl Strategy<Value = String> {
    let seed = std::fs::read_to_string(data("seed004/zaldua1zerb1.json")).unwrap();
    let len = seed.len();
    let edit = (0..len, any::<u8>(), 0..3u8);
    proptest::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut b = seed.clone().into_bytes();
        for (pos, byte, kind) in edits {
            let pos = pos.min(b.len().saturating_sub(1));
            match kind {
                0 => b[pos] = byte,
                1 => {
                    b.remove(pos);
                }
                _ => b.insert(pos, byte),
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse(&text, "fuzz.json");
    }

    #[test]
    fn json_like_noise_never_panics(text in "[{}\\[\\]\":,#/*<?a-z0-9 .\\-\n]{0,300}") {
        let _ = parse(&text, "fuzz.json");
    }

    #[test]
    fn mutated_configs_never_panic(text in mutated_seed()) {
        match parse(&text, "mutated.json") {
            Ok(_) => {}
            Err(e) => {
                // Errors always say where.
                let msg = e.to_string();
                prop_assert!(msg.starts_with("mutated.json"), "{}", msg);
            }
        }
    }
}

/// Two subnets on one link as Kea writes them, the network carrying
/// parameters its subnets inherit unless they set their own.
const SHARED: &str = r#"{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "eth0" ] },
    "valid-lifetime": 600, "next-server": "10.9.9.9",
    "option-data": [ { "name": "domain-name", "data": "global.example" } ],
    "subnet4": [ { "subnet": "192.0.2.0/24" } ],
    "shared-networks": [ {
        "name": "lan", "interface": "eth0", "valid-lifetime": 900, "authoritative": true,
        "relay": { "ip-addresses": [ "10.0.0.1" ] },
        "user-context": { "note": 1 },
        "option-data": [ { "name": "routers", "data": "10.1.0.1" } ],
        "subnet4": [
            { "subnet": "10.1.0.0/24", "pools": [ { "pool": "10.1.0.10-10.1.0.10" } ] },
            { "subnet": "10.2.0.0/24", "valid-lifetime": 1200, "relay": { "ip-addresses": [ "10.0.0.2" ] },
              "option-data": [ { "name": "routers", "data": "10.2.0.1" } ] } ] } ] } }"#;

#[test]
fn shared_networks_inherit_global_then_network_then_subnet() {
    let c = parse(SHARED, "test").unwrap();
    assert_eq!(c.shared_networks().len(), 1);
    let n = &c.shared_networks()[0];
    assert_eq!(
        (n.name.as_str(), n.interface.as_deref()),
        ("lan", Some("eth0"))
    );
    // Kea numbers each network's subnets first, then the top-level ones
    // (kea-dhcp4 2.2's config-get shows it), and keeps them ordered by id.
    let ids: Vec<u32> = c.subnets().iter().map(|s| s.id().0).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(n.subnets, [SubnetId(1), SubnetId(2)]);
    let (plain, first, second) = (&c.subnets()[2], &c.subnets()[0], &c.subnets()[1]);
    assert_eq!(plain.shared_network(), None);
    assert_eq!(
        (first.shared_network(), second.shared_network()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (
            plain.lifetimes().valid,
            first.lifetimes().valid,
            second.lifetimes().valid
        ),
        (600, 900, 1200)
    );
    assert!(!plain.authoritative() && first.authoritative() && second.authoritative());
    assert_eq!(first.boot().next_server, ip("10.9.9.9"));
    // Interface and relays: the subnet's own, else the network's.
    assert_eq!(first.interface(), Some("eth0"));
    assert_eq!(first.relay_addresses(), [ip("10.0.0.1")]);
    assert_eq!(second.relay_addresses(), [ip("10.0.0.2")]);
    assert_eq!(opt(first.options(), "routers"), [10, 1, 0, 1]);
    assert_eq!(opt(second.options(), "routers"), [10, 2, 0, 1]);
    assert_eq!(opt(second.options(), "domain-name"), b"global.example");
    assert!(plain.options().get(3).is_none());
}

#[test]
fn shared_network_sanity_checks_follow_kea() {
    let m = refused(
        &SHARED.replace(r#""name": "lan", "#, ""),
        "Dhcp4.shared-networks[0]",
    );
    assert!(m.contains("name"), "{m}");
    refused(
        &SHARED.replace(r#""name": "lan""#, r#""name": """#),
        "Dhcp4.shared-networks[0].name",
    );
    let twice = SHARED.replace(
        r#""shared-networks": [ {"#,
        r#""shared-networks": [ { "name": "lan", "subnet4": [ { "id": 9, "subnet": "10.9.0.0/24" } ] }, {"#,
    );
    let m = refused(&twice, "Dhcp4.shared-networks[1].name");
    assert!(m.contains("defined twice"), "{m}");
    let m = refused(
        &SHARED.replace(
            r#""subnet": "10.2.0.0/24","#,
            r#""subnet": "10.2.0.0/24", "authoritative": false,"#,
        ),
        "Dhcp4.shared-networks[0].subnet4[1].authoritative",
    );
    assert!(m.contains("authoritative"), "{m}");
    let m = refused(
        &SHARED.replace(
            r#""subnet": "10.2.0.0/24","#,
            r#""subnet": "10.2.0.0/24", "interface": "eth1","#,
        ),
        "Dhcp4.shared-networks[0].subnet4[1].interface",
    );
    assert!(m.contains("eth0"), "{m}");
    // A subnet id or prefix used twice, across the top level and networks
    // (networks are parsed first, as in Kea).
    refused(
        &SHARED.replace(
            r#"{ "subnet": "10.2.0.0/24""#,
            r#"{ "subnet": "192.0.2.0/24""#,
        ),
        "Dhcp4.subnet4[0].subnet",
    );
    let m = refused(
        &SHARED
            .replace(r#"{ "subnet": "10.1.0.0/24""#, r#"{ "id": 5, "subnet": "10.1.0.0/24""#)
            .replace(r#"[ { "subnet": "192.0.2.0/24" } ]"#, r#"[ { "id": 5, "subnet": "192.0.2.0/24" } ]"#),
        "Dhcp4.subnet4[0].id",
    );
    assert!(m.contains("already used"), "{m}");
    // An empty list, and a network without subnets, are fine (Kea too).
    parse(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""valid-lifetime": 600, "shared-networks": [],"#,
        ),
        "t",
    )
    .unwrap();
    parse(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""valid-lifetime": 600, "shared-networks": [ { "name": "x" } ],"#,
        ),
        "t",
    )
    .unwrap();
}

#[test]
fn lease_cache_parameters_inherit_and_are_checked() {
    let c = parse(
        &SHARED
            .replace(
                r#""valid-lifetime": 600,"#,
                r#""valid-lifetime": 600, "cache-threshold": 0.25,"#,
            )
            .replace(
                r#""valid-lifetime": 1200,"#,
                r#""valid-lifetime": 1200, "cache-threshold": 0.5, "cache-max-age": 100,"#,
            ),
        "t",
    )
    .unwrap();
    assert_eq!(
        c.subnets()[0].lease_cache(),
        LeaseCache {
            threshold: Some(0.25),
            max_age: None
        }
    );
    assert_eq!(
        c.subnets()[1].lease_cache(),
        LeaseCache {
            threshold: Some(0.5),
            max_age: Some(100)
        }
    );
    for bad in ["0", "1", "1.5", "-0.1"] {
        let m = refused(
            &BASE.replace(
                r#""valid-lifetime": 600,"#,
                &format!(r#""valid-lifetime": 600, "cache-threshold": {bad},"#),
            ),
            "Dhcp4.cache-threshold",
        );
        assert!(m.contains("greater than 0.0 and less than 1.0"), "{m}");
    }
}

#[test]
fn expired_leases_processing_takes_keas_defaults_and_limits() {
    assert_eq!(parse(BASE, "t").unwrap().expired_leases(), ExpiredLeases::default());
    let c = parse(
        &BASE.replace(
            r#""valid-lifetime": 600,"#,
            r#""valid-lifetime": 600, "expired-leases-processing": { "reclaim-timer-wait-time": 0, "hold-reclaimed-time": 0, "max-reclaim-time": 10000 },"#,
        ),
        "t",
    )
    .unwrap();
    let e = c.expired_leases();
    assert_eq!((e.reclaim_timer_wait_time, e.hold_reclaimed_time, e.max_reclaim_time, e.flush_reclaimed_timer_wait_time), (0, 0, 10_000, 25));
    let with = |k: &str, v: &str| {
        BASE.replace(r#""valid-lifetime": 600,"#, &format!(r#""valid-lifetime": 600, "expired-leases-processing": {{ "{k}": {v} }},"#))
    };
    let m = refused(&with("max-reclaim-time", "10001"), "Dhcp4.expired-leases-processing.max-reclaim-time");
    assert!(m.contains("expected maximum value of '10000'"), "{m}");
    let m = refused(&with("reclaim-timer-wait-time", "-1"), "Dhcp4.expired-leases-processing.reclaim-timer-wait-time");
    assert!(m.contains("must not be negative"), "{m}");
    refused(&with("frob", "1"), "Dhcp4.expired-leases-processing.frob");
}

/// Kea 2.2 accepts overlapping (not identical) prefixes and keeps subnets
/// ordered by id: the lowest id containing an address is "its" subnet, and a
/// shared network walks its subnets in id order.
#[test]
fn overlapping_subnets_are_accepted_and_ordered_by_id() {
    let c = parse(
        r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
            "subnet4": [ { "id": 22, "subnet": "10.0.0.0/24" }, { "id": 3, "subnet": "10.0.0.0/25" } ],
            "shared-networks": [ { "name": "n", "subnet4": [
                { "id": 9, "subnet": "10.1.0.0/24" }, { "id": 4, "subnet": "10.1.0.0/27" } ] } ] } }"#,
        "test",
    )
    .unwrap();
    let ids: Vec<u32> = c.subnets().iter().map(|s| s.id().0).collect();
    assert_eq!(ids, [3, 4, 9, 22]);
    assert_eq!(c.subnet_containing("10.0.0.200".parse().unwrap()).map(|s| s.id().0), Some(22));
    assert_eq!(c.subnet_containing("10.0.0.5".parse().unwrap()).map(|s| s.id().0), Some(3));
    assert_eq!(c.shared_networks()[0].subnets.iter().map(|i| i.0).collect::<Vec<_>>(), [4, 9]);
}
