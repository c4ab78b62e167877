//! The server stops abruptly in the middle of a run (`pg_ctl stop -m immediate`, durable
//! settings) and starts again: operations fail with `Unavailable`, a write whose
//! connection died after it was sent is `OutcomeUnknown`, nothing is half-applied, nothing
//! acknowledged is lost, and the pool recovers by itself. Runs a cluster of its own (see
//! `support/cluster.rs`), so it needs the server's binaries (`.ci/test` provides them).

mod support;

use support::cluster;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cluster::Cluster;
use verkv::postgres::PgStore;
use verkv::{Context, Error, VersionedStore};

const WRITERS: usize = 3;

/// What one writer saw of its own key: every write is the value it read plus one.
#[derive(Debug, Default)]
struct Seen {
    /// The last write acknowledged: value and version.
    acknowledged: Option<(u64, u64)>,
    /// Values written with an unknown outcome.
    unknown: Vec<u64>,
    unavailable: usize,
}

/// Reads the key and writes the value plus one, over and over, until `stop`.
fn writer(store: &PgStore<String, u64>, key: &str, stop: &AtomicBool) -> Seen {
    let ctx = Context::background();
    let key = key.to_string();
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        let read = match store.get(&ctx, &key) {
            Ok(read) => read.expect("writers never remove"),
            Err(Error::Unavailable(_)) => {
                seen.unavailable += 1;
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(other) => panic!("get: {other}"),
        };
        match store.update(&ctx, &key, &read.version, read.value + 1) {
            Ok(version) => seen.acknowledged = Some((read.value + 1, version)),
            Err(refused) => match refused.error {
                Error::OutcomeUnknown(_) => seen.unknown.push(refused.value),
                Error::Unavailable(_) => seen.unavailable += 1,
                other => panic!("update: {other}"),
            },
        }
    }
    seen
}

#[test]
fn a_crash_mid_run_is_unavailable_or_outcome_unknown_and_the_pool_recovers() {
    let cluster = Cluster::start();
    let store: PgStore<String, u64> = PgStore::builder(cluster.url())
        .table("faults")
        .pool_size(WRITERS as u32 + 2)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ctx = Context::background();
    let keys: Vec<String> = (0..WRITERS).map(|i| format!("k{i}")).collect();
    for key in &keys {
        store.insert(&ctx, key.clone(), 0).unwrap();
    }
    let locked = "locked".to_string();
    let v1 = store.insert(&ctx, locked.clone(), 0).unwrap();

    // Another session holds the row lock of `locked`, so a write to it is in flight on
    // the server when it goes down.
    let mut holder = postgres::Client::connect(&cluster.url(), postgres::NoTls).unwrap();
    holder.batch_execute("BEGIN").unwrap();
    let json = serde_json::Value::String(locked.clone());
    holder
        .query("SELECT 1 FROM faults WHERE key = $1 FOR UPDATE", &[&json])
        .unwrap();

    let stop = AtomicBool::new(false);
    let (in_flight, seen) = thread::scope(|s| {
        let in_flight = s.spawn(|| store.update(&ctx, &locked, &v1, 1));
        let writers: Vec<_> = keys
            .iter()
            .map(|key| s.spawn(|| writer(&store, key, &stop)))
            .collect();
        thread::sleep(Duration::from_millis(400));
        cluster.crash();
        let in_flight = in_flight.join().unwrap();
        // Down for a while: the writers keep trying.
        thread::sleep(Duration::from_millis(500));
        let down = store.get(&ctx, &keys[0]);
        assert!(matches!(down, Err(Error::Unavailable(_))), "{down:?}");
        stop.store(true, Ordering::Relaxed);
        let seen: Vec<Seen> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        (in_flight, seen)
    });
    drop(holder);

    let refused = in_flight.unwrap_err();
    assert!(
        matches!(refused.error, Error::OutcomeUnknown(_)),
        "a write in flight when the server died: {}",
        refused.error
    );

    cluster.resume();
    // The pool recovers by itself: the same store works again.
    let started = Instant::now();
    let mut recovered = store.get(&ctx, &locked);
    while recovered.is_err() && started.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
        recovered = store.get(&ctx, &locked);
    }
    let locked_now = recovered.expect("the pool recovers").unwrap();
    println!("recovered {:?} after the restart", started.elapsed());
    // The in-flight write waited for the lock and never ran.
    assert_eq!((locked_now.value, locked_now.version), (0, v1));

    let mut committed_unknown = 0;
    let mut unknown = 0;
    for (key, seen) in keys.iter().zip(&seen) {
        let now = store.get(&ctx, key).unwrap().unwrap();
        unknown += seen.unknown.len();
        let (acked_value, acked_version) = seen.acknowledged.expect("some writes went through");
        assert!(seen.unavailable > 0, "{key}: never saw the server down");
        if now.value == acked_value {
            // Nothing acknowledged lost, and the pair is the one acknowledged.
            assert_eq!(now.version, acked_version, "{key}");
        } else {
            // Otherwise only a write whose outcome was unknown can have landed.
            assert!(
                seen.unknown.contains(&now.value) && now.value == acked_value + 1,
                "{key}: holds {}, acknowledged {acked_value}, unknown {:?}",
                now.value,
                seen.unknown
            );
            committed_unknown += 1;
        }
        // It works for writes too.
        store
            .update(&ctx, key, &now.version, now.value + 1)
            .unwrap();
    }
    println!(
        "writes with an unknown outcome: {unknown} (plus the one in flight), of which \
         {committed_unknown} had in fact committed"
    );
}
