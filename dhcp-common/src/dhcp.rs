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
