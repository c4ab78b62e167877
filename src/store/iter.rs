//! Iteration over owned snapshots, one shard at a time.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use super::facade::Store;
use super::record::Versioned;
use super::reentry::forbid_reentry;
use crate::version::VersionScheme;

/// Iterator over owned `(key, Versioned)` snapshots of a [`Store`]'s records, made by
/// [`Store::iter`] (which explains its consistency).
pub struct Iter<'a, K, V, S: VersionScheme, H> {
    store: &'a Store<K, V, S, H>,
    next_shard: usize,
    copied: std::vec::IntoIter<(K, Versioned<V, S::Version>)>,
}

impl<'a, K: Clone, V: Clone, S: VersionScheme, H> Iter<'a, K, V, S, H> {
    pub(crate) fn new(store: &'a Store<K, V, S, H>) -> Self {
        Iter {
            store,
            next_shard: 0,
            copied: Vec::new().into_iter(),
        }
    }
}

impl<K: Clone + Hash, V: Clone, S: VersionScheme, H: BuildHasher> Iterator
    for Iter<'_, K, V, S, H>
{
    type Item = (K, Versioned<V, S::Version>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.copied.next() {
                return Some(item);
            }
            let shard = self.store.shards().get(self.next_shard)?;
            self.next_shard += 1;
            // Copy the whole shard and let go of its lock before handing anything out.
            let hash = |key: &K| self.store.hasher.hash_one(key);
            let copied: Vec<_> = shard
                .lock
                .read()
                .iter(hash)
                .map(|(key, record)| (key.clone(), record.snapshot()))
                .collect();
            self.copied = copied.into_iter();
        }
    }
}

impl<K, V, S: VersionScheme, H> fmt::Debug for Iter<'_, K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .finish_non_exhaustive()
    }
}

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// Iterates over owned snapshots of all records, as `(key, Versioned)` pairs.
    ///
    /// # Consistency
    ///
    /// Each item is one consistent (value, version) pair, and each key appears at most
    /// once. The iteration copies one shard at a time under its read lock, so it is not a
    /// snapshot of the whole store at one instant: a record written while it runs may be
    /// seen before or after that write, and one created or removed meanwhile may or may
    /// not appear. No lock is held between items, so the loop body may use the store.
    /// Expired records are skipped (reclaiming them is left to writes).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, &str> = verkv::Store::new();
    /// store.insert(1, "one").unwrap();
    /// store.insert(2, "two").unwrap();
    /// let mut all: Vec<_> = store.iter().map(|(k, r)| (k, r.value, r.version)).collect();
    /// all.sort();
    /// assert_eq!(all, [(1, "one", 1), (2, "two", 1)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S, H>
    where
        K: Clone + Hash,
        H: BuildHasher,
        V: Clone,
    {
        forbid_reentry(self.id());
        Iter::new(self)
    }
}
