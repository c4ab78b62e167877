//! The concurrent store: hash the key, pick its shard, lock it, delegate to the shard.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, NotInserted, Rejected, UpdateWithError};
use super::locked::{LatelyStale, LockedShard};
use super::record::{Record, Versioned};
use super::records::Records;
use super::reentry::{forbid_reentry, ClosureScope};
use super::stale::refuse_stale_on_read;
use super::tally::{
    count_checked_write, count_event, count_stop, count_write, timed_write, Written,
};
use crate::deadline::{Forever, Wait};
use crate::stats::counters::Event;
use crate::stats::report::{Setup, StoreCounters};
use crate::store::parts::eviction::Bound;
use crate::store::parts::expiry::Expiration;
use crate::store::parts::flights::Loads;
use crate::store::parts::removals::{Notifier, Removals};
use crate::sync::{CachePadded, ChangeEvent, ShardLock, WriteGuard};
use crate::version::{Counter, VersionScheme};

/// The hasher a store uses unless told otherwise: [foldhash]'s fast variant.
///
/// Chosen for speed on the keys a cache sees most (integers, short strings): it is among
/// the fastest general-purpose hashers and, unlike FxHash, it is seeded at random for
/// every store, so nobody can work out colliding keys ahead of time.
///
/// **Hash flooding.** foldhash makes no cryptographic claim. An attacker who can choose
/// many keys *and* study the running process for long enough to learn its seed could
/// send keys that collide, turning lookups in one shard from constant time into a scan.
/// Where keys come straight from untrusted clients and that risk matters more than
/// speed, build the store with [`std::hash::RandomState`] (SipHash-1-3, keyed per store):
///
/// ```
/// use verkv::{Store, StoreBuilder};
///
/// let store: Store<String, u32, verkv::Counter, std::hash::RandomState> =
///     StoreBuilder::new().hasher(std::hash::RandomState::new()).build();
/// store.insert("client-chosen key".to_string(), 1).unwrap();
/// ```
///
/// [foldhash]: https://docs.rs/foldhash
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// The version type of a store with version scheme `S`.
pub type VersionOf<S> = <S as VersionScheme>::Version;

/// A concurrent map from keys to versioned records.
///
/// `S` chooses the [version scheme](VersionScheme) ([`Counter`] or
/// [`UuidV4`](crate::UuidV4)), `H` the hasher. See the [crate documentation](crate) for
/// an overview and the consistency guarantees.
///
/// # Locking behaviour
///
/// The store is split into shards, each behind a reader-writer lock. Every method locks
/// at most one shard at a time and never hands a lock guard out: reads return owned
/// copies. Reads share a shard's lock; writes take it exclusively and hold it only for
/// the write itself (and for the closure of [`update_with`](Store::update_with)). While
/// nobody writes a shard, its reads write no memory that other threads' reads write: a
/// write first waits for the reads in progress on its shard, and for a short while
/// afterwards the shard's reads go through its lock word, as writes do.
pub struct Store<K, V, S: VersionScheme = Counter, H = DefaultHashBuilder> {
    shards: Box<[CachePadded<LockedShard<K, V, S>>]>,
    /// The timeout of [`bounded`](Store::bounded) views, if the builder set one.
    pub(crate) default_timeout: Option<Duration>,
    /// `64 - log2(shard count)`: how far to shift a hash to get its shard index.
    shard_shift: u32,
    pub(crate) hasher: H,
    /// The store-wide statistics (its reads), if they are on.
    pub(crate) counters: Option<Box<StoreCounters>>,
}

impl<K, V, S: VersionScheme, H> fmt::Debug for Store<K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

