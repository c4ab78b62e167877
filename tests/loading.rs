//! Single-flight get-or-load: concurrent misses on one key run one loader, and every
//! caller gets its record (or its error); waiters' deadlines never stop a load; a
//! panicking or dropped load never leaves anybody waiting.
//!
//! Each single-flight test fails against the `verkv_mutant = "no_single_flight"` build,
//! where every caller loads for itself:
//!
//! ```text
//! VERKV_MUTANT=no_single_flight cargo test --test loading
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::Duration;

use futures_lite::future::{self, block_on};
use futures_lite::FutureExt;
use verkv::{CancelToken, Interrupted, LoadError, Phase, Store};

/// A bound that turns a hang into a failure.
const NO_HANG: Duration = Duration::from_secs(10);

/// The message of a caught panic.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Holds a load at its start until dropped. Dropping it releases the load, also when an
/// assertion fails first, so a failing test never leaves a loading thread blocked.
struct Gate {
    started: mpsc::Receiver<()>,
    _release: mpsc::Sender<()>,
}

/// The loader's side of a [`Gate`].
struct Held {
    started: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

fn gate() -> (Gate, Held) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Gate {
        started: started_rx,
        _release: release_tx,
    };
    let held = Held {
        started: started_tx,
        release: release_rx,
    };
    (gate, held)
}

impl Gate {
    /// Returns once the loader runs.
    fn wait_started(&self) {
        self.started.recv().unwrap();
    }
}

impl Held {
    /// Called by the loader: says it runs, and waits for the gate to be dropped.
    fn hold(self) {
        self.started.send(()).unwrap();
        // Disconnected when the gate is dropped: that is the release.
        let _ = self.release.recv();
    }
}

#[test]
fn a_hit_returns_the_record_without_loading() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    let hit = store.get_or_load("a", || panic!("a hit must not load"));
    assert_eq!((hit.value, hit.version), (1, v1));
    let bounded = store.within(Duration::ZERO);
    assert_eq!(bounded.get_or_load("a", || unreachable!()).unwrap(), hit);
}

#[test]
fn a_miss_inserts_the_loaded_value_with_a_fresh_version() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    store.remove(&"a", &v1).unwrap();
    let loaded = store.get_or_load("a", || 2);
    // Version 1 was retired with the removed record: the load gets a new one.
    assert_eq!((loaded.value, loaded.version), (2, 2));
    assert_eq!(store.get(&"a"), Some(loaded));
}

#[test]
fn concurrent_misses_run_the_loader_once() {
    const CALLERS: usize = 8;
    let store: Store<u32, usize> = Store::new();
    let loads = AtomicUsize::new(0);
    let start = Barrier::new(CALLERS);
    let results: Vec<_> = thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (store, loads, start) = (&store, &loads, &start);
                s.spawn(move || {
                    start.wait();
                    store.get_or_load(1, || {
                        loads.fetch_add(1, SeqCst);
                        // Long enough for every caller to miss while this load runs.
                        thread::sleep(Duration::from_millis(100));
                        caller
                    })
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(loads.load(SeqCst), 1, "the loader ran more than once");
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_eq!(results[0].version, 1);
    assert_eq!(store.get(&1), Some(results[0]));
}

#[test]
fn loaders_of_one_key_never_overlap_under_churn() {
    // Threads load two keys and remove them again, so loads keep starting; a loader that
    // finds another loader of its key running fails the test.
    const THREADS: usize = 4;
    const ROUNDS: usize = 300;
    let store: Store<usize, usize> = Store::builder().shards(1).build();
    let loading = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let next_value = AtomicUsize::new(0);
    let seen = std::sync::Mutex::new(std::collections::HashMap::new());
    thread::scope(|s| {
        for thread in 0..THREADS {
            let (store, loading, next_value, seen) = (&store, &loading, &next_value, &seen);
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let key = (thread + round) % 2;
                    let got = store.get_or_load(key, || {
                        let running = loading[key].fetch_add(1, SeqCst);
                        assert_eq!(running, 0, "two loaders of key {key} ran at once");
                        thread::yield_now();
                        loading[key].fetch_sub(1, SeqCst);
                        next_value.fetch_add(1, SeqCst)
                    });
                    // A version names one value, whoever reads it.
                    let first = *seen
                        .lock()
                        .unwrap()
                        .entry((key, got.version))
                        .or_insert(got.value);
                    assert_eq!(first, got.value, "version {} of key {key}", got.version);
                    if round % 3 == 0 {
                        let _ = store.remove(&key, &got.version);
                    }
                }
            });
        }
    });
}

