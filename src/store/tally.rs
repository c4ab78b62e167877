//! The store's hooks into its [statistics](crate::stats): each operation counts what it
//! did in one line at its call site. With statistics off, each hook is one test of an
//! `Option` that is `None`.

use std::borrow::Borrow;
use std::time::Instant;

use super::error::{Error, NotInserted, Rejected, UpdateWithError};
use super::locked::LockedShard;
use super::records::Records;
use crate::deadline::{Interrupted, Stop, Wait};
use crate::stats::counters::{Event, ShardCounters};
use crate::sync::{ShardLock, WriteGuard};
use crate::version::VersionScheme;

/// What a refusal counts as.
fn refusal<Ver>(error: &Error<Ver>) -> Option<Event> {
    match error {
        Error::Stale { .. } => Some(Event::Stale),
        Error::NotFound | Error::Expired => Some(Event::NotFound),
        Error::Exists { .. } => Some(Event::Exists),
        Error::TooHeavy { .. } => Some(Event::TooHeavy),
        Error::TimedOut(timed_out) => Event::stopped(Interrupted::TimedOut(*timed_out)),
        Error::Cancelled => Some(Event::Cancelled),
        Error::Unavailable(_)
        | Error::OutcomeUnknown(_)
        | Error::BadRecord(_)
        | Error::Misconfigured(_) => None,
    }
}

/// The answer of a write, as its statistics see it.
pub(crate) trait Written {
    /// What it counts as: `done` if it wrote, else why it was refused.
    fn counted(&self, done: Event) -> Option<Event>;

    /// Whether it was refused as stale.
    fn is_stale(&self) -> bool;
}

impl<T, V, Ver> Written for Result<T, Rejected<V, Ver>> {
    fn counted(&self, done: Event) -> Option<Event> {
        self.as_ref()
            .map_or_else(|refused| refusal(&refused.error), |_| Some(done))
    }

    #[inline(always)]
    fn is_stale(&self) -> bool {
        matches!(
            self,
            Err(Rejected {
                error: Error::Stale { .. },
                ..
            })
        )
    }
}

impl<T, Ver> Written for Result<T, Error<Ver>> {
    fn counted(&self, done: Event) -> Option<Event> {
        self.as_ref().map_or_else(refusal, |_| Some(done))
    }

    #[inline(always)]
    fn is_stale(&self) -> bool {
        matches!(self, Err(Error::Stale { .. }))
    }
}

impl<T, Ver, E> Written for Result<T, UpdateWithError<Ver, E>> {
    fn counted(&self, done: Event) -> Option<Event> {
        match self {
            Ok(_) => Some(done),
            Err(UpdateWithError::Store(error)) => refusal(error),
            Err(UpdateWithError::Closure(_)) => Some(Event::Declined),
        }
    }

    #[inline(always)]
    fn is_stale(&self) -> bool {
        matches!(self, Err(UpdateWithError::Store(Error::Stale { .. })))
    }
}

impl<T, V, Ver> Written for Result<T, NotInserted<V, Ver>> {
    fn counted(&self, done: Event) -> Option<Event> {
        match self {
            Ok(_) => Some(done),
            Err(NotInserted::Occupied { .. }) => Some(Event::Exists),
            Err(NotInserted::Refused(refused)) => refusal(&refused.error),
        }
    }

    #[inline(always)]
    fn is_stale(&self) -> bool {
        false
    }
}

/// Counts a write to `shard` that needs no version (a create or a blind write).
#[inline(always)]
pub(crate) fn count_write<K, V, S: VersionScheme>(
    shard: &LockedShard<K, V, S>,
    written: &impl Written,
    done: Event,
) {
    if let Some(counters) = shard.counters.as_deref() {
        if let Some(event) = written.counted(done) {
            counters.count(event);
        }
    }
}

/// Counts a write to `key` under the version check; a stale refusal also counts `key`
/// among the conflicting keys (looked up in `records`, under the same lock).
#[inline(always)]
pub(crate) fn count_checked_write<K, V, S: VersionScheme, Q>(
    shard: &LockedShard<K, V, S>,
    records: &Records<K, V, S>,
    (hash, key): (u64, &Q),
    written: &impl Written,
    done: Event,
) where
    K: Borrow<Q> + Eq,
    Q: Eq + ?Sized,
{
    if let Some(counters) = shard.counters.as_deref() {
        if let Some(event) = written.counted(done) {
            counters.count(event);
            if event == Event::Stale {
                if let Some(key) = records.key(hash, key) {
                    counters.conflict(key);
                }
            }
        }
    }
}

/// Counts `event` on `shard`.
pub(crate) fn count_event<K, V, S: VersionScheme>(shard: &LockedShard<K, V, S>, event: Event) {
    if let Some(counters) = shard.counters.as_deref() {
        counters.count(event);
    }
}

/// Counts an operation on `shard` that stopped (timed out or was cancelled) before it
/// took effect.
pub(crate) fn count_stop<K, V, S: VersionScheme>(shard: &LockedShard<K, V, S>, stopped: impl Stop) {
    if let Some(counters) = shard.counters.as_deref() {
        if let Some(event) = stopped.counted().and_then(Event::stopped) {
            counters.count(event);
        }
    }
}

/// Takes `lock` exclusively through `wait`, counting the time queued if it was not free
/// (the clock is read only then).
#[inline(always)]
pub(crate) fn timed_write<'a, K, T, W: Wait>(
    wait: &W,
    lock: &'a ShardLock<T>,
    counters: &ShardCounters<K>,
) -> Result<WriteGuard<'a, T>, W::Error> {
    wait.may_start()?;
    if let Some(free) = lock.try_write() {
        return Ok(free);
    }
    let started = Instant::now();
    let taken = wait.write(lock);
    if taken.is_ok() {
        counters.queued(started.elapsed());
    }
    taken
}

/// Times a load on `shard`, if it counts: the clock is read only with statistics on.
pub(crate) struct LoadTimer<'a, K> {
    started: Option<(&'a ShardCounters<K>, Instant)>,
}

impl<'a, K> LoadTimer<'a, K> {
    pub(crate) fn start<V, S: VersionScheme>(shard: &'a LockedShard<K, V, S>) -> Self {
        LoadTimer {
            started: shard
                .counters
                .as_deref()
                .map(|counters| (counters, Instant::now())),
        }
    }

    /// Counts the load, ended with `loaded`.
    pub(crate) fn stop<T, E>(mut self, loaded: &Result<T, E>) {
        let ended = if loaded.is_ok() {
            Event::Loaded
        } else {
            Event::LoadFailed
        };
        self.count(ended);
    }

    fn count(&mut self, ended: Event) {
        if let Some((counters, started)) = self.started.take() {
            counters.loaded(ended, started.elapsed());
        }
    }
}

/// A load that ends without [`stop`](LoadTimer::stop) — its loader panicked, or its
/// future was dropped — counts as abandoned.
impl<K> Drop for LoadTimer<'_, K> {
    fn drop(&mut self) {
        self.count(Event::LoadAbandoned);
    }
}
