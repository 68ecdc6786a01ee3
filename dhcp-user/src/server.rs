//! The packet loop: socket → classify → decide → durable lease write →
//! reply. One task per serving interface; all share [`Shared`] behind a
//! mutex held only for the (pure, fast) decision and the in-memory store
//! update, never across an fsync or a send.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::{Arc, Mutex},
};

use dhcproto::{Encodable as _, v4::Message};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::unix_now,
    core::{Counter, HaDrop, Sent, Shared, Stats},
    dhcp::{
        engine::{self, Ctx, Destination, LeaseWrite},
        frame::{self, FrameAddrs},
        inbound,
        policy::{Policy, SubnetPolicy},
    },
    net::{self, CLIENT_PORT, Interface, RawSender, SERVER_PORT},
};

/// Option 53's value for a kind (the HA filter works on message types).
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

fn reply_counter(m: &Message) -> Counter {
    Counter::Sent(Sent::of_msg_type(m.opts().msg_type().map(u8::from)))
}

/// Sockets of one serving interface.
pub struct Link {
    /// The interface.
    pub iface: Interface,
    /// UDP socket bound to it on port 67.
    pub udp: UdpSocket,
    /// Raw sender for replies to clients without an address.
    pub raw: RawSender,
}

impl Link {
    /// Opens the sockets of `iface`.
    pub fn open(iface: Interface) -> anyhow::Result<Self> {
        let udp = net::server_socket(&iface)?;
        let raw = RawSender::open(&iface)?;
        Ok(Self { iface, udp, raw })
    }
}

/// Most datagrams decided per wakeup before their replies go out.
const MAX_BURST: usize = 64;

/// Serves one interface until `shutdown` fires.
///
/// Each wakeup takes every datagram already queued (up to [`MAX_BURST`]),
/// decides them one by one, then sends the replies that wait for nothing
/// and hands those waiting for their lease rows to one task for the whole
/// burst: under load, one task and one wakeup per group commit instead of
/// one per packet.
pub async fn serve(link: Arc<Link>, shared: Arc<Mutex<Shared>>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 2048];
    let mut burst = Burst::default();
    loop {
        let d = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = net::recv(&link.udp, &mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(interface = %link.iface.name, error = %e, "receive failed");
                    continue;
                }
            },
        };
        handle(&link, &shared, &buf[..d.len], d.from, d.to, &mut burst);
        for _ in 1..MAX_BURST {
            match net::try_recv(&link.udp, &mut buf) {
                Ok(d) => handle(&link, &shared, &buf[..d.len], d.from, d.to, &mut burst),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(interface = %link.iface.name, error = %e, "receive failed");
                    break;
                }
            }
        }
        burst.flush(&link, &shared).await;
    }
}

/// A reply decided in this burst, without HA replication (those keep a
/// task each: their partner round trips run concurrently).
struct Pending {
    /// The lease write the reply waits for.
    durable: Option<crate::leases::Durable>,
    reply: Message,
    dest: Destination,
    server_id: Ipv4Addr,
}

/// Replies decided since the last flush.
#[derive(Default)]
struct Burst {
    /// Nothing to wait for (OFFERs, NAKs): sent at the end of the burst.
    ready: Vec<Pending>,
    /// Waiting for their rows to be fsynced.
    durable: Vec<Pending>,
}

impl Burst {
    /// Sends what is ready, then hands the rest to one task.
    async fn flush(&mut self, link: &Arc<Link>, shared: &Arc<Mutex<Shared>>) {
        if !self.ready.is_empty() {
            let ready = std::mem::take(&mut self.ready);
            let tally = send_all(link, ready).await;
            tally.record(shared);
        }
        if !self.durable.is_empty() {
            let waiting = std::mem::take(&mut self.durable);
            let (link, shared) = (Arc::clone(link), Arc::clone(shared));
            tokio::spawn(async move {
                // RFC 2131 and our promise: no ACK before the lease is on
                // disk. Rows of one burst complete together (group commit),
                // so awaiting them in order costs about one wakeup.
                let mut out = Vec::with_capacity(waiting.len());
                let mut failed = 0;
                for mut p in waiting {
                    if let Some(d) = p.durable.take()
                        && let Err(e) = d.wait().await
                    {
                        tracing::error!(error = %e, "lease not durable; reply withheld");
                        failed += 1;
                        continue;
                    }
                    out.push(p);
                }
                let mut tally = send_all(&link, out).await;
                tally.0.add(Counter::StoreFailure, failed);
                tally.record(&shared);
            });
        }
    }
}

