//! The packet loop: socket → classify → decide → durable lease write →
//! reply. One task per serving interface; all share [`Shared`] behind a
//! mutex held only for the (pure, fast) decision and the in-memory store
//! update, never across an fsync or a send.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use dhcproto::{Encodable as _, v4::Message};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::{
    dhcp::{
        engine::{self, Allocator, Ctx, Destination, LeaseWrite},
        frame::{self, FrameAddrs},
        inbound::{self, DropReason},
        policy::Policy,
    },
    leases::LeaseStore,
    net::{self, CLIENT_PORT, Interface, RawSender, SERVER_PORT},
};

/// Counters the status page and metrics report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Packets received, by message kind label.
    pub received: BTreeMap<&'static str, u64>,
    /// Packets dropped before a decision, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Requests answered with silence, by reason.
    pub silent: BTreeMap<engine::Silence, u64>,
    /// Replies sent, by message type label.
    pub sent: BTreeMap<&'static str, u64>,
    /// Replies not sent because the lease write failed.
    pub store_failures: u64,
    /// Replies whose send failed.
    pub send_failures: u64,
}

/// State shared by every interface task.
pub struct Shared {
    /// The compiled configuration.
    pub policy: Policy,
    /// The lease store (authoritative copy of all leases).
    pub store: LeaseStore,
    /// Offers and pool cursors.
    pub alloc: Allocator,
    /// Counters.
    pub stats: Stats,
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn kind_label(k: inbound::Kind) -> &'static str {
    match k {
        inbound::Kind::Discover => "discover",
        inbound::Kind::Request => "request",
        inbound::Kind::Decline => "decline",
        inbound::Kind::Release => "release",
        inbound::Kind::Inform => "inform",
    }
}

fn reply_label(m: &Message) -> &'static str {
    use dhcproto::v4::MessageType as T;
    match m.opts().msg_type() {
        Some(T::Offer) => "offer",
        Some(T::Ack) => "ack",
        Some(T::Nak) => "nak",
        _ => "other",
    }
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

/// Serves one interface until `shutdown` fires.
pub async fn serve(link: Arc<Link>, shared: Arc<Mutex<Shared>>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = link.udp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(interface = %link.iface.name, error = %e, "receive failed");
                    continue;
                }
            },
        };
        let std::net::SocketAddr::V4(from) = from else { continue };
        handle(&link, &shared, &buf[..n], from);
    }
}

/// Handles one datagram: decides under the lock, then hands the durable
/// wait and the send to a task so the loop keeps receiving.
fn handle(link: &Arc<Link>, shared: &Arc<Mutex<Shared>>, bytes: &[u8], from: SocketAddrV4) {
    let Some(server_id) = link.iface.primary_ipv4() else {
        tracing::warn!(interface = %link.iface.name, "no IPv4 address: cannot serve");
        return;
    };
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    let req = match inbound::classify(bytes) {
        Ok(r) => r,
        Err(reason) => {
            *st.stats.dropped.entry(reason).or_default() += 1;
            tracing::debug!(%from, interface = %link.iface.name, reason = reason.label(), len = bytes.len(), "dropped malformed packet");
            return;
        }
    };
    *st.stats.received.entry(kind_label(req.kind)).or_default() += 1;
    let giaddr = req.msg.giaddr();
    let subnet = if giaddr != Ipv4Addr::UNSPECIFIED {
        st.policy.subnet_for_relay(giaddr)
    } else {
        st.policy.subnet_for_interface(&link.iface.name, &link.iface.addrs)
    };
    let now = unix_now();
    let view = crate::glue::StoreView(&st.store);
    let decision = engine::decide(&req, subnet, &st.policy, &view, &mut st.alloc, Ctx { now, server_id });
    if let Some(why) = decision.silence {
        *st.stats.silent.entry(why).or_default() += 1;
    }
    let durable = match &decision.write {
        None => None,
        Some(LeaseWrite::Upsert(l)) => Some(st.store.upsert(crate::glue::to_lease(l))),
        Some(LeaseWrite::Remove(a)) => Some(st.store.remove(*a)),
    };
    drop(guard);
    let Some((reply, dest)) = decision.reply else {
        if let Some(d) = durable {
            tokio::spawn(async move {
                if let Err(e) = d.wait().await {
                    tracing::error!(error = %e, "lease write failed");
                }
            });
        }
        return;
    };
    let link = Arc::clone(link);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        // RFC 2131 and our promise: no ACK before the lease is on disk.
        if let Some(d) = durable
            && let Err(e) = d.wait().await
        {
            tracing::error!(error = %e, "lease not durable; reply withheld");
            shared.lock().unwrap_or_else(|p| p.into_inner()).stats.store_failures += 1;
            return;
        }
        let label = reply_label(&reply);
        match send(&link, server_id, &reply, &dest).await {
            Ok(()) => *shared.lock().unwrap_or_else(|p| p.into_inner()).stats.sent.entry(label).or_default() += 1,
            Err(e) => {
                tracing::warn!(error = %e, ?dest, "sending reply failed");
                shared.lock().unwrap_or_else(|p| p.into_inner()).stats.send_failures += 1;
            }
        }
    });
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
