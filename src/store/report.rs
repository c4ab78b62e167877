//! [`Store::stats`] and [`Store::stats_top_conflicts`]: each shard read for the
//! statistics layer's report.

use super::reentry::forbid_reentry;
use super::Store;
use crate::stats::report::ShardReading;
use crate::stats::{HotKey, Stats};
use crate::version::VersionScheme;

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
        Some(store.report(self.shards().iter().map(|shard| {
            let records = shard.lock.read();
            ShardReading {
                entries: records.len() as u64,
                weight: records.weight(),
                evicted: *records.evicted(),
                counters: shard.counters.as_deref(),
            }
        })))
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
        store.top_conflicts(
            self.shards()
                .iter()
                .filter_map(|shard| shard.counters.as_deref()),
        )
    }
}
