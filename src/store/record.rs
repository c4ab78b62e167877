//! What the store keeps per key, and what a read hands out.

use crate::cache::eviction::Access;

/// A value together with the version it had when it was read: one consistent snapshot.
///
/// Returned by [`Store::get`](crate::Store::get) and by iteration. The version is what a
/// later conditional write names as the version it read.
///
/// # Examples
///
/// ```
/// use verkv::{Store, Versioned};
///
/// let store: Store<&str, &str> = Store::new();
/// store.insert("greeting", "hello").unwrap();
/// let Versioned { value, version } = store.get(&"greeting").unwrap();
/// assert_eq!((value, version), ("hello", 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Versioned<V, Ver> {
    /// The value.
    pub value: V,
    /// Its version at the time of the read.
    pub version: Ver,
}

/// One stored record: the value and its version, always written together under the
/// shard's lock.
///
/// Kept as its own type so that per-record metadata (an expiry time, access statistics)
/// can be added here without touching the shard's operations.
#[derive(Debug, Clone)]
pub(crate) struct Record<V, Ver> {
    pub(crate) value: V,
    pub(crate) version: Ver,
    /// The record's eviction state (used by bounded stores only).
    pub(crate) access: Access,
}

impl<V: Clone, Ver: Clone> Record<V, Ver> {
    /// An owned copy of the record, for handing out past the lock.
    pub(crate) fn snapshot(&self) -> Versioned<V, Ver> {
        Versioned {
            value: self.value.clone(),
            version: self.version.clone(),
        }
    }
}
