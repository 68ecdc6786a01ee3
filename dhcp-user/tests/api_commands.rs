//! Each command family through the router, checked against what Kea 2.2
//! (`kea-dhcp4` + `libdhcp_lease_cmds.so`) answered to the same requests.

mod api_support;

use api_support::{Api, rt};
use serde_json::json;

#[tokio::test]
async fn version_list_status_and_unsupported() {
    let api = Api::new();
    let v = api.cmd("version-get", None).await;
    assert_eq!(v["result"], 0);
    assert!(
        v["arguments"]["extended"]
            .as_str()
            .unwrap()
            .contains("xdhcpd")
    );

    let v = api.cmd("list-commands", None).await;
    let list: Vec<&str> = v["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        "lease4-get",
        "lease4-get-page",
        "config-set",
        "dhcp-disable",
        "statistic-get-all",
        "shutdown",
    ] {
        assert!(list.contains(&c), "{c} missing from {list:?}");
    }
    assert!(
        !list.iter().any(|c| c.starts_with("ha-")),
        "no HA configured: ha-* not listed"
    );

    let v = api.cmd("status-get", None).await;
    assert_eq!(v["result"], 0);
    assert_eq!(v["arguments"]["pid"], std::process::id());
    assert_eq!(v["arguments"]["xdhcp"]["dhcp-enabled"], true);

    assert_eq!(
        rt(&api.cmd("foo-bar", None).await),
        (2, "'foo-bar' command not supported.".into())
    );
    let (code, text) = rt(&api.cmd("ha-heartbeat", None).await);
    assert_eq!(code, 2);
    assert_eq!(text, "'ha-heartbeat' command not supported.");
}

