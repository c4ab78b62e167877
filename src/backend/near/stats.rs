//! What a near-cache counts, and the snapshot of it it reports.

use crate::sync::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of a [`NearCache`](super::NearCache)'s counters, from
/// [`NearCache::stats`](super::NearCache::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NearStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that loaded the record from the database into memory (one per single
    /// flight: the callers that waited for another's load are not counted).
    pub misses: u64,
    /// Reads sent to the database without using memory: fresh reads, and every read
    /// while not coherent.
    pub bypassed: u64,
    /// Change notifications received and handled (the key's copy dropped or re-stamped).
    pub invalidations: u64,
    /// Times the notification connection was lost.
    pub disconnects: u64,
    /// Times it was opened again after a loss.
    pub reconnects: u64,
    /// Whether the near-cache is listening and serves from memory now.
    pub coherent: bool,
}

/// The live counters.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) bypassed: AtomicU64,
    pub(super) invalidations: AtomicU64,
    pub(super) disconnects: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) coherent: AtomicBool,
}

/// Adds one to `counter`.
pub(super) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn snapshot(&self) -> NearStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NearStats {
            hits: load(&self.hits),
            misses: load(&self.misses),
            bypassed: load(&self.bypassed),
            invalidations: load(&self.invalidations),
            disconnects: load(&self.disconnects),
            reconnects: load(&self.reconnects),
            coherent: self.coherent.load(Ordering::SeqCst),
        }
    }
}
