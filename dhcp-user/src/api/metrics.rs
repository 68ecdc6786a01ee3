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
//!
//! `assigned` excludes declined addresses, so `total − assigned − declined`
//! is what is free (Kea's `assigned-addresses` includes both).

use std::sync::Arc;

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
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &reg) {
        tracing::error!(error = %e, "metrics: encoding failed");
    }
    out
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
