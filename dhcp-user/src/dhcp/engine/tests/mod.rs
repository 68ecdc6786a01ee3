//! Tests of [`super`]: every rule on an in-memory lease view.
//!
//! This file holds what the groups share: the lease view ([`Store`]), the
//! venus policy, the packet builder ([`Pkt`]) and [`World`]; the tests are
//! grouped by the rules they exercise.

mod caching;
mod fqdn;
mod offers;
mod relay;
mod replies;
mod requests;
mod reservations;
mod shared_network;

use super::*;
use crate::dhcp::{
    inbound::classify,
    policy::{Lifetimes, OptionValue, Pool},
};
use dhcproto::{
    Encodable as _, v4,
    v4::{DhcpOption, Opcode, OptionCode, UnknownOption},
};
use std::collections::{BTreeMap, HashMap};

const NOW: u64 = 1_800_000_000;
const SID: Ipv4Addr = Ipv4Addr::new(192, 168, 50, 2);
const M3: [u8; 6] = [2, 0, 0, 0, 0, 3];
const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];

#[derive(Default)]
struct Store(BTreeMap<Ipv4Addr, Held>);

impl LeaseView for Store {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        self.0.get(&a).cloned()
    }
    fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
        self.0.values().find(|h| h.subnet_id == s && h.hwaddr == hw).cloned()
    }
    fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
        self.0.values().find(|h| h.subnet_id == s && h.client_id.as_deref() == Some(id)).cloned()
    }
}

impl Store {
    fn apply(&mut self, w: &LeaseWrite) {
        match w {
            LeaseWrite::Upsert(l) => {
                let state = l.state;
                self.0.insert(
                    l.address,
                    Held {
                        address: l.address,
                        subnet_id: l.subnet_id,
                        hwaddr: l.hwaddr.clone(),
                        client_id: l.client_id.clone(),
                        expire: l.expire,
                        valid_lifetime: l.valid_lifetime,
                        hostname: l.hostname.clone(),
                        state,
                    },
                );
            }
            LeaseWrite::Remove(a) => {
                self.0.remove(a);
            }
        }
    }
}

fn opt(data: &[u8]) -> OptionValue {
    OptionValue { data: data.to_vec(), always_send: false }
}

fn venus(pool_end: u8, authoritative: bool) -> Policy {
    let mut options = BTreeMap::new();
    options.insert(3, opt(&[192, 168, 50, 1]));
    options.insert(6, opt(&[192, 168, 50, 2, 192, 168, 50, 3]));
    options.insert(15, opt(b"venus.test"));
    options.insert(42, opt(&[192, 168, 50, 9])); // ntp: only when asked
    let r = Host {
        address: Some(Ipv4Addr::new(192, 168, 50, 33)),
        hostname: Some("mutante3".into()),
        options: BTreeMap::new(),
        classes: Vec::new(),
    };
    let reserved_in_pool =
        Host { address: Some(Ipv4Addr::new(192, 168, 50, 100)), hostname: None, options: BTreeMap::new(), classes: Vec::new() };
    let mut hosts = crate::dhcp::policy::HostTable::default();
    hosts.by_hwaddr.insert(M3.to_vec(), r);
    hosts.by_hwaddr.insert(vec![2, 0, 0, 0, 0, 0x99], reserved_in_pool);
    let reserved = hosts.by_hwaddr.values().filter_map(|r| Some((r.address?, ()))).collect();
    Policy {
        subnets: vec![SubnetPolicy {
            id: 1,
            network: Ipv4Addr::new(192, 168, 50, 0),
            prefix_len: 24,
            pools: vec![Pool {
                start: Ipv4Addr::new(192, 168, 50, 100),
                end: Ipv4Addr::new(192, 168, 50, pool_end),
                options: BTreeMap::new(),
                classes: Default::default(),
            }],
            options,
            by_hwaddr: HashMap::new(),
            by_client_id: HashMap::new(),
            hosts,
            global_hosts: None,
            identifiers: vec![crate::dhcp::policy::HostIdentifierType::HwAddress],
            reserved,
            lifetimes: Lifetimes {
                valid: 60,
                min_valid: 60,
                max_valid: 60,
                renew: Some(30),
                rebind: Some(45),
                calculate_tee_times: false,
                t1_percent: 0.5,
                t2_percent: 0.875,
            },
            authoritative,
            match_client_id: true,
            store_extended_info: false,
            echo_client_id: true,
            next_server: Ipv4Addr::UNSPECIFIED,
            server_hostname: None,
            boot_file_name: None,
            relay_addresses: vec![],
            interface: None,
            ha_server_name: None,
            shared_network: None,
            cache: Default::default(),
            names: Default::default(),
            classes: Default::default(),
            network_client_class: None,
        }],
        decline_probation_period: 86400,
        expired_leases: Default::default(),
        bootp: false,
        networks: Vec::new(),
        classes: Vec::new(),
        classify: false,
        flex: Default::default(),
        early_hosts: None,
    }
}

