//! The movies API example served on a loopback port, and a real HTTP client for it:
//! shared by its end-to-end tests on each backend.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::app::{router, AppState, MovieStore};

pub(crate) struct Server<S> {
    /// `host:port`.
    address: String,
    pub(crate) movies: Arc<S>,
    _runtime: tokio::runtime::Runtime,
}

/// The name of the server runtime's threads, its workers and any blocking threads alike.
pub(crate) const RUNTIME_THREAD: &str = "movies-runtime";

/// How many worker threads the server's runtime has.
pub(crate) const WORKERS: usize = 2;

/// Starts the API on 127.0.0.1 (a free port) over `store`.
pub(crate) fn start<S: MovieStore>(store: S, request_timeout: Duration) -> Server<S> {
    start_opened(|| async { store }, request_timeout)
}

/// Starts the API on 127.0.0.1 (a free port) over the store `open` makes, opened on the
/// server's runtime (an async PostgreSQL store's connections are tasks of the runtime
/// that opened them).
pub(crate) fn start_opened<S: MovieStore, F: std::future::Future<Output = S>>(
    open: impl FnOnce() -> F,
    request_timeout: Duration,
) -> Server<S> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(RUNTIME_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let movies = Arc::new(runtime.block_on(open()));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let state = AppState {
        movies: movies.clone(),
        request_timeout,
    };
    runtime.spawn(async move { axum::serve(listener, router(state)).await });
    Server {
        address,
        movies,
        _runtime: runtime,
    }
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) etag: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) accept_patch: Option<String>,
    pub(crate) body: Value,
}

impl<S> Server<S> {
    /// The server's `host:port`.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    pub(crate) fn send(
        &self,
        method: &str,
        id: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|body| ("application/json", body.to_string()));
        self.send_typed(method, id, headers, body)
    }

    /// Sends a request whose body has the given media type.
    pub(crate) fn send_typed(
        &self,
        method: &str,
        id: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Reply {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let url = format!("http://{}/movies/{id}", self.address());
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = match body {
            Some((media_type, body)) => agent
                .run(
                    request
                        .header("content-type", media_type)
                        .body(body)
                        .unwrap(),
                )
                .unwrap(),
            None => agent.run(request.body(()).unwrap()).unwrap(),
        };
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let (etag, retry_after, accept_patch) = (
            header("etag"),
            header("retry-after"),
            header("accept-patch"),
        );
        let text = response.body_mut().read_to_string().unwrap();
        Reply {
            status: response.status(),
            etag,
            retry_after,
            accept_patch,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub(crate) fn create(&self, id: &str, movie: Value) -> Reply {
        self.send("POST", id, &[("if-none-match", "*")], Some(movie))
    }
}

pub(crate) fn heat() -> Value {
    json!({ "title": "Heat", "year": 1995, "genres": ["crime"] })
}

/// How many threads of this process the server's runtime has now (Linux: read from
/// `/proc`).
pub(crate) fn runtime_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("this test reads thread names from /proc (Linux)")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == RUNTIME_THREAD)
        .count()
}
