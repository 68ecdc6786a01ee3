//! Leaving `terminated` without a human: the rule, and its bookkeeping
//! ([`TerminatedExit`]).
//!
//! # Why
//!
//! Kea sends a server to `terminated` when the partner's clock is more
//! than 60 s off (or, since 2.4, after too many refused lease updates),
//! and no Kea version leaves it by itself: the operator must fix the
//! clocks and restart both servers, one after the other (kea#1205:
//! restarting one used to drop it straight back; in 2.2 it waits in
//! `waiting`, DHCP off, until the other is restarted too). A pair whose
//! NTP server hiccupped stays split until someone notices.
//!
//! # The rule
//!
//! - **While skewed, as Kea.** Above 60 s the server goes to `terminated`:
//!   it serves its own scope only (a hot-standby standby serves nothing),
//!   sends no lease updates (they count in `unsent-update-count`) and
//!   trusts nothing the partner says. Nothing is done with a skewed
//!   partner's times, so this is the only safe stance.
//! - **Still measuring.** Unlike Kea, heartbeats go on in `terminated`:
//!   they are read-only for the receiver (Kea answers one in any state and
//!   changes nothing), and they are the only way to see the skew end.
//! - **Clean for a while.** The skew counts as gone once every successful
//!   heartbeat for a *settle period* measured at most 30 s (Kea's warning
//!   limit, half the terminating one, so a clock wandering around 60 s
//!   cannot make the pair flap). The settle period is
//!   `max(max-response-delay, 3 × heartbeat-delay)`: the time the operator
//!   allowed the pair to decide a partner is gone, and at least three
//!   agreeing measurements. Failed heartbeats measure nothing and do not
//!   restart it; a heartbeat over 30 s does.
//! - **Who leaves first.** A server whose partner is in any state but
//!   `terminated` leaves once the skew is clean. When both are
//!   terminated, the one that is **not the primary** leaves first (a
//!   hot-standby standby serves nothing in `terminated`, so this costs no
//!   service); the primary follows when it sees its partner out. Leaving
//!   means `waiting`, then Kea's start-up path: both sync (each pulls the
//!   other's leases, conflicts settled by [`crate::ha::conflict`]) before
//!   either serves in the normal state again.
//! - **A partner that stays terminated** (a real Kea server never leaves
//!   it): a server that left first and still sees its partner terminated
//!   after the settle period plus two heartbeats goes back to
//!   `terminated`, where it serves as before, and tries again only after
//!   ten settle periods (ten minutes with Kea's default timers, Kea
//!   2.5.8's own bound for waiting on a terminated partner), or at once
//!   when the partner is seen in another state (the operator restarted
//!   it). So a Kea partner is never pushed: it sees heartbeats only, and
//!   comes back through `waiting` as Kea's start-up does when restarted.
//!
//! Terminated reached through refused lease updates (Kea 2.4+ peers) leaves
//! the same way: the refused-client count is cleared on entry, so the pair
//! resyncs, and keeps going while updates are accepted.

use std::time::{Duration, Instant};

use super::detect::WARN_CLOCK_SKEW_SECS;
use super::state::{PartnerState, State};

/// Tries again after a failed attempt, in settle periods.
const RETRY_SETTLES: u32 = 10;

/// The bookkeeping of the rule (see the module docs).
#[derive(Debug, Clone)]
pub struct TerminatedExit {
    settle: Duration,
    heartbeat: Duration,
    /// First clean heartbeat since the last one over the warning limit.
    clean_since: Option<Instant>,
    /// Left terminated first, the partner still terminated, at this time.
    probing_since: Option<Instant>,
    /// No first move before this time (after a failed one).
    retry_after: Option<Instant>,
}

/// What the machine should do about `terminated` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing.
    Stay,
    /// Leave `terminated` for `waiting`.
    Leave,
    /// The first move failed: back to `terminated`.
    Return,
}

impl TerminatedExit {
    /// The rule for a relationship with these timers (no heartbeats, no
    /// measurement: never leaves, as Kea).
    pub fn new(max_response_delay: Duration, heartbeat_delay: Duration) -> Self {
        TerminatedExit {
            settle: max_response_delay.max(heartbeat_delay * 3),
            heartbeat: heartbeat_delay,
            clean_since: None,
            probing_since: None,
            retry_after: None,
        }
    }

    /// How long the skew must stay clean.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// A successful heartbeat measured `skew_secs`.
    pub fn measured(&mut self, now: Instant, skew_secs: i64) {
        if skew_secs.abs() > WARN_CLOCK_SKEW_SECS {
            self.clean_since = None;
        } else {
            self.clean_since.get_or_insert(now);
        }
    }

    /// The server entered `terminated`: the skew must prove clean again.
    pub fn entered(&mut self) {
        self.clean_since = None;
        self.probing_since = None;
    }

    /// In `terminated`: whether to leave now (`partner` as last learned,
    /// `primary` this server's role).
    pub fn in_terminated(&mut self, now: Instant, partner: PartnerState, primary: bool) -> Verdict {
        if self.heartbeat.is_zero() || self.clean_since.is_none_or(|t| now.saturating_duration_since(t) < self.settle) {
            return Verdict::Stay;
        }
        match partner {
            PartnerState::In(State::Terminated) => {
                if primary || self.retry_after.is_some_and(|t| now < t) {
                    return Verdict::Stay;
                }
                self.probing_since = Some(now);
                Verdict::Leave
            }
            PartnerState::In(_) => {
                self.retry_after = None;
                Verdict::Leave
            }
            PartnerState::Unknown | PartnerState::Unavailable => Verdict::Stay,
        }
    }

