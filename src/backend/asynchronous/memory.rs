//! [`AsyncVersionedStore`] for the in-memory [`Store`]: each operation tries its shard
//! lock without waiting ([`TryOnce`]) and, while another operation holds it, awaits and
//! tries again, so that no executor thread blocks behind an `update_with` closure or a
//! patch that runs long. A free lock (the common case) costs one try: the operation
//! completes when first polled.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use super::pause::{between_attempts, within};
use super::{retry_loop, AsyncVersionedStore};
use crate::backend::{Context, ReadResult};
use crate::deadline::{Attempt, Interrupted, Phase, TimedOut, TryOnce};
use crate::store::{
    count_stop, Committed, Error, LockedShard, ReadMany, Rejected, Store, Transaction,
    TransactionError, TransactionRefused, UpdateWithError, Versioned, WrittenOrHandedBack,
};
use crate::version::VersionScheme;
use crate::wait::Retried;

/// Whether a store error from an operation on a [`TryOnce`] says its lock was busy: such
/// an operation has no deadline, so a timeout (queued) is the busy lock.
fn busy<Ver>(error: &Error<Ver>) -> bool {
    matches!(error, Error::TimedOut(_))
}

/// Runs `attempt` (one try of an operation on a [`TryOnce`]; `None` if a lock was busy
/// and nothing was done) until it gets through, pausing between tries, or until the
/// context's deadline passes while a lock is busy: a timeout, queued, counted in
/// `shard`'s statistics as the blocking face counts it (an operation on several shards
/// counts it in its first key's). A cancelled token stops the next try.
async fn without_blocking<K, V, S: VersionScheme, T>(
    ctx: &Context<'_>,
    shard: &LockedShard<K, V, S>,
    mut attempt: impl FnMut(&TryOnce<'_>) -> Option<T>,
) -> Result<T, Interrupted> {
    let once = TryOnce {
        cancel: ctx.cancel_token(),
    };
    // The clock is read only once a try finds the lock busy.
    let mut started = None;
    let mut tries = 0;
    loop {
        if let Some(done) = attempt(&once) {
            return Ok(done);
        }
        let started = *started.get_or_insert_with(Instant::now);
        if ctx
            .deadline()
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            let late = Interrupted::TimedOut(TimedOut::new(Phase::Queued, started.elapsed()));
            count_stop(shard, late);
            return Err(late);
        }
        between_attempts(ctx, tries).await;
        tries += 1;
    }
}

