//! A renewal load generator: prebuilt DHCPREQUESTs in RENEWING state for N
//! known clients, sent from a lab host with `AF_PACKET` + `sendmmsg`, and
//! a receiver that counts the replies that are valid DHCPACKs for a
//! request it sent. perfdhcp cannot saturate the XDP fast path (one packet
//! per syscall, full DHCP state per exchange); this sends 64 frames per
//! syscall and only patches the xid.
//!
//! - The clients and their leases ([`clients`], [`lease_csv`]) are the
//!   same for every server under test, so all of them renew the same
//!   leases.
//! - Each request is a unicast from the client's own MAC and address
//!   (`ciaddr` = source IP = the lease's address, `chaddr` = the lease's
//!   MAC) to the server's MAC and IP, as a bound client sends at T1
//!   (RFC 2131 §4.3.2). Its xid is `base + sequence number`, so the
//!   receiver maps a reply back to the one request and client it answers.
//! - A reply counts as an ACK only if it is UDP 67→68, BOOTREPLY, option
//!   53 = 5, xid of a request sent, `chaddr` the client's and `yiaddr` =
//!   `ciaddr` = its lease. A NAK for a sent xid is a NAK; the request
//!   itself coming back with swapped ports (the bare XDP_TX echo of
//!   [`crate::xdp_echo`]) is an echo; every other frame from port 67 to 68
//!   is invalid.
//! - Pacing is open loop at a rate, or closed loop with a window of
//!   outstanding requests (requests unanswered after a stall are written
//!   off, so losses cannot freeze it). Every run is bounded by a packet
//!   count and a wall time; the receiver then drains for a bounded time.
//!
//! The frame builder and the reply checks are pure functions on bytes,
//! unit-tested here; [`run`] is the shell around them (needs root).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Ethernet + IPv4 (no options) + UDP headers.
const ETH: usize = 14;
const IP: usize = ETH;
const UDP: usize = IP + 20;
const BOOTP: usize = UDP + 8;
/// BOOTP fields, as offsets into the frame.
const XID: usize = BOOTP + 4;
const CIADDR: usize = BOOTP + 12;
#[cfg(test)]
const YIADDR: usize = BOOTP + 16;
const CHADDR: usize = BOOTP + 28;
const COOKIE: usize = BOOTP + 236;
const OPTIONS: usize = COOKIE + 4;
/// A BOOTP message of 300 bytes, the minimum RFC 1542 asks clients to send
/// (dhclient pads to it too).
const BOOTP_LEN: usize = 300;
/// Length of every request frame.
pub const FRAME_LEN: usize = BOOTP + BOOTP_LEN;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// What a renewing dhclient asks for that every server here answers from
/// the subnet's options: mask, routers, DNS, domain name.
const PARAMS: [u8; 4] = [1, 3, 6, 15];
/// Frames per `sendmmsg` / `recvmmsg`.
const BATCH: usize = 64;
const ETH_P_IP: u16 = 0x0800;
/// `<linux/if_packet.h>`.
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A client with a lease: what it renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// Its hardware address (`chaddr` and Ethernet source).
    pub mac: [u8; 6],
    /// Its leased address (`ciaddr` and IP source).
    pub addr: Ipv4Addr,
}

/// `n` clients with consecutive addresses from `first`, skipping addresses
/// ending in .0 or .255 (legal in a wide subnet, but a trap for tools), and
/// MACs `02:4c:` + the address's four bytes, so a MAC in a capture names its
/// address.
pub fn clients(n: usize, first: Ipv4Addr) -> Vec<Client> {
    let mut out = Vec::with_capacity(n);
    let mut a = u32::from(first);
    while out.len() < n {
        let addr = Ipv4Addr::from(a);
        a = a.wrapping_add(1);
        if matches!(addr.octets()[3], 0 | 255) {
            continue;
        }
        let o = addr.octets();
        out.push(Client { mac: [0x02, 0x4c, o[0], o[1], o[2], o[3]], addr });
    }
    out
}

