//! How soon a change reaches whoever waits for it, on each face: the time from the start
//! of a write (an update, sent by a plain `PgStore`) to
//!
//! - **a near-cache having handled its notification** (its invalidation counted): a
//!   blocking `NearCache`, whose listening loop is a thread of its own, a second one (the
//!   twin control: the same code, so its ratio shows the noise), and an `AsyncNearCache`,
//!   whose loop is a task of a tokio runtime with a worker per core. All three listen on
//!   one table at once and hear the same changes;
//! - **a `wait_for_change` having returned**: a `PgStore` waiter on a thread of its own,
//!   a second one (the twin), and an `AsyncPgStore` waiter as a task of that runtime, all
//!   three waiting on one key for the same changes.
//!
//! The time is counted from the write's start, not from its answer: a listener hears a
//! notification as the commit happens, often before the writer has read its answer, so
//! that times from the answer are mostly zero. Changes are made one at a time, each once
//! every subject has handled the one before (and, for the waiters, has had time to wait
//! again). Samples
//! fall in rounds; the report gives each subject's median and 99th percentile over all
//! samples, and each subject's median over the blocking one's per round: the median and
//! range over rounds.
//!
//! Needs a server:
//! `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres_wake`
//! (starts a throwaway cluster), or set `VERKV_POSTGRES_URL`. With `-- --test`, two
//! short rounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use verkv::near::{AsyncNearCache, NearCache, NearStats};
use verkv::postgres::{AsyncPgStore, PgStore};
use verkv::{AsyncVersionedStore, Context, VersionedStore};

/// The subjects of each part, in the report's order: the blocking face, its twin, the
/// async face.
const SUBJECTS: [&str; 3] = ["blocking", "blocking (twin)", "async"];

/// How long a waiter is given to wait again after it woke, before the next change.
const REARM: Duration = Duration::from_millis(20);

/// How long any one change may take to reach every subject.
const PATIENCE: Duration = Duration::from_secs(5);

struct Plan {
    rounds: usize,
    samples_per_round: usize,
}

/// One subject's times from a write's start, in microseconds, per round.
type Times = Vec<Vec<f64>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

/// Prints each subject's median and 99th percentile over all samples, and its median
/// over the blocking subject's per round (median and range).
fn report(title: &str, times: &[Times; 3]) {
    println!("{title}");
    for (name, rounds) in SUBJECTS.iter().zip(times) {
        let mut all: Vec<f64> = rounds.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        let mut ratios: Vec<f64> = rounds
            .iter()
            .zip(&times[0])
            .map(|(round, blocking)| median(round) / median(blocking))
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "  {name:<16} median {:>7.1} µs   p99 {:>8.1} µs   / blocking {:.2} ({:.2}–{:.2})",
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            percentile(&ratios, 0.5),
            ratios[0],
            ratios[ratios.len() - 1],
        );
    }
}

/// Microseconds from `started` to `at`.
fn micros_since(started: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(started).as_secs_f64() * 1e6
}

fn invalidations(
    writer: &PgStore<String, u64>,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    table: &str,
    plan: &Plan,
) -> [Times; 3] {
    let blocking = || {
        let db = PgStore::builder(url).table(table).build().unwrap();
        NearCache::builder(db).build().unwrap()
    };
    let (one, twin): (NearCache<String, u64>, NearCache<String, u64>) = (blocking(), blocking());
    let awaited: AsyncNearCache<String, u64> = runtime.block_on(async {
        let db = AsyncPgStore::builder(url)
            .table(table)
            .build()
            .await
            .unwrap();
        NearCache::builder(db).build().await.unwrap()
    });
    let heard = |stats: [NearStats; 3]| stats.map(|s| s.invalidations);
    let stats = || [one.stats(), twin.stats(), awaited.stats()];
    let ctx = Context::background();
    let key = "invalidated".to_string();
    let mut version = writer.put(&ctx, key.clone(), 0).unwrap();
    let mut times: [Times; 3] = Default::default();
    for _ in 0..plan.rounds {
        let mut round: [Vec<f64>; 3] = Default::default();
        for value in 0..plan.samples_per_round as u64 {
            // Every change so far handled by all three.
            let settled = Instant::now() + PATIENCE;
            let before = loop {
                let before = heard(stats());
                thread::sleep(Duration::from_millis(2));
                if heard(stats()) == before {
                    break before;
                }
                assert!(Instant::now() < settled, "the changes never settled");
            };
            let started = Instant::now();
            version = writer.update(&ctx, &key, &version, value).unwrap();
            let mut handled: [Option<Instant>; 3] = [None; 3];
            while handled.iter().any(Option::is_none) {
                let now = heard(stats());
                for (subject, at) in handled.iter_mut().enumerate() {
                    if at.is_none() && now[subject] > before[subject] {
                        *at = Some(Instant::now());
                    }
                }
                assert!(started.elapsed() < PATIENCE, "a change was never heard");
                std::hint::spin_loop();
            }
            for (subject, at) in handled.into_iter().enumerate() {
                round[subject].push(micros_since(started, at.unwrap()));
            }
        }
        for (subject, samples) in round.into_iter().enumerate() {
            times[subject].push(samples);
        }
    }
    times
}

