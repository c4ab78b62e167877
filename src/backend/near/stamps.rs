//! The invalidation clock: what lets a copy that landed late be told from a current one.
//!
//! Every invalidation (a notified change of a key, or of everything) ticks one clock and
//! records the tick in the key's stripe (or in the floor, for everything). A copy is
//! stamped with the clock as it was *before* its read or write was sent to the database;
//! it may be served only while neither its stripe nor the floor has moved past the stamp.
//!
//! Why a late copy cannot be served: if a change commits after the copy's read, its
//! notification is handled after the read was sent, so after the stamp was taken, and its
//! tick is greater than the stamp; the copy is refused from then on, whenever it lands.
//! Several keys share a stripe, so a change of one key also refuses the copies of the
//! others in its stripe: they are read again, never served stale.

use crate::sync::{AtomicU64, Ordering};
use std::hash::{BuildHasher, Hash};

use crate::DefaultHashBuilder;

/// The fewest and the most stripes.
const STRIPES: (usize, usize) = (1 << 10, 1 << 22);
/// Stripes per record memory may hold: few enough keys share a stripe that a change of
/// one seldom refuses the copy of another.
const STRIPES_PER_RECORD: u64 = 4;

/// The clock, the stripes' last ticks, and the floor.
pub(super) struct Stamps {
    clock: AtomicU64,
    stripes: Box<[AtomicU64]>,
    floor: AtomicU64,
    hasher: DefaultHashBuilder,
}

impl Stamps {
    /// The clock for a memory of at most `capacity` records.
    pub(super) fn new(capacity: u64) -> Self {
        let wanted =
            usize::try_from(capacity.saturating_mul(STRIPES_PER_RECORD)).unwrap_or(usize::MAX);
        let stripes = wanted.clamp(STRIPES.0, STRIPES.1).next_power_of_two();
        Stamps {
            clock: AtomicU64::new(0),
            stripes: (0..stripes).map(|_| AtomicU64::new(0)).collect(),
            floor: AtomicU64::new(0),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The stamp for a copy whose read or write is about to be sent.
    pub(super) fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Refuses every copy of `key` stamped before now; returns the tick, a stamp under
    /// which a copy known to be current stays servable.
    pub(super) fn invalidate<K: Hash>(&self, key: &K) -> u64 {
        let tick = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.stripe(key).fetch_max(tick, Ordering::SeqCst);
        tick
    }

    /// Refuses every copy stamped before now.
    pub(super) fn invalidate_all(&self) {
        let tick = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.fetch_max(tick, Ordering::SeqCst);
    }

    /// Whether a copy of `key` stamped `stamp` may be served.
    pub(super) fn is_current<K: Hash>(&self, key: &K, stamp: u64) -> bool {
        if cfg!(verkv_mutant = "no_stamp_check") {
            return true;
        }
        stamp >= self.floor.load(Ordering::SeqCst)
            && stamp >= self.stripe(key).load(Ordering::SeqCst)
    }

    fn stripe<K: Hash>(&self, key: &K) -> &AtomicU64 {
        &self.stripes[self.hasher.hash_one(key) as usize % self.stripes.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stamped_before_an_invalidation_is_refused() {
        let stamps = Stamps::new(10);
        let before = stamps.now();
        assert!(stamps.is_current(&"a", before));
        let tick = stamps.invalidate(&"a");
        assert!(!stamps.is_current(&"a", before));
        assert!(stamps.is_current(&"a", tick));
        assert!(stamps.is_current(&"a", stamps.now()));
        stamps.invalidate_all();
        assert!(!stamps.is_current(&"a", tick));
        assert!(!stamps.is_current(&"b", before));
    }
}
