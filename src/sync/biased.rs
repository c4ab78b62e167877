//! The shard lock: a reader-writer lock biased towards readers (BRAVO, Dice and Kogan,
//! USENIX ATC 2019), so that a read writes no memory another core's read also writes.
//!
//! # The protocol
//!
//! While a lock is **read-biased**, a reader does not touch the lock word. It announces
//! itself in a free word of its thread's slot of a process-wide table (one cache line per
//! slot, of `READS` words, and a slot per thread index of `sync::thread_index`: a live
//! thread owns its index, so its slot is written by that thread alone, with plain stores;
//! a thread that owns none, when more threads than slots run, takes the inner lock, as
//! does a read while every word of the slot announces another read still held), then
//! looks at the bias again and proceeds if it is still on. A writer takes the inner lock
//! (which excludes other writers and the readers that did not announce), **revokes** the
//! bias, and waits until no word of any slot announces a reader of this lock. Both sides
//! write, fence, then read:
//!
//! ```text
//! reader: word := lock;   fence(SeqCst); if !biased { word := 0; use the inner lock }
//! writer: biased := false; fence(SeqCst); wait while any word of any slot == lock
//! ```
//!
//! A slot has several words so that a thread may hold the reads of several shards at
//! once, as an atomic read of keys on different shards does, each with the bias.
//!
//! Of the two fences one comes first in the single total order of `SeqCst` fences: if the
//! reader's, the writer sees its announcement and waits for it; if the writer's, the
//! reader sees the bias off and takes the inner lock, which the writer holds. (The writer
//! scans every word of the slots of the indices handed out so far; a thread's claim of
//! its index is sequenced before its first announcement, so the same argument covers it.)
//! The argument is per word: a reader's word is its own for as long as it holds the read,
//! whatever the other words of its slot announce. A reader lets go by clearing its word
//! with `Release`; the writer's `Acquire` load of the cleared word orders the reader's
//! accesses before the writer's. A reader that finds the bias on
//! with `Acquire` sees the writes of every writer before the one who turned it on.
//!
//! A writer with a deadline that passes while readers are still announced turns the bias
//! back on, lets go of the inner lock and fails, having changed nothing.
//!
//! # The inhibit window
//!
//! After a revocation the bias stays off for [`INHIBIT`] times as long as the revocation
//! took, and at least [`MIN_INHIBIT`], so a mixed load does not pay for a revocation per
//! write: meanwhile readers use
//! the inner lock, and one of them turns the bias back on once the window has passed
//! (readers hold the inner lock then, so no writer can be revoking).
//!
//! Writes pay one relaxed load of the bias when it is off; reads that take the inner lock
//! pay its usual cost and, every [`CLOCK_PERIOD`]th time on a thread, a look at the clock.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use super::lock::{InnerLock, ReadGuard as InnerReadGuard, WriteGuard as InnerWriteGuard};
use super::thread_index::{indices_issued, thread_index, THREAD_INDICES};
use super::{AtomicBool, AtomicUsize, CachePadded, Ordering};

#[cfg(not(verkv_loom))]
use std::sync::atomic::{fence, AtomicU64};

#[cfg(verkv_loom)]
use loom::sync::atomic::{fence, AtomicU64};

/// How many times as long as its revocation took the bias of a lock stays off after it.
/// BRAVO's choice: it bounds what revocations cost a writer-heavy load to about a tenth.
const INHIBIT: u64 = 9;

/// The shortest inhibit window, in nanoseconds. With few threads a revocation takes
/// about a hundred nanoseconds, and a window of nine times that ends before the next
/// write to the shard under a mixed load: the bias would flap, and every write pay a
/// revocation (two looks at the clock among them). Loom has no clock: no floor there.
const MIN_INHIBIT: u64 = if cfg!(verkv_loom) { 0 } else { 50_000 };

/// How often (every how many reads through the inner lock, per thread) a reader looks at
/// the clock to see whether an inhibit window is over. Loom has no clock: it looks
/// every time, and its window is always over.
const CLOCK_PERIOD: u32 = if cfg!(verkv_loom) { 1 } else { 64 };

