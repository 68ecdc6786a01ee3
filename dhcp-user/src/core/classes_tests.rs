//! Client classes through [`process`], on an in-memory store: Kea's
//! evaluation order, DROP, class-restricted subnets and pools, KNOWN-only
//! pools, required classes, class options, boot fields and lifetimes.

use std::net::Ipv4Addr;

use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};

use super::*;
use crate::{dhcp::engine::Silence, leases::StoreConfig};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADDRS: &[(Ipv4Addr, u8)] = &[(SERVER, 24)];
const PXE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const KNOWN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const OTHER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

/// One shared network on eth0: a PXE-only subnet first, then a subnet
/// whose first pool is for known clients and whose second pool is for
/// everyone; classes setting options, boot fields and a lifetime.
const CONFIG: &str = r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "authoritative": true,
    "valid-lifetime": 3600,
    "option-data": [ { "name": "domain-name-servers", "data": "192.0.2.53" }, { "name": "domain-name", "data": "global.test" } ],
    "client-classes": [
      { "name": "pxe", "test": "substring(option[vendor-class-identifier].hex,0,9) == 'PXEClient'",
        "boot-file-name": "pxelinux.0", "next-server": "192.0.2.5", "valid-lifetime": 600,
        "option-data": [ { "name": "domain-name-servers", "data": "192.0.2.54" }, { "name": "routers", "data": "10.9.9.9" } ] },
      { "name": "not-pxe", "test": "not member('pxe')" },
      { "name": "evil", "test": "option[host-name].text == 'evil'" },
      { "name": "DROP", "test": "member('evil') or (member('KNOWN') and option[host-name].text == 'evil-known')" },
      { "name": "gold", "test": "member('KNOWN')", "server-hostname": "gold-server" },
      { "name": "late", "test": "member('ALL')", "only-if-required": true,
        "option-data": [ { "name": "ntp-servers", "data": "192.0.2.123" } ] }
    ],
    "shared-networks": [ { "name": "lan", "interface": "eth0", "subnet4": [
      { "id": 1, "subnet": "10.1.0.0/24", "client-class": "pxe",
        "option-data": [ { "name": "routers", "data": "10.1.0.1" } ],
        "pools": [ { "pool": "10.1.0.10-10.1.0.20" } ] },
      { "id": 2, "subnet": "192.0.2.0/24", "require-client-classes": [ "late" ],
        "option-data": [ { "name": "routers", "data": "192.0.2.1" } ],
        "pools": [ { "pool": "192.0.2.10-192.0.2.19", "client-class": "KNOWN" },
                   { "pool": "192.0.2.100-192.0.2.109", "client-class": "not-pxe" } ],
        "reservations": [ { "hw-address": "02:00:00:00:00:02" } ] } ] } ] } }"#;

struct World {
    policy: Policy,
    store: LeaseStore,
    alloc: Allocator,
}

impl World {
    fn new(text: &str) -> Self {
        let cfg = crate::config::parse(text, "test").unwrap();
        let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
        World { policy: crate::glue::compile(&cfg), store, alloc: Allocator::default() }
    }

    fn handle(&mut self, req: &Inbound) -> Outcome<()> {
        let now = crate::clock::unix_now();
        let v = View { policy: &self.policy, store: &self.store, alloc: &mut self.alloc, grace: None, enabled: true, now };
        let at = Arrival { iface: "eth0", iface_addrs: ADDRS, server_id: SERVER, from: Ipv4Addr::UNSPECIFIED, to: Some(Ipv4Addr::BROADCAST) };
        process(v, req, &at, &NoHa)
    }
}

fn discover(mac: [u8; 6], opts: &[DhcpOption]) -> Inbound {
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new(u, u, u, u, &mac);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::DomainName,
        OptionCode::NtpServers,
    ]));
    for o in opts {
        m.opts_mut().insert(o.clone());
    }
    crate::dhcp::inbound::classify(&m.to_vec().unwrap()).unwrap()
}

fn pxe() -> DhcpOption {
    DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec())
}

fn offer(o: &Outcome<()>) -> &Message {
    let (m, _) = o.reply.as_ref().expect("an offer");
    assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
    m
}

