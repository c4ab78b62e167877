//! Waiting for a record to change, like a blocking query (`?index=…&wait=…`).
//!
//! The waiter registers for the shard's change event *before* it looks at the record,
//! and every write that finds a waiter registered wakes the shard's waiters after it lets
//! go of the lock; so a change that lands between the look and the wait still wakes the
//! waiter (no lost wake-up), and writes nobody waits for pay nothing for it.

use std::borrow::Borrow;
#[cfg(not(verkv_loom))]
use std::future::Future;
use std::hash::{BuildHasher, Hash};
#[cfg(not(verkv_loom))]
use std::pin::Pin;
#[cfg(not(verkv_loom))]
use std::task::Poll;
use std::time::Instant;

#[cfg(not(verkv_loom))]
use crate::deadline::CancelToken;
#[cfg(not(verkv_loom))]
use crate::sync::Alarm;

use crate::deadline::{Forever, Interrupted, Phase, Wait};
use crate::store::Versioned;
use crate::store::{count_stop, Store};
use crate::version::VersionScheme;
use crate::wait::Bounded;

/// Whether `current` is another state than the one the caller saw.
fn differs<V, Ver: Eq>(current: &Option<Versioned<V, Ver>>, seen: Option<&Ver>) -> bool {
    current.as_ref().map(|record| &record.version) != seen
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Blocks until the record of `key` is at another version than `seen` (`None`: until
    /// it exists), then returns its state: the new record, or `None` if it was removed.
    /// Returns at once if it already differs.
    ///
    /// For a bounded wait use [`Bounded::wait_for_change`]; from async code,
    /// [`changed`](Store::changed).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let v1 = store.insert("a", 1).unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| store.update(&"a", &v1, 2).unwrap());
    ///     let changed = store.wait_for_change(&"a", Some(&v1)).unwrap();
    ///     assert_eq!(changed.value, 2);
    /// });
    /// ```
    pub fn wait_for_change<Q>(
        &self,
        key: &Q,
        seen: Option<&S::Version>,
    ) -> Option<Versioned<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Ok(current) = self.wait_for_change_in(&Forever, key, seen);
        current
    }

    pub(crate) fn wait_for_change_in<Q, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
        seen: Option<&S::Version>,
    ) -> Result<Option<Versioned<V, S::Version>>, W::Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let wait = wait.fixed();
        let started = Instant::now();
        let (_, shard) = self.locate(key);
        let _watching = shard.changed.watch();
        loop {
            let listener = shard.changed.listen();
            let current = self.get_in(&wait, key)?;
            if differs(&current, seen) {
                return Ok(current);
            }
            wait.park(listener, started, Phase::Watching)
                .inspect_err(|&stop| count_stop(shard, stop))?;
        }
    }

    /// The async form of [`wait_for_change`](Store::wait_for_change): a future that
    /// completes when the record of `key` is at another version than `seen`.
    ///
    /// It works with any executor and pulls in no runtime. To give it a deadline or a
    /// cancel token, use [`Bounded::changed`]; dropping the future stops the wait, with
    /// no effect on the store.
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get), when polled.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_lite::future::block_on(async {
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// store.insert("a", 1).unwrap();
    /// // Already differs from "absent": completes at once.
    /// let now = store.changed(&"a", None).await.unwrap();
    /// assert_eq!(now.value, 1);
    /// # });
    /// ```
    #[cfg(not(verkv_loom))]
    pub async fn changed<Q>(
        &self,
        key: &Q,
        seen: Option<&S::Version>,
    ) -> Option<Versioned<V, S::Version>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (_, shard) = self.locate(key);
        let _watching = shard.changed.watch();
        loop {
            let listener = shard.changed.listen();
            let current = self.get(key);
            if differs(&current, seen) {
                return current;
            }
            listener.await;
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
    /// As [`Store::wait_for_change`], giving up at the view's deadline or on
    /// cancellation.
    ///
    /// # Errors
    ///
    /// [`Interrupted::TimedOut`] (phase [`Watching`](crate::Phase::Watching)) if nothing
    /// changed in time, [`Interrupted::Cancelled`] if the token was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{Interrupted, Phase};
    ///
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let v1 = store.insert("a", 1).unwrap();
    /// let quiet = store.within(Duration::from_millis(10)).wait_for_change(&"a", Some(&v1));
    /// assert!(matches!(quiet, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Watching));
    /// ```
    pub fn wait_for_change<Q>(
        &self,
        key: &Q,
        seen: Option<&S::Version>,
    ) -> Result<Option<Versioned<V, S::Version>>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.store().wait_for_change_in(self.budget(), key, seen)
    }

    /// The async form of [`wait_for_change`](Bounded::wait_for_change): completes when
    /// the record of `key` is at another version than `seen`, or with an error at the
    /// view's deadline or when its token is cancelled, whichever comes first.
    ///
    /// Runtime-agnostic like [`Store::changed`]: the deadline is kept by one background
    /// thread the crate starts the first time an async wait needs it, and the token wakes
    /// the future when cancelled. Dropping the future stops the wait, with no effect on
    /// the store.
    ///
    /// # Errors
    ///
    /// [`Interrupted::TimedOut`] (phase [`Watching`](crate::Phase::Watching)) if nothing
    /// changed in time, [`Interrupted::Cancelled`] if the token was cancelled.
    ///
    /// # Panics
    ///
    /// As [`Store::get`], when polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{Interrupted, Phase};
    ///
    /// # futures_lite::future::block_on(async {
    /// let store: verkv::Store<&str, u32> = verkv::Store::new();
    /// let v1 = store.insert("a", 1).unwrap();
    /// let quiet = store.within(Duration::from_millis(10)).changed(&"a", Some(&v1)).await;
    /// assert!(matches!(quiet, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Watching));
    /// # });
    /// ```
    #[cfg(not(verkv_loom))]
    pub async fn changed<Q>(
        &self,
        key: &Q,
        seen: Option<&S::Version>,
    ) -> Result<Option<Versioned<V, S::Version>>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let started = Instant::now();
        let budget = self.budget().fixed();
        let deadline = budget.limit.deadline_from(started);
        let mut alarm = deadline.map(Alarm::at);
        let (_, shard) = self.store().locate(key);
        let _watching = shard.changed.watch();
        loop {
            let mut changed = shard.changed.listen();
            let mut cancelled = budget.cancel.map(CancelToken::listen);
            let current = self.store().get_in(&budget, key)?;
            if differs(&current, seen) {
                return Ok(current);
            }
            budget
                .between_waits(started, Phase::Watching)
                .inspect_err(|&stop| count_stop(shard, stop))?;
            // Whichever comes first: a change, the token, the deadline.
            std::future::poll_fn(|cx| {
                let woken = Pin::new(&mut changed).poll(cx).is_ready()
                    | cancelled
                        .as_mut()
                        .is_some_and(|cancelled| Pin::new(cancelled).poll(cx).is_ready())
                    | alarm
                        .as_mut()
                        .is_some_and(|alarm| Pin::new(alarm).poll(cx).is_ready());
                if woken {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
    }
}
