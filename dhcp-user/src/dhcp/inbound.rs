//! From received bytes to a request the engine can decide on — or to a
//! named reason for dropping it. Every rejected packet gets exactly one
//! [`DropReason`], which the server counts, so an operator can tell "clients
//! sending garbage" from "relay misconfigured" from "not for us".

use std::net::Ipv4Addr;

use dhcproto::{
    Decodable as _,
    v4::{DhcpOption, Message, MessageType, Opcode, OptionCode},
};

/// Smallest BOOTP message: fixed header (236) + magic cookie (4).
pub const MIN_LEN: usize = 240;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Why a packet was dropped before any decision. The label is used in
/// logs and as the `reason` label of the drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than a BOOTP header plus magic cookie.
    Truncated,
    /// `op` is not BOOTREQUEST (a server or relay reply reached port 67).
    NotRequest,
    /// `hlen` larger than the 16-byte chaddr field, or zero for Ethernet.
    BadHardwareLength,
    /// No DHCP magic cookie: plain BOOTP, which we do not serve.
    NoMagicCookie,
    /// An option's length runs past the packet or its value is invalid.
    BadOption,
    /// No option 53: not a DHCP message.
    NoMessageType,
    /// A message type a server never receives (OFFER, ACK, NAK, …).
    UnexpectedMessageType,
    /// Neither a hardware address (`hlen` 0) nor a client identifier:
    /// nothing names the client, so no lease could be stored for it (Kea's
    /// `sanityCheck` drops it as an RFC violation). Found by fuzzing.
    NoIdentifier,
}

impl DropReason {
    /// Every reason, for exporting zero counters.
    pub const ALL: [DropReason; 8] = [
        DropReason::Truncated,
        DropReason::NotRequest,
        DropReason::BadHardwareLength,
        DropReason::NoMagicCookie,
        DropReason::BadOption,
        DropReason::NoMessageType,
        DropReason::UnexpectedMessageType,
        DropReason::NoIdentifier,
    ];

    /// Stable snake_case label.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotRequest => "not_request",
            DropReason::BadHardwareLength => "bad_hardware_length",
            DropReason::NoMagicCookie => "no_magic_cookie",
            DropReason::BadOption => "bad_option",
            DropReason::NoMessageType => "no_message_type",
            DropReason::UnexpectedMessageType => "unexpected_message_type",
            DropReason::NoIdentifier => "no_identifier",
        }
    }
}

/// The client-to-server message types we act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// DHCPDISCOVER.
    Discover,
    /// DHCPREQUEST.
    Request,
    /// DHCPDECLINE.
    Decline,
    /// DHCPRELEASE.
    Release,
    /// DHCPINFORM.
    Inform,
}

/// A well-formed client request with the fields the engine looks at
/// already extracted.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The decoded message (kept to echo fields such as xid and flags).
    pub msg: Message,
    /// What the client asks for.
    pub kind: Kind,
    /// Hardware type from `htype`.
    pub htype: u8,
    /// Client hardware address: the first `hlen` bytes of chaddr.
    pub hwaddr: Vec<u8>,
    /// Option 61, if sent.
    pub client_id: Option<Vec<u8>>,
    /// Option 50, if sent.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54, if sent.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55, in the client's order.
    pub parameter_request_list: Vec<u8>,
    /// Option 12, if sent.
    pub hostname: Option<String>,
    /// Option 81 (client FQDN), if sent ([`super::client_name`]).
    pub fqdn: Option<super::client_name::ClientFqdn>,
    /// A BOOTP request (no option 53), taken as a DHCPREQUEST the way Kea's
    /// `libdhcp_bootp.so` does.
    pub bootp: bool,
    /// IP source address of the datagram (0.0.0.0 until the receiving
    /// socket says otherwise, see [`Inbound::from_source`]): where Kea
    /// answers an INFORM that carries no ciaddr.
    pub source: Ipv4Addr,
    /// Option 82 as received (code and length stripped), when non-empty:
    /// replies echo it byte for byte (RFC 3046 §2.2, as Kea does).
    pub relay_agent_info: Option<Vec<u8>>,
    /// The datagram as received: what client class tests read.
    pub raw: Vec<u8>,
}

