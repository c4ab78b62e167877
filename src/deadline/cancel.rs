//! Cancelling operations from another thread.

use std::fmt;

#[cfg(not(verkv_loom))]
use crate::sync::ChangeListener;
use crate::sync::{Arc, Signal};

/// A cheap, clonable flag that cancels the operations it is attached to.
///
/// Attach it with [`Bounded::with_cancel`](crate::Bounded::with_cancel). An operation
/// checks the token before it starts and while it waits (for a shard lock, between
/// retries, for a change), and then returns a cancelled error having had no effect. An
/// operation that already holds its shard lock finishes. Waits notice a cancellation
/// within about a millisecond.
///
/// All clones share one flag; once cancelled, a token stays cancelled.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{CancelToken, Error, Store};
///
/// let store: Store<&str, u32> = Store::new();
/// let token = CancelToken::new();
/// let bounded = store.within(Duration::from_secs(1)).with_cancel(&token);
///
/// token.clone().cancel(); // e.g. from the thread that handles a client disconnect
/// let err = bounded.insert("a", 1).unwrap_err();
/// assert_eq!(err.error, Error::Cancelled);
/// assert!(!store.contains_key(&"a"));
/// ```
#[derive(Clone)]
pub struct CancelToken {
    cancelled: Arc<Signal>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken {
            cancelled: Arc::new(Signal::new()),
        }
    }

    /// Cancels every operation this token (or a clone) is attached to, and wakes the
    /// async waits among them.
    pub fn cancel(&self) {
        self.cancelled.raise();
    }

    /// Whether [`cancel`](CancelToken::cancel) was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_raised()
    }

    /// A future that completes when the token is cancelled (take it, then look at
    /// [`is_cancelled`](CancelToken::is_cancelled)).
    #[cfg(not(verkv_loom))]
    pub(crate) fn listen(&self) -> ChangeListener {
        self.cancelled.listen()
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
