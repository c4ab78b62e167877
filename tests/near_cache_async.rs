//! The async near-cache (`AsyncNearCache`): the conformance suite through its face;
//! another instance's writes heard by the task that listens (no thread of its own, even
//! on a runtime of one thread); a lost notification connection opened again by that
//! task; memory no longer served once its runtime has shut down; and every operation's
//! future dropped after any number of polls, which leaves the database's record whole or
//! untouched and memory no staler than one notification. Needs `VERKV_POSTGRES_URL` and
//! `VERKV_PG_BIN` (see `.ci/test`); fails without them.

mod support;

use support::awaited::{drop_after_every_number_of_polls, polled, raw, runtime, settled};
use support::{conformance, pg};

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use verkv::near::{AsyncNearCache, NearCache, NearStats};
use verkv::postgres::{AsyncPgStore, PgStore};
use verkv::{AsyncVersionedStore, Context, Transaction};

/// Fewer cases than on the in-memory store (256): each one creates a table.
const MODEL_CASES: u32 = 24;

/// How long a change may take to reach another instance's memory in these tests.
const BOUND: Duration = Duration::from_secs(2);

/// An async near-cache on `table`, its heartbeat short enough for the tests.
async fn near<K, V>(table: &str) -> AsyncNearCache<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned + std::hash::Hash + Eq + Clone,
    K: Send + Sync + 'static,
    V: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let db = AsyncPgStore::builder(pg::url())
        .table(table)
        .pool_size(8)
        .build()
        .await
        .unwrap_or_else(|cause| panic!("cannot open a store at VERKV_POSTGRES_URL: {cause}"));
    NearCache::builder(db)
        .heartbeat(Duration::from_millis(200))
        .build()
        .await
        .unwrap()
}

