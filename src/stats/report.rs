//! The statistics a store reports: its counters summed over stripes and shards.

use std::time::Duration;

use super::counters::{Event, ShardCounters};
use super::hot_keys::CloneKey;
use super::hot_keys::HotKey;
use super::snapshot::{Evictions, LockWaits, Stats};
use super::striped::Reads;
use crate::sync::Ordering;

/// What the builder asked the statistics to keep, beyond the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup<K> {
    /// How many of the hottest conflicting keys to keep, and how to copy a key.
    pub(crate) hot_keys: Option<(usize, CloneKey<K>)>,
}

/// The statistics of a whole store that are not a shard's: its reads.
pub(crate) struct StoreCounters {
    pub(crate) reads: Reads,
    /// How many hot keys [`Store::stats_top_conflicts`](crate::Store::stats_top_conflicts)
    /// reports.
    top: usize,
}

/// What the report reads from one shard: its records' count and weight, the records that
/// left it on their own, and its counters if statistics are on.
pub(crate) struct ShardReading<'a, K> {
    pub(crate) entries: u64,
    pub(crate) weight: u64,
    pub(crate) evicted: Evictions,
    pub(crate) counters: Option<&'a ShardCounters<K>>,
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

    /// The statistics of a store with these counters and `shards`, each read as one.
    pub(crate) fn report<'a, K: Eq + 'a>(
        &self,
        shards: impl IntoIterator<Item = ShardReading<'a, K>>,
    ) -> Stats {
        let (hits, misses) = self.reads.totals();
        let mut stats = Stats {
            hits,
            misses,
            ..Stats::default()
        };
        for shard in shards {
            stats.entries += shard.entries;
            stats.weight += shard.weight;
            stats.evictions.add(&shard.evicted);
            if let Some(counters) = shard.counters {
                add_shard(&mut stats, counters);
            }
        }
        stats
    }

    /// The keys refused as stale most often over `shards`' summaries, most refused first,
    /// as many as the builder asked for.
    pub(crate) fn top_conflicts<'a, K: 'a>(
        &self,
        shards: impl IntoIterator<Item = &'a ShardCounters<K>>,
    ) -> Vec<HotKey<K>> {
        let mut hottest = Vec::new();
        for counters in shards {
            counters.copy_conflicts_into(&mut hottest);
        }
        hottest.sort_by(|a, b| b.count.cmp(&a.count).then(a.error.cmp(&b.error)));
        hottest.truncate(self.top);
        hottest
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