#[test]
fn a_waiter_gives_up_at_its_deadline_and_the_load_lands() {
    let store: Store<&str, u32> = Store::new();
    let waiter_loads = AtomicUsize::new(0);
    thread::scope(|s| {
        let (gate, held) = gate();
        let leader = s.spawn(|| {
            store.get_or_load("k", move || {
                held.hold();
                1
            })
        });
        gate.wait_started();
        // A patient waiter, started now, gets the load's record later.
        let patient = s.spawn(|| store.within(NO_HANG).get_or_load("k", || 3));
        let impatient = store
            .within(Duration::from_millis(20))
            .get_or_load("k", || {
                waiter_loads.fetch_add(1, SeqCst);
                2
            });
        match impatient {
            Err(Interrupted::TimedOut(t)) => assert_eq!(t.phase(), Phase::Loading),
            other => panic!("expected a timeout while loading, got {other:?}"),
        }
        assert_eq!(waiter_loads.load(SeqCst), 0, "a waiter loaded for itself");
        drop(gate);
        assert_eq!(leader.join().unwrap().value, 1);
        assert_eq!(patient.join().unwrap().unwrap().value, 1);
    });
    // The timeout did not stop the load.
    assert_eq!(store.get(&"k").unwrap().value, 1);
}

#[test]
fn a_cancelled_waiter_leaves_the_load_running() {
    let store: Store<&str, u32> = Store::new();
    let token = CancelToken::new();
    thread::scope(|s| {
        let (gate, held) = gate();
        let leader = s.spawn(|| {
            store.get_or_load("k", move || {
                held.hold();
                1
            })
        });
        gate.wait_started();
        let canceller = {
            let token = token.clone();
            s.spawn(move || {
                thread::sleep(Duration::from_millis(20));
                token.cancel();
            })
        };
        let waiter = store
            .within(NO_HANG)
            .with_cancel(&token)
            .get_or_load("k", || 2);
        assert_eq!(waiter, Err(Interrupted::Cancelled));
        canceller.join().unwrap();
        drop(gate);
        assert_eq!(leader.join().unwrap().value, 1);
    });
    assert_eq!(store.get(&"k").unwrap().value, 1);
}

#[test]
fn a_loader_error_is_not_cached() {
    let store: Store<&str, u32> = Store::new();
    thread::scope(|s| {
        let (gate, held) = gate();
        let leader = s.spawn(|| {
            store.try_get_or_load("k", move || {
                held.hold();
                Err("backend down")
            })
        });
        gate.wait_started();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    store
                        .within(NO_HANG)
                        .try_get_or_load("k", || Err("backend down"))
                })
            })
            .collect();
        drop(gate);
        assert_eq!(*leader.join().unwrap().unwrap_err(), "backend down");
        for waiter in waiters {
            match waiter.join().unwrap() {
                Err(LoadError::Loader(error)) => assert_eq!(*error, "backend down"),
                other => panic!("expected the loader's error, got {other:?}"),
            }
        }
    });
    assert!(!store.contains_key(&"k"), "an error was cached");
    assert_eq!(store.get_or_load("k", || 5).value, 5);
}

#[test]
fn a_loader_error_reaches_every_waiter() {
    // One thread polls all three futures in turn, so the waiters join while the leader's
    // loader is pending: deterministic.
    let store: Store<&str, u32> = Store::new();
    let loads = &AtomicUsize::new(0);
    let load = || async move {
        loads.fetch_add(1, SeqCst);
        future::yield_now().await;
        Err::<u32, _>(format!("backend down ({} loads)", loads.load(SeqCst)))
    };
    let (leader, (first, second)) = block_on(future::zip(
        store.try_get_or_load_async("k", load()),
        future::zip(
            store.try_get_or_load_async("k", load()),
            store.try_get_or_load_async("k", load()),
        ),
    ));
    let leader = leader.unwrap_err();
    assert_eq!(*leader, "backend down (1 loads)");
    for waiter in [first.unwrap_err(), second.unwrap_err()] {
        assert!(std::sync::Arc::ptr_eq(&waiter, &leader), "{waiter}");
    }
    assert!(!store.contains_key(&"k"));
}

#[test]
fn a_waiter_with_another_error_type_loads_for_itself() {
    let store: Store<&str, u32> = Store::new();
    let (failed, loaded) = block_on(future::zip(
        store.try_get_or_load_async("k", async {
            future::yield_now().await;
            Err::<u32, _>("backend down")
        }),
        // Its loader cannot fail: it cannot be handed a `&str` error, so it loads.
        store.get_or_load_async("k", async { 2 }),
    ));
    assert_eq!(*failed.unwrap_err(), "backend down");
    assert_eq!((loaded.value, loaded.version), (2, 1));
}

