//! Kea's option sub-parsers: `option-data` (CSV and hex data, names and
//! codes, spaces, `always-send`, encapsulation) against a fixed set of
//! `option-def`s of every type, placed both globally and in a subnet, then
//! compiled and sent: a DISCOVER asking for every code must be answered
//! with an OFFER that encodes. Also the CSV encoder for one standard
//! definition (the importer's path), chosen by the input's first byte.
//!
//! Input: the JSON text of the `option-data` list.
#![no_main]

use std::net::Ipv4Addr;

use dhcp_user::{
    config::{self, options},
    dhcp::{
        engine::{self, Allocator, Ctx},
        inbound,
    },
    glue::{self, StoreView},
    leases::{LeaseStore, StoreConfig},
};
use dhcproto::{
    Encodable as _,
    v4::{DhcpOption, Message, MessageType, OptionCode},
};
use libfuzzer_sys::fuzz_target;

const DEFS: &str = r#"[
    { "name": "u8", "code": 224, "type": "uint8" },
    { "name": "u16s", "code": 225, "type": "uint16", "array": true },
    { "name": "i32", "code": 226, "type": "int32" },
    { "name": "addrs", "code": 227, "type": "ipv4-address", "array": true },
    { "name": "text", "code": 228, "type": "string" },
    { "name": "name", "code": 229, "type": "fqdn", "array": true },
    { "name": "bin", "code": 230, "type": "binary" },
    { "name": "flag", "code": 231, "type": "boolean" },
    { "name": "rec", "code": 232, "type": "record", "record-types": "ipv4-address, uint16, string" },
    { "name": "nothing", "code": 233, "type": "empty" },
    { "name": "enc", "code": 234, "type": "empty", "encapsulate": "fuzz-space" },
    { "name": "sub", "code": 1, "space": "fuzz-space", "type": "uint32" },
    { "name": "tuple", "code": 235, "type": "tuple" },
    { "name": "v6", "code": 236, "type": "ipv6-address" },
    { "name": "pfx", "code": 237, "type": "ipv6-prefix" },
    { "name": "psid", "code": 238, "type": "psid" },
    { "name": "unifi", "code": 1, "space": "vendor-41112", "type": "ipv4-address" },
    { "name": "vlan", "code": 2, "space": "vendor-encapsulated-options-space", "type": "uint32" }
]"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some((code, csv)) = data.split_first()
        && let (Some(def), Ok(csv)) = (options::option_def(*code), std::str::from_utf8(csv))
    {
        let _ = options::encode_csv(def, csv);
    }
    if text.contains("<?include") || serde_json::from_str::<serde_json::Value>(text).is_err() {
        return;
    }
    let conf = format!(
        r#"{{ "Dhcp4": {{ "interfaces-config": {{ "interfaces": ["eth0"] }}, "authoritative": true,
            "lease-database": {{ "type": "memfile", "persist": false }},
            "option-def": {DEFS}, "option-data": {text},
            "subnet4": [ {{ "id": 1, "subnet": "192.0.2.0/24", "pools": [ {{ "pool": "192.0.2.10-192.0.2.20" }} ],
                "option-data": {text} }} ] }} }}"#
    );
    let Ok(cfg) = config::parse(&conf, "fuzz.json") else { return };
    let policy = glue::compile(&cfg);
    let mut m = Message::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &[2, 0, 0, 0, 0, 1]);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut().insert(DhcpOption::ParameterRequestList((1..=254).map(OptionCode::from).collect()));
    m.opts_mut().insert(DhcpOption::ClassIdentifier(b"MSFT 5.0".to_vec()));
    let req = inbound::classify(&m.to_vec().unwrap()).unwrap();
    let subnet = policy.subnet(1);
    let ctx = Ctx { now: 1_800_000_000, server_id: Ipv4Addr::new(192, 0, 2, 1), on_link: true };
    let (store, _) = LeaseStore::open(StoreConfig { persist: false, ..StoreConfig::default() }).unwrap();
    let d = engine::decide(&req, subnet, &policy, &StoreView(&store, None), &mut Allocator::default(), ctx);
    let (reply, _) = d.reply.expect("a DISCOVER on a fresh pool is offered an address");
    assert_eq!(reply.opts().msg_type(), Some(MessageType::Offer));
    engine::reply_bytes(&reply).expect("the OFFER with every configured option encodes");
});
