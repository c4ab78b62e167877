//! A shard's records, plain or tracked: the table of a shard without a bound or a timer
//! keeps no eviction state per record (see `state`).
//!
//! A shard starts tracked if the store is bounded or has expiry. A plain one becomes
//! tracked, once and for good, the first time a write brings a time-to-live of its own
//! ([`Store::expiring_after`](crate::Store::expiring_after)): under the write lock, before
//! the write, every record is moved into a table that keeps the state. Each method
//! dispatches once to the same code, [`Shard`]'s, written over the record's state.

use std::borrow::Borrow;
use std::time::Duration;

use super::error::{Error, Rejected, UpdateWithError};
use super::record::Record;
#[cfg(feature = "snapshot")]
use super::shard::Placed;
use super::shard::{Created, Shard};
use crate::stats::Evictions;
use crate::store::parts::eviction::{Access, Evictor, TooHeavy};
#[cfg(feature = "snapshot")]
use crate::store::parts::expiry::Remaining;
use crate::store::parts::expiry::Timing;
use crate::store::parts::removals::{Delivery, Removals};
use crate::version::VersionScheme;

type Version<S> = <S as VersionScheme>::Version;

/// The records of a shard that have not expired, with their keys, whichever its table.
type Listing<'a, K, V, Ver> = Box<dyn Iterator<Item = (&'a K, &'a Record<V, Ver>)> + 'a>;

/// A shard whose records carry no state, or one whose records carry their eviction
/// state.
pub(crate) enum Records<K, V, S: VersionScheme> {
    /// No bound and no timer.
    Plain(Shard<K, V, S, ()>),
    /// Bounded, or keeping time.
    Tracked(Shard<K, V, S, Access>),
}

/// Runs `$body` with `$shard` bound to the shard inside `$records`, whichever it is.
macro_rules! dispatch {
    ($records:expr, $shard:ident => $body:expr) => {
        match $records {
            Records::Plain($shard) => $body,
            Records::Tracked($shard) => $body,
        }
    };
}

impl<K, V, S: VersionScheme> Records<K, V, S> {
    /// An empty shard, as [`Shard::new`] says; tracked if it is bounded or keeps time.
    pub(crate) fn new(
        capacity: usize,
        bound: Option<Evictor<K, V>>,
        timing: Timing<K, V>,
        removals: Removals<K, V>,
    ) -> Self {
        if bound.is_some() || timing.active().is_some() {
            Records::Tracked(Shard::new(capacity, bound, timing, removals))
        } else {
            Records::Plain(Shard::new(capacity, bound, timing, removals))
        }
    }

    /// Makes a plain shard tracked before a write with `time_to_live` of its own, which
    /// starts the shard's timer. `rehash` gives a key's hash.
    ///
    /// The `verkv_mutant = "untracked_time_to_live"` cfg leaves the shard plain, so that
    /// the tests can show they catch the record that then never expires.
    #[inline]
    fn prepare(&mut self, time_to_live: Option<Duration>, rehash: impl Fn(&K) -> u64) {
        if time_to_live.is_some() && !cfg!(verkv_mutant = "untracked_time_to_live") {
            self.track(rehash);
        }
    }

    /// Makes a plain shard tracked, for good.
    fn track(&mut self, rehash: impl Fn(&K) -> u64) {
        if let Records::Plain(plain) = self {
            *self = Records::Tracked(plain.take_tracked(rehash));
        }
    }

    /// See [`Shard::export`].
    #[cfg(feature = "snapshot")]
    pub(crate) fn export(
        &self,
        hash: impl Fn(&K) -> u64,
        each: impl FnMut(&K, &Record<V, Version<S>>, Option<Remaining>, u8),
    ) {
        dispatch!(self, shard => shard.export(hash, each))
    }

    /// See [`Shard::bounded`].
    #[cfg(feature = "snapshot")]
    pub(crate) fn bounded(&self) -> bool {
        dispatch!(self, shard => shard.bounded())
    }

    /// See [`Shard::resume_point`].
    #[cfg(feature = "snapshot")]
    pub(crate) fn resume_point(&self) -> Option<Version<S>> {
        dispatch!(self, shard => shard.resume_point())
    }

    /// See [`Shard::resume_after`].
    #[cfg(feature = "snapshot")]
    pub(crate) fn resume_after(&mut self, point: &Version<S>) {
        dispatch!(self, shard => shard.resume_after(point))
    }

    /// See [`Shard::len`].
    pub(crate) fn len(&self) -> usize {
        dispatch!(self, shard => shard.len())
    }