/// A write of `key` and `value` (kept in `input` between tries) that takes both and
/// hands them back with a wait's error: tried until its lock is free.
async fn write_owned<K, V, S: VersionScheme>(
    ctx: &Context<'_>,
    shard: &LockedShard<K, V, S>,
    key: K,
    value: V,
    write: impl Fn(&TryOnce<'_>, K, V) -> WrittenOrHandedBack<K, V, S::Version, Attempt>,
) -> Written<V, S::Version> {
    let mut input = Some((key, value));
    let written = without_blocking(ctx, shard, |once| {
        let (key, value) = input.take()?;
        match write(once, key, value) {
            Err((Attempt::Busy, key, value)) => {
                input = Some((key, value));
                None
            }
            Err((stop, _, value)) => Some(Err(Rejected::not_started((stop, value)))),
            Ok(written) => Some(written),
        }
    })
    .await;
    written.unwrap_or_else(|stop| match input {
        Some((_, value)) => Err(Rejected::not_started((stop, value))),
        None => unreachable!("a write that did not get through keeps its input"),
    })
}

/// What a write that hands its value back answers.
type Written<V, Ver> = Result<Ver, Rejected<V, Ver>>;

impl<K, V, S, H> AsyncVersionedStore<K, V> for Store<K, V, S, H>
where
    K: Hash + Eq + Send + Sync,
    V: Clone + Send + Sync,
    S: VersionScheme,
    H: BuildHasher + Sync,
    Self: Sync,
{
    type Version = S::Version;

    async fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        let (_, shard) = self.locate(key);
        let read = without_blocking(ctx, shard, |once| match self.get_in(once, key) {
            Err(Attempt::Busy) => None,
            Err(Attempt::Cancelled) => Some(Err(Error::Cancelled)),
            Ok(found) => Some(Ok(found)),
        })
        .await;
        read.unwrap_or_else(|stop| Err(stop.into()))
    }

    async fn insert(&self, ctx: &Context<'_>, key: K, value: V) -> Written<V, S::Version> {
        let (_, shard) = self.locate(&key);
        write_owned(ctx, shard, key, value, |once, key, value| {
            self.insert_or_back_in(once, key, value)
        })
        .await
    }

    async fn put(&self, ctx: &Context<'_>, key: K, value: V) -> Written<V, S::Version> {
        let (_, shard) = self.locate(&key);
        write_owned(ctx, shard, key, value, |once, key, value| {
            self.put_or_back_in(once, key, value)
        })
        .await
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Written<V, S::Version> {
        let (_, shard) = self.locate(key);
        let mut value = Some(value);
        let written = without_blocking(ctx, shard, |once| {
            match self.update_in(once, key, expected, value.take()?) {
                Err(refused) if busy(&refused.error) => {
                    value = Some(refused.value);
                    None
                }
                answered => Some(answered),
            }
        })
        .await;
        written.unwrap_or_else(|stop| match value {
            Some(value) => Err(Rejected::not_started((stop, value))),
            None => unreachable!("a write that did not get through keeps its value"),
        })
    }

    async fn try_update_with<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E> + Send,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        let (_, shard) = self.locate(key);
        // Kept here between tries: a try that finds the lock busy does not run it.
        let mut compute = Some(compute);
        let written = without_blocking(ctx, shard, |once| {
            let updated =
                self.update_with_in(once, key, expected, |current: &V| match compute.take() {
                    Some(compute) => compute(current),
                    None => unreachable!("the closure runs at most once"),
                });
            match updated {
                Err(UpdateWithError::Store(error)) if busy(&error) => None,
                answered => Some(answered),
            }
        })
        .await;
        written.unwrap_or_else(|stop| Err(UpdateWithError::Store(stop.into())))
    }

    async fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>> {
        let (_, shard) = self.locate(key);
        let removed = without_blocking(ctx, shard, |once| {
            match self.remove_in(once, key, expected) {
                Err(error) if busy(&error) => None,
                answered => Some(answered),
            }
        })
        .await;
        removed.unwrap_or_else(|stop| Err(stop.into()))
    }

    /// Its shards' read locks, all at once or none: while one is busy it holds none of
    /// them and awaits. Dropped, it has done nothing.
    async fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        let Some(first) = keys.first() else {
            return Ok(Vec::new());
        };
        let (_, shard) = self.locate(first);
        let keys: Vec<&K> = keys.iter().collect();
        let read = without_blocking(ctx, shard, |once| match self.get_many_in(once, &keys) {
            Err(Attempt::Busy) => None,
            Err(Attempt::Cancelled) => Some(Err(Error::Cancelled)),
            Ok(found) => Some(Ok(found)),
        })
        .await;
        read.unwrap_or_else(|stop| Err(stop.into()))
    }

    /// Its shards' write locks, all at once or none: while one is busy it holds none of
    /// them and awaits. It takes effect within one poll, under every lock: dropped before
    /// that poll it has done nothing, after it the future was complete.
    async fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        let Some(step) = transaction.steps.first() else {
            return self.commit(transaction);
        };
        let (_, shard) = self.locate(step.key());
        // Kept here between tries, with the number of shards it needs once known.
        let mut input = Some(transaction);
        let mut shards = 0;
        let committed = without_blocking(ctx, shard, |once| {
            match self.commit_in(once, input.take()?) {
                Err(TransactionRefused {
                    error:
                        TransactionError::Interrupted {
                            stopped: Interrupted::TimedOut(_),
                            shards: needed,
                            ..
                        },
                    transaction,
                }) => {
                    // A busy lock: a [`TryOnce`] has no deadline.
                    shards = needed;
                    input = Some(transaction);
                    None
                }
                answered => Some(answered),
            }
        })
        .await;
        committed.unwrap_or_else(|stopped| match input {
            Some(transaction) => Err(TransactionRefused {
                error: TransactionError::Interrupted {
                    stopped,
                    locked: 0,
                    shards,
                },
                transaction,
            }),
            None => unreachable!("a transaction that did not get through is kept"),
        })
    }

    async fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        Ok(self.view(ctx).changed(key, seen).await?)
    }

    /// The trait's loop, with a deadline or cancellation between two attempts counted
    /// in the key's shard's statistics, as the blocking face counts it.
    async fn try_retry_update<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        compute: impl FnMut(&V) -> Result<V, E> + Send,
    ) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>> {
        let (_, shard) = self.locate(key);
        retry_loop(self, ctx, key, compute, |stop| count_stop(shard, stop)).await
    }

    /// The store's single flight: concurrent misses of `key` run one loader; the
    /// context's deadline and token stop the wait for it (and a load of this caller's
    /// own, which is then abandoned, as when its future is dropped).
    ///
    /// Its first look (a hit, or a load to join) takes the shard's read lock as the
    /// blocking face does, so a writer holding that lock holds it up for the rest of its
    /// critical section; the wait for a load is awaited.
    async fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: K,
        load: impl Future<Output = V> + Send,
    ) -> Result<Versioned<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
        V: Clone + Sync,
    {
        Ok(within(ctx, Phase::Loading, self.get_or_load_async(key, load)).await?)
    }
}
