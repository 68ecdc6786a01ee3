//! The wall clock in the one unit leases, the kernel map and Kea's lease
//! files share: whole seconds since the Unix epoch.
//!
//! A module of its own (not part of the packet loop) so that every layer,
//! pure or not, can read the time without importing the layer that serves
//! packets.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in seconds (0 if the clock is before 1970, which no
/// lease can be compared with anyway).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
