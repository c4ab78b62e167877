//! Waiting for a change: woken by writes from other threads, bounded by deadlines, and
//! usable from async code.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use verkv::{CancelToken, Interrupted, Phase, Store};

#[test]
fn a_write_from_another_thread_wakes_the_waiter() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            store
                .within(Duration::from_secs(30))
                .wait_for_change(&"a", Some(&v1))
        });
        // Keep writing until the waiter has seen a change (it may start before or after).
        let mut version = v1;
        while !waiter.is_finished() {
            version = store.update(&"a", &version, version as u32 + 1).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        let changed = waiter.join().unwrap().unwrap().unwrap();
        assert_ne!(changed.version, v1);
    });
}

#[test]
fn appearing_and_disappearing_count_as_changes() {
    let store: Store<&str, u32> = Store::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            ready_tx.send(()).unwrap();
            store.wait_for_change(&"a", None)
        });
        ready_rx.recv().unwrap();
        store.insert("a", 1).unwrap();
        assert_eq!(waiter.join().unwrap().unwrap().value, 1);
    });
    thread::scope(|s| {
        let waiter = s.spawn(|| store.wait_for_change(&"a", Some(&1)));
        store.remove(&"a", &1).unwrap();
        assert_eq!(waiter.join().unwrap(), None);
    });
}

#[test]
fn nothing_changing_times_out() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    // Writes to other keys (same store, maybe the same shard) are not a change of "a".
    store.insert("b", 1).unwrap();
    let timeout = Duration::from_millis(40);
    let started = Instant::now();
    let err = store
        .within(timeout)
        .wait_for_change(&"a", Some(&v1))
        .unwrap_err();
    assert!(matches!(err, Interrupted::TimedOut(t) if t.phase() == Phase::Watching));
    assert!(started.elapsed() >= timeout);
    assert!(started.elapsed() < timeout + Duration::from_millis(250));
}

#[test]
fn a_cancelled_wait_returns_cancelled() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    let token = CancelToken::new();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            token.cancel();
        });
        let err = store
            .bounded()
            .with_cancel(&token)
            .wait_for_change(&"a", Some(&v1));
        assert_eq!(err, Err(Interrupted::Cancelled));
    });
}

#[test]
fn the_async_form_wakes_on_a_write_from_another_thread() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| futures_lite::future::block_on(store.changed(&"a", Some(&v1))));
        let mut version = v1;
        while !waiter.is_finished() {
            version = store.update(&"a", &version, 7).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        let changed = waiter.join().unwrap().unwrap();
        assert_eq!(changed.value, 7);
        assert_ne!(changed.version, v1);
    });
}

#[test]
fn an_async_wait_ends_at_its_deadline_with_no_runtime() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    let timeout = Duration::from_millis(30);
    let started = Instant::now();
    let quiet = futures_lite::future::block_on(store.within(timeout).changed(&"a", Some(&v1)));
    let elapsed = started.elapsed();
    let Err(Interrupted::TimedOut(timed_out)) = quiet else {
        panic!("expected a timeout, got {quiet:?}");
    };
    assert_eq!(timed_out.phase(), Phase::Watching);
    assert!(elapsed >= timeout, "gave up early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );
}

#[test]
fn cancelling_the_token_wakes_an_async_wait() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    let token = CancelToken::new();
    thread::scope(|s| {
        let canceller = token.clone();
        s.spawn(move || {
            thread::sleep(Duration::from_millis(20));
            canceller.cancel();
        });
        let started = Instant::now();
        let waited = futures_lite::future::block_on(
            store
                .within(Duration::from_secs(30))
                .with_cancel(&token)
                .changed(&"a", Some(&v1)),
        );
        assert_eq!(waited, Err(Interrupted::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn a_write_wakes_a_bounded_async_wait() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("a", 1).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            store.update(&"a", &v1, 2).unwrap();
        });
        let changed = futures_lite::future::block_on(
            store
                .within(Duration::from_secs(30))
                .changed(&"a", Some(&v1)),
        );
        assert_eq!(changed.unwrap().unwrap().value, 2);
    });
}
