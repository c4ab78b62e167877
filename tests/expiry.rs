//! Expiry on a manual clock (the boundary, `Duration::MAX`, zero, time-to-idle, the
//! per-record policy, per-write time-to-live), the eviction listener's causes and its
//! once-per-record delivery (also under concurrency, and with a panicking listener),
//! `retain`, `invalidate_all`, and iteration skipping expired records.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use verkv::{Error, Expiry, ManualClock, RemovalCause, Store, StoreBuilder};

const NANO: Duration = Duration::from_nanos(1);
const MINUTE: Duration = Duration::from_secs(60);

/// A store expiring after `ttl` on a fresh manual clock.
fn expiring(ttl: Duration) -> (Store<u32, u32>, ManualClock) {
    let clock = ManualClock::new();
    let store = Store::builder()
        .time_to_live(ttl)
        .clock(clock.clone())
        .build();
    (store, clock)
}

/// What an eviction listener was told, in order.
type Heard = Arc<Mutex<Vec<(u32, u32, RemovalCause)>>>;

/// A builder whose listener writes down what it hears, and where.
fn listening() -> (StoreBuilder<u32, u32>, Heard) {
    let heard = Heard::default();
    let log = heard.clone();
    let builder = Store::builder()
        .eviction_listener(move |key, value, cause| log.lock().unwrap().push((key, value, cause)));
    (builder, heard)
}

#[test]
fn a_record_expires_exactly_at_its_time_to_live() {
    let (store, clock) = expiring(MINUTE);
    let version = store.insert(1, 10).unwrap();
    clock.advance(MINUTE - NANO);
    assert_eq!(store.get(&1).map(|r| r.value), Some(10));
    assert_eq!(store.version(&1), Some(version));
    assert!(store.contains_key(&1));
    assert_eq!(store.keys().collect::<Vec<_>>(), [1]);
    clock.advance(NANO);
    assert_eq!(store.get(&1), None);
    assert_eq!(store.version(&1), None);
    assert!(!store.contains_key(&1));
    assert_eq!(store.iter().count(), 0);
    assert_eq!(store.keys().count(), 0);
}

#[test]
fn a_write_restarts_the_time_to_live() {
    let (store, clock) = expiring(MINUTE);
    let v1 = store.insert(1, 10).unwrap();
    clock.advance(MINUTE / 2);
    store.update(&1, &v1, 11).unwrap();
    clock.advance(MINUTE - NANO);
    assert_eq!(store.get(&1).map(|r| r.value), Some(11));
    clock.advance(NANO);
    assert_eq!(store.get(&1), None);
}

#[test]
fn conditional_writes_on_an_expired_record_are_refused_and_its_versions_retired() {
    let (store, clock) = expiring(MINUTE);
    let v1 = store.insert(1, 10).unwrap();
    let v2 = store.update(&1, &v1, 11).unwrap();
    store.insert(2, 20).unwrap();
    clock.advance(MINUTE);
    // Still held: the store can tell it expired, and reclaims it.
    let refused = store.update(&1, &v2, 12).unwrap_err();
    assert_eq!((refused.error, refused.value), (Error::Expired, 12));
    // Reclaimed: now it is simply not there.
    assert_eq!(
        store.update(&1, &v2, 12).unwrap_err().error,
        Error::NotFound
    );
    assert_eq!(store.remove(&2, &1), Err(Error::Expired));
    assert_eq!(store.remove(&2, &1), Err(Error::NotFound));
    assert_eq!(
        store.update_with(&3, &1, |v| v + 1),
        Err(Error::NotFound),
        "a key never written is not expired"
    );
    // A new record of the key never takes an old version.
    let fresh = store.insert(1, 13).unwrap();
    assert!(fresh > v2, "version {fresh} after {v2} expired");
    assert_eq!(
        store.update(&1, &v2, 14).unwrap_err().error,
        Error::Stale {
            expected: v2,
            current: fresh
        }
    );
}

