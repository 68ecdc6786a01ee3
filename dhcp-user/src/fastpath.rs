//! Keeping the kernel's copy in step with the daemon: the lease map, the
//! per-subnet reply templates, the clock offset, and the ring buffer of
//! renewals the kernel answered.
//!
//! The reply template of a subnet is produced by the engine itself — a
//! synthetic renewal is decided and encoded exactly as a real one would be
//! — so the kernel's ACK equals the daemon's byte for byte by construction,
//! and the unit tests check the split and the pass rules. Leases the kernel
//! could not answer identically (reserved clients, addresses reserved for
//! someone else, long client-ids, subnets with pool-level options or boot
//! fields) are left out of the map: those clients are served by the daemon.

use std::{collections::BTreeSet, net::Ipv4Addr};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use dhcp_common::fastpath::{
    EVENTS_MAP, LEASES_MAP, LeaseEntry, LeaseKey, MAX_CLIENT_ID, MAX_HEAD, MAX_TAIL, RenewEvent, SETTINGS_MAP,
    SUBNETS_MAP, Settings, SubnetReply, word_sum,
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType},
};

use crate::{
    dhcp::{
        engine::{self, Allocator, Ctx, Held, HeldState, LeaseView},
        inbound,
        policy::{Policy, SubnetPolicy},
    },
    leases::{Lease, LeaseState},
    net::Interface,
};

/// A hardware address no real client has (locally administered, all
/// bits set): the synthetic client of a template.
const PROBE_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xfe];

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
        state: HeldState::Active,
    };
    let d = engine::decide(&req, Some(subnet), policy, &OneLease(held), &mut Allocator::default(), Ctx { now, server_id });
    let (msg, _) = d.reply?;
    (msg.opts().msg_type() == Some(MessageType::Ack)).then_some(msg)
}

/// Splits encoded options at code 61: (codes below, codes above + END).
fn split_options(opts: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1,
            255 => return Some((opts[..i].to_vec(), opts[i..].to_vec())),
            code => {
                let len = *opts.get(i + 1)? as usize;
                if code > 61 {
                    return Some((opts[..i].to_vec(), opts[i..].to_vec()));
                }
                if code == 61 {
                    return None; // the probe sends no client-id: cannot happen
                }
                i += 2 + len;
            }
        }
    }
    None
}

/// Why a subnet gets no template (served by the daemon only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotEligible {
    /// No interface of ours is on the subnet.
    NoInterface,
    /// Pools override options: the reply depends on the address.
    PoolOptions,
    /// Boot fields (sname/file) are configured.
    BootFields,
    /// No pool to probe, or the engine would not ACK the probe.
    NoProbe,
    /// The options do not fit the kernel's buffer.
    TooLarge,
}

/// The kernel template of `subnet`, or why it has none.
pub fn subnet_reply(
    policy: &Policy,
    subnet: &SubnetPolicy,
    ifaces: &[Interface],
    serving: bool,
    now: u64,
) -> Result<SubnetReply, NotEligible> {
    let iface = serving_interface(subnet, ifaces).ok_or(NotEligible::NoInterface)?;
    if subnet.pools.iter().any(|p| !p.options.is_empty() && p.options != subnet.options) {
        return Err(NotEligible::PoolOptions);
    }
    if subnet.server_hostname.is_some() || subnet.boot_file_name.is_some() {
        return Err(NotEligible::BootFields);
    }
    let ack = probe_ack(policy, subnet, iface, now).ok_or(NotEligible::NoProbe)?;
    let bytes = ack.to_vec().map_err(|_| NotEligible::NoProbe)?;
    let (head, tail) = split_options(&bytes[inbound::MIN_LEN..]).ok_or(NotEligible::NoProbe)?;
    if head.is_empty() || head.len() > MAX_HEAD || tail.len() > MAX_TAIL {
        return Err(NotEligible::TooLarge);
    }
    let sent: BTreeSet<u8> = ack.opts().iter().map(|(c, _)| u8::from(*c)).collect();
    let mut prl_pass = [0u8; 32];
    for code in subnet.options.keys().chain(subnet.by_hwaddr.values().flat_map(|r| r.options.keys())) {
        if !sent.contains(code) {
            prl_pass[usize::from(code >> 3)] |= 1 << (code & 7);
        }
    }
    // Option 12 is only sent to reserved clients, who are not in the map.
    let mut head_bytes = [0u8; MAX_HEAD];
    head_bytes[..head.len()].copy_from_slice(&head);
    let mut tail_bytes = [0u8; MAX_TAIL];
    tail_bytes[..tail.len()].copy_from_slice(&tail);
    Ok(SubnetReply {
        ifindex: iface.index,
        serving: u32::from(serving),
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
        _pad: 0,
        prl_pass,
        head: head_bytes,
        tail: tail_bytes,
    })
}

