//! Configuration of a [`Store`] before it is built.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::facade::{CacheParts, DefaultHashBuilder, Store};
use crate::stats::report::Setup;
use crate::store::parts::eviction::{Bound, Weigher};
use crate::store::parts::expiry::Expiration;
use crate::store::parts::removals::Notifier;
use crate::version::{Counter, VersionScheme};

/// The most shards a store will use; more would only cost memory.
const MAX_SHARDS: usize = 1 << 16;

/// Carries the store's key, value and scheme types without owning any.
type TypesMarker<K, V, S> = PhantomData<fn() -> (K, V, S)>;

/// Builds a [`Store`] with a chosen shard count, capacity, hasher and version scheme.
///
/// # Examples
///
/// ```
/// use verkv::{Store, UuidV4};
///
/// let store: Store<String, Vec<u8>, UuidV4> = Store::builder()
///     .shards(16)
///     .capacity(10_000)
///     .versions::<UuidV4>()
///     .build();
/// assert_eq!(store.shard_count(), 16);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct StoreBuilder<K, V, S = Counter, H = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    max_capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    default_timeout: Option<Duration>,
    statistics: Option<Setup<K>>,
    /// Expiry settings, set in `cache/settings.rs`.
    pub(crate) expiration: Expiration<K, V>,
    /// The eviction listener, set in `cache/settings.rs`.
    pub(crate) notifier: Option<Arc<Notifier<K, V>>>,
    hasher: H,
    types: TypesMarker<K, V, S>,
}

impl<K, V> StoreBuilder<K, V> {
    /// A builder with the defaults: shards from the core count, no pre-allocation,
    /// [`Counter`] versions and the [`DefaultHashBuilder`].
    pub fn new() -> Self {
        StoreBuilder {
            shards: None,
            capacity: 0,
            max_capacity: None,
            weigher: None,
            default_timeout: None,
            statistics: None,
            expiration: Expiration::default(),
            notifier: None,
            hasher: DefaultHashBuilder::default(),
            types: PhantomData,
        }
    }
}

impl<K, V> Default for StoreBuilder<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Store<K, V> {
    /// An empty store with the default settings: [`Counter`] versions, the
    /// [`DefaultHashBuilder`], shards from the core count.
    ///
    /// Like `HashMap::new`, it builds only the default types, so that
    /// `let store = Store::new();` needs no annotation. A store of another scheme or
    /// hasher comes from [`Default`] (defined for every scheme and every hasher that has
    /// a default) or from the [`builder`](Store::builder).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, UuidV4};
    ///
    /// let store = Store::new();
    /// store.insert(1u64, "one").unwrap();
    /// let uuids: Store<u32, String, UuidV4> = Store::default();
    /// let sip: Store<u32, String, UuidV4, std::hash::RandomState> = Store::default();
    /// assert!(uuids.insert(1, "a".into()).unwrap() != sip.insert(1, "a".into()).unwrap());
    /// ```
    pub fn new() -> Self {
        StoreBuilder::new().build()
    }

    /// A builder to choose the shard count, capacity, hasher or version scheme.
    pub fn builder() -> StoreBuilder<K, V> {
        StoreBuilder::new()
    }
}

/// An empty store with the default settings and the version scheme and hasher of its
/// type.
impl<K, V, S: VersionScheme, H: BuildHasher + Default> Default for Store<K, V, S, H> {
    fn default() -> Self {
        StoreBuilder::new()
            .versions::<S>()
            .hasher(H::default())
            .build()
    }
}

