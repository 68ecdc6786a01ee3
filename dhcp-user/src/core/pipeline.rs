//! # The packet pipeline
//!
//! [`process`] is everything the daemon decides about one request, with no
//! I/O: the DHCP switch, subnet selection (Kea's order), HA's query filter
//! and overload shedding (through [`Gate`]), the engine's decision, the
//! partner's copy of the lease change and the counters. It returns an
//! [`Outcome`]; nothing is written. [`Core::process`] runs it under the
//! core's lock and commits the lease write ([`Committed`]); the socket
//! loop then waits for the row, the partner, and sends. Unit tests call
//! [`process`] with an in-memory store: no socket, no root.
//!
//! The kernel-ACK drain commits through the same [`State::commit`] path
//! ([`Core::store_kernel_acks`]): the kernel already sent its reply, so
//! only the row and the partner's copy remain.
//!
//! A write whose row fails gets no reply, and the store undoes it in
//! memory before its [`Durable`] resolves (the lease as it was, or none);
//! the kernel's entry follows through the core's undo hook
//! ([`Core::new`]). So a failed write leaves nothing behind: no address
//! held for a client that was never acknowledged, no kernel entry that
//! could renew it.

use std::net::Ipv4Addr;

use dhcproto::v4::Message;

use super::{Core, Counter, HaDrop, Stats, State, kea_log};
use crate::{
    classify::{self, expr::Packet},
    dhcp::{
        engine::{self, Allocator, Classification, Ctx, Destination, LeaseWrite, Silence},
        inbound::{self, Inbound},
        policy::{Policy, SubnetPolicy},
        select::{self, Selector},
    },
    ha::{PartnerUpdates, Query, ReuseGrace, Update, UpdatePlan},
    leases::{Durable, Lease, LeaseState, LeaseStore},
};

/// What the packet path asks HA; the HA runtime implements it, so the
/// core need not know it. [`NoHa`] without HA.
pub trait Gate {
    /// A relationship, as the runtime hands it to replication.
    type Rel: Clone + Send + 'static;

    /// Kea's query filter for a request of `subnet` (`None`: no subnet
    /// selected): the relationship that answers it, or why it is dropped.
    fn admit(&self, subnet: Option<&SubnetPolicy>, q: &Query<'_>) -> Result<Option<Self::Rel>, HaDrop>;

    /// What to do with one committed packet's `changes` partner updates.
    fn plan(&self, rel: &Self::Rel, changes: usize) -> UpdatePlan;
}

/// No HA: every request is this server's, nothing is replicated.
pub struct NoHa;

impl Gate for NoHa {
    type Rel = ();

    fn admit(&self, _: Option<&SubnetPolicy>, _: &Query<'_>) -> Result<Option<()>, HaDrop> {
        Ok(None)
    }

    fn plan(&self, _: &(), _: usize) -> UpdatePlan {
        UpdatePlan { partner: PartnerUpdates::NoPartner, backups: false }
    }
}

/// Where a request arrived: the receiving interface and the datagram's
/// addresses.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// The receiving interface's name.
    pub iface: &'a str,
    /// Its IPv4 addresses with prefix lengths, primary first.
    pub iface_addrs: &'a [(Ipv4Addr, u8)],
    /// Our address there (option 54).
    pub server_id: Ipv4Addr,
    /// IP source of the datagram.
    pub from: Ipv4Addr,
    /// IP destination (`None`: unknown, read as broadcast).
    pub to: Option<Ipv4Addr>,
}

/// Whether a request is decided for the first time or again (after a lost
/// race on a shared database), so it is counted as received once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    First,
    Again,
}

/// The state [`process`] reads (and the allocator's offers it updates).
pub struct View<'a> {
    /// The policy in force.
    pub policy: &'a Policy,
    /// The leases (read only).
    pub store: &'a LeaseStore,
    /// Offers and pool cursors.
    pub alloc: &'a mut Allocator,
    /// The reuse grace period, if one was started.
    pub grace: Option<ReuseGrace>,
    /// The DHCP switch (`dhcp-disable`).
    pub enabled: bool,
    /// Unix seconds.
    pub now: u64,
}

/// The partner's copy of one packet's lease change.
#[derive(Debug)]
pub struct Replication<R> {
    /// The relationship that sends it.
    pub rel: R,
    /// Send (and wait), queue or skip, per HA's state.
    pub plan: UpdatePlan,
    /// In order: an old lease of the client deleted, then the new one.
    pub updates: Vec<Update>,
}

