//! Tests of [`super`]: every rule on an in-memory lease view.

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

/// Option 81 as Forge's lease-caching test sends it: S set, an ASCII
/// partial name.
fn fqdn_s(name: &str) -> Option<Vec<u8>> {
    Some([&[1u8, 0, 0][..], name.as_bytes()].concat())
}

fn option_81(d: &Decision) -> Option<Vec<u8>> {
    let (m, _) = d.reply.as_ref()?;
    match m.opts().get(OptionCode::ClientFQDN)? {
        DhcpOption::Unknown(u) => Some(u.data().to_vec()),
        other => panic!("option 81 as {other:?}"),
    }
}

fn written_hostname(d: &Decision) -> Option<&str> {
    match &d.write {
        Some(LeaseWrite::Upsert(l)) => Some(&l.hostname),
        _ => None,
    }
}

#[test]
fn option_81_is_answered_with_keas_name_and_flags_and_stored() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "ddns-qualifying-suffix": "example.org",
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let mut d = pkt(v4::MessageType::Discover, M1);
    d.fqdn = fqdn_s("Laptop");
    let offer = w.send(&d);
    // N (updates off) and O (the client's S overridden), the name
    // lower-cased, qualified and made full.
    assert_eq!(option_81(&offer).unwrap(), b"\x0a\x00\x00laptop.example.org.");
    let a = offer.reply.unwrap().0.yiaddr();
    let mut r = pkt(v4::MessageType::Request, M1);
    (r.requested, r.server_id, r.fqdn) = (Some(a), Some(SID), fqdn_s("Laptop"));
    let ack = w.send(&r);
    assert_eq!(option_81(&ack).unwrap(), b"\x0a\x00\x00laptop.example.org.");
    assert_eq!(written_hostname(&ack), Some("laptop.example.org."));
    assert!(option_81(&w.request(M1, a)).is_none(), "no option 81 asked, none sent");
}

#[test]
fn a_new_fqdn_name_ends_lease_caching_and_a_generated_one_is_never_cached() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "cache-max-age": 50,
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let a = w.dora(M1);
    let renew = |w: &mut World, fqdn: Option<Vec<u8>>| {
        w.now += 1;
        let mut r = pkt(v4::MessageType::Request, M1);
        (r.ciaddr, r.fqdn) = (a, fqdn);
        w.send(&r)
    };
    assert_eq!(written_hostname(&renew(&mut w, fqdn_s("abc"))), Some("abc."), "a name is a change");
    assert!(renew(&mut w, fqdn_s("abc")).write.is_none(), "the same name: reused");
    assert_eq!(written_hostname(&renew(&mut w, fqdn_s("xyz"))), Some("xyz."));
    // An empty name is generated from the address, and never reused.
    let generated = format!("myhost-{}.", a.to_string().replace('.', "-"));
    assert_eq!(written_hostname(&renew(&mut w, fqdn_s(""))), Some(generated.as_str()));
    assert_eq!(written_hostname(&renew(&mut w, fqdn_s(""))), Some(generated.as_str()));
}

#[test]
fn a_malformed_option_81_drops_the_packet() {
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.fqdn = Some(vec![0x09, 0, 0, b'a']); // N and S both set
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
    m.opts_mut().insert(DhcpOption::Unknown(v4::UnknownOption::new(OptionCode::ClientFQDN, p.fqdn.unwrap())));
    assert_eq!(classify(&m.to_vec().unwrap()).err(), Some(crate::dhcp::inbound::DropReason::BadOption));
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

/// One link with two subnets of one address each (Forge's shape).
const TWO_ON_A_LINK: &str = r#"{ "Dhcp4": { "valid-lifetime": 60, "authoritative": true, "shared-networks": [
    { "name": "lan", "authoritative": true, "subnet4": [
        { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.1" } ],
          "reservations": [ { "hw-address": "02:00:00:00:00:09", "ip-address": "192.168.50.9" } ] },
        { "id": 2, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ],
          "reservations": [ { "hw-address": "02:00:00:00:00:03", "ip-address": "192.168.51.33" } ] } ] } ] } }"#;

/// Forge's overlapping pools: subnets of one network overlap; once the
/// first is exhausted, a requested address in the sibling's pool (but
/// also inside the first's prefix) is granted from the sibling.
#[test]
fn overlapping_siblings_grant_from_the_subnet_whose_pool_holds_the_address() {
    let mut w = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "shared-networks": [ { "name": "n", "subnet4": [
            { "id": 2, "subnet": "192.168.0.0/27", "pools": [ { "pool": "192.168.0.1-192.168.0.5" } ] },
            { "id": 1, "subnet": "192.168.0.0/25", "pools": [ { "pool": "192.168.0.2-192.168.0.4" } ] } ] } ] } }"#,
    );
    for i in 1..=3 {
        w.dora([2, 0, 0, 0, 0x70, i]);
    }
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(w.store.0[&Ipv4Addr::new(192, 168, 0, 1)].subnet_id, 2);
}

