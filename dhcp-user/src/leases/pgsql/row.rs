//! One `lease4` row ↔ a [`Lease`], exactly as Kea 2.2's PostgreSQL backend
//! writes and reads it (pure: no database here).
//!
//! Kea's rules, from its `PgSqlLease4Exchange`:
//! - `address` is the address as an unsigned 32-bit number in a BIGINT;
//! - `hwaddr` and `client_id` are BYTEA, empty (not NULL) when absent; Kea
//!   assumes Ethernet for every hardware address it reads back;
//! - `expire` is `cltt + valid_lifetime` as a TIMESTAMPTZ, except for an
//!   infinite lifetime, where it is `cltt` (so it does not overflow), and
//!   never past 2038-01-19 (Kea's `MAX_DB_TIME`);
//! - `hostname` is empty, not NULL, when there is none;
//! - `state` is Kea's number, and the schema only admits those in its
//!   `lease_state` table (0, 1, 2 in schema 13);
//! - `user_context` is Kea's JSON text of a map, empty when there is none.
//!
//! Reading is lenient where Kea's is (NULL booleans, hostname or context
//! read as empty), and strict where Kea's throws (a client id of one byte,
//! a context that is not a JSON map): such a row is reported, not guessed.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::json;
use super::super::model::{ClientId, HTYPE_ETHERNET, HwAddr, INFINITE_LIFETIME, Lease, LeaseState};

/// Latest expiration Kea stores in a database (`DatabaseConnection::MAX_DB_TIME`).
pub const MAX_DB_TIME: u64 = i32::MAX as u64;

/// The states schema 13's `lease_state` table admits.
pub const KNOWN_STATES: [u32; 3] = [0, 1, 2];

/// The columns, in Kea's order, as our queries select them (`expire` as
/// seconds since the epoch, as Kea's own `extract(epoch from expire)`).
pub const COLUMNS: &str = "address, hwaddr, client_id, valid_lifetime, extract(epoch from expire)::bigint, \
                           subnet_id, fqdn_fwd, fqdn_rev, hostname, state, user_context";

/// A row as read, before any check: every nullable column an `Option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// `address`.
    pub address: i64,
    /// `hwaddr`.
    pub hwaddr: Option<Vec<u8>>,
    /// `client_id`.
    pub client_id: Option<Vec<u8>>,
    /// `valid_lifetime`.
    pub valid_lifetime: Option<i64>,
    /// `expire`, seconds since the epoch.
    pub expire: Option<i64>,
    /// `subnet_id`.
    pub subnet_id: Option<i64>,
    /// `fqdn_fwd`.
    pub fqdn_fwd: Option<bool>,
    /// `fqdn_rev`.
    pub fqdn_rev: Option<bool>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `state`.
    pub state: Option<i64>,
    /// `user_context`.
    pub user_context: Option<String>,
}

/// The values Kea binds for an insert or update, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// `address`.
    pub address: i64,
    /// `hwaddr` (empty when absent).
    pub hwaddr: Vec<u8>,
    /// `client_id` (empty when absent).
    pub client_id: Vec<u8>,
    /// `valid_lifetime`.
    pub valid_lifetime: i64,
    /// `expire`.
    pub expire: SystemTime,
    /// `subnet_id`.
    pub subnet_id: i64,
    /// `fqdn_fwd`.
    pub fqdn_fwd: bool,
    /// `fqdn_rev`.
    pub fqdn_rev: bool,
    /// `hostname`.
    pub hostname: String,
    /// `state`.
    pub state: i64,
    /// `user_context` (empty when absent).
    pub user_context: String,
}

/// The address column's value for `addr`.
pub fn address_key(addr: Ipv4Addr) -> i64 {
    i64::from(u32::from(addr))
}

/// The `expire` column's value for a lease: what Kea writes, as seconds.
pub fn db_expire(lease: &Lease) -> u64 {
    if lease.valid_lifetime == INFINITE_LIFETIME { lease.cltt() } else { lease.expire }
}

