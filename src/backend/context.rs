//! The deadline and cancel token one operation of a [`VersionedStore`](super::VersionedStore)
//! runs under.

use std::time::{Duration, Instant};

use crate::deadline::{Budget, CancelToken, Limit};

/// How long an operation may take and what can stop it, like Go's `context.Context`:
/// a deadline (none by default) and an optional [`CancelToken`].
///
/// The deadline covers the whole operation: the time queued (for a lock, a pooled
/// connection, a row lock) and the time running. An operation that runs out of time or
/// is cancelled has had no effect.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{CancelToken, Context};
///
/// let token = CancelToken::new();
/// let ctx = Context::within(Duration::from_millis(200)).with_cancel(&token);
/// assert!(ctx.deadline().is_some());
/// assert!(Context::background().deadline().is_none());
/// // Too large to add to now: no deadline, as with `Store::within`.
/// assert!(Context::within(Duration::MAX).deadline().is_none());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    deadline: Option<Instant>,
    cancel: Option<&'a CancelToken>,
}

impl<'a> Context<'a> {
    /// No deadline, no token: the operation waits as long as it takes.
    pub fn background() -> Self {
        Context::default()
    }

    /// A deadline `timeout` from now (none if that is too far to represent).
    pub fn within(timeout: Duration) -> Self {
        Context {
            deadline: Instant::now().checked_add(timeout),
            cancel: None,
        }
    }

    /// A deadline at `deadline`, which may be shared by several operations.
    pub fn until(deadline: Instant) -> Self {
        Context {
            deadline: Some(deadline),
            cancel: None,
        }
    }

    /// Also stops, with no effect, once `token` is cancelled.
    pub fn with_cancel(mut self, token: &'a CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The deadline, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The cancel token, if there is one.
    pub fn cancel_token(&self) -> Option<&'a CancelToken> {
        self.cancel
    }

    /// Whether the token has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(CancelToken::is_cancelled)
    }

    /// The time left before the deadline (`None`: no deadline; zero once it passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The context as the store's own deadline type, for the waits the provided methods
    /// of [`VersionedStore`](super::VersionedStore) make between their calls.
    pub(crate) fn budget(&self) -> Budget<'a> {
        Budget {
            limit: self.deadline.map_or(Limit::Never, Limit::At),
            cancel: self.cancel,
            time_to_live: None,
        }
    }
}