#[test]
fn create_only_and_blind_writes_treat_an_expired_record_as_absent() {
    let (store, clock) = expiring(MINUTE);
    store.insert(1, 10).unwrap();
    store.insert(2, 20).unwrap();
    clock.advance(MINUTE);
    assert!(store.insert(1, 11).is_ok());
    assert!(store.insert_or_current(2, 21).is_ok());
    assert_eq!(store.get(&2).map(|r| r.value), Some(21));
}

#[test]
fn duration_max_never_expires_and_zero_is_stored_expired() {
    let (store, clock) = expiring(Duration::MAX);
    store.insert(1, 10).unwrap();
    clock.advance(Duration::from_secs(1 << 40));
    assert_eq!(store.get(&1).map(|r| r.value), Some(10));

    // The write succeeds with a version; its own sweep may reclaim the record at once.
    let gone = |error: Error<u64>| matches!(error, Error::Expired | Error::NotFound);
    let (store, _clock) = expiring(Duration::ZERO);
    let version = store.insert(1, 10).unwrap();
    assert_eq!(store.get(&1), None);
    assert!(gone(store.update(&1, &version, 11).unwrap_err().error));

    let store: Store<u32, u32> = Store::new();
    store.expiring_after(Duration::MAX).put(1, 10).unwrap();
    let version = store.expiring_after(Duration::ZERO).put(2, 20).unwrap();
    assert_eq!(store.get(&1).map(|r| r.value), Some(10));
    assert_eq!(store.get(&2), None);
    assert!(gone(store.remove(&2, &version).unwrap_err()));
    assert!(store.insert(2, 21).unwrap() > version);
}

#[test]
fn the_clock_saturates_instead_of_overflowing() {
    let (store, clock) = expiring(MINUTE);
    store.insert(1, 10).unwrap();
    clock.advance(Duration::MAX);
    clock.advance(Duration::MAX);
    assert_eq!(store.get(&1), None);
    assert!(store.insert(1, 11).is_ok());
}

#[test]
fn time_to_idle_restarts_on_reads_not_on_presence_checks() {
    let clock = ManualClock::new();
    let store: Store<u32, u32> = Store::builder()
        .time_to_idle(MINUTE)
        .clock(clock.clone())
        .build();
    store.insert(1, 10).unwrap();
    store.insert(2, 20).unwrap();
    for _ in 0..5 {
        clock.advance(MINUTE - Duration::from_secs(1));
        assert!(store.get(&1).is_some());
    }
    // Key 2 was only checked for, never read: it idled out long ago.
    assert!(!store.contains_key(&2));
    clock.advance(MINUTE - Duration::from_secs(1));
    assert!(store.contains_key(&1));
    clock.advance(Duration::from_secs(1));
    assert!(!store.contains_key(&1));
}

#[test]
fn time_to_idle_does_not_outlive_the_time_to_live() {
    let clock = ManualClock::new();
    let store: Store<u32, u32> = Store::builder()
        .time_to_live(MINUTE)
        .time_to_idle(Duration::from_secs(20))
        .clock(clock.clone())
        .build();
    store.insert(1, 10).unwrap();
    for _ in 0..2 {
        clock.advance(Duration::from_secs(19));
        assert!(store.get(&1).is_some());
    }
    clock.advance(Duration::from_secs(19));
    assert!(store.get(&1).is_some()); // at 57 s
    clock.advance(Duration::from_secs(3));
    assert!(store.get(&1).is_none()); // at 60 s, read 3 s ago
}

/// Lives as many seconds as its value; a read gives it ten more; an update keeps what
/// it had left.
struct ValueSeconds;

impl Expiry<u32, u32> for ValueSeconds {
    fn expire_after_create(&self, _key: &u32, value: &u32) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(*value)))
    }

    fn expire_after_update(
        &self,
        _key: &u32,
        _value: &u32,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        remaining
    }

    fn expire_after_read(
        &self,
        _key: &u32,
        _value: &u32,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }
}

