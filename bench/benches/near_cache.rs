//! The near-cache in front of PostgreSQL: what a hit costs against a read from the
//! database, how long a change takes to reach another near-cache, and the hit ratio two
//! instances writing under a Zipfian workload keep.
//!
//! - **Hit latency**: rounds alternate a batch of reads served from memory and a batch of
//!   reads of the same keys from the database (`NearCache::database`); the report gives
//!   the median (and range) over rounds of the time per read, and the ratio.
//! - **Invalidation delay**: one near-cache updates a key another holds in memory; the
//!   time from the update's answer (the commit acknowledged) to the other having handled
//!   the notification (its copy dropped), median and 99th percentile; also from the
//!   update's start.
//! - **Hit ratio**: two near-caches, one thread each, reading Zipfian keys (θ = 0.99) and
//!   updating one in ten of the keys they read; the share of reads served from memory.
//!
//! Needs a server:
//! `bash .ci/test cargo bench -p verkv-bench --features postgres --bench near_cache`
//! (starts a throwaway cluster), or set `VERKV_POSTGRES_URL`. With `-- --test`, a few
//! short rounds.

// The distributions only; the other items serve other benchmarks.
#[allow(dead_code)]
#[path = "common/keys.rs"]
mod keys;

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use keys::{stream, Dist, Rng};
use verkv::near::NearCache;
use verkv::postgres::PgStore;
use verkv::{Context, VersionedStore};

/// Keys read in the latency rounds.
const HIT_KEYS: usize = 1000;
/// Keys of the Zipfian workload.
const ZIPF_KEYS: usize = 10_000;
/// One read in this many is followed by an update of its key.
const WRITE_EVERY: u64 = 10;

struct Plan {
    rounds: usize,
    hits_per_round: usize,
    db_reads_per_round: usize,
    delay_samples: usize,
    zipf_ops: usize,
}

fn open(url: &str, table: &str) -> NearCache<String, u64> {
    let db = PgStore::builder(url)
        .table(table)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the store: {cause}"));
    NearCache::builder(db)
        .max_capacity(ZIPF_KEYS as u64 * 2)
        .build()
        .unwrap_or_else(|cause| panic!("cannot open the near-cache: {cause}"))
}

