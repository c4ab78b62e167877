//! Statistics: what a store did, and where its writers fought.
//!
//! Off unless the builder switches them on ([`statistics`](crate::StoreBuilder::statistics),
//! [`hot_keys`](crate::StoreBuilder::hot_keys)); then the store's operations count
//! through one-line hooks, and [`Store::stats`](crate::Store::stats) sums the counters.
//!
//! - [`striped`]: hits and misses, counted in the reading thread's own stripe.
//! - [`counters`]: a shard's counters: writes and refusals (under its write lock), lock
//!   waits, loads, stops; and its [`hot_keys`] summary.
//! - [`hot_keys`]: the Space-Saving summary of the keys refused as stale most often.
//! - [`snapshot`]: [`Stats`], the plain data reported, with deltas and a hit ratio.
//! - [`report`]: the sums behind [`Store::stats`](crate::Store::stats) and
//!   [`Store::stats_top_conflicts`](crate::Store::stats_top_conflicts), over what the
//!   store reads from each shard.
//! - `metrics` (the `metrics` feature): publishes a snapshot through the `metrics` facade.
//!
//! The counters use `sync` and `deadline`; the store's hooks use them, and the store reads
//! its shards for the report. Nothing here names the store.

pub(crate) mod counters;
pub(crate) mod hot_keys;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub(crate) mod report;
pub(crate) mod snapshot;
pub(crate) mod striped;

pub use hot_keys::HotKey;
pub use snapshot::{Evictions, Loads, LockWaits, Refusals, Stats, Timeouts, LOCK_WAIT_BUCKETS};
