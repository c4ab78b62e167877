//! [`VersionedStore`] for the in-memory [`Store`], through its public API: every
//! operation runs on a bounded view carrying the context's deadline and token.

use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use super::{Context, ReadResult, VersionedStore};
use crate::store::{Committed, ReadMany, Transaction, TransactionRefused};
use crate::store::{Error, Rejected, UpdateWithError};
use crate::store::{Store, Versioned};
use crate::version::VersionScheme;
use crate::wait::{Bounded, Retried};

impl<K, V, S: VersionScheme, H> Store<K, V, S, H> {
    /// The bounded view that carries `ctx`: its deadline (a `Duration` too large to add
    /// to now means none) and its token.
    pub(super) fn view<'a>(&'a self, ctx: &Context<'a>) -> Bounded<'a, K, V, S, H> {
        let view = match ctx.deadline() {
            Some(deadline) => self.until(deadline),
            None => self.within(Duration::MAX),
        };
        match ctx.cancel_token() {
            Some(token) => view.with_cancel(token),
            None => view,
        }
    }
}

impl<K, V, S, H> VersionedStore<K, V> for Store<K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    type Version = S::Version;

    fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        Ok(self.view(ctx).get(key)?)
    }

    fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.view(ctx).insert(key, value)
    }

    fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.view(ctx).update(key, expected, value)
    }

    fn try_update_with<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        self.view(ctx).try_update_with(key, expected, compute)
    }

    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>> {
        self.view(ctx).remove(key, expected)
    }

    fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        let keys: Vec<&K> = keys.iter().collect();
        Ok(self.view(ctx).get_many(&keys)?)
    }

    fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        self.view(ctx).commit(transaction)
    }

    fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.view(ctx).put(key, value)
    }

    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        Ok(self.view(ctx).wait_for_change(key, seen)?)
    }

    /// The store's own loop, which also counts a timeout in its statistics.
    fn try_retry_update<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        compute: impl FnMut(&V) -> Result<V, E>,
    ) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>> {
        self.view(ctx).try_retry_update(key, compute)
    }

    /// The store's single flight: concurrent misses of `key` run one loader.
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: K,
        load: impl FnOnce() -> V,
    ) -> Result<Versioned<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
        V: Clone,
    {
        Ok(self.view(ctx).get_or_load(key, load)?)
    }
}