#[test]
fn shared_network_falls_through_to_the_next_subnet_when_one_is_exhausted() {
    let mut w = World::from_config(TWO_ON_A_LINK);
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(w.dora(M2), Ipv4Addr::new(192, 168, 51, 1));
    assert_eq!(
        w.store.0[&Ipv4Addr::new(192, 168, 51, 1)].subnet_id,
        2,
        "the lease names its own subnet"
    );
    // Both exhausted: silence, counted as such.
    assert_eq!(
        w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 0x77]))
            .silence,
        Some(Silence::PoolExhausted)
    );
    // Renewals in either subnet are answered from the selected one's link.
    assert_eq!(
        kind(&w.request(M2, Ipv4Addr::new(192, 168, 51, 1))),
        Some(v4::MessageType::Ack)
    );
    assert_eq!(
        kind(&w.request(M1, Ipv4Addr::new(192, 168, 50, 1))),
        Some(v4::MessageType::Ack)
    );
    // A reservation in the sibling subnet is found from the first one.
    assert_eq!(w.dora(M3), Ipv4Addr::new(192, 168, 51, 33));
    // Release and decline work for a lease of the sibling subnet.
    let mut rel = pkt(v4::MessageType::Release, M2);
    rel.ciaddr = Ipv4Addr::new(192, 168, 51, 1);
    assert_eq!(
        w.send(&rel).write,
        Some(LeaseWrite::Remove(Ipv4Addr::new(192, 168, 51, 1)))
    );
    // A client holding nothing asks for an address off the link: NAK.
    let mut reboot = pkt(v4::MessageType::Request, [2, 0, 0, 0, 0, 0x78]);
    reboot.requested = Some(Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(kind(&w.send(&reboot)), Some(v4::MessageType::Nak));
}

#[test]
fn lease_caching_reuses_an_unchanged_lease_inside_the_threshold() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "renew-timer": 300, "rebind-timer": 800, "cache-threshold": 0.25,
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let a = w.dora(M1);
    let lease_time = |d: &Decision| match d
        .reply
        .as_ref()
        .unwrap()
        .0
        .opts()
        .get(OptionCode::AddressLeaseTime)
    {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        other => panic!("{other:?}"),
    };
    let timers = |d: &Decision| {
        let o = d.reply.as_ref().unwrap().0.opts();
        (
            o.contains(OptionCode::Renewal),
            o.contains(OptionCode::Rebinding),
        )
    };
    // 200 s later (≤ 25 % of 1000): the same lease, 800 s left, no write.
    w.now += 200;
    let d = w.request(M1, a);
    assert_eq!(
        (kind(&d), lease_time(&d), d.write.as_ref()),
        (Some(v4::MessageType::Ack), 800, None)
    );
    // T2 (800) is not below what is left, so only T1 goes out (Kea's setTeeTimes).
    assert_eq!(timers(&d), (true, false));
    // A DISCOVER from the same client is offered what is left, too.
    let d = w.send(&pkt(v4::MessageType::Discover, M1));
    assert_eq!(lease_time(&d), 800);
    // Past the threshold: a fresh lease, written.
    w.now += 100;
    let d = w.request(M1, a);
    assert_eq!(lease_time(&d), 1000);
    assert!(d.write.is_some());
    assert_eq!(timers(&d), (true, true));
}

#[test]
fn lease_caching_honours_max_age_and_refuses_changed_leases() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 1000, "cache-max-age": 50,
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.10-192.168.50.20" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    let a = w.dora(M1);
    w.now += 40;
    assert!(
        w.request(M1, a).write.is_none(),
        "40 s old, max age 50: reused"
    );
    w.now += 20;
    assert!(w.request(M1, a).write.is_some(), "60 s old: renewed");
    // A new hostname is a change: never reused.
    w.now += 1;
    let mut r = pkt(v4::MessageType::Request, M1);
    r.ciaddr = a;
    let mut req = r.build();
    req.hostname = Some("renamed".into());
    let subnet = w.policy.subnet(1);
    let d = decide(
        &req,
        subnet,
        &w.policy,
        &w.store,
        &mut w.alloc,
        Ctx { now: w.now, server_id: SID, on_link: true },
    );
    assert!(d.write.is_some());
}

