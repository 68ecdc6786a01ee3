//! Option 81 (client FQDN): Kea's name and flags in the reply, the name
//! stored, and how a name ends lease caching.

use super::*;

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
