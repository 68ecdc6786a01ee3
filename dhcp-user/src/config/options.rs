//! DHCPv4 option definitions as Kea names them, and `option-data` → bytes.
//!
//! Kea configs name options (`"name": "routers"`) and give values as text
//! (`"data": "10.0.0.1, 10.0.0.2"`). The server must send exactly the bytes
//! Kea would, so the table below uses Kea's names, codes and data types (the
//! `dhcp4` space of Kea 2.2, plus `classless-static-route` (121) which Kea
//! added later), and the encoders follow Kea's text rules:
//!
//! - `csv-format` true (the default): `data` is split on commas (`\,` keeps a
//!   comma), each value trimmed and encoded by the option's type; arrays take
//!   any number of values, records one per field (an array record repeats its
//!   last field).
//! - `csv-format` false: `data` is hex (`0a0b0c`, `0x0a0b0c`, `0a:0b:0c`,
//!   `0a 0b 0c`) or a `'quoted string'` taken literally. This is also the only
//!   way to send an option that is not in the table (e.g. 150 or 252, which
//!   Kea has no standard definition for) — by `code`.
//!
//! Integers accept decimal or hex (`0x1f`, and like Kea even bare `1f`);
//! booleans `true`/`false` (any case) or `0`/`1`; `fqdn` values are written in
//! uncompressed RFC 1035 wire format.
//!
//! Deliberate differences from Kea, all refusals rather than surprises:
//! options the server computes per client or per packet (requested address,
//! lease time, overload, message type, parameter list, max message size,
//! T1/T2, client identifier, client FQDN, relay agent information) cannot be
//! configured; a single-valued option given several comma-separated values
//! is an error (Kea silently keeps the first); sub-option spaces are not
//! supported, so `vendor-encapsulated-options` (43) needs explicit bytes; an
//! option longer than 255 bytes is refused (Kea fails later, when packing).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The type of one option field, as Kea names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// No data; the option only encapsulates sub-options.
    Empty,
    /// Opaque bytes, written as hex.
    Binary,
    /// One byte, 0 or 1.
    Boolean,
    /// 8-bit unsigned.
    Uint8,
    /// 16-bit unsigned, network order.
    Uint16,
    /// 32-bit unsigned, network order.
    Uint32,
    /// 32-bit signed, network order.
    Int32,
    /// An IPv4 address.
    Ipv4Address,
    /// An IPv6 address.
    Ipv6Address,
    /// Text, not NUL-terminated.
    String,
    /// A domain name in RFC 1035 wire format.
    Fqdn,
    /// A PSID `value/length` (RFC 7597), 3 bytes.
    Psid,
    /// The RFC 3442 route list `a.b.c.d/len - router, …`.
    ClasslessRoutes,
}

/// A standard option definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionDef {
    /// Option code.
    pub code: u8,
    /// Kea's name for it.
    pub name: &'static str,
    /// The field types: one for a plain option, several for a record.
    pub fields: &'static [DataType],
    /// Whether the (last) field repeats.
    pub array: bool,
}

impl OptionDef {
    fn is_record(&self) -> bool {
        self.fields.len() > 1
    }
}

use DataType::*;

const IP: &[DataType] = &[Ipv4Address];
const STR: &[DataType] = &[String];
const U8: &[DataType] = &[Uint8];
const U16: &[DataType] = &[Uint16];
const U32: &[DataType] = &[Uint32];
const BOOL: &[DataType] = &[Boolean];
const BIN: &[DataType] = &[Binary];
const FQDN: &[DataType] = &[Fqdn];
const EMPTY: &[DataType] = &[Empty];

const fn one(code: u8, name: &'static str, fields: &'static [DataType]) -> OptionDef {
    OptionDef { code, name, fields, array: false }
}
const fn many(code: u8, name: &'static str, fields: &'static [DataType]) -> OptionDef {
    OptionDef { code, name, fields, array: true }
}

