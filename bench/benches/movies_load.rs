//! A load test of the movies API: many concurrent clients on loopback, each reading a
//! movie and patching it under `If-Match` with the tag it read, over each backend the API
//! serves. Reports the latency of every request (median, 99th percentile, maximum), the
//! throughput, and the most threads the server's runtime had at any instant; fails if a
//! request went unanswered or was answered with a status the exchange does not allow
//! (`GET` is `200`; a `PATCH` is `200`, or `412` if another client patched the movie since
//! it was read).
//!
//! ```text
//! cargo bench -p verkv-bench --bench movies_load                      # in memory
//! bash .ci/test cargo bench -p verkv-bench --features postgres --bench movies_load
//! ```
//!
//! With `-- --test`, a few clients and rounds: a check that the exchange works.

#[path = "../examples/movies_api/app.rs"]
mod app;
#[cfg(feature = "postgres")]
#[path = "../tests/support/blocking.rs"]
mod blocking;
// The client side of the end-to-end tests is not used here: requests go over raw
// connections, thousands at once, from async tasks.
#[allow(dead_code)]
#[path = "../tests/support/movies.rs"]
mod movies;
#[cfg(feature = "postgres")]
#[path = "../../tests/support/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::MovieStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How many movies the clients share (so that some patches lose races: `412`).
const MOVIES: usize = 100;

/// How long one request may take, queueing included (long: none should time out).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Database sessions per PostgreSQL store, the same for both faces.
#[cfg(feature = "postgres")]
const POOL: u32 = 10;

/// The load: clients at once, and rounds (a `GET` then a `PATCH`) per client.
#[derive(Clone, Copy)]
struct Load {
    clients: usize,
    rounds: usize,
}

/// What one run measured.
struct Measured {
    latencies: Vec<Duration>,
    elapsed: Duration,
    patched: usize,
    refused: usize,
    most_threads: usize,
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let load = if quick {
        Load {
            clients: 50,
            rounds: 2,
        }
    } else {
        Load {
            clients: 1000,
            rounds: 10,
        }
    };
    println!(
        "movies API load: {} clients, {} rounds each (GET, then PATCH with If-Match), {MOVIES} movies, server runtime of {} workers",
        load.clients,
        load.rounds,
        movies::WORKERS
    );
    println!("| backend | requests | patched | 412 | p50 ms | p99 ms | max ms | requests/s | most runtime threads |");
    println!("|---|---|---|---|---|---|---|---|---|");
    report(
        "memory (async)",
        run(|| movies::start(app::Movies::new(), TIMEOUT), load),
    );
    #[cfg(feature = "postgres")]
    {
        use blocking::OnBlockingThread;
        use verkv::near::NearCache;
        use verkv::postgres::{AsyncPgStore, PgStore};
        let open = |prefix: &str| {
            PgStore::builder(pg::url())
                .table(pg::table(prefix))
                .pool_size(POOL)
                .build()
                .unwrap()
        };
        let open_async = || async {
            let builder = AsyncPgStore::builder(pg::url()).table(pg::table("load_async"));
            builder.pool_size(POOL).build().await.unwrap()
        };
        report(
            "PostgreSQL, async store",
            run(|| movies::start_opened(open_async, TIMEOUT), load),
        );
        report(
            "PostgreSQL, blocking store (block_in_place)",
            run(
                || movies::start(OnBlockingThread(open("load_blocking")), TIMEOUT),
                load,
            ),
        );
        let near_async = || async {
            let builder = AsyncPgStore::builder(pg::url()).table(pg::table("load_near_async"));
            let db = builder.pool_size(POOL).build().await.unwrap();
            NearCache::builder(db).build().await.unwrap()
        };
        report(
            "near-cache, async",
            run(|| movies::start_opened(near_async, TIMEOUT), load),
        );
        let near = || NearCache::builder(open("load_near")).build().unwrap();
        report(
            "near-cache, blocking (block_in_place)",
            run(|| movies::start(OnBlockingThread(near()), TIMEOUT), load),
        );
    }
}

/// Prints one row of the report.
fn report(backend: &str, mut measured: Measured) {
    measured.latencies.sort_unstable();
    let at = |share: f64| {
        let index = ((measured.latencies.len() as f64 - 1.0) * share).round() as usize;
        measured.latencies[index].as_secs_f64() * 1e3
    };
    let requests = measured.latencies.len();
    println!(
        "| {backend} | {requests} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
        measured.patched,
        measured.refused,
        at(0.5),
        at(0.99),
        at(1.0),
        requests as f64 / measured.elapsed.as_secs_f64(),
        measured.most_threads
    );
}

