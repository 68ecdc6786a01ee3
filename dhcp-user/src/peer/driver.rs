//! Each relationship's tasks: the driver ([`drive`]: heartbeats, ticks,
//! and every [`Action`] the machine returns) and the replicator of kernel
//! renewals ([`replicate_renewals`]).

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use super::{
    HaContext,
    client,
    rel::{Rel, update_outcome},
    sync::{adopt_lease, flush_backlog, sync_leases},
};
use crate::{
    clock::unix_now,
    ha::{Action, Event, HaMachine, State, Update, UpdateOutcome},
    kea::ha::{self as wire, Outbound},
};

/// Sends kernel renewals to the partner in order, one at a time.
pub(super) async fn replicate_renewals(rel: Arc<Rel>) {
    let Some(mut rx) = rel.async_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let Some(partner) = rel.partner.clone() else { return };
    loop {
        let Some(lease) = rx.recv().await else { return };
        let u = Update::Put(lease);
        let r = partner.send(Outbound::from(&u), client::REQUEST_TIMEOUT).await;
        rel.async_pending.fetch_sub(1, Ordering::Relaxed);
        let outcome = update_outcome(&r, u.client());
        rel.adopt_winner(&r);
        if let Err(e) = &r {
            tracing::warn!(error = %e, "replicating a kernel renewal failed");
        }
        let actions = {
            let mut m = rel.machine();
            if !matches!(outcome, UpdateOutcome::Acked(_) | UpdateOutcome::Superseded) {
                m.count_unsent();
            }
            m.handle(Instant::now(), Event::LeaseUpdates(outcome))
        };
        rel.dispatch(actions);
    }
}

/// The relationship's driver: starts the machine, then heartbeats and
/// actions until its tasks are stopped (see `rel_tasks`).
pub(super) async fn drive(rel: Arc<Rel>, ctx: HaContext) {
    let Some(mut inbox) = rel.inbox.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let Some(mut adopt) = rel.adopt_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    // The machine was started in `Rel::new`; its first actions
    // wait in the inbox.
    let heartbeat = rel.machine().heartbeat_enabled() && rel.partner.is_some();
    let mut d = Driver { rel: Arc::clone(&rel), ctx, heartbeat, next_heartbeat: tokio::time::Instant::now() };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let hb_at = d.next_heartbeat;
        tokio::select! {
            Some(a) = inbox.recv() => d.run_all(vec![a]).await,
            Some(l) = adopt.recv() => adopt_lease(&rel, &d.ctx, &l).await,
            _ = tokio::time::sleep_until(hb_at), if d.heartbeat => {
                let ev = d.heartbeat_once().await;
                let failed = matches!(ev, Event::HeartbeatFailed);
                let actions = rel.machine().handle(Instant::now(), ev);
                d.next_heartbeat = next_heartbeat(&rel.machine(), failed, Instant::now());
                d.run_all(actions).await;
            }
            _ = tick.tick() => {
                let actions = rel.machine().handle(Instant::now(), Event::Tick);
                d.run_all(actions).await;
            }
        }
    }
}

/// When to send the next heartbeat: one `heartbeat-delay` on, except
/// that after a failure the partner is tried again just past the moment
/// communication counts as interrupted (Kea's rule, `max-response-delay`),
/// so partner-down comes when the timers say and not up to a
/// `heartbeat-delay` later.
fn next_heartbeat(m: &HaMachine, failed: bool, now: Instant) -> tokio::time::Instant {
    let mut wait = m.heartbeat_delay();
    if failed {
        let deadline = m.interruption_deadline() + INTERRUPTION_MARGIN;
        if deadline > now {
            wait = wait.min(deadline - now);
        }
    }
    tokio::time::Instant::now() + wait
}

/// How far past the interruption deadline the retry is sent (the machine
/// counts strictly longer than `max-response-delay`).
const INTERRUPTION_MARGIN: Duration = Duration::from_millis(20);

struct Driver {
    rel: Arc<Rel>,
    ctx: HaContext,
    heartbeat: bool,
    next_heartbeat: tokio::time::Instant,
}

