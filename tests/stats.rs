//! Statistics: every counter pinned for scripted operations, counts that add up under
//! concurrency, and the hot-key summary's top key and error bounds.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use verkv::{
    AsyncVersionedStore, CancelToken, Context, Error, Interrupted, ManualClock, Phase, Stats, Store,
};

fn stats<K: Eq, V>(store: &Store<K, V>) -> Stats {
    store.stats().expect("statistics are on")
}

/// The part of a snapshot a scripted sequence pins: everything but times.
fn counts(stats: &Stats) -> [u64; 23] {
    [
        stats.hits,
        stats.misses,
        stats.loads.succeeded,
        stats.loads.failed,
        stats.inserts,
        stats.updates,
        stats.puts,
        stats.removes,
        stats.refusals.stale,
        stats.refusals.not_found,
        stats.refusals.exists,
        stats.refusals.declined,
        stats.refusals.too_heavy,
        stats.timeouts.queued,
        stats.timeouts.retrying,
        stats.timeouts.watching,
        stats.timeouts.loading,
        stats.cancellations,
        stats.evictions.capacity,
        stats.evictions.expired,
        stats.entries,
        stats.weight,
        stats.lock_waits.count,
    ]
}

#[test]
fn statistics_are_off_unless_asked_for() {
    let store: Store<u32, u32> = Store::new();
    store.get(&1);
    assert_eq!(store.stats(), None);
    assert!(store.stats_top_conflicts().is_empty());
    let off: Store<u32, u32> = Store::builder().hot_keys(3).statistics(false).build();
    assert_eq!(off.stats(), None);
}

#[test]
fn a_scripted_sequence_counts_exactly_what_it_did() {
    let store: Store<&str, u32> = Store::builder().statistics(true).build();
    let v1 = store.insert("a", 1).unwrap();
    store.insert("a", 2).unwrap_err(); // exists
    store.get(&"a"); // hit
    store.get(&"z"); // miss
    store.version(&"a"); // hit
    store.contains_key(&"z"); // miss
    let v2 = store.update(&"a", &v1, 3).unwrap();
    store.update(&"a", &v1, 4).unwrap_err(); // stale
    store.update(&"z", &v1, 4).unwrap_err(); // not found
    let v3 = store.update_with(&"a", &v2, |n| n + 1).unwrap();
    store
        .try_update_with(&"a", &v3, |_| Err::<u32, _>("no"))
        .unwrap_err(); // declined
    store.put("b", 1).unwrap();
    store.remove(&"b", &1).unwrap();
    store.remove(&"b", &1).unwrap_err(); // not found
    store.get_or_load("c", || 7); // miss, load
    store.get_or_load("c", || unreachable!()); // hit
    store
        .try_get_or_load("d", || Err::<u32, _>("down"))
        .unwrap_err(); // miss, failed load
    let cancelled = CancelToken::new();
    cancelled.cancel();
    store
        .bounded()
        .with_cancel(&cancelled)
        .put("e", 1)
        .unwrap_err();
    store
        .bounded()
        .with_cancel(&cancelled)
        .get(&"a")
        .unwrap_err();

    let s = stats(&store);
    #[rustfmt::skip]
    let expected = [
        3, 4, // hits, misses
        1, 1, // loads succeeded, failed
        1, 2, 1, 1, // inserts, updates, puts, removes
        1, 2, 1, 1, 0, // stale, not found, exists, declined, too heavy
        0, 0, 0, 0, 2, // timeouts queued, retrying, watching, loading; cancellations
        0, 0, // evictions for capacity, expired
        2, 2, // entries (a, c), weight
        0, // lock waits
    ];
    assert_eq!(counts(&s), expected, "{s:#?}");
    assert_eq!(s.hit_ratio(), Some(3.0 / 7.0));
    assert_eq!(s.conflicts_per_shard.iter().sum::<u64>(), 1);
    assert!(s.loads.total_time >= s.loads.max_time);

    // A delta counts only what came after.
    store.get(&"a");
    let delta = stats(&store).since(&s);
    let mut only_a_hit = [0; 23];
    only_a_hit[0] = 1;
    only_a_hit[20] = 2; // entries and weight are the current ones
    only_a_hit[21] = 2;
    assert_eq!(counts(&delta), only_a_hit);
    assert!(s.to_string().contains("reads: 3 hits, 4 misses"), "{s}");
}

