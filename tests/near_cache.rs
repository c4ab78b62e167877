//! The near-cache in front of PostgreSQL: the conformance suite through it, and two
//! near-caches over one table in one process, each with its own connections: a write
//! through one is seen by the other within a bound, a write based on a stale cached
//! read is refused, and a lost notification connection stops stale serving until it is
//! back; concurrent writes through both are linearizable, and reads from memory lag the
//! writes by no more than the notification delay; a load held still between reading a
//! row and landing it, while a newer change is heard, is never served; the table notifies
//! only while a near-cache is registered, and a write in flight when one registers is
//! never missed. Needs `VERKV_POSTGRES_URL` (see
//! `.ci/test`); fails without it.

mod support;

use support::{conformance, linearizability as checker, pg, stress};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use checker::{Answer, Value, Version, Versions};
use proptest::prelude::*;
use stress::{run_round, Backend, KeyValue, Round};
use verkv::near::{NearCache, NearStats};
use verkv::postgres::{PgStore, PgVersion};
use verkv::{Context, Error, UuidV4, VersionedStore};

/// How long a change may take to reach the other near-cache (a loaded, shared machine:
/// it takes about a millisecond on an idle one).
const BOUND: Duration = Duration::from_secs(2);

/// Each case creates a table and a notification connection.
const MODEL_CASES: u32 = 24;

fn near<K, V>(table: &str) -> NearCache<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned + std::hash::Hash + Eq + Clone,
    K: Send + Sync + 'static,
    V: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let db = PgStore::builder(pg::url()).table(table).build().unwrap();
    NearCache::builder(db)
        .heartbeat(Duration::from_millis(200))
        .build()
        .unwrap()
}

/// Polls `done` until it holds, for at most [`BOUND`]; whether it did.
fn within_bound(mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + BOUND;
    while Instant::now() < give_up {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    done()
}

fn raw() -> postgres::Client {
    postgres::Client::connect(&pg::url(), postgres::NoTls).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(MODEL_CASES))]

    #[test]
    fn counter_near_cache_conforms(steps in conformance::steps(4, 60)) {
        let cache: NearCache<conformance::Key, conformance::Value> = near(&pg::table("near_model"));
        conformance::Model::run(&cache, &steps);
    }

    #[test]
    fn uuid_near_cache_conforms(steps in conformance::steps(4, 60)) {
        let db = PgStore::builder(pg::url())
            .table(pg::table("near_model_uuid"))
            .versions::<UuidV4>()
            .build()
            .unwrap();
        let cache = NearCache::builder(db).build().unwrap();
        conformance::Model::run(&cache, &steps);
    }
}

#[test]
fn reads_are_served_from_memory_with_the_database_version() {
    let cache: NearCache<String, String> = near(&pg::table("near_hits"));
    let ctx = Context::background();
    let key = "movie".to_string();
    assert_eq!(cache.get(&ctx, &key), Ok(None));
    let v1 = cache.insert(&ctx, key.clone(), "Heat".into()).unwrap();
    let before = cache.stats();
    for _ in 0..10 {
        let read = cache.get(&ctx, &key).unwrap().unwrap();
        assert_eq!((read.value.as_str(), &read.version), ("Heat", &v1));
    }
    let after = cache.stats();
    // At most one read reloads (if the insert's own notification came in between).
    assert!(after.hits - before.hits >= 9, "{before:?} → {after:?}");
    assert_eq!(
        cache.database().get(&ctx, &key).unwrap().unwrap().version,
        v1
    );
    assert!(after.coherent);
}

