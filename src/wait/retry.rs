//! The optimistic retry loop: read, compute, compare-and-swap, and on a stale version
//! read again.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use crate::deadline::{Forever, Wait};
use crate::store::{count_stop, Store};
use crate::store::{Error, Rejected, UpdateWithError, Versioned};
use crate::sync::Backoff;
use crate::version::VersionScheme;
use crate::wait::Bounded;

/// A successful retried update: the new version, and how many attempts it took (1 if
/// nobody wrote the record in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retried<Ver> {
    /// The record's version after the update.
    pub version: Ver,
    /// Read-compute-write attempts made, the successful one included.
    pub attempts: u32,
}

/// The timeout of an attempt's lock wait, reported as inside the retry loop.
fn after_attempts<Ver>(error: Error<Ver>, attempts: u32) -> Error<Ver> {
    match error {
        Error::TimedOut(timed_out) => Error::TimedOut(timed_out.after_attempts(attempts)),
        other => other,
    }
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Reads the record, computes a new value from it **outside any lock**, and writes
    /// it if the record is still at the version read; if somebody wrote in between, reads
    /// again and retries (with a short backoff) until it succeeds.
    ///
    /// This is the optimistic pattern every client of a versioned store writes by hand.
    /// Unlike [`update_with`](Store::update_with), `compute` does not hold up the
    /// shard; in exchange it **may run several times**, so it must be pure: derive the
    /// new value from its argument only, with no side effects. A computation that may
    /// refuse goes to [`try_retry_update`](Store::try_retry_update).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the key has (or comes to have) no record.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u64> = verkv::Store::new();
    /// store.insert("hits", 0).unwrap();
    /// let done = store.retry_update(&"hits", |n| n + 1).unwrap();
    /// assert_eq!((done.version, done.attempts), (2, 1));
    /// ```
    pub fn retry_update<Q>(
        &self,
        key: &Q,
        mut compute: impl FnMut(&V) -> V,
    ) -> Result<Retried<S::Version>, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.retry_update_in(&Forever, key, |current: &V| Ok(compute(current)))
            .map_err(Error::from)
    }

    /// As [`retry_update`](Store::retry_update), with a `compute` that may refuse: its
    /// error stops the loop, with nothing written. `compute` may run several times, so it
    /// must be pure.
    ///
    /// # Errors
    ///
    /// [`UpdateWithError::Store`] with [`Error::NotFound`] if the key has (or comes to
    /// have) no record; [`UpdateWithError::Closure`] with `compute`'s error, nothing
    /// written.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u64> = verkv::Store::new();
    /// store.insert("hits", 0).unwrap();
    /// let done = store
    ///     .try_retry_update(&"hits", |n| n.checked_add(1).ok_or("overflow"))
    ///     .unwrap();
    /// assert_eq!((done.version, done.attempts), (2, 1));
    /// ```
    pub fn try_retry_update<Q, E>(
        &self,
        key: &Q,
        compute: impl FnMut(&V) -> Result<V, E>,
    ) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.retry_update_in(&Forever, key, compute)
    }

    pub(crate) fn retry_update_in<Q, W: Wait, E>(
        &self,
        wait: &W,
        key: &Q,
        compute: impl FnMut(&V) -> Result<V, E>,
    ) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        W::Error: Into<Error<S::Version>>,
    {
        let wait = wait.fixed();
        optimistic(
            || self.get_in(&wait, key).map_err(Into::into),
            |expected, value| self.update_in(&wait, key, expected, value),
            compute,
            |started, attempts| {
                wait.between_attempts(started, attempts).map_err(|error| {
                    count_stop(self.locate(key).1, error);
                    error.into()
                })
            },
        )
    }
}

/// The bookkeeping of an optimistic loop (read, compute, compare-and-swap, and on a
/// stale version read again), shared by its blocking form ([`optimistic`]) and its async
/// one ([`AsyncVersionedStore::retry_update`](crate::AsyncVersionedStore::retry_update)):
/// what each read and each write means for the loop.
pub(crate) struct Attempts {
    /// Attempts refused as stale so far.
    refused: u32,
    /// When the first attempt was refused: the clock is read only then, so the common
    /// uncontended call reads none.
    started: Option<Instant>,
}

/// What an optimistic loop does after an attempt's write.
pub(crate) enum Next<Ver> {
    /// Stop: the write succeeded.
    Done(Retried<Ver>),
    /// Pause if there is time (the first refusal was at `started`, `attempts` so far),
    /// then read again.
    Again { started: Instant, attempts: u32 },
    /// Stop with this error.
    Stop(Error<Ver>),
}

