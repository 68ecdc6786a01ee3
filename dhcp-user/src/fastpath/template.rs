//! A subnet's reply template: the engine's own ACK to a synthetic
//! renewal, split where the kernel writes the requester's client-id. Pure,
//! apart from the map writer, so it is unit-tested without root.

use std::{collections::BTreeSet, net::Ipv4Addr};

use dhcp_common::fastpath::{CID_PASS_ANY, MAX_HEAD, MAX_TAIL, SubnetReply, word_sum};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use super::{PROBE_MAC, is_link};
use crate::{
    dhcp::{
        engine::{self, Allocator, Ctx, Held, HeldState, LeaseView},
        inbound,
        policy::{Policy, SubnetPolicy},
    },
    net::Interface,
};

/// The interface a subnet is served on, as the daemon selects it for
/// directly connected clients.
pub fn serving_interface<'a>(subnet: &SubnetPolicy, ifaces: &'a [Interface]) -> Option<&'a Interface> {
    ifaces.iter().find(|i| subnet.interface.as_deref() == Some(i.name.as_str())).or_else(|| {
        ifaces.iter().find(|i| subnet.interface.is_none() && i.addrs.iter().any(|(a, _)| subnet.contains(*a)))
    })
}

struct OneLease(Held);

impl LeaseView for OneLease {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        (a == self.0.address).then(|| self.0.clone())
    }
    fn by_hwaddr(&self, _: u32, hw: &[u8]) -> Option<Held> {
        (hw == self.0.hwaddr).then(|| self.0.clone())
    }
    fn by_client_id(&self, _: u32, _: &[u8]) -> Option<Held> {
        None
    }
}

/// The ACK the engine sends to a renewing client of `subnet` (no client-id,
/// no parameter request list), received on `iface`.
pub fn probe_ack(policy: &Policy, subnet: &SubnetPolicy, iface: &Interface, now: u64) -> Option<Message> {
    let server_id = iface.primary_ipv4()?;
    let addr = subnet.pools.first()?.start;
    let mut m = Message::new(addr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &PROBE_MAC);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    let req = inbound::classify(&m.to_vec().ok()?).ok()?;
    let held = Held {
        address: addr,
        subnet_id: subnet.id,
        hwaddr: PROBE_MAC.to_vec(),
        client_id: None,
        expire: now + 3600,
        // Never reusable under lease caching: a template must grant a
        // full lease (subnets with caching are answered by the daemon).
        valid_lifetime: 0,
        hostname: String::new(),
        state: HeldState::Active,
    };
    let d = engine::decide(&req, Some(subnet), policy, &OneLease(held), &mut Allocator::default(), Ctx { now, server_id, on_link: true });
    let (msg, _) = d.reply?;
    (msg.opts().msg_type() == Some(MessageType::Ack)).then_some(msg)
}

/// Splits encoded options at code 61: (codes below, codes above + END).
/// A client-id echo (the probe's own, when probed with one) is dropped:
/// the kernel inserts the requester's there.
pub(super) fn split_options(opts: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1,
            255 => return Some((head, opts[i..].to_vec())),
            code => {
                let len = *opts.get(i + 1)? as usize;
                let option = opts.get(i..i + 2 + len)?;
                if code > 61 {
                    return Some((head, opts[i..].to_vec()));
                }
                if code != 61 {
                    head.extend_from_slice(option);
                }
                i += 2 + len;
            }
        }
    }
    None
}

/// Why a subnet (or a reservation) gets no template (served by the daemon
/// only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotEligible {
    /// No interface of ours is on the subnet (for requests received
    /// directly) or no serving interface at all.
    NoInterface,
    /// Pools override options: the reply depends on the address.
    PoolOptions,
    /// Boot fields (sname/file) are configured.
    BootFields,
    /// No pool to probe, or the engine would not ACK the probe.
    NoProbe,
    /// The options do not fit the kernel's buffer.
    TooLarge,
    /// Lease caching (`cache-threshold`/`cache-max-age`): a renewal may be
    /// answered with the lease as it stands, which the kernel cannot judge.
    LeaseCaching,
    /// Client classes may change the reply: the subnet (or its link) is
    /// restricted to a class, or a class that can apply here sets options,
    /// boot fields or a lifetime, or a `DROP` class exists. The kernel
    /// cannot evaluate classes ([`Policy::class_dependent`]).
    Classes,
    /// `libdhcp_flex_option.so` edits replies by expressions over each
    /// query, which the kernel cannot evaluate.
    FlexOption,
}

