//! The packet loop: socket → classify → [`Core::process`] (decide and
//! commit, under the core's lock) → durable lease write → partner →
//! reply. One task per serving interface (with Kea's multi-threading, one
//! receiving task per interface feeding a pool of workers through
//! [`crate::packet_queue`]); the core's lock is held only for
//! the (pure, fast) decision and the in-memory store update, never across
//! an fsync, a send or a kernel map write.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use dhcproto::v4::Message;
use tokio::{net::UdpSocket, sync::watch};
use tokio_util::sync::CancellationToken;

use crate::{
    core::{
        Core, Counter, HaDrop, Sent, Stats,
        pipeline::{Arrival, Committed, Replication},
    },
    dhcp::{
        engine::{self, Destination},
        frame::{self, FrameAddrs},
        policy::{Policy, SubnetPolicy},
    },
    net::{self, CLIENT_PORT, Interface, RawSender, SERVER_PORT},
    peer::{HaRuntime, Rel},
};

mod race;
use race::{Races, Redo};

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
///
/// With Kea's multi-threading on (`mode` holds a queue), datagrams are
/// only received here and pushed to the queue the [`work`]ers serve; a
/// reconfiguration may switch between the two at any time
/// ([`crate::workers`]).
pub async fn serve(
    link: Arc<Link>,
    core: Core,
    ha: Option<Arc<HaRuntime>>,
    shutdown: CancellationToken,
    mut mode: watch::Receiver<Option<Queue>>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let queue = mode.borrow_and_update().clone();
        let go_on = match queue {
            Some(q) => receive_into(&link, q, &shutdown, &mut mode, &mut buf).await,
            None => decide_here(&link, &core, &ha, &shutdown, &mut mode, &mut buf).await,
        };
        if !go_on {
            return;
        }
    }
}

/// Receives and decides on `link` until the mode changes (`true`) or
/// `shutdown` (`false`).
async fn decide_here(
    link: &Arc<Link>,
    core: &Core,
    ha: &Option<Arc<HaRuntime>>,
    shutdown: &CancellationToken,
    mode: &mut watch::Receiver<Option<Queue>>,
    buf: &mut [u8],
) -> bool {
    let mut burst = Burst::new(Races::new(core, ha));
    loop {
        let d = match next_datagram(link, buf, shutdown, mode).await {
            Next::Datagram(d) => d,
            Next::Switch => return true,
            Next::Stop => return false,
        };
        handle(link, core, ha, &buf[..d.len], d.from, d.to, &mut burst);
        for _ in 1..MAX_BURST {
            match net::try_recv(&link.udp, buf) {
                Ok(d) => handle(link, core, ha, &buf[..d.len], d.from, d.to, &mut burst),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(interface = %link.iface.name, error = %e, "receive failed");
                    break;
                }
            }
        }
        burst.flush(link, core).await;
    }
}

/// What the receiver waits for.
enum Next {
    /// A datagram (its bytes in the buffer).
    Datagram(net::Datagram),
    /// The multi-threading mode changed.
    Switch,
    /// The daemon stops.
    Stop,
}

/// The next datagram on `link`, a change of `mode`, or the stop (a failed
/// receive is logged and skipped).
async fn next_datagram(
    link: &Link,
    buf: &mut [u8],
    shutdown: &CancellationToken,
    mode: &mut watch::Receiver<Option<Queue>>,
) -> Next {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Next::Stop,
            // The sender lives as long as the daemon's pool.
            changed = mode.changed() => return if changed.is_ok() { Next::Switch } else { Next::Stop },
            r = net::recv(&link.udp, buf) => match r {
                Ok(d) => return Next::Datagram(d),
                Err(e) => tracing::warn!(interface = %link.iface.name, error = %e, "receive failed"),
            },
        }
    }
}

/// A datagram waiting in the multi-threading queue, with the link it came
/// in on.
pub struct Queued {
    link: Arc<Link>,
    bytes: Vec<u8>,
    from: SocketAddrV4,
    to: Option<Ipv4Addr>,
}

/// The multi-threading queue ([`crate::packet_queue`]).
pub type Queue = Arc<crate::packet_queue::PacketQueue<Queued>>;

