//! Get-or-load with a single flight: concurrent misses on one key run one loader.
//!
//! The rules (hits, misses, a writer racing the load, errors, panics, deadlines) are
//! stated once, on [`Store::get_or_load`], for the users who read them there.

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
#[cfg(not(verkv_loom))]
use std::future::Future;
use std::hash::{BuildHasher, Hash};
// The error shared with waiters is a plain value, not a synchronisation primitive, and is
// part of the API: it is always std's `Arc`, also under loom.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deadline::{Forever, Interrupted, Wait};
use crate::stats::counters::Event;
use crate::store::parts::flights::{Joined, Landed, Leader, Outcome};
use crate::store::reentry::ClosureScope;
use crate::store::Versioned;
use crate::store::{count_event, count_stop, write_shard, LoadTimer, LockedShard, Store};
use crate::version::VersionScheme;
use crate::wait::Bounded;

/// What a fallible get-or-load returns: the record, or the loader's error.
type Loaded<V, Ver, E> = Result<Versioned<V, Ver>, Arc<E>>;

/// Where one look at a key leaves a caller.
enum Start<'a, K, V, Ver> {
    Hit(Versioned<V, Ver>),
    Miss(Joined<'a, K, Outcome<V, Ver>>),
}

/// Why a bounded [`try_get_or_load`](Bounded::try_get_or_load) returned no record.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{LoadError, Store};
///
/// let store: Store<&str, u32> = Store::new();
/// let err = store
///     .within(Duration::from_secs(1))
///     .try_get_or_load("a", || "a".parse::<u32>())
///     .unwrap_err();
/// assert!(matches!(err, LoadError::Loader(_)));
/// assert_eq!(err.to_string(), "loader failed: invalid digit found in string");
/// ```
#[derive(Debug)]
pub enum LoadError<E> {
    /// The loader failed: this caller's own, or the one of the load it waited for (every
    /// caller that waited gets the same error). Nothing was written.
    Loader(Arc<E>),
    /// This caller gave up waiting: its deadline passed (while queued, or in
    /// [`Phase::Loading`](crate::Phase::Loading) waiting for another caller's load) or
    /// its token was cancelled. A load it waited for goes on and its record lands.
    Interrupted(Interrupted),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(error) => write!(f, "loader failed: {error}"),
            LoadError::Interrupted(interrupted) => interrupted.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Loader(error) => Some(&**error),
            LoadError::Interrupted(interrupted) => Some(interrupted),
        }
    }
}

impl<E> From<Interrupted> for LoadError<E> {
    fn from(interrupted: Interrupted) -> Self {
        LoadError::Interrupted(interrupted)
    }
}

/// A loader that cannot fail, as one that could.
fn infallibly<V>(load: impl FnOnce() -> V) -> impl FnOnce() -> Result<V, Infallible> {
    move || Ok(load())
}

/// The record of a load that could not fail.
fn loaded<V, Ver>(result: Loaded<V, Ver, Infallible>) -> Versioned<V, Ver> {
    result.unwrap_or_else(|never| match *never {})
}

/// What a caller that waited for a load gets from it; `None` to try again (the load was
/// abandoned, or it failed with an error of another type than this caller's).
fn result_for<V, Ver, E: Send + Sync + 'static>(
    landed: Landed<Outcome<V, Ver>>,
) -> Option<Loaded<V, Ver, E>> {
    match landed {
        Landed::Done(Ok(record)) => Some(Ok(record)),
        Landed::Done(Err(error)) => error.downcast::<E>().ok().map(Err),
        Landed::Abandoned => None,
    }
}