/// The clients' leases as a Kea 2.2 memfile lease file (schema 2.1, what
/// `kea-dhcp4` writes and xdhcpd reads): one active row per client, in
/// subnet `subnet_id`, `valid_lifetime` seconds long, expiring at `expire`
/// (Unix time).
pub fn lease_csv(clients: &[Client], subnet_id: u32, valid_lifetime: u32, expire: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n",
    );
    for c in clients {
        let m = c.mac;
        let _ = writeln!(
            out,
            "{},{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x},,{valid_lifetime},{expire},{subnet_id},0,0,,0,",
            c.addr, m[0], m[1], m[2], m[3], m[4], m[5]
        );
    }
    out
}

/// Where requests go: the server's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// Its MAC (Ethernet destination).
    pub mac: [u8; 6],
    /// Its address (IP destination).
    pub ip: Ipv4Addr,
}

/// The DHCPREQUEST a bound client in RENEWING state sends, as a complete
/// Ethernet frame of [`FRAME_LEN`] bytes with valid IP and UDP checksums:
/// no server identifier, no requested address, `ciaddr` set (RFC 2131
/// §4.3.2), a parameter request list, padded to a 300-byte BOOTP message.
pub fn renew_frame(client: &Client, server: &Server, xid: u32) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&server.mac);
    f[6..12].copy_from_slice(&client.mac);
    f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    let (src, dst) = (client.addr.octets(), server.ip.octets());
    let ip_len = (FRAME_LEN - IP) as u16;
    f[IP..IP + 12].copy_from_slice(&[
        0x45,
        0,
        ip_len.to_be_bytes()[0],
        ip_len.to_be_bytes()[1],
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f[IP + 12..IP + 16].copy_from_slice(&src);
    f[IP + 16..IP + 20].copy_from_slice(&dst);
    let sum = checksum(&f[IP..UDP], 0);
    f[IP + 10..IP + 12].copy_from_slice(&sum.to_be_bytes());
    let udp_len = (FRAME_LEN - UDP) as u16;
    f[UDP..UDP + 6].copy_from_slice(&[0, 68, 0, 67, udp_len.to_be_bytes()[0], udp_len.to_be_bytes()[1]]);
    f[BOOTP..BOOTP + 4].copy_from_slice(&[1, 1, 6, 0]);
    f[XID..XID + 4].copy_from_slice(&xid.to_be_bytes());
    f[CIADDR..CIADDR + 4].copy_from_slice(&src);
    f[CHADDR..CHADDR + 6].copy_from_slice(&client.mac);
    f[COOKIE..OPTIONS].copy_from_slice(&MAGIC);
    let mut o = OPTIONS;
    for part in [&[53u8, 1, 3][..], &[55, PARAMS.len() as u8], &PARAMS, &[255]] {
        f[o..o + part.len()].copy_from_slice(part);
        o += part.len();
    }
    let sum = udp_checksum(&f);
    f[UDP + 6..UDP + 8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Rewrites the xid of a frame made by [`renew_frame`], updating the UDP
/// checksum incrementally (RFC 1624, eqn. 3) instead of summing 308 bytes
/// per packet.
pub fn set_xid(frame: &mut [u8], xid: u32) {
    let old = [word(frame, XID), word(frame, XID + 2)];
    frame[XID..XID + 4].copy_from_slice(&xid.to_be_bytes());
    let new = [word(frame, XID), word(frame, XID + 2)];
    let mut sum = u32::from(!word(frame, UDP + 6));
    for (o, n) in old.into_iter().zip(new) {
        sum += u32::from(!o) + u32::from(n);
    }
    let c = !fold(sum);
    // 0 means "no checksum" in UDP over IPv4: a computed 0 is sent as 0xffff.
    frame[UDP + 6..UDP + 8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
}

fn word(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// One's-complement sum folded to 16 bits (not complemented).
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Internet checksum of `data` with `initial` added (a pseudo-header sum).
fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    !fold(sum)
}

/// UDP checksum of an Ethernet/IPv4 (20-byte header)/UDP frame, 0 → 0xffff.
fn udp_checksum(frame: &[u8]) -> u16 {
    let udp_len = frame.len() - UDP;
    let mut pseudo = 17 + udp_len as u32;
    for at in [IP + 12, IP + 14, IP + 16, IP + 18] {
        pseudo += u32::from(word(frame, at));
    }
    let mut copy = frame[UDP..].to_vec();
    copy[6] = 0;
    copy[7] = 0;
    let c = checksum(&copy, pseudo);
    if c == 0 { 0xffff } else { c }
}

/// What a frame from port 67 to 68 says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// BOOTREPLY with DHCPACK.
    Ack,
    /// BOOTREPLY with DHCPNAK.
    Nak,
    /// Our own BOOTREQUEST/DHCPREQUEST with swapped addresses and ports:
    /// the bare echo.
    Echo,
    /// Anything else (another message type, or op and type disagreeing).
    Other,
}

/// The fields of a frame from port 67 to port 68 that a reply is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// What it is.
    pub kind: Kind,
    /// Transaction id.
    pub xid: u32,
    /// `ciaddr`.
    pub ciaddr: Ipv4Addr,
    /// `yiaddr`.
    pub yiaddr: Ipv4Addr,
    /// First six bytes of `chaddr`.
    pub chaddr: [u8; 6],
}

/// A received frame, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not IPv4/UDP from port 67 to port 68: not a reply (ARP, our own
    /// traffic, anything else); ignored.
    NotReply,
    /// UDP 67→68 but not a readable DHCP message: counted as invalid.
    Malformed,
    /// A DHCP message from a server port.
    Reply(Reply),
}

/// Parses enough of a received frame to judge it (Ethernet without VLAN
/// tag, as the lab's links are).
pub fn parse_reply(frame: &[u8]) -> Parsed {
    if frame.len() < UDP + 8 || word(frame, 12) != ETH_P_IP || frame[IP] >> 4 != 4 || frame[IP + 9] != 17 {
        return Parsed::NotReply;
    }
    let ihl = usize::from(frame[IP] & 0x0f) * 4;
    let udp = IP + ihl;
    if ihl < 20 || frame.len() < udp + 8 || word(frame, udp) != 67 || word(frame, udp + 2) != 68 {
        return Parsed::NotReply;
    }
    let b = udp + 8;
    // The UDP length bounds the message (frames may carry Ethernet padding).
    let end = (udp + usize::from(word(frame, udp + 4))).min(frame.len());
    if end < b + 240 || frame[b + 236..b + 240] != MAGIC || frame[b + 1] != 1 || frame[b + 2] != 6 {
        return Parsed::Malformed;
    }
    let Some(msg_type) = option(&frame[b + 240..end], 53).and_then(|v| v.first().copied()) else {
        return Parsed::Malformed;
    };
    let kind = match (frame[b], msg_type) {
        (2, 5) => Kind::Ack,
        (2, 6) => Kind::Nak,
        (1, 3) => Kind::Echo,
        _ => Kind::Other,
    };
    let ip4 = |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&frame[b + 28..b + 34]);
    Parsed::Reply(Reply {
        kind,
        xid: u32::from_be_bytes([frame[b + 4], frame[b + 5], frame[b + 6], frame[b + 7]]),
        ciaddr: ip4(b + 12),
        yiaddr: ip4(b + 16),
        chaddr,
    })
}

