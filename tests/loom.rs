//! Model checking of the store's concurrent protocol with loom: every interleaving of a
//! few threads (up to a preemption bound) is explored.
//!
//! ```text
//! RUSTFLAGS="--cfg verkv_loom" cargo test --test loom
//! ```
//!
//! The version-check models fail against the mutant without the version check (and the
//! one on a shard refusing stale writes on the read path, against the mutant that trusts
//! that look), the loading models against the mutant without the single flight, and the
//! multi-key read beside a transaction against the mutant that writes a transaction one
//! key at a time:
//!
//! ```text
//! RUSTFLAGS="--cfg verkv_loom" VERKV_MUTANT=no_version_check cargo test --test loom
//! RUSTFLAGS="--cfg verkv_loom" VERKV_MUTANT=no_single_flight cargo test --test loom
//! RUSTFLAGS="--cfg verkv_loom" VERKV_MUTANT=trusting_read cargo test --test loom -- winner
//! RUSTFLAGS="--cfg verkv_loom" VERKV_MUTANT=txn_one_at_a_time cargo test --test loom -- half
//! ```
//!
//! The shard lock's own protocol (revocation of the read bias, a writer that gives up,
//! the bias coming back) is modelled beside it, in `src/sync/biased.rs`, where the models
//! can see whether a reader took the fast path: `cargo test --lib sync::` under the same
//! cfg. `get_never_sees_a_torn_pair` and the model above run it through the store, and
//! the last model runs it through a bounded store whose reads mark records used while an
//! insert evicts; all of them fail against the writer that skips revocation
//! (`verkv_mutant="no_revocation"`).
#![cfg(verkv_loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;
use verkv::{
    CancelToken, Counter, Error, Interrupted, Phase, Store, Transaction, TransactionError,
};

/// The stack each modelled thread gets. Loom runs threads as coroutines whose default
/// stack (32 KiB) the store's unoptimised frames outgrow.
const STACK: usize = 1 << 20;

/// Explores `model` with a preemption bound that keeps the run to seconds, on a thread
/// with a stack of [`STACK`] bytes.
fn check(model: impl Fn() + Sync + Send + 'static) {
    let model = std::sync::Arc::new(model);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let model = std::sync::Arc::clone(&model);
        spawn(move || model()).join().unwrap();
    });
}

/// Spawns a modelled thread with a stack of [`STACK`] bytes.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(STACK).spawn(f).unwrap()
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
            spawn(move || store.update("k", &1, 20).is_ok())
        };
        let mine = store.update("k", &1, 20).is_ok();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one writer of version 1 wins");
        assert_consistent(&store, 1);
    });
}

/// The same on a shard that has refused a stale write lately, whose conditional writes
/// look for a stale version on the read path first: a refusal there names a version that
/// was current within the call, and a write that passed the look is checked again under
/// the write lock (the `trusting_read` mutant is not).
#[test]
fn cas_vs_cas_has_one_winner_when_stale_writes_are_refused_on_the_read_path() {
    check(|| {
        let store = store();
        let refused = store.update("k", &0, 0).unwrap_err();
        assert_eq!(
            refused.error,
            Error::Stale {
                expected: 0,
                current: 1
            }
        );
        let other = {
            let store = store.clone();
            spawn(move || store.update("k", &1, 20))
        };
        let mine = store.update("k", &1, 20);
        let theirs = other.join().unwrap();
        match (mine, theirs) {
            (Ok(2), Err(lost)) | (Err(lost), Ok(2)) => {
                assert_eq!(
                    lost.error,
                    Error::Stale {
                        expected: 1,
                        current: 2
                    }
                )
            }
            answers => panic!("exactly one writer of version 1 wins: {answers:?}"),
        }
        assert_consistent(&store, 1);
    });
}