impl Attempts {
    pub(crate) fn new() -> Self {
        Attempts {
            refused: 0,
            started: None,
        }
    }

    /// The record an attempt read, or the error the loop stops with.
    pub(crate) fn read<V, Ver>(
        &self,
        read: Result<Option<Versioned<V, Ver>>, Error<Ver>>,
    ) -> Result<Versioned<V, Ver>, Error<Ver>> {
        match read {
            Ok(Some(current)) => Ok(current),
            Ok(None) => Err(Error::NotFound),
            Err(error) => Err(after_attempts(error, self.refused)),
        }
    }

    /// What the loop does after an attempt's write answered `written`.
    pub(crate) fn written<V, Ver>(&mut self, written: Result<Ver, Rejected<V, Ver>>) -> Next<Ver> {
        match written {
            Ok(version) => Next::Done(Retried {
                version,
                attempts: self.refused + 1,
            }),
            Err(Rejected {
                error: Error::Stale { .. },
                ..
            }) => {
                self.refused += 1;
                Next::Again {
                    started: *self.started.get_or_insert_with(Instant::now),
                    attempts: self.refused,
                }
            }
            Err(rejected) => Next::Stop(after_attempts(rejected.error, self.refused)),
        }
    }
}

/// The optimistic loop over any store's blocking read and compare-and-swap: `read` the
/// record, `compute` the new value, `write` it if the record is still at the version
/// read, and on a stale version ask `between` whether there is time for another attempt
/// (it fails with the error to stop with), pause, and read again. Shared by
/// [`Store::retry_update`] and
/// [`VersionedStore::retry_update`](crate::VersionedStore::retry_update).
pub(crate) fn optimistic<V, Ver, E>(
    mut read: impl FnMut() -> Result<Option<Versioned<V, Ver>>, Error<Ver>>,
    mut write: impl FnMut(&Ver, V) -> Result<Ver, Rejected<V, Ver>>,
    mut compute: impl FnMut(&V) -> Result<V, E>,
    mut between: impl FnMut(Instant, u32) -> Result<(), Error<Ver>>,
) -> Result<Retried<Ver>, UpdateWithError<Ver, E>> {
    let mut attempts = Attempts::new();
    // Pauses between attempts, longer each time: a few spins first (the other writer is
    // probably almost done), then yielding the processor.
    let backoff = Backoff::new();
    loop {
        let current = attempts.read(read()).map_err(UpdateWithError::Store)?;
        let value = compute(&current.value).map_err(UpdateWithError::Closure)?;
        match attempts.written(write(&current.version, value)) {
            Next::Done(done) => return Ok(done),
            Next::Stop(error) => return Err(UpdateWithError::Store(error)),
            Next::Again { started, attempts } => {
                between(started, attempts).map_err(UpdateWithError::Store)?;
            }
        }
        backoff.snooze();
    }
}

impl<K, V, S, H> Bounded<'_, K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// As [`Store::retry_update`], giving up when the view's deadline passes (or its
    /// token is cancelled), between attempts or while queued. Giving up has no effect:
    /// no attempt that was refused wrote anything, and the one that succeeds returns `Ok`.
    ///
    /// # Errors
    ///
    /// As [`Store::retry_update`], plus [`Error::TimedOut`] (its
    /// [`phase`](crate::TimedOut::phase) says how many attempts were stale) and
    /// [`Error::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store: verkv::Store<&str, u64> = verkv::Store::new();
    /// store.insert("hits", 0).unwrap();
    /// let done = store
    ///     .within(Duration::from_millis(100))
    ///     .retry_update(&"hits", |n| n + 1)
    ///     .unwrap();
    /// assert_eq!(done.attempts, 1);
    /// ```
    pub fn retry_update<Q>(
        &self,
        key: &Q,
        mut compute: impl FnMut(&V) -> V,
    ) -> Result<Retried<S::Version>, Error<S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store()
            .retry_update_in(self.budget(), key, |current: &V| Ok(compute(current)))
            .map_err(Error::from)
    }

    /// As [`Store::try_retry_update`], giving up as
    /// [`retry_update`](Bounded::retry_update) does.
    ///
    /// # Errors
    ///
    /// As [`Store::try_retry_update`], plus [`Error::TimedOut`] and [`Error::Cancelled`].
    pub fn try_retry_update<Q, E>(
        &self,
        key: &Q,
        compute: impl FnMut(&V) -> Result<V, E>,
    ) -> Result<Retried<S::Version>, UpdateWithError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store().retry_update_in(self.budget(), key, compute)
    }
}
