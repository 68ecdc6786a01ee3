//! The Grafana dashboard and Prometheus alert rules the package ships (`packaging/`) name only
//! metrics, and label values, that xdhcpd's `/metrics` really exports: a renamed metric or HA
//! state fails here instead of leaving an alert that can never fire.

mod api_support;

use std::{collections::BTreeSet, path::Path};

use api_support::Api;
use dhcp_user::{
    api::metrics,
    ha::{PartnerState, State},
    xdp::AttachMode,
};
use prometheus_client::{encoding::text::encode, registry::Registry};

/// Every sample name an exposition declares (`# TYPE name counter` exports `name_total`).
fn exported(text: &str, names: &mut BTreeSet<String>) {
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("# TYPE ") else { continue };
        let mut f = rest.split_whitespace();
        let (Some(name), Some(kind)) = (f.next(), f.next()) else { continue };
        names.insert(if kind == "counter" { format!("{name}_total") } else { name.to_owned() });
    }
}

/// `xdhcp_…` identifiers in a text (PromQL inside JSON or YAML).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("xdhcp_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// Values a rule or panel gives `label` (`label="v"` or `label=~"a|b"`).
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for op in ["=\"", "=~\""] {
        let needle = format!("{label}{op}");
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let tail = &rest[at + needle.len()..];
            let end = tail.find('"').unwrap();
            let value = &tail[..end];
            if !value.contains('$') {
                out.extend(value.split('|').map(str::to_owned));
            }
            rest = &tail[end..];
        }
    }
    out
}

#[tokio::test]
async fn dashboard_and_alerts_use_exported_metrics() {
    // Everything /metrics registers: the always-present families from a real scrape, the HA and
    // XDP families as the daemon registers them when it has HA and XDP.
    let api = Api::new();
    let (status, text) = api.get("/metrics").await;
    assert_eq!(status, 200);
    let mut names = BTreeSet::new();
    exported(&text, &mut names);
    let mut reg = Registry::default();
    metrics::ha_metrics(&mut reg, &[]);
    metrics::xdp_mode_metrics(&mut reg, &[]);
    let mut more = String::new();
    encode(&mut more, &reg).unwrap();
    exported(&more, &mut names);
    assert!(names.contains("xdhcp_packets_total") && names.contains("xdhcp_ha_state"), "{names:?}");

    let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
    // `state` is an HA state, or a pool or lease state as the scrape shows them.
    let mut states_known: BTreeSet<String> =
        State::ALL.into_iter().map(State::name).chain([PartnerState::Unavailable.name()]).map(str::to_owned).collect();
    states_known.extend(label_values(&text, "state"));
    let modes: BTreeSet<String> =
        [AttachMode::Native, AttachMode::Generic, AttachMode::UserspaceOnly(String::new())].iter().map(|m| m.label().to_owned()).collect();
    for file in ["grafana/xdhcp-dashboard.json", "prometheus/xdhcp-alerts.yml"] {
        let text = std::fs::read_to_string(packaging.join(file)).unwrap();
        let used = referenced(&text);
        assert!(used.len() >= 5, "{file}: {used:?}");
        let unknown: Vec<_> = used.difference(&names).collect();
        assert!(unknown.is_empty(), "{file} uses metrics /metrics does not export: {unknown:?} (exported: {names:?})");
        let states: Vec<_> = label_values(&text, "state")
            .into_iter()
            .filter(|s| !states_known.contains(s))
            .collect();
        assert!(states.is_empty(), "{file}: no such HA or pool state: {states:?}");
        let bad_modes: Vec<_> = label_values(&text, "mode").into_iter().filter(|m| !modes.contains(m)).collect();
        assert!(bad_modes.is_empty(), "{file}: no such XDP mode: {bad_modes:?}");
    }
    // The dashboard is valid JSON with panels.
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(packaging.join("grafana/xdhcp-dashboard.json")).unwrap()).unwrap();
    assert!(dash["panels"].as_array().is_some_and(|p| p.len() > 10));
}