fn yiaddr(d: &Decision) -> Ipv4Addr {
    d.reply.as_ref().expect("a reply").0.yiaddr()
}

/// A DISCOVER from `mac` with option 61 and option 82 as given.
fn discover_with(w: &mut World, mac: [u8; 6], cid: Option<&[u8]>, rai: Option<&[u8]>) -> Decision {
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
    if let Some(c) = cid {
        m.opts_mut().insert(DhcpOption::ClientIdentifier(c.to_vec()));
    }
    if let Some(r) = rai {
        m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
    }
    let req = classify(&m.to_vec().unwrap()).unwrap();
    let subnet = w.policy.subnet(1);
    decide(&req, subnet, &w.policy, &w.store, &mut w.alloc, Ctx { now: w.now, server_id: SID, on_link: true })
}

#[test]
fn host_identifiers_follow_kea_order_and_types() {
    let cfg = |ids: &str| {
        format!(
            r#"{{ "Dhcp4": {{ "host-reservation-identifiers": {ids}, "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24",
            "pools": [ {{ "pool": "192.168.50.1-192.168.50.1" }} ], "reservations": [
            {{ "circuit-id": "060106020603", "ip-address": "192.168.50.10" }},
            {{ "duid": "04:33:44", "ip-address": "192.168.50.11" }},
            {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.12" }},
            {{ "client-id": "01:02:00:00:00:00:01", "ip-address": "192.168.50.13" }} ] }} ] }} }}"#
        )
    };
    let rai: &[u8] = &[1, 6, 6, 1, 6, 2, 6, 3];
    let duid_cid: &[u8] = &[0xff, 1, 2, 3, 0xff, 4, 0x33, 0x44];
    let mut w = World::from_config(&cfg(r#"["circuit-id"]"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 10));
    let mut w = World::from_config(&cfg(r#"["duid"]"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, Some(duid_cid), None)), Ipv4Addr::new(192, 168, 50, 11));
    // Not enabled: the circuit-id reservation does not apply.
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, Some(rai))), Ipv4Addr::new(192, 168, 50, 1));
    // Kea's default order: hw-address before client-id.
    let mut w = World::from_config(&cfg(r#"["hw-address", "duid", "circuit-id", "client-id"]"#));
    let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
    assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 12));
    let mut w = World::from_config(&cfg(r#"["client-id", "hw-address"]"#));
    let both = discover_with(&mut w, M1, Some(&[1, 2, 0, 0, 0, 0, 1]), None);
    assert_eq!(yiaddr(&both), Ipv4Addr::new(192, 168, 50, 13));
}

#[test]
fn reservation_flags_decide_which_reservations_count() {
    let cfg = |flags: &str| {
        format!(
            r#"{{ "Dhcp4": {{ {flags} "reservations": [ {{ "hw-address": "02:00:00:00:00:02", "ip-address": "192.168.50.20", "hostname": "global" }} ],
            "subnet4": [ {{ "id": 1, "subnet": "192.168.50.0/24", "pools": [ {{ "pool": "192.168.50.1-192.168.50.5" }} ],
            "reservations": [ {{ "hw-address": "02:00:00:00:00:01", "ip-address": "192.168.50.1" }} ] }} ] }} }}"#
        )
    };
    // Defaults: in-subnet only; the reserved pool address is kept from others.
    let mut w = World::from_config(&cfg(""));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 2));
    assert_eq!(yiaddr(&discover_with(&mut w, M1, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    // Global on: the global reservation's address, and its hostname.
    let mut w = World::from_config(&cfg(r#""reservations-global": true,"#));
    let d = discover_with(&mut w, M2, None, None);
    assert_eq!(yiaddr(&d), Ipv4Addr::new(192, 168, 50, 20));
    assert_eq!(d.reply.unwrap().0.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("global".into())));
    // In-subnet off: the subnet's reservation is ignored, its address free.
    let mut w = World::from_config(&cfg(r#""reservations-in-subnet": false,"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
    // Out of pool declared: in-pool reserved addresses are not checked.
    let mut w = World::from_config(&cfg(r#""reservations-out-of-pool": true,"#));
    assert_eq!(yiaddr(&discover_with(&mut w, M2, None, None)), Ipv4Addr::new(192, 168, 50, 1));
}

#[test]
fn relay_server_identifier_override_is_accepted() {
    let mut w = World::new(199, true);
    let other = Ipv4Addr::new(192, 168, 50, 253);
    let build = |rai: Option<&[u8]>| {
        let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
        m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(other));
        if let Some(r) = rai {
            m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::RelayAgentInformation, r.to_vec())));
        }
        classify(&m.to_vec().unwrap()).unwrap()
    };
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&build(None), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(d.silence, Some(Silence::OtherServerSelected));
    let rai = [11, 4, 192, 168, 50, 253];
    let d = decide(&build(Some(&rai)), w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(kind(&d), Some(v4::MessageType::Ack));
}

#[test]
fn bootp_requests_get_an_infinite_lease_and_a_plain_bootreply() {
    let cfg = r#"{ "Dhcp4": { "valid-lifetime": 600, "hooks-libraries": [ { "library": "/usr/lib/kea/hooks/libdhcp_bootp.so" } ],
        "option-data": [ { "name": "routers", "data": "192.168.50.1" } ],
        "subnet4": [ { "id": 1, "subnet": "192.168.50.0/24", "pools": [ { "pool": "192.168.50.1-192.168.50.10" } ] } ] } }"#;
    let mut w = World::from_config(cfg);
    assert!(w.policy.bootp);
    let m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &M1);
    let mut bytes = m.to_vec().unwrap();
    // A BOOTP request: cookie and END, no option 53.
    bytes.truncate(240);
    bytes.push(255);
    assert_eq!(classify(&bytes).unwrap_err(), crate::dhcp::inbound::DropReason::NoMessageType);
    let req = crate::dhcp::inbound::classify_bootp(&bytes).unwrap();
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    let (reply, _) = d.reply.clone().unwrap();
    assert_eq!(reply.yiaddr(), Ipv4Addr::new(192, 168, 50, 1));
    assert_eq!(reply.opts().msg_type(), None, "no DHCP message type");
    for code in DHCP_SPECIFIC_OPTIONS {
        assert!(!reply.opts().contains(OptionCode::from(code)), "option {code} left in");
    }
    assert!(reply.opts().contains(OptionCode::Router));
    assert_eq!(reply_bytes(&reply).unwrap().len(), 300);
    match &d.write {
        Some(LeaseWrite::Upsert(l)) => assert_eq!(l.valid_lifetime, u32::MAX),
        other => panic!("{other:?}"),
    }
    // The same client later through DHCP keeps its address.
    w.store.apply(d.write.as_ref().unwrap());
    assert_eq!(w.dora(M1), Ipv4Addr::new(192, 168, 50, 1));
}

fn kind(d: &Decision) -> Option<v4::MessageType> {
    d.reply.as_ref().and_then(|(m, _)| m.opts().msg_type())
}

#[test]
fn discover_offers_first_free_pool_address_unicast_to_chaddr() {
    let mut w = World::new(199, true);
    let d = w.send(&pkt(v4::MessageType::Discover, M1));
    let (m, dest) = d.reply.unwrap();
    // .100 is reserved for another host, so the first free one is .101.
    assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 168, 50, 101));
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: m.yiaddr() });
    assert_eq!(m.opcode(), Opcode::BootReply);
    let o = m.opts();
    assert_eq!(o.get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SID)));
    assert_eq!(o.get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(60)));
    assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(30)));
    assert_eq!(o.get(OptionCode::Rebinding), Some(&DhcpOption::Rebinding(45)));
    assert_eq!(o.get(OptionCode::SubnetMask), Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0))));
    assert!(o.contains(OptionCode::Router));
    assert!(!o.contains(OptionCode::NtpServers), "not requested, not basic");
    assert!(d.write.is_none(), "an OFFER writes nothing");
}

