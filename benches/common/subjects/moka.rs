//! moka: a concurrent cache with admission and eviction bookkeeping on every access.

use ::moka::ops::compute::{CompResult, Op};
use ::moka::sync::Cache;

use super::{Hasher, Subject, FIRST_VERSION};
use crate::common::payload::Payload;

/// `moka::sync::Cache`, unbounded so that nothing is evicted during a measurement. No
/// versions: its operations are the plain cache ones (`insert` overwrites,
/// `and_compute_with` modifies whatever is there, `remove` is unconditional).
pub(crate) struct Moka<V: Payload>(Cache<u64, V, Hasher>);

impl<V: Payload> Subject<V> for Moka<V> {
    fn build(capacity: usize) -> Self {
        Moka(
            Cache::builder()
                .initial_capacity(capacity)
                .build_with_hasher(Hasher::default()),
        )
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