/// Validates and decodes one UDP payload received on port 67.
pub fn classify(bytes: &[u8]) -> Result<Inbound, DropReason> {
    classify_as(bytes, false)
}

/// [`classify`] for a server that answers BOOTP (`libdhcp_bootp.so`): a
/// BOOTREQUEST without a message type is a BOOTP request, handled as a
/// DHCPREQUEST.
pub fn classify_bootp(bytes: &[u8]) -> Result<Inbound, DropReason> {
    classify_as(bytes, true)
}

fn classify_as(bytes: &[u8], bootp: bool) -> Result<Inbound, DropReason> {
    if bytes.len() < MIN_LEN {
        return Err(DropReason::Truncated);
    }
    if bytes[0] != 1 {
        return Err(DropReason::NotRequest);
    }
    let (htype, hlen) = (bytes[1], bytes[2] as usize);
    if hlen > 16 || (htype == 1 && hlen != 6) {
        return Err(DropReason::BadHardwareLength);
    }
    if bytes[236..240] != MAGIC_COOKIE {
        return Err(DropReason::NoMagicCookie);
    }
    check_option_framing(&bytes[MIN_LEN..])?;
    let msg = decode(bytes)?;
    if msg.opcode() != Opcode::BootRequest {
        return Err(DropReason::NotRequest);
    }
    let is_bootp = bootp && msg.opts().msg_type().is_none();
    let kind = match msg.opts().msg_type() {
        None if bootp => Kind::Request,
        None => return Err(DropReason::NoMessageType),
        Some(MessageType::Discover) => Kind::Discover,
        Some(MessageType::Request) => Kind::Request,
        Some(MessageType::Decline) => Kind::Decline,
        Some(MessageType::Release) => Kind::Release,
        Some(MessageType::Inform) => Kind::Inform,
        Some(_) => return Err(DropReason::UnexpectedMessageType),
    };
    let hwaddr = bytes[28..28 + hlen].to_vec();
    let opts = msg.opts();
    let client_id = match opts.get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => Some(id.clone()),
        Some(DhcpOption::ClientIdentifier(_)) => return Err(DropReason::BadOption),
        _ => None,
    };
    if hwaddr.is_empty() && client_id.is_none() {
        return Err(DropReason::NoIdentifier);
    }
    let requested_ip = match opts.get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    };
    let server_id = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    let parameter_request_list = match opts.get(OptionCode::ParameterRequestList) {
        Some(DhcpOption::ParameterRequestList(codes)) => codes.iter().map(|c| u8::from(*c)).collect(),
        _ => Vec::new(),
    };
    // Kea takes any bytes as a host name; one that is not UTF-8 reaches
    // the engine with the odd bytes replaced.
    let hostname = match opts.get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => Some(h.clone()),
        _ => raw_option(&bytes[MIN_LEN..], 12).map(|v| String::from_utf8_lossy(v).into_owned()),
    };
    let relay_agent_info = raw_option(&bytes[MIN_LEN..], 82)
        .filter(|v| !v.is_empty())
        .map(<[u8]>::to_vec);
    // Kea drops a packet whose option 81 does not unpack.
    let fqdn = raw_option(&bytes[MIN_LEN..], 81)
        .map(super::client_name::ClientFqdn::parse)
        .transpose()
        .map_err(|_| DropReason::BadOption)?;
    Ok(Inbound {
        msg,
        kind,
        htype,
        hwaddr,
        client_id,
        requested_ip,
        server_id,
        parameter_request_list,
        hostname,
        fqdn,
        bootp: is_bootp,
        source: Ipv4Addr::UNSPECIFIED,
        relay_agent_info,
        raw: bytes.to_vec(),
    })
}

