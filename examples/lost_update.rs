//! The race that the version check prevents, shown twice: first as a story with two
//! clients in a forced order, then as a contention run on real threads. Runs on the
//! in-memory store, or on PostgreSQL (the `postgres` feature) through the same trait.
//!
//! ```text
//! cargo run --release --example lost_update -- [--threads N] [--ops N] [--keys N]
//! VERKV_POSTGRES_URL=postgresql://… cargo run --release --features postgres \
//!     --example lost_update -- --backend postgres --ops 300
//! ```
//!
//! Exits with status 1 if the versioned path ever loses an update.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use verkv::{Context, Error, Store, VersionedStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Movie {
    title: String,
    genres: Vec<String>,
}

fn main() -> ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("lost_update: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let lost = match options.backend.as_str() {
        "memory" => {
            tell_the_story(&Store::new(), &Store::new());
            let versioned = Store::builder().hot_keys(HOTTEST).build();
            let lost = contention_run(&options, &Store::new(), &versioned);
            print_hottest(&versioned);
            lost
        }
        "postgres" => match on_postgres(&options) {
            Ok(lost) => lost,
            Err(message) => {
                eprintln!("lost_update: {message}");
                return ExitCode::from(2);
            }
        },
        other => {
            eprintln!("lost_update: unknown backend {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if lost == 0 {
        println!("\nThe versioned path lost no update.");
        ExitCode::SUCCESS
    } else {
        println!("\nBUG: the versioned path lost {lost} updates.");
        ExitCode::FAILURE
    }
}

/// Both parts of the demonstration on PostgreSQL, at `VERKV_POSTGRES_URL`.
#[cfg(feature = "postgres")]
fn on_postgres(options: &Options) -> Result<u64, String> {
    use verkv::postgres::PgStore;
    let url = std::env::var("VERKV_POSTGRES_URL")
        .map_err(|_| "--backend postgres needs VERKV_POSTGRES_URL (a connection URL)")?;
    fn open<K, V>(url: &str, table: &str) -> Result<PgStore<K, V>, String> {
        PgStore::builder(url)
            .table(table)
            .build()
            .map_err(|cause| format!("cannot open table {table}: {cause}"))
    }
    let story = |table| open::<u32, Movie>(&url, table);
    tell_the_story(
        &story("lost_update_story_blind")?,
        &story("lost_update_story")?,
    );
    let counts = |table| open::<u64, u64>(&url, table);
    Ok(contention_run(
        options,
        &counts("lost_update_blind")?,
        &counts("lost_update_versioned")?,
    ))
}

#[cfg(not(feature = "postgres"))]
fn on_postgres(_: &Options) -> Result<u64, String> {
    Err("--backend postgres needs the postgres feature (--features postgres)".into())
}

const USAGE: &str =
    "usage: lost_update [--backend memory|postgres] [--threads N] [--ops N] [--keys N]
  --backend B  memory (default) or postgres (the postgres feature; VERKV_POSTGRES_URL)
  --threads N  writer threads in the contention run (default 4)
  --ops N      read-modify-write increments per thread (default 200000; 300 on postgres)
  --keys N     hot keys the threads share (default 4)";

struct Options {
    backend: String,
    threads: u64,
    ops: Option<u64>,
    keys: u64,
}

impl Options {
    /// Increments per thread: what was asked, or what the backend does in seconds.
    fn ops(&self) -> u64 {
        let default = if self.backend == "postgres" {
            300
        } else {
            200_000
        };
        self.ops.unwrap_or(default)
    }
}

impl Options {
    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            backend: "memory".into(),
            threads: 4,
            ops: None,
            keys: 4,
        };
        let mut ops = 0;
        while let Some(flag) = args.next() {
            if flag == "--backend" {
                options.backend = args.next().ok_or("--backend needs a name")?;
                continue;
            }
            let slot = match flag.as_str() {
                "--threads" => &mut options.threads,
                "--ops" => &mut ops,
                "--keys" => &mut options.keys,
                "-h" | "--help" => return Err("showing help".into()),
                other => return Err(format!("unknown option {other:?}")),
            };
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a number"))?;
            *slot = match value.parse() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("{flag} needs a positive number, got {value:?}")),
            };
        }
        options.ops = (ops > 0).then_some(ops);
        if options.threads > 1024 {
            return Err(format!("--threads {} is more than 1024", options.threads));
        }
        Ok(options)
    }
}

