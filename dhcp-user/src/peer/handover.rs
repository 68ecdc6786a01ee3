//! A planned stop's exchange with the partners ([`hand_over`]): before
//! the daemon leaves (SIGTERM, the `shutdown` command) it stops serving,
//! lets the lease updates already due reach the partner, then asks the
//! partner to take over with `ha-maintenance-start` (see
//! [`crate::ha::handover`] for what a Kea 2.2 partner does with it). All
//! of it within [`BUDGET`]; a partner that is unreachable or refuses is
//! logged, and the daemon stops as before (the partner then fails over
//! after its failure detection).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{HaRuntime, client, rel::Rel};
use crate::{
    core::Core,
    ha::{
        PeerAnswer,
        handover::{self, Handover, Outcome},
    },
    kea::ha::Outbound,
};

/// Longest a planned stop waits for its partners in all: flushing the
/// updates due, then the partner's answer (its notify back to us is one
/// more round trip inside it). A partner slower than that fails over by
/// itself anyway: its notify to a server already gone counts as
/// "partner unreachable", which Kea answers with partner-down.
pub const BUDGET: Duration = Duration::from_secs(1);

/// Part of [`BUDGET`] spent waiting for lease updates already due.
const FLUSH_BUDGET: Duration = Duration::from_millis(400);

/// How often the flush looks at the queues.
const FLUSH_POLL: Duration = Duration::from_millis(5);

/// Hands every relationship's service to its partner before the daemon
/// stops; returns when each partner answered or [`BUDGET`] ran out.
///
/// Order matters for the leases: serving stops first (HA's switch, then
/// the kernel's serving bits), so no client is answered that the partner
/// would not hear of; the kernel renewals already answered and the
/// updates in flight are then sent; only then may the partner serve — a
/// late update of ours arriving after the partner renewed the same lease
/// would overwrite its newer expiry.
pub async fn hand_over(ha: &HaRuntime, core: &Core) {
    let rels = ha.rels();
    if rels.is_empty() {
        return;
    }
    let started = Instant::now();
    for r in rels.iter() {
        // Nothing for the driver: the kernel is rescoped right here.
        let _ = r.machine().stop_serving(Instant::now());
    }
    core.rescope_kernel().await;
    flush(&rels, started + FLUSH_BUDGET).await;
    let mut asks = tokio::task::JoinSet::new();
    for r in rels.iter() {
        let plan = r.machine().handover();
        match plan {
            Handover::Skip(why) => {
                tracing::info!(relationship = r.this_server(), "planned stop: not handing over ({why})");
            }
            Handover::Ask => {
                let r = Arc::clone(r);
                let left = BUDGET.saturating_sub(started.elapsed()).max(Duration::from_millis(100));
                asks.spawn(async move {
                    let answer = ask(&r, left).await;
                    report(&r, answer, started.elapsed());
                });
            }
        }
    }
    while asks.join_next().await.is_some() {}
}

/// Waits until no update of any relationship is in flight or queued for
/// the partner (kernel renewals included), or `deadline`.
async fn flush(rels: &[Arc<Rel>], deadline: Instant) {
    // The kernel's last renewals reach the drain within its poll period.
    tokio::time::sleep(Duration::from_millis(2 * dhcp_common::fastpath::EVENTS_POLL_MS)).await;
    while Instant::now() < deadline {
        if rels.iter().all(|r| r.in_flight() == 0) {
            return;
        }
        tokio::time::sleep(FLUSH_POLL).await;
    }
    for r in rels.iter().filter(|r| r.in_flight() > 0) {
        tracing::warn!(relationship = r.this_server(), updates = r.in_flight(),
            "planned stop: lease updates still unanswered by the partner");
    }
}

/// `ha-maintenance-start` to `rel`'s partner, answered within `timeout`.
async fn ask(rel: &Rel, timeout: Duration) -> PeerAnswer {
    let Some(p) = &rel.partner else { return PeerAnswer::Unreachable };
    match p.send(Outbound::MaintenanceStart { server: rel.this_server() }, timeout.min(client::REQUEST_TIMEOUT)).await {
        Ok(r) => {
            if r.result != 0 {
                tracing::warn!(relationship = rel.this_server(), result = r.result, text = %r.text,
                    "planned stop: the partner refused ha-maintenance-start");
            }
            PeerAnswer::Result(r.result)
        }
        Err(e) => {
            tracing::warn!(relationship = rel.this_server(), error = %e, "planned stop: ha-maintenance-start failed");
            PeerAnswer::Unreachable
        }
    }
}

fn report(rel: &Rel, answer: PeerAnswer, took: Duration) {
    let partner = rel.partner_name().unwrap_or_default();
    let ms = took.as_millis() as u64;
    match handover::judge(answer) {
        Outcome::TakenOver => tracing::info!(relationship = rel.this_server(), partner, ms, state = %rel.machine().state(),
            "planned stop: handed over, the partner serves every scope"),
        Outcome::Refused(code) => tracing::warn!(relationship = rel.this_server(), partner, ms, result = code,
            "planned stop: not handed over; the partner fails over after its failure detection"),
        Outcome::Unreachable => tracing::warn!(relationship = rel.this_server(), partner, ms,
            "planned stop: partner unreachable; not handed over"),
    }
}