/// Polls `load` with its loader scope entered, so that a call it makes to wait for its own
/// load is refused (see [`Flight::wait`](crate::store::parts::flights::Flight::wait)).
#[cfg(not(verkv_loom))]
async fn scoped<F: Future>(id: usize, load: F) -> F::Output {
    let mut load = std::pin::pin!(load);
    std::future::poll_fn(|cx| {
        let _scope = ClosureScope::enter(id);
        load.as_mut().poll(cx)
    })
    .await
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// The record of `key`; on a miss, `load` computes its value, which is inserted with
    /// a fresh version (create-only). Concurrent misses on one key run **one** loader
    /// (a single flight): the other callers wait for its record. moka calls this
    /// `get_with`, quick_cache `get_or_insert_with`.
    ///
    /// - **A hit** returns the record, as [`get`](Store::get) would; `load` does not run.
    /// - **A miss** with no load of `key` in progress makes this caller the leader: its
    ///   `load` runs once, on its thread, **under no lock** (it may take its time, and use
    ///   the store: other keys, or this key's plain reads and writes). A miss while a load
    ///   is in progress waits for that load and returns its record.
    /// - **A writer that creates `key` during the load wins**: its record stands, the
    ///   loaded value is dropped, and every caller of the load gets the writer's record.
    ///   A load never overwrites a write it did not see.
    /// - **A panicking loader** panics in its own caller, and nothing is written; the
    ///   callers waiting for it wake and try again, so one of them runs its own loader
    ///   (moka's choice too).
    /// - **Errors** ([`try_get_or_load`](Store::try_get_or_load)) reach every caller that
    ///   waited, and are not cached.
    /// - **A value too heavy for a bounded store** (heavier than a shard's share of
    ///   [`max_capacity`](crate::StoreBuilder::max_capacity), any value if it is 0), which
    ///   [`put`](Store::put) would refuse with [`Error::TooHeavy`](crate::Error::TooHeavy),
    ///   is not stored: every caller of the load gets it, with a version issued and retired
    ///   at once, as if the record had been evicted the moment it was written (a write
    ///   naming that version gets [`Error::NotFound`](crate::Error::NotFound), and a
    ///   version is never handed out twice). The statistics count it in
    ///   [`refusals.too_heavy`](crate::Refusals::too_heavy), and the next call loads again.
    /// - **Deadlines** ([`Bounded::get_or_load`]) bound a caller's own wait, never the
    ///   load. The async form is [`get_or_load_async`](Store::get_or_load_async).
    ///
    /// # Locking behaviour
    ///
    /// Shares the key's shard lock to look, and takes it exclusively to insert. Waits, as
    /// long as it takes, for another caller's load of `key` to finish.
    ///
    /// # Panics
    ///
    /// If `load` panics, with its panic (callers waiting for this load wake and try
    /// again; nothing is written). If `load` calls `get_or_load` (any form) for the very
    /// key it is loading, that call panics: it would wait for itself. As
    /// [`get`](Store::get) otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<u32, String> = verkv::Store::new();
    /// let user = store.get_or_load(7, || format!("user {}", 7)); // e.g. from a database
    /// assert_eq!((user.value.as_str(), user.version), ("user 7", 1));
    /// // A hit: the loader does not run.
    /// let again = store.get_or_load(7, || unreachable!());
    /// assert_eq!(again, user);
    /// ```
    pub fn get_or_load(&self, key: K, load: impl FnOnce() -> V) -> Versioned<V, S::Version> {
        let Ok(result) = self.try_get_or_load_in(&Forever, key, infallibly(load));
        loaded(result)
    }

    /// As [`get_or_load`](Store::get_or_load), with a loader that can fail. moka calls
    /// this `try_get_with`, quick_cache `get_or_insert_with`.
    ///
    /// # Errors
    ///
    /// The loader's error, shared in an [`Arc`] by every caller that waited for this load
    /// (those using the same error type `E`; others load for themselves). Nothing is
    /// written or cached: the next call loads again.
    ///
    /// # Locking behaviour
    ///
    /// As [`get_or_load`](Store::get_or_load).
    ///
    /// # Panics
    ///
    /// As [`get_or_load`](Store::get_or_load).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let err = store.try_get_or_load("a", || "not a number".parse::<u32>()).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid digit found in string");
    /// assert!(!store.contains_key(&"a")); // errors are not cached
    /// let ok = store.try_get_or_load("a", || "42".parse::<u32>()).unwrap();
    /// assert_eq!(ok.value, 42);
    /// ```
    pub fn try_get_or_load<E: Send + Sync + 'static>(
        &self,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<Versioned<V, S::Version>, Arc<E>> {
        let Ok(result) = self.try_get_or_load_in(&Forever, key, load);
        result
    }

    /// The async form of [`get_or_load`](Store::get_or_load): `load` is a future, awaited
    /// by the leader only. Works with any executor and pulls in no runtime; moka's async
    /// `get_with` and quick_cache's `get_or_insert_async` are the same idea.
    ///
    /// Dropping the future while it waits for another caller's load stops the wait; the
    /// load goes on. Dropping it while its own `load` runs abandons the load: the callers
    /// waiting for it try again, one of them with its own loader. To bound the wait, race
    /// the future against your runtime's timer.
    ///
    /// # Locking behaviour
    ///
    /// As [`get_or_load`](Store::get_or_load); the shard lock is never held across an
    /// `.await`.
    ///
    /// # Panics
    ///
    /// As [`get_or_load`](Store::get_or_load), when polled. The re-entry check sees a
    /// call made while `load` is being polled; a load of the same key handed to another
    /// task that `load` then awaits is not detected, and waits forever.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let store: verkv::Store<u32, String> = verkv::Store::new();
    /// let user = store.get_or_load_async(7, async { "user 7".to_string() }).await;
    /// assert_eq!(user.value, "user 7");
    /// # });
    /// ```
    #[cfg(not(verkv_loom))]
    pub async fn get_or_load_async(
        &self,
        key: K,
        load: impl Future<Output = V>,
    ) -> Versioned<V, S::Version> {
        let result = self
            .try_get_or_load_async(key, async { Ok::<_, Infallible>(load.await) })
            .await;
        loaded(result)
    }

    /// The async form of [`try_get_or_load`](Store::try_get_or_load). Otherwise as
    /// [`get_or_load_async`](Store::get_or_load_async).
    ///
    /// # Errors
    ///
    /// As [`try_get_or_load`](Store::try_get_or_load).
    ///
    /// # Locking behaviour
    ///
    /// As [`get_or_load_async`](Store::get_or_load_async).
    ///
    /// # Panics
    ///
    /// As [`get_or_load_async`](Store::get_or_load_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let loaded = store.try_get_or_load_async("a", async { "42".parse::<u32>() }).await;
    /// assert_eq!(loaded.unwrap().value, 42);
    /// # });
    /// ```
    #[cfg(not(verkv_loom))]
    pub async fn try_get_or_load_async<E: Send + Sync + 'static>(
        &self,
        key: K,
        load: impl Future<Output = Result<V, E>>,
    ) -> Result<Versioned<V, S::Version>, Arc<E>> {
        let (hash, shard) = self.locate(&key);
        let mut key = key;
        loop {
            let Ok(start) = self.start(&Forever, hash, shard, key);
            match start {
                Start::Hit(found) => return Ok(found),
                Start::Miss(Joined::Lead(leader)) => {
                    let timer = LoadTimer::start(shard);
                    let loaded = scoped(leader.id(), load).await;
                    timer.stop(&loaded);
                    return self.land(shard, hash, leader, loaded, None);
                }
                Start::Miss(Joined::Join(flight, back)) => {
                    match result_for(flight.landed().await) {
                        Some(result) => return result,
                        None => key = back,
                    }
                }
            }
        }
    }

    /// The operation, generic over how it waits (for the shard lock before the load, and
    /// for another caller's load). Its outer error is the wait's, its inner the loader's.
    pub(crate) fn try_get_or_load_in<W: Wait, E: Send + Sync + 'static>(
        &self,
        wait: &W,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<Loaded<V, S::Version, E>, W::Error> {
        let (hash, shard) = self.locate(&key);
        let mut key = key;
        // The deadline of the waits for a load, fixed when the first one starts: a hit
        // reads no clock, as a bounded `get` does not.
        let mut fixed: Option<W> = None;
        loop {
            match self.start(fixed.as_ref().unwrap_or(wait), hash, shard, key)? {
                Start::Hit(found) => return Ok(Ok(found)),
                Start::Miss(Joined::Lead(leader)) => {
                    let timer = LoadTimer::start(shard);
                    let loaded = {
                        let _scope = ClosureScope::enter(leader.id());
                        load()
                    };
                    timer.stop(&loaded);
                    return Ok(self.land(shard, hash, leader, loaded, wait.time_to_live()));
                }
                Start::Miss(Joined::Join(flight, back)) => {
                    let fixed = fixed.get_or_insert_with(|| wait.fixed());
                    let landed = flight.wait(fixed, Instant::now());
                    match result_for(landed.inspect_err(|&stop| count_stop(shard, stop))?) {
                        Some(result) => return Ok(result),
                        None => key = back,
                    }
                }
            }
        }
    }

    /// Looks at `key` under its shard's read lock: the record, or else the load to join
    /// or to lead (decided under the same lock, so a load cannot land in between).
    fn start<'a, W: Wait>(
        &self,
        wait: &W,
        hash: u64,
        shard: &'a LockedShard<K, V, S>,
        key: K,
    ) -> Result<Start<'a, K, V, S::Version>, W::Error> {
        let records = wait
            .read(&shard.lock)
            .inspect_err(|&stop| count_stop(shard, stop))?;
        let found = records.get(hash, &key);
        self.count_read(found.is_some());
        if let Some(record) = found {
            return Ok(Start::Hit(record.snapshot()));
        }
        let rehash = self.rehash();
        Ok(Start::Miss(shard.loads.join_or_lead(hash, key, rehash)))
    }

    /// Writes what the leader loaded (unless a writer created the key meanwhile; an
    /// expired record counts as absent) and publishes the outcome to the waiters.
    /// `time_to_live` is the caller's own for the loaded record, if any.
    fn land<E: Send + Sync + 'static>(
        &self,
        shard: &LockedShard<K, V, S>,
        hash: u64,
        mut leader: Leader<'_, K, Outcome<V, S::Version>>,
        loaded: Result<V, E>,
        time_to_live: Option<Duration>,
    ) -> Loaded<V, S::Version, E> {
        match loaded {
            Ok(value) => {
                let rehash = self.rehash();
                // The flight ends in the critical section that writes the record: a caller
                // finds one or the other, never neither.
                let Ok(record) = write_shard(&Forever, shard, value, |records, value| {
                    let key = leader.take_key();
                    match records.get(hash, &key) {
                        Some(written) => written.snapshot(),
                        None => {
                            let loaded = value.clone();
                            match records.put(hash, key, value, rehash, time_to_live) {
                                Ok(version) => Versioned {
                                    value: loaded,
                                    version,
                                },
                                // Too heavy for a bounded store: handed to the callers
                                // as if stored and evicted at once, and counted as
                                // `put` counts it (see `get_or_load`).
                                Err(refused) => {
                                    count_event(shard, Event::TooHeavy);
                                    Versioned {
                                        value: refused.value,
                                        version: records.passing_version(),
                                    }
                                }
                            }
                        }
                    }
                });
                leader.land(Ok(record.clone()));
                Ok(record)
            }
            Err(error) => {
                let error = Arc::new(error);
                let shared: Arc<dyn Any + Send + Sync> = error.clone();
                leader.land(Err(shared));
                Err(error)
            }
        }
    }
}

