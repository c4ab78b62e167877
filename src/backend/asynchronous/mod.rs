//! [`AsyncVersionedStore`]: the operations of [`VersionedStore`](super::VersionedStore)
//! as futures, for services on an async runtime, implemented by the in-memory
//! [`Store`](crate::Store) and, with the `postgres-async` feature, by `AsyncPgStore`
//! (whose futures need a tokio runtime, and whose cancellation contract is in its
//! module's documentation: a write dropped while its statement runs is cancelled on the
//! server, or has committed whole).
//!
//! A future of this trait never blocks its executor thread on another operation: where
//! the blocking face would wait (for a shard lock another operation holds, for a change,
//! for another caller's load, between two attempts of the retry loop), it awaits. The
//! in-memory store's operations complete when first polled unless they would wait. The
//! futures are `Send`; the in-memory store's need no particular runtime.
//!
//! # Dropping a future
//!
//! Every operation is cancellation-safe: a future dropped before it completed has had
//! no effect, or its whole effect, never part of it. In the in-memory store a write
//! takes effect within one poll, under its shard lock: dropped before that poll, it
//! wrote nothing; after it, the future was complete. A transaction (`commit`) takes
//! effect the same way, within one poll, under every lock it needs; while one of them is
//! busy it holds none and awaits. A dropped `retry_update` or `transact` may have written
//! in its last poll only if that poll completed it. A dropped `get_or_load`
//! whose loader was running abandons that load (nothing is written; callers waiting for
//! it start their own).

mod memory;
pub(crate) mod pause;

use std::convert::Infallible;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;

use super::created::read_or_create;
use super::{Context, ReadResult};
use crate::deadline::{Interrupted, Wait};
use crate::store::{
    Committed, Error, ReadMany, Rejected, Transaction, TransactionRefused, UpdateWithError,
    Versioned,
};
use crate::wait::{optimistic_transaction, Attempts, Next, Retried, TransactError, Transacted};