/// Kea's standard DHCPv4 option definitions (space `dhcp4`), by code.
pub static STANDARD_OPTIONS: &[OptionDef] = &[
    one(1, "subnet-mask", IP),
    one(2, "time-offset", &[Int32]),
    many(3, "routers", IP),
    many(4, "time-servers", IP),
    many(5, "name-servers", IP),
    many(6, "domain-name-servers", IP),
    many(7, "log-servers", IP),
    many(8, "cookie-servers", IP),
    many(9, "lpr-servers", IP),
    many(10, "impress-servers", IP),
    many(11, "resource-location-servers", IP),
    one(12, "host-name", STR),
    one(13, "boot-size", U16),
    one(14, "merit-dump", STR),
    one(15, "domain-name", STR),
    one(16, "swap-server", IP),
    one(17, "root-path", STR),
    one(18, "extensions-path", STR),
    one(19, "ip-forwarding", BOOL),
    one(20, "non-local-source-routing", BOOL),
    many(21, "policy-filter", IP),
    one(22, "max-dgram-reassembly", U16),
    one(23, "default-ip-ttl", U8),
    one(24, "path-mtu-aging-timeout", U32),
    many(25, "path-mtu-plateau-table", U16),
    one(26, "interface-mtu", U16),
    one(27, "all-subnets-local", BOOL),
    one(28, "broadcast-address", IP),
    one(29, "perform-mask-discovery", BOOL),
    one(30, "mask-supplier", BOOL),
    one(31, "router-discovery", BOOL),
    one(32, "router-solicitation-address", IP),
    many(33, "static-routes", IP),
    one(34, "trailer-encapsulation", BOOL),
    one(35, "arp-cache-timeout", U32),
    one(36, "ieee802-3-encapsulation", BOOL),
    one(37, "default-tcp-ttl", U8),
    one(38, "tcp-keepalive-interval", U32),
    one(39, "tcp-keepalive-garbage", BOOL),
    one(40, "nis-domain", STR),
    many(41, "nis-servers", IP),
    many(42, "ntp-servers", IP),
    one(43, "vendor-encapsulated-options", EMPTY),
    many(44, "netbios-name-servers", IP),
    many(45, "netbios-dd-server", IP),
    one(46, "netbios-node-type", U8),
    one(47, "netbios-scope", STR),
    many(48, "font-servers", IP),
    many(49, "x-display-manager", IP),
    one(50, "dhcp-requested-address", IP),
    one(51, "dhcp-lease-time", U32),
    one(52, "dhcp-option-overload", U8),
    one(53, "dhcp-message-type", U8),
    one(54, "dhcp-server-identifier", IP),
    many(55, "dhcp-parameter-request-list", U8),
    one(56, "dhcp-message", STR),
    one(57, "dhcp-max-message-size", U16),
    one(58, "dhcp-renewal-time", U32),
    one(59, "dhcp-rebinding-time", U32),
    one(60, "vendor-class-identifier", STR),
    one(61, "dhcp-client-identifier", BIN),
    one(62, "nwip-domain-name", STR),
    one(63, "nwip-suboptions", BIN),
    one(64, "nisplus-domain-name", STR),
    many(65, "nisplus-servers", IP),
    one(66, "tftp-server-name", STR),
    one(67, "boot-file-name", STR),
    many(68, "mobile-ip-home-agent", IP),
    many(69, "smtp-server", IP),
    many(70, "pop-server", IP),
    many(71, "nntp-server", IP),
    many(72, "www-server", IP),
    many(73, "finger-server", IP),
    many(74, "irc-server", IP),
    many(75, "streettalk-server", IP),
    many(76, "streettalk-directory-assistance-server", IP),
    one(77, "user-class", BIN),
    many(78, "slp-directory-agent", &[Boolean, Ipv4Address]),
    one(79, "slp-service-scope", &[Boolean, String]),
    one(81, "fqdn", &[Uint8, Uint8, Uint8, Fqdn]),
    one(82, "dhcp-agent-options", EMPTY),
    many(85, "nds-servers", IP),
    one(86, "nds-tree-name", STR),
    one(87, "nds-context", STR),
    many(88, "bcms-controller-names", FQDN),
    many(89, "bcms-controller-address", IP),
    one(90, "authenticate", BIN),
    one(91, "client-last-transaction-time", U32),
    many(92, "associated-ip", IP),
    many(93, "client-system", U16),
    one(94, "client-ndi", &[Uint8, Uint8, Uint8]),
    one(97, "uuid-guid", &[Uint8, Binary]),
    one(98, "uap-servers", STR),
    one(99, "geoconf-civic", BIN),
    one(100, "pcode", STR),
    one(101, "tcode", STR),
    one(108, "v6-only-preferred", U32),
    many(112, "netinfo-server-address", IP),
    one(113, "netinfo-server-tag", STR),
    one(114, "v4-captive-portal", STR),
    one(116, "auto-config", U8),
    many(117, "name-service-search", U16),
    one(118, "subnet-selection", IP),
    many(119, "domain-search", FQDN),
    one(121, "classless-static-route", &[ClasslessRoutes]),
    one(124, "vivco-suboptions", &[Uint32, Binary]),
    one(125, "vivso-suboptions", U32),
    many(136, "pana-agent", IP),
    one(137, "v4-lost", FQDN),
    many(138, "capwap-ac-v4", IP),
    many(141, "sip-ua-cs-domains", FQDN),
    many(146, "rdnss-selection", &[Uint8, Ipv4Address, Ipv4Address, Fqdn]),
    one(159, "v4-portparams", &[Uint8, Psid]),
    many(212, "option-6rd", &[Uint8, Uint8, Ipv6Address, Ipv4Address]),
    one(213, "v4-access-domain", FQDN),
];

