//! Failure detection bookkeeping: unacked clients, rejected lease updates,
//! clock skew.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// A client as Kea's failure detection tells clients apart: hardware
/// address plus the client identifier (empty when the query had none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// `chaddr`, `hlen` bytes.
    pub hwaddr: Vec<u8>,
    /// Option 61's payload, or empty.
    pub client_id: Vec<u8>,
}

impl ClientKey {
    /// Builds a key from a query's fields.
    pub fn new(hwaddr: &[u8], client_id: Option<&[u8]>) -> Self {
        ClientKey {
            hwaddr: hwaddr.to_vec(),
            client_id: client_id.unwrap_or_default().to_vec(),
        }
    }
}

/// `secs` as Kea reads it: some Windows clients send it byte-swapped, so a
/// value above 255 with a zero low byte is swapped back.
pub fn normalize_secs(secs: u16) -> u16 {
    if secs > 255 && secs & 0xff == 0 {
        secs.swap_bytes()
    } else {
        secs
    }
}

/// Whether a query with this `secs` shows a client left unanswered for
/// longer than `max-ack-delay` (strictly longer, in milliseconds).
pub fn is_unacked(secs: u16, max_ack_delay: Duration) -> bool {
    u128::from(normalize_secs(secs)) * 1000 > max_ack_delay.as_millis()
}

/// Clients seen trying to reach the partner while communication is
/// interrupted. A client first seen below the threshold is "connecting" and
/// becomes unacked if it comes back with a larger `secs`; it never goes
/// back. Cleared on every successful heartbeat.
#[derive(Debug, Default)]
pub(crate) struct ConnectingClients {
    clients: HashMap<ClientKey, bool>,
    unacked: usize,
    analyzed: u64,
}

impl ConnectingClients {
    /// Records one analysed query; true when this made the client unacked.
    pub(crate) fn record(&mut self, key: ClientKey, unacked: bool) -> bool {
        self.analyzed += 1;
        let was = self.clients.entry(key).or_insert(false);
        if unacked && !*was {
            *was = true;
            self.unacked += 1;
            return true;
        }
        false
    }

    pub(crate) fn unacked(&self) -> usize {
        self.unacked
    }

    pub(crate) fn connecting(&self) -> usize {
        self.clients.len()
    }

    pub(crate) fn analyzed(&self) -> u64 {
        self.analyzed
    }

    /// Kea's `failureDetected`: no traffic check configured (0), or more
    /// distinct unacked clients than allowed.
    pub(crate) fn failure_detected(&self, max_unacked: u32) -> bool {
        max_unacked == 0 || self.unacked > max_unacked as usize
    }

    pub(crate) fn clear(&mut self) {
        *self = ConnectingClients::default();
    }
}

/// How long a rejected lease update counts against the partner (Kea: 24 h).
pub const REJECTED_UPDATE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Clients whose lease updates the partner refused (result 4, Kea 2.4+),
/// each until it expires or a later update for it succeeds.
#[derive(Debug, Default)]
pub(crate) struct RejectedClients {
    clients: HashMap<ClientKey, Instant>,
}

impl RejectedClients {
    pub(crate) fn record(&mut self, key: ClientKey, now: Instant) {
        self.clients.insert(key, now + REJECTED_UPDATE_LIFETIME);
    }

    pub(crate) fn forgive(&mut self, key: &ClientKey) {
        self.clients.remove(key);
    }

    /// Live entries (expired ones dropped).
    pub(crate) fn count(&mut self, now: Instant) -> usize {
        self.clients.retain(|_, until| *until > now);
        self.clients.len()
    }

    pub(crate) fn clear(&mut self) {
        self.clients.clear();
    }
}

/// Above this many seconds of skew a warning is logged.
pub const WARN_CLOCK_SKEW_SECS: i64 = 30;
/// Above this many seconds of skew HA terminates.
pub const TERM_CLOCK_SKEW_SECS: i64 = 60;
/// Warnings are repeated no sooner than this (strictly more than 60 whole
/// seconds after the last one).
pub const CLOCK_SKEW_WARN_INTERVAL_SECS: u64 = 60;

