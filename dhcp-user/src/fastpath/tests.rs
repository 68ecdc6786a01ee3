//! Tests of the templates and entries: each is checked against the
//! engine's own reply, without root (the map writer's tests load the XDP
//! program: `tests/xdp_*.rs`).

use dhcp_common::fastpath::{RES_BY_CLIENT_ID, RES_BY_MAC, word_sum};

use super::{reservation::with_store_state, template::split_options, *};
use crate::{config, dhcp::policy::Reservation, glue};

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
    let r = subnet_reply(&p, s, &eth0(), SERVE_PRIMARY, 1_800_000_000).unwrap();
    assert_eq!((r.ifindex, r.serving, r.server_ip, r.link), (7, 1, [192, 168, 50, 2], 1));
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
fn other_interfaces_get_relay_only_templates_and_boot_fields_none() {
    let p = venus_policy();
    let s = &p.subnets[0];
    let other = Interface { index: 9, addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
    let r = subnet_reply(&p, s, &other, SERVE_PRIMARY, 0).unwrap();
    assert_eq!((r.ifindex, r.link, r.server_ip), (9, 0, [10, 0, 0, 1]), "option 54 is the receiving interface's");
    let head = &r.head[..r.head_len as usize];
    assert!(head.windows(6).any(|w| w == [54, 4, 10, 0, 0, 1]), "{head:?}");
    let mut s2 = s.clone();
    s2.boot_file_name = Some("pxelinux.0".into());
    assert_eq!(subnet_reply(&p, &s2, &eth0(), SERVE_PRIMARY, 0).unwrap_err(), NotEligible::BootFields);
}

#[test]
fn split_drops_the_probes_client_id_echo() {
    let opts = [1, 4, 255, 255, 255, 0, 53, 1, 2, 61, 3, 1, 2, 3, 119, 2, 0, 0, 255];
    let (head, tail) = split_options(&opts).unwrap();
    assert_eq!(head, [1, 4, 255, 255, 255, 0, 53, 1, 2]);
    assert_eq!(tail, [119, 2, 0, 0, 255]);
}

/// Three subnets, one nested in another and listed after it (the
/// config refuses overlaps; the map must not depend on that), one with
/// relay addresses (one inside another subnet).
fn relay_policy() -> Policy {
    let cfg = crate::config::parse(
        r#"{ "Dhcp4": { "interfaces-config": { "interfaces": ["eth0"] }, "subnet4": [
            { "id": 1, "subnet": "10.0.0.0/16", "pools": [ { "pool": "10.0.1.10-10.0.1.20" } ] },
            { "id": 3, "subnet": "192.168.60.0/24", "pools": [ { "pool": "192.168.60.100-192.168.60.149" } ],
              "relay": { "ip-addresses": [ "10.0.5.1", "172.16.0.1" ] } } ] } }"#,
        "test",
    )
    .unwrap();
    let mut p = crate::glue::compile(&cfg);
    let mut nested = p.subnets[0].clone();
    (nested.id, nested.network, nested.prefix_len) = (2, Ipv4Addr::new(10, 0, 5, 0), 24);
    p.subnets.insert(1, nested);
    p
}

/// The LPM trie's answer for `g`, computed as the kernel does.
fn longest_match(entries: &BTreeMap<(u32, [u8; 4]), u32>, g: Ipv4Addr) -> Option<u32> {
    entries
        .iter()
        .filter(|((len, net), _)| {
            let mask = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(g) & mask == u32::from(Ipv4Addr::from(*net))
        })
        .max_by_key(|((len, _), _)| *len)
        .map(|(_, id)| *id)
}

