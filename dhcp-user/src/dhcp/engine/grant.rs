//! What a grant gives: its lifetime and timers, the hostname it stores,
//! and whether Kea's lease caching reuses the client's lease as it stands.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, OptionCode};

use super::*;

/// Kea's lease caching (`AllocEngine::setLeaseReusable`): the lifetime
/// left on the client's current lease of `a` when the subnet's
/// `cache-threshold` / `cache-max-age` let it be handed out again
/// unchanged (no store write, no partner update), else `None`. `valid` is
/// the lifetime a new grant would get, `hostname` the one it would store.
pub(super) fn reusable(
    subnet: &SubnetPolicy,
    held: &Held,
    client: &ClientKey,
    valid: u32,
    hostname: &str,
    now: u64,
) -> Option<u32> {
    let cache = subnet.cache;
    if cache.threshold.is_none() && cache.max_age.is_none() {
        return None;
    }
    // Only an unchanged lease is reused (Kea's updateLease4Information).
    let unchanged = held.state == HeldState::Active
        && held.subnet_id == subnet.id
        && held.hwaddr == client.hwaddr
        && held.client_id == client.client_id
        && held.hostname == hostname;
    let granted_at = held.expire.checked_sub(u64::from(held.valid_lifetime))?;
    if !unchanged || now < granted_at {
        return None;
    }
    let age = now - granted_at;
    if age >= u64::from(held.valid_lifetime) {
        return None;
    }
    let mut max_age = 0u64;
    if let Some(m) = cache.max_age {
        if m == 0 || age > u64::from(m) {
            return None;
        }
        max_age = u64::from(m);
    }
    if let Some(t) = cache.threshold {
        max_age = (f64::from(valid) * t) as u64;
        if age > max_age {
            return None;
        }
    }
    (max_age > 0).then(|| held.valid_lifetime - age as u32)
}

/// The hostname a grant of `a` stores, and whether Kea generated it (then
/// lease caching never reuses the lease): with option 81, the name Kea
/// answers with ([`client_name::answer`]); else the reservation's, else
/// the client's option 12.
pub(super) fn granted_hostname(req: &Inbound, subnet: &SubnetPolicy, client: &ClientKey, a: Ipv4Addr) -> (String, bool) {
    let reserved = reservation_of(subnet, client).and_then(|r| r.hostname.clone());
    if let Some(fqdn) = &req.fqdn {
        return client_name::answer(fqdn, reserved.as_deref(), &subnet.names, a)
            .map_or((String::new(), false), |ans| (ans.hostname, ans.generated));
    }
    (reserved.or_else(|| req.hostname.clone()).unwrap_or_default(), false)
}

/// Lease time and timers of a grant of `current`'s address in `subnet`,
/// and whether it reuses `current` as it stands (lease caching).
#[allow(clippy::too_many_arguments)]
pub(super) fn lease_times(
    req: &Inbound,
    subnet: &SubnetPolicy,
    client: &ClientKey,
    a: Ipv4Addr,
    current: Option<&Held>,
    now: u64,
    class_valid: Option<(u32, u32, u32)>,
) -> Grant {
    let (hostname, generated) = granted_hostname(req, subnet, client, a);
    // Kea's BOOTP clients get an infinite lease, never reused.
    if req.bootp {
        let timers = crate::dhcp::policy::Timers { valid: u32::MAX, t1: None, t2: None };
        return Grant { timers, reused: false, hostname };
    }
    // Kea's getValidLft: the first class with a valid-lifetime, else the
    // subnet's; T1/T2 stay the subnet's rules.
    let lifetimes = match class_valid {
        Some((min_valid, valid, max_valid)) => crate::dhcp::policy::Lifetimes { valid, min_valid, max_valid, ..subnet.lifetimes },
        None => subnet.lifetimes,
    };
    let full = lifetimes.lease_times(requested_lease_time(req));
    match current.filter(|_| !generated).and_then(|h| reusable(subnet, h, client, full.valid, &hostname, now)) {
        Some(left) => Grant {
            timers: lifetimes.timers_for(left),
            reused: true,
            hostname,
        },
        None => Grant {
            timers: full,
            reused: false,
            hostname,
        },
    }
}

/// What a grant gives: its timers, and whether it reuses the stored lease.
pub(super) struct Grant {
    pub(super) timers: crate::dhcp::policy::Timers,
    pub(super) reused: bool,
    pub(super) hostname: String,
}

pub(super) fn requested_lease_time(req: &Inbound) -> Option<u32> {
    match req.msg.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
        _ => None,
    }
}
