//! Hits and misses, counted where reads run: in the calling thread's own stripe, so a
//! read writes no line another core's read writes.
//!
//! A thread that owns a stripe ([`thread_stripe`]) is its only writer and bumps it with
//! a plain load and store, no read-modify-write instruction; the few threads beyond the
//! stripes count in a shared slot with atomic additions. A snapshot sums the stripes.

use crate::sync::{thread_stripe, AtomicU64, CachePadded, Ordering, STRIPES};

const HIT: usize = 0;
const MISS: usize = 1;

/// A hit and a miss counter, on a cache line of their own.
type Slot = CachePadded<[AtomicU64; 2]>;

fn slot() -> Slot {
    CachePadded::new([AtomicU64::new(0), AtomicU64::new(0)])
}

/// A store's read counters (see the [module docs](self)), kept in the box that holds
/// the store's statistics: a read reaches its stripe through one pointer.
pub(crate) struct Reads {
    owned: [Slot; STRIPES],
    shared: Slot,
}

impl Reads {
    pub(crate) fn new() -> Self {
        Reads {
            owned: std::array::from_fn(|_| slot()),
            shared: slot(),
        }
    }

    /// Counts a read that found its key (`hit`) or not.
    #[inline]
    pub(crate) fn count(&self, hit: bool) {
        let which = if hit { HIT } else { MISS };
        match thread_stripe() {
            Some(stripe) => {
                let counter = &self.owned[stripe][which];
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            None => {
                self.shared[which].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hits and misses so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let sum = |which: usize| {
            self.owned
                .iter()
                .chain([&self.shared])
                .map(|slot| slot[which].load(Ordering::Relaxed))
                .sum()
        };
        (sum(HIT), sum(MISS))
    }
}
