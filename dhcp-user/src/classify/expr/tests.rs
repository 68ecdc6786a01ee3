//! The expression language against the ARM's table of values and
//! expressions (Kea 2.2, "Using Expressions in Classification"), on real
//! encoded packets, and a property test that parsing never panics.

use std::net::Ipv4Addr;

use dhcproto::{Encodable as _, v4};
use proptest::prelude::*;

use super::*;

struct Cx;

impl Context for Cx {
    fn option_code(&self, name: &str) -> Option<u8> {
        match name {
            "host-name" => Some(12),
            "vendor-class-identifier" => Some(60),
            "dhcp-agent-options" => Some(82),
            _ => None,
        }
    }
    fn is_string_option(&self, code: u8) -> bool {
        matches!(code, 12 | 60)
    }
    fn class(&self, name: &str) -> Option<bool> {
        match name {
            "KNOWN" | "UNKNOWN" => Some(true),
            "ALL" | "foobar" => Some(false),
            _ => None,
        }
    }
}

/// A DISCOVER from 01:02:03:04:05:06 relayed by 192.0.2.1, xid 12345,
/// with the options of the ARM's examples.
fn packet() -> Vec<u8> {
    let mut m = v4::Message::new(
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 1),
        &[1, 2, 3, 4, 5, 6],
    );
    m.set_xid(12345);
    m.set_htype(v4::HType::from(6));
    let o = m.opts_mut();
    o.insert(v4::DhcpOption::MessageType(v4::MessageType::Discover));
    o.insert(v4::DhcpOption::Unknown(v4::UnknownOption::new(v4::OptionCode::from(123), b"10.0.0.1".to_vec())));
    // Option 12 with a sub-option-shaped payload, as option[12].option[34].
    o.insert(v4::DhcpOption::Hostname("\"\x04abcd".into()));
    o.insert(v4::DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000\0".to_vec()));
    // 124: enterprise 4491, chunks "docsis3.0" then (after 4491 again) "x".
    let mut vivco = 4491u32.to_be_bytes().to_vec();
    vivco.push(9);
    vivco.extend(b"docsis3.0");
    vivco.extend(4491u32.to_be_bytes());
    vivco.extend([1, b'x']);
    o.insert(v4::DhcpOption::Unknown(v4::UnknownOption::new(v4::OptionCode::from(124), vivco)));
    // 125: enterprise 4491, sub-option 1 "docsis3.0".
    let mut vivso = 4491u32.to_be_bytes().to_vec();
    vivso.extend([11, 1, 9]);
    vivso.extend(b"docsis3.0");
    o.insert(v4::DhcpOption::Unknown(v4::UnknownOption::new(v4::OptionCode::from(125), vivso)));
    let mut bytes = m.to_vec().unwrap();
    // Option 82 with circuit-id "eth0/1" and remote-id 0x0a0b, written by
    // hand (sub-options out of code order, as a relay may).
    let end = bytes.iter().rposition(|&b| b == 255).unwrap();
    bytes.truncate(end);
    bytes.extend([82, 12, 2, 2, 0x0a, 0x0b, 1, 6]);
    bytes.extend(b"eth0/1");
    bytes.push(255);
    bytes
}

fn pkt(bytes: &[u8]) -> Packet<'_> {
    Packet { bytes, iface: "eth0", src: Ipv4Addr::new(10, 1, 2, 3), dst: Ipv4Addr::new(10, 1, 2, 3) }
}

fn member(c: &str) -> bool {
    c == "foobar"
}

