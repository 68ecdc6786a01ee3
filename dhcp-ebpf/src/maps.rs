//! Every map of the program. Names, sizes and layouts come from
//! `dhcp-common` so the daemon opens exactly these.

use aya_ebpf::{btf_maps::PerCpuArray, macros::btf_map};
use dhcp_common::counters::{self, Outcome};

/// Per-CPU count of each [`Outcome`]; read (summed) by the daemon for the
/// status page and metrics.
#[btf_map]
static XDHCP_COUNTERS: PerCpuArray<u64, { counters::COUNT }> = PerCpuArray::new();

/// Adds one to this CPU's slot for `outcome`.
#[inline(always)]
pub fn count(outcome: Outcome) {
    if let Some(slot) = XDHCP_COUNTERS.get_ptr_mut(outcome as u32) {
        // Per-CPU slot: no other writer while this program runs on this CPU.
        unsafe { *slot += 1 };
    }
}
