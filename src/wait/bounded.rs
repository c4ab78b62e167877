//! Deadline-bounded and cancellable views of a store.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

use crate::deadline::CancelToken;
use crate::deadline::{Budget, Interrupted, Limit};
use crate::store::Versioned;
use crate::store::{DefaultHashBuilder, Store};
use crate::store::{Error, NotInserted, Rejected, UpdateWithError};
use crate::version::{Counter, VersionScheme};

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// A view whose operations each wait at most `timeout`, counted from the moment the
    /// operation starts, like Go's `context.WithTimeout` around one call.
    ///
    /// The time spent **queued** behind other writers for the shard lock counts. An
    /// operation that times out returns [`Error::TimedOut`] (or
    /// [`Interrupted::TimedOut`]) and **has had no effect**: nothing was written.
    /// `Duration::ZERO` means "only if it can be done without waiting"; a timeout too
    /// large to add to the current time means no limit. A free lock is taken without
    /// reading the clock, so the bound costs next to nothing when nobody is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let bounded = store.within(Duration::from_millis(50));
    /// let v1 = bounded.insert("a", 1).unwrap();
    /// assert_eq!(bounded.get(&"a").unwrap().unwrap().version, v1);
    /// ```
    #[inline]
    pub fn within(&self, timeout: Duration) -> Bounded<'_, K, V, S, H> {
        Bounded::new(self, Limit::After(timeout))
    }

    /// A view whose operations all end at `deadline`: one budget shared by, say, every
    /// operation of a request. Otherwise as [`within`](Store::within).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let request = store.until(Instant::now() + Duration::from_secs(3));
    /// let v1 = request.insert("a", 1).unwrap();
    /// request.update(&"a", &v1, 2).unwrap();
    /// ```
    #[inline]
    pub fn until(&self, deadline: Instant) -> Bounded<'_, K, V, S, H> {
        Bounded::new(self, Limit::At(deadline))
    }

    /// A view bounded by the store's default timeout
    /// ([`StoreBuilder::default_timeout`](crate::StoreBuilder::default_timeout)), or by
    /// nothing if none was set (it can then still be cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store: verkv::Store<&str, u32> =
    ///     verkv::Store::builder().default_timeout(Duration::from_secs(3)).build();
    /// store.bounded().insert("a", 1).unwrap();
    /// ```
    #[inline]
    pub fn bounded(&self) -> Bounded<'_, K, V, S, H> {
        let limit = self.default_timeout.map_or(Limit::Never, Limit::After);
        Bounded::new(self, limit)
    }

    /// A view whose writes give their records `ttl` to live (a per-write time-to-live),
    /// whatever the store's [expiry settings](crate::StoreBuilder::time_to_live) say:
    /// moka's per-entry expiry for one write, Redis's `SET ... EX`. It has no deadline;
    /// for one, start from a bounded view: `store.within(t).expiring_after(ttl)`
    /// ([`Bounded::expiring_after`]).
    ///
    /// **One shape for every write.** Every write the view offers takes the TTL the same
    /// way: [`insert`](Bounded::insert), [`insert_or_current`](Bounded::insert_or_current),
    /// [`put`](Bounded::put), [`update`](Bounded::update),
    /// [`update_with`](Bounded::update_with), [`try_update_with`](Bounded::try_update_with),
    /// `patch`, `retry_update`, and the record a
    /// [`get_or_load`](Bounded::get_or_load) loads (a hit keeps its own deadline). Its
    /// reads are plain reads; having no deadline, its operations fail only as the store's
    /// own do. The TTL counts from the write; `Duration::MAX` never expires and
    /// `Duration::ZERO` stores the record already expired (see
    /// [`StoreBuilder::time_to_live`](crate::StoreBuilder::time_to_live) for what expiry
    /// means). A store without expiry settings starts keeping time in a shard the first
    /// time such a write reaches it: that write first gives every record of the shard the
    /// per-record state a timer needs (8 bytes more each, which a store built without a
    /// bound or expiry does without), moving them all into a new table under the shard's
    /// write lock. That is O(n) in the shard's records, once per shard; a store that
    /// will use per-write time-to-lives on most shards can pay it up front, empty, with
    /// an expiry setting that expires nothing:
    /// [`time_to_live(Duration::MAX)`](crate::StoreBuilder::time_to_live).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{ManualClock, Store};
    ///
    /// let clock = ManualClock::new();
    /// let store: Store<&str, u32> = Store::builder().clock(clock.clone()).build();
    /// store.expiring_after(Duration::from_secs(5)).insert("otp", 123456).unwrap();
    /// store.insert("name", 7).unwrap(); // no expiry
    /// clock.advance(Duration::from_secs(5));
    /// assert!(store.get(&"otp").is_none());
    /// assert!(store.get(&"name").is_some());
    /// ```
    #[inline]
    pub fn expiring_after(&self, ttl: Duration) -> Bounded<'_, K, V, S, H> {
        Bounded::new(self, Limit::Never).expiring_after(ttl)
    }
}