/// Serves the API with `start`, creates the movies, runs the clients and checks every
/// answer.
fn run<S: MovieStore>(start: impl FnOnce() -> movies::Server<S>, load: Load) -> Measured {
    let server = start();
    let address = server.address().to_string();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    clients.block_on(async {
        let mut connection = Connection::open(&address).await;
        for movie in 0..MOVIES {
            let (status, _) = connection
                .send("POST", movie, &[], Some(r#"{"title":"Heat","likes":0}"#))
                .await;
            assert_eq!(status, 201, "creating movie {movie}");
        }
    });
    let running = Arc::new(AtomicBool::new(true));
    let most_threads = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (running, most_threads) = (running.clone(), most_threads.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                most_threads.fetch_max(movies::runtime_threads(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let started = Instant::now();
    let outcomes = clients.block_on(async {
        let tasks: Vec<_> = (0..load.clients)
            .map(|client| {
                let address = address.clone();
                tokio::spawn(async move { one_client(&address, client, load.rounds).await })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.expect("a client panicked"));
        }
        outcomes
    });
    let elapsed = started.elapsed();
    running.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let mut measured = Measured {
        latencies: Vec::new(),
        elapsed,
        patched: 0,
        refused: 0,
        most_threads: most_threads.load(Ordering::Relaxed),
    };
    for outcome in outcomes {
        measured.latencies.extend(outcome.latencies);
        measured.patched += outcome.patched;
        measured.refused += outcome.refused;
    }
    assert_eq!(
        measured.latencies.len(),
        load.clients * load.rounds * 2,
        "every request is answered"
    );
    assert_eq!(
        measured.patched + measured.refused,
        load.clients * load.rounds
    );
    measured
}

/// What one client saw.
struct Outcome {
    latencies: Vec<Duration>,
    patched: usize,
    refused: usize,
}

/// One client: `rounds` times, reads a movie and patches it with the tag it read.
async fn one_client(address: &str, client: usize, rounds: usize) -> Outcome {
    let mut connection = Connection::open(address).await;
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(rounds * 2),
        patched: 0,
        refused: 0,
    };
    for round in 0..rounds {
        let movie = (client * 7 + round * 13) % MOVIES;
        let started = Instant::now();
        let (status, etag) = connection.send("GET", movie, &[], None).await;
        outcome.latencies.push(started.elapsed());
        assert_eq!(status, 200, "GET of movie {movie}");
        let etag = etag.expect("a GET answers with an ETag");
        let body = format!(r#"{{"last":{client}}}"#);
        let started = Instant::now();
        let (status, _) = connection
            .send("PATCH", movie, &[("If-Match", &etag)], Some(&body))
            .await;
        outcome.latencies.push(started.elapsed());
        match status {
            200 => outcome.patched += 1,
            412 => outcome.refused += 1,
            other => panic!("PATCH of movie {movie} under If-Match {etag}: status {other}"),
        }
    }
    outcome
}

/// One keep-alive HTTP/1.1 connection to the API.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(address: &str) -> Connection {
        let stream = TcpStream::connect(address)
            .await
            .unwrap_or_else(|error| panic!("connecting to {address}: {error}"));
        stream.set_nodelay(true).unwrap();
        Connection {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Sends one request for `/movies/{movie}` and reads its answer: the status and the
    /// `ETag`, if any.
    async fn send(
        &mut self,
        method: &str,
        movie: usize,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Option<String>) {
        let mut request = format!("{method} /movies/{movie} HTTP/1.1\r\nHost: load\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            let media_type = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request.push_str(&format!(
                "Content-Type: {media_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        self.stream.write_all(request.as_bytes()).await.unwrap();
        self.answer().await
    }

    /// Reads one answer: its head, then as many body bytes as `Content-Length` says.
    async fn answer(&mut self) -> (u16, Option<String>) {
        let head_end = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.read_more().await;
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
        let (mut length, mut etag) = (0, None);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "etag" => etag = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        while self.buffer.len() < head_end + length {
            self.read_more().await;
        }
        self.buffer.drain(..head_end + length);
        (status, etag)
    }

    async fn read_more(&mut self) {
        let mut chunk = [0; 4096];
        let read = self.stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the server closed the connection mid-answer");
        self.buffer.extend_from_slice(&chunk[..read]);
    }
}