/// The value of option `code` in a DHCP options field.
fn option(mut opts: &[u8], code: u8) -> Option<&[u8]> {
    loop {
        match *opts {
            [] | [255, ..] => return None,
            [0, ref rest @ ..] => opts = rest,
            [c, len, ref rest @ ..] => {
                let value = rest.get(..usize::from(len))?;
                if c == code {
                    return Some(value);
                }
                opts = &rest[usize::from(len)..];
            }
            [_] => return None,
        }
    }
}

/// A reply matched against what was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid ACK for request number `seq`.
    Ack(u64),
    /// A NAK for request `seq`.
    Nak(u64),
    /// Request `seq` echoed back unchanged but for addresses and ports.
    Echo(u64),
    /// Not an answer to anything sent, or one with the wrong contents.
    Invalid,
}

/// Judges `reply` given that requests `0..issued` were sent with xids
/// `base + seq`, request `seq` for client `seq % clients.len()`.
pub fn judge(reply: &Reply, base: u32, issued: u64, clients: &[Client]) -> Verdict {
    let seq = u64::from(reply.xid.wrapping_sub(base));
    if seq >= issued || clients.is_empty() {
        return Verdict::Invalid;
    }
    let c = &clients[(seq % clients.len() as u64) as usize];
    if reply.chaddr != c.mac {
        return Verdict::Invalid;
    }
    match reply.kind {
        Kind::Ack if reply.yiaddr == c.addr && reply.ciaddr == c.addr => Verdict::Ack(seq),
        Kind::Nak => Verdict::Nak(seq),
        Kind::Echo if reply.ciaddr == c.addr => Verdict::Echo(seq),
        _ => Verdict::Invalid,
    }
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Open loop: this many requests per second, whatever comes back.
    Rate(u64),
    /// Closed loop: at most this many requests unanswered at a time.
    Window(u64),
}