fn raw(m: &Message, code: u8) -> Option<Vec<u8>> {
    let bytes = m.to_vec().unwrap();
    let mut o = &bytes[240..];
    while let [c, len, rest @ ..] = o {
        if *c == code {
            return Some(rest[..usize::from(*len)].to_vec());
        }
        o = &rest[usize::from(*len)..];
    }
    None
}

#[test]
fn a_pxe_client_gets_its_subnet_boot_fields_options_and_lifetime() {
    let mut w = World::new(CONFIG);
    let o = w.handle(&discover(PXE_MAC, &[pxe()]));
    let m = offer(&o);
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 1, 0, 10));
    assert_eq!(m.fname().unwrap(), b"pxelinux.0");
    assert_eq!(m.siaddr(), Ipv4Addr::new(192, 0, 2, 5));
    // Subnet routers beat the class's; the class's DNS beats the global one.
    assert_eq!(raw(m, 3).unwrap(), [10, 1, 0, 1]);
    assert_eq!(raw(m, 6).unwrap(), [192, 0, 2, 54]);
    assert_eq!(raw(m, 15).unwrap(), b"global.test");
    assert_eq!(raw(m, 51).unwrap(), 600u32.to_be_bytes());
    // 'late' is only required in subnet 2.
    assert!(raw(m, 42).is_none());
}

#[test]
fn an_unknown_client_is_kept_out_of_the_known_pool() {
    let mut w = World::new(CONFIG);
    let o = w.handle(&discover(OTHER_MAC, &[]));
    let m = offer(&o);
    assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 0, 2, 100), "not the PXE subnet, not the KNOWN pool");
    assert!(m.fname().is_none_or(|f| f.is_empty()));
    assert_eq!(raw(m, 6).unwrap(), [192, 0, 2, 53]);
    assert_eq!(raw(m, 51).unwrap(), 3600u32.to_be_bytes());
    // The required class 'late' gives NTP; 'gold' (KNOWN) does not apply.
    assert_eq!(raw(m, 42).unwrap(), [192, 0, 2, 123]);
    assert!(m.sname().is_none_or(|s| s.is_empty()));
}

#[test]
fn a_known_client_gets_the_known_pool_and_known_dependent_classes() {
    let mut w = World::new(CONFIG);
    let o = w.handle(&discover(KNOWN_MAC, &[]));
    let m = offer(&o);
    assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 0, 2, 10));
    assert_eq!(m.sname().unwrap(), b"gold-server");
}

#[test]
fn drop_on_receipt_and_after_the_host_lookup_is_silent_and_counted() {
    let mut w = World::new(CONFIG);
    let o = w.handle(&discover(OTHER_MAC, &[DhcpOption::Hostname("evil".into())]));
    assert!(o.reply.is_none() && o.write.is_none());
    assert_eq!(o.counts.get(Counter::Silent(Silence::ClassDrop)), 1);
    // Depends on KNOWN: dropped after the lookup for the reserved client
    // only.
    let o = w.handle(&discover(KNOWN_MAC, &[DhcpOption::Hostname("evil-known".into())]));
    assert_eq!(o.counts.get(Counter::Silent(Silence::ClassDrop)), 1);
    let o = w.handle(&discover(OTHER_MAC, &[DhcpOption::Hostname("evil-known".into())]));
    assert!(o.reply.is_some());
}

#[test]
fn a_request_for_a_pool_the_client_may_not_use_is_not_granted() {
    let mut w = World::new(CONFIG);
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new(u, u, u, u, &OTHER_MAC);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 0, 2, 11)));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    let o = w.handle(&crate::dhcp::inbound::classify(&m.to_vec().unwrap()).unwrap());
    assert!(o.write.is_none());
    assert!(o.reply.as_ref().is_none_or(|(r, _)| r.opts().msg_type() == Some(MessageType::Nak)));
}

#[test]
fn without_classes_nothing_changes() {
    let plain = r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
        "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ] } ] } }"#;
    let w = World::new(plain);
    assert!(!w.policy.classify);
    let w = World::new(CONFIG);
    assert!(w.policy.classify);
}