/// The standard definition for `code`, if Kea has one.
pub fn option_def(code: u8) -> Option<&'static OptionDef> {
    STANDARD_OPTIONS.iter().find(|d| d.code == code)
}

/// The standard definition named `name`, if Kea has one.
pub fn option_def_by_name(name: &str) -> Option<&'static OptionDef> {
    STANDARD_OPTIONS.iter().find(|d| d.name == name)
}

/// Why an option may not appear in `option-data`: the server fills it in per
/// client or per packet, or it is framing.
pub fn server_managed(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "code 0 is reserved for PAD",
        255 => "code 255 is reserved for END",
        50 | 52 | 53 | 55 | 57 | 61 | 81 | 82 => "the server sets this option per packet; it cannot be configured",
        51 => "the lease time is computed per client; set valid-lifetime (and min-/max-valid-lifetime) instead",
        58 => "T1 is computed per lease; set renew-timer or calculate-tee-times instead",
        59 => "T2 is computed per lease; set rebind-timer or calculate-tee-times instead",
        _ => return None,
    })
}

/// One encoded option, ready to copy into a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpOption {
    code: u8,
    data: Vec<u8>,
    always_send: bool,
}

impl DhcpOption {
    /// Builds an option; `data` must fit one option (≤ 255 bytes).
    pub fn new(code: u8, data: Vec<u8>, always_send: bool) -> Result<Self, std::string::String> {
        if data.len() > 255 {
            return Err(format!("option {code} would be {} bytes long; at most 255 fit", data.len()));
        }
        if server_managed(code).is_some() {
            return Err(format!("option {code} cannot be configured"));
        }
        Ok(DhcpOption { code, data, always_send })
    }

    /// Option code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Encoded payload (without code and length).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Kea's `always-send`: include it even when the client did not ask.
    pub fn always_send(&self) -> bool {
        self.always_send
    }

    /// Kea's name for the option, if it is a standard one.
    pub fn name(&self) -> Option<&'static str> {
        option_def(self.code).map(|d| d.name)
    }
}

/// Options by code, at most one per code. Merging lets a more specific scope
/// (pool, reservation) replace what a broader one (global, subnet) set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionSet {
    by_code: BTreeMap<u8, DhcpOption>,
}

impl OptionSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `opt`, replacing any option with the same code.
    pub fn insert(&mut self, opt: DhcpOption) {
        self.by_code.insert(opt.code, opt);
    }

    /// The option with `code`.
    pub fn get(&self, code: u8) -> Option<&DhcpOption> {
        self.by_code.get(&code)
    }

    /// All options in code order.
    pub fn iter(&self) -> impl Iterator<Item = &DhcpOption> {
        self.by_code.values()
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// `self` with `specific`'s options layered on top (they win per code).
    pub fn merged_with(&self, specific: &OptionSet) -> OptionSet {
        let mut out = self.clone();
        for o in specific.iter() {
            out.insert(o.clone());
        }
        out
    }
}

