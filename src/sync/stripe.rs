//! Which counter stripe a thread owns: a small index that no other live thread holds,
//! so that a counter slot with that index is written by one thread only and can be
//! bumped with a plain load and store instead of a read-modify-write instruction.
//!
//! A thread claims an index on its first count and gives it back when it exits (its
//! thread-local destructor), so a process that starts and ends many threads reuses
//! the same few indices. When [`STRIPES`] threads hold one each, further threads get
//! none and count in a shared slot with atomic additions: correct, only slower. The
//! index is handed from an exiting thread to the next through a mutex, which orders the
//! old owner's last store before the new owner's first load.
//!
//! The `verkv_mutant = "shared_stripe"` cfg hands every thread index 0, so that the
//! statistics tests can show they catch the counts lost when two threads own one slot.

/// How many threads can own a stripe at the same time.
pub(crate) const STRIPES: usize = 64;

#[cfg(not(verkv_loom))]
mod claim {
    use std::cell::Cell;
    use std::sync::{Mutex, PoisonError};

    use super::STRIPES;

    /// Indices given back by threads that exited, and the next one never handed out.
    static RETURNED: Mutex<(Vec<usize>, usize)> = Mutex::new((Vec::new(), 0));

    /// What a thread's claim says: no index asked for yet.
    const UNCLAIMED: usize = usize::MAX;

    /// Holds a thread's index until the thread exits, then gives it back.
    struct Claim(Cell<usize>);

    impl Drop for Claim {
        fn drop(&mut self) {
            let index = self.0.get();
            // Counts made after this, by later thread-local destructors, go to the
            // shared slot: the index may already be another thread's.
            let _ = INDEX.try_with(|mine| mine.set(STRIPES));
            if index < STRIPES {
                let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
                returned.0.push(index);
            }
        }
    }

    std::thread_local! {
        /// The index this thread counts with: `UNCLAIMED`, an owned index, or
        /// `STRIPES` (none: count in the shared slot). Without a destructor, so that
        /// reading it is a plain thread-local load.
        static INDEX: Cell<usize> = const { Cell::new(UNCLAIMED) };
        /// The claim that gives the index back when the thread exits.
        static CLAIM: Claim = const { Claim(Cell::new(UNCLAIMED)) };
    }

    /// This thread's stripe when it has not claimed one yet (it claims one now) or
    /// has none (`index` is `STRIPES`).
    #[cold]
    #[inline(never)]
    fn unowned(index: usize) -> Option<usize> {
        let index = if index == UNCLAIMED { claim() } else { index };
        (index < STRIPES).then_some(index)
    }

    /// Claims a free index for this thread (`STRIPES` if every one is held, or if the
    /// thread is exiting and cannot give one back).
    fn claim() -> usize {
        let claimed = CLAIM.try_with(|claim| {
            let mut returned = RETURNED.lock().unwrap_or_else(PoisonError::into_inner);
            let (free, next) = &mut *returned;
            let index = free.pop().unwrap_or_else(|| {
                let index = (*next).min(STRIPES);
                *next = index + usize::from(index < STRIPES);
                index
            });
            claim.0.set(index);
            index
        });
        let index = claimed.unwrap_or(STRIPES);
        INDEX.with(|mine| mine.set(index));
        index
    }

    /// The calling thread's stripe, if it owns one (see the [module docs](super)).
    #[inline]
    pub(crate) fn thread_stripe() -> Option<usize> {
        if cfg!(verkv_mutant = "shared_stripe") {
            return Some(0);
        }
        match INDEX.with(Cell::get) {
            owned if owned < STRIPES => Some(owned),
            index => unowned(index),
        }
    }
}

#[cfg(verkv_loom)]
mod claim {
    /// Under loom no thread owns a stripe: every count is an atomic addition, which the
    /// model checker explores like any other.
    pub(crate) fn thread_stripe() -> Option<usize> {
        None
    }
}

pub(crate) use claim::thread_stripe;

#[cfg(all(test, not(verkv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn live_threads_own_different_stripes_and_exited_ones_give_theirs_back() {
        let mine = thread_stripe().expect("a stripe for the first threads");
        let (sender, receiver) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let theirs = thread_stripe();
            sender.send(theirs).unwrap();
            theirs
        });
        let theirs = receiver.recv().unwrap();
        assert_ne!(theirs, Some(mine));
        let returned = other.join().unwrap();
        // Exited: the next new thread may get the same index again, and never ours.
        let next = std::thread::spawn(thread_stripe).join().unwrap();
        assert_ne!(next, Some(mine));
        assert!(returned.is_some() && next.is_some());
    }
}
