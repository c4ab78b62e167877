//! Deadlines and cancellation: how long an operation may wait, and how it says that it
//! stopped.
//!
//! [`budget`] holds the store's one way of blocking (the `Wait` trait: wait forever, or
//! until a deadline or a cancellation); [`timed_out`] the errors a bounded operation
//! stops with; [`cancel`] the token that stops it from another thread.
//!
//! Uses only `sync`; the store and everything above it wait through here.

mod budget;
mod cancel;
mod timed_out;

pub(crate) use budget::{Budget, Forever, Limit, Wait};
pub use cancel::CancelToken;
pub use timed_out::{Interrupted, Phase, TimedOut};
