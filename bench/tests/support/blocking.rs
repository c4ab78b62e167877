//! A blocking backend served through the async trait: each call runs on the executor
//! thread it was polled on, with tokio told that the thread blocks (`block_in_place`), so
//! the runtime moves its other tasks to another thread meanwhile. For the tests and the
//! load benchmark that compare the blocking stores with the async ones: unlike the async
//! stores, every request that waits on a blocking one holds a thread for that long.

use verkv::{
    AsyncVersionedStore, Committed, Context, Error, ReadMany, ReadResult, Rejected, Transaction,
    TransactionRefused, UpdateWithError, VersionedStore,
};

/// `S`, a blocking store, as an [`AsyncVersionedStore`]. Needs tokio's multi-threaded
/// runtime.
pub(crate) struct OnBlockingThread<S>(pub(crate) S);

/// Runs `call`, which may block, on the current thread, moving the runtime's other tasks
/// off it first.
fn blocking<T>(call: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(call)
}

impl<K, V, S> AsyncVersionedStore<K, V> for OnBlockingThread<S>
where
    K: Send + Sync,
    V: Send,
    S: VersionedStore<K, V> + Sync,
    S::Version: Send + Sync + 'static,
{
    type Version = S::Version;

    async fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, Self::Version> {
        blocking(|| self.0.get(ctx, key))
    }

    async fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>> {
        blocking(|| self.0.insert(ctx, key, value))
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>> {
        blocking(|| self.0.update(ctx, key, expected, value))
    }

    async fn try_update_with<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
        compute: impl FnOnce(&V) -> Result<V, E> + Send,
    ) -> Result<Self::Version, UpdateWithError<Self::Version, E>> {
        blocking(|| self.0.try_update_with(ctx, key, expected, compute))
    }

    async fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &Self::Version,
    ) -> Result<V, Error<Self::Version>> {
        blocking(|| self.0.remove(ctx, key, expected))
    }

    async fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<Self::Version, Rejected<V, Self::Version>> {
        blocking(|| self.0.put(ctx, key, value))
    }

    async fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, Self::Version>, Error<Self::Version>>
    where
        K: Clone,
    {
        blocking(|| self.0.get_many(ctx, keys))
    }

    async fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, Self::Version>,
    ) -> Result<Committed<Self::Version>, TransactionRefused<K, V, Self::Version>>
    where
        K: Clone,
    {
        blocking(|| self.0.commit(ctx, transaction))
    }

    async fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&Self::Version>,
    ) -> ReadResult<V, Self::Version> {
        blocking(|| self.0.wait_for_change(ctx, key, seen))
    }
}
