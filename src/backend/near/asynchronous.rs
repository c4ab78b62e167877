//! The near-cache's async face: [`AsyncVersionedStore`] for a near-cache in front of an
//! [`AsyncPgStore`] ([`AsyncNearCache`]). Memory and its coherence are the blocking
//! face's (`mod.rs`), written once: reads served from memory complete when first polled,
//! a miss awaits its load (one per key, through memory's single flight), and every write
//! awaits the database. The notification connection's loop is a task of the runtime the
//! near-cache was built on.
//!
//! # Dropped futures
//!
//! A dropped future never leaves part of a write, and never leaves memory staler than a
//! notification: every write is the [`AsyncPgStore`](crate::postgres::AsyncPgStore)'s
//! (done whole or not at all, its statement cancelled on the server if it was running),
//! and memory is changed only after the database has answered. A write dropped after it
//! committed leaves memory as it was, so a copy the write made stale may be served until
//! the write's notification arrives, as after a write whose answer was lost; then it is
//! dropped. Each operation says what its dropped future has done.

use std::future::Future;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::stats::count;
use super::{copies_of, AsyncNearCache, Cached};
use crate::backend::asynchronous::pause::within;
use crate::backend::postgres::PgVersion;
use crate::backend::{AsyncVersionedStore, Context, ReadResult};
use crate::deadline::Phase;
use crate::store::{
    Committed, Error, ReadMany, Rejected, Transaction, TransactionRefused, UpdateWithError,
};
use crate::sync::{AtomicBool, Ordering};
use crate::LoadError;

impl<K, V, S> AsyncNearCache<K, V, S>
where
    K: Serialize + Hash + Eq + Clone + Send + Sync,
    V: Serialize + DeserializeOwned + Clone + Send + Sync,
    S: PgVersion,
{
    /// As [`NearCache::get_fresh`](super::NearCache::get_fresh), awaited. Dropped, it has
    /// done nothing (memory is as it was).
    ///
    /// # Errors
    ///
    /// As [`AsyncVersionedStore::get`] on the [`AsyncPgStore`](crate::postgres::AsyncPgStore).
    pub async fn get_fresh(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        count(&self.shared.counters.bypassed);
        let stamp = self.stamp();
        let record = self.db.get(ctx, key).await?;
        self.land(key.clone(), record.clone(), stamp);
        Ok(record)
    }
}

impl<K, V, S> AsyncVersionedStore<K, V> for AsyncNearCache<K, V, S>
where
    K: Serialize + Hash + Eq + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: PgVersion,
{
    type Version = S::Version;

    /// A copy from memory when it may serve one (at once), or a load of the database
    /// awaited (one per key at a time). Dropped, it has done nothing: a load it was
    /// making is given up (its statement cancelled, and a caller waiting for the same
    /// key loads it again), and nothing lands in memory.
    async fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.shared.counters.coherent.load(Ordering::SeqCst) {
            let led = AtomicBool::new(false);
            let local = &self.shared.local;
            let read = self.read_through(key, &led, || {
                let load = async {
                    led.store(true, Ordering::SeqCst);
                    let stamp = self.stamp();
                    // Boxed: each layer the load passes through (the single flight, the
                    // deadline, the attempts) would otherwise hold a copy of its state,
                    // several times the size of the database's read, on every reader's
                    // stack and in every future that awaits a read. One allocation per
                    // load, beside its round trip.
                    let record = Box::pin(self.db.get(ctx, key)).await?;
                    Ok::<_, Error<S::Version>>(Cached { record, stamp })
                };
                async {
                    match within(
                        ctx,
                        Phase::Loading,
                        local.try_get_or_load_async(key.clone(), load),
                    )
                    .await
                    {
                        Ok(Ok(copy)) => Ok(copy),
                        Ok(Err(error)) => Err(LoadError::Loader(error)),
                        Err(stopped) => Err(LoadError::Interrupted(stopped)),
                    }
                }
            });
            if let Some(answer) = read.await {
                return answer;
            }
        }
        count(&self.shared.counters.bypassed);
        self.db.get(ctx, key).await
    }

    /// The database's; dropped, it has created the record or not, and memory is as it
    /// was (a copy of the key's absence then goes with the insert's notification).
    async fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.insert(ctx, key.clone(), value).await;
        self.after_value_write(key, copy, stamp, answer)
    }

    /// The database's; dropped, it has replaced the record or not, and memory is as it
    /// was (the old copy then goes with the update's notification).
    async fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.update(ctx, key, expected, value).await;
        self.after_value_write(key.clone(), copy, stamp, answer)
    }

    /// The database's; dropped, it has replaced the record or not, and memory is as it
    /// was (the old copy then goes with the update's notification).
    async fn try_update_with<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E> + Send,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        let stamp = self.stamp();
        let mut copy = None;
        let answer = self
            .db
            .try_update_with(ctx, key, expected, |current| {
                let value = compute(current)?;
                copy = Some(value.clone());
                Ok(value)
            })
            .await;
        self.after_value_write(key.clone(), copy, stamp, answer)
    }

    /// The database's; dropped, it has removed the record or not, and memory is as it
    /// was (the old copy then goes with the removal's notification).
    async fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>> {
        let stamp = self.stamp();
        let answer = self.db.remove(ctx, key, expected).await;
        self.after_write(key.clone(), stamp, answer, |_| None)
    }

    /// The database's; dropped, it has written the record or not, and memory is as it
    /// was (the old copy then goes with the write's notification).
    async fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.put(ctx, key.clone(), value).await;
        self.after_value_write(key, copy, stamp, answer)
    }

    /// Reads from the database, as the blocking face does. Dropped, it has done
    /// nothing.
    async fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        count(&self.shared.counters.bypassed);
        self.db.get_many(ctx, keys).await
    }

    /// Writes through, and leaves memory as the blocking face does. Dropped, the
    /// database has applied the transaction whole or not at all, and memory is as it was
    /// (the old copies then go with the transaction's notifications).
    async fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        let (stamp, copies) = (self.stamp(), copies_of(&transaction));
        let answer = self.db.commit(ctx, transaction).await;
        self.after_commit(copies, stamp, answer)
    }

    /// The database's (on a pooled session of its own, not the near-cache's connection).
    /// Dropped, it has done nothing (its session, if it was listening, is closed).
    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> impl Future<Output = ReadResult<V, S::Version>> + Send {
        self.db.wait_for_change(ctx, key, seen)
    }
}
