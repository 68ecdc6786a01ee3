//! The `AF_PACKET` sockets a run sends and receives on, opened inside the
//! load generator's namespace: the unsafe libc calls, kept in one place.

use std::fs::File;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::Context as _;

use super::ETH_P_IP;

/// `<linux/if_packet.h>`.
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Opens the send and receive sockets inside `netns` (a socket stays in
/// the namespace it was created in, so only this short-lived thread moves).
pub(super) fn open_sockets(netns: &str, iface: &str) -> anyhow::Result<(OwnedFd, OwnedFd, i32)> {
    let path = crate::netns::path(netns);
    let iface = std::ffi::CString::new(iface).context("interface name")?;
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            // SAFETY: setns(2) on a namespace file we hold open; it moves
            // only this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setns into the load generator's namespace");
            }
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(iface.as_ptr()) } as i32;
            if ifindex == 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("no interface {iface:?} in {netns}"));
            }
            // Protocol 0: the send socket receives nothing.
            let tx = packet_socket(0, ifindex)?;
            setsockopt(&tx, libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1).context("PACKET_QDISC_BYPASS")?;
            setsockopt(&tx, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 8 << 20).context("SO_SNDBUFFORCE")?;
            // ETH_P_IP, not ETH_P_ALL: only received frames, and no tap on
            // the transmit path that would clone every frame we send.
            let rx = packet_socket(ETH_P_IP, ifindex)?;
            setsockopt(&rx, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1).context("PACKET_IGNORE_OUTGOING")?;
            setsockopt(&rx, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 32 << 20).context("SO_RCVBUFFORCE")?;
            let tv = libc::timeval { tv_sec: 0, tv_usec: 10_000 };
            // SAFETY: a timeval of the size passed.
            let r = unsafe {
                libc::setsockopt(
                    rx.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    size_of::<libc::timeval>() as u32,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error()).context("SO_RCVTIMEO");
            }
            Ok((tx, rx, ifindex))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("socket thread panicked"))?
    })
}

fn packet_socket(protocol: u16, ifindex: i32) -> anyhow::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let raw =
        unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(protocol.to_be())) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let sll = sockaddr_ll(protocol, ifindex);
    // SAFETY: a sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as u32)
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("bind(AF_PACKET)");
    }
    Ok(fd)
}

pub(super) fn sockaddr_ll(protocol: u16, ifindex: i32) -> libc::sockaddr_ll {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    sll
}

fn setsockopt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: an int option of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as u32,
        )
    };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Frames the packet socket dropped (`struct tpacket_stats`: packets, drops).
pub(super) fn socket_drops(fd: &OwnedFd) -> anyhow::Result<u64> {
    let mut st = [0u32; 2];
    let mut len = size_of::<[u32; 2]>() as u32;
    // SAFETY: a buffer of the length passed.
    let r = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_STATISTICS, st.as_mut_ptr().cast(), &mut len)
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("PACKET_STATISTICS");
    }
    Ok(u64::from(st[1]))
}
