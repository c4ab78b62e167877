//! End-to-end tests of the movies API example: the service runs on a loopback port and a
//! real HTTP client talks to it.

#[path = "../examples/movies_api/app.rs"]
mod app;
#[path = "support/movies.rs"]
mod movies;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use axum::http::StatusCode;
use movies::{heat, Server};
use serde_json::json;
use verkv::Store;

/// Starts the API over a one-shard store, so a test can hold the lock every request
/// needs.
fn start(request_timeout: Duration) -> Server<app::Movies> {
    movies::start(Store::builder().shards(1).build(), request_timeout)
}

/// Another writer, updating movie "1" at version 1, holds the only shard's lock until the
/// test sends on the channel returned; the holder's thread answers its update.
fn hold_the_only_shard(
    server: &Server<app::Movies>,
) -> (
    thread::JoinHandle<Result<u64, verkv::Error<u64>>>,
    mpsc::Sender<()>,
) {
    let (holding_tx, holding_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let movies = server.movies.clone();
    let holder = thread::spawn(move || {
        movies.update_with("1", &1, |movie| {
            holding_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            movie.clone()
        })
    });
    holding_rx.recv().unwrap();
    (holder, release_tx)
}

#[test]
fn two_clients_one_gets_412_and_succeeds_after_refetching() {
    let server = start(Duration::from_secs(3));
    assert_eq!(server.create("1", heat()).status, StatusCode::CREATED);

    let alice = server.send("GET", "1", &[], None);
    let bob = server.send("GET", "1", &[], None);
    assert_eq!(alice.etag.as_deref(), Some("\"1\""));
    assert_eq!(bob.etag, alice.etag);

    let alice_etag = alice.etag.unwrap();
    let patched = server.send(
        "PATCH",
        "1",
        &[("if-match", &alice_etag)],
        Some(json!({ "year": 1996 })),
    );
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.etag.as_deref(), Some("\"2\""));

    let bob_etag = bob.etag.unwrap();
    let stale = server.send(
        "PATCH",
        "1",
        &[("if-match", &bob_etag)],
        Some(json!({ "genres": ["thriller"] })),
    );
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.body["error"]
        .as_str()
        .unwrap()
        .contains("fetch it again"));

    let fresh = server.send("GET", "1", &[], None);
    let fresh_etag = fresh.etag.unwrap();
    let retried = server.send(
        "PATCH",
        "1",
        &[("if-match", &fresh_etag)],
        Some(json!({ "genres": ["thriller"] })),
    );
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(
        retried.body,
        json!({ "title": "Heat", "year": 1996, "genres": ["thriller"] })
    );
}

#[test]
fn writes_without_a_precondition_get_428() {
    let server = start(Duration::from_secs(3));
    server.create("1", heat());
    let reply = server.send("PATCH", "1", &[], Some(json!({ "year": 2000 })));
    assert_eq!(reply.status, StatusCode::PRECONDITION_REQUIRED);
    assert!(reply.body["error"].as_str().unwrap().contains("If-Match"));
    assert_eq!(
        server.send("DELETE", "1", &[], None).status,
        StatusCode::PRECONDITION_REQUIRED
    );
    assert_eq!(server.movies.get("1").unwrap().version, 1);
}

#[test]
fn missing_records_are_404() {
    let server = start(Duration::from_secs(3));
    assert_eq!(
        server.send("GET", "nope", &[], None).status,
        StatusCode::NOT_FOUND
    );
    let patch = server.send("PATCH", "nope", &[("if-match", "\"1\"")], Some(json!({})));
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    assert_eq!(
        server
            .send("DELETE", "nope", &[("if-match", "*")], None)
            .status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn a_malformed_if_match_is_400_with_a_clear_message() {
    let server = start(Duration::from_secs(3));
    server.create("1", heat());
    let reply = server.send(
        "PATCH",
        "1",
        &[("if-match", "1")],
        Some(json!({ "year": 2000 })),
    );
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["error"],
        "bad If-Match header: malformed entity tag at byte 0: expected an opening `\"` \
         (an entity tag is quoted: `\"42\"` or `W/\"42\"`)"
    );
    assert_eq!(server.movies.get("1").unwrap().version, 1);
}

#[test]
fn a_stale_expected_version_is_409() {
    let server = start(Duration::from_secs(3));
    server.create("1", heat());
    let ok = server.send(
        "PATCH",
        "1",
        &[("x-expected-version", "1")],
        Some(json!({ "year": 1996 })),
    );
    assert_eq!(ok.status, StatusCode::OK);
    let stale = server.send(
        "PATCH",
        "1",
        &[("x-expected-version", "1")],
        Some(json!({ "year": 1997 })),
    );
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        stale.body["error"],
        "stale version: expected 1, current 2; fetch the record again"
    );
    assert_eq!(server.movies.get("1").unwrap().value["year"], 1996);
}

#[test]
fn create_only_conflicts() {
    let server = start(Duration::from_secs(3));
    let created = server.create("1", heat());
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.etag.as_deref(), Some("\"1\""));
    assert_eq!(
        server.create("1", heat()).status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        server.send("POST", "1", &[], Some(heat())).status,
        StatusCode::CONFLICT
    );
    let invalid = server.create("2", json!({ "title": "" }));
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!server.movies.contains_key("2"));
}

#[test]
fn conditional_get_and_delete() {
    let server = start(Duration::from_secs(3));
    server.create("1", heat());
    let cached = server.send("GET", "1", &[("if-none-match", "\"1\"")], None);
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.etag.as_deref(), Some("\"1\""));
    assert_eq!(
        server
            .send("DELETE", "1", &[("if-match", "\"2\"")], None)
            .status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        server
            .send("DELETE", "1", &[("if-match", "\"1\"")], None)
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.send("GET", "1", &[], None).status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn a_patch_failing_validation_changes_nothing() {
    let server = start(Duration::from_secs(3));
    server.create("1", heat());
    let reply = server.send(
        "PATCH",
        "1",
        &[("if-match", "\"1\"")],
        Some(json!({ "title": null })),
    );
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["error"], "field `title` is required");
    let stored = server.movies.get("1").unwrap();
    assert_eq!((stored.value, stored.version), (heat(), 1));
}

