//! `GET /metrics`: Prometheus text format (OpenMetrics via
//! `prometheus-client`). A fresh registry is filled from the shared state on
//! each scrape: the daemon's counters already live in [`crate::core::Stats`],
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
//! | `xdhcp_offers_held` | offers held for their clients now (capped: a DISCOVER flood cannot grow it without bound) |
//! | `xdhcp_offers_unheld_total` | offers sent without a hold because the cap was reached |
//! | `xdhcp_xdp_attach_mode` | `interface`, `mode` = native, generic, userspace-only, `reason` (empty when native): 1 |
//! | `xdhcp_xdp_fallbacks_total` | `interface`: moves from native to generic mode at run time |
//! | `xdhcp_kernel_daemon_only` | `kind` = subnet, reservation; `reason` = why the kernel has no template for it (classes, lease_caching, boot_fields, …): how many, as of the last map install |
//! | `xdhcp_security_warnings` | how many the configuration in force has (recomputed on every reconfiguration) |
//! | `xdhcp_security_warning` | `warning` = its text: 1 per warning (as on the status page) |
//! | `xdhcp_ha_state` | `relationship`, `state`: 1 for this server's current HA state, 0 for every other |
//! | `xdhcp_ha_partner_state` | `relationship`, `state`: the same for the partner as last heard (`unavailable` when out of touch) |
//! | `xdhcp_ha_unsent_updates` | `relationship`: lease updates not yet sent to the partner |
//! | `xdhcp_ha_replication_backlog` | `relationship`: updates queued for replication |
//! | `xdhcp_ha_heartbeat_age_seconds` | `relationship`: since the last heartbeat answer |
//!
//! HA metrics come from the same typed [`RelStatus`] as `status-get`'s
//! `high-availability` list, so they say what the command API says; `relationship` is this server's name in
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

use super::{ApiState, command::dhcp_enabled, stats::pool_counts};
use crate::{
    clock::unix_now,
    core::{Counter as Stat, stats::kind_label},
    dhcp::inbound::DropReason,
    ha::{PartnerState, RelStatus, State as HaState},
};

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

/// Registers the HA families and fills them from each relationship's
/// status. Every state of [`HaState::ALL`] (and `unavailable` for the
/// partner) gets a sample, so alerts can match on a zero as well as on a
/// one; a partner never heard from leaves its family empty.
pub fn ha_metrics(reg: &mut Registry, list: &[RelStatus]) {
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
    let names = || HaState::ALL.into_iter().map(HaState::name).chain([PartnerState::Unavailable.name()]);
    let one_hot = |family: &Family<Labels, Gauge>, rel: &str, current: &str| {
        for s in names() {
            family
                .get_or_create(&labels(&[("relationship", rel), ("state", s)]))
                .set(i64::from(s == current));
        }
    };
    for r in list {
        let rel = r.local.server_name.as_str();
        one_hot(&state, rel, r.local.state.name());
        if let Some(s) = r.partner_state_label() {
            one_hot(&partner, rel, s);
        }
        let l = labels(&[("relationship", rel)]);
        unsent.get_or_create(&l).set(gauge(r.unsent_update_count));
        backlog.get_or_create(&l).set(gauge(r.replication_backlog as u64));
        let heard = r.last_heartbeat_age.or(r.remote.as_ref().map(|p| p.status.age));
        if let Some(a) = heard {
            age.get_or_create(&l).set(a as f64);
        }
    }
}