/// Everything decided about one request, nothing done yet.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The reply and where it goes.
    pub reply: Option<(Message, Destination)>,
    /// The lease change to make durable before the reply leaves.
    pub write: Option<LeaseWrite>,
    /// The partner's copy, to be answered before the reply leaves.
    pub replication: Option<Replication<R>>,
    /// Counters to add.
    pub counts: Stats,
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Outcome { reply: None, write: None, replication: None, counts: Stats::default() }
    }
}

/// Option 53's value of a kind (HA's filter works on message types).
fn kind_code(k: inbound::Kind) -> u8 {
    use dhcp_common::dhcp::msg_type;
    match k {
        inbound::Kind::Discover => msg_type::DISCOVER,
        inbound::Kind::Request => msg_type::REQUEST,
        inbound::Kind::Decline => msg_type::DECLINE,
        inbound::Kind::Release => msg_type::RELEASE,
        inbound::Kind::Inform => msg_type::INFORM,
    }
}

/// Decides one request: see the module doc. Only the allocator's offers
/// change.
pub fn process<G: Gate>(v: View<'_>, req: &Inbound, at: &Arrival<'_>, gate: &G) -> Outcome<G::Rel> {
    let mut out = Outcome::default();
    if !v.enabled {
        kea_log::service_disabled(Some(req));
        return out; // dhcp-disable in force (Kea counts nothing either)
    }
    out.counts.add(Counter::Received(req.kind), 1);
    let Some(mut cls) = classify_on_receipt(v.policy, req, at) else {
        kea_log::class_drop(req, at, kea_log::DropStage::OnReceipt);
        out.counts.add(Counter::Silent(Silence::ClassDrop), 1);
        return out;
    };
    if !engine::early_global_lookup(v.policy, req, &mut cls) {
        kea_log::class_drop(req, at, kea_log::DropStage::EarlyGlobal);
        out.counts.add(Counter::Silent(Silence::ClassDrop), 1);
        return out;
    }
    let sel = Selector { msg: &req.msg, from: at.from, to: at.to, iface: at.iface, iface_addrs: at.iface_addrs };
    let subnet = select::select_for(v.policy, &sel, &cls.classes);
    kea_log::received(req, at, subnet);
    let q = Query { msg_type: kind_code(req.kind), chaddr: &req.hwaddr, client_id: req.client_id.as_deref(), secs: req.msg.secs() };
    let rel = match gate.admit(subnet, &q) {
        Ok(r) => r,
        Err(why) => {
            match why {
                HaDrop::NotInScope => kea_log::not_for_us(req),
                HaDrop::HaDisabled => kea_log::service_disabled(Some(req)),
                HaDrop::NoRelationship | HaDrop::PartnerUpdatesBackedUp | HaDrop::PartnerUpdateFailed => {}
            }
            out.counts.add(Counter::HaDropped(why), 1);
            return out;
        }
    };
    let grace = v.grace.filter(|g| g.active(v.now)).map(|g| (g, v.now));
    let view = crate::glue::StoreView(v.store, grace);
    // The client is on the receiving link when its subnet is that link's,
    // or is bound to the receiving interface by its (or its network's)
    // `interface` (a class may select such a subnet past the link's own).
    let on_link = subnet
        .is_some_and(|s| v.policy.on_link(s, at.iface, at.iface_addrs) || s.interface.as_deref() == Some(at.iface));
    let ctx = Ctx { now: v.now, server_id: at.server_id, on_link };
    let decision = engine::decide_classified(req, subnet, v.policy, &view, v.alloc, ctx, cls);
    if let Some(why) = decision.silence {
        match why {
            Silence::OtherServerSelected => kea_log::foreign_server_id(req, at),
            Silence::ClassDrop => kea_log::class_drop(req, at, kea_log::DropStage::HostLookup),
            _ => {}
        }
        out.counts.add(Counter::Silent(why), 1);
    }
    if let Some(rel) = rel {
        let updates = partner_updates(v.store, decision.write.as_ref(), v.now);
        if !updates.is_empty() {
            let plan = gate.plan(&rel, updates.len());
            out.replication = Some(Replication { rel, plan, updates });
        }
    }
    kea_log::decided(req, decision.reply.as_ref().map(|(m, _)| m), decision.write.as_ref(), |a| v.store.get(a));
    if let Some((m, dest)) = &decision.reply {
        kea_log::sending(req, m, dest, at);
    }
    out.reply = decision.reply;
    out.write = decision.write;
    out
}