/// Encodes Kea CSV `data` for `def`.
pub fn encode_csv(def: &OptionDef, data: &str) -> Result<Vec<u8>, std::string::String> {
    if def.fields == [ClasslessRoutes] {
        return encode_routes(data);
    }
    if def.fields == [Empty] {
        return Err(format!(
            "option {} ({}) carries sub-options, which xdhcp does not support; give its bytes with \"csv-format\": false",
            def.name, def.code
        ));
    }
    let values: Vec<std::string::String> = kea_tokens(data).into_iter().map(|t| kea_trim(&t).to_owned()).collect();
    let mut out = Vec::new();
    if def.is_record() {
        if values.len() < def.fields.len() {
            return Err(format!(
                "option {} needs {} comma-separated values, got {}",
                def.name,
                def.fields.len(),
                values.len()
            ));
        }
        if !def.array && values.len() > def.fields.len() {
            return Err(format!("option {} takes {} values, got {}", def.name, def.fields.len(), values.len()));
        }
        for (i, v) in values.iter().enumerate() {
            let ty = def.fields[i.min(def.fields.len() - 1)];
            write_value(ty, v, &mut out)?;
        }
    } else if def.array {
        for v in &values {
            write_value(def.fields[0], v, &mut out)?;
        }
    } else {
        match values.as_slice() {
            [] => return Err(format!("option {} needs a value", def.name)),
            [v] => write_value(def.fields[0], v, &mut out)?,
            _ => {
                return Err(format!(
                    "option {} takes one value, got {} (write \\, for a comma inside the value)",
                    def.name,
                    values.len()
                ));
            }
        }
    }
    if def.code == 125 {
        // Kea sends vivso-suboptions as enterprise-id plus a data-len byte;
        // with no sub-options the length is 0.
        out.push(0);
    }
    Ok(out)
}

/// Checks raw bytes (`csv-format` false) against a definition the way Kea
/// does when it builds the option from a buffer: fixed-size fields must fit.
pub fn check_binary(def: &OptionDef, data: &[u8]) -> Result<(), std::string::String> {
    let fixed = |t: DataType| match t {
        Boolean | Uint8 => Some(1),
        Uint16 => Some(2),
        Uint32 | Int32 | Ipv4Address => Some(4),
        Ipv6Address => Some(16),
        Psid => Some(3),
        _ => None,
    };
    if def.is_record() {
        return Ok(());
    }
    let ty = def.fields[0];
    match (fixed(ty), def.array) {
        (Some(n), false) if data.len() != n => {
            Err(format!("option {} needs exactly {n} bytes, got {}", def.name, data.len()))
        }
        (Some(n), true) if !data.len().is_multiple_of(n) => {
            Err(format!("option {} needs a multiple of {n} bytes, got {}", def.name, data.len()))
        }
        (None, _) if matches!(ty, String) && data.is_empty() => Err(format!("option {} must not be empty", def.name)),
        _ => Ok(()),
    }
}

/// Splits like Kea: on commas, `\,` keeps a comma, `\\` a backslash, and
/// empty tokens are dropped.
pub fn kea_tokens(text: &str) -> Vec<std::string::String> {
    let mut out = Vec::new();
    let mut tok = std::string::String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(',') | Some('\\') => tok.push(chars.next().unwrap_or('\\')),
                Some(_) => tok.push('\\'),
                None => tok.push('\\'),
            },
            ',' => {
                if !tok.is_empty() {
                    out.push(std::mem::take(&mut tok));
                }
            }
            c => tok.push(c),
        }
    }
    if !tok.is_empty() {
        out.push(tok);
    }
    out
}

/// Kea trims blanks, tabs and newlines only.
fn kea_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n'])
}