/// Receives on `link` into `queue` until the mode changes (`true`) or
/// `shutdown` (`false`); a datagram that pushes out an older one is logged
/// (the first, then every 1000th).
async fn receive_into(
    link: &Arc<Link>,
    queue: Queue,
    shutdown: &CancellationToken,
    mode: &mut watch::Receiver<Option<Queue>>,
    buf: &mut [u8],
) -> bool {
    let mut dropped = 0u64;
    loop {
        let d = match next_datagram(link, buf, shutdown, mode).await {
            Next::Datagram(d) => d,
            Next::Switch => return true,
            Next::Stop => return false,
        };
        let item = Queued { link: Arc::clone(link), bytes: buf[..d.len].to_vec(), from: d.from, to: d.to };
        for _ in 0..queue.push(item) {
            if dropped % 1000 == 0 {
                tracing::warn!(interface = %link.iface.name, dropped = dropped + 1,
                    "packet queue full (multi-threading packet-queue-size): the oldest packet was dropped");
            }
            dropped += 1;
        }
    }
}

/// One worker of Kea's multi-threading pool: takes datagrams from `queue`,
/// decides them and sends their replies, a burst of those from one link at
/// a time (as [`serve`] does). Leaves at `shutdown`; at `stop` (its pool
/// replaced by a reconfiguration) it first finishes what is queued, until
/// no receiver holds the queue any more. `alive` counts the pool's workers
/// (each adds itself before it is spawned).
pub async fn work(
    queue: Queue,
    core: Core,
    ha: Option<Arc<HaRuntime>>,
    alive: Arc<AtomicUsize>,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut burst = Burst::new(Races::new(&core, &ha));
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(q) => q,
            None => tokio::select! {
                _ = stop.cancelled() => break,
                q = queue.pop() => q,
            },
        };
        serve_burst(first, &queue, &core, &ha, &mut burst, &mut next).await;
    }
    // Replaced: drain. Receivers let go of this queue as soon as they see
    // the new mode; when only the pool's workers hold it, nothing more
    // can arrive.
    while !shutdown.is_cancelled() {
        match next.take().or_else(|| queue.try_pop()) {
            Some(first) => serve_burst(first, &queue, &core, &ha, &mut burst, &mut next).await,
            None if Arc::strong_count(&queue) <= alive.load(Ordering::Acquire) => break,
            None => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
    alive.fetch_sub(1, Ordering::AcqRel);
}

/// Decides `first` and the datagrams queued behind it from the same link
/// (up to [`MAX_BURST`]), then sends the burst's replies; a datagram from
/// another link is left in `next`.
async fn serve_burst(
    first: Queued,
    queue: &Queue,
    core: &Core,
    ha: &Option<Arc<HaRuntime>>,
    burst: &mut Burst,
    next: &mut Option<Queued>,
) {
    let link = Arc::clone(&first.link);
    handle(&link, core, ha, &first.bytes, first.from, first.to, burst);
    for _ in 1..MAX_BURST {
        match queue.try_pop() {
            Some(q) if Arc::ptr_eq(&q.link, &link) => handle(&link, core, ha, &q.bytes, q.from, q.to, burst),
            Some(q) => {
                *next = Some(q);
                break;
            }
            None => break,
        }
    }
    burst.flush(&link, core).await;
}

/// A reply decided in this burst, without HA replication (those keep a
/// task each: their partner round trips run concurrently).
struct Pending {
    /// The lease write the reply waits for.
    durable: Option<crate::leases::Durable>,
    /// The request, to decide again if that write loses a race.
    redo: Option<Redo>,
    reply: Message,
    dest: Destination,
    server_id: Ipv4Addr,
}

/// Replies decided since the last flush.
struct Burst {
    /// Nothing to wait for (OFFERs, NAKs): sent at the end of the burst.
    ready: Vec<Pending>,
    /// Waiting for their rows to be fsynced.
    durable: Vec<Pending>,
    /// Deciding again after a lost race on a shared database.
    races: Races,
}

impl Burst {
    fn new(races: Races) -> Burst {
        Burst { ready: Vec::new(), durable: Vec::new(), races }
    }

    /// Sends what is ready, then hands the rest to one task.
    async fn flush(&mut self, link: &Arc<Link>, core: &Core) {
        if !self.ready.is_empty() {
            let ready = std::mem::take(&mut self.ready);
            let tally = send_all(link, ready).await;
            core.count_all(&tally);
        }
        if !self.durable.is_empty() {
            let waiting = std::mem::take(&mut self.durable);
            let (link, core, races) = (Arc::clone(link), core.clone(), self.races.clone());
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
                        if let Some(addr) = races.lost(&e, &p.redo)
                            && let Some(redo) = p.redo.take()
                        {
                            tokio::spawn(races.clone().decide_again(addr, redo, Arc::clone(&link), core.clone()));
                            continue;
                        }
                        tracing::error!(error = %e, "lease not durable; reply withheld");
                        failed += 1;
                        continue;
                    }
                    out.push(p);
                }
                let mut tally = send_all(&link, out).await;
                tally.add(Counter::StoreFailure, failed);
                core.count_all(&tally);
            });
        }
    }
}

