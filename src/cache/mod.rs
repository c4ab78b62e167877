//! The cache layer: what turns the store into an application's cache.
//!
//! - [`eviction`]: the capacity bound ([`StoreBuilder::max_capacity`] and
//!   [`StoreBuilder::weigher`]) and the eviction policy that keeps a bounded store within
//!   it. The policy's state lives in each shard, next to the records it orders, and is
//!   changed only under the shard's write lock; a read records an access in the record
//!   itself, and only when that changes what is recorded. A leaf the shard uses.
//! - [`loading`]: single-flight get-or-load. Concurrent misses on one key run the loader
//!   once; the other callers wait for its result (each within its own deadline). It sits
//!   on top of the store.
//! - [`flight`]: the wait/publish primitive underneath: one load in progress, its leader,
//!   and the per-shard table of loads in progress.
//! - [`expiry`]: time-to-live, time-to-idle and the per-record [`Expiry`] policy: each
//!   shard's timer, its side table of deadlines and the sweep that reclaims expired
//!   records inside writes. A leaf the shard uses; a store without expiry has no timer.
//! - [`clock`]: where expiry reads the time ([`Clock`], [`ManualClock`] for tests).
//! - [`listener`]: the eviction listener and its [`RemovalCause`]: removals collected
//!   under a shard's lock, delivered after it is released.
//! - [`settings`]: the builder's expiry, clock and listener settings.
//! - [`maintenance`]: [`Store::retain`] and [`Store::invalidate_all`].
//!
//! The per-write time-to-live ([`Store::expiring_after`]) is a view like the bounded
//! ones (in `wait::bounded`): it rides with the operation's wait to the shard.
//!
//! [`StoreBuilder::max_capacity`]: crate::StoreBuilder::max_capacity
//! [`StoreBuilder::weigher`]: crate::StoreBuilder::weigher
//! [`Expiry`]: crate::Expiry
//! [`Clock`]: crate::Clock
//! [`ManualClock`]: crate::ManualClock
//! [`RemovalCause`]: crate::RemovalCause
//! [`Store::retain`]: crate::Store::retain
//! [`Store::invalidate_all`]: crate::Store::invalidate_all
//! [`Store::expiring_after`]: crate::Store::expiring_after

pub(crate) mod clock;
pub(crate) mod eviction;
pub(crate) mod expiry;
pub(crate) mod flight;
pub(crate) mod listener;
pub(crate) mod loading;
pub(crate) mod maintenance;
pub(crate) mod settings;
