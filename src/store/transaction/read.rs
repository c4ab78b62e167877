//! The atomic read of several keys: the read locks of their shards, in the order every
//! transaction takes them, all held while the records are copied.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use smallvec::SmallVec;

use super::plan::INLINE;
use super::request::ReadMany;
use crate::deadline::{Forever, Wait};
use crate::store::record::Record;
use crate::store::reentry::forbid_reentry;
use crate::store::tally::count_stop;
use crate::store::Store;
use crate::version::VersionScheme;

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// The values and versions of `keys`, all as of **one instant**: no write, and no
    /// transaction, falls between two of them. In the order of `keys` (a key may appear
    /// twice); `None` for a key without a record. The read set of a transaction
    /// ([`Store::transact`] reads with it).
    ///
    /// # Locking behaviour
    ///
    /// Shares the lock of every shard the keys are in, in increasing shard index (the
    /// order of [`commit`](Store::commit)), and holds them all while it copies the
    /// records: a writer of those shards waits for it.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// store.insert("a", 1).unwrap();
    /// let read = store.get_many(&["a", "b"]);
    /// assert_eq!(read[0].as_ref().map(|a| (a.value, a.version)), Some((1, 1)));
    /// assert!(read[1].is_none());
    /// ```
    pub fn get_many<Q>(&self, keys: &[&Q]) -> ReadMany<V, S::Version>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let Ok(found) = self.get_many_in(&Forever, keys);
        found
    }

    pub(crate) fn get_many_in<Q, W: Wait>(
        &self,
        wait: &W,
        keys: &[&Q],
    ) -> Result<ReadMany<V, S::Version>, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        forbid_reentry(self.id());
        // Each key's shard, hash and place among the keys, ordered by shard.
        let mut placed: SmallVec<[(usize, u64, usize); INLINE]> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let hash = self.hasher.hash_one(*key);
                (self.shard_index(hash), hash, index)
            })
            .collect();
        if !placed.is_sorted_by_key(|&(shard, ..)| shard) {
            placed.sort_unstable_by_key(|&(shard, ..)| shard);
        }
        let by_shard = || placed.chunk_by(|a, b| a.0 == b.0);
        let wait = wait.fixed();
        let mut locked: SmallVec<[_; INLINE]> = SmallVec::new();
        for run in by_shard() {
            let shard = &self.shards()[run[0].0];
            locked.push(
                wait.read(&shard.lock)
                    .inspect_err(|&stop| count_stop(shard, stop))?,
            );
        }
        let mut found: ReadMany<V, S::Version> = keys.iter().map(|_| None).collect();
        for (run, records) in by_shard().zip(locked.iter()) {
            for &(_, hash, index) in run {
                let read = records.get(hash, keys[index]).map(Record::snapshot);
                self.count_read(read.is_some());
                found[index] = read;
            }
        }
        drop(locked);
        Ok(found)
    }
}
