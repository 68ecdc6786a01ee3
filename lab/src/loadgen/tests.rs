//! Unit tests of the pure parts: the clients and their lease file, the
//! request frame and its checksums, and how replies are parsed and judged.

use std::time::Duration;

use super::*;
use super::frame::{PARAMS, checksum, udp_checksum, word};
use super::reply::option;

const SERVER: Server = Server { mac: [0x02, 0, 0, 0, 0x50, 2], ip: Ipv4Addr::new(192, 168, 50, 2) };

fn client() -> Client {
    clients(1, Ipv4Addr::new(192, 168, 64, 1))[0]
}

/// The answer a server would send to `req`: op 2, type `msg_type`,
/// `yiaddr`, addresses and ports swapped.
fn answer(req: &[u8], msg_type: u8, yiaddr: Ipv4Addr) -> Vec<u8> {
    let mut f = req.to_vec();
    f.copy_within(0..6, 6);
    f[0..6].copy_from_slice(&req[6..12]);
    f[IP + 12..IP + 16].copy_from_slice(&req[IP + 16..IP + 20]);
    f[IP + 16..IP + 20].copy_from_slice(&req[IP + 12..IP + 16]);
    f[UDP..UDP + 4].copy_from_slice(&[0, 67, 0, 68]);
    f[BOOTP] = 2;
    f[YIADDR..YIADDR + 4].copy_from_slice(&yiaddr.octets());
    f[OPTIONS + 2] = msg_type;
    f
}

#[test]
fn clients_skip_network_and_broadcast_looking_addresses() {
    let c = clients(300, Ipv4Addr::new(192, 168, 64, 250));
    assert_eq!(c.len(), 300);
    assert_eq!(c[0].addr, Ipv4Addr::new(192, 168, 64, 250));
    assert_eq!(c[4].addr, Ipv4Addr::new(192, 168, 64, 254));
    assert_eq!(c[5].addr, Ipv4Addr::new(192, 168, 65, 1));
    assert_eq!(c[5].mac, [0x02, 0x4c, 192, 168, 65, 1]);
    let macs: std::collections::HashSet<_> = c.iter().map(|c| c.mac).collect();
    assert_eq!(macs.len(), 300);
}

#[test]
fn lease_csv_is_kea_memfile() {
    let csv = lease_csv(&clients(2, Ipv4Addr::new(10, 0, 0, 1)), 1, 86400, 1_900_000_000);
    assert_eq!(
        csv,
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
         10.0.0.1,02:4c:0a:00:00:01,,86400,1900000000,1,0,0,,0,\n\
         10.0.0.2,02:4c:0a:00:00:02,,86400,1900000000,1,0,0,,0,\n"
    );
}

