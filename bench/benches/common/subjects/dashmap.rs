//! dashmap: sharded `RwLock<HashMap>`s, the map people would otherwise use.

use ::dashmap::mapref::entry::Entry;
use ::dashmap::DashMap;

use super::{Hasher, Record, Subject, FIRST_VERSION};
use crate::common::payload::Payload;

/// dashmap used as it comes: `get`, `insert` (which overwrites), `get_mut`, `remove`. No
/// versions.
pub(crate) struct DashMapRaw<V>(DashMap<u64, V, Hasher>);

impl<V: Payload> Subject<V> for DashMapRaw<V> {
    fn build(capacity: usize) -> Self {
        DashMapRaw(DashMap::with_capacity_and_hasher(
            capacity,
            Hasher::default(),
        ))
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.get(&key).map(|entry| entry.value().clone())
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        self.0.insert(key, value);
        Some(FIRST_VERSION)
    }

    /// The overwriting `insert`: what a blind write costs in dashmap.
    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.0.insert(key, value);
        Some(expected + 1)
    }

    /// Modifies the value in place under `get_mut`, whatever its version.
    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        let mut value = self.0.get_mut(&key)?;
        *value = value.bumped();
        Some(expected + 1)
    }

    fn remove(&self, key: u64, _expected: u64) -> bool {
        self.0.remove(&key).is_some()
    }
}

/// dashmap with a hand-made version check: the value is kept with a `u64` version and a
/// write compares it under `get_mut`'s exclusive shard lock.
pub(crate) struct DashMapCas<V>(DashMap<u64, Record<V>, Hasher>);

impl<V: Payload> DashMapCas<V> {
    /// Runs `write` on the record if it is at `expected`, then moves it to the next version.
    fn write_if_current(&self, key: u64, expected: u64, write: impl FnOnce(&mut V)) -> Option<u64> {
        let mut record = self.0.get_mut(&key)?;
        if record.version != expected {
            return None;
        }
        write(&mut record.value);
        record.version += 1;
        Some(record.version)
    }
}

impl<V: Payload> Subject<V> for DashMapCas<V> {
    fn build(capacity: usize) -> Self {
        DashMapCas(DashMap::with_capacity_and_hasher(
            capacity,
            Hasher::default(),
        ))
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.get(&key).map(|entry| entry.value().value.clone())
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        match self.0.entry(key) {
            Entry::Occupied(_) => None,
            Entry::Vacant(vacant) => {
                vacant.insert(Record {
                    value,
                    version: FIRST_VERSION,
                });
                Some(FIRST_VERSION)
            }
        }
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.write_if_current(key, expected, |current| *current = value)
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        self.write_if_current(key, expected, |current| *current = current.bumped())
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        self.0
            .remove_if(&key, |_, record| record.version == expected)
            .is_some()
    }
}
