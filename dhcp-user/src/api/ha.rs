//! The HA commands: what a Kea partner sends us (`ha-heartbeat`,
//! `ha-reset`, `ha-sync-complete-notify`, `ha-maintenance-notify`, and
//! `dhcp-disable`/`-enable` with origin `ha-partner`), and the operator's
//! (`ha-continue`, `ha-scopes`, `ha-sync`, `ha-maintenance-start`/`-cancel`).
//! Texts and result codes are Kea 2.2's.

use std::{sync::Arc, time::Instant};

use serde_json::Value;

use super::{
    ApiState,
    command::{Answer, ArgError, Handled, Request, ResultCode},
};
use crate::{
    ha::{Reply, ReplyCode},
    kea::ha as wire,
    peer::{self, HaRuntime, Rel},
};

fn answer(r: Reply) -> Answer {
    let code = match r.code {
        ReplyCode::Success => ResultCode::Success,
        ReplyCode::Error => ResultCode::Error,
        ReplyCode::MaintenanceNotAllowed => ResultCode::MaintenanceNotAllowed,
    };
    Answer::new(code, r.text)
}

/// Runs one machine command on `r`: its actions go to the driver, its
/// reply becomes the answer.
fn on_machine(r: &Rel, f: impl FnOnce(&mut crate::ha::HaMachine) -> (Reply, Vec<crate::ha::Action>)) -> Answer {
    let (reply, actions) = f(&mut r.machine());
    r.dispatch(actions);
    answer(reply)
}

fn runtime(state: &ApiState) -> Option<Arc<HaRuntime>> {
    state.ha_active()
}

/// `server-name` from the arguments, when given as a string.
fn server_name(req: &Request) -> Result<Option<&str>, ArgError> {
    match req.arguments.as_ref().and_then(|a| a.get("server-name")) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ArgError::Other("'server-name' must be a string".into())),
    }
}

/// The relationships `ha-maintenance-start`/`-cancel` act on: every one
/// (Kea's rule), or, when `server-name` names a peer of some, only those —
/// a stopping spoke hands over its own relationship, not the hub's others.
fn maintenance_rels(ha: &HaRuntime, req: &Request) -> Result<Vec<Arc<Rel>>, ArgError> {
    let rels = ha.rels();
    let named: Vec<Arc<Rel>> = match server_name(req)? {
        Some(n) => rels.iter().filter(|r| r.partner_name() == Some(n) || r.this_server() == n).cloned().collect(),
        None => Vec::new(),
    };
    Ok(if named.is_empty() { rels.to_vec() } else { named })
}

fn rel(ha: &HaRuntime, req: &Request) -> Result<Arc<Rel>, ArgError> {
    let name = server_name(req)?;
    ha.rel_by_sender(name)
        .ok_or_else(|| ArgError::Other(format!("server name {} not found in the HA configuration", name.unwrap_or(""))))
}

