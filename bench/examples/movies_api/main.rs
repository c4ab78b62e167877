//! The movies API, served on 127.0.0.1:
//!
//! ```text
//! cargo run -p verkv-bench --example movies_api -- [--port 8080] [--timeout-ms 3000]
//! ```
//!
//! With the `postgres` feature, `--database URL` serves the table `movies` of that
//! PostgreSQL database instead of memory: run two instances on two ports with the same URL
//! and each refuses the other's stale writes with `412`. Add `--near-cache RECORDS` to
//! serve reads from a near-cache of that many movies in memory, kept coherent with the
//! other instances by the table's notifications (writes still go to the database). The
//! requests are served by async handlers, on the async PostgreSQL store with
//! `--database` and on the async near-cache in front of it with `--near-cache`: no
//! request holds a thread while it waits for the database.
//!
//! Then, for example:
//!
//! ```text
//! curl -i -X POST localhost:8080/movies/1 -H 'If-None-Match: *' -d '{"title":"Heat","year":1995}' -H 'Content-Type: application/json'
//! curl -i localhost:8080/movies/1
//! curl -i -X PATCH localhost:8080/movies/1 -H 'If-Match: "1"' -H 'Content-Type: application/merge-patch+json' -d '{"year":1996}'
//! curl -i -X PATCH localhost:8080/movies/1 -H 'If-Match: *' -H 'Content-Type: application/json-patch+json' -d '[{"op":"replace","path":"/year","value":1995}]'
//! ```

mod app;

use std::sync::Arc;
use std::time::Duration;

use app::{router, AppState, MovieStore};

const USAGE: &str =
    "usage: movies_api [--port N] [--timeout-ms N] [--database URL [--near-cache RECORDS]]";

/// Where the movies are kept.
struct Backend {
    /// The database URL, if one was given (else memory).
    database: Option<String>,
    /// How many movies a near-cache in front of the database holds, if there is one.
    near_cache: Option<u64>,
}

/// The command line: port, request timeout, and where the movies are kept.
fn parse_args() -> Result<(u16, Duration, Backend), String> {
    let (mut port, mut timeout_ms) = (8080u16, 3000u64);
    let (mut database, mut near_cache) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--database" => database = Some(value),
            "--near-cache" => match value.parse() {
                Ok(records) if records > 0 => near_cache = Some(records),
                _ => return Err(format!("--near-cache: {value:?} is not a positive number")),
            },
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port: {value:?} is not a port number"))?
            }
            "--timeout-ms" => match value.parse() {
                Ok(ms) if ms > 0 => timeout_ms = ms,
                _ => return Err(format!("--timeout-ms: {value:?} is not a positive number")),
            },
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if near_cache.is_some() && database.is_none() {
        return Err("--near-cache needs --database".to_string());
    }
    let backend = Backend {
        database,
        near_cache,
    };
    Ok((port, Duration::from_millis(timeout_ms), backend))
}

/// Serves `store` on 127.0.0.1:`port`.
async fn serve<S: MovieStore>(store: S, port: u16, request_timeout: Duration) {
    let state = AppState {
        movies: Arc::new(store),
        request_timeout,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|error| {
            eprintln!("movies_api: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        });
    println!("movies API on http://127.0.0.1:{port} (requests time out after {request_timeout:?})");
    axum::serve(listener, router(state))
        .await
        .expect("server failed");
}

/// Serves the table `movies` of the database at `url`: straight through the async
/// store, or through an async near-cache of `near_cache` records in front of it.
#[cfg(feature = "postgres")]
async fn serve_database(
    url: String,
    near_cache: Option<u64>,
    port: u16,
    request_timeout: Duration,
) {
    let cannot_open = |cause: verkv::Cause| -> ! {
        eprintln!("movies_api: cannot open the database: {cause}");
        std::process::exit(1);
    };
    let db = verkv::postgres::AsyncPgStore::builder(url)
        .table("movies")
        .build()
        .await
        .unwrap_or_else(|cause| cannot_open(cause));
    match near_cache {
        None => serve(db, port, request_timeout).await,
        Some(records) => {
            let opened = verkv::near::NearCache::builder(db)
                .max_capacity(records)
                .build()
                .await;
            match opened {
                Ok(near) => serve(near, port, request_timeout).await,
                Err(cause) => cannot_open(cause),
            }
        }
    }
}

#[cfg(not(feature = "postgres"))]
async fn serve_database(
    _url: String,
    _near_cache: Option<u64>,
    _port: u16,
    _request_timeout: Duration,
) {
    eprintln!("movies_api: --database needs the postgres feature (--features postgres)");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let (port, request_timeout, backend) = parse_args().unwrap_or_else(|problem| {
        eprintln!("movies_api: {problem}\n{USAGE}");
        std::process::exit(2);
    });
    match backend.database {
        Some(url) => serve_database(url, backend.near_cache, port, request_timeout).await,
        None => serve(app::Movies::new(), port, request_timeout).await,
    }
}