fn value(text: &str) -> Vec<u8> {
    let e = parse_string(text, &Cx).unwrap_or_else(|e| panic!("{text}: {e}"));
    let b = packet();
    eval_str(&e, &pkt(&b), &member).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn truth(text: &str) -> bool {
    let e = parse_bool(text, &Cx).unwrap_or_else(|e| panic!("{text}: {e}"));
    let b = packet();
    eval_bool(&e.expr, &pkt(&b), &member).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn values_from_the_arm_table() {
    let table: &[(&str, &[u8])] = &[
        ("'example'", b"example"),
        ("0x5a7d", b"Z}"),
        ("10.0.0.1", &[10, 0, 0, 1]),
        ("123", &[0, 0, 0, 123]),
        ("option[123].hex", b"10.0.0.1"),
        ("option[12].option[34].hex", b"abcd"),
        ("relay4[1].hex", b"eth0/1"),
        ("relay4[2].hex", &[0x0a, 0x0b]),
        ("pkt.iface", b"eth0"),
        ("pkt.src", &[10, 1, 2, 3]),
        ("pkt.dst", &[10, 1, 2, 3]),
        ("pkt4.mac", &[1, 2, 3, 4, 5, 6]),
        ("pkt4.hlen", &[0, 0, 0, 6]),
        ("pkt4.htype", &[0, 0, 0, 6]),
        ("pkt4.ciaddr", &[192, 0, 2, 1]),
        ("pkt4.giaddr", &[192, 0, 2, 1]),
        ("pkt4.yiaddr", &[192, 0, 2, 1]),
        ("pkt4.siaddr", &[192, 0, 2, 1]),
        ("pkt4.msgtype", &[0, 0, 0, 1]),
        ("pkt4.transid", &12345u32.to_be_bytes()),
        ("vendor.enterprise", &4491u32.to_be_bytes()),
        ("vendor[4491].option[1].hex", b"docsis3.0"),
        ("vendor-class.enterprise", &4491u32.to_be_bytes()),
        ("vendor-class[4491].data", b"docsis3.0"),
        ("vendor-class[4491].data[1]", b"x"),
        ("vendor-class[4491].data[3]", b""),
        ("option[99].hex", b""),
        ("relay4[9].hex", b""),
        // Option 60 as Kea reads it: a string, trailing NUL dropped.
        ("option[60].hex", b"PXEClient:Arch:00000"),
        ("option[vendor-class-identifier].text", b"PXEClient:Arch:00000"),
        ("option[82].hex", &[1, 6, b'e', b't', b'h', b'0', b'/', b'1', 2, 2, 0x0a, 0x0b]),
        ("option[123].text", b"type=123, len=008: 31:30:2e:30:2e:30:2e:31"),
        ("substring('foobar',0,3)", b"foo"),
        ("substring('foobar',-3,all)", b"bar"),
        ("substring('foobar',3,-2)", b"oo"),
        ("substring('foobar',1,all)", b"oobar"),
        ("substring('foobar',9,1)", b""),
        ("concat('foo','bar')", b"foobar"),
        ("'foo' + 'bar'", b"foobar"),
        ("ifelse('foo' == 'bar','us','them')", b"them"),
        ("hexstring('foo', '-')", b"66-6f-6f"),
        ("hexstring(pkt4.mac, ':')", b"01:02:03:04:05:06"),
        ("split('foo.bar', '.', 2)", b"bar"),
        ("split('foo.bar', '.', 3)", b""),
        ("split('a.b,c', '.,', 3)", b"c"),
        ("addrtotext(192.10.0.1)", b"192.10.0.1"),
        ("addrtotext(2003:db8::)", b"2003:db8::"),
        ("int8totext(0xff)", b"-1"),
        ("int16totext(0xffff)", b"-1"),
        ("int32totext(0xffffffff)", b"-1"),
        ("uint8totext(0xff)", b"255"),
        ("uint16totext(0xffff)", b"65535"),
        ("uint32totext(4294967295)", b"4294967295"),
        ("uint32totext(pkt4.transid)", b"12345"),
        ("substring(option[60].hex,0,9)", b"PXEClient"),
    ];
    for (text, want) in table {
        assert_eq!(value(text), *want, "{text}");
    }
}

#[test]
fn booleans_from_the_arm_table() {
    let table: &[(&str, bool)] = &[
        ("option[123].exists", true),
        ("option[124].exists", true),
        ("option[99].exists", false),
        ("option[12].option[34].exists", true),
        ("option[12].option[35].exists", false),
        ("relay4[1].exists", true),
        ("relay4[5].exists", false),
        ("member('foobar')", true),
        ("member('ALL')", false),
        ("vendor[*].exists", true),
        ("vendor[0].exists", true),
        ("vendor[4491].exists", true),
        ("vendor[4492].exists", false),
        ("vendor[4491].option[1].exists", true),
        ("vendor[4491].option[2].exists", false),
        ("vendor-class[*].exists", true),
        ("vendor-class[4491].exists", true),
        ("vendor-class[1].exists", false),
        ("'foo' == 'bar'", false),
        ("not ('foo' == 'bar')", true),
        ("('foo' == 'bar') and ('bar' == 'foo')", false),
        ("('foo' == 'bar') or ('bar' == 'bar')", true),
        ("not 'a' == 'b' and 'c' == 'c'", true),
        ("'a' == 'b' and 'c' == 'c' or 'd' == 'd'", true),
        ("'a' == 'b' and ('c' == 'c' or 'd' == 'd')", false),
        ("('fo' + 'o') == 'foo'", true),
        ("substring(option[60].hex,0,9) == 'PXEClient'", true),
        ("option[60].text == 'PXEClient:Arch:00000'", true),
        ("pkt4.msgtype == 1", true),
        ("pkt4.mac == 0x010203040506", true),
        ("relay4[1].hex == 'eth0/1'", true),
        ("hexstring(pkt4.mac, ':') == '01:02:03:04:05:06'", true),
        ("ifelse(option[99].exists, 'a', 'b') == 'b'", true),
        // The ARM's substring examples.
        ("substring('foobar', 0, 6) == 'foobar'", true),
        ("substring('foobar', 3, 3) == 'bar'", true),
        ("substring('foobar', 3, all) == 'bar'", true),
        ("substring('foobar', 1, 4) == 'ooba'", true),
        ("substring('foobar', -5, 4) == 'ooba'", true),
        ("substring('foobar', -1, -3) == 'oba'", true),
        ("substring('foobar', 4, -2) == 'ob'", true),
        ("substring('foobar', 10, 2) == ''", true),
    ];
    for (text, want) in table {
        assert_eq!(truth(text), *want, "{text}");
    }
}

#[test]
fn membership_of_known_defers_evaluation() {
    assert!(parse_bool("member('KNOWN')", &Cx).unwrap().depends_on_known);
    assert!(parse_bool("not member('UNKNOWN') and 'a' == 'a'", &Cx).unwrap().depends_on_known);
    assert!(!parse_bool("member('foobar')", &Cx).unwrap().depends_on_known);
}

#[test]
fn conversion_errors_are_evaluation_errors() {
    let b = packet();
    for text in ["uint16totext(0x01) == ''", "addrtotext(0x010203) == ''"] {
        let e = parse_bool(text, &Cx).unwrap();
        assert!(eval_bool(&e.expr, &pkt(&b), &member).is_err(), "{text}");
    }
    // An empty operand stays empty, as in Kea.
    assert_eq!(value("uint16totext(option[99].hex)"), b"");
}

#[test]
fn errors_name_the_column() {
    let err = |t: &str| parse_bool(t, &Cx).unwrap_err();
    assert_eq!(err("option[300].hex == 'a'").column, 8);
    assert!(err("option[300].hex == 'a'").message.contains("0..255"));
    assert_eq!(err("member('nope')").column, 8);
    assert_eq!(err("member('nope')").message, "Not defined client class 'nope'");
    assert_eq!(err("option[no-such].exists").column, 8);
    assert_eq!(err("'a' == ").column, 8);
    assert_eq!(err("'a' 'b'").column, 5);
    assert_eq!(err("pkt4.mac").column, 9);
    assert!(err("relay6[0].peeraddr == ::1").message.contains("DHCPv6"));
    assert!(err("pkt6.msgtype == 1").message.contains("DHCPv6"));
    assert!(err("option[60].text").message.contains("=="));
    assert_eq!(err("'a' == 'b' )").column, 12);
    // `known` is in the ARM's table but not in Kea 2.2's grammar.
    assert!(parse_bool("known", &Cx).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    /// Arbitrary text never panics the parser: it parses or gets an error.
    #[test]
    fn parser_never_panics(text in "\\PC{0,60}") {
        let _ = parse_bool(&text, &Cx);
        let _ = parse_string(&text, &Cx);
    }

    /// Token soup from the language's own words never panics either, and
    /// whatever parses evaluates without panicking.
    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(prop::sample::select(vec![
        "option", "[", "]", ".", "hex", "text", "exists", "==", "and", "or", "not", "(", ")", "'a'", "0x01",
        "12", "-1", "substring", "split", ",", "all", "concat", "+", "ifelse", "member", "'foobar'", "relay4",
        "vendor", "vendor-class", "*", "data", "enterprise", "pkt4", "mac", "pkt", "len", "uint8totext",
        "addrtotext", "10.0.0.1", "hexstring", "host-name",
    ]), 0..16)) {
        let text = words.join(" ");
        let b = packet();
        if let Ok(p) = parse_bool(&text, &Cx) {
            let _ = eval_bool(&p.expr, &pkt(&b), &member);
        }
        if let Ok(s) = parse_string(&text, &Cx) {
            let _ = eval_str(&s, &pkt(&b), &member);
        }
    }
}
