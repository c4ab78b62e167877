//! Cancelling operations from another thread.

use std::fmt;

use crate::sync::{Arc, AtomicBool, Ordering};

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
#[derive(Clone, Default)]
pub struct CancelToken {
    cancelled: Arc<AtomicBool>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every operation this token (or a clone) is attached to.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](CancelToken::cancel) was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
