//! Model checking of the store's concurrent protocol with loom: every interleaving of a
//! few threads (up to a preemption bound) is explored.
//!
//! ```text
//! RUSTFLAGS="--cfg verkv_loom" cargo test --test loom
//! ```
//!
//! Each model also fails against the mutant without the version check:
//!
//! ```text
//! RUSTFLAGS='--cfg verkv_loom --cfg verkv_mutant="no_version_check"' cargo test --test loom
//! ```
#![cfg(verkv_loom)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use verkv::{CancelToken, Error, Store};

/// Explores `model` with a preemption bound that keeps the run to seconds.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(model);
}

/// A one-shard store with `"k"` at version 1 holding 10: every record holds ten times
/// its version, as long as no update is lost or torn.
fn store() -> Arc<Store<&'static str, u64>> {
    let store = Store::builder().shards(1).build();
    store.insert("k", 10).unwrap();
    Arc::new(store)
}

/// A read-modify-write that keeps `value == 10 * version`, attempted once.
fn step(store: &Store<&'static str, u64>) -> bool {
    let read = store.get("k").unwrap();
    store
        .update("k", &read.version, (read.version + 1) * 10)
        .is_ok()
}

fn assert_consistent(store: &Store<&'static str, u64>, winners: u64) {
    let end = store.get("k").unwrap();
    assert_eq!(end.value, end.version * 10, "torn or lost: {end:?}");
    assert_eq!(
        end.version,
        1 + winners,
        "every successful update counted exactly once"
    );
}

#[test]
fn cas_vs_cas_has_one_winner_per_version() {
    check(|| {
        let store = store();
        let other = {
            let store = store.clone();
            thread::spawn(move || store.update("k", &1, 20).is_ok())
        };
        let mine = store.update("k", &1, 20).is_ok();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one writer of version 1 wins");
        assert_consistent(&store, 1);
    });
}

#[test]
fn read_modify_write_loses_no_update() {
    check(|| {
        let store = store();
        let other = {
            let store = store.clone();
            thread::spawn(move || step(&store))
        };
        let mine = step(&store);
        let theirs = other.join().unwrap();
        assert_consistent(&store, u64::from(mine) + u64::from(theirs));
    });
}

#[test]
fn get_never_sees_a_torn_pair() {
    check(|| {
        let store = store();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                thread::spawn(move || step(&store))
            })
            .collect();
        let seen = store.get("k").unwrap();
        assert_eq!(seen.value, seen.version * 10, "torn read: {seen:?}");
        let winners: u64 = writers
            .into_iter()
            .map(|w| u64::from(w.join().unwrap()))
            .sum();
        assert_consistent(&store, winners);
    });
}

static TIMEOUT_EXPLORED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_timed_out_cas_has_no_effect() {
    check(|| {
        let store = store();
        let other = {
            let store = store.clone();
            thread::spawn(move || store.update("k", &1, 20).is_ok())
        };
        // Loom has no clock: a bounded wait is one more attempt, so this times out
        // whenever the other thread holds the lock at that moment.
        let mine = match store.within(Duration::from_secs(1)).update("k", &1, 20) {
            Ok(_) => true,
            Err(refused) if matches!(refused.error, Error::TimedOut(_)) => {
                TIMEOUT_EXPLORED.store(true, Ordering::Relaxed);
                false
            }
            Err(_) => false,
        };
        let theirs = other.join().unwrap();
        assert_consistent(&store, u64::from(mine) + u64::from(theirs));
        assert!(mine ^ theirs, "exactly one writer of version 1 wins");
    });
    assert!(
        TIMEOUT_EXPLORED.load(Ordering::Relaxed),
        "the timeout path was never taken"
    );
}

static CANCEL_EXPLORED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_cancelled_cas_has_no_effect() {
    check(|| {
        let store = store();
        let token = CancelToken::new();
        let canceller = {
            let token = token.clone();
            thread::spawn(move || token.cancel())
        };
        let other = {
            let store = store.clone();
            thread::spawn(move || store.update("k", &1, 20).is_ok())
        };
        let bounded = store.within(Duration::ZERO).with_cancel(&token);
        let mine = match bounded.update("k", &1, 20) {
            Ok(_) => true,
            Err(refused) if refused.error == Error::Cancelled => {
                CANCEL_EXPLORED.store(true, Ordering::Relaxed);
                false
            }
            Err(_) => false,
        };
        canceller.join().unwrap();
        let theirs = other.join().unwrap();
        assert_consistent(&store, u64::from(mine) + u64::from(theirs));
        assert!(mine ^ theirs, "exactly one writer of version 1 wins");
    });
    assert!(
        CANCEL_EXPLORED.load(Ordering::Relaxed),
        "the cancelled path was never taken"
    );
}

#[test]
fn wait_for_change_never_loses_a_wake_up() {
    check(|| {
        let store = store();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                thread::spawn(move || store.update("k", &1, 20).is_ok())
            })
            .collect();
        // Blocks without a deadline: a lost wake-up is a deadlock, which loom reports.
        let changed = store.wait_for_change("k", Some(&1)).unwrap();
        assert_eq!(changed.value, changed.version * 10);
        let winners: u64 = writers
            .into_iter()
            .map(|w| u64::from(w.join().unwrap()))
            .sum();
        assert_eq!(winners, 1, "exactly one writer of version 1 wins");
        assert_consistent(&store, winners);
    });
}
