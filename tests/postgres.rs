//! The conformance suite on PostgreSQL, and what only a server can show: deadlines
//! enforced by the server (queued on a row lock or for a pooled connection, running past
//! the deadline), cancellation on the server, and waiting for a change through
//! `LISTEN`/`NOTIFY`. Needs `VERKV_POSTGRES_URL` (see `.ci/test`); fails without it.

mod support;

use support::{conformance, linearizability as checker, pg, serializability, stress};

use std::thread;
use std::time::{Duration, Instant};

use checker::Versions;
use proptest::prelude::*;
use stress::{run_round, Backend, Round};
use verkv::postgres::PgStore;
use verkv::{CancelToken, Cause, Context, Error, Phase, UuidV4, VersionedStore};

/// Fewer cases than on the in-memory store (256): each one creates a table.
const MODEL_CASES: u32 = 48;
const STRESS_ROUNDS: u64 = 12;
const STRESS: Round = Round {
    evictions: false,
    threads: 4,
    keys: 2,
    operations_per_thread: 60,
    versions: Versions::Unique,
};

fn store<K, V>(prefix: &str) -> PgStore<K, V> {
    PgStore::builder(pg::url())
        .table(pg::table(prefix))
        .build()
        .unwrap_or_else(|cause| panic!("cannot open a store at VERKV_POSTGRES_URL: {cause}"))
}

/// A plain client, for what the tests do behind the store's back.
fn raw() -> postgres::Client {
    postgres::Client::connect(&pg::url(), postgres::NoTls).unwrap()
}

/// The server's URL (either form) with database `database` instead.
fn url_of_database(database: &str) -> String {
    let url = pg::url();
    for scheme in ["postgresql://", "postgres://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let query = rest.find('?').map_or("", |at| &rest[at..]);
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            return format!("{scheme}{authority}/{database}{query}");
        }
    }
    // A `key=value` string: the last value of a key counts.
    format!("{url} dbname={database}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(MODEL_CASES))]

    #[test]
    fn counter_store_conforms(steps in conformance::steps(4, 60)) {
        let store: PgStore<conformance::Key, conformance::Value> = store("model");
        conformance::Model::run(&store, &steps);
    }

    #[test]
    fn uuid_store_conforms(steps in conformance::steps(4, 60)) {
        let store: PgStore<conformance::Key, conformance::Value, UuidV4> =
            PgStore::builder(pg::url())
                .table(pg::table("model_uuid"))
                .versions::<UuidV4>()
                .build()
                .unwrap();
        conformance::Model::run(&store, &steps);
    }
}

#[test]
fn histories_are_linearizable() {
    for round in 0..STRESS_ROUNDS {
        let store: PgStore<stress::Key, checker::Value> = store("stress");
        if let Err(violation) = run_round(&Backend(&store), STRESS, round) {
            panic!("round {round}: {violation}");
        }
    }
}

#[test]
fn versions_never_repeat_after_remove_and_recreate() {
    let store: PgStore<String, u32> = store("recreate");
    let ctx = Context::background();
    let key = "k".to_string();
    let mut seen = Vec::new();
    for round in 0..5 {
        let v = store.insert(&ctx, key.clone(), round).unwrap();
        let v2 = store.update(&ctx, &key, &v, round + 1).unwrap();
        assert!(!seen.contains(&v) && !seen.contains(&v2));
        seen.extend([v, v2]);
        store.remove(&ctx, &key, &v2).unwrap();
        let refused = store.update(&ctx, &key, &v2, 9).unwrap_err();
        assert_eq!(refused.error, Error::NotFound);
    }
}

#[test]
fn two_stores_on_one_table_refuse_each_others_stale_writes() {
    let table = pg::table("shared");
    let open = || -> PgStore<String, String> {
        PgStore::builder(pg::url()).table(&table).build().unwrap()
    };
    let (a, b) = (open(), open());
    let ctx = Context::background();
    let key = "movie".to_string();
    let v1 = a.insert(&ctx, key.clone(), "Heat".into()).unwrap();
    let read = b.get(&ctx, &key).unwrap().unwrap();
    assert_eq!((read.value.as_str(), read.version), ("Heat", v1));
    let v2 = b.update(&ctx, &key, &v1, "Heat (1995)".into()).unwrap();
    let refused = a.update(&ctx, &key, &v1, "Heat!".into()).unwrap_err();
    assert_eq!(
        refused.error,
        Error::Stale {
            expected: v1,
            current: v2
        }
    );
    assert_eq!(refused.value, "Heat!");
}

