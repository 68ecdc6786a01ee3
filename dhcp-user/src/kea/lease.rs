//! Kea's lease JSON both ways: a lease as `Lease4::toElement` prints it
//! (`lease4-get`, `lease4-get-page`, HA updates) and Kea's `Lease4Parser`
//! (`lease4-add`/`-update`, HA updates and syncs received), with Kea's
//! error texts.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::command::{ArgError, Args};
use crate::{
    dhcp::policy::Policy,
    leases::{ClientId, HwAddr, Lease, LeaseState},
};

/// A lease as Kea's `Lease4::toElement` prints it: `client-id` and
/// `user-context` only when set, `hw-address` empty for declined leases.
pub fn lease_json(l: &Lease) -> Value {
    let mut m = Map::new();
    m.insert("ip-address".into(), json!(l.address.to_string()));
    m.insert(
        "hw-address".into(),
        json!(l.hwaddr.as_ref().map(|h| h.to_string()).unwrap_or_default()),
    );
    if let Some(c) = &l.client_id {
        m.insert("client-id".into(), json!(c.to_string()));
    }
    m.insert("valid-lft".into(), json!(l.valid_lifetime));
    m.insert("cltt".into(), json!(l.cltt()));
    m.insert("subnet-id".into(), json!(l.subnet_id));
    m.insert("fqdn-fwd".into(), json!(l.fqdn_fwd));
    m.insert("fqdn-rev".into(), json!(l.fqdn_rev));
    m.insert("hostname".into(), json!(l.hostname));
    m.insert("state".into(), json!(l.state.code()));
    if let Some(ctx) = &l.user_context {
        m.insert("user-context".into(), ctx.clone());
    }
    Value::Object(m)
}

/// An address argument, with Kea's wording when it is not one (the
/// `SimpleParser::getAddress` text around `IOAddress`'s own).
pub fn parse_addr(text: &str) -> Result<Ipv4Addr, ArgError> {
    text.parse().map_err(|_| {
        ArgError::Other(format!(
            "Failed to convert '{text}' to address: Failed to convert string to address '{text}': Invalid argument"
        ))
    })
}

/// Kea's `Lease4Parser`: a lease from `lease4-add`/`lease4-update`
/// arguments, checked against the configured subnets. Unknown keys are
/// ignored, as Kea does.
pub fn parse_lease(a: &Args, policy: &Policy, now: u64) -> Result<Lease, ArgError> {
    let address = parse_addr(a.req_str("ip-address")?)?;
    let subnet = match a.u32("subnet-id")? {
        None | Some(0) => policy
            .subnets
            .iter()
            .find(|s| s.contains(address))
            .ok_or_else(|| {
                ArgError::Other(format!(
                    "subnet-id not specified and failed to find a subnet for address {address}"
                ))
            })?,
        Some(id) => {
            let s = policy.subnet(id).ok_or_else(|| {
                ArgError::Other(format!(
                    "Invalid subnet-id: No IPv4 subnet with subnet-id={id} currently configured."
                ))
            })?;
            if !s.contains(address) {
                return Err(ArgError::Other(format!(
                    "The address {address} does not belong to subnet {}/{}, subnet-id={id}",
                    s.network, s.prefix_len
                )));
            }
            s
        }
    };
    let hw_text = a.req_str("hw-address")?;
    let hwaddr = if hw_text.is_empty() {
        None
    } else {
        Some(
            hw_text
                .parse::<HwAddr>()
                .map_err(|e| ArgError::Other(format!("invalid 'hw-address' {hw_text}: {e}")))?,
        )
    };
    let client_id = match a.str("client-id")? {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<ClientId>()
                .map_err(|e| ArgError::Other(format!("invalid 'client-id' {t}: {e}")))?,
        ),
    };
    let valid = a.u32("valid-lft")?.unwrap_or(subnet.lifetimes.valid);
    let cltt = match a.int("expire")? {
        None => now,
        Some(e) if e <= 0 => {
            return Err(ArgError::Other(format!(
                "expiration time must be positive for address {address}"
            )));
        }
        Some(e) if (e as u64) < u64::from(valid) => {
            return Err(ArgError::Other(format!(
                "expiration time must be greater than valid lifetime for address {address}"
            )));
        }
        Some(e) => e as u64 - u64::from(valid),
    };
    let mut lease = Lease::new(address, hwaddr, client_id, subnet.id, cltt, valid);
    lease.fqdn_fwd = a.bool("fqdn-fwd")?.unwrap_or(false);
    lease.fqdn_rev = a.bool("fqdn-rev")?.unwrap_or(false);
    lease.hostname = a.str("hostname")?.unwrap_or("").to_owned();
    if (lease.fqdn_fwd || lease.fqdn_rev) && lease.hostname.trim().is_empty() {
        return Err(ArgError::Other(
            "No hostname specified and either forward or reverse fqdn was set to true.".into(),
        ));
    }
    lease.state = match a.int("state")? {
        None => LeaseState::Default,
        Some(s @ 0..=2) => LeaseState::from_code(s as u32),
        Some(s) => {
            return Err(ArgError::Other(format!(
                "Invalid state value: {s}, supported values are: 0 (default), 1 (declined) and 2 (expired-reclaimed)"
            )));
        }
    };
    lease.user_context = match a.get("user-context") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(v) => {
            return Err(ArgError::Other(format!(
                "Invalid user context '{v}' is not a JSON map."
            )));
        }
    };
    lease
        .validate()
        .map_err(|e| ArgError::Other(format!("invalid lease {address}: {e}")))?;
    Ok(lease)
}