// A panic in a closure or callback the store runs (an `update_with` closure, a patch, a
// weigher, an expiry policy, a loader, a listener) leaves every record as it was before
// the operation, and the store's locks do not poison: a store seen again after a caught
// panic is consistent, so it may cross `catch_unwind` by reference (and be captured by a
// callback of its own, such as an eviction listener).
impl<K, V, S: VersionScheme, H> std::panic::RefUnwindSafe for Store<K, V, S, H> {}
impl<K, V, S: VersionScheme, H> std::panic::UnwindSafe for Store<K, V, S, H> {}

/// The cache's parts a builder hands the store, each one off unless configured.
pub(crate) struct CacheParts<K, V> {
    pub(crate) bound: Option<Bound<K, V>>,
    pub(crate) statistics: Option<Setup<K>>,
    pub(crate) expiration: Expiration<K, V>,
    pub(crate) notifier: Option<Arc<Notifier<K, V>>>,
}

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    pub(crate) fn from_parts(
        shard_count: usize,
        capacity_per_shard: usize,
        hasher: H,
        default_timeout: Option<Duration>,
        parts: CacheParts<K, V>,
    ) -> Self {
        let CacheParts {
            bound,
            statistics,
            expiration,
            notifier,
        } = parts;
        debug_assert!(shard_count.is_power_of_two());
        let (counters, shard_counters) = statistics.map(StoreCounters::new).unzip();
        // The store's id (see `id`) is the address of its shards, which never move once
        // allocated: known before the shards are made, for the callbacks they run.
        let mut shards = Vec::with_capacity(shard_count);
        let id = shards.as_ptr() as usize;
        for index in 0..shard_count {
            let evictor = bound
                .as_ref()
                .map(|bound| bound.shard(index, shard_count, id));
            let removals = Removals::new(notifier.clone());
            let shard = Records::new(capacity_per_shard, evictor, expiration.shard(id), removals);
            shards.push(CachePadded::new(LockedShard {
                lock: ShardLock::new(shard),
                changed: ChangeEvent::new(),
                loads: Loads::new(),
                counters: shard_counters.as_ref().map(|new| Box::new(new())),
                lately_stale: LatelyStale::default(),
            }));
        }
        let shards = shards.into_boxed_slice();
        debug_assert_eq!(shards.as_ptr() as usize, id, "the shards moved");
        Store {
            shards,
            shard_shift: 64 - shard_count.trailing_zeros(),
            default_timeout,
            hasher,
            counters: counters.map(Box::new),
        }
    }

    /// The number of shards (independently locked parts) the store has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The index of the shard of a key with hash `hash`.
    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        // The top 7 bits pick a slot inside a shard's table (its control bytes), and the
        // low bits pick its bucket; the shard comes from the bits in between, so keys that
        // share a shard still spread over its table.
        (hash << 7).checked_shr(self.shard_shift).unwrap_or(0) as usize
    }

    /// Identifies this store while it is alive, for the re-entry check.
    pub(crate) fn id(&self) -> usize {
        self.shards.as_ptr() as usize
    }

    pub(crate) fn shards(&self) -> &[CachePadded<LockedShard<K, V, S>>] {
        &self.shards
    }
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// The hash of a stored key, for a shard's table to place or move its records by.
    pub(crate) fn rehash(&self) -> impl Fn(&K) -> u64 + '_ {
        move |key| self.hasher.hash_one(key)
    }

    /// Hashes `key` once, for both the shard and the bucket inside it.
    pub(crate) fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &LockedShard<K, V, S>) {
        forbid_reentry(self.id());
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[self.shard_index(hash)])
    }

    /// The value and version of `key`, read together: one consistent snapshot.
    ///
    /// # Locking behaviour
    ///
    /// Shares the key's shard lock with other readers; waits while a writer holds it.
    ///
    /// # Panics
    ///
    /// If called from inside a closure this store is running
    /// ([`update_with`](Store::update_with)).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// assert_eq!(store.get(&"a"), None);
    /// let version = store.insert("a", 7).unwrap();
    /// let read = store.get(&"a").unwrap();
    /// assert_eq!((read.value, read.version), (7, version));
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<Versioned<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let Ok(found) = self.get_in(&Forever, key);
        found
    }

    /// The current version of `key`, without copying its value.
    ///
    /// # Locking behaviour
    ///
    /// As [`get`](Store::get).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// assert_eq!(store.version(&"a"), None);
    /// store.insert("a", 7).unwrap();
    /// assert_eq!(store.version(&"a"), Some(1));
    /// ```
    pub fn version<Q>(&self, key: &Q) -> Option<S::Version>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Ok(version) = self.version_in(&Forever, key);
        version
    }

    /// Whether `key` has a record.
    ///
    /// # Locking behaviour
    ///
    /// As [`get`](Store::get).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// store.insert("a", 7).unwrap();
    /// assert!(store.contains_key(&"a"));
    /// assert!(!store.contains_key(&"b"));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Ok(found) = self.contains_key_in(&Forever, key);
        found
    }

    /// Creates a record for `key`, only if it has none (the `If-None-Match: *` case).
    /// Returns the new record's version.
    ///
    /// # Errors
    ///
    /// [`Error::Exists`] with the current version if `key` already has a record; `value`
    /// is handed back in the [`Rejected`].
    ///
    /// # Locking behaviour
    ///
    /// Takes the key's shard lock exclusively for the insertion.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Error, Store};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// assert_eq!(store.insert("a", 1), Ok(1));
    /// let err = store.insert("a", 2).unwrap_err();
    /// assert_eq!(err.error, Error::Exists { current: 1 });
    /// assert_eq!(err.value, 2);
    /// ```
    pub fn insert(&self, key: K, value: V) -> Result<S::Version, Rejected<V, S::Version>> {
        self.insert_in(&Forever, key, value)
    }

    /// Creates a record for `key` if it has none, as [`insert`](Store::insert) does, and
    /// otherwise hands back the record that is there (value and version, read under the
    /// same lock) with `value`: what a caller needs to answer without a second lookup,
    /// which could find yet another state. The one-lookup form of `get`, then `insert`.
    ///
    /// # Errors
    ///
    /// [`NotInserted::Occupied`] if `key` already has a record;
    /// [`NotInserted::Refused`] if a bounded store cannot hold it ([`Error::TooHeavy`]).
    ///
    /// # Locking behaviour
    ///
    /// As [`insert`](Store::insert); the current value is cloned under the lock.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, &str> = verkv::Store::new();
    /// assert_eq!(store.insert_or_current("a", "first"), Ok(1));
    /// let verkv::NotInserted::Occupied { current, value } =
    ///     store.insert_or_current("a", "second").unwrap_err()
    /// else {
    ///     panic!("the key is there")
    /// };
    /// assert_eq!((current.value, current.version, value), ("first", 1, "second"));
    /// ```
    pub fn insert_or_current(
        &self,
        key: K,
        value: V,
    ) -> Result<S::Version, NotInserted<V, S::Version>>
    where
        V: Clone,
    {
        self.insert_or_current_in(&Forever, key, value)
    }

    /// Writes `value` for `key` whatever its current version, creating the record if
    /// there is none. Returns the new version.
    ///
    /// This is the *blind* write: it overwrites a change made since the caller last read
    /// the record without noticing it, which is how read-modify-write cycles lose
    /// updates. Use [`update`](Store::update) when the new value was derived from a read.
    ///
    /// # Errors
    ///
    /// Only in a store with a [capacity bound](crate::StoreBuilder::max_capacity):
    /// [`Error::TooHeavy`] if the record could never fit; nothing is written and `value`
    /// is handed back in the [`Rejected`]. A store without a bound always writes.
    ///
    /// # Locking behaviour
    ///
    /// As [`insert`](Store::insert).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// assert_eq!(store.put("a", 1), Ok(1));
    /// assert_eq!(store.put("a", 2), Ok(2));
    /// ```
    pub fn put(&self, key: K, value: V) -> Result<S::Version, Rejected<V, S::Version>> {
        self.put_in(&Forever, key, value)
    }

    /// Replaces the value of `key` if its record is still at version `expected`
    /// (compare-and-swap). Returns the new version, like SQL's `RETURNING version`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if `key` has no record, [`Error::Stale`] (with the current
    /// version) if it is at another version than `expected`. Either way nothing is
    /// written and `value` is handed back in the [`Rejected`].
    ///
    /// # Locking behaviour
    ///
    /// As [`insert`](Store::insert).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Error, Store};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// let v1 = store.insert("a", 1).unwrap();
    /// let v2 = store.update(&"a", &v1, 2).unwrap();
    /// // A second writer that also read v1 is refused, and told the current version.
    /// let err = store.update(&"a", &v1, 3).unwrap_err();
    /// assert_eq!(err.error, Error::Stale { expected: v1, current: v2 });
    /// assert_eq!(store.update(&"b", &v1, 4).unwrap_err().error, Error::NotFound);
    /// ```
    pub fn update<Q>(
        &self,
        key: &Q,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.update_in(&Forever, key, expected, value)
    }

    /// Computes a new value from the current one if the record is still at version
    /// `expected`, and writes it; returns the new version.
    ///
    /// `compute` runs at most once, under the shard's write lock, and only after the
    /// version check passed. If it panics, the record is left as it was. A computation
    /// that may refuse to write goes to [`try_update_with`](Store::try_update_with).
    ///
    /// `compute` should be short: it holds up every other operation on the shard. It must
    /// not call back into this store (that panics, see below); other stores are fine.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Stale`], before `compute` runs; nothing is written.
    ///
    /// # Locking behaviour
    ///
    /// Takes the key's shard lock exclusively for the check, `compute` and the write.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get); and if `compute` calls any method of this store, that call
    /// panics (instead of deadlocking on the lock `compute` runs under).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, Vec<&str>> = verkv::Store::new();
    /// let v1 = store.insert("tags", vec!["a"]).unwrap();
    /// let v2 = store
    ///     .update_with(&"tags", &v1, |tags| [tags.as_slice(), &["b"]].concat())
    ///     .unwrap();
    /// assert_eq!(store.get(&"tags").unwrap().value, ["a", "b"]);
    /// assert_eq!(v2, 2);
    /// ```
    #[inline]
    pub fn update_with<Q>(
        &self,
        key: &Q,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> V,
    ) -> Result<S::Version, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.update_with_in(&Forever, key, expected, |current: &V| {
            Ok::<_, Infallible>(compute(current))
        })
        .map_err(Error::from)
    }

    /// As [`update_with`](Store::update_with), with a `compute` that may refuse: if it
    /// returns `Err`, nothing is written, the version stays, and the error reaches the
    /// caller (the `try_` methods take closures that return a `Result`, as
    /// `Iterator::try_fold` does).
    ///
    /// `compute` should be short: it holds up every other operation on the shard. It must
    /// not call back into this store (that panics, see below); other stores are fine.
    ///
    /// # Errors
    ///
    /// [`UpdateWithError::Store`] with [`Error::NotFound`] or [`Error::Stale`] (before
    /// `compute` runs), or [`UpdateWithError::Closure`] with the closure's error.
    ///
    /// # Locking behaviour
    ///
    /// As [`update_with`](Store::update_with).
    ///
    /// # Panics
    ///
    /// As [`update_with`](Store::update_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Error, Store, UpdateWithError};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// let v1 = store.insert("stock", 3).unwrap();
    /// let take = |n: &u32| n.checked_sub(2).ok_or("out of stock");
    /// let v2 = store.try_update_with(&"stock", &v1, take).unwrap();
    /// assert_eq!(store.try_update_with(&"stock", &v2, take), Err(UpdateWithError::Closure("out of stock")));
    /// assert_eq!(store.get(&"stock").unwrap().value, 1);
    /// ```
    pub fn try_update_with<Q, E>(
        &self,
        key: &Q,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.update_with_in(&Forever, key, expected, compute)
    }

    /// Removes the record of `key` if it is still at version `expected`, returning its
    /// value.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] or [`Error::Stale`], as for [`update`](Store::update); nothing
    /// is removed.
    ///
    /// # Locking behaviour
    ///
    /// As [`insert`](Store::insert).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Error, Store};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// let v1 = store.insert("a", 1).unwrap();
    /// store.update(&"a", &v1, 2).unwrap();
    /// assert!(matches!(store.remove(&"a", &v1), Err(Error::Stale { .. })));
    /// assert_eq!(store.remove(&"a", &2), Ok(2));
    /// assert_eq!(store.remove(&"a", &2), Err(Error::NotFound));
    /// ```
    pub fn remove<Q>(&self, key: &Q, expected: &S::Version) -> Result<V, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_in(&Forever, key, expected)
    }

    /// Removes the record of `key` **whatever its version**, returning its value and
    /// version; `None` if there was none. The unconditional removal a cache wants on a
    /// change it heard of elsewhere (moka's `invalidate`, `HashMap::remove`): it never
    /// refuses, so it can remove a write it has not seen. Where a version was read, use
    /// [`remove`](Store::remove), which cannot.
    ///
    /// The record's versions are retired as by any removal, the
    /// [listener](crate::StoreBuilder::eviction_listener) hears
    /// [`RemovalCause::Removed`](crate::RemovalCause::Removed), and the statistics count
    /// it in [`invalidations`](crate::Stats::invalidations) (not in `removes`, which are
    /// conditional). An expired record counts as none.
    ///
    /// # Locking behaviour
    ///
    /// As [`insert`](Store::insert).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, Versioned};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// store.insert("a", 1).unwrap();
    /// assert_eq!(store.invalidate(&"a"), Some(Versioned { value: 1, version: 1 }));
    /// assert_eq!(store.invalidate(&"a"), None);
    /// assert_eq!(store.insert("a", 2), Ok(2)); // versions never repeat
    /// ```
    pub fn invalidate<Q>(&self, key: &Q) -> Option<Versioned<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Ok(invalidated) = self.invalidate_in(&Forever, key);
        invalidated
    }
}

