//! `GET /metrics`: Prometheus text format (OpenMetrics via
//! `prometheus-client`). A fresh registry is filled from the shared state on
//! each scrape: the daemon's counters already live in [`crate::server::Stats`],
//! so keeping a second set of live metric objects would only let them drift.
//!
//! | metric | labels |
//! |---|---|
//! | `xdhcp_packets_total` | `path="xdp"`: `type` = XDP outcome; `path="user"`: `type` = message kind |
//! | `xdhcp_replies_total` | `type` = offer, ack, nak |
//! | `xdhcp_dropped_total` | `reason` = malformed-packet reason |
//! | `xdhcp_unanswered_total` | `reason` = why a request got no reply |
//! | `xdhcp_pool_addresses` | `subnet`, `state` = total, assigned, declined |
//! | `xdhcp_leases` | `state` = active, expired, declined, reclaimed |
//! | `xdhcp_store_failures_total`, `xdhcp_send_failures_total` | |
//! | `xdhcp_dhcp_enabled` | 0 while `dhcp-disable` is in force |
//! | `xdhcp_xdp_attach_mode` | `interface`, `mode` = native, generic, userspace-only, `reason` (empty when native): 1 |
//! | `xdhcp_xdp_fallbacks_total` | `interface`: moves from native to generic mode at run time |
//! | `xdhcp_ha_state` | `relationship`, `state`: 1 for this server's current HA state, 0 for every other |
//! | `xdhcp_ha_partner_state` | `relationship`, `state`: the same for the partner as last heard (`unavailable` when out of touch) |
//! | `xdhcp_ha_unsent_updates` | `relationship`: lease updates not yet sent to the partner |
//! | `xdhcp_ha_replication_backlog` | `relationship`: updates queued for replication |
//! | `xdhcp_ha_heartbeat_age_seconds` | `relationship`: since the last heartbeat answer |
//!
//! HA metrics come from `status-get`'s `high-availability` list, so they
//! say what the command API says; `relationship` is this server's name in
//! the relationship (unique across relationships, as Kea requires). They
//! are absent without HA.
//!
//! `assigned` excludes declined addresses, so `total − assigned − declined`
//! is what is free (Kea's `assigned-addresses` includes both).

use std::sync::{Arc, atomic::AtomicU64};

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use serde_json::{Value, json};

use super::{ApiState, command::dhcp_enabled, stats::pool_counts};
use crate::{dhcp::inbound::DropReason, server::unix_now};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn counter_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every state Kea's HA state machine reports, so alerts can match on a
/// zero as well as on a one.
pub const HA_STATES: &[&str] = &[
    "backup",
    "communication-recovery",
    "hot-standby",
    "load-balancing",
    "in-maintenance",
    "partner-down",
    "partner-in-maintenance",
    "passive-backup",
    "ready",
    "syncing",
    "terminated",
    "waiting",
    "unavailable",
];

/// Registers the HA families and fills them from `ha`, `status-get`'s
/// `high-availability` list. Fields missing from an entry leave their
/// sample out rather than exporting a made-up zero.
pub fn ha_metrics(reg: &mut Registry, ha: &Value) {
    let Some(list) = ha.as_array() else {
        return;
    };
    let state = gauge_family(
        reg,
        "xdhcp_ha_state",
        "1 for this server's current HA state, 0 for the others",
    );
    let partner = gauge_family(
        reg,
        "xdhcp_ha_partner_state",
        "1 for the partner's last known HA state (unavailable when out of touch), 0 for the others",
    );
    let unsent = gauge_family(
        reg,
        "xdhcp_ha_unsent_updates",
        "Lease updates not yet sent to the partner",
    );
    let backlog = gauge_family(
        reg,
        "xdhcp_ha_replication_backlog",
        "Lease updates queued for replication",
    );
    let age = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    reg.register(
        "xdhcp_ha_heartbeat_age_seconds",
        "Seconds since the partner last answered a heartbeat",
        age.clone(),
    );
    let one_hot = |family: &Family<Labels, Gauge>, rel: &str, current: &str| {
        for s in HA_STATES.iter().copied().chain(
            // A state this list does not know still shows up.
            (!HA_STATES.contains(&current)).then_some(current),
        ) {
            family
                .get_or_create(&labels(&[("relationship", rel), ("state", s)]))
                .set(i64::from(s == current));
        }
    };
    for (i, r) in list.iter().enumerate() {
        let servers = &r["ha-servers"];
        let local = &servers["local"];
        let remote = &servers["remote"];
        let fallback = i.to_string();
        let rel = local["server-name"].as_str().unwrap_or(&fallback);
        if let Some(s) = local["state"].as_str() {
            one_hot(&state, rel, s);
        }
        if remote.is_object() {
            let lost = remote["in-touch"] == json!(false)
                || remote["communication-interrupted"] == json!(true);
            let s = if lost {
                Some("unavailable")
            } else {
                remote["last-state"].as_str()
            };
            if let Some(s) = s {
                one_hot(&partner, rel, s);
            }
        }
        let l = labels(&[("relationship", rel)]);
        if let Some(n) = r["unsent-update-count"].as_u64() {
            unsent.get_or_create(&l).set(gauge(n));
        }
        if let Some(n) = r["replication-backlog"].as_u64() {
            backlog.get_or_create(&l).set(gauge(n));
        }
        let heard = r["last-heartbeat-age"].as_f64().or(remote["age"].as_f64());
        if let Some(a) = heard {
            age.get_or_create(&l).set(a);
        }
    }
}