struct Pkt {
    kind: v4::MessageType,
    mac: [u8; 6],
    ciaddr: Ipv4Addr,
    giaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    prl: Vec<u8>,
    broadcast: bool,
    fqdn: Option<Vec<u8>>,
}

fn pkt(kind: v4::MessageType, mac: [u8; 6]) -> Pkt {
    Pkt {
        kind,
        mac,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        requested: None,
        server_id: None,
        prl: vec![1, 3, 6, 15],
        broadcast: false,
        fqdn: None,
    }
}

impl Pkt {
    fn build(&self) -> Inbound {
        let mut m = Message::new(self.ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, self.giaddr, &self.mac);
        if self.broadcast {
            m.set_flags(Flags::default().set_broadcast());
        }
        m.opts_mut().insert(DhcpOption::MessageType(self.kind));
        if let Some(a) = self.requested {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
        }
        if let Some(a) = self.server_id {
            m.opts_mut().insert(DhcpOption::ServerIdentifier(a));
        }
        m.opts_mut().insert(DhcpOption::ParameterRequestList(
            self.prl.iter().map(|c| OptionCode::from(*c)).collect(),
        ));
        if let Some(v) = &self.fqdn {
            m.opts_mut().insert(DhcpOption::Unknown(v4::UnknownOption::new(OptionCode::ClientFQDN, v.clone())));
        }
        classify(&m.to_vec().unwrap()).unwrap()
    }
}

struct World {
    policy: Policy,
    store: Store,
    alloc: Allocator,
    now: u64,
}

impl World {
    fn new(pool_end: u8, authoritative: bool) -> Self {
        Self { policy: venus(pool_end, authoritative), store: Store::default(), alloc: Allocator::default(), now: NOW }
    }
    fn send(&mut self, p: &Pkt) -> Decision {
        let req = p.build();
        let subnet = if p.giaddr != Ipv4Addr::UNSPECIFIED {
            self.policy.subnet_for_relay(p.giaddr)
        } else {
            self.policy.subnet(1)
        };
        let d = decide(&req, subnet, &self.policy, &self.store, &mut self.alloc, Ctx { now: self.now, server_id: SID, on_link: true });
        if let Some(w) = &d.write {
            self.store.apply(w);
        }
        d
    }
    /// Full DORA; returns the ACKed address.
    fn dora(&mut self, mac: [u8; 6]) -> Ipv4Addr {
        let offer = self.send(&pkt(v4::MessageType::Discover, mac));
        let a = offer.reply.expect("offer").0.yiaddr();
        let mut req = pkt(v4::MessageType::Request, mac);
        req.requested = Some(a);
        req.server_id = Some(SID);
        let ack = self.send(&req);
        let (m, _) = ack.reply.expect("ack");
        assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Ack));
        m.yiaddr()
    }
}

impl World {
    /// A world built from a Kea config (first subnet selected, as if
    /// every request came in on its link).
    fn from_config(json: &str) -> Self {
        let policy = crate::glue::compile(&crate::config::parse(json, "test").unwrap());
        Self {
            policy,
            store: Store::default(),
            alloc: Allocator::default(),
            now: NOW,
        }
    }
    fn request(&mut self, mac: [u8; 6], ciaddr: Ipv4Addr) -> Decision {
        let mut r = pkt(v4::MessageType::Request, mac);
        r.ciaddr = ciaddr;
        self.send(&r)
    }
}

fn kind(d: &Decision) -> Option<v4::MessageType> {
    d.reply.as_ref().and_then(|(m, _)| m.opts().msg_type())
}