/// The store as seen under an HA reuse grace period.
struct Graced<'a>(&'a Store, crate::ha::ReuseGrace, u64);

impl LeaseView for Graced<'_> {
    fn by_address(&self, a: Ipv4Addr) -> Option<Held> {
        self.0.by_address(a).map(|h| self.1.apply(self.2, h))
    }
    fn by_hwaddr(&self, s: u32, hw: &[u8]) -> Option<Held> {
        self.0.by_hwaddr(s, hw).map(|h| self.1.apply(self.2, h))
    }
    fn by_client_id(&self, s: u32, id: &[u8]) -> Option<Held> {
        self.0.by_client_id(s, id).map(|h| self.1.apply(self.2, h))
    }
}

#[test]
fn reuse_grace_keeps_a_recently_expired_address_for_its_holder() {
    // mutante1 held .101 until NOW-10 in our copy; the dead partner may
    // have renewed it unseen. Partner-down began at NOW-5.
    let mut w = World::new(199, true);
    let first = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    let mut r = pkt(v4::MessageType::Request, M1);
    (r.requested, r.server_id) = (Some(first), Some(SID));
    w.send(&r);
    w.store.0.get_mut(&first).unwrap().expire = NOW - 10;
    w.alloc = Allocator::default();
    let grace = crate::ha::ReuseGrace::new(NOW - 5, 60);
    let ctx = Ctx { now: NOW, server_id: SID, on_link: true };
    // Without the rule the expired address goes to the next client…
    let other = pkt(v4::MessageType::Discover, M2).build();
    let plain = decide(&other, w.policy.subnet(1), &w.policy, &w.store, &mut Allocator::default(), ctx);
    assert_eq!(plain.reply.unwrap().0.yiaddr(), first);
    // …with it, another address; the holder still gets its own back.
    let view = Graced(&w.store, grace, NOW);
    let held = decide(&other, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
    assert_ne!(held.reply.unwrap().0.yiaddr(), first);
    let own = pkt(v4::MessageType::Discover, M1).build();
    let back = decide(&own, w.policy.subnet(1), &w.policy, &view, &mut Allocator::default(), ctx);
    assert_eq!(back.reply.unwrap().0.yiaddr(), first);
    // Once the grace period is over, the address is free again.
    let after = Graced(&w.store, grace, grace.until());
    let later = decide(&other, w.policy.subnet(1), &w.policy, &after, &mut Allocator::default(), Ctx { now: grace.until(), server_id: SID, on_link: true });
    assert_eq!(later.reply.unwrap().0.yiaddr(), first);
}

#[test]
fn offer_index_stays_in_step_with_offers() {
    let mut w = World::new(199, true);
    for i in 0..50u8 {
        w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, i]));
    }
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (50, 50));
    // A client asking again finds its own offer through the index.
    let first = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 1, 0, 7])).reply.unwrap().0.yiaddr();
    assert_eq!(w.alloc.offers[&first].0.hwaddr, vec![2, 0, 0, 1, 0, 7]);
    // Accepting one removes it from both maps; expiry clears the rest.
    let mut req = pkt(v4::MessageType::Request, [2, 0, 0, 1, 0, 7]);
    req.requested = Some(first);
    req.server_id = Some(SID);
    assert_eq!(kind(&w.send(&req)), Some(v4::MessageType::Ack));
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (49, 49));
    w.alloc.expire_offers(NOW + OFFER_HOLD_SECS);
    assert_eq!((w.alloc.offers.len(), w.alloc.by_client.len()), (0, 0));
}

