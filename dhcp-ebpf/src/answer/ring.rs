//! The event ring to the daemon: whether it has room for an answer's event
//! and when the daemon is woken for it, tuned apart from the answer itself.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ringbuf_query,
};
use dhcp_common::fastpath::EVENTS_WAKE_EVERY as WAKE_EVERY;

use crate::maps::XDHCP_EVENTS;

/// Free bytes the ring must have before the kernel answers something the
/// daemon has to learn: 256 events, more than CPUs can race for between
/// this check and the write.
pub(super) const RING_HEADROOM: u64 = 256 * EVENT_RECORD;

/// Bytes of the event ring not yet consumed by the daemon's drain.
#[inline(always)]
pub(super) fn ring_free() -> u64 {
    let ring = core::ptr::from_ref(&XDHCP_EVENTS).cast_mut().cast();
    let pending = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA as u64) };
    (dhcp_common::fastpath::EVENTS_BYTES as u64).saturating_sub(pending)
}

/// Bytes one event takes in the ring (its 8-byte record header included).
const EVENT_RECORD: u64 = (core::mem::size_of::<dhcp_common::fastpath::RenewEvent>() as u64 + 8 + 7) & !7;

/// The ring's wakeup for the event about to be written. With flags 0 the
/// kernel wakes the daemon whenever it has caught up, which at high rates
/// is once per ACK: an irq_work (a self-IPI, a VM exit here) plus a
/// cross-CPU wakeup per packet. Instead the daemon is woken once per
/// [`WAKE_EVERY`] pending events and otherwise polls on a short timer
/// (`daemon::drain_renewals`), which bounds how long a renewal waits.
/// Concurrent CPUs may both skip a multiple; the timer covers that.
#[inline(always)]
pub(super) fn wakeup_flag() -> u64 {
    let ring = core::ptr::from_ref(&XDHCP_EVENTS).cast_mut().cast();
    let pending = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA as u64) } / EVENT_RECORD;
    if (pending + 1) % WAKE_EVERY == 0 { BPF_RB_FORCE_WAKEUP as u64 } else { BPF_RB_NO_WAKEUP as u64 }
}
