//! The lease data model, shaped after Kea's `Lease4` so that every field
//! survives a trip through a Kea memfile and back.
//!
//! Two deliberate consequences of that shape:
//! - `expire` (not the client's last transmission time) is stored, because it
//!   is what the CSV holds; `cltt()` derives the other one exactly as Kea does.
//! - the hardware type is not persisted by Kea (it always reads Ethernet back),
//!   so [`HwAddr::htype`] is informational and indexes ignore it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use thiserror::Error;

/// Valid lifetime meaning "never expires" (Kea's `INFINITY_LFT`).
pub const INFINITE_LIFETIME: u32 = u32::MAX;

/// ARP hardware type for Ethernet; what Kea assumes for every address it reads.
pub const HTYPE_ETHERNET: u8 = 1;

/// Longest hardware address Kea accepts (`HWAddr::MAX_HWADDR_LEN`).
pub const MAX_HWADDR_LEN: usize = 20;

/// Shortest client identifier Kea accepts (`ClientId::MIN_CLIENT_ID_LEN`).
pub const MIN_CLIENT_ID_LEN: usize = 2;

/// Longest client identifier Kea accepts (`DUID::MAX_DUID_LEN`).
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Why an identifier could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Wrong number of bytes for this kind of identifier.
    #[error("length {len} outside {min}..={max}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Fewest bytes allowed.
        min: usize,
        /// Most bytes allowed.
        max: usize,
    },
    /// Text that is not hex in one of the forms Kea accepts; the text is
    /// Kea's own (`decodeSeparatedHexString`), which Forge compares exactly.
    #[error("{0}")]
    Hex(String),
}

/// A client hardware address (`chaddr`), as Kea keeps it: a type and up to
/// 20 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HwAddr {
    /// ARP hardware type (1 = Ethernet). Not stored in the memfile.
    pub htype: u8,
    bytes: Vec<u8>,
}

impl HwAddr {
    /// Builds an address of 1 to [`MAX_HWADDR_LEN`] bytes (an absent address
    /// is `None` at the lease level, never an empty `HwAddr`).
    pub fn new(htype: u8, bytes: impl Into<Vec<u8>>) -> Result<Self, IdError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_HWADDR_LEN {
            return Err(IdError::Length { len: bytes.len(), min: 1, max: MAX_HWADDR_LEN });
        }
        Ok(HwAddr { htype, bytes })
    }

    /// Shorthand for the common Ethernet case.
    pub fn ethernet(mac: [u8; 6]) -> Self {
        HwAddr { htype: HTYPE_ETHERNET, bytes: mac.to_vec() }
    }

    /// The address bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for HwAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_colon_hex(f, &self.bytes)
    }
}

impl FromStr for HwAddr {
    type Err = IdError;

    /// Parses Kea's memfile form (`aa:bb:..`, one or two digits per octet),
    /// assuming Ethernet as Kea does.
    fn from_str(s: &str) -> Result<Self, IdError> {
        HwAddr::new(HTYPE_ETHERNET, parse_colon_hex(s)?)
    }
}

/// A DHCP client identifier (option 61), 2 to 128 bytes as Kea requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Vec<u8>);

impl ClientId {
    /// Builds a client identifier; Kea rejects fewer than 2 or more than 128 bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, IdError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_CLIENT_ID_LEN || bytes.len() > MAX_CLIENT_ID_LEN {
            return Err(IdError::Length {
                len: bytes.len(),
                min: MIN_CLIENT_ID_LEN,
                max: MAX_CLIENT_ID_LEN,
            });
        }
        Ok(ClientId(bytes))
    }

    /// The identifier bytes (type byte included).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_colon_hex(f, &self.0)
    }
}

impl FromStr for ClientId {
    type Err = IdError;

    /// Accepts every form Kea's `ClientId::fromText` does: `01:aa:..`,
    /// `01 aa ..`, `01aa..` and `0x01aa..`.
    fn from_str(s: &str) -> Result<Self, IdError> {
        ClientId::new(parse_formatted_hex(s)?)
    }
}

/// Lease state, with Kea's numeric values (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeaseState {
    /// Assigned (or expired but not yet reclaimed).
    #[default]
    Default,
    /// Declined by a client (address conflict); held for the probation period.
    Declined,
    /// Expired and reclaimed: kept for lease affinity, no longer assigned.
    ExpiredReclaimed,
    /// A state Kea 2.2 does not define for v4 (newer Kea has "released" = 3).
    /// Kea 2.2 reads any number and writes it back unchanged; so do we,
    /// rather than drop the lease when taking over a newer Kea's files.
    Other(u32),
}

impl LeaseState {
    /// The number Kea writes in the `state` column.
    pub fn code(self) -> u32 {
        match self {
            LeaseState::Default => 0,
            LeaseState::Declined => 1,
            LeaseState::ExpiredReclaimed => 2,
            LeaseState::Other(code) => code,
        }
    }

