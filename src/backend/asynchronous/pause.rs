//! Awaiting without a runtime: the pauses of the async face (between two tries of a busy
//! lock, between two attempts of the retry loop) and a race of a future against its
//! context's deadline and cancel token.
//!
//! Deadlines are kept by the crate's alarm thread (the one async waits for a change use)
//! and the cancel token wakes its waiters, so nothing here depends on an executor.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::backend::Context;
use crate::deadline::{CancelToken, Interrupted, Phase, TimedOut};
use crate::sync::Alarm;

/// How many pauses only yield to the executor before pauses start to sleep: the
/// operation ahead is probably almost done.
const YIELDS: u32 = 4;

/// The first and the longest sleep of a pause.
const FIRST_SLEEP: Duration = Duration::from_micros(20);
const LONGEST_SLEEP: Duration = Duration::from_millis(1);

/// The `n`th pause (from 0) of a caller that tries something again: a yield to the
/// executor at first, then sleeps doubling from [`FIRST_SLEEP`] to [`LONGEST_SLEEP`],
/// never past the context's deadline, and cut short if its token is cancelled.
pub(crate) async fn between_attempts(ctx: &Context<'_>, n: u32) {
    if n < YIELDS {
        yield_once().await;
        return;
    }
    let doublings = (n - YIELDS).min(16);
    let sleep = FIRST_SLEEP
        .saturating_mul(1 << doublings)
        .min(LONGEST_SLEEP);
    let mut until = Instant::now() + sleep;
    if let Some(deadline) = ctx.deadline() {
        until = until.min(deadline);
    }
    pause_until(until, ctx.cancel_token()).await;
}

/// Completes at `at`, or sooner once `cancel` is cancelled.
pub(crate) async fn pause_until(at: Instant, cancel: Option<&CancelToken>) {
    let mut alarm = pin!(Alarm::at(at));
    let mut cancelled = cancel.map(CancelToken::listen);
    poll_fn(|cx| {
        let cancelled = cancelled
            .as_mut()
            .is_some_and(|cancelled| Pin::new(cancelled).poll(cx).is_ready());
        if cancelled || alarm.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// `work`'s output, unless the context's deadline passes (a timeout in `phase`) or its
/// token is cancelled first; `work` is dropped then.
pub(crate) async fn within<T>(
    ctx: &Context<'_>,
    phase: Phase,
    work: impl Future<Output = T>,
) -> Result<T, Interrupted> {
    if ctx.is_cancelled() {
        return Err(Interrupted::Cancelled);
    }
    let started = Instant::now();
    let mut work = pin!(work);
    let mut alarm = ctx.deadline().map(Alarm::at);
    let mut cancelled = ctx.cancel_token().map(CancelToken::listen);
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let cancelled = cancelled
            .as_mut()
            .is_some_and(|cancelled| Pin::new(cancelled).poll(cx).is_ready());
        if cancelled && ctx.is_cancelled() {
            return Poll::Ready(Err(Interrupted::Cancelled));
        }
        if alarm
            .as_mut()
            .is_some_and(|alarm| Pin::new(alarm).poll(cx).is_ready())
        {
            return Poll::Ready(Err(Interrupted::TimedOut(TimedOut::new(
                phase,
                started.elapsed(),
            ))));
        }
        Poll::Pending
    })
    .await
}

/// Lets the executor run other tasks once: pending when first polled (having asked to
/// be polled again), ready the next time.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}
