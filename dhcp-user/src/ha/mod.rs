//! High availability: Kea 2.2's HA state machine, as one pure module.
//!
//! xdhcpd pairs with a real Kea server, so it must make the same decisions
//! at the same moments as Kea's `libdhcp_ha`. This module is that decision
//! logic and nothing else: no sockets, no timers, no clock reads. Every
//! entry point takes `now` (and wall-clock times where Kea compares
//! clocks) and returns [`Action`]s for the daemon to carry out: heartbeats
//! on/off, a lease sync to run, `ha-reset` or `ha-maintenance-notify` to
//! send, DHCP service and scopes to apply, log lines.
//!
//! # Layout
//!
//! - [`state`]: [`State`] (this server) and [`PartnerState`] (what we know
//!   of the partner: unknown, unavailable, or a state).
//! - [`filter`]: the RFC 3074 hash, Kea's load-balancing split and the
//!   copyable [`ScopeFilter`] for the packet path and the kernel map.
//! - [`detect`]: failure detection bookkeeping (unacked clients, rejected
//!   updates, clock skew).
//! - `machine`: [`HaMachine`], its [`Event`]s, [`Action`]s and commands.
//! - [`status`]: [`RelStatus`], a relationship as `status-get`, the
//!   status page and metrics show it (typed; Kea's JSON is in
//!   [`crate::kea::status`]).
//! - [`handover`]: a planned stop handing the service to the partner
//!   (`ha-maintenance-start`), and what the partner's answer means.
//! - [`grace`]: the reuse grace rule that keeps unreplicated kernel
//!   renewals from turning into duplicate addresses after a failover.
//! - [`recovery`]: leaving `terminated` by itself once the clock skew is
//!   gone (Kea never does).
//! - [`conflict`]: which lease an address keeps when the two servers hold
//!   it for different clients.
//!
//! The I/O around this (HTTP to the partner, timers, the sync) is in
//! [`crate::peer`]; Kea's HA messages as JSON in [`crate::kea::ha`].
//!
//! # The model
//!
//! Kea runs a state's handler whenever something happens (a heartbeat
//! finished, a packet's lease updates were answered, a command arrived);
//! a handler may move to another state, whose handler then runs at once,
//! until one stays. [`HaMachine`] does the same: [`HaMachine::handle`]
//! records the event's facts (partner state, clock skew, last contact) and
//! runs the handler chain. Exchanges Kea performs synchronously inside a
//! handler (the lease sync, flushing the communication-recovery backlog,
//! `ha-reset`, the maintenance notification) become an action plus a
//! result event or method; no handler runs while one is outstanding, as
//! Kea's blocks.
//!
//! # Kea rules reproduced (Kea 2.2.0 unless said otherwise)
//!
//! - **States and service.** DHCP is on in the normal states,
//!   partner-down, partner-in-maintenance, communication-recovery,
//!   passive-backup and terminated; off in waiting, syncing, ready,
//!   in-maintenance and backup ([`State::dhcp_enabled`]). Scopes on entry:
//!   none while off; the own scope (primary or secondary only) in the
//!   normal states, communication-recovery, passive-backup and terminated;
//!   the primary's and secondary's scopes in partner-in-maintenance, and in
//!   partner-down when this server's `auto-failover` is on or maintenance
//!   caused it. So a standby in hot-standby serves nothing and in
//!   partner-down serves the primary's scope.
//! - **Shared guard.** Waiting, syncing, ready, the normal states,
//!   communication-recovery and partner-down first stay put while paused
//!   or right after a maintenance cancel, then go to terminated on
//!   excessive clock skew (or, Kea 2.4+, too many rejected updates), then
//!   go to waiting if the partner reports a state impossible in this mode
//!   (waiting just stays).
//! - **Transitions** follow Kea's handlers one for one; the table is in
//!   the tests (`ha::tests`) and in the report of the change that added
//!   this module. Both servers start in waiting; with both waiting or both
//!   ready the primary moves first; `sync-leases: false` goes straight
//!   from waiting to ready; a server that sees its partner in
//!   partner-down goes back to waiting to resync; a partner-down server
//!   seeing the partner ready resumes normal service, or resyncs first if
//!   the partner's `unsent-update-count` changed between two heartbeats
//!   — or changed at any heartbeat since this server was last ready, since
//!   the partner, resyncing from us first, can reach ready after its count
//!   stopped moving (Kea's two-heartbeat check then misses its clients).
//! - **Failure detection.** Communication is interrupted when no heartbeat
//!   succeeded for strictly more than `max-response-delay` (the clock
//!   starts at startup; failed lease updates do not refresh it). While the
//!   partner is unavailable, partner-down is due when communication is
//!   interrupted and either this server cannot watch the partner's clients
//!   (DHCP off, or the hot-standby primary) or `max-unacked-clients` is 0
//!   or more than that many distinct clients aimed at the partner showed
//!   `secs` beyond `max-ack-delay` ([`HaMachine::admit`] counts them;
//!   every successful heartbeat clears the count).
//! - **Clock skew.** Each good heartbeat sets skew = partner `date-time`
//!   minus our clock, whole seconds toward zero; the value persists across
//!   failed heartbeats. Above 30 s a warning (at most one a minute); above
//!   60 s the guard sends the server to terminated. Only heartbeats update
//!   it, so in practice it is checked per heartbeat.
//! - **Terminated** serves its own scope and leaves through `ha-reset` (or
//!   a restart). Beyond Kea: heartbeats go on, and once the skew stayed
//!   under 30 s for a settle period the server leaves for waiting by
//!   itself ([`recovery`]).
//! - **Maintenance.** `ha-maintenance-start` is refused in backup,
//!   in-maintenance, partner-in-maintenance and terminated; the partner's
//!   answer 0 leads to partner-in-maintenance, no answer or 1 to
//!   partner-down with every scope. The notified side goes to
//!   in-maintenance (refused with 1001 in backup, partner-in-maintenance,
//!   terminated) and a cancel returns both to their previous states.
//!   Where Kea 2.2 would return to in-maintenance itself (notified twice)
//!   we go to waiting, as later Kea does. Beyond Kea: in-maintenance
//!   reached without a notify to this process (the partner still holds a
//!   previous run of it there: restarted right after a planned stop) asks
//!   the partner for `ha-maintenance-cancel`, and goes to waiting once
//!   the partner is seen in any other state.
//! - **Planned stop** ([`handover`]): before exiting on SIGTERM or
//!   `shutdown`, HA's DHCP switch goes off for good
//!   ([`HaMachine::stop_serving`]) and the partner is asked to take over
//!   with `ha-maintenance-start` when [`HaMachine::handover`] says so.
//! - **Pausing.** `state-machine.states[].pause` `always`/`once` pause the
//!   machine on entering that state (entry effects still apply);
//!   [`HaMachine::resume`] (`ha-continue`) lets the next event move on.
//! - **Communication-recovery** (load balancing with
//!   `delayed-updates-limit` > 0): lease updates are queued up to the
//!   limit; when the partner is back in load-balancing or
//!   communication-recovery the backlog is flushed (then normal), or after
//!   an overflow or a failed flush the partner gets `ha-reset` and we go
//!   to waiting.
//! - **Lease updates** go to the partner only in the normal states and
//!   partner-in-maintenance; otherwise `unsent-update-count` grows by one
//!   per packet ([`HaMachine::plan_lease_updates`]). A failed update makes
//!   the partner unavailable; result 4 (Kea 2.4+) instead counts the
//!   client for 24 h toward `max-rejected-lease-updates`. Beyond Kea: an
//!   xdhcpd partner refusing an update under the [`conflict`] rule sends
//!   the winning lease, which this server stores; nothing is counted.
//! - **Network state.** Kea 2.2 keeps one HA flag for the local service
//!   that the partner's `dhcp-disable`/`dhcp-enable` (origin `ha-partner`)
//!   also set; state entries overwrite it, `ha-sync-complete-notify`
//!   re-enables it (in partner-down only if the next heartbeat fails), and
//!   a `max-period` re-enables it when it runs out.
//! - **Backups.** A backup server goes to backup and a passive-backup
//!   primary to passive-backup at start and never leave; neither sends
//!   heartbeats; backups serve nothing.
//! - **Load-balancing split** ([`filter`]): RFC 3074 hash of the client
//!   identifier, else `chaddr`; even → primary, odd → secondary.

pub mod conflict;
pub mod detect;
pub mod filter;
pub mod grace;
pub mod handover;
pub mod kea_log;
mod machine;
pub mod recovery;
pub mod state;
pub mod status;
mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod recovery_tests;

pub use detect::{ClientKey, clock_skew_secs, is_unacked, normalize_secs};
pub use filter::{
    Query, ScopeFilter, ScopeOwner, lb_key, lb_owner, rfc3074_bucket, serves_in_load_balancing,
};
pub use machine::{
    Action, Event, HaMachine, HeartbeatReply, Notice, PartnerStatus, PartnerUpdates, PeerAnswer,
    RemoteStatus, Reply, ReplyCode, SyncRequest, UpdateOutcome, UpdatePlan,
};
pub use grace::ReuseGrace;
pub use state::{PartnerState, State};
pub use status::{LocalStatus, PartnerView, RelStatus};
pub use update::Update;