#[test]
fn a_bounded_store_counts_evictions_and_records_too_heavy_to_hold() {
    let store: Store<u32, u32> = Store::builder()
        .shards(1)
        .max_capacity(4)
        .weigher(|_, value: &u32| *value)
        .statistics(true)
        .build();
    for key in 0..5 {
        store.put(key, 1).unwrap();
    }
    store.put(9, 5).unwrap_err(); // weighs more than the whole store
    let s = stats(&store);
    assert_eq!((s.puts, s.refusals.too_heavy), (5, 1));
    assert_eq!((s.evictions.capacity, s.evictions.expired), (1, 0));
    assert_eq!(s.evictions.total(), 1);
    assert_eq!((s.entries, s.weight), (4, 4));
}

#[test]
fn expirations_are_counted_where_records_are_reclaimed_and_refusals_as_not_found() {
    let clock = ManualClock::new();
    let store: Store<u32, u32> = Store::builder()
        .shards(1)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .statistics(true)
        .build();
    let v1 = store.insert(1, 1).unwrap();
    store.insert(2, 2).unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.get(&1), None); // a read hides it, a write reclaims it
    assert_eq!(stats(&store).evictions.expired, 0);
    assert_eq!(store.update(&1, &v1, 5).unwrap_err().error, Error::Expired);
    let s = stats(&store);
    assert_eq!((s.misses, s.refusals.not_found), (1, 1));
    assert_eq!((s.evictions.expired, s.evictions.capacity), (1, 0));
    // The insert's sweep reclaims record 2, expired too.
    store.insert(1, 3).unwrap();
    assert_eq!(stats(&store).evictions.expired, 2);
    store.invalidate_all(); // cleared, not evicted
    let s = stats(&store);
    assert_eq!((s.inserts, s.evictions.total(), s.entries), (3, 2, 0));
}

/// Holds the shard lock of `key` (inside an `update_with` closure on another thread)
/// until the returned sender is used or dropped.
fn hold_lock(
    store: &Arc<Store<&'static str, u32>>,
    key: &'static str,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (held, is_held) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let store = Arc::clone(store);
    let holder = thread::spawn(move || {
        let version = store.version(&key).unwrap();
        store
            .update_with(&key, &version, |n| {
                held.send(()).unwrap();
                let _ = released.recv();
                n + 1
            })
            .unwrap();
    });
    is_held.recv().unwrap();
    (release, holder)
}

#[test]
fn timeouts_are_counted_by_phase() {
    let store: Arc<Store<&str, u32>> = Arc::new(Store::builder().statistics(true).build());
    store.insert("k", 0).unwrap();
    let short = Duration::from_millis(5);

    // Queued: another writer holds the lock throughout.
    let (release, holder) = hold_lock(&store, "k");
    let queued = store.within(short).put("k", 9).unwrap_err();
    assert!(matches!(queued.error, Error::TimedOut(t) if t.phase() == Phase::Queued));
    drop(release);
    holder.join().unwrap();
    assert_eq!(stats(&store).timeouts.queued, 1);

    // Retrying: each attempt is made stale by a write from its own computation.
    let retrying = store
        .within(Duration::from_millis(1))
        .retry_update(&"k", |n| {
            store.put("k", 0).unwrap();
            thread::sleep(Duration::from_millis(2));
            n + 1
        });
    assert!(
        matches!(retrying, Err(Error::TimedOut(t)) if matches!(t.phase(), Phase::Retrying { .. }))
    );

    // Watching: nothing changes the record.
    let version = store.version(&"k").unwrap();
    let watching = store.within(short).wait_for_change(&"k", Some(&version));
    assert!(matches!(watching, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Watching));

    // Loading: another caller's load does not finish in time.
    let (started, is_started) = mpsc::channel();
    let (finish, finished) = mpsc::channel::<()>();
    let leader = {
        let store = Arc::clone(&store);
        thread::spawn(move || {
            store.get_or_load("slow", || {
                started.send(()).unwrap();
                let _ = finished.recv();
                1
            });
        })
    };
    is_started.recv().unwrap();
    let loading = store.within(short).get_or_load("slow", || 2);
    assert!(matches!(loading, Err(Interrupted::TimedOut(t)) if t.phase() == Phase::Loading));
    drop(finish);
    leader.join().unwrap();

    let s = stats(&store);
    let t = &s.timeouts;
    assert_eq!(
        (t.queued, t.retrying, t.watching, t.loading),
        (1, 1, 1, 1),
        "{s:#?}"
    );
    assert_eq!((s.refusals.stale, s.loads.succeeded), (1, 1));
}

