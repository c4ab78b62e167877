//! The cache layer: what turns the store into an application's cache.
//!
//! - [`loading`]: single-flight get-or-load. Concurrent misses on one key run the loader
//!   once; the other callers wait for its result (each within its own deadline).
//! - [`flight`]: the wait/publish primitive underneath: one load in progress, its leader,
//!   and the per-shard table of loads in progress.

pub(crate) mod flight;
pub(crate) mod loading;