#[test]
fn the_policy_decides_on_create_update_and_read() {
    let clock = ManualClock::new();
    let store: Store<u32, u32> = Store::builder()
        .expiry(ValueSeconds)
        .clock(clock.clone())
        .build();
    let v1 = store.insert(1, 30).unwrap();
    store.insert(2, 5).unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(!store.contains_key(&2));
    store.update(&1, &v1, 1000).unwrap(); // keeps its 25 s left
    clock.advance(Duration::from_secs(24));
    assert!(store.get(&1).is_some()); // now 10 s from this read
    clock.advance(Duration::from_secs(9));
    assert!(store.contains_key(&1));
    clock.advance(Duration::from_secs(1));
    assert!(!store.contains_key(&1));
}

#[test]
fn a_per_write_time_to_live_beats_the_store_setting() {
    let (store, clock) = expiring(MINUTE);
    let short = store.expiring_after(Duration::from_secs(1));
    short.insert(1, 10).unwrap();
    short.insert_or_current(2, 20).unwrap();
    store.insert(3, 30).unwrap();
    let v4 = store.insert(4, 40).unwrap();
    short.update(&4, &v4, 41).unwrap();
    let v5 = store.insert(5, 50).unwrap();
    short.update_with(&5, &v5, |v| v + 1).unwrap();
    clock.advance(Duration::from_secs(1));
    let left: Vec<u32> = store.iter().map(|(key, _)| key).collect();
    assert_eq!(left, [3]);
    // Through a deadline-bounded view too, in either order.
    let bounded = store.within(MINUTE).expiring_after(Duration::from_secs(1));
    bounded.put(6, 60).unwrap();
    let loaded = bounded.get_or_load(7, || 70).unwrap();
    assert_eq!(loaded.value, 70);
    clock.advance(Duration::from_secs(1));
    assert!(store.get(&6).is_none() && store.get(&7).is_none());
}

#[test]
fn get_or_load_loads_again_once_the_record_expired() {
    let (store, clock) = expiring(MINUTE);
    let first = store.get_or_load(1, || 10);
    assert_eq!(store.get_or_load(1, || unreachable!()), first);
    clock.advance(MINUTE);
    let second = store.get_or_load(1, || 11);
    assert_eq!(second.value, 11);
    assert!(second.version > first.version);
}

#[test]
fn writes_sweep_expired_records_without_being_asked() {
    let clock = ManualClock::new();
    let store: Store<u32, u32> = Store::builder()
        .shards(1)
        .time_to_live(MINUTE)
        .clock(clock.clone())
        .build();
    for key in 0..100 {
        store.insert(key, key).unwrap();
    }
    clock.advance(MINUTE);
    assert_eq!(
        store.len(),
        100,
        "nothing reclaimed yet: len counts expired records"
    );
    let forever = store.expiring_after(Duration::MAX);
    for key in 1000..1100 {
        forever.insert(key, key).unwrap();
    }
    assert_eq!(store.len(), 100, "only the new records are left");
}

#[test]
fn the_listener_hears_each_cause_once() {
    let clock = ManualClock::new();
    let (builder, heard) = listening();
    let store = builder
        .shards(1)
        .max_capacity(2)
        .time_to_live(MINUTE)
        .clock(clock.clone())
        .build();
    let v1 = store.insert(1, 10).unwrap();
    store.update(&1, &v1, 11).unwrap(); // replaced 10
    let v2 = store.insert(2, 20).unwrap();
    store.remove(&2, &v2).unwrap(); // removed 20
    store.insert(3, 30).unwrap();
    store.insert(4, 40).unwrap(); // evicts one of 1 and 3
    clock.advance(MINUTE);
    store.insert(1, 12).unwrap(); // reclaims 1 or 4 as expired; the sweep the rest
    store.clear(); // clears 12
    let heard = heard.lock().unwrap().clone();
    let mut by_cause: HashMap<RemovalCause, Vec<(u32, u32)>> = HashMap::new();
    for (key, value, cause) in heard {
        by_cause.entry(cause).or_default().push((key, value));
    }
    assert_eq!(by_cause[&RemovalCause::Replaced], [(1, 10)]);
    assert_eq!(by_cause[&RemovalCause::Removed], [(2, 20)]);
    // The bound evicts one of 1 and 3 for 4; the rest expire, or, if the bound
    // evicts an expired record for the new 1 before a sweep reclaims it, are evicted.
    assert!(!by_cause[&RemovalCause::Evicted].is_empty());
    assert!(!by_cause[&RemovalCause::Expired].is_empty());
    assert_eq!(by_cause[&RemovalCause::Cleared], [(1, 12)]);
    let mut gone: Vec<(u32, u32)> = [RemovalCause::Evicted, RemovalCause::Expired]
        .iter()
        .flat_map(|cause| by_cause[cause].clone())
        .collect();
    gone.sort();
    assert_eq!(gone, [(1, 11), (3, 30), (4, 40)], "each record once");
    assert!(RemovalCause::Expired.was_evicted() && !RemovalCause::Removed.was_evicted());
}

