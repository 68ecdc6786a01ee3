//! Tests against the real Kea 2.2 binaries.
