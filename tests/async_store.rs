//! The in-memory store's async face (`AsyncVersionedStore`): a future awaits a shard lock
//! another operation holds instead of blocking its thread, its deadline and token cover
//! that wait, and a future dropped at any point before it completed has had no effect.
//! (Its answers are held to the blocking face's by `tests/conformance.rs`.)

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread;
use std::time::Duration;

use futures_lite::future::block_on;
use verkv::{
    AsyncVersionedStore, CancelToken, Conflict, Context, Error, Expect, Interrupted, Phase, Store,
    Transaction, TransactionError,
};

/// How long a test holds a shard lock at most.
const LONGEST_HOLD: Duration = Duration::from_secs(2);

/// Holds the shard lock of `key` (inside an `update_with` closure, from another thread)
/// while `during` runs, then lets go; `key`'s record ends one version on, its value + 1.
/// The holder lets go after [`LONGEST_HOLD`] in any case, so that a future that blocks
/// on the lock instead of awaiting it fails its test instead of hanging it.
fn while_locked<T>(store: &Store<u32, u32>, key: u32, during: impl FnOnce() -> T) -> T {
    let version = store.get(&key).expect("the key exists").version;
    let (held, wait_held) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    thread::scope(|scope| {
        let holder = scope.spawn(move || {
            store
                .update_with(&key, &version, |value| {
                    held.send(()).expect("the test waits");
                    // Released by the test, or given up waiting for it.
                    let _ = wait_release.recv_timeout(LONGEST_HOLD);
                    value + 1
                })
                .expect("the holder's write succeeds");
        });
        wait_held.recv().expect("the holder takes the lock");
        let answer = during();
        let _ = release.send(());
        holder.join().expect("the holder does not panic");
        answer
    })
}

/// Polls `future` at most `times` times (with a waker that does nothing), then drops it;
/// its output if it completed.
fn poll_then_drop<F: Future>(future: F, times: usize) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    (0..times).find_map(|_| match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    })
}

fn store_with(key: u32, value: u32) -> Store<u32, u32> {
    let store = Store::new();
    store.insert(key, value).expect("a fresh store");
    store
}

#[test]
fn a_write_behind_a_busy_lock_is_pending_instead_of_blocking_its_thread() {
    let store = store_with(1, 10);
    let v1 = store.get(&1).unwrap().version;
    let ctx = Context::background();
    let first_poll = while_locked(&store, 1, || {
        poll_then_drop(AsyncVersionedStore::update(&store, &ctx, &1, &v1, 99), 1)
    });
    assert!(
        first_poll.is_none(),
        "the first poll must be pending while the lock is held, not wait for it"
    );
    let read = while_locked(&store, 1, || {
        poll_then_drop(AsyncVersionedStore::get(&store, &ctx, &1), 1)
    });
    assert!(read.is_none(), "a read behind a writer is pending too");
}

#[test]
fn a_write_behind_a_busy_lock_completes_once_the_lock_is_free() {
    let store = store_with(1, 10);
    let v1 = store.get(&1).unwrap().version;
    let ctx = Context::within(Duration::from_secs(30));
    let answer = thread::scope(|scope| {
        let (started, wait_started) = mpsc::channel();
        let answer = while_locked(&store, 1, || {
            let ctx = &ctx;
            let store = &store;
            let waiter = scope.spawn(move || {
                started.send(()).unwrap();
                block_on(AsyncVersionedStore::update(store, ctx, &1, &v1, 99))
            });
            wait_started.recv().unwrap();
            thread::sleep(Duration::from_millis(20));
            waiter
        });
        answer.join().unwrap()
    });
    // The holder wrote first: the waiter's version is stale, and its value comes back.
    let refused = answer.unwrap_err();
    let current = store.get(&1).unwrap();
    assert_eq!(
        refused.error,
        Error::Stale {
            expected: v1,
            current: current.version
        }
    );
    assert_eq!((refused.value, current.value), (99, 11));
}

#[test]
fn a_future_dropped_after_any_number_of_polls_behind_a_busy_lock_has_no_effect() {
    for polls in 0..6 {
        let store = store_with(1, 10);
        let v1 = store.get(&1).unwrap().version;
        let ctx = Context::background();
        let mut ran = false;
        while_locked(&store, 1, || {
            assert!(poll_then_drop(store_insert(&store, &ctx), polls).is_none());
            assert!(poll_then_drop(AsyncVersionedStore::put(&store, &ctx, 1, 7), polls).is_none());
            assert!(
                poll_then_drop(AsyncVersionedStore::update(&store, &ctx, &1, &v1, 7), polls)
                    .is_none()
            );
            let with = AsyncVersionedStore::update_with(&store, &ctx, &1, &v1, |_| {
                ran = true;
                7
            });
            assert!(poll_then_drop(with, polls).is_none());
            assert!(
                poll_then_drop(AsyncVersionedStore::remove(&store, &ctx, &1, &v1), polls).is_none()
            );
        });
        assert!(!ran, "a dropped update_with never ran its closure");
        let now = store.get(&1).unwrap();
        assert_eq!(
            now.value, 11,
            "only the holder wrote (dropped after {polls} polls)"
        );
        assert_eq!(store.len(), 1);
    }
}

