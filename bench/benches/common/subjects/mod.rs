//! The maps measured: verkv's store and its peers, behind one interface.
//!
//! Every contender is built with the same hasher (`verkv::DefaultHashBuilder`, foldhash)
//! and hands out an owned copy of the value on a read, as the store does, so that all of
//! them do the same work per operation. Versions are `u64`; peers that have no versions
//! of their own keep a counter next to the value and check it by hand.

mod dashmap;
mod floor;
mod moka;
mod papaya;
mod quick_cache;
mod rwlock;
mod verkv;
mod versioned_map;

pub(crate) use self::dashmap::{DashMapCas, DashMapRaw};
pub(crate) use self::floor::Floor;
pub(crate) use self::moka::{Moka, MokaBounded};
pub(crate) use self::papaya::Papaya;
pub(crate) use self::quick_cache::QuickCache;
pub(crate) use self::rwlock::RwLockMap;
pub(crate) use self::verkv::{Verkv, VerkvBounded, VerkvRetry, VerkvStats, VerkvWithin};

use crate::common::payload::Payload;

/// The version a freshly created record starts at, for peers that version by hand.
pub(crate) const FIRST_VERSION: u64 = 1;

/// A version no record ever has: writes naming it are always stale.
pub(crate) const NEVER_CURRENT: u64 = 0;

/// The capacity bound of the bounded subjects built for `capacity` records: a quarter
/// more, so that a store whose shards each hold an even share of the bound keeps every
/// key of a `get` benchmark (keys do not spread over the shards exactly evenly).
pub(crate) fn bound_for(capacity: usize) -> u64 {
    capacity as u64 + capacity as u64 / 4
}

/// The hasher every contender uses.
pub(crate) type Hasher = ::verkv::DefaultHashBuilder;

/// A value with the version kept beside it, for peers that version by hand.
#[derive(Clone)]
pub(crate) struct Record<V> {
    /// The value.
    pub(crate) value: V,
    /// Its version.
    pub(crate) version: u64,
}

/// One map under measurement.
///
/// Versioned contenders implement the store's semantics: `insert` creates only if absent,
/// `update` and `remove` succeed only at `expected`. Unversioned contenders (raw dashmap,
/// moka) do their plain operation instead — overwrite, in-place modify, unconditional
/// remove — and echo
/// `expected + 1` as the new version, which is exactly the comparison the targets ask
/// for ("update vs dashmap's overwriting insert").
pub(crate) trait Subject<V: Payload> {
    /// An empty map sized for `capacity` records (0: let it grow).
    fn build(capacity: usize) -> Self;

    /// An owned copy of the value at `key`.
    fn get(&self, key: u64) -> Option<V>;

    /// Creates the record; the new version, or `None` if the key was present.
    fn insert(&self, key: u64, value: V) -> Option<u64>;

    /// Compare-and-swap on the version; the new version, or `None` if refused.
    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64>;

    /// Read-modify-write: replaces the value with `value.bumped()` if the record is at
    /// `expected`; the new version, or `None` if refused.
    fn update_with(&self, key: u64, expected: u64) -> Option<u64>;

    /// Removes the record if it is at `expected`; whether it did.
    fn remove(&self, key: u64, expected: u64) -> bool;
}
