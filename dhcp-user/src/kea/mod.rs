//! # Kea's formats, without I/O
//!
//! Everything xdhcpd reads or writes in Kea's own dialect, as pure
//! functions over domain types: the control API, the HA runtime and the
//! tests use these, and none of them imports another to reach a codec.
//!
//! # Layout
//!
//! - [`command`]: a control-channel [`Request`](command::Request), its
//!   [`Answer`](command::Answer) and result codes, typed `arguments`.
//! - [`lease`]: Kea's lease JSON both ways (`Lease4::toElement` and
//!   `Lease4Parser`).
//! - [`ha`]: HA messages: every outbound command ([`ha::Outbound`]),
//!   answers, heartbeats, update and sync lease bodies.
//! - [`status`]: `status-get`'s `high-availability` list from the typed
//!   [`crate::ha::RelStatus`].
//! - [`time`]: Kea's statistic timestamps and RFC 1123 dates.
//!
//! Kea's CSV lease files are in [`crate::leases`], its config grammar in
//! [`crate::config`]: each next to the only code that reads it.

pub mod command;
pub mod ha;
pub mod lease;
pub mod status;
pub mod time;