#[test]
fn renew_frame_is_a_renewing_request_with_valid_checksums() {
    let c = client();
    let f = renew_frame(&c, &SERVER, 0xdead_beef);
    assert_eq!(f.len(), FRAME_LEN);
    assert_eq!((&f[0..6], &f[6..12], word(&f, 12)), (&SERVER.mac[..], &c.mac[..], 0x0800));
    assert_eq!(checksum(&f[IP..UDP], 0), 0, "IP header sums to zero with its checksum");
    assert_eq!(usize::from(word(&f, IP + 2)), FRAME_LEN - IP);
    assert_eq!((&f[IP + 12..IP + 16], &f[IP + 16..IP + 20]), (&[192, 168, 64, 1][..], &[192, 168, 50, 2][..]));
    assert_eq!((word(&f, UDP), word(&f, UDP + 2), usize::from(word(&f, UDP + 4))), (68, 67, FRAME_LEN - UDP));
    assert_eq!(word(&f, UDP + 6), udp_checksum(&f));
    assert_eq!(&f[BOOTP..BOOTP + 8], &[1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(&f[CIADDR..CIADDR + 4], &[192, 168, 64, 1], "ciaddr: RENEWING");
    assert_eq!(&f[YIADDR..CHADDR], &[0; 12], "yiaddr, siaddr, giaddr zero: not relayed");
    assert_eq!(&f[CHADDR..CHADDR + 16], &[2, 0x4c, 192, 168, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let opts = &f[OPTIONS..];
    assert_eq!(option(opts, 53), Some(&[3][..]), "DHCPREQUEST");
    assert_eq!(option(opts, 55), Some(&PARAMS[..]));
    assert_eq!((option(opts, 50), option(opts, 54)), (None, None), "no requested address or server id");
    // dhcproto-free cross-check: the request parses back as our own.
    let Parsed::NotReply = parse_reply(&f) else { panic!("68→67 is not a reply") };
}

#[test]
fn set_xid_matches_a_full_recompute() {
    let mut f = renew_frame(&client(), &SERVER, 0);
    for xid in [1u32, 0xffff_ffff, 0x8000_0000, 0x0001_0000, 0x1234_5678, 0, 0xfffe_0001] {
        set_xid(&mut f, xid);
        assert_eq!(f, renew_frame(&client(), &SERVER, xid), "xid {xid:#x}");
    }
}

#[test]
fn an_ack_for_a_sent_xid_is_counted_once_by_seq() {
    let cs = clients(3, Ipv4Addr::new(192, 168, 64, 1));
    let base = 1000;
    // Request 4 went to client 4 % 3 = 1.
    let req = renew_frame(&cs[1], &SERVER, base + 4);
    let ack = answer(&req, 5, cs[1].addr);
    let Parsed::Reply(r) = parse_reply(&ack) else { panic!() };
    assert_eq!((r.kind, r.xid, r.yiaddr, r.ciaddr), (Kind::Ack, base + 4, cs[1].addr, cs[1].addr));
    assert_eq!(judge(&r, base, 5, &cs), Verdict::Ack(4));
    assert_eq!(judge(&r, base, 4, &cs), Verdict::Invalid, "xid not sent yet");
    assert_eq!(judge(&r, base + 1, 5, &cs), Verdict::Invalid, "xid of another client");
}

#[test]
fn wrong_acks_naks_and_echoes() {
    let cs = clients(2, Ipv4Addr::new(192, 168, 64, 1));
    let req = renew_frame(&cs[0], &SERVER, 7);
    let judged = |f: &[u8]| match parse_reply(f) {
        Parsed::Reply(r) => judge(&r, 7, 1, &cs),
        Parsed::Malformed => Verdict::Invalid,
        Parsed::NotReply => panic!("not a reply"),
    };
    assert_eq!(judged(&answer(&req, 5, cs[1].addr)), Verdict::Invalid, "yiaddr is not the lease");
    assert_eq!(judged(&answer(&req, 2, cs[0].addr)), Verdict::Invalid, "an OFFER");
    assert_eq!(judged(&answer(&req, 6, Ipv4Addr::UNSPECIFIED)), Verdict::Nak(0));
    let mut other_mac = answer(&req, 5, cs[0].addr);
    other_mac[CHADDR + 5] ^= 1;
    assert_eq!(judged(&other_mac), Verdict::Invalid, "chaddr is not the client's");
    let mut no_cookie = answer(&req, 5, cs[0].addr);
    no_cookie[COOKIE] = 0;
    assert_eq!(parse_reply(&no_cookie), Parsed::Malformed);
    assert_eq!(parse_reply(&answer(&req, 5, cs[0].addr)[..OPTIONS]), Parsed::Malformed, "cut short");
    // The echo: the request with addresses and ports swapped, op 1.
    let mut echo = answer(&req, 3, Ipv4Addr::UNSPECIFIED);
    echo[BOOTP] = 1;
    assert_eq!(judged(&echo), Verdict::Echo(0));
    let mut arp = req.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(parse_reply(&arp), Parsed::NotReply);
}

#[test]
fn options_walk_skips_pads_and_stops_at_end_or_truncation() {
    assert_eq!(option(&[0, 0, 53, 1, 5, 255], 53), Some(&[5][..]));
    assert_eq!(option(&[1, 4, 255, 255, 255, 0, 53, 1, 6], 53), Some(&[6][..]));
    assert_eq!(option(&[255, 53, 1, 5], 53), None);
    assert_eq!(option(&[53, 4, 5], 53), None);
    assert_eq!(option(&[53], 53), None);
}

#[test]
fn stats_rates() {
    let s = Stats {
        sent: 1000,
        acked: 900,
        naks: 10,
        echoed: 0,
        sending: Duration::from_millis(500),
        ..Stats::default()
    };
    assert_eq!((s.acks_per_s(), s.sent_per_s(), s.unanswered()), (1800.0, 2000.0, 90));
    assert_eq!(Stats::default().acks_per_s(), 0.0);
}
