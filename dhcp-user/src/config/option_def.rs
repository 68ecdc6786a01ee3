//! Option definitions: Kea's standard tables and the operator's `option-def`.
//!
//! A definition says how an option's `data` text becomes bytes: its data
//! type (or the fields of a record), whether the last field repeats, and
//! which option space its sub-options come from (`encapsulate`). Kea 2.2
//! looks a definition up, for an `option-data` entry in space `S`, in this
//! order ([`OptionDefs::find`]):
//!
//! 1. definitions local to the scope (a client class's own `option-def`;
//!    none yet, the hook is [`OptionDefs::with_local`]),
//! 2. the standard definitions of `S` (`dhcp4`),
//! 3. the standard definitions of the vendor `S` names, for `vendor-4491`
//!    (DOCSIS 3: `oro`, `tftp-servers`),
//! 4. the global `option-def` list,
//! 5. the "last resort" definitions: option 43 `vendor-encapsulated-options`
//!    (no data, sub-options from `vendor-encapsulated-options-space`).
//!
//! Because 43 is only a last resort, an `option-def` may give it another
//! format; every other standard `dhcp4` code and name is protected.
//! [`parse`] applies Kea's `OptionDefParser` and `OptionDefinition::validate`
//! rules, [`OptionDefs::add`] those of `CfgOptionDef::add`.

use std::sync::LazyLock;

use super::error::Invalid;
use super::wire;

/// One field type, as Kea names it in `type` and `record-types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `empty`: no data; the option only carries sub-options.
    Empty,
    /// `binary`: opaque bytes, written as hex.
    Binary,
    /// `boolean`: one byte, 0 or 1.
    Boolean,
    /// `int8`.
    Int8,
    /// `int16`, network order.
    Int16,
    /// `int32`, network order.
    Int32,
    /// `uint8`.
    Uint8,
    /// `uint16`, network order.
    Uint16,
    /// `uint32`, network order.
    Uint32,
    /// `ipv4-address`.
    Ipv4Address,
    /// `ipv6-address`.
    Ipv6Address,
    /// `ipv6-prefix`: length byte, then the significant bytes.
    Ipv6Prefix,
    /// `psid`: RFC 7597 PSID length byte and 16-bit PSID.
    Psid,
    /// `string`: text, not NUL-terminated.
    String,
    /// `tuple`: a length byte and that many bytes of text.
    Tuple,
    /// `fqdn`: a domain name in uncompressed RFC 1035 wire format.
    Fqdn,
    /// `record`: the fields listed in `record-types`.
    Record,
}

impl DataType {
    const NAMES: [(&'static str, DataType); 17] = [
        ("empty", DataType::Empty),
        ("binary", DataType::Binary),
        ("boolean", DataType::Boolean),
        ("int8", DataType::Int8),
        ("int16", DataType::Int16),
        ("int32", DataType::Int32),
        ("uint8", DataType::Uint8),
        ("uint16", DataType::Uint16),
        ("uint32", DataType::Uint32),
        ("ipv4-address", DataType::Ipv4Address),
        ("ipv6-address", DataType::Ipv6Address),
        ("ipv6-prefix", DataType::Ipv6Prefix),
        ("psid", DataType::Psid),
        ("string", DataType::String),
        ("tuple", DataType::Tuple),
        ("fqdn", DataType::Fqdn),
        ("record", DataType::Record),
    ];

    /// The type Kea calls `name`.
    pub fn from_kea_name(name: &str) -> Option<DataType> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Kea's name for the type (for messages).
    pub fn kea_name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, t)| *t == self).map_or("record", |(n, _)| n)
    }

    /// Size on the wire when it is fixed (Kea's `getDataTypeLen`).
    pub fn fixed_len(self) -> Option<usize> {
        Some(match self {
            DataType::Boolean | DataType::Int8 | DataType::Uint8 => 1,
            DataType::Int16 | DataType::Uint16 => 2,
            DataType::Int32 | DataType::Uint32 | DataType::Ipv4Address => 4,
            DataType::Ipv6Address => 16,
            DataType::Psid => 3,
            _ => return None,
        })
    }
}

