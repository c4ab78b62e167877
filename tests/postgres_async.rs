//! The async PostgreSQL store (`AsyncPgStore`): the conformance suite through its async
//! face, transactions (all or nothing, strictly serializable histories, a transaction
//! dropped after any number of polls applied whole or not at all), and what only a
//! server can show: a deadline on a row lock enforced by the
//! server, a cancel token relayed to it, a future dropped mid-statement whose statement
//! the server stops, futures dropped after every number of polls (each write done whole
//! or not at all), and a write in flight when the server dies (`OutcomeUnknown`). Needs
//! `VERKV_POSTGRES_URL` and `VERKV_PG_BIN` (see `.ci/test`); fails without them.

mod support;

use support::awaited::{
    drop_after_every_number_of_polls, polled, raw, running_on, runtime, settled,
};
use support::{cluster, conformance, linearizability as checker, pg, serializability};

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};
use std::time::{Duration, Instant};

use cluster::Cluster;
use proptest::prelude::*;
use verkv::postgres::{AsyncPgStore, AsyncPgStoreBuilder};
use verkv::{AsyncVersionedStore, CancelToken, Context, Error, Phase, UuidV4};

/// Fewer cases than on the in-memory store (256): each one creates a table.
const MODEL_CASES: u32 = 24;

async fn store<K, V>(prefix: &str) -> AsyncPgStore<K, V> {
    AsyncPgStore::builder(pg::url())
        .table(pg::table(prefix))
        .build()
        .await
        .unwrap_or_else(|cause| panic!("cannot open a store at VERKV_POSTGRES_URL: {cause}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(MODEL_CASES))]

    #[test]
    fn counter_store_conforms(steps in conformance::steps(4, 60)) {
        let runtime = runtime();
        let store: AsyncPgStore<conformance::Key, conformance::Value> =
            runtime.block_on(store("amodel"));
        let _inside = runtime.enter();
        conformance::Model::run_async(&store, &steps);
    }

    #[test]
    fn uuid_store_conforms(steps in conformance::steps(4, 60)) {
        let runtime = runtime();
        let store: AsyncPgStore<conformance::Key, conformance::Value, UuidV4> = runtime
            .block_on(
                AsyncPgStore::builder(pg::url())
                    .table(pg::table("amodel_uuid"))
                    .versions::<UuidV4>()
                    .build(),
            )
            .unwrap();
        let _inside = runtime.enter();
        conformance::Model::run_async(&store, &steps);
    }
}

/// The store `builder` opens, holding key `k` at value 1: the store, the key and its
/// version.
async fn seeded(
    builder: AsyncPgStoreBuilder<String, u32>,
) -> (AsyncPgStore<String, u32>, String, u64) {
    let store = builder.build().await.unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .await
        .unwrap();
    (store, key, v1)
}

/// Checks that `key` still holds value 1 at version `v1`.
async fn assert_unchanged(store: &AsyncPgStore<String, u32>, key: &String, v1: u64) {
    let now = store
        .get(&Context::background(), key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

/// Holds the row lock of `key` in an open transaction until dropped.
struct RowLock {
    _session: tokio_postgres::Client,
}

impl RowLock {
    async fn take(table: &str, key: &str) -> RowLock {
        RowLock::take_at(&pg::url(), table, key).await
    }

    /// On the server at `url`.
    async fn take_at(url: &str, table: &str, key: &str) -> RowLock {
        let client = raw(url).await;
        client.batch_execute("BEGIN").await.unwrap();
        let json = serde_json::Value::String(key.to_string());
        let sql = format!("SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE");
        assert_eq!(client.query(&sql, &[&json]).await.unwrap().len(), 1);
        RowLock { _session: client }
    }
}

/// An operation's future stays small: the pool's wait (about 8 KB of state) is boxed, not
/// carried inline by every layer of every operation (each future was about 10 KB).
#[tokio::test]
async fn an_operations_future_does_not_carry_the_pools_wait() {
    /// The most bytes an operation's future may take.
    const MOST: usize = 5 * 1024;
    let store: AsyncPgStore<String, u32> = store("asize").await;
    let (ctx, key) = (Context::background(), "k".to_string());
    let sizes = [
        ("get", std::mem::size_of_val(&store.get(&ctx, &key))),
        (
            "update",
            std::mem::size_of_val(&store.update(&ctx, &key, &1, 2)),
        ),
        (
            "commit",
            std::mem::size_of_val(
                &store.commit(&ctx, verkv::Transaction::new().put(key.clone(), 2)),
            ),
        ),
        (
            "wait_for_change",
            std::mem::size_of_val(&store.wait_for_change(&ctx, &key, None)),
        ),
    ];
    for (operation, size) in sizes {
        assert!(
            size <= MOST,
            "{operation}'s future is {size} B, more than {MOST}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_on_a_row_lock_times_out_as_queued_with_no_effect() {
    let table = pg::table("arowlock");
    let (store, key, v1) = seeded(AsyncPgStore::builder(pg::url()).table(&table)).await;
    let lock = RowLock::take(&table, "k").await;
    let started = Instant::now();
    let refused = store
        .update(&Context::within(Duration::from_millis(200)), &key, &v1, 2)
        .await
        .unwrap_err();
    let took = started.elapsed();
    drop(lock);
    match refused.error {
        Error::TimedOut(timed_out) => assert_eq!(timed_out.phase(), Phase::Queued),
        other => panic!("expected a queued timeout, got {other}"),
    }
    assert_eq!(refused.value, 2);
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    assert_unchanged(&store, &key, v1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_is_cancelled_on_the_server_with_no_effect() {
    let table = pg::table("acancel");
    let (store, key, v1) = seeded(AsyncPgStore::builder(pg::url()).table(&table)).await;
    let lock = RowLock::take(&table, "k").await;
    let token = CancelToken::new();
    let ctx = Context::background().with_cancel(&token);
    let update = store.update(&ctx, &key, &v1, 2);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel();
    };
    let started = Instant::now();
    let (refused, ()) = tokio::join!(update, cancel);
    let took = started.elapsed();
    drop(lock);
    assert_eq!(refused.unwrap_err().error, Error::Cancelled);
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_unchanged(&store, &key, v1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_while_it_waits_on_the_server_is_cancelled_there_with_no_effect() {
    let table = pg::table("adrop");
    let (store, key, v1) = seeded(AsyncPgStore::builder(pg::url()).table(&table)).await;
    let observer = raw(&pg::url()).await;
    let lock = RowLock::take(&table, "k").await;
    {
        let ctx = Context::background();
        let mut update = pin!(store.update(&ctx, &key, &v1, 2));
        // Poll it until the server shows its statement waiting for the row lock.
        let mut task = TaskContext::from_waker(Waker::noop());
        let waiting_since = Instant::now();
        loop {
            assert!(
                update.as_mut().poll(&mut task).is_pending(),
                "the row is locked"
            );
            if running_on(&observer, &table).await == 1 {
                break;
            }
            assert!(
                waiting_since.elapsed() < Duration::from_secs(5),
                "the update never reached the server"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Dropped here, mid-statement.
    }
    let dropped_at = Instant::now();
    while running_on(&observer, &table).await > 0 {
        assert!(
            dropped_at.elapsed() < Duration::from_secs(2),
            "the dropped update still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(lock);
    // Had it run on, the update would commit now that the lock is free.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_unchanged(&store, &key, v1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_change_wakes_on_a_write_and_gives_up_at_its_deadline() {
    let store: AsyncPgStore<String, u32> = store("await").await;
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .await
        .unwrap();
    let started = Instant::now();
    let timed_out = store
        .wait_for_change(
            &Context::within(Duration::from_millis(100)),
            &key,
            Some(&v1),
        )
        .await
        .unwrap_err();
    assert!(matches!(timed_out, Error::TimedOut(t) if t.phase() == Phase::Watching));
    assert!(started.elapsed() < Duration::from_millis(1000));
    let ctx = Context::within(Duration::from_secs(5));
    let waiter = store.wait_for_change(&ctx, &key, Some(&v1));
    let writer = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.update(&ctx, &key, &v1, 2).await.unwrap()
    };
    let (changed, v2) = tokio::join!(waiter, writer);
    let changed = changed.unwrap().unwrap();
    assert_eq!((changed.value, changed.version), (2, v2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_listens_registered_withdraws_when_done_and_leaves_no_listening_session_pooled() {
    let table = pg::table("await_listen");
    // One connection: a session left listening would be handed to the next operation.
    let store = store_on(&table, 1).await;
    let writer: AsyncPgStore<String, u32> = store_on(&table, 8).await;
    let observer = raw(&pg::url()).await;
    let registry = format!("SELECT count(*) FROM \"{table}_listeners\"");
    let registered = || async {
        observer
            .query_one(&registry, &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let key = "k".to_string();
    let ctx = Context::within(Duration::from_secs(5));
    let v1 = store.insert(&ctx, key.clone(), 1).await.unwrap();
    // A wait in progress is a registered listener, woken by another store's write.
    let mut waiter = Box::pin(store.wait_for_change(&ctx, &key, Some(&v1)));
    let since = Instant::now();
    while registered().await == 0 {
        assert!(!polled(waiter.as_mut(), 1).await, "woken before any write");
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "the wait never registered"
        );
    }
    let v2 = writer.update(&ctx, &key, &v1, 2).await.unwrap();
    let changed = waiter.await.unwrap().unwrap();
    assert_eq!((changed.value, changed.version), (2, v2));
    // A wait that ended withdraws its registration (in a task of its own, once it has
    // answered).
    let since = Instant::now();
    while registered().await != 0 {
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "a wait that ended did not withdraw its registration"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // A wait dropped while it listens: its session is not handed out again.
    let mut dropped = Box::pin(store.wait_for_change(&ctx, &key, Some(&v2)));
    while registered().await == 0 {
        assert!(!polled(dropped.as_mut(), 1).await, "woken before any write");
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "the wait never registered"
        );
    }
    drop(dropped);
    let waiter = store.wait_for_change(&ctx, &key, Some(&v2));
    let write = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.update(&ctx, &key, &v2, 3).await.unwrap()
    };
    let (changed, v3) = tokio::join!(waiter, write);
    assert_eq!(changed.unwrap().map(|r| r.version), Some(v3));
    assert_eq!(
        store.get(&ctx, &key).await.unwrap().map(|r| r.value),
        Some(3)
    );
}

/// A store on `table` with a pool of `pool_size` sessions.
async fn store_on(table: &str, pool_size: u32) -> AsyncPgStore<String, u32> {
    AsyncPgStore::builder(pg::url())
        .table(table)
        .pool_size(pool_size)
        .build()
        .await
        .unwrap()
}

/// What one dropped operation may have left: the record before it, or after it whole.
#[derive(Clone, Copy, Debug)]
enum Op {
    Insert,
    Update,
    Put,
    Remove,
    TryUpdateWith,
}

/// `op`'s future on `key` (whose record is `before`, if any), as a boxed future whose
/// output is dropped (only its effect on the table is looked at).
fn op_future<'a>(
    store: &'a AsyncPgStore<String, u32>,
    ctx: &'a Context<'a>,
    op: Op,
    key: &'a String,
    before: Option<&'a u64>,
) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    match (op, before) {
        (Op::Insert, _) => Box::pin(async move {
            let _ = store.insert(ctx, key.clone(), 2).await;
        }),
        (Op::Update, Some(v)) => Box::pin(async move {
            let _ = store.update(ctx, key, v, 2).await;
        }),
        (Op::Put, _) => Box::pin(async move {
            let _ = store.put(ctx, key.clone(), 2).await;
        }),
        (Op::Remove, Some(v)) => Box::pin(async move {
            let _ = store.remove(ctx, key, v).await;
        }),
        (Op::TryUpdateWith, Some(v)) => Box::pin(async move {
            let _ = store
                .try_update_with(ctx, key, v, |_| Ok::<u32, ()>(2))
                .await;
        }),
        (op, None) => unreachable!("{op:?} needs a record"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_dropped_after_any_number_of_polls_did_all_of_its_write_or_none() {
    let table = pg::table("adrop_polls");
    // Two connections: one leaked or left busy by a dropped future would starve the rest.
    let store = store_on(&table, 2).await;
    let observer = raw(&pg::url()).await;
    let background = Context::background();
    for op in [
        Op::Insert,
        Op::Update,
        Op::Put,
        Op::Remove,
        Op::TryUpdateWith,
    ] {
        drop_after_every_number_of_polls(&format!("{op:?}"), async |polls| {
            let key = format!("{op:?}-{polls}");
            let before = match op {
                Op::Insert => None,
                _ => Some(store.insert(&background, key.clone(), 1).await.unwrap()),
            };
            // A store of its own whose connection has yet to be set up: the polls go
            // through the checkout, setting the session's timeouts (for `within`),
            // preparing the statements, and the statement itself.
            let subject = store_on(&table, 1).await;
            let within = Context::within(Duration::from_secs(60));
            let mut future = op_future(&subject, &within, op, &key, before.as_ref());
            let completed = polled(future.as_mut(), polls).await;
            drop(future);
            drop(subject);
            let what = format!("{op:?} dropped after {polls} polls");
            settled(&observer, &table, &what).await;
            let after = store.get(&background, &key).await.unwrap();
            let after = after.map(|record| (record.value, record.version));
            match (op, before, after) {
                // Nothing done.
                (Op::Insert, None, None) => assert!(!completed, "{what}: completed, no record"),
                (Op::Update | Op::Put | Op::Remove | Op::TryUpdateWith, Some(v1), Some((1, v)))
                    if v == v1 =>
                {
                    assert!(!completed, "{what}: completed, the record unchanged")
                }
                // Done whole.
                (Op::Insert, None, Some((2, _))) => {}
                (Op::Update | Op::Put | Op::TryUpdateWith, Some(v1), Some((2, v))) if v != v1 => {}
                (Op::Remove, Some(_), None) => {}
                (_, before, after) => {
                    panic!("{what}: half applied: before {before:?}, after {after:?}")
                }
            }
            // The store still serves the key at once: no lock or connection left held.
            let ctx = Context::within(Duration::from_secs(2));
            store.put(&ctx, key.clone(), 3).await.unwrap();
            completed
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_when_the_server_dies_has_an_unknown_outcome_and_the_pool_recovers() {
    let cluster = Cluster::start();
    let builder = AsyncPgStore::builder(cluster.url())
        .table("faults")
        .acquire_timeout(Duration::from_millis(300));
    let (store, key, v1) = seeded(builder).await;
    // Another session holds the row lock, so the write is in flight when the server dies.
    let holder = RowLock::take_at(&cluster.url(), "faults", "k").await;
    let ctx = Context::within(Duration::from_secs(10));
    let update = store.update(&ctx, &key, &v1, 2);
    let crash = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| cluster.crash());
    };
    let (refused, ()) = tokio::join!(update, crash);
    let refused = refused.unwrap_err();
    assert!(
        matches!(refused.error, Error::OutcomeUnknown(_)),
        "a write in flight when the server died: {}",
        refused.error
    );
    assert_eq!(refused.value, 2);
    let down = store.get(&Context::background(), &key).await;
    assert!(matches!(down, Err(Error::Unavailable(_))), "{down:?}");
    drop(holder);
    tokio::task::block_in_place(|| cluster.resume());
    // The pool recovers by itself; the write waited for the lock and never ran.
    let started = Instant::now();
    let mut recovered = store.get(&Context::background(), &key).await;
    while recovered.is_err() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        recovered = store.get(&Context::background(), &key).await;
    }
    let now = recovered.expect("the pool recovers").unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

#[test]
fn an_operation_polled_outside_a_tokio_runtime_is_refused_as_misconfigured() {
    let runtime = runtime();
    let store: AsyncPgStore<String, u32> = runtime.block_on(store("anoruntime"));
    let read = futures_lite::future::block_on(store.get(&Context::background(), &"k".into()));
    assert!(matches!(read, Err(Error::Misconfigured(_))), "{read:?}");
}

/// Transactions across keys through the async face: the blocking store's statements
/// (`tests/postgres.rs` holds that face to the same checks), awaited.
mod transactions {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;
    use checker::Versions;
    use serializability::{
        answer, build, check, transaction, Answer, Call, Dice, Event, Key, Value,
    };
    use verkv::{Conflict, Expect, Outcome, Transaction, TransactionError};

    fn ctx() -> Context<'static> {
        Context::within(Duration::from_secs(10))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_writes_every_key_or_none_naming_every_failed_condition() {
        let store: AsyncPgStore<String, i64> = store("atxn_all").await;
        let key = |name: &str| name.to_string();
        let a = store.insert(&ctx(), key("a"), 100).await.unwrap();
        let b = store.insert(&ctx(), key("b"), 0).await.unwrap();
        let moved = Transaction::new()
            .update(key("a"), a, 70)
            .update(key("b"), b, 30)
            .create(key("c"), 1)
            .compare_absent(key("d"));
        let outcomes = store.commit(&ctx(), moved).await.unwrap();
        assert!(matches!(
            outcomes[..],
            [
                Outcome::Written(_),
                Outcome::Written(_),
                Outcome::Written(_),
                Outcome::Compared
            ]
        ));
        let read = store
            .get_many(&ctx(), &[key("c"), key("a"), key("d"), key("b")])
            .await
            .unwrap();
        let values: Vec<_> = read.iter().map(|r| r.as_ref().map(|r| r.value)).collect();
        assert_eq!(values, [Some(1), Some(70), None, Some(30)]);
        // The same transfer again is based on versions that are gone: nothing applies,
        // and both keys are named with their current versions.
        let again = Transaction::new()
            .update(key("a"), a, 0)
            .update(key("b"), b, 100)
            .put(key("e"), 5);
        let refused = store.commit(&ctx(), again).await.unwrap_err();
        let TransactionError::Conflict(mut failed) = refused.error else {
            panic!("expected a conflict, got {:?}", refused.error);
        };
        failed.sort_by(|x, y| x.key.cmp(&y.key));
        // The versions the first transaction gave `a` and `b` (read above, in that order
        // after `c`).
        let current = |name: &str| {
            read[if name == "a" { 1 } else { 3 }]
                .as_ref()
                .map(|r| r.version)
        };
        assert_eq!(
            failed,
            vec![
                Conflict {
                    key: key("a"),
                    expected: Expect::Version(a),
                    current: current("a")
                },
                Conflict {
                    key: key("b"),
                    expected: Expect::Version(b),
                    current: current("b")
                },
            ]
        );
        let after = store.get_many(&ctx(), &[key("a"), key("e")]).await.unwrap();
        assert_eq!(after[0].as_ref().map(|r| r.value), Some(70));
        assert!(
            after[1].is_none(),
            "nothing of a refused transaction applies"
        );
        let empty = store.commit(&ctx(), Transaction::new()).await.unwrap_err();
        assert_eq!(empty.error, TransactionError::Empty);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transaction_histories_are_strictly_serializable() {
        const KEYS: Key = 3;
        const TASKS: usize = 3;
        const OPERATIONS: usize = 8;
        const ROUNDS: u64 = 8;
        for round in 0..ROUNDS {
            let store: Arc<AsyncPgStore<Key, Value>> = Arc::new(store("atxn_serial").await);
            let clock = Arc::new(AtomicU64::new(0));
            let keys: Vec<Key> = (0..KEYS).collect();
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let (store, clock, keys) = (store.clone(), clock.clone(), keys.clone());
                    tokio::spawn(async move {
                        let mut dice = Dice(
                            (round << 8 | task as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                        );
                        let tick = || clock.fetch_add(1, Ordering::SeqCst);
                        let mut events = Vec::new();
                        for operation in 0..OPERATIONS {
                            let invoked = tick();
                            let read = store.get_many(&ctx(), &keys).await.unwrap();
                            let returned = tick();
                            let read: Vec<_> = read
                                .into_iter()
                                .map(|r| r.map(|r| (r.value, r.version)))
                                .collect();
                            events.push(Event {
                                thread: task,
                                invoked,
                                returned,
                                call: Call::GetMany(keys.clone()),
                                answer: Answer::Read(read.clone()),
                            });
                            let unique = (task * OPERATIONS + operation) as Value;
                            let steps = build(&read, &mut dice, unique);
                            let invoked = tick();
                            let got = store.commit(&ctx(), transaction(&steps)).await;
                            let returned = tick();
                            events.push(Event {
                                thread: task,
                                invoked,
                                returned,
                                call: Call::Transaction(steps),
                                answer: answer(got),
                            });
                        }
                        events
                    })
                })
                .collect();
            let mut history = Vec::new();
            for task in tasks {
                history.extend(task.await.unwrap());
            }
            if let Err(violation) = check(&history, usize::from(KEYS), Versions::Unique) {
                panic!("round {round}: {violation}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transfers_through_transact_in_opposite_key_orders_conserve_the_total() {
        const TRANSFERS: usize = 60;
        let store: Arc<AsyncPgStore<String, i64>> = Arc::new(store("atxn_transfers").await);
        for name in ["left", "right"] {
            store.insert(&ctx(), name.to_string(), 1000).await.unwrap();
        }
        let tasks: Vec<_> = (0..2)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    let keys = if task == 0 {
                        ["left", "right"]
                    } else {
                        ["right", "left"]
                    };
                    let keys = keys.map(str::to_string);
                    let mut attempts = 0;
                    for _ in 0..TRANSFERS {
                        let done = store
                            .transact(&ctx(), &keys, |read| {
                                let (Some(from), Some(to)) = (&read[0], &read[1]) else {
                                    return Err("an account vanished");
                                };
                                Ok(Transaction::new()
                                    .put(keys[0].clone(), from.value - 1)
                                    .put(keys[1].clone(), to.value + 1))
                            })
                            .await
                            .unwrap();
                        attempts += done.attempts;
                    }
                    attempts
                })
            })
            .collect();
        let mut attempts = 0;
        for task in tasks {
            attempts += task.await.unwrap();
        }
        let read = store
            .get_many(&ctx(), &["left".to_string(), "right".to_string()])
            .await
            .unwrap();
        let total: i64 = read.iter().flatten().map(|r| r.value).sum();
        assert_eq!(total, 2000, "money created or destroyed");
        assert!(attempts >= 2 * TRANSFERS as u32);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_dropped_after_any_number_of_polls_did_all_of_it_or_none() {
        let table = pg::table("atxn_drop");
        let store = store_on(&table, 2).await;
        let observer = raw(&pg::url()).await;
        let background = Context::background();
        drop_after_every_number_of_polls("a transaction", async |polls| {
            let (a, b) = (format!("a{polls}"), format!("b{polls}"));
            let va = store.insert(&background, a.clone(), 1).await.unwrap();
            let vb = store.insert(&background, b.clone(), 1).await.unwrap();
            // A store of its own whose connection has yet to be set up, as in the
            // single-key test above.
            let subject = store_on(&table, 1).await;
            let within = Context::within(Duration::from_secs(60));
            let moved = Transaction::new()
                .update(a.clone(), va, 2)
                .update(b.clone(), vb, 2)
                .create(format!("c{polls}"), 2);
            let mut future = Box::pin(subject.commit(&within, moved));
            let completed = polled(future.as_mut(), polls).await;
            drop(future);
            drop(subject);
            let what = format!("a transaction dropped after {polls} polls");
            settled(&observer, &table, &what).await;
            let keys = [a.clone(), b.clone(), format!("c{polls}")];
            let after: Vec<_> = store
                .get_many(&background, &keys)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.map(|r| r.value))
                .collect();
            match after[..] {
                [Some(1), Some(1), None] => {
                    assert!(!completed, "{what}: completed, nothing written")
                }
                [Some(2), Some(2), Some(2)] => {}
                _ => panic!("{what}: half applied: {after:?}"),
            }
            // Every key is served at once: no row lock left held.
            let ctx = Context::within(Duration::from_secs(2));
            store.put(&ctx, a.clone(), 3).await.unwrap();
            store.put(&ctx, format!("c{polls}"), 3).await.unwrap();
            completed
        })
        .await;
    }
}