impl<K, V, S, H> StoreBuilder<K, V, S, H> {
    /// Sets the number of shards (independently locked parts of the store).
    ///
    /// Rounded up to a power of two and capped at 65,536; `0` is taken as `1`. By default
    /// it is four per available core, rounded up to a power of two, and at least 8: enough
    /// that two threads rarely want the same lock.
    ///
    /// **With a [`max_capacity`](StoreBuilder::max_capacity) bound**, each shard evicts
    /// from its own share of it. By default a small bound gets fewer shards, so that each
    /// share holds at least 256 records: a tiny share evicts by where keys hash more than by
    /// how they are used (so `max_capacity(1000)` gets 2 shards). A count set here is kept
    /// as long as every shard gets at least one record of the bound, for a small cache
    /// written by many threads at once, at the cost of some hit ratio.
    ///
    /// # Examples
    ///
    /// ```
    /// let default: verkv::Store<u32, u32> = verkv::Store::builder().max_capacity(1000).build();
    /// assert_eq!(default.shard_count(), 2);
    /// let asked: verkv::Store<u32, u32> =
    ///     verkv::Store::builder().max_capacity(1000).shards(16).build();
    /// assert_eq!(asked.shard_count(), 16);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Reserves room for `capacity` records in total, spread evenly over the shards, so
    /// that filling the store up to it does not rehash.
    ///
    /// A hint, not a bound: the store grows past it as needed (for a bound, see
    /// [`max_capacity`](StoreBuilder::max_capacity)). A shard whose share is more than the
    /// machine can allocate when the store is built (`usize::MAX`, `1 << 40`) reserves
    /// nothing and grows as records arrive, instead of failing. moka calls this
    /// `initial_capacity`.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Bounds the store: it holds at most `max_capacity` records, or, with a
    /// [`weigher`](StoreBuilder::weigher), records weighing at most `max_capacity` in
    /// total. Writes beyond it evict other records (the same name as moka's; quick_cache
    /// calls it the weight capacity).
    ///
    /// **Eviction** is per shard: an adaptive FIFO window in front of a main CLOCK queue,
    /// with TinyLFU's frequency filter between them (the crate documentation's "The
    /// eviction policy" says what it does): a record read again soon after it was written
    /// stays, and a scan or a loop bigger than the cache does not flush the records read
    /// repeatedly.
    /// An evicted record is gone like a removed one: a read finds nothing, a conditional
    /// write gets [`Error::NotFound`](crate::Error::NotFound), and its versions are
    /// retired, so a version it had is never handed out again for its key.
    ///
    /// **Per shard.** Each shard holds an even share of the bound (the shards' shares add
    /// up to it exactly), so the store may evict from a full shard while others have
    /// room; a bound below 256 records per shard gets fewer shards, unless
    /// [`shards`](StoreBuilder::shards) asks for them. A record weighing
    /// more than a shard's share — any record, if `max_capacity` is 0 — is refused with
    /// [`Error::TooHeavy`](crate::Error::TooHeavy), its value handed back; nothing else
    /// changes.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::builder().max_capacity(1000).build();
    /// for key in 0..10_000 {
    ///     store.put(key, key).unwrap();
    /// }
    /// assert!(store.len() <= 1000);
    /// ```
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = Some(max_capacity);
        self
    }

    /// Weighs records for the [`max_capacity`](StoreBuilder::max_capacity) bound, which
    /// is then a total weight. Without a weigher every record weighs 1. Without a bound a
    /// weigher has no effect.
    ///
    /// The weigher is called when a record is written, evicted or removed, with the
    /// shard's lock held: keep it cheap, and do not call the store from it (such a call
    /// panics with a clear message instead of deadlocking; nothing is written). It must
    /// weigh the same key and value the same every time. A record of weight 0 does not
    /// count against the bound (so any number of them fit), though it may still be
    /// evicted to make room for others. (moka and quick_cache take
    /// the same closure, quick_cache as a `Weighter`.)
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Error, Store};
    ///
    /// let store: Store<u32, String> = Store::builder()
    ///     .max_capacity(1 << 20)
    ///     .weigher(|_key, value: &String| value.len().try_into().unwrap_or(u32::MAX))
    ///     .shards(1)
    ///     .build();
    /// store.insert(1, "x".repeat(1000)).unwrap();
    /// let too_big = store.insert(2, "x".repeat(2 << 20)).unwrap_err();
    /// assert!(matches!(too_big.error, Error::TooHeavy { .. }));
    /// assert_eq!(too_big.value.len(), 2 << 20); // handed back
    /// ```
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Sets the timeout of the store's [`bounded`](Store::bounded) views, like a
    /// database's `statement_timeout`: every operation made through one gives up (with
    /// no effect) once it has waited this long. A `Duration` too large to add to the
    /// current time means no limit. Plain methods of the store are not affected.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Switches statistics on (or off again): [`Store::stats`] then reports what the
    /// store did. Off by default; off, they cost nothing measurable, and on, a read
    /// counts in its thread's own counter and a write in its shard's (see
    /// `docs/benchmarks/features.md` for what that costs).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, u32> = verkv::Store::builder().statistics(true).build();
    /// store.get(&1);
    /// assert_eq!(store.stats().unwrap().misses, 1);
    /// ```
    pub fn statistics(mut self, on: bool) -> Self {
        self.statistics = on.then(|| Setup {
            hot_keys: self.statistics.and_then(|setup| setup.hot_keys),
        });
        self
    }

    /// Uses `hasher` to hash keys, e.g. [`std::hash::RandomState`] (SipHash) where keys
    /// come from untrusted clients and hash flooding must be ruled out.
    pub fn hasher<H2: BuildHasher>(self, hasher: H2) -> StoreBuilder<K, V, S, H2> {
        StoreBuilder {
            shards: self.shards,
            capacity: self.capacity,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            default_timeout: self.default_timeout,
            statistics: self.statistics,
            expiration: self.expiration,
            notifier: self.notifier,
            hasher,
            types: PhantomData,
        }
    }

    /// Uses version scheme `S2`, e.g. [`UuidV4`](crate::UuidV4) for unguessable versions.
    pub fn versions<S2: VersionScheme>(self) -> StoreBuilder<K, V, S2, H> {
        StoreBuilder {
            shards: self.shards,
            capacity: self.capacity,
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            default_timeout: self.default_timeout,
            statistics: self.statistics,
            expiration: self.expiration,
            notifier: self.notifier,
            hasher: self.hasher,
            types: PhantomData,
        }
    }
}

