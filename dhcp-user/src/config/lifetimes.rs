//! Lease lifetime and T1/T2 for one subnet, computed exactly as Kea 2.2 does.
//!
//! A Kea peer and xdhcp serve the same clients; if they handed out different
//! lease or renewal times for the same request, failover would be visible to
//! clients and lease updates between peers would disagree. So the rules are
//! Kea 2.2's (its allocation engine and `setTeeTimes`):
//!
//! - Lease time: the client's requested time (option 51) clamped to
//!   `[min_valid, max_valid]`; no request (or a request of 0) gets `valid`.
//! - T2: `rebind` when configured, otherwise `round(t2_percent × lease)` when
//!   `calculate_tee_times`, otherwise none. Sent only if non-zero and below
//!   the lease time.
//! - T1: `renew` when configured, otherwise `round(t1_percent × lease)` when
//!   `calculate_tee_times`, otherwise none. Sent only if non-zero and below
//!   T2 when T2 is sent, else below the lease time.

use super::error::Invalid;

/// Kea's default `valid-lifetime` when none is configured anywhere.
pub const DEFAULT_VALID_LIFETIME: u32 = 7200;
/// Kea's default `t1-percent`.
pub const DEFAULT_T1_PERCENT: f64 = 0.5;
/// Kea's default `t2-percent`.
pub const DEFAULT_T2_PERCENT: f64 = 0.875;

/// A subnet's effective lifetime settings (global values already inherited).
/// Those handed out by `Config` satisfy `min_valid ≤ valid ≤ max_valid`,
/// `renew ≤ rebind`, and, with `calculate_tee_times`, `0 < t1_percent <
/// t2_percent < 1`; [`Lifetimes::lease_times`] is total even if they do not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetimes {
    /// `valid-lifetime`: the lease time when the client asks for none.
    pub valid: u32,
    /// `min-valid-lifetime`: the shortest lease a client can ask for.
    pub min_valid: u32,
    /// `max-valid-lifetime`: the longest lease a client can ask for.
    pub max_valid: u32,
    /// `renew-timer` (T1), if configured.
    pub renew: Option<u32>,
    /// `rebind-timer` (T2), if configured.
    pub rebind: Option<u32>,
    /// `calculate-tee-times`: derive unset T1/T2 from the lease time.
    pub calculate_tee_times: bool,
    /// `t1-percent`: T1 as a fraction of the lease time.
    pub t1_percent: f64,
    /// `t2-percent`: T2 as a fraction of the lease time.
    pub t2_percent: f64,
}

/// What to put in a reply: lease time (option 51), T1 (58) and T2 (59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// Lease time in seconds.
    pub valid: u32,
    /// Renewal time, when one is to be sent.
    pub t1: Option<u32>,
    /// Rebinding time, when one is to be sent.
    pub t2: Option<u32>,
}

impl Default for Lifetimes {
    /// Kea's defaults: 7200 s, no timers, no calculation.
    fn default() -> Self {
        Lifetimes {
            valid: DEFAULT_VALID_LIFETIME,
            min_valid: DEFAULT_VALID_LIFETIME,
            max_valid: DEFAULT_VALID_LIFETIME,
            renew: None,
            rebind: None,
            calculate_tee_times: false,
            t1_percent: DEFAULT_T1_PERCENT,
            t2_percent: DEFAULT_T2_PERCENT,
        }
    }
}

impl Lifetimes {
    /// Lease time, T1 and T2 for a client that asked for `requested` seconds
    /// (`None` or `Some(0)`: no preference).
    pub fn lease_times(&self, requested: Option<u32>) -> LeaseTimes {
        let valid = match requested {
            Some(r) if r > 0 => {
                if r <= self.min_valid {
                    self.min_valid
                } else if r >= self.max_valid {
                    self.max_valid
                } else {
                    r
                }
            }
            _ => self.valid,
        };
        self.timers_for(valid)
    }

    /// T1 and T2 for a lease of `valid` seconds, each sent only when
    /// below the one after it (Kea's `setTeeTimes`). Also used for a reused
    /// lease (lease caching), whose lifetime is what remains of it.
    pub fn timers_for(&self, valid: u32) -> LeaseTimes {
        let scaled = |p: f64| -> u32 {
            let v = (p * valid as f64).round();
            if v.is_nan() || v <= 0.0 {
                0
            } else if v >= u32::MAX as f64 {
                u32::MAX
            } else {
                v as u32
            }
        };

        let t2 = self.rebind.unwrap_or(if self.calculate_tee_times { scaled(self.t2_percent) } else { 0 });
        let mut ceiling = valid;
        let t2 = (t2 > 0 && t2 < ceiling).then_some(t2);
        if let Some(t2) = t2 {
            ceiling = t2;
        }
        let t1 = self.renew.unwrap_or(if self.calculate_tee_times { scaled(self.t1_percent) } else { 0 });
        let t1 = (t1 > 0 && t1 < ceiling).then_some(t1);
        LeaseTimes { valid, t1, t2 }
    }
}