#[test]
fn the_listener_runs_outside_the_lock_and_may_use_the_store() {
    let slot: Arc<OnceLock<Weak<Store<u32, u32>>>> = Arc::default();
    // A store is not `RefUnwindSafe`, which a listener must be: assert it.
    let inside = AssertUnwindSafe(slot.clone());
    let store = Arc::new(
        Store::builder()
            .shards(1)
            .eviction_listener(move |key, value, _| {
                let store = inside.get().and_then(Weak::upgrade).unwrap();
                // The same shard: under its lock this would deadlock or panic.
                store.put(key + 100, value).unwrap();
            })
            .build(),
    );
    slot.set(Arc::downgrade(&store)).unwrap();
    store.put(1, 10).unwrap();
    store.put(1, 11).unwrap();
    assert_eq!(store.get(&101).map(|r| r.value), Some(10));
    assert_eq!(store.listener_panics(), 0);
}

#[test]
fn a_panicking_listener_is_counted_and_leaves_the_store_usable() {
    let heard = Heard::default();
    let log = heard.clone();
    let store: Store<u32, u32> = Store::builder()
        .eviction_listener(move |key, value, cause| {
            if key == 1 {
                panic!("listener bug");
            }
            log.lock().unwrap().push((key, value, cause));
        })
        .build();
    store.put(1, 10).unwrap();
    store.put(2, 20).unwrap();
    assert_eq!(store.put(1, 11), Ok(2)); // its listener call panics
    assert_eq!(store.listener_panics(), 1);
    assert_eq!(store.get(&1).map(|r| r.value), Some(11));
    store.clear(); // delivers 2 despite 1 panicking first or after
    assert_eq!(store.listener_panics(), 2);
    assert_eq!(*heard.lock().unwrap(), [(2, 20, RemovalCause::Cleared)]);
    assert!(store.is_empty());
    store.put(3, 30).unwrap();
}

#[test]
fn under_concurrency_every_record_is_heard_of_exactly_once() {
    let clock = ManualClock::new();
    let (builder, heard) = listening();
    let store = Arc::new(
        builder
            .max_capacity(64)
            .time_to_live(Duration::from_millis(5))
            .clock(clock.clone())
            .build(),
    );
    let writers: Vec<_> = (0..3u32)
        .map(|thread| {
            let store = store.clone();
            thread::spawn(move || {
                for round in 0..2_000u32 {
                    let key = thread * 1_000_000 + round;
                    // Each key is created once: the checks below count records by key.
                    let version = store.insert(key, round).unwrap();
                    if round % 5 == 0 {
                        let _ = store.update(&key, &version, round + 1);
                    }
                    if round % 3 == 0 {
                        if let Some(read) = store.get(&key) {
                            let _ = store.remove(&key, &read.version);
                        }
                    }
                }
            })
        })
        .collect();
    // Time moves while they write: records expire under their feet.
    let ticking = {
        let clock = clock.clone();
        thread::spawn(move || {
            for _ in 0..2_000 {
                clock.advance(Duration::from_millis(1));
                thread::yield_now();
            }
        })
    };
    for thread in writers {
        thread.join().unwrap();
    }
    ticking.join().unwrap();
    // Then all expire, and a few more writes sweep some of them.
    clock.advance(Duration::from_secs(1));
    for key in 0..64 {
        store.insert(10_000_000 + key, key).unwrap();
    }
    let left: Vec<u32> = store.iter().map(|(key, _)| key).collect();
    store.invalidate_all();
    let heard = heard.lock().unwrap();
    let mut left_once: HashMap<u32, usize> = HashMap::new();
    let mut replaced = 0;
    for (key, _, cause) in heard.iter() {
        if *cause == RemovalCause::Replaced {
            replaced += 1;
        } else {
            *left_once.entry(*key).or_default() += 1;
        }
    }
    assert_eq!(left_once.len(), 6_064, "every record inserted left");
    assert!(left_once.values().all(|&times| times == 1), "and only once");
    let count = |wanted: RemovalCause| heard.iter().filter(|(_, _, c)| *c == wanted).count();
    assert!(count(RemovalCause::Expired) > 0 && count(RemovalCause::Evicted) > 0);
    assert!(count(RemovalCause::Removed) > 0 && replaced > 0);
    // Cleared: what was left, and expired records not reclaimed yet (not iterated).
    assert!(count(RemovalCause::Cleared) >= left.len());
}

