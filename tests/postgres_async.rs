//! The async PostgreSQL store (`AsyncPgStore`): the conformance suite through its async
//! face, and what only a server can show: a deadline on a row lock enforced by the
//! server, a cancel token relayed to it, and a future dropped mid-statement whose
//! statement the server stops. Needs `VERKV_POSTGRES_URL` (see `.ci/test`); fails
//! without it.

// The blocking face (`Model::run`) is run on `PgStore` in `tests/postgres.rs`.
#[allow(dead_code)]
#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/ledger.rs"]
mod ledger;
#[path = "support/pg.rs"]
mod pg;

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use verkv::postgres::AsyncPgStore;
use verkv::{AsyncVersionedStore, CancelToken, Context, Error, Phase, UuidV4};

/// Fewer cases than on the in-memory store (256): each one creates a table.
const MODEL_CASES: u32 = 24;

/// A runtime for the stores' connection tasks and cancel requests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn store<K, V>(prefix: &str) -> AsyncPgStore<K, V> {
    AsyncPgStore::builder(pg::url())
        .table(pg::table(prefix))
        .build()
        .await
        .unwrap_or_else(|cause| panic!("cannot open a store at VERKV_POSTGRES_URL: {cause}"))
}

/// A plain client, for what the tests do behind the store's back (its connection driven
/// by a task of the current runtime).
async fn raw() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg::url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
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

/// Holds the row lock of `key` in an open transaction until dropped.
struct RowLock {
    _session: tokio_postgres::Client,
}

impl RowLock {
    async fn take(table: &str, key: &str) -> RowLock {
        let client = raw().await;
        client.batch_execute("BEGIN").await.unwrap();
        let json = serde_json::Value::String(key.to_string());
        let sql = format!("SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE");
        assert_eq!(client.query(&sql, &[&json]).await.unwrap().len(), 1);
        RowLock { _session: client }
    }
}

/// How many statements on `table` the server is running (or waiting to run) for
/// sessions other than `observer`'s.
async fn running_on(observer: &tokio_postgres::Client, table: &str) -> i64 {
    let row = observer
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state = 'active' AND pid <> pg_backend_pid() \
             AND position($1 in query) > 0",
            &[&table],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_on_a_row_lock_times_out_as_queued_with_no_effect() {
    let table = pg::table("arowlock");
    let store: AsyncPgStore<String, u32> = AsyncPgStore::builder(pg::url())
        .table(&table)
        .build()
        .await
        .unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .await
        .unwrap();
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
    let now = store
        .get(&Context::background(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_write_is_cancelled_on_the_server_with_no_effect() {
    let table = pg::table("acancel");
    let store: AsyncPgStore<String, u32> = AsyncPgStore::builder(pg::url())
        .table(&table)
        .build()
        .await
        .unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .await
        .unwrap();
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
    let now = store
        .get(&Context::background(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_while_it_waits_on_the_server_is_cancelled_there_with_no_effect() {
    let table = pg::table("adrop");
    let store: AsyncPgStore<String, u32> = AsyncPgStore::builder(pg::url())
        .table(&table)
        .build()
        .await
        .unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .await
        .unwrap();
    let observer = raw().await;
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
    let now = store
        .get(&Context::background(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.value, now.version), (1, v1));
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
