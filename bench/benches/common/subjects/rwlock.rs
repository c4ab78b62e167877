//! One reader-writer lock around one `HashMap`: the simplest thread-safe map.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::versioned_map;
use super::{Hasher, Record, Subject};
use crate::common::payload::Payload;

/// `parking_lot::RwLock<HashMap>` with the version kept beside the value.
pub(crate) struct RwLockMap<V>(RwLock<HashMap<u64, Record<V>, Hasher>>);

impl<V: Payload> Subject<V> for RwLockMap<V> {
    fn build(capacity: usize) -> Self {
        RwLockMap(RwLock::new(HashMap::with_capacity_and_hasher(
            capacity,
            Hasher::default(),
        )))
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.read().get(&key).map(|record| record.value.clone())
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        versioned_map::insert(&mut self.0.write(), key, value)
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        versioned_map::write_if_current(&mut self.0.write(), key, expected, |current| {
            *current = value
        })
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        versioned_map::write_if_current(&mut self.0.write(), key, expected, |current| {
            *current = current.bumped()
        })
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        versioned_map::remove(&mut self.0.write(), key, expected)
    }
}
