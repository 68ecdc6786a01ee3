//! [`Core::write`]'s transaction: the store's reads and writes inside one
//! critical section, each write also queued for the kernel. Apart from the
//! state: it is the one way the API and HA's lease sync change the store.

use std::net::Ipv4Addr;

use super::{Core, Counter, State};
use crate::{
    dhcp::policy::Policy,
    leases::{ClientId, Durable, HwAddr, Lease, LeaseError},
};

impl Core {
    /// Several reads and writes as one step, so that no DHCP exchange can
    /// slip between a check and its write; every write reaches the kernel.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> T) -> T {
        let mut st = self.lock();
        f(&mut Tx { st: &mut st })
    }
}

/// The store inside one [`Core::write`]: reads, and writes that also go to
/// the kernel.
pub struct Tx<'a> {
    st: &'a mut State,
}

impl Tx<'_> {
    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.st.policy
    }

    /// The lease of `addr`.
    pub fn get(&self, addr: Ipv4Addr) -> Option<Lease> {
        self.st.store.get(addr)
    }

    /// The leases of a MAC in a subnet.
    pub fn by_hwaddr(&self, subnet_id: u32, hw: &HwAddr) -> Vec<Lease> {
        self.st.store.by_hwaddr(subnet_id, hw)
    }

    /// The leases of a client-id in a subnet.
    pub fn by_client_id(&self, subnet_id: u32, id: &ClientId) -> Vec<Lease> {
        self.st.store.by_client_id(subnet_id, id)
    }

    /// Every lease (a copy).
    pub fn snapshot(&self) -> Vec<Lease> {
        self.st.store.snapshot()
    }

    /// Writes `lease`; durable when the returned value completes.
    pub fn upsert(&mut self, lease: Lease) -> Durable {
        let addr = lease.address;
        let d = self.st.store.upsert(lease);
        self.st.lease_changed(addr);
        d
    }

    /// Writes many leases as one writer job; returns those refused.
    pub fn upsert_many(&mut self, leases: Vec<Lease>) -> (Durable, Vec<(Lease, LeaseError)>) {
        let addrs: Vec<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
        let (d, refused) = self.st.store.upsert_many(leases);
        for a in addrs {
            self.st.lease_changed(a);
        }
        (d, refused)
    }

    /// Deletes the lease of `addr`.
    pub fn remove(&mut self, addr: Ipv4Addr) -> Durable {
        let d = self.st.store.remove(addr);
        self.st.lease_changed(addr);
        d
    }

    /// Counts in the same step.
    pub fn count(&mut self, c: Counter, n: u64) {
        self.st.stats.add(c, n);
    }
}
