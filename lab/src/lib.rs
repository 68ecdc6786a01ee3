//! # Layout
//!
//! The lab: real network tests on one machine. Hosts are network
//! namespaces, L2 segments are bridges in their own "switch" namespaces,
//! and tests drive real programs (Kea, dhclient, tcpdump, xdhcpd) in them.
//! Everything the lab creates lives inside namespaces it made, under names
//! unique to the process, and is torn down on drop, panic or signal.
//!
//! - [`topology`]: declarative hosts, segments, addresses, roles.
//! - [`lab`]: [`Lab`] builds a topology, runs commands in hosts, cuts links,
//!   tears down.
//! - [`netns`]: `ip netns` plumbing: create, exec, empty, delete.
//! - [`cleanup`]: the registry of live labs, the signal handler, the sweep
//!   of leftovers from killed runs ([`cleanup_stale`]).
//! - [`process`]: long-running servers: stop, kill, pause, resume, logs.
//! - [`dhclient`]: real ISC dhclient per client and its parsed [`Lease`].
//! - [`capture`]: tcpdump to a pcap, and its decoded text.
//! - [`kea`]: Kea config patching, `kea-dhcp4 -t`, running Kea.
//! - [`venus`]: the mission's topology and its Kea HA pair.
//! - [`names`]: every name the lab uses and how to read its owner back.
//! - [`addr`]: MAC and IPv4/prefix types.
//! - [`cmd`], [`wait`]: bounded command runs and bounded waits.
//! - [`xdp_pass`]: the XDP_PASS program on bridge ports that lets XDP_TX replies through.
//! - [`loadgen`]: renewal load generator (AF_PACKET, prebuilt frames) counting valid ACKs.
//! - [`xdp_echo`]: a bare XDP_TX echo, the ceiling the fast path is measured against.
//! - [`perfdhcp`]: perfdhcp's final report, parsed.
//! - [`postgres`]: a real PostgreSQL 15 cluster per test, Kea's schema by `kea-admin`.
//! - [`tmpfs`]: a tiny tmpfs to fill under a server (disk full on demand).
//! - [`rng`]: a seeded generator, so random runs replay.
//! - [`bpf`]: a server's BPF maps read with bpftool, found through its own fds.
//!
//! The binary `lab-hold` brings a topology up and holds it until a signal,
//! for poking at a lab by hand.
//!
//! Everything here needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and the
//! Debian tools iproute2, ethtool, tcpdump, isc-dhcp-client and
//! kea-dhcp4-server.

#![warn(missing_docs)]

pub mod addr;
pub mod bpf;
pub mod capture;
pub mod cleanup;
pub mod cmd;
pub mod dhclient;
pub mod kea;
pub mod lab;
pub mod loadgen;
pub mod names;
pub mod netns;
pub mod perfdhcp;
pub mod postgres;
pub mod process;
pub mod rng;
pub mod tmpfs;
pub mod topology;
pub mod venus;
pub mod wait;
pub mod xdp_echo;
pub mod xdp_pass;

pub use addr::{Ipv4Cidr, Mac};
pub use capture::{Capture, Pcap};
pub use cleanup::{cleanup_stale, teardown_all};
pub use cmd::Output;
pub use dhclient::{Dhclient, Lease};
pub use kea::{Kea, KeaConfig};
pub use lab::{HostCommand, Lab};
pub use postgres::Postgres;
pub use process::Process;
pub use tmpfs::Tmpfs;
pub use topology::{BridgePorts, Host, Port, Role, Segment, Topology};
pub use wait::wait_until;