/// Reads `key` through `cache` until it answers `expected` (value and version), for at
/// most [`BOUND`].
async fn serves(cache: &AsyncNearCache<String, u32>, key: &String, expected: Option<(u32, u64)>) {
    let ctx = Context::within(BOUND * 2);
    let since = Instant::now();
    loop {
        let seen = cache.get(&ctx, key).await.unwrap();
        let seen = seen.map(|record| (record.value, record.version));
        if seen == expected {
            return;
        }
        assert!(
            since.elapsed() < BOUND,
            "the near-cache still serves {seen:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads `key` until a read is served from memory, failing after 20. (A read may meet
/// the copy between its notification's tick and re-stamp, and load it again.)
async fn hit_within_a_few_reads(cache: &AsyncNearCache<String, u32>, key: &String) {
    let ctx = Context::within(BOUND);
    let hits = cache.stats().hits;
    for _ in 0..20 {
        cache.get(&ctx, key).await.unwrap();
        if cache.stats().hits > hits {
            return;
        }
    }
    panic!("no read was served from memory: {:?}", cache.stats());
}

/// `cache`'s statistics once `done` holds of them, or after five bounds.
async fn stats_reach(
    cache: &AsyncNearCache<String, u32>,
    done: impl Fn(&NearStats) -> bool,
) -> NearStats {
    let give_up = Instant::now() + BOUND * 5;
    loop {
        let stats = cache.stats();
        if done(&stats) || Instant::now() >= give_up {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many threads of this process are a near-cache's listening or connecting thread.
fn near_cache_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("verkv-near"))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(MODEL_CASES))]

    #[test]
    fn async_near_cache_conforms(steps in conformance::steps(4, 60)) {
        let runtime = runtime();
        let cache: AsyncNearCache<conformance::Key, conformance::Value> =
            runtime.block_on(near(&pg::table("anear_model")));
        let _inside = runtime.enter();
        conformance::Model::run_async(&cache, &steps);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_near_cache_serves_from_memory_and_hears_another_instances_writes() {
    let table = pg::table("anear_two");
    let (one, two): (AsyncNearCache<String, u32>, AsyncNearCache<String, u32>) =
        (near(&table).await, near(&table).await);
    let ctx = Context::within(Duration::from_secs(10));
    let key = "likes".to_string();
    let v1 = one.insert(&ctx, key.clone(), 1).await.unwrap();
    assert_eq!(two.get(&ctx, &key).await.unwrap().unwrap().version, v1);
    for value in 2..12 {
        let current = one.get(&ctx, &key).await.unwrap().unwrap().version;
        let next = one.update(&ctx, &key, &current, value).await.unwrap();
        serves(&two, &key, Some((value, next))).await;
        // Read again, now from memory: a read answers on its first poll. (One may meet
        // the copy between the notification's tick and its re-stamp, and load again.)
        let mut at_once = false;
        for _ in 0..20 {
            let mut read = Box::pin(two.get(&ctx, &key));
            if polled(read.as_mut(), 1).await {
                at_once = true;
                break;
            }
            read.await.unwrap();
        }
        assert!(at_once, "no read of a copy in memory answered at once");
    }
    let stats = two.stats();
    assert!(stats.coherent, "{stats:?}");
    assert!(stats.invalidations >= 10, "{stats:?}");
    assert!(stats.hits >= 10, "{stats:?}");
}

/// On a runtime of one thread, the test's own: whatever listens must be a task of it.
#[tokio::test(flavor = "current_thread")]
async fn the_listener_is_a_task_of_the_runtime_not_a_thread() {
    let table = pg::table("anear_task");
    let before = near_cache_threads();
    let (one, two): (AsyncNearCache<String, u32>, AsyncNearCache<String, u32>) =
        (near(&table).await, near(&table).await);
    assert_eq!(
        near_cache_threads(),
        before,
        "an async near-cache started a thread"
    );
    let ctx = Context::within(Duration::from_secs(10));
    let key = "k".to_string();
    let v1 = one.insert(&ctx, key.clone(), 1).await.unwrap();
    serves(&two, &key, Some((1, v1))).await;
    let v2 = one.update(&ctx, &key, &v1, 2).await.unwrap();
    // Heard by `two`'s task, on this one thread, while the test awaits.
    serves(&two, &key, Some((2, v2))).await;
    assert!(two.stats().invalidations >= 1, "{:?}", two.stats());

    // The count sees a blocking near-cache's listening thread: it can fail.
    let blocking = tokio::task::spawn_blocking(move || {
        let db: PgStore<String, u32> = PgStore::builder(pg::url()).table(table).build().unwrap();
        NearCache::builder(db).build().unwrap()
    })
    .await
    .unwrap();
    // (A thread names itself once it runs.)
    let since = Instant::now();
    while near_cache_threads() != before + 1 {
        assert!(since.elapsed() < BOUND, "no listening thread counted");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(blocking);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_connection_is_opened_again_by_the_task() {
    let table = pg::table("anear_lost");
    let (one, two): (AsyncNearCache<String, u32>, AsyncNearCache<String, u32>) =
        (near(&table).await, near(&table).await);
    let ctx = Context::within(Duration::from_secs(10));
    let key = "k".to_string();
    let v1 = one.insert(&ctx, key.clone(), 1).await.unwrap();
    serves(&two, &key, Some((1, v1))).await;

    let pid = two.listener_pid().expect("listening");
    let admin = raw(&pg::url()).await;
    let name: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&(pid as i32)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "verkv near-cache listener");
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&(pid as i32)])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    // A change `two` cannot hear about.
    let v2 = one.update(&ctx, &key, &v1, 2).await.unwrap();

    let lost = stats_reach(&two, |s| s.disconnects >= 1).await;
    assert_eq!(lost.disconnects, 1, "{lost:?}");
    // Never the copy from before the loss again.
    let read = two.get(&ctx, &key).await.unwrap().unwrap();
    assert_eq!((read.value, read.version), (2, v2));

    let back = stats_reach(&two, |s| s.reconnects >= 1 && s.coherent).await;
    assert!(back.coherent && back.reconnects == 1, "{back:?}");
    assert_ne!(two.listener_pid(), Some(pid));
    // Coherent again: changes are heard, and reads served from memory.
    let v3 = one.update(&ctx, &key, &v2, 3).await.unwrap();
    serves(&two, &key, Some((3, v3))).await;
    hit_within_a_few_reads(&two, &key).await;
}

#[test]
fn once_its_runtime_has_shut_down_memory_is_no_longer_served() {
    let table = pg::table("anear_shutdown");
    let key = "k".to_string();
    let first = runtime();
    let cache: AsyncNearCache<String, u32> = first.block_on(async {
        let cache = near(&table).await;
        let ctx = Context::within(Duration::from_secs(10));
        cache.insert(&ctx, key.clone(), 1).await.unwrap();
        hit_within_a_few_reads(&cache, &key).await;
        cache
    });
    assert!(cache.stats().coherent);
    // Its task, and the tasks that drive its connections, end with the runtime.
    drop(first);
    let stats = cache.stats();
    assert!(!stats.coherent, "{stats:?}");

    // On another runtime it still answers, from the database.
    let second = runtime();
    second.block_on(async {
        let ctx = Context::within(Duration::from_secs(10));
        let bypassed = cache.stats().bypassed;
        let read = cache.get(&ctx, &key).await.unwrap().unwrap();
        assert_eq!(read.value, 1);
        assert_eq!(cache.stats().bypassed, bypassed + 1);
    });
}

/// An operation of the near-cache whose future is dropped part way.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Insert,
    Update,
    Put,
    Remove,
    TryUpdateWith,
    Commit,
}

impl Op {
    const ALL: [Op; 7] = [
        Op::Get,
        Op::Insert,
        Op::Update,
        Op::Put,
        Op::Remove,
        Op::TryUpdateWith,
        Op::Commit,
    ];

    /// The operation's future on `key`, whose record is at `before` (if there is one),
    /// writing 2; its output is dropped (only its effect is looked at).
    fn future<'a>(
        self,
        cache: &'a AsyncNearCache<String, u32>,
        ctx: &'a Context<'a>,
        key: &'a String,
        before: Option<u64>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        match (self, before) {
            (Op::Get, _) => Box::pin(async move {
                let _ = cache.get(ctx, key).await;
            }),
            (Op::Insert, _) => Box::pin(async move {
                let _ = cache.insert(ctx, key.clone(), 2).await;
            }),
            (Op::Put, _) => Box::pin(async move {
                let _ = cache.put(ctx, key.clone(), 2).await;
            }),
            (Op::Update, Some(v)) => Box::pin(async move {
                let _ = cache.update(ctx, key, &v, 2).await;
            }),
            (Op::Remove, Some(v)) => Box::pin(async move {
                let _ = cache.remove(ctx, key, &v).await;
            }),
            (Op::TryUpdateWith, Some(v)) => Box::pin(async move {
                let _ = cache
                    .try_update_with(ctx, key, &v, |_| Ok::<u32, ()>(2))
                    .await;
            }),
            (Op::Commit, Some(v)) => Box::pin(async move {
                let _ = cache
                    .commit(ctx, Transaction::new().update(key.clone(), v, 2))
                    .await;
            }),
            (op, None) => unreachable!("{op:?} needs a record"),
        }
    }

    /// Whether `after` is what the operation leaves done whole, from `before`.
    fn done_whole(self, before: Option<u64>, after: Option<(u32, u64)>) -> bool {
        match (self, after) {
            (Op::Get, _) => false,
            (Op::Remove, after) => after.is_none(),
            (_, Some((2, version))) => Some(version) != before,
            (_, _) => false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_dropped_after_any_number_of_polls_leaves_the_record_whole_and_memory_within_a_notification(
) {
    let table = pg::table("anear_drop");
    let cache: AsyncNearCache<String, u32> = near(&table).await;
    let observer = raw(&pg::url()).await;
    let background = Context::background();
    for op in Op::ALL {
        drop_after_every_number_of_polls(&format!("{op:?}"), async |polls| {
            let key = format!("{op:?}-{polls}");
            let before = match op {
                Op::Insert => None,
                _ => Some(cache.insert(&background, key.clone(), 1).await.unwrap()),
            };
            // A copy in memory (of the record, or of its absence) that a write makes
            // stale if it is done; a read is dropped part way through its load.
            if !matches!(op, Op::Get) {
                cache.get(&background, &key).await.unwrap();
            }
            let ctx = Context::within(Duration::from_secs(60));
            let mut future = op.future(&cache, &ctx, &key, before);
            let completed = polled(future.as_mut(), polls).await;
            drop(future);
            let what = format!("{op:?} dropped after {polls} polls");
            settled(&observer, &table, &what).await;
            let after = cache.database().get(&background, &key).await.unwrap();
            let after = after.map(|record| (record.value, record.version));
            let untouched = after == before.map(|version| (1, version));
            assert!(
                untouched || op.done_whole(before, after),
                "{what}: half applied: before {before:?}, after {after:?}"
            );
            // Memory serves the database's record within a notification.
            serves(&cache, &key, after).await;
            // Nothing left held: the key is written at once.
            let ctx = Context::within(Duration::from_secs(2));
            cache.put(&ctx, key.clone(), 3).await.unwrap();
            assert!(
                !completed || matches!(op, Op::Get) || !untouched,
                "{what}: completed, the record untouched"
            );
            completed
        })
        .await;
    }
}

/// A read's future is about the size of the database read it may make: the layers a load
/// passes through (the single flight, the deadline, the attempts) do not each hold a copy
/// of it. They did, which made it nine times that size and overflowed a test thread's
/// stack.
#[tokio::test]
async fn a_reads_future_is_about_the_size_of_the_database_read() {
    let cache: AsyncNearCache<String, u32> = near(&pg::table("anear_size")).await;
    let (ctx, key) = (Context::background(), "k".to_string());
    let read = std::mem::size_of_val(&cache.get(&ctx, &key));
    let database_read = std::mem::size_of_val(&cache.database().get(&ctx, &key));
    assert!(
        read <= database_read + 1024,
        "a read's future is {read} B, the database read's {database_read} B"
    );
}