/// Outcome counts of a group of sends, added to [`Stats`] under one lock.
#[derive(Default)]
struct Tally(Stats);

impl Tally {
    fn record(self, shared: &Mutex<Shared>) {
        if self.0.iter().next().is_none() {
            return;
        }
        shared.lock().unwrap_or_else(|p| p.into_inner()).stats.merge(&self.0);
    }
}

async fn send_all(link: &Link, replies: Vec<Pending>) -> Tally {
    let mut tally = Tally::default();
    for p in replies {
        match send(link, p.server_id, &p.reply, &p.dest).await {
            Ok(()) => tally.0.add(reply_counter(&p.reply), 1),
            Err(e) => {
                tracing::warn!(error = %e, dest = ?p.dest, "sending reply failed");
                tally.0.add(Counter::SendFailure, 1);
            }
        }
    }
    tally
}

/// Handles one datagram: decides under the lock; a reply goes into
/// `burst` (or, with HA replication, to a task of its own) so the loop
/// keeps receiving while rows are made durable.
fn handle(
    link: &Arc<Link>,
    shared: &Arc<Mutex<Shared>>,
    bytes: &[u8],
    from: SocketAddrV4,
    to: Option<Ipv4Addr>,
    burst: &mut Burst,
) {
    let Some(server_id) = link.iface.primary_ipv4() else {
        tracing::warn!(interface = %link.iface.name, "no IPv4 address: cannot serve");
        return;
    };
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    if !st.dhcp_enabled(unix_now()) {
        return; // dhcp-disable in force (Kea drops silently too)
    }
    let req = match inbound::classify(bytes) {
        Ok(r) => r,
        Err(reason) => {
            st.stats.add(Counter::Dropped(reason), 1);
            tracing::debug!(%from, interface = %link.iface.name, reason = reason.label(), len = bytes.len(), "dropped malformed packet");
            return;
        }
    };
    st.stats.add(Counter::Received(req.kind), 1);
    let subnet = select_subnet(&st.policy, &link.iface, &req.msg, *from.ip(), to);
    let now = unix_now();
    // HA: Kea's query filter and DHCP switch, per the subnet's relationship.
    let rel = match (&st.ha, subnet) {
        (None, _) => None,
        (Some(ha), Some(s)) => match ha.rel_for(s) {
            Some(r) => Some(Arc::clone(r)),
            None => {
                st.stats.add(Counter::HaDropped(HaDrop::NoRelationship), 1);
                return;
            }
        },
        (Some(ha), None) => ha.rels.first().cloned(),
    };
    if let Some(r) = &rel {
        let cid = req.msg.opts().get(dhcproto::v4::OptionCode::ClientIdentifier).and_then(|o| match o {
            dhcproto::v4::DhcpOption::ClientIdentifier(c) => Some(c.as_slice()),
            _ => None,
        });
        let hlen = usize::from(req.msg.hlen()).min(req.msg.chaddr().len());
        let q = crate::ha::Query {
            msg_type: kind_code(req.kind),
            chaddr: &req.msg.chaddr()[..hlen],
            client_id: cid.filter(|c| !c.is_empty()),
            secs: req.msg.secs(),
        };
        if !r.admit(&q) {
            st.stats.add(Counter::HaDropped(HaDrop::NotInScopeOrDisabled), 1);
            return;
        }
        if r.overloaded(q.msg_type) {
            st.stats.add(Counter::HaDropped(HaDrop::PartnerUpdatesBackedUp), 1);
            return;
        }
    }
    let grace = st.reuse_grace.filter(|g| g.active(now)).map(|g| (g, now));
    let view = crate::glue::StoreView(&st.store, grace);
    let on_link = subnet.is_some_and(|s| st.policy.on_link(s, &link.iface.name, &link.iface.addrs));
    let decision = engine::decide(&req, subnet, &st.policy, &view, &mut st.alloc, Ctx { now, server_id, on_link });
    if let Some(why) = decision.silence {
        st.stats.add(Counter::Silent(why), 1);
    }
    // The partner's copy: what Kea's leases4_committed would send.
    let updates = match (&rel, &decision.write) {
        (Some(_), Some(LeaseWrite::Upsert(l))) => {
            let new = crate::glue::to_lease(l);
            let mut u = Vec::new();
            // The client moved to another address: its old lease goes.
            if let Some(hw) = &new.hwaddr {
                for old in st.store.by_hwaddr(new.subnet_id, hw) {
                    if old.address != new.address && old.state == crate::leases::LeaseState::Default && !old.is_expired(now) {
                        u.push(crate::peer::Update::Del(old));
                    }
                }
            }
            u.push(crate::peer::Update::Put(new));
            u
        }
        (Some(_), Some(LeaseWrite::Remove(a))) => st.store.get(*a).map(crate::peer::Update::Del).into_iter().collect(),
        _ => Vec::new(),
    };
    let plan = rel.as_ref().filter(|_| !updates.is_empty()).map(|r| r.plan(updates.len()));
    let durable = match &decision.write {
        None => None,
        Some(LeaseWrite::Upsert(l)) => Some(st.store.upsert(crate::glue::to_lease(l))),
        Some(LeaseWrite::Remove(a)) => Some(st.store.remove(*a)),
    };
    if let Some(w) = &decision.write {
        let addr = match w {
            LeaseWrite::Upsert(l) => l.address,
            LeaseWrite::Remove(a) => *a,
        };
        st.sync_lease(addr);
    }
    drop(guard);
    let replication = rel.zip(plan).map(|(r, p)| (r, p, updates));
    let Some((reply, dest)) = decision.reply else {
        if durable.is_some() || replication.is_some() {
            tokio::spawn(async move {
                if let Some(d) = durable
                    && let Err(e) = d.wait().await
                {
                    tracing::error!(error = %e, "lease write failed");
                    return;
                }
                if let Some((r, p, u)) = replication {
                    r.replicate(p, u).await;
                }
            });
        }
        return;
    };
    if replication.is_none() {
        let waits = durable.is_some();
        let pending = Pending { durable, reply, dest, server_id };
        if waits { burst.durable.push(pending) } else { burst.ready.push(pending) }
        return;
    }
    let link = Arc::clone(link);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        // RFC 2131 and our promise: no ACK before the lease is on disk.
        if let Some(d) = durable
            && let Err(e) = d.wait().await
        {
            tracing::error!(error = %e, "lease not durable; reply withheld");
            shared.lock().unwrap_or_else(|p| p.into_inner()).stats.add(Counter::StoreFailure, 1);
            return;
        }
        // Kea's HA: nor before the partner has it; dropped if it failed.
        if let Some((r, p, u)) = replication
            && !r.replicate(p, u).await
        {
            shared.lock().unwrap_or_else(|p| p.into_inner()).stats.add(Counter::HaDropped(HaDrop::PartnerUpdateFailed), 1);
            return;
        }
        let counter = match send(&link, server_id, &reply, &dest).await {
            Ok(()) => reply_counter(&reply),
            Err(e) => {
                tracing::warn!(error = %e, ?dest, "sending reply failed");
                Counter::SendFailure
            }
        };
        shared.lock().unwrap_or_else(|p| p.into_inner()).stats.add(counter, 1);
    });
}

