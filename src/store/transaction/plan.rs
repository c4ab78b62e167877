//! Checks a transaction's input and orders its steps by shard: the one global order in
//! which every transaction takes its locks, so that two transactions over the same
//! shards never wait for each other in a cycle.

use std::hash::{BuildHasher, Hash};

use super::error::TransactionError;
use super::request::Step;
use crate::store::Store;
use crate::version::VersionScheme;

impl<K: Hash, V, S: VersionScheme, H: BuildHasher> Store<K, V, S, H> {
    /// The index of the shard `key` belongs to (below [`shard_count`](Store::shard_count)).
    /// A transaction, or a [`get_many`](Store::get_many), over keys of one shard takes
    /// one lock; over several shards, one per shard, in increasing index.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::builder().shards(4).build();
    /// assert!(store.shard_of(&7) < 4);
    /// ```
    pub fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize
    where
        K: std::borrow::Borrow<Q>,
    {
        self.shard_index(self.hasher.hash_one(key))
    }
}

/// The steps of a transaction grouped by shard, the shards in increasing index.
pub(crate) struct Plan {
    /// Each step's key's hash, in the order of the steps.
    pub(crate) hashes: Vec<u64>,
    /// The steps' indices, ordered by shard.
    pub(crate) order: Vec<usize>,
    /// Each shard the transaction needs, with the end of its steps in `order`.
    pub(crate) shards: Vec<(usize, usize)>,
}

impl Plan {
    /// Hashes every key, groups the steps by shard and refuses an empty transaction or
    /// one that names a key twice.
    pub(crate) fn new<K, V, S, H>(
        store: &Store<K, V, S, H>,
        steps: &[Step<K, V, S::Version>],
    ) -> Result<Plan, TransactionError<K, S::Version>>
    where
        K: Hash + Eq + Clone,
        S: VersionScheme,
        H: BuildHasher,
    {
        if steps.is_empty() {
            return Err(TransactionError::Empty);
        }
        let hashes: Vec<u64> = steps
            .iter()
            .map(|step| store.hasher.hash_one(step.key()))
            .collect();
        let shard = |step: usize| store.shard_index(hashes[step]);
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_unstable_by_key(|&step| (shard(step), hashes[step]));
        // Equal keys have equal hashes, so they end up next to each other in one run of
        // equal hashes: compare within each run.
        for run in order.chunk_by(|&a, &b| hashes[a] == hashes[b]) {
            for (index, &first) in run.iter().enumerate() {
                if let Some(&again) = run[index + 1..]
                    .iter()
                    .find(|&&other| steps[other].key() == steps[first].key())
                {
                    return Err(TransactionError::Repeated(steps[again].key().clone()));
                }
            }
        }
        let mut shards: Vec<(usize, usize)> = Vec::new();
        for (end, &step) in order.iter().enumerate() {
            match shards.last_mut() {
                Some((index, last)) if *index == shard(step) => *last = end + 1,
                _ => shards.push((shard(step), end + 1)),
            }
        }
        Ok(Plan {
            hashes,
            order,
            shards,
        })
    }

    /// Each shard with the indices of its steps.
    pub(crate) fn by_shard(&self) -> impl Iterator<Item = (usize, &[usize])> + '_ {
        let mut start = 0;
        self.shards.iter().map(move |&(shard, end)| {
            let steps = &self.order[start..end];
            start = end;
            (shard, steps)
        })
    }
}