fn write_value(ty: DataType, v: &str, out: &mut Vec<u8>) -> Result<(), std::string::String> {
    match ty {
        Binary => out.extend(decode_plain_hex(v).ok_or_else(|| format!("{v:?} is not hexadecimal bytes"))?),
        Boolean => out.push(parse_bool(v)? as u8),
        Uint8 => out.push(parse_int(v, 0, u8::MAX as i64)? as u8),
        Uint16 => out.extend((parse_int(v, 0, u16::MAX as i64)? as u16).to_be_bytes()),
        Uint32 => out.extend((parse_int(v, 0, u32::MAX as i64)? as u32).to_be_bytes()),
        Int32 => out.extend((parse_int(v, i32::MIN as i64, i32::MAX as i64)? as i32).to_be_bytes()),
        Ipv4Address => out.extend(parse_ipv4(v)?.octets()),
        Ipv6Address => out.extend(v.parse::<Ipv6Addr>().map_err(|_| format!("{v:?} is not an IPv6 address"))?.octets()),
        String => {
            if v.is_empty() {
                return Err("empty string value".into());
            }
            out.extend(v.as_bytes());
        }
        Fqdn => write_fqdn(v, out)?,
        Psid => write_psid(v, out)?,
        Empty | ClasslessRoutes => return Err("internal: not a field type".into()),
    }
    Ok(())
}

fn parse_ipv4(v: &str) -> Result<Ipv4Addr, std::string::String> {
    v.parse::<Ipv4Addr>().map_err(|_| format!("{v:?} is not an IPv4 address"))
}

/// Kea's integer text: decimal (with optional sign), else hexadecimal with
/// or without `0x`, then range-checked.
pub fn parse_int(v: &str, min: i64, max: i64) -> Result<i64, std::string::String> {
    let n = v.parse::<i64>().ok().or_else(|| {
        let h = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(h, 16).ok()
    });
    match n {
        None => Err(format!("{v:?} is not an integer")),
        Some(n) if n < min || n > max => Err(format!("{v} is out of range {min}..{max}")),
        Some(n) => Ok(n),
    }
}

fn parse_bool(v: &str) -> Result<bool, std::string::String> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        match v.parse::<i32>() {
            Ok(0) => Ok(false),
            Ok(1) => Ok(true),
            _ => Err(format!("{v:?} is not a boolean (true, false, 1 or 0)")),
        }
    }
}

/// RFC 1035 wire format, uncompressed, always ending with the root label.
pub fn write_fqdn(name: &str, out: &mut Vec<u8>) -> Result<(), std::string::String> {
    if name.contains('\\') {
        return Err(format!("{name:?}: escapes in domain names are not supported"));
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(format!("{name:?} has an empty label"));
            }
            if label.len() > 63 {
                return Err(format!("{name:?} has a label longer than 63 bytes"));
            }
            out.push(label.len() as u8);
            out.extend(label.as_bytes());
        }
    } else if name.is_empty() {
        return Err("empty domain name".into());
    }
    out.push(0);
    if out.len() - start > 255 {
        return Err(format!("{name:?} is longer than 255 bytes in wire format"));
    }
    Ok(())
}

fn write_psid(v: &str, out: &mut Vec<u8>) -> Result<(), std::string::String> {
    let compact: std::string::String = v.chars().filter(|c| *c != ' ' && *c != '\t').collect();
    let (psid, len) = compact.split_once('/').ok_or_else(|| format!("{v:?} is not a PSID value/length"))?;
    let psid = parse_int(psid, 0, u16::MAX as i64)? as u32;
    let len = parse_int(len, 0, 16)? as u32;
    if len > 0 && psid > (0xffff >> (16 - len)) {
        return Err(format!("PSID {psid} does not fit in {len} bits"));
    }
    out.push(len as u8);
    out.extend((((psid << (16 - len)) & 0xffff) as u16).to_be_bytes());
    Ok(())
}

/// RFC 3442: `a.b.c.d/len - router` list → width, significant octets, router.
fn encode_routes(data: &str) -> Result<Vec<u8>, std::string::String> {
    let mut out = Vec::new();
    for route in data.split(',').map(kea_trim).filter(|r| !r.is_empty()) {
        let parts: Vec<&str> = route.split('-').map(kea_trim).filter(|p| !p.is_empty()).collect();
        let [dest, router] = parts.as_slice() else {
            return Err(format!("{route:?}: expected \"a.b.c.d/len - router\""));
        };
        let (addr, len) = dest.split_once('/').ok_or_else(|| format!("{dest:?}: expected a prefix a.b.c.d/len"))?;
        let addr = parse_ipv4(addr)?;
        let len: u8 = len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| format!("{dest:?}: bad prefix length"))?;
        out.push(len);
        out.extend(&addr.octets()[..(len as usize).div_ceil(8)]);
        out.extend(parse_ipv4(router)?.octets());
    }
    if out.is_empty() {
        return Err("classless-static-route needs at least one route".into());
    }
    Ok(out)
}