/// One load run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Network namespace to send from (`ip netns` name of a lab host).
    pub netns: String,
    /// Interface in it.
    pub iface: String,
    /// Where the requests go.
    pub server: Server,
    /// Pacing.
    pub pace: Pace,
    /// Stop sending after this many requests…
    pub max_packets: u64,
    /// …or after this long, whichever comes first.
    pub max_time: Duration,
    /// How long to keep receiving after the last send (ends early once
    /// every request is answered).
    pub drain: Duration,
    /// With [`Pace::Window`], how long without any reply before the
    /// outstanding requests are written off as lost.
    pub stall: Duration,
}

impl Options {
    /// Closed loop with a window of `window`, bounded by `max_packets` and
    /// `max_time`; 200 ms drain, 20 ms stall.
    pub fn window(netns: &str, iface: &str, server: Server, window: u64, max_packets: u64, max_time: Duration) -> Self {
        Options {
            netns: netns.to_owned(),
            iface: iface.to_owned(),
            server,
            pace: Pace::Window(window.max(1)),
            max_packets,
            max_time,
            drain: Duration::from_millis(200),
            stall: Duration::from_millis(20),
        }
    }
}

/// What a run counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Valid ACKs, each for a different request.
    pub acked: u64,
    /// NAKs for sent requests.
    pub naks: u64,
    /// Requests echoed back (bare echo program).
    pub echoed: u64,
    /// Frames from port 67 to 68 that answer nothing sent or have wrong
    /// contents.
    pub invalid: u64,
    /// Second and later answers to the same request.
    pub duplicates: u64,
    /// `sendmmsg` failures (the frames of that call not sent).
    pub send_errors: u64,
    /// Frames the receiving socket dropped for lack of buffer (the kernel's
    /// `PACKET_STATISTICS`): answers that came but were not counted.
    pub rx_dropped: u64,
    /// Times the window was reset after a stall (closed loop only).
    pub stalls: u64,
    /// Time spent sending: first send to last.
    pub sending: Duration,
}

impl Stats {
    /// Valid ACKs per second of sending.
    pub fn acks_per_s(&self) -> f64 {
        per_s(self.acked, self.sending)
    }

    /// Echoes per second of sending.
    pub fn echoes_per_s(&self) -> f64 {
        per_s(self.echoed, self.sending)
    }

    /// Requests sent per second.
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent, self.sending)
    }

    /// Requests that got no answer at all.
    pub fn unanswered(&self) -> u64 {
        self.sent.saturating_sub(self.acked + self.naks + self.echoed)
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() }
}

/// Counters shared by the sender and the receiver.
struct Shared {
    /// Requests whose xid may be on the wire (published before the send,
    /// since the answer can arrive before `sendmmsg` returns).
    issued: AtomicU64,
    /// Requests answered (ACK, NAK or echo), for the window.
    answered: AtomicU64,
    /// Set when sending stopped.
    done: AtomicBool,
}

/// Sends renewals for `clients` (request `seq` for client
/// `seq % clients.len()`) and counts the answers, from inside namespace
/// `opts.netns`. Needs root.
pub fn run(clients: &[Client], opts: &Options) -> anyhow::Result<Stats> {
    if clients.is_empty() {
        bail!("no clients to renew");
    }
    // A random base keeps a late answer to an earlier run from matching.
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    let templates: Vec<Vec<u8>> = clients.iter().map(|c| renew_frame(c, &opts.server, 0)).collect();
    let (tx, rx, ifindex) = open_sockets(&opts.netns, &opts.iface)?;
    let shared = Shared { issued: AtomicU64::new(0), answered: AtomicU64::new(0), done: AtomicBool::new(false) };
    std::thread::scope(|s| {
        let receiver = s.spawn(|| receive(&rx, base, clients, opts, &shared));
        let sent = send(&tx, ifindex, base, &templates, opts, &shared);
        shared.done.store(true, Ordering::Release);
        let received = receiver.join().map_err(|_| anyhow::anyhow!("loadgen receiver panicked"))??;
        let (sent, send_errors, stalls, sending) = sent?;
        Ok(Stats { sent, send_errors, stalls, sending, ..received })
    })
}

