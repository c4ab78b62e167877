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
//!
//! [`StoreBuilder::max_capacity`]: crate::StoreBuilder::max_capacity
//! [`StoreBuilder::weigher`]: crate::StoreBuilder::weigher

pub(crate) mod eviction;
pub(crate) mod flight;
pub(crate) mod loading;
