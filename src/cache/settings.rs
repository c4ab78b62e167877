//! The builder's cache settings beyond the bound: expiry, its clock, and the eviction
//! listener.

use std::sync::Arc;
use std::time::Duration;

use crate::store::parts::clock::Clock;
use crate::store::parts::expiry::Expiry;
use crate::store::parts::removals::{Notifier, RemovalCause};
use crate::store::StoreBuilder;

impl<K, V, S, H> StoreBuilder<K, V, S, H> {
    /// Every record expires `ttl` after it was created or last written (moka's and
    /// Caffeine's `time_to_live`, `expireAfterWrite`).
    ///
    /// From the instant it expires a record is **invisible**: reads find nothing, a
    /// create-only [`insert`](crate::Store::insert) succeeds, and a conditional write or
    /// removal naming its version is refused ([`Error::Expired`](crate::Error::Expired)
    /// while the store still holds it, [`Error::NotFound`](crate::Error::NotFound) once it
    /// was reclaimed). Its versions are retired, as a removed record's are. A record
    /// written at `t` with time-to-live `ttl` is still there at `t + ttl - 1ns` and gone at
    /// `t + ttl`. `Duration::ZERO` stores records already expired: the write succeeds
    /// and returns its version, and nothing reads it. A `ttl` too long to count (such as
    /// `Duration::MAX`) never expires.
    ///
    /// Expired records are reclaimed without a background thread: by the next write to
    /// the same key, and by every write to their shard, which looks at a few expiring
    /// records each time (a bounded amount of work). [`len`](crate::Store::len) counts
    /// those not yet reclaimed.
    ///
    /// A store with no expiry at all reads no clock and keeps nothing extra per record;
    /// one with expiry keeps each expiring record's deadlines in a side table of its
    /// shard (measured at about 50 bytes per record for a million `u64` records, on top
    /// of the record's own; `docs/benchmarks/features.md`, "Expiry") and reads the clock
    /// on each operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{Error, ManualClock, Store};
    ///
    /// let clock = ManualClock::new();
    /// let store: Store<&str, u32> = Store::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build();
    /// let v1 = store.insert("session", 1).unwrap();
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(store.get(&"session"), None);
    /// assert_eq!(store.update(&"session", &v1, 2).unwrap_err().error, Error::Expired);
    /// assert_eq!(store.insert("session", 3), Ok(2)); // a fresh record, a fresh version
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.expiration.time_to_live = Some(ttl);
        self
    }

    /// Every record expires once it has not been read with [`get`](crate::Store::get)
    /// (or a get-or-load hit) nor written for `tti` (moka's `time_to_idle`, Caffeine's
    /// `expireAfterAccess`). With a [`time_to_live`](StoreBuilder::time_to_live) too, a
    /// record expires at whichever comes first. Checks of presence
    /// ([`version`](crate::Store::version), [`contains_key`](crate::Store::contains_key))
    /// do not count as reads.
    ///
    /// A read writes the new idle deadline only when it moves by more than a
    /// millisecond, so a record read all the time may expire up to 1 ms before its last
    /// read plus `tti`. Otherwise as [`time_to_live`](StoreBuilder::time_to_live).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{ManualClock, Store};
    ///
    /// let clock = ManualClock::new();
    /// let store: Store<&str, u32> = Store::builder()
    ///     .time_to_idle(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build();
    /// store.insert("a", 1).unwrap();
    /// clock.advance(Duration::from_secs(9));
    /// assert!(store.get(&"a").is_some()); // read: idle again from now
    /// clock.advance(Duration::from_secs(9));
    /// assert!(store.get(&"a").is_some());
    /// clock.advance(Duration::from_secs(10));
    /// assert!(store.get(&"a").is_none());
    /// ```
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.expiration.time_to_idle = Some(tti);
        self
    }

    /// Computes each record's time-to-live with `policy`, from its key and value, when it
    /// is created, written and read (see [`Expiry`]). It takes the place of
    /// [`time_to_live`](StoreBuilder::time_to_live).
    pub fn expiry(mut self, policy: impl Expiry<K, V> + 'static) -> Self {
        self.expiration.policy = Some(Arc::new(policy));
        self
    }

    /// The clock expiry reads: [`Clock::System`] by default; a
    /// [`ManualClock`](crate::ManualClock) lets tests move time by hand.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.expiration.clock = clock.into();
        self
    }

    /// Calls `listener` with the key, the value and the [cause](RemovalCause) of every
    /// record that leaves the store, and of every value a write replaces: moka's
    /// `eviction_listener`.
    ///
    /// - **Once per record**, for expired ones when they are reclaimed (not at the
    ///   instant they expire).
    /// - **Outside every lock**: the store collects removals under the shard's lock and
    ///   calls the listener after releasing it, on the thread whose operation removed
    ///   them, before that operation returns. So the listener may use the store.
    /// - **A panicking listener** is caught: the operation has taken effect and returns
    ///   as usual, the store stays usable, the other removals of that operation are still
    ///   delivered, and [`Store::listener_panics`](crate::Store::listener_panics) counts
    ///   it.
    ///
    /// Keys and values are cloned only where the store keeps its own: the key of a
    /// replaced value, the value [`remove`](crate::Store::remove) hands its caller.
    ///
    /// # Examples
    ///
    /// A listener that uses its own store, which it reaches through a weak reference set
    /// once the store exists:
    ///
    /// ```
    /// use std::sync::{Arc, OnceLock, Weak};
    /// use verkv::{RemovalCause, Store};
    ///
    /// let this: Arc<OnceLock<Weak<Store<u32, String>>>> = Arc::default();
    /// let listener_this = Arc::clone(&this);
    /// let store = Arc::new(
    ///     Store::builder()
    ///         .max_capacity(1_000)
    ///         .eviction_listener(move |key: u32, value: String, cause| {
    ///             let store = listener_this.get().and_then(Weak::upgrade);
    ///             if let (Some(store), RemovalCause::Removed) = (store, cause) {
    ///                 // Keep a tombstone under the key's neighbour.
    ///                 let _ = store.put(key + 1_000_000, format!("was {value}"));
    ///             }
    ///         })
    ///         .build(),
    /// );
    /// this.set(Arc::downgrade(&store)).unwrap();
    /// let v1 = store.insert(7, "seven".to_string()).unwrap();
    /// store.remove(&7, &v1).unwrap();
    /// assert_eq!(store.get(&1_000_007).unwrap().value, "was seven");
    /// ```
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self
    where
        K: Clone,
        V: Clone,
    {
        self.notifier = Some(Arc::new(Notifier::new(listener)));
        self
    }
}