#[test]
fn a_table_made_with_other_versions_is_refused_when_the_store_is_built() {
    let table = pg::table("other_versions");
    let counter: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    counter
        .insert(&Context::background(), "k".to_string(), 1)
        .unwrap();
    let refused = PgStore::<String, u32>::builder(pg::url())
        .table(&table)
        .versions::<UuidV4>()
        .build()
        .unwrap_err();
    assert_eq!(
        refused.message(),
        format!(
            "table \"{table}\" does not match the store: \
             column \"version\" is of type bigint, expected uuid"
        )
    );
    // The table is left as it was.
    let read = counter.get(&Context::background(), &"k".to_string());
    assert_eq!(read.unwrap().unwrap().value, 1);
}

#[test]
fn a_table_with_a_value_column_of_another_type_is_refused_when_the_store_is_built() {
    let table = pg::table("text_values");
    raw()
        .batch_execute(&format!(
            "CREATE TABLE \"{table}\" (key jsonb PRIMARY KEY, value text NOT NULL, \
             version bigint NOT NULL)"
        ))
        .unwrap();
    let refused = PgStore::<String, u32>::builder(pg::url())
        .table(&table)
        .build()
        .unwrap_err();
    assert_eq!(
        refused.message(),
        format!(
            "table \"{table}\" does not match the store: \
             column \"value\" is of type text, expected jsonb"
        )
    );
}

/// Holds the row lock of `key` in an open transaction until dropped.
struct RowLock {
    _session: postgres::Client,
}

impl RowLock {
    fn take(table: &str, key: &str) -> RowLock {
        let mut client = raw();
        client.batch_execute("BEGIN").unwrap();
        let json = serde_json::Value::String(key.to_string());
        let sql = format!("SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE");
        assert_eq!(client.query(&sql, &[&json]).unwrap().len(), 1);
        RowLock { _session: client }
    }
}

#[test]
fn a_write_queued_on_a_row_lock_times_out_as_queued_with_no_effect() {
    let table = pg::table("rowlock");
    let store: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .unwrap();
    let lock = RowLock::take(&table, "k");
    let started = Instant::now();
    let refused = store
        .update(&Context::within(Duration::from_millis(200)), &key, &v1, 2)
        .unwrap_err();
    let took = started.elapsed();
    drop(lock);
    match refused.error {
        Error::TimedOut(timed_out) => assert_eq!(timed_out.phase(), Phase::Queued),
        other => panic!("expected a queued timeout, got {other}"),
    }
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    let now = store.get(&Context::background(), &key).unwrap().unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

/// Makes every update of `table` take `seconds` on the server.
fn slow_updates(table: &str, seconds: f64) {
    raw()
        .batch_execute(&format!(
            "CREATE FUNCTION \"{table}_slow\"() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$; \
             CREATE TRIGGER \"{table}_slow\" BEFORE UPDATE ON \"{table}\" \
             FOR EACH ROW EXECUTE FUNCTION \"{table}_slow\"();"
        ))
        .unwrap();
}

#[test]
fn a_write_running_past_its_deadline_is_cancelled_by_the_server_with_no_effect() {
    let table = pg::table("running");
    let store: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .unwrap();
    slow_updates(&table, 5.0);
    let started = Instant::now();
    let refused = store
        .update(&Context::within(Duration::from_millis(300)), &key, &v1, 2)
        .unwrap_err();
    let took = started.elapsed();
    match refused.error {
        Error::TimedOut(timed_out) => assert_eq!(timed_out.phase(), Phase::Running),
        other => panic!("expected a running timeout, got {other}"),
    }
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let now = store.get(&Context::background(), &key).unwrap().unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

#[test]
fn a_cancelled_write_is_cancelled_on_the_server_with_no_effect() {
    let table = pg::table("cancel");
    let store: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .unwrap();
    slow_updates(&table, 5.0);
    let token = CancelToken::new();
    let started = Instant::now();
    let refused = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(200));
            token.cancel();
        });
        store
            .update(&Context::background().with_cancel(&token), &key, &v1, 2)
            .unwrap_err()
    });
    let took = started.elapsed();
    assert_eq!(refused.error, Error::Cancelled);
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    let now = store.get(&Context::background(), &key).unwrap().unwrap();
    assert_eq!((now.value, now.version), (1, v1));
}