#[test]
fn a_write_through_one_is_seen_by_the_other_within_a_bound() {
    let table = pg::table("near_two");
    let (one, two): (NearCache<String, u32>, NearCache<String, u32>) = (near(&table), near(&table));
    let ctx = Context::background();
    let key = "likes".to_string();
    let v1 = one.insert(&ctx, key.clone(), 1).unwrap();
    // `two` holds the record in memory, then `one` changes it.
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v1);
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v1);
    for value in 2..20 {
        let current = one.get(&ctx, &key).unwrap().unwrap().version;
        let next = one.update(&ctx, &key, &current, value).unwrap();
        assert!(
            within_bound(
                || two.get(&ctx, &key).unwrap().map(|r| (r.value, r.version))
                    == Some((value, next))
            ),
            "the other near-cache still serves {:?} after {BOUND:?}, not {value} at {next}",
            two.get(&ctx, &key)
        );
        // Read again, now from memory.
        assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, next);
    }
    let current = two.get(&ctx, &key).unwrap().unwrap().version;
    one.remove(&ctx, &key, &current).unwrap();
    assert!(within_bound(|| two.get(&ctx, &key) == Ok(None)));
    let stats = two.stats();
    assert!(stats.invalidations >= 19, "{stats:?}");
    assert!(stats.hits >= 19, "{stats:?}");
}

#[test]
fn a_write_based_on_a_stale_cached_read_is_refused() {
    let table = pg::table("near_stale");
    let (one, two): (NearCache<String, String>, NearCache<String, String>) =
        (near(&table), near(&table));
    let ctx = Context::background();
    let key = "movie".to_string();
    let v1 = one.insert(&ctx, key.clone(), "Heat".into()).unwrap();
    let stale = two.get(&ctx, &key).unwrap().unwrap();
    // Changed behind `two`'s back, straight in the database, without waiting for it to hear.
    let v2 = one
        .database()
        .update(&ctx, &key, &v1, "Heat (1995)".into())
        .unwrap();
    let refused = two
        .update(&ctx, &key, &stale.version, "Heat!".into())
        .unwrap_err();
    assert_eq!(
        refused.error,
        Error::Stale {
            expected: v1,
            current: v2
        }
    );
    let refused = two
        .update_with(&ctx, &key, &stale.version, |title| format!("{title}!"))
        .unwrap_err();
    assert!(matches!(refused, Error::Stale { .. }), "{refused:?}");
    assert!(matches!(
        two.remove(&ctx, &key, &v1),
        Err(Error::Stale { .. })
    ));
    // The refusal dropped the copy: the next read is the database's.
    let read = two.get(&ctx, &key).unwrap().unwrap();
    assert_eq!((read.value.as_str(), read.version), ("Heat (1995)", v2));
    assert_eq!(
        one.database().get(&ctx, &key).unwrap().unwrap().value,
        "Heat (1995)"
    );
}

#[test]
fn a_time_to_live_bounds_how_long_a_copy_is_served() {
    let table = pg::table("near_ttl");
    let db: PgStore<String, String> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let cache: NearCache<String, String> = NearCache::builder(db)
        .heartbeat(Duration::from_millis(200))
        .time_to_live(Duration::from_millis(300))
        .build()
        .unwrap();
    let ctx = Context::background();
    let key = "movie".to_string();
    let version = cache.insert(&ctx, key.clone(), "Heat".into()).unwrap();
    // Its own insert's notification, once heard, leaves nothing to drop later.
    let heard = stats_reach(&cache, |stats| stats.invalidations >= 1);
    assert!(heard.invalidations >= 1, "{heard:?}");
    assert_eq!(cache.get(&ctx, &key).unwrap().unwrap().version, version);
    let loaded = cache.stats();
    assert_eq!(cache.get(&ctx, &key).unwrap().unwrap().version, version);
    let served = cache.stats();
    assert_eq!(
        (served.hits, served.misses),
        (loaded.hits + 1, loaded.misses)
    );
    thread::sleep(Duration::from_millis(400));
    assert_eq!(cache.get(&ctx, &key).unwrap().unwrap().version, version);
    let expired = cache.stats();
    assert_eq!(
        (expired.hits, expired.misses),
        (served.hits, served.misses + 1),
        "the copy outlived its time to live"
    );
}

#[test]
fn fresh_reads_bypass_memory() {
    let table = pg::table("near_fresh");
    let cache: NearCache<String, u32> = near(&table);
    let behind: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::background();
    let key = "k".to_string();
    let v1 = cache.insert(&ctx, key.clone(), 1).unwrap();
    let v2 = behind.update(&ctx, &key, &v1, 2).unwrap();
    // Whatever memory holds, a fresh read is the database's.
    assert_eq!(cache.get_fresh(&ctx, &key).unwrap().unwrap().version, v2);
    assert!(cache.stats().bypassed >= 1);
}

