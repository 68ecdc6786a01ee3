//! A seeded random generator with no dependency (xorshift64*), so a lab
//! run's random choices — fault order, delays, MACs — replay from its
//! printed seed on any machine.

use std::time::{SystemTime, UNIX_EPOCH};

/// xorshift64*.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// From `seed` (0 is replaced: xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// From the clock and the process id, for a run that prints its seed.
    pub fn seeded() -> Self {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Rng::new(t ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_ranges_hold() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..100).map(|_| a.range(10, 30)).collect();
        assert_eq!(xs, (0..100).map(|_| b.range(10, 30)).collect::<Vec<_>>());
        assert!(xs.iter().all(|x| (10..=30).contains(x)));
        assert!(xs.iter().any(|x| *x != xs[0]), "{xs:?}");
        assert_ne!(Rng::new(0).next(), 0);
    }
}