fn wakes(
    writer: &PgStore<String, u64>,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    table: &str,
    plan: &Plan,
) -> [Times; 3] {
    let ctx = Context::background();
    let key = "waited".to_string();
    let first = writer.put(&ctx, key.clone(), 0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (woke, wakes) = mpsc::channel::<(usize, Instant)>();
    // A waiter that waits again after each wake, until stopped.
    let waiting = |subject: usize| {
        let (stop, woke, key) = (Arc::clone(&stop), woke.clone(), key.clone());
        move |mut seen: u64, wait: &dyn Fn(&Context<'_>, &String, u64) -> u64| {
            while !stop.load(Ordering::SeqCst) {
                let ctx = Context::within(PATIENCE * 2);
                seen = wait(&ctx, &key, seen);
                woke.send((subject, Instant::now())).unwrap();
            }
        }
    };
    let blocking: Vec<_> = (0..2)
        .map(|subject| {
            let store: PgStore<String, u64> = PgStore::builder(url).table(table).build().unwrap();
            let waiter = waiting(subject);
            thread::spawn(move || {
                waiter(first, &|ctx, key, seen| {
                    let changed = store.wait_for_change(ctx, key, Some(&seen));
                    changed.unwrap().unwrap().version
                })
            })
        })
        .collect();
    let store: AsyncPgStore<String, u64> = runtime
        .block_on(AsyncPgStore::builder(url).table(table).build())
        .unwrap();
    let (stop_async, woke_async, key_async) = (Arc::clone(&stop), woke.clone(), key.clone());
    let awaited = runtime.spawn(async move {
        let mut seen = first;
        while !stop_async.load(Ordering::SeqCst) {
            let ctx = Context::within(PATIENCE * 2);
            let changed = store.wait_for_change(&ctx, &key_async, Some(&seen)).await;
            seen = changed.unwrap().unwrap().version;
            woke_async.send((2, Instant::now())).unwrap();
        }
    });
    let mut version = first;
    let mut times: [Times; 3] = Default::default();
    for round_index in 0..plan.rounds {
        let mut round: [Vec<f64>; 3] = Default::default();
        for value in 0..plan.samples_per_round as u64 {
            thread::sleep(REARM);
            let last = round_index + 1 == plan.rounds && value + 1 == plan.samples_per_round as u64;
            if last {
                // The waiters end after this change.
                stop.store(true, Ordering::SeqCst);
            }
            let started = Instant::now();
            version = writer.update(&ctx, &key, &version, value + 1).unwrap();
            let mut woken: [Option<Instant>; 3] = [None; 3];
            while woken.iter().any(Option::is_none) {
                let (subject, at) = wakes
                    .recv_timeout(PATIENCE)
                    .expect("a waiter was never woken");
                assert!(woken[subject].is_none(), "{} woke twice", SUBJECTS[subject]);
                woken[subject] = Some(at);
            }
            for (subject, at) in woken.into_iter().enumerate() {
                round[subject].push(micros_since(started, at.unwrap()));
            }
        }
        for (subject, samples) in round.into_iter().enumerate() {
            times[subject].push(samples);
        }
    }
    for waiter in blocking {
        waiter.join().unwrap();
    }
    runtime.block_on(awaited).unwrap();
    times
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let plan = if quick {
        Plan {
            rounds: 2,
            samples_per_round: 10,
        }
    } else {
        Plan {
            rounds: 11,
            samples_per_round: 60,
        }
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run \
             `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres_wake`"
        )
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let table = format!("bench_wake_{}", std::process::id());
    let writer: PgStore<String, u64> = PgStore::builder(&url).table(&table).build().unwrap();
    println!(
        "from a write's start, {} rounds of {} changes",
        plan.rounds, plan.samples_per_round
    );
    let handled = invalidations(&writer, &runtime, &url, &table, &plan);
    report(
        "a near-cache has handled the change's notification",
        &handled,
    );
    let woken = wakes(&writer, &runtime, &url, &table, &plan);
    report("a wait_for_change has returned", &woken);
}
