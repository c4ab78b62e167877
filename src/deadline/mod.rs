//! Deadlines and cancellation: how long an operation may wait, and how it says that it
//! stopped.
//!
//! [`budget`] holds the store's one way of blocking (the `Wait` trait: wait forever, or
//! until a deadline or a cancellation); [`try_once`] the wait that never blocks, for
//! async callers that await a busy lock instead; [`timed_out`] the errors a bounded
//! operation stops with; [`cancel`] the token that stops it from another thread.
//!
//! Uses only `sync`; the store and everything above it wait through here.

mod budget;
mod cancel;
mod timed_out;
#[cfg(not(verkv_loom))]
mod try_once;

pub(crate) use budget::{Budget, Forever, Limit, Stop, Wait};
pub use cancel::CancelToken;
pub use timed_out::{Interrupted, Phase, TimedOut};
#[cfg(not(verkv_loom))]
pub(crate) use try_once::{Attempt, TryOnce};
