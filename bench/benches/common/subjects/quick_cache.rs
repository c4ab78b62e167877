//! quick_cache: a bounded concurrent cache with an access count per entry.

use ::quick_cache::sync::Cache;
use ::quick_cache::UnitWeighter;

use super::{bound_for, Hasher, Subject, FIRST_VERSION};
use crate::common::payload::Payload;

/// `quick_cache::sync::Cache` bounded as the other bounded subjects are (see
/// [`bound_for`]). No versions: `insert` overwrites, `update_with` reads then writes
/// (not atomically; not measured), `remove` is unconditional.
pub(crate) struct QuickCache<V: Payload>(Cache<u64, V, UnitWeighter, Hasher>);

impl<V: Payload> Subject<V> for QuickCache<V> {
    fn build(capacity: usize) -> Self {
        let bound = bound_for(capacity);
        QuickCache(Cache::with(
            bound as usize,
            bound,
            UnitWeighter,
            Hasher::default(),
            Default::default(),
        ))
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

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        let bumped = self.0.get(&key)?.bumped();
        self.0.insert(key, bumped);
        Some(expected + 1)
    }

    fn remove(&self, key: u64, _expected: u64) -> bool {
        self.0.remove(&key).is_some()
    }
}
