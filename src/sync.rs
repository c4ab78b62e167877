//! The only module that names lock and notification types.
//!
//! Every wait the store does goes through [`ShardLock`], [`Mutex`] and the events
//! ([`ChangeEvent`], [`Event`]). Under the `verkv_loom` cfg they are replaced by versions
//! built on loom's primitives, so a model checker can explore the store's real protocol
//! (its operations are unchanged).
//! Loom does not model time: there a bounded wait is a single attempt, which makes the
//! timeout path of every operation reachable.

use std::time::Instant;

#[cfg(not(verkv_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc,
};

/// The near-cache's counters (the `postgres` feature, never modelled).
#[cfg(all(not(verkv_loom), feature = "postgres"))]
pub(crate) use std::sync::atomic::AtomicU32;

#[cfg(verkv_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc,
};

/// An atomic read and written through `&mut`, by the one owner that holds it exclusively
/// (a record under its shard's write lock): no atomic instruction, and the same under
/// loom, whose atomics offer that access through a closure.
pub(crate) trait Exclusive {
    /// The value the atomic holds.
    type Value: Copy;

    /// The value, read through exclusive access.
    fn exclusive(&mut self) -> Self::Value;

    /// Writes `value` through exclusive access.
    fn set_exclusive(&mut self, value: Self::Value);
}

/// [`Exclusive`] for an atomic type holding `$value`.
macro_rules! exclusive {
    ($atomic:ty, $value:ty) => {
        impl Exclusive for $atomic {
            type Value = $value;

            #[inline]
            fn exclusive(&mut self) -> $value {
                #[cfg(not(verkv_loom))]
                let value = *self.get_mut();
                #[cfg(verkv_loom)]
                let value = self.with_mut(|value| *value);
                value
            }

            #[inline]
            fn set_exclusive(&mut self, value: $value) {
                #[cfg(not(verkv_loom))]
                {
                    *self.get_mut() = value;
                }
                #[cfg(verkv_loom)]
                self.with_mut(|slot| *slot = value);
            }
        }
    };
}

exclusive!(AtomicU64, u64);
exclusive!(AtomicU8, u8);

/// Sleeps for `duration`, and says so; under loom, which has no clock, does not sleep
/// and answers `false`, so that a caller polling towards a deadline gives up at once.
#[cfg(not(verkv_loom))]
pub(crate) fn sleep_briefly(duration: std::time::Duration) -> bool {
    std::thread::sleep(duration);
    true
}

/// Sleeps for `duration`, and says so; under loom, which has no clock, does not sleep
/// and answers `false`, so that a caller polling towards a deadline gives up at once.
#[cfg(verkv_loom)]
pub(crate) fn sleep_briefly(_duration: std::time::Duration) -> bool {
    false
}

/// Aligns a shard to its own cache lines (128 bytes where the processor fetches lines
/// in pairs), so that threads working on different shards do not slow each other down
/// (false sharing). The spin-then-yield backoff of the retry loop. Both are plain
/// helpers with no protocol of their own, the same under loom.
pub(crate) use crossbeam_utils::{Backoff, CachePadded};

#[cfg(not(verkv_loom))]
mod lock {
    use super::Instant;

    pub(crate) type ReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    pub(crate) type WriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    /// The reader-writer lock under a [`ShardLock`](super::ShardLock): taken by writers,
    /// and by readers while the shard is not read-biased.
    pub(crate) struct InnerLock<T> {
        lock: parking_lot::RwLock<T>,
    }

    impl<T> InnerLock<T> {
        pub(crate) fn new(value: T) -> Self {
            InnerLock {
                lock: parking_lot::RwLock::new(value),
            }
        }

        /// Shared access, waiting as long as it takes.
        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            self.lock.read()
        }

        /// Exclusive access, waiting as long as it takes.
        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            self.lock.write()
        }

        /// Shared access if it is free now.
        pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
            self.lock.try_read()
        }

        /// Exclusive access if it is free now.
        pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
            self.lock.try_write()
        }

        /// Shared access, waiting until `deadline` at most.
        pub(crate) fn read_until(&self, deadline: Instant) -> Option<ReadGuard<'_, T>> {
            self.lock.try_read_until(deadline)
        }

        /// Exclusive access, waiting until `deadline` at most.
        pub(crate) fn write_until(&self, deadline: Instant) -> Option<WriteGuard<'_, T>> {
            self.lock.try_write_until(deadline)
        }
    }
}