/// Partner's clock minus ours in whole seconds, truncated toward zero (the
/// partner's `date-time` has 1 s resolution; no round-trip correction).
pub fn clock_skew_secs(partner: SystemTime, local: SystemTime) -> i64 {
    match partner.duration_since(local) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secs_threshold_and_windows_swap() {
        let d = Duration::from_millis(10_000);
        // (secs on the wire, unacked with max-ack-delay 10 s)
        for (secs, want) in [
            (0, false),
            (9, false),
            (10, false), // 10 000 ms is not above 10 000 ms
            (11, true),
            (255, true),
            (0x0b00, true),  // swapped 11
            (0x0a00, false), // swapped 10
            (0x0100, false), // swapped 1
            (0x0101, true),  // 257 s, low byte set: taken as is
            (u16::MAX, true),
        ] {
            assert_eq!(is_unacked(secs, d), want, "secs {secs:#06x}");
        }
        assert_eq!(normalize_secs(0x0b00), 11);
        assert_eq!(normalize_secs(0x0100), 1);
        assert_eq!(normalize_secs(256 + 1), 257);
        // Sub-second max-ack-delay: 1 s is already late.
        assert!(is_unacked(1, Duration::from_millis(999)));
        assert!(!is_unacked(0, Duration::ZERO));
    }

    #[test]
    fn connecting_clients_upgrade_but_never_downgrade() {
        let mut c = ConnectingClients::default();
        let a = ClientKey::new(&[2, 0, 0, 0, 0, 1], None);
        let a_cid = ClientKey::new(&[2, 0, 0, 0, 0, 1], Some(&[1, 2]));
        assert!(!c.record(a.clone(), false));
        assert_eq!((c.connecting(), c.unacked()), (1, 0));
        assert!(c.record(a.clone(), true), "upgraded");
        assert!(!c.record(a.clone(), true), "counted once");
        assert!(!c.record(a.clone(), false), "never downgraded");
        assert_eq!((c.connecting(), c.unacked()), (1, 1));
        assert!(
            c.record(a_cid, true),
            "same MAC, other client id: another client"
        );
        assert_eq!((c.connecting(), c.unacked(), c.analyzed()), (2, 2, 5));
        assert!(c.failure_detected(0));
        assert!(c.failure_detected(1));
        assert!(!c.failure_detected(2));
        c.clear();
        assert_eq!((c.connecting(), c.unacked(), c.analyzed()), (0, 0, 0));
    }

    #[test]
    fn rejected_clients_expire_and_are_forgiven() {
        let t0 = Instant::now();
        let mut r = RejectedClients::default();
        let a = ClientKey::new(&[1], None);
        let b = ClientKey::new(&[2], None);
        r.record(a.clone(), t0);
        r.record(b.clone(), t0 + Duration::from_secs(3600));
        r.record(a.clone(), t0 + Duration::from_secs(60)); // refreshed, still one
        assert_eq!(r.count(t0), 2);
        r.forgive(&b);
        assert_eq!(r.count(t0), 1);
        assert_eq!(
            r.count(t0 + REJECTED_UPDATE_LIFETIME + Duration::from_secs(61)),
            0
        );
    }

    #[test]
    fn skew_is_whole_seconds_toward_zero() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ms = Duration::from_millis;
        assert_eq!(clock_skew_secs(base, base), 0);
        assert_eq!(clock_skew_secs(base + ms(60_900), base), 60);
        assert_eq!(clock_skew_secs(base, base + ms(60_900)), -60);
        assert_eq!(clock_skew_secs(base + ms(61_000), base), 61);
        // Our clock has sub-second precision, the partner's date-time not.
        assert_eq!(clock_skew_secs(base, base + ms(400)), 0);
    }
}