    /// The state for a `state` column value.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => LeaseState::Default,
            1 => LeaseState::Declined,
            2 => LeaseState::ExpiredReclaimed,
            other => LeaseState::Other(other),
        }
    }
}

/// Why a lease cannot be stored (Kea would refuse to write or read it back).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidLease {
    /// A zero valid lifetime is how the memfile marks a deletion.
    #[error("valid lifetime 0 is reserved for deletions")]
    ZeroLifetime,
    /// Kea requires a hardware address or a client id unless declined.
    #[error("neither hardware address nor client id (only allowed when declined)")]
    NoIdentifier,
    /// Kea only accepts a JSON map as user context.
    #[error("user context is not a JSON map")]
    UserContextNotMap,
    /// The user context holds something Kea's JSON cannot represent.
    #[error("user context: {0}")]
    UserContext(#[from] super::json::JsonError),
}

/// One DHCPv4 lease: the columns of Kea's v4 memfile, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The leased address (primary key).
    pub address: Ipv4Addr,
    /// Client hardware address, absent for declined leases.
    pub hwaddr: Option<HwAddr>,
    /// Client identifier (option 61), if the client sent one.
    pub client_id: Option<ClientId>,
    /// Lifetime in seconds; [`INFINITE_LIFETIME`] never expires.
    pub valid_lifetime: u32,
    /// Expiration time, unix seconds (= cltt + valid_lifetime).
    pub expire: u64,
    /// Kea subnet id the lease belongs to.
    pub subnet_id: u32,
    /// Forward DNS update was done.
    pub fqdn_fwd: bool,
    /// Reverse DNS update was done.
    pub fqdn_rev: bool,
    /// Client hostname, empty when none.
    pub hostname: String,
    /// Default, declined or expired-reclaimed.
    pub state: LeaseState,
    /// Arbitrary JSON map kept with the lease (Kea's `user-context`).
    pub user_context: Option<serde_json::Value>,
}

impl Lease {
    /// A default-state lease with the given identity and times; the other
    /// fields are empty and can be set directly.
    pub fn new(
        address: Ipv4Addr,
        hwaddr: Option<HwAddr>,
        client_id: Option<ClientId>,
        subnet_id: u32,
        cltt: u64,
        valid_lifetime: u32,
    ) -> Self {
        Lease {
            address,
            hwaddr,
            client_id,
            valid_lifetime,
            expire: cltt + u64::from(valid_lifetime),
            subnet_id,
            fqdn_fwd: false,
            fqdn_rev: false,
            hostname: String::new(),
            state: LeaseState::Default,
            user_context: None,
        }
    }

    /// A declined lease as Kea's `Lease4::decline` makes it: identity and DNS
    /// data dropped, held until `now + probation`.
    pub fn declined(address: Ipv4Addr, subnet_id: u32, probation: u32, now: u64) -> Self {
        let mut lease = Lease::new(address, None, None, subnet_id, now, probation);
        lease.state = LeaseState::Declined;
        lease
    }

    /// Client last transmission time, unix seconds (Kea derives it the same way).
    pub fn cltt(&self) -> u64 {
        self.expire.saturating_sub(u64::from(self.valid_lifetime))
    }

    /// True once the lease has run out at `now` (unix seconds); infinite
    /// leases never do. Same comparison as Kea's `Lease::expired`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.valid_lifetime != INFINITE_LIFETIME && self.expire < now
    }

    /// Checks what Kea checks before writing a lease, plus what our own
    /// encoding needs.
    pub fn validate(&self) -> Result<(), InvalidLease> {
        if self.valid_lifetime == 0 {
            return Err(InvalidLease::ZeroLifetime);
        }
        if self.hwaddr.is_none() && self.client_id.is_none() && self.state != LeaseState::Declined {
            return Err(InvalidLease::NoIdentifier);
        }
        if let Some(ctx) = &self.user_context {
            if !ctx.is_object() {
                return Err(InvalidLease::UserContextNotMap);
            }
            super::json::check_kea_json(ctx)?;
        }
        Ok(())
    }
}

/// Bytes as Kea prints hardware addresses, client ids and DUIDs in its
/// log lines and error texts: lower-case hex pairs joined by colons.
pub fn colon_hex(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_colon_hex(f, self.0)
        }
    }
    Hex(bytes).to_string()
}

fn write_colon_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Kea's `decodeSeparatedHexString`: octets of one or two hex digits between
/// separators; an empty string is zero bytes.
fn parse_separated_hex(s: &str, sep: char) -> Result<Vec<u8>, IdError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(sep)
        .map(|octet| {
            if octet.is_empty() {
                return Err(IdError::Hex(format!(
                    "two consecutive separators ('{sep}') specified in a decoded string '{s}'"
                )));
            }
            if octet.len() > 2 {
                return Err(IdError::Hex(format!("invalid format of the decoded string '{s}'")));
            }
            // `from_str_radix` would accept a leading '+'; Kea would not.
            if let Some(c) = octet.chars().find(|c| !c.is_ascii_hexdigit()) {
                return Err(IdError::Hex(format!(
                    "'{c}' is not a valid hexadecimal digit in decoded string '{s}'"
                )));
            }
            u8::from_str_radix(octet, 16).map_err(|e| IdError::Hex(e.to_string()))
        })
        .collect()
}