#[test]
fn waiting_for_a_pooled_connection_counts_as_queued() {
    let store: PgStore<String, u32> = PgStore::builder(pg::url())
        .table(pg::table("pool"))
        .pool_size(1)
        .build()
        .unwrap();
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .unwrap();
    thread::scope(|s| {
        // Holds the only connection while it waits.
        let watcher = s.spawn(|| {
            store.wait_for_change(
                &Context::within(Duration::from_millis(800)),
                &key,
                Some(&v1),
            )
        });
        thread::sleep(Duration::from_millis(200));
        let refused = store
            .get(&Context::within(Duration::from_millis(100)), &key)
            .unwrap_err();
        match refused {
            Error::TimedOut(timed_out) => assert_eq!(timed_out.phase(), Phase::Queued),
            other => panic!("expected a queued timeout, got {other}"),
        }
        let quiet = watcher.join().unwrap().unwrap_err();
        assert!(matches!(quiet, Error::TimedOut(t) if t.phase() == Phase::Watching));
    });
}

#[test]
fn wait_for_change_wakes_on_a_write_from_another_store() {
    let table = pg::table("watch");
    let open =
        || -> PgStore<String, u32> { PgStore::builder(pg::url()).table(&table).build().unwrap() };
    let (watching, writing) = (open(), open());
    let ctx = Context::within(Duration::from_secs(10));
    let key = "k".to_string();
    // Absent: already differs from "seen at v1"; and returns at once.
    assert_eq!(watching.wait_for_change(&ctx, &key, Some(&1)), Ok(None));
    let v1 = writing.insert(&ctx, key.clone(), 1).unwrap();
    thread::scope(|s| {
        let waiter = s.spawn(|| watching.wait_for_change(&ctx, &key, Some(&v1)));
        thread::sleep(Duration::from_millis(200));
        writing.put(&ctx, "other".to_string(), 0).unwrap();
        let v2 = writing.update(&ctx, &key, &v1, 2).unwrap();
        let changed = waiter.join().unwrap().unwrap().unwrap();
        assert_eq!((changed.value, changed.version), (2, v2));
        // A removal is a change too.
        let (watching, ctx, key) = (&watching, &ctx, &key);
        let waiter = s.spawn(move || watching.wait_for_change(ctx, key, Some(&v2)));
        thread::sleep(Duration::from_millis(100));
        writing.remove(ctx, key, &v2).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(None));
    });
}

#[test]
fn wait_for_change_gives_up_at_its_deadline_or_when_cancelled() {
    let store: PgStore<String, u32> = store("watch_quiet");
    let key = "k".to_string();
    let v1 = store
        .insert(&Context::background(), key.clone(), 1)
        .unwrap();
    let quiet = store
        .wait_for_change(
            &Context::within(Duration::from_millis(150)),
            &key,
            Some(&v1),
        )
        .unwrap_err();
    assert!(matches!(quiet, Error::TimedOut(t) if t.phase() == Phase::Watching));
    let token = CancelToken::new();
    let cancelled = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(100));
            token.cancel();
        });
        store.wait_for_change(&Context::background().with_cancel(&token), &key, Some(&v1))
    });
    assert_eq!(cancelled, Err(Error::Cancelled));
}

#[test]
fn an_unreachable_server_is_unavailable_not_a_panic() {
    // A port nobody listens on: the pool cannot connect within its acquire timeout.
    let opened = PgStore::<String, u32>::builder("postgresql://postgres@127.0.0.1:9/postgres")
        .acquire_timeout(Duration::from_millis(300))
        .build();
    let cause = opened.unwrap_err();
    assert!(cause.message().contains("backend unavailable"), "{cause}");
}

