//! What the eviction listener is told: records leaving a shard are collected under its
//! lock and handed to the listener after the lock is released, each once, with its
//! cause.

use crate::sync::{AtomicU64, Ordering};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::stats::Evictions;

/// Why a record left the store, as told to the
/// [eviction listener](crate::StoreBuilder::eviction_listener). moka calls it
/// `RemovalCause` too (with `Explicit` for [`Removed`](RemovalCause::Removed) and
/// `Size` for [`Evicted`](RemovalCause::Evicted)).
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use verkv::{RemovalCause, Store};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let store: Store<&str, u32> = Store::builder()
///     .eviction_listener(move |key, value, cause| log.lock().unwrap().push((key, value, cause)))
///     .build();
/// let v1 = store.insert("a", 1).unwrap();
/// let v2 = store.update(&"a", &v1, 2).unwrap();
/// store.remove(&"a", &v2).unwrap();
/// assert_eq!(
///     *seen.lock().unwrap(),
///     [("a", 1, RemovalCause::Replaced), ("a", 2, RemovalCause::Removed)]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its time-to-live or time-to-idle ran out (see
    /// [`StoreBuilder::time_to_live`](crate::StoreBuilder::time_to_live)).
    Expired,
    /// The [capacity bound](crate::StoreBuilder::max_capacity) made room for another
    /// (the bound does not look at deadlines: a record that had expired but was not
    /// reclaimed yet may go this way).
    Evicted,
    /// A caller removed it: [`Store::remove`](crate::Store::remove), or [`Store::retain`](crate::Store::retain) refused it.
    Removed,
    /// A write replaced its value (the record stays, with a new version; the listener
    /// gets the old value).
    Replaced,
    /// [`Store::clear`](crate::Store::clear) (or [`Store::invalidate_all`](crate::Store::invalidate_all)) removed every record.
    Cleared,
}

impl RemovalCause {
    /// Whether the store removed the record on its own (it expired or was evicted), as
    /// moka's `was_evicted` tells.
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Evicted)
    }

    /// Counts a record that left for this cause in `evictions`, if the cause is one the
    /// statistics count there (an eviction for capacity or an expiry; removals and
    /// replacements are counted as the writes that made them).
    pub(crate) fn count_in(self, evictions: &mut Evictions) {
        match self {
            RemovalCause::Evicted => evictions.capacity += 1,
            RemovalCause::Expired => evictions.expired += 1,
            _ => {}
        }
    }
}

/// What the builder was given: the listener, and how to copy a key or a value for it
/// (the store keeps a replaced record's key, and hands a removed value to its caller).
pub(crate) struct Notifier<K, V> {
    listener: Box<dyn Fn(K, V, RemovalCause) + Send + Sync>,
    copy_key: fn(&K) -> K,
    copy_value: fn(&V) -> V,
    /// How many calls of the listener panicked.
    panics: AtomicU64,
}

impl<K: Clone, V: Clone> Notifier<K, V> {
    pub(crate) fn new(listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static) -> Self {
        Notifier {
            listener: Box::new(listener),
            copy_key: K::clone,
            copy_value: V::clone,
            panics: AtomicU64::new(0),
        }
    }
}

/// One shard's records removed under its lock and not yet told to the listener. Without
/// a listener it keeps nothing.
pub(crate) struct Removals<K, V> {
    notifier: Option<Arc<Notifier<K, V>>>,
    pending: Vec<(K, V, RemovalCause)>,
}

impl<K, V> Removals<K, V> {
    pub(crate) fn new(notifier: Option<Arc<Notifier<K, V>>>) -> Self {
        Removals {
            notifier,
            pending: Vec::new(),
        }
    }

    /// Whether anybody listens (else nothing is kept).
    #[inline]
    pub(crate) fn listening(&self) -> bool {
        self.notifier.is_some()
    }

    /// Notes a record that left the shard, if anybody listens.
    #[inline]
    pub(crate) fn push(&mut self, key: K, value: V, cause: RemovalCause) {
        if self.notifier.is_some() {
            self.pending.push((key, value, cause));
        }
    }

    /// Notes a value a write replaced; the record (and its key) stays.
    #[inline]
    pub(crate) fn push_replaced(&mut self, key: &K, old: V) {
        if let Some(notifier) = &self.notifier {
            self.pending
                .push(((notifier.copy_key)(key), old, RemovalCause::Replaced));
        }
    }

    /// Notes a record removed by a caller, who gets `value` itself.
    #[inline]
    pub(crate) fn push_removed(&mut self, key: K, value: &V) {
        if let Some(notifier) = &self.notifier {
            self.pending
                .push((key, (notifier.copy_value)(value), RemovalCause::Removed));
        }
    }

    /// What to tell the listener once the lock is released; `None` if nothing. Only the
    /// test is inline, and the answer is a pointer: a write without removals to tell
    /// carries nothing more out of its critical section.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Box<Delivery<K, V>>> {
        if self.pending.is_empty() {
            return None;
        }
        self.take_pending()
    }

    #[cold]
    #[inline(never)]
    fn take_pending(&mut self) -> Option<Box<Delivery<K, V>>> {
        let notifier = self.notifier.clone()?;
        Some(Box::new(Delivery {
            notifier,
            removed: mem::take(&mut self.pending),
        }))
    }

    /// How many calls of the listener panicked (0 without a listener).
    pub(crate) fn panics(&self) -> u64 {
        self.notifier
            .as_ref()
            .map_or(0, |notifier| notifier.panics.load(Ordering::Relaxed))
    }
}

/// Removed records on their way to the listener, taken under a shard's lock and
/// delivered after it is released.
#[must_use = "the listener hears of nothing until `deliver` is called"]
pub(crate) struct Delivery<K, V> {
    notifier: Arc<Notifier<K, V>>,
    removed: Vec<(K, V, RemovalCause)>,
}

impl<K, V> Delivery<K, V> {
    /// Calls the listener once per record. A call that panics is caught and counted, and
    /// the other records are still delivered.
    pub(crate) fn deliver(self) {
        let listener = &self.notifier.listener;
        for (key, value, cause) in self.removed {
            let call = panic::catch_unwind(AssertUnwindSafe(|| listener(key, value, cause)));
            if call.is_err() {
                self.notifier.panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
