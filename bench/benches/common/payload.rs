//! The values stored in benchmarks: an 8-byte and a 256-byte one.

/// A value type the benchmarks store.
pub(crate) trait Payload: Clone + Send + Sync + 'static {
    /// How the value size is named in benchmark ids.
    const NAME: &'static str;

    /// A value made from `seed`.
    fn make(seed: u64) -> Self;

    /// The value a read-modify-write computes from this one.
    fn bumped(&self) -> Self;
}

impl Payload for u64 {
    const NAME: &'static str = "8B";

    fn make(seed: u64) -> Self {
        seed
    }

    fn bumped(&self) -> Self {
        self.wrapping_add(1)
    }
}

/// A 256-byte value, copied on every read like any plain-data record of that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bytes256(pub(crate) [u64; 32]);

impl Payload for Bytes256 {
    const NAME: &'static str = "256B";

    fn make(seed: u64) -> Self {
        Bytes256([seed; 32])
    }

    fn bumped(&self) -> Self {
        let mut next = *self;
        next.0[0] = next.0[0].wrapping_add(1);
        next
    }
}
