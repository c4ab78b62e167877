//! Deadlines cover the time spent queued behind other writers; a timed-out or cancelled
//! operation has had no effect.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use verkv::{CancelToken, Error, Interrupted, Phase, Store, Versioned};

const SHORT: Duration = Duration::from_millis(50);
/// Slack for a loaded 2-core machine: a timed-out call must return by its deadline plus
/// this much.
const TOLERANCE: Duration = Duration::from_millis(250);

/// A one-shard store with `"held"` at version 1, holding the shard's write lock on
/// another thread (inside a slow `update_with`) while `body` runs, then letting go.
/// The holder's update writes 100, so afterwards the record is at version 2 with 100.
fn while_shard_is_held(
    body: impl FnOnce(&Store<&'static str, u32>) + Send,
) -> Store<&'static str, u32> {
    let store: Store<&str, u32> = Store::builder().shards(1).build();
    store.insert("held", 1).unwrap();
    let (holding_tx, holding_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let store = &store;
        let holder = s.spawn(move || {
            store.update_with(&"held", &1, |_| {
                holding_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                100
            })
        });
        holding_rx.recv().unwrap();
        body(store);
        release_tx.send(()).unwrap();
        assert_eq!(holder.join().unwrap(), Ok(2));
    });
    store
}

fn assert_queued_timeout(error: &Error<u64>, started: Instant, timeout: Duration) {
    let elapsed = started.elapsed();
    match error {
        Error::TimedOut(t) => {
            assert_eq!(t.phase(), Phase::Queued);
            assert!(t.waited() <= elapsed);
        }
        other => panic!("expected a queued timeout, got {other:?}"),
    }
    assert!(elapsed >= timeout, "gave up early: {elapsed:?}");
    assert!(elapsed <= timeout + TOLERANCE, "gave up late: {elapsed:?}");
}

#[test]
fn a_queued_write_times_out_within_its_deadline_and_has_no_effect() {
    let store = while_shard_is_held(|store| {
        let bounded = store.within(SHORT);
        let started = Instant::now();
        let refused = bounded.update(&"held", &1, 7).unwrap_err();
        assert_queued_timeout(&refused.error, started, SHORT);
        assert_eq!(refused.value, 7, "the value comes back");
        assert!(refused.to_string().starts_with("timed out after "));

        // Every other write is refused the same way, with no effect.
        let started = Instant::now();
        let refused = bounded.insert("new", 1).unwrap_err();
        assert_queued_timeout(&refused.error, started, SHORT);
        assert!(matches!(
            bounded.put("new", 2).unwrap_err().error,
            Error::TimedOut(_)
        ));
        assert!(matches!(
            bounded.remove(&"held", &1),
            Err(Error::TimedOut(_))
        ));
        let err = bounded.update_with(&"held", &1, |n| n + 1).unwrap_err();
        assert!(matches!(err, Error::TimedOut(_)));
    });
    // Only the holder's write happened.
    assert_eq!(
        store.get(&"held"),
        Some(Versioned {
            value: 100,
            version: 2
        })
    );
    assert!(!store.contains_key(&"new"));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_queued_read_times_out() {
    while_shard_is_held(|store| {
        let bounded = store.within(SHORT);
        let started = Instant::now();
        let err = bounded.get(&"held").unwrap_err();
        assert!(matches!(err, Interrupted::TimedOut(t) if t.phase() == Phase::Queued));
        assert!(started.elapsed() <= SHORT + TOLERANCE);
        assert!(bounded.version(&"held").is_err());
        assert!(bounded.contains_key(&"held").is_err());
    });
}

#[test]
fn the_same_operation_succeeds_once_the_lock_is_free() {
    let store = while_shard_is_held(|store| {
        assert!(store.within(SHORT).update(&"held", &1, 7).is_err());
    });
    let bounded = store.within(SHORT);
    assert_eq!(bounded.update(&"held", &2, 7), Ok(3));
    assert_eq!(
        bounded.get(&"held"),
        Ok(Some(Versioned {
            value: 7,
            version: 3
        }))
    );
}

#[test]
fn zero_timeout_succeeds_on_a_free_lock_and_fails_at_once_on_a_held_one() {
    let store: Store<&str, u32> = Store::new();
    let now = store.within(Duration::ZERO);
    let v1 = now.insert("a", 1).unwrap();
    assert_eq!(now.update(&"a", &v1, 2), Ok(2));
    while_shard_is_held(|store| {
        let started = Instant::now();
        let refused = store
            .within(Duration::ZERO)
            .update(&"held", &1, 7)
            .unwrap_err();
        assert!(matches!(refused.error, Error::TimedOut(_)));
        assert!(started.elapsed() <= TOLERANCE);
    });
}

#[test]
fn an_overflowing_timeout_waits_for_the_lock() {
    let store: Store<&str, u32> = Store::builder().shards(1).build();
    store.insert("held", 1).unwrap();
    let (holding_tx, holding_rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            store.update_with(&"held", &1, |_| {
                holding_tx.send(()).unwrap();
                thread::sleep(SHORT);
                100
            })
        });
        holding_rx.recv().unwrap();
        // Duration::MAX cannot be added to now: no deadline. It waits, then sees version 2.
        let refused = store
            .within(Duration::MAX)
            .update(&"held", &1, 7)
            .unwrap_err();
        assert_eq!(
            refused.error,
            Error::Stale {
                expected: 1,
                current: 2
            }
        );
    });
}

