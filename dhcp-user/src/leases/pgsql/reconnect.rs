//! Kea 2.2's rules for a lost lease database (pure: no I/O, no clock).
//!
//! What Kea does, read from `ControlledDhcpv4Srv::dbLostCallback` /
//! `dbRecoveredCallback` / `dbFailedCallback`, `PgSqlLeaseMgr::dbReconnect`
//! and `ReconnectCtl`:
//!
//! - On the loss (the first failed statement whose SQLSTATE class says the
//!   connection, not the lease, is the problem) it logs
//!   `DHCP4_DB_RECONNECT_LOST_CONNECTION`. With `on-fail`
//!   `stop-retry-exit` it also disables the DHCP service (Kea's network
//!   state, origin "DB connection"); the `serve-retry-*` settings leave it
//!   enabled: the server keeps answering what needs no lease write.
//! - With `max-reconnect-tries` or `reconnect-wait-time` 0 there is no
//!   reconnect: `DHCP4_DB_RECONNECT_DISABLED`, then exit unless `on-fail`
//!   is `serve-retry-continue` (which then runs on without a database).
//! - Otherwise it tries to reopen at once, and after each failure
//!   (`DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_FAILED`) schedules the next
//!   attempt `reconnect-wait-time` later
//!   (`DHCPSRV_PGSQL_LEASE_DB_RECONNECT_ATTEMPT_SCHEDULE`, attempt n of max),
//!   until `max-reconnect-tries` failed attempts after the first:
//!   `DHCPSRV_PGSQL_LEASE_DB_RECONNECT_FAILED` and
//!   `DHCP4_DB_RECONNECT_FAILED`, then exit unless `serve-retry-continue`.
//! - On success: `DHCP4_DB_RECONNECT_SUCCEEDED`, the service enabled again
//!   if it was disabled for the loss, and the retry count starts over.
//!
//! [`Reconnect`] is that procedure as a machine: each input returns the
//! [`Step`] to take, and the monitor ([`super::monitor`]) does the I/O.

use std::time::Duration;

use crate::config::{OnFail, Postgresql};

/// What to do next, as Kea would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The connection is lost: stop the DHCP service if `stop_service`,
    /// then try to reconnect at once.
    Lost {
        /// `on-fail` is `stop-retry-exit`.
        stop_service: bool,
    },
    /// Reconnect is disabled (`max-reconnect-tries` or
    /// `reconnect-wait-time` 0): give up at once, after stopping the
    /// service if `stop_service`.
    Disabled {
        /// `on-fail` is `stop-retry-exit`.
        stop_service: bool,
        /// Shut the server down (not `serve-retry-continue`).
        exit: bool,
    },
    /// An attempt failed; try again after `wait` (attempt `attempt` of
    /// `max`).
    Retry {
        /// 1-based number of the next attempt.
        attempt: u32,
        /// `max-reconnect-tries`.
        max: u32,
        /// `reconnect-wait-time`.
        wait: Duration,
    },
    /// Retries are exhausted.
    Failed {
        /// `max-reconnect-tries`, for the log.
        max: u32,
        /// Shut the server down (not `serve-retry-continue`).
        exit: bool,
    },
    /// Reconnected: start the service again if `start_service`.
    Recovered {
        /// The loss stopped it (`stop-retry-exit`).
        start_service: bool,
    },
}

/// Kea's `ReconnectCtl` for the lease database.
#[derive(Debug, Clone)]
pub struct Reconnect {
    max: u32,
    wait: Duration,
    on_fail: OnFail,
    left: u32,
}

impl Reconnect {
    /// The control for `cfg`'s `max-reconnect-tries`, `reconnect-wait-time`
    /// and `on-fail`.
    pub fn new(cfg: &Postgresql) -> Reconnect {
        Reconnect::with(cfg.max_reconnect_tries, cfg.reconnect_wait_time, cfg.on_fail)
    }

    /// The control for explicit settings.
    pub fn with(max: u32, wait: Duration, on_fail: OnFail) -> Reconnect {
        Reconnect { max, wait, on_fail, left: max }
    }

    /// `max-reconnect-tries`.
    pub fn max_tries(&self) -> u32 {
        self.max
    }