/// Renders every metric; `ha` is [`super::status::ha_status`]'s answer.
pub fn render(state: &ApiState, ha: Option<&Value>) -> String {
    let mut reg = Registry::default();
    let packets = counter_family(
        &mut reg,
        "xdhcp_packets",
        "DHCP packets seen, by path (xdp, user) and type",
    );
    let replies = counter_family(
        &mut reg,
        "xdhcp_replies",
        "Replies sent by the daemon, by message type",
    );
    let dropped = counter_family(
        &mut reg,
        "xdhcp_dropped",
        "Packets dropped before a decision, by reason",
    );
    let unanswered = counter_family(
        &mut reg,
        "xdhcp_unanswered",
        "Requests answered with silence, by reason",
    );
    let pool = gauge_family(
        &mut reg,
        "xdhcp_pool_addresses",
        "Pool addresses per subnet: total, assigned, declined",
    );
    let leases = gauge_family(&mut reg, "xdhcp_leases", "Leases in the store, by state");
    let store_failures = Counter::<u64>::default();
    reg.register(
        "xdhcp_store_failures",
        "Replies withheld because the lease write failed",
        store_failures.clone(),
    );
    let send_failures = Counter::<u64>::default();
    reg.register(
        "xdhcp_send_failures",
        "Replies whose send failed",
        send_failures.clone(),
    );
    let enabled = Gauge::<i64>::default();
    reg.register(
        "xdhcp_dhcp_enabled",
        "1 while DHCP is served, 0 while dhcp-disable is in force",
        enabled.clone(),
    );

    let now = unix_now();
    {
        let st = state.lock();
        for (kind, n) in &st.stats.received {
            packets
                .get_or_create(&labels(&[("path", "user"), ("type", kind)]))
                .inc_by(*n);
        }
        for (kind, n) in &st.stats.sent {
            replies.get_or_create(&labels(&[("type", kind)])).inc_by(*n);
        }
        // Every reason, zeros included, so rate() works from the first scrape.
        for reason in DropReason::ALL {
            let n = st.stats.dropped.get(&reason).copied().unwrap_or(0);
            dropped
                .get_or_create(&labels(&[("reason", reason.label())]))
                .inc_by(n);
        }
        for (why, n) in &st.stats.silent {
            unanswered
                .get_or_create(&labels(&[("reason", why.label())]))
                .inc_by(*n);
        }
        store_failures.inc_by(st.stats.store_failures);
        send_failures.inc_by(st.stats.send_failures);
        enabled.set(i64::from(dhcp_enabled(st.dhcp_disabled_until, now)));
        let (mut active, mut expired, mut declined, mut reclaimed) = (0, 0, 0, 0);
        for p in pool_counts(&st, now) {
            let id = p.subnet_id.to_string();
            pool.get_or_create(&labels(&[("subnet", &id), ("state", "total")]))
                .set(gauge(p.total));
            pool.get_or_create(&labels(&[("subnet", &id), ("state", "assigned")]))
                .set(gauge(p.active + p.expired));
            pool.get_or_create(&labels(&[("subnet", &id), ("state", "declined")]))
                .set(gauge(p.declined));
            active += p.active;
            expired += p.expired;
            declined += p.declined;
            reclaimed += p.reclaimed;
        }
        for (s, n) in [
            ("active", active),
            ("expired", expired),
            ("declined", declined),
            ("reclaimed", reclaimed),
        ] {
            leases.get_or_create(&labels(&[("state", s)])).set(gauge(n));
        }
    }
    if let Some(xdp) = &state.xdp {
        match xdp.counters() {
            Ok(c) => {
                for (outcome, n) in c {
                    packets
                        .get_or_create(&labels(&[("path", "xdp"), ("type", outcome)]))
                        .inc_by(n);
                }
            }
            Err(e) => tracing::debug!(error = %e, "metrics: XDP counters unavailable"),
        }
    }
    if let Some(xdp) = &state.xdp {
        xdp_mode_metrics(&mut reg, &xdp.interfaces());
    }
    if let Some(ha) = ha {
        ha_metrics(&mut reg, ha);
    }
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        tracing::error!(error = %e, "metrics: encoding failed");
    }
    out
}

/// Registers the per-interface attach mode (1 for the current one, with
/// why it is not native) and the run-time fallback count.
pub fn xdp_mode_metrics(reg: &mut Registry, interfaces: &[crate::xdp::InterfaceMode]) {
    let mode = gauge_family(
        reg,
        "xdhcp_xdp_attach_mode",
        "1 for the mode the XDP program runs in on an interface, with why it is not native",
    );
    let fallbacks = counter_family(
        reg,
        "xdhcp_xdp_fallbacks",
        "Moves of an interface from native to generic XDP because replies were not delivered",
    );
    for i in interfaces {
        let reason = i.why.as_ref().map_or("", |w| w.code());
        mode.get_or_create(&labels(&[("interface", &i.interface), ("mode", i.mode.label()), ("reason", reason)])).set(1);
        fallbacks.get_or_create(&labels(&[("interface", &i.interface)])).inc_by(i.fallbacks);
    }
}

