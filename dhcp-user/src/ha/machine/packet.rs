//! The packet path: which queries to answer and what happens to the lease
//! updates of each committed packet. Called per packet, unlike the rest.

use std::time::Instant;

use crate::config::ha::Role;
use crate::ha::detect::{self, ClientKey};
use crate::ha::filter::{Query, ScopeOwner};
use crate::ha::state::State;

use super::{Action, HaMachine, Notice, PartnerUpdates, UpdatePlan};

impl HaMachine {
    /// Whether to answer this query: HA's DHCP switch on and the query in a
    /// served scope. A query for the partner's scope seen while
    /// communication is interrupted feeds the unacked-clients count (Kea
    /// analyses exactly those). Returns the notices to log.
    pub fn admit(&mut self, now: Instant, q: &Query<'_>) -> (bool, Vec<Action>) {
        let filter = self.filter();
        let in_scope = filter.in_scope(q);
        let mut out = Vec::new();
        if !in_scope && self.communication_interrupted(now) {
            let unacked = detect::is_unacked(q.secs, self.max_ack_delay);
            if self
                .clients
                .record(ClientKey::new(q.chaddr, q.client_id), unacked)
            {
                let max = self.max_unacked_clients as usize;
                let n = self.clients.unacked();
                let left = if max >= n { max - n + 1 } else { 0 };
                out.push(Action::Notice(Notice::ClientUnacked { unacked: n, left }));
            }
        }
        (in_scope && self.dhcp, out)
    }

    /// The scope a query falls in, by peer name (Kea tags the query with
    /// the class `HA_<name>`).
    pub fn scope_name(&self, q: &Query<'_>) -> Option<&str> {
        match self.filter().owner(q)? {
            ScopeOwner::Primary => self.primary_name.as_deref(),
            ScopeOwner::Secondary => self.secondary_name.as_deref(),
        }
    }

    /// Decides what to do with the lease updates of one committed packet
    /// holding `leases` changes (updates plus deletions), and does the
    /// bookkeeping: `unsent-update-count` (once per packet) when the
    /// partner is skipped, backlog accounting in communication-recovery.
    pub fn plan_lease_updates(&mut self, leases: usize) -> UpdatePlan {
        let backups = self.send_lease_updates;
        let partner = if self.partner_name.is_none() {
            PartnerUpdates::NoPartner
        } else if self.send_lease_updates && self.state == State::CommunicationRecovery {
            let room = self.delayed_updates_limit.saturating_sub(self.backlog_len) as usize;
            if leases > room || self.backlog_overflowed {
                self.backlog_len = self.delayed_updates_limit;
                self.backlog_overflowed = true;
                PartnerUpdates::Overflowed
            } else {
                self.backlog_len += leases as u32;
                PartnerUpdates::Queue
            }
        } else if self.send_lease_updates
            && self.role != Role::Backup
            && matches!(
                self.state,
                State::HotStandby | State::LoadBalancing | State::PartnerInMaintenance
            )
        {
            PartnerUpdates::Send
        } else {
            // Zero means "just started", so the count wraps to 1.
            self.unsent = self.unsent.checked_add(1).unwrap_or(1);
            PartnerUpdates::Skip
        };
        UpdatePlan { partner, backups }
    }

    /// Counts one committed packet whose updates never reached the partner
    /// although they were due (an asynchronous kernel-renewal update that
    /// failed), so the partner sees `unsent-update-count` change and
    /// resyncs before trusting its copy.
    pub fn count_unsent(&mut self) {
        self.unsent = self.unsent.checked_add(1).unwrap_or(1);
    }
}