#[test]
fn read_modify_write_loses_no_update() {
    check(|| {
        let store = store();
        let other = {
            let store = store.clone();
            spawn(move || step(&store))
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
                spawn(move || step(&store))
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
            spawn(move || store.update("k", &1, 20).is_ok())
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

static READER_TIMEOUT_EXPLORED: AtomicBool = AtomicBool::new(false);

/// A reader announced on the read-biased shard makes a bounded writer give up (loom has
/// no clock: the bounded wait is one attempt): the write has no effect and the reader,
/// and the readers after it, still finish with a consistent pair.
#[test]
fn a_write_timed_out_on_a_reader_has_no_effect() {
    check(|| {
        let store = store();
        let reader = {
            let store = store.clone();
            spawn(move || {
                let seen = store.get("k").unwrap();
                assert_eq!(seen.value, seen.version * 10, "torn read: {seen:?}");
            })
        };
        let mine = match store.within(Duration::from_secs(1)).update("k", &1, 20) {
            Ok(_) => true,
            Err(refused) if matches!(refused.error, Error::TimedOut(_)) => {
                READER_TIMEOUT_EXPLORED.store(true, Ordering::Relaxed);
                false
            }
            Err(refused) => panic!("unexpected refusal: {:?}", refused.error),
        };
        reader.join().unwrap();
        assert_consistent(&store, u64::from(mine));
    });
    assert!(
        READER_TIMEOUT_EXPLORED.load(Ordering::Relaxed),
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
            spawn(move || token.cancel())
        };
        let other = {
            let store = store.clone();
            spawn(move || store.update("k", &1, 20).is_ok())
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
                spawn(move || store.update("k", &1, 20).is_ok())
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

/// A one-shard store with nothing in it, and a counter of the loads run against it.
fn empty() -> (Arc<Store<&'static str, u64>>, Arc<AtomicUsize>) {
    let store = Store::builder().shards(1).build();
    (Arc::new(store), Arc::new(AtomicUsize::new(0)))
}

/// A loader that counts itself and loads `value`.
fn counted(loads: &AtomicUsize, value: u64) -> impl FnOnce() -> u64 + '_ {
    move || {
        loads.fetch_add(1, Ordering::SeqCst);
        value
    }
}

#[test]
fn concurrent_misses_load_once_and_the_loser_is_woken() {
    check(|| {
        let (store, loads) = empty();
        let other = {
            let (store, loads) = (store.clone(), loads.clone());
            spawn(move || store.get_or_load("k", counted(&loads, 20)))
        };
        // Waits without a deadline when it loses: a lost wake-up is a deadlock, which
        // loom reports.
        let mine = store.get_or_load("k", counted(&loads, 10));
        let theirs = other.join().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for one key");
        assert_eq!(mine, theirs, "both callers get the one loaded record");
        assert_eq!(store.get("k"), Some(mine));
    });
}

static LOADING_TIMEOUT_EXPLORED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_waiter_that_times_out_leaves_the_load_to_land() {
    check(|| {
        let (store, loads) = empty();
        let other = {
            let (store, loads) = (store.clone(), loads.clone());
            spawn(move || store.get_or_load("k", counted(&loads, 20)))
        };
        // Loom has no clock: a zero deadline gives up whenever the load is not over yet.
        let mine = store
            .within(Duration::ZERO)
            .get_or_load("k", counted(&loads, 10));
        if matches!(mine, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Loading) {
            LOADING_TIMEOUT_EXPLORED.store(true, Ordering::Relaxed);
        }
        let theirs = other.join().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for one key");
        if let Ok(mine) = mine {
            assert_eq!(mine, theirs, "both callers get the one loaded record");
        }
        // Whoever gave up, the load landed.
        assert_eq!(store.get("k"), Some(theirs));
    });
    assert!(
        LOADING_TIMEOUT_EXPLORED.load(Ordering::Relaxed),
        "no waiter ever timed out waiting for a load"
    );
}

/// Keeps the expected panics of the loading models out of the output.
fn silence_loader_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"loader bug") {
                default(info);
            }
        }));
    });
}

static ABANDONED_EXPLORED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_panicking_load_wakes_its_waiter() {
    silence_loader_panics();
    check(|| {
        let (store, loads) = empty();
        let panicking = {
            let store = store.clone();
            spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    store.get_or_load("k", || panic!("loader bug"))
                }))
                .ok()
            })
        };
        let mine = store.get_or_load("k", counted(&loads, 10));
        let theirs = panicking.join().unwrap();
        // The waiter was woken (or never waited) and loaded for itself; the panicking
        // caller panicked, or found that record.
        assert_eq!((mine.value, mine.version), (10, 1));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        match theirs {
            Some(theirs) => assert_eq!(theirs, mine),
            None => {
                ABANDONED_EXPLORED.store(true, Ordering::Relaxed);
            }
        }
        assert_eq!(store.get("k"), Some(mine));
    });
    assert!(
        ABANDONED_EXPLORED.load(Ordering::Relaxed),
        "the panicking loader never ran"
    );
}