#[test]
fn requested_options_are_sent() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.prl = vec![42];
    let (m, _) = w.send(&p).reply.unwrap();
    assert!(m.opts().contains(OptionCode::NtpServers));
}

#[test]
fn configured_options_follow_keas_append_rules() {
    let mut w = World::new(199, true);
    let s = &mut w.policy.subnets[0];
    for (code, data) in [
        (50, &[188u8, 188, 188, 2][..]),
        (57, &[0x09, 0x2d]),
        (1, &[255, 255, 0, 0]),
        (51, &[0, 0, 0, 9]),
        (61, &[9, 9]),
    ] {
        s.options.insert(code, opt(data));
    }
    let raw = |m: &Message, c: u8| match m.opts().get(OptionCode::from(c)) {
        Some(DhcpOption::Unknown(u)) => Some(u.data().to_vec()),
        Some(o) => Some(o.to_vec().unwrap()[2..].to_vec()),
        None => None,
    };
    // Asked for and not set by the server: the configured value.
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.prl = vec![50, 57, 1, 51, 61];
    let (m, _) = w.send(&p).reply.unwrap();
    assert_eq!(raw(&m, 50).unwrap(), [188, 188, 188, 2]);
    assert_eq!(raw(&m, 57).unwrap(), [0x09, 0x2d]);
    // Set by the server with a lease: its own mask and lease time.
    assert_eq!(raw(&m, 1).unwrap(), [255, 255, 255, 0]);
    assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 60]);
    // No client identifier to echo: the configured one, when asked.
    assert_eq!(raw(&m, 61).unwrap(), [9, 9]);
    // Without a lease (INFORM) the configured mask and lease time go.
    let mut p = pkt(v4::MessageType::Inform, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
    p.prl = vec![1, 51];
    let (m, _) = w.send(&p).reply.unwrap();
    assert_eq!(raw(&m, 1).unwrap(), [255, 255, 0, 0]);
    assert_eq!(raw(&m, 51).unwrap(), [0, 0, 0, 9]);
    // Not asked for, not basic, not always-send: not sent.
    let (m, _) = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap();
    assert!(raw(&m, 50).is_none() && raw(&m, 57).is_none());
}

