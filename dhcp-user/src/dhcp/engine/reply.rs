//! Building replies: the header echoing the request, the options Kea
//! sends (configured, requested, basic, class and client-name ones), the
//! BOOTP form, and where a reply goes.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode, UnknownOption};

use super::*;

/// What a packet's classes add to a reply from `subnet` for address `a`.
#[derive(Debug, Default)]
pub(super) struct Extras {
    /// Class options Kea would send: codes no pool, subnet or shared
    /// network sets, the first class setting one winning.
    pub(super) options: OptionBytes,
    pub(super) next_server: Option<Ipv4Addr>,
    pub(super) server_hostname: Option<String>,
    pub(super) boot_file_name: Option<String>,
}

/// The required classes of the network, subnet and `a`'s pool evaluated
/// (Kea's `requiredClassify`), then what the classes add to the reply
/// (`buildCfgOptionList`, `setFixedFields`).
pub(super) fn extras(policy: &Policy, subnet: &SubnetPolicy, a: Option<Ipv4Addr>, cls: &Classification<'_>) -> Extras {
    let mut out = Extras::default();
    let Some(pkt) = cls.packet else { return out };
    if policy.classes.is_empty() {
        return out;
    }
    let pool = a.filter(|a| !a.is_unspecified()).and_then(|a| subnet.pool_of(a));
    let required: Vec<&str> =
        subnet.classes.required.iter().chain(pool.into_iter().flat_map(|p| p.classes.required.iter())).map(String::as_str).collect();
    let mut with_required;
    let classes = if required.is_empty() {
        &cls.classes
    } else {
        with_required = cls.classes.clone();
        classify::evaluate_required(&policy.classes, required, &pkt, &mut with_required);
        &with_required
    };
    let scoped = |c: &u8| subnet.classes.scoped_codes.contains(c) || pool.is_some_and(|p| p.classes.scoped_codes.contains(c));
    for def in classes.iter().filter_map(|c| policy.class(c)) {
        for (code, v) in def.options.iter().filter(|(c, _)| !scoped(c)) {
            out.options.entry(*code).or_insert_with(|| v.clone());
        }
        out.next_server = out.next_server.or(def.def.next_server);
        out.server_hostname = out.server_hostname.take().or_else(|| def.def.server_hostname.clone());
        out.boot_file_name = out.boot_file_name.take().or_else(|| def.def.boot_file_name.clone());
    }
    out
}

/// The `valid-lifetime` of the first class of the packet that sets one.
pub(super) fn class_valid(policy: &Policy, cls: &ClientClasses) -> Option<(u32, u32, u32)> {
    if policy.classes.is_empty() {
        return None;
    }
    cls.iter().find_map(|c| policy.class(c)?.def.valid_lifetime)
}

/// Boot fields a class sets override the subnet's (Kea's
/// `setFixedFields`, step 2).
pub(super) fn apply_fields(msg: &mut Message, e: &Extras) {
    if let Some(a) = e.next_server {
        msg.set_siaddr(a);
    }
    if let Some(n) = &e.server_hostname {
        msg.set_sname_str(n);
    }
    if let Some(f) = &e.boot_file_name {
        msg.set_fname_str(f);
    }
}

/// DHCP-only options Kea's `libdhcp_bootp.so` removes from a BOOTP reply.
pub(super) const DHCP_SPECIFIC_OPTIONS: [u8; 11] = [50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61];

/// The BOOTP form of a decision: the ACK without its DHCP-only options;
/// no reply where DHCP would NAK.
pub(super) fn bootp_reply(mut d: Decision) -> Decision {
    if let Some((msg, _)) = &mut d.reply {
        if msg.opts().msg_type() == Some(MessageType::Nak) {
            return Decision { reply: None, write: d.write, silence: Some(Silence::NotAuthoritative) };
        }
        for code in DHCP_SPECIFIC_OPTIONS {
            msg.opts_mut().remove(OptionCode::from(code));
        }
    }
    d
}

/// The bytes of a reply as sent: a BOOTP reply (no message type) is padded
/// to the 300 bytes of RFC 951's fixed format, as Kea pads it.
pub fn reply_bytes(reply: &Message) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
    use dhcproto::Encodable as _;
    let mut bytes = reply.to_vec()?;
    if reply.opts().msg_type().is_none() && bytes.len() < BOOTP_MIN_LEN {
        bytes.resize(BOOTP_MIN_LEN, 0);
    }
    Ok(bytes)
}

