//! One interface over where the records live: [`VersionedStore`], implemented by the
//! in-memory [`Store`](crate::Store) and, with the `postgres` feature, by
//! [`PgStore`](crate::postgres::PgStore); and its async face [`AsyncVersionedStore`],
//! implemented by the in-memory store and, with the `postgres-async` feature, by
//! `AsyncPgStore`.
//!
//! Code written against the trait moves from one process to several by changing the
//! constructor. The answers keep their meaning across backends: [`Error::NotFound`] vs
//! [`Error::Stale`] (with the current version), [`Error::Exists`], [`Error::TimedOut`]
//! with the phase it happened in, [`Error::Cancelled`]. A backend reached over a network
//! adds [`Error::Unavailable`] (nothing happened; worth retrying) and
//! [`Error::OutcomeUnknown`] (a write was sent and the connection died before its answer:
//! it may have happened), and one that stores records in another form adds
//! [`Error::BadRecord`] (a record that does not convert to or from the store's types;
//! not worth retrying). [`Error::Misconfigured`] says the backend refuses the store's
//! settings (not worth retrying either).

#[cfg(not(verkv_loom))]
mod asynchronous;
mod context;
mod created;
mod memory;
#[cfg(feature = "postgres")]
pub mod near;
#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(not(verkv_loom))]
pub use asynchronous::AsyncVersionedStore;
pub use context::Context;

use std::convert::Infallible;
use std::fmt::{Debug, Display};
use std::future::ready;
use std::hash::Hash;

use crate::deadline::Wait;
use crate::store::Versioned;
use crate::store::{Committed, ReadMany, Transaction, TransactionRefused};
use crate::store::{Error, Rejected, UpdateWithError};
use crate::sync::Backoff;
use crate::wait::{completed, optimistic, optimistic_transaction, Retried};
use crate::wait::{TransactError, Transacted};
use created::read_or_create;

/// What a read of a [`VersionedStore`] answers: the record (value and version) if there
/// is one, or why it could not be read.
pub type ReadResult<V, Ver> = Result<Option<Versioned<V, Ver>>, Error<Ver>>;

/// A versioned key-value store: every record carries a version, and conditional writes
/// name the version they read (optimistic concurrency control).
///
/// Every operation takes a [`Context`]: its deadline (which also covers the time spent
/// queued before the operation starts) and an optional cancel token. An operation that
/// times out or is cancelled has had no effect.
///
/// The store's own inherent methods take no context; call the trait's through a generic
/// parameter, or as `VersionedStore::get(&store, &ctx, &key)`.
///
/// # Consistency
///
/// Per key, every operation is linearizable, and the versions a key gets never repeat,
/// not even after it is removed and created again. Of several writers that read one
/// version, exactly one conditional write succeeds.
///
/// # Examples
///
/// ```
/// use verkv::{Context, Error, Store, VersionedStore};
///
/// // Works the same on any backend.
/// fn like<S: VersionedStore<String, u32>>(store: &S, id: &str) -> Result<S::Version, Error<S::Version>> {
///     let ctx = Context::within(std::time::Duration::from_millis(500));
///     let key = id.to_string();
///     loop {
///         let Some(read) = store.get(&ctx, &key)? else { return Err(Error::NotFound) };
///         match store.update(&ctx, &key, &read.version, read.value + 1) {
///             Err(refused) if matches!(refused.error, Error::Stale { .. }) => continue,
///             other => return other.map_err(Error::from),
///         }
///     }
/// }
///
/// let store: Store<String, u32> = Store::new();
/// store.insert("heat".to_string(), 0).unwrap();
/// like(&store, "heat").unwrap();
/// assert_eq!(store.get("heat").unwrap().value, 1);
/// ```
pub trait VersionedStore<K, V> {
    /// The version type: compared for equality, shown to clients with `Display`.
    type Version: Clone + Eq + Hash + Debug + Display + Send + Sync + 'static;

    /// Reads the record of `key`: value and version together, or `None` if absent.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`], [`Error::Cancelled`], [`Error::Unavailable`],
    /// [`Error::BadRecord`], [`Error::Misconfigured`].
    fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, Self::Version>;