    /// Outside `terminated` (in `waiting`, where a first move waits for the
    /// partner): whether the first move failed.
    pub fn waiting(&mut self, now: Instant, partner: PartnerState) -> Verdict {
        let Some(since) = self.probing_since else { return Verdict::Stay };
        match partner {
            PartnerState::In(State::Terminated) => {
                if now.saturating_duration_since(since) <= self.settle + self.heartbeat * 2 {
                    return Verdict::Stay;
                }
                self.probing_since = None;
                self.retry_after = Some(now + self.settle * RETRY_SETTLES);
                Verdict::Return
            }
            PartnerState::In(_) => {
                // The partner followed.
                self.probing_since = None;
                self.retry_after = None;
                Verdict::Stay
            }
            PartnerState::Unknown | PartnerState::Unavailable => Verdict::Stay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const TERM: PartnerState = PartnerState::In(State::Terminated);

    /// 3 s max-response-delay, 1 s heartbeats: settle 3 s.
    fn exit() -> TerminatedExit {
        TerminatedExit::new(3 * S, S)
    }

    #[test]
    fn settle_is_the_longer_of_max_response_delay_and_three_heartbeats() {
        assert_eq!(exit().settle(), 3 * S);
        assert_eq!(TerminatedExit::new(60 * S, 10 * S).settle(), 60 * S);
        assert_eq!(TerminatedExit::new(S, 2 * S).settle(), 6 * S);
    }

    #[test]
    fn leaves_only_after_the_skew_stayed_under_the_warning_limit_for_the_settle_period() {
        let t0 = Instant::now();
        let mut e = exit();
        let waiting = PartnerState::In(State::Waiting);
        e.measured(t0, 90);
        assert_eq!(e.in_terminated(t0 + 10 * S, waiting, false), Verdict::Stay, "still skewed");
        e.measured(t0 + S, 31);
        assert_eq!(e.in_terminated(t0 + 10 * S, waiting, false), Verdict::Stay, "over the warning limit");
        e.measured(t0 + 2 * S, -30);
        e.measured(t0 + 3 * S, 0);
        assert_eq!(e.in_terminated(t0 + 4 * S, waiting, false), Verdict::Stay, "clean for 2 s only");
        // A bad measurement restarts the period.
        e.measured(t0 + 4 * S, 45);
        e.measured(t0 + 5 * S, 1);
        assert_eq!(e.in_terminated(t0 + 7 * S, waiting, true), Verdict::Stay);
        assert_eq!(e.in_terminated(t0 + 8 * S, waiting, true), Verdict::Leave);
        // Entering terminated again forgets it.
        e.entered();
        assert_eq!(e.in_terminated(t0 + 20 * S, waiting, true), Verdict::Stay);
    }

    #[test]
    fn the_non_primary_moves_first_and_the_primary_follows() {
        let t0 = Instant::now();
        let (mut primary, mut standby) = (exit(), exit());
        for e in [&mut primary, &mut standby] {
            e.measured(t0, 0);
        }
        let t = t0 + 3 * S;
        assert_eq!(primary.in_terminated(t, TERM, true), Verdict::Stay, "the primary waits");
        assert_eq!(standby.in_terminated(t, TERM, false), Verdict::Leave, "the standby goes first");
        // The primary sees the standby in waiting and follows.
        assert_eq!(primary.in_terminated(t + S, PartnerState::In(State::Waiting), true), Verdict::Leave);
        assert_eq!(standby.waiting(t + 2 * S, PartnerState::In(State::Waiting)), Verdict::Stay);
        // Unknown or unavailable partners: no move.
        assert_eq!(standby.in_terminated(t, PartnerState::Unavailable, false), Verdict::Stay);
        assert_eq!(standby.in_terminated(t, PartnerState::Unknown, false), Verdict::Stay);
    }

    #[test]
    fn a_partner_that_stays_terminated_sends_us_back_and_we_retry_later() {
        let t0 = Instant::now();
        let mut e = exit();
        e.measured(t0, 2);
        let left = t0 + 3 * S;
        assert_eq!(e.in_terminated(left, TERM, false), Verdict::Leave);
        // Settle + two heartbeats of grace for the partner to follow.
        assert_eq!(e.waiting(left + 5 * S, TERM), Verdict::Stay);
        assert_eq!(e.waiting(left + 5 * S + S / 2, TERM), Verdict::Return);
        let back = left + 5 * S + S / 2;
        e.entered();
        e.measured(back, 0);
        // Clean again, but no first move for ten settle periods…
        assert_eq!(e.in_terminated(back + 10 * S, TERM, false), Verdict::Stay);
        assert_eq!(e.in_terminated(back + 30 * S, TERM, false), Verdict::Leave);
        // … unless the partner is seen out of terminated (restarted).
        let mut e = exit();
        e.measured(t0, 0);
        assert_eq!(e.in_terminated(t0 + 3 * S, TERM, false), Verdict::Leave);
        assert_eq!(e.waiting(t0 + 9 * S, TERM), Verdict::Return);
        e.entered();
        e.measured(t0 + 10 * S, 0);
        assert_eq!(e.in_terminated(t0 + 13 * S, PartnerState::In(State::Waiting), false), Verdict::Leave);
        // Not having moved first, waiting never sends us back.
        let mut e = exit();
        assert_eq!(e.waiting(t0 + 100 * S, TERM), Verdict::Stay);
    }

    #[test]
    fn without_heartbeats_nothing_is_measured_and_nothing_moves() {
        let t0 = Instant::now();
        let mut e = TerminatedExit::new(3 * S, Duration::ZERO);
        e.measured(t0, 0);
        assert_eq!(e.in_terminated(t0 + 100 * S, PartnerState::In(State::Waiting), false), Verdict::Stay);
    }
}
