//! The only module that names lock types.
//!
//! Every wait the store does goes through [`ShardLock`], so a model checker can replace
//! the implementation under a custom cfg without touching the store's logic.

use std::ops::Deref;

/// Aligns its content to its own cache lines, so that two shard locks never share one and
/// threads working on different shards do not slow each other down (false sharing).
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

/// A reader-writer lock around one shard.
pub(crate) struct ShardLock<T> {
    lock: parking_lot::RwLock<T>,
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        ShardLock {
            lock: parking_lot::RwLock::new(value),
        }
    }

    /// Shared access for reading, waiting as long as it takes.
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.lock.read()
    }

    /// Exclusive access for writing, waiting as long as it takes.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        self.lock.write()
    }
}