/// The median and the range of `samples` (sorted in place).
fn summary(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

fn hit_latency(cache: &NearCache<String, u64>, plan: &Plan) {
    let ctx = Context::background();
    let keys: Vec<String> = (0..HIT_KEYS).map(|i| format!("h{i}")).collect();
    for key in &keys {
        cache.put(&ctx, key.clone(), 0).unwrap();
    }
    // Once the writes' own notifications are in, every key is read once into memory.
    let settled = Instant::now() + Duration::from_secs(5);
    while cache.stats().invalidations < HIT_KEYS as u64 {
        assert!(Instant::now() < settled, "the writes were never heard");
        thread::sleep(Duration::from_millis(1));
    }
    for key in &keys {
        cache.get(&ctx, key).unwrap();
    }
    let (mut hits, mut reads, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        let before = cache.stats().hits;
        let started = Instant::now();
        for i in 0..plan.hits_per_round {
            black_box(cache.get(&ctx, &keys[i % HIT_KEYS]).unwrap());
        }
        let hit = started.elapsed().as_secs_f64() / plan.hits_per_round as f64;
        assert_eq!(
            cache.stats().hits - before,
            plan.hits_per_round as u64,
            "every read of the hit batch must be a hit"
        );
        let started = Instant::now();
        for i in 0..plan.db_reads_per_round {
            black_box(cache.database().get(&ctx, &keys[i % HIT_KEYS]).unwrap());
        }
        let read = started.elapsed().as_secs_f64() / plan.db_reads_per_round as f64;
        hits.push(hit * 1e9);
        reads.push(read * 1e6);
        ratios.push(read / hit);
    }
    let (hit, hit_lo, hit_hi) = summary(&mut hits);
    let (read, read_lo, read_hi) = summary(&mut reads);
    let (ratio, ratio_lo, ratio_hi) = summary(&mut ratios);
    println!("hit latency ({} rounds)", plan.rounds);
    println!("  hit from memory        {hit:>9.0} ns   ({hit_lo:.0} – {hit_hi:.0})");
    println!("  read from PostgreSQL   {read:>9.1} µs   ({read_lo:.1} – {read_hi:.1})");
    println!("  database / hit         {ratio:>9.0} ×   ({ratio_lo:.0} – {ratio_hi:.0})");
}

/// The `p`th percentile of sorted `samples`.
fn percentile(samples: &[f64], p: f64) -> f64 {
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn invalidation_delay(
    writer: &NearCache<String, u64>,
    reader: &NearCache<String, u64>,
    plan: &Plan,
) {
    let ctx = Context::background();
    let key = "watched".to_string();
    let mut version = writer.put(&ctx, key.clone(), 0).unwrap();
    let (mut from_ack, mut from_start) = (Vec::new(), Vec::new());
    for value in 1..=plan.delay_samples as u64 {
        // Every change of the table so far is notified to the reader once: the latency
        // round's keys, this key's creation and its `value - 1` updates.
        let heard = HIT_KEYS as u64 + value;
        // Let the previous change reach the reader, then have it hold the key in memory.
        let settled = Instant::now() + Duration::from_secs(5);
        while reader.stats().invalidations < heard
            || reader.get(&ctx, &key).unwrap().map(|r| r.version) != Some(version)
        {
            assert!(
                Instant::now() < settled,
                "the reader never saw version {version}"
            );
            thread::sleep(Duration::from_micros(100));
        }
        let started = Instant::now();
        version = writer.update(&ctx, &key, &version, value).unwrap();
        let acknowledged = Instant::now();
        let give_up = acknowledged + Duration::from_secs(5);
        while reader.stats().invalidations == heard {
            assert!(Instant::now() < give_up, "the change was never heard");
            std::hint::spin_loop();
        }
        let handled = Instant::now();
        from_ack.push((handled - acknowledged).as_secs_f64() * 1e6);
        from_start.push((handled - started).as_secs_f64() * 1e6);
    }
    from_ack.sort_by(f64::total_cmp);
    from_start.sort_by(f64::total_cmp);
    println!("invalidation delay ({} changes)", plan.delay_samples);
    for (name, samples) in [
        ("from the commit's answer", &from_ack),
        ("from the update's start", &from_start),
    ] {
        println!(
            "  {name:<26} median {:>7.1} µs   p99 {:>7.1} µs   max {:>7.1} µs",
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            samples[samples.len() - 1]
        );
    }
}

fn zipf_hit_ratio(one: &NearCache<String, u64>, two: &NearCache<String, u64>, plan: &Plan) {
    let ctx = Context::background();
    let keys: Vec<String> = (0..ZIPF_KEYS).map(|i| format!("z{i}")).collect();
    for key in &keys {
        one.database().put(&ctx, key.clone(), 0).unwrap();
    }
    // Start once every change so far is heard (the loading's would invalidate copies):
    // the latency round's keys, the watched key's changes, and these keys.
    let changes = (HIT_KEYS + 1 + plan.delay_samples + ZIPF_KEYS) as u64;
    let settled = Instant::now() + Duration::from_secs(30);
    while one.stats().invalidations < changes || two.stats().invalidations < changes {
        assert!(Instant::now() < settled, "the loading was never heard");
        thread::sleep(Duration::from_millis(1));
    }
    let before = [one.stats(), two.stats()];
    let started = Instant::now();
    let writes: Vec<u64> = thread::scope(|scope| {
        let workers: Vec<_> = [one, two]
            .into_iter()
            .enumerate()
            .map(|(lane, cache)| {
                let keys = &keys;
                scope.spawn(move || {
                    let ctx = Context::background();
                    let picks = stream(Dist::Zipf, ZIPF_KEYS, 7 + lane as u64);
                    let mut rng = Rng::new(99 + lane as u64);
                    let mut writes = 0;
                    for index in picks.iter().cycle().take(plan.zipf_ops) {
                        let key = &keys[*index as usize];
                        let read = cache.get(&ctx, key).unwrap().unwrap();
                        if rng.below(WRITE_EVERY) == 0 {
                            // Refused as stale when the other wrote first: that counts too.
                            let _ = cache.update(&ctx, key, &read.version, read.value + 1);
                            writes += 1;
                        }
                    }
                    writes
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    println!(
        "hit ratio, Zipfian θ = 0.99 over {ZIPF_KEYS} keys, two instances, one read in {WRITE_EVERY} followed by an update ({} reads each, {elapsed:.1?})",
        plan.zipf_ops
    );
    for (lane, (cache, before)) in [one, two].into_iter().zip(before).enumerate() {
        let picks = stream(Dist::Zipf, ZIPF_KEYS, 7 + lane as u64);
        let mut touched: Vec<u32> = picks.iter().cycle().take(plan.zipf_ops).copied().collect();
        touched.sort_unstable();
        touched.dedup();
        let ceiling = 100.0 * (1.0 - touched.len() as f64 / plan.zipf_ops as f64);
        let after = cache.stats();
        let hits = after.hits - before.hits;
        let reads = hits + (after.misses - before.misses) + (after.bypassed - before.bypassed);
        println!(
            "  instance {}: {:.1} % of {reads} reads from memory (first reads of each key \
             leave at most {ceiling:.1} %), {} updates sent, {} invalidations heard",
            lane + 1,
            100.0 * hits as f64 / reads as f64,
            writes[lane],
            after.invalidations - before.invalidations
        );
    }
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--test");
    let plan = if quick {
        Plan {
            rounds: 3,
            hits_per_round: 20_000,
            db_reads_per_round: 200,
            delay_samples: 30,
            zipf_ops: 2_000,
        }
    } else {
        Plan {
            rounds: 15,
            hits_per_round: 1_000_000,
            db_reads_per_round: 2_000,
            delay_samples: 1_000,
            zipf_ops: 50_000,
        }
    };
    let url = std::env::var("VERKV_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "no PostgreSQL server: VERKV_POSTGRES_URL is not set. Run \
             `bash .ci/test cargo bench -p verkv-bench --features postgres --bench near_cache`"
        )
    });
    let table = format!("bench_near_{}", std::process::id());
    let (one, two) = (open(&url, &table), open(&url, &table));
    hit_latency(&one, &plan);
    invalidation_delay(&one, &two, &plan);
    zipf_hit_ratio(&one, &two, &plan);
}
