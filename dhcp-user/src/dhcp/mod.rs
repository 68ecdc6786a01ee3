//! The DHCPv4 protocol core: pure functions from a request and the current
//! state to a decision. No sockets, no files: everything here is unit-tested.
//!
//! - [`inbound`]: bytes → validated request, or a counted drop reason.
//! - [`policy`]: the config compiled for the per-packet path.
//! - [`select`]: which subnet a request belongs to (Kea's order).
//! - [`engine`]: `decide` — request + leases + policy → reply and lease write.
//! - [`frame`]: Ethernet/IPv4/UDP framing and checksums for raw replies.
pub mod client_name;
pub mod engine;
pub mod flex;
pub mod frame;
pub mod inbound;
pub mod policy;
pub mod select;
