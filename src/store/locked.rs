//! A shard as the store holds it: its records behind the shard lock, and what sits beside
//! them outside the lock, its memory of stale refusals among them (which `stale` reads).

use super::parts::flights::Loads;
use super::records::Records;
use crate::stats::counters::ShardCounters;
use crate::sync::{AtomicUsize, ChangeEvent, Ordering, ShardLock};
use crate::version::VersionScheme;

/// One shard behind its own lock, with the event that wakes those waiting for a change
/// in it, and its loads in progress ([`get_or_load`](crate::Store::get_or_load)).
pub(crate) struct LockedShard<K, V, S: VersionScheme> {
    pub(crate) lock: ShardLock<Records<K, V, S>>,
    pub(crate) changed: ChangeEvent,
    pub(crate) loads: Loads<K, V, S::Version>,
    /// What its operations did, if statistics are on.
    pub(crate) counters: Option<Box<ShardCounters<K>>>,
    /// Whether its conditional writes look for a stale version on the read path first.
    pub(crate) lately_stale: LatelyStale,
}

/// How many successful conditional writes after a stale refusal the shard keeps looking
/// on the read path first.
const REMEMBERED_WRITES: usize = 32;

/// A shard's memory of stale refusals: how many more conditional writes it keeps looking
/// on the read path first. Written only while it is not zero, or by a stale refusal, and
/// by a refusal on the read path only when it runs low, so that an uncontended shard's
/// memory costs no write at all.
#[derive(Debug, Default)]
pub(crate) struct LatelyStale {
    writes_left: AtomicUsize,
}

impl LatelyStale {
    /// Whether a conditional write should look on the read path first.
    #[inline(always)]
    pub(crate) fn look_first(&self) -> bool {
        cfg!(verkv_mutant = "trusting_read") || self.writes_left.load(Ordering::Relaxed) != 0
    }

    /// Notes the answer of a conditional write made on the write path: `stale` if it was
    /// refused as stale. Called after the
    /// write lock is released: called under it, it made every conditional write's locked
    /// section too big to inline (an uncontended `update` measured 182 → 224
    /// instructions); as the memory is only a hint, a race with another writer's note
    /// costs nothing but a look more or less.
    #[inline(always)]
    pub(crate) fn after_write(&self, stale: bool) {
        let left = self.writes_left.load(Ordering::Relaxed);
        if stale {
            if left != REMEMBERED_WRITES {
                self.writes_left.store(REMEMBERED_WRITES, Ordering::Relaxed);
            }
        } else if left != 0 {
            self.writes_left.store(left - 1, Ordering::Relaxed);
        }
    }

    /// Notes a stale refusal on the read path: keeps the memory from running out while
    /// refusals keep coming (a store only once half of it is spent).
    pub(crate) fn after_read_refusal(&self) {
        if self.writes_left.load(Ordering::Relaxed) < REMEMBERED_WRITES / 2 {
            self.writes_left.store(REMEMBERED_WRITES, Ordering::Relaxed);
        }
    }
}