    /// See [`Shard::iter`].
    pub(crate) fn iter<'a>(
        &'a self,
        hash: impl Fn(&K) -> u64 + 'a,
    ) -> Listing<'a, K, V, Version<S>> {
        dispatch!(self, shard => Box::new(shard.iter(hash)))
    }

    /// See [`Shard::take_removals`].
    #[inline]
    pub(crate) fn take_removals(&mut self) -> Option<Box<Delivery<K, V>>> {
        dispatch!(self, shard => shard.take_removals())
    }

    /// See [`Shard::removals`].
    pub(crate) fn removals(&self) -> &Removals<K, V> {
        dispatch!(self, shard => shard.removals())
    }

    /// See [`Shard::passing_version`].
    pub(crate) fn passing_version(&mut self) -> Version<S> {
        dispatch!(self, shard => shard.passing_version())
    }

    /// See [`Shard::clear`].
    pub(crate) fn clear(&mut self) {
        dispatch!(self, shard => shard.clear())
    }

    /// See [`Shard::retain`].
    pub(crate) fn retain(&mut self, hash: impl Fn(&K) -> u64, keep: impl FnMut(&K, &V) -> bool) {
        dispatch!(self, shard => shard.retain(hash, keep))
    }

    /// See [`Shard::evicted`].
    pub(crate) fn evicted(&self) -> &Evictions {
        dispatch!(self, shard => shard.evicted())
    }

    /// See [`Shard::weight`].
    pub(crate) fn weight(&self) -> u64 {
        dispatch!(self, shard => shard.weight())
    }
}

impl<K: Eq, V, S: VersionScheme> Records<K, V, S> {
    /// See [`Shard::get`]. Both reads are inlined: the tracked one out of line cost a
    /// bounded `get` hit 16 instructions (a call) to save a plain one 4 (`docs/benchmarks/read-path.md`,
    /// "Records without eviction state").
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        dispatch!(self, shard => shard.get(hash, key))
    }

    /// See [`Shard::peek`].
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        dispatch!(self, shard => shard.peek(hash, key))
    }

    /// See [`Shard::key`].
    pub(crate) fn key<Q>(&self, hash: u64, key: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        dispatch!(self, shard => shard.key(hash, key))
    }

    /// See [`Shard::insert`].
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>> {
        self.prepare(time_to_live, &rehash);
        dispatch!(self, shard => shard.insert(hash, key, value, &rehash, time_to_live))
    }

    /// See [`Shard::put`].
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>> {
        self.prepare(time_to_live, &rehash);
        dispatch!(self, shard => shard.put(hash, key, value, &rehash, time_to_live))
    }

    /// See [`Shard::put_unsettled`].
    pub(crate) fn put_unsettled(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Created<S>, Rejected<V, Version<S>>> {
        self.prepare(time_to_live, &rehash);
        dispatch!(self, shard => shard.put_unsettled(hash, key, value, &rehash, time_to_live))
    }

    /// See [`Shard::settle_keeping`].
    pub(crate) fn settle_keeping(&mut self, keep: impl Fn(u32) -> bool + Copy) {
        dispatch!(self, shard => shard.settle_keeping(keep))
    }

    /// See [`Shard::fits_together`].
    pub(crate) fn fits_together<'a>(
        &self,
        records: impl Iterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), TooHeavy>
    where
        K: 'a,
        V: 'a,
    {
        dispatch!(self, shard => shard.fits_together(records))
    }

    /// See [`Shard::update_with`]; `rehash` gives a key's hash.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update_with<Q, E>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        compute: impl FnOnce(&V) -> Result<V, E>,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, UpdateWithError<Version<S>, E>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.prepare(time_to_live, rehash);
        dispatch!(self, shard => shard.update_with(hash, key, expected, compute, time_to_live))
    }

    /// See [`Shard::update`]; `rehash` gives a key's hash.
    pub(crate) fn update<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.prepare(time_to_live, rehash);
        dispatch!(self, shard => shard.update(hash, key, expected, value, time_to_live))
    }

    /// See [`Shard::restore`]; a record with a deadline makes a plain shard tracked
    /// first, as a write with a time-to-live of its own does.
    #[cfg(feature = "snapshot")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        version: Version<S>,
        remaining: Remaining,
        heat: u8,
        rehash: impl Fn(&K) -> u64,
    ) -> Placed {
        if remaining.expires() {
            self.track(&rehash);
        }
        dispatch!(self, shard => shard.restore(hash, key, value, version, remaining, heat, &rehash))
    }

    /// See [`Shard::remove`].
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
    ) -> Result<V, Error<Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        dispatch!(self, shard => shard.remove(hash, key, expected))
    }

    /// See [`Shard::invalidate`].
    pub(crate) fn invalidate<Q>(&mut self, hash: u64, key: &Q) -> Option<Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        dispatch!(self, shard => shard.invalidate(hash, key))
    }
}
