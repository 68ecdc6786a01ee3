//! HA timers against lease lifetimes: how long failover can take, and
//! whether the leases of the subnets a relationship serves outlast it.

use std::time::Duration;

use crate::check::{Finding, Input, Severity};
use crate::config::{HaMode, HaRelationship, Subnet};

/// How long the surviving peer may take to start serving after its partner
/// dies, as Kea's HA state machine works: the partner is noticed missing
/// `max-response-delay` after the last good contact (which can be a
/// `heartbeat-delay` old), and, unless `max-unacked-clients` is 0, clients
/// must then have been left unanswered for `max-ack-delay` before the
/// survivor enters partner-down. `None` for passive-backup (no failover).
pub fn failover_time(rel: &HaRelationship) -> Option<Duration> {
    if rel.mode() == HaMode::PassiveBackup {
        return None;
    }
    let mut t = rel.heartbeat_delay() + rel.max_response_delay();
    if rel.max_unacked_clients() > 0 {
        t += rel.max_ack_delay();
    }
    Some(t)
}

/// The failover time spelled out, for messages.
fn failover_explained(rel: &HaRelationship) -> String {
    let s = |d: Duration| format!("{} s", d.as_secs_f64());
    let mut text = format!(
        "heartbeat-delay {} + max-response-delay {}",
        s(rel.heartbeat_delay()),
        s(rel.max_response_delay())
    );
    if rel.max_unacked_clients() > 0 {
        text += &format!(
            " + max-ack-delay {} (max-unacked-clients is {})",
            s(rel.max_ack_delay()),
            rel.max_unacked_clients()
        );
    }
    text
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

pub(super) fn timer_checks(
    input: &Input<'_>,
    r: usize,
    rel: &HaRelationship,
    served: &[&Subnet],
    out: &mut Vec<Finding>,
) {
    let rpath = input.relationship_path(r);
    let name = rel.this_server_name();
    if rel.mode() == HaMode::PassiveBackup {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.mode"),
            format!("relationship of {name} is passive-backup: backups receive leases but never take over"),
            "use hot-standby or load-balancing if clients must be served when the primary fails",
        ));
        return;
    }
    let hb = rel.heartbeat_delay();
    let mrd = rel.max_response_delay();
    if hb.is_zero() {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.heartbeat-delay"),
            format!("relationship of {name}: heartbeat-delay is 0, so a silent partner is only noticed through lease updates"),
            "set heartbeat-delay (Kea's default is 10000 ms)",
        ));
    } else if mrd <= hb {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: max-response-delay ({}) is not longer than heartbeat-delay ({}): one late heartbeat is taken for a dead partner",
                secs(mrd),
                secs(hb)
            ),
            format!("make max-response-delay several heartbeats long, e.g. {} ms", hb.as_millis() * 3),
        ));
    }
    if rel.max_unacked_clients() > 0 {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.max-unacked-clients"),
            format!(
                "relationship of {name}: the survivor takes over only after more than {} clients went unanswered for max-ack-delay ({}); on a quiet network that may take long or never happen",
                rel.max_unacked_clients(),
                secs(rel.max_ack_delay())
            ),
            "set max-unacked-clients to 0 to fail over as soon as max-response-delay passes",
        ));
    }
    let Some(failover) = failover_time(rel) else {
        return;
    };
    // Per subnet: the shortest lease it can hand out and its T1/T2.
    let mut expire_first = Vec::new();
    let mut rebind_first = Vec::new();
    let mut renew_first = Vec::new();
    for s in served {
        let lt = s.lifetimes();
        let shortest = Duration::from_secs(u64::from(lt.min_valid.min(lt.valid)));
        let times = lt.lease_times(None);
        if failover >= shortest {
            expire_first.push((s.id(), shortest));
        } else if times
            .t2
            .is_some_and(|t2| failover >= Duration::from_secs(u64::from(t2)))
        {
            rebind_first.push((
                s.id(),
                Duration::from_secs(u64::from(times.valid)),
                times.t2.unwrap_or(0),
            ));
        } else if times
            .t1
            .is_some_and(|t1| failover >= Duration::from_secs(u64::from(t1)))
        {
            renew_first.push((
                s.id(),
                Duration::from_secs(u64::from(times.valid)),
                times.t1.unwrap_or(0),
            ));
        }
    }
    fn ids(len: usize, f: &dyn Fn(usize) -> String) -> String {
        (0..len).map(f).collect::<Vec<_>>().join(", ")
    }
    if !expire_first.is_empty() {
        out.push(Finding::new(
            Severity::Error,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), not less than the lease time of subnet(s) {}: clients' leases expire before failover",
                secs(failover),
                failover_explained(rel),
                ids(expire_first.len(), &|i| format!("{} ({})", expire_first[i].0, secs(expire_first[i].1)))
            ),
            "shorten heartbeat-delay/max-response-delay (and max-ack-delay, or set max-unacked-clients 0), or lengthen valid-lifetime",
        ));
    }
    if !rebind_first.is_empty() {
        out.push(Finding::new(
            Severity::Warning,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), longer than T2 of subnet(s) {}: clients are already rebinding, close to losing their lease, when the partner takes over",
                secs(failover),
                failover_explained(rel),
                ids(rebind_first.len(), &|i| format!(
                    "{} (lease {}, T2 {} s)",
                    rebind_first[i].0,
                    secs(rebind_first[i].1),
                    rebind_first[i].2
                ))
            ),
            "shorten the HA timers or lengthen valid-lifetime/rebind-timer",
        ));
    }
    if !renew_first.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            input.file,
            format!("{rpath}.max-response-delay"),
            format!(
                "relationship of {name}: failover takes up to {} ({}), reaching T1 of subnet(s) {}; renewals in that window fail and are retried, leases survive",
                secs(failover),
                failover_explained(rel),
                ids(renew_first.len(), &|i| format!(
                    "{} (lease {}, T1 {} s)",
                    renew_first[i].0,
                    secs(renew_first[i].1),
                    renew_first[i].2
                ))
            ),
            "nothing required; shorter HA timers or longer leases widen the margin",
        ));
    }
}