/// A versioned key-value store whose operations are futures: the async face of
/// [`VersionedStore`](super::VersionedStore), with the same operations, answers and
/// [`Context`] (deadline and cancel token).
///
/// The deadline covers the whole operation, time awaited included; an operation that
/// times out or is cancelled has had no effect (except a write a networked backend
/// answers with [`Error::OutcomeUnknown`]), and one whose future is dropped before it
/// completes has had no effect or its whole effect, never part of it (the module
/// documentation, and each backend's, say which per operation).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{AsyncVersionedStore, Context, Store};
///
/// // Works the same on any async backend.
/// async fn like<S: AsyncVersionedStore<String, u32>>(store: &S, id: &str) -> u32 {
///     let ctx = Context::within(Duration::from_millis(500));
///     let done = store.retry_update(&ctx, &id.to_string(), |likes| likes + 1).await;
///     done.unwrap().attempts
/// }
///
/// # futures_lite::future::block_on(async {
/// let store: Store<String, u32> = Store::new();
/// store.insert("heat".to_string(), 0).unwrap();
/// assert_eq!(like(&store, "heat").await, 1);
/// assert_eq!(store.get("heat").unwrap().value, 1);
/// # });
/// ```
pub trait AsyncVersionedStore<K, V>: Sync
where
    K: Send + Sync,
    V: Send,
{
    /// The version type: compared for equality, shown to clients with `Display`.
    type Version: Clone + Eq + Hash + Debug + Display + Send + Sync + 'static;

    /// As [`VersionedStore::get`](super::VersionedStore::get).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::get`](super::VersionedStore::get).
    fn get(
        &self,
        ctx: &Context<'_>,
        key: &K,
    ) -> impl Future<Output = ReadResult<V, Self::Version>> + Send;

    /// As [`VersionedStore::insert`](super::VersionedStore::insert).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::insert`](super::VersionedStore::insert).
    fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> impl Future<Output = Result<Self::Version, Rejected<V, Self::Version>>> + Send;

    /// As [`VersionedStore::update`](super::VersionedStore::update).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::update`](super::VersionedStore::update).
    fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        value: V,
    ) -> impl Future<Output = Result<Self::Version, Rejected<V, Self::Version>>> + Send;

    /// As [`VersionedStore::update_with`](super::VersionedStore::update_with).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::update`](super::VersionedStore::update).
    fn update_with(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        compute: impl FnOnce(&V) -> V + Send,
    ) -> impl Future<Output = Result<Self::Version, Error<Self::Version>>> + Send {
        async move {
            self.try_update_with(ctx, key, expected, |current| {
                Ok::<_, Infallible>(compute(current))
            })
            .await
            .map_err(Error::from)
        }
    }

    /// As [`VersionedStore::try_update_with`](super::VersionedStore::try_update_with).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::try_update_with`](super::VersionedStore::try_update_with).
    fn try_update_with<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        compute: impl FnOnce(&V) -> Result<V, E> + Send,
    ) -> impl Future<Output = Result<Self::Version, UpdateWithError<Self::Version, E>>> + Send;

    /// As [`VersionedStore::remove`](super::VersionedStore::remove).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::remove`](super::VersionedStore::remove).
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
    ) -> impl Future<Output = Result<V, Error<Self::Version>>> + Send;

    /// As [`VersionedStore::put`](super::VersionedStore::put).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::put`](super::VersionedStore::put).
    fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> impl Future<Output = Result<Self::Version, Rejected<V, Self::Version>>> + Send;

    /// As [`VersionedStore::get_many`](super::VersionedStore::get_many): the records of
    /// `keys` as of one instant, each `None` if it has none.
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::get_many`](super::VersionedStore::get_many).
    fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> impl Future<Output = Result<ReadMany<V, Self::Version>, Error<Self::Version>>> + Send
    where
        K: Clone;

    /// As [`VersionedStore::commit`](super::VersionedStore::commit): every step of
    /// `transaction` applied at one instant if every condition holds, and otherwise
    /// nothing; a wait for a lock is awaited.
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::commit`](super::VersionedStore::commit).
    fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, Self::Version>,
    ) -> impl Future<
        Output = Result<Committed<Self::Version>, TransactionRefused<K, V, Self::Version>>,
    > + Send
    where
        K: Clone;

    /// As [`VersionedStore::transact`](super::VersionedStore::transact), pausing between
    /// attempts without blocking: reads `keys` at one instant, lets `compute` build a
    /// transaction from what it read, and commits it on condition that every key read
    /// is still as read; on a conflict, reads again. Provided for every backend, on top
    /// of [`get_many`](AsyncVersionedStore::get_many) and
    /// [`commit`](AsyncVersionedStore::commit).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::transact`](super::VersionedStore::transact).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{AsyncVersionedStore, Context, Store, Transaction};
    ///
    /// # futures_lite::future::block_on(async {
    /// let store: Store<&str, i64> = Store::new();
    /// store.insert("alice", 100).unwrap();
    /// store.insert("bob", 0).unwrap();
    /// let ctx = Context::within(std::time::Duration::from_millis(500));
    /// let moved = AsyncVersionedStore::transact(&store, &ctx, &["alice", "bob"], |read| {
    ///     let (alice, bob) = (read[0].as_ref().unwrap(), read[1].as_ref().unwrap());
    ///     Ok::<_, ()>(Transaction::new().put("alice", alice.value - 30).put("bob", bob.value + 30))
    /// });
    /// assert_eq!(moved.await.unwrap().attempts, 1);
    /// assert_eq!(store.get(&"bob").unwrap().value, 30);
    /// # });
    /// ```
    fn transact<E: Send>(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
        compute: impl FnMut(
                &[Option<Versioned<V, Self::Version>>],
            ) -> Result<Transaction<K, V, Self::Version>, E>
            + Send,
    ) -> impl Future<Output = Result<Transacted<Self::Version>, TransactError<K, Self::Version, E>>> + Send
    where
        K: Clone + Eq,
    {
        let budget = ctx.budget();
        optimistic_transaction(
            keys,
            || self.get_many(ctx, keys),
            |transaction| self.commit(ctx, transaction),
            compute,
            move |started, attempts| async move {
                budget.between_attempts(started, attempts)?;
                pause::between_attempts(ctx, attempts - 1).await;
                Ok(())
            },
        )
    }

    /// As [`VersionedStore::wait_for_change`](super::VersionedStore::wait_for_change),
    /// awaiting the change instead of blocking.
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::wait_for_change`](super::VersionedStore::wait_for_change).
    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&Self::Version>,
    ) -> impl Future<Output = ReadResult<V, Self::Version>> + Send;

    /// As [`VersionedStore::retry_update`](super::VersionedStore::retry_update), pausing
    /// between attempts without blocking. Provided for every backend, on top of
    /// [`get`](AsyncVersionedStore::get) and [`update`](AsyncVersionedStore::update).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::retry_update`](super::VersionedStore::retry_update).
    fn retry_update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        mut compute: impl FnMut(&V) -> V + Send,
    ) -> impl Future<Output = Result<Retried<Self::Version>, Error<Self::Version>>> + Send {
        async move {
            self.try_retry_update(ctx, key, |current: &V| {
                Ok::<V, Infallible>(compute(current))
            })
            .await
            .map_err(Error::from)
        }
    }

    /// As [`VersionedStore::try_retry_update`](super::VersionedStore::try_retry_update),
    /// pausing between attempts without blocking.
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::try_retry_update`](super::VersionedStore::try_retry_update).
    fn try_retry_update<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        compute: impl FnMut(&V) -> Result<V, E> + Send,
    ) -> impl Future<Output = Result<Retried<Self::Version>, UpdateWithError<Self::Version, E>>> + Send
    {
        retry_loop(self, ctx, key, compute, |_| {})
    }

    /// As [`VersionedStore::get_or_load`](super::VersionedStore::get_or_load), with a
    /// loader that is a future. The provided form may run `load` in several callers
    /// that miss at the same time; the in-memory [`Store`](crate::Store) runs one per key
    /// at a time (a single flight).
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::get_or_load`](super::VersionedStore::get_or_load).
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: K,
        load: impl Future<Output = V> + Send,
    ) -> impl Future<Output = Result<Versioned<V, Self::Version>, Error<Self::Version>>> + Send
    where
        K: Clone,
        V: Clone + Sync,
    {
        async move {
            read_or_create(
                key,
                |key| async move { self.get(ctx, &key).await },
                |key, value| self.insert(ctx, key, value),
                load,
            )
            .await
        }
    }
}

