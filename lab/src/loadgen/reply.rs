//! Reading and judging what comes back: pure functions on bytes, so every
//! case an answer can get wrong is unit-tested without a network.

use std::net::Ipv4Addr;

use super::{Client, ETH_P_IP, IP, MAGIC, UDP, frame::word};

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
pub(super) fn option(mut opts: &[u8], code: u8) -> Option<&[u8]> {
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