/// One option definition, standard or from `option-def`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionDef {
    /// Option name, unique within its space.
    pub name: String,
    /// Option code, unique within its space.
    pub code: u8,
    /// The option space it belongs to (`dhcp4` for top-level options).
    pub space: String,
    /// Its data type ([`DataType::Record`] for a record).
    pub kind: DataType,
    /// A record's fields, in order; empty unless `kind` is a record.
    pub fields: Vec<DataType>,
    /// Whether the value (a record's last field) repeats.
    pub array: bool,
    /// The option space whose options it carries as sub-options.
    pub encapsulate: Option<String>,
}

impl OptionDef {
    /// The fields of one value: a record's fields, or the one type.
    pub fn layout(&self) -> &[DataType] {
        if self.kind == DataType::Record { &self.fields } else { std::slice::from_ref(&self.kind) }
    }

    /// Whether sub-options from [`Self::encapsulate`] end up in the option.
    /// Kea builds `string` and `binary` options (and arrays) as plain
    /// options that drop sub-options, whatever the definition says.
    pub fn carries_suboptions(&self) -> bool {
        self.encapsulate.is_some() && !self.array && !matches!(self.kind, DataType::Binary | DataType::String)
    }
}

/// The `dhcp4` space's name.
pub const DHCP4: &str = "dhcp4";
/// The space option 43 carries by default.
pub const VENDOR_ENCAPSULATED_SPACE: &str = "vendor-encapsulated-options-space";
/// The space option 82 carries.
pub const AGENT_SPACE: &str = "dhcp-agent-options-space";
/// Cable Labs' enterprise number, the one vendor Kea has definitions for.
pub const VENDOR_ID_CABLE_LABS: u32 = 4491;

/// Kea's `OptionSpace::validateName`: letters, digits, `-` and `_`, not
/// empty, not starting or ending with `-` or `_`.
pub fn valid_space_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_'])
        && !name.ends_with(['-', '_'])
}