#[test]
fn a_database_that_does_not_exist_is_refused_at_once_not_after_the_acquire_timeout() {
    let database = format!("verkv_missing_{}", std::process::id());
    // Far longer than the server takes to answer.
    let acquire = Duration::from_secs(10);
    let started = Instant::now();
    let refused = PgStore::<String, u32>::builder(url_of_database(&database))
        .acquire_timeout(acquire)
        .build()
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        refused.message(),
        format!(
            "backend misconfigured: the server refused the connection: \
             database \"{database}\" does not exist"
        )
    );
    // Not a measure of speed: only whether the build waited out the acquire timeout
    // (10 s) for an answer the server gave at once. The bound leaves a loaded machine
    // seconds for one refused connection.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_store_whose_database_is_dropped_answers_misconfigured_at_once() {
    let database = format!("verkv_dropped_{}", std::process::id());
    raw()
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .unwrap();
    // One connection, so that one operation at most meets it ended by the server.
    let store: PgStore<String, u32> = PgStore::builder(url_of_database(&database))
        .table("dropped")
        .pool_size(1)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let ctx = Context::background();
    let key = "k".to_string();
    store.insert(&ctx, key.clone(), 1).unwrap();
    // `FORCE` ends the store's pooled connection too: operations must connect again.
    raw()
        .batch_execute(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .unwrap();
    // The pooled connection may not be found ended before it is used: then one operation
    // fails on it, as one that lost its connection before it was sent, and the pool
    // discards it.
    let first = store.get(&ctx, &key).unwrap_err();
    assert!(
        matches!(first, Error::Unavailable(_) | Error::Misconfigured(_)),
        "{first}"
    );
    let started = Instant::now();
    let refused = store.get(&ctx, &key).unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        refused,
        Error::Misconfigured(Cause::new(format!(
            "the server refused the connection: database \"{database}\" does not exist"
        )))
    );
    // As above: whether the wait was cut short, not how fast it was.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_store_whose_table_is_dropped_answers_misconfigured() {
    let table = pg::table("dropped_table");
    let store: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::background();
    let key = "k".to_string();
    let v1 = store.insert(&ctx, key.clone(), 1).unwrap();
    raw()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
    let read = store.get(&ctx, &key).unwrap_err();
    assert!(matches!(read, Error::Misconfigured(_)), "{read}");
    assert!(read.to_string().contains("does not exist"), "{read}");
    let refused = store.update(&ctx, &key, &v1, 2).unwrap_err();
    assert!(
        matches!(refused.error, Error::Misconfigured(_)),
        "{}",
        refused.error
    );
}

#[test]
fn a_value_that_cannot_be_json_is_refused_before_anything_is_sent() {
    use std::collections::HashMap;
    let store: PgStore<String, HashMap<(u8, u8), u8>> = store("unencodable");
    let value = HashMap::from([((1, 2), 3)]);
    let refused = store
        .insert(&Context::background(), "k".to_string(), value.clone())
        .unwrap_err();
    assert!(
        matches!(refused.error, Error::BadRecord(_)),
        "{}",
        refused.error
    );
    assert_eq!(
        refused.error.to_string(),
        "bad record: cannot encode the value as JSON: key must be a string"
    );
    assert_eq!(refused.value, value);
    assert_eq!(
        store.get(&Context::background(), &"k".to_string()),
        Ok(None)
    );
}

#[test]
fn a_stored_value_of_another_type_is_a_bad_record_naming_the_key() {
    let table = pg::table("other_values");
    let movies: PgStore<String, serde_json::Value> =
        PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::within(Duration::from_secs(5));
    let key = "heat".to_string();
    let v1 = movies
        .insert(&ctx, key.clone(), serde_json::json!({ "title": "Heat" }))
        .unwrap();
    // The same table read as another value type: the table's columns are fine, the
    // record is not.
    let counts: PgStore<String, u32> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let expected = "bad record: cannot decode the stored value of key \"heat\": \
                    invalid type: map, expected u32";
    let read = counts.get(&ctx, &key).unwrap_err();
    assert!(matches!(read, Error::BadRecord(_)), "{read}");
    assert!(read.to_string().starts_with(expected), "{read}");
    let watched = counts.wait_for_change(&ctx, &key, None).unwrap_err();
    assert!(matches!(watched, Error::BadRecord(_)), "{watched}");
    assert!(watched.to_string().starts_with(expected), "{watched}");
    let updated = counts.update_with(&ctx, &key, &v1, |n| n + 1).unwrap_err();
    assert!(matches!(updated, Error::BadRecord(_)), "{updated}");
    // Nothing was written, and a blind write of the store's own type mends the record.
    assert_eq!(movies.get(&ctx, &key).unwrap().unwrap().version, v1);
    let v2 = counts.put(&ctx, key.clone(), 7).unwrap();
    let mended = counts.get(&ctx, &key).unwrap().unwrap();
    assert_eq!((mended.value, mended.version), (7, v2));
}

