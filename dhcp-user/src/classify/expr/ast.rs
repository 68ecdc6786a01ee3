//! The parsed form of an expression: a tree, built once at config time
//! and walked per packet by [`super::eval`].

/// Where a value comes from in the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `option[code]`. `string`: its standard definition is a string
    /// (Kea parses it as `OptionString`: trailing NULs dropped, `.text`
    /// is the string itself).
    Option {
        /// Option code.
        code: u8,
        /// Read as a string option.
        string: bool,
    },
    /// `option[code].option[sub]`.
    SubOption {
        /// Parent option code.
        code: u8,
        /// Sub-option code.
        sub: u8,
    },
    /// `relay4[sub]`: a sub-option of option 82.
    Relay4(u8),
    /// `vendor[enterprise].option[sub]` (option 125; enterprise 0 is `*`).
    VendorOption {
        /// Enterprise number, 0 for any.
        enterprise: u32,
        /// Sub-option code.
        sub: u8,
    },
}

/// `.text` or `.hex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// `.text`: Kea's textual form.
    Text,
    /// `.hex`: the raw bytes.
    Hex,
}

/// `pkt.…` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PktField {
    /// `pkt.iface`: receiving interface name.
    Iface,
    /// `pkt.src`: IP source address.
    Src,
    /// `pkt.dst`: IP destination address.
    Dst,
    /// `pkt.len`: DHCP payload length, 4 bytes.
    Len,
}

/// `pkt4.…` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkt4Field {
    /// `pkt4.mac`: chaddr, `hlen` bytes.
    Mac,
    /// `pkt4.hlen`, 4 bytes.
    Hlen,
    /// `pkt4.htype`, 4 bytes.
    Htype,
    /// `pkt4.ciaddr`.
    Ciaddr,
    /// `pkt4.giaddr`.
    Giaddr,
    /// `pkt4.yiaddr`.
    Yiaddr,
    /// `pkt4.siaddr`.
    Siaddr,
    /// `pkt4.msgtype`, 4 bytes.
    MsgType,
    /// `pkt4.transid`, 4 bytes.
    TransId,
}

/// The `*totext` conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum IntKind {
    I8,
    I16,
    I32,
    U8,
    U16,
    U32,
}

/// `substring`'s length: a number or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// A count; negative takes characters before the start.
    N(i64),
    /// `all`: to the end.
    All,
}

/// A boolean expression (a class's `test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bool {
    /// `not e`.
    Not(Box<Bool>),
    /// `a and b`.
    And(Box<Bool>, Box<Bool>),
    /// `a or b`.
    Or(Box<Bool>, Box<Bool>),
    /// `a == b` on strings.
    Equal(Box<Str>, Box<Str>),
    /// `….exists`.
    Exists(Source),
    /// `vendor[e].exists` (option 125 with that enterprise, 0 for any).
    VendorExists(u32),
    /// `vendor-class[e].exists` (option 124).
    VendorClassExists(u32),
    /// `member('class')`.
    Member(String),
}

/// A string expression: Kea's values are byte strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Str {
    /// A literal: `'text'`, `0x…`, an address, or an integer (4 bytes).
    Literal(Vec<u8>),
    /// `….text` / `….hex`.
    Option(Source, Repr),
    /// `pkt.…`.
    Pkt(PktField),
    /// `pkt4.…`.
    Pkt4(Pkt4Field),
    /// `substring(s, start, length)`.
    Substring(Box<Str>, i64, Length),
    /// `split(s, delimiters, field)`.
    Split(Box<Str>, Box<Str>, i64),
    /// `concat(a, b)` or `a + b`.
    Concat(Box<Str>, Box<Str>),
    /// `ifelse(cond, a, b)`.
    IfElse(Box<Bool>, Box<Str>, Box<Str>),
    /// `hexstring(s, separator)`.
    HexString(Box<Str>, Box<Str>),
    /// `addrtotext(s)`.
    AddrToText(Box<Str>),
    /// `int8totext(s)` … `uint32totext(s)`.
    IntToText(IntKind, Box<Str>),
    /// `vendor.enterprise`: option 125's enterprise number, 4 bytes.
    VendorEnterprise,
    /// `vendor-class.enterprise`: option 124's.
    VendorClassEnterprise,
    /// `vendor-class[e].data[i]`: the i-th data chunk of option 124.
    VendorClassData(u32, u8),
}
