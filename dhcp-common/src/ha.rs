//! Kea's load-balancing split (HA query filter), shared by the kernel and
//! the daemon so both hash with one table and one step function.
//!
//! Kea hashes the client's key with RFC 3074's Pearson-style hash, walked
//! from the last byte to the first, seeded with the key length truncated
//! to a byte; with two active servers an even hash is the primary's scope
//! and an odd one the secondary's. The key is option 61's payload when
//! present and non-empty, else `chaddr` (`hlen` bytes).

use crate::fastpath::{SERVE_LOAD_BALANCING, SERVE_PRIMARY, SERVE_SECONDARY};

/// RFC 3074 §6's mixing table (a permutation of 0..=255), as Kea's
/// `loadb_mx_tbl`.
pub static MIX: [u8; 256] = [
    251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0, 232, //
    31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57, 223, //
    59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179, 197, 65, //
    180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23, 97, 16, //
    40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108, 244, 67, //
    207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193, 200, 121, 5, //
    20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75, 27, 41, 245, //
    230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115, 241, 73, 88, 105, //
    39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221, 148, 154, 122, 12, 84, //
    82, 163, 44, 139, 228, 236, 205, 242, 217, 11, 187, 146, 159, 64, 86, 239, //
    195, 42, 106, 198, 118, 112, 184, 172, 87, 2, 173, 117, 176, 229, 247, 253, //
    137, 185, 99, 164, 102, 147, 45, 66, 231, 52, 141, 211, 194, 206, 246, 238, //
    56, 110, 78, 248, 63, 240, 189, 93, 92, 51, 53, 183, 19, 171, 72, 50, //
    33, 104, 101, 69, 8, 252, 83, 120, 76, 135, 85, 54, 202, 125, 188, 213, //
    96, 235, 136, 208, 162, 129, 190, 132, 156, 38, 47, 1, 7, 254, 24, 4, //
    216, 131, 89, 21, 28, 133, 37, 153, 149, 80, 170, 68, 6, 169, 234, 151, //
];

/// One step of the hash: mixes byte `b` into `h`. The kernel walks packet
/// bytes with this same function (it cannot take a slice of them).
#[inline(always)]
pub fn mix(h: u8, b: u8) -> u8 {
    MIX[(h ^ b) as usize]
}

/// RFC 3074's hash of `key` as Kea computes it: seeded with the length as
/// a byte, every byte mixed in from the last to the first.
pub fn rfc3074_hash(key: &[u8]) -> u8 {
    key.iter().rev().fold(key.len() as u8, |h, &b| mix(h, b))
}

/// Whether `SERVE_*` bits `serving` cover a query whose key hashes to
/// `hash` (only load-balanced scopes look at the hash).
#[inline(always)]
pub fn serves(serving: u32, hash: u8) -> bool {
    let scope = if serving & SERVE_LOAD_BALANCING != 0 && hash & 1 == 1 { SERVE_SECONDARY } else { SERVE_PRIMARY };
    serving & scope != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_a_permutation() {
        let mut seen = [false; 256];
        for v in MIX {
            assert!(!seen[v as usize], "{v} twice");
            seen[v as usize] = true;
        }
    }

    #[test]
    fn note_vectors() {
        // The shared HA notes' §8 table.
        let cases: [(&[u8], u8); 7] = [
            (&[2, 0, 0, 0, 0, 1], 133),
            (&[2, 0, 0, 0, 0, 3], 182),
            (&[0; 6], 254),
            (&[1, 2, 3, 4, 5, 6], 179),
            (&[0xff; 6], 79),
            (&[1, 2, 0, 0, 0, 0, 1], 14),
            (&[1, 8, 0, 0x27, 0, 0, 1], 45),
        ];
        for (key, hash) in cases {
            assert_eq!(rfc3074_hash(key), hash, "{key:?}");
        }
        // One byte b: T[1 ^ b].
        assert_eq!(rfc3074_hash(&[1]), 251);
        assert_eq!(rfc3074_hash(&[]), 0);
    }

    #[test]
    fn scope_bits() {
        let lb = SERVE_LOAD_BALANCING;
        assert!(serves(SERVE_PRIMARY, 133), "outside load balancing all is the primary's");
        assert!(!serves(SERVE_SECONDARY, 182));
        assert!(serves(lb | SERVE_PRIMARY, 182) && !serves(lb | SERVE_PRIMARY, 133));
        assert!(serves(lb | SERVE_SECONDARY, 133) && !serves(lb | SERVE_SECONDARY, 182));
        assert!(!serves(0, 0) && !serves(lb, 1));
    }
}
