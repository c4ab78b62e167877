//! What a shard may carry beside its records, each part off unless the builder asks for
//! it: the parts that specialise a shard, kept with it.
//!
//! - [`eviction`]: the capacity bound ([`StoreBuilder::max_capacity`] and
//!   [`StoreBuilder::weigher`]) and the eviction policy that keeps a bounded shard within
//!   its share. The policy's state lives in the shard, next to the records it orders, and
//!   is changed only under the shard's write lock; a read records an access in the record
//!   itself, and only when that changes what is recorded.
//! - [`expiry`]: time-to-live, time-to-idle and the per-record [`Expiry`] policy: a
//!   shard's timer, its side table of deadlines and the sweep that reclaims expired
//!   records inside writes. A shard without expiry has no timer.
//! - [`clock`]: where expiry reads the time ([`Clock`], [`ManualClock`] for tests).
//! - [`removals`]: the records that left a shard, collected under its lock for the
//!   eviction listener, and their [`RemovalCause`].
//! - [`flights`]: a shard's loads in progress, and the wait/publish primitive of one load,
//!   which single-flight loading (in `cache`) drives.
//!
//! [`StoreBuilder::max_capacity`]: crate::StoreBuilder::max_capacity
//! [`StoreBuilder::weigher`]: crate::StoreBuilder::weigher
//! [`Expiry`]: crate::Expiry
//! [`Clock`]: crate::Clock
//! [`ManualClock`]: crate::ManualClock
//! [`RemovalCause`]: crate::RemovalCause

pub(crate) mod clock;
pub(crate) mod eviction;
pub(crate) mod expiry;
pub(crate) mod flights;
pub(crate) mod removals;
