//! Lease exchange with the partner outside the packet path: the
//! communication-recovery backlog, Kea's lease sync (`synchronize`), and
//! maintenance notifications.

use serde_json::Value;

use super::{
    HaContext,
    client::{self, PeerClient},
    rel::Rel,
};
use crate::{
    clock::unix_now,
    ha::{PeerAnswer, SyncRequest},
    kea::ha::{self as wire, Outbound},
};

/// Sends the communication-recovery backlog in order, stopping at the
/// first failure (Kea sends it synchronously too).
pub(super) async fn flush_backlog(rel: &Rel) -> bool {
    let Some(p) = &rel.partner else { return false };
    loop {
        let next = rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).front().cloned();
        let Some(u) = next else { return true };
        match p.send(Outbound::from(&u), client::REQUEST_TIMEOUT).await {
            Ok(r) if r.is_success() => {
                rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            }
            _ => return false,
        }
    }
}

/// Pulls the partner's leases (Kea's `synchronize`): per page
/// `dhcp-disable` then `lease4-get-page`; take each lease we lack or hold
/// an older copy of; then `ha-sync-complete-notify` (or `dhcp-enable` for
/// a peer that does not know it). On failure the partner's service is
/// re-enabled and false returned.
pub async fn sync_leases(rel: &Rel, ctx: &HaContext, req: &SyncRequest) -> bool {
    let Some(p) = &rel.partner else { return false };
    match pull_pages(rel, p, ctx, req).await {
        Ok(n) => {
            ctx.events.record(format!("HA {}: synced {n} leases from {}", rel.this_server(), p.name()));
            let notify = p.send(Outbound::SyncCompleteNotify { server: rel.this_server() }, client::REQUEST_TIMEOUT).await;
            match notify {
                Ok(r) if r.result == 2 => {
                    let _ = p.send(Outbound::DhcpEnable, client::REQUEST_TIMEOUT).await;
                    true
                }
                Ok(r) if r.result == 0 => true,
                Ok(r) => {
                    tracing::warn!(result = r.result, text = %r.text, "ha-sync-complete-notify refused");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ha-sync-complete-notify failed");
                    false
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, peer = p.name(), "lease sync failed");
            let _ = p.send(Outbound::DhcpEnable, client::REQUEST_TIMEOUT).await;
            false
        }
    }
}

async fn pull_pages(rel: &Rel, p: &PeerClient, ctx: &HaContext, req: &SyncRequest) -> anyhow::Result<usize> {
    let mut from = "start".to_owned();
    let mut writes = Vec::new();
    let mut taken = 0;
    loop {
        let r = p.send(Outbound::DhcpDisable { max_period: req.dhcp_disable_max_period }, client::REQUEST_TIMEOUT).await?;
        anyhow::ensure!(r.result == 0, "dhcp-disable answered {}: {}", r.result, r.text);
        let r = p.send(Outbound::LeaseGetPage { from: &from, limit: req.page_limit }, req.page_timeout).await?;
        anyhow::ensure!(r.is_success(), "lease4-get-page answered {}: {}", r.result, r.text);
        let leases = r
            .arguments
            .as_ref()
            .and_then(|a| a.get("leases"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ctx.core.write(|tx| {
            for v in &leases {
                let Some(upd) = wire::page_lease_as_update(v) else {
                    tracing::warn!(lease = %v, "sync: lease without cltt/valid-lft skipped");
                    continue;
                };
                let Some(map) = upd.as_object() else { continue };
                let lease = match crate::kea::lease::parse_lease(&crate::kea::command::Args(map), tx.policy(), unix_now()) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(lease = %v, error = %e, "sync: lease refused");
                        continue;
                    }
                };
                if !tx.policy().subnet(lease.subnet_id).map_or(!rel.several(), |s| rel.serves(s)) {
                    continue;
                }
                if wire::sync_takes(tx.get(lease.address).as_ref(), &lease) {
                    writes.push(tx.upsert(lease));
                    taken += 1;
                }
            }
        });
        let last = leases.last().and_then(|l| l.get("ip-address")).and_then(Value::as_str).map(str::to_owned);
        match last {
            Some(a) if leases.len() >= req.page_limit as usize => from = a,
            _ => break,
        }
    }
    for w in writes {
        w.await?;
    }
    Ok(taken)
}

/// Sends `ha-maintenance-notify` for an operator's maintenance command.
pub async fn notify_maintenance(rel: &Rel, cancel: bool) -> PeerAnswer {
    let Some(p) = &rel.partner else { return PeerAnswer::Unreachable };
    match p.send(Outbound::MaintenanceNotify { server: rel.this_server(), cancel }, client::REQUEST_TIMEOUT).await {
        Ok(r) => PeerAnswer::Result(r.result),
        Err(_) => PeerAnswer::Unreachable,
    }
}