/// Opens the send and receive sockets inside `netns` (a socket stays in
/// the namespace it was created in, so only this short-lived thread moves).
fn open_sockets(netns: &str, iface: &str) -> anyhow::Result<(OwnedFd, OwnedFd, i32)> {
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

fn sockaddr_ll(protocol: u16, ifindex: i32) -> libc::sockaddr_ll {
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

/// The sending loop: returns (sent, send errors, stalls, time spent).
fn send(
    fd: &OwnedFd,
    ifindex: i32,
    base: u32,
    templates: &[Vec<u8>],
    opts: &Options,
    shared: &Shared,
) -> anyhow::Result<(u64, u64, u64, Duration)> {
    let mut to = sockaddr_ll(ETH_P_IP, ifindex);
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&opts.server.mac);
    let mut frames = vec![[0u8; FRAME_LEN]; BATCH];
    let mut iov: Vec<libc::iovec> =
        frames.iter_mut().map(|f| libc::iovec { iov_base: f.as_mut_ptr().cast(), iov_len: FRAME_LEN }).collect();
    // SAFETY: zeroed mmsghdrs are valid; the pointers set below (to `to`
    // and `iov`, which point into `frames`) stay valid for the whole loop:
    // none of them is moved or resized.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_ll).cast();
        m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let (mut sent, mut errors, mut stalls, mut written_off) = (0u64, 0u64, 0u64, 0u64);
    let (mut last_answered, mut last_progress) = (0u64, Instant::now());
    let start = Instant::now();
    let deadline = start + opts.max_time;
    while sent < opts.max_packets {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let room = match opts.pace {
            Pace::Rate(pps) => {
                let due = (now - start).as_secs_f64() * pps as f64;
                (due as u64).saturating_sub(sent)
            }
            Pace::Window(window) => {
                let answered = shared.answered.load(Ordering::Acquire);
                if answered != last_answered {
                    (last_answered, last_progress) = (answered, now);
                }
                let outstanding = sent.saturating_sub(answered + written_off);
                if outstanding >= window && now - last_progress >= opts.stall {
                    // Nothing came back for a while: those are lost.
                    written_off = sent - answered;
                    stalls += 1;
                    last_progress = now;
                    window
                } else {
                    window.saturating_sub(outstanding)
                }
            }
        };
        let n = room.min(BATCH as u64).min(opts.max_packets - sent) as usize;
        if n == 0 {
            // Open loop between slots or window full: let the receiver and
            // the kernel run (two shared cores).
            std::thread::yield_now();
            continue;
        }
        for (i, v) in iov.iter().take(n).enumerate() {
            let seq = sent + i as u64;
            // Through the iovec: `frames` itself is borrowed by `iov`.
            // SAFETY: iov[i] points at frames[i], FRAME_LEN bytes.
            let frame = unsafe { std::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), FRAME_LEN) };
            frame.copy_from_slice(&templates[(seq % templates.len() as u64) as usize]);
            set_xid(frame, base.wrapping_add(seq as u32));
        }
        shared.issued.store(sent + n as u64, Ordering::Release);
        // SAFETY: `msgs` holds BATCH >= n initialised headers.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                    errors += 1;
                    std::thread::yield_now();
                }
                _ => return Err(e).context("sendmmsg"),
            }
            // Unsent xids are never reused: a later answer to one is invalid.
            sent += n as u64;
            written_off += n as u64;
            continue;
        }
        let done = r as u64;
        if done < n as u64 {
            errors += 1;
            written_off += n as u64 - done;
        }
        sent += n as u64;
    }
    Ok((sent, errors, stalls, start.elapsed()))
}

