//! The floor: an unsynchronised `HashMap`, what a single thread pays with no locking.

use std::cell::RefCell;
use std::collections::HashMap;

use super::versioned_map;
use super::{Hasher, Record, Subject};
use crate::common::payload::Payload;

/// A `HashMap` behind a `RefCell` (a borrow flag, no atomics): single-threaded only, which
/// the type system enforces (`RefCell` is not `Sync`).
pub(crate) struct Floor<V>(RefCell<HashMap<u64, Record<V>, Hasher>>);

impl<V: Payload> Subject<V> for Floor<V> {
    fn build(capacity: usize) -> Self {
        Floor(RefCell::new(HashMap::with_capacity_and_hasher(
            capacity,
            Hasher::default(),
        )))
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.borrow().get(&key).map(|record| record.value.clone())
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        versioned_map::insert(&mut self.0.borrow_mut(), key, value)
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        versioned_map::write_if_current(&mut self.0.borrow_mut(), key, expected, |current| {
            *current = value
        })
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        versioned_map::write_if_current(&mut self.0.borrow_mut(), key, expected, |current| {
            *current = current.bumped()
        })
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        versioned_map::remove(&mut self.0.borrow_mut(), key, expected)
    }
}