#[test]
fn an_operation_whose_deadline_has_passed_is_refused_before_anything_is_sent() {
    let store: PgStore<String, u32> = store("passed");
    let passed = Context::until(Instant::now());
    let refused = store.insert(&passed, "k".to_string(), 1).unwrap_err();
    assert!(
        matches!(refused.error, Error::TimedOut(t) if t.phase() == Phase::Queued),
        "{}",
        refused.error
    );
    assert_eq!(
        store.get(&Context::background(), &"k".to_string()),
        Ok(None)
    );
}

/// Transactions across keys and multi-key reads: all or nothing, conflicts naming every
/// failed condition, keys locked in one order (no deadlock, no lost update), absent keys
/// held against a concurrent create, deadlines, and histories checked for strict
/// serializability.
mod transactions {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use serializability::{
        answer, build, check, transaction, Answer, Call, Dice, Event, Key, Value,
    };
    use verkv::{Conflict, Expect, Interrupted, Outcome, Transaction, TransactionError};

    type Store = PgStore<String, i64>;

    fn ctx() -> Context<'static> {
        Context::within(Duration::from_secs(10))
    }

    fn key(name: &str) -> String {
        name.to_string()
    }

    fn value_of(store: &Store, name: &str) -> Option<(i64, u64)> {
        store
            .get(&ctx(), &key(name))
            .unwrap()
            .map(|record| (record.value, record.version))
    }

    #[test]
    fn a_transaction_writes_every_key_or_none_naming_every_failed_condition() {
        let store: Store = store("txn_all");
        let a = store.insert(&ctx(), key("a"), 100).unwrap();
        let b = store.insert(&ctx(), key("b"), 0).unwrap();
        let c = store.insert(&ctx(), key("c"), 7).unwrap();
        let moved = store
            .commit(
                &ctx(),
                Transaction::new()
                    .update(key("a"), a, 70)
                    .update(key("b"), b, 30)
                    .create(key("d"), 1)
                    .remove(key("c"), c)
                    .compare_absent(key("e")),
            )
            .unwrap();
        let [Outcome::Written(a2), Outcome::Written(b2), Outcome::Written(d), Outcome::Removed, Outcome::Compared] =
            moved[..]
        else {
            panic!("unexpected outcomes {moved:?}");
        };
        assert_eq!(value_of(&store, "a"), Some((70, a2)));
        assert_eq!(value_of(&store, "b"), Some((30, b2)));
        assert_eq!(value_of(&store, "d"), Some((1, d)));
        assert_eq!(value_of(&store, "c"), None);
        // The placeholder that held "e" absent never became a record.
        assert_eq!(value_of(&store, "e"), None);

        // Stale "a", "d" exists, "c" is gone: refused, naming all three, writing nothing.
        let refused = store
            .commit(
                &ctx(),
                Transaction::new()
                    .update(key("a"), a, 0)
                    .put(key("b"), 5)
                    .create(key("d"), 2)
                    .compare(key("c"), c)
                    .create(key("f"), 3),
            )
            .unwrap_err();
        assert_eq!(
            refused.error,
            TransactionError::Conflict(vec![
                Conflict {
                    key: key("a"),
                    expected: Expect::Version(a),
                    current: Some(a2)
                },
                Conflict {
                    key: key("d"),
                    expected: Expect::Absent,
                    current: Some(d)
                },
                Conflict {
                    key: key("c"),
                    expected: Expect::Version(c),
                    current: None
                },
            ])
        );
        assert_eq!(refused.transaction.len(), 5);
        assert_eq!(value_of(&store, "a"), Some((70, a2)));
        assert_eq!(value_of(&store, "b"), Some((30, b2)));
        assert_eq!(value_of(&store, "f"), None);
    }

    #[test]
    fn bad_transactions_are_refused_before_anything_is_sent() {
        let store: Store = store("txn_bad");
        let empty = store.commit(&ctx(), Transaction::new()).unwrap_err();
        assert_eq!(empty.error, TransactionError::Empty);
        let twice = store
            .commit(
                &ctx(),
                Transaction::new().put(key("a"), 1).create(key("a"), 2),
            )
            .unwrap_err();
        assert_eq!(twice.error, TransactionError::Repeated(key("a")));
        assert_eq!(value_of(&store, "a"), None);
    }

    #[test]
    fn get_many_reads_every_key_in_the_order_asked() {
        let store: Store = store("txn_read");
        let a = store.insert(&ctx(), key("a"), 1).unwrap();
        let read = store
            .get_many(&ctx(), &[key("b"), key("a"), key("a")])
            .unwrap();
        let read: Vec<_> = read
            .into_iter()
            .map(|record| record.map(|record| (record.value, record.version)))
            .collect();
        assert_eq!(read, vec![None, Some((1, a)), Some((1, a))]);
    }

    #[test]
    fn of_two_clients_creating_one_key_one_wins_and_the_other_is_told_its_version() {
        for round in 0..20 {
            let table = pg::table("txn_race");
            let stores: Vec<Store> = (0..2)
                .map(|_| PgStore::builder(pg::url()).table(&table).build().unwrap())
                .collect();
            let answers: Vec<_> = thread::scope(|scope| {
                let racers: Vec<_> = stores
                    .iter()
                    .enumerate()
                    .map(|(client, store)| {
                        scope.spawn(move || {
                            let mine = format!("mine{client}");
                            store.commit(
                                &ctx(),
                                Transaction::new()
                                    .create(key("order"), client as i64)
                                    .create(mine, 1),
                            )
                        })
                    })
                    .collect();
                racers
                    .into_iter()
                    .map(|racer| racer.join().unwrap())
                    .collect()
            });
            let winners: Vec<usize> = (0..2).filter(|&i| answers[i].is_ok()).collect();
            assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
            let winner = winners[0];
            let Outcome::Written(version) = answers[winner].as_ref().unwrap()[0] else {
                panic!("round {round}: {answers:?}");
            };
            let loser = answers[1 - winner].as_ref().unwrap_err();
            assert_eq!(
                loser.error,
                TransactionError::Conflict(vec![Conflict {
                    key: key("order"),
                    expected: Expect::Absent,
                    current: Some(version),
                }]),
                "round {round}"
            );
            let store = &stores[0];
            assert_eq!(value_of(store, "order"), Some((winner as i64, version)));
            assert_eq!(value_of(store, &format!("mine{}", 1 - winner)), None);
        }
    }

    /// Two threads move amounts between the same keys, naming them in opposite orders:
    /// every transaction completes (no deadlock), and no update is lost (the total is
    /// kept).
    #[test]
    fn transfers_in_opposite_key_orders_neither_deadlock_nor_lose_updates() {
        const KEYS: [&str; 2] = ["left", "right"];
        const TRANSFERS: usize = 150;
        let store: Store = store("txn_order");
        for name in KEYS {
            store.insert(&ctx(), key(name), 1000).unwrap();
        }
        let committed = AtomicU64::new(0);
        thread::scope(|scope| {
            for thread in 0..2 {
                let (store, committed) = (&store, &committed);
                scope.spawn(move || {
                    let (from, to) = if thread == 0 {
                        (key(KEYS[0]), key(KEYS[1]))
                    } else {
                        (key(KEYS[1]), key(KEYS[0]))
                    };
                    for _ in 0..TRANSFERS {
                        let read = store.get_many(&ctx(), &[from.clone(), to.clone()]).unwrap();
                        let (Some(f), Some(t)) = (&read[0], &read[1]) else {
                            panic!("a key vanished: {read:?}");
                        };
                        let moved = Transaction::new()
                            .update(from.clone(), f.version, f.value - 1)
                            .update(to.clone(), t.version, t.value + 1);
                        match store.commit(&ctx(), moved) {
                            Ok(_) => {
                                committed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(refused) => assert!(
                                matches!(refused.error, TransactionError::Conflict(_)),
                                "{}",
                                refused.error
                            ),
                        }
                    }
                });
            }
        });
        let total: i64 = KEYS
            .iter()
            .map(|name| value_of(&store, name).unwrap().0)
            .sum();
        assert_eq!(total, 2000, "money created or destroyed");
        assert!(committed.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn transfers_through_transact_conserve_the_total_and_retry_their_conflicts() {
        const TRANSFERS: u32 = 60;
        let store: Store = store("txn_transact");
        for name in ["left", "right"] {
            store.insert(&ctx(), key(name), 1000).unwrap();
        }
        let attempts: u32 = thread::scope(|scope| {
            let threads: Vec<_> = [["left", "right"], ["right", "left"]]
                .into_iter()
                .map(|names| {
                    let store = &store;
                    scope.spawn(move || {
                        let keys = names.map(key);
                        (0..TRANSFERS)
                            .map(|_| {
                                let done = store.transact(&ctx(), &keys, |read| {
                                    let (Some(from), Some(to)) = (&read[0], &read[1]) else {
                                        return Err("an account vanished");
                                    };
                                    Ok(Transaction::new()
                                        .put(keys[0].clone(), from.value - 1)
                                        .put(keys[1].clone(), to.value + 1))
                                });
                                done.unwrap().attempts
                            })
                            .sum::<u32>()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        let total: i64 = ["left", "right"]
            .iter()
            .map(|name| value_of(&store, name).unwrap().0)
            .sum();
        assert_eq!(total, 2000, "money created or destroyed");
        assert!(attempts >= 2 * TRANSFERS);
    }

    #[test]
    fn a_transaction_queued_on_a_row_lock_times_out_as_queued_and_writes_nothing() {
        let table = pg::table("txn_lock");
        let store: Store = PgStore::builder(pg::url()).table(&table).build().unwrap();
        let a = store.insert(&ctx(), key("a"), 1).unwrap();
        let k = store.insert(&ctx(), key("k"), 1).unwrap();
        let lock = RowLock::take(&table, "k");
        let started = Instant::now();
        let refused = store
            .commit(
                &Context::within(Duration::from_millis(200)),
                Transaction::new()
                    .update(key("a"), a, 2)
                    .update(key("k"), k, 2),
            )
            .unwrap_err();
        let took = started.elapsed();
        drop(lock);
        match refused.error {
            TransactionError::Interrupted {
                stopped: Interrupted::TimedOut(timed_out),
                ..
            } => assert_eq!(timed_out.phase(), Phase::Queued),
            other => panic!("expected a queued timeout, got {other}"),
        }
        assert!(took < Duration::from_millis(1000), "took {took:?}");
        assert_eq!(value_of(&store, "a"), Some((1, a)));
        assert_eq!(value_of(&store, "k"), Some((1, k)));
    }

    /// A create waits for a transaction that holds the key absent, and then finds the
    /// key as that transaction left it.
    #[test]
    fn a_key_held_absent_by_a_transaction_is_not_created_under_it() {
        let table = pg::table("txn_absent");
        let store: Store = PgStore::builder(pg::url()).table(&table).build().unwrap();
        let k = store.insert(&ctx(), key("k"), 1).unwrap();
        let lock = RowLock::take(&table, "k");
        thread::scope(|scope| {
            // Holds "absent" absent (it comes first in the lock order), then waits on "k".
            let transaction = scope.spawn(|| {
                store.commit(
                    &ctx(),
                    Transaction::new()
                        .compare_absent(key("absent"))
                        .update(key("k"), k, 2),
                )
            });
            thread::sleep(Duration::from_millis(200));
            let create = scope.spawn(|| store.insert(&ctx(), key("absent"), 5));
            thread::sleep(Duration::from_millis(200));
            assert!(!create.is_finished(), "the create did not wait");
            drop(lock);
            assert!(transaction.join().unwrap().is_ok());
            assert!(create.join().unwrap().is_ok());
        });
        assert_eq!(value_of(&store, "absent").map(|(value, _)| value), Some(5));
    }

    /// Each thread reads all three keys and commits a transaction built from the read:
    /// a transfer between two records, a create of a missing one under a compare, or a
    /// removal under a compare. Every history is checked for strict serializability.
    #[test]
    fn transaction_histories_are_strictly_serializable() {
        const KEYS: Key = 3;
        const THREADS: usize = 3;
        const OPERATIONS: usize = 8;
        const ROUNDS: u64 = 12;
        for round in 0..ROUNDS {
            let store: PgStore<Key, Value> = store("txn_serial");
            let clock = AtomicU64::new(0);
            let keys: Vec<Key> = (0..KEYS).collect();
            let history: Vec<Event> = thread::scope(|scope| {
                let threads: Vec<_> = (0..THREADS)
                    .map(|thread| {
                        let (clock, keys, store) = (&clock, &keys, &store);
                        scope.spawn(move || {
                            let mut dice = Dice(
                                (round << 8 | thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                                    | 1,
                            );
                            let tick = || clock.fetch_add(1, Ordering::SeqCst);
                            let mut events = Vec::new();
                            for operation in 0..OPERATIONS {
                                let invoked = tick();
                                let read = store.get_many(&ctx(), keys).unwrap();
                                let returned = tick();
                                let read: Vec<_> = read
                                    .into_iter()
                                    .map(|r| r.map(|r| (r.value, r.version)))
                                    .collect();
                                events.push(Event {
                                    thread,
                                    invoked,
                                    returned,
                                    call: Call::GetMany(keys.clone()),
                                    answer: Answer::Read(read.clone()),
                                });
                                let unique = (thread * OPERATIONS + operation) as Value;
                                let steps = build(&read, &mut dice, unique);
                                let invoked = tick();
                                let got = store.commit(&ctx(), transaction(&steps));
                                let returned = tick();
                                events.push(Event {
                                    thread,
                                    invoked,
                                    returned,
                                    call: Call::Transaction(steps),
                                    answer: answer(got),
                                });
                            }
                            events
                        })
                    })
                    .collect();
                threads
                    .into_iter()
                    .flat_map(|thread| thread.join().unwrap())
                    .collect()
            });
            if let Err(violation) = check(&history, usize::from(KEYS), Versions::Unique) {
                panic!("round {round}: {violation}");
            }
        }
    }
}

/// A transaction whose connection dies while its `COMMIT` runs: the outcome is unknown.
#[test]
fn transactions_a_connection_lost_during_commit_is_an_unknown_outcome() {
    use verkv::{Transaction, TransactionError};

    let table = pg::table("txn_commit");
    let store: PgStore<String, i64> = PgStore::builder(pg::url()).table(&table).build().unwrap();
    let ctx = Context::within(Duration::from_secs(10));
    let a = store.insert(&ctx, "a".to_string(), 1).unwrap();
    // A deferred trigger runs at COMMIT and makes it take a while.
    raw()
        .batch_execute(&format!(
            "CREATE FUNCTION \"{table}_slow_commit\"() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER \"{table}_slow_commit\" AFTER UPDATE ON \"{table}\" \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"{table}_slow_commit\"();"
        ))
        .unwrap();
    thread::scope(|scope| {
        let killer = scope.spawn(|| {
            let mut client = raw();
            let give_up = Instant::now() + Duration::from_secs(5);
            while Instant::now() < give_up {
                let killed: Vec<postgres::Row> = client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE query = 'COMMIT' AND state = 'active' AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .unwrap();
                if !killed.is_empty() {
                    return true;
                }
                thread::sleep(Duration::from_millis(20));
            }
            false
        });
        let refused = store
            .commit(
                &ctx,
                Transaction::new()
                    .update("a".to_string(), a, 2)
                    .put("b".to_string(), 3),
            )
            .unwrap_err();
        assert!(killer.join().unwrap(), "the COMMIT was never seen running");
        assert!(
            matches!(
                refused.error,
                TransactionError::Failed(Error::OutcomeUnknown(_))
            ),
            "{}",
            refused.error
        );
    });
}
