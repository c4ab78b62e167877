//! Runs one store operation in a loop inside a function of its own, so that an
//! instruction counter can count that loop alone and divide by the number of calls
//! (`docs/benchmarks/read-path.md`, "Instructions per operation").
//!
//! ```text
//! cargo run --release -p verkv-bench --example read_cost -- VARIANT KEYS OPERATION CALLS
//! ```
//!
//! `VARIANT` is `plain` (unbounded, no expiry, statistics off), `stats` (statistics
//! on), `bounded` (a capacity bound above `KEYS`) or `ttl` (a time to live of an hour);
//! `OPERATION` is `hit` (`get` of present keys), `miss` (`get` of absent keys) or
//! `update` (`update` at the current version), `stale` (`update` at version 0, refused
//! as stale), `retry` (`retry_update`, uncontended: one attempt), `async-update` (the
//! async face's `update`, its future polled once: a free lock answers at once), `txn2`
//! (`commit` of two updates, their keys on two shards; the transaction is built in the
//! loop, as a caller builds it), `txn2-same` (the same, both keys on one shard) or
//! `get-many2` (`get_many` of two keys on two shards) or `get-many2-array` (the same
//! through `get_many_array`). The
//! loops are the functions named `measure_*`.
//!
//! Two more variants read a dashmap instead, with the same hasher and keys, for a
//! cache simulator's comparison (`hit` and `miss` only): `dashmap` (`u64` values, the
//! peer's own 16-byte entries) and `dashmap-versioned` (a `(value, version)` pair, the
//! 24 bytes a versioned record needs at least).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use dashmap::DashMap;
use verkv::{AsyncVersionedStore, Context, DefaultHashBuilder, Store, Transaction};

/// The key read or written by the `call`-th call: a stride through all keys, so that
/// consecutive calls land on different shards and cache lines.
fn key_of(call: u64, keys: u64) -> u64 {
    call.wrapping_mul(0x9E37_79B9) % keys
}

#[inline(never)]
fn measure_get_hits(store: &Store<u64, u64>, keys: u64, calls: u64) -> u64 {
    let mut sum = 0;
    for call in 0..calls {
        let found = store.get(black_box(&key_of(call, keys)));
        sum += found.map_or(0, |record| record.value);
    }
    sum
}

#[inline(never)]
fn measure_get_misses(store: &Store<u64, u64>, keys: u64, calls: u64) -> u64 {
    let mut sum = 0;
    for call in 0..calls {
        let found = store.get(black_box(&(keys + key_of(call, keys))));
        sum += found.map_or(1, |record| record.value);
    }
    sum
}

#[inline(never)]
fn measure_updates(store: &Store<u64, u64>, versions: &mut [u64], calls: u64) -> u64 {
    let keys = versions.len() as u64;
    for call in 0..calls {
        let key = key_of(call, keys);
        let slot = &mut versions[key as usize];
        *slot = store
            .update(black_box(&key), slot, call)
            .expect("the probe alone writes, at the version it last saw");
    }
    versions.iter().sum()
}

#[inline(never)]
fn measure_retries(store: &Store<u64, u64>, keys: u64, calls: u64) -> u64 {
    let mut attempts = 0;
    for call in 0..calls {
        let key = key_of(call, keys);
        let done = store
            .retry_update(black_box(&key), |value| value + 1)
            .expect("every key has a record");
        attempts += u64::from(done.attempts);
    }
    attempts
}

#[inline(never)]
fn measure_async_updates(store: &Store<u64, u64>, versions: &mut [u64], calls: u64) -> u64 {
    let keys = versions.len() as u64;
    let ctx = Context::background();
    let mut task = TaskContext::from_waker(Waker::noop());
    for call in 0..calls {
        let key = key_of(call, keys);
        let slot = &mut versions[key as usize];
        let expected = *slot;
        let update = pin!(AsyncVersionedStore::update(
            store,
            &ctx,
            black_box(&key),
            &expected,
            call
        ));
        *slot = match update.poll(&mut task) {
            Poll::Ready(written) => written.expect("the probe alone writes"),
            Poll::Pending => unreachable!("nothing else holds the lock"),
        };
    }
    versions.iter().sum()
}

#[inline(never)]
fn measure_stale_updates(store: &Store<u64, u64>, keys: u64, calls: u64) -> u64 {
    let mut refused = 0;
    for call in 0..calls {
        let key = key_of(call, keys);
        // Every record is past version 0: each call is refused as stale.
        refused += u64::from(store.update(black_box(&key), &0, call).is_err());
    }
    refused
}

/// Two keys for the `call`-th transaction or multi-key read: on two shards, or on one
/// if `together` (searched from the stride's key, as the store places them).
fn pair_of(store: &Store<u64, u64>, call: u64, keys: u64, together: bool) -> (u64, u64) {
    let first = key_of(call, keys);
    let shard = store.shard_of(&first);
    let mut second = first;
    loop {
        second = (second + 1) % keys;
        if (store.shard_of(&second) == shard) == together || second == first {
            return (first, second);
        }
    }
}

/// The pairs of `calls` calls, chosen before the measured loop.
fn pairs(store: &Store<u64, u64>, keys: u64, calls: u64, together: bool) -> Vec<(u64, u64)> {
    (0..calls.min(keys))
        .map(|call| pair_of(store, call, keys, together))
        .collect()
}

