//! How the store blocks: [`Wait`] is its one entry point for taking a shard lock,
//! pausing between retries and waiting for a change. [`Forever`] waits without bound and
//! cannot fail; [`Budget`] stops at a deadline or a cancellation. Deadlines are `Instant`s
//! inside, `Duration`s at the surface; a `Duration` too large to add to now means no
//! deadline.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use super::cancel::CancelToken;
use super::timed_out::{Interrupted, Phase, TimedOut};
use crate::sync::{self, ChangeListener, ReadGuard, ShardLock, WriteGuard};

/// How often a wait that can be cancelled looks at its token.
const CANCEL_POLL: Duration = Duration::from_millis(1);

/// How close to its deadline a lock wait stops parking on the lock and polls it instead,
/// sleeping between tries.
///
/// The lock's own timed wait spins and then yields the processor several times before it
/// parks, without looking at the clock. On a loaded machine one yield can cost a whole
/// round of the scheduler (16-18 ms with six busy threads on two cores), which carries a
/// short wait far past its deadline. A sleeping thread, by contrast, is woken promptly
/// when its sleep ends. Loom has no clock: there every bounded wait polls (once).
#[cfg(not(verkv_loom))]
const NEAR_DEADLINE: Duration = Duration::from_millis(50);
#[cfg(verkv_loom)]
const NEAR_DEADLINE: Duration = Duration::MAX;

/// The first and the longest sleep between two polls of a lock near its deadline.
const FIRST_POLL_SLEEP: Duration = Duration::from_micros(20);
const LONGEST_POLL_SLEEP: Duration = Duration::from_millis(1);

/// How the store blocks: on a shard lock, between retries, for a change.
pub(crate) trait Wait {
    /// What a wait can fail with.
    type Error: Stop;

    fn read<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<ReadGuard<'a, T>, Self::Error>;

    fn write<'a, T>(&self, lock: &'a ShardLock<T>) -> Result<WriteGuard<'a, T>, Self::Error>;

    /// Whether an operation may start: what `read` and `write` check before they try
    /// the lock (the cancel token), for callers that try it themselves first.
    fn may_start(&self) -> Result<(), Self::Error>;

    /// The same limit, with a relative timeout turned into a deadline from now, for
    /// operations made of several waits (retries, watching).
    fn fixed(&self) -> Self;

    /// Checks, between two attempts of a retry loop, that there is time left.
    fn between_attempts(&self, started: Instant, attempts: u32) -> Result<(), Self::Error>;

    /// Blocks until `listener` is woken (or a polling slice ends: the caller re-checks);
    /// a timeout is reported as happening in `phase`.
    fn park(
        &self,
        listener: ChangeListener,
        started: Instant,
        phase: Phase,
    ) -> Result<(), Self::Error>;

    /// The time-to-live the operation's writes give their records, if its caller chose
    /// one (`Store::expiring_after`); `None` leaves it to the store's expiry settings. It
    /// rides with the wait so that every write, of every view, takes it the same way.
    #[inline]
    fn time_to_live(&self) -> Option<Duration> {
        None
    }
}

/// What a [`Wait`] fails with: an interruption the operation reports, and the one the
/// statistics count.
pub(crate) trait Stop: Copy + Into<Interrupted> {
    /// The interruption the statistics count, if they count this one.
    fn counted(self) -> Option<Interrupted> {
        Some(self.into())
    }
}

impl Stop for Interrupted {}

impl Stop for Infallible {}

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

    fn may_start(&self) -> Result<(), Infallible> {
        Ok(())
    }

    fn fixed(&self) -> Self {
        Forever
    }

    fn between_attempts(&self, _started: Instant, _attempts: u32) -> Result<(), Infallible> {
        Ok(())
    }

    fn park(
        &self,
        listener: ChangeListener,
        _started: Instant,
        _phase: Phase,
    ) -> Result<(), Infallible> {
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
    pub(crate) fn deadline_from(self, now: Instant) -> Option<Instant> {
        match self {
            Limit::Never => None,
            Limit::After(timeout) => now.checked_add(timeout),
            Limit::At(deadline) => Some(deadline),
        }
    }
}