#[test]
fn an_async_retry_loop_that_runs_out_of_time_is_counted_as_the_blocking_one_is() {
    let store: Store<String, u32> = Store::builder().statistics(true).build();
    let key = "k".to_string();
    store.insert(key.clone(), 0).unwrap();
    let ctx = Context::within(Duration::from_millis(1));
    // Each attempt is made stale by a write from its own computation.
    let retrying = futures_lite::future::block_on(AsyncVersionedStore::retry_update(
        &store,
        &ctx,
        &key,
        |n| {
            store.put(key.clone(), 0).unwrap();
            thread::sleep(Duration::from_millis(2));
            n + 1
        },
    ));
    assert!(
        matches!(retrying, Err(Error::TimedOut(t)) if matches!(t.phase(), Phase::Retrying { .. })),
        "{retrying:?}"
    );
    let s = stats(&store);
    assert_eq!(s.timeouts.retrying, 1, "{s:#?}");
}

#[test]
fn a_writer_that_queues_is_timed_and_a_free_lock_is_not() {
    let store: Arc<Store<&str, u32>> = Arc::new(Store::builder().statistics(true).build());
    store.insert("k", 0).unwrap();
    store.put("k", 1).unwrap();
    assert_eq!(stats(&store).lock_waits.count, 0);
    let (release, holder) = hold_lock(&store, "k");
    let writer = {
        let store = Arc::clone(&store);
        thread::spawn(move || store.put("k", 2).unwrap())
    };
    // The writer queues until the holder lets go; give it time to get in line.
    thread::sleep(Duration::from_millis(50));
    drop(release);
    holder.join().unwrap();
    writer.join().unwrap();
    let waits = stats(&store).lock_waits;
    assert_eq!(waits.count, 1, "{waits:?}");
    assert_eq!(waits.buckets.iter().sum::<u64>(), 1);
    assert_eq!(waits.total, waits.max);
    assert!(waits.max >= Duration::from_millis(1), "{waits:?}");
}

/// What one thread did, counted by the thread itself.
#[derive(Default)]
struct Made {
    hits: u64,
    misses: u64,
    inserts: u64,
    updates: u64,
    removes: u64,
    stale: u64,
    not_found: u64,
    exists: u64,
}

fn run_mixed(store: &Store<u64, u64>, seed: u64, ops: u64) -> Made {
    let mut made = Made::default();
    let mut state = seed | 1;
    for _ in 0..ops {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = state % 16;
        match (state >> 8) % 4 {
            0 => match store.insert(key, 0) {
                Ok(_) => made.inserts += 1,
                Err(_) => made.exists += 1,
            },
            1 | 2 => match store.get(&key) {
                Some(read) => {
                    made.hits += 1;
                    match store.update(&key, &read.version, read.value + 1) {
                        Ok(_) => made.updates += 1,
                        Err(refused) if matches!(refused.error, Error::Stale { .. }) => {
                            made.stale += 1
                        }
                        Err(_) => made.not_found += 1,
                    }
                }
                None => made.misses += 1,
            },
            _ => match store.get(&key) {
                Some(read) => {
                    made.hits += 1;
                    match store.remove(&key, &read.version) {
                        Ok(_) => made.removes += 1,
                        Err(Error::Stale { .. }) => made.stale += 1,
                        Err(_) => made.not_found += 1,
                    }
                }
                None => made.misses += 1,
            },
        }
    }
    made
}

#[test]
fn counters_add_up_to_the_operations_threads_made() {
    let store: Store<u64, u64> = Store::builder().shards(4).hot_keys(4).build();
    let threads = 6;
    let made: Vec<Made> = thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|thread| {
                let store = &store;
                s.spawn(move || run_mixed(store, 0x9E37_79B9 * (thread + 1), 20_000))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let sum = |field: fn(&Made) -> u64| made.iter().map(field).sum::<u64>();
    let s = stats(&store);
    assert_eq!(s.hits, sum(|m| m.hits));
    assert_eq!(s.misses, sum(|m| m.misses));
    assert_eq!(s.inserts, sum(|m| m.inserts));
    assert_eq!(s.updates, sum(|m| m.updates));
    assert_eq!(s.removes, sum(|m| m.removes));
    assert_eq!(s.refusals.stale, sum(|m| m.stale));
    assert_eq!(s.refusals.not_found, sum(|m| m.not_found));
    assert_eq!(s.refusals.exists, sum(|m| m.exists));
    assert_eq!(s.conflicts_per_shard.iter().sum::<u64>(), s.refusals.stale);
    assert_eq!(s.entries, s.inserts - s.removes);
    assert_eq!(s.lock_waits.buckets.iter().sum::<u64>(), s.lock_waits.count);
    let hottest = store.stats_top_conflicts();
    assert!(hottest.iter().map(|hot| hot.lower_bound()).sum::<u64>() <= s.refusals.stale);
}

#[test]
fn reads_from_more_threads_than_stripes_all_count() {
    let store: Store<u64, u64> = Store::builder().statistics(true).build();
    store.insert(1, 1).unwrap();
    let threads = 100;
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for key in 0..1_000 {
                    store.get(&(key % 2));
                }
            });
        }
    });
    let s = stats(&store);
    assert_eq!((s.hits, s.misses), (threads * 500, threads * 500));
}

