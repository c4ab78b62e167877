//! Detects a closure that calls back into the store that is running it.
//!
//! Closures passed to the store run while it holds a shard's write lock. A call back into
//! the same store from inside would wait for that lock forever (same shard) or risk a
//! lock-order deadlock with another thread (other shard), so it is refused with a panic
//! that names the mistake, before any lock is taken.
//!
//! Callbacks the store keeps and runs under a shard lock (a weigher, an expiry policy) are
//! wrapped in [`UnderLock`], which marks them the same way while they run.
//!
//! Loaders run under no lock, but a loader that waits for its own load would wait
//! forever: the scope of a running loader is marked the same way, with its load's
//! address instead of a store's (see [`is_inside`]).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

#[cfg(not(verkv_loom))]
std::thread_local! {
    /// How many store closures this thread is running. A `Cell` with a constant
    /// initialiser and no destructor: reading it is one load, which keeps the check off
    /// the cost of every operation.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The stores (by address) whose closures this thread is running, innermost last.
    static RUNNING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

// Loom runs its threads on one OS thread: per-thread state must be loom's.
#[cfg(verkv_loom)]
loom::thread_local! {
    static DEPTH: Cell<usize> = Cell::new(0);
    static RUNNING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// Marks a store's closure (or a loader, by its load's address) as running on this thread
/// until dropped (also on unwind).
pub(crate) struct ClosureScope {
    store: usize,
}

impl ClosureScope {
    #[inline]
    pub(crate) fn enter(store: usize) -> Self {
        RUNNING.with(|running| running.borrow_mut().push(store));
        DEPTH.with(|depth| depth.set(depth.get() + 1));
        ClosureScope { store }
    }
}

impl Drop for ClosureScope {
    #[inline]
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get() - 1));
        RUNNING.with(|running| {
            let popped = running.borrow_mut().pop();
            debug_assert_eq!(
                popped,
                Some(self.store),
                "closure scopes end in reverse order"
            );
        });
    }
}

/// A callback of the user's that a store runs under one of its shard locks (a weigher,
/// an expiry policy). While it runs, its thread is inside a closure of that store, so a
/// call back into the store panics clearly instead of waiting for the lock it holds.
pub(crate) struct UnderLock<F: ?Sized> {
    store: usize,
    callback: Arc<F>,
}

impl<F: ?Sized> UnderLock<F> {
    /// `callback`, run on behalf of the store whose id is `store`.
    pub(crate) fn new(store: usize, callback: Arc<F>) -> Self {
        UnderLock { store, callback }
    }

    /// Runs `call` with the callback, inside the store's closure scope.
    #[inline]
    pub(crate) fn call<R>(&self, call: impl FnOnce(&F) -> R) -> R {
        let _scope = ClosureScope::enter(self.store);
        call(&self.callback)
    }
}

impl<F: ?Sized> Clone for UnderLock<F> {
    fn clone(&self) -> Self {
        UnderLock {
            store: self.store,
            callback: Arc::clone(&self.callback),
        }
    }
}

/// Panics if this thread is inside a closure run by `store`.
///
/// Inlined into every operation: outside any closure (the common case) it is one
/// thread-local load and a branch. Where the operation is compiled in the user's crate,
/// the thread-local's address comes from a small call into this crate; measured, that
/// check costs a `get` of 1e6 keys about a sixth of its time (`docs/benchmarks/read-path.md`, "The
/// 1e6-key reads, bisected").
#[inline]
pub(crate) fn forbid_reentry(store: usize) {
    if DEPTH.with(Cell::get) != 0 {
        forbid_reentry_inside_closure(store);
    }
}

/// Whether this thread is inside a closure run by `store`: [`forbid_reentry`] as an
/// answer rather than a panic, for operations that refuse with an error.
#[inline]
pub(crate) fn reentering(store: usize) -> bool {
    DEPTH.with(Cell::get) != 0 && is_inside(store)
}

/// The rest of [`forbid_reentry`], for a thread that is running some store's closure.
#[cold]
#[inline(never)]
fn forbid_reentry_inside_closure(store: usize) {
    assert!(
        !is_inside(store),
        "verkv: a closure passed to the store called back into the same store; \
         this would deadlock on the shard lock the closure runs under \
         (read what you need before the call, or write after it returns; \
         a weigher or an expiry policy may only look at the key and value it is given)"
    );
}

/// Whether this thread is inside a [`ClosureScope`] entered with `id`.
#[cold]
pub(crate) fn is_inside(id: usize) -> bool {
    RUNNING.with(|running| running.borrow().contains(&id))
}

#[cfg(all(test, not(verkv_loom)))]
mod tests {
    use super::*;

    fn depth() -> usize {
        DEPTH.with(Cell::get)
    }

    #[test]
    fn a_finished_closure_leaves_the_fast_path_to_later_calls() {
        assert_eq!(depth(), 0);
        {
            let _outer = ClosureScope::enter(1);
            let _inner = ClosureScope::enter(2);
            assert_eq!(depth(), 2);
        }
        assert_eq!(depth(), 0, "every scope that ends takes its depth with it");
        let unwound = std::panic::catch_unwind(|| {
            let _scope = ClosureScope::enter(3);
            panic!("the closure panicked");
        });
        assert!(unwound.is_err());
        assert_eq!(depth(), 0, "also when the closure unwinds");
        forbid_reentry(1);
    }
}