/// Waits until a deadline, or until a token is cancelled.
///
/// It borrows the token rather than owning a clone: a budget is a few plain values
/// with nothing to drop, so a view made for a single operation costs nothing to build
/// and, once the operation is inlined, nothing to keep in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget<'a> {
    pub(crate) limit: Limit,
    pub(crate) cancel: Option<&'a CancelToken>,
    /// The time-to-live of the writes made within this budget (see [`Wait::time_to_live`]).
    pub(crate) time_to_live: Option<Duration>,
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
                let waited = wait_for_lock(
                    self.limit,
                    self.cancel,
                    try_now,
                    blocking,
                    until,
                    &mut stopped,
                );
                match waited {
                    Some(guard) => Ok(guard),
                    None => Err(stopped),
                }
            }
        }
    }
}

/// `Cancelled` if there is a token and it was cancelled.
#[inline]
pub(super) fn check_cancelled(cancel: Option<&CancelToken>) -> Result<(), Interrupted> {
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
/// It looks at the deadline before every wait, so a deadline that has passed (a zero
/// timeout included) gives up at once, without spinning or yielding. Far from the
/// deadline it parks on the lock; within [`NEAR_DEADLINE`] of it, it polls the lock and
/// sleeps between tries, never past the deadline.
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
    try_now: impl Fn() -> Option<G>,
    blocking: impl Fn() -> G,
    until: impl Fn(Instant) -> Option<G>,
    stopped: &mut Interrupted,
) -> Option<G> {
    let started = Instant::now();
    let deadline = limit.deadline_from(started);
    let mut poll_sleep = FIRST_POLL_SLEEP;
    loop {
        if let Err(cancelled) = check_cancelled(cancel) {
            *stopped = cancelled;
            return None;
        }
        let now = Instant::now();
        let acquired = match deadline {
            None => match cancel {
                None => Some(blocking()),
                Some(_) => until(now + CANCEL_POLL),
            },
            Some(deadline) if now >= deadline => None,
            Some(deadline) if deadline - now <= NEAR_DEADLINE => {
                let acquired = try_now();
                if acquired.is_none() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !sync::sleep_briefly(poll_sleep.min(left)) {
                        // Loom: no clock to sleep on; the one poll was the wait.
                        *stopped = timed_out(started);
                        return None;
                    }
                    poll_sleep = (poll_sleep * 2).min(LONGEST_POLL_SLEEP);
                }
                acquired
            }
            Some(deadline) => {
                let park_until = deadline - NEAR_DEADLINE;
                until(match cancel {
                    None => park_until,
                    Some(_) => park_until.min(now + CANCEL_POLL),
                })
            }
        };
        if acquired.is_some() {
            return acquired;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            *stopped = timed_out(started);
            return None;
        }
    }
}

/// A lock wait that began at `started` and whose deadline has passed.
fn timed_out(started: Instant) -> Interrupted {
    Interrupted::TimedOut(TimedOut::new(Phase::Queued, started.elapsed()))
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

    #[inline]
    fn may_start(&self) -> Result<(), Interrupted> {
        check_cancelled(self.cancel)
    }

    fn fixed(&self) -> Self {
        let limit = match self.limit.deadline_from(Instant::now()) {
            Some(deadline) => Limit::At(deadline),
            None => Limit::Never,
        };
        Budget { limit, ..*self }
    }

    #[inline]
    fn time_to_live(&self) -> Option<Duration> {
        self.time_to_live
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

    fn park(
        &self,
        listener: ChangeListener,
        started: Instant,
        phase: Phase,
    ) -> Result<(), Interrupted> {
        check_cancelled(self.cancel)?;
        let deadline = self.limit.deadline_from(started);
        let slice_end = slice_end(self.cancel, deadline);
        if sync::wait(listener, slice_end) {
            return Ok(());
        }
        self.between_waits(started, phase)
    }
}

impl Budget<'_> {
    /// Checks, between two looks at what it waits for, that a wait that began at
    /// `started` may go on: not cancelled, and its deadline not passed (else a timeout in
    /// `phase`).
    pub(crate) fn between_waits(&self, started: Instant, phase: Phase) -> Result<(), Interrupted> {
        check_cancelled(self.cancel)?;
        match self.limit.deadline_from(started) {
            Some(deadline) if Instant::now() >= deadline => Err(Interrupted::TimedOut(
                TimedOut::new(phase, started.elapsed()),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_timeouts_mean_no_deadline() {
        let now = Instant::now();
        assert_eq!(Limit::After(Duration::MAX).deadline_from(now), None);
        assert_eq!(Limit::After(Duration::ZERO).deadline_from(now), Some(now));
        assert_eq!(Limit::Never.deadline_from(now), None);
    }
}
