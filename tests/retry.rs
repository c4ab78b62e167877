//! The optimistic retry helper: every increment exactly once under contention; deadlines
//! and cancellation between attempts.

use std::thread;
use std::time::{Duration, Instant};

use verkv::{CancelToken, Error, Phase, Store, UpdateWithError};

const INCREMENTS_PER_THREAD: u64 = 20_000;

#[test]
fn two_threads_apply_every_increment_exactly_once() {
    let store: Store<&str, u64> = Store::new();
    store.insert("hot", 0).unwrap();
    let attempts: Vec<u64> = thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut attempts = 0u64;
                    for _ in 0..INCREMENTS_PER_THREAD {
                        let done = store.retry_update(&"hot", |n| n + 1).unwrap();
                        attempts += u64::from(done.attempts);
                    }
                    attempts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let last = store.get(&"hot").unwrap();
    assert_eq!(last.value, 2 * INCREMENTS_PER_THREAD);
    assert_eq!(
        last.version,
        2 * INCREMENTS_PER_THREAD + 1,
        "one write per increment"
    );
    assert!(attempts.iter().all(|&a| a >= INCREMENTS_PER_THREAD));
}

#[test]
fn a_closure_error_stops_the_loop_with_nothing_written() {
    let store: Store<&str, u64> = Store::new();
    store.insert("a", 5).unwrap();
    let err = store
        .try_retry_update(&"a", |n| {
            if *n > 10 {
                Ok(n - 10)
            } else {
                Err("not enough")
            }
        })
        .unwrap_err();
    assert_eq!(err, UpdateWithError::Closure("not enough"));
    assert_eq!(store.get(&"a").unwrap().version, 1);
    let err = store.retry_update(&"missing", |n| *n).unwrap_err();
    assert_eq!(err, Error::NotFound);
}

#[test]
fn the_deadline_stops_a_loop_that_keeps_meeting_stale_versions() {
    let store: Store<&str, u64> = Store::new();
    store.insert("a", 0).unwrap();
    let timeout = Duration::from_millis(30);
    let started = Instant::now();
    let mut calls = 0u64;
    // The closure itself writes the record each time (deliberately impure), so every
    // attempt finds its version stale.
    let err = store
        .within(timeout)
        .retry_update(&"a", |n| {
            calls += 1;
            store.put("a", 1000 + calls).unwrap();
            n + 1
        })
        .unwrap_err();
    let Error::TimedOut(timed_out) = err else {
        panic!("expected a timeout, got {err:?}");
    };
    let Phase::Retrying { attempts } = timed_out.phase() else {
        panic!("expected the retry phase, got {:?}", timed_out.phase());
    };
    assert!(attempts >= 1 && u64::from(attempts) <= calls);
    assert!(started.elapsed() >= timeout);
    assert!(timed_out
        .to_string()
        .contains("attempts were stale and nothing was written"));
    // Only the closure's own puts landed: the retried increments never did.
    assert_eq!(store.get(&"a").unwrap().value, 1000 + calls);
}

#[test]
fn cancellation_stops_the_loop_between_attempts() {
    let store: Store<&str, u64> = Store::new();
    store.insert("a", 0).unwrap();
    let token = CancelToken::new();
    let mut calls = 0;
    let err = store
        .within(Duration::from_secs(30))
        .with_cancel(&token)
        .retry_update(&"a", |n| {
            calls += 1;
            store.put("a", 0).unwrap();
            if calls == 3 {
                token.cancel();
            }
            n + 1
        })
        .unwrap_err();
    assert_eq!(err, Error::Cancelled);
    assert_eq!(calls, 3);
    assert_eq!(store.get(&"a").unwrap().value, 0);
}
