//! `AsyncPgStore` against `PgStore`: the same operations on the same table through the
//! async face (tokio-postgres, a deadpool pool, tasks on a tokio runtime) and the blocking
//! one (the postgres crate, an r2d2 pool, threads), with pools of the same size. The
//! async store runs on two runtimes, each with a store of its own whose connections its
//! tasks drive: a multi-thread one with a worker thread per core (mt) and a
//! current-thread one (ct).
//!
//! - Latency at 1 client: one client (a thread, or a task) runs operation after
//!   operation; the report gives each subject's median time per operation in a round,
//!   and each async one's over the blocking one's (rounds interleaved, rotating which
//!   subject goes first): median and range over rounds.
//! - Throughput at 32 clients (32 threads, or 32 tasks) sharing the pool: operations per
//!   second, and each async subject's over the blocking one's.
//!
//! Workloads: a successful compare-and-swap (`update` at the current version), a `get`,
//! and a transaction of two such updates (`commit`, one SQL transaction), each client on
//! keys of its own.
//!
//! Needs a server:
//! `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres_faces`
//! (starts a throwaway cluster), or set `VERKV_POSTGRES_URL`. With `-- --test`, one short
//! round per configuration.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use verkv::postgres::{AsyncPgStore, PgStore};
use verkv::{AsyncVersionedStore, Context, Outcome, Transaction, VersionedStore};

const TABLE: &str = "bench_faces";
/// The pool size of both stores.
const POOL: u32 = 8;
const MANY: usize = 32;
/// Keys per client.
const KEYS: usize = 16;

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Cas,
    Get,
    Transaction,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Cas => "successful CAS",
            Workload::Get => "get",
            Workload::Transaction => "2-key txn",
        }
    }
}

/// The transaction of the `i`th operation: updates of keys `i` and `i + 1` (of the
/// client's, at `versions`) to `value`.
fn two_updates(
    keys: &[String],
    versions: &[u64],
    i: usize,
    value: u64,
) -> Transaction<String, u64, u64> {
    let j = (i + 1) % KEYS;
    Transaction::new()
        .update(keys[i].clone(), versions[i], value)
        .update(keys[j].clone(), versions[j], value)
}

/// Notes the versions a committed [`two_updates`] gave its keys.
fn note_versions(versions: &mut [u64], i: usize, committed: &[Outcome<u64>]) {
    for (key, outcome) in [i, (i + 1) % KEYS].into_iter().zip(committed) {
        versions[key] = *outcome.version().expect("an update writes");
    }
}

/// The keys of client `client`.
fn keys_of(client: usize) -> Vec<String> {
    (0..KEYS).map(|i| format!("f{client}_{i}")).collect()
}

/// What one run of a face did: operations, seconds, and (with one client) the median
/// time per operation.
#[derive(Clone, Copy)]
struct Work {
    ops: u64,
    seconds: f64,
    median_op: Duration,
}

/// `clients` threads on the blocking store for `window`.
fn blocking(
    store: &PgStore<String, u64>,
    workload: Workload,
    clients: usize,
    window: Duration,
) -> Work {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let ready = Barrier::new(clients + 1);
    let mut times = Vec::new();
    let mut seconds = 0.0;
    thread::scope(|s| {
        let mut handles = Vec::new();
        for client in 0..clients {
            let (stop, done, ready) = (&stop, &done, &ready);
            handles.push(s.spawn(move || {
                let ctx = Context::background();
                let keys = keys_of(client);
                let mut versions: Vec<u64> = keys
                    .iter()
                    .map(|key| store.get(&ctx, key).unwrap().expect("seeded").version)
                    .collect();
                let mut times = Vec::new();
                ready.wait();
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = ops as usize % KEYS;
                    let started = Instant::now();
                    match workload {
                        Workload::Cas => {
                            versions[i] = store.update(&ctx, &keys[i], &versions[i], ops).unwrap();
                        }
                        Workload::Get => assert!(store.get(&ctx, &keys[i]).unwrap().is_some()),
                        Workload::Transaction => {
                            let moved = two_updates(&keys, &versions, i, ops);
                            note_versions(&mut versions, i, &store.commit(&ctx, moved).unwrap());
                        }
                    }
                    if clients == 1 {
                        times.push(started.elapsed());
                    }
                    ops += 1;
                }
                done.fetch_add(ops, Ordering::Relaxed);
                times
            }));
        }
        ready.wait();
        let started = Instant::now();
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        seconds = started.elapsed().as_secs_f64();
        for handle in handles {
            times.extend(handle.join().unwrap());
        }
    });
    Work {
        ops: done.into_inner(),
        seconds,
        median_op: median_duration(&mut times),
    }
}