    /// Creates the record of `key`, only if it is absent (`If-None-Match: *`); returns its
    /// version.
    ///
    /// # Errors
    ///
    /// [`Error::Exists`] with the current version; [`Error::TimedOut`],
    /// [`Error::Cancelled`], [`Error::Unavailable`], [`Error::OutcomeUnknown`],
    /// [`Error::BadRecord`], [`Error::Misconfigured`]. The value is handed back.
    fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>>;

    /// Replaces the value of `key` if the record is still at `expected` (compare-and-swap);
    /// returns the new version.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Stale`] with the current version, and the errors of
    /// [`insert`](VersionedStore::insert) other than `Exists`. The value is handed back.
    fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>>;

    /// Read-modify-write under the version check: if the record is at `expected`,
    /// `compute` makes the new value from the current one (at most once), and it is
    /// written only if the record is still at `expected`. As
    /// [`Store::update_with`](crate::Store::update_with), a closure that cannot refuse;
    /// [`try_update_with`](VersionedStore::try_update_with) takes one that can.
    ///
    /// # Errors
    ///
    /// As [`update`](VersionedStore::update).
    fn update_with(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        compute: impl FnOnce(&V) -> V,
    ) -> Result<Self::Version, Error<Self::Version>> {
        self.try_update_with(ctx, key, expected, |current| {
            Ok::<_, Infallible>(compute(current))
        })
        .map_err(Error::from)
    }

    /// As [`update_with`](VersionedStore::update_with), with a `compute` that may refuse.
    ///
    /// # Errors
    ///
    /// As [`update`](VersionedStore::update), or [`UpdateWithError::Closure`] if `compute`
    /// refused; nothing was written then.
    fn try_update_with<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<Self::Version, UpdateWithError<Self::Version, E>>;