/// RFC 951: 236 fixed bytes and 64 of vendor extensions.
pub(super) const BOOTP_MIN_LEN: usize = 300;

/// The fixed part of any reply: BOOTREPLY echoing the request's identity.
pub(super) fn reply_header(req: &Inbound, subnet: &SubnetPolicy, kind: MessageType) -> Message {
    let m = &req.msg;
    let mut r = Message::new_with_id(
        m.xid(),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        subnet.next_server,
        m.giaddr(),
        m.chaddr(),
    );
    r.set_opcode(Opcode::BootReply);
    r.set_htype(HType::from(req.htype));
    r.set_hops(m.hops());
    r.set_flags(m.flags());
    // Kea's copyDefaultOptions: the relay agent information and the subnet
    // selection option go back unchanged, asked for or not.
    if let Some(rai) = req.relay_agent_info.as_deref().and_then(relay_agent_option) {
        r.opts_mut().insert(rai);
    }
    if let Some(sel) = m.opts().get(OptionCode::SubnetSelection) {
        r.opts_mut().insert(sel.clone());
    }
    if let Some(name) = &subnet.server_hostname {
        r.set_sname_str(name);
    }
    if let Some(file) = &subnet.boot_file_name {
        r.set_fname_str(file);
    }
    r.opts_mut().insert(DhcpOption::MessageType(kind));
    r
}

/// Option 82 from its payload, as the typed option: the encoder writes an
/// untyped 82 twice (once in code order, once last). Sub-options come out
/// in code order, as Kea packs the option it parsed.
pub(super) fn relay_agent_option(payload: &[u8]) -> Option<DhcpOption> {
    use dhcproto::Decodable as _;
    let info = dhcproto::v4::relay::RelayAgentInformation::decode(&mut dhcproto::Decoder::new(payload)).ok()?;
    Some(DhcpOption::RelayAgentInformation(info))
}

/// OFFER or ACK of `a`, with `timers`.
pub(super) fn grant(
    req: &Inbound,
    subnet: &SubnetPolicy,
    ctx: Ctx,
    a: Ipv4Addr,
    kind: MessageType,
    timers: crate::dhcp::policy::Timers,
    extras: &Extras,
) -> Message {
    let mut msg = reply_header(req, subnet, kind);
    msg.set_yiaddr(a);
    if kind == MessageType::Ack {
        msg.set_ciaddr(req.msg.ciaddr());
    }
    let client = client_key(req);
    // Kea sends the host's options and hostname whatever address it got.
    let reservation = reservation_of(subnet, &client);
    add_options(&mut msg, req, subnet, ctx, Some(timers), reservation, extras);
    apply_fields(&mut msg, extras);
    msg
}

pub(super) fn nak(req: &Inbound, subnet: &SubnetPolicy, ctx: Ctx, why: &str) -> Message {
    let mut msg = reply_header(req, subnet, MessageType::Nak);
    // A NAK carries no boot parameters; it goes where Kea sends it (see
    // `destination`), with the request's flags as Kea copies them.
    msg.set_siaddr(Ipv4Addr::UNSPECIFIED);
    msg.clear_sname();
    msg.clear_fname();
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(ctx.server_id));
    msg.opts_mut().insert(DhcpOption::Message(why.to_string()));
    if subnet.echo_client_id
        && let Some(id) = &req.client_id
    {
        msg.opts_mut().insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    msg
}

/// Options Kea always sends when configured, besides those requested
/// (its `appendBasicOptions`): a configured server identifier (option 54
/// in `option-data` at any level) replaces our address on the link.
pub(super) const BASIC_OPTIONS: [u8; 4] = [3, 6, 15, 54];