#[test]
fn broadcast_flag_means_broadcast() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.broadcast = true;
    assert_eq!(w.send(&p).reply.unwrap().1, Destination::Broadcast);
}

#[test]
fn reservation_wins_and_sends_hostname() {
    let mut w = World::new(199, true);
    let a = w.dora(M3);
    assert_eq!(a, Ipv4Addr::new(192, 168, 50, 33));
    let (m, _) = w.send(&pkt(v4::MessageType::Discover, M3)).reply.unwrap();
    assert_eq!(m.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("mutante3".into())));
}

#[test]
fn reserved_address_is_never_given_to_another_client() {
    let mut w = World::new(199, true);
    // Asking for it by REQUEST (INIT-REBOOT) and by DISCOVER.
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 33));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 100));
    assert_ne!(w.send(&p).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 50, 100));
}

#[test]
fn concurrent_discovers_get_distinct_offers() {
    let mut w = World::new(199, true);
    let a = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    let b = w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr();
    assert_ne!(a, b);
    // The same client asking again gets the same offer.
    let a2 = w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr();
    assert_eq!(a, a2);
}

/// Kea 2.2 holds nothing for an OFFER: with one free address left, a
/// second client is offered it too, and the first REQUEST wins.
#[test]
fn an_offer_is_a_soft_hold() {
    let mut w = World::new(101, true);
    let only = Ipv4Addr::new(192, 168, 50, 101);
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M1)).reply.unwrap().0.yiaddr(), only);
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), only);
    let mut r = pkt(v4::MessageType::Request, M2);
    (r.requested, r.server_id) = (Some(only), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Ack));
    let mut r = pkt(v4::MessageType::Request, M1);
    (r.requested, r.server_id) = (Some(only), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
}

/// A DISCOVER flood: the offer table stops at its cap, every DISCOVER
/// is still answered, the overflow is counted, and the table empties as
/// holds expire.
#[test]
fn held_offers_are_capped_and_counted() {
    let mut w = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
            { "id": 1, "subnet": "10.0.0.0/8", "pools": [ { "pool": "10.0.0.1-10.255.255.254" } ] } ] } }"#,
    );
    let extra = 100;
    for i in 0..MAX_HELD_OFFERS + extra {
        let b = (i as u32).to_be_bytes();
        let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, b[0], b[1], b[2], b[3]]));
        assert!(d.reply.is_some(), "DISCOVER {i} unanswered");
    }
    assert_eq!(w.alloc.outstanding_offers(), MAX_HELD_OFFERS);
    assert_eq!(w.alloc.unheld_offers(), extra as u64);
    w.alloc.expire_offers(w.now + OFFER_HOLD_SECS);
    assert_eq!(w.alloc.outstanding_offers(), 0);
}

/// A new configuration may keep a subnet id and change its pool (Forge's
/// config-set tests): the pool cursor of the old pool must not leave
/// the new one looking exhausted.
#[test]
fn a_stale_pool_cursor_starts_over() {
    let mut w = World::new(199, true);
    w.dora(M1);
    w.policy = World::from_config(
        r#"{ "Dhcp4": { "authoritative": true, "subnet4": [
            { "id": 1, "subnet": "192.168.51.0/24", "pools": [ { "pool": "192.168.51.1-192.168.51.1" } ] } ] } }"#,
    )
    .policy;
    assert_eq!(w.send(&pkt(v4::MessageType::Discover, M2)).reply.unwrap().0.yiaddr(), Ipv4Addr::new(192, 168, 51, 1));
}

/// Kea's DISCOVER hint: option 50, else ciaddr (a client that released
/// its lease and comes back gets the same address).
/// Forge's exhausted-pool DORA: a REQUEST carrying our server id and a
/// requested address of 0.0.0.0 is NAKed when nothing is free.
#[test]
fn request_for_zero_address_allocates_or_naks() {
    let mut w = World::new(101, true);
    w.dora(M1);
    let mut r = pkt(v4::MessageType::Request, M2);
    (r.requested, r.server_id) = (Some(Ipv4Addr::UNSPECIFIED), Some(SID));
    assert_eq!(kind(&w.send(&r)), Some(v4::MessageType::Nak));
}

#[test]
fn discover_hint_falls_back_to_ciaddr() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 150);
    assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), p.ciaddr);
}

