//! The hottest conflicting keys: a Space-Saving summary (Metwally, Agrawal and El
//! Abbadi, ICDT 2005) of the keys whose writes were refused as stale.
//!
//! A summary of capacity `k` keeps at most `k` keys with a count each. A key already
//! there has its count raised; a new key takes a free place, or else the place of the
//! key with the smallest count, inheriting that count (plus one) as its **error**: the
//! most by which its count may overstate its true one. So for every key kept,
//! `count - error <= true count <= count`, and every key counted more than `n / k` times
//! in a stream of `n` is kept.
//!
//! Each shard keeps its own summary. A key belongs to exactly one shard, so the
//! summaries count disjoint streams and their union keeps each key's bounds as they
//! are: merging is taking the union and the largest counts.

use std::fmt;

/// A key among the hottest conflicting ones: how often writes to it were refused as
/// stale, as far as a bounded summary can tell.
///
/// `count - error <= true count <= count`: the true number of stale refusals lies in
/// [`lower_bound`](HotKey::lower_bound)`..=`[`count`](HotKey::count).
///
/// # Examples
///
/// ```
/// use verkv::Store;
///
/// let store: Store<&str, u32> = Store::builder().hot_keys(4).build();
/// let v1 = store.insert("likes", 0).unwrap();
/// store.update(&"likes", &v1, 1).unwrap();
/// assert!(store.update(&"likes", &v1, 1).is_err()); // stale
/// let hottest = store.stats_top_conflicts();
/// assert_eq!((hottest[0].key, hottest[0].count, hottest[0].error), ("likes", 1, 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKey<K> {
    /// The key.
    pub key: K,
    /// Stale refusals counted for it: at least the true number.
    pub count: u64,
    /// How much `count` may overstate the true number (what the key inherited when it
    /// took another key's place in the summary).
    pub error: u64,
}

impl<K> HotKey<K> {
    /// The fewest stale refusals the key can have had: `count - error`.
    pub fn lower_bound(&self) -> u64 {
        self.count - self.error
    }
}

impl<K: fmt::Debug> fmt::Display for HotKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {} stale", self.key, self.count)?;
        if self.error > 0 {
            write!(f, " (at least {})", self.lower_bound())?;
        }
        Ok(())
    }
}

/// How a summary copies the keys it keeps: `Clone::clone`, captured where the builder
/// knew `K: Clone`, so that the store's own methods need no such bound.
pub(crate) type CloneKey<K> = fn(&K) -> K;

/// A Space-Saving summary of at most `capacity` keys (see the [module docs](self)).
///
/// Kept small (the builder caps `capacity`), it looks keys up by scanning: a stale
/// refusal costs a pass over at most `capacity` keys, under its shard's lock.
pub(crate) struct SpaceSaving<K> {
    capacity: usize,
    clone_key: CloneKey<K>,
    kept: Vec<HotKey<K>>,
}

impl<K> SpaceSaving<K> {
    pub(crate) fn new(capacity: usize, clone_key: CloneKey<K>) -> Self {
        SpaceSaving {
            capacity,
            clone_key,
            kept: Vec::with_capacity(capacity),
        }
    }

    /// Adds copies of the keys kept to `into`.
    pub(crate) fn copy_into(&self, into: &mut Vec<HotKey<K>>) {
        into.extend(self.kept.iter().map(|kept| HotKey {
            key: (self.clone_key)(&kept.key),
            count: kept.count,
            error: kept.error,
        }));
    }
}

impl<K: Eq> SpaceSaving<K> {
    /// Counts one occurrence of `key`.
    pub(crate) fn record(&mut self, key: &K) {
        if let Some(found) = self.kept.iter_mut().find(|kept| kept.key == *key) {
            found.count += 1;
            return;
        }
        let key = (self.clone_key)(key);
        if self.kept.len() < self.capacity {
            self.kept.push(HotKey {
                key,
                count: 1,
                error: 0,
            });
            return;
        }
        if let Some(least) = self.kept.iter_mut().min_by_key(|kept| kept.count) {
            *least = HotKey {
                key,
                count: least.count + 1,
                error: least.count,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(summary: &SpaceSaving<u32>) -> Vec<(u32, u64, u64)> {
        let mut kept = Vec::new();
        summary.copy_into(&mut kept);
        kept.sort_by_key(|hot| hot.key);
        kept.iter()
            .map(|hot| (hot.key, hot.count, hot.error))
            .collect()
    }

    #[test]
    fn a_new_key_takes_the_least_counted_place_and_inherits_its_count_as_error() {
        let mut summary = SpaceSaving::new(2, u32::clone);
        for key in [1, 1, 1, 2, 3] {
            summary.record(&key);
        }
        // 3 replaced 2 (count 1): it may have been seen once or twice.
        assert_eq!(counted(&summary), [(1, 3, 0), (3, 2, 1)]);
    }

    #[test]
    fn a_zero_capacity_summary_keeps_nothing() {
        let mut summary = SpaceSaving::new(0, u32::clone);
        summary.record(&1);
        assert!(counted(&summary).is_empty());
    }
}