/// Waits until `cache`'s stats satisfy `done`.
fn stats_reach<K, V, S: PgVersion>(
    cache: &NearCache<K, V, S>,
    done: impl Fn(&NearStats) -> bool,
) -> NearStats {
    let give_up = Instant::now() + BOUND * 5;
    loop {
        let stats = cache.stats();
        if done(&stats) || Instant::now() >= give_up {
            return stats;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_lost_notification_connection_stops_stale_serving_until_it_is_back() {
    let table = pg::table("near_lost");
    let (one, two): (NearCache<String, u32>, NearCache<String, u32>) = (near(&table), near(&table));
    let ctx = Context::background();
    let key = "k".to_string();
    let v1 = one.insert(&ctx, key.clone(), 1).unwrap();
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v1);
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v1);

    let pid = two.listener_pid().expect("listening");
    let mut admin = raw();
    let name: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&(pid as i32)],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, "verkv near-cache listener");
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&(pid as i32)])
        .unwrap()
        .get(0);
    assert!(killed);
    // A change `two` cannot hear about.
    let v2 = one.update(&ctx, &key, &v1, 2).unwrap();

    let lost = stats_reach(&two, |s| s.disconnects >= 1);
    assert_eq!(lost.disconnects, 1, "{lost:?}");
    // Never the copy from before the loss again: read from the database while away, or
    // from memory cleared after listening again.
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v2);

    let back = stats_reach(&two, |s| s.reconnects >= 1 && s.coherent);
    assert!(back.coherent && back.reconnects == 1, "{back:?}");
    assert_ne!(two.listener_pid(), Some(pid));
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v2);
    // Coherent again: changes are heard, and reads served from memory.
    let v3 = one.update(&ctx, &key, &v2, 3).unwrap();
    assert!(within_bound(|| two
        .get(&ctx, &key)
        .unwrap()
        .unwrap()
        .version
        == v3));
    let hits = two.stats().hits;
    assert_eq!(two.get(&ctx, &key).unwrap().unwrap().version, v3);
    assert_eq!(two.stats().hits, hits + 1);
}

/// A value whose decoding can be held still: what opens, on purpose, the window between a
/// load's read of a row and its copy landing in memory (the value is decoded after the
/// query returns, before the copy lands). Only the late-load test uses this type, so the
/// one gate it shares is that test's alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
struct Gated(u32);

impl<'de> serde::Deserialize<'de> for Gated {
    fn deserialize<D: serde::Deserializer<'de>>(decoder: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(decoder)?;
        gate::pass();
        Ok(Gated(value))
    }
}

/// The gate a [`Gated`] decoding passes: open, or armed to hold the next decoding until
/// the test releases it. Every wait is bounded: a held decoding goes on by itself after
/// [`gate::HOLD`], and the test fails if no decoding arrives.
mod gate {
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    /// The longest a decoding is held, and the longest the test waits for one.
    pub(crate) const HOLD: Duration = Duration::from_secs(10);

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        Armed,
        Holding,
    }

    static STATE: Mutex<State> = Mutex::new(State::Open);
    static CHANGED: Condvar = Condvar::new();

    fn state() -> MutexGuard<'static, State> {
        STATE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the next decoding.
    pub(crate) fn arm() {
        *state() = State::Armed;
    }

    /// Called by every decoding: holds it if armed, until released (or [`HOLD`] passed).
    pub(crate) fn pass() {
        let mut state = state();
        if *state != State::Armed {
            return;
        }
        *state = State::Holding;
        CHANGED.notify_all();
        let (mut state, _) = CHANGED
            .wait_timeout_while(state, HOLD, |state| *state == State::Holding)
            .unwrap_or_else(PoisonError::into_inner);
        *state = State::Open;
    }

    /// Waits until a decoding is held (it has read its row); whether one is.
    pub(crate) fn held() -> bool {
        let (state, _) = CHANGED
            .wait_timeout_while(state(), HOLD, |state| *state == State::Armed)
            .unwrap_or_else(PoisonError::into_inner);
        *state == State::Holding
    }

    /// Lets the held decoding go on.
    pub(crate) fn release() {
        *state() = State::Open;
        CHANGED.notify_all();
    }
}

