//! papaya: a lock-free hash map; reads take no lock at all.

use ::papaya::{Compute as Outcome, HashMap, Operation};

use super::{Hasher, Record, Subject, FIRST_VERSION};
use crate::common::payload::Payload;

/// `papaya::HashMap` with the version kept beside the value; a write is a `compute` that
/// replaces the record only if it is at the expected version.
///
/// `compute` may run its closure more than once under contention, so the closure clones
/// the new value rather than moving it: that clone is part of papaya's cost for a CAS.
pub(crate) struct Papaya<V>(HashMap<u64, Record<V>, Hasher>);

impl<V: Payload> Papaya<V> {
    /// Replaces the record with `next(value)` at the next version if it is at `expected`.
    fn compute_if_current(&self, key: u64, expected: u64, next: impl Fn(&V) -> V) -> Option<u64> {
        let map = self.0.pin();
        let outcome = map.compute(key, |entry| match entry {
            Some((_, record)) if record.version == expected => Operation::Insert(Record {
                value: next(&record.value),
                version: expected + 1,
            }),
            _ => Operation::Abort(()),
        });
        match outcome {
            Outcome::Updated { new, .. } => Some(new.1.version),
            _ => None,
        }
    }
}

impl<V: Payload> Subject<V> for Papaya<V> {
    fn build(capacity: usize) -> Self {
        Papaya(
            HashMap::builder()
                .capacity(capacity)
                .hasher(Hasher::default())
                .build(),
        )
    }

    fn get(&self, key: u64) -> Option<V> {
        self.0.pin().get(&key).map(|record| record.value.clone())
    }

    fn insert(&self, key: u64, value: V) -> Option<u64> {
        let record = Record {
            value,
            version: FIRST_VERSION,
        };
        self.0
            .pin()
            .try_insert(key, record)
            .ok()
            .map(|_| FIRST_VERSION)
    }

    fn update(&self, key: u64, expected: u64, value: V) -> Option<u64> {
        self.compute_if_current(key, expected, |_| value.clone())
    }

    fn update_with(&self, key: u64, expected: u64) -> Option<u64> {
        self.compute_if_current(key, expected, V::bumped)
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        matches!(
            self.0
                .pin()
                .remove_if(&key, |_, record| record.version == expected),
            Ok(Some(_))
        )
    }
}