/// An insert of key 1 (present: it would be refused; dropped, it must not even try).
fn store_insert<'a>(
    store: &'a Store<u32, u32>,
    ctx: &'a Context<'a>,
) -> impl Future<Output = Result<u64, verkv::Rejected<u32, u64>>> + 'a {
    AsyncVersionedStore::insert(store, ctx, 1, 7)
}

#[test]
fn the_deadline_covers_the_time_awaited_behind_a_busy_lock() {
    let store = store_with(1, 10);
    let v1 = store.get(&1).unwrap().version;
    let ctx = Context::within(Duration::from_millis(50));
    let refused = while_locked(&store, 1, || {
        block_on(AsyncVersionedStore::update(&store, &ctx, &1, &v1, 99))
    })
    .unwrap_err();
    match refused.error {
        Error::TimedOut(late) => {
            assert_eq!(late.phase(), Phase::Queued);
            assert!(late.waited() >= Duration::from_millis(40), "{late}");
        }
        other => panic!("expected a timeout while queued, got {other:?}"),
    }
    assert_eq!(refused.value, 99, "the value comes back");
    assert_eq!(store.get(&1).unwrap().value, 11, "only the holder wrote");
}

#[test]
fn a_cancelled_token_stops_a_wait_behind_a_busy_lock() {
    let store = store_with(1, 10);
    let token = CancelToken::new();
    let ctx = Context::background().with_cancel(&token);
    let answer = while_locked(&store, 1, || {
        thread::scope(|scope| {
            scope.spawn(|| {
                thread::sleep(Duration::from_millis(30));
                token.cancel();
            });
            block_on(AsyncVersionedStore::remove(&store, &ctx, &1, &1))
        })
    });
    assert_eq!(answer, Err(Error::Cancelled));
    assert_eq!(store.get(&1).unwrap().value, 11, "nothing removed");
}

#[test]
fn a_load_that_outlives_its_deadline_times_out_loading_and_writes_nothing() {
    let store: Store<u32, u32> = Store::new();
    let ctx = Context::within(Duration::from_millis(30));
    let never = std::future::pending::<u32>();
    let late = block_on(AsyncVersionedStore::get_or_load(&store, &ctx, 5, never)).unwrap_err();
    assert!(
        matches!(late, Error::TimedOut(t) if t.phase() == Phase::Loading),
        "{late:?}"
    );
    assert!(store.get(&5).is_none(), "nothing was written");
    // The abandoned load does not hold up the next caller, who loads.
    let ctx = Context::within(Duration::from_secs(30));
    let loaded = block_on(AsyncVersionedStore::get_or_load(&store, &ctx, 5, async {
        8
    }))
    .unwrap();
    assert_eq!(loaded.value, 8);
}

#[test]
fn a_free_lock_answers_on_the_first_poll() {
    let store = store_with(1, 10);
    let ctx = Context::background();
    let read = poll_then_drop(AsyncVersionedStore::get(&store, &ctx, &1), 1);
    assert_eq!(read.unwrap().unwrap().unwrap().value, 10);
    let v1 = store.get(&1).unwrap().version;
    let written = poll_then_drop(AsyncVersionedStore::update(&store, &ctx, &1, &v1, 12), 1);
    assert!(written.unwrap().is_ok());
}

/// A transfer of 1 from key 1 to key 2, both read at version 1.
fn transfer_at_v1() -> Transaction<u32, u32, u64> {
    Transaction::new().update(1, 1, 9).update(2, 1, 21)
}