/// The most hot keys a store keeps per shard: each stale refusal scans them.
const MAX_HOT_KEYS: usize = 256;

impl<K: Clone, V, S, H> StoreBuilder<K, V, S, H> {
    /// Switches statistics on and keeps the `top` keys whose writes were refused as
    /// stale most often ([`Store::stats_top_conflicts`]): where writers fight. Each shard
    /// keeps a Space-Saving summary of `top` keys (at most 256), so memory stays bounded
    /// whatever the number of keys; `0` keeps none.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::builder().hot_keys(10).build();
    /// assert!(store.stats().is_some());
    /// assert!(store.stats_top_conflicts().is_empty());
    /// ```
    pub fn hot_keys(mut self, top: usize) -> Self {
        let top = top.min(MAX_HOT_KEYS);
        self.statistics = Some(Setup {
            hot_keys: (top > 0).then_some((top, K::clone as fn(&K) -> K)),
        });
        self
    }
}

impl<K, V, S: VersionScheme, H> StoreBuilder<K, V, S, H> {
    /// Builds the store.
    pub fn build(self) -> Store<K, V, S, H> {
        let bound = self.max_capacity.map(|max_capacity| Bound {
            max_capacity,
            weigher: self.weigher,
        });
        let wanted = self
            .shards
            .unwrap_or_else(default_shard_count)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        let shards = bound.as_ref().map_or(wanted, |bound| {
            bound.shard_count(wanted, self.shards.is_some())
        });
        Store::from_parts(
            shards,
            self.capacity.div_ceil(shards),
            self.hasher,
            self.default_timeout,
            CacheParts {
                bound,
                statistics: self.statistics,
                expiration: self.expiration,
                notifier: self.notifier,
            },
        )
    }
}