/// Kea's flex-option hook (`libdhcp_flex_option.so`), as Forge's
/// `test_flex_options4_all_actions` configures it: the finished reply gets
/// option 67 added from the query's host name, option 3 superseded, and
/// option 15 removed for a known client.
#[test]
fn the_flex_option_hook_edits_the_finished_reply() {
    let text = r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
        "option-data": [ { "name": "routers", "data": "192.0.2.1" }, { "name": "domain-name", "data": "x.test" } ],
        "hooks-libraries": [ { "library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_flex_option.so",
          "parameters": { "options": [
            { "code": 3, "supersede": "ifelse(option[host-name].text == 'pc1', '10.0.0.1', '')", "csv-format": true },
            { "code": 15, "remove": "member('KNOWN')" },
            { "code": 67, "add": "ifelse(option[host-name].exists, concat(option[host-name].text, '.boot'), 'no-boot-file')", "csv-format": true } ] } } ],
        "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ],
          "reservations": [ { "hw-address": "02:00:00:00:00:02" } ] } ] } }"#;
    let mut w = World::new(text);
    assert!(w.policy.classify, "the hook reads the query");
    let o = w.handle(&discover(OTHER_MAC, &[DhcpOption::Hostname("pc1".into())]));
    let m = offer(&o);
    assert_eq!(raw(m, 67), Some(b"pc1.boot".to_vec()));
    assert_eq!(raw(m, 3), Some(vec![10, 0, 0, 1]));
    assert_eq!(raw(m, 15), Some(b"x.test".to_vec()));
    let o = w.handle(&discover(KNOWN_MAC, &[]));
    let m = offer(&o);
    assert_eq!(raw(m, 67), Some(b"no-boot-file".to_vec()));
    assert_eq!(raw(m, 3), Some(vec![192, 0, 2, 1]), "an empty value supersedes nothing");
    assert_eq!(raw(m, 15), None, "removed for the known client");
}

/// `early-global-reservations-lookup` (Forge's `test_early_hr_lookup_*`):
/// a global reservation's class selects the subnet restricted to it; a
/// reservation putting its client in `DROP` silences it; without the flag
/// the class comes too late for subnet selection.
#[test]
fn early_global_lookup_lets_a_reservation_class_select_the_subnet() {
    let text = r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "early-global-reservations-lookup": true,
        "client-classes": [ { "name": "first" } ],
        "reservations": [ { "hw-address": "02:00:00:00:00:02", "client-classes": [ "first" ] },
                          { "hw-address": "02:00:00:00:00:01", "client-classes": [ "DROP" ] } ],
        "subnet4": [ { "id": 1, "subnet": "192.0.2.0/24", "interface": "eth0", "client-class": "first", "pools": [ { "pool": "192.0.2.10-192.0.2.20" } ] },
                     { "id": 2, "subnet": "192.0.3.0/24", "interface": "eth0", "pools": [ { "pool": "192.0.3.10-192.0.3.20" } ] } ] } }"#;
    let mut w = World::new(text);
    assert_eq!(offer(&w.handle(&discover(KNOWN_MAC, &[]))).yiaddr(), Ipv4Addr::new(192, 0, 2, 10));
    assert_eq!(offer(&w.handle(&discover(OTHER_MAC, &[]))).yiaddr(), Ipv4Addr::new(192, 0, 3, 10));
    let o = w.handle(&discover(PXE_MAC, &[]));
    assert!(o.reply.is_none());
    assert_eq!(o.counts.get(Counter::Silent(Silence::ClassDrop)), 1);
    let mut late = World::new(&text.replace(r#""early-global-reservations-lookup": true,"#, ""));
    assert_eq!(offer(&late.handle(&discover(KNOWN_MAC, &[]))).yiaddr(), Ipv4Addr::new(192, 0, 3, 10));
}

/// A server identifier configured in a subnet's `option-data` (Forge's
/// `..._classification_server_identifier`): the client the class sends to
/// that subnet gets it as option 54 instead of our address, and its
/// REQUEST naming it is ours.
#[test]
fn a_configured_server_identifier_is_sent_and_accepted() {
    let text = r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] },
        "client-classes": [ { "name": "second", "test": "option[61].hex == 0xff010203ff04f2f2" },
                            { "name": "first", "test": "not member('second')" } ],
        "shared-networks": [ { "name": "lan", "interface": "eth0", "subnet4": [
          { "id": 1, "subnet": "192.0.2.0/24", "client-class": "first", "pools": [ { "pool": "192.0.2.10-192.0.2.10" } ] },
          { "id": 2, "subnet": "192.0.3.0/24", "client-class": "second", "pools": [ { "pool": "192.0.3.10-192.0.3.10" } ],
            "option-data": [ { "name": "dhcp-server-identifier", "data": "11.22.33.123" } ] } ] } ] } }"#;
    let mut w = World::new(text);
    let cid = DhcpOption::ClientIdentifier(vec![0xff, 1, 2, 3, 0xff, 4, 0xf2, 0xf2]);
    let o = w.handle(&discover(PXE_MAC, std::slice::from_ref(&cid)));
    let m = offer(&o);
    assert_eq!((m.yiaddr(), raw(m, 54)), (Ipv4Addr::new(192, 0, 3, 10), Some(vec![11, 22, 33, 123])));
    let u = Ipv4Addr::UNSPECIFIED;
    let mut r = Message::new(u, u, u, u, &PXE_MAC);
    r.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    r.opts_mut().insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(192, 0, 3, 10)));
    r.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(11, 22, 33, 123)));
    r.opts_mut().insert(cid);
    let o = w.handle(&crate::dhcp::inbound::classify(&r.to_vec().unwrap()).unwrap());
    let (ack, _) = o.reply.as_ref().expect("an ACK");
    assert_eq!((ack.opts().msg_type(), raw(ack, 54)), (Some(MessageType::Ack), Some(vec![11, 22, 33, 123])));
    // Everyone else keeps our address.
    let m = w.handle(&discover(OTHER_MAC, &[]));
    assert_eq!(raw(offer(&m), 54), Some(SERVER.octets().to_vec()));
}

