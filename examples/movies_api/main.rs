//! The movies API, served on 127.0.0.1:
//!
//! ```text
//! cargo run --example movies_api --features http,json -- [--port 8080] [--timeout-ms 3000]
//! ```
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

use app::{router, AppState};

const USAGE: &str = "usage: movies_api [--port N] [--timeout-ms N]";

fn parse_args() -> Result<(u16, Duration), String> {
    let (mut port, mut timeout_ms) = (8080u16, 3000u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
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
    Ok((port, Duration::from_millis(timeout_ms)))
}

#[tokio::main]
async fn main() {
    let (port, request_timeout) = parse_args().unwrap_or_else(|problem| {
        eprintln!("movies_api: {problem}\n{USAGE}");
        std::process::exit(2);
    });
    let state = AppState {
        movies: Arc::new(verkv::Store::new()),
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