/// The timestamp for `secs` since the epoch.
pub fn timestamp(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Why a lease cannot be written the way Kea writes it.
pub fn values(lease: &Lease) -> Result<Values, String> {
    lease.validate().map_err(|e| e.to_string())?;
    let expire = db_expire(lease);
    if expire > MAX_DB_TIME {
        return Err(format!("expiration {expire} is past {MAX_DB_TIME} (2038), the latest Kea stores in a database"));
    }
    if !KNOWN_STATES.contains(&lease.state.code()) {
        return Err(format!("state {} is not one Kea's schema 13 admits (0, 1, 2)", lease.state.code()));
    }
    if lease.hostname.chars().count() > 255 {
        return Err("hostname longer than the 255 characters of the hostname column".into());
    }
    let user_context = match &lease.user_context {
        Some(ctx) => json::to_kea_json(ctx).map_err(|e| format!("user context: {e}"))?,
        None => String::new(),
    };
    Ok(Values {
        address: address_key(lease.address),
        hwaddr: lease.hwaddr.as_ref().map(|h| h.bytes().to_vec()).unwrap_or_default(),
        client_id: lease.client_id.as_ref().map(|c| c.bytes().to_vec()).unwrap_or_default(),
        valid_lifetime: i64::from(lease.valid_lifetime),
        expire: timestamp(expire),
        subnet_id: i64::from(lease.subnet_id),
        fqdn_fwd: lease.fqdn_fwd,
        fqdn_rev: lease.fqdn_rev,
        hostname: lease.hostname.clone(),
        state: i64::from(lease.state.code()),
        user_context,
    })
}

/// The address of a row, as text for messages (even a bad one).
pub fn address_text(address: i64) -> String {
    match u32::try_from(address) {
        Ok(a) => Ipv4Addr::from(a).to_string(),
        Err(_) => format!("address {address} (not an IPv4 address)"),
    }
}

/// A row as a lease, or why Kea could not read it either.
pub fn lease(c: Columns) -> Result<Lease, String> {
    let address = u32::try_from(c.address).map(Ipv4Addr::from).map_err(|_| "address out of IPv4 range".to_owned())?;
    let u32_column = |name: &str, v: Option<i64>| -> Result<u32, String> {
        let v = v.ok_or_else(|| format!("{name} is NULL"))?;
        u32::try_from(v).map_err(|_| format!("{name} {v} out of range"))
    };
    let valid_lifetime = u32_column("valid_lifetime", c.valid_lifetime)?;
    let subnet_id = u32_column("subnet_id", c.subnet_id)?;
    let expire = c.expire.ok_or("expire is NULL")?;
    let expire = u64::try_from(expire).map_err(|_| format!("expire {expire} is before 1970"))?;
    // Kea's read: an infinite lease's column holds cltt.
    let expire = if valid_lifetime == INFINITE_LIFETIME { expire + u64::from(INFINITE_LIFETIME) } else { expire };
    let hwaddr = match c.hwaddr.filter(|h| !h.is_empty()) {
        Some(bytes) => Some(HwAddr::new(HTYPE_ETHERNET, bytes).map_err(|e| format!("hwaddr: {e}"))?),
        None => None,
    };
    let client_id = match c.client_id.filter(|id| !id.is_empty()) {
        Some(bytes) => Some(ClientId::new(bytes).map_err(|e| format!("client_id: {e}"))?),
        None => None,
    };
    let state = u32::try_from(c.state.unwrap_or(0)).map_err(|_| "state out of range".to_owned())?;
    let user_context = match c.user_context.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => {
            let value = json::from_kea_json(text).map_err(|e| format!("user_context: {e}"))?;
            if !value.is_object() {
                return Err("user_context is not a JSON map".into());
            }
            Some(value)
        }
        None => None,
    };
    Ok(Lease {
        address,
        hwaddr,
        client_id,
        valid_lifetime,
        expire,
        subnet_id,
        fqdn_fwd: c.fqdn_fwd.unwrap_or(false),
        fqdn_rev: c.fqdn_rev.unwrap_or(false),
        hostname: c.hostname.unwrap_or_default(),
        state: LeaseState::from_code(state),
        user_context,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Lease {
        let mut l = Lease::new(
            Ipv4Addr::new(192, 168, 50, 101),
            Some(HwAddr::ethernet([2, 0, 0, 0, 0, 1])),
            Some(ClientId::new(vec![1, 2, 0, 0, 0, 0, 1]).unwrap()),
            7,
            1_700_000_000,
            3600,
        );
        l.hostname = "mutante1".into();
        l.fqdn_fwd = true;
        l.user_context = Some(json!({ "é": "ü", "n": 1 }));
        l
    }

    fn columns(v: &Values) -> Columns {
        Columns {
            address: v.address,
            hwaddr: Some(v.hwaddr.clone()),
            client_id: Some(v.client_id.clone()),
            valid_lifetime: Some(v.valid_lifetime),
            expire: Some(v.expire.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64),
            subnet_id: Some(v.subnet_id),
            fqdn_fwd: Some(v.fqdn_fwd),
            fqdn_rev: Some(v.fqdn_rev),
            hostname: Some(v.hostname.clone()),
            state: Some(v.state),
            user_context: Some(v.user_context.clone()),
        }
    }

    #[test]
    fn kea_layout_and_round_trip() {
        let l = sample();
        let v = values(&l).unwrap();
        assert_eq!(v.address, 0xc0a8_3265);
        assert_eq!(v.expire, timestamp(1_700_003_600));
        assert_eq!(v.user_context, r#"{ "n": 1, "é": "\u00c3\u00bc" }"#, "Kea's JSON text");
        assert_eq!(lease(columns(&v)).unwrap(), l);

        let d = Lease::declined(Ipv4Addr::new(10, 0, 0, 1), 1, 86400, 1_000);
        let v = values(&d).unwrap();
        assert!(v.hwaddr.is_empty() && v.client_id.is_empty() && v.user_context.is_empty() && v.hostname.is_empty());
        assert_eq!((v.state, v.address), (1, 0x0a00_0001));
        assert_eq!(lease(columns(&v)).unwrap(), d);
    }

    #[test]
    fn infinite_lifetime_stores_cltt() {
        let mut l = sample();
        l.valid_lifetime = INFINITE_LIFETIME;
        l.expire = 1_700_000_000 + u64::from(INFINITE_LIFETIME);
        let v = values(&l).unwrap();
        assert_eq!(v.expire, timestamp(1_700_000_000));
        assert_eq!(lease(columns(&v)).unwrap(), l);
    }

    #[test]
    fn what_kea_cannot_store_is_refused() {
        let mut l = sample();
        l.expire = MAX_DB_TIME + 1;
        assert!(values(&l).unwrap_err().contains("2038"));
        let mut l = sample();
        l.state = LeaseState::Other(3);
        assert!(values(&l).unwrap_err().contains("state 3"));
        let mut l = sample();
        l.hwaddr = None;
        l.client_id = None;
        assert!(values(&l).unwrap_err().contains("neither"));
        let mut l = sample();
        l.hostname = "h".repeat(256);
        assert!(values(&l).is_err());
    }

    #[test]
    fn reading_is_lenient_where_kea_is_and_strict_where_it_throws() {
        let base = columns(&values(&sample()).unwrap());
        let nulls = Columns { fqdn_fwd: None, fqdn_rev: None, hostname: None, state: None, user_context: None, ..base.clone() };
        let l = lease(nulls).unwrap();
        assert_eq!((l.fqdn_fwd, l.hostname.as_str(), l.state, l.user_context), (false, "", LeaseState::Default, None));
        assert!(lease(Columns { hwaddr: None, ..base.clone() }).unwrap().hwaddr.is_none());

        let bad = |c: Columns| lease(c).unwrap_err();
        assert!(bad(Columns { client_id: Some(vec![1]), ..base.clone() }).contains("client_id"));
        assert!(bad(Columns { hwaddr: Some(vec![1; 21]), ..base.clone() }).contains("hwaddr"));
        assert!(bad(Columns { user_context: Some("[1]".into()), ..base.clone() }).contains("not a JSON map"));
        assert!(bad(Columns { user_context: Some("{".into()), ..base.clone() }).contains("user_context"));
        assert!(bad(Columns { expire: None, ..base.clone() }).contains("expire"));
        assert!(bad(Columns { address: -1, ..base.clone() }).contains("address"));
        assert!(bad(Columns { valid_lifetime: Some(1 << 33), ..base }).contains("valid_lifetime"));
        assert_eq!(address_text(-1), "address -1 (not an IPv4 address)");
    }
}
