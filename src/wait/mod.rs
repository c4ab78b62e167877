//! Operations that wait, built on the store: deadline-bounded and cancellable views
//! ([`Bounded`]), the optimistic retry loop, and waiting for a record to change.
//!
//! Each file adds methods to [`Store`](crate::Store) and [`Bounded`]. Uses `store` and
//! `deadline`; `patch` and `http` build on it.

mod bounded;
mod completed;
mod retry;
mod transact;
mod watch;

pub use bounded::Bounded;
pub(crate) use completed::completed;
pub(crate) use retry::optimistic;
pub use retry::Retried;
#[cfg(not(verkv_loom))]
pub(crate) use retry::{Attempts, Next};
pub(crate) use transact::optimistic_transaction;
pub use transact::{TransactError, Transacted};
