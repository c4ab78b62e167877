//! The counters of one shard: what its writes did (counted under its write lock, so by
//! one thread at a time, on lines no reader touches), how long writers queued for its
//! lock, the loads and stops of operations on its keys, and its hottest conflicting
//! keys.

use std::time::Duration;

use super::hot_keys::{CloneKey, HotKey, SpaceSaving};
use super::snapshot::LOCK_WAIT_BUCKETS;
use crate::deadline::{Interrupted, Phase};
use crate::sync::{AtomicU64, Mutex, Ordering};

/// Something an operation did that the statistics count, one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Inserted,
    Updated,
    Put,
    Removed,
    Stale,
    NotFound,
    Exists,
    /// A closure or patch declined to write (an error, or a patch that changed nothing).
    Declined,
    TooHeavy,
    TimedOutQueued,
    TimedOutRetrying,
    TimedOutWatching,
    TimedOutLoading,
    Cancelled,
    /// A blind removal (`invalidate`) that removed a record.
    Invalidated,
    Loaded,
    LoadFailed,
    /// A load that panicked, or whose future was dropped before it finished.
    LoadAbandoned,
    /// A transaction that committed (counted once, on its first shard).
    Transaction,
    /// A transaction refused because a condition failed.
    TransactionConflict,
}

/// How many kinds of [`Event`] there are.
pub(crate) const EVENTS: usize = Event::TransactionConflict as usize + 1;

impl Event {
    /// What an operation that stopped before taking effect counts as; `None` for a
    /// timeout while running on a database server, which the in-memory store never has.
    pub(crate) fn stopped(interrupted: Interrupted) -> Option<Event> {
        match interrupted {
            Interrupted::Cancelled => Some(Event::Cancelled),
            Interrupted::TimedOut(timed_out) => match timed_out.phase() {
                Phase::Queued => Some(Event::TimedOutQueued),
                Phase::Retrying { .. } => Some(Event::TimedOutRetrying),
                Phase::Watching => Some(Event::TimedOutWatching),
                Phase::Loading => Some(Event::TimedOutLoading),
                Phase::Running => None,
            },
        }
    }
}

/// The bucket of a wait of `nanos` nanoseconds.
pub(crate) fn bucket_of(nanos: u64) -> usize {
    (nanos.max(1).ilog2() as usize).min(LOCK_WAIT_BUCKETS - 1)
}

/// Nanoseconds in a `u64`, saturating (584 years).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A count, a total and a maximum of durations, in nanoseconds.
#[derive(Default)]
pub(crate) struct Durations {
    pub(crate) count: AtomicU64,
    pub(crate) total: AtomicU64,
    pub(crate) max: AtomicU64,
}

impl Durations {
    fn add(&self, nanos: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(nanos, Ordering::Relaxed);
        self.max.fetch_max(nanos, Ordering::Relaxed);
    }
}

/// One shard's counters (see the [module docs](self)).
pub(crate) struct ShardCounters<K> {
    events: [AtomicU64; EVENTS],
    /// Loads that ran, succeeded or not, and how long they took.
    pub(crate) load_time: Durations,
    /// Writers that did not get the lock at once, and how long they queued.
    pub(crate) lock_waits: Durations,
    pub(crate) lock_wait_buckets: [AtomicU64; LOCK_WAIT_BUCKETS],
    conflicts: Option<Mutex<SpaceSaving<K>>>,
}

impl<K> ShardCounters<K> {
    /// Zeroed counters, keeping the `hot_keys` most conflicting keys if asked to.
    pub(crate) fn new(hot_keys: Option<(usize, CloneKey<K>)>) -> Self {
        ShardCounters {
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            load_time: Durations::default(),
            lock_waits: Durations::default(),
            lock_wait_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            conflicts: hot_keys
                .map(|(capacity, clone_key)| Mutex::new(SpaceSaving::new(capacity, clone_key))),
        }
    }

    pub(crate) fn count(&self, event: Event) {
        self.events[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, event: Event) -> u64 {
        self.events[event as usize].load(Ordering::Relaxed)
    }

    /// Adds copies of the hottest conflicting keys to `into`.
    pub(crate) fn copy_conflicts_into(&self, into: &mut Vec<HotKey<K>>) {
        if let Some(conflicts) = &self.conflicts {
            conflicts.lock().copy_into(into);
        }
    }

    /// Counts a writer that queued `waited` for the lock.
    pub(crate) fn queued(&self, waited: Duration) {
        let nanos = nanos(waited);
        self.lock_waits.add(nanos);
        self.lock_wait_buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        super::metrics::record_lock_wait(waited);
    }

    /// Counts a load that ended as `ended` (loaded, failed or abandoned) after `took`.
    pub(crate) fn loaded(&self, ended: Event, took: Duration) {
        self.count(ended);
        self.load_time.add(nanos(took));
    }
}

impl<K: Eq> ShardCounters<K> {
    /// Counts a stale refusal of a write to `key` in the hot-key summary.
    pub(crate) fn conflict(&self, key: &K) {
        if let Some(conflicts) = &self.conflicts {
            conflicts.lock().record(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_in_their_log2_bucket() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(1023), 9);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(u64::MAX), LOCK_WAIT_BUCKETS - 1);
    }
}
