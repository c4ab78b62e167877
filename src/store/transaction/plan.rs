//! Checks a transaction's input and orders its steps by shard: the one global order in
//! which every transaction takes its locks, so that two transactions over the same
//! shards never wait for each other in a cycle.

use std::hash::{BuildHasher, Hash};

use smallvec::SmallVec;

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

/// One step's place: its key's shard and hash, and its index among the steps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Placed {
    pub(crate) shard: usize,
    pub(crate) hash: u64,
    pub(crate) step: usize,
}

/// How many steps, or shards, a transaction has before its lists need an allocation.
pub(crate) const INLINE: usize = 4;

/// The steps of a transaction ordered by shard, the shards in increasing index, grouped
/// into shards as it is read; held in place up to [`INLINE`] steps.
pub(crate) struct Plan {
    placed: SmallVec<[Placed; INLINE]>,
}

impl Plan {
    /// Hashes every key, orders the steps by shard and refuses an empty transaction or
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
        let mut placed: SmallVec<[Placed; INLINE]> = steps
            .iter()
            .enumerate()
            .map(|(step, each)| {
                let hash = store.hasher.hash_one(each.key());
                Placed {
                    shard: store.shard_index(hash),
                    hash,
                    step,
                }
            })
            .collect();
        placed.sort_unstable_by_key(|place| (place.shard, place.hash));
        // Equal keys have equal hashes, so they end up next to each other in one run of
        // equal hashes: compare within each run.
        for run in placed.chunk_by(|a, b| a.hash == b.hash) {
            for (index, first) in run.iter().enumerate() {
                if let Some(again) = run[index + 1..]
                    .iter()
                    .find(|other| steps[other.step].key() == steps[first.step].key())
                {
                    return Err(TransactionError::Repeated(steps[again.step].key().clone()));
                }
            }
        }
        Ok(Plan { placed })
    }

    /// Each shard the transaction needs, in increasing index, with its steps.
    pub(crate) fn by_shard(&self) -> impl Iterator<Item = (usize, &[Placed])> + '_ {
        self.placed
            .chunk_by(|a, b| a.shard == b.shard)
            .map(|steps| (steps[0].shard, steps))
    }

    /// How many shards the transaction needs.
    pub(crate) fn shards(&self) -> usize {
        self.by_shard().count()
    }
}