#[test]
fn a_load_that_lands_after_a_newer_change_is_heard_is_not_served() {
    let table = pg::table("near_late_load");
    let cache: NearCache<String, Gated> = near(&table);
    let behind: PgStore<String, Gated> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::background();
    let key = "k".to_string();
    let v1 = behind.insert(&ctx, key.clone(), Gated(1)).unwrap();
    let heard = stats_reach(&cache, |s| s.invalidations >= 1);
    assert_eq!(
        heard.invalidations, 1,
        "the insert was not heard: {heard:?}"
    );

    thread::scope(|scope| {
        // A miss: the load reads version 1, then is held while decoding it.
        gate::arm();
        let load = scope.spawn(|| cache.get(&Context::background(), &key));
        let held = gate::held();
        if !held {
            gate::release();
        }
        assert!(
            held,
            "the load did not decode a row within {:?}",
            gate::HOLD
        );
        // A newer change, heard by the near-cache while the old row is still in flight.
        let v2 = behind.update(&ctx, &key, &v1, Gated(2)).unwrap();
        let heard = stats_reach(&cache, |s| s.invalidations >= 2);
        gate::release();
        assert_eq!(
            heard.invalidations, 2,
            "the update was not heard: {heard:?}"
        );
        // The load lands late: its caller gets what it read (the row before the update)...
        let loaded = load.join().unwrap().unwrap().unwrap();
        assert_eq!((loaded.value, loaded.version), (Gated(1), v1));
        // ...but the copy it left in memory is older than the change heard: never served.
        let read = cache.get(&ctx, &key).unwrap().unwrap();
        assert_eq!(
            (read.value, read.version),
            (Gated(2), v2),
            "memory served a load that predates a change it had heard of"
        );
        let read = cache.get(&ctx, &key).unwrap().unwrap();
        assert_eq!(read.version, v2);
    });
    let stats = cache.stats();
    assert_eq!(
        stats.misses, 2,
        "the stale copy was not loaded again: {stats:?}"
    );
}

/// Two near-caches over one table, taking turns: every call goes to the next one. Reads
/// are fresh (the promise checked here is about writes).
struct Pair {
    caches: [NearCache<stress::Key, Value>; 2],
    turn: AtomicUsize,
}

impl Pair {
    fn next(&self) -> Backend<'_, NearCache<stress::Key, Value>> {
        Backend(&self.caches[self.turn.fetch_add(1, Ordering::Relaxed) % 2])
    }
}

impl KeyValue for Pair {
    fn get(&self, key: stress::Key) -> Answer {
        let cache = self.next().0;
        let read = cache.get_fresh(&Context::background(), &key).unwrap();
        Answer::Read(read.map(|read| (read.value, read.version)))
    }

    fn insert(&self, key: stress::Key, value: Value) -> Answer {
        self.next().insert(key, value)
    }

    fn update(&self, key: stress::Key, expected: Version, value: Value) -> Answer {
        self.next().update(key, expected, value)
    }

    fn remove(&self, key: stress::Key, expected: Version) -> Answer {
        self.next().remove(key, expected)
    }
}

#[test]
fn writes_through_two_near_caches_are_linearizable() {
    let shape = Round {
        evictions: false,
        threads: 4,
        keys: 2,
        operations_per_thread: 60,
        versions: Versions::Unique,
    };
    for round in 0..6 {
        let table = pg::table("near_stress");
        let pair = Pair {
            caches: [near(&table), near(&table)],
            turn: AtomicUsize::new(0),
        };
        if let Err(violation) = run_round(&pair, shape, round) {
            panic!("round {round}: {violation}");
        }
    }
}