    /// Removes the record of `key` if it is still at `expected`; returns its value.
    ///
    /// # Errors
    ///
    /// As [`update`](VersionedStore::update).
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
    ) -> Result<V, Error<Self::Version>>;

    /// The blind write: stores `value` whatever is there (the write that can lose
    /// updates); returns the new version.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`], [`Error::Cancelled`], [`Error::Unavailable`],
    /// [`Error::OutcomeUnknown`], [`Error::BadRecord`], [`Error::Misconfigured`], with the
    /// value handed back.
    fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>>;

    /// The records of `keys`, all as of one instant (no write and no transaction falls
    /// between two of them), in the order of `keys`; `None` for a key without one. The
    /// read set of a transaction, as [`Store::get_many`](crate::Store::get_many).
    ///
    /// # Errors
    ///
    /// As [`get`](VersionedStore::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Context, Store, VersionedStore};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// store.insert("a", 1).unwrap();
    /// let read = VersionedStore::get_many(&store, &Context::background(), &["a", "b"]).unwrap();
    /// assert_eq!(read[0].as_ref().map(|a| (a.value, a.version)), Some((1, 1)));
    /// assert!(read[1].is_none());
    /// ```
    fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, Self::Version>, Error<Self::Version>>
    where
        K: Clone;

    /// Applies every step of `transaction` if every condition holds, and otherwise
    /// nothing (compare-and-swap across keys, as [`Store::commit`](crate::Store::commit));
    /// returns what each step did, in the order of the steps: a write's new version.
    ///
    /// The transaction takes effect at one instant on every backend. The context's
    /// deadline covers the wait for every lock it takes; a transaction that times out or
    /// is cancelled has had no effect.
    ///
    /// # Errors
    ///
    /// The transaction comes back in a [`TransactionRefused`], unapplied, with
    /// [`TransactionError::Conflict`](crate::TransactionError::Conflict) naming every
    /// condition that failed and the key's current version;
    /// [`Empty`](crate::TransactionError::Empty) or
    /// [`Repeated`](crate::TransactionError::Repeated) for bad input;
    /// [`Interrupted`](crate::TransactionError::Interrupted) if the deadline passed or the
    /// token was cancelled; the in-memory store's own refusals
    /// ([`TooHeavy`](crate::TransactionError::TooHeavy),
    /// [`Reentrant`](crate::TransactionError::Reentrant)); and a networked backend's
    /// failures in [`Failed`](crate::TransactionError::Failed) (of which only
    /// [`Error::OutcomeUnknown`] may have been applied).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Context, Outcome, Store, Transaction, VersionedStore};
    ///
    /// // Works the same on any backend.
    /// fn transfer<S: VersionedStore<&'static str, i64>>(store: &S, amount: i64) -> bool {
    ///     let ctx = Context::within(std::time::Duration::from_millis(500));
    ///     let (Some(from), Some(to)) = (
    ///         store.get(&ctx, &"alice").unwrap(),
    ///         store.get(&ctx, &"bob").unwrap(),
    ///     ) else {
    ///         return false;
    ///     };
    ///     let moved = Transaction::new()
    ///         .update("alice", from.version, from.value - amount)
    ///         .update("bob", to.version, to.value + amount);
    ///     store.commit(&ctx, moved).is_ok()
    /// }
    ///
    /// let store: Store<&str, i64> = Store::new();
    /// store.insert("alice", 100).unwrap();
    /// store.insert("bob", 0).unwrap();
    /// assert!(transfer(&store, 30));
    /// assert_eq!((store.get("alice").unwrap().value, store.get("bob").unwrap().value), (70, 30));
    /// ```
    fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, Self::Version>,
    ) -> Result<Committed<Self::Version>, TransactionRefused<K, V, Self::Version>>
    where
        K: Clone;

    /// The optimistic transaction on any backend, as [`Store::transact`](crate::Store::transact):
    /// reads `keys` at one instant ([`get_many`](VersionedStore::get_many)), lets `compute`
    /// build a [`Transaction`] from what it read, and commits it on condition that every
    /// key read is still as read; on a conflict, pauses (a short backoff) and reads again,
    /// until it commits or the context's deadline passes. `compute` may run several times:
    /// derive the transaction from its argument only.
    ///
    /// Provided for every backend, on top of [`get_many`](VersionedStore::get_many) and
    /// [`commit`](VersionedStore::commit).
    ///
    /// # Errors
    ///
    /// [`TransactError::Closure`] with `compute`'s error; [`TransactError::Transaction`]
    /// with [`Interrupted`](crate::TransactionError::Interrupted) if the deadline passed
    /// (in phase [`Retrying`](crate::Phase::Retrying) after refused attempts) or the token
    /// was cancelled, with [`Failed`](crate::TransactionError::Failed) if the backend
    /// failed, or with the store's refusal of a transaction for another reason than a
    /// conflict. Nothing was written then (but see [`Error::OutcomeUnknown`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Context, Store, Transaction, VersionedStore};
    ///
    /// // Works the same on any backend.
    /// fn transfer<S: VersionedStore<&'static str, i64>>(store: &S, amount: i64) -> u32 {
    ///     let ctx = Context::within(std::time::Duration::from_millis(500));
    ///     let done = store.transact(&ctx, &["alice", "bob"], |read| {
    ///         let (Some(alice), Some(bob)) = (&read[0], &read[1]) else {
    ///             return Err("no such account");
    ///         };
    ///         Ok(Transaction::new().put("alice", alice.value - amount).put("bob", bob.value + amount))
    ///     });
    ///     done.unwrap().attempts
    /// }
    ///
    /// let store: Store<&str, i64> = Store::new();
    /// store.insert("alice", 100).unwrap();
    /// store.insert("bob", 0).unwrap();
    /// assert_eq!(transfer(&store, 30), 1);
    /// assert_eq!(store.get(&"bob").unwrap().value, 30);
    /// ```
    fn transact<E>(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
        compute: impl FnMut(
            &[Option<Versioned<V, Self::Version>>],
        ) -> Result<Transaction<K, V, Self::Version>, E>,
    ) -> Result<Transacted<Self::Version>, TransactError<K, Self::Version, E>>
    where
        K: Clone + Eq,
    {
        let budget = ctx.budget();
        let backoff = Backoff::new();
        completed(optimistic_transaction(
            keys,
            || ready(self.get_many(ctx, keys)),
            |transaction| ready(self.commit(ctx, transaction)),
            compute,
            |started, attempts| {
                let between = budget.between_attempts(started, attempts);
                backoff.snooze();
                ready(between)
            },
        ))
    }

    /// Blocks until the record of `key` is at another version than `seen` (`None`: until
    /// it exists), then returns its state (`None` if it was removed). Returns at once if
    /// it already differs.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] (phase [`Watching`](crate::Phase::Watching)) if nothing changed
    /// before the deadline, [`Error::Cancelled`], [`Error::Unavailable`],
    /// [`Error::BadRecord`], [`Error::Misconfigured`].
    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&Self::Version>,
    ) -> ReadResult<V, Self::Version>;

    /// The optimistic loop, as [`Store::retry_update`](crate::Store::retry_update): reads
    /// the record, computes a new value from it, and writes it if the record is still at
    /// the version read; if somebody wrote in between, pauses (a short backoff) and tries
    /// again, until it succeeds or the context's deadline passes. `compute` may run
    /// several times: derive the new value from its argument only.
    ///
    /// Provided for every backend, on top of [`get`](VersionedStore::get) and
    /// [`update`](VersionedStore::update).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the key has (or comes to have) no record;
    /// [`Error::TimedOut`] (phase [`Retrying`](crate::Phase::Retrying) between attempts,
    /// with their count), [`Error::Cancelled`], and the errors of
    /// [`update`](VersionedStore::update) other than `Stale`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{Context, Store, VersionedStore};
    ///
    /// fn like<S: VersionedStore<String, u32>>(store: &S, id: &str) -> u32 {
    ///     let ctx = Context::within(Duration::from_millis(500));
    ///     let done = store.retry_update(&ctx, &id.to_string(), |likes| likes + 1).unwrap();
    ///     done.attempts
    /// }
    ///
    /// let store: Store<String, u32> = Store::new();
    /// store.insert("heat".to_string(), 0).unwrap();
    /// assert_eq!(like(&store, "heat"), 1);
    /// assert_eq!(store.get("heat").unwrap().value, 1);
    /// ```
    fn retry_update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        mut compute: impl FnMut(&V) -> V,
    ) -> Result<Retried<Self::Version>, Error<Self::Version>> {
        self.try_retry_update(ctx, key, |current: &V| {
            Ok::<V, Infallible>(compute(current))
        })
        .map_err(Error::from)
    }

    /// As [`retry_update`](VersionedStore::retry_update), with a `compute` that may
    /// refuse: its error stops the loop, and nothing is written.
    ///
    /// # Errors
    ///
    /// As [`retry_update`](VersionedStore::retry_update), or
    /// [`UpdateWithError::Closure`] if `compute` refused.
    fn try_retry_update<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        compute: impl FnMut(&V) -> Result<V, E>,
    ) -> Result<Retried<Self::Version>, UpdateWithError<Self::Version, E>> {
        let budget = ctx.budget();
        optimistic(
            || self.get(ctx, key),
            |expected, value| self.update(ctx, key, expected, value),
            compute,
            |started, attempts| Ok(budget.between_attempts(started, attempts)?),
        )
    }

    /// The record of `key`; on a miss, `load` computes its value, which is created with
    /// a fresh version (create-only: a writer that creates the key first wins, and its
    /// record is returned instead). moka calls this `get_with`.
    ///
    /// The provided form may run `load` in several callers that miss at the same time
    /// (one of them creates the record, and all get that record); the in-memory
    /// [`Store`](crate::Store) runs one loader per key at a time (a single flight, as
    /// [`Store::get_or_load`](crate::Store::get_or_load)). A loader that can fail belongs
    /// before the call: read with [`get`](VersionedStore::get), load, then
    /// [`insert`](VersionedStore::insert).
    ///
    /// # Errors
    ///
    /// The errors of [`get`](VersionedStore::get) and
    /// [`insert`](VersionedStore::insert) other than `Exists`; nothing was written then
    /// (or, for [`Error::OutcomeUnknown`], maybe the loaded record was).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Context, Store, VersionedStore};
    ///
    /// let store: Store<u32, String> = Store::new();
    /// let ctx = Context::background();
    /// let user = VersionedStore::get_or_load(&store, &ctx, 7, || "Ada".to_string()).unwrap();
    /// assert_eq!((user.value.as_str(), user.version), ("Ada", 1));
    /// ```
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: K,
        load: impl FnOnce() -> V,
    ) -> Result<Versioned<V, Self::Version>, Error<Self::Version>>
    where
        K: Clone,
        V: Clone,
    {
        completed(read_or_create(
            key,
            |key| ready(self.get(ctx, &key)),
            |key, value| ready(self.insert(ctx, key, value)),
            async move { load() },
        ))
    }
}