/// How many reads with the bias one thread may hold at once: the words of its slot, which
/// fill one cache line. Loom's slots have two, enough for a read of two shards and fewer
/// words for its models to explore.
const READS: usize = if cfg!(verkv_loom) { 2 } else { 8 };

/// A thread's reader slot: each word holds the address of a lock its owner is reading
/// with the bias, or 0.
type Slot = [AtomicUsize; READS];

/// The reader slots, one per thread index (`sync::thread_index`). Only the owner writes
/// its slot.
struct Table {
    slots: [CachePadded<Slot>; THREAD_INDICES],
}

impl Table {
    /// The slots a reader may have announced itself in: those of the indices ever
    /// handed out, so that a process with few threads scans few lines.
    fn handed_out(&self) -> &[CachePadded<Slot>] {
        &self.slots[..indices_issued()]
    }
}

#[cfg(not(verkv_loom))]
static TABLE: Table = Table {
    slots: [const { CachePadded::new([const { AtomicUsize::new(0) }; READS]) }; THREAD_INDICES],
};

// Loom's atomics belong to one execution of a model: its table is built per execution.
#[cfg(verkv_loom)]
loom::lazy_static! {
    static ref TABLE: Table = Table {
        slots: std::array::from_fn(|_| {
            CachePadded::new(std::array::from_fn(|_| AtomicUsize::new(0)))
        }),
    };
}

fn table() -> &'static Table {
    &TABLE
}

#[cfg(not(verkv_loom))]
std::thread_local! {
    /// The countdown to this thread's next look at the clock.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

#[cfg(verkv_loom)]
loom::thread_local! {
    static COUNTDOWN: Cell<u32> = Cell::new(0);
}

/// This thread's reader slot, if it owns a thread index.
#[inline]
fn my_slot() -> Option<&'static Slot> {
    thread_index().map(|index| &*table().slots[index])
}

/// Whether this thread should look at the clock on this read through the inner lock.
#[inline]
fn clock_due() -> bool {
    COUNTDOWN.with(|countdown| match countdown.get() {
        0 => {
            countdown.set(CLOCK_PERIOD - 1);
            true
        }
        left => {
            countdown.set(left - 1);
            false
        }
    })
}

/// Nanoseconds on a process-wide clock; always 0 under loom, which has no clock.
#[cfg(not(verkv_loom))]
fn now() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(verkv_loom)]
fn now() -> u64 {
    0
}

/// When a writer waiting for announced readers gives up.
#[derive(Clone, Copy)]
enum GiveUp {
    Never,
    /// After one look at the slots.
    AtOnce,
    At(Instant),
}

impl GiveUp {
    fn now(self) -> bool {
        match self {
            GiveUp::Never => false,
            GiveUp::AtOnce => true,
            // Loom has no clock: a bounded wait is a single attempt.
            GiveUp::At(_) if cfg!(verkv_loom) => true,
            GiveUp::At(deadline) => Instant::now() >= deadline,
        }
    }
}

/// Waits a little before a writer looks at a slot again.
#[cfg(not(verkv_loom))]
fn pause(backoff: &super::Backoff) {
    backoff.snooze();
}

#[cfg(verkv_loom)]
fn pause(_backoff: &super::Backoff) {
    loom::thread::yield_now();
}

#[cfg(not(verkv_loom))]
mod cell {
    //! `UnsafeCell` with the tracked-pointer interface of loom's, so the lock is written
    //! once for both.

    pub(super) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    pub(super) struct ConstPtr<T>(*const T);

    pub(super) struct MutPtr<T>(*mut T);

    impl<T> UnsafeCell<T> {
        pub(super) fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        pub(super) fn get(&self) -> ConstPtr<T> {
            ConstPtr(self.0.get())
        }

        pub(super) fn get_mut(&self) -> MutPtr<T> {
            MutPtr(self.0.get())
        }
    }

    impl<T> ConstPtr<T> {
        /// # Safety
        ///
        /// No `&mut T` to the same value may be live while the returned reference is.
        pub(super) unsafe fn deref(&self) -> &T {
            // SAFETY: the pointer comes from a live `UnsafeCell` (the guard borrows its
            // lock), and the caller promises no mutable access overlaps.
            unsafe { &*self.0 }
        }
    }