impl Driver {
    /// Runs actions, and the actions their results cause, until none is left.
    async fn run_all(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            let more = self.run(a).await;
            queue.extend(more);
        }
    }

    async fn run(&mut self, a: Action) -> Vec<Action> {
        let rel = Arc::clone(&self.rel);
        let now = Instant::now;
        match a {
            Action::StateChanged { from, to, partner } => {
                let passive = rel.config.mode() == crate::config::ha::HaMode::PassiveBackup;
                for (msgid, text) in crate::ha::kea_log::transition(from, to, partner, passive) {
                    tracing::info!(target: "kea-dhcp4.ha-hooks", msgid, relationship = rel.this_server(), "{text}");
                }
                self.ctx.events.record(format!(
                    "HA {}: {} → {} (partner {})",
                    rel.this_server(),
                    from.name(),
                    to.name(),
                    partner.name()
                ));
                if to == State::PartnerDown {
                    self.ctx.core.start_reuse_grace(unix_now());
                }
                // The kernel has the new scopes before the driver acts on
                // the transition (syncs, heartbeats, further actions).
                self.ctx.core.rescope_kernel().await;
                Vec::new()
            }
            Action::Paused(s) => {
                self.ctx.events.record(format!("HA {}: paused in {}", rel.this_server(), s.name()));
                Vec::new()
            }
            Action::DhcpService(_) | Action::ScopesChanged(_) => {
                self.ctx.core.rescope_kernel().await;
                Vec::new()
            }
            Action::Heartbeat(on) => {
                self.heartbeat = on && rel.partner.is_some();
                self.next_heartbeat = tokio::time::Instant::now();
                Vec::new()
            }
            Action::SyncLeases(req) => {
                let ok = sync_leases(&rel, &self.ctx, &req).await;
                rel.machine().handle(now(), if ok { Event::SyncSucceeded } else { Event::SyncFailed })
            }
            Action::FlushBacklog => {
                let ok = flush_backlog(&rel).await;
                rel.machine().handle(now(), Event::BacklogFlushed(ok))
            }
            Action::ClearBacklog => {
                rel.backlog.lock().unwrap_or_else(|p| p.into_inner()).clear();
                Vec::new()
            }
            Action::SendHaReset => {
                let ok = match &rel.partner {
                    Some(p) => p
                        .send(Outbound::Reset { server: rel.this_server() }, client::REQUEST_TIMEOUT)
                        .await
                        .is_ok_and(|r| r.result == 0),
                    None => false,
                };
                rel.machine().handle(now(), Event::HaResetSent(ok))
            }
            Action::SendMaintenanceNotify { .. } => Vec::new(), // the API command sends it itself
            Action::SendMaintenanceCancel => {
                // The partner's notify back moves the machine; only the
                // outcome is ours to log.
                let Some(p) = &rel.partner else { return Vec::new() };
                match p.send(Outbound::MaintenanceCancel { server: rel.this_server() }, client::REQUEST_TIMEOUT).await {
                    Ok(r) if r.result == 0 => tracing::info!(relationship = rel.this_server(),
                        "the partner held this server in maintenance from before a restart; cancelled"),
                    Ok(r) => tracing::warn!(relationship = rel.this_server(), result = r.result, text = %r.text,
                        "ha-maintenance-cancel refused"),
                    Err(e) => tracing::warn!(relationship = rel.this_server(), error = %e, "ha-maintenance-cancel failed"),
                }
                Vec::new()
            }
            Action::Notice(n) => {
                tracing::warn!(relationship = rel.this_server(), notice = ?n, "HA");
                Vec::new()
            }
        }
    }

    /// One heartbeat to the partner, as an event for the machine.
    async fn heartbeat_once(&self) -> Event {
        let Some(p) = &self.rel.partner else { return Event::HeartbeatFailed };
        // Kea waits its 10 s request timeout for a heartbeat; a frozen
        // partner (SIGSTOP, hung host) keeps the TCP connection open, so
        // that would delay failover by 10 s. Waiting longer than
        // max-response-delay cannot change the verdict, so stop there.
        let timeout = client::REQUEST_TIMEOUT.min(self.rel.config.max_response_delay().max(Duration::from_secs(1)));
        match p.send(Outbound::Heartbeat { server: self.rel.this_server() }, timeout).await {
            Ok(r) => match wire::parse_heartbeat(&r) {
                Ok(status) => {
                    *self.rel.last_heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    Event::HeartbeatOk { status, received_at: super::skew::ha_wall_clock() }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat answer unusable");
                    Event::HeartbeatFailed
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                Event::HeartbeatFailed
            }
        }
    }
}
