//! # Layout
//!
//! The xdhcp daemon as a library, so every part is testable without root;
//! `main.rs` only parses arguments and starts the daemon. Modules form
//! layers; each imports only the layers above it in this list.
//!
//! 1. Pure domain, no I/O:
//!    - [`clock`]: `unix_now`, the seconds every lease and map entry counts in.
//!    - [`config`]: Kea `Dhcp4` JSON in, validated runtime types out.
//!    - [`classify`]: Kea's client classes: the expression language and
//!      the order a packet's classes are assigned in.
//!    - [`leases`]: the lease store (Kea memfile CSV, group-committed fsync).
//!    - [`dhcp`]: the protocol core: classify, decide, build replies.
//!    - [`ha`]: Kea's HA state machine, load-balancing hash, scopes, typed status.
//!    - [`glue`]: config → policy, store ↔ engine adapters.
//!    - [`events`]: the recent-events log the status page shows.
//!    - [`reclaim`]: Kea's expired-lease processing (reclaim, flush).
//! 2. Kea's formats: [`kea`] (commands and answers, lease JSON, dates, every
//!    outbound HA command, HA status JSON); the templates half of
//!    [`fastpath`].
//! 3. I/O primitives: [`net`] (sockets), [`xdp`] (load, attach per
//!    interface, delivery checks, counters),
//!    [`fastpath`]'s map writer, [`kernel`] (the one task owning the map
//!    handles, and the channel to it), [`peer::client`] (HTTP to a peer).
//! 4. State: [`core`] (the `Core` handle: policy, store, allocator, typed
//!    counters, DHCP switch, reuse grace; the pure packet pipeline). Its
//!    kernel writes leave as messages to [`kernel`].
//! 5. Services: [`peer`] (the HA runtime), [`server`] (the per-interface
//!    packet loop: commit, then send), [`workers`] (Kea's multi-threading
//!    pool, resized by reconfigurations), [`reconfig`] (a new config applied
//!    to core, kernel, HA and loggers together, or refused whole).
//! 6. [`api`]: Kea-compatible control commands over HTTP, metrics, status
//!    page; nothing imports it but the wiring.
//! 7. [`daemon`]: assembles everything for `xdhcpd run`.
//!
//! Across the layers, [`logging`] writes `tracing` events as Kea's log
//! lines to the outputs `Dhcp4.loggers` configures.
//!
//! Beside the daemon, [`check`] (`xdhcpd check`) and [`import`]
//! (`xdhcpd import-dhcpd`) use only the domain and Kea layers.
pub mod api;
pub mod check;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod coverage;
pub mod daemon;
pub mod dbtool;
pub mod dhcp;
pub mod events;
pub mod fastpath;
pub mod glue;
pub mod ha;
pub mod import;
pub mod kea;
pub mod kernel;
pub mod leases;
pub mod logging;
pub mod net;
pub mod packet_queue;
pub mod peer;
pub mod pidfile;
pub mod reclaim;
pub mod reconfig;
pub mod server;
pub mod workers;
pub mod xdp;
