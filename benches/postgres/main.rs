//! `PgStore`'s compare-and-swap against the same statement written by hand with the
//! `postgres` crate, on the same table, through the same pool crate with the same
//! settings: 1, 2 and 8 client threads, on one hot key or spread over many. Rounds
//! interleave the two subjects (alternating which goes first); the report gives, per
//! configuration, the median and range over rounds of the time per operation of ours /
//! hand-written (below 1: ours is faster).
//!
//! Needs a server: `bash .ci/test cargo bench --features postgres --bench postgres`
//! (starts a throwaway cluster), or set `VERKV_POSTGRES_URL`. With `-- --test`, one short
//! round per configuration.

mod hand;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hand::Hand;
use verkv::postgres::PgStore;
use verkv::{Context, Error, VersionedStore};

const TABLE: &str = "bench_cas";
const POOL: u32 = 8;
const THREADS: [usize; 3] = [1, 2, 8];
/// Keys per thread when spread.
const SPREAD_KEYS: usize = 64;

/// One compare-and-swap: the new version, or the current one if `expected` was stale.
trait Cas: Sync {
    fn cas(&self, key: &str, expected: u64, value: u64) -> Result<u64, u64>;
}

impl Cas for PgStore<String, u64> {
    fn cas(&self, key: &str, expected: u64, value: u64) -> Result<u64, u64> {
        let key = key.to_string();
        match self.update(&Context::background(), &key, &expected, value) {
            Ok(version) => Ok(version),
            Err(refused) => match refused.error {
                Error::Stale { current, .. } => Err(current),
                other => panic!("update: {other}"),
            },
        }
    }
}

#[derive(Clone, Copy)]
enum Keys {
    Hot,
    Spread,
}

impl Keys {
    fn name(self) -> &'static str {
        match self {
            Keys::Hot => "hot (1 key)",
            Keys::Spread => "spread (64 keys/thread)",
        }
    }

    /// The keys thread `thread` works on.
    fn of(self, thread: usize) -> Vec<String> {
        match self {
            Keys::Hot => vec!["hot".to_string()],
            Keys::Spread => (0..SPREAD_KEYS).map(|i| format!("t{thread}_{i}")).collect(),
        }
    }
}

/// Runs `threads` clients of `subject` for `window`; returns operations per second.
fn run(
    subject: &dyn Cas,
    store: &PgStore<String, u64>,
    threads: usize,
    keys: Keys,
    window: Duration,
) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    thread::scope(|s| {
        for thread in 0..threads {
            let (stop, done) = (&stop, &done);
            s.spawn(move || {
                let keys = keys.of(thread);
                let ctx = Context::background();
                let mut versions: Vec<u64> = keys
                    .iter()
                    .map(|key| store.get(&ctx, key).unwrap().expect("seeded").version)
                    .collect();
                let mut ops = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = ops as usize % keys.len();
                    versions[i] = match subject.cas(&keys[i], versions[i], ops) {
                        Ok(version) | Err(version) => version,
                    };
                    ops += 1;
                }
                done.fetch_add(ops, Ordering::Relaxed);
            });
        }
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let (rounds, window) = if quick {
        (1, Duration::from_millis(50))
    } else {
        (21, Duration::from_millis(500))
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run \
             `bash .ci/test cargo bench --features postgres --bench postgres`"
        )
    });
    let store: PgStore<String, u64> = PgStore::builder(&url)
        .table(TABLE)
        .pool_size(POOL)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the store: {cause}"));
    let hand = Hand::new(&url, TABLE, POOL);
    let ctx = Context::background();
    for keys in [Keys::Hot, Keys::Spread] {
        for thread in 0..8 {
            for key in keys.of(thread) {
                store.put(&ctx, key, 0).unwrap();
            }
        }
    }
    let subjects: [&dyn Cas; 2] = [&store, &hand];
    println!(
        "compare-and-swap, ours / hand-written time per operation ({rounds} rounds of {window:?})"
    );
    println!(
        "{:<24} {:>7} {:>8} {:>15} {:>12} {:>12}",
        "keys", "threads", "median", "range", "ours op/s", "hand op/s"
    );
    for keys in [Keys::Hot, Keys::Spread] {
        for threads in THREADS {
            let (mut ratios, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let mut rates = [0.0; 2];
                for turn in 0..2 {
                    let which = (turn + round) % 2;
                    rates[which] = run(subjects[which], &store, threads, keys, window);
                }
                // Time per operation, ours over theirs: their rate over ours.
                ratios.push(rates[1] / rates[0]);
                ours.push(rates[0]);
                theirs.push(rates[1]);
            }
            let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
            let high = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "{:<24} {:>7} {:>8.3} {:>7.3}–{:<7.3} {:>12.0} {:>12.0}",
                keys.name(),
                threads,
                median(&mut ratios),
                low,
                high,
                median(&mut ours),
                median(&mut theirs),
            );
        }
    }
}