/// How far behind the writes a read from memory may be: the notification delay, with a
/// wide margin for a loaded machine.
const LAG: Duration = Duration::from_secs(1);

/// A successful update: the version it replaced, and what it wrote when.
struct Written {
    expected: Version,
    version: Version,
    value: Value,
    returned: Instant,
}

/// How long the writers of the lag check write: long enough that a read that never
/// catches up lags by more than [`LAG`].
const WRITING: Duration = Duration::from_millis(2500);

#[test]
fn reads_from_memory_lag_the_writes_by_at_most_the_notification_delay() {
    let table = pg::table("near_lag");
    // Two writing instances, and one that only reads (nothing but notifications
    // refreshes its memory).
    let caches: [NearCache<String, Value>; 3] = [near(&table), near(&table), near(&table)];
    let ctx = Context::background();
    let key = "k".to_string();
    let first = caches[0].insert(&ctx, key.clone(), 0).unwrap();
    let writing = AtomicBool::new(true);
    let started = Instant::now();
    let (writes, reads) = thread::scope(|scope| {
        let writers: Vec<_> = (0..2u64)
            .map(|lane| {
                let (cache, key) = (&caches[lane as usize], &key);
                scope.spawn(move || {
                    let ctx = Context::background();
                    let mut written = Vec::new();
                    let mut step = 0;
                    while started.elapsed() < WRITING {
                        let read = cache.get(&ctx, key).unwrap().unwrap();
                        step += 1;
                        let value = lane * 1_000_000 + step;
                        if let Ok(version) = cache.update(&ctx, key, &read.version, value) {
                            written.push(Written {
                                expected: read.version,
                                version,
                                value,
                                returned: Instant::now(),
                            });
                        }
                    }
                    written
                })
            })
            .collect();
        let reader = scope.spawn(|| {
            let ctx = Context::background();
            let mut reads = Vec::new();
            let mut turn = 0;
            while writing.load(Ordering::SeqCst) {
                let invoked = Instant::now();
                let read = caches[turn % 3].get(&ctx, &key).unwrap().unwrap();
                reads.push((invoked, read.version, read.value));
                turn += 1;
            }
            reads
        });
        let writes: Vec<Written> = writers
            .into_iter()
            .flat_map(|writer| writer.join().unwrap())
            .collect();
        writing.store(false, Ordering::SeqCst);
        (writes, reader.join().unwrap())
    });
    // The versions in the order the database took them: each update names the one it
    // replaced.
    let by_expected: HashMap<Version, &Written> = writes.iter().map(|w| (w.expected, w)).collect();
    let mut chain = vec![(first, 0, None)];
    while let Some(next) = by_expected.get(&chain.last().unwrap().0) {
        chain.push((next.version, next.value, Some(next.returned)));
    }
    assert_eq!(chain.len(), writes.len() + 1, "the updates form one chain");
    let position: HashMap<Version, usize> = chain
        .iter()
        .enumerate()
        .map(|(at, (version, ..))| (*version, at))
        .collect();
    assert!(reads.len() > 100, "too few reads to judge: {}", reads.len());
    for (invoked, version, value) in &reads {
        let at = *position
            .get(version)
            .unwrap_or_else(|| panic!("read a version never written: {version}"));
        assert_eq!(
            chain[at].1, *value,
            "version {version} read with another value"
        );
        // The newest write that had returned long enough before this read began.
        let settled = chain
            .iter()
            .rposition(|(.., returned)| returned.is_some_and(|r| r + LAG <= *invoked))
            .unwrap_or(0);
        assert!(
            at >= settled,
            "a read lagged more than {LAG:?}: it saw write {at}, write {settled} had returned before"
        );
    }
    let hits: u64 = caches.iter().map(|cache| cache.stats().hits).sum();
    assert!(hits > 0, "no read was served from memory");
}

/// How long the writers of the convergence check write.
const CONVERGING: Duration = Duration::from_millis(1500);