/// A two-shard store with a fixed hasher (the same placement in every execution), two
/// keys on different shards, each at version 1: `a` holding 10 and `b` holding 0.
fn two_shards() -> (Arc<Store<u64, u64, Counter, Fixed>>, u64, u64) {
    let store: Store<u64, u64, Counter, Fixed> =
        Store::builder().shards(2).hasher(Fixed::default()).build();
    let a = 0;
    let b = (1..)
        .find(|&key| store.shard_of(&key) != store.shard_of(&a))
        .unwrap();
    store.insert(a, 10).unwrap();
    store.insert(b, 0).unwrap();
    (Arc::new(store), a, b)
}

/// A hasher that is the same in every execution of a model.
type Fixed = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// Two transactions over the same two shards, naming their keys in opposite orders,
/// both from version 1: no deadlock (loom reports one), exactly one commits, and the
/// other is refused naming both keys at the winner's versions, having written nothing.
#[test]
fn transactions_in_opposite_orders_never_deadlock_and_one_wins() {
    check(|| {
        let (store, a, b) = two_shards();
        let other = {
            let store = store.clone();
            spawn(move || store.commit(Transaction::new().update(b, 1, 5).update(a, 1, 5)))
        };
        let mine = store.commit(Transaction::new().update(a, 1, 3).update(b, 1, 7));
        let theirs = other.join().unwrap();
        let (lost, (end_a, end_b)) = match (mine, theirs) {
            (Ok(_), Err(lost)) => (lost, (3, 7)),
            (Err(lost), Ok(_)) => (lost, (5, 5)),
            answers => panic!("exactly one transaction wins: {answers:?}"),
        };
        let TransactionError::Conflict(conflicts) = lost.error else {
            panic!("{:?}", lost.error)
        };
        let current: Vec<_> = conflicts.iter().map(|c| (c.key, c.current)).collect();
        assert_eq!(current.len(), 2);
        assert!(current.contains(&(a, Some(2))) && current.contains(&(b, Some(2))));
        let read = store.get_many(&[&a, &b]);
        let read: Vec<_> = read
            .into_iter()
            .map(|r| r.map(|r| (r.value, r.version)))
            .collect();
        assert_eq!(read, vec![Some((end_a, 2)), Some((end_b, 2))]);
    });
}

/// A multi-key read concurrent with a transaction that moves 5 from `a` to `b` sees both
/// keys before it or both after it, never half (the `txn_one_at_a_time` mutant, which
/// writes one key at a time, lets it see half).
#[test]
fn get_many_never_sees_half_a_transaction() {
    check(|| {
        let (store, a, b) = two_shards();
        let mover = {
            let store = store.clone();
            spawn(move || {
                store
                    .commit(Transaction::new().update(a, 1, 5).update(b, 1, 5))
                    .is_ok()
            })
        };
        let read = store.get_many(&[&a, &b]);
        let (a_read, b_read) = (read[0].unwrap(), read[1].unwrap());
        assert_eq!(
            a_read.value + b_read.value,
            10,
            "half a transaction: {read:?}"
        );
        assert_eq!(
            a_read.version, b_read.version,
            "half a transaction: {read:?}"
        );
        assert!(mover.join().unwrap());
    });
}

/// A bounded store's reads mark their records used (atomics the policy writes under the
/// read lock) while an insert past the bound evicts under the write lock: every read
/// sees a whole record as written, and the bound holds once the writer is done. The
/// hasher is fixed, so that every execution counts uses in the same counters of the
/// policy's sketch (with a seed of its own per store, executions touched different
/// atomics, which the model checker cannot replay: it failed an assertion of its own
/// in one CI run).
#[test]
fn reads_marking_records_used_beside_an_evicting_insert_see_whole_records() {
    check(|| {
        let store: Arc<Store<u64, u64, Counter, Fixed>> = Arc::new(
            Store::builder()
                .shards(1)
                .max_capacity(2)
                .hasher(Fixed::default())
                .build(),
        );
        store.insert(1, 10).unwrap();
        store.insert(2, 20).unwrap();
        let reader = {
            let store = Arc::clone(&store);
            spawn(move || {
                for key in [1, 2] {
                    if let Some(read) = store.get(&key) {
                        assert_eq!(read.value, key * 10, "a read saw a torn record");
                    }
                }
            })
        };
        store.insert(3, 30).unwrap();
        reader.join().unwrap();
        assert!(store.len() <= 2, "the bound holds: {} records", store.len());
        assert_eq!(store.get(&3).map(|read| read.value), Some(30));
    });
}