/// Handles an `ha-*` command.
pub async fn dispatch(state: &ApiState, req: &Request) -> Handled {
    let Some(ha) = runtime(state) else {
        return Ok(Answer::new(
            ResultCode::Unsupported,
            format!("'{}' command not supported.", req.command),
        ));
    };
    let now = Instant::now();
    match req.command.as_str() {
        "ha-heartbeat" => {
            let r = rel(&ha, req)?;
            let hb = r.machine().heartbeat_reply();
            Ok(Answer::ok("HA peer status returned.").with_args(wire::heartbeat_args(&hb, peer::skew::ha_wall_clock())))
        }
        "ha-reset" => {
            Ok(on_machine(rel(&ha, req)?.as_ref(), |m| m.ha_reset(now)))
        }
        "ha-sync-complete-notify" => {
            let r = rel(&ha, req)?;
            let done = on_machine(&r, |m| m.sync_complete_notify(now));
            // The partner's dhcp-disable stopped every relationship (one
            // service); release the others it stopped.
            for other in ha.rels().iter().filter(|o| !Arc::ptr_eq(o, &r)) {
                let actions = other.machine().release_partner_disable(now);
                other.dispatch(actions);
            }
            Ok(done)
        }
        "ha-maintenance-notify" => {
            let cancel = match req.arguments.as_ref().and_then(|a| a.get("cancel")) {
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(ArgError::Other("'cancel' must be a boolean".into())),
                None => return Err(ArgError::Other("'cancel' is mandatory for the 'ha-maintenance-notify' command".into())),
            };
            Ok(on_machine(rel(&ha, req)?.as_ref(), |m| m.maintenance_notify(now, cancel)))
        }
        "ha-continue" => {
            Ok(on_machine(rel(&ha, req)?.as_ref(), |m| m.resume(now)))
        }
        "ha-scopes" => {
            let scopes = match req.arguments.as_ref().and_then(|a| a.get("scopes")) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| ArgError::Other("'scopes' must be a list of strings".into()))?,
                _ => return Err(ArgError::Other("'scopes' is mandatory for the 'ha-scopes' command".into())),
            };
            Ok(on_machine(rel(&ha, req)?.as_ref(), |m| m.set_scopes(now, &scopes)))
        }
        "ha-sync" => {
            let r = rel(&ha, req)?;
            let max_period = match req.arguments.as_ref().and_then(|a| a.get("max-period")) {
                None => None,
                Some(v) => Some(v.as_u64().filter(|p| *p > 0).ok_or_else(|| ArgError::Other("'max-period' must be a positive integer".into()))?),
            };
            let sync = crate::ha::SyncRequest {
                peer: r.partner_name().unwrap_or_default().to_owned(),
                dhcp_disable_max_period: max_period.map_or_else(
                    || (r.config.sync_timeout().as_secs() as u32).max(1),
                    |p| p as u32,
                ),
                page_limit: r.config.sync_page_limit(),
                page_timeout: r.config.sync_timeout(),
            };
            if peer::sync_leases(&r, &state.ha_context(), &sync).await {
                Ok(Answer::ok("Lease database synchronization complete."))
            } else {
                Err(ArgError::Other("Lease database synchronization failed.".into()))
            }
        }
        "ha-maintenance-start" => {
            let mut text = String::new();
            for r in maintenance_rels(&ha, req)?.iter() {
                let actions = match r.machine().maintenance_start() {
                    Ok(a) => a,
                    Err(reply) => return Ok(answer(reply)),
                };
                r.dispatch(actions.into_iter().filter(|a| !matches!(a, crate::ha::Action::SendMaintenanceNotify { .. })).collect());
                let peer_answer = peer::notify_maintenance(r, false).await;
                let (reply, actions) = r.machine().maintenance_start_answered(Instant::now(), peer_answer);
                r.dispatch(actions);
                if reply.code != ReplyCode::Success {
                    return Ok(answer(reply));
                }
                text = reply.text;
            }
            Ok(Answer::ok(text))
        }
        "ha-maintenance-cancel" => {
            let mut text = String::new();
            for r in maintenance_rels(&ha, req)?.iter() {
                if r.machine().maintenance_cancel().is_err() {
                    continue;
                }
                let peer_answer = peer::notify_maintenance(r, true).await;
                let (reply, actions) = r.machine().maintenance_cancel_answered(Instant::now(), peer_answer);
                r.dispatch(actions);
                if reply.code != ReplyCode::Success {
                    return Ok(answer(reply));
                }
                text = reply.text;
            }
            if text.is_empty() {
                return Err(ArgError::Other(
                    "Unable to cancel maintenance request because the server is not in the partner-in-maintenance state.".into(),
                ));
            }
            Ok(Answer::ok(text))
        }
        c => Ok(Answer::new(ResultCode::Unsupported, format!("'{c}' command not supported."))),
    }
}

/// `dhcp-disable`/`dhcp-enable` with origin `ha-partner`: the partner's
/// switch over our service while it pulls our leases (one service, so
/// every relationship). `None` without HA: handled as a user command.
pub fn partner_dhcp(state: &ApiState, enable: bool, max_period: Option<u64>) -> Option<Answer> {
    let ha = runtime(state)?;
    let now = Instant::now();
    for r in ha.rels().iter() {
        let actions = if enable {
            r.machine().partner_dhcp_enable(now)
        } else {
            r.machine().partner_dhcp_disable(now, max_period.map(std::time::Duration::from_secs))
        };
        r.dispatch(actions);
    }
    Some(if enable {
        Answer::ok("DHCP service successfully enabled")
    } else {
        match max_period {
            Some(p) => Answer::ok(format!("DHCPv4 service disabled for {p} seconds")),
            None => Answer::ok("DHCPv4 service disabled"),
        }
    })
}

/// For a `lease4-update` with `force-create` (what an HA partner sends)
/// of a lease in `subnet`: whether the partner of the relationship serving
/// it is the primary, which the lease conflict rule needs
/// ([`crate::ha::conflict`]). `None` when no relationship with an active
/// partner covers the subnet or this server is a backup: then the update
/// overwrites, as in Kea.
pub fn update_sender_is_primary(state: &ApiState, subnet: &crate::dhcp::policy::SubnetPolicy) -> Option<bool> {
    use crate::config::ha::Role;
    let rel = runtime(state)?.rel_for(subnet)?;
    if rel.config.this_server().role() == Role::Backup {
        return None;
    }
    rel.config.partner().map(|p| p.role() == Role::Primary)
}

/// The answer to a partner's `lease4-update` that loses to `kept` under
/// the conflict rule: result 1, what Kea 2.2 answers any failed update (a
/// Kea sender drops its reply; no Kea version counts 1 toward
/// `max-rejected-lease-updates`), with the winning lease in `arguments`
/// (Kea reads only `result` and `text`) for an xdhcpd sender to store.
pub fn conflict_answer(kept: &crate::leases::Lease) -> Answer {
    Answer::new(
        ResultCode::Error,
        format!("{} {} is held by another client with a lease at least as recent", crate::ha::conflict::CONFLICT_TEXT, kept.address),
    )
    .with_args(serde_json::json!({ "lease": wire::lease_update_args(kept) }))
}