#[test]
fn cancellation_while_queued_stops_the_wait_with_no_effect() {
    let token = CancelToken::new();
    let store = while_shard_is_held(|store| {
        thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                token.cancel();
            });
            let started = Instant::now();
            let refused = store
                .within(Duration::from_secs(30))
                .with_cancel(&token)
                .update(&"held", &1, 7)
                .unwrap_err();
            assert_eq!(refused.error, Error::Cancelled);
            assert_eq!(refused.to_string(), "operation cancelled");
            assert!(started.elapsed() < Duration::from_secs(5));
        });
    });
    assert_eq!(
        store.get(&"held"),
        Some(Versioned {
            value: 100,
            version: 2
        })
    );
}

#[test]
fn a_cancelled_token_refuses_before_starting() {
    let store: Store<&str, u32> = Store::new();
    let token = CancelToken::new();
    token.cancel();
    let bounded = store.bounded().with_cancel(&token);
    assert_eq!(bounded.insert("a", 1).unwrap_err().error, Error::Cancelled);
    assert_eq!(bounded.get(&"a"), Err(Interrupted::Cancelled));
    assert!(store.is_empty());
}

#[test]
fn the_builders_default_timeout_bounds_bounded_views() {
    let store: Store<&str, u32> = Store::builder().shards(1).default_timeout(SHORT).build();
    store.insert("held", 1).unwrap();
    let (holding_tx, holding_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let store = &store;
        s.spawn(move || {
            store.update_with(&"held", &1, |_| {
                holding_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                100
            })
        });
        holding_rx.recv().unwrap();
        let started = Instant::now();
        let refused = store.bounded().insert("other", 1).unwrap_err();
        assert_queued_timeout(&refused.error, started, SHORT);
        release_tx.send(()).unwrap();
    });
    assert!(!store.contains_key(&"other"));
}

#[test]
fn an_until_deadline_is_shared_by_every_operation_of_the_view() {
    let store: Store<&str, u32> = Store::new();
    store.insert("a", 1).unwrap();
    let past = store.until(Instant::now());
    // A free lock is still taken: a deadline only bounds waiting.
    assert_eq!(past.get(&"a").unwrap().unwrap().value, 1);
}

/// Runs `measure` while twice as many threads as there are cores spin, and returns its
/// results sorted.
fn under_cpu_load(measure: impl FnOnce() -> Vec<Duration>) -> Vec<Duration> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let busy = 2 * thread::available_parallelism().map_or(2, |n| n.get());
    let mut samples = thread::scope(|s| {
        for _ in 0..busy {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let samples = measure();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        samples
    });
    samples.sort();
    samples
}

/// Under CPU load, a lock wait whose deadline has passed (a zero timeout) gives up
/// without spinning or yielding, and a short one gives up close to its deadline: a
/// single yield there costs a whole scheduler round (16-18 ms with six busy loops on
/// two cores). Prints the distribution; the bounds are generous, for a noisy machine.
#[test]
fn deadlines_hold_under_cpu_load() {
    for (timeout, bound) in [
        (Duration::ZERO, Duration::from_millis(8)),
        (Duration::from_millis(1), Duration::from_millis(25)),
        (Duration::from_millis(5), Duration::from_millis(30)),
    ] {
        let mut samples = Vec::new();
        while_shard_is_held(|store| {
            samples = under_cpu_load(|| {
                (0..40)
                    .map(|_| {
                        let started = Instant::now();
                        let read = store.within(timeout).get(&"held");
                        assert!(matches!(read, Err(Interrupted::TimedOut(_))));
                        started.elapsed()
                    })
                    .collect()
            });
        });
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "within({timeout:?}) under load: median {:?}, p90 {:?}, max {:?}",
            at(0.5),
            at(0.9),
            at(1.0)
        );
        // The median: one unlucky preemption of the measuring thread is the machine's,
        // not the wait's; the bound on the median still catches a wait that yields.
        assert!(
            at(0.5) <= timeout + bound,
            "within({timeout:?}) took {:?}",
            at(0.5)
        );
    }
}