/// The operations, generic over how they wait: the plain methods above wait
/// [`Forever`], [`Bounded`](crate::Bounded) views within a deadline.
///
/// Each is always inlined into its caller, so every way of waiting gets its own copy of
/// the lock's fast path: a plain method compiles to one function that cannot fail to
/// wait, and a view made for one operation (`store.within(t).get(&k)`) keeps its budget
/// in registers, where a token it does not have and a deadline it does not reach fold
/// away. Out of line, the budget would have to be stored and passed by address, which
/// costs a bounded `get` over a large map a fifth of its speed (see `docs/benchmarks/read-path.md`).
/// A write's answer (its new version, or its refusal with the value), or, if its wait
/// failed, the wait's error with the key and value handed back.
pub(crate) type WrittenOrHandedBack<K, V, Ver, E> =
    Result<Result<Ver, Rejected<V, Ver>>, (E, K, V)>;

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    #[inline(always)]
    pub(crate) fn get_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
    ) -> Result<Option<Versioned<V, S::Version>>, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (hash, shard) = self.locate(key);
        let found = wait
            .read(&shard.lock)
            .inspect_err(|&stop| count_stop(shard, stop))?
            .get(hash, key)
            .map(Record::snapshot);
        self.count_read(found.is_some());
        Ok(found)
    }

    #[inline(always)]
    pub(crate) fn version_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
    ) -> Result<Option<S::Version>, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        let found = wait
            .read(&shard.lock)
            .inspect_err(|&stop| count_stop(shard, stop))?
            .peek(hash, key)
            .map(|record| record.version.clone());
        self.count_read(found.is_some());
        Ok(found)
    }

    #[inline(always)]
    pub(crate) fn contains_key_in<Q, W: Wait>(&self, wait: &W, key: &Q) -> Result<bool, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        let found = wait
            .read(&shard.lock)
            .inspect_err(|&stop| count_stop(shard, stop))?
            .peek(hash, key)
            .is_some();
        self.count_read(found);
        Ok(found)
    }

    #[inline(always)]
    pub(crate) fn insert_in<W: Wait>(
        &self,
        wait: &W,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>>
    where
        W::Error: Into<Error<S::Version>>,
    {
        self.insert_or_back_in(wait, key, value)
            .unwrap_or_else(|(stop, _, value)| Err(Rejected::not_started((stop, value))))
    }

    /// As `insert_in`; a wait that fails hands back the key too, for a caller that tries
    /// again.
    #[inline(always)]
    pub(crate) fn insert_or_back_in<W: Wait>(
        &self,
        wait: &W,
        key: K,
        value: V,
    ) -> WrittenOrHandedBack<K, V, S::Version, W::Error> {
        let (hash, shard) = self.locate(&key);
        let rehash = self.rehash();
        write_answer(wait, shard, (key, value), |records, (key, value)| {
            let inserted = records.insert(hash, key, value, rehash, wait.time_to_live());
            count_write(shard, &inserted, Event::Inserted);
            inserted
        })
        .map_err(|(stop, (key, value))| (stop, key, value))
    }

    #[inline(always)]
    pub(crate) fn insert_or_current_in<W: Wait>(
        &self,
        wait: &W,
        key: K,
        value: V,
    ) -> Result<S::Version, NotInserted<V, S::Version>>
    where
        V: Clone,
        W::Error: Into<Error<S::Version>>,
    {
        let (hash, shard) = self.locate(&key);
        let rehash = self.rehash();
        let time_to_live = wait.time_to_live();
        write_answer(wait, shard, value, |records, value| {
            let inserted = match records.get(hash, &key) {
                Some(record) => Err(NotInserted::Occupied {
                    current: record.snapshot(),
                    value,
                }),
                None => records
                    .insert(hash, key, value, rehash, time_to_live)
                    .map_err(NotInserted::Refused),
            };
            count_write(shard, &inserted, Event::Inserted);
            inserted
        })
        .unwrap_or_else(|not_started| Err(NotInserted::Refused(Rejected::not_started(not_started))))
    }

    #[inline(always)]
    pub(crate) fn put_in<W: Wait>(
        &self,
        wait: &W,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>>
    where
        W::Error: Into<Error<S::Version>>,
    {
        self.put_or_back_in(wait, key, value)
            .unwrap_or_else(|(stop, _, value)| Err(Rejected::not_started((stop, value))))
    }

    /// As `put_in`; a wait that fails hands back the key too, for a caller that tries
    /// again.
    #[inline(always)]
    pub(crate) fn put_or_back_in<W: Wait>(
        &self,
        wait: &W,
        key: K,
        value: V,
    ) -> WrittenOrHandedBack<K, V, S::Version, W::Error> {
        let (hash, shard) = self.locate(&key);
        let rehash = self.rehash();
        write_answer(wait, shard, (key, value), |records, (key, value)| {
            let written = records.put(hash, key, value, rehash, wait.time_to_live());
            count_write(shard, &written, Event::Put);
            written
        })
        .map_err(|(stop, (key, value))| (stop, key, value))
    }

    #[inline(always)]
    pub(crate) fn update_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        W::Error: Into<Error<S::Version>>,
    {
        let (hash, shard) = self.locate(key);
        #[cfg_attr(not(verkv_mutant = "trusting_read"), allow(unused_variables))]
        let looked = match refuse_stale_on_read(wait, (hash, shard), key, expected)
            .map_err(Into::into)
            .and_then(|looked| looked.refusal(expected))
        {
            Ok(looked) => looked,
            Err(error) => return Err(Rejected { error, value }),
        };
        let rehash = self.rehash();
        let updated = write_answer(wait, shard, value, |records, value| {
            // The `trusting_read` mutant writes on the strength of the look alone.
            #[cfg(verkv_mutant = "trusting_read")]
            let trusted = super::stale::trusted(looked, records, hash, key);
            #[cfg(verkv_mutant = "trusting_read")]
            let expected = trusted.as_ref().unwrap_or(expected);
            let updated = records.update(hash, key, expected, value, rehash, wait.time_to_live());
            count_checked_write(shard, records, (hash, key), &updated, Event::Updated);
            updated
        })
        .unwrap_or_else(|not_started| Err(Rejected::not_started(not_started)));
        shard.lately_stale.after_write(updated.is_stale());
        updated
    }

    #[inline(always)]
    pub(crate) fn update_with_in<Q, W: Wait, E>(
        &self,
        wait: &W,
        key: &Q,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        W::Error: Into<Error<S::Version>>,
    {
        let (hash, shard) = self.locate(key);
        refuse_stale_on_read(wait, (hash, shard), key, expected)
            .map_err(Into::into)?
            .refusal(expected)?;
        let id = self.id();
        let rehash = self.rehash();
        let updated = write_answer(wait, shard, compute, |records, compute| {
            let compute = |current: &V| {
                let _scope = ClosureScope::enter(id);
                compute(current)
            };
            let time_to_live = wait.time_to_live();
            let updated = records.update_with(hash, key, expected, compute, rehash, time_to_live);
            count_checked_write(shard, records, (hash, key), &updated, Event::Updated);
            updated
        })
        .unwrap_or_else(|(error, _)| Err(UpdateWithError::Store(error.into())));
        shard.lately_stale.after_write(updated.is_stale());
        updated
    }

    #[inline(always)]
    pub(crate) fn remove_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        W::Error: Into<Error<S::Version>>,
    {
        let (hash, shard) = self.locate(key);
        refuse_stale_on_read(wait, (hash, shard), key, expected)
            .map_err(Into::into)?
            .refusal(expected)?;
        let removed = write_answer(wait, shard, (), |records, ()| {
            let removed = records.remove(hash, key, expected);
            count_checked_write(shard, records, (hash, key), &removed, Event::Removed);
            removed
        })
        .unwrap_or_else(|(error, ())| Err(error.into()));
        shard.lately_stale.after_write(removed.is_stale());
        removed
    }

    #[inline(always)]
    pub(crate) fn invalidate_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
    ) -> Result<Option<Versioned<V, S::Version>>, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        write_shard(wait, shard, (), |records, ()| {
            let invalidated = records.invalidate(hash, key);
            if invalidated.is_some() {
                count_event(shard, Event::Invalidated);
            }
            invalidated.map(|Record { value, version }| Versioned { value, version })
        })
        .map_err(|(stop, ())| stop)
    }
}