#[test]
fn relay_map_longest_match_is_the_daemons_first_match() {
    let p = relay_policy();
    let entries = relay_entries(&p);
    // The nested /24 is the /16's (config order), the relay address wins.
    assert_eq!(longest_match(&entries, Ipv4Addr::new(10, 0, 5, 7)), Some(1));
    assert_eq!(longest_match(&entries, Ipv4Addr::new(10, 0, 5, 1)), Some(3));
    assert_eq!(longest_match(&entries, Ipv4Addr::new(172, 16, 0, 1)), Some(3));
    assert_eq!(longest_match(&entries, Ipv4Addr::new(172, 16, 0, 2)), None);
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut probes: Vec<Ipv4Addr> = (0..20_000)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Mostly near the configured prefixes, some anywhere.
            let base = [0x0a00_0000u32, 0x0a00_0500, 0xc0a8_3c00, 0xac10_0000, rng as u32][(rng >> 40) as usize % 5];
            Ipv4Addr::from(base ^ ((rng >> 8) as u32 & 0x0000_07ff))
        })
        .collect();
    probes.extend(p.subnets.iter().flat_map(|s| s.relay_addresses.clone()));
    for g in probes {
        assert_eq!(longest_match(&entries, g), p.subnet_for_relay(g).map(|s| s.id), "{g}");
    }
}

