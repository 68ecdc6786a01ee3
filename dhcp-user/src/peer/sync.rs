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
    config::ha::Role,
    core::Tx,
    ha::{PeerAnswer, SyncRequest, conflict},
    leases::Lease,
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
        let primary = partner_is_primary(rel);
        ctx.core.write(|tx| {
            for v in &leases {
                let Some(upd) = wire::page_lease_as_update(v) else {
                    tracing::warn!(lease = %v, "sync: lease without cltt/valid-lft skipped");
                    continue;
                };
                let Some(lease) = partner_lease(rel, tx, &upd, "sync") else { continue };
                // Kea's rule, and the conflict rule for an address we hold
                // for another client (crate::ha::conflict).
                if conflict::sync_takes(tx.get(lease.address).as_ref(), &lease, primary, unix_now()) {
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

/// Whether the partner is the primary (it holds the winner of a tie under
/// the conflict rule).
fn partner_is_primary(rel: &Rel) -> bool {
    rel.config.partner().is_some_and(|p| p.role() == Role::Primary)
}

/// A lease from the partner (the `lease4-update` form) as this server
/// would store it: `None`, logged, when it does not parse or its subnet
/// belongs to another relationship.
fn partner_lease(rel: &Rel, tx: &Tx<'_>, v: &Value, what: &str) -> Option<Lease> {
    let map = v.as_object()?;
    let lease = match crate::kea::lease::parse_lease(&crate::kea::command::Args(map), tx.policy(), unix_now()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(lease = %v, error = %e, "{what}: lease refused");
            return None;
        }
    };
    tx.policy().subnet(lease.subnet_id).map_or(!rel.several(), |s| rel.serves(s)).then_some(lease)
}

/// Stores the lease the partner kept when it refused our update under the
/// conflict rule, if it still wins against ours (a later change may have
/// passed it): our client's next request for that address is NAKed, and
/// the stores agree.
pub(super) async fn adopt_lease(rel: &Rel, ctx: &HaContext, v: &Value) {
    let primary = partner_is_primary(rel);
    let write = ctx.core.write(|tx| {
        let lease = partner_lease(rel, tx, v, "conflict")?;
        conflict::sync_takes(tx.get(lease.address).as_ref(), &lease, primary, unix_now())
            .then(|| (lease.address, tx.upsert(lease)))
    });
    let Some((address, write)) = write else { return };
    match write.await {
        Ok(()) => ctx.events.record(format!(
            "HA {}: {address} kept by the partner for another client (lease conflict rule); stored here too",
            rel.this_server()
        )),
        Err(e) => tracing::warn!(%address, error = %e, "storing the partner's winning lease failed"),
    }
}

/// Sends `ha-maintenance-notify` for an operator's maintenance command.
pub async fn notify_maintenance(rel: &Rel, cancel: bool) -> PeerAnswer {
    let Some(p) = &rel.partner else { return PeerAnswer::Unreachable };
    match p.send(Outbound::MaintenanceNotify { server: rel.this_server(), cancel }, client::REQUEST_TIMEOUT).await {
        Ok(r) => PeerAnswer::Result(r.result),
        Err(_) => PeerAnswer::Unreachable,
    }
}