#[test]
fn dora_writes_a_lease_and_renewal_extends_it() {
    let mut w = World::new(199, true);
    let a = w.dora(M1);
    assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 60);
    w.now += 30;
    let mut p = pkt(v4::MessageType::Request, M1);
    p.ciaddr = a;
    let d = w.send(&p);
    let (m, dest) = d.reply.unwrap();
    assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Ack));
    // On the link, a frame to chaddr at ciaddr (no ARP needed); routed,
    // an IP unicast to ciaddr.
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: a });
    assert_eq!(m.ciaddr(), a);
    let subnet = w.policy.subnet(1);
    let off_link = Ctx { now: w.now, server_id: SID, on_link: false };
    let d = decide(&p.build(), subnet, &w.policy, &w.store, &mut w.alloc, off_link);
    assert_eq!(d.reply.unwrap().1, Destination::Ciaddr(a));
    assert_eq!(w.store.by_address(a).unwrap().expire, NOW + 90);
}

#[test]
fn renewing_someone_elses_address_is_nakked_to_ciaddr() {
    let mut w = World::new(199, true);
    let a = w.dora(M1);
    let mut p = pkt(v4::MessageType::Request, M2);
    p.ciaddr = a;
    let d = w.send(&p);
    assert_eq!(kind(&d), Some(v4::MessageType::Nak));
    // Kea's adjustRemoteAddr: ciaddr comes before the NAK broadcast.
    assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M2, ip: a });
    assert!(d.write.is_none());
}

#[test]
fn selecting_another_server_is_silent() {
    let mut w = World::new(199, true);
    w.send(&pkt(v4::MessageType::Discover, M1));
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 101));
    p.server_id = Some(Ipv4Addr::new(192, 168, 50, 3));
    let d = w.send(&p);
    assert_eq!(d.silence, Some(Silence::OtherServerSelected));
    assert_eq!(w.alloc.outstanding_offers(), 0, "our offer is withdrawn");
}

#[test]
fn init_reboot_rules() {
    let mut w = World::new(199, true);
    // Wrong network → NAK.
    let mut p = pkt(v4::MessageType::Request, M1);
    p.requested = Some(Ipv4Addr::new(10, 0, 0, 5));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Unknown client, free in-pool address, authoritative → NAK (Kea
    // 2.2: it must come back through DISCOVER).
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Known and right about its address → ACK, even expired.
    let a = w.dora(M1);
    p.requested = Some(a);
    w.now += 3600;
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Ack));
    // Holding one, asking for another → NAK.
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 151));
    assert_eq!(kind(&w.send(&p)), Some(v4::MessageType::Nak));
    // Non-authoritative server with no record stays silent.
    let mut w = World::new(199, false);
    let mut p = pkt(v4::MessageType::Request, M2);
    p.requested = Some(Ipv4Addr::new(192, 168, 50, 150));
    assert_eq!(w.send(&p).silence, Some(Silence::NotAuthoritative));
}

#[test]
fn exhaustion_is_silent_and_expired_leases_are_reused() {
    // Pool .100-.102 with .100 reserved: two dynamic addresses.
    let mut w = World::new(102, true);
    let a = w.dora(M1);
    let b = w.dora(M2);
    assert_ne!(a, b);
    let d = w.send(&pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 7]));
    assert_eq!(d.silence, Some(Silence::PoolExhausted));
    w.now += 61 + OFFER_HOLD_SECS;
    let c = w.dora([2, 0, 0, 0, 0, 7]);
    assert!(c == a || c == b);
}

#[test]
fn release_frees_and_decline_quarantines() {
    let mut w = World::new(102, true);
    let a = w.dora(M1);
    // A stranger cannot release it.
    let mut p = pkt(v4::MessageType::Release, M2);
    p.ciaddr = a;
    assert_eq!(w.send(&p).silence, Some(Silence::NotOwner));
    p.mac = M1;
    let d = w.send(&p);
    assert_eq!(d.write, Some(LeaseWrite::Remove(a)));
    assert!(d.reply.is_none());

    let b = w.dora(M2);
    let mut p = pkt(v4::MessageType::Decline, M2);
    p.requested = Some(b);
    let d = w.send(&p);
    match d.write {
        Some(LeaseWrite::Upsert(l)) => {
            assert_eq!(l.state, HeldState::Declined);
            assert_eq!(l.expire, NOW + 86400);
            assert!(l.hwaddr.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // The declined address is not offered during probation…
    w.now += OFFER_HOLD_SECS + 1;
    for mac in [[2, 0, 0, 0, 0, 8], [2, 0, 0, 0, 0, 9]] {
        if let Some((m, _)) = w.send(&pkt(v4::MessageType::Discover, mac)).reply {
            assert_ne!(m.yiaddr(), b);
        }
    }
    // …and is after it.
    w.now += 86400;
    w.alloc.expire_offers(w.now);
    let mut p = pkt(v4::MessageType::Discover, [2, 0, 0, 0, 0, 10]);
    p.requested = Some(b);
    assert_eq!(w.send(&p).reply.unwrap().0.yiaddr(), b);
}

#[test]
fn relay_agent_information_is_echoed_once() {
    let mut w = World::new(199, true);
    let relay = Ipv4Addr::new(192, 168, 50, 1);
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Discover));
    let rai = vec![1, 3, b'a', b'b', b'c'];
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai)));
    let req = classify(&m.to_vec().unwrap()).unwrap();
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
    let bytes = d.reply.unwrap().0.to_vec().unwrap();
    let opts = &bytes[240..];
    let n = opts.windows(7).filter(|x| *x == [82, 5, 1, 3, b'a', b'b', b'c']).count();
    assert_eq!(n, 1, "{opts:?}");
    assert_eq!(opts[opts.len() - 8..], [82, 5, 1, 3, b'a', b'b', b'c', 255], "82 goes last");
}

