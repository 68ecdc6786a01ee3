//! Kea 2.2 and xdhcp agree on which option configurations are valid.
//!
//! Each case is a `Dhcp4.option-def` and `Dhcp4.option-data` pair around
//! one subnet. `kea-dhcp4 -t` (Debian's Kea 2.2, installed by `cargo xtask
//! setup`) and xdhcp's loader must both accept it or both refuse it; the
//! few configurations xdhcp refuses on purpose are listed with the reason.
//! Skipped when kea-dhcp4 is not installed.

use std::process::Command;

/// (name, option-def list, option-data list). `{LONG}` stands for 300 `a`s.
const CASES: &[(&str, &str, &str)] = &[
    ("routers ok", r#"[]"#, r#"[{"name": "routers", "data": "10.0.0.1"}]"#),
    ("routers v6", r#"[]"#, r#"[{"name": "routers", "data": "fe80::1"}]"#),
    ("routers empty", r#"[]"#, r#"[{"name": "routers", "data": ""}]"#),
    ("mtu table empty", r#"[]"#, r#"[{"name": "path-mtu-plateau-table", "data": ""}]"#),
    ("domain-search empty", r#"[]"#, r#"[{"name": "domain-search", "data": ""}]"#),
    ("v4-lost root", r#"[]"#, r#"[{"name": "v4-lost", "data": "."}]"#),
    ("v4-lost name", r#"[]"#, r#"[{"name": "v4-lost", "data": "example.com"}]"#),
    ("domain-name two", r#"[]"#, r#"[{"name": "domain-name", "data": "a.com, b.com"}]"#),
    ("client-ndi 4", r#"[]"#, r#"[{"name": "client-ndi", "data": "1,2,3,4"}]"#),
    ("client-ndi 2", r#"[]"#, r#"[{"name": "client-ndi", "data": "1,2"}]"#),
    ("dup routers", r#"[]"#, r#"[{"name": "routers", "data": "10.0.0.1"}, {"code": 3, "data": "10.0.0.2"}]"#),
    ("lease time", r#"[]"#, r#"[{"name": "dhcp-lease-time", "data": "60"}]"#),
    ("msg type", r#"[]"#, r#"[{"name": "dhcp-message-type", "data": "1"}]"#),
    ("code 0", r#"[]"#, r#"[{"code": 0, "data": "01"}]"#),
    ("code 255", r#"[]"#, r#"[{"code": 255, "data": "01"}]"#),
    ("code 256", r#"[]"#, r#"[{"code": 256, "data": "01"}]"#),
    ("name unknown", r#"[]"#, r#"[{"name": "routerz", "data": "10.0.0.1"}]"#),
    ("name+code unknown", r#"[]"#, r#"[{"name": "foo", "code": 176, "data": "7b"}]"#),
    ("csv true no def", r#"[]"#, r#"[{"code": 176, "csv-format": true, "data": "7b"}]"#),
    ("name mismatch", r#"[]"#, r#"[{"name": "routers", "code": 4, "data": "10.0.0.1"}]"#),
    ("43 empty", r#"[]"#, r#"[{"name": "vendor-encapsulated-options"}]"#),
    ("43 data", r#"[]"#, r#"[{"name": "vendor-encapsulated-options", "data": "01"}]"#),
    ("43 hex", r#"[]"#, r#"[{"code": 43, "csv-format": false, "data": "010100"}]"#),
    ("43 hex trunc", r#"[]"#, r#"[{"code": 43, "csv-format": false, "data": "0105"}]"#),
    ("vivso", r#"[]"#, r#"[{"name": "vivso-suboptions", "data": "4491"}]"#),
    ("vivso hex short", r#"[]"#, r#"[{"name": "vivso-suboptions", "csv-format": false, "data": "0000"}]"#),
    ("vivso hex trunc", r#"[]"#, r#"[{"name": "vivso-suboptions", "csv-format": false, "data": "0000118b050204"}]"#),
    ("vivco bad", r#"[]"#, r#"[{"name": "vivco-suboptions", "data": "4491, 0a0b"}]"#),
    ("vivco ok", r#"[]"#, r#"[{"name": "vivco-suboptions", "data": "4491, 03616263"}]"#),
    ("vivco short", r#"[]"#, r#"[{"name": "vivco-suboptions", "data": "4491"}]"#),
    ("tftp 4491", r#"[]"#, r#"[{"name": "tftp-servers", "space": "vendor-4491", "data": "10.0.0.1"}]"#),
    ("tftp 4491 by code", r#"[]"#, r#"[{"code": 2, "space": "vendor-4491", "data": "10.0.0.1"}]"#),
    ("oro 4491 empty", r#"[]"#, r#"[{"name": "oro", "space": "vendor-4491", "data": ""}]"#),
    ("space dhcp6", r#"[]"#, r#"[{"name": "routers", "space": "dhcp6", "data": "10.0.0.1"}]"#),
    ("space bad", r#"[]"#, r#"[{"code": 1, "space": "-x", "data": "01"}]"#),
    ("space custom no def", r#"[]"#, r#"[{"code": 1, "space": "isc", "data": "01"}]"#),
    ("space custom name no def", r#"[]"#, r#"[{"name": "x", "space": "isc", "data": "01"}]"#),
    ("space custom code 0", r#"[]"#, r#"[{"code": 0, "space": "isc", "data": "01"}]"#),
    ("hex bad", r#"[]"#, r#"[{"code": 6, "csv-format": false, "data": "C000020Z1"}]"#),
    ("hex addr", r#"[]"#, r#"[{"code": 6, "csv-format": false, "data": "199.0.2.1"}]"#),
    ("hex ok", r#"[]"#, r#"[{"code": 6, "csv-format": false, "data": "C0000201"}]"#),
    ("hex odd list", r#"[]"#, r#"[{"code": 6, "csv-format": false, "data": "C00002"}]"#),
    ("hex subnet-mask long", r#"[]"#, r#"[{"code": 1, "csv-format": false, "data": "ffffff0001"}]"#),
    ("hex quoted string", r#"[]"#, r#"[{"code": 15, "csv-format": false, "data": "'abc'"}]"#),
    ("hex string nul", r#"[]"#, r#"[{"code": 15, "csv-format": false, "data": "00"}]"#),
    ("bool hex 2", r#"[]"#, r#"[{"code": 19, "csv-format": false, "data": "02"}]"#),
    ("uint8 hex long", r#"[]"#, r#"[{"code": 23, "csv-format": false, "data": "0102"}]"#),
    ("uint8 hex tlv", r#"[]"#, r#"[{"code": 23, "csv-format": false, "data": "01020100"}]"#),
    ("fqdn list hex comp", r#"[]"#, r#"[{"code": 119, "csv-format": false, "data": "016103636f6d00016200"}]"#),
    ("client-id", r#"[]"#, r#"[{"name": "dhcp-client-identifier", "data": "0102"}]"#),
    ("slp scope", r#"[]"#, r#"[{"name": "slp-service-scope", "data": "true, abc"}]"#),
    ("slp scope empty str", r#"[]"#, r#"[{"name": "slp-service-scope", "data": "true"}]"#),
    ("fqdn opt", r#"[]"#, r#"[{"name": "fqdn", "data": "0, 0, 0, a.example"}]"#),
    ("psid", r#"[]"#, r#"[{"name": "v4-portparams", "data": "2, 3/4"}]"#),
    ("6rd", r#"[]"#, r#"[{"name": "option-6rd", "data": "0, 32, 2001:db8::, 192.0.2.1"}]"#),
    ("classless by name", r#"[]"#, r#"[{"name": "classless-static-route", "data": "10.0.0.0/8 - 10.0.0.1"}]"#),
    ("121 by code hex", r#"[]"#, r#"[{"code": 121, "data": "080a0a000001"}]"#),
    ("long option", r#"[]"#, r#"[{"name": "domain-name", "data": "{LONG}"}]"#),
    ("string with space in name", r#"[]"#, r#"[{"name": "dom ain", "data": "x"}]"#),
    ("no name no code", r#"[]"#, r#"[{"data": "x"}]"#),
    ("def basic", r#"[{"name": "foo", "code": 222, "type": "uint32"}]"#, r#"[{"name": "foo", "data": "1"}]"#),
    ("def no type", r#"[{"name": "foo", "code": 222}]"#, r#"[]"#),
    ("def no name", r#"[{"code": 222, "type": "uint8"}]"#, r#"[]"#),
    ("def no code", r#"[{"name": "foo", "type": "uint8"}]"#, r#"[]"#),
    ("def code 0", r#"[{"name": "foo", "code": 0, "type": "uint8"}]"#, r#"[]"#),
    ("def code 0 other space", r#"[{"name": "foo", "code": 0, "type": "uint8", "space": "isc"}]"#, r#"[]"#),
    ("def code 255 other space", r#"[{"name": "foo", "code": 255, "type": "uint8", "space": "isc"}]"#, r#"[]"#),
    ("def code 256", r#"[{"name": "foo", "code": 256, "type": "uint8"}]"#, r#"[]"#),
    ("def code neg", r#"[{"name": "foo", "code": -1, "type": "uint8"}]"#, r#"[]"#),
    ("def std code", r#"[{"name": "foo", "code": 12, "type": "uint8"}]"#, r#"[]"#),
    ("def std name", r#"[{"name": "routers", "code": 222, "type": "uint8"}]"#, r#"[]"#),
    (
        "def 43",
        r#"[{"name": "vendor-encapsulated-options", "code": 43, "type": "string"}]"#,
        r#"[{"name": "vendor-encapsulated-options", "data": "abc"}]"#,
    ),
    ("def 43 other name", r#"[{"name": "my43", "code": 43, "type": "string"}]"#, r#"[{"code": 43, "data": "abc"}]"#),
    (
        "def 43 other name by name std",
        r#"[{"name": "my43", "code": 43, "type": "string"}]"#,
        r#"[{"name": "vendor-encapsulated-options", "data": ""}]"#,
    ),
    (
        "def 121",
        r#"[{"name": "classless-static-route", "code": 121, "type": "binary"}]"#,
        r#"[{"name": "classless-static-route", "data": "08"}]"#,
    ),
    (
        "def dup code",
        r#"[{"name": "a", "code": 222, "type": "uint8"}, {"name": "b", "code": 222, "type": "uint8"}]"#,
        r#"[]"#,
    ),
    (
        "def dup name",
        r#"[{"name": "a", "code": 222, "type": "uint8"}, {"name": "a", "code": 223, "type": "uint8"}]"#,
        r#"[]"#,
    ),
    ("def bad type", r#"[{"name": "a", "code": 222, "type": "uint64"}]"#, r#"[]"#),
    ("def record 1", r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8"}]"#, r#"[]"#),
    ("def record none", r#"[{"name": "a", "code": 222, "type": "record"}]"#, r#"[]"#),
    (
        "def record types no record",
        r#"[{"name": "a", "code": 222, "type": "uint8", "record-types": "uint8, uint8"}]"#,
        r#"[]"#,
    ),
    (
        "def record string first",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "string, uint8"}]"#,
        r#"[]"#,
    ),
    (
        "def record binary last array",
        r#"[{"name": "a", "code": 222, "type": "record", "array": true, "record-types": "uint8, binary"}]"#,
        r#"[]"#,
    ),
    (
        "def record with record",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, record"}]"#,
        r#"[]"#,
    ),
    (
        "def record with empty",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, empty"}]"#,
        r#"[]"#,
    ),
    ("def record bogus", r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, bogus"}]"#, r#"[]"#),
    (
        "def record spaces",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": " uint8 ,  uint16 "}]"#,
        r#"[{"name": "a", "data": "1,2"}]"#,
    ),
    ("def array string", r#"[{"name": "a", "code": 222, "type": "string", "array": true}]"#, r#"[]"#),
    ("def array binary", r#"[{"name": "a", "code": 222, "type": "binary", "array": true}]"#, r#"[]"#),
    ("def array empty", r#"[{"name": "a", "code": 222, "type": "empty", "array": true}]"#, r#"[]"#),
    ("def array encap", r#"[{"name": "a", "code": 222, "type": "uint8", "array": true, "encapsulate": "x"}]"#, r#"[]"#),
    ("def encap self", r#"[{"name": "a", "code": 222, "type": "empty", "encapsulate": "dhcp4"}]"#, r#"[]"#),
    ("def encap bad", r#"[{"name": "a", "code": 222, "type": "empty", "encapsulate": "-x"}]"#, r#"[]"#),
    ("def bad name", r#"[{"name": "-a", "code": 222, "type": "uint8"}]"#, r#"[]"#),
    ("def bad name dot", r#"[{"name": "a.b", "code": 222, "type": "uint8"}]"#, r#"[]"#),
    ("def bad space", r#"[{"name": "a", "code": 222, "type": "uint8", "space": "x y"}]"#, r#"[]"#),
    ("def dhcp6 space", r#"[{"name": "a", "code": 222, "type": "uint8", "space": "dhcp6"}]"#, r#"[]"#),
    ("def unknown key", r#"[{"name": "a", "code": 222, "type": "uint8", "bogus": 1}]"#, r#"[]"#),
    ("def any-address", r#"[{"name": "a", "code": 222, "type": "any-address"}]"#, r#"[]"#),
    ("def tuple", r#"[{"name": "a", "code": 222, "type": "tuple"}]"#, r#"[{"name": "a", "data": "abc"}]"#),
    (
        "def ipv6-prefix",
        r#"[{"name": "a", "code": 222, "type": "ipv6-prefix"}]"#,
        r#"[{"name": "a", "data": "2001:db8::/32"}]"#,
    ),
    (
        "def ipv6-prefix bad",
        r#"[{"name": "a", "code": 222, "type": "ipv6-prefix"}]"#,
        r#"[{"name": "a", "data": "2001:db8::/129"}]"#,
    ),
    ("def int8 range", r#"[{"name": "a", "code": 222, "type": "int8"}]"#, r#"[{"name": "a", "data": "128"}]"#),
    ("def int8 neg", r#"[{"name": "a", "code": 222, "type": "int8"}]"#, r#"[{"name": "a", "data": "-128"}]"#),
    ("def uint8 hex", r#"[{"name": "a", "code": 222, "type": "uint8"}]"#, r#"[{"name": "a", "data": "0x1f"}]"#),
    ("def uint8 bare hex", r#"[{"name": "a", "code": 222, "type": "uint8"}]"#, r#"[{"name": "a", "data": "1f"}]"#),
    ("def empty with data", r#"[{"name": "a", "code": 222, "type": "empty"}]"#, r#"[{"name": "a", "data": "1"}]"#),
    ("def empty no data", r#"[{"name": "a", "code": 222, "type": "empty"}]"#, r#"[{"name": "a"}]"#),
    ("def uint8 no data", r#"[{"name": "a", "code": 222, "type": "uint8"}]"#, r#"[{"name": "a"}]"#),
    (
        "def uint8 array no data",
        r#"[{"name": "a", "code": 222, "type": "uint8", "array": true}]"#,
        r#"[{"name": "a"}]"#,
    ),
    (
        "def ipv4 array no data",
        r#"[{"name": "a", "code": 222, "type": "ipv4-address", "array": true}]"#,
        r#"[{"name": "a"}]"#,
    ),
    (
        "def record few",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, uint16"}]"#,
        r#"[{"name": "a", "data": "1"}]"#,
    ),
    (
        "def record many",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, uint16"}]"#,
        r#"[{"name": "a", "data": "1,2,3"}]"#,
    ),
    (
        "def record string empty last",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, string"}]"#,
        r#"[{"name": "a", "data": "1"}]"#,
    ),
    ("def fqdn root", r#"[{"name": "a", "code": 222, "type": "fqdn"}]"#, r#"[{"name": "a", "data": "."}]"#),
    (
        "def fqdn record root",
        r#"[{"name": "a", "code": 222, "type": "record", "record-types": "uint8, fqdn"}]"#,
        r#"[{"name": "a", "data": "1, ."}]"#,
    ),
    ("def psid", r#"[{"name": "a", "code": 222, "type": "psid"}]"#, r#"[{"name": "a", "data": "0/0"}]"#),
    ("def psid bad", r#"[{"name": "a", "code": 222, "type": "psid"}]"#, r#"[{"name": "a", "data": "5/0"}]"#),
    (
        "def bool hex",
        r#"[{"name": "a", "code": 222, "type": "boolean"}]"#,
        r#"[{"name": "a", "csv-format": false, "data": "05"}]"#,
    ),
    ("def string csv empty", r#"[{"name": "a", "code": 222, "type": "string"}]"#, r#"[{"name": "a", "data": ""}]"#),
    ("def binary csv odd", r#"[{"name": "a", "code": 222, "type": "binary"}]"#, r#"[{"name": "a", "data": "abc"}]"#),
    ("def binary csv 0x", r#"[{"name": "a", "code": 222, "type": "binary"}]"#, r#"[{"name": "a", "data": "0x0a"}]"#),
    (
        "def binary csv colon",
        r#"[{"name": "a", "code": 222, "type": "binary"}]"#,
        r#"[{"name": "a", "data": "0a:0b"}]"#,
    ),
    (
        "space sub name",
        r#"[{"name": "s1", "code": 1, "type": "uint8", "space": "isc"}]"#,
        r#"[{"name": "s1", "space": "isc", "data": "1"}]"#,
    ),
    (
        "space sub code 0 def",
        r#"[{"name": "s0", "code": 0, "type": "uint8", "space": "isc"}]"#,
        r#"[{"code": 0, "space": "isc", "data": "1"}]"#,
    ),
    (
        "space sub encap loop",
        r#"[{"name": "a", "code": 1, "space": "s1", "type": "empty", "encapsulate": "s2"}, {"name": "b", "code": 1, "space": "s2", "type": "empty", "encapsulate": "s1"}]"#,
        r#"[{"name": "a", "space": "s1"}, {"name": "b", "space": "s2"}]"#,
    ),
    (
        "vendor runtime def",
        r#"[{"name": "x", "code": 1, "type": "string", "space": "vendor-339"}]"#,
        r#"[{"name": "x", "space": "vendor-339", "data": "abc"}]"#,
    ),
    ("vendor no def", r#"[]"#, r#"[{"code": 1, "space": "vendor-339", "data": "abc"}]"#),
    ("vendor no def hex", r#"[]"#, r#"[{"code": 1, "space": "vendor-339", "csv-format": false, "data": "0a"}]"#),
    ("vendor-0", r#"[]"#, r#"[{"code": 1, "space": "vendor-0", "csv-format": false, "data": "0a"}]"#),
    (
        "4491 override std",
        r#"[{"name": "tftp", "code": 2, "type": "string", "space": "vendor-4491"}]"#,
        r#"[{"code": 2, "space": "vendor-4491", "data": "10.0.0.1"}]"#,
    ),
    ("user-context def", r#"[{"name": "a", "code": 222, "type": "uint8", "user-context": {"x": 1}}]"#, r#"[]"#),
    ("comment def", r#"[{"name": "a", "code": 222, "type": "uint8", "comment": "x"}]"#, r#"[]"#),
    (
        "def array true string-ish",
        r#"[{"name": "a", "code": 222, "type": "fqdn", "array": true}]"#,
        r#"[{"name": "a", "data": "a.b, c.d"}]"#,
    ),
    ("data with always-send str", r#"[]"#, r#"[{"name": "routers", "data": "10.0.0.1", "always-send": "yes"}]"#),
    ("csv-format str", r#"[]"#, r#"[{"name": "routers", "data": "10.0.0.1", "csv-format": "false"}]"#),
];

/// Cases Kea accepts and xdhcp refuses, and why.
const DELIBERATE: &[(&str, &str)] = &[
    ("routers v6", "an IPv6 address in an IPv4 field (Kea writes 16 bytes, read back as 4 addresses)"),
    ("def ipv6-prefix bad", "a prefix longer than 128 bits (Kea reads past the address)"),
];

fn config(defs: &str, data: &str) -> String {
    format!(
        r#"{{ "Dhcp4": {{ "interfaces-config": {{ "interfaces": [] }},
            "lease-database": {{ "type": "memfile", "persist": false }},
            "valid-lifetime": 600, "option-def": {defs}, "option-data": {}, "subnet4": [ {{ "id": 1, "subnet": "10.0.0.0/24",
            "pools": [ {{ "pool": "10.0.0.10-10.0.0.100" }} ] }} ] }} }}"#,
        data.replace("{LONG}", &"a".repeat(300))
    )
}

#[test]
fn option_configs_valid_for_kea_are_valid_for_xdhcp() {
    if Command::new("kea-dhcp4").arg("-V").output().is_err() {
        eprintln!("kea-dhcp4 not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut differ = Vec::new();
    for (i, (name, defs, data)) in CASES.iter().enumerate() {
        let text = config(defs, data);
        let path = dir.path().join(format!("case-{i}.json"));
        std::fs::write(&path, &text).unwrap();
        let kea = Command::new("kea-dhcp4").arg("-t").arg(&path).output().unwrap();
        let kea_ok = kea.status.success();
        let ours = dhcp_user::config::parse(&text, &path.display().to_string());
        let deliberate = DELIBERATE.iter().find(|(n, _)| n == name);
        match (kea_ok, &ours, deliberate) {
            (true, Err(_), Some(_)) => {}
            (a, b, _) if a == b.is_ok() && deliberate.is_none() => {}
            (a, b, _) => differ.push(format!(
                "{name}: Kea {}, xdhcp {}{}",
                if a { "accepts" } else { "refuses" },
                match b {
                    Ok(_) => "accepts".to_owned(),
                    Err(e) => format!("refuses ({e})"),
                },
                if deliberate.is_some() { " (listed as a deliberate difference)" } else { "" }
            )),
        }
    }
    assert!(differ.is_empty(), "{} of {} cases differ:\n{}", differ.len(), CASES.len(), differ.join("\n"));
}