/// The receiving loop: counts answers until sending is done and the
/// drain time has passed (or everything is answered).
fn receive(fd: &OwnedFd, base: u32, clients: &[Client], opts: &Options, shared: &Shared) -> anyhow::Result<Stats> {
    let mut stats = Stats::default();
    let mut seen = vec![0u64; opts.max_packets.div_ceil(64) as usize];
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut drain_until: Option<Instant> = None;
    let mut iov: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
    // SAFETY: zeroed mmsghdrs are valid; the iovecs (into `bufs`) stay put
    // for the whole loop.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    loop {
        // SAFETY: BATCH initialised headers; SO_RCVTIMEO bounds the wait.
        let r = unsafe {
            libc::recvmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                return Err(e).context("recvmmsg");
            }
        }
        let issued = shared.issued.load(Ordering::Acquire);
        let mut answered = 0;
        for (m, v) in msgs.iter().zip(&iov).take(r.max(0) as usize) {
            let len = (m.msg_len as usize).min(v.iov_len);
            // SAFETY: the kernel wrote `len` bytes into this iovec's buffer.
            let frame = unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), len) };
            let verdict = match parse_reply(frame) {
                Parsed::NotReply => continue,
                Parsed::Malformed => Verdict::Invalid,
                Parsed::Reply(reply) => judge(&reply, base, issued, clients),
            };
            let seq = match verdict {
                Verdict::Ack(seq) | Verdict::Nak(seq) | Verdict::Echo(seq) => seq,
                Verdict::Invalid => {
                    stats.invalid += 1;
                    continue;
                }
            };
            let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
            if seen[word] & bit != 0 {
                stats.duplicates += 1;
                continue;
            }
            seen[word] |= bit;
            answered += 1;
            match verdict {
                Verdict::Ack(_) => stats.acked += 1,
                Verdict::Nak(_) => stats.naks += 1,
                _ => stats.echoed += 1,
            }
        }
        if answered > 0 {
            shared.answered.fetch_add(answered, Ordering::AcqRel);
        }
        if shared.done.load(Ordering::Acquire) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + opts.drain);
            let all = shared.answered.load(Ordering::Acquire) >= shared.issued.load(Ordering::Acquire);
            if all || Instant::now() >= until {
                break;
            }
        }
    }
    stats.rx_dropped = socket_drops(fd)?;
    Ok(stats)
}

