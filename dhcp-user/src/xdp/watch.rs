//! The run-time half of "never a black hole": every [`WATCH_EVERY`] each
//! interface still in native mode is checked again — the delivery facts
//! (a veth's peer may lose its program) and the driver's `XDP_TX` error
//! counters (what veth counts when `veth_xdp_xmit` finds no NAPI on the
//! peer: `rx_queue_N_xdp_tx_errors`; other drivers name theirs
//! `rx_xdp_tx_err`, `xdp_tx_drops`, …). On either sign the interface
//! moves to generic mode, with one warning and a count in `/metrics`.
//!
//! What this cannot see: a veth whose peer has only GRO queues `XDP_TX`
//! frames without errors and never delivers them; the fact check catches
//! that case instead (the peer has no native program).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use dhcp_common::counters::Outcome;

use super::Fastpath;

/// How often native interfaces are checked.
pub const WATCH_EVERY: Duration = Duration::from_secs(3);

/// Whether an `ethtool -S` statistic counts `XDP_TX` frames the driver
/// could not send. Redirect counters (`xdp_xmit_errors`: frames other
/// programs redirected into this device) and plain drops by programs
/// (`xdp_drops`) are not ours and do not count.
pub fn is_xdp_tx_error(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("xdp_tx") && ["err", "drop", "full"].iter().any(|w| n.contains(w))
}

/// The `XDP_TX` error counters among `stats`.
pub fn tx_errors(stats: &[(String, u64)]) -> BTreeMap<String, u64> {
    stats.iter().filter(|(n, _)| is_xdp_tx_error(n)).map(|(n, v)| (n.clone(), *v)).collect()
}

/// Which counters grew from `before` to `after`, as
/// `name +delta, …`; `None` when none did. A counter that is new (the
/// driver added queues) counts from zero; one that went down (queues were
/// reset) does not count.
pub fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Option<String> {
    let v: Vec<String> = after
        .iter()
        .filter_map(|(n, a)| {
            let b = before.get(n).copied().unwrap_or(0);
            (*a > b).then(|| format!("{n} +{}", a - b))
        })
        .collect();
    if v.is_empty() { None } else { Some(v.join(", ")) }
}

/// Checks the native interfaces every [`WATCH_EVERY`] until `shutdown`,
/// and raises an alarm when the kernel counts answers whose events never
/// reached the daemon ([`Outcome::EventLost`]).
pub async fn run(fastpath: Arc<Fastpath>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lost_seen = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let f = Arc::clone(&fastpath);
        // Netlink and ioctl calls: quick, but blocking.
        match tokio::task::spawn_blocking(move || {
            f.check_delivery();
            f.counters().ok().and_then(|c| c.into_iter().find(|(o, _)| *o == Outcome::EventLost)).map_or(0, |(_, n)| n)
        })
        .await
        {
            Ok(lost) => {
                if let Some(new) = lost_events(lost_seen, lost) {
                    tracing::error!(
                        lost = new,
                        "the kernel answered {new} renewal(s) whose events did not reach the daemon: the kernel map \
                         holds lifetimes the lease store lacks (the ring's headroom check should prevent this; \
                         counted as event_lost in /metrics)"
                    );
                }
                lost_seen = lost;
            }
            Err(e) => tracing::error!(error = %e, "XDP delivery check failed"),
        }
    }
}

/// How many events were lost since the last look, when any were.
pub fn lost_events(seen: u64, now: u64) -> Option<u64> {
    (now > seen).then(|| now - seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_events_alarm_only_on_growth() {
        assert_eq!(lost_events(0, 0), None);
        assert_eq!(lost_events(3, 5), Some(2));
        assert_eq!(lost_events(5, 5), None);
    }

    #[test]
    fn tx_error_counters_of_known_drivers() {
        for name in [
            "rx_queue_0_xdp_tx_errors", // veth
            "rx_queue_3_xdp_tx_errors",
            "rx_xdp_tx_err", // mlx5
            "rx_xdp_tx_full",
            "rx_queue_0_xdp_tx_drops", // virtio_net
            "queue_2_rx_xdp_tx_err",
        ] {
            assert!(is_xdp_tx_error(name), "{name}");
        }
        for name in [
            "rx_queue_0_xdp_tx", // sent, not failed
            "rx_queue_0_xdp_drops",
            "tx_queue_0_xdp_xmit_errors", // redirected into us
            "tx_queue_0_xdp_xmit",
            "peer_ifindex",
            "rx_queue_0_drops",
        ] {
            assert!(!is_xdp_tx_error(name), "{name}");
        }
    }

    #[test]
    fn growth_is_reported_by_counter() {
        let stats =
            |v: &[(&str, u64)]| -> Vec<(String, u64)> { v.iter().map(|(n, x)| ((*n).to_owned(), *x)).collect() };
        let before =
            tx_errors(&stats(&[("peer_ifindex", 7), ("rx_queue_0_xdp_tx", 10), ("rx_queue_0_xdp_tx_errors", 2)]));
        assert_eq!(before.len(), 1);
        let same = tx_errors(&stats(&[("rx_queue_0_xdp_tx", 50), ("rx_queue_0_xdp_tx_errors", 2)]));
        assert_eq!(grown(&before, &same), None);
        let more = tx_errors(&stats(&[("rx_queue_0_xdp_tx_errors", 5), ("rx_queue_1_xdp_tx_errors", 1)]));
        assert_eq!(grown(&before, &more).as_deref(), Some("rx_queue_0_xdp_tx_errors +3, rx_queue_1_xdp_tx_errors +1"));
        // Reset counters (queues reconfigured) are not errors.
        let reset = tx_errors(&stats(&[("rx_queue_0_xdp_tx_errors", 0)]));
        assert_eq!(grown(&before, &reset), None);
    }
}
