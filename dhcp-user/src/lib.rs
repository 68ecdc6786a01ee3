//! # Layout
//!
//! The xdhcp daemon as a library, so every part is testable without root;
//! `main.rs` only parses arguments and starts the daemon.
//!
//! - [`config`]: Kea `Dhcp4` JSON in, validated runtime types out.
//! - [`leases`]: the lease store (Kea memfile CSV, group-committed fsync).
//! - [`xdp`]: loads the embedded eBPF object, attaches it, reads its maps.
pub mod config;
pub mod leases;
pub mod xdp;