#[test]
fn retain_removes_what_the_predicate_refuses_and_what_expired() {
    let clock = ManualClock::new();
    let (builder, heard) = listening();
    let store = builder.clock(clock.clone()).build();
    for key in 0..10 {
        store.insert(key, key).unwrap();
    }
    let short = store.expiring_after(MINUTE);
    short.insert(10, 10).unwrap();
    clock.advance(MINUTE);
    let mut asked = Vec::new();
    store.retain(|key, _| {
        asked.push(*key);
        key % 2 == 0
    });
    asked.sort();
    assert_eq!(
        asked,
        (0..10).collect::<Vec<_>>(),
        "expired records are not asked about"
    );
    let mut left: Vec<u32> = store.iter().map(|(key, _)| key).collect();
    left.sort();
    assert_eq!(left, [0, 2, 4, 6, 8]);
    assert_eq!(store.len(), 5);
    let heard = heard.lock().unwrap();
    assert_eq!(heard.len(), 6);
    assert!(heard.contains(&(10, 10, RemovalCause::Expired)));
    assert!(heard.contains(&(3, 3, RemovalCause::Removed)));
    // Removed versions are not handed out again.
    assert_eq!(store.insert(3, 3), Ok(2));
}

#[test]
fn retain_refuses_a_predicate_that_calls_back_into_the_store() {
    let store: Store<u32, u32> = Store::new();
    store.insert(1, 1).unwrap();
    let reentered = std::panic::catch_unwind(AssertUnwindSafe(|| {
        store.retain(|key, _| store.get(key).is_some());
    }));
    assert!(reentered.is_err());
    assert_eq!(
        store.get(&1).map(|r| r.value),
        Some(1),
        "the store still works"
    );
}

/// A policy with a bug: it panics on the value 13.
struct Unlucky;

impl Expiry<u32, u32> for Unlucky {
    fn expire_after_create(&self, _key: &u32, value: &u32) -> Option<Duration> {
        assert_ne!(*value, 13, "unlucky");
        Some(MINUTE)
    }
}

#[test]
fn a_panicking_policy_writes_nothing() {
    let store: Store<u32, u32> = Store::builder()
        .shards(1)
        .max_capacity(4)
        .expiry(Unlucky)
        .build();
    let v1 = store.insert(1, 1).unwrap();
    let panicked = |write: &dyn Fn()| std::panic::catch_unwind(AssertUnwindSafe(write)).is_err();
    assert!(panicked(&|| drop(store.insert(2, 13))));
    assert!(panicked(&|| drop(store.update(&1, &v1, 13))));
    assert_eq!(store.get(&2), None);
    assert_eq!(store.get(&1).map(|r| (r.value, r.version)), Some((1, v1)));
    // The bound's accounting is intact: four more records fit, and no more are kept.
    for key in 20..30 {
        store.insert(key, key).unwrap();
        assert!(store.len() <= 4);
    }
    assert_eq!(
        store.len(),
        4,
        "the bound counts no weight for the refused write"
    );
}

