//! What the kernel's fast path leaves to the daemon, and why: subnets and
//! reservations that got no kernel template at the last install, counted
//! per reason. The daemon decides it when it writes the maps
//! ([`crate::fastpath::MapSync`]); an operator who expected renewals at
//! line rate reads here (on `/metrics` and the status page) that, say, two
//! subnets are daemon-only because of client classes. Without it the only
//! trace was an INFO line at start-up.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
};

use crate::fastpath::{NotEligible, ResId};

/// Subnets and reservations without a kernel template, per reason label
/// ([`NotEligible::label`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonOnly {
    /// Subnets the kernel answers nothing for.
    pub subnets: BTreeMap<&'static str, u64>,
    /// Reservations with no entry on any interface.
    pub reservations: BTreeMap<&'static str, u64>,
}

impl DaemonOnly {
    /// Counts one install's result: the subnets left (id, why), the
    /// reservations left on some interface or way of arriving (subnet id,
    /// client, why), and the reservations that got an entry somewhere
    /// (those are not daemon-only, even if another interface lacks one).
    pub fn count<'a>(
        subnets: &[(u32, NotEligible)],
        reservations_left: impl IntoIterator<Item = (u32, &'a ResId, &'a NotEligible)>,
        installed: &BTreeSet<(u32, ResId)>,
    ) -> DaemonOnly {
        let mut out = DaemonOnly::default();
        for (_, why) in subnets {
            *out.subnets.entry(why.label()).or_default() += 1;
        }
        // One count per reservation: its first reason.
        let mut first: BTreeMap<(u32, &ResId), &NotEligible> = BTreeMap::new();
        for (subnet, who, why) in reservations_left {
            first.entry((subnet, who)).or_insert(why);
        }
        for ((subnet, who), why) in first {
            if !installed.contains(&(subnet, who.clone())) {
                *out.reservations.entry(why.label()).or_default() += 1;
            }
        }
        out
    }

    /// Every (kind, reason, count), kinds `subnet` and `reservation`.
    pub fn rows(&self) -> Vec<(&'static str, &'static str, u64)> {
        let subnets = self.subnets.iter().map(|(r, n)| ("subnet", *r, *n));
        subnets.chain(self.reservations.iter().map(|(r, n)| ("reservation", *r, *n))).collect()
    }
}

/// The shared report: written by the kernel-sync task at every install,
/// read by the API. A handle with methods, so nobody holds its lock.
#[derive(Clone, Debug, Default)]
pub struct Coverage(Arc<Mutex<DaemonOnly>>);

impl Coverage {
    /// Replaces the report with the latest install's.
    pub fn set(&self, report: DaemonOnly) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = report;
    }

    /// The latest install's report.
    pub fn get(&self) -> DaemonOnly {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subnet_and_reservation_counts_once_under_its_first_reason() {
        let subnets = [(1, NotEligible::Classes), (2, NotEligible::Classes), (3, NotEligible::LeaseCaching)];
        let (a, b, c) = (ResId::Mac([2, 0, 0, 0, 0, 1]), ResId::Mac([2, 0, 0, 0, 0, 2]), ResId::ClientId(vec![1, 2]));
        // a: left on two interfaces; b: left on one, installed on another;
        // c: left with boot fields.
        let left = [
            (4, &a, &NotEligible::Classes),
            (4, &a, &NotEligible::NoInterface),
            (4, &b, &NotEligible::NoInterface),
            (4, &c, &NotEligible::BootFields),
        ];
        let installed = BTreeSet::from([(4, b.clone())]);
        let r = DaemonOnly::count(&subnets, left, &installed);
        assert_eq!(
            r.rows(),
            vec![
                ("subnet", "classes", 2),
                ("subnet", "lease_caching", 1),
                ("reservation", "boot_fields", 1),
                ("reservation", "classes", 1),
            ]
        );
        let shared = Coverage::default();
        shared.set(r.clone());
        assert_eq!(shared.clone().get(), r);
    }
}
