//! The statistics a store reports: its counters summed over stripes and shards.

use std::time::Duration;

use super::counters::{Event, ShardCounters};
use super::hot_keys::CloneKey;
use super::hot_keys::HotKey;
use super::snapshot::{LockWaits, Stats};
use super::striped::Reads;
use crate::store::reentry::forbid_reentry;
use crate::store::Store;
use crate::sync::Ordering;
use crate::version::VersionScheme;

/// What the builder asked the statistics to keep, beyond the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup<K> {
    /// How many of the hottest conflicting keys to keep, and how to copy a key.
    pub(crate) hot_keys: Option<(usize, CloneKey<K>)>,
}

/// The statistics of a whole store that are not a shard's: its reads.
pub(crate) struct StoreCounters {
    pub(crate) reads: Reads,
    /// How many hot keys [`Store::stats_top_conflicts`] reports.
    top: usize,
}

impl StoreCounters {
    /// The store's counters and each shard's, for a store set up with `setup`.
    pub(crate) fn new<K>(setup: Setup<K>) -> (Self, impl Fn() -> ShardCounters<K>) {
        let counters = StoreCounters {
            reads: Reads::new(),
            top: setup.hot_keys.map_or(0, |(top, _)| top),
        };
        (counters, move || ShardCounters::new(setup.hot_keys))
    }
}

/// Adds one shard's counters to `stats`.
fn add_shard<K: Eq>(stats: &mut Stats, counters: &ShardCounters<K>) {
    let count = |event| counters.get(event);
    let nanos =
        |counter: &crate::sync::AtomicU64| Duration::from_nanos(counter.load(Ordering::Relaxed));
    stats.loads.succeeded += count(Event::Loaded);
    stats.loads.failed += count(Event::LoadFailed);
    stats.loads.abandoned += count(Event::LoadAbandoned);
    stats.loads.total_time += nanos(&counters.load_time.total);
    stats.loads.max_time = stats.loads.max_time.max(nanos(&counters.load_time.max));
    stats.inserts += count(Event::Inserted);
    stats.updates += count(Event::Updated);
    stats.puts += count(Event::Put);
    stats.removes += count(Event::Removed);
    stats.invalidations += count(Event::Invalidated);
    stats.transactions += count(Event::Transaction);
    stats.transaction_conflicts += count(Event::TransactionConflict);
    stats.refusals.stale += count(Event::Stale);
    stats.refusals.not_found += count(Event::NotFound);
    stats.refusals.exists += count(Event::Exists);
    stats.refusals.declined += count(Event::Declined);
    stats.refusals.too_heavy += count(Event::TooHeavy);
    stats.timeouts.queued += count(Event::TimedOutQueued);
    stats.timeouts.retrying += count(Event::TimedOutRetrying);
    stats.timeouts.watching += count(Event::TimedOutWatching);
    stats.timeouts.loading += count(Event::TimedOutLoading);
    stats.cancellations += count(Event::Cancelled);
    stats.conflicts_per_shard.push(count(Event::Stale));
    let waits: &mut LockWaits = &mut stats.lock_waits;
    waits.count += counters.lock_waits.count.load(Ordering::Relaxed);
    waits.total += nanos(&counters.lock_waits.total);
    waits.max = waits.max.max(nanos(&counters.lock_waits.max));
    for (sum, bucket) in waits.buckets.iter_mut().zip(&counters.lock_wait_buckets) {
        *sum += bucket.load(Ordering::Relaxed);
    }
}

impl<K: Eq, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// What the store did since it was built, and what it holds now; `None` unless the
    /// builder switched statistics on ([`statistics`](crate::StoreBuilder::statistics)
    /// or [`hot_keys`](crate::StoreBuilder::hot_keys)).
    ///
    /// # Locking behaviour
    ///
    /// Shares each shard's lock in turn, to count its records.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::builder().statistics(true).build();
    /// store.put(1, 1).unwrap();
    /// let stats = store.stats().unwrap();
    /// assert_eq!((stats.puts, stats.entries), (1, 1));
    /// println!("{stats}");
    /// assert!(verkv::Store::<u32, u32>::new().stats().is_none());
    /// ```
    pub fn stats(&self) -> Option<Stats> {
        let store = self.counters.as_deref()?;
        forbid_reentry(self.id());
        let (hits, misses) = store.reads.totals();
        let mut stats = Stats {
            hits,
            misses,
            ..Stats::default()
        };
        for shard in self.shards() {
            {
                let records = shard.lock.read();
                stats.entries += records.len() as u64;
                stats.weight += records.weight();
                stats.evictions.add(records.evicted());
            }
            if let Some(counters) = shard.counters.as_deref() {
                add_shard(&mut stats, counters);
            }
        }
        Some(stats)
    }

    /// The keys whose writes were refused as stale most often, most refused first: at
    /// most the builder's [`hot_keys`](crate::StoreBuilder::hot_keys), each with its
    /// count and error bound (see [`HotKey`]). Empty unless the builder asked for them.
    ///
    /// Each shard keeps that many keys in a Space-Saving summary; a key lives in one
    /// shard, so the bounds of the merged list are those of its shard's summary.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::builder().hot_keys(2).build();
    /// for key in ["a", "b", "b"] {
    ///     store.put(key, 0).unwrap();
    ///     let _ = store.update(&key, &0, 1); // version 0 is never current: stale
    /// }
    /// let hottest = store.stats_top_conflicts();
    /// assert_eq!(hottest.iter().map(|hot| (hot.key, hot.count)).collect::<Vec<_>>(), [("b", 2), ("a", 1)]);
    /// ```
    pub fn stats_top_conflicts(&self) -> Vec<HotKey<K>> {
        let Some(store) = self.counters.as_deref() else {
            return Vec::new();
        };
        forbid_reentry(self.id());
        let mut hottest = Vec::new();
        for shard in self.shards() {
            if let Some(counters) = shard.counters.as_deref() {
                counters.copy_conflicts_into(&mut hottest);
            }
        }
        hottest.sort_by(|a, b| b.count.cmp(&a.count).then(a.error.cmp(&b.error)));
        hottest.truncate(store.top);
        hottest
    }
}
