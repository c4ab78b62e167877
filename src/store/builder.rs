//! Configuration of a [`Store`] before it is built.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::time::Duration;

use super::facade::{DefaultHashBuilder, Store};
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
    default_timeout: Option<Duration>,
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
            default_timeout: None,
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
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Reserves room for `capacity` records in total, spread evenly over the shards, so
    /// that filling the store up to it does not rehash.
    ///
    /// A hint, not a bound: a shard whose share is more than the machine can allocate
    /// when the store is built (`usize::MAX`, `1 << 40`) reserves nothing and grows as
    /// records arrive, instead of failing. (What moka and quick_cache call capacity is a
    /// bound on the number of entries.)
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
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

    /// Uses `hasher` to hash keys, e.g. [`std::hash::RandomState`] (SipHash) where keys
    /// come from untrusted clients and hash flooding must be ruled out.
    pub fn hasher<H2: BuildHasher>(self, hasher: H2) -> StoreBuilder<K, V, S, H2> {
        StoreBuilder {
            shards: self.shards,
            capacity: self.capacity,
            default_timeout: self.default_timeout,
            hasher,
            types: PhantomData,
        }
    }

    /// Uses version scheme `S2`, e.g. [`UuidV4`](crate::UuidV4) for unguessable versions.
    pub fn versions<S2: VersionScheme>(self) -> StoreBuilder<K, V, S2, H> {
        StoreBuilder {
            shards: self.shards,
            capacity: self.capacity,
            default_timeout: self.default_timeout,
            hasher: self.hasher,
            types: PhantomData,
        }
    }
}

impl<K, V, S: VersionScheme, H> StoreBuilder<K, V, S, H> {
    /// Builds the store.
    pub fn build(self) -> Store<K, V, S, H> {
        let shards = self
            .shards
            .unwrap_or_else(default_shard_count)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two();
        Store::from_parts(
            shards,
            self.capacity.div_ceil(shards),
            self.hasher,
            self.default_timeout,
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
    fn an_absurd_capacity_is_not_reserved_and_the_store_still_works() {
        for capacity in [usize::MAX, 1 << 40] {
            let store: Store<u64, u64> = StoreBuilder::new().shards(2).capacity(capacity).build();
            assert_eq!(store.insert(1, 1), Ok(1));
            assert_eq!(store.get(&1).map(|read| read.value), Some(1));
        }
    }
}
