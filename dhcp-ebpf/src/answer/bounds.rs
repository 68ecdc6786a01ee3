//! Code shaped for the BPF verifier rather than for reading: each helper
//! works around a bound the verifier cannot see after LLVM's optimisations,
//! or a memset call it cannot take.

use crate::maps::SCRATCH;

const MASK: usize = SCRATCH - 1;

/// `buf[i & MASK]` as a BPF subprogram: inlined, LLVM turns the masked
/// index into a pointer increment whose bound the verifier cannot see.
#[inline(never)]
pub(super) fn at(buf: &[u8; SCRATCH], i: usize) -> u8 {
    buf[i & MASK]
}

/// A checked size in 1..=cap, passed through a BPF subprogram as
/// ((n - 1) & (cap - 1)) + 1: the identity for those values and a range the
/// verifier sees. Inlined, LLVM drops the mask (it knows the range) and
/// later reloads the size from the map, unbounded.
#[inline(never)]
pub(super) fn sized(n: usize, cap: usize) -> u32 {
    ((n.wrapping_sub(1) & (cap - 1)) + 1) as u32
}

/// Zeroes `words` 4-byte words from `p` with volatile stores: a zero-array
/// assignment compiles to a call of a byte-at-a-time memset subprogram.
///
/// # Safety
/// `p` is 4-aligned and valid for `4 * words` bytes (callers pass fields
/// at 4-aligned offsets of 4-aligned structs, asserted below).
#[inline(always)]
pub(super) unsafe fn zero_words(p: *mut u8, words: usize) {
    let p = p.cast::<u32>();
    for i in 0..words {
        unsafe { p.add(i).write_volatile(0) };
    }
}

const _: () = {
    use core::mem::{align_of, offset_of};
    use dhcp_common::fastpath::{RenewEvent, ReservationKey};
    assert!(align_of::<RenewEvent>() % 4 == 0 && offset_of!(RenewEvent, mac) % 4 == 0);
    assert!(offset_of!(RenewEvent, client_id) == offset_of!(RenewEvent, mac) + 8);
    assert!(align_of::<ReservationKey>() % 4 == 0 && offset_of!(ReservationKey, id) % 4 == 0);
};
