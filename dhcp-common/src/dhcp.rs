//! DHCP numbers the kernel program and the daemon must agree on byte for
//! byte: the message types of option 53 and the option codes the server
//! manages itself. Defined once here so the kernel's ACK and the daemon's
//! cannot drift apart.

/// Option 53 values (RFC 2132 §9.6).
pub mod msg_type {
    /// DHCPDISCOVER.
    pub const DISCOVER: u8 = 1;
    /// DHCPOFFER.
    pub const OFFER: u8 = 2;
    /// DHCPREQUEST.
    pub const REQUEST: u8 = 3;
    /// DHCPDECLINE.
    pub const DECLINE: u8 = 4;
    /// DHCPACK.
    pub const ACK: u8 = 5;
    /// DHCPNAK.
    pub const NAK: u8 = 6;
    /// DHCPRELEASE.
    pub const RELEASE: u8 = 7;
    /// DHCPINFORM.
    pub const INFORM: u8 = 8;
}

/// Option codes the server sets itself (lease time, message type, server
/// identifier, T1, T2, client identifier): configuration never overrides
/// them and a parameter request list never adds them a second time.
pub const SERVER_MANAGED: [u8; 6] = [51, 53, 54, 58, 59, 61];

/// What a received option's value must look like for the daemon's parser
/// (dhcproto, checked against Kea 2.2's standard definitions, which drop a
/// packet whose option does not unpack). Shared so the kernel never answers
/// a request the daemon drops: one table, two readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Any length: bytes, text (Kea takes any bytes), or an unknown code.
    Free,
    /// A fixed-size integer, flag or address: length within `min..=max`.
    Len(u8, u8),
    /// An array of fixed-size items (addresses, address pairs, 16-bit
    /// integers): a positive multiple of the item size.
    Multiple(u8),
    /// Structured (sub-options, domain names, routes, enumerated values):
    /// only the daemon's parser can tell whether it unpacks.
    Parsed,
}

/// The [`Shape`] of option `code` in a request.
pub const fn option_shape(code: u8) -> Shape {
    match code {
        19 | 20 | 23 | 27 | 29 | 30 | 31 | 34 | 36 | 37 | 39 | 46 | 52 | 53 | 156 | 157 => Shape::Len(1, 1),
        13 | 22 | 26 | 57 | 93 => Shape::Len(2, 2),
        94 => Shape::Len(3, 3),
        1 | 2 | 16 | 24 | 28 | 32 | 35 | 38 | 50 | 51 | 54 | 58 | 59 | 91 | 106 | 108 | 118 | 150 | 152..=155 => {
            Shape::Len(4, 4)
        }
        80 => Shape::Len(0, 0),
        // Flags and two codes before the name; a status code before text.
        81 => Shape::Len(3, 255),
        151 => Shape::Len(1, 255),
        3..=11 | 41 | 42 | 44 | 45 | 48 | 49 | 65 | 68..=76 | 89 | 92 => Shape::Multiple(4),
        21 | 33 => Shape::Multiple(8),
        25 => Shape::Multiple(2),
        82 | 88 | 116 | 119 | 121 => Shape::Parsed,
        _ => Shape::Free,
    }
}

/// Whether an option of `code` with a value of `len` bytes has a length its
/// [`Shape`] allows (a [`Shape::Parsed`] option still has to unpack).
pub const fn option_len_ok(code: u8, len: u8) -> bool {
    match option_shape(code) {
        Shape::Len(min, max) => len >= min && len <= max,
        Shape::Multiple(n) => len >= n && len % n == 0,
        Shape::Free | Shape::Parsed => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_shape() {
        assert!(option_len_ok(53, 1) && !option_len_ok(53, 2) && !option_len_ok(53, 0));
        assert!(option_len_ok(3, 8) && !option_len_ok(3, 6) && !option_len_ok(3, 0));
        assert!(option_len_ok(21, 16) && !option_len_ok(21, 12));
        assert!(option_len_ok(12, 0) && option_len_ok(12, 255) && option_len_ok(82, 7));
        assert!(option_len_ok(80, 0) && !option_len_ok(80, 1));
        assert_eq!(option_shape(119), Shape::Parsed);
    }
}
