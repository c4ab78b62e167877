//! The eviction listener's face on the store: how many of its calls panicked. The
//! removals it is told of are collected in each shard (`store/parts/removals.rs`).

use std::hash::{BuildHasher, Hash};

use crate::store::reentry::forbid_reentry;
use crate::store::Store;
use crate::version::VersionScheme;

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// How many calls of the [eviction listener](crate::StoreBuilder::eviction_listener)
    /// panicked. Such a panic is caught (the default panic hook still prints it): the
    /// operation that removed the record has taken effect and returns as usual, the store
    /// stays usable, and the listener goes on being called for later removals.
    ///
    /// # Panics
    ///
    /// If called from inside a closure this store is running, as [`Store::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::builder()
    ///     .eviction_listener(|_, _, _| panic!("a listener bug"))
    ///     .build();
    /// store.put("a", 1).unwrap();
    /// assert_eq!(store.put("a", 2), Ok(2)); // the write stands
    /// assert_eq!(store.listener_panics(), 1);
    /// assert_eq!(store.get(&"a").unwrap().value, 2);
    /// ```
    pub fn listener_panics(&self) -> u64 {
        forbid_reentry(self.id());
        self.shards()[0].lock.read().removals().panics()
    }
}