#[test]
fn a_panicking_loader_panics_in_its_caller_and_its_waiters_load_again() {
    let store: Store<&str, u32> = Store::new();
    thread::scope(|s| {
        let (gate, held) = gate();
        let leader = s.spawn(|| {
            catch_unwind(AssertUnwindSafe(|| {
                store.get_or_load("k", move || {
                    held.hold();
                    panic!("loader bug")
                })
            }))
        });
        gate.wait_started();
        let waiter = s.spawn(|| store.within(NO_HANG).get_or_load("k", || 7));
        drop(gate);
        let panicked = leader
            .join()
            .unwrap()
            .expect_err("the loader's panic reaches its caller");
        assert_eq!(message(panicked), "loader bug");
        // Whether it joined before the panic or came after, the waiter loads for itself.
        assert_eq!(waiter.join().unwrap().unwrap().value, 7);
    });
    assert_eq!(store.get(&"k").unwrap().value, 7);
}

#[test]
fn a_panicking_loader_wakes_its_waiters() {
    // Deterministic: the waiter has joined when the loader panics.
    let store: Store<&str, u32> = Store::new();
    let (leader, waiter) = block_on(future::zip(
        AssertUnwindSafe(store.get_or_load_async("k", async {
            future::yield_now().await;
            panic!("loader bug")
        }))
        .catch_unwind(),
        store.get_or_load_async("k", async { 7 }),
    ));
    assert_eq!(message(leader.unwrap_err()), "loader bug");
    assert_eq!((waiter.value, waiter.version), (7, 1));
}

#[test]
fn a_dropped_async_load_wakes_its_waiters() {
    let store: Store<&str, u32> = Store::new();
    let mut leader = Box::pin(store.get_or_load_async("k", async {
        future::yield_now().await;
        1
    }));
    assert!(
        block_on(future::poll_once(&mut leader)).is_none(),
        "loading"
    );
    let mut waiter = Box::pin(store.get_or_load_async("k", async { 2 }));
    assert!(
        block_on(future::poll_once(&mut waiter)).is_none(),
        "a second caller must wait for the load in progress"
    );
    drop(leader);
    assert_eq!(block_on(waiter).value, 2);
}

#[test]
fn concurrent_async_misses_run_the_loader_once() {
    let store: Store<&str, u32> = Store::new();
    let loads = &AtomicUsize::new(0);
    let load = |value| async move {
        loads.fetch_add(1, SeqCst);
        future::yield_now().await;
        value
    };
    let (a, b) = block_on(future::zip(
        store.get_or_load_async("k", load(1)),
        store.get_or_load_async("k", load(2)),
    ));
    assert_eq!(loads.load(SeqCst), 1, "the loader ran more than once");
    assert_eq!((a, b.value), (b, 1));
}

#[test]
fn the_async_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let store: Store<u32, String> = Store::new();
    let future = store.get_or_load_async(1, async { String::new() });
    assert_send(&future);
    let future = store.try_get_or_load_async(1, async { Ok::<_, std::io::Error>(String::new()) });
    assert_send(&future);
}

#[test]
fn loads_in_progress_leave_the_store_send_sync_and_unwind_safe() {
    fn assert_traits<T: Send + Sync + std::panic::UnwindSafe>() {}
    assert_traits::<Store<String, String>>();
}

#[test]
fn a_writer_that_creates_the_key_during_the_load_wins() {
    let store: Store<&str, u32> = Store::new();
    // The loader runs under no lock: it can write to the store, even this key.
    let got = store.get_or_load("k", || {
        store.insert("k", 1).unwrap();
        2
    });
    assert_eq!((got.value, got.version), (1, 1));
    assert_eq!(store.get(&"k"), Some(got));
}

#[test]
fn a_loader_may_load_other_keys() {
    let store: Store<&str, u32> = Store::new();
    let a = store.get_or_load("a", || store.get_or_load("b", || 1).value + 1);
    assert_eq!(a.value, 2);
    assert_eq!(store.get(&"b").unwrap().value, 1);
}

#[test]
fn a_loader_that_loads_its_own_key_panics_instead_of_waiting_for_itself() {
    let store: Store<&str, u32> = Store::new();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        store.get_or_load("k", || store.get_or_load("k", || 1).value + 1)
    }))
    .expect_err("a loader waiting for itself must panic");
    assert!(message(payload).contains("the very key it is loading"));
    // The abandoned load left nothing behind.
    assert_eq!(store.get_or_load("k", || 5).value, 5);

    let payload = catch_unwind(AssertUnwindSafe(|| {
        block_on(store.get_or_load_async("j", async {
            store.get_or_load_async("j", async { 1 }).await.value
        }))
    }))
    .expect_err("an async loader waiting for itself must panic");
    assert!(message(payload).contains("the very key it is loading"));
    assert_eq!(block_on(store.get_or_load_async("j", async { 6 })).value, 6);
}

#[test]
fn a_loader_cannot_be_run_inside_an_update_closure() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        let _ = store.update_with(&"a", &v1, |n| {
            store.get_or_load("b", || 2);
            n + 1
        });
    }))
    .expect_err("calling back into the store from a closure must panic");
    assert!(message(payload).contains("called back into the same store"));
    assert!(!store.contains_key(&"b"));
}
