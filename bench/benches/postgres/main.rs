//! `PgStore`'s operations against the same operations' bare statements written by hand
//! with the `postgres` crate, through the same pool crate with the same settings, at 1, 8
//! and 32 client threads: a successful compare-and-swap, an insert followed by the
//! conditional remove of what it inserted, a stale compare-and-swap, and a `get` (against
//! a bare `SELECT`), and a 2-key transaction (two conditional updates, committed
//! together: `commit` against the same SQL transaction written by hand).
//!
//! The hand-written statements run on a plain table with no trigger (`hand.rs`). The
//! store runs on two tables: one nobody listens to (its change trigger is off), and one a
//! near-cache listens to for the whole run (its trigger notifies every write), written
//! through a store of its own as another process would. Rounds interleave the subjects
//! (rotating which goes first); the report gives, per workload and number of clients,
//! the median and range over rounds of the time per operation of each subject over the
//! hand-written one's (below 1: faster), of a second hand-written subject (its own
//! pool) over the first: the control, showing what one run can resolve; and of the
//! hand-written statements on a table whose keys and values are `bytea` holding the same
//! JSON text (`bytea`): what storing records as bytes would change. It also gives
//! the client's CPU time per operation of the bare statements and of the store on the
//! quiet table (the whole process, from `/proc/self/stat`, summed over all rounds): where
//! a client library's overhead shows, whatever the server and the machine's other load
//! do to latency.
//!
//! Needs a server:
//! `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres`
//! (starts a throwaway cluster), or set `VERKV_POSTGRES_URL`. With `-- --test`, one short
//! round per configuration.
//!
//! With `VERKV_BENCH_RESULTS` set to a folder, the rows are also written there as
//! `postgres.csv` (per workload and clients: the ratios and each subject's operations per
//! second), for the report's plots.

mod hand;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hand::{Columns, Hand};
use verkv::near::NearCache;
use verkv::postgres::PgStore;
use verkv::{Context, Error, Transaction, TransactionError, VersionedStore};
use verkv_bench::results::ResultFile;

/// The tables: the store's nobody listens to, the store's a near-cache listens to, and
/// the hand-written statements' plain one.
const QUIET: &str = "bench_quiet";
const HEARD: &str = "bench_heard";
const BARE: &str = "bench_bare";
const BYTES: &str = "bench_bytes";
const CLIENTS: [usize; 3] = [1, 8, 32];
/// Keys per client.
const KEYS: usize = 64;

/// The operations measured, each as one statement would answer it.
trait Subject: Sync {
    /// The version of `key`, if any.
    fn get(&self, key: &str) -> Option<u64>;
    /// Inserts `key` if absent: its version, or `None` if it was there.
    fn insert(&self, key: &str, value: u64) -> Option<u64>;
    /// Writes `key` if at `expected`: the new version, or `None` if refused.
    fn cas(&self, key: &str, expected: u64, value: u64) -> Option<u64>;
    /// Removes `key` if at `expected`: whether it did.
    fn remove(&self, key: &str, expected: u64) -> bool;
    /// Writes `value` to both keys if each is at its expected version, in one
    /// transaction: their new versions, or `None` if refused.
    fn transfer(&self, from: (&str, u64), to: (&str, u64), value: u64) -> Option<(u64, u64)>;
}

impl Subject for PgStore<String, u64> {
    fn get(&self, key: &str) -> Option<u64> {
        let read = VersionedStore::get(self, &Context::background(), &key.to_string());
        read.unwrap().map(|record| record.version)
    }

    fn insert(&self, key: &str, value: u64) -> Option<u64> {
        match VersionedStore::insert(self, &Context::background(), key.to_string(), value) {
            Ok(version) => Some(version),
            Err(refused) if matches!(refused.error, Error::Exists { .. }) => None,
            Err(refused) => panic!("insert: {}", refused.error),
        }
    }

    fn cas(&self, key: &str, expected: u64, value: u64) -> Option<u64> {
        let ctx = Context::background();
        match self.update(&ctx, &key.to_string(), &expected, value) {
            Ok(version) => Some(version),
            Err(refused) if matches!(refused.error, Error::Stale { .. }) => None,
            Err(refused) => panic!("update: {}", refused.error),
        }
    }

