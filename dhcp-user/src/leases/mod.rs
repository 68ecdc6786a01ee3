//! The lease store: Kea-compatible memfile CSV, crash-safe with group commit.