impl<K, V, S, H> Bounded<'_, K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// As [`Store::get_or_load`], within the view's deadline and cancel token.
    ///
    /// # Deadlines
    ///
    /// The deadline and the token bound this caller's waits: for the shard lock before
    /// it looks, as for every bounded operation, and then for another caller's load of
    /// `key`, at most the view's timeout from the moment it finds that load in progress
    /// (or until the view's instant, for [`until`](Store::until)). They never stop a load:
    /// a caller that gives up leaves the load running, and its record lands for the
    /// others. Once this caller's own `load` runs, the call completes (like
    /// [`update_with`](Bounded::update_with)'s closure). A hit reads no clock.
    ///
    /// # Errors
    ///
    /// [`Interrupted::TimedOut`] (phase [`Queued`](crate::Phase::Queued) or
    /// [`Loading`](crate::Phase::Loading)) or [`Interrupted::Cancelled`]; nothing was
    /// loaded by this caller.
    ///
    /// # Panics
    ///
    /// As [`Store::get_or_load`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use verkv::{Interrupted, Phase, Store};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// let (loading, started) = mpsc::channel();
    /// let (release, released) = mpsc::channel::<()>();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         store.get_or_load("slow", move || {
    ///             loading.send(()).unwrap();
    ///             released.recv().unwrap();
    ///             1
    ///         })
    ///     });
    ///     started.recv().unwrap(); // the first caller is loading
    ///     let impatient = store.within(Duration::from_millis(10)).get_or_load("slow", || 2);
    ///     assert!(matches!(impatient, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Loading));
    ///     release.send(()).unwrap();
    /// });
    /// assert_eq!(store.get(&"slow").unwrap().value, 1); // the load went on
    /// ```
    pub fn get_or_load(
        &self,
        key: K,
        load: impl FnOnce() -> V,
    ) -> Result<Versioned<V, S::Version>, Interrupted> {
        let result = self
            .store()
            .try_get_or_load_in(self.budget(), key, infallibly(load))?;
        Ok(loaded(result))
    }

    /// As [`Store::try_get_or_load`], within the view's deadline and cancel token.
    ///
    /// # Deadlines
    ///
    /// As [`get_or_load`](Bounded::get_or_load).
    ///
    /// # Errors
    ///
    /// [`LoadError::Loader`] with the loader's error, as for
    /// [`Store::try_get_or_load`]; [`LoadError::Interrupted`] as for
    /// [`get_or_load`](Bounded::get_or_load).
    ///
    /// # Panics
    ///
    /// As [`Store::get_or_load`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let request = store.within(Duration::from_millis(100));
    /// let answer = request.try_get_or_load("answer", || "42".parse::<u32>()).unwrap();
    /// assert_eq!(answer.value, 42);
    /// ```
    pub fn try_get_or_load<E: Send + Sync + 'static>(
        &self,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<Versioned<V, S::Version>, LoadError<E>> {
        self.store()
            .try_get_or_load_in(self.budget(), key, load)?
            .map_err(LoadError::Loader)
    }
}
