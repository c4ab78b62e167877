//! The race that the version check prevents, shown twice: first as a story with two
//! clients in a forced order, then as a contention run on real threads.
//!
//! ```text
//! cargo run --release --example lost_update -- [--threads N] [--ops N] [--keys N]
//! ```
//!
//! Exits with status 1 if the versioned path ever loses an update.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use verkv::Store;

#[derive(Debug, Clone, PartialEq)]
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
    tell_the_story();
    let lost = contention_run(&options);
    if lost == 0 {
        println!("\nThe versioned path lost no update.");
        ExitCode::SUCCESS
    } else {
        println!("\nBUG: the versioned path lost {lost} updates.");
        ExitCode::FAILURE
    }
}

const USAGE: &str = "usage: lost_update [--threads N] [--ops N] [--keys N]
  --threads N  writer threads in the contention run (default 4)
  --ops N      read-modify-write increments per thread (default 200000)
  --keys N     hot keys the threads share (default 4)";

struct Options {
    threads: u64,
    ops: u64,
    keys: u64,
}

impl Options {
    fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            threads: 4,
            ops: 200_000,
            keys: 4,
        };
        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--threads" => &mut options.threads,
                "--ops" => &mut options.ops,
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
        if options.threads > 1024 {
            return Err(format!("--threads {} is more than 1024", options.threads));
        }
        Ok(options)
    }
}

fn tell_the_story() {
    println!("== Two clients, one record ==\n");
    for versioned in [false, true] {
        let store: Store<u32, Movie> = Store::new();
        store
            .insert(
                42,
                Movie {
                    title: "Black Panter".into(),
                    genres: vec!["action".into()],
                },
            )
            .unwrap();
        let path = if versioned {
            "With the version check (update)"
        } else {
            "With blind writes (put)"
        };
        println!("{path}:");
        let alice = store.get(&42).unwrap();
        let bob = store.get(&42).unwrap();
        println!(
            "  1. Alice and Bob both read movie 42 at version {}: {:?}",
            alice.version, alice.value
        );

        let mut fixed = alice.value.clone();
        fixed.title = "Black Panther".into();
        let mut tagged = bob.value.clone();
        tagged.genres.push("adventure".into());

        if versioned {
            let v = store.update(&42, &alice.version, fixed).unwrap();
            println!(
                "  2. Alice fixes the title and writes, expecting version {}: ok, now version {v}",
                alice.version
            );
            match store.update(&42, &bob.version, tagged) {
                Err(refused) => {
                    println!("  3. Bob adds a genre and writes, expecting version {}: refused ({refused})", bob.version);
                    let fresh = store.get(&42).unwrap();
                    let mut retagged = fresh.value.clone();
                    retagged.genres.push("adventure".into());
                    let v = store.update(&42, &fresh.version, retagged).unwrap();
                    println!("  4. Bob re-reads version {}, adds the genre again and writes: ok, now version {v}", fresh.version);
                }
                Ok(_) => unreachable!("a stale write must be refused"),
            }
        } else {
            let v = store.put(42, fixed).unwrap();
            println!("  2. Alice fixes the title and writes: now version {v}");
            let v = store.put(42, tagged).unwrap();
            println!("  3. Bob adds a genre to his copy and writes: now version {v}, nobody was told anything");
        }
        let end = store.get(&42).unwrap().value;
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

fn contention_run(options: &Options) -> u64 {
    println!(
        "== Contention run: {} threads x {} increments on {} hot keys ==\n",
        options.threads, options.ops, options.keys
    );
    let blind = run(options, |store, key| {
        let read = store.get(&key).unwrap();
        store.put(key, read.value + 1).unwrap();
        0
    });
    let versioned = run(options, |store, key| {
        let done = store
            .retry_update(&key, |n| Ok::<_, Infallible>(n + 1))
            .expect("keys are never removed");
        u64::from(done.attempts - 1)
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

/// Runs `increment` `ops` times on each of `threads` threads, spreading over the keys.
/// `increment` returns how many conflicts it met.
fn run(options: &Options, increment: impl Fn(&Store<u64, u64>, u64) -> u64 + Sync) -> Tally {
    let store: Store<u64, u64> = Store::new();
    for key in 0..options.keys {
        store.insert(key, 0).unwrap();
    }
    let conflicts = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for thread in 0..options.threads {
            let (store, increment, conflicts) = (&store, &increment, &conflicts);
            s.spawn(move || {
                let mut mine = 0;
                for op in 0..options.ops {
                    mine += increment(store, (thread + op) % options.keys);
                }
                conflicts.fetch_add(mine, Ordering::Relaxed);
            });
        }
    });
    Tally {
        expected: options.threads * options.ops,
        actual: store.iter().map(|(_, record)| record.value).sum(),
        conflicts: conflicts.into_inner(),
        elapsed: start.elapsed(),
    }
}
