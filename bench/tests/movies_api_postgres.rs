//! Two instances of the movies API over one PostgreSQL table, straight on the table (the
//! async store, and the blocking one) or each through a near-cache of its own: an edit through one is seen by the other, is
//! refused through the other when it was based on a stale read (`412`), and accepted
//! after re-fetching. Needs `VERKV_POSTGRES_URL` (see `.ci/test`); fails without it.

#[path = "../examples/movies_api/app.rs"]
mod app;
#[path = "support/blocking.rs"]
mod blocking;
// The in-memory tests also read the store and `Retry-After` directly.
#[allow(dead_code)]
#[path = "support/movies.rs"]
mod movies;
// How the crate's own PostgreSQL tests find a server, shared with them.
#[path = "../../tests/support/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use app::MovieStore;
use axum::http::StatusCode;
use blocking::OnBlockingThread;
use movies::{heat, start, start_opened, Reply, Server};
use serde_json::{json, Value};
use verkv::near::NearCache;
use verkv::postgres::{AsyncPgStore, PgStore};

/// How long an edit may take to reach the other instance through its near-cache (about
/// a millisecond on an idle machine).
const BOUND: Duration = Duration::from_secs(2);

fn open(table: &str) -> PgStore<String, Value> {
    PgStore::builder(pg::url()).table(table).build().unwrap()
}

/// How long a request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

#[test]
fn two_instances_refuse_each_others_stale_writes_with_412() {
    let table = pg::table("movies");
    two_instances_exchange_edits(|| {
        let open = || async { AsyncPgStore::builder(pg::url()).table(&table).build().await };
        start_opened(|| async { open().await.unwrap() }, REQUEST_TIMEOUT)
    });
}

#[test]
fn two_instances_on_the_blocking_store_refuse_each_others_stale_writes_with_412() {
    let table = pg::table("movies_blocking");
    two_instances_exchange_edits(|| start(OnBlockingThread(open(&table)), REQUEST_TIMEOUT));
}

#[test]
fn two_instances_with_async_near_caches_refuse_each_others_stale_writes_with_412() {
    let table = pg::table("movies_near");
    two_instances_exchange_edits(|| {
        let open = || async {
            let db = AsyncPgStore::builder(pg::url()).table(&table).build().await;
            NearCache::builder(db.unwrap()).build().await.unwrap()
        };
        start_opened(open, REQUEST_TIMEOUT)
    });
}

#[test]
fn two_instances_with_blocking_near_caches_refuse_each_others_stale_writes_with_412() {
    let table = pg::table("movies_near_blocking");
    two_instances_exchange_edits(|| {
        let near = NearCache::builder(open(&table)).build().unwrap();
        start(OnBlockingThread(near), REQUEST_TIMEOUT)
    });
}

/// What `server` answers to `GET /movies/1` once it shows the version `edit` made (at
/// once on the table, within the notification delay through a near-cache).
fn seen_within_bound<S>(server: &Server<S>, edit: &Reply) -> Reply {
    let give_up = Instant::now() + BOUND;
    loop {
        let seen = server.send("GET", "1", &[], None);
        if seen.etag == edit.etag || Instant::now() >= give_up {
            assert_eq!(seen.etag, edit.etag, "the edit did not reach this instance");
            return seen;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two instances that `start` serves: each sees the other's edits and refuses the writes
/// based on what the other changed.
fn two_instances_exchange_edits<S: MovieStore>(start: impl Fn() -> Server<S>) {
    let one = start();
    let two = start();
    assert_eq!(one.create("1", heat()).status, StatusCode::CREATED);
    assert_eq!(
        two.create("1", heat()).status,
        StatusCode::PRECONDITION_FAILED
    );

    let alice = one.send("GET", "1", &[], None);
    let bob = two.send("GET", "1", &[], None);
    assert_eq!(alice.body, heat());
    assert_eq!(bob.etag, alice.etag);

    let patched = one.send(
        "PATCH",
        "1",
        &[("if-match", alice.etag.as_deref().unwrap())],
        Some(json!({ "year": 1996 })),
    );
    assert_eq!(patched.status, StatusCode::OK);
    assert_ne!(patched.etag, alice.etag);
    let give_up = Instant::now() + BOUND;
    while two.send("GET", "1", &[], None).etag != patched.etag && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = two.send("GET", "1", &[], None);
    assert_eq!(
        seen.etag, patched.etag,
        "the edit did not reach the other instance"
    );
    assert_eq!(
        seen.body,
        json!({ "title": "Heat", "year": 1996, "genres": ["crime"] })
    );

    let stale = two.send(
        "PATCH",
        "1",
        &[("if-match", bob.etag.as_deref().unwrap())],
        Some(json!({ "genres": ["thriller"] })),
    );
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);

    let fresh = two.send("GET", "1", &[], None);
    assert_eq!(fresh.etag, patched.etag);
    let retried = two.send(
        "PATCH",
        "1",
        &[("if-match", fresh.etag.as_deref().unwrap())],
        Some(json!({ "genres": ["thriller"] })),
    );
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(
        seen_within_bound(&one, &retried).body,
        json!({ "title": "Heat", "year": 1996, "genres": ["thriller"] })
    );
    let deleted = one.send(
        "DELETE",
        "1",
        &[("if-match", fresh.etag.as_deref().unwrap())],
        None,
    );
    assert_eq!(deleted.status, StatusCode::PRECONDITION_FAILED);
}

/// A service that drops its store on a runtime thread (a task ending, the server shutting
/// down) closes the store's database sessions there without a panic: the blocking
/// client's own closing would start a runtime inside the runtime.
#[test]
fn a_store_dropped_on_a_runtime_thread_closes_its_sessions() {
    let store = PgStore::<String, Value>::builder(pg::url())
        .table(pg::table("movies_drop"))
        .pool_size(3)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let task = runtime.spawn(async move { drop(store) });
    let dropped = runtime.block_on(task);
    assert!(dropped.is_ok(), "dropping the store panicked: {dropped:?}");
}