/// The enterprise number of a `vendor-<number>` space (Kea's
/// `optionSpaceToVendorId`; 0 and non-numbers are not vendor spaces).
pub fn vendor_id(space: &str) -> Option<u32> {
    let digits = space.strip_prefix("vendor-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|id| *id != 0)
}

/// One row of a built-in table.
struct Std {
    code: u8,
    name: &'static str,
    layout: &'static [DataType],
    array: bool,
    encapsulate: Option<&'static str>,
}

use DataType::{Binary, Boolean, Empty, Fqdn, Int32, Ipv4Address, Ipv6Address, Psid, Record, Uint8, Uint16, Uint32};

const IP: &[DataType] = &[Ipv4Address];
const STR: &[DataType] = &[DataType::String];
const U8: &[DataType] = &[Uint8];
const U16: &[DataType] = &[Uint16];
const U32: &[DataType] = &[Uint32];
const BOOL: &[DataType] = &[Boolean];
const BIN: &[DataType] = &[Binary];
const FQDN: &[DataType] = &[Fqdn];
const EMPTY: &[DataType] = &[Empty];

const fn one(code: u8, name: &'static str, layout: &'static [DataType]) -> Std {
    Std { code, name, layout, array: false, encapsulate: None }
}
const fn many(code: u8, name: &'static str, layout: &'static [DataType]) -> Std {
    Std { code, name, layout, array: true, encapsulate: None }
}

/// Kea 2.2's standard `dhcp4` definitions (43 is a last resort, below;
/// 121 `classless-static-route` came in later Kea versions: with 2.2 it
/// takes an `option-def` or hex data).
static STANDARD_DHCP4: &[Std] = &[
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
    one(79, "slp-service-scope", &[Boolean, DataType::String]),
    one(81, "fqdn", &[Uint8, Uint8, Uint8, Fqdn]),
    Std { code: 82, name: "dhcp-agent-options", layout: EMPTY, array: false, encapsulate: Some(AGENT_SPACE) },
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

/// Kea's last-resort `dhcp4` definitions (option 43).
static LAST_RESORT_DHCP4: &[Std] = &[Std {
    code: 43,
    name: "vendor-encapsulated-options",
    layout: EMPTY,
    array: false,
    encapsulate: Some(VENDOR_ENCAPSULATED_SPACE),
}];

/// Kea's DOCSIS 3 definitions, the options of space `vendor-4491`.
static DOCSIS3_V4: &[Std] = &[many(1, "oro", U8), many(2, "tftp-servers", IP)];

fn materialize(table: &[Std], space: &str) -> Vec<OptionDef> {
    table
        .iter()
        .map(|s| {
            let record = s.layout.len() > 1;
            OptionDef {
                name: s.name.to_owned(),
                code: s.code,
                space: space.to_owned(),
                kind: if record { Record } else { s.layout[0] },
                fields: if record { s.layout.to_vec() } else { Vec::new() },
                array: s.array,
                encapsulate: s.encapsulate.map(str::to_owned),
            }
        })
        .collect()
}

static STANDARD: LazyLock<Vec<OptionDef>> = LazyLock::new(|| materialize(STANDARD_DHCP4, DHCP4));
static LAST_RESORT: LazyLock<Vec<OptionDef>> = LazyLock::new(|| materialize(LAST_RESORT_DHCP4, DHCP4));
static DOCSIS3: LazyLock<Vec<OptionDef>> = LazyLock::new(|| materialize(DOCSIS3_V4, "vendor-4491"));

/// Kea's standard `dhcp4` definitions, by code.
pub fn standard_dhcp4() -> &'static [OptionDef] {
    &STANDARD
}

/// How an `option-data` entry names the option it sets.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// By `code`.
    Code(u8),
    /// By `name` (when no code is given).
    Name(&'a str),
}

impl Key<'_> {
    fn matches(&self, d: &OptionDef) -> bool {
        match self {
            Key::Code(c) => d.code == *c,
            Key::Name(n) => d.name == *n,
        }
    }
}

/// The standard definition of `key` in `space` (Kea's
/// `LibDHCP::getOptionDef`).
fn standard(space: &str, key: Key<'_>) -> Option<&'static OptionDef> {
    if space != DHCP4 {
        return None;
    }
    STANDARD.iter().find(|d| key.matches(d))
}

/// The definitions in force for one scope: the global `option-def` list
/// (Kea's runtime definitions) and any local to the scope. Standard, vendor
/// and last-resort tables are built in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionDefs {
    runtime: Vec<OptionDef>,
    local: Vec<OptionDef>,
}

impl OptionDefs {
    /// Only the built-in definitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a global `option-def` entry, refusing what `CfgOptionDef::add`
    /// refuses: a code or name already defined in the space, or a standard
    /// definition's code or name.
    pub fn add(&mut self, def: OptionDef) -> Result<(), std::string::String> {
        let (space, code, name) = (&def.space, def.code, &def.name);
        if self.runtime.iter().any(|d| d.space == *space && d.code == code) {
            return Err(format!("option definition with code '{code}' already exists in option space '{space}'"));
        }
        if self.runtime.iter().any(|d| d.space == *space && d.name == *name) {
            return Err(format!("option definition with name '{name}' already exists in option space '{space}'"));
        }
        if let Some(std) = standard(space, Key::Code(code)) {
            return Err(format!(
                "unable to override definition of option '{code}' in standard option space '{space}' (it is '{}')",
                std.name
            ));
        }
        if standard(space, Key::Name(name)).is_some() {
            return Err(format!("unable to override definition of option '{name}' in standard option space '{space}'"));
        }
        self.runtime.push(def);
        Ok(())
    }