impl Inbound {
    /// The request as received from IP source `source`.
    pub fn from_source(mut self, source: Ipv4Addr) -> Self {
        self.source = source;
        self
    }

    /// The relay's server identifier override (RFC 5107, sub-option 82.11).
    pub fn server_id_override(&self) -> Option<Ipv4Addr> {
        let v = raw_option(self.relay_agent_info.as_deref()?, 11)?;
        <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
    }

    /// The circuit-id sub-option (82.1) of the relay agent information.
    pub fn circuit_id(&self) -> Option<&[u8]> {
        raw_option(self.relay_agent_info.as_deref()?, 1)
    }
}

/// The message as dhcproto reads it, with every option present. dhcproto
/// stops reading options, silently, at the first one it cannot decode,
/// which would lose the message type or client-id behind it. Kea takes any
/// bytes in a text option, so one that is not UTF-8 is blanked (PAD) for
/// dhcproto and read raw where needed, as are options 81 and 82, which the
/// daemon reads raw with Kea's rules; any other option that does not
/// decode makes the packet malformed, as Kea drops it.
fn decode(bytes: &[u8]) -> Result<Message, DropReason> {
    let msg = Message::from_bytes(bytes).map_err(|_| DropReason::BadOption)?;
    let opts = &bytes[MIN_LEN..];
    if all_decoded(&msg, opts) {
        return Ok(msg);
    }
    let mut copy = bytes.to_vec();
    for tlv in options(opts) {
        let wire = &opts[tlv.at..][..tlv.wire_len()];
        let one = [wire, &[255]].concat();
        let blank = MIN_LEN + tlv.at..MIN_LEN + tlv.at + tlv.wire_len();
        match DhcpOption::decode(&mut dhcproto::Decoder::new(&one)) {
            Ok(_) => {}
            // Read raw by the daemon itself, with Kea's rules (a partial
            // FQDN name, relay sub-options): dhcproto's view does not count.
            Err(_) if matches!(tlv.code, 81 | 82) => copy[blank].fill(0),
            Err(dhcproto::error::DecodeError::Utf8Error(_)) => copy[blank].fill(0),
            Err(_) => return Err(DropReason::BadOption),
        }
    }
    Message::from_bytes(&copy).map_err(|_| DropReason::BadOption)
}

/// Whether dhcproto read the options field `opts` to its end: it stops at
/// the first option it cannot decode, so then the last one is missing
/// (or is one it files under another code, like 37: checked the slow way).
fn all_decoded(msg: &Message, opts: &[u8]) -> bool {
    options(opts).last().is_none_or(|tlv| msg.opts().get(OptionCode::from(tlv.code)).is_some())
}

/// One option of an options field: its code, its value and where its code
/// byte sits in the field (the offset lets a caller blank it in a copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// Offset of the code byte from the start of the options field.
    pub at: usize,
    /// The option code (never PAD or END: those are framing, not options).
    pub code: u8,
    /// The value, exactly `length` bytes.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// The option's bytes on the wire: code, length and value.
    pub(crate) fn wire_len(&self) -> usize {
        2 + self.value.len()
    }
}

/// An option whose length byte, or value, runs past the end of the field;
/// the walk ends there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overrun;

/// The one walk over DHCP options that every reader in the daemon shares
/// (framing check, raw reads of 12/81/82 and relay sub-options, dhcproto's
/// fallback, the lost-race rewrite), so they cannot disagree on where an
/// option starts: PAD skipped, END or the field's end stops, and an option
/// cut off by the field's end yields one [`Overrun`] and stops.
pub(crate) fn tlvs(mut opts: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, Overrun>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        loop {
            match opts {
                [0, rest @ ..] => {
                    opts = rest;
                    at += 1;
                }
                [255, ..] | [] => return None,
                [code, len, rest @ ..] if rest.len() >= usize::from(*len) => {
                    let (value, rest) = rest.split_at(usize::from(*len));
                    let tlv = Tlv { at, code: *code, value };
                    opts = rest;
                    at += tlv.wire_len();
                    return Some(Ok(tlv));
                }
                _ => {
                    opts = &[];
                    return Some(Err(Overrun));
                }
            }
        }
    })
}

