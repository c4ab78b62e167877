//! Runs one store operation in a loop inside a function of its own, so that an
//! instruction counter can count that loop alone and divide by the number of calls
//! (`BENCHMARKS.md`, "Instructions per operation").
//!
//! ```text
//! cargo run --release --example read_cost -- VARIANT KEYS OPERATION CALLS
//! ```
//!
//! `VARIANT` is `plain` (unbounded, no expiry, statistics off), `stats` (statistics
//! on), `bounded` (a capacity bound above `KEYS`) or `ttl` (a time to live of an hour);
//! `OPERATION` is `hit` (`get` of present keys), `miss` (`get` of absent keys) or
//! `update` (`update` at the current version). The loops are the functions named
//! `measure_*`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Duration;

use verkv::Store;

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [variant, keys, operation, calls] => keys
            .parse::<u64>()
            .ok()
            .filter(|&keys| keys > 0)
            .zip(calls.parse::<u64>().ok())
            .zip(build(variant, keys.parse().unwrap_or(1)))
            .map(|((keys, calls), store)| (store, keys, operation.as_str(), calls)),
        _ => None,
    };
    let Some((store, keys, operation, calls)) = parsed else {
        eprintln!("usage: read_cost plain|stats|bounded|ttl KEYS hit|miss|update CALLS");
        return ExitCode::FAILURE;
    };
    let mut versions: Vec<u64> = (0..keys)
        .map(|key| store.insert(key, key).expect("each key is inserted once"))
        .collect();
    let sum = match operation {
        "hit" => measure_get_hits(&store, keys, calls),
        "miss" => measure_get_misses(&store, keys, calls),
        "update" => measure_updates(&store, &mut versions, calls),
        _ => {
            eprintln!("unknown operation {operation}: hit, miss or update");
            return ExitCode::FAILURE;
        }
    };
    println!("{calls} calls, checksum {sum}");
    ExitCode::SUCCESS
}