fn default_shard_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores * 4).max(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_is_a_power_of_two_within_bounds() {
        let count = |n| {
            StoreBuilder::<u8, u8>::new()
                .shards(n)
                .build()
                .shard_count()
        };
        assert_eq!(count(0), 1);
        assert_eq!(count(1), 1);
        assert_eq!(count(3), 4);
        assert_eq!(count(64), 64);
        assert_eq!(count(usize::MAX), MAX_SHARDS);
        let default = StoreBuilder::<u8, u8>::new().build().shard_count();
        assert!(default.is_power_of_two() && default >= 8);
    }

    #[test]
    fn absurd_capacities_neither_panic_nor_reserve() {
        for capacity in [usize::MAX, 1 << 40] {
            let store = StoreBuilder::<u64, u64>::new().capacity(capacity).build();
            assert_eq!(store.put(1, 1), Ok(1));
        }
        for bound in [u64::MAX, 1 << 40] {
            let store = StoreBuilder::<u64, u64>::new()
                .capacity(usize::MAX)
                .max_capacity(bound)
                .build();
            for key in 0..1000 {
                store.insert(key, key).unwrap();
            }
            assert_eq!(store.len(), 1000);
        }
    }

    #[test]
    fn a_zero_bound_refuses_every_write_and_hands_the_value_back() {
        let store = StoreBuilder::<u64, String>::new().max_capacity(0).build();
        let refused = store.put(1, "kept by the caller".into()).unwrap_err();
        assert_eq!(
            refused.error,
            crate::Error::TooHeavy {
                weight: 1,
                capacity: 0
            }
        );
        assert_eq!(refused.value, "kept by the caller");
        assert!(store.insert(1, "again".into()).is_err());
        assert!(store.is_empty());
    }

    #[test]
    fn a_small_bound_gets_fewer_shards_whose_shares_add_up_to_it() {
        let store = StoreBuilder::<u64, u64>::new().max_capacity(1000).build();
        assert_eq!(store.shard_count(), 2);
        for key in 0..100_000 {
            store.put(key, key).unwrap();
        }
        assert!(store.len() <= 1000 && store.len() > 900, "{}", store.len());
        let one = StoreBuilder::<u64, u64>::new().max_capacity(7).build();
        assert_eq!(one.shard_count(), 1);
    }

    #[test]
    fn shards_asked_for_are_kept_while_each_gets_a_record_of_the_bound() {
        let asked = StoreBuilder::<u64, u64>::new()
            .shards(64)
            .max_capacity(1000)
            .build();
        assert_eq!(asked.shard_count(), 64);
        for key in 0..100_000 {
            asked.put(key, key).unwrap();
        }
        assert!(asked.len() <= 1000 && asked.len() > 900, "{}", asked.len());
        // Never a shard with no room at all: 7 records, at most 4 shards.
        let tiny = StoreBuilder::<u64, u64>::new()
            .shards(64)
            .max_capacity(7)
            .build();
        assert_eq!(tiny.shard_count(), 4);
        for key in 0..1000 {
            tiny.put(key, key).unwrap();
        }
    }

    #[test]
    fn a_weigher_bounds_the_total_weight() {
        let store = StoreBuilder::<u64, Vec<u8>>::new()
            .shards(1)
            .max_capacity(1000)
            .weigher(|_, value| value.len() as u32)
            .build();
        for key in 0..1000 {
            store.put(key, vec![0; 1 + key as usize % 50]).unwrap();
            let weight: usize = store.iter().map(|(_, record)| record.value.len()).sum();
            assert!(weight <= 1000, "weight {weight}");
        }
    }

    #[test]
    fn records_of_weight_zero_do_not_count() {
        let store = StoreBuilder::<u64, u64>::new()
            .max_capacity(1)
            .weigher(|_, value| u32::from(*value != 0))
            .build();
        for key in 0..100 {
            store.insert(key, 0).unwrap();
        }
        assert_eq!(store.len(), 100);
        store.insert(100, 1).unwrap();
        store.insert(101, 1).unwrap();
        let weighed = store.iter().filter(|(_, record)| record.value != 0).count();
        assert_eq!(weighed, 1);
    }
}
