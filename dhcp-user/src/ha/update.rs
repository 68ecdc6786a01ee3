//! A lease change for the partner, as Kea's `leases4_committed` callout
//! would send it: the packet pipeline makes them, the HA runtime sends them
//! ([`crate::kea::ha::Outbound`] is their wire form).

use super::ClientKey;
use crate::leases::Lease;

/// A lease change to replicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// `lease4-update` (new, renewed or declined lease).
    Put(Lease),
    /// `lease4-del` (released lease, or the old lease of a changed address).
    Del(Lease),
}

impl Update {
    /// The lease concerned.
    pub fn lease(&self) -> &Lease {
        match self {
            Update::Put(l) | Update::Del(l) => l,
        }
    }

    /// The client, as HA's rejected-update count keys it.
    pub fn client(&self) -> ClientKey {
        let l = self.lease();
        ClientKey::new(l.hwaddr.as_ref().map(|h| h.bytes()).unwrap_or_default(), l.client_id.as_ref().map(|c| c.bytes()))
    }
}
