//! [`TryOnce`]: a wait that never waits. It takes a lock only if it is free and otherwise
//! reports [`Attempt::Busy`], having done nothing, so that an async caller can await the
//! lock's release instead of blocking its executor thread on it.

use std::time::{Duration, Instant};

use super::budget::{check_cancelled, Stop, Wait};
use super::cancel::CancelToken;
use super::timed_out::{Interrupted, Phase, TimedOut};
use crate::sync::{ChangeListener, ReadGuard, ShardLock, WriteGuard};

/// Takes a shard lock at once or not at all; stops if its token is cancelled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TryOnce<'a> {
    pub(crate) cancel: Option<&'a CancelToken>,
}

/// Why a [`TryOnce`] did not start its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The token was cancelled.
    Cancelled,
    /// The lock was taken by another operation: nothing happened, try again later.
    Busy,
}

impl From<Attempt> for Interrupted {
    /// A busy lock is a wait that ran out of time at once, queued; callers of a
    /// [`TryOnce`] tell it from a real timeout by the wait they made.
    fn from(attempt: Attempt) -> Self {
        match attempt {
            Attempt::Cancelled => Interrupted::Cancelled,
            Attempt::Busy => Interrupted::TimedOut(TimedOut::new(Phase::Queued, Duration::ZERO)),
        }
    }
}

impl Stop for Attempt {
    /// A busy lock is no stop: the caller tries again, and counts the timeout it may
    /// come to itself.
    fn counted(self) -> Option<Interrupted> {
        match self {
            Attempt::Cancelled => Some(Interrupted::Cancelled),
            Attempt::Busy => None,
        }
    }
}

impl TryOnce<'_> {
    #[inline]
    fn cancelled(&self) -> Result<(), Attempt> {
        check_cancelled(self.cancel).map_err(|_| Attempt::Cancelled)
    }
}

impl Wait for TryOnce<'_> {
    type Error = Attempt;

    #[inline]
    fn read<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<ReadGuard<'a, T>, Attempt> {
        self.cancelled()?;
        // The `blocking_async` mutant waits for the lock, blocking its caller's thread.
        #[cfg(verkv_mutant = "blocking_async")]
        return Ok(lock.read());
        #[cfg(not(verkv_mutant = "blocking_async"))]
        lock.try_read().ok_or(Attempt::Busy)
    }

    #[inline]
    fn write<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<WriteGuard<'a, T>, Attempt> {
        self.cancelled()?;
        #[cfg(verkv_mutant = "blocking_async")]
        return Ok(lock.write());
        #[cfg(not(verkv_mutant = "blocking_async"))]
        lock.try_write().ok_or(Attempt::Busy)
    }

    #[inline]
    fn may_start(&self) -> Result<(), Attempt> {
        self.cancelled()
    }

    fn fixed(&self) -> Self {
        *self
    }

    /// A retry loop never runs on a `TryOnce`: it would spin.
    fn between_attempts(&self, _started: Instant, _attempts: u32) -> Result<(), Attempt> {
        self.cancelled()?;
        Err(Attempt::Busy)
    }

    /// Nothing is waited for: the caller awaits instead.
    fn park(
        &self,
        _listener: ChangeListener,
        _started: Instant,
        _phase: Phase,
    ) -> Result<(), Attempt> {
        self.cancelled()?;
        Err(Attempt::Busy)
    }
}