/// The options of a field whose framing [`check_option_framing`] accepted.
fn options(opts: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    tlvs(opts).map_while(Result::ok)
}

/// The payload of the first option `code` in an options field whose
/// framing [`check_option_framing`] accepted.
fn raw_option(opts: &[u8], code: u8) -> Option<&[u8]> {
    options(opts).find(|t| t.code == code).map(|t| t.value)
}

/// Walks the TLV options after the magic cookie: every option's length must
/// stay inside the packet and fit its type
/// ([`dhcp_common::dhcp::option_shape`]: dhcproto reads those codes as
/// fixed-size values and, given another length, misreads the rest of the
/// packet; found by the proptest below). dhcproto stops quietly at a
/// cut-off option, which would hide truncation; we count it instead.
/// No END option is tolerated (many embedded clients omit it).
fn check_option_framing(opts: &[u8]) -> Result<(), DropReason> {
    for tlv in tlvs(opts) {
        let tlv = tlv.map_err(|Overrun| DropReason::BadOption)?;
        if !dhcp_common::dhcp::option_len_ok(tlv.code, tlv.value.len() as u8) {
            return Err(DropReason::BadOption);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::{Encodable as _, v4};
    use proptest::prelude::*;

    pub(crate) fn discover(mac: [u8; 6]) -> Vec<u8> {
        let mut m = Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
        m.opts_mut().insert(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 3]));
        m.opts_mut()
            .insert(DhcpOption::ParameterRequestList(vec![OptionCode::SubnetMask, OptionCode::Router]));
        m.to_vec().unwrap()
    }

    #[test]
    fn accepts_a_discover() {
        let b = discover([2, 0, 0, 0, 0, 3]);
        let i = classify(&b).unwrap();
        assert_eq!(i.kind, Kind::Discover);
        assert_eq!(i.hwaddr, vec![2, 0, 0, 0, 0, 3]);
        assert_eq!(i.client_id.as_deref(), Some(&[1, 2, 0, 0, 0, 0, 3][..]));
        assert_eq!(i.parameter_request_list, vec![1, 3]);
    }

    #[test]
    fn one_walk_skips_pads_stops_at_end_and_names_an_overrun_once() {
        let field = [0, 53, 1, 3, 0, 0, 50, 4, 10, 0, 0, 9, 255, 12, 1, b'x'];
        let got: Vec<_> = tlvs(&field).collect();
        assert_eq!(
            got,
            [
                Ok(Tlv { at: 1, code: 53, value: &[3][..] }),
                Ok(Tlv { at: 6, code: 50, value: &[10, 0, 0, 9][..] }),
            ]
        );
        // Cut inside a value, and cut after a code byte: the walk ends with
        // one overrun, and the readers that need a sound field refuse it.
        for cut in [&[53, 1, 3, 12, 5, b'a'][..], &[53, 1, 3, 12][..]] {
            let got: Vec<_> = tlvs(cut).collect();
            assert_eq!(got, [Ok(Tlv { at: 0, code: 53, value: &[3][..] }), Err(Overrun)]);
            assert_eq!(check_option_framing(cut), Err(DropReason::BadOption));
        }
        assert_eq!(raw_option(&field, 50), Some(&[10, 0, 0, 9][..]));
        assert_eq!(raw_option(&field, 12), None, "nothing after END is an option");
    }

    #[test]
    fn names_each_reason() {
        let good = discover([2, 0, 0, 0, 0, 3]);
        assert_eq!(classify(&good[..239]).unwrap_err(), DropReason::Truncated);
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(classify(&b).unwrap_err(), DropReason::NotRequest);
        let mut b = good.clone();
        b[2] = 17;
        assert_eq!(classify(&b).unwrap_err(), DropReason::BadHardwareLength);
        let mut b = good.clone();
        b[236] = 0;
        assert_eq!(classify(&b).unwrap_err(), DropReason::NoMagicCookie);
        // An option whose length runs past the end of the packet.
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 200, 1]);
        assert_eq!(classify(&b).unwrap_err(), DropReason::BadOption);
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[255]);
        assert_eq!(classify(&b).unwrap_err(), DropReason::NoMessageType);
        let mut b = good[..240].to_vec();
        b.extend_from_slice(&[53, 1, 2, 255]);
        assert_eq!(classify(&b).unwrap_err(), DropReason::UnexpectedMessageType);
    }

    /// Found by the `packet` fuzz target: a REQUEST with `hlen` 0 (not
    /// Ethernet) and no client-id was ACKed with a lease the store then
    /// refused. Kea drops such a packet before any decision; so do we.
    #[test]
    fn drops_a_client_with_no_identifier() {
        let mut b = discover([2, 0, 0, 0, 0, 3]);
        b[1] = 6; // IEEE 802: any hlen is allowed
        b[2] = 0;
        assert_eq!(classify(&b).unwrap().client_id.as_deref(), Some(&[1, 2, 0, 0, 0, 0, 3][..]), "client-id alone names it");
        let u = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new(u, u, u, u, &[2, 0, 0, 0, 0, 3]);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
        let mut b = m.to_vec().unwrap();
        b[1] = 6;
        b[2] = 0;
        assert_eq!(classify(&b).unwrap_err(), DropReason::NoIdentifier);
        assert_eq!(classify_bootp(&b).unwrap_err(), DropReason::NoIdentifier);
    }

    #[test]
    fn a_text_option_that_is_not_utf8_keeps_the_options_behind_it() {
        // Host name "m\xf5tante1" before the message type and client-id:
        // dhcproto alone stops at it and loses both; Kea takes the bytes.
        let mut b = discover([2, 0, 0, 0, 0, 9]);
        let opts = b.split_off(MIN_LEN);
        b.extend([12, 8, b'm', 0xf5, b't', b'a', b'n', b't', b'e', b'1']);
        b.extend(opts);
        let i = classify(&b).expect("accepted as Kea accepts it");
        assert_eq!(i.kind, Kind::Discover);
        assert_eq!(i.hostname.as_deref(), Some("m\u{fffd}tante1"));
        assert_eq!(i.raw, b, "the raw packet is kept as received");
    }

    #[test]
    fn an_option_that_does_not_unpack_is_a_bad_option_not_a_lost_one() {
        // Option 116 (disable SLAAC) takes 0 or 1: Kea drops the packet.
        let mut b = discover([2, 0, 0, 0, 0, 9]);
        let opts = b.split_off(MIN_LEN);
        b.extend([116, 1, 7]);
        b.extend(opts);
        assert_eq!(classify(&b).unwrap_err(), DropReason::BadOption);
        // A router list whose length is not a multiple of 4.
        let mut b = discover([2, 0, 0, 0, 0, 9]);
        let opts = b.split_off(MIN_LEN);
        b.extend([3, 5, 10, 0, 0, 1, 9]);
        b.extend(opts);
        assert_eq!(classify(&b).unwrap_err(), DropReason::BadOption);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        /// Random bytes never panic: they are accepted or get a reason.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = classify(&bytes);
        }

        /// A valid packet with random bytes overwritten never panics.
        #[test]
        fn mutated_packets_never_panic(pos in 0usize..400, val in any::<u8>(), cut in 0usize..400) {
            let mut b = discover([2, 0, 0, 0, 0, 9]);
            if pos < b.len() { b[pos] = val; }
            b.truncate(cut.max(1).min(b.len()));
            let _ = classify(&b);
        }
    }
}