    /// `reconnect-wait-time`.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Kea's `alterServiceState`: only `stop-retry-exit` stops the service.
    pub fn alters_service(&self) -> bool {
        self.on_fail == OnFail::StopRetryExit
    }

    /// Kea's `exitOnFailure`: every setting but `serve-retry-continue`.
    pub fn exits_on_failure(&self) -> bool {
        self.on_fail != OnFail::ServeRetryContinue
    }

    /// The connection was found lost.
    pub fn lost(&mut self) -> Step {
        let stop_service = self.left == self.max && self.alters_service();
        if self.left == 0 || self.wait.is_zero() {
            return Step::Disabled { stop_service, exit: self.exits_on_failure() };
        }
        Step::Lost { stop_service }
    }

    /// A reconnect attempt failed (Kea's `checkRetries`).
    pub fn attempt_failed(&mut self) -> Step {
        if self.left == 0 {
            return Step::Failed { max: self.max, exit: self.exits_on_failure() };
        }
        self.left -= 1;
        if self.left == 0 {
            return Step::Failed { max: self.max, exit: self.exits_on_failure() };
        }
        Step::Retry { attempt: self.max - self.left + 1, max: self.max, wait: self.wait }
    }

    /// A reconnect attempt succeeded: the count starts over.
    pub fn recovered(&mut self) -> Step {
        self.left = self.max;
        Step::Recovered { start_service: self.alters_service() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(500);

    #[test]
    fn stop_retry_exit_stops_the_service_retries_then_exits() {
        let mut r = Reconnect::with(3, WAIT, OnFail::StopRetryExit);
        assert_eq!(r.lost(), Step::Lost { stop_service: true });
        // Kea: the first attempt is immediate, then "attempt 2 of 3", "3 of 3".
        assert_eq!(r.attempt_failed(), Step::Retry { attempt: 2, max: 3, wait: WAIT });
        assert_eq!(r.attempt_failed(), Step::Retry { attempt: 3, max: 3, wait: WAIT });
        assert_eq!(r.attempt_failed(), Step::Failed { max: 3, exit: true });
    }

    #[test]
    fn a_recovery_restarts_the_service_and_the_count() {
        let mut r = Reconnect::with(2, WAIT, OnFail::StopRetryExit);
        assert_eq!(r.lost(), Step::Lost { stop_service: true });
        assert_eq!(r.attempt_failed(), Step::Retry { attempt: 2, max: 2, wait: WAIT });
        assert_eq!(r.recovered(), Step::Recovered { start_service: true });
        assert_eq!(r.lost(), Step::Lost { stop_service: true });
        assert_eq!(r.attempt_failed(), Step::Retry { attempt: 2, max: 2, wait: WAIT });
    }

    #[test]
    fn serve_settings_keep_the_service_and_differ_only_in_exiting() {
        let mut r = Reconnect::with(1, WAIT, OnFail::ServeRetryExit);
        assert_eq!(r.lost(), Step::Lost { stop_service: false });
        assert_eq!(r.attempt_failed(), Step::Failed { max: 1, exit: true });
        let mut r = Reconnect::with(1, WAIT, OnFail::ServeRetryContinue);
        assert_eq!(r.lost(), Step::Lost { stop_service: false });
        assert_eq!(r.attempt_failed(), Step::Failed { max: 1, exit: false });
        assert_eq!(r.recovered(), Step::Recovered { start_service: false });
    }

    #[test]
    fn no_tries_or_no_wait_disables_reconnect_as_kea_does() {
        // Kea's defaults: max-reconnect-tries 0, stop-retry-exit: the first
        // loss stops the service and shuts the server down.
        assert_eq!(
            Reconnect::with(0, WAIT, OnFail::StopRetryExit).lost(),
            Step::Disabled { stop_service: true, exit: true }
        );
        assert_eq!(
            Reconnect::with(5, Duration::ZERO, OnFail::ServeRetryExit).lost(),
            Step::Disabled { stop_service: false, exit: true }
        );
        assert_eq!(
            Reconnect::with(0, WAIT, OnFail::ServeRetryContinue).lost(),
            Step::Disabled { stop_service: false, exit: false }
        );
    }
}
