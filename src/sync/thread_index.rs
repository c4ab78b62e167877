//! Which small index a thread owns: one that no other live thread holds, so that a slot
//! with that index is written by one thread only and can be written with a plain load
//! and store instead of a read-modify-write instruction. Two users: the statistics'
//! counter stripes ([`thread_stripe`]) and the shard lock's reader slots.
//!
//! A thread claims an index on first use and gives it back when it exits (its
//! thread-local destructor), so a process that starts and ends many threads reuses
//! the same few indices. When [`THREAD_INDICES`] threads hold one each, further threads
//! get none and take the slower shared path of each user: correct, only slower. The
//! index is handed from an exiting thread to the next through a mutex, which orders the
//! old owner's last store before the new owner's first load.
//!
//! The `verkv_mutant = "shared_stripe"` cfg hands every thread stripe 0, so that the
//! statistics tests can show they catch the counts lost when two threads own one slot
//! (the reader slots are not affected).

/// How many threads can own an index at the same time. Loom models run a few threads:
/// two indices there, so that its models also cover a thread that owns none.
pub(crate) const THREAD_INDICES: usize = if cfg!(verkv_loom) { 2 } else { 256 };

/// How many threads can own a counter stripe at the same time (the first indices).
pub(crate) const STRIPES: usize = 64;

#[cfg(not(verkv_loom))]
mod claim {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};

    use super::THREAD_INDICES;

    /// Indices given back by threads that exited, and the next one never handed out.
    static RETURNED: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

    /// The number of indices ever handed out: every owned index is below it.
    static ISSUED: AtomicUsize = AtomicUsize::new(0);

    /// What a thread's claim says: no index asked for yet.
    const UNCLAIMED: usize = usize::MAX;

    /// Holds a thread's index until the thread exits, then gives it back.
    struct Claim(Cell<usize>);

    impl Drop for Claim {
        fn drop(&mut self) {
            let index = self.0.get();
            // Uses after this, by later thread-local destructors, take the shared path:
            // the index may already be another thread's.
            let _ = INDEX.try_with(|mine| mine.set(THREAD_INDICES));
            if index < THREAD_INDICES {
                let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
                returned.0.push(index);
            }
        }
    }

    std::thread_local! {
        /// The index this thread owns: `UNCLAIMED`, an owned index, or `THREAD_INDICES`
        /// (none). Without a destructor, so that reading it is a plain thread-local load.
        static INDEX: Cell<usize> = const { Cell::new(UNCLAIMED) };
        /// The claim that gives the index back when the thread exits.
        static CLAIM: Claim = const { Claim(Cell::new(UNCLAIMED)) };
    }

    /// This thread's index when it has not claimed one yet (it claims one now) or has
    /// none (`index` is `THREAD_INDICES`).
    #[cold]
    #[inline(never)]
    fn unowned(index: usize) -> Option<usize> {
        let index = if index == UNCLAIMED { claim() } else { index };
        (index < THREAD_INDICES).then_some(index)
    }

    /// Claims a free index for this thread (`THREAD_INDICES` if every one is held, or if
    /// the thread is exiting and cannot give one back).
    fn claim() -> usize {
        let claimed = CLAIM.try_with(|claim| {
            let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
            let (free, next) = &mut *returned;
            let index = free.pop().unwrap_or_else(|| {
                let index = (*next).min(THREAD_INDICES);
                *next = index + usize::from(index < THREAD_INDICES);
                // Relaxed: the user that must see every owner's slot (the shard lock's
                // writer) orders this store with its fences; see `sync::biased`.
                ISSUED.store(*next, Ordering::Relaxed);
                index
            });
            claim.0.set(index);
            index
        });
        let index = claimed.unwrap_or(THREAD_INDICES);
        INDEX.with(|mine| mine.set(index));
        index
    }

    /// The index the calling thread owns, if it owns one (see the [module docs](super)).
    #[inline]
    pub(crate) fn thread_index() -> Option<usize> {
        match INDEX.with(Cell::get) {
            owned if owned < THREAD_INDICES => Some(owned),
            index => unowned(index),
        }
    }

    /// How many indices were ever handed out: every owned index is below this, and it is
    /// at most [`THREAD_INDICES`].
    #[inline]
    pub(crate) fn indices_issued() -> usize {
        ISSUED.load(Ordering::Relaxed)
    }
}

#[cfg(verkv_loom)]
mod claim {
    //! Under loom each model execution starts afresh: indices are handed out in order,
    //! per execution, and never given back (a model's threads are few).

    use std::cell::Cell;

    use loom::sync::atomic::{AtomicUsize, Ordering};

    use super::THREAD_INDICES;

    loom::lazy_static! {
        /// The number of indices asked for in this execution.
        static ref ISSUED: AtomicUsize = AtomicUsize::new(0);
    }

    loom::thread_local! {
        static INDEX: Cell<usize> = Cell::new(usize::MAX);
    }

    /// The index the calling thread owns, if it owns one.
    pub(crate) fn thread_index() -> Option<usize> {
        INDEX.with(|index| {
            if index.get() == usize::MAX {
                index.set(ISSUED.fetch_add(1, Ordering::Relaxed));
            }
            Some(index.get()).filter(|&index| index < THREAD_INDICES)
        })
    }

    /// How many indices were ever handed out: every owned index is below this, and it is
    /// at most [`THREAD_INDICES`].
    pub(crate) fn indices_issued() -> usize {
        ISSUED.load(Ordering::Relaxed).min(THREAD_INDICES)
    }
}

pub(crate) use claim::{indices_issued, thread_index};

/// The calling thread's counter stripe, if it owns one: its index, if below [`STRIPES`].
/// Under loom no thread owns a stripe: every count is an atomic addition, which the model
/// checker explores like any other.
#[inline]
pub(crate) fn thread_stripe() -> Option<usize> {
    if cfg!(verkv_loom) {
        return None;
    }
    if cfg!(verkv_mutant = "shared_stripe") {
        return Some(0);
    }
    thread_index().filter(|&index| index < STRIPES)
}

#[cfg(all(test, not(verkv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn live_threads_own_different_indices_and_exited_ones_give_theirs_back() {
        let mine = thread_index().expect("an index for the first threads");
        let (sender, receiver) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let theirs = thread_index();
            sender.send(theirs).unwrap();
            theirs
        });
        let theirs = receiver.recv().unwrap();
        assert_ne!(theirs, Some(mine));
        let returned = other.join().unwrap();
        // Exited: the next new thread may get the same index again, and never ours.
        let next = std::thread::spawn(thread_index).join().unwrap();
        assert_ne!(next, Some(mine));
        let next = next.expect("an index for a new thread");
        assert!(returned.is_some());
        assert!(indices_issued() > mine.max(next));
    }
}
