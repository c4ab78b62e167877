//! Key distributions: which key each benchmark operation touches.
//!
//! Keys are drawn ahead of time into a stream that every contender of a scenario replays
//! identically, so that all of them touch the same keys in the same order and the drawing
//! itself (a `powf` per Zipfian sample) is never timed.

use std::fmt;

/// How often each key is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dist {
    /// Every key equally often.
    Uniform,
    /// A few hot keys take most operations: Zipf's law with θ = 0.99 (the YCSB default).
    Zipf,
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        })
    }
}

/// The skew of the Zipfian distribution.
const ZIPF_THETA: f64 = 0.99;

/// A small, fast pseudo-random generator (SplitMix64): reproducible and cheap enough to
/// pick operations inside a timed loop.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`, nearly uniform for bounds far below 2^64.
    #[inline]
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A float uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws ranks `0..n` with Zipfian probabilities (rank 0 the hottest), by the inversion
/// method of Gray et al., "Quickly generating billion-record synthetic databases".
struct Zipf {
    n: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
    half_pow_theta: f64,
}

/// The generalised harmonic number: the sum of `1 / i^theta` for `i` in `1..=n`.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| (i as f64).powf(-theta)).sum()
}

impl Zipf {
    fn new(n: u64) -> Self {
        let theta = ZIPF_THETA;
        let zeta_n = zeta(n, theta);
        Zipf {
            n: n as f64,
            zeta_n,
            alpha: 1.0 / (1.0 - theta),
            eta: (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta(2, theta) / zeta_n),
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1;
        }
        let rank = (self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.n as u64 - 1)
    }
}

/// The shortest stream drawn, so that small key counts still see varied orders.
const MIN_STREAM: usize = 1 << 17;

/// Draws a stream of key indices in `0..range` with `dist`, long enough that a pass over
/// it touches the whole range (its length is at least `range`), seeded by `seed`.
///
/// Zipfian ranks are used as indices directly: every contender hashes its keys, so the
/// hottest keys land on unrelated buckets and shards anyway.
pub(crate) fn stream(dist: Dist, range: usize, seed: u64) -> Vec<u32> {
    assert!(
        range > 0 && range <= u32::MAX as usize,
        "key range {range} out of bounds"
    );
    let len = range.max(MIN_STREAM);
    let mut rng = Rng::new(seed);
    let range = range as u64;
    match dist {
        Dist::Uniform => (0..len).map(|_| rng.below(range) as u32).collect(),
        Dist::Zipf => {
            let zipf = Zipf::new(range);
            (0..len).map(|_| zipf.sample(&mut rng) as u32).collect()
        }
    }
}