    impl<T> MutPtr<T> {
        /// # Safety
        ///
        /// No other reference to the same value may be live while the returned one is.
        #[allow(clippy::mut_from_ref)]
        pub(super) unsafe fn deref(&self) -> &mut T {
            // SAFETY: the pointer comes from a live `UnsafeCell` (the guard borrows its
            // lock), and the caller promises the access is exclusive.
            unsafe { &mut *self.0 }
        }
    }
}

#[cfg(verkv_loom)]
use loom::cell::{ConstPtr, MutPtr, UnsafeCell};

#[cfg(not(verkv_loom))]
use cell::{ConstPtr, MutPtr, UnsafeCell};

/// A reader-writer lock around one shard whose reads, while it is read-biased, write
/// only their own thread's slot (see the [module documentation](self)).
pub(crate) struct ShardLock<T> {
    /// Excludes writers from each other and from the readers that did not announce.
    inner: InnerLock<()>,
    /// Whether readers may announce themselves instead of taking `inner`. Changed only by
    /// a holder of `inner`.
    biased: AtomicBool,
    /// Until when (on [`now`]'s clock) the bias stays off after a revocation.
    inhibit_until: AtomicU64,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&T` to several threads at once (readers) and `&mut T` to
// one at a time (writers), as `std::sync::RwLock` does, with the same bounds.
unsafe impl<T: Send + Sync> Sync for ShardLock<T> {}

// SAFETY: the lock owns its `T`; sending the lock sends the `T`.
unsafe impl<T: Send> Send for ShardLock<T> {}

/// Shared access to a [`ShardLock`]'s value.
pub(crate) struct ReadGuard<'a, T> {
    /// Declared first: dropped, ending the access, before the announcement or the inner
    /// lock is let go.
    access: ConstPtr<T>,
    _held: Held<'a>,
}

/// What a reader holds: an announcement in its slot, or the inner lock.
enum Held<'a> {
    Announced { _announcement: Announcement },
    Locked { _inner: InnerReadGuard<'a, ()> },
}

/// A reader's announcement; clears its word of the slot when dropped.
struct Announcement {
    word: &'static AtomicUsize,
}

impl Drop for Announcement {
    #[inline]
    fn drop(&mut self) {
        self.word.store(0, Ordering::Release);
    }
}

/// Exclusive access to a [`ShardLock`]'s value.
pub(crate) struct WriteGuard<'a, T> {
    /// Declared first: dropped, ending the access, before the inner lock is let go.
    access: MutPtr<T>,
    _held: InnerWriteGuard<'a, ()>,
}

impl<T> ShardLock<T> {
    pub(crate) fn new(value: T) -> Self {
        ShardLock {
            inner: InnerLock::new(()),
            biased: AtomicBool::new(true),
            inhibit_until: AtomicU64::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// What a reader writes in its slot to announce itself: the lock's address.
    #[inline]
    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Shared access without touching the inner lock, if the lock is read-biased and a
    /// word of this thread's slot is free.
    #[inline]
    fn read_biased(&self) -> Option<ReadGuard<'_, T>> {
        if !self.biased.load(Ordering::Relaxed) {
            return None;
        }
        // Only this thread writes its slot other than 0: a lock's address in a word is
        // this thread's read of that lock, still held. With no word free, this read takes
        // the inner lock.
        let word = my_slot()?
            .iter()
            .find(|word| word.load(Ordering::Relaxed) == 0)?;
        word.store(self.id(), Ordering::Relaxed);
        let announcement = Announcement { word };
        fence(Ordering::SeqCst);
        if !self.biased.load(Ordering::Acquire) {
            return None; // dropping the announcement clears the slot
        }
        Some(ReadGuard {
            access: self.data.get(),
            _held: Held::Announced {
                _announcement: announcement,
            },
        })
    }

    /// Shared access under the inner lock; turns the bias back on if its inhibit window
    /// is over.
    #[inline]
    fn read_locked<'a>(&'a self, inner: InnerReadGuard<'a, ()>) -> ReadGuard<'a, T> {
        if !self.biased.load(Ordering::Relaxed) && clock_due() {
            self.rebias();
        }
        ReadGuard {
            access: self.data.get(),
            _held: Held::Locked { _inner: inner },
        }
    }

    #[cold]
    fn rebias(&self) {
        if now() >= self.inhibit_until.load(Ordering::Relaxed) {
            self.biased.store(true, Ordering::Release);
        }
    }

    /// Shared access, waiting as long as it takes.
    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        match self.read_biased() {
            Some(guard) => guard,
            None => self.read_locked(self.inner.read()),
        }
    }

    /// Shared access if it is free now.
    #[inline]
    pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        match self.read_biased() {
            Some(guard) => Some(guard),
            None => Some(self.read_locked(self.inner.try_read()?)),
        }
    }

    /// Shared access, waiting until `deadline` at most.
    pub(crate) fn read_until(&self, deadline: Instant) -> Option<ReadGuard<'_, T>> {
        match self.read_biased() {
            Some(guard) => Some(guard),
            None => Some(self.read_locked(self.inner.read_until(deadline)?)),
        }
    }

    /// Exclusive access, waiting as long as it takes.
    #[inline]
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let inner = self.inner.write();
        let revoked = self.revoke(GiveUp::Never);
        debug_assert!(
            revoked,
            "a writer without a deadline waits for every reader"
        );
        self.write_guard(inner)
    }

    /// Exclusive access if it is free now: no writer holds the lock and no reader is
    /// announced.
    #[inline]
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        let inner = self.inner.try_write()?;
        self.revoke(GiveUp::AtOnce).then(|| self.write_guard(inner))
    }

    /// Exclusive access, waiting until `deadline` at most, for the inner lock and then for
    /// the announced readers; on a timeout nothing has changed.
    pub(crate) fn write_until(&self, deadline: Instant) -> Option<WriteGuard<'_, T>> {
        let inner = self.inner.write_until(deadline)?;
        self.revoke(GiveUp::At(deadline))
            .then(|| self.write_guard(inner))
    }

    #[inline]
    fn write_guard<'a>(&'a self, inner: InnerWriteGuard<'a, ()>) -> WriteGuard<'a, T> {
        WriteGuard {
            access: self.data.get_mut(),
            _held: inner,
        }
    }

    /// Turns the bias off and waits for the announced readers to leave; `false` if it
    /// gave up (the bias is then back on). Call holding the inner write lock.
    #[inline]
    fn revoke(&self, give_up: GiveUp) -> bool {
        // Relaxed: only holders of the inner lock change the bias, and this one holds it.
        !self.biased.load(Ordering::Relaxed) || self.revoke_and_drain(give_up)
    }

    #[cold]
    #[inline(never)]
    fn revoke_and_drain(&self, give_up: GiveUp) -> bool {
        if cfg!(verkv_mutant = "no_revocation") {
            // The mutant the checkers must catch: writers that let readers in.
            return true;
        }
        let started = now();
        self.biased.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let id = self.id();
        let backoff = super::Backoff::new();
        // The `verkv_mutant = "first_word_only"` cfg scans the first word of each slot
        // alone, missing a thread's second read held at once.
        let scanned = if cfg!(verkv_mutant = "first_word_only") {
            1
        } else {
            READS
        };
        for word in table()
            .handed_out()
            .iter()
            .flat_map(|slot| &slot[..scanned])
        {
            while word.load(Ordering::Acquire) == id {
                if give_up.now() {
                    // Undo: the readers keep their fast path, and nothing was written.
                    self.biased.store(true, Ordering::Release);
                    return false;
                }
                pause(&backoff);
            }
        }
        let ended = now();
        let window = ended
            .saturating_sub(started)
            .saturating_mul(INHIBIT)
            .max(MIN_INHIBIT);
        self.inhibit_until
            .store(ended.saturating_add(window), Ordering::Relaxed);
        true
    }

    /// Whether readers announce themselves instead of taking the inner lock.
    #[cfg(test)]
    fn is_biased(&self) -> bool {
        self.biased.load(Ordering::Relaxed)
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard is announced in a slot while the lock was biased, or holds
        // the inner lock shared; either way no writer holds access until it is dropped
        // (see the module documentation), and `access` lives no longer than the guard.
        unsafe { self.access.deref() }
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the inner lock exclusively and found no announced
        // reader after turning the bias off: it is the only access until dropped.
        unsafe { self.access.deref() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this reference the only one.
        unsafe { self.access.deref() }
    }
}

#[cfg(all(test, not(verkv_loom)))]
mod tests {
    //! The lock on real threads; also run under Miri, which looks for data races on the
    //! value and for undefined behaviour in the unsafe code.

    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::Duration;

    use super::*;

    const ROUNDS: u64 = if cfg!(miri) { 30 } else { 20_000 };

    fn announced<T>(guard: &ReadGuard<'_, T>) -> bool {
        matches!(guard._held, Held::Announced { .. })
    }

    #[test]
    fn readers_never_see_a_half_written_pair() {
        let lock = ShardLock::new((0u64, 0u64));
        thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=ROUNDS {
                    let mut pair = lock.write();
                    pair.0 = i;
                    pair.1 = i;
                }
            });
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        let pair = lock.read();
                        assert_eq!(pair.0, pair.1, "torn read");
                    }
                });
            }
        });
        assert_eq!(*lock.read(), (ROUNDS, ROUNDS));
    }

    #[test]
    fn a_writer_gives_up_on_an_announced_reader_with_no_effect() {
        let lock = ShardLock::new(1u64);
        let reader = lock.read();
        assert!(announced(&reader), "a new lock is read-biased");
        assert!(lock.try_write().is_none());
        let deadline = Instant::now() + Duration::from_millis(5);
        assert!(lock.write_until(deadline).is_none());
        assert!(
            lock.is_biased(),
            "the writer that gave up turned the bias back on"
        );
        // The writers that gave up let go of the inner lock, and left the bias on.
        let again = lock.try_read().expect("no writer holds the lock");
        assert!(announced(&again), "a second read announces in another word");
        assert_eq!(*again, 1);
        drop(again);
        drop(reader);
        *lock.try_write().expect("no reader is announced") = 2;
        assert!(!lock.is_biased(), "the writer revoked the bias");
        assert_eq!(*lock.read(), 2);
    }

    #[test]
    fn a_thread_holds_a_read_of_each_of_several_locks_with_the_bias() {
        let locks: Vec<ShardLock<usize>> = (0..=READS).map(ShardLock::new).collect();
        let reads: Vec<_> = locks.iter().map(ShardLock::read).collect();
        let announced_reads = reads.iter().filter(|read| announced(read)).count();
        assert_eq!(announced_reads, READS, "one read per word of the slot");
        assert!(
            !announced(&reads[READS]),
            "with no word free, the inner lock"
        );
        for (index, read) in reads.iter().enumerate() {
            assert_eq!(**read, index);
        }
        // A writer of any of them waits for that read, announced in any word.
        for lock in &locks {
            assert!(lock.try_write().is_none());
        }
        drop(reads);
        for lock in &locks {
            *lock.try_write().expect("no read is held") += 1;
        }
        let read = locks[0].read();
        assert_eq!(*read, 1);
    }

    #[test]
    fn a_writer_waits_for_an_announced_reader_to_leave() {
        let lock = ShardLock::new(0u64);
        let left = AtomicBool::new(false);
        thread::scope(|s| {
            let reader = lock.read();
            assert!(announced(&reader));
            let writer = s.spawn(|| {
                let mut value = lock.write();
                assert!(left.load(Ordering::Relaxed), "wrote beside a reader");
                *value = 1;
            });
            thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
            left.store(true, Ordering::Relaxed);
            drop(reader);
            writer.join().unwrap();
        });
        assert_eq!(*lock.read(), 1);
    }

    #[test]
    fn the_bias_comes_back_after_the_inhibit_window() {
        let lock = ShardLock::new(0u64);
        *lock.write() = 1;
        assert!(!lock.is_biased());
        let reader = lock.read();
        assert!(
            !announced(&reader),
            "inside the window readers take the inner lock"
        );
        drop(reader);
        if cfg!(miri) {
            // Under Miri the window (nine times the revocation's own, interpreted, time)
            // can outlast any deadline worth waiting for: end it now. What Miri checks
            // here is the reads on either side of the bias coming back, not the timing,
            // which the native run checks.
            lock.inhibit_until.store(now(), Ordering::Relaxed);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lock.is_biased() {
            assert_eq!(*lock.read(), 1);
            assert!(Instant::now() < deadline, "the bias never came back");
        }
        let reader = lock.read();
        assert!(announced(&reader));
        assert_eq!(*reader, 1);
    }
}

#[cfg(all(test, verkv_loom))]
mod models {
    //! The protocol, model-checked: loom's `UnsafeCell` reports any reader whose access
    //! to the value overlaps a writer's.

    use std::sync::atomic::AtomicBool as StdAtomicBool;

    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    fn check(model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(model);
    }

    #[test]
    fn a_reader_never_overlaps_a_revoking_writer() {
        check(|| {
            let lock = Arc::new(ShardLock::new((0u64, 0u64)));
            let writer = {
                let lock = lock.clone();
                thread::spawn(move || {
                    let mut pair = lock.write();
                    *pair = (pair.0 + 1, pair.1 + 1);
                })
            };
            let first = *lock.read();
            let second = *lock.read();
            assert_eq!(first.0, first.1, "torn read");
            assert!(second.0 >= first.0, "a read went back in time");
            writer.join().unwrap();
            assert_eq!(*lock.read(), (1, 1));
        });
    }

    #[test]
    fn reads_of_two_locks_held_together_each_keep_out_their_writer() {
        check(|| {
            let locks = Arc::new((ShardLock::new(0u64), ShardLock::new(0u64)));
            let writer = {
                let locks = locks.clone();
                thread::spawn(move || {
                    *locks.0.write() += 1;
                    *locks.1.write() += 1;
                })
            };
            let first = locks.0.read();
            let second = locks.1.read();
            let seen = *second;
            // The writer writes the second lock only after the first, which this thread
            // reads throughout.
            assert!(*first >= seen, "the second lock was written first");
            // With the first read let go, the writer may pass it, and must then wait
            // for the second.
            drop(first);
            thread::yield_now();
            assert_eq!(*second, seen, "the second lock was written while read");
            drop(second);
            writer.join().unwrap();
            assert_eq!((*locks.0.read(), *locks.1.read()), (1, 1));
        });
    }

    static TIMEOUT_EXPLORED: StdAtomicBool = StdAtomicBool::new(false);

    #[test]
    fn a_timed_out_writer_has_no_effect_and_strands_no_reader() {
        check(|| {
            let lock = Arc::new(ShardLock::new(0u64));
            let reader = {
                let lock = lock.clone();
                // A stranded reader would never finish: loom reports the deadlock.
                thread::spawn(move || *lock.read())
            };
            // Loom has no clock: a bounded write is one attempt.
            let wrote = match lock.write_until(Instant::now()) {
                Some(mut value) => {
                    *value = 1;
                    true
                }
                None => false,
            };
            let seen = reader.join().unwrap();
            assert!(seen <= 1);
            if !wrote {
                TIMEOUT_EXPLORED.store(true, std::sync::atomic::Ordering::Relaxed);
                assert_eq!(*lock.read(), 0, "a writer that gave up wrote");
                assert!(lock.is_biased(), "a writer that gave up left the bias off");
            }
        });
        assert!(TIMEOUT_EXPLORED.load(std::sync::atomic::Ordering::Relaxed));
    }

    #[test]
    fn the_bias_comes_back_after_the_inhibit_window() {
        check(|| {
            let lock = Arc::new(ShardLock::new(0u64));
            *lock.write() = 1;
            assert!(!lock.is_biased());
            let writer = {
                let lock = lock.clone();
                thread::spawn(move || *lock.write() = 2)
            };
            // Loom's window is always over: the first read through the inner lock turns
            // the bias back on, racing the second writer's revocation.
            let first = *lock.read();
            let second = *lock.read();
            assert!(first >= 1 && second >= first);
            writer.join().unwrap();
            assert_eq!(*lock.read(), 2);
            let _ = *lock.read();
            assert!(lock.is_biased(), "the bias never came back");
        });
    }
}
