//! Two instances of the movies API over one PostgreSQL table: an edit through one is
//! refused through the other when it was based on a stale read (`412`), and accepted
//! after re-fetching. Needs `VERKV_POSTGRES_URL` (see `.ci/test`); fails without it.

#[path = "../examples/movies_api/app.rs"]
mod app;
// The in-memory tests also read the store and `Retry-After` directly.
#[allow(dead_code)]
#[path = "support/movies.rs"]
mod movies;
#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use axum::http::StatusCode;
use movies::{heat, start};
use serde_json::{json, Value};
use verkv::postgres::PgStore;

#[test]
fn two_instances_refuse_each_others_stale_writes_with_412() {
    let table = pg::table("movies");
    let open =
        || -> PgStore<String, Value> { PgStore::builder(pg::url()).table(&table).build().unwrap() };
    let one = start(open(), Duration::from_secs(3));
    let two = start(open(), Duration::from_secs(3));
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
        one.send("GET", "1", &[], None).body,
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
