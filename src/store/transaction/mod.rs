//! Transactions across keys: compares and writes on several records, applied together or
//! not at all, and the atomic read of several records.
//!
//! - [`request`]: a [`Transaction`] as the caller builds it, and what each step did
//!   ([`Outcome`]).
//! - [`error`]: why a transaction was refused ([`TransactionError`], the failed
//!   [`Conflict`]s), with the transaction handed back ([`TransactionRefused`]).
//! - [`plan`]: checks the input (not empty, each key once) and orders the steps by shard,
//!   the one global lock order.
//! - [`commit`]: takes the shards' write locks in that order, checks every compare,
//!   applies every write, lets go, then wakes watchers and tells the eviction listener.
//! - [`read`]: [`get_many`](crate::Store::get_many), the same shards' read locks in the
//!   same order.
//!
//! Uses the store's shards, records and hooks; the bounded views and the optimistic
//! retry loop over transactions live in `wait`.

mod commit;
mod error;
mod plan;
mod read;
mod request;

pub use error::{Conflict, TransactionError, TransactionRefused};
#[cfg(feature = "postgres")]
pub(crate) use request::Step;
pub use request::{Committed, Expect, Outcome, ReadMany, Transaction};