/// The map entry of `lease`, or `None` when the kernel must not answer its
/// client (see the module docs).
pub fn lease_entry(policy: &Policy, lease: &Lease) -> Option<LeaseEntry> {
    if lease.state != LeaseState::Default {
        return None;
    }
    let subnet = policy.subnet(lease.subnet_id)?;
    let hw = lease.hwaddr.as_ref()?.bytes();
    let cid = lease.client_id.as_ref().map(|c| c.bytes()).unwrap_or_default();
    if hw.len() > 16 || cid.len() > MAX_CLIENT_ID {
        return None;
    }
    // A reserved client is steered by the daemon; a reserved address held
    // by someone else is NAKed by it.
    if subnet.reserved.contains_key(&lease.address)
        || subnet.by_hwaddr.contains_key(hw)
        || (!cid.is_empty() && subnet.by_client_id.contains_key(cid))
    {
        return None;
    }
    let mut e = LeaseEntry {
        expire: lease.expire,
        subnet_id: lease.subnet_id,
        hlen: hw.len() as u8,
        client_id_len: cid.len() as u8,
        _pad: [0; 2],
        hwaddr: [0; 16],
        client_id: [0; MAX_CLIENT_ID],
    };
    e.hwaddr[..hw.len()].copy_from_slice(hw);
    e.client_id[..cid.len()].copy_from_slice(cid);
    Some(e)
}

/// Unix time minus `CLOCK_BOOTTIME`, in seconds.
pub fn unix_minus_boot() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    crate::server::unix_now() as i64 - ts.tv_sec
}

/// Errors talking to the maps.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A map is missing from the object or has the wrong type.
    #[error("map {name}: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Cause.
        #[source]
        source: aya::maps::MapError,
    },
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> SyncError {
    move |source| SyncError::Map { name, source }
}

/// The one owner of the fast-path map handles.
pub struct MapSync {
    leases: BpfHashMap<MapData, LeaseKey, LeaseEntry>,
    subnets: BpfHashMap<MapData, u32, SubnetReply>,
    settings: Array<MapData, Settings>,
    /// Leases the map could not take (full); served by the daemon.
    pub skipped_full: u64,
}

