//! Every map of the program. Names, sizes and layouts come from
//! `dhcp-common` so the daemon opens exactly these.

use aya_ebpf::{btf_maps::PerCpuArray, macros::btf_map};
use dhcp_common::counters::{Counters, Outcome};

/// This CPU's [`Counters`] (one slot); read and summed by the daemon for
/// the status page and metrics.
#[btf_map]
static XDHCP_COUNTERS: PerCpuArray<Counters, 1> = PerCpuArray::new();

/// Adds one to this CPU's counter of `outcome`.
#[inline(always)]
pub fn count(outcome: Outcome) {
    if let Some(c) = XDHCP_COUNTERS.get_ptr_mut(0) {
        // Per-CPU slot: no other writer while this program runs on this CPU.
        unsafe { (*c).bump(outcome) };
    }
}
