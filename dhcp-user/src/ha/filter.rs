//! Which server answers a query: RFC 3074 hashing and Kea's query filter.
//!
//! Kea splits load-balanced clients with RFC 3074's Pearson-style hash but
//! keeps only its parity: with two active servers, an even hash is the
//! primary's scope and an odd one the secondary's (Kea's `QueryFilter` takes
//! `hash % active_servers` as the index of the primary-first peer list).
//! The key is the client identifier (option 61 payload, type byte included)
//! when present and non-empty, else the `chaddr` bytes (`hlen` long). A
//! load-balanced query with neither is out of everyone's scope. In
//! hot-standby and passive-backup every query belongs to the primary's
//! scope. Only DISCOVER, REQUEST, DECLINE, RELEASE and INFORM are filtered;
//! any other message type is always in scope.

use crate::config::ha::{HaMode, Role};

/// RFC 3074's hash ("hash bucket") of a client key: seeded with the key
/// length (truncated to 8 bits), then every byte mixed in, last byte first.
/// One implementation for daemon and kernel (`dhcp_common::ha`), so the
/// two can never split clients differently.
pub fn rfc3074_bucket(key: &[u8]) -> u8 {
    dhcp_common::ha::rfc3074_hash(key)
}

/// The load-balancing key of a DHCPv4 query, as Kea picks it: the client
/// identifier's payload when present and non-empty, else `chaddr` (its
/// first `hlen` bytes), else none.
pub fn lb_key<'a>(client_id: Option<&'a [u8]>, chaddr: &'a [u8]) -> Option<&'a [u8]> {
    match client_id {
        Some(id) if !id.is_empty() => Some(id),
        _ if !chaddr.is_empty() => Some(chaddr),
        _ => None,
    }
}

/// Whose scope a load-balanced bucket is in: even → primary, odd →
/// secondary.
pub fn lb_owner(bucket: u8) -> Role {
    if bucket.is_multiple_of(2) {
        Role::Primary
    } else {
        Role::Secondary
    }
}

/// Whether a server of `role` owns `bucket` in load-balancing mode (its
/// default scope; standby and backup servers own none).
pub fn serves_in_load_balancing(bucket: u8, role: Role) -> bool {
    matches!(role, Role::Primary | Role::Secondary) && lb_owner(bucket) == role
}

/// Whether Kea's HA filters this DHCPv4 message type (DISCOVER, REQUEST,
/// DECLINE, RELEASE, INFORM); other types are always in scope.
pub fn is_filtered_type(msg_type: u8) -> bool {
    matches!(msg_type, 1 | 3 | 4 | 7 | 8)
}

/// The parts of a DHCPv4 query the HA filter looks at.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Option 53's value.
    pub msg_type: u8,
    /// The first `hlen` bytes of `chaddr`.
    pub chaddr: &'a [u8],
    /// Option 61's payload (type byte included), if present.
    pub client_id: Option<&'a [u8]>,
    /// The `secs` header field, as received (host order).
    pub secs: u16,
}

/// Which of the two filterable scopes a query belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeOwner {
    /// The primary's scope (every query in hot-standby and passive-backup).
    Primary,
    /// The secondary's scope (odd hashes in load-balancing).
    Secondary,
}

/// A copyable snapshot of the served scopes, for the packet path and for
/// filling the kernel's map: which of the primary's and secondary's scopes
/// this server answers now. Take a fresh one after every state change
/// ([`super::HaMachine::filter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeFilter {
    /// The relationship's mode.
    pub mode: HaMode,
    /// Serving the primary's scope.
    pub primary: bool,
    /// Serving the secondary's scope.
    pub secondary: bool,
}

impl ScopeFilter {
    /// The scope a query falls in, or `None` for a load-balanced query
    /// without any key (Kea drops those). Non-filtered message types belong
    /// to the primary's scope.
    pub fn owner(&self, q: &Query<'_>) -> Option<ScopeOwner> {
        if !is_filtered_type(q.msg_type) || self.mode != HaMode::LoadBalancing {
            return Some(ScopeOwner::Primary);
        }
        let key = lb_key(q.client_id, q.chaddr)?;
        Some(match lb_owner(rfc3074_bucket(key)) {
            Role::Secondary => ScopeOwner::Secondary,
            _ => ScopeOwner::Primary,
        })
    }

    /// Whether this server answers the query now (before the DHCP service
    /// switch, see [`super::HaMachine::dhcp_enabled`]).
    pub fn in_scope(&self, q: &Query<'_>) -> bool {
        if !is_filtered_type(q.msg_type) {
            return true;
        }
        match self.owner(q) {
            Some(ScopeOwner::Primary) => self.primary,
            Some(ScopeOwner::Secondary) => self.secondary,
            None => false,
        }
    }

