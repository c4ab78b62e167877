//! How long an operation may wait, and what happens when that runs out.
//!
//! [`Wait`] is the store's one entry point for blocking: taking a shard lock, pausing
//! between retries, and waiting for a change. [`Forever`] waits without bound and cannot
//! fail; [`Budget`] stops at a deadline or a cancellation. Deadlines are `Instant`s
//! inside, `Duration`s at the surface; a `Duration` too large to add to now means no
//! deadline.

use std::convert::Infallible;
use std::fmt;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::sync::{self, ChangeListener, ReadGuard, ShardLock, WriteGuard};

/// How often a wait that can be cancelled looks at its token.
const CANCEL_POLL: Duration = Duration::from_millis(1);

/// Where an operation was when its deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting behind other operations (for its shard lock; on a database server, for a
    /// pooled connection or a row lock): it never started.
    Queued,
    /// Inside an optimistic retry loop, after this many attempts were refused as stale.
    Retrying {
        /// Attempts made (each a read and a refused compare-and-swap).
        attempts: u32,
    },
    /// Waiting for a record to change.
    Watching,
    /// Running on a database server (a backend's statement timeout): the server cancelled
    /// the statement, which had no effect.
    Running,
}

/// An operation ran out of time. It had no effect.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{Phase, TimedOut};
///
/// let late = TimedOut::new(Phase::Queued, Duration::from_millis(5));
/// assert_eq!(late.to_string(), "timed out after 5ms queued behind other operations; the operation did not start");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    phase: Phase,
    /// Nanoseconds waited; `u64` rather than `Duration` keeps the error small.
    waited_nanos: u64,
}

impl TimedOut {
    /// A timeout in `phase` after waiting `waited`.
    pub fn new(phase: Phase, waited: Duration) -> Self {
        TimedOut {
            phase,
            waited_nanos: u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Where the operation was when time ran out.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How long the operation waited before giving up.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos)
    }

    /// The same timeout, reported as happening inside a retry loop after `attempts`
    /// refused attempts (if there were any).
    pub(crate) fn after_attempts(self, attempts: u32) -> Self {
        match self.phase {
            Phase::Queued if attempts > 0 => TimedOut {
                phase: Phase::Retrying { attempts },
                ..self
            },
            _ => self,
        }
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waited = self.waited();
        match self.phase {
            Phase::Queued => write!(
                f,
                "timed out after {waited:?} queued behind other operations; the operation did not start"
            ),
            Phase::Retrying { attempts } => write!(
                f,
                "timed out after {waited:?} retrying; {attempts} attempts were stale and nothing was written"
            ),
            Phase::Watching => write!(f, "timed out after {waited:?} waiting for a change"),
            Phase::Running => write!(
                f,
                "timed out after {waited:?} running on the server; the statement was cancelled and had no effect"
            ),
        }
    }
}

impl std::error::Error for TimedOut {}

/// Why a bounded operation stopped before taking effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// Its deadline passed.
    TimedOut(TimedOut),
    /// Its [`CancelToken`] was cancelled.
    Cancelled,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupted::TimedOut(timed_out) => timed_out.fmt(f),
            Interrupted::Cancelled => f.write_str("operation cancelled"),
        }
    }
}

impl std::error::Error for Interrupted {}

/// How the store blocks: on a shard lock, between retries, for a change.
pub(crate) trait Wait {
    /// What a wait can fail with.
    type Error: Copy;

    fn read<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<ReadGuard<'a, T>, Self::Error>;

    fn write<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<WriteGuard<'a, T>, Self::Error>;

    /// The same limit, with a relative timeout turned into a deadline from now, for
    /// operations made of several waits (retries, watching).
    fn fixed(&self) -> Self;

    /// Checks, between two attempts of a retry loop, that there is time left.
    fn between_attempts(&self, started: Instant, attempts: u32) -> Result<(), Self::Error>;

    /// Blocks until `listener` is woken (or a polling slice ends: the caller re-checks).
    fn park(&self, listener: ChangeListener, started: Instant) -> Result<(), Self::Error>;
}