    /// These definitions with `local` ones searched first: a client class's
    /// own `option-def` (Kea allows 43 and 224–254 there).
    pub fn with_local(&self, local: Vec<OptionDef>) -> OptionDefs {
        OptionDefs { runtime: self.runtime.clone(), local }
    }

    /// The global `option-def` entries.
    pub fn runtime(&self) -> &[OptionDef] {
        &self.runtime
    }

    /// The definition an `option-data` entry in `space` naming `key` uses,
    /// in Kea's order (see the module docs).
    pub fn find(&self, space: &str, key: Key<'_>) -> Option<&OptionDef> {
        let in_space = |d: &&OptionDef| d.space == space && key.matches(d);
        self.local
            .iter()
            .find(in_space)
            .or_else(|| standard(space, key))
            .or_else(|| {
                (vendor_id(space) == Some(VENDOR_ID_CABLE_LABS)).then(|| DOCSIS3.iter().find(in_space)).flatten()
            })
            .or_else(|| self.runtime.iter().find(in_space))
            .or_else(|| LAST_RESORT.iter().find(in_space))
    }

    /// The definition Kea uses to parse sub-option `code` of `space` out of
    /// binary data: standard (or local), then runtime.
    pub fn find_for_unpack(&self, space: &str, code: u8) -> Option<&OptionDef> {
        let in_space = |d: &&OptionDef| d.space == space && d.code == code;
        self.local
            .iter()
            .find(in_space)
            .or_else(|| standard(space, Key::Code(code)))
            .or_else(|| self.runtime.iter().find(in_space))
    }

    /// Whether a runtime definition exists for `code` in `space` (Kea lets
    /// such a definition turn 0 and 255 into sub-option codes of 43).
    pub fn has_runtime(&self, space: &str, code: u8) -> bool {
        self.runtime.iter().chain(&self.local).any(|d| d.space == space && d.code == code)
    }
}

/// Builds the definitions of `Dhcp4.option-def` (at `path`), in order;
/// `w` receives (path, message) warnings.
pub fn parse_list(list: &[wire::OptionDef], path: &str, w: &mut Vec<(String, String)>) -> Result<OptionDefs, Invalid> {
    let mut defs = OptionDefs::new();
    for (i, d) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if d.user_context.is_some() {
            w.push((format!("{p}.user-context"), "ignored".into()));
        }
        let def = parse(d, &p)?;
        defs.add(def).map_err(|m| Invalid::new(&p, m))?;
    }
    Ok(defs)
}

