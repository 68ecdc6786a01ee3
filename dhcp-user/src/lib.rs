//! # Layout
//!
//! The xdhcp daemon as a library, so every part is testable without root;
//! `main.rs` only parses arguments and starts [`daemon`].
//!
//! - [`xdp`]: loads the embedded eBPF object, attaches it, reads its maps.
pub mod xdp;
