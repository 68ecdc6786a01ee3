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

mod driver;
mod frame;
mod reply;
mod setup;
mod socket;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

pub use driver::{Options, Pace, Stats, run};
pub use frame::{renew_frame, set_xid};
pub use reply::{Kind, Parsed, Reply, Verdict, judge, parse_reply};
pub use setup::{make_reachable, prepare_client, server_of};

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
const ETH_P_IP: u16 = 0x0800;

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