/// One `option-def` entry at `path`, checked as Kea 2.2 checks it.
pub fn parse(d: &wire::OptionDef, path: &str) -> Result<OptionDef, Invalid> {
    let at = |k: &str| format!("{path}.{k}");
    let name = d.name.as_deref().ok_or_else(|| Invalid::new(path, "an option definition needs a \"name\""))?;
    let code = d.code.ok_or_else(|| Invalid::new(path, "an option definition needs a \"code\""))?;
    let type_name = d.kind.as_deref().ok_or_else(|| Invalid::new(path, "an option definition needs a \"type\""))?;
    if code < 0 {
        return Err(Invalid::new(at("code"), "option code must not be negative"));
    }
    let code = u8::try_from(code).map_err(|_| {
        Invalid::new(at("code"), format!("invalid option code '{code}', it must not be greater than '255'"))
    })?;
    let space = d.space.as_deref().unwrap_or(DHCP4);
    if !valid_space_name(space) {
        return Err(Invalid::new(at("space"), format!("invalid option space name '{space}'")));
    }
    if space == DHCP4 && code == 0 {
        return Err(Invalid::new(at("code"), "invalid option code '0': reserved for PAD"));
    }
    if space == DHCP4 && code == 255 {
        return Err(Invalid::new(at("code"), "invalid option code '255': reserved for END"));
    }
    let array = d.array.unwrap_or(false);
    let encapsulate = d.encapsulate.as_deref().filter(|e| !e.is_empty());
    if let Some(e) = encapsulate {
        if array {
            return Err(Invalid::new(
                path,
                format!(
                    "option '{space}.{name}', comprising an array of data fields may not encapsulate any option space"
                ),
            ));
        }
        if e == space {
            return Err(Invalid::new(
                at("encapsulate"),
                format!(
                    "option must not encapsulate an option space it belongs to: '{space}.{name}' is set to encapsulate '{space}'"
                ),
            ));
        }
        if !valid_space_name(e) {
            return Err(Invalid::new(at("encapsulate"), format!("invalid encapsulated option space name: '{e}'")));
        }
    }
    let kind = DataType::from_kea_name(type_name)
        .ok_or_else(|| Invalid::new(at("type"), format!("option type '{type_name}' not supported")))?;
    let mut fields = Vec::new();
    for token in d.record_types.as_deref().unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let rp = at("record-types");
        if kind != Record {
            return Err(Invalid::new(
                rp,
                format!("'record' option type must be used instead of '{type_name}' to add data fields to the record"),
            ));
        }
        match DataType::from_kea_name(token) {
            Some(t) if !matches!(t, Record | Empty) => fields.push(t),
            _ => {
                return Err(Invalid::new(
                    rp,
                    format!(
                        "invalid record type values specified for the option definition: attempted to add invalid data type '{token}' to the record"
                    ),
                ));
            }
        }
    }
    let def = OptionDef {
        name: name.to_owned(),
        code,
        space: space.to_owned(),
        kind,
        fields,
        array,
        encapsulate: encapsulate.map(str::to_owned),
    };
    validate(&def).map_err(|m| Invalid::new(path, m))?;
    Ok(def)
}

/// Kea's `OptionDefinition::validate`.
fn validate(d: &OptionDef) -> Result<(), std::string::String> {
    if !valid_option_name(&d.name) {
        return Err(format!("invalid option name '{}'", d.name));
    }
    if d.kind == Record {
        let f = &d.fields;
        if f.len() < 2 {
            return Err(format!(
                "invalid number of data fields: {} specified for the option of type 'record'. Expected at least 2 fields.",
                f.len()
            ));
        }
        for (i, t) in f.iter().enumerate() {
            let last = i + 1 == f.len();
            if !last && matches!(t, DataType::String | Binary) {
                return Err(format!("{} data field can't be laid before data fields of other types.", t.kea_name()));
            }
        }
        if d.array && matches!(f.last(), Some(DataType::String | Binary)) {
            return Err(array_error(*f.last().unwrap_or(&DataType::String)));
        }
    } else if d.array && matches!(d.kind, DataType::String | Binary | Empty) {
        return Err(array_error(d.kind));
    }
    Ok(())
}

fn array_error(t: DataType) -> std::string::String {
    match t {
        DataType::String => "array of strings is not a valid option definition.".into(),
        Binary => "array of binary values is not a valid option definition.".into(),
        _ => "array of empty value is not a valid option definition.".into(),
    }
}