/// `clients` tasks on the async store, on `runtime`, for `window`.
fn awaited(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<AsyncPgStore<String, u64>>,
    workload: Workload,
    clients: usize,
    window: Duration,
) -> Work {
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (store, stop, ready) = (store.clone(), stop.clone(), ready.clone());
            runtime.spawn(async move {
                let ctx = Context::background();
                let keys = keys_of(client);
                let mut versions = Vec::new();
                for key in &keys {
                    versions.push(store.get(&ctx, key).await.unwrap().expect("seeded").version);
                }
                let mut times = Vec::new();
                ready.wait().await;
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = ops as usize % KEYS;
                    let started = Instant::now();
                    match workload {
                        Workload::Cas => {
                            versions[i] = store
                                .update(&ctx, &keys[i], &versions[i], ops)
                                .await
                                .unwrap();
                        }
                        Workload::Get => {
                            assert!(store.get(&ctx, &keys[i]).await.unwrap().is_some());
                        }
                        Workload::Transaction => {
                            let moved = two_updates(&keys, &versions, i, ops);
                            let committed = store.commit(&ctx, moved).await.unwrap();
                            note_versions(&mut versions, i, &committed);
                        }
                    }
                    if clients == 1 {
                        times.push(started.elapsed());
                    }
                    ops += 1;
                }
                (ops, times)
            })
        })
        .collect();
    // Timed inside the runtime: a current-thread runtime runs its tasks only there.
    let seconds = runtime.block_on(async {
        ready.wait().await;
        let started = Instant::now();
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        started.elapsed().as_secs_f64()
    });
    let mut ops = 0;
    let mut times = Vec::new();
    for task in tasks {
        let (done, took) = runtime.block_on(task).unwrap();
        ops += done;
        times.extend(took);
    }
    Work {
        ops,
        seconds,
        median_op: median_duration(&mut times),
    }
}

/// The control: `get`'s statement written by hand on a tokio-postgres client of its own
/// (no pool, no store), one client on `runtime`, for `window`: what the async client
/// library costs by itself. In a task, as the store's clients run.
fn bare_get(runtime: &tokio::runtime::Runtime, url: &str, window: Duration) -> Work {
    let url = url.to_string();
    let task = runtime.spawn(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let get = client
            .prepare(&format!(
                "SELECT value, version FROM {TABLE} WHERE key = $1"
            ))
            .await
            .unwrap();
        let keys: Vec<serde_json::Value> = keys_of(0)
            .into_iter()
            .map(serde_json::Value::String)
            .collect();
        let mut times = Vec::new();
        let started = Instant::now();
        let mut ops = 0u64;
        while started.elapsed() < window {
            let key = &keys[ops as usize % KEYS];
            let began = Instant::now();
            assert!(client.query_opt(&get, &[key]).await.unwrap().is_some());
            times.push(began.elapsed());
            ops += 1;
        }
        Work {
            ops,
            seconds: started.elapsed().as_secs_f64(),
            median_op: median_duration(&mut times),
        }
    });
    runtime.block_on(task).unwrap()
}