/// Waits as long as it takes.
pub(crate) struct Forever;

impl Wait for Forever {
    type Error = Infallible;

    fn read<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<ReadGuard<'a, T>, Infallible> {
        Ok(lock.read())
    }

    fn write<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<WriteGuard<'a, T>, Infallible> {
        Ok(lock.write())
    }

    fn fixed(&self) -> Self {
        Forever
    }

    fn between_attempts(&self, _started: Instant, _attempts: u32) -> Result<(), Infallible> {
        Ok(())
    }

    fn park(&self, listener: ChangeListener, _started: Instant) -> Result<(), Infallible> {
        sync::wait(listener, None);
        Ok(())
    }
}

/// When a bounded operation must stop waiting.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// No deadline (an overflowing timeout, or a bounded view without one).
    Never,
    /// This long after the operation starts waiting.
    After(Duration),
    /// At this instant.
    At(Instant),
}

impl Limit {
    /// The deadline for a wait that begins at `now`; `None` for no deadline.
    fn deadline_from(self, now: Instant) -> Option<Instant> {
        match self {
            Limit::Never => None,
            Limit::After(timeout) => now.checked_add(timeout),
            Limit::At(deadline) => Some(deadline),
        }
    }
}

/// Waits until a deadline, or until a token is cancelled.
///
/// It borrows the token rather than owning a clone: a budget is a pair of plain values
/// with nothing to drop, so a view made for a single operation costs nothing to build
/// and, once the operation is inlined, nothing to keep in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget<'a> {
    pub(crate) limit: Limit,
    pub(crate) cancel: Option<&'a CancelToken>,
}

impl Budget<'_> {
    /// Takes a lock: at once if it is free (no clock is read on that path), else in
    /// slices until the deadline, checking the token between slices.
    #[inline]
    fn acquire<G>(
        &self,
        try_now: impl Fn() -> Option<G>,
        blocking: impl Fn() -> G,
        until: impl Fn(Instant) -> Option<G>,
    ) -> Result<G, Interrupted> {
        check_cancelled(self.cancel)?;
        match try_now() {
            Some(guard) => Ok(guard),
            None => {
                // A placeholder: `wait_for_lock` sets it whenever it gives up.
                let mut stopped = Interrupted::Cancelled;
                match wait_for_lock(self.limit, self.cancel, blocking, until, &mut stopped) {
                    Some(guard) => Ok(guard),
                    None => Err(stopped),
                }
            }
        }
    }
}

/// `Cancelled` if there is a token and it was cancelled.
#[inline]
fn check_cancelled(cancel: Option<&CancelToken>) -> Result<(), Interrupted> {
    match cancel {
        Some(token) if token.is_cancelled() => Err(Interrupted::Cancelled),
        _ => Ok(()),
    }
}

/// The end of the next slice of waiting: the deadline, or sooner to look at the token.
fn slice_end(cancel: Option<&CancelToken>, deadline: Option<Instant>) -> Option<Instant> {
    match cancel {
        None => deadline,
        Some(_) => {
            let poll = Instant::now() + CANCEL_POLL;
            Some(deadline.map_or(poll, |deadline| deadline.min(poll)))
        }
    }
}

/// The slow path of [`Budget::acquire`], kept out of line so the fast path stays small
/// enough to inline: the guard, or `None` with `stopped` set to why it gave up.
///
/// Its shape keeps the fast path free of memory traffic. It takes the budget's two parts
/// as separate values: passed whole (by value or by address), the budget would be stored
/// to memory on entry to every operation. It answers in an `Option`, which fits in a
/// register, not in a `Result` with the error inside, which does not: merged with the
/// fast path's `Ok`, that made every write store its guard to the stack.
#[cold]
#[inline(never)]
fn wait_for_lock<G>(
    limit: Limit,
    cancel: Option<&CancelToken>,
    blocking: impl Fn() -> G,
    until: impl Fn(Instant) -> Option<G>,
    stopped: &mut Interrupted,
) -> Option<G> {
    let started = Instant::now();
    let deadline = limit.deadline_from(started);
    loop {
        let slice_end = slice_end(cancel, deadline);
        let acquired = match slice_end {
            None => Some(blocking()),
            Some(end) => until(end),
        };
        if acquired.is_some() {
            return acquired;
        }
        if let Err(cancelled) = check_cancelled(cancel) {
            *stopped = cancelled;
            return None;
        }
        // A failed wait until the deadline itself means the deadline passed.
        if slice_end == deadline {
            *stopped = Interrupted::TimedOut(TimedOut::new(Phase::Queued, started.elapsed()));
            return None;
        }
    }
}