/// The lifetime keys of one scope (global or subnet) as written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LifetimeKeys {
    pub valid: Option<u32>,
    pub min_valid: Option<u32>,
    pub max_valid: Option<u32>,
    pub renew: Option<u32>,
    pub rebind: Option<u32>,
    pub calculate_tee_times: Option<bool>,
    pub t1_percent: Option<f64>,
    pub t2_percent: Option<f64>,
}

impl LifetimeKeys {
    /// Kea copies each global key the subnet lacks into the subnet, one key
    /// at a time, before interpreting the subnet.
    pub fn inherit(&self, parent: &LifetimeKeys) -> LifetimeKeys {
        LifetimeKeys {
            valid: self.valid.or(parent.valid),
            min_valid: self.min_valid.or(parent.min_valid),
            max_valid: self.max_valid.or(parent.max_valid),
            renew: self.renew.or(parent.renew),
            rebind: self.rebind.or(parent.rebind),
            calculate_tee_times: self.calculate_tee_times.or(parent.calculate_tee_times),
            t1_percent: self.t1_percent.or(parent.t1_percent),
            t2_percent: self.t2_percent.or(parent.t2_percent),
        }
    }

    /// Validates as Kea does and fills in defaults. `path` is the scope's
    /// JSON path (errors name the offending key under it).
    pub fn resolve(&self, path: &str) -> Result<Lifetimes, Invalid> {
        let at = |key: &str| format!("{path}.{key}");
        if let (Some(r), Some(b)) = (self.renew, self.rebind)
            && r > b
        {
            return Err(Invalid::new(
                at("renew-timer"),
                format!("renew-timer ({r}) is greater than rebind-timer ({b})"),
            ));
        }
        let (min, valid, max) = match (self.min_valid, self.valid, self.max_valid) {
            (None, None, None) => (DEFAULT_VALID_LIFETIME, DEFAULT_VALID_LIFETIME, DEFAULT_VALID_LIFETIME),
            (min, Some(v), max) => (min.unwrap_or(v), v, max.unwrap_or(v)),
            (Some(min), None, None) => (min, min, min),
            (None, None, Some(max)) => (max, max, max),
            (Some(_), None, Some(_)) => {
                return Err(Invalid::new(
                    at("valid-lifetime"),
                    "min-valid-lifetime and max-valid-lifetime are set but valid-lifetime is not",
                ));
            }
        };
        if min > max {
            // Blame the keys actually written, as Kea does.
            return Err(match (self.min_valid.is_some(), self.max_valid.is_some()) {
                (true, true) => Invalid::new(
                    at("min-valid-lifetime"),
                    format!("min-valid-lifetime ({min}) is greater than max-valid-lifetime ({max})"),
                ),
                (true, false) => Invalid::new(
                    at("min-valid-lifetime"),
                    format!("min-valid-lifetime ({min}) is greater than valid-lifetime ({valid})"),
                ),
                _ => Invalid::new(
                    at("valid-lifetime"),
                    format!("valid-lifetime ({valid}) is greater than max-valid-lifetime ({max})"),
                ),
            });
        }
        if valid < min || valid > max {
            return Err(Invalid::new(
                at("valid-lifetime"),
                format!(
                    "valid-lifetime ({valid}) is not between min-valid-lifetime ({min}) and max-valid-lifetime ({max})"
                ),
            ));
        }
        let calculate = self.calculate_tee_times.unwrap_or(false);
        if calculate {
            for (key, p) in [("t1-percent", self.t1_percent), ("t2-percent", self.t2_percent)] {
                if let Some(p) = p
                    && !(p > 0.0 && p < 1.0)
                {
                    return Err(Invalid::new(at(key), format!("{p} must be greater than 0 and less than 1")));
                }
            }
            if let (Some(t1), Some(t2)) = (self.t1_percent, self.t2_percent)
                && t1 >= t2
            {
                return Err(Invalid::new(
                    at("t1-percent"),
                    format!("t1-percent ({t1}) must be less than t2-percent ({t2})"),
                ));
            }
        }
        Ok(Lifetimes {
            valid,
            min_valid: min,
            max_valid: max,
            renew: self.renew,
            rebind: self.rebind,
            calculate_tee_times: calculate,
            t1_percent: self.t1_percent.unwrap_or(DEFAULT_T1_PERCENT),
            t2_percent: self.t2_percent.unwrap_or(DEFAULT_T2_PERCENT),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(valid: u32, min: u32, max: u32, renew: Option<u32>, rebind: Option<u32>, calc: bool) -> Lifetimes {
        Lifetimes {
            valid,
            min_valid: min,
            max_valid: max,
            renew,
            rebind,
            calculate_tee_times: calc,
            t1_percent: 0.5,
            t2_percent: 0.875,
        }
    }

    #[test]
    fn lease_times_table() {
        // (lifetimes, requested) → (valid, t1, t2)
        let seed = lt(60, 60, 720, Some(30), Some(45), false);
        type Case = (Lifetimes, Option<u32>, (u32, Option<u32>, Option<u32>));
        let cases: &[Case] = &[
            // The seed deployment: valid 60, max 720, T1 30, T2 45.
            (seed, None, (60, Some(30), Some(45))),
            (seed, Some(0), (60, Some(30), Some(45))),
            (seed, Some(10), (60, Some(30), Some(45))),
            (seed, Some(300), (300, Some(30), Some(45))),
            (seed, Some(100_000), (720, Some(30), Some(45))),
            // Explicit timers not below the lease time are dropped.
            (lt(40, 40, 40, Some(30), Some(45), false), None, (40, Some(30), None)),
            (lt(30, 30, 30, Some(30), Some(45), false), None, (30, None, None)),
            // T1 must be below T2 when T2 is sent.
            (lt(100, 100, 100, Some(50), Some(50), false), None, (100, None, Some(50))),
            // No timers and no calculation: nothing sent.
            (lt(3600, 3600, 3600, None, None, false), None, (3600, None, None)),
            // Calculated: round(0.5 × v), round(0.875 × v).
            (lt(3600, 3600, 3600, None, None, true), None, (3600, Some(1800), Some(3150))),
            (lt(7, 7, 7, None, None, true), None, (7, Some(4), Some(6))),
            (lt(1, 1, 1, None, None, true), None, (1, None, None)),
            // Explicit values win over calculation, per timer.
            (lt(1000, 1000, 1000, Some(100), None, true), None, (1000, Some(100), Some(875))),
            (lt(1000, 1000, 1000, None, Some(900), true), None, (1000, Some(500), Some(900))),
            // Calculation follows the clamped lease, not the default.
            (lt(1000, 500, 2000, None, None, true), Some(1600), (1600, Some(800), Some(1400))),
            (lt(1000, 500, 2000, None, None, true), Some(100), (500, Some(250), Some(438))),
            // Zero timers are never sent.
            (lt(100, 100, 100, Some(0), Some(0), true), None, (100, None, None)),
            // Infinite lease.
            (lt(u32::MAX, u32::MAX, u32::MAX, None, None, true), None, (u32::MAX, Some(2147483648), Some(3758096383))),
        ];
        for (i, (l, req, (v, t1, t2))) in cases.iter().enumerate() {
            assert_eq!(l.lease_times(*req), LeaseTimes { valid: *v, t1: *t1, t2: *t2 }, "case {i}: {l:?} {req:?}");
        }
    }

    #[test]
    fn triplet_rules_follow_kea() {
        let k = |v, mn, mx| LifetimeKeys { valid: v, min_valid: mn, max_valid: mx, ..Default::default() };
        let r = |keys: LifetimeKeys| keys.resolve("Dhcp4").map(|l| (l.min_valid, l.valid, l.max_valid));
        assert_eq!(r(k(None, None, None)).unwrap(), (7200, 7200, 7200));
        assert_eq!(r(k(Some(60), None, Some(720))).unwrap(), (60, 60, 720));
        assert_eq!(r(k(Some(60), Some(30), None)).unwrap(), (30, 60, 60));
        assert_eq!(r(k(None, Some(30), None)).unwrap(), (30, 30, 30));
        assert_eq!(r(k(None, None, Some(90))).unwrap(), (90, 90, 90));
        assert!(r(k(None, Some(30), Some(90))).is_err());
        assert!(r(k(Some(100), None, Some(90))).is_err());
        assert!(r(k(Some(10), Some(30), None)).is_err());
        assert!(r(k(Some(10), Some(30), Some(20))).unwrap_err().message.contains("min-valid-lifetime (30)"));
    }

    #[test]
    fn subnet_inherits_key_by_key() {
        let global = LifetimeKeys {
            valid: Some(60),
            max_valid: Some(720),
            renew: Some(30),
            rebind: Some(45),
            ..Default::default()
        };
        let subnet = LifetimeKeys { valid: Some(100), ..Default::default() };
        let l = subnet.inherit(&global).resolve("s").unwrap();
        assert_eq!((l.min_valid, l.valid, l.max_valid, l.renew, l.rebind), (100, 100, 720, Some(30), Some(45)));
        // An inherited renew-timer can clash with a subnet rebind-timer.
        let subnet = LifetimeKeys { rebind: Some(20), ..Default::default() };
        let e = subnet.inherit(&global).resolve("Dhcp4.subnet4[0]").unwrap_err();
        assert_eq!(e.path, "Dhcp4.subnet4[0].renew-timer");
    }

    #[test]
    fn percents_checked_only_when_calculating() {
        let bad = LifetimeKeys { t1_percent: Some(0.9), t2_percent: Some(0.8), ..Default::default() };
        assert!(bad.resolve("x").is_ok());
        let bad = LifetimeKeys { calculate_tee_times: Some(true), ..bad };
        assert!(bad.resolve("x").is_err());
        let bad = LifetimeKeys { calculate_tee_times: Some(true), t2_percent: Some(1.0), ..Default::default() };
        assert!(bad.resolve("x").is_err());
    }
}