/// Kea's `store-extended-info`: an ACK's lease keeps the relay's option
/// 82 only when the subnet says so.
#[test]
fn extended_info_keeps_option_82_in_the_lease() {
    let mut w = World::new(199, true);
    let relay = Ipv4Addr::new(192, 168, 50, 1);
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, relay, &M1);
    m.opts_mut().insert(DhcpOption::MessageType(v4::MessageType::Request));
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 168, 50, 101)));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(SID));
    let rai = vec![1, 6, 6, 1, 6, 2, 6, 3];
    m.opts_mut().insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::from(82u8), rai.clone())));
    let req = classify(&m.to_vec().unwrap()).unwrap();
    for keep in [false, true] {
        w.policy.subnets[0].store_extended_info = keep;
        let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
        let d = decide(&req, w.policy.subnet(1), &w.policy, &w.store, &mut w.alloc, ctx);
        let Some(LeaseWrite::Upsert(n)) = d.write else { panic!("no lease written: {d:?}") };
        assert_eq!(n.relay_agent_info, keep.then(|| rai.clone()));
        let want = keep.then(|| serde_json::json!({"ISC": {"relay-agent-info": "0x0106060106020603"}}));
        assert_eq!(crate::glue::to_lease(&n).user_context, want);
    }
}

#[test]
fn relayed_requests_go_back_to_the_relay() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Discover, M1);
    p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
    let (m, dest) = w.send(&p).reply.unwrap();
    assert_eq!(dest, Destination::Relay(p.giaddr));
    assert_eq!(m.giaddr(), p.giaddr);
    // A NAK through a relay keeps the request's flags (Kea sets none).
    let mut p = pkt(v4::MessageType::Request, M1);
    p.giaddr = Ipv4Addr::new(192, 168, 50, 1);
    p.requested = Some(Ipv4Addr::new(10, 1, 1, 1));
    let (m, dest) = w.send(&p).reply.unwrap();
    assert_eq!(m.opts().msg_type(), Some(v4::MessageType::Nak));
    assert_eq!(dest, Destination::Relay(p.giaddr));
    assert!(!m.flags().broadcast());
    // No subnet for an unknown relay.
    p.giaddr = Ipv4Addr::new(172, 16, 0, 1);
    assert_eq!(w.send(&p).silence, Some(Silence::NoSubnet));
}

#[test]
fn inform_gets_options_without_a_lease() {
    let mut w = World::new(199, true);
    let mut p = pkt(v4::MessageType::Inform, M1);
    p.ciaddr = Ipv4Addr::new(192, 168, 50, 7);
    let d = w.send(&p);
    let (m, dest) = d.reply.unwrap();
    assert_eq!(dest, Destination::Chaddr { mac: M1, ip: p.ciaddr });
    assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(!m.opts().contains(OptionCode::AddressLeaseTime));
    assert!(m.opts().contains(OptionCode::Router));
    assert!(d.write.is_none());
    // Without ciaddr: back to the source address, or (from 0.0.0.0,
    // unrelayed) dropped as Kea does.
    p.ciaddr = Ipv4Addr::UNSPECIFIED;
    let subnet = w.policy.subnet(1);
    let from = Ipv4Addr::new(192, 168, 50, 8);
    let ctx = Ctx { now: w.now, server_id: SID, on_link: true };
    let d = decide(&p.build().from_source(from), subnet, &w.policy, &w.store, &mut w.alloc, ctx);
    assert_eq!(d.reply.unwrap().1, Destination::Chaddr { mac: M1, ip: from });
    assert_eq!(w.send(&p).silence, Some(Silence::Incomplete));
}
