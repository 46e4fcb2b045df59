//! Seeded random streams and the few cheap distributions the generator needs.
//!
//! Every independent piece of output (each block, the catalog, the header,
//! the tail row) draws from its own stream derived from `(seed, stream id)`,
//! so the bytes never depend on how work is spread over threads.

use rand::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

pub(crate) type Rng = Xoshiro256PlusPlus;

/// Stream ids outside the block range (blocks use their index).
pub(crate) const CATALOG_STREAM: u64 = u64::MAX;
pub(crate) const LAYOUT_STREAM: u64 = u64::MAX - 1;
pub(crate) const TAIL_STREAM: u64 = u64::MAX - 2;

/// SplitMix64 finaliser: spreads nearby inputs over the whole u64 range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn stream(seed: u64, id: u64) -> Rng {
    Rng::seed_from_u64(mix(seed ^ mix(id)))
}

/// Uniform in [0, 1).
#[inline]
pub(crate) fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform in `0..n` (multiply-shift; the bias is far below anything visible).
#[inline]
pub(crate) fn below(rng: &mut Rng, n: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

/// True with probability `percent`/100.
#[inline]
pub(crate) fn percent(rng: &mut Rng, percent: u32) -> bool {
    below(rng, 100) < percent
}

/// Maps a rate in [0, 1] to a threshold comparable with `next_u64()`.
pub(crate) fn threshold(rate: f64) -> u64 {
    // `as` saturates, so 1.0 maps to u64::MAX.
    (rate.clamp(0.0, 1.0) * 18_446_744_073_709_551_616.0) as u64
}

/// Zipf-like ranks (density ~ 1/(rank+1)) by inverting the continuous CDF:
/// rank 0 is by far the most frequent, the tail still gets picked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Zipf {
    n: u32,
    ln_n1: f64,
}

impl Zipf {
    pub(crate) fn new(n: u32) -> Zipf {
        Zipf {
            n,
            ln_n1: (f64::from(n) + 1.0).ln(),
        }
    }

    /// A rank in `0..n`.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> u32 {
        let x = (unit(rng) * self.ln_n1).exp() - 1.0;
        (x as u32).min(self.n - 1)
    }
}