pub(super) fn add_options(
    msg: &mut Message,
    req: &Inbound,
    subnet: &SubnetPolicy,
    ctx: Ctx,
    timers: Option<crate::dhcp::policy::Timers>,
    reservation: Option<&Host>,
    extras: &Extras,
) {
    let opts = msg.opts_mut();
    if let Some(t) = timers {
        opts.insert(DhcpOption::AddressLeaseTime(t.valid));
        if let Some(t1) = t.t1 {
            opts.insert(DhcpOption::Renewal(t1));
        }
        if let Some(t2) = t.t2 {
            opts.insert(DhcpOption::Rebinding(t2));
        }
    }
    if subnet.echo_client_id
        && let Some(id) = &req.client_id
    {
        opts.insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    // Merge: subnet (already over global) < pool < reservation.
    let yiaddr = msg.yiaddr();
    let mut merged: OptionBytes = subnet.options.clone();
    if let Some(pool) = subnet.pool_of(yiaddr) {
        merged.extend(pool.options.iter().map(|(k, v)| (*k, v.clone())));
    }
    merged.extend(extras.options.iter().map(|(k, v)| (*k, v.clone())));
    if let Some(r) = reservation {
        merged.extend(r.options.iter().map(|(k, v)| (*k, v.clone())));
    }
    let opts = msg.opts_mut();
    // Kea's appendServerID: our address on the link, unless a server
    // identifier is configured for this client (added below).
    if !merged.contains_key(&54) {
        opts.insert(DhcpOption::ServerIdentifier(ctx.server_id));
    }
    // Kea gives every lease the subnet's own mask (a configured
    // subnet-mask only goes where there is no lease, e.g. DHCPINFORM).
    if timers.is_some() {
        opts.insert(DhcpOption::SubnetMask(subnet.mask()));
    }
    // A grant answers option 81 with Kea's name and flags (and then sends
    // no option 12); otherwise a reserved hostname goes in option 12.
    match (&req.fqdn, timers) {
        (Some(fqdn), Some(_)) => {
            let reserved = reservation.and_then(|r| r.hostname.as_deref());
            if let Some(ans) = client_name::answer(fqdn, reserved, &subnet.names, yiaddr) {
                opts.insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::ClientFQDN, ans.option.encode())));
            }
        }
        _ => {
            if let Some(name) = reservation.and_then(|r| r.hostname.as_ref()) {
                opts.insert(DhcpOption::Hostname(name.clone()));
            }
        }
    }
    // Kea's appendRequestedOptions: a configured option is added when the
    // client asks for it, it is always-send or basic, and the reply does
    // not carry that code yet (lease time, T1/T2, mask, server identifier,
    // message type and the echoes of 61, 82 and 118 are the server's).
    for (code, value) in &merged {
        let wanted =
            value.always_send || BASIC_OPTIONS.contains(code) || req.parameter_request_list.contains(code);
        if wanted && !opts.contains(OptionCode::from(*code)) {
            let opt = match code {
                82 => relay_agent_option(&value.data),
                _ => Some(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(*code), value.data.clone()))),
            };
            if let Some(opt) = opt {
                opts.insert(opt);
            }
        }
    }
}

/// RFC 2131 §4.1 destination of a reply.
/// Where a reply goes, in Kea 2.2's order (`adjustRemoteAddr`): an INFORM
/// to its ciaddr, else through its relay; anything relayed to the relay;
/// a client with a ciaddr to that address (a NAK too); a NAK otherwise by
/// broadcast; an OFFER/ACK by broadcast when the client asks, else to
/// chaddr at yiaddr.
pub(super) fn destination(req: &Inbound, reply: &Message, ctx: Ctx) -> Destination {
    let m = &req.msg;
    let chaddr = <[u8; 6]>::try_from(req.hwaddr.as_slice()).ok().filter(|_| req.htype == 1);
    let to_ciaddr = |ip: Ipv4Addr| match chaddr {
        Some(mac) if ctx.on_link => Destination::Chaddr { mac, ip },
        _ => Destination::Ciaddr(ip),
    };
    if req.kind == Kind::Inform && !m.ciaddr().is_unspecified() {
        return to_ciaddr(m.ciaddr());
    }
    if req.kind == Kind::Inform && m.giaddr().is_unspecified() && !req.source.is_unspecified() {
        return to_ciaddr(req.source);
    }
    if !m.giaddr().is_unspecified() {
        return Destination::Relay(m.giaddr());
    }
    if !m.ciaddr().is_unspecified() {
        return to_ciaddr(m.ciaddr());
    }
    let is_nak = reply.opts().msg_type() == Some(MessageType::Nak);
    match chaddr {
        Some(mac) if !is_nak && !m.flags().broadcast() && !reply.yiaddr().is_unspecified() => {
            Destination::Chaddr { mac, ip: reply.yiaddr() }
        }
        _ => Destination::Broadcast,
    }
}
