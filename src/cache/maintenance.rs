//! Whole-store upkeep: removing the records a predicate refuses, and every record.

use std::hash::{BuildHasher, Hash};

use crate::deadline::Forever;
use crate::store::reentry::{forbid_reentry, ClosureScope};
use crate::store::{write_shard, Store};
use crate::version::VersionScheme;

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Removes every record for which `keep` returns `false`, as
    /// [`HashMap::retain`](std::collections::HashMap::retain) does. Expired records go
    /// too (without asking `keep`). Removed versions are retired, and the
    /// [eviction listener](crate::StoreBuilder::eviction_listener) hears of each record,
    /// as [`Removed`](crate::RemovalCause::Removed) (or
    /// [`Expired`](crate::RemovalCause::Expired)).
    ///
    /// Shard by shard, as [`clear`](Store::clear): a record written into a shard already
    /// done while this runs is not looked at.
    ///
    /// # Locking behaviour
    ///
    /// Takes each shard's lock exclusively in turn, and runs `keep` under it: `keep`
    /// should be quick and must not call back into this store.
    ///
    /// # Panics
    ///
    /// If `keep` calls any method of this store (as in
    /// [`update_with`](Store::update_with)). If `keep` panics, the records it already
    /// refused in that shard are removed, the others stay.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::new();
    /// for n in 0..10 {
    ///     store.insert(n, n * n).unwrap();
    /// }
    /// store.retain(|_, square| square % 2 == 0);
    /// assert_eq!(store.len(), 5);
    /// assert!(store.get(&3).is_none());
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let id = self.id();
        forbid_reentry(id);
        let hash = |key: &K| self.hasher.hash_one(key);
        for shard in self.shards() {
            let Ok(()) = write_shard(&Forever, shard, (), |records, ()| {
                let _scope = ClosureScope::enter(id);
                records.retain(hash, &mut keep);
            });
        }
    }

    /// moka's name for [`clear`](Store::clear): removes every record, telling the
    /// [eviction listener](crate::StoreBuilder::eviction_listener) of each as
    /// [`Cleared`](crate::RemovalCause::Cleared).
    ///
    /// # Locking behaviour
    ///
    /// As [`clear`](Store::clear).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::new();
    /// store.insert(1, 1).unwrap();
    /// store.invalidate_all();
    /// assert!(store.get(&1).is_none());
    /// ```
    pub fn invalidate_all(&self) {
        self.clear();
    }
}
