//! Ethernet / IPv4 / UDP framing for replies the kernel cannot route.
//!
//! RFC 2131 §4.1 asks the server to unicast an OFFER/ACK to a client's
//! hardware address and `yiaddr` before the client has configured that
//! address: no ARP entry exists and a UDP socket cannot do it. We build the
//! whole frame and send it on an `AF_PACKET` socket. The builder is pure so
//! that it is tested with golden bytes, and so the XDP path's replies can be
//! compared with it byte for byte.

use std::net::Ipv4Addr;

/// Ethernet header length (no VLAN tag).
pub const ETH_HLEN: usize = 14;
/// IPv4 header length without options.
pub const IPV4_HLEN: usize = 20;
/// UDP header length.
pub const UDP_HLEN: usize = 8;
/// TTL of replies; Kea and ISC dhcpd both use 64 on raw sockets... and so
/// do we, so traces look familiar.
pub const TTL: u8 = 64;

/// Where a frame goes at layers 2–4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAddrs {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC (the serving interface's).
    pub src_mac: [u8; 6],
    /// Source IPv4 (the server identifier).
    pub src_ip: Ipv4Addr,
    /// Destination IPv4.
    pub dst_ip: Ipv4Addr,
    /// Source UDP port (67).
    pub src_port: u16,
    /// Destination UDP port (68 to clients, 67 to relays).
    pub dst_port: u16,
}

/// Internet checksum (RFC 1071) over `data`, starting from `initial` (a
/// partial sum, e.g. of a pseudo-header). Returns the folded one's
/// complement, ready to store.
pub fn checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds Ethernet + IPv4 + UDP around `payload` (a DHCP message).
///
/// The IPv4 identification is 0 and DF is clear, like Kea's raw sockets;
/// the UDP checksum is computed (a zero checksum is legal for IPv4 but some
/// clients' filters drop it). A computed checksum of 0 is sent as 0xffff as
/// RFC 768 requires.
pub fn build(addrs: &FrameAddrs, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HLEN + payload.len();
    let ip_len = IPV4_HLEN + udp_len;
    let mut f = Vec::with_capacity(ETH_HLEN + ip_len);
    f.extend_from_slice(&addrs.dst_mac);
    f.extend_from_slice(&addrs.src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());

    let ip_start = f.len();
    f.push(0x45); // version 4, IHL 5
    f.push(0x10); // DSCP: low delay, as ISC and Kea mark DHCP
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // id 0, no fragmentation flags
    f.push(TTL);
    f.push(17); // UDP
    f.extend_from_slice(&[0, 0]); // checksum, filled below
    f.extend_from_slice(&addrs.src_ip.octets());
    f.extend_from_slice(&addrs.dst_ip.octets());
    let ip_sum = checksum(0, &f[ip_start..ip_start + IPV4_HLEN]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());

    let udp_start = f.len();
    f.extend_from_slice(&addrs.src_port.to_be_bytes());
    f.extend_from_slice(&addrs.dst_port.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let sum = checksum(pseudo_header_sum(addrs.src_ip, addrs.dst_ip, udp_len as u16), &f[udp_start..]);
    let sum = if sum == 0 { 0xffff } else { sum };
    f[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Partial sum of the UDP/IPv4 pseudo-header.
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u32::from(u16::from_be_bytes([s[0], s[1]]))
        + u32::from(u16::from_be_bytes([s[2], s[3]]))
        + u32::from(u16::from_be_bytes([d[0], d[1]]))
        + u32::from(u16::from_be_bytes([d[2], d[3]]))
        + 17
        + u32::from(udp_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 §3: sum 0xddf2, checksum !0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(0, &data), !0xddf2);
    }

    #[test]
    fn checksums_verify_to_zero() {
        let addrs = FrameAddrs {
            dst_mac: [2, 0, 0, 0, 0, 3],
            src_mac: [2, 0, 0, 0, 0, 0xaa],
            src_ip: Ipv4Addr::new(192, 168, 50, 2),
            dst_ip: Ipv4Addr::new(192, 168, 50, 33),
            src_port: 67,
            dst_port: 68,
        };
        for len in [0usize, 1, 300, 301] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let f = build(&addrs, &payload);
            assert_eq!(f.len(), ETH_HLEN + IPV4_HLEN + UDP_HLEN + len);
            // A header with its checksum in place sums to zero.
            assert_eq!(checksum(0, &f[ETH_HLEN..ETH_HLEN + IPV4_HLEN]), 0);
            let udp = &f[ETH_HLEN + IPV4_HLEN..];
            assert_eq!(checksum(pseudo_header_sum(addrs.src_ip, addrs.dst_ip, udp.len() as u16), udp), 0);
            assert_eq!(&f[0..6], &addrs.dst_mac);
            assert_eq!(&f[ETH_HLEN + 12..ETH_HLEN + 16], &[192, 168, 50, 2]);
        }
    }

    #[test]
    fn golden_header_bytes() {
        let addrs = FrameAddrs {
            dst_mac: [0xff; 6],
            src_mac: [2, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(10, 0, 0, 1),
            dst_ip: Ipv4Addr::BROADCAST,
            src_port: 67,
            dst_port: 68,
        };
        let f = build(&addrs, &[0u8; 4]);
        assert_eq!(
            &f[ETH_HLEN..ETH_HLEN + IPV4_HLEN],
            &[0x45, 0x10, 0, 32, 0, 0, 0, 0, 64, 17, 0x70, 0xbd, 10, 0, 0, 1, 255, 255, 255, 255]
        );
        assert_eq!(&f[ETH_HLEN + IPV4_HLEN..ETH_HLEN + IPV4_HLEN + 6], &[0, 67, 0, 68, 0, 12]);
    }
}