/// The subnet of a request, chosen the way Kea 2.2 does
/// ([`crate::dhcp::select`]). `to` is the IP destination (`None` when
/// unknown: treated as broadcast).
pub fn select_subnet<'a>(
    policy: &'a Policy,
    iface: &Interface,
    msg: &Message,
    from: Ipv4Addr,
    to: Option<Ipv4Addr>,
) -> Option<&'a SubnetPolicy> {
    let sel = crate::dhcp::select::Selector {
        msg,
        from,
        to,
        iface: &iface.name,
        iface_addrs: &iface.addrs,
    };
    crate::dhcp::select::select(policy, &sel)
}

/// Sends `reply` per RFC 2131 §4.1.
pub async fn send(link: &Link, server_id: Ipv4Addr, reply: &Message, dest: &Destination) -> anyhow::Result<()> {
    let bytes = reply.to_vec()?;
    match *dest {
        Destination::Relay(giaddr) => {
            link.udp.send_to(&bytes, SocketAddrV4::new(giaddr, SERVER_PORT)).await?;
        }
        Destination::Ciaddr(ip) => {
            link.udp.send_to(&bytes, SocketAddrV4::new(ip, CLIENT_PORT)).await?;
        }
        Destination::Broadcast => {
            link.udp.send_to(&bytes, SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)).await?;
        }
        Destination::Chaddr { mac, ip } => {
            let f = frame::build(
                &FrameAddrs {
                    dst_mac: mac,
                    src_mac: link.iface.mac,
                    src_ip: server_id,
                    dst_ip: ip,
                    src_port: SERVER_PORT,
                    dst_port: CLIENT_PORT,
                },
                &bytes,
            );
            link.raw.send(&f).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dhcproto::v4::{DhcpOption, MessageType};

    use super::*;

    /// Two subnets: lobezno's LAN and one behind a relay at 192.168.60.1.
    fn policy() -> Policy {
        let cfg = crate::config::parse(
            r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "subnet4": [
                { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.100-192.168.50.199" } ] },
                { "id": 2, "subnet": "192.168.60.0/24", "pools": [ { "pool": "192.168.60.100-192.168.60.149" } ] } ] } }"#,
            "test",
        )
        .unwrap();
        crate::glue::compile(&cfg)
    }

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0x50, 2],
            addrs: vec![(Ipv4Addr::new(192, 168, 50, 2), 24)],
        }
    }

    fn msg(ciaddr: [u8; 4], giaddr: [u8; 4]) -> Message {
        let mut m = Message::new(
            ciaddr.into(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            giaddr.into(),
            &[2, 0, 0, 0, 0x60, 0x11],
        );
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
        m
    }

    fn id(s: Option<&SubnetPolicy>) -> Option<u32> {
        s.map(|s| s.id)
    }

    const SERVER: Option<Ipv4Addr> = Some(Ipv4Addr::new(192, 168, 50, 2));
    const BCAST: Option<Ipv4Addr> = Some(Ipv4Addr::BROADCAST);
    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    #[test]
    fn subnet_selection_follows_kea() {
        let (p, i) = (policy(), eth0());
        let remote = Ipv4Addr::new(192, 168, 60, 100);
        // Relayed: giaddr decides, whatever else the packet says.
        assert_eq!(
            id(select_subnet(&p, &i, &msg([0; 4], [192, 168, 60, 1]), Ipv4Addr::new(192, 168, 50, 1), SERVER)),
            Some(2)
        );
        // A routed client's unicast renewal: ciaddr decides.
        assert_eq!(id(select_subnet(&p, &i, &msg([192, 168, 60, 100], [0; 4]), remote, SERVER)), Some(2));
        // Unicast without ciaddr: the source address decides.
        assert_eq!(id(select_subnet(&p, &i, &msg([0; 4], [0; 4]), remote, SERVER)), Some(2));
        // Unicast from an address no subnet holds: none (Kea drops it).
        assert_eq!(id(select_subnet(&p, &i, &msg([10, 0, 0, 1], [0; 4]), Ipv4Addr::new(10, 0, 0, 1), SERVER)), None);
        // Broadcasts, and packets whose destination is unknown, belong to
        // the link they arrived on, even with a foreign ciaddr.
        assert_eq!(id(select_subnet(&p, &i, &msg([192, 168, 60, 100], [0; 4]), remote, BCAST)), Some(1));
        assert_eq!(id(select_subnet(&p, &i, &msg([0; 4], [0; 4]), ZERO, BCAST)), Some(1));
        assert_eq!(id(select_subnet(&p, &i, &msg([192, 168, 60, 100], [0; 4]), remote, None)), Some(1));
        // An on-link unicast renewal stays on its link's subnet.
        let local = Ipv4Addr::new(192, 168, 50, 120);
        assert_eq!(id(select_subnet(&p, &i, &msg([192, 168, 50, 120], [0; 4]), local, SERVER)), Some(1));
    }
}
