//! # Layout
//!
//! The xdhcp daemon as a library, so every part is testable without root;
//! `main.rs` only parses arguments and starts the daemon.
//!
//! - [`config`]: Kea `Dhcp4` JSON in, validated runtime types out.
//! - [`check`]: `xdhcpd check`, one server's and HA peers' configs checked together.
//! - [`import`]: `xdhcpd import-dhcpd`, ISC dhcpd.conf/dhcpd.leases to Kea format.
//! - [`leases`]: the lease store (Kea memfile CSV, group-committed fsync).
//! - [`dhcp`]: the protocol core (pure): classify, decide, build replies.
//! - [`fastpath`]: keeps the kernel's lease map and reply templates in step.
//! - [`glue`]: config → policy, store ↔ engine adapters.
//! - [`ha`]: Kea's HA state machine (pure), load-balancing hash and scopes.
//! - [`peer`]: HA at run time: heartbeats, replication, sync, the driver.
//! - [`reclaim`]: Kea's expired-lease processing (reclaim, flush).
//! - [`server`]: the per-interface packet loop.
//! - [`daemon`]: assembles everything for `xdhcpd run`.
//! - [`net`]: sockets in and out (UDP per interface, AF_PACKET for raw replies).
//! - [`xdp`]: loads the embedded eBPF object, attaches it, reads its maps.
//! - [`api`]: Kea-compatible control commands over HTTP, metrics, status page.
pub mod api;
pub mod check;
pub mod config;
pub mod daemon;
pub mod dhcp;
pub mod fastpath;
pub mod glue;
pub mod ha;
pub mod import;
pub mod leases;
pub mod net;
pub mod peer;
pub mod reclaim;
pub mod server;
pub mod xdp;