#[test]
fn a_transaction_behind_a_busy_lock_is_pending_holding_no_lock_and_applies_once_free() {
    let store = store_with(1, 10);
    store.insert(2, 20).unwrap();
    let ctx = Context::background();
    // Key 1's shard is held: the transaction (on keys 1 and 2) awaits it.
    while_locked(&store, 1, || {
        let pending = poll_then_drop(
            AsyncVersionedStore::commit(&store, &ctx, transfer_at_v1()),
            3,
        );
        assert!(pending.is_none(), "the commit must await the busy lock");
        let read = poll_then_drop(AsyncVersionedStore::get_many(&store, &ctx, &[1, 2]), 3);
        assert!(
            read.is_none(),
            "a multi-key read behind a writer is pending too"
        );
    });
    // The holder wrote key 1 (now at version 2): a transaction based on version 1 is
    // refused naming it, and nothing applies.
    let refused =
        block_on(AsyncVersionedStore::commit(&store, &ctx, transfer_at_v1())).unwrap_err();
    let TransactionError::Conflict(failed) = refused.error else {
        panic!("expected a conflict, got {:?}", refused.error);
    };
    assert_eq!(
        failed,
        vec![Conflict {
            key: 1,
            expected: Expect::Version(1),
            current: Some(2)
        }]
    );
    assert_eq!(store.get(&2).unwrap().value, 20);
    // Read again and commit: both keys move together.
    let read = block_on(AsyncVersionedStore::get_many(&store, &ctx, &[1, 2])).unwrap();
    let (one, two) = (read[0].unwrap(), read[1].unwrap());
    let moved = Transaction::new()
        .update(1, one.version, one.value - 1)
        .update(2, two.version, two.value + 1);
    block_on(AsyncVersionedStore::commit(&store, &ctx, moved)).unwrap();
    assert_eq!(
        (store.get(&1).unwrap().value, store.get(&2).unwrap().value),
        (10, 21)
    );
}

#[test]
fn a_transaction_dropped_after_any_number_of_polls_behind_a_busy_lock_has_no_effect() {
    for polls in 0..6 {
        let store = store_with(1, 10);
        store.insert(2, 20).unwrap();
        let ctx = Context::background();
        while_locked(&store, 2, || {
            let commit = AsyncVersionedStore::commit(&store, &ctx, transfer_at_v1());
            assert!(poll_then_drop(commit, polls).is_none());
            let transact = AsyncVersionedStore::transact(&store, &ctx, &[1, 2], |_| {
                Ok::<_, ()>(Transaction::new().put(1, 0).put(2, 0))
            });
            assert!(poll_then_drop(transact, polls).is_none());
        });
        let values = (store.get(&1).unwrap(), store.get(&2).unwrap());
        assert_eq!(
            (values.0.value, values.0.version, values.1.value),
            (10, 1, 21),
            "only the holder wrote (dropped after {polls} polls)"
        );
    }
}

#[test]
fn the_deadline_covers_a_transaction_awaiting_a_busy_lock() {
    let store = store_with(1, 10);
    store.insert(2, 20).unwrap();
    let ctx = Context::within(Duration::from_millis(50));
    let refused = while_locked(&store, 2, || {
        block_on(AsyncVersionedStore::commit(&store, &ctx, transfer_at_v1()))
    })
    .unwrap_err();
    match refused.error {
        TransactionError::Interrupted {
            stopped: Interrupted::TimedOut(late),
            locked: 0,
            shards,
        } => {
            assert_eq!(late.phase(), Phase::Queued);
            assert!(late.waited() >= Duration::from_millis(40), "{late}");
            assert!(shards >= 1);
        }
        other => panic!("expected a timeout while queued, got {other:?}"),
    }
    assert_eq!(
        refused.transaction,
        transfer_at_v1(),
        "the transaction comes back"
    );
    assert_eq!(store.get(&1).unwrap().value, 10, "nothing applied");
}

#[test]
fn transfers_through_the_async_transact_conserve_the_total() {
    const ACCOUNTS: u32 = 4;
    const TRANSFERS: u32 = 300;
    let store: Store<u32, u32> = Store::new();
    for account in 0..ACCOUNTS {
        store.insert(account, 1_000).unwrap();
    }
    let attempts: u32 = thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let store = &store;
                scope.spawn(move || {
                    let ctx = Context::within(Duration::from_secs(30));
                    let mut attempts = 0;
                    for transfer in 0..TRANSFERS {
                        let from = (transfer * 7 + worker) % ACCOUNTS;
                        let to = (from + 1 + transfer % (ACCOUNTS - 1)) % ACCOUNTS;
                        let done = block_on(AsyncVersionedStore::transact(
                            store,
                            &ctx,
                            &[from, to],
                            |read| {
                                let (Some(f), Some(t)) = (&read[0], &read[1]) else {
                                    return Err("an account vanished");
                                };
                                Ok(Transaction::new()
                                    .put(from, f.value - 1)
                                    .put(to, t.value + 1))
                            },
                        ))
                        .unwrap();
                        attempts += done.attempts;
                    }
                    attempts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let total: u32 = (0..ACCOUNTS).map(|a| store.get(&a).unwrap().value).sum();
    assert_eq!(total, ACCOUNTS * 1_000, "money created or destroyed");
    assert!(attempts >= 2 * TRANSFERS);
}