/// Sends a group of replies; their outcome counts, added to the core's
/// counters in one step.
async fn send_all(link: &Link, replies: Vec<Pending>) -> Stats {
    let mut tally = Stats::default();
    for p in replies {
        match send(link, p.server_id, &p.reply, &p.dest).await {
            Ok(()) => tally.add(reply_counter(&p.reply), 1),
            Err(e) => {
                tracing::warn!(error = %e, dest = ?p.dest, "sending reply failed");
                tally.add(Counter::SendFailure, 1);
            }
        }
    }
    tally
}

/// Handles one datagram: parses it once, decides and commits it
/// ([`Core::receive`]), then [`deliver`]s the result.
fn handle(
    link: &Arc<Link>,
    core: &Core,
    ha: &Option<Arc<HaRuntime>>,
    bytes: &[u8],
    from: SocketAddrV4,
    to: Option<Ipv4Addr>,
    burst: &mut Burst,
) {
    let Some(server_id) = link.iface.primary_ipv4() else {
        tracing::warn!(interface = %link.iface.name, "no IPv4 address: cannot serve");
        return;
    };
    let at = Arrival { iface: &link.iface.name, iface_addrs: &link.iface.addrs, server_id, from: *from.ip(), to };
    match core.receive(bytes, &at, ha) {
        Ok(committed) => {
            let redo = if committed.durable.is_some() { burst.races.keep(bytes, from, to) } else { None };
            deliver(link, core, committed, server_id, burst, redo)
        }
        Err(reason) => {
            tracing::debug!(%from, interface = %link.iface.name, reason = reason.label(), len = bytes.len(), "dropped malformed packet");
        }
    }
}

/// The send half of commit-then-send: a reply leaves only once its row is
/// durable and, with HA, the partner has the change (in Kea's order).
/// Replies that wait for nothing or only for their row go into `burst`;
/// those waiting for the partner get a task each, so partner round trips
/// run concurrently.
fn deliver(
    link: &Arc<Link>,
    core: &Core,
    c: Committed<Arc<Rel>>,
    server_id: Ipv4Addr,
    burst: &mut Burst,
    redo: Option<Redo>,
) {
    let Committed { reply, durable, replication } = c;
    let Some((reply, dest)) = reply else {
        if durable.is_some() || replication.is_some() {
            tokio::spawn(async move {
                if let Some(d) = durable
                    && let Err(e) = d.wait().await
                {
                    tracing::error!(error = %e, "lease write failed");
                    return;
                }
                if let Some(r) = replication {
                    r.rel.replicate(r.plan, r.updates).await;
                }
            });
        }
        return;
    };
    let Some(replication) = replication else {
        let waits = durable.is_some();
        let pending = Pending { durable, redo, reply, dest, server_id };
        if waits { burst.durable.push(pending) } else { burst.ready.push(pending) }
        return;
    };
    let link = Arc::clone(link);
    let core = core.clone();
    let races = burst.races.clone();
    tokio::spawn(async move {
        // RFC 2131 and our promise: no ACK before the lease is on disk.
        if let Some(d) = durable
            && let Err(e) = d.wait().await
        {
            if let Some(addr) = races.lost(&e, &redo)
                && let Some(redo) = redo
            {
                races.decide_again(addr, redo, link, core).await;
                return;
            }
            tracing::error!(error = %e, "lease not durable; reply withheld");
            core.count(Counter::StoreFailure, 1);
            return;
        }
        // Kea's HA: nor before the partner has it; dropped if it failed.
        let Replication { rel, plan, updates } = replication;
        if !rel.replicate(plan, updates).await {
            core.count(Counter::HaDropped(HaDrop::PartnerUpdateFailed), 1);
            return;
        }
        let counter = match send(&link, server_id, &reply, &dest).await {
            Ok(()) => reply_counter(&reply),
            Err(e) => {
                tracing::warn!(error = %e, ?dest, "sending reply failed");
                Counter::SendFailure
            }
        };
        core.count(counter, 1);
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
    let bytes = engine::reply_bytes(reply)?;
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
