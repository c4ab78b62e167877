//! Iteration over owned snapshots, one shard at a time.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use super::facade::Store;
use super::record::{Record, Versioned};
use super::reentry::forbid_reentry;
use crate::version::VersionScheme;

/// Walks a store shard by shard, copying out what `copy` takes from each record that
/// has not expired: the one loop under [`Iter`] and [`Keys`].
struct Walk<'a, K, V, S: VersionScheme, H, T> {
    store: &'a Store<K, V, S, H>,
    next_shard: usize,
    copied: std::vec::IntoIter<T>,
    copy: fn(&K, &Record<V, S::Version>) -> T,
}

impl<'a, K, V, S: VersionScheme, H, T> Walk<'a, K, V, S, H, T> {
    fn new(store: &'a Store<K, V, S, H>, copy: fn(&K, &Record<V, S::Version>) -> T) -> Self {
        forbid_reentry(store.id());
        Walk {
            store,
            next_shard: 0,
            copied: Vec::new().into_iter(),
            copy,
        }
    }
}

impl<K: Hash, V, S: VersionScheme, H: BuildHasher, T> Walk<'_, K, V, S, H, T> {
    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.copied.next() {
                return Some(item);
            }
            let shard = self.store.shards().get(self.next_shard)?;
            self.next_shard += 1;
            // Copy the whole shard and let go of its lock before handing anything out.
            let hash = |key: &K| self.store.hasher.hash_one(key);
            let copied: Vec<T> = shard
                .lock
                .read()
                .iter(hash)
                .map(|(key, record)| (self.copy)(key, record))
                .collect();
            self.copied = copied.into_iter();
        }
    }
}

/// One item of [`Iter`]: a key and its record's snapshot.
type Item<K, V, S> = (K, Versioned<V, <S as VersionScheme>::Version>);

/// Iterator over owned `(key, Versioned)` snapshots of a [`Store`]'s records, made by
/// [`Store::iter`] (which explains its consistency).
pub struct Iter<'a, K, V, S: VersionScheme, H> {
    walk: Walk<'a, K, V, S, H, Item<K, V, S>>,
}

impl<K: Clone + Hash, V: Clone, S: VersionScheme, H: BuildHasher> Iterator
    for Iter<'_, K, V, S, H>
{
    type Item = Item<K, V, S>;

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next()
    }
}

impl<K, V, S: VersionScheme, H> fmt::Debug for Iter<'_, K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.walk.next_shard)
            .finish_non_exhaustive()
    }
}

/// Iterator over owned copies of a [`Store`]'s keys, made by [`Store::keys`] (consistent
/// as [`Store::iter`]).
pub struct Keys<'a, K, V, S: VersionScheme, H> {
    walk: Walk<'a, K, V, S, H, K>,
}

impl<K: Clone + Hash, V, S: VersionScheme, H: BuildHasher> Iterator for Keys<'_, K, V, S, H> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        self.walk.next()
    }
}

impl<K, V, S: VersionScheme, H> fmt::Debug for Keys<'_, K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("next_shard", &self.walk.next_shard)
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
        Iter {
            walk: Walk::new(self, |key, record| (key.clone(), record.snapshot())),
        }
    }

    /// Iterates over owned copies of the keys of all records, without copying values;
    /// consistent as [`iter`](Store::iter) is, and skipping expired records too.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, &str> = verkv::Store::new();
    /// store.insert(1, "one").unwrap();
    /// store.insert(2, "two").unwrap();
    /// let mut keys: Vec<u32> = store.keys().collect();
    /// keys.sort();
    /// assert_eq!(keys, [1, 2]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V, S, H>
    where
        K: Clone + Hash,
        H: BuildHasher,
    {
        Keys {
            walk: Walk::new(self, |key, _| key.clone()),
        }
    }
}