#[test]
fn once_the_writes_stop_every_instance_serves_the_last_one() {
    // Blind writes back to back from several threads, while another instance reads:
    // whatever order its loads and the notifications land in, once the writes stop and
    // their notifications are in, its memory serves the last write.
    for round in 0..2 {
        let table = pg::table("near_converge");
        let (writer, reader): (NearCache<u32, u64>, NearCache<u32, u64>) =
            (near(&table), near(&table));
        let db = writer.database();
        let ctx = Context::background();
        db.insert(&ctx, 0, 0).unwrap();
        let writing = AtomicBool::new(true);
        let started = Instant::now();
        thread::scope(|scope| {
            for lane in 0..3u64 {
                let (reader, writing) = (&reader, &writing);
                scope.spawn(move || {
                    let ctx = Context::background();
                    while writing.load(Ordering::SeqCst) {
                        reader.get(&ctx, &0).unwrap();
                    }
                });
                scope.spawn(move || {
                    let ctx = Context::background();
                    let mut value = lane << 32;
                    while started.elapsed() < CONVERGING {
                        value += 1;
                        db.put(&ctx, 0, value).unwrap();
                    }
                });
            }
            thread::sleep(CONVERGING);
            // Quiet: every notification arrives while the readers go on.
            thread::sleep(Duration::from_millis(300));
            writing.store(false, Ordering::SeqCst);
        });
        let last = db.get(&ctx, &0).unwrap();
        assert_eq!(
            reader.get(&ctx, &0).unwrap(),
            last,
            "round {round}: memory serves a record older than the last write"
        );
    }
}

/// Whether the change trigger of `table` is on.
fn notifying(table: &str) -> bool {
    let sql = "SELECT tgenabled <> 'D' FROM pg_trigger \
               WHERE tgrelid = to_regclass($1) AND tgname = $2";
    raw()
        .query_one(sql, &[&format!("\"{table}\""), &format!("{table}_notify")])
        .unwrap()
        .get(0)
}