    /// Whether a load-balancing bucket is served (for the kernel's map);
    /// outside load balancing every bucket is the primary's.
    pub fn serves_bucket(&self, bucket: u8) -> bool {
        match self.mode {
            HaMode::LoadBalancing => match lb_owner(bucket) {
                Role::Secondary => self.secondary,
                _ => self.primary,
            },
            _ => self.primary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcp_common::ha::MIX;

    #[test]
    fn mixing_table_is_a_permutation() {
        let mut seen = [false; 256];
        for v in MIX {
            assert!(!seen[usize::from(v)], "{v} twice");
            seen[usize::from(v)] = true;
        }
    }

    #[test]
    fn bucket_vectors() {
        // (key, hash, owner), from the shared HA notes' vector table;
        // `hand_computed_single_steps` works short keys through by hand.
        let cases: &[(&[u8], u8, Role)] = &[
            (&[0x02, 0, 0, 0, 0, 0x01], 133, Role::Secondary),
            (&[0x02, 0, 0, 0, 0, 0x03], 182, Role::Primary),
            (&[0, 0, 0, 0, 0, 0], 254, Role::Primary),
            (&[1, 2, 3, 4, 5, 6], 179, Role::Secondary),
            (&[0xff; 6], 79, Role::Secondary),
            (&[0x01, 0x02, 0, 0, 0, 0, 0x01], 14, Role::Primary),
            (&[0x01, 0x08, 0, 0x27, 0, 0, 0x01], 45, Role::Secondary),
            // Degenerate keys: empty (seed 0, nothing mixed) and one byte.
            (&[], 0, Role::Primary),
            (&[0], 175, Role::Secondary),
        ];
        for (key, hash, owner) in cases {
            assert_eq!(rfc3074_bucket(key), *hash, "{key:02x?}");
            assert_eq!(lb_owner(*hash), *owner, "{key:02x?}");
            assert!(serves_in_load_balancing(*hash, *owner));
            assert!(!serves_in_load_balancing(*hash, Role::Standby));
            assert!(!serves_in_load_balancing(*hash, Role::Backup));
        }
    }

    #[test]
    fn hand_computed_single_steps() {
        // One byte b: T[1 ^ b]. Two bytes [a, b]: T[T[2 ^ b] ^ a].
        assert_eq!(rfc3074_bucket(&[1]), MIX[0]); // 1^1 = 0 → 251
        assert_eq!(rfc3074_bucket(&[1]), 251);
        assert_eq!(
            rfc3074_bucket(&[0x10, 0x02]),
            MIX[usize::from(MIX[0] ^ 0x10)]
        );
        assert_eq!(rfc3074_bucket(&[0x10, 0x02]), MIX[235]); // 251 ^ 16 = 235
        assert_eq!(rfc3074_bucket(&[0x10, 0x02]), 1); // row 224.., 12th entry
    }

    #[test]
    fn split_is_roughly_even() {
        let mut primary = 0;
        for i in 0u32..10_000 {
            let mac = [0x02, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x5a];
            if lb_owner(rfc3074_bucket(&mac)) == Role::Primary {
                primary += 1;
            }
        }
        assert!((4_500..5_500).contains(&primary), "{primary}");
    }

    #[test]
    fn key_choice_prefers_client_id() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let cid = [0x01, 0x02, 0, 0, 0, 0, 0x01];
        assert_eq!(lb_key(Some(&cid), &mac), Some(&cid[..]));
        assert_eq!(
            lb_key(Some(&[]), &mac),
            Some(&mac[..]),
            "empty option 61 falls back to chaddr"
        );
        assert_eq!(lb_key(None, &mac), Some(&mac[..]));
        assert_eq!(lb_key(None, &[]), None);
    }

    #[test]
    fn filter_by_mode_and_type() {
        let lb_primary = ScopeFilter {
            mode: HaMode::LoadBalancing,
            primary: true,
            secondary: false,
        };
        let odd = Query {
            msg_type: 1,
            chaddr: &[0x02, 0, 0, 0, 0, 0x01],
            client_id: None,
            secs: 0,
        }; // 133
        let even = Query {
            chaddr: &[0x02, 0, 0, 0, 0, 0x03],
            ..odd
        }; // 182
        assert!(!lb_primary.in_scope(&odd));
        assert!(lb_primary.in_scope(&even));
        assert_eq!(lb_primary.owner(&odd), Some(ScopeOwner::Secondary));
        // The client identifier decides when present: 01:02:00:00:00:00:01 → 14, even.
        let odd_mac_even_cid = Query {
            client_id: Some(&[0x01, 0x02, 0, 0, 0, 0, 0x01]),
            ..odd
        };
        assert!(lb_primary.in_scope(&odd_mac_even_cid));
        // No key: nobody's scope.
        let keyless = Query { chaddr: &[], ..odd };
        assert_eq!(lb_primary.owner(&keyless), None);
        assert!(
            !ScopeFilter {
                primary: true,
                secondary: true,
                ..lb_primary
            }
            .in_scope(&keyless)
        );
        // Unfiltered types (e.g. a stray OFFER, type 2) always pass.
        let offer = Query { msg_type: 2, ..odd };
        assert!(
            ScopeFilter {
                primary: false,
                ..lb_primary
            }
            .in_scope(&offer)
        );
        // Hot standby: everything is the primary's scope.
        let hs_standby = ScopeFilter {
            mode: HaMode::HotStandby,
            primary: false,
            secondary: false,
        };
        assert!(!hs_standby.in_scope(&odd) && !hs_standby.in_scope(&even));
        let hs_failover = ScopeFilter {
            primary: true,
            ..hs_standby
        };
        assert!(hs_failover.in_scope(&odd) && hs_failover.in_scope(&even));
        assert!(hs_failover.serves_bucket(133) && !hs_standby.serves_bucket(182));
        assert!(lb_primary.serves_bucket(182) && !lb_primary.serves_bucket(133));
    }
}