/// Option names follow the rule of space names.
fn valid_option_name(name: &str) -> bool {
    valid_space_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_def(json: &str) -> wire::OptionDef {
        serde_json::from_str(json).unwrap()
    }

    fn parsed(json: &str) -> Result<OptionDef, Invalid> {
        parse(&wire_def(json), "Dhcp4.option-def[0]")
    }

    #[test]
    fn standard_table_is_sorted_unique_and_has_no_43() {
        for w in STANDARD.windows(2) {
            assert!(w[0].code < w[1].code, "{} / {}", w[0].name, w[1].name);
        }
        assert!(STANDARD.iter().all(|d| d.code != 43));
        let mut names: Vec<_> = STANDARD.iter().map(|d| d.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STANDARD.len());
    }

    #[test]
    fn lookup_order_is_keas() {
        let mut defs = OptionDefs::new();
        // 43 is only a last resort, so a global definition replaces it.
        let d43 = parsed(r#"{"name": "vendor-encapsulated-options", "code": 43, "type": "ipv4-address"}"#).unwrap();
        assert_eq!(defs.find(DHCP4, Key::Code(43)).unwrap().kind, Empty);
        defs.add(d43).unwrap();
        assert_eq!(defs.find(DHCP4, Key::Code(43)).unwrap().kind, Ipv4Address);
        assert_eq!(defs.find(DHCP4, Key::Name("vendor-encapsulated-options")).unwrap().kind, Ipv4Address);
        // A class's local definition comes first.
        let local = parsed(r#"{"name": "vendor-encapsulated-options", "code": 43, "type": "string"}"#).unwrap();
        assert_eq!(defs.with_local(vec![local]).find(DHCP4, Key::Code(43)).unwrap().kind, DataType::String);
        // vendor-4491 has Kea's DOCSIS 3 definitions, ahead of runtime ones.
        assert_eq!(defs.find("vendor-4491", Key::Name("tftp-servers")).unwrap().code, 2);
        let shadowed = parsed(r#"{"name": "tftp", "code": 2, "type": "string", "space": "vendor-4491"}"#).unwrap();
        defs.add(shadowed).unwrap();
        assert_eq!(defs.find("vendor-4491", Key::Code(2)).unwrap().name, "tftp-servers");
        // Kea 2.2 has no 121.
        assert!(defs.find(DHCP4, Key::Code(121)).is_none());
        assert!(defs.find(DHCP4, Key::Name("classless-static-route")).is_none());
        assert!(defs.find("isc", Key::Code(1)).is_none());
    }

    #[test]
    fn kea_examples_parse() {
        // Kea 2.2 ARM, "Custom DHCPv4 Options": foo, and the record bar.
        let foo = parsed(
            r#"{"name": "foo", "code": 222, "type": "uint32", "array": false,
            "record-types": "", "space": "dhcp4", "encapsulate": ""}"#,
        )
        .unwrap();
        assert_eq!((foo.kind, foo.array, foo.encapsulate.as_deref()), (Uint32, false, None));
        let bar = parsed(
            r#"{"name": "bar", "code": 223, "space": "dhcp4", "type": "record", "array": false,
            "record-types": "ipv4-address, uint16, boolean, string", "encapsulate": ""}"#,
        )
        .unwrap();
        assert_eq!(bar.layout(), [Ipv4Address, Uint16, Boolean, DataType::String]);
        // "Nested DHCPv4 Options": container encapsulating isc.
        let c = parsed(
            r#"{"name": "container", "code": 222, "space": "dhcp4", "type": "empty",
            "array": false, "record-types": "", "encapsulate": "isc"}"#,
        )
        .unwrap();
        assert!(c.carries_suboptions());
    }

    #[test]
    fn refuses_what_kea_refuses() {
        for (json, key, why) in [
            (r#"{"name": "foo", "code": 0, "type": "uint8"}"#, "code", "reserved for PAD"),
            (r#"{"name": "foo", "code": 255, "type": "uint8"}"#, "code", "reserved for END"),
            (r#"{"name": "foo", "code": 256, "type": "uint8"}"#, "code", "greater than '255'"),
            (r#"{"name": "foo", "code": -1, "type": "uint8"}"#, "code", "negative"),
            (r#"{"name": "foo", "code": 1, "type": "uint64"}"#, "type", "not supported"),
            (r#"{"name": "foo", "code": 1, "type": "uint8", "space": "-x"}"#, "space", "invalid option space"),
            (r#"{"name": "foo", "code": 1, "type": "uint8", "record-types": "uint8"}"#, "record-types", "'record'"),
            (
                r#"{"name": "foo", "code": 1, "type": "record", "record-types": "uint8, bogus"}"#,
                "record-types",
                "bogus",
            ),
            (
                r#"{"name": "foo", "code": 1, "type": "record", "record-types": "uint8, empty"}"#,
                "record-types",
                "empty",
            ),
            (r#"{"name": "foo", "code": 1, "type": "uint8", "encapsulate": "dhcp4"}"#, "encapsulate", "belongs to"),
            (r#"{"code": 1, "type": "uint8"}"#, "", "\"name\""),
        ] {
            let e = parsed(json).expect_err(json);
            let want =
                if key.is_empty() { "Dhcp4.option-def[0]".to_owned() } else { format!("Dhcp4.option-def[0].{key}") };
            assert_eq!(e.path, want, "{json}");
            assert!(e.message.contains(why), "{json}: {}", e.message);
        }
        for (json, why) in [
            (r#"{"name": "foo", "code": 1, "type": "record", "record-types": "uint8"}"#, "at least 2"),
            (r#"{"name": "foo", "code": 1, "type": "record", "record-types": "string, uint8"}"#, "string data field"),
            (
                r#"{"name": "foo", "code": 1, "type": "record", "array": true, "record-types": "uint8, binary"}"#,
                "binary",
            ),
            (r#"{"name": "foo", "code": 1, "type": "string", "array": true}"#, "array of strings"),
            (r#"{"name": "foo", "code": 1, "type": "empty", "array": true}"#, "array of empty"),
            (
                r#"{"name": "foo", "code": 1, "type": "uint8", "array": true, "encapsulate": "x"}"#,
                "may not encapsulate",
            ),
            (r#"{"name": "-foo", "code": 1, "type": "uint8"}"#, "invalid option name"),
            (r#"{"name": "fo o", "code": 1, "type": "uint8"}"#, "invalid option name"),
        ] {
            let e = parsed(json).expect_err(json);
            assert_eq!(e.path, "Dhcp4.option-def[0]", "{json}");
            assert!(e.message.contains(why), "{json}: {}", e.message);
        }
    }

    #[test]
    fn add_protects_standard_and_duplicates() {
        let mut defs = OptionDefs::new();
        let host = parsed(r#"{"name": "foo", "code": 12, "type": "uint8"}"#).unwrap();
        assert!(defs.add(host).unwrap_err().contains("standard option space"));
        let routers = parsed(r#"{"name": "routers", "code": 200, "type": "uint8"}"#).unwrap();
        assert!(defs.add(routers).unwrap_err().contains("routers"));
        // Kea 2.2 has no 121, so it may be defined.
        defs.add(parsed(r#"{"name": "my-routes", "code": 121, "type": "binary"}"#).unwrap()).unwrap();
        defs.add(parsed(r#"{"name": "foo", "code": 1, "type": "uint8", "space": "isc"}"#).unwrap()).unwrap();
        let again = parsed(r#"{"name": "bar", "code": 1, "type": "uint8", "space": "isc"}"#).unwrap();
        assert!(defs.add(again).unwrap_err().contains("code '1' already exists"));
        let same_name = parsed(r#"{"name": "foo", "code": 2, "type": "uint8", "space": "isc"}"#).unwrap();
        assert!(defs.add(same_name).unwrap_err().contains("name 'foo' already exists"));
        // The same code in another space is fine.
        defs.add(parsed(r#"{"name": "foo", "code": 1, "type": "uint8", "space": "other"}"#).unwrap()).unwrap();
    }

    #[test]
    fn vendor_spaces() {
        assert_eq!(vendor_id("vendor-4491"), Some(4491));
        assert_eq!(vendor_id("vendor-4294967295"), Some(u32::MAX));
        for s in ["vendor-", "vendor-0", "vendor-x1", "vendor-4294967296", "339", "vendor--1"] {
            assert_eq!(vendor_id(s), None, "{s}");
        }
    }
}
