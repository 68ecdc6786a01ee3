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

mod answer;
mod maps;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dhcp_common::counters::Outcome;

/// Entry point: renewals and reserved clients' DISCOVERs/REQUESTs the maps
/// let us answer exactly as the daemon would leave as XDP_TX; everything else goes up the stack to the daemon,
/// with the reason counted.
#[xdp]
pub fn xdhcp(ctx: XdpContext) -> u32 {
    let req = match parse::dhcp_request(&ctx) {
        Ok(Some(req)) => req,
        Ok(None) => {
            maps::count(Outcome::NotDhcp);
            return xdp_action::XDP_PASS;
        }
        Err(parse::Malformed) => {
            maps::count(Outcome::Malformed);
            return xdp_action::XDP_PASS;
        }
    };
    match answer::try_answer(&ctx, &req) {
        Ok(answer::Verdict::Tx(answered)) => {
            maps::count(answered);
            xdp_action::XDP_TX
        }
        Ok(answer::Verdict::Drop) => xdp_action::XDP_DROP,
        Err(reason) => {
            maps::count(reason);
            if reason != Outcome::PassedToDaemon {
                maps::count(Outcome::PassedToDaemon);
            }
            xdp_action::XDP_PASS
        }
    }
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
