//! Sockets: how DHCP packets enter and leave the daemon.
//!
//! - One UDP socket per serving interface, bound to `0.0.0.0:67` with
//!   `SO_BINDTODEVICE`, so we know the receiving interface without control
//!   messages and broadcasts leave through the right port. `IP_PKTINFO`
//!   gives each datagram's destination address: a unicast from a routed
//!   client selects its subnet by address, not by interface (see
//!   [`crate::dhcp::select`]).
//! - One `AF_PACKET` socket per interface for replies that must reach a
//!   client's MAC before it has an address (RFC 2131 §4.1 unicast to
//!   chaddr); the frame comes from [`crate::dhcp::frame`].
//! - Relays get UDP unicast to `giaddr:67` through the normal routing table.

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4},
    os::fd::{AsRawFd as _, OwnedFd, FromRawFd as _},
};

use anyhow::{Context as _, bail};
use socket2::{Domain, Protocol, Socket, Type};

/// DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// One local interface as the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Kernel index, for `AF_PACKET` sends and XDP attach.
    pub index: u32,
    /// Hardware address (source MAC of raw replies).
    pub mac: [u8; 6],
    /// IPv4 addresses with prefix lengths, primary first.
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

impl Interface {
    /// The primary IPv4 address: our server identifier on this link.
    pub fn primary_ipv4(&self) -> Option<Ipv4Addr> {
        self.addrs.first().map(|(a, _)| *a)
    }
}

/// Looks up `name` in the current network namespace.
pub fn interface(name: &str) -> anyhow::Result<Interface> {
    let index = nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name:?} not found"))?;
    let mut mac = None;
    let mut addrs = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("getifaddrs")? {
        if ifa.interface_name != name {
            continue;
        }
        let Some(addr) = ifa.address else { continue };
        if let Some(link) = addr.as_link_addr() {
            if let Some(m) = link.addr() {
                mac = Some(m);
            }
        } else if let Some(sin) = addr.as_sockaddr_in() {
            let prefix = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| u32::from(m.ip()).count_ones() as u8)
                .unwrap_or(32);
            addrs.push((sin.ip(), prefix));
        }
    }
    let Some(mac) = mac else { bail!("interface {name:?} has no Ethernet address") };
    Ok(Interface { name: name.to_string(), index, mac, addrs })
}

/// Receive buffer asked for on each server socket: about 2,000 queued
/// requests, a few hundred milliseconds of work at full load.
pub const RECV_BUFFER: usize = 4 << 20;

/// Binds the per-interface server socket.
pub fn server_socket(iface: &Interface) -> anyhow::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).context("socket(AF_INET, UDP)")?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.name.as_bytes()))
        .with_context(|| format!("SO_BINDTODEVICE {}", iface.name))?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4PacketInfo, &true).context("IP_PKTINFO")?;
    // A burst (a switch stack rebooting, a building coming back after a
    // power cut) must queue, not be dropped: ask for RECV_BUFFER (the
    // kernel caps it at net.core.rmem_max); too small a grant is logged.
    s.set_recv_buffer_size(RECV_BUFFER).context("SO_RCVBUF")?;
    let granted = s.recv_buffer_size().context("SO_RCVBUF")?;
    if granted < RECV_BUFFER {
        tracing::info!(
            interface = %iface.name,
            granted,
            wanted = RECV_BUFFER,
            "receive buffer capped by net.core.rmem_max; raise it to absorb larger bursts"
        );
    }
    s.set_nonblocking(true)?;
    let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT);
    s.bind(&addr.into())
        .with_context(|| format!("binding UDP {addr} on {} (another DHCP server running?)", iface.name))?;
    tokio::net::UdpSocket::from_std(s.into()).context("registering the socket with tokio")
}

/// One datagram received on a server socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Payload length.
    pub len: usize,
    /// Source address and port.
    pub from: SocketAddrV4,
    /// Destination address of its IP header (`IP_PKTINFO`), e.g.
    /// 255.255.255.255 for a broadcast; `None` if the kernel gave none.
    pub to: Option<Ipv4Addr>,
}

/// Receives one datagram from a socket made by [`server_socket`].
pub async fn recv(sock: &tokio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    sock.async_io(tokio::io::Interest::READABLE, || recv_now(sock.as_raw_fd(), buf)).await
}

/// Receives one datagram if one is queued (`WouldBlock` otherwise).
pub fn try_recv(sock: &tokio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    sock.try_io(tokio::io::Interest::READABLE, || recv_now(sock.as_raw_fd(), buf))
}

fn recv_now(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Datagram> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let msg = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)?;
    let to = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::Ipv4PacketInfo(pi) => Some(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))),
        _ => None,
    });
    let from = msg
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    Ok(Datagram { len: msg.bytes, from, to })
}

/// Sends whole Ethernet frames on one interface.
pub struct RawSender {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
    ifindex: u32,
}

impl RawSender {
    /// Opens an `AF_PACKET` socket for `iface` (send only: protocol 0 means
    /// the kernel delivers nothing to it).
    pub fn open(iface: &Interface) -> anyhow::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: we own `fd` outright and move it into the AsyncFd, which
        // deregisters before closing it.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(Self { fd, ifindex: iface.index })
    }

    /// Sends one frame; `frame[0..6]` is the destination MAC.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| {
                // SAFETY: zeroed sockaddr_ll is valid; we fill family, index, halen, addr.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = self.ifindex as i32;
                sll.sll_halen = 6;
                sll.sll_addr[..6].copy_from_slice(&frame[..6.min(frame.len())]);
                // SAFETY: buffer and address point to valid memory of the given lengths.
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            }) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}