#[inline(never)]
fn measure_transactions(
    store: &Store<u64, u64>,
    versions: &mut [u64],
    pairs: &[(u64, u64)],
    calls: u64,
) -> u64 {
    for call in 0..calls {
        let (a, b) = pairs[(call % pairs.len() as u64) as usize];
        let (va, vb) = (versions[a as usize], versions[b as usize]);
        let done = store
            .commit(black_box(
                Transaction::new().update(a, va, call).update(b, vb, call),
            ))
            .expect("the probe alone writes, at the versions it last saw");
        versions[a as usize] = *done[0].version().expect("a write");
        versions[b as usize] = *done[1].version().expect("a write");
    }
    versions.iter().sum()
}

#[inline(never)]
fn measure_get_many_array(store: &Store<u64, u64>, pairs: &[(u64, u64)], calls: u64) -> u64 {
    let mut sum = 0;
    for call in 0..calls {
        let (a, b) = pairs[(call % pairs.len() as u64) as usize];
        let found = store.get_many_array(black_box([&a, &b]));
        sum += found
            .iter()
            .flatten()
            .map(|record| record.value)
            .sum::<u64>();
    }
    sum
}

#[inline(never)]
fn measure_get_many(store: &Store<u64, u64>, pairs: &[(u64, u64)], calls: u64) -> u64 {
    let mut sum = 0;
    for call in 0..calls {
        let (a, b) = pairs[(call % pairs.len() as u64) as usize];
        let found = store.get_many(black_box(&[&a, &b]));
        sum += found
            .iter()
            .flatten()
            .map(|record| record.value)
            .sum::<u64>();
    }
    sum
}

/// What the dashmap variants store per key: the peer's entry, or one with a version.
trait Entry: Clone {
    fn new(key: u64) -> Self;
    fn value(&self) -> u64;
}

impl Entry for u64 {
    fn new(key: u64) -> Self {
        key
    }
    fn value(&self) -> u64 {
        *self
    }
}

/// A value with its version beside it, as a hand-versioned dashmap keeps it.
impl Entry for (u64, u64) {
    fn new(key: u64) -> Self {
        (key, 1)
    }
    fn value(&self) -> u64 {
        self.0
    }
}

#[inline(never)]
fn measure_dashmap_gets<E: Entry>(
    map: &DashMap<u64, E, DefaultHashBuilder>,
    first: u64,
    keys: u64,
    calls: u64,
) -> u64 {
    let mut sum = 0;
    for call in 0..calls {
        let found = map.get(black_box(&(first + key_of(call, keys))));
        sum += found.map_or(1, |entry| entry.value().value());
    }
    sum
}

/// Fills a dashmap with `keys` entries and runs `operation` on it.
fn run_dashmap<E: Entry>(keys: u64, operation: &str, calls: u64) -> Option<u64> {
    let map = DashMap::with_hasher(DefaultHashBuilder::default());
    for key in 0..keys {
        map.insert(key, E::new(key));
    }
    match operation {
        "hit" => Some(measure_dashmap_gets(&map, 0, keys, calls)),
        "miss" => Some(measure_dashmap_gets(&map, keys, keys, calls)),
        _ => None,
    }
}

fn build(variant: &str, keys: u64) -> Option<Store<u64, u64>> {
    let builder = Store::builder();
    Some(match variant {
        "plain" => builder.build(),
        "stats" => builder.statistics(true).build(),
        "bounded" => builder.max_capacity(keys.saturating_mul(2)).build(),
        "ttl" => builder.time_to_live(Duration::from_secs(3600)).build(),
        _ => return None,
    })
}

/// Fills a store of `variant` with `keys` records and runs `operation` on it.
fn run_store(variant: &str, keys: u64, operation: &str, calls: u64) -> Option<u64> {
    let store = build(variant, keys)?;
    let mut versions: Vec<u64> = (0..keys)
        .map(|key| store.insert(key, key).expect("each key is inserted once"))
        .collect();
    match operation {
        "hit" => Some(measure_get_hits(&store, keys, calls)),
        "miss" => Some(measure_get_misses(&store, keys, calls)),
        "update" => Some(measure_updates(&store, &mut versions, calls)),
        "stale" => Some(measure_stale_updates(&store, keys, calls)),
        "retry" => Some(measure_retries(&store, keys, calls)),
        "async-update" => Some(measure_async_updates(&store, &mut versions, calls)),
        "txn2" | "txn2-same" => {
            let pairs = pairs(&store, keys, calls, operation == "txn2-same");
            Some(measure_transactions(&store, &mut versions, &pairs, calls))
        }
        "get-many2" => {
            let pairs = pairs(&store, keys, calls, false);
            Some(measure_get_many(&store, &pairs, calls))
        }
        "get-many2-array" => {
            let pairs = pairs(&store, keys, calls, false);
            Some(measure_get_many_array(&store, &pairs, calls))
        }
        _ => None,
    }
}

const USAGE: &str = "usage: read_cost plain|stats|bounded|ttl|dashmap|dashmap-versioned KEYS hit|miss|update|stale|retry|async-update|txn2|txn2-same|get-many2|get-many2-array CALLS (dashmap variants: hit|miss)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sum = match args.as_slice() {
        [variant, keys, operation, calls] => keys
            .parse::<u64>()
            .ok()
            .filter(|&keys| keys > 0)
            .zip(calls.parse::<u64>().ok())
            .and_then(|(keys, calls)| match variant.as_str() {
                "dashmap" => run_dashmap::<u64>(keys, operation, calls),
                "dashmap-versioned" => run_dashmap::<(u64, u64)>(keys, operation, calls),
                _ => run_store(variant, keys, operation, calls),
            }),
        _ => None,
    };
    let Some(sum) = sum else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let calls = &args[3];
    println!("{calls} calls, checksum {sum}");
    ExitCode::SUCCESS
}