#[test]
fn serving_bits_follow_the_scope_filter() {
    use crate::ha::{Query, ScopeFilter};
    let filters = [HaMode::LoadBalancing, HaMode::HotStandby].into_iter().flat_map(|mode| {
        [(false, false), (true, false), (false, true), (true, true)]
            .map(|(primary, secondary)| ScopeFilter { mode, primary, secondary })
    });
    for f in filters {
        let bits = SubnetServing::Scopes(f).bits();
        for i in 0u32..2000 {
            let mac = [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0x5a];
            for kind in [1u8, 3] {
                let q = Query { msg_type: kind, chaddr: &mac, client_id: None, secs: 0 };
                let kernel = bits != 0 && dhcp_common::ha::serves(bits, dhcp_common::ha::rfc3074_hash(&mac));
                assert_eq!(kernel, f.in_scope(&q), "{f:?} {mac:02x?}");
            }
        }
    }
    assert_eq!(SubnetServing::All.bits(), SERVE_PRIMARY);
    assert_eq!(SubnetServing::Off.bits(), 0);
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
fn reservation_template_is_the_engines_offer_with_hostname() {
    let p = venus_policy();
    let s = &p.subnets[0];
    let (mac, r) = s.by_hwaddr.iter().next().unwrap();
    let who = ResId::Mac(mac.as_slice().try_into().unwrap());
    let (k, e) = reservation_entry(&p, s, &who, r, &eth0(), 0, SERVE_PRIMARY, 1_800_000_000).unwrap();
    assert_eq!((&k.id[..6], k.kind, k.len, k.ifindex, k.relay_subnet), (&[2, 0, 0, 0, 0, 3][..], RES_BY_MAC, 6, 7, 0));
    assert_eq!((Ipv4Addr::from(e.addr), e.subnet_id, e.authoritative, e.client_hostname), (r.address, 1, 1, 0));
    let head = &e.reply.head[..e.reply.head_len as usize];
    assert_eq!(head[e.type_off as usize], 2, "an OFFER; the kernel writes 5 for an ACK");
    assert_eq!(head[e.type_off as usize - 2], 53);
    assert!(head.windows(10).any(|w| w == b"\x0c\x08mutante3"), "hostname option 12");
    assert_eq!(e.reply.head_sum, word_sum(head));
    // Received directly on another link: no entry; relayed there: one.
    let other = Interface { addrs: vec![(Ipv4Addr::new(10, 0, 0, 1), 8)], ..eth0() };
    assert_eq!(reservation_entry(&p, s, &who, r, &other, 0, 1, 0).unwrap_err(), NotEligible::NoInterface);
    let (k, e) = reservation_entry(&p, s, &who, r, &other, 1, 1, 0).unwrap();
    assert_eq!((k.relay_subnet, e.reply.server_ip), (1, [10, 0, 0, 1]));
    // By client-id: probed with option 61, whose echo the kernel writes.
    let mut p = p.clone();
    let by_cid = Reservation { address: Ipv4Addr::new(192, 168, 50, 44), hostname: None, options: Default::default() };
    p.subnets[0].by_client_id.insert(vec![1, 2, 3, 4], by_cid.clone());
    let host = crate::dhcp::policy::Host { address: Some(by_cid.address), hostname: None, options: Default::default(), classes: Vec::new() };
    p.subnets[0].hosts.by_client_id.insert(vec![1, 2, 3, 4], host);
    p.subnets[0].reserved.insert(by_cid.address, ());
    let cid = ResId::ClientId(vec![1, 2, 3, 4]);
    let (k, e) = reservation_entry(&p, &p.subnets[0], &cid, &by_cid, &eth0(), 0, 1, 0).unwrap();
    assert_eq!((k.kind, k.len, &k.id[..4], e.by_client_id), (RES_BY_CLIENT_ID, 4, &[1, 2, 3, 4][..], 1));
    let head = &e.reply.head[..e.reply.head_len as usize];
    assert!(!head.windows(3).any(|w| w == [61, 4, 1]), "no probe echo in the template");
}

#[test]
fn reservation_is_clean_only_when_the_store_agrees() {
    use crate::leases::HwAddr;
    let p = venus_policy();
    let s = &p.subnets[0];
    let (mac, r) = s.by_hwaddr.iter().next().unwrap();
    let mac: [u8; 6] = mac.as_slice().try_into().unwrap();
    let who = ResId::Mac(mac);
    let (_, e) = reservation_entry(&p, s, &who, r, &eth0(), 0, 1, 0).unwrap();
    let mk = |addr: Ipv4Addr, mac: [u8; 6]| Lease::new(addr, Some(HwAddr::ethernet(mac)), None, 1, 1_800_000_000, 60);
    let free = with_store_state(e, &who, true, None, std::iter::empty());
    assert_eq!((free.clean, free.held), (1, 0));
    let own = mk(r.address, mac);
    let held = with_store_state(e, &who, true, Some(&own), [&own].into_iter());
    assert_eq!((held.clean, held.held), (1, 1));
    let theirs = mk(r.address, [2, 0, 0, 0, 0, 9]);
    assert_eq!(with_store_state(e, &who, true, Some(&theirs), std::iter::empty()).clean, 0);
    let other = mk(Ipv4Addr::new(192, 168, 50, 150), mac);
    assert_eq!(with_store_state(e, &who, true, None, [&other].into_iter()).clean, 0);
    // A client-id reservation holds its address only by client-id, and
    // only under match-client-id.
    let cid = ResId::ClientId(vec![1, 2, 3, 4]);
    let mut by_cid = mk(r.address, [2, 0, 0, 0, 0, 9]);
    by_cid.client_id = Some(crate::leases::ClientId::new(vec![1, 2, 3, 4]).unwrap());
    let h = with_store_state(e, &cid, true, Some(&by_cid), [&by_cid].into_iter());
    assert_eq!((h.clean, h.held, h.held_cid_len), (1, 1, 4));
    assert_eq!(with_store_state(e, &cid, false, Some(&by_cid), std::iter::empty()).clean, 0);
    assert_eq!(with_store_state(e, &cid, true, Some(&theirs), std::iter::empty()).clean, 0);
}

#[test]
fn prl_pass_marks_configured_options_not_sent_by_default() {
    let mut p = venus_policy();
    let ntp = crate::dhcp::policy::OptionValue { data: vec![192, 168, 50, 9], always_send: false };
    p.subnets[0].options.insert(42, ntp.clone());
    // Pools carry effective options: a subnet-level change shows there too.
    p.subnets[0].pools[0].options.insert(42, ntp);
    let r = subnet_reply(&p, &p.subnets[0], &eth0(), SERVE_PRIMARY, 0).unwrap();
    let bit = |c: u8| r.prl_pass[usize::from(c >> 3)] & (1 << (c & 7)) != 0;
    assert!(bit(42), "NTP is only sent when requested: the kernel must pass such clients");
    assert!(!bit(3) && !bit(6) && !bit(15) && !bit(1), "basic options are always in the template");
}