#[test]
fn a_listener_may_ask_for_the_key_a_load_is_landing() {
    let slot: Arc<OnceLock<Weak<Store<u32, u32>>>> = Arc::default();
    let inside = AssertUnwindSafe(slot.clone());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let answers = asked.clone();
    let store = Arc::new(
        Store::builder()
            .shards(1)
            .eviction_listener(move |key, _, cause| {
                assert_eq!(cause, RemovalCause::Expired);
                let store = inside.get().and_then(Weak::upgrade).unwrap();
                // The load ended with the write that removed the record: this one is new
                // (had it joined the load, it would wait for itself, here until the timeout).
                let found = store.within(Duration::from_secs(5)).get_or_load(key, || 0);
                answers
                    .lock()
                    .unwrap()
                    .push(found.map(|record| record.value).ok());
            })
            .build(),
    );
    slot.set(Arc::downgrade(&store)).unwrap();
    // Stored already expired: the write's own sweep reclaims it, and the listener hears.
    let loaded = store.expiring_after(Duration::ZERO).get_or_load(1, || 11);
    assert_eq!(loaded.unwrap().value, 11);
    assert_eq!(*asked.lock().unwrap(), [Some(0)]);
    assert_eq!(store.get(&1).map(|record| record.value), Some(0));
}

/// A store without a bound or expiry keeps no per-record state for a timer; the first
/// write with a time-to-live of its own gives every record of its shard that state. The
/// records already there keep their values and versions, never expire, and are not
/// reported as removed; the new one expires on time.
#[test]
fn the_first_per_write_time_to_live_tracks_the_shard_without_touching_its_records() {
    let clock = ManualClock::new();
    let (builder, heard) = listening();
    let store = builder.shards(1).clock(clock.clone()).build();
    let versions: Vec<u64> = (0..1_000)
        .map(|key| {
            let first = store.insert(key, key).unwrap();
            if key % 2 == 0 {
                store.update(&key, &first, key + 1).unwrap()
            } else {
                first
            }
        })
        .collect();
    let value_of = |key: u32| if key % 2 == 0 { key + 1 } else { key };
    heard.lock().unwrap().clear(); // the updates' replaced values
    let v5 = store.get(&5).unwrap().version;
    let refused = store
        .expiring_after(Duration::from_secs(1))
        .update(&5, &(v5 + 1), 0)
        .unwrap_err();
    assert_eq!(
        refused.error,
        Error::Stale {
            expected: v5 + 1,
            current: v5
        }
    );
    store
        .expiring_after(Duration::from_secs(1))
        .insert(1_000, 7)
        .unwrap();
    clock.advance(Duration::from_secs(1) - NANO);
    assert_eq!(store.get(&1_000).map(|record| record.value), Some(7));
    clock.advance(NANO);
    assert!(store.get(&1_000).is_none());
    clock.advance(Duration::from_secs(3600));
    store.put(2_000, 0).unwrap(); // a write's sweep reclaims what expired
    for (key, &version) in (0..1_000).zip(&versions) {
        let record = store.get(&key).unwrap();
        assert_eq!((record.value, record.version), (value_of(key), version));
    }
    assert_eq!(store.len(), 1_001);
    assert_eq!(*heard.lock().unwrap(), [(1_000, 7, RemovalCause::Expired)]);
}