/// Takes `shard`'s lock exclusively, runs `write` with `input`, lets go of the lock,
/// wakes whoever waits for a change there (if anybody does) and tells the eviction
/// listener of the records the write removed. If the wait fails, `input` comes back with
/// the error, untouched.
#[inline(always)]
pub(crate) fn write_shard<K, V, S: VersionScheme, W: Wait, T, R>(
    wait: &W,
    shard: &LockedShard<K, V, S>,
    input: T,
    write: impl FnOnce(&mut Records<K, V, S>, T) -> R,
) -> Result<R, (W::Error, T)> {
    let (result, watched, removed) = match take_write(wait, shard) {
        Ok(mut records) => {
            let result = write(&mut records, input);
            // Asked under the lock: see `ChangeEvent` for why that is enough.
            (
                result,
                shard.changed.has_watchers(),
                records.take_removals(),
            )
        }
        Err(error) => return Err((error, input)),
    };
    if watched {
        shard.changed.notify();
    }
    if let Some(removed) = removed {
        removed.deliver();
    }
    Ok(result)
}

/// As [`write_shard`], for a write that answers a `Result`: only the `Ok` value leaves
/// the locked section by value, the refusal by a side slot. Copied on whole, a write's
/// `Result` is read back with wider loads than the ones that stored it, which the
/// processor cannot forward from its store buffer: a stall on every successful write
/// (measured on `update`: about a third of its time at 1e3 keys).
#[inline(always)]
pub(crate) fn write_answer<K, V, S: VersionScheme, W: Wait, T, R, E>(
    wait: &W,
    shard: &LockedShard<K, V, S>,
    input: T,
    write: impl FnOnce(&mut Records<K, V, S>, T) -> Result<R, E>,
) -> Result<Result<R, E>, (W::Error, T)> {
    let mut refused = None;
    let written = write_shard(
        wait,
        shard,
        input,
        #[inline(always)]
        |records, input| match write(records, input) {
            Ok(answer) => Some(answer),
            Err(refusal) => {
                refused = Some(refusal);
                None
            }
        },
    )?;
    Ok(match written {
        Some(answer) => Ok(answer),
        None => Err(refused.expect("a refused write hands its refusal over")),
    })
}

