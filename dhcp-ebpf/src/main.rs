//! # Layout
//!
//! The XDP program attached by `xdhcpd` to each serving interface.
//!
//! - `main.rs`: the `#[xdp]` entry; maps every parse error to a deliberate
//!   action (always `XDP_PASS`: when in doubt the daemon decides).
//! - [`maps`]: every BPF map, with a doc comment each.
//! - [`parse`]: bounds-checked header walking, one function per layer.
#![no_std]
#![no_main]

mod maps;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dhcp_common::counters::Outcome;

/// Entry point. Frames that are not DHCP requests, and every DHCP request
/// for now, go up the stack to the daemon; the counters show how many.
#[xdp]
pub fn xdhcp(ctx: XdpContext) -> u32 {
    let outcome = match parse::dhcp_request(&ctx) {
        Ok(Some(_)) => Outcome::PassedToDaemon,
        Ok(None) => Outcome::NotDhcp,
        Err(parse::Malformed) => Outcome::Malformed,
    };
    maps::count(outcome);
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects programs that can reach a real panic; this only
    // satisfies the compiler.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
