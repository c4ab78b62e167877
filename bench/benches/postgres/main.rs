//! `PgStore`'s compare-and-swap against the same statement written by hand with the
//! `postgres` crate, on the same table, through the same pool crate with the same
//! settings: 1, 2 and 8 client threads, on one hot key or spread over many. Rounds
//! interleave the subjects (rotating which goes first); the report gives, per
//! configuration, the median and range over rounds of the time per operation of ours /
//! hand-written (below 1: ours is faster), and of a second hand-written subject (its
//! own pool) / the first: the control, showing what one run can resolve. It also gives
//! the client's CPU time per operation (the whole process, from `/proc/self/stat`, summed
//! over all rounds), which is where a client library's overhead shows, whatever the
//! server and the machine's other load do to latency.
//!
//! Needs a server:
//! `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres`
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

/// The CPU time this process has used so far, in clock ticks (user + system), if the
/// system says.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// What one run did.
#[derive(Default, Clone, Copy)]
struct Work {
    ops: u64,
    seconds: f64,
    cpu_ticks: u64,
}

impl Work {
    fn rate(self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// Runs `threads` clients of `subject` for `window`.
fn run(
    subject: &dyn Cas,
    store: &PgStore<String, u64>,
    threads: usize,
    keys: Keys,
    window: Duration,
) -> Work {
    let ticks = cpu_ticks();
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
    Work {
        ops: done.into_inner(),
        seconds: started.elapsed().as_secs_f64(),
        cpu_ticks: cpu_ticks()
            .zip(ticks)
            .map_or(0, |(after, before)| after - before),
    }
}

/// Client CPU time per operation over all of `work`, in microseconds (100 ticks a second,
/// as Linux reports them).
fn cpu_per_op(work: &[Work]) -> f64 {
    let ticks: u64 = work.iter().map(|w| w.cpu_ticks).sum();
    let ops: u64 = work.iter().map(|w| w.ops).sum();
    ticks as f64 * 10_000.0 / ops as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    format!("{low:.2}–{high:.2}")
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let (rounds, window) = if quick {
        (1, Duration::from_millis(50))
    } else {
        (15, Duration::from_millis(500))
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run \
             `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres`"
        )
    });
    let store: PgStore<String, u64> = PgStore::builder(&url)
        .table(TABLE)
        .pool_size(POOL)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the store: {cause}"));
    let hand = Hand::new(&url, TABLE, POOL);
    let twin = Hand::new(&url, TABLE, POOL);
    let ctx = Context::background();
    for keys in [Keys::Hot, Keys::Spread] {
        for thread in 0..8 {
            for key in keys.of(thread) {
                store.put(&ctx, key, 0).unwrap();
            }
        }
    }
    let subjects: [&dyn Cas; 3] = [&store, &hand, &twin];
    println!(
        "compare-and-swap, time per operation over hand-written ({rounds} rounds of {window:?})"
    );
    println!(
        "{:<24} {:>7} {:>6} {:>11} {:>6} {:>11} {:>10} {:>10} {:>16}",
        "keys",
        "threads",
        "ours",
        "range",
        "twin",
        "range",
        "ours op/s",
        "hand op/s",
        "CPU µs/op o/h/t"
    );
    for keys in [Keys::Hot, Keys::Spread] {
        for threads in THREADS {
            let mut work: [Vec<Work>; 3] = Default::default();
            let (mut ours, mut twin) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let mut rate = [0.0; 3];
                for turn in 0..3 {
                    let which = (turn + round) % 3;
                    let done = run(subjects[which], &store, threads, keys, window);
                    rate[which] = done.rate();
                    work[which].push(done);
                }
                // Time per operation over the hand-written one's: its rate over ours.
                ours.push(rate[1] / rate[0]);
                twin.push(rate[1] / rate[2]);
            }
            let rates = |which: usize| -> f64 {
                median(&mut work[which].iter().map(|w| w.rate()).collect::<Vec<_>>())
            };
            let (ours_rate, hand_rate) = (rates(0), rates(1));
            let cpu = format!(
                "{:.0}/{:.0}/{:.0}",
                cpu_per_op(&work[0]),
                cpu_per_op(&work[1]),
                cpu_per_op(&work[2])
            );
            println!(
                "{:<24} {:>7} {:>6.3} {:>11} {:>6.3} {:>11} {:>10.0} {:>10.0} {:>16}",
                keys.name(),
                threads,
                median(&mut ours),
                range(&ours),
                median(&mut twin),
                range(&twin),
                ours_rate,
                hand_rate,
                cpu,
            );
        }
    }
}
