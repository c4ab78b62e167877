//! The store: the concurrent map of versioned records, and its single-threaded core.
//!
//! - [`facade`]: [`Store`] hashes a key, picks its shard, takes the shard's lock through
//!   a `Wait` (from `deadline`) and delegates.
//! - [`locked`]: a shard as the store holds it: behind its lock, with its change event,
//!   loads in progress, counters and memory of stale refusals beside it.
//! - [`stale`]: refuses a stale conditional write on the read path, in a shard that has
//!   refused stale writes lately, so that it writes nothing another core reads.
//! - [`shard`]: a plain `&mut self` map of records holding every version check. No locks,
//!   no clocks.
//! - [`record`]: what is kept per key, and the snapshot a read hands out.
//! - [`state`]: what a record carries beside its value and version, if anything.
//! - [`records`]: a shard whose records carry nothing, or their eviction state.
//! - [`builder`]: configuration before a store is built.
//! - [`iter`]: iteration over owned snapshots, shard by shard.
//! - [`reentry`]: refuses a closure that calls back into the store running it.
//! - [`error`]: why an operation did not take effect.
//! - [`tally`]: the one-line hooks through which operations count into `stats`.
//! - [`report`]: [`Store::stats`] and [`Store::stats_top_conflicts`], each shard read for
//!   the report `stats` sums.
//! - [`transaction`]: transactions across keys ([`Store::commit`]) and the atomic read of
//!   several keys ([`Store::get_many`]).
//! - [`parts`]: what a shard carries when the builder asks for it: the capacity bound's
//!   eviction policy, the expiry timer and its clock, the removals told to the eviction
//!   listener, the loads in progress.
//!
//! Uses `sync`, `version`, `deadline` and the counters of `stats`. Never the layers above
//! it (`wait`, `patch`, `http`, `cache`, `snapshot`, `backend`), which add methods to
//! [`Store`] in their own files.

mod builder;
mod error;
pub(crate) mod facade;
mod iter;
mod locked;
pub(crate) mod parts;
pub(crate) mod record;
pub(crate) mod records;
pub(crate) mod reentry;
mod report;
pub(crate) mod shard;
mod stale;
mod state;
pub(crate) mod tally;
mod transaction;

pub use builder::StoreBuilder;
pub use error::{Cause, Error, NotInserted, Rejected, UpdateWithError};
pub(crate) use facade::write_shard;
#[cfg(not(verkv_loom))]
pub(crate) use facade::WrittenOrHandedBack;
pub use facade::{DefaultHashBuilder, Store, VersionOf};
pub use iter::{Iter, Keys};
pub(crate) use locked::LockedShard;
pub use parts::clock::{Clock, ManualClock};
pub use parts::expiry::Expiry;
pub use parts::removals::RemovalCause;
pub use record::Versioned;
#[cfg(feature = "snapshot")]
pub(crate) use shard::Placed;
pub(crate) use state::Stored;
pub(crate) use tally::{count_event, count_stop, LoadTimer};
#[cfg(feature = "postgres")]
pub(crate) use transaction::Step as TransactionStep;
pub use transaction::{
    Committed, Conflict, Expect, Outcome, ReadMany, Transaction, TransactionError,
    TransactionRefused,
};