#[tokio::test]
async fn service_framing_is_an_array_of_one() {
    let api = Api::new();
    let (status, v) = api
        .post(&json!({ "command": "lease4-get-all", "service": ["dhcp4"] }))
        .await;
    assert_eq!(status, 200);
    // Exactly what Kea's control agent sends for an empty store.
    assert_eq!(
        v,
        json!([ { "arguments": { "leases": [] }, "result": 3, "text": "0 IPv4 lease(s) found." } ])
    );
    let (_, v) = api
        .post(&json!({ "command": "version-get", "service": ["dhcp6"] }))
        .await;
    assert_eq!(v[0]["result"], 1);
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn lease_json_is_keas() {
    let api = Api::new();
    let add = json!({"ip-address": "192.0.2.12", "hw-address": "1a:1b:1c:1d:1e:2f", "client-id": "01:02:03",
        "subnet-id": 1, "valid-lft": 100, "expire": 2000000000});
    assert_eq!(
        rt(&api.cmd("lease4-add", Some(add)).await),
        (0, "Lease for address 192.0.2.12, subnet-id 1 added.".into())
    );
    let got = api
        .cmd("lease4-get", Some(json!({"ip-address": "192.0.2.12"})))
        .await;
    // Kea 2.2's answer, byte for byte after parsing.
    let kea: serde_json::Value = serde_json::from_str(r#"{ "arguments": { "client-id": "01:02:03", "cltt": 1999999900, "fqdn-fwd": false, "fqdn-rev": false, "hostname": "", "hw-address": "1a:1b:1c:1d:1e:2f", "ip-address": "192.0.2.12", "state": 0, "subnet-id": 1, "valid-lft": 100 }, "result": 0, "text": "IPv4 lease found." }"#).unwrap();
    assert_eq!(got, kea);
    // The row is on disk when the answer arrives.
    let csv = std::fs::read_to_string(&api.lease_file).unwrap();
    assert!(
        csv.contains("192.0.2.12,1a:1b:1c:1d:1e:2f,01:02:03,100,2000000000,1,"),
        "{csv}"
    );
}

#[tokio::test]
async fn lease_lifecycle() {
    let api = Api::new();
    let add = |ip: &str, hw: &str| json!({"ip-address": ip, "hw-address": hw});
    let a = api
        .cmd(
            "lease4-add",
            Some(
                json!({"ip-address": "192.0.2.11", "hw-address": "1a:1b:1c:1d:1e:1f",
        "hostname": "h1", "user-context": {"a": 1}}),
            ),
        )
        .await;
    assert_eq!(rt(&a).0, 0, "{a}");
    assert_eq!(
        rt(&api
            .cmd("lease4-add", Some(add("192.0.2.11", "1a:1b:1c:1d:1e:1f")))
            .await),
        (1, "IPv4 lease already exists.".into())
    );
    assert_eq!(rt(&api.cmd("lease4-add", Some(json!({"ip-address": "192.0.2.14", "hw-address": "1a:1b:1c:1d:1e:1f", "state": 1}))).await).0, 0);
    assert_eq!(
        rt(&api
            .cmd("lease4-add", Some(add("192.0.2.15", "1a:1b:1c:1d:1e:1f")))
            .await)
        .0,
        0
    );
    assert_eq!(
        rt(&api
            .cmd(
                "lease4-add",
                Some(add("198.51.100.100", "02:00:00:00:00:01"))
            )
            .await)
        .0,
        0
    );

    let v = api
        .cmd("lease4-get", Some(json!({"ip-address": "192.0.2.11"})))
        .await;
    assert_eq!(v["arguments"]["user-context"], json!({"a": 1}));
    assert_eq!(
        v["arguments"]["valid-lft"], 3600,
        "subnet's valid-lifetime by default"
    );
    assert_eq!(
        rt(&api
            .cmd("lease4-get", Some(json!({"ip-address": "192.0.2.19"})))
            .await),
        (3, "Lease not found.".into())
    );
    let v = api.cmd("lease4-get", Some(json!({"identifier-type": "hw-address", "identifier": "02:00:00:00:00:01", "subnet-id": 2}))).await;
    assert_eq!(v["arguments"]["ip-address"], "198.51.100.100");

    let v = api.cmd("lease4-get-all", None).await;
    assert_eq!(rt(&v), (0, "4 IPv4 lease(s) found.".into()));
    let v = api
        .cmd("lease4-get-all", Some(json!({"subnets": [2]})))
        .await;
    assert_eq!(v["arguments"]["leases"].as_array().unwrap().len(), 1);

    // Paging as Kea's HA sync does it: from "start", then from the last address.
    let p1 = api
        .cmd(
            "lease4-get-page",
            Some(json!({"from": "start", "limit": 3})),
        )
        .await;
    assert_eq!(p1["arguments"]["count"], 3);
    let last = p1["arguments"]["leases"][2]["ip-address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(last, "192.0.2.15");
    let p2 = api
        .cmd("lease4-get-page", Some(json!({"from": last, "limit": 3})))
        .await;
    assert_eq!(p2["arguments"]["count"], 1);
    assert_eq!(p2["arguments"]["leases"][0]["ip-address"], "198.51.100.100");
    let p3 = api
        .cmd(
            "lease4-get-page",
            Some(json!({"from": "198.51.100.100", "limit": 3})),
        )
        .await;
    assert_eq!(rt(&p3), (3, "0 IPv4 lease(s) found.".into()));

    let v = api
        .cmd(
            "lease4-get-by-hw-address",
            Some(json!({"hw-address": "1a:1b:1c:1d:1e:1f"})),
        )
        .await;
    assert_eq!(rt(&v), (0, "3 IPv4 lease(s) found.".into()));
    let v = api
        .cmd("lease4-get-by-hostname", Some(json!({"hostname": "H1"})))
        .await;
    assert_eq!(rt(&v), (0, "1 IPv4 lease(s) found.".into()));

    // Update: existing, missing, forced.
    let upd =
        json!({"ip-address": "192.0.2.11", "hw-address": "1a:1b:1c:1d:1e:1f", "hostname": "h2"});
    assert_eq!(
        rt(&api.cmd("lease4-update", Some(upd)).await),
        (0, "IPv4 lease updated.".into())
    );
    assert_eq!(
        api.cmd("lease4-get", Some(json!({"ip-address": "192.0.2.11"})))
            .await["arguments"]["hostname"],
        "h2"
    );
    let (code, text) = rt(&api
        .cmd(
            "lease4-update",
            Some(add("192.0.2.16", "1a:1b:1c:1d:1e:1f")),
        )
        .await);
    assert_eq!(code, 1);
    assert!(
        text.starts_with("failed to update the lease with address 192.0.2.16"),
        "{text}"
    );
    let mut forced = add("192.0.2.16", "1a:1b:1c:1d:1e:1f");
    forced["force-create"] = json!(true);
    assert_eq!(
        rt(&api.cmd("lease4-update", Some(forced)).await),
        (0, "IPv4 lease added.".into())
    );

    assert_eq!(
        rt(&api
            .cmd("lease4-del", Some(json!({"ip-address": "192.0.2.16"})))
            .await),
        (0, "IPv4 lease deleted.".into())
    );
    assert_eq!(
        rt(&api
            .cmd("lease4-del", Some(json!({"ip-address": "192.0.2.16"})))
            .await),
        (3, "IPv4 lease not found.".into())
    );
    let csv = std::fs::read_to_string(&api.lease_file).unwrap();
    let last_row = csv.lines().rfind(|l| l.starts_with("192.0.2.16,")).unwrap();
    assert_eq!(
        last_row.split(',').nth(3),
        Some("0"),
        "deletion on disk: {last_row}"
    );

    assert_eq!(
        rt(&api.cmd("lease4-wipe", Some(json!({"subnet-id": 1}))).await),
        (0, "Deleted 3 IPv4 lease(s) from subnet(s) 1".into())
    );
    assert_eq!(
        rt(&api.cmd("lease4-wipe", Some(json!({"subnet-id": 1}))).await),
        (3, "Deleted 0 IPv4 lease(s) from subnet(s) 1".into())
    );
    assert_eq!(
        rt(&api.cmd("lease4-wipe", None).await),
        (0, "Deleted 1 IPv4 lease(s) from subnet(s) 1 2".into())
    );
    assert!(api.leases().is_empty());
}

/// Refusals with Kea 2.2's texts (positions like `(<wire>:0:37)` omitted).
#[tokio::test]
async fn lease_argument_errors_name_the_argument() {
    let api = Api::new();
    let cases = [
        (
            "lease4-add",
            json!({"ip-address": "10.0.0.1", "hw-address": "1a:1b:1c:1d:1e:1f"}),
            "subnet-id not specified and failed to find a subnet for address 10.0.0.1",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.13"}),
            "missing parameter 'hw-address'",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.14", "hw-address": "1a:1b:1c:1d:1e:1f", "subnet-id": "a"}),
            "invalid type specified for parameter 'subnet-id'",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.18", "hw-address": "1a:1b:1c:1d:1e:1f", "valid-lft": "x"}),
            "invalid type specified for parameter 'valid-lft'",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.18", "hw-address": "1a:1b:1c:1d:1e:1f", "subnet-id": 9}),
            "Invalid subnet-id: No IPv4 subnet with subnet-id=9 currently configured.",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.18", "hw-address": "1a:1b:1c:1d:1e:1f", "user-context": 5}),
            "Invalid user context '5' is not a JSON map.",
        ),
        (
            "lease4-add",
            json!({"ip-address": "192.0.2.18", "hw-address": "1a:1b:1c:1d:1e:1f", "state": 7}),
            "Invalid state value: 7, supported values are: 0 (default), 1 (declined) and 2 (expired-reclaimed)",
        ),
        (
            "lease4-get",
            json!({"identifier-type": "hw-address", "identifier": "1a:1b:1c:1d:1e:2f"}),
            "Mandatory 'subnet-id' parameter missing.",
        ),
        (
            "lease4-get",
            json!({}),
            "Mandatory 'subnet-id' parameter missing.",
        ),
        (
            "lease4-get",
            json!({"ip-address": 5}),
            "'ip-address' is not a string.",
        ),
        (
            "lease4-get-page",
            json!({"from": "start", "limit": 0}),
            "page size of retrieved leases must not be 0",
        ),
        (
            "lease4-get-page",
            json!({"from": "x", "limit": 2}),
            "'from' parameter value is neither 'start' keyword nor a valid IPv4 address",
        ),
        (
            "lease4-get-page",
            json!({"limit": 2}),
            "'from' parameter not specified",
        ),
        (
            "lease4-get-page",
            json!({"from": "start", "limit": "x"}),
            "'limit' parameter must be a number",
        ),
        (
            "lease4-get-by-hw-address",
            json!({"hw-address": 5}),
            "'hw-address' parameter must be a string",
        ),
        (
            "lease4-get-by-hw-address",
            json!({}),
            "'hw-address' parameter not specified",
        ),
        (
            "lease4-get-by-hostname",
            json!({"hostname": ""}),
            "'hostname' parameter is empty",
        ),
        (
            "lease4-add",
            json!({"subnet-id": 1, "ip-address": "192.0.2.300", "hw-address": "1a:1b:1c:1d:1e:1f"}),
            "Failed to convert '192.0.2.300' to address: Failed to convert string to address '192.0.2.300': Invalid argument",
        ),
        (
            "lease4-get",
            json!({"ip-address": ""}),
            "Failed to convert string to address '': Invalid argument",
        ),
        ("lease4-get-all", json!({}), "'subnets' parameter not specified"),
        ("lease4-get-all", json!({"subnets": ["x"]}), "listed subnet identifiers must be numbers"),
        ("lease4-get-all", json!({"subnets": true}), "'subnets' parameter must be a list"),
        ("lease4-get-page", json!({}), "'from' parameter not specified"),
        ("lease4-get-page", json!({"from": "start"}), "'limit' parameter not specified"),
        ("lease4-get-page", json!({"from": 1}), "'from' parameter must be a string"),
        (
            "lease4-get-page",
            json!({"from": "start", "limit": -5}),
            "page size of retrieved leases must not be greater than 4294967295",
        ),
        (
            "lease4-get-page",
            json!({"from": "start", "limit": 4294967299u64}),
            "page size of retrieved leases must not be greater than 4294967295",
        ),
        ("lease4-get-page", json!({"from": "start", "limit": true}), "'limit' parameter must be a number"),
        ("lease4-get-by-client-id", json!({}), "'client-id' parameter not specified"),
        ("lease4-get-by-client-id", json!({"client-id": ""}), "Empty DUIDs are not allowed"),
        (
            "lease4-get-by-client-id",
            json!({"client-id": " "}),
            "two consecutive separators (' ') specified in a decoded string ' '",
        ),
        ("lease4-get-by-client-id", json!({"client-id": "00"}), "client-id is too short (1), at least 2 is required"),
        ("lease4-get-by-client-id", json!({"client-id": "xx"}), "'xx' is not a valid string of hexadecimal digits"),
        ("lease4-get-by-client-id", json!({"client-id": 0}), "'client-id' parameter must be a string"),
        ("lease4-get-by-hostname", json!({}), "'hostname' parameter not specified"),
        ("lease4-get-by-hostname", json!({"hostname": 0}), "'hostname' parameter must be a string"),
        (
            "lease4-get-by-hw-address",
            json!({"hw-address": " "}),
            "' ' is not a valid hexadecimal digit in decoded string ' '",
        ),
        (
            "lease4-get-by-hw-address",
            json!({"hw-address": "aaaaaaaaaaaaaaaaaaaaaaa"}),
            "invalid format of the decoded string 'aaaaaaaaaaaaaaaaaaaaaaa'",
        ),
        (
            "dhcp-disable",
            json!({"max-period": 0}),
            "'max-period' must be positive integer",
        ),
        (
            "dhcp-disable",
            json!({"max-period": "x"}),
            "'max-period' argument must be a number",
        ),
        (
            "dhcp-disable",
            json!({"origin": "foo"}),
            "invalid value used for 'origin' parameter: foo",
        ),
        (
            "dhcp-disable",
            json!(5),
            "arguments for the 'dhcp-disable' command must be a map",
        ),
    ];
    for (cmd, args, text) in cases {
        let before = api.fingerprint();
        let v = api.cmd(cmd, Some(args.clone())).await;
        assert_eq!(rt(&v), (1, text.to_owned()), "{cmd} {args}");
        assert_eq!(api.fingerprint(), before, "{cmd} {args} changed state");
    }
    assert_eq!(
        rt(&api.cmd("lease4-get", None).await),
        (1, "Parameters missing or are not a map.".into())
    );
    assert_eq!(
        rt(&api.cmd("lease4-add", None).await),
        (1, "no parameters specified for the command".into())
    );
    for cmd in ["lease4-get-by-client-id", "lease4-get-by-hostname", "lease4-get-by-hw-address"] {
        assert_eq!(rt(&api.cmd(cmd, None).await), (1, "Command arguments missing or a not a map.".into()), "{cmd}");
    }
    assert_eq!(
        rt(&api.cmd("lease4-get-page", None).await),
        (1, "no parameters specified for the lease4-get-page command".into())
    );
}

#[tokio::test]
async fn dhcp_disable_and_enable() {
    let api = Api::new();
    let until = || api.state.core.dhcp_disabled_until();
    assert_eq!(
        rt(&api
            .cmd("dhcp-disable", Some(json!({"max-period": 5})))
            .await),
        (0, "DHCPv4 service disabled for 5 seconds".into())
    );
    let now = dhcp_user::clock::unix_now();
    let t = until().unwrap();
    assert!((now + 4..=now + 6).contains(&t), "{t} vs {now}");
    assert!(!dhcp_user::api::command::dhcp_enabled(Some(t), now));
    assert!(
        dhcp_user::api::command::dhcp_enabled(Some(t), t),
        "max-period over: serving again"
    );
    assert_eq!(
        api.cmd("status-get", None).await["arguments"]["xdhcp"]["dhcp-enabled"],
        false
    );
    assert_eq!(
        rt(&api.cmd("dhcp-enable", None).await),
        (0, "DHCP service successfully enabled".into())
    );
    assert_eq!(until(), None);
    assert_eq!(
        rt(&api
            .cmd("dhcp-disable", Some(json!({"origin": "ha-partner"})))
            .await),
        (0, "DHCPv4 service disabled".into())
    );
    assert_eq!(until(), Some(u64::MAX));
}

#[tokio::test]
async fn config_commands() {
    let api = Api::new();
    let subnets = || api.state.core.policy().subnets.len();
    let got = api.cmd("config-get", None).await;
    assert_eq!(got["result"], 0);
    let mut cfg = got["arguments"].clone();
    assert_eq!(cfg["Dhcp4"]["subnet4"].as_array().unwrap().len(), 2);

    assert_eq!(api.cmd("config-test", Some(cfg.clone())).await["result"], 0);
    let (code, text) = rt(&api
        .cmd("config-test", Some(json!({"Dhcp4": {"foo": 1}})))
        .await);
    assert_eq!(code, 1);
    assert!(text.contains("foo"), "{text}");
    assert_eq!(
        rt(&api.cmd("config-test", None).await),
        (1, "Missing mandatory 'arguments' parameter.".into())
    );

    // An invalid config-set changes nothing.
    let before = api.fingerprint();
    let mut bad = cfg.clone();
    bad["Dhcp4"]["subnet4"][0]["pools"][0]["pool"] = json!("192.0.2.30-192.0.2.20");
    assert_eq!(api.cmd("config-set", Some(bad)).await["result"], 1);
    // Neither does one that needs a restart.
    let mut other_file = cfg.clone();
    other_file["Dhcp4"]["lease-database"]["name"] = json!("/tmp/elsewhere.csv");
    let (code, text) = rt(&api.cmd("config-set", Some(other_file)).await);
    assert_eq!(code, 1);
    assert!(text.contains("restart"), "{text}");
    assert_eq!(api.fingerprint(), before);

    // A valid one is applied at once.
    cfg["Dhcp4"]["subnet4"].as_array_mut().unwrap().pop();
    assert_eq!(
        rt(&api.cmd("config-set", Some(cfg.clone())).await),
        (0, "Configuration successful.".into())
    );
    assert_eq!(subnets(), 1);
    assert_eq!(api.cmd("config-get", None).await["arguments"], cfg);

    // config-write: next to the config file only.
    let v = api
        .cmd("config-write", Some(json!({"filename": "written.json"})))
        .await;
    assert_eq!(v["result"], 0, "{v}");
    let written = api.dir.path().join("written.json");
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(
        v["arguments"]["size"],
        std::fs::metadata(&written).unwrap().len()
    );
    let v = api
        .cmd(
            "config-write",
            Some(json!({"filename": "/etc/xdhcp-test.json"})),
        )
        .await;
    assert_eq!(v["result"], 1);
    assert!(!std::path::Path::new("/etc/xdhcp-test.json").exists());

    // config-reload: back to the file (two subnets).
    assert_eq!(
        rt(&api.cmd("config-reload", None).await),
        (0, "Configuration successful.".into())
    );
    assert_eq!(subnets(), 2);
    // A broken file is refused and the running config stays.
    std::fs::write(&api.config_path, "{ nope").unwrap();
    let (code, text) = rt(&api.cmd("config-reload", None).await);
    assert_eq!(code, 1);
    assert!(text.starts_with("Config reload failed"), "{text}");
    assert_eq!(subnets(), 2);
}

#[tokio::test]
async fn statistics_use_kea_names() {
    let api = Api::new();
    for (i, ip) in ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        .iter()
        .enumerate()
    {
        let mut a = json!({"ip-address": ip, "hw-address": format!("02:00:00:00:00:{i:02x}")});
        if i == 2 {
            a["state"] = json!(1);
        }
        assert_eq!(api.cmd("lease4-add", Some(a)).await["result"], 0);
    }
    {
        use dhcp_user::core::{Counter, Sent};
        let core = &api.state.core;
        core.count(Counter::Received(dhcp_user::dhcp::inbound::Kind::Discover), 4);
        core.count(Counter::Sent(Sent::Ack), 2);
        core.count(Counter::Dropped(dhcp_user::dhcp::inbound::DropReason::Truncated), 1);
    }
    let v = api.cmd("statistic-get-all", None).await;
    assert_eq!(v["result"], 0);
    let a = &v["arguments"];
    let val = |k: &str| {
        a[k][0][0]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {a}"))
    };
    assert_eq!(val("pkt4-received"), 5);
    assert_eq!(val("pkt4-discover-received"), 4);
    assert_eq!(val("pkt4-ack-sent"), 2);
    assert_eq!(val("pkt4-receive-drop"), 1);
    assert_eq!(val("subnet[1].total-addresses"), 11);
    assert_eq!(
        val("subnet[1].assigned-addresses"),
        3,
        "Kea counts declined as assigned too"
    );
    assert_eq!(val("subnet[1].declined-addresses"), 1);
    assert_eq!(val("subnet[2].total-addresses"), 50);
    let stamp = a["pkt4-received"][0][1].as_str().unwrap();
    assert_eq!(stamp.len(), "2026-11-24 21:07:31.991385".len(), "{stamp}");

    let one = api
        .cmd("statistic-get", Some(json!({"name": "pkt4-ack-sent"})))
        .await;
    assert_eq!(one["arguments"].as_object().unwrap().len(), 1);
    assert_eq!(one["arguments"]["pkt4-ack-sent"][0][0], 2);
}

#[tokio::test]
async fn shutdown_cancels_the_token() {
    let api = Api::new();
    assert_eq!(
        rt(&api.cmd("shutdown", None).await),
        (0, "Shutting down.".into())
    );
    assert!(api.shutdown.is_cancelled());
}

#[tokio::test]
async fn status_page_and_json() {
    let api = Api::new();
    api.cmd(
        "lease4-add",
        Some(json!({"ip-address": "192.0.2.10", "hw-address": "02:00:00:00:00:01"})),
    )
    .await;
    let (s, html) = api.get("/").await;
    assert_eq!(s, 200);
    assert!(html.contains("status.json"));
    let (s, body) = api.get("/status.json").await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["subnets"][0]["active"], 1);
    assert_eq!(v["subnets"][0]["total"], 11);
    assert_eq!(v["events"][0]["text"], "lease4-add 192.0.2.10");
}