/// Frames the packet socket dropped (`struct tpacket_stats`: packets, drops).
fn socket_drops(fd: &OwnedFd) -> anyhow::Result<u64> {
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

/// The server end of a lab host's interface: its MAC (from the topology)
/// and first IPv4 address.
pub fn server_of(lab: &crate::Lab, host: &str, segment: &str) -> anyhow::Result<Server> {
    let h = lab.topology().get_host(host)?;
    let port = h.ports.iter().find(|p| p.segment == segment).with_context(|| format!("{host} is not on {segment}"))?;
    let mac = port.mac.with_context(|| format!("{host} has no fixed MAC on {segment}"))?;
    let ip = port.address.with_context(|| format!("{host} has no address on {segment}"))?.addr;
    Ok(Server { mac: mac.0, ip })
}

/// Makes the clients' addresses reachable from `host`'s `iface` the way
/// a LAN of bound clients is: a connected route for `subnet` (no default
/// route, nothing leaves the lab) and a permanent neighbour entry per
/// client, so a server replying through its UDP socket (xdhcpd
/// `--no-xdp`) needs no ARP from clients that are only frames, and no
/// server pays for 10,000 ARP exchanges the others skip. Permanent entries
/// are not counted against the neighbour table's gc thresholds.
pub fn make_reachable(
    lab: &crate::Lab,
    host: &str,
    iface: &str,
    subnet: crate::Ipv4Cidr,
    clients: &[Client],
) -> anyhow::Result<()> {
    let ns = lab.netns(host)?;
    crate::netns::ip(&ns, &["route", "replace", &subnet.to_string(), "dev", iface])?;
    let mut batch = String::new();
    for c in clients {
        let m = c.mac;
        batch.push_str(&format!(
            "neigh replace {} lladdr {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} dev {iface} nud permanent\n",
            c.addr, m[0], m[1], m[2], m[3], m[4], m[5]
        ));
    }
    let path = lab.host_dir(host)?.join("loadgen-neighbours.batch");
    std::fs::write(&path, batch).with_context(|| format!("writing {}", path.display()))?;
    let path = path.to_str().context("non-UTF-8 lab dir")?;
    crate::netns::ip(&ns, &["-batch", path]).context("adding the clients' neighbour entries")?;
    Ok(())
}

/// Lets the load generator's host receive answers addressed to the
/// clients' MACs (veth does not filter by MAC, promiscuous mode makes
/// that explicit).
pub fn prepare_client(lab: &crate::Lab, host: &str, iface: &str) -> anyhow::Result<()> {
    crate::netns::ip(&lab.netns(host)?, &["link", "set", iface, "promisc", "on"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: Server = Server { mac: [0x02, 0, 0, 0, 0x50, 2], ip: Ipv4Addr::new(192, 168, 50, 2) };

    fn client() -> Client {
        clients(1, Ipv4Addr::new(192, 168, 64, 1))[0]
    }

    /// The answer a server would send to `req`: op 2, type `msg_type`,
    /// `yiaddr`, addresses and ports swapped.
    fn answer(req: &[u8], msg_type: u8, yiaddr: Ipv4Addr) -> Vec<u8> {
        let mut f = req.to_vec();
        f.copy_within(0..6, 6);
        f[0..6].copy_from_slice(&req[6..12]);
        f[IP + 12..IP + 16].copy_from_slice(&req[IP + 16..IP + 20]);
        f[IP + 16..IP + 20].copy_from_slice(&req[IP + 12..IP + 16]);
        f[UDP..UDP + 4].copy_from_slice(&[0, 67, 0, 68]);
        f[BOOTP] = 2;
        f[YIADDR..YIADDR + 4].copy_from_slice(&yiaddr.octets());
        f[OPTIONS + 2] = msg_type;
        f
    }

    #[test]
    fn clients_skip_network_and_broadcast_looking_addresses() {
        let c = clients(300, Ipv4Addr::new(192, 168, 64, 250));
        assert_eq!(c.len(), 300);
        assert_eq!(c[0].addr, Ipv4Addr::new(192, 168, 64, 250));
        assert_eq!(c[4].addr, Ipv4Addr::new(192, 168, 64, 254));
        assert_eq!(c[5].addr, Ipv4Addr::new(192, 168, 65, 1));
        assert_eq!(c[5].mac, [0x02, 0x4c, 192, 168, 65, 1]);
        let macs: std::collections::HashSet<_> = c.iter().map(|c| c.mac).collect();
        assert_eq!(macs.len(), 300);
    }

    #[test]
    fn lease_csv_is_kea_memfile() {
        let csv = lease_csv(&clients(2, Ipv4Addr::new(10, 0, 0, 1)), 1, 86400, 1_900_000_000);
        assert_eq!(
            csv,
            "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
             10.0.0.1,02:4c:0a:00:00:01,,86400,1900000000,1,0,0,,0,\n\
             10.0.0.2,02:4c:0a:00:00:02,,86400,1900000000,1,0,0,,0,\n"
        );
    }

    #[test]
    fn renew_frame_is_a_renewing_request_with_valid_checksums() {
        let c = client();
        let f = renew_frame(&c, &SERVER, 0xdead_beef);
        assert_eq!(f.len(), FRAME_LEN);
        assert_eq!((&f[0..6], &f[6..12], word(&f, 12)), (&SERVER.mac[..], &c.mac[..], 0x0800));
        assert_eq!(checksum(&f[IP..UDP], 0), 0, "IP header sums to zero with its checksum");
        assert_eq!(usize::from(word(&f, IP + 2)), FRAME_LEN - IP);
        assert_eq!((&f[IP + 12..IP + 16], &f[IP + 16..IP + 20]), (&[192, 168, 64, 1][..], &[192, 168, 50, 2][..]));
        assert_eq!((word(&f, UDP), word(&f, UDP + 2), usize::from(word(&f, UDP + 4))), (68, 67, FRAME_LEN - UDP));
        assert_eq!(word(&f, UDP + 6), udp_checksum(&f));
        assert_eq!(&f[BOOTP..BOOTP + 8], &[1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&f[CIADDR..CIADDR + 4], &[192, 168, 64, 1], "ciaddr: RENEWING");
        assert_eq!(&f[YIADDR..CHADDR], &[0; 12], "yiaddr, siaddr, giaddr zero: not relayed");
        assert_eq!(&f[CHADDR..CHADDR + 16], &[2, 0x4c, 192, 168, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let opts = &f[OPTIONS..];
        assert_eq!(option(opts, 53), Some(&[3][..]), "DHCPREQUEST");
        assert_eq!(option(opts, 55), Some(&PARAMS[..]));
        assert_eq!((option(opts, 50), option(opts, 54)), (None, None), "no requested address or server id");
        // dhcproto-free cross-check: the request parses back as our own.
        let Parsed::NotReply = parse_reply(&f) else { panic!("68→67 is not a reply") };
    }

    #[test]
    fn set_xid_matches_a_full_recompute() {
        let mut f = renew_frame(&client(), &SERVER, 0);
        for xid in [1u32, 0xffff_ffff, 0x8000_0000, 0x0001_0000, 0x1234_5678, 0, 0xfffe_0001] {
            set_xid(&mut f, xid);
            assert_eq!(f, renew_frame(&client(), &SERVER, xid), "xid {xid:#x}");
        }
    }

    #[test]
    fn an_ack_for_a_sent_xid_is_counted_once_by_seq() {
        let cs = clients(3, Ipv4Addr::new(192, 168, 64, 1));
        let base = 1000;
        // Request 4 went to client 4 % 3 = 1.
        let req = renew_frame(&cs[1], &SERVER, base + 4);
        let ack = answer(&req, 5, cs[1].addr);
        let Parsed::Reply(r) = parse_reply(&ack) else { panic!() };
        assert_eq!((r.kind, r.xid, r.yiaddr, r.ciaddr), (Kind::Ack, base + 4, cs[1].addr, cs[1].addr));
        assert_eq!(judge(&r, base, 5, &cs), Verdict::Ack(4));
        assert_eq!(judge(&r, base, 4, &cs), Verdict::Invalid, "xid not sent yet");
        assert_eq!(judge(&r, base + 1, 5, &cs), Verdict::Invalid, "xid of another client");
    }

    #[test]
    fn wrong_acks_naks_and_echoes() {
        let cs = clients(2, Ipv4Addr::new(192, 168, 64, 1));
        let req = renew_frame(&cs[0], &SERVER, 7);
        let judged = |f: &[u8]| match parse_reply(f) {
            Parsed::Reply(r) => judge(&r, 7, 1, &cs),
            Parsed::Malformed => Verdict::Invalid,
            Parsed::NotReply => panic!("not a reply"),
        };
        assert_eq!(judged(&answer(&req, 5, cs[1].addr)), Verdict::Invalid, "yiaddr is not the lease");
        assert_eq!(judged(&answer(&req, 2, cs[0].addr)), Verdict::Invalid, "an OFFER");
        assert_eq!(judged(&answer(&req, 6, Ipv4Addr::UNSPECIFIED)), Verdict::Nak(0));
        let mut other_mac = answer(&req, 5, cs[0].addr);
        other_mac[CHADDR + 5] ^= 1;
        assert_eq!(judged(&other_mac), Verdict::Invalid, "chaddr is not the client's");
        let mut no_cookie = answer(&req, 5, cs[0].addr);
        no_cookie[COOKIE] = 0;
        assert_eq!(parse_reply(&no_cookie), Parsed::Malformed);
        assert_eq!(parse_reply(&answer(&req, 5, cs[0].addr)[..OPTIONS]), Parsed::Malformed, "cut short");
        // The echo: the request with addresses and ports swapped, op 1.
        let mut echo = answer(&req, 3, Ipv4Addr::UNSPECIFIED);
        echo[BOOTP] = 1;
        assert_eq!(judged(&echo), Verdict::Echo(0));
        let mut arp = req.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse_reply(&arp), Parsed::NotReply);
    }

    #[test]
    fn options_walk_skips_pads_and_stops_at_end_or_truncation() {
        assert_eq!(option(&[0, 0, 53, 1, 5, 255], 53), Some(&[5][..]));
        assert_eq!(option(&[1, 4, 255, 255, 255, 0, 53, 1, 6], 53), Some(&[6][..]));
        assert_eq!(option(&[255, 53, 1, 5], 53), None);
        assert_eq!(option(&[53, 4, 5], 53), None);
        assert_eq!(option(&[53], 53), None);
    }

    #[test]
    fn stats_rates() {
        let s = Stats {
            sent: 1000,
            acked: 900,
            naks: 10,
            echoed: 0,
            sending: Duration::from_millis(500),
            ..Stats::default()
        };
        assert_eq!((s.acks_per_s(), s.sent_per_s(), s.unanswered()), (1800.0, 2000.0, 90));
        assert_eq!(Stats::default().acks_per_s(), 0.0);
    }
}
