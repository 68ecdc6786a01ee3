//! The DHCPv4 protocol core: pure functions from a request and the current
//! state to a decision. No sockets, no files: everything here is unit-tested.
//!
//! - [`inbound`]: bytes → validated request, or a counted drop reason.
//! - [`frame`]: Ethernet/IPv4/UDP framing and checksums for raw replies.
pub mod frame;
pub mod inbound;