#[cfg(verkv_loom)]
mod lock {
    //! Loom blocks a thread's `try_read`/`try_write` until the lock is free, so it never
    //! explores their failure. This lock records its holders in atomics, which loom does
    //! interleave, and fails a `try_*` while they say the lock is held.

    use std::ops::{Deref, DerefMut};

    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::Instant;

    /// The reader-writer lock under a [`ShardLock`](super::ShardLock) (loom's, for model
    /// checking).
    pub(crate) struct InnerLock<T> {
        lock: loom::sync::RwLock<T>,
        writing: AtomicBool,
        readers: AtomicUsize,
    }

    pub(crate) struct ReadGuard<'a, T> {
        guard: loom::sync::RwLockReadGuard<'a, T>,
        readers: &'a AtomicUsize,
    }

    pub(crate) struct WriteGuard<'a, T> {
        guard: loom::sync::RwLockWriteGuard<'a, T>,
        writing: &'a AtomicBool,
    }

    impl<T> InnerLock<T> {
        pub(crate) fn new(value: T) -> Self {
            InnerLock {
                lock: loom::sync::RwLock::new(value),
                writing: AtomicBool::new(false),
                readers: AtomicUsize::new(0),
            }
        }

        pub(crate) fn read(&self) -> ReadGuard<'_, T> {
            let guard = self.lock.read().expect("loom lock poisoned");
            self.readers.fetch_add(1, Ordering::SeqCst);
            ReadGuard {
                guard,
                readers: &self.readers,
            }
        }

        pub(crate) fn write(&self) -> WriteGuard<'_, T> {
            let guard = self.lock.write().expect("loom lock poisoned");
            self.writing.store(true, Ordering::SeqCst);
            WriteGuard {
                guard,
                writing: &self.writing,
            }
        }

        pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
            (!self.writing.load(Ordering::SeqCst)).then(|| self.read())
        }

        pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
            let free =
                !self.writing.load(Ordering::SeqCst) && self.readers.load(Ordering::SeqCst) == 0;
            free.then(|| self.write())
        }

        /// Loom has no clock: a bounded wait is one more attempt, which fails whenever
        /// another thread holds the lock at that moment, so the timeout path is explored.
        pub(crate) fn read_until(&self, _deadline: Instant) -> Option<ReadGuard<'_, T>> {
            self.try_read()
        }

        /// As [`read_until`](InnerLock::read_until).
        pub(crate) fn write_until(&self, _deadline: Instant) -> Option<WriteGuard<'_, T>> {
            self.try_write()
        }
    }

    impl<T> Deref for ReadGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.guard
        }
    }

    impl<T> Drop for ReadGuard<'_, T> {
        fn drop(&mut self) {
            self.readers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl<T> Deref for WriteGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.guard
        }
    }

    impl<T> DerefMut for WriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.guard
        }
    }

    impl<T> Drop for WriteGuard<'_, T> {
        fn drop(&mut self) {
            self.writing.store(false, Ordering::SeqCst);
        }
    }
}

mod biased;
mod thread_index;

pub(crate) use biased::{ReadGuard, ShardLock, WriteGuard};
pub(crate) use thread_index::{thread_stripe, STRIPES};

/// A mutual-exclusion lock for short critical sections that never block inside.
#[cfg(not(verkv_loom))]
pub(crate) use parking_lot::Mutex;

#[cfg(verkv_loom)]
mod mutex {
    /// A mutual-exclusion lock (loom's, for model checking), locked the way parking_lot's
    /// is: no poisoning to handle.
    pub(crate) struct Mutex<T> {
        lock: loom::sync::Mutex<T>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex {
                lock: loom::sync::Mutex::new(value),
            }
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.lock.lock().expect("loom lock poisoned")
        }
    }
}

#[cfg(verkv_loom)]
pub(crate) use mutex::Mutex;

#[cfg(not(verkv_loom))]
mod event {
    use super::Instant;
    use event_listener::Listener;

    /// Wakes the threads and tasks waiting for something (a change in one shard, a load
    /// to finish).
    pub(crate) struct Event {
        event: event_listener::Event,
    }

    /// A registration to be woken by the next [`Event::notify`]. Taken *before*
    /// looking at the state it waits on, so a change in between is not missed.
    pub(crate) type ChangeListener = event_listener::EventListener;

    impl Event {
        pub(crate) fn new() -> Self {
            Event {
                event: event_listener::Event::new(),
            }
        }

        pub(crate) fn listen(&self) -> ChangeListener {
            self.event.listen()
        }