/// Draws from a Zipf distribution over `1..=n` (exponent 1) by inverting its
/// cumulative distribution.
struct Zipf {
    cumulative: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, seed: u64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Zipf {
            cumulative,
            state: seed,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> u64 {
        let target = self.uniform() * self.cumulative.last().unwrap();
        self.cumulative.partition_point(|&c| c < target) as u64 + 1
    }
}

#[test]
fn the_hot_key_summary_finds_a_planted_key_among_zipf_noise_within_its_bounds() {
    const PLANTED: u64 = 777_777;
    let store: Store<u64, u64> = Store::builder().shards(4).hot_keys(10).build();
    let mut zipf = Zipf::new(10_000, 0x2545_F491_4F6C_DD1D);
    let mut truth: HashMap<u64, u64> = HashMap::new();
    for event in 0..100_000u64 {
        let key = if event % 7 == 0 {
            PLANTED // a seventh of the conflicts, about 14%
        } else {
            zipf.next()
        };
        // Version 0 is never current: every write to an existing key is stale.
        store.put(key, 0).unwrap();
        assert!(store.update(&key, &0, 1).is_err());
        *truth.entry(key).or_default() += 1;
    }
    let hottest = store.stats_top_conflicts();
    assert_eq!(hottest.len(), 10);
    assert_eq!(hottest[0].key, PLANTED, "{hottest:?}");
    for hot in &hottest {
        let true_count = truth[&hot.key];
        assert!(
            hot.lower_bound() <= true_count && true_count <= hot.count,
            "{hot:?}: true count {true_count}"
        );
    }
    assert!(hottest
        .windows(2)
        .all(|pair| pair[0].count >= pair[1].count));
    assert_eq!(stats(&store).refusals.stale, 100_000);
}

#[test]
fn a_panicking_loader_counts_as_an_abandoned_load() {
    let store: Store<u32, u32> = Store::builder().statistics(true).build();
    let panicked =
        std::panic::catch_unwind(|| store.get_or_load(1, || panic!("the source is down")));
    assert!(panicked.is_err());
    assert_eq!(store.get_or_load(1, || 7).value, 7);
    let loads = stats(&store).loads;
    assert_eq!(
        (loads.succeeded, loads.failed, loads.abandoned),
        (1, 0, 1),
        "{loads:?}"
    );
    assert!(stats(&store)
        .to_string()
        .contains("1 succeeded, 0 failed, 1 abandoned"));
}

#[test]
fn a_dropped_load_future_counts_as_an_abandoned_load() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    let store: Store<u32, u32> = Store::builder().statistics(true).build();
    {
        // Polled once: the loader waits for ever, and the future is then dropped.
        let mut load = pin!(store.get_or_load_async(1, std::future::pending()));
        let polled = load.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(polled, Poll::Pending));
    }
    assert_eq!(stats(&store).loads.abandoned, 1);
    assert_eq!(store.get(&1), None, "nothing was written");
}

#[test]
fn a_load_too_heavy_for_the_bound_is_counted_as_put_counts_it() {
    let store: Store<u32, u32> = Store::builder().statistics(true).max_capacity(0).build();
    let first = store.get_or_load(1, || 10);
    assert_eq!(first.value, 10);
    // Not stored: the version was retired at once, and the next call loads again.
    assert_eq!(
        store.update(&1, &first.version, 11).unwrap_err().error,
        Error::NotFound
    );
    let second = store.get_or_load(1, || 12);
    assert_eq!(second.value, 12);
    assert_ne!(
        second.version, first.version,
        "a version is never handed out twice"
    );
    let refused = store.put(1, 13).unwrap_err();
    assert!(matches!(refused.error, Error::TooHeavy { .. }));
    let stats = stats(&store);
    assert_eq!(stats.refusals.too_heavy, 3, "two loads and one put");
    assert_eq!((stats.loads.succeeded, stats.entries), (2, 0));
}

#[test]
fn a_blind_invalidation_counts_apart_from_conditional_removes() {
    let store: Store<u32, u32> = Store::builder().statistics(true).build();
    let v1 = store.insert(1, 10).unwrap();
    store.insert(2, 20).unwrap();
    assert_eq!(store.invalidate(&1).map(|read| read.version), Some(v1));
    assert_eq!(store.invalidate(&1), None, "nothing left: not counted");
    store.remove(&2, &1).unwrap();
    let stats = stats(&store);
    assert_eq!(
        (stats.invalidations, stats.removes, stats.entries),
        (1, 1, 0)
    );
    assert!(stats.to_string().contains("1 removes, 1 invalidations"));
}