/// A view of a [`Store`] whose operations give up at a deadline or on cancellation,
/// made by [`Store::within`], [`Store::until`] or [`Store::bounded`].
///
/// It has the store's operations with the same meaning. Each returns an error instead of
/// waiting past its deadline, and an operation that gives up **has had no effect**.
/// Reads return [`Interrupted`]; writes fold it into their usual error
/// ([`Error::TimedOut`], [`Error::Cancelled`]) and hand any value back.
pub struct Bounded<'a, K, V, S: VersionScheme = Counter, H = DefaultHashBuilder> {
    store: &'a Store<K, V, S, H>,
    budget: Budget<'a>,
}

impl<K, V, S: VersionScheme, H> fmt::Debug for Bounded<'_, K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bounded")
            .field("limit", &self.budget.limit)
            .field("cancel", &self.budget.cancel)
            .finish_non_exhaustive()
    }
}

impl<'a, K, V, S: VersionScheme, H> Bounded<'a, K, V, S, H> {
    fn new(store: &'a Store<K, V, S, H>, limit: Limit) -> Self {
        Bounded {
            store,
            budget: Budget {
                limit,
                cancel: None,
                time_to_live: None,
            },
        }
    }

    /// Also gives up, with no effect, once `token` is cancelled (checked before each
    /// operation starts and while it waits). The view borrows the token.
    pub fn with_cancel(mut self, token: &'a CancelToken) -> Self {
        self.budget.cancel = Some(token);
        self
    }

    /// The same view, with writes that give their records `ttl` to live: see
    /// [`Store::expiring_after`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let request = store.within(Duration::from_millis(50)).expiring_after(Duration::from_secs(30));
    /// let v1 = request.put("token", 1).unwrap();
    /// request.update(&"token", &v1, 2).unwrap(); // lives 30 s from this write
    /// ```
    #[inline]
    pub fn expiring_after(mut self, ttl: Duration) -> Self {
        self.budget.time_to_live = Some(ttl);
        self
    }

    pub(crate) fn store(&self) -> &'a Store<K, V, S, H> {
        self.store
    }

    pub(crate) fn budget(&self) -> &Budget<'a> {
        &self.budget
    }
}

impl<K, V, S, H> Bounded<'_, K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// As [`Store::get`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if the deadline passed or the token was cancelled while queued.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Result<Option<Versioned<V, S::Version>>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.store.get_in(&self.budget, key)
    }

    /// As [`Store::version`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`get`](Bounded::get).
    #[inline]
    pub fn version<Q>(&self, key: &Q) -> Result<Option<S::Version>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store.version_in(&self.budget, key)
    }

    /// As [`Store::contains_key`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`get`](Bounded::get).
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> Result<bool, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store.contains_key_in(&self.budget, key)
    }

    /// As [`Store::insert`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`Store::insert`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
    #[inline]
    pub fn insert(&self, key: K, value: V) -> Result<S::Version, Rejected<V, S::Version>> {
        self.store.insert_in(&self.budget, key, value)
    }

    /// As [`Store::insert_or_current`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`Store::insert_or_current`]; [`NotInserted::Refused`] also with
    /// [`Error::TimedOut`] and [`Error::Cancelled`], with the value handed back.
    #[inline]
    pub fn insert_or_current(
        &self,
        key: K,
        value: V,
    ) -> Result<S::Version, NotInserted<V, S::Version>>
    where
        V: Clone,
    {
        self.store.insert_or_current_in(&self.budget, key, value)
    }

    /// As [`Store::put`] (the blind write), within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`Store::put`], plus [`Error::TimedOut`] and [`Error::Cancelled`], with the value
    /// handed back.
    #[inline]
    pub fn put(&self, key: K, value: V) -> Result<S::Version, Rejected<V, S::Version>> {
        self.store.put_in(&self.budget, key, value)
    }

    /// As [`Store::update`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`Store::update`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
    #[inline]
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
        self.store.update_in(&self.budget, key, expected, value)
    }

    /// As [`Store::update_with`], within the view's deadline. The deadline bounds the
    /// wait for the lock; once `compute` runs, the operation completes.
    ///
    /// # Errors
    ///
    /// As [`Store::update_with`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
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
        self.store
            .update_with_in(&self.budget, key, expected, |current: &V| {
                Ok::<_, Infallible>(compute(current))
            })
            .map_err(Error::from)
    }

    /// As [`Store::try_update_with`], within the view's deadline. The deadline bounds the
    /// wait for the lock; once `compute` runs, the operation completes.
    ///
    /// # Errors
    ///
    /// As [`Store::try_update_with`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
    #[inline]
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
        self.store
            .update_with_in(&self.budget, key, expected, compute)
    }

    /// As [`Store::remove`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`Store::remove`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
    #[inline]
    pub fn remove<Q>(&self, key: &Q, expected: &S::Version) -> Result<V, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store.remove_in(&self.budget, key, expected)
    }

    /// As [`Store::invalidate`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// [`Interrupted`]: the deadline passed or the token was cancelled before the removal
    /// started; nothing was removed.
    #[inline]
    pub fn invalidate<Q>(&self, key: &Q) -> Result<Option<Versioned<V, S::Version>>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store.invalidate_in(&self.budget, key)
    }
}