/// Forge's lease-cache levels: a shared network on eth0 whose subnets are
/// restricted to two classes, and a plain subnet on eth0 for a third: a
/// client of the third class is served from that subnet (Kea checks a
/// subnet's classes while selecting by interface).
#[test]
fn a_class_skips_a_network_on_its_interface_for_a_subnet_of_its_own() {
    let mut w = World::new(
        r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "authoritative": true, "cache-max-age": 10,
        "client-classes": [ { "name": "c1", "test": "pkt4.mac == 0x020000000001" },
                            { "name": "c2", "test": "pkt4.mac == 0x020000000002" },
                            { "name": "c3", "test": "pkt4.mac == 0x020000000003" } ],
        "shared-networks": [ { "name": "n", "interface": "eth0", "cache-max-age": 2, "subnet4": [
            { "subnet": "192.168.50.0/24", "interface": "eth0", "client-class": "c2", "cache-max-age": 6,
              "pools": [ { "pool": "192.168.50.10-192.168.50.10" } ] },
            { "subnet": "192.168.51.0/24", "client-class": "c3", "pools": [ { "pool": "192.168.51.10-192.168.51.10" } ] } ] } ],
        "subnet4": [ { "subnet": "192.168.52.0/24", "interface": "eth0", "client-class": "c1",
            "pools": [ { "pool": "192.168.52.10-192.168.52.10" } ] } ] } }"#,
    );
    for (mac, addr) in [(PXE_MAC, [192, 168, 52, 10]), (KNOWN_MAC, [192, 168, 50, 10]), (OTHER_MAC, [192, 168, 51, 10])] {
        assert_eq!(offer(&w.handle(&discover(mac, &[]))).yiaddr(), Ipv4Addr::from(addr));
    }
    // A DISCOVER still carrying a ciaddr (as Forge's client sends it) is
    // answered by a frame to chaddr on this link: the subnet is bound to
    // the receiving interface, though not the interface's own subnet.
    let u = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new(Ipv4Addr::new(192, 168, 50, 10), u, u, u, &PXE_MAC);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    let o = w.handle(&crate::dhcp::inbound::classify(&m.to_vec().unwrap()).unwrap());
    let (reply, dest) = o.reply.as_ref().expect("an offer");
    assert_eq!(reply.yiaddr(), Ipv4Addr::new(192, 168, 52, 10));
    assert_eq!(*dest, crate::dhcp::engine::Destination::Chaddr { mac: PXE_MAC, ip: Ipv4Addr::new(192, 168, 50, 10) });
}
