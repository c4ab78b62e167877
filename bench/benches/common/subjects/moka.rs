//! moka: a concurrent cache with admission and eviction bookkeeping on every access.

use ::moka::ops::compute::{CompResult, Op};
use ::moka::sync::Cache;

use super::{bound_for, Hasher, Subject, FIRST_VERSION};
use crate::common::payload::Payload;

/// `moka::sync::Cache`, unbounded so that nothing is evicted during a measurement (or,
/// as `Moka<V, true>`, bounded as the other bounded subjects are, see [`bound_for`]).
/// No versions: its operations are the plain cache ones (`insert` overwrites,
/// `and_compute_with` modifies whatever is there, `remove` is unconditional). Its
/// eviction runs asynchronously, as its users get it: inside its own calls, now and then.
pub(crate) struct Moka<V: Payload, const BOUNDED: bool = false>(Cache<u64, V, Hasher>);

/// moka with a capacity bound.
pub(crate) type MokaBounded<V> = Moka<V, true>;

impl<V: Payload, const BOUNDED: bool> Subject<V> for Moka<V, BOUNDED> {
    fn build(capacity: usize) -> Self {
        let builder = Cache::builder().initial_capacity(capacity);
        let builder = if BOUNDED {
            builder.max_capacity(bound_for(capacity))
        } else {
            builder
        };
        Moka(builder.build_with_hasher(Hasher::default()))
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.get(&key)
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        self.0.insert(key, value);
        Some(FIRST_VERSION)
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.0.insert(key, value);
        Some(expected + 1)
    }

    /// `and_compute_with`, moka's atomic read-modify-write, whatever the version.
    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        let outcome = self.0.entry(key).and_compute_with(|entry| match entry {
            Some(entry) => Op::Put(entry.into_value().bumped()),
            None => Op::Nop,
        });
        matches!(outcome, CompResult::ReplacedWith(_)).then_some(expected + 1)
    }

    fn remove(&self, key: u64, _expected: u64) -> bool {
        self.0.remove(&key).is_some()
    }
}