impl Wait for Budget<'_> {
    type Error = Interrupted;

    #[inline]
    fn read<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<ReadGuard<'a, T>, Interrupted> {
        self.acquire(
            || lock.try_read(),
            || lock.read(),
            |end| lock.read_until(end),
        )
    }

    #[inline]
    fn write<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<WriteGuard<'a, T>, Interrupted> {
        self.acquire(
            || lock.try_write(),
            || lock.write(),
            |end| lock.write_until(end),
        )
    }

    fn fixed(&self) -> Self {
        let limit = match self.limit.deadline_from(Instant::now()) {
            Some(deadline) => Limit::At(deadline),
            None => Limit::Never,
        };
        Budget {
            limit,
            cancel: self.cancel,
        }
    }

    fn between_attempts(&self, started: Instant, attempts: u32) -> Result<(), Interrupted> {
        check_cancelled(self.cancel)?;
        match self.limit.deadline_from(started) {
            Some(deadline) if Instant::now() >= deadline => Err(Interrupted::TimedOut(
                TimedOut::new(Phase::Retrying { attempts }, started.elapsed()),
            )),
            _ => Ok(()),
        }
    }

    fn park(&self, listener: ChangeListener, started: Instant) -> Result<(), Interrupted> {
        check_cancelled(self.cancel)?;
        let deadline = self.limit.deadline_from(started);
        let slice_end = slice_end(self.cancel, deadline);
        if sync::wait(listener, slice_end) {
            return Ok(());
        }
        check_cancelled(self.cancel)?;
        match deadline {
            Some(deadline) if Instant::now() >= deadline => Err(Interrupted::TimedOut(
                TimedOut::new(Phase::Watching, started.elapsed()),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_where_time_ran_out() {
        let ms = Duration::from_millis(3);
        assert_eq!(
            TimedOut::new(Phase::Retrying { attempts: 4 }, ms).to_string(),
            "timed out after 3ms retrying; 4 attempts were stale and nothing was written"
        );
        assert_eq!(
            TimedOut::new(Phase::Watching, ms).to_string(),
            "timed out after 3ms waiting for a change"
        );
        assert_eq!(
            TimedOut::new(Phase::Running, ms).to_string(),
            "timed out after 3ms running on the server; the statement was cancelled and had no effect"
        );
        assert_eq!(Interrupted::Cancelled.to_string(), "operation cancelled");
    }

    #[test]
    fn queued_timeouts_move_into_the_retry_phase_after_attempts() {
        let queued = TimedOut::new(Phase::Queued, Duration::ZERO);
        assert_eq!(queued.after_attempts(0).phase(), Phase::Queued);
        assert_eq!(
            queued.after_attempts(2).phase(),
            Phase::Retrying { attempts: 2 }
        );
    }

    #[test]
    fn overflowing_timeouts_mean_no_deadline() {
        let now = Instant::now();
        assert_eq!(Limit::After(Duration::MAX).deadline_from(now), None);
        assert_eq!(Limit::After(Duration::ZERO).deadline_from(now), Some(now));
        assert_eq!(Limit::Never.deadline_from(now), None);
    }

    #[test]
    fn waited_time_saturates() {
        assert_eq!(
            TimedOut::new(Phase::Queued, Duration::MAX).waited(),
            Duration::from_nanos(u64::MAX)
        );
    }
}