/// Renders every metric.
pub fn render(state: &ApiState) -> String {
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

    let offers = state.core.offers();
    let held = Gauge::<i64>::default();
    reg.register("xdhcp_offers_held", "Offers held for their clients now (capped)", held.clone());
    held.set(gauge(offers.held));
    let unheld = Counter::<u64>::default();
    reg.register("xdhcp_offers_unheld", "Offers sent without a hold because the cap was reached", unheld.clone());
    unheld.inc_by(offers.unheld);

    let now = unix_now();
    {
        let stats = state.core.stats();
        for (c, n) in stats.iter() {
            match c {
                Stat::Received(kind) => {
                    packets.get_or_create(&labels(&[("path", "user"), ("type", kind_label(kind))])).inc_by(n);
                }
                Stat::Sent(s) => {
                    replies.get_or_create(&labels(&[("type", s.label())])).inc_by(n);
                }
                Stat::Silent(why) => {
                    unanswered.get_or_create(&labels(&[("reason", why.label())])).inc_by(n);
                }
                Stat::Dropped(_) | Stat::HaDropped(_) | Stat::StoreFailure | Stat::SendFailure => {}
            }
        }
        // Every reason, zeros included, so rate() works from the first scrape.
        for reason in DropReason::ALL {
            dropped
                .get_or_create(&labels(&[("reason", reason.label())]))
                .inc_by(stats.get(Stat::Dropped(reason)));
        }
        store_failures.inc_by(stats.get(Stat::StoreFailure));
        send_failures.inc_by(stats.get(Stat::SendFailure));
        enabled.set(i64::from(dhcp_enabled(state.core.dhcp_disabled_until(), now)));
        let (mut active, mut expired, mut declined, mut reclaimed) = (0, 0, 0, 0);
        for p in pool_counts(&state.core.policy(), &state.core.leases(), now) {
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
    if let Some(coverage) = &state.kernel_coverage {
        let only = gauge_family(
            &mut reg,
            "xdhcp_kernel_daemon_only",
            "Subnets and reservations the kernel leaves to the daemon, by reason",
        );
        for (kind, reason, n) in coverage.get().rows() {
            only.get_or_create(&labels(&[("kind", kind), ("reason", reason)])).set(gauge(n));
        }
    }
    if let Some(ha) = state.ha_status() {
        ha_metrics(&mut reg, &ha);
    }
    security_metrics(&mut reg, &state.security_warnings());
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

/// Registers the configuration's security warnings: their count, and one
/// series per text.
fn security_metrics(reg: &mut Registry, warnings: &[String]) {
    let count: Gauge = Gauge::default();
    reg.register("xdhcp_security_warnings", "Security warnings of the configuration in force", count.clone());
    count.set(warnings.len() as i64);
    let each = gauge_family(reg, "xdhcp_security_warning", "1 per security warning of the configuration in force");
    for w in warnings {
        each.get_or_create(&labels(&[("warning", w)])).set(1);
    }
}

/// `GET /metrics`.
pub async fn handler(State(state): State<Arc<ApiState>>) -> Response {
    let mut r = (StatusCode::OK, render(&state)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::ha::{HaMode, Role},
        ha::{LocalStatus, PartnerView, RemoteStatus},
    };

    fn scrape(ha: &[RelStatus]) -> prometheus_parse::Scrape {
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

    fn rel(name: &str, state: HaState, remote: Option<RemoteStatus>) -> RelStatus {
        RelStatus {
            mode: HaMode::HotStandby,
            local: LocalStatus { role: Role::Primary, state, scopes: vec![name.into()], server_name: name.into() },
            remote: remote.map(|status| PartnerView {
                status,
                role: Role::Standby,
                server_name: format!("{name}-partner"),
                url: "http://192.0.2.2:8000/".into(),
            }),
            unsent_update_count: 0,
            replication_backlog: 0,
            last_heartbeat_age: None,
            paused: false,
            clock_skew: 0,
        }
    }

    /// A hot-standby primary whose standby stopped answering, and a hub
    /// relationship in normal service.
    fn pair() -> Vec<RelStatus> {
        let lost = RemoteStatus {
            age: 12,
            in_touch: false,
            last_state: Some(PartnerState::In(HaState::HotStandby)),
            last_scopes: vec![],
            communication_interrupted: true,
            connecting_clients: 2,
            unacked_clients: 1,
            unacked_clients_left: 9,
            analyzed_packets: 40,
        };
        let fine = RemoteStatus {
            age: 1,
            in_touch: true,
            last_state: Some(PartnerState::In(HaState::HotStandby)),
            last_scopes: vec![],
            communication_interrupted: false,
            connecting_clients: 0,
            unacked_clients: 0,
            unacked_clients_left: 0,
            analyzed_packets: 0,
        };
        let mut a = rel("server1", HaState::PartnerDown, Some(lost));
        a.unsent_update_count = 17;
        a.replication_backlog = 5;
        a.last_heartbeat_age = Some(12);
        vec![a, rel("hub-b", HaState::HotStandby, Some(fine))]
    }

    #[test]
    fn ha_state_is_one_hot_per_relationship() {
        let s = scrape(&pair());
        let st = |rel, state| value(&s, "xdhcp_ha_state", &[("relationship", rel), ("state", state)]);
        assert_eq!(st("server1", "partner-down"), Some(1.0));
        assert_eq!(st("server1", "hot-standby"), Some(0.0));
        assert_eq!(st("hub-b", "hot-standby"), Some(1.0));
        assert_eq!(st("hub-b", "partner-down"), Some(0.0));
        for rel in ["server1", "hub-b"] {
            let ones = s
                .samples
                .iter()
                .filter(|x| x.metric == "xdhcp_ha_state" && x.labels.get("relationship") == Some(rel))
                .filter(|x| matches!(x.value, prometheus_parse::Value::Gauge(v) if v == 1.0))
                .count();
            assert_eq!(ones, 1, "{rel}");
        }
        let p = |rel, state| value(&s, "xdhcp_ha_partner_state", &[("relationship", rel), ("state", state)]);
        assert_eq!(p("server1", "unavailable"), Some(1.0), "out of touch");
        assert_eq!(p("server1", "hot-standby"), Some(0.0));
        assert_eq!(p("hub-b", "hot-standby"), Some(1.0));
    }

    #[test]
    fn ha_backlog_unsent_and_heartbeat() {
        let s = scrape(&pair());
        let r = |name, rel| value(&s, name, &[("relationship", rel)]);
        assert_eq!(r("xdhcp_ha_unsent_updates", "server1"), Some(17.0));
        assert_eq!(r("xdhcp_ha_replication_backlog", "server1"), Some(5.0));
        assert_eq!(r("xdhcp_ha_heartbeat_age_seconds", "server1"), Some(12.0));
        assert_eq!(r("xdhcp_ha_unsent_updates", "hub-b"), Some(0.0));
        assert_eq!(r("xdhcp_ha_heartbeat_age_seconds", "hub-b"), Some(1.0), "falls back to Kea's age");
    }

    #[test]
    fn a_partner_never_heard_from_and_no_ha() {
        let s = scrape(&[rel("a", HaState::Waiting, Some(RemoteStatus { in_touch: true, ..pair()[1].remote.clone().unwrap().status }))]);
        assert_eq!(value(&s, "xdhcp_ha_state", &[("relationship", "a"), ("state", "waiting")]), Some(1.0));
        let s = scrape(&[rel("b", HaState::Backup, None)]);
        assert!(value(&s, "xdhcp_ha_partner_state", &[("relationship", "b")]).is_none());
        assert!(value(&s, "xdhcp_ha_heartbeat_age_seconds", &[("relationship", "b")]).is_none());
        // No HA: nothing registered at all but the empty families.
        let s = scrape(&[]);
        assert!(s.samples.is_empty());
    }
}