/// The story on two stores: one for the blind writes, one for the versioned ones.
fn tell_the_story<S: VersionedStore<u32, Movie>>(blind: &S, versioned: &S) {
    println!("== Two clients, one record ==\n");
    let ctx = Context::background();
    let get = |store: &S| store.get(&ctx, &42).unwrap().expect("written first");
    for (versioned, store) in [(false, blind), (true, versioned)] {
        let movie = Movie {
            title: "Black Panter".into(),
            genres: vec!["action".into()],
        };
        store.put(&ctx, 42, movie).unwrap();
        let path = if versioned {
            "With the version check (update)"
        } else {
            "With blind writes (put)"
        };
        println!("{path}:");
        let alice = get(store);
        let bob = get(store);
        println!(
            "  1. Alice and Bob both read movie 42 at version {}: {:?}",
            alice.version, alice.value
        );

        let mut fixed = alice.value.clone();
        fixed.title = "Black Panther".into();
        let mut tagged = bob.value.clone();
        tagged.genres.push("adventure".into());

        if versioned {
            let v = store.update(&ctx, &42, &alice.version, fixed).unwrap();
            println!(
                "  2. Alice fixes the title and writes, expecting version {}: ok, now version {v}",
                alice.version
            );
            match store.update(&ctx, &42, &bob.version, tagged) {
                Err(refused) => {
                    println!("  3. Bob adds a genre and writes, expecting version {}: refused ({refused})", bob.version);
                    let fresh = get(store);
                    let mut retagged = fresh.value.clone();
                    retagged.genres.push("adventure".into());
                    let v = store.update(&ctx, &42, &fresh.version, retagged).unwrap();
                    println!("  4. Bob re-reads version {}, adds the genre again and writes: ok, now version {v}", fresh.version);
                }
                Ok(_) => unreachable!("a stale write must be refused"),
            }
        } else {
            let v = store.put(&ctx, 42, fixed).unwrap();
            println!("  2. Alice fixes the title and writes: now version {v}");
            let v = store.put(&ctx, 42, tagged).unwrap();
            println!("  3. Bob adds a genre to his copy and writes: now version {v}, nobody was told anything");
        }
        let end = get(store).value;
        let both = end.title == "Black Panther" && end.genres.contains(&"adventure".to_string());
        println!("  Result: {end:?}");
        println!(
            "  {}\n",
            if both {
                "Both changes survived."
            } else {
                "Alice's title fix is LOST: Bob overwrote it with his stale copy."
            }
        );
    }
}

/// What one path of the contention run did.
struct Tally {
    expected: u64,
    actual: u64,
    conflicts: u64,
    elapsed: Duration,
}

/// How many of the hottest conflicting keys the in-memory run reports.
const HOTTEST: usize = 5;

/// Where the versioned path's writers fought: the statistics of its store.
fn print_hottest(versioned: &Store<u64, u64>) {
    let stats = versioned.stats().expect("built with hot keys");
    println!("\n== Where the writers fought (versioned path, statistics on) ==\n");
    println!(
        "{} stale refusals; {} writers queued for a shard lock, {:?} in total, {:?} at most",
        stats.refusals.stale, stats.lock_waits.count, stats.lock_waits.total, stats.lock_waits.max
    );
    let hottest = versioned.stats_top_conflicts();
    if hottest.is_empty() {
        println!("no conflicting keys: no write was refused as stale");
        return;
    }
    println!("hottest conflicting keys (stale refusals, true count within count - error):");
    for hot in hottest {
        println!(
            "  key {:>4}: {:>8} (error {})",
            hot.key, hot.count, hot.error
        );
    }
}

/// The contention run: blind read-modify-write on `blind`, versioned with a retry on
/// every stale refusal on `versioned`.
fn contention_run<S>(options: &Options, blind: &S, versioned: &S) -> u64
where
    S: VersionedStore<u64, u64> + Sync,
{
    println!(
        "== Contention run: {} threads x {} increments on {} hot keys ==\n",
        options.threads,
        options.ops(),
        options.keys
    );
    let ctx = Context::background();
    let read = |store: &S, key: u64| store.get(&ctx, &key).unwrap().expect("never removed");
    let blind = run(options, blind, |store, key| {
        let current = read(store, key);
        store.put(&ctx, key, current.value + 1).unwrap();
        0
    });
    let versioned = run(options, versioned, |store, key| {
        let mut conflicts = 0;
        loop {
            let current = read(store, key);
            match store.update(&ctx, &key, &current.version, current.value + 1) {
                Ok(_) => return conflicts,
                Err(refused) if matches!(refused.error, Error::Stale { .. }) => conflicts += 1,
                Err(refused) => panic!("increment refused: {refused}"),
            }
        }
    });
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "path", "expected", "actual", "lost", "conflicts", "increments/s"
    );
    for (name, tally) in [
        ("blind read-modify-write (put)", &blind),
        ("versioned, retry on stale", &versioned),
    ] {
        println!(
            "{:<34} {:>12} {:>12} {:>12} {:>12} {:>14.0}",
            name,
            tally.expected,
            tally.actual,
            tally.expected - tally.actual,
            tally.conflicts,
            tally.expected as f64 / tally.elapsed.as_secs_f64()
        );
    }
    println!(
        "\nlost: increments that some thread made but that are missing from the final counts.\n\
         conflicts: stale writes the version check refused (each was re-read and retried)."
    );
    versioned.expected - versioned.actual
}

/// Sets the keys of `store` to 0, then runs `increment` `ops` times on each of `threads`
/// threads, spreading over the keys. `increment` returns how many conflicts it met.
fn run<S>(options: &Options, store: &S, increment: impl Fn(&S, u64) -> u64 + Sync) -> Tally
where
    S: VersionedStore<u64, u64> + Sync,
{
    let ctx = Context::background();
    for key in 0..options.keys {
        store.put(&ctx, key, 0).unwrap();
    }
    let ops = options.ops();
    let conflicts = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for thread in 0..options.threads {
            let (increment, conflicts) = (&increment, &conflicts);
            s.spawn(move || {
                let mut mine = 0;
                for op in 0..ops {
                    mine += increment(store, (thread + op) % options.keys);
                }
                conflicts.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    let count = |key| {
        store
            .get(&ctx, &key)
            .unwrap()
            .map_or(0, |record| record.value)
    };
    Tally {
        expected: options.threads * ops,
        actual: (0..options.keys).map(count).sum(),
        conflicts: conflicts.into_inner(),
        elapsed: start.elapsed(),
    }
}
