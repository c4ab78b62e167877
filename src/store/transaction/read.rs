//! The atomic read of several keys: the read locks of their shards, in the order every
//! transaction takes them, all held while the records are copied.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use super::plan::INLINE;
use super::request::ReadMany;
use crate::deadline::{Forever, Wait};
use crate::store::record::Record;
use crate::store::records::Records;
use crate::store::reentry::forbid_reentry;
use crate::store::tally::count_stop;
use crate::store::Store;
use crate::sync::ReadGuard;
use crate::version::VersionScheme;
use crate::Versioned;

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

    /// As [`get_many`](Store::get_many), for a number of keys known when compiling: the
    /// records in an array, and nothing allocated (the places of the keys and the locks
    /// are kept on the stack too). The cheaper read for a fixed set, such as the two
    /// accounts of a transfer.
    ///
    /// # Locking behaviour
    ///
    /// As [`get_many`](Store::get_many).
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
    /// let [a, b] = store.get_many_array([&"a", &"b"]);
    /// assert_eq!(a.map(|a| (a.value, a.version)), Some((1, 1)));
    /// assert!(b.is_none());
    /// ```
    pub fn get_many_array<Q, const N: usize>(
        &self,
        keys: [&Q; N],
    ) -> [Option<Versioned<V, S::Version>>; N]
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        forbid_reentry(self.id());
        let mut places: [Place; N] = std::array::from_fn(|index| self.place(keys[index], index));
        let mut locks: [Option<ReadGuard<'_, _>>; N] = std::array::from_fn(|_| None);
        let mut found = std::array::from_fn(|_| None);
        let room = (&mut places[..], &mut locks[..], &mut found[..]);
        let Ok(()) = self.read_many(&Forever, &keys, room);
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
        let mut found: ReadMany<V, S::Version> = keys.iter().map(|_| None).collect();
        let place = |index: usize| self.place(keys[index], index);
        if keys.len() <= INLINE {
            // Room on the stack, as `get_many_array` has.
            let mut places: [Place; INLINE] = std::array::from_fn(|_| (0, 0, 0));
            for (index, slot) in places.iter_mut().enumerate().take(keys.len()) {
                *slot = place(index);
            }
            let mut locks: [Option<ReadGuard<'_, _>>; INLINE] = std::array::from_fn(|_| None);
            let room = (
                &mut places[..keys.len()],
                &mut locks[..keys.len()],
                &mut found[..],
            );
            self.read_many(wait, keys, room)?;
        } else {
            let mut places: Vec<Place> = (0..keys.len()).map(place).collect();
            let mut locks: Vec<_> = keys.iter().map(|_| None).collect();
            self.read_many(wait, keys, (&mut places, &mut locks, &mut found))?;
        }
        Ok(found)
    }

    /// Where `key`, the `index`th of the keys read, is.
    fn place<Q: Hash + ?Sized>(&self, key: &Q, index: usize) -> Place {
        let hash = self.hasher.hash_one(key);
        (self.shard_index(hash), hash, index)
    }

    /// Reads every one of `keys` into its place in `found`, all as of one instant: under
    /// the read lock of every shard the keys are in, taken in increasing shard index
    /// (the order of [`commit`](Store::commit)) and held until every record is copied.
    /// `places` holds each key's [`place`](Store::place), `locks` is room for the locks
    /// (`None` each); all three are as long as `keys`, and handed in so that the caller
    /// chooses where they live.
    fn read_many<'s, Q, W: Wait>(
        &'s self,
        wait: &W,
        keys: &[&Q],
        (places, locks, found): Room<'_, 's, K, V, S>,
    ) -> Result<(), W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        // Ordered by shard.
        if !places.is_sorted_by_key(|&(shard, ..)| shard) {
            places.sort_unstable_by_key(|&(shard, ..)| shard);
        }
        let wait = wait.fixed();
        let runs = places.chunk_by(|a, b| a.0 == b.0);
        for (run, lock) in runs.clone().zip(locks.iter_mut()) {
            let shard = &self.shards()[run[0].0];
            let guard = wait
                .read(&shard.lock)
                .inspect_err(|&stop| count_stop(shard, stop))?;
            *lock = Some(guard);
        }
        for (run, records) in runs.zip(locks.iter()) {
            let records = records
                .as_ref()
                .expect("a lock per run of one shard's keys");
            for &(_, hash, index) in run {
                let read = records.get(hash, keys[index]).map(Record::snapshot);
                self.count_read(read.is_some());
                found[index] = read;
            }
        }
        Ok(())
    }
}

/// A key's shard, hash and index among the keys.
type Place = (usize, u64, usize);

/// Where [`Store::read_many`] keeps the keys' places, the locks it holds, and what it
/// read: each as long as the keys.
type Room<'r, 's, K, V, S> = (
    &'r mut [Place],
    &'r mut [Option<ReadGuard<'s, Records<K, V, S>>>],
    &'r mut [Option<Versioned<V, <S as VersionScheme>::Version>>],
);