impl NotEligible {
    /// Stable label for logs, `/metrics` and the status page.
    pub const fn label(&self) -> &'static str {
        match self {
            NotEligible::NoInterface => "no_interface",
            NotEligible::PoolOptions => "pool_options",
            NotEligible::BootFields => "boot_fields",
            NotEligible::NoProbe => "no_probe",
            NotEligible::TooLarge => "too_large",
            NotEligible::LeaseCaching => "lease_caching",
            NotEligible::Classes => "classes",
            NotEligible::FlexOption => "flex_option",
        }
    }
}

/// The kernel template of `subnet` for requests received on `iface`, with
/// HA scope bits `serving`
/// ([`SubnetServing::bits`](super::SubnetServing::bits)), or why it has none.
pub fn subnet_reply(
    policy: &Policy,
    subnet: &SubnetPolicy,
    iface: &Interface,
    serving: u32,
    now: u64,
) -> Result<SubnetReply, NotEligible> {
    if subnet.pools.iter().any(|p| !p.options.is_empty() && p.options != subnet.options) {
        return Err(NotEligible::PoolOptions);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    if subnet.cache.threshold.is_some() || subnet.cache.max_age.is_some() {
        return Err(NotEligible::LeaseCaching);
    }
    if policy.class_dependent(subnet) {
        return Err(NotEligible::Classes);
    }
    if !policy.flex.is_empty() {
        return Err(NotEligible::FlexOption);
    }
    let ack = probe_ack(policy, subnet, iface, now).ok_or(NotEligible::NoProbe)?;
    // Option 12 is only sent to reserved clients, who are not in the map.
    let may_add = subnet.options.keys().chain(subnet.by_hwaddr.values().flat_map(|r| r.options.keys()));
    let mut r = reply_template(&ack, subnet, iface, serving, may_add.copied())?;
    r.link = u32::from(is_link(policy, subnet, iface));
    // A client-id reservation's client renewing a dynamic lease is moved
    // by the daemon; the kernel finds it in the reservation map first,
    // except off the link without a relay. [`MapSync`] adds
    // CID_PASS_MISSING when some are not in the map.
    r.cid_pass = if subnet.client_id_selects_hosts() { CID_PASS_ANY } else { 0 };
    Ok(r)
}

/// The kernel template of the engine's reply `msg`: its options split at
/// code 61 (where the client-id echo goes) with their checksum sums, and a
/// pass bit for every code in `may_add` the reply lacks (a client asking
/// for one of those gets a different reply from the daemon).
pub(super) fn reply_template(
    msg: &Message,
    subnet: &SubnetPolicy,
    iface: &Interface,
    serving: u32,
    may_add: impl Iterator<Item = u8>,
) -> Result<SubnetReply, NotEligible> {
    let bytes = msg.to_vec().map_err(|_| NotEligible::NoProbe)?;
    let (head, tail) = split_options(&bytes[inbound::MIN_LEN..]).ok_or(NotEligible::NoProbe)?;
    if head.is_empty() || head.len() > MAX_HEAD || tail.len() > MAX_TAIL {
        return Err(NotEligible::TooLarge);
    }
    let sent: BTreeSet<u8> = msg.opts().iter().map(|(c, _)| u8::from(*c)).collect();
    let mut prl_pass = [0u8; 32];
    for code in may_add.filter(|c| !sent.contains(c)) {
        prl_pass[usize::from(code >> 3)] |= 1 << (code & 7);
    }
    let mut head_bytes = [0u8; MAX_HEAD];
    head_bytes[..head.len()].copy_from_slice(&head);
    let mut tail_bytes = [0u8; MAX_TAIL];
    tail_bytes[..tail.len()].copy_from_slice(&tail);
    Ok(SubnetReply {
        ifindex: iface.index,
        serving,
        server_ip: iface.primary_ipv4().map(|a| a.octets()).unwrap_or_default(),
        server_mac: iface.mac,
        _pad_mac: [0; 2],
        next_server: subnet.next_server.octets(),
        lease_time: subnet.lifetimes.lease_times(None).valid,
        match_client_id: u32::from(subnet.match_client_id),
        echo_client_id: u32::from(subnet.echo_client_id),
        head_len: head.len() as u32,
        tail_len: tail.len() as u32,
        head_sum: word_sum(&head),
        tail_sum: word_sum(&tail),
        link: 0,
        cid_pass: 0,
        prl_pass,
        head: head_bytes,
        tail: tail_bytes,
    })
}
