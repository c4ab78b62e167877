//! What the store keeps per key, and what a read hands out.

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
/// What else a record carries (eviction state, a ticket for the timer) is kept beside it,
/// in the shard's table, and only by shards that need it: see `state`.
#[derive(Debug, Clone)]
pub(crate) struct Record<V, Ver> {
    pub(crate) value: V,
    pub(crate) version: Ver,
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