        /// Wakes every current listener. Cheap when nobody listens.
        pub(crate) fn notify(&self) {
            self.event.notify(usize::MAX);
        }
    }

    /// Blocks until `listener` is notified or `deadline` passes; `false` on the deadline.
    pub(crate) fn wait(listener: ChangeListener, deadline: Option<Instant>) -> bool {
        match deadline {
            None => {
                listener.wait();
                true
            }
            Some(deadline) => listener.wait_deadline(deadline).is_some(),
        }
    }
}

#[cfg(verkv_loom)]
mod event {
    use super::Instant;
    use loom::sync::{Arc, Condvar, Mutex};

    /// Wakes the threads waiting for something (loom's, for model checking): a
    /// generation counter under a mutex, and a condition variable.
    pub(crate) struct Event {
        state: Arc<(Mutex<u64>, Condvar)>,
    }

    pub(crate) struct ChangeListener {
        state: Arc<(Mutex<u64>, Condvar)>,
        generation: u64,
    }

    impl Event {
        pub(crate) fn new() -> Self {
            Event {
                state: Arc::new((Mutex::new(0), Condvar::new())),
            }
        }

        pub(crate) fn listen(&self) -> ChangeListener {
            let generation = *self.state.0.lock().unwrap();
            ChangeListener {
                state: self.state.clone(),
                generation,
            }
        }

        pub(crate) fn notify(&self) {
            *self.state.0.lock().unwrap() += 1;
            self.state.1.notify_all();
        }
    }

    /// Loom has no clock: a bounded wait returns at once if nothing was notified.
    pub(crate) fn wait(listener: ChangeListener, deadline: Option<Instant>) -> bool {
        let (lock, condvar) = &*listener.state;
        let mut generation = lock.lock().unwrap();
        while *generation == listener.generation {
            if deadline.is_some() {
                return false;
            }
            generation = condvar.wait(generation).unwrap();
        }
        true
    }
}

pub(crate) use event::{wait, ChangeListener, Event};

/// Wakes those waiting for a change in one shard, and knows whether there are any, so a
/// write pays for a wake-up only when somebody waits.
///
/// Why a plain load is enough: a waiter registers (`watch`) and then looks at the record
/// under the shard lock; a writer changes the record under the same lock and then asks
/// `has_watchers` before letting go. If the waiter looked first, the lock orders its
/// registration before the writer's question, which sees it. If the writer went first,
/// the waiter's look sees the change and it does not wait. Either way no wake-up is lost
/// (checked with loom).
pub(crate) struct ChangeEvent {
    event: event::Event,
    watchers: AtomicUsize,
}

/// A registered waiter; unregisters when dropped (also when a future is dropped).
pub(crate) struct Watching<'a> {
    watchers: &'a AtomicUsize,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ChangeEvent {
    pub(crate) fn new() -> Self {
        ChangeEvent {
            event: event::Event::new(),
            watchers: AtomicUsize::new(0),
        }
    }

    /// Registers a waiter until the guard is dropped. Call before looking at the record.
    pub(crate) fn watch(&self) -> Watching<'_> {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watching {
            watchers: &self.watchers,
        }
    }

    /// A registration for the next [`notify`](ChangeEvent::notify). Take it before looking
    /// at the record, so a change in between is not missed.
    pub(crate) fn listen(&self) -> ChangeListener {
        self.event.listen()
    }

    /// Whether anybody waits. Ask while holding the shard's write lock, after the change.
    #[inline]
    pub(crate) fn has_watchers(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Wakes every current listener.
    pub(crate) fn notify(&self) {
        self.event.notify();
    }
}

/// A flag that, once raised, stays raised, and wakes the async waiters listening for it
/// (the cancel token's). Threads that block look at it between slices of their wait.
pub(crate) struct Signal {
    raised: AtomicBool,
    #[cfg(not(verkv_loom))]
    event: event_listener::Event,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            raised: AtomicBool::new(false),
            #[cfg(not(verkv_loom))]
            event: event_listener::Event::new(),
        }
    }

    /// Raises the flag and wakes every listener.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        #[cfg(not(verkv_loom))]
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// A future that completes at the next [`raise`](Signal::raise). Take it before
    /// looking at the flag, so a raise in between is not missed.
    #[cfg(not(verkv_loom))]
    pub(crate) fn listen(&self) -> ChangeListener {
        self.event.listen()
    }
}

#[cfg(not(verkv_loom))]
pub(crate) use alarm::Alarm;

#[cfg(not(verkv_loom))]
mod alarm;
