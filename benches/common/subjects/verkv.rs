//! The store under test.

use std::convert::Infallible;

use ::verkv::Store;

use super::{Hasher, Subject};
use crate::common::payload::Payload;

/// `verkv::Store` with `u64` counter versions and its default shard count.
pub(crate) struct Verkv<V>(Store<u64, V, ::verkv::Counter, Hasher>);

impl<V: Payload> Subject<V> for Verkv<V> {
    fn build(capacity: usize) -> Self {
        Verkv(
            Store::builder()
                .capacity(capacity)
                .hasher(Hasher::default())
                .build(),
        )
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
        self.0
            .update_with(&key, &expected, |value| Ok::<V, Infallible>(value.bumped()))
            .ok()
    }

    fn remove(&self, key: u64, expected: u64) -> bool {
        self.0.remove(&key, &expected).is_ok()
    }
}
