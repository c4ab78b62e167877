//! The cache layer: what turns the store into an application's cache.
//!
//! - [`loading`]: single-flight get-or-load. Concurrent misses on one key run the loader
//!   once; the other callers wait for its result (each within its own deadline). It sits
//!   on top of the store, and drives the table of loads in progress each shard holds.
//! - [`listener`]: [`Store::listener_panics`], the eviction listener's count of caught
//!   panics.
//! - [`settings`]: the builder's expiry, clock and listener settings.
//! - [`maintenance`]: [`Store::retain`] and [`Store::invalidate_all`].
//!
//! The parts a shard carries for the cache (the bound's eviction policy, the expiry timer
//! and its clock, the removals told to the listener, the loads in progress) are in
//! `store/parts/`: they specialise the shard, and the store holds them.
//!
//! The per-write time-to-live ([`Store::expiring_after`]) is a view like the bounded
//! ones (in `wait::bounded`): it rides with the operation's wait to the shard.
//!
//! [`Store::listener_panics`]: crate::Store::listener_panics
//! [`Store::retain`]: crate::Store::retain
//! [`Store::invalidate_all`]: crate::Store::invalidate_all
//! [`Store::expiring_after`]: crate::Store::expiring_after

pub(crate) mod listener;
pub(crate) mod loading;
pub(crate) mod maintenance;
pub(crate) mod settings;