    fn remove(&self, key: &str, expected: u64) -> bool {
        let ctx = Context::background();
        match VersionedStore::remove(self, &ctx, &key.to_string(), &expected) {
            Ok(_) => true,
            Err(Error::Stale { .. } | Error::NotFound) => false,
            Err(error) => panic!("remove: {error}"),
        }
    }

    fn transfer(&self, from: (&str, u64), to: (&str, u64), value: u64) -> Option<(u64, u64)> {
        let moved = Transaction::new()
            .update(from.0.to_string(), from.1, value)
            .update(to.0.to_string(), to.1, value);
        match self.commit(&Context::background(), moved) {
            Ok(done) => Some((*done[0].version()?, *done[1].version()?)),
            Err(refused) if matches!(refused.error, TransactionError::Conflict(_)) => None,
            Err(refused) => panic!("commit: {}", refused.error),
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    Cas,
    InsertRemove,
    StaleCas,
    Get,
    Transfer,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Cas => "successful CAS",
            Workload::InsertRemove => "insert + cond. remove",
            Workload::StaleCas => "stale CAS",
            Workload::Get => "get / bare SELECT",
            Workload::Transfer => "2-key transaction",
        }
    }
}

/// The seeded keys of client `client`.
fn keys_of(client: usize) -> Vec<String> {
    (0..KEYS).map(|i| format!("c{client}_{i}")).collect()
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

/// Client CPU time per operation over all of `work`, in microseconds (100 ticks a second,
/// as Linux reports them).
fn cpu_per_op(work: &[Work]) -> f64 {
    let ticks: u64 = work.iter().map(|w| w.cpu_ticks).sum();
    let ops: u64 = work.iter().map(|w| w.ops).sum();
    ticks as f64 * 10_000.0 / ops as f64
}

/// Runs `clients` clients of `subject` doing `workload` for `window`.
fn run(subject: &dyn Subject, workload: Workload, clients: usize, window: Duration) -> Work {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let ready = Barrier::new(clients + 1);
    let mut seconds = 0.0;
    let mut ticks = None;
    thread::scope(|s| {
        for client in 0..clients {
            let (stop, done, ready) = (&stop, &done, &ready);
            s.spawn(move || {
                let keys = keys_of(client);
                let mut versions: Vec<u64> = keys
                    .iter()
                    .map(|key| subject.get(key).expect("seeded"))
                    .collect();
                let fresh = format!("c{client}_fresh");
                ready.wait();
                let mut ops: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = ops as usize % keys.len();
                    match workload {
                        Workload::Cas => {
                            versions[i] = subject.cas(&keys[i], versions[i], ops).expect("own key");
                        }
                        Workload::InsertRemove => {
                            let version = subject.insert(&fresh, ops).expect("removed before");
                            assert!(subject.remove(&fresh, version));
                        }
                        // Versions start at 1: 0 is never current.
                        Workload::StaleCas => assert!(subject.cas(&keys[i], 0, ops).is_none()),
                        Workload::Get => assert!(subject.get(&keys[i]).is_some()),
                        Workload::Transfer => {
                            let j = (i + 1) % keys.len();
                            let from = (keys[i].as_str(), versions[i]);
                            let to = (keys[j].as_str(), versions[j]);
                            (versions[i], versions[j]) =
                                subject.transfer(from, to, ops).expect("own keys");
                        }
                    }
                    ops += 1;
                }
                done.fetch_add(ops, Ordering::Relaxed);
            });
        }
        ready.wait();
        ticks = cpu_ticks();
        let started = Instant::now();
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        seconds = started.elapsed().as_secs_f64();
    });
    Work {
        ops: done.into_inner(),
        seconds,
        cpu_ticks: cpu_ticks()
            .zip(ticks)
            .map_or(0, |(after, before)| after - before),
    }
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

/// A store on `table` with a pool for every client, its keys seeded.
fn store(url: &str, table: &str, pool: u32) -> PgStore<String, u64> {
    let store: PgStore<String, u64> = PgStore::builder(url)
        .table(table)
        .pool_size(pool)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the store: {cause}"));
    for client in 0..CLIENTS[CLIENTS.len() - 1] {
        for key in keys_of(client) {
            store.put(&Context::background(), key, 0).unwrap();
        }
    }
    store
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let (rounds, window) = if quick {
        (1, Duration::from_millis(30))
    } else {
        (9, Duration::from_millis(400))
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run \
             `bash .ci/test cargo bench -p verkv-bench --features postgres --bench postgres`"
        )
    });
    let pool = CLIENTS[CLIENTS.len() - 1] as u32;
    let quiet = store(&url, QUIET, pool);
    let heard = store(&url, HEARD, pool);
    // Listens to `HEARD` for the whole run (its own store, whose pool stays idle).
    let near: NearCache<String, u64> = NearCache::builder(
        PgStore::builder(&url)
            .table(HEARD)
            .pool_size(1)
            .build()
            .unwrap(),
    )
    .build()
    .unwrap_or_else(|cause| panic!("cannot open the near-cache: {cause}"));
    hand::create(&url, BARE, Columns::Json);
    hand::create(&url, BYTES, Columns::Bytes);
    let hand = Hand::new(&url, BARE, pool, Columns::Json);
    let twin = Hand::new(&url, BARE, pool, Columns::Json);
    let bytes = Hand::new(&url, BYTES, pool, Columns::Bytes);
    for client in 0..CLIENTS[CLIENTS.len() - 1] {
        for key in keys_of(client) {
            hand.insert(&key, 0);
            bytes.insert(&key, 0);
        }
    }
    let subjects: [&dyn Subject; 5] = [&hand, &quiet, &heard, &twin, &bytes];
    let mut out = ResultFile::create(
        "postgres.csv",
        &[
            "workload",
            "clients",
            "quiet_ratio",
            "quiet_min",
            "quiet_max",
            "heard_ratio",
            "twin_ratio",
            "bytea_ratio",
            "bare_per_s",
            "quiet_per_s",
            "heard_per_s",
        ],
    );
    println!(
        "time per operation over the bare statement's ({rounds} rounds of {window:?}); \
         a near-cache listens to the `heard` table"
    );
    println!(
        "{:<22} {:>7} {:>6} {:>11} {:>6} {:>11} {:>6} {:>11} {:>6} {:>11} {:>8} {:>8} {:>8} {:>11}",
        "workload",
        "clients",
        "quiet",
        "range",
        "heard",
        "range",
        "twin",
        "range",
        "bytea",
        "range",
        "bare/s",
        "quiet/s",
        "heard/s",
        "CPU µs b/q"
    );
    for workload in [
        Workload::Cas,
        Workload::InsertRemove,
        Workload::StaleCas,
        Workload::Get,
        Workload::Transfer,
    ] {
        for clients in CLIENTS {
            let mut ratios: [Vec<f64>; 5] = Default::default();
            let mut work: [Vec<Work>; 5] = Default::default();
            for round in 0..rounds {
                let mut rate = [0.0; 5];
                for turn in 0..subjects.len() {
                    let which = (turn + round) % subjects.len();
                    let done = run(subjects[which], workload, clients, window);
                    rate[which] = done.rate();
                    work[which].push(done);
                }
                for which in 1..subjects.len() {
                    ratios[which].push(rate[0] / rate[which]);
                }
            }
            let [_, quiet, heard, twin, bytea] = &mut ratios;
            let rates = |which: usize| -> f64 {
                median(&mut work[which].iter().map(|w| w.rate()).collect::<Vec<_>>())
            };
            let cpu = format!("{:.0}/{:.0}", cpu_per_op(&work[0]), cpu_per_op(&work[1]));
            let (quiet_min, quiet_max) = quiet
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            out.row(&[
                workload.name().to_owned(),
                clients.to_string(),
                format!("{:.4}", median(quiet)),
                format!("{quiet_min:.4}"),
                format!("{quiet_max:.4}"),
                format!("{:.4}", median(heard)),
                format!("{:.4}", median(twin)),
                format!("{:.4}", median(bytea)),
                format!("{:.1}", rates(0)),
                format!("{:.1}", rates(1)),
                format!("{:.1}", rates(2)),
            ]);
            println!(
                "{:<22} {:>7} {:>6.3} {:>11} {:>6.3} {:>11} {:>6.3} {:>11} {:>6.3} {:>11} {:>8.0} {:>8.0} {:>8.0} {:>11}",
                workload.name(),
                clients,
                median(quiet),
                range(quiet),
                median(heard),
                range(heard),
                median(twin),
                range(twin),
                median(bytea),
                range(bytea),
                rates(0),
                rates(1),
                rates(2),
                cpu,
            );
        }
    }
    assert!(near.stats().coherent, "the near-cache stopped listening");
}