/// Takes `shard`'s lock exclusively through `wait`, timing the wait if statistics are on
/// and counting a wait that stopped.
#[inline(always)]
pub(crate) fn take_write<'a, K, V, S: VersionScheme, W: Wait>(
    wait: &W,
    shard: &'a LockedShard<K, V, S>,
) -> Result<WriteGuard<'a, Records<K, V, S>>, W::Error> {
    let taken = match shard.counters.as_deref() {
        None => wait.write(&shard.lock),
        Some(counters) => timed_write(wait, &shard.lock, counters),
    };
    taken.inspect_err(|&error| count_stop(shard, error))
}

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// The number of records.
    ///
    /// Counts shard by shard, so while other threads write it is a recent count, not a
    /// snapshot of one instant. In a store with expiry it also counts the records that
    /// have expired but are not reclaimed yet (reads do not see them; writes reclaim
    /// them): an upper bound on what reads would find.
    ///
    /// # Locking behaviour
    ///
    /// Shares each shard's lock in turn.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::new();
    /// store.insert(1, 1).unwrap();
    /// store.insert(2, 2).unwrap();
    /// assert_eq!(store.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        forbid_reentry(self.id());
        self.shards
            .iter()
            .map(|shard| shard.lock.read().len())
            .sum()
    }

    /// Whether the store has no records (with the same caveat as [`len`](Store::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::new();
    /// assert!(store.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every record.
    ///
    /// Shard by shard: a record written into an already-cleared shard while this runs
    /// survives. Versions are not reused afterwards (see [`VersionScheme::retire`]). The
    /// [eviction listener](crate::StoreBuilder::eviction_listener) hears of each record,
    /// as [`Cleared`](crate::RemovalCause::Cleared).
    ///
    /// # Locking behaviour
    ///
    /// Takes each shard's lock exclusively in turn.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::new();
    /// store.insert(1, 1).unwrap();
    /// store.clear();
    /// assert!(store.is_empty());
    /// assert_eq!(store.insert(1, 1), Ok(2)); // not 1 again
    /// ```
    pub fn clear(&self) {
        forbid_reentry(self.id());
        for shard in self.shards.iter() {
            let Ok(()) = write_shard(&Forever, shard, (), |records, ()| records.clear());
        }
    }
}

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// Counts a read that found its key (`hit`) or not.
    #[inline(always)]
    pub(crate) fn count_read(&self, hit: bool) {
        if let Some(counters) = self.counters.as_deref() {
            counters.reads.count(hit);
        }
    }
}