#[test]
fn the_trigger_notifies_only_while_somebody_is_registered() {
    let table = pg::table("near_registry");
    let db: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    assert!(!notifying(&table), "nobody listens, yet writes notify");
    let (one, two): (NearCache<String, u32>, NearCache<String, u32>) = (near(&table), near(&table));
    assert!(notifying(&table));
    drop(one);
    // The other one is still registered.
    thread::sleep(Duration::from_millis(200));
    assert!(
        notifying(&table),
        "a near-cache's registration was withdrawn by another's"
    );
    drop(two);
    assert!(
        within_bound(|| !notifying(&table)),
        "the last near-cache left the trigger on"
    );
    // A listener that died without withdrawing (its process is gone), as a table made by
    // an older version of the crate also looks: the next build withdraws it.
    let mut session = raw();
    session
        .batch_execute(&format!(
            "INSERT INTO \"{table}_listeners\" VALUES (2147483647); \
             ALTER TABLE \"{table}\" ENABLE TRIGGER \"{table}_notify\""
        ))
        .unwrap();
    drop(db);
    let _db: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    assert!(
        !notifying(&table),
        "a dead listener's registration keeps notifications on"
    );
    let left: i64 = session
        .query_one(&format!("SELECT count(*) FROM \"{table}_listeners\""), &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn a_write_in_flight_when_a_near_cache_registers_is_never_missed() {
    // Nobody listens, so the write below fires no notification; it commits only after
    // the near-cache was built and has read the key (if building does not wait for it).
    let table = pg::table("near_in_flight");
    let db: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::background();
    let key = "likes".to_string();
    db.insert(&ctx, key.clone(), 1).unwrap();
    let mut writer = raw();
    writer.batch_execute("BEGIN").unwrap();
    let sql = format!(
        "UPDATE \"{table}\" SET value = '2', version = nextval('\"{table}_version\"') \
         WHERE key = $1"
    );
    assert_eq!(writer.execute(&sql, &[&serde_json::json!(key)]).unwrap(), 1);
    let (read, has_read) = std::sync::mpsc::channel();
    let cache = thread::scope(|s| {
        let building = s.spawn(|| {
            let cache = NearCache::builder(db).build().unwrap();
            let first = cache.get(&Context::background(), &key).unwrap();
            read.send(()).unwrap();
            (cache, first)
        });
        // Building waits for the write to end: it must not have read before the commit.
        let early = has_read.recv_timeout(Duration::from_secs(2)).is_ok();
        writer.batch_execute("COMMIT").unwrap();
        let (cache, first) = building.join().unwrap();
        assert!(
            !early,
            "the near-cache read {first:?} while a write was in flight"
        );
        cache
    });
    thread::sleep(Duration::from_millis(100));
    assert_eq!(cache.get(&ctx, &key).unwrap().unwrap().value, 2);
}

/// A transaction commits through one near-cache: it reads its own writes at once, and
/// the other near-cache on the table sees every key of it within the bound; a refused
/// one leaves both serving the database's records.
#[test]
fn a_transaction_writes_through_and_both_near_caches_serve_its_records() {
    use verkv::{Outcome, Transaction, TransactionError};

    let table = pg::table("near_txn");
    let (one, two): (NearCache<String, i64>, NearCache<String, i64>) = (near(&table), near(&table));
    let ctx = Context::background();
    let [a, b, c] = ["a", "b", "c"].map(str::to_string);
    let va = one.insert(&ctx, a.clone(), 100).unwrap();
    let vb = one.insert(&ctx, b.clone(), 0).unwrap();
    let vc = one.insert(&ctx, c.clone(), 5).unwrap();
    let records = |cache: &NearCache<String, i64>| {
        [&a, &b, &c].map(|key| {
            cache
                .get(&ctx, key)
                .unwrap()
                .map(|record| (record.value, record.version))
        })
    };
    // Both hold copies of every key.
    assert_eq!(records(&one), records(&two));
    let done = one
        .commit(
            &ctx,
            Transaction::new()
                .update(a.clone(), va, 70)
                .update(b.clone(), vb, 30)
                .remove(c.clone(), vc),
        )
        .unwrap();
    let (Outcome::Written(va2), Outcome::Written(vb2)) = (&done[0], &done[1]) else {
        panic!("unexpected outcomes {done:?}");
    };
    let after = [Some((70, *va2)), Some((30, *vb2)), None];
    assert_eq!(
        records(&one),
        after,
        "the committing near-cache serves old copies"
    );
    assert!(
        within_bound(|| records(&two) == after),
        "the other near-cache still serves {:?} after {BOUND:?}",
        records(&two)
    );

    // Refused through `two` (its versions are stale): nothing changes, and both serve the
    // database's records.
    let refused = two
        .commit(
            &ctx,
            Transaction::new()
                .update(a.clone(), va, 0)
                .create(c.clone(), 1),
        )
        .unwrap_err();
    assert!(
        matches!(refused.error, TransactionError::Conflict(_)),
        "{}",
        refused.error
    );
    assert_eq!(records(&two), after);
    assert_eq!(records(&one), after);
    assert_eq!(
        VersionedStore::get_many(&two, &ctx, &[a.clone(), b.clone(), c.clone()])
            .unwrap()
            .into_iter()
            .map(|record| record.map(|record| (record.value, record.version)))
            .collect::<Vec<_>>(),
        after.to_vec()
    );

    // Read your own writes, at once, round after round: the committing near-cache's
    // own notifications would drop copies it failed to update within microseconds, so
    // one round alone may not see them; many rounds do.
    let [Some((_, mut va)), Some((_, mut vb)), None] = after else {
        unreachable!("checked above")
    };
    for round in 0..50 {
        let transaction =
            Transaction::new()
                .update(a.clone(), va, round)
                .update(b.clone(), vb, -round);
        let done = one.commit(&ctx, transaction).unwrap();
        let (Outcome::Written(new_a), Outcome::Written(new_b)) = (&done[0], &done[1]) else {
            panic!("unexpected outcomes {done:?}");
        };
        (va, vb) = (*new_a, *new_b);
        assert_eq!(
            records(&one),
            [Some((round, va)), Some((-round, vb)), None],
            "round {round}: the committing near-cache serves old copies"
        );
    }
}
