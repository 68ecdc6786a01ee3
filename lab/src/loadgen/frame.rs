//! The request frame: built once per client, then only its xid patched
//! per send, so the checksum code lives here apart from the send loop.

use super::{BOOTP, CHADDR, CIADDR, COOKIE, Client, ETH_P_IP, FRAME_LEN, IP, MAGIC, OPTIONS, Server, UDP, XID};

/// What a renewing dhclient asks for that every server here answers from
/// the subnet's options: mask, routers, DNS, domain name.
pub(super) const PARAMS: [u8; 4] = [1, 3, 6, 15];

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

pub(super) fn word(b: &[u8], at: usize) -> u16 {
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
pub(super) fn checksum(data: &[u8], initial: u32) -> u16 {
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
pub(super) fn udp_checksum(frame: &[u8]) -> u16 {
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
