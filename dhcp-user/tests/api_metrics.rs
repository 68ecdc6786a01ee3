//! `/metrics` parsed by a real Prometheus text-format parser.

mod api_support;

use api_support::Api;
use serde_json::json;

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("{name}{labels:?} not found"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn metrics_after_lease_adds() {
    let api = Api::new();
    for (i, ip) in ["192.0.2.10", "192.0.2.11", "192.0.2.12", "198.51.100.100"]
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
        core.count(Counter::Received(dhcp_user::dhcp::inbound::Kind::Discover), 7);
        core.count(Counter::Sent(Sent::Offer), 6);
        core.count(Counter::Dropped(dhcp_user::dhcp::inbound::DropReason::BadOption), 2);
    }
    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let v = |n: &str, l: &[(&str, &str)]| value(&scrape, n, l);
    assert_eq!(
        v(
            "xdhcp_packets_total",
            &[("path", "user"), ("type", "discover")]
        ),
        7.0
    );
    assert_eq!(v("xdhcp_replies_total", &[("type", "offer")]), 6.0);
    // Counted offers only (none were made through the engine here); the
    // DISCOVER flood lab test sees them move.
    assert_eq!(v("xdhcp_offers_held", &[]), 0.0);
    assert_eq!(v("xdhcp_offers_unheld_total", &[]), 0.0);
    assert_eq!(v("xdhcp_dropped_total", &[("reason", "bad_option")]), 2.0);
    assert_eq!(
        v("xdhcp_dropped_total", &[("reason", "truncated")]),
        0.0,
        "zeros exported"
    );
    assert_eq!(
        v(
            "xdhcp_pool_addresses",
            &[("subnet", "1"), ("state", "total")]
        ),
        11.0
    );
    assert_eq!(
        v(
            "xdhcp_pool_addresses",
            &[("subnet", "1"), ("state", "assigned")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "xdhcp_pool_addresses",
            &[("subnet", "1"), ("state", "declined")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "xdhcp_pool_addresses",
            &[("subnet", "2"), ("state", "assigned")]
        ),
        1.0
    );
    assert_eq!(v("xdhcp_leases", &[("state", "active")]), 3.0);
    assert_eq!(v("xdhcp_leases", &[("state", "declined")]), 1.0);
    assert_eq!(v("xdhcp_dhcp_enabled", &[]), 1.0);
    api.cmd("dhcp-disable", None).await;
    let (_, text) = api.get("/metrics").await;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(value(&scrape, "xdhcp_dhcp_enabled", &[]), 0.0);
}

/// A `config-set` that adds an HA relationship whose listener has neither
/// basic auth nor TLS: `/metrics` and the status page show its warning
/// from then on; one that protects it clears it (issue #19: the warnings
/// were computed only at start).
#[tokio::test]
async fn security_warnings_follow_config_set() {
    let api = Api::new();
    let scrape = |text: String| prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let (_, text) = api.get("/metrics").await;
    assert_eq!(value(&scrape(text), "xdhcp_security_warnings", &[]), 0.0);

    let mut cfg: serde_json::Value = serde_json::from_str(&api_support::config_text(&api.lease_file, true)).unwrap();
    let peer = |name: &str, url: &str, role: &str| json!({ "name": name, "url": url, "role": role, "auto-failover": true });
    cfg["Dhcp4"]["hooks-libraries"] = json!([
        { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so" },
        { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so", "parameters": { "high-availability": [ {
            "this-server-name": "one", "mode": "hot-standby",
            "peers": [ peer("one", "http://192.0.2.1:8001/", "primary"), peer("two", "http://192.0.2.2:8001/", "standby") ] } ] } }
    ]);
    let answer = api.cmd("config-set", Some(cfg.clone())).await;
    assert_eq!(answer["result"], 0, "{answer}");
    let (_, text) = api.get("/metrics").await;
    let s = scrape(text);
    assert_eq!(value(&s, "xdhcp_security_warnings", &[]), 1.0);
    let w = s.samples.iter().find(|x| x.metric == "xdhcp_security_warning").expect("one series per warning");
    assert!(w.labels.get("warning").is_some_and(|t| t.contains("192.0.2.1:8001")), "{w:?}");
    let (_, page) = api.get("/status.json").await;
    let page: serde_json::Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["security-warnings"].as_array().map(Vec::len), Some(1), "{}", page["security-warnings"]);

    let ha = &mut cfg["Dhcp4"]["hooks-libraries"][1]["parameters"]["high-availability"][0]["peers"][0];
    ha["basic-auth-user"] = json!("kea");
    ha["basic-auth-password"] = json!("s3cret");
    let answer = api.cmd("config-set", Some(cfg)).await;
    assert_eq!(answer["result"], 0, "{answer}");
    let (_, text) = api.get("/metrics").await;
    assert_eq!(value(&scrape(text), "xdhcp_security_warnings", &[]), 0.0);
    let (_, page) = api.get("/status.json").await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&page).unwrap()["security-warnings"], json!([]));
}