/// The optimistic loop of [`AsyncVersionedStore::try_retry_update`] on `store`: read,
/// compute, compare-and-swap, and on a stale version pause and read again. `stopped` is
/// told of a deadline or cancellation that ends the loop between two attempts, for a
/// backend that counts it in its statistics.
pub(super) async fn retry_loop<K, V, S, E>(
    store: &S,
    ctx: &Context<'_>,
    key: &K,
    mut compute: impl FnMut(&V) -> Result<V, E> + Send,
    stopped: impl Fn(Interrupted) + Send,
) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>>
where
    K: Send + Sync,
    V: Send,
    S: AsyncVersionedStore<K, V> + ?Sized,
    E: Send,
{
    let budget = ctx.budget();
    let mut attempts = Attempts::new();
    loop {
        let read = attempts.read(store.get(ctx, key).await);
        let current = read.map_err(UpdateWithError::Store)?;
        let value = compute(&current.value).map_err(UpdateWithError::Closure)?;
        let written = store.update(ctx, key, &current.version, value).await;
        match attempts.written(written) {
            Next::Done(done) => return Ok(done),
            Next::Stop(error) => return Err(UpdateWithError::Store(error)),
            Next::Again { started, attempts } => {
                budget.between_attempts(started, attempts).map_err(|stop| {
                    stopped(stop);
                    UpdateWithError::Store(stop.into())
                })?;
                pause::between_attempts(ctx, attempts - 1).await;
            }
        }
    }
}