impl MapSync {
    /// Takes the maps out of the loaded object; the ring buffer is returned
    /// separately for the drain task.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<(Self, RingBuf<MapData>), SyncError> {
        let missing = |name: &'static str| SyncError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        };
        let leases = BpfHashMap::try_from(ebpf.take_map(LEASES_MAP).ok_or_else(|| missing(LEASES_MAP))?)
            .map_err(map_err(LEASES_MAP))?;
        let subnets = BpfHashMap::try_from(ebpf.take_map(SUBNETS_MAP).ok_or_else(|| missing(SUBNETS_MAP))?)
            .map_err(map_err(SUBNETS_MAP))?;
        let settings = Array::try_from(ebpf.take_map(SETTINGS_MAP).ok_or_else(|| missing(SETTINGS_MAP))?)
            .map_err(map_err(SETTINGS_MAP))?;
        let events = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).ok_or_else(|| missing(EVENTS_MAP))?)
            .map_err(map_err(EVENTS_MAP))?;
        Ok((Self { leases, subnets, settings, skipped_full: 0 }, events))
    }

    /// Writes the clock offset (at start-up and periodically, in case the
    /// wall clock is stepped).
    pub fn set_clock(&mut self) -> Result<(), SyncError> {
        self.settings.set(0, Settings { unix_minus_boot: unix_minus_boot() }, 0).map_err(map_err(SETTINGS_MAP))
    }

    /// Replaces every subnet template (start-up, config reload, HA state
    /// change). Returns the subnets left to the daemon and why.
    pub fn install_subnets(
        &mut self,
        policy: &Policy,
        ifaces: &[Interface],
        serving: impl Fn(&SubnetPolicy) -> bool,
    ) -> Result<Vec<(u32, NotEligible)>, SyncError> {
        let now = crate::server::unix_now();
        let mut left = Vec::new();
        let keep: BTreeSet<u32> = policy.subnets.iter().map(|s| s.id).collect();
        let stale: Vec<u32> = self.subnets.keys().filter_map(Result::ok).filter(|k| !keep.contains(k)).collect();
        for k in stale {
            let _ = self.subnets.remove(&k);
        }
        for s in &policy.subnets {
            match subnet_reply(policy, s, ifaces, serving(s), now) {
                Ok(r) => self.subnets.insert(s.id, r, 0).map_err(map_err(SUBNETS_MAP))?,
                Err(why) => {
                    let _ = self.subnets.remove(&s.id);
                    left.push((s.id, why));
                }
            }
        }
        Ok(left)
    }

    /// Makes the map entry of `addr` match `lease` (present or gone).
    pub fn sync_lease(&mut self, policy: &Policy, addr: Ipv4Addr, lease: Option<&Lease>) {
        let key = LeaseKey { addr: addr.octets() };
        match lease.and_then(|l| lease_entry(policy, l)) {
            Some(e) => {
                if self.leases.insert(key, e, 0).is_err() {
                    self.skipped_full += 1;
                    let _ = self.leases.remove(&key);
                }
            }
            None => {
                let _ = self.leases.remove(&key);
            }
        }
    }

    /// Loads every lease (start-up, config reload): entries not in `leases`
    /// are removed.
    pub fn load_all(&mut self, policy: &Policy, leases: &[Lease]) {
        let want: BTreeSet<[u8; 4]> = leases.iter().map(|l| l.address.octets()).collect();
        let stale: Vec<LeaseKey> =
            self.leases.keys().filter_map(Result::ok).filter(|k| !want.contains(&k.addr)).collect();
        for k in stale {
            let _ = self.leases.remove(&k);
        }
        for l in leases {
            self.sync_lease(policy, l.address, Some(l));
        }
    }

    /// Every lease entry (for the consistency test and the status page).
    pub fn lease_entries(&self) -> Vec<(Ipv4Addr, LeaseEntry)> {
        self.leases.iter().filter_map(Result::ok).map(|(k, v)| (Ipv4Addr::from(k.addr), v)).collect()
    }
}

