//! The store under test: used directly, through deadline-bounded views, and through the
//! retry helper.

use std::marker::PhantomData;
use std::time::Duration;

use ::verkv::Store;

use super::{bound_for, Hasher, Subject};
use crate::common::payload::Payload;

/// The store as every variant here builds it: `u64` counter versions, default shards.
type Measured<V> = Store<u64, V, ::verkv::Counter, Hasher>;

fn build<V>(capacity: usize, statistics: bool) -> Measured<V> {
    Store::builder()
        .capacity(capacity)
        .hasher(Hasher::default())
        .statistics(statistics)
        .build()
}

/// A deadline no benchmark operation comes near: bounded views pay for the bookkeeping,
/// never for a timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How a plain-store subject does its read-modify-write.
pub(crate) trait ReadModifyWrite {
    /// Replaces the value of `key` with `value.bumped()`; the new version, or `None`.
    fn bump<V: Payload>(store: &Measured<V>, key: u64, expected: u64) -> Option<u64>;
}

/// `update_with`: the closure runs under the shard lock, at the version read.
pub(crate) struct UnderLock;

impl ReadModifyWrite for UnderLock {
    fn bump<V: Payload>(store: &Measured<V>, key: u64, expected: u64) -> Option<u64> {
        store
            .update_with(&key, &expected, |value| value.bumped())
            .ok()
    }
}

/// The retry helper, `retry_update`: read, compute outside the lock, compare-and-swap,
/// retry if stale. It reads the version itself, so it succeeds wherever `update_with` at
/// the current version would.
pub(crate) struct Retrying;

impl ReadModifyWrite for Retrying {
    fn bump<V: Payload>(store: &Measured<V>, key: u64, _expected: u64) -> Option<u64> {
        let done = store.retry_update(&key, |value| value.bumped()).ok()?;
        Some(done.version)
    }
}

/// `verkv::Store` used directly, its read-modify-write done the `M` way; with a
/// capacity bound (see [`bound_for`]) if `BOUNDED`, with statistics on if `STATS`.
pub(crate) struct Verkv<V, M = UnderLock, const BOUNDED: bool = false, const STATS: bool = false>(
    Measured<V>,
    PhantomData<M>,
);

/// `verkv::Store` whose read-modify-write is the retry helper; the other operations are
/// the store's own.
pub(crate) type VerkvRetry<V> = Verkv<V, Retrying>;

/// `verkv::Store` with a capacity bound.
pub(crate) type VerkvBounded<V> = Verkv<V, UnderLock, true>;

/// `verkv::Store` with statistics on.
pub(crate) type VerkvStats<V> = Verkv<V, UnderLock, false, true>;

impl<V: Payload, M: ReadModifyWrite, const BOUNDED: bool, const STATS: bool> Subject<V>
    for Verkv<V, M, BOUNDED, STATS>
{
    fn build(capacity: usize) -> Self {
        let store = if BOUNDED {
            Store::builder()
                .max_capacity(bound_for(capacity))
                .hasher(Hasher::default())
                .build()
        } else {
            build(capacity, STATS)
        };
        Verkv(store, PhantomData)
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.get(&key).map(|read| read.value)
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        self.0.insert(key, value).ok()
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.0.update(&key, &expected, value).ok()
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        M::bump(&self.0, key, expected)
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        self.0.remove(&key, &expected).is_ok()
    }
}

/// `verkv::Store` with every operation deadline-bounded, a view made per operation as a
/// request handler would: `store.within(timeout).get(&key)`.
pub(crate) struct VerkvWithin<V>(Measured<V>);

impl<V: Payload> Subject<V> for VerkvWithin<V> {
    fn build(capacity: usize) -> Self {
        VerkvWithin(build(capacity, false))
    }

    fn get(&self, key: u64) -> Option<V> {
        let read = self.0.within(TIMEOUT).get(&key).ok()?;
        read.map(|read| read.value)
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        self.0.within(TIMEOUT).insert(key, value).ok()
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.0.within(TIMEOUT).update(&key, &expected, value).ok()
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        self.0
            .within(TIMEOUT)
            .update_with(&key, &expected, |value| value.bumped())
            .ok()
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        self.0.within(TIMEOUT).remove(&key, &expected).is_ok()
    }
}
