//! The cache layer: what turns the store into a cache.
//!
//! Today that is the capacity bound ([`StoreBuilder::max_capacity`] and
//! [`StoreBuilder::weigher`]) and the eviction policy that keeps a bounded store within
//! it ([`eviction`]). The policy's state lives in each shard, next to the records it
//! orders, and is changed only under the shard's write lock; a read records an access in
//! the record itself, and only when that changes what is recorded.
//!
//! [`StoreBuilder::max_capacity`]: crate::StoreBuilder::max_capacity
//! [`StoreBuilder::weigher`]: crate::StoreBuilder::weigher

pub(crate) mod eviction;