/// Plain even-length hex, as Kea's binary fields in CSV data.
fn decode_plain_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Kea's formatted hex: `aa:bb:cc` or `aa bb cc` (1–2 digits per group, no
/// empty group), or a digit string with optional `0x` (odd length gets a
/// leading 0). Used for `csv-format: false` data and host identifiers.
pub fn decode_formatted_hex(s: &str) -> Option<Vec<u8>> {
    let sep = if s.contains(':') {
        Some(':')
    } else if s.contains(' ') {
        Some(' ')
    } else {
        None
    };
    match sep {
        Some(sep) => {
            let groups: Vec<&str> = s.split(sep).collect();
            let mut out = Vec::new();
            for g in &groups {
                if g.is_empty() {
                    if groups.len() > 1 {
                        return None;
                    }
                    continue;
                }
                if g.len() > 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(g, 16).ok()?);
            }
            Some(out)
        }
        None => {
            let digits = if s.len() > 2 && s.starts_with("0x") { &s[2..] } else { s };
            let padded = if !s.len().is_multiple_of(2) { format!("0{digits}") } else { digits.to_owned() };
            decode_plain_hex(&padded)
        }
    }
}

/// Kea's `'quoted'` literal (trimmed inside the quotes), or `None`.
pub fn quoted_literal(s: &str) -> Option<Vec<u8>> {
    let t = kea_trim(s);
    let inner = t.strip_prefix('\'')?.strip_suffix('\'')?;
    let inner = kea_trim(inner);
    (!inner.is_empty()).then(|| inner.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(name: &str, data: &str) -> Result<Vec<u8>, std::string::String> {
        encode_csv(option_def_by_name(name).unwrap(), data)
    }

    #[test]
    fn table_is_sorted_unique_and_matches_known_codes() {
        for w in STANDARD_OPTIONS.windows(2) {
            assert!(w[0].code < w[1].code, "{} / {}", w[0].name, w[1].name);
        }
        let mut names: Vec<_> = STANDARD_OPTIONS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STANDARD_OPTIONS.len());
        for (code, name) in [
            (1, "subnet-mask"),
            (3, "routers"),
            (6, "domain-name-servers"),
            (15, "domain-name"),
            (28, "broadcast-address"),
            (42, "ntp-servers"),
            (43, "vendor-encapsulated-options"),
            (44, "netbios-name-servers"),
            (51, "dhcp-lease-time"),
            (66, "tftp-server-name"),
            (67, "boot-file-name"),
            (119, "domain-search"),
            (121, "classless-static-route"),
            (125, "vivso-suboptions"),
        ] {
            assert_eq!(option_def(code).unwrap().name, name);
            assert_eq!(option_def_by_name(name).unwrap().code, code);
        }
        assert!(option_def(150).is_none() && option_def(252).is_none());
    }

    #[test]
    fn encodes_each_type() {
        assert_eq!(csv("routers", "10.0.0.1").unwrap(), [10, 0, 0, 1]);
        assert_eq!(
            csv("domain-name-servers", "192.168.42.4, 192.168.42.5").unwrap(),
            [192, 168, 42, 4, 192, 168, 42, 5]
        );
        assert_eq!(csv("subnet-mask", "255.255.255.0").unwrap(), [255, 255, 255, 0]);
        assert_eq!(csv("time-offset", "-3600").unwrap(), (-3600i32).to_be_bytes());
        assert_eq!(csv("interface-mtu", "1500").unwrap(), [0x05, 0xdc]);
        assert_eq!(csv("interface-mtu", "0x5dc").unwrap(), [0x05, 0xdc]);
        assert_eq!(csv("default-ip-ttl", "ff").unwrap(), [255]);
        assert_eq!(csv("arp-cache-timeout", "60").unwrap(), [0, 0, 0, 60]);
        assert_eq!(csv("ip-forwarding", "TRUE").unwrap(), [1]);
        assert_eq!(csv("ip-forwarding", "0").unwrap(), [0]);
        assert_eq!(csv("domain-name", "example.org").unwrap(), b"example.org");
        assert_eq!(csv("domain-name", r"a\,b").unwrap(), b"a,b");
        assert_eq!(csv("user-class", "0a0b").unwrap(), [10, 11]);
        assert_eq!(csv("path-mtu-plateau-table", "1500, 9000").unwrap(), [0x05, 0xdc, 0x23, 0x28]);
        assert_eq!(csv("domain-search", "example.com, b.c.").unwrap(), b"\x07example\x03com\x00\x01b\x01c\x00");
        assert_eq!(csv("v4-lost", ".").unwrap(), [0]);
        assert_eq!(csv("slp-directory-agent", "true, 10.0.0.1, 10.0.0.2").unwrap(), [1, 10, 0, 0, 1, 10, 0, 0, 2]);
        assert_eq!(csv("client-ndi", "1, 2, 3").unwrap(), [1, 2, 3]);
        assert_eq!(csv("v4-portparams", "2, 3/4").unwrap(), [2, 4, 0x30, 0]);
        assert_eq!(csv("vivso-suboptions", "4491").unwrap(), [0, 0, 0x11, 0x8b, 0]);
        assert_eq!(
            csv("classless-static-route", "10.229.0.128/25 - 10.229.0.1, 0.0.0.0/0 - 10.0.0.1").unwrap(),
            [25, 10, 229, 0, 128, 10, 229, 0, 1, 0, 10, 0, 0, 1]
        );
        assert_eq!(csv("domain-name-servers", "").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn refuses_bad_values() {
        for (name, data) in [
            ("routers", "10.0.0.256"),
            ("routers", "fe80::1"),
            ("interface-mtu", "65536"),
            ("default-ip-ttl", "-1"),
            ("ip-forwarding", "2"),
            ("domain-name", ""),
            ("domain-name", "a, b"),
            ("domain-search", "a..b"),
            ("domain-search", &format!("{}.com", "x".repeat(64))),
            ("client-ndi", "1, 2"),
            ("user-class", "abc"),
            ("vendor-encapsulated-options", "01"),
            ("v4-portparams", "1, 17/4"),
            ("classless-static-route", "10.0.0.0 - 10.0.0.1"),
        ] {
            assert!(csv(name, data).is_err(), "{name} {data:?}");
        }
    }

    #[test]
    fn formatted_hex_like_kea() {
        assert_eq!(decode_formatted_hex("01:02:0a").unwrap(), [1, 2, 10]);
        assert_eq!(decode_formatted_hex("1:2:a").unwrap(), [1, 2, 10]);
        assert_eq!(decode_formatted_hex("01 02").unwrap(), [1, 2]);
        assert_eq!(decode_formatted_hex("0x0102").unwrap(), [1, 2]);
        assert_eq!(decode_formatted_hex("102").unwrap(), [1, 2]);
        assert!(decode_formatted_hex("01::02").is_none());
        assert!(decode_formatted_hex("012:03").is_none());
        assert!(decode_formatted_hex("zz").is_none());
        assert_eq!(quoted_literal(" 'abc' ").unwrap(), b"abc");
        assert!(quoted_literal("abc").is_none());
    }

    #[test]
    fn tokens_like_kea() {
        assert_eq!(kea_tokens("a,,b, c"), ["a", "b", " c"]);
        assert_eq!(kea_tokens(r"a\,b,c\\"), ["a,b", r"c\"]);
        assert_eq!(kea_tokens(r"a\b"), [r"a\b"]);
    }

    #[test]
    fn merge_prefers_specific() {
        let mut g = OptionSet::new();
        g.insert(DhcpOption::new(3, vec![1, 1, 1, 1], false).unwrap());
        g.insert(DhcpOption::new(15, b"g".to_vec(), false).unwrap());
        let mut s = OptionSet::new();
        s.insert(DhcpOption::new(3, vec![2, 2, 2, 2], true).unwrap());
        let m = g.merged_with(&s);
        assert_eq!(m.get(3).unwrap().data(), [2, 2, 2, 2]);
        assert!(m.get(3).unwrap().always_send());
        assert_eq!(m.get(15).unwrap().data(), b"g");
        assert_eq!(m.get(15).unwrap().name(), Some("domain-name"));
    }
}