/// Decodes one ring-buffer record.
pub fn parse_event(bytes: &[u8]) -> Option<RenewEvent> {
    if bytes.len() < std::mem::size_of::<RenewEvent>() {
        return None;
    }
    // SAFETY: RenewEvent is Pod (any bytes valid); read_unaligned copes
    // with the ring buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RenewEvent>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config, glue};

    fn venus_policy() -> Policy {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../lab/venus/lobezno.json")).unwrap();
        glue::compile(&config::parse(&text, "lobezno.json").unwrap())
    }

    fn eth0() -> Interface {
        Interface { name: "eth0".into(), index: 7, mac: [2, 0, 0, 0, 0x50, 2], addrs: vec![(Ipv4Addr::new(192, 168, 50, 2), 24)] }
    }

    #[test]
    fn template_is_the_engines_ack_split_at_61() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let r = subnet_reply(&p, s, &[eth0()], true, 1_800_000_000).unwrap();
        assert_eq!((r.ifindex, r.serving, r.server_ip), (7, 1, [192, 168, 50, 2]));
        assert_eq!(r.lease_time, 60);
        let head = &r.head[..r.head_len as usize];
        let tail = &r.tail[..r.tail_len as usize];
        assert_eq!(r.head_sum, dhcp_common::fastpath::word_sum(head));
        assert_eq!(tail, &[255], "venus has no option above 61");
        // Walk the head: codes ascending, all below 61, message type ACK.
        let mut codes = Vec::new();
        let mut i = 0;
        while i < head.len() {
            codes.push(head[i]);
            if head[i] == 53 {
                assert_eq!(head[i + 2], 5);
            }
            i += 2 + head[i + 1] as usize;
        }
        assert_eq!(codes, [1, 3, 6, 15, 51, 53, 54, 58, 59]);
    }

    #[test]
    fn no_interface_or_boot_fields_means_no_template() {
        let p = venus_policy();
        let s = &p.subnets[0];
        let other = Interface { addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
        assert_eq!(subnet_reply(&p, s, &[other], true, 0).unwrap_err(), NotEligible::NoInterface);
        let mut s2 = s.clone();
        s2.boot_file_name = Some("pxelinux.0".into());
        assert_eq!(subnet_reply(&p, &s2, &[eth0()], true, 0).unwrap_err(), NotEligible::BootFields);
    }

    #[test]
    fn reserved_clients_and_addresses_stay_out_of_the_map() {
        use crate::leases::{ClientId, HwAddr};
        let p = venus_policy();
        let mk = |addr: [u8; 4], mac: [u8; 6]| {
            Lease::new(Ipv4Addr::from(addr), Some(HwAddr::ethernet(mac)), None, 1, 1_800_000_000, 60)
        };
        let dynamic = mk([192, 168, 50, 120], [2, 0, 0, 0, 0, 1]);
        let e = lease_entry(&p, &dynamic).unwrap();
        assert_eq!((e.hlen, e.subnet_id, e.expire), (6, 1, 1_800_000_060));
        assert_eq!(&e.hwaddr[..6], &[2, 0, 0, 0, 0, 1]);
        // mutante3 (reserved MAC) and its reserved address.
        assert!(lease_entry(&p, &mk([192, 168, 50, 33], [2, 0, 0, 0, 0, 3])).is_none());
        assert!(lease_entry(&p, &mk([192, 168, 50, 33], [2, 0, 0, 0, 0, 9])).is_none());
        // A long client-id, a declined lease, an unknown subnet.
        let mut long = dynamic.clone();
        long.client_id = Some(ClientId::new(vec![1; 40]).unwrap());
        assert!(lease_entry(&p, &long).is_none());
        let mut declined = dynamic.clone();
        declined.state = LeaseState::Declined;
        assert!(lease_entry(&p, &declined).is_none());
        let mut elsewhere = dynamic;
        elsewhere.subnet_id = 99;
        assert!(lease_entry(&p, &elsewhere).is_none());
    }

    #[test]
    fn prl_pass_marks_configured_options_not_sent_by_default() {
        let mut p = venus_policy();
        let ntp = crate::dhcp::policy::OptionValue { data: vec![192, 168, 50, 9], always_send: false };
        p.subnets[0].options.insert(42, ntp.clone());
        // Pools carry effective options: a subnet-level change shows there too.
        p.subnets[0].pools[0].options.insert(42, ntp);
        let r = subnet_reply(&p, &p.subnets[0], &[eth0()], true, 0).unwrap();
        let bit = |c: u8| r.prl_pass[usize::from(c >> 3)] & (1 << (c & 7)) != 0;
        assert!(bit(42), "NTP is only sent when requested: the kernel must pass such clients");
        assert!(!bit(3) && !bit(6) && !bit(15) && !bit(1), "basic options are always in the template");
    }
}