fn median_duration(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f64], digits: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    format!("{low:.digits$}–{high:.digits$}")
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let (rounds, window) = if quick {
        (1, Duration::from_millis(30))
    } else {
        (11, Duration::from_millis(500))
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run `bash .ci/test cargo \
             bench -p verkv-bench --features postgres --bench postgres_faces`"
        )
    });
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    // The async store on each kind of runtime (its connections driven by tasks of it).
    let runtimes = [
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    ];
    let blocking_store: PgStore<String, u64> = PgStore::builder(&url)
        .table(TABLE)
        .pool_size(POOL)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the store: {cause}"));
    let async_stores: Vec<Arc<AsyncPgStore<String, u64>>> = runtimes
        .iter()
        .map(|runtime| {
            let opened = runtime.block_on(
                AsyncPgStore::builder(&url)
                    .table(TABLE)
                    .pool_size(POOL)
                    .build(),
            );
            Arc::new(opened.unwrap_or_else(|cause| panic!("cannot open the async store: {cause}")))
        })
        .collect();
    for client in 0..MANY {
        for key in keys_of(client) {
            blocking_store.put(&Context::background(), key, 0).unwrap();
        }
    }
    println!(
        "AsyncPgStore against PgStore, pools of {POOL}, {rounds} rounds of {window:?}; async \
         on a multi-thread tokio runtime of {cores} worker threads (mt) and on a \
         current-thread one (ct)"
    );
    println!(
        "{:<15} {:>7} {:>9} {:>9} {:>9} {:>7} {:>11} {:>7} {:>11}",
        "workload", "clients", "blocking", "mt", "ct", "mt/bl.", "range", "ct/bl.", "range"
    );
    for workload in [Workload::Cas, Workload::Get, Workload::Transaction] {
        for clients in [1, MANY] {
            // Per subject (blocking, mt, ct): its figure per round.
            let mut figures: [Vec<f64>; 3] = Default::default();
            let mut ratios: [Vec<f64>; 3] = Default::default();
            // The control's time per operation, on mt and on ct.
            let mut bare: [Vec<f64>; 2] = Default::default();
            for round in 0..rounds {
                let mut figure = [0.0; 3];
                for turn in 0..3 {
                    let which = (turn + round) % 3;
                    let work = match which {
                        0 => blocking(&blocking_store, workload, clients, window),
                        _ => awaited(
                            &runtimes[which - 1],
                            &async_stores[which - 1],
                            workload,
                            clients,
                            window,
                        ),
                    };
                    // One client: time per operation (µs); many: operations per second.
                    figure[which] = if clients == 1 {
                        work.median_op.as_secs_f64() * 1e6
                    } else {
                        work.ops as f64 / work.seconds
                    };
                    figures[which].push(figure[which]);
                }
                for which in 1..3 {
                    ratios[which].push(figure[which] / figure[0]);
                }
                if workload == Workload::Get && clients == 1 {
                    for (which, runtime) in runtimes.iter().enumerate() {
                        let work = bare_get(runtime, &url, window);
                        bare[which].push(work.median_op.as_secs_f64() * 1e6);
                    }
                }
            }
            let unit = if clients == 1 { "µs/op" } else { "op/s" };
            let [b, mt, ct] = &mut figures;
            let [_, mt_ratio, ct_ratio] = &mut ratios;
            println!(
                "{:<15} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>7.3} {:>11} {:>7.3} {:>11}  {unit}; ranges: blocking {}, mt {}, ct {}",
                workload.name(),
                clients,
                median(b),
                median(mt),
                median(ct),
                median(mt_ratio),
                range(mt_ratio, 3),
                median(ct_ratio),
                range(ct_ratio, 3),
                range(b, 0),
                range(mt, 0),
                range(ct, 0),
            );
            if !bare[0].is_empty() {
                let [on_mt, on_ct] = &mut bare;
                println!(
                    "{:<15} {:>7} {:>9} {:>9.0} {:>9.0}  µs/op: the bare statement on a tokio-postgres \
                     client (ranges: mt {}, ct {})",
                    "get (bare)",
                    1,
                    "",
                    median(on_mt),
                    median(on_ct),
                    range(on_mt, 0),
                    range(on_ct, 0),
                );
            }
        }
    }
}