#[test]
fn a_deadline_expiring_while_queued_is_503_and_writes_nothing() {
    let server = start(Duration::from_millis(100));
    server.create("1", heat());
    let (holder, release_tx) = hold_the_only_shard(&server);
    let reply = server.send(
        "PATCH",
        "1",
        &[("if-match", "\"1\"")],
        Some(json!({ "year": 2024 })),
    );
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    assert!(reply.body["error"]
        .as_str()
        .unwrap()
        .contains("queued behind other operations"));
    release_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), Ok(2));
    // Only the holder's write happened; the timed-out PATCH left no trace.
    let stored = server.movies.get("1").unwrap();
    assert_eq!((stored.value, stored.version), (heat(), 2));
}

#[test]
fn requests_queued_behind_a_writer_hold_no_thread() {
    let server = start(Duration::from_secs(30));
    server.create("1", json!({ "title": "Heat" }));
    let (holder, release_tx) = hold_the_only_shard(&server);
    let server = &server;
    let statuses: Vec<StatusCode> = thread::scope(|scope| {
        let patches: Vec<_> = (0..32)
            .map(|n| {
                scope.spawn(move || {
                    let patch = Some(json!({ "last": n }));
                    server
                        .send("PATCH", "1", &[("if-match", "*")], patch)
                        .status
                })
            })
            .collect();
        // Every request has had time to arrive and queue behind the holder; each waits
        // as a task, so the runtime has no thread beyond its workers (a handler that
        // blocked would hold one thread per request).
        thread::sleep(Duration::from_millis(500));
        let threads = movies::runtime_threads();
        release_tx.send(()).unwrap();
        assert!(
            threads <= movies::WORKERS,
            "{threads} runtime threads for {} workers while 32 requests waited",
            movies::WORKERS
        );
        patches
            .into_iter()
            .map(|patch| patch.join().unwrap())
            .collect()
    });
    assert_eq!(holder.join().unwrap(), Ok(2));
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(server.movies.get("1").unwrap().version, 34);
}

#[test]
fn json_patch_documents_are_applied_by_media_type() {
    let server = start(Duration::from_secs(5));
    server.create("1", heat());
    let read = server.send("GET", "1", &[], None);
    assert_eq!(
        read.accept_patch.as_deref(),
        Some("application/merge-patch+json, application/json-patch+json")
    );
    let document = r#"[{"op": "replace", "path": "/year", "value": 1996},
                       {"op": "add", "path": "/genres/-", "value": "drama"}]"#;
    let patched = server.send_typed(
        "PATCH",
        "1",
        &[("if-match", "\"1\"")],
        Some(("application/json-patch+json", document.to_string())),
    );
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["year"], 1996);
    assert_eq!(patched.body["genres"], json!(["crime", "drama"]));
    let failing = r#"[{"op": "test", "path": "/year", "value": 1995},
                      {"op": "replace", "path": "/title", "value": "Heat 2"}]"#;
    let refused = server.send_typed(
        "PATCH",
        "1",
        &[("if-match", "\"2\"")],
        Some(("application/json-patch+json", failing.to_string())),
    );
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        server.movies.get("1").unwrap().version,
        2,
        "nothing written"
    );
    let merge = server.send_typed(
        "PATCH",
        "1",
        &[("if-match", "\"2\"")],
        Some((
            "application/merge-patch+json; charset=utf-8",
            r#"{"year": 1997}"#.to_string(),
        )),
    );
    assert_eq!(merge.status, StatusCode::OK);
    assert_eq!(merge.body["year"], 1997);
}

#[test]
fn an_unsupported_patch_media_type_is_415_with_accept_patch() {
    let server = start(Duration::from_secs(5));
    server.create("1", heat());
    let reply = server.send_typed(
        "PATCH",
        "1",
        &[("if-match", "\"1\"")],
        Some(("text/plain", "year=1996".to_string())),
    );
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        reply.accept_patch.as_deref(),
        Some("application/merge-patch+json, application/json-patch+json")
    );
    assert_eq!(server.movies.get("1").unwrap().version, 1);
}

#[test]
fn parallel_patches_under_if_match_star_all_succeed() {
    let server = start(Duration::from_secs(10));
    server.create("1", json!({ "title": "Heat", "count": 0 }));
    let server = &server;
    let statuses: Vec<StatusCode> = thread::scope(|scope| {
        let patches: Vec<_> = (0..40)
            .map(|n| {
                scope.spawn(move || {
                    server
                        .send(
                            "PATCH",
                            "1",
                            &[("if-match", "*")],
                            Some(json!({ "last": n })),
                        )
                        .status
                })
            })
            .collect();
        patches
            .into_iter()
            .map(|patch| patch.join().unwrap())
            .collect()
    });
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(server.movies.get("1").unwrap().version, 41);
}

#[test]
fn each_412_says_its_cause() {
    let server = start(Duration::from_secs(5));
    server.create("1", heat());
    let again = server.create("1", heat());
    assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        again.body["error"],
        "precondition failed: the record already exists (at \"1\") and If-None-Match is *"
    );
    let stale = server.send("PATCH", "1", &[("if-match", "\"7\"")], Some(json!({})));
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.body["error"]
        .as_str()
        .unwrap()
        .starts_with("precondition failed: the record changed since the ETag you sent"));
}
