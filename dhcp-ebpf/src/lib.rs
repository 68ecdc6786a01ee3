//! Host-buildable part of the kernel crate. `dhcp-user`'s build script
//! depends on this library only so that cargo rebuilds the daemon (and the
//! object it embeds) whenever the kernel program changes.
#![no_std]
