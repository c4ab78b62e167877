//! What the async tests share: a runtime, a plain async client, polling a future a
//! bounded number of times (to drop it at every await point), and waiting until the
//! server has settled what a dropped future left running.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Waker};
use std::time::{Duration, Instant};

/// A runtime for the stores' connection tasks and cancel requests.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A plain client, for what the tests do behind the store's back (its connection driven
/// by a task of the current runtime).
pub(crate) async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Polls `future` at most `polls` times with a waker that does nothing, letting the
/// connections' tasks send and receive between polls; whether it completed.
pub(crate) async fn polled<F: Future + ?Sized>(mut future: Pin<&mut F>, polls: usize) -> bool {
    let mut task = TaskContext::from_waker(Waker::noop());
    for _ in 0..polls {
        if future.as_mut().poll(&mut task).is_ready() {
            return true;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    false
}

/// More polls than any operation of the tests needs on a quiet server.
pub(crate) const MOST_POLLS: usize = 400;

/// Drops a future after 0 polls, then 1, 2… until one completes within its polls,
/// failing after [`MOST_POLLS`]: `round(polls)` makes a fresh future, polls it that many
/// times ([`polled`]), drops it, checks what it left, and answers whether it completed.
pub(crate) async fn drop_after_every_number_of_polls(
    what: &str,
    mut round: impl AsyncFnMut(usize) -> bool,
) {
    for polls in 0..MOST_POLLS {
        if round(polls).await {
            println!("{what} completed within {polls} polls");
            return;
        }
    }
    panic!("{what} did not complete within {MOST_POLLS} polls");
}

/// How many statements on `table` the server is running (or waiting to run) for
/// sessions other than `observer`'s.
pub(crate) async fn running_on(observer: &tokio_postgres::Client, table: &str) -> i64 {
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

/// Waits until the server runs no statement on `table` (a dropped operation's statement
/// was cancelled or finished), failing after 2 s.
pub(crate) async fn settled(observer: &tokio_postgres::Client, table: &str, what: &str) {
    let since = Instant::now();
    while running_on(observer, table).await > 0 {
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "{what}: a dropped operation's statement still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