/// Kea's classification on receipt (built-in classes, then the tests
/// that do not depend on the host lookup), or `None` when the packet is
/// in `DROP`. Off (nothing evaluated) when no class is configured or used.
fn classify_on_receipt<'a>(policy: &Policy, req: &'a Inbound, at: &Arrival<'a>) -> Option<Classification<'a>> {
    if !policy.classify {
        return Some(Classification::default());
    }
    let dst = at.to.unwrap_or(Ipv4Addr::BROADCAST);
    let packet = Packet { bytes: &req.raw, iface: at.iface, src: at.from, dst };
    let mut classes = classify::builtin(&req.raw, req.bootp);
    classify::evaluate(&policy.classes, classify::Pass::OnReceipt, &packet, &mut classes);
    (!classes.contains(classify::DROP)).then_some(Classification { classes, packet: Some(packet), early_known: false })
}

/// The partner's copy of a write: what Kea's `leases4_committed` sends.
fn partner_updates(store: &LeaseStore, write: Option<&LeaseWrite>, now: u64) -> Vec<Update> {
    match write {
        Some(LeaseWrite::Upsert(l)) => {
            let new = crate::glue::to_lease(l);
            let mut u: Vec<Update> = superseded(store, &new, now).into_iter().map(Update::Del).collect();
            u.push(Update::Put(new));
            u
        }
        Some(LeaseWrite::Remove(a)) => store.get(*a).map(Update::Del).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The leases a new lease replaces: the same client (hardware address)
/// moved to another address of the subnet, its old live lease goes, as
/// Kea's `requestLease4` deletes it (ALLOC_ENGINE_V4_REQUEST_REMOVE_LEASE);
/// here and at the partner.
fn superseded(store: &LeaseStore, new: &Lease, now: u64) -> Vec<Lease> {
    let Some(hw) = &new.hwaddr else { return Vec::new() };
    store
        .by_hwaddr(new.subnet_id, hw)
        .into_iter()
        .filter(|old| old.address != new.address && old.state == LeaseState::Default && !old.is_expired(now))
        .collect()
}

/// One request committed: the lease write queued (durable when `durable`
/// completes) and in the kernel's queue; what is left is to wait and send.
#[derive(Debug)]
pub struct Committed<R> {
    /// The reply and where it goes.
    pub reply: Option<(Message, Destination)>,
    /// The row the reply waits for.
    pub durable: Option<Durable>,
    /// The partner's copy the reply waits for.
    pub replication: Option<Replication<R>>,
}

impl State {
    /// [`process`] on this state, then its write committed.
    fn process<G: Gate>(&mut self, req: &Inbound, at: &Arrival<'_>, gate: &G, now: u64, seen: Seen) -> Committed<G::Rel> {
        let enabled = self.dhcp_enabled(now);
        let view = View { policy: &self.policy, store: &self.store, alloc: &mut self.alloc, grace: self.reuse_grace, enabled, now };
        let mut out = process(view, req, at, gate);
        if seen == Seen::Again {
            out.counts.forget(|c| matches!(c, Counter::Received(_)));
        }
        self.stats.merge(&out.counts);
        let durable = out.write.as_ref().map(|w| self.commit(w));
        Committed { reply: out.reply, durable, replication: out.replication }
    }

    /// Writes a lease change to the store and queues it for the kernel:
    /// the one way a decided change is made.
    pub(super) fn commit(&mut self, write: &LeaseWrite) -> Durable {
        let (addr, durable) = match write {
            LeaseWrite::Upsert(l) => {
                let new = crate::glue::to_lease(l);
                // The client's old address is free again (the reply does not
                // wait for that row: a crash before it keeps the old lease,
                // which expires as any other).
                for old in superseded(&self.store, &new, crate::clock::unix_now()) {
                    drop(self.store.remove(old.address));
                    self.lease_changed(old.address);
                }
                (l.address, self.store.upsert(new))
            }
            LeaseWrite::Remove(a) => (*a, self.store.remove(*a)),
        };
        self.lease_changed(addr);
        durable
    }
}

/// What the kernel-ACK drain stored: the leases to replicate
/// asynchronously (the kernel already answered) and the rows.
pub struct KernelAcks {
    /// Renewed or created leases, for the partner.
    pub leases: Vec<Lease>,
    /// The renewals' rows (one writer job), if any.
    pub renewals: Option<Durable>,
    /// Reserved clients' rows.
    pub reserved: Vec<Durable>,
}

impl Core {
    /// Decides `req` ([`process`]) and commits its lease write, under one
    /// lock; nothing here waits.
    pub fn process<G: Gate>(&self, req: &Inbound, at: &Arrival<'_>, gate: &G) -> Committed<G::Rel> {
        let mut st = self.lock();
        // Read under the lock: a compensated clock step moves the leases
        // and the clock in one critical section.
        let now = crate::clock::unix_now();
        st.process(req, at, gate, now, Seen::First)
    }

    /// A datagram from the socket: parsed once (as BOOTP too when the
    /// policy loads Kea's hook), then [`Core::process`]ed, under one lock.
    /// While DHCP is disabled nothing is looked at or counted, as in Kea;
    /// a datagram that does not parse is counted and its reason returned.
    pub fn receive<G: Gate>(&self, bytes: &[u8], at: &Arrival<'_>, gate: &G) -> Result<Committed<G::Rel>, inbound::DropReason> {
        self.receive_as(bytes, at, gate, Seen::First)
    }

    /// [`Core::receive`] for a request decided again after its lease
    /// write lost the race for its address on a shared database: counted
    /// as received once, when it came in (Kea's engine retries inside the
    /// one packet).
    pub fn receive_again<G: Gate>(&self, bytes: &[u8], at: &Arrival<'_>, gate: &G) -> Result<Committed<G::Rel>, inbound::DropReason> {
        self.receive_as(bytes, at, gate, Seen::Again)
    }

    fn receive_as<G: Gate>(&self, bytes: &[u8], at: &Arrival<'_>, gate: &G, seen: Seen) -> Result<Committed<G::Rel>, inbound::DropReason> {
        let mut st = self.lock();
        let now = crate::clock::unix_now(); // under the lock, as in `process`
        if !st.dhcp_enabled(now) {
            kea_log::service_disabled(None);
            return Ok(Committed { reply: None, durable: None, replication: None });
        }
        let classify = if st.policy.bootp { inbound::classify_bootp } else { inbound::classify };
        let parsed = classify(bytes);
        kea_log::buffer(at, parsed.as_ref().err().copied());
        match parsed {
            Ok(req) => Ok(st.process(&req.from_source(at.from), at, gate, now, seen)),
            Err(reason) => {
                st.stats.add(Counter::Dropped(reason), 1);
                Err(reason)
            }
        }
    }

    /// Makes a drained batch of kernel ACKs the store's, under one lock:
    /// renewals extend their lease (the kernel already extended its own
    /// copy), reserved clients' ACKs write the lease the engine would have
    /// written (then their kernel entry follows the store).
    ///
    /// When a renewal's row fails, the store puts the lease back to its
    /// durable (shorter) expiry and the kernel's entry goes back with it,
    /// though the kernel's ACK already told the client the longer one. The
    /// kernel must not keep the longer expiry: it would go on renewing a
    /// lease the store (and, after a restart, the file) considers expired
    /// and reclaims, and could then renew it for its old client after the
    /// address went to another. With the entry back, the kernel stops
    /// answering at the durable expiry; the client's next renewal reaches
    /// the daemon, which ACKs it only once its row is durable. What cannot
    /// be taken back is the ACK itself: from the durable expiry until the
    /// one the kernel promised, the address may be offered to another
    /// client — the window every answer-first kernel renewal has when its
    /// row is lost (a crash before the drain does the same).
    pub fn store_kernel_acks(&self, batch: &mut Vec<dhcp_common::fastpath::RenewEvent>) -> KernelAcks {
        use crate::core::Sent;
        let mut st = self.lock();
        let now = crate::clock::unix_now();
        let mut out = KernelAcks { leases: Vec::new(), renewals: None, reserved: Vec::new() };
        let mut renewed = Vec::with_capacity(batch.len());
        for ev in batch.drain(..) {
            let addr = Ipv4Addr::from(ev.addr);
            if ev.kind == dhcp_common::fastpath::EVENT_RESERVED_ACK {
                let current = st.store.get(addr);
                let Some(lease) = crate::fastpath::reserved_lease(&st.policy, &ev, current.as_ref(), now) else {
                    continue;
                };
                out.leases.push(lease.clone());
                out.reserved.push(st.store.upsert(lease));
                st.lease_changed(addr);
                continue;
            }
            let Some(mut lease) = st.store.get(addr) else { continue };
            if lease.subnet_id != ev.subnet_id || ev.expire <= lease.expire {
                continue;
            }
            lease.expire = ev.expire;
            lease.valid_lifetime = ev.valid_lifetime;
            out.leases.push(lease.clone());
            renewed.push(lease);
        }
        let n = renewed.len() as u64;
        st.stats.add(Counter::Sent(Sent::XdpAck), n);
        st.stats.add(Counter::Sent(Sent::XdpReservedAck), out.reserved.len() as u64);
        if n > 0 {
            // The kernel's entry is already the renewed lease: no change
            // to queue for it.
            let (durable, refused) = st.store.upsert_many(renewed);
            for (lease, e) in refused {
                tracing::error!(error = %e, address = %lease.address, "storing a kernel renewal failed");
            }
            out.renewals = Some(durable);
        }
        out
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "classes_tests.rs"]
mod classes_tests;