/// The colon form used for hardware addresses.
pub(crate) fn parse_colon_hex(s: &str) -> Result<Vec<u8>, IdError> {
    parse_separated_hex(s, ':')
}

/// Kea's `decodeFormattedHexString`: colon- or space-separated octets, or a
/// plain digit string with an optional `0x` and an implied leading zero.
pub(crate) fn parse_formatted_hex(s: &str) -> Result<Vec<u8>, IdError> {
    if s.contains(':') {
        return parse_separated_hex(s, ':');
    }
    if s.contains(' ') {
        return parse_separated_hex(s, ' ');
    }
    let digits = if s.len() > 2 && s.starts_with("0x") { &s[2..] } else { s };
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError::Hex(format!("'{s}' is not a valid string of hexadecimal digits")));
    }
    let padded;
    let digits = if digits.len() % 2 == 1 {
        padded = format!("0{digits}");
        padded.as_str()
    } else {
        digits
    };
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|e| IdError::Hex(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwaddr_text_forms() {
        let hw: HwAddr = "0a:b:cc".parse().unwrap();
        assert_eq!(hw.bytes(), &[0x0a, 0x0b, 0xcc]);
        assert_eq!(hw.to_string(), "0a:0b:cc");
        assert!("aabb".parse::<HwAddr>().is_err());
        assert!("aa::bb".parse::<HwAddr>().is_err());
        assert!("".parse::<HwAddr>().is_err(), "empty is None at lease level");
        assert!("zz".parse::<HwAddr>().is_err());
        let long = vec!["01"; 21].join(":");
        assert!(long.parse::<HwAddr>().is_err());
    }

    #[test]
    fn client_id_text_forms() {
        for text in ["01:aa:bb", "01 aa bb", "01aabb", "0x01aabb", "1aabb"] {
            let id: ClientId = text.parse().unwrap();
            assert_eq!(id.bytes(), &[0x01, 0xaa, 0xbb], "{text}");
        }
        assert!("01".parse::<ClientId>().is_err(), "Kea needs at least two bytes");
        assert!("01:gg".parse::<ClientId>().is_err());
        assert_eq!(ClientId::new(vec![1, 2]).unwrap().to_string(), "01:02");
    }

    /// Forge compares these texts with Kea's exactly.
    #[test]
    fn hex_errors_in_keas_words() {
        let err = |r: Result<Vec<u8>, IdError>| r.unwrap_err().to_string();
        assert_eq!(err(parse_colon_hex(" ")), "' ' is not a valid hexadecimal digit in decoded string ' '");
        assert_eq!(err(parse_colon_hex("aaaaa")), "invalid format of the decoded string 'aaaaa'");
        assert_eq!(err(parse_colon_hex("+1")), "'+' is not a valid hexadecimal digit in decoded string '+1'");
        assert_eq!(err(parse_formatted_hex(" ")), "two consecutive separators (' ') specified in a decoded string ' '");
        assert_eq!(err(parse_formatted_hex("aa::bb")), "two consecutive separators (':') specified in a decoded string 'aa::bb'");
        assert_eq!(err(parse_formatted_hex("xx")), "'xx' is not a valid string of hexadecimal digits");
        assert_eq!(parse_formatted_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn times_and_validation() {
        let mut l = Lease::new(Ipv4Addr::new(192, 0, 2, 1), Some(HwAddr::ethernet([1; 6])), None, 1, 1000, 60);
        assert_eq!(l.expire, 1060);
        assert_eq!(l.cltt(), 1000);
        assert!(!l.is_expired(1060));
        assert!(l.is_expired(1061));
        assert_eq!(l.validate(), Ok(()));
        l.hwaddr = None;
        assert_eq!(l.validate(), Err(InvalidLease::NoIdentifier));
        let d = Lease::declined(Ipv4Addr::new(192, 0, 2, 2), 1, 86400, 5);
        assert_eq!((d.state, d.expire), (LeaseState::Declined, 86405));
        for code in [0, 1, 2, 3, 9] {
            assert_eq!(LeaseState::from_code(code).code(), code);
        }
        assert_eq!(LeaseState::from_code(3), LeaseState::Other(3));
        assert_eq!(d.validate(), Ok(()));
        l.hwaddr = Some(HwAddr::ethernet([1; 6]));
        l.valid_lifetime = INFINITE_LIFETIME;
        l.expire = 1000 + u64::from(INFINITE_LIFETIME);
        assert!(!l.is_expired(u64::MAX));
    }
}
