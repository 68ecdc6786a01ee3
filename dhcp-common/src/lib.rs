//! # Layout
//!
//! Types shared by the kernel program (`dhcp-ebpf`) and the daemon
//! (`dhcp-user`). Both sides must agree byte for byte on every map key and
//! value, so each map lives in one module that holds its name, capacity and
//! key/value types together. Everything here is `#[repr(C)]` with explicit
//! padding and no `bool`/`Option`, because the verifier and `bpftool` see raw
//! bytes.
//!
//! - [`counters`]: per-CPU outcome counters of the XDP program.
//! - [`dhcp`]: message-type numbers and the server-managed option codes.
//! - [`fastpath`]: leases, per-subnet replies, reservations, relays,
//!   settings and ACK events.
//! - [`ha`]: Kea's load-balancing hash (RFC 3074) and the scope test.
//!
//! With the `user` feature the types implement `aya::Pod` so the daemon can
//! use them with aya's map wrappers.
#![no_std]
#![warn(missing_docs)]

pub mod counters;
pub mod dhcp;
pub mod fastpath;
pub mod ha;