/// `GET /metrics`.
pub async fn handler(State(state): State<Arc<ApiState>>) -> Response {
    let ha = super::status::ha_status(&state).await;
    let mut r = (StatusCode::OK, render(&state, ha.as_ref())).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(ha: &Value) -> prometheus_parse::Scrape {
        let mut reg = Registry::default();
        ha_metrics(&mut reg, ha);
        let mut text = String::new();
        encode(&mut text, &reg).unwrap();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    fn value(s: &prometheus_parse::Scrape, name: &str, l: &[(&str, &str)]) -> Option<f64> {
        s.samples
            .iter()
            .find(|x| x.metric == name && l.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
            .map(|x| match x.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref o => panic!("{name}: {o:?}"),
            })
    }

    /// Kea 2.2's `status-get` shape for a hot-standby primary whose
    /// standby stopped answering, plus our three extras.
    fn kea_shape() -> Value {
        json!([{
            "ha-mode": "hot-standby",
            "ha-servers": {
                "local": {"role": "primary", "scopes": ["server1"], "state": "partner-down", "server-name": "server1"},
                "remote": {"age": 12, "in-touch": false, "last-scopes": [], "last-state": "hot-standby",
                           "role": "standby", "server-name": "server2", "communication-interrupted": true,
                           "connecting-clients": 2, "unacked-clients": 1, "unacked-clients-left": 9,
                           "analyzed-packets": 40}
            },
            "unsent-update-count": 17,
            "replication-backlog": 5,
            "last-heartbeat-age": 12.5
        }, {
            "ha-mode": "hot-standby",
            "ha-servers": {
                "local": {"role": "primary", "scopes": ["hub-b"], "state": "hot-standby", "server-name": "hub-b"},
                "remote": {"age": 1, "in-touch": true, "last-state": "hot-standby", "role": "standby", "server-name": "spoke-b"}
            },
            "unsent-update-count": 0,
            "replication-backlog": 0
        }])
    }

    #[test]
    fn ha_state_is_one_hot_per_relationship() {
        let s = scrape(&kea_shape());
        let st = |rel, state| {
            value(
                &s,
                "xdhcp_ha_state",
                &[("relationship", rel), ("state", state)],
            )
        };
        assert_eq!(st("server1", "partner-down"), Some(1.0));
        assert_eq!(st("server1", "hot-standby"), Some(0.0));
        assert_eq!(st("hub-b", "hot-standby"), Some(1.0));
        assert_eq!(st("hub-b", "partner-down"), Some(0.0));
        for rel in ["server1", "hub-b"] {
            let ones = s
                .samples
                .iter()
                .filter(|x| {
                    x.metric == "xdhcp_ha_state" && x.labels.get("relationship") == Some(rel)
                })
                .filter(|x| matches!(x.value, prometheus_parse::Value::Gauge(v) if v == 1.0))
                .count();
            assert_eq!(ones, 1, "{rel}");
        }
        let p = |rel, state| {
            value(
                &s,
                "xdhcp_ha_partner_state",
                &[("relationship", rel), ("state", state)],
            )
        };
        assert_eq!(p("server1", "unavailable"), Some(1.0), "out of touch");
        assert_eq!(p("server1", "hot-standby"), Some(0.0));
        assert_eq!(p("hub-b", "hot-standby"), Some(1.0));
    }

    #[test]
    fn ha_backlog_unsent_and_heartbeat() {
        let s = scrape(&kea_shape());
        let r = |name, rel| value(&s, name, &[("relationship", rel)]);
        assert_eq!(r("xdhcp_ha_unsent_updates", "server1"), Some(17.0));
        assert_eq!(r("xdhcp_ha_replication_backlog", "server1"), Some(5.0));
        assert_eq!(r("xdhcp_ha_heartbeat_age_seconds", "server1"), Some(12.5));
        assert_eq!(r("xdhcp_ha_unsent_updates", "hub-b"), Some(0.0));
        assert_eq!(
            r("xdhcp_ha_heartbeat_age_seconds", "hub-b"),
            Some(1.0),
            "falls back to Kea's age"
        );
    }

    #[test]
    fn unknown_state_still_exported_and_missing_fields_left_out() {
        let s = scrape(
            &json!([{"ha-servers": {"local": {"state": "some-new-state", "server-name": "a"}}}]),
        );
        assert_eq!(
            value(
                &s,
                "xdhcp_ha_state",
                &[("relationship", "a"), ("state", "some-new-state")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "xdhcp_ha_unsent_updates", &[("relationship", "a")]),
            None
        );
        assert!(value(&s, "xdhcp_ha_partner_state", &[("relationship", "a")]).is_none());
        // Not a list (no HA): nothing registered at all.
        let s = scrape(&Value::Null);
        assert!(s.samples.is_empty());
    }
}