/// Every write that takes a per-write time-to-live tracks a plain shard before it writes,
/// whichever it is, and the records written before it stay as they were.
#[test]
fn every_kind_of_write_tracks_a_plain_shard() {
    type Write = fn(&Store<u32, u32>, u32) -> u64;
    let writes: [(&str, Write); 5] = [
        ("insert", |store, key| {
            store.expiring_after(MINUTE).insert(key, 1).unwrap()
        }),
        ("put", |store, key| {
            store.expiring_after(MINUTE).put(key, 1).unwrap()
        }),
        ("update", |store, key| {
            let version = store.insert(key, 0).unwrap();
            store
                .expiring_after(MINUTE)
                .update(&key, &version, 1)
                .unwrap()
        }),
        ("update_with", |store, key| {
            let version = store.insert(key, 0).unwrap();
            let ttl = store.expiring_after(MINUTE);
            ttl.update_with(&key, &version, |value| value + 1).unwrap()
        }),
        ("get_or_load", |store, key| {
            store
                .expiring_after(MINUTE)
                .get_or_load(key, || 1)
                .unwrap()
                .version
        }),
    ];
    for (name, write) in writes {
        let clock = ManualClock::new();
        let store = Store::builder().shards(1).clock(clock.clone()).build();
        let old = store.insert(1, 10).unwrap();
        let new = write(&store, 2);
        clock.advance(MINUTE - NANO);
        assert_eq!(
            store.get(&2).map(|r| (r.value, r.version)),
            Some((1, new)),
            "{name}"
        );
        clock.advance(NANO);
        assert!(store.get(&2).is_none(), "{name}");
        clock.advance(MINUTE * 60);
        assert_eq!(
            store.get(&1).map(|r| (r.value, r.version)),
            Some((10, old)),
            "{name}"
        );
    }
}

/// A bounded store's records carry their eviction state from the start: a per-write
/// time-to-live changes nothing for the others, and the bound still holds.
#[test]
fn a_per_write_time_to_live_leaves_a_bounded_store_as_it_was() {
    let clock = ManualClock::new();
    let (builder, heard) = listening();
    let store = builder
        .shards(1)
        .max_capacity(4)
        .clock(clock.clone())
        .build();
    for key in 0..4 {
        store.insert(key, key).unwrap();
    }
    store
        .expiring_after(Duration::from_secs(1))
        .put(0, 100)
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(store.get(&0).is_none());
    for key in 1..4 {
        assert_eq!(store.get(&key).map(|record| record.value), Some(key));
    }
    assert_eq!(*heard.lock().unwrap(), [(0, 0, RemovalCause::Replaced)]);
    for key in 10..20 {
        store.insert(key, key).unwrap();
        assert!(store.len() <= 4);
    }
    assert_eq!(store.len(), 4);
}

/// Hashes a `u64` key to itself, so that a test can place keys in one bucket group with
/// the same control tag.
#[derive(Default, Clone)]
struct KeyIsHash(u64);

impl std::hash::Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed here");
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// A record written before a store without expiry kept time, and one written with a
/// time-to-live of its own, are told apart by the timer's sweep even when their hashes
/// share a bucket and a control tag: the sweep reclaims the expired one, never the other.
#[test]
fn the_sweep_reclaims_the_expired_record_not_its_bucket_neighbour() {
    let clock = ManualClock::new();
    let store: Store<u64, u64, verkv::Counter, std::hash::BuildHasherDefault<KeyIsHash>> =
        Store::builder()
            .shards(1)
            .clock(clock.clone())
            .hasher(std::hash::BuildHasherDefault::<KeyIsHash>::default())
            .build();
    // Same home bucket (low bits) and same tag (top bits): `timeless` sits where the
    // search for `expiring` starts.
    let (timeless, expiring) = (1 << 20, 2 << 20);
    store.insert(timeless, 1).unwrap();
    store
        .expiring_after(Duration::ZERO)
        .insert(expiring, 2)
        .unwrap();
    assert_eq!(store.get(&expiring), None, "stored already expired");
    // Writes sweep: the expired record is reclaimed, the timeless one stays.
    for round in 0..4 {
        store.put(3 << 40, round).unwrap();
    }
    assert_eq!(store.get(&timeless).map(|found| found.value), Some(1));
    assert_eq!(store.get(&expiring), None);
    assert!(!store.contains_key(&expiring));
    // A time-to-live given later to the timeless record takes effect like any other.
    store
        .expiring_after(Duration::from_secs(1))
        .put(timeless, 5)
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.get(&timeless), None);
    assert_eq!(store.get(&(3 << 40)).map(|found| found.value), Some(3));
}
