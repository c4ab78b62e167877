//! Transactions across keys and the atomic multi-key read: what they apply, what they
//! refuse (with nothing changed), and how they meet the cache layer.

use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use verkv::{
    Conflict, Expect, Interrupted, ManualClock, Outcome, Phase, RemovalCause, Store, Transaction,
    TransactionError,
};

type Txn = Transaction<u64, u64, u64>;

/// Two keys that share no shard, and two that share one.
fn keys_apart_and_together(store: &Store<u64, u64>) -> ((u64, u64), (u64, u64)) {
    let shard = |key: &u64| store.shard_of(key);
    let mut apart = None;
    let mut together = None;
    for a in 0..64u64 {
        for b in a + 1..64 {
            if shard(&a) == shard(&b) {
                together.get_or_insert((a, b));
            } else {
                apart.get_or_insert((a, b));
            }
        }
    }
    (apart.unwrap(), together.unwrap())
}

#[test]
fn a_transaction_applies_every_write_and_returns_each_version() {
    let store: Store<u64, u64> = Store::new();
    let a = store.insert(1, 10).unwrap();
    let b = store.insert(2, 20).unwrap();
    let done = store
        .commit(
            Txn::new()
                .update(1, a, 11)
                .remove(2, b)
                .create(3, 30)
                .put(4, 40)
                .compare_absent(5),
        )
        .unwrap();
    let read = store.get_many(&[&1, &2, &3, &4]);
    let values: Vec<_> = read.iter().map(|r| r.as_ref().map(|r| r.value)).collect();
    assert_eq!(values, vec![Some(11), None, Some(30), Some(40)]);
    // Each write answers the version its record now has (counters are per shard, so the
    // fresh keys' versions depend on which shards they share).
    let version = |at: usize| read[at].as_ref().map(|r| r.version).unwrap();
    assert_eq!(
        done,
        vec![
            Outcome::Written(version(0)),
            Outcome::Removed,
            Outcome::Written(version(2)),
            Outcome::Written(version(3)),
            Outcome::Compared
        ]
    );
    assert!(version(0) > a, "the update moved key 1 past {a}");
}

#[test]
fn a_conflict_names_every_failed_condition_and_applies_nothing() {
    let store: Store<u64, u64> = Store::builder().hot_keys(4).build();
    let a = store.insert(1, 10).unwrap();
    let b = store.insert(2, 20).unwrap();
    store.update(&2, &b, 21).unwrap();
    store.insert(3, 30).unwrap();
    let refused = store
        .commit(
            Txn::new()
                .update(1, a, 11)
                .update(2, b, 22)
                .create(3, 31)
                .compare(4, 1)
                .put(5, 50),
        )
        .unwrap_err();
    assert_eq!(
        refused.error,
        TransactionError::Conflict(vec![
            Conflict {
                key: 2,
                expected: Expect::Version(1),
                current: Some(2)
            },
            Conflict {
                key: 3,
                expected: Expect::Absent,
                current: Some(1)
            },
            Conflict {
                key: 4,
                expected: Expect::Version(1),
                current: None
            },
        ])
    );
    assert_eq!(
        refused.error.to_string(),
        "transaction conflict on 3 keys: 2 expected version 1, current 2; \
         3 expected absent, current 1; 4 expected version 1, current absent"
    );
    assert_eq!(refused.transaction.len(), 5, "the transaction comes back");
    assert_eq!(store.get(&1).unwrap().value, 10);
    assert_eq!(store.get(&5), None);
    let stats = store.stats().unwrap();
    assert_eq!((stats.transactions, stats.transaction_conflicts), (0, 1));
    let hot: Vec<u64> = store
        .stats_top_conflicts()
        .iter()
        .map(|hot| hot.key)
        .collect();
    assert!(
        hot.contains(&2) && hot.contains(&3) && hot.contains(&4),
        "{hot:?}"
    );
    store.commit(Txn::new().put(5, 50)).unwrap();
    assert_eq!(store.stats().unwrap().transactions, 1);
}

#[test]
fn bad_input_is_refused_with_nothing_changed() {
    let store: Store<u64, u64> = Store::new();
    let empty = store.commit(Txn::new()).unwrap_err();
    assert_eq!(empty.error, TransactionError::Empty);
    let twice = store
        .commit(Txn::new().put(1, 1).compare_absent(1))
        .unwrap_err();
    assert_eq!(twice.error, TransactionError::Repeated(1));
    assert_eq!(
        twice.error.to_string(),
        "key 1 appears in more than one step of the transaction"
    );
    assert!(store.is_empty());

    let bounded: Store<u64, u64> = Store::builder().max_capacity(4).shards(1).build();
    let too_many = (0..5).fold(Txn::new(), |txn, key| txn.put(key, key));
    let refused = bounded.commit(too_many).unwrap_err();
    assert_eq!(
        refused.error,
        TransactionError::TooHeavy {
            weight: 5,
            capacity: 4
        }
    );
    assert!(bounded.is_empty());

    let reentrant = store.insert(7, 7).unwrap();
    store
        .update_with(&7, &reentrant, |value| {
            let inside = store.commit(Txn::new().put(8, 8)).unwrap_err();
            assert_eq!(inside.error, TransactionError::Reentrant);
            value + 1
        })
        .unwrap();
    assert_eq!(store.get(&8), None);
}

#[test]
fn a_condition_on_an_expired_record_finds_it_absent() {
    let clock = ManualClock::new();
    let store: Store<u64, u64> = Store::builder()
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(5))
        .build();
    let v1 = store.insert(1, 1).unwrap();
    clock.advance(Duration::from_secs(5));
    let refused = store.commit(Txn::new().update(1, v1, 2)).unwrap_err();
    assert_eq!(
        refused.error,
        TransactionError::Conflict(vec![Conflict {
            key: 1,
            expected: Expect::Version(v1),
            current: None
        }])
    );
    let created = store
        .commit(Txn::new().create(1, 3).compare_absent(2))
        .unwrap();
    assert!(matches!(created[0], Outcome::Written(version) if version > v1));
    assert_eq!(store.get(&1).unwrap().value, 3);
}

#[test]
fn a_bounded_store_never_evicts_what_the_transaction_wrote() {
    let store: Store<u64, u64> = Store::builder().max_capacity(8).shards(1).build();
    for key in 100..108 {
        store.put(key, key).unwrap();
        store.get(&key); // read again: the policy would rather keep them
    }
    let written = (0..8).fold(Txn::new(), |txn, key| txn.put(key, key));
    store.commit(written).unwrap();
    assert!(store.len() <= 8);
    for key in 0..8 {
        assert_eq!(
            store.get(&key).map(|read| read.value),
            Some(key),
            "key {key} was evicted"
        );
    }
}

#[test]
fn the_listener_hears_each_removal_once_after_the_locks_are_let_go() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let store: Arc<Store<u64, u64>> = Arc::new_cyclic(|weak: &std::sync::Weak<Store<u64, u64>>| {
        let heard = Arc::clone(&heard);
        let weak = weak.clone();
        Store::builder()
            .eviction_listener(move |key, value, cause| {
                // Reading the store from the listener would wait forever under a lock.
                let store = weak.upgrade().unwrap();
                let others = store.get_many(&[&1, &2, &3]).iter().flatten().count();
                heard.lock().unwrap().push((key, value, cause, others));
            })
            .build()
    });
    let a = store.insert(1, 10).unwrap();
    let b = store.insert(2, 20).unwrap();
    store
        .commit(
            Transaction::new()
                .remove(1, a)
                .update(2, b, 21)
                .create(3, 30),
        )
        .unwrap();
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_by_key(|&(key, ..)| key);
    assert_eq!(
        heard,
        vec![
            (1, 10, RemovalCause::Removed, 2),
            (2, 20, RemovalCause::Replaced, 2)
        ]
    );
}

#[test]
fn a_deadline_covers_the_queue_on_every_shard_and_names_the_phase() {
    let store: Store<u64, u64> = Store::new();
    let ((a, b), _) = keys_apart_and_together(&store);
    let (first, second) = if store.shard_of(&a) < store.shard_of(&b) {
        (a, b)
    } else {
        (b, a)
    };
    store.insert(first, 1).unwrap();
    let holding = Barrier::new(2);
    let done = Barrier::new(2);
    thread::scope(|scope| {
        scope.spawn(|| {
            // Holds the second shard's lock from inside a closure.
            let held = store.insert(second, 0).unwrap();
            store
                .update_with(&second, &held, |value| {
                    holding.wait();
                    done.wait();
                    *value
                })
                .unwrap();
        });
        holding.wait();
        let refused = store
            .within(Duration::from_millis(20))
            .commit(Transaction::new().put(first, 2).put(second, 2))
            .unwrap_err();
        done.wait();
        let TransactionError::Interrupted {
            stopped: Interrupted::TimedOut(late),
            locked,
            shards,
        } = refused.error
        else {
            panic!("{:?}", refused.error)
        };
        assert_eq!((late.phase(), locked, shards), (Phase::Queued, 1, 2));
        assert!(refused
            .error
            .to_string()
            .contains("held 1 of the 2 shard locks"));
    });
    assert_eq!(store.get(&first).unwrap().value, 1, "nothing applied");
}

#[test]
fn transactions_in_opposite_key_orders_conserve_the_total() {
    let store: Store<u64, u64> = Store::builder().shards(4).build();
    for account in 0..4 {
        store.insert(account, 1000).unwrap();
    }
    thread::scope(|scope| {
        for thread in 0..4u64 {
            let store = &store;
            scope.spawn(move || {
                for round in 0..500u64 {
                    let (from, to) = ((thread + round) % 4, (thread + round + 1 + thread % 3) % 4);
                    if from == to {
                        continue;
                    }
                    let keys = if thread % 2 == 0 {
                        [from, to]
                    } else {
                        [to, from]
                    };
                    store
                        .transact(&keys, |read| {
                            let (x, y) = (
                                read[0].as_ref().unwrap().value,
                                read[1].as_ref().unwrap().value,
                            );
                            if x == 0 {
                                return Err("empty");
                            }
                            Ok(Transaction::new().put(keys[0], x - 1).put(keys[1], y + 1))
                        })
                        .ok();
                    let all = store.get_many(&[&0, &1, &2, &3]);
                    let total: u64 = all.iter().map(|r| r.as_ref().unwrap().value).sum();
                    assert_eq!(total, 4000, "a read saw half a transaction");
                }
            });
        }
    });
    let total: u64 = (0..4).map(|key| store.get(&key).unwrap().value).sum();
    assert_eq!(total, 4000);
}

#[test]
fn a_read_of_a_fixed_set_answers_as_get_many_and_never_sees_half_a_transaction() {
    let store: Store<u64, u64> = Store::builder().shards(4).build();
    for account in 0..4 {
        store.insert(account, 1000).unwrap();
    }
    let ((a, b), (c, d)) = keys_apart_and_together(&store);
    let as_get_many = |keys: [&u64; 4]| {
        assert_eq!(store.get_many_array(keys).to_vec(), store.get_many(&keys));
    };
    as_get_many([&0, &1, &2, &3]);
    as_get_many([&3, &0, &99, &0]);
    as_get_many([&a, &b, &c, &d]);
    as_get_many([&d, &c, &b, &a]);
    assert_eq!(store.get_many_array::<u64, 0>([]), []);
    // Transfers in pairs of keys, while fixed reads of every account check the total.
    let transfers = 2000u64;
    thread::scope(|scope| {
        for thread in 0..2u64 {
            let store = &store;
            scope.spawn(move || {
                for round in 0..transfers {
                    let (from, to) = ((thread + round) % 4, (thread + 2 * round + 1) % 4);
                    if from == to {
                        continue;
                    }
                    let [x, y] = store.get_many_array([&from, &to]).map(Option::unwrap);
                    if x.value == 0 {
                        continue;
                    }
                    let moved = Transaction::new()
                        .update(from, x.version, x.value - 1)
                        .update(to, y.version, y.value + 1);
                    let _ = store.commit(moved);
                }
            });
        }
        for _ in 0..2 {
            let store = &store;
            scope.spawn(move || {
                for _ in 0..transfers {
                    let all = store.get_many_array([&0, &1, &2, &3]);
                    let total: u64 = all.iter().map(|r| r.as_ref().unwrap().value).sum();
                    assert_eq!(total, 4000, "a read saw half a transaction");
                }
            });
        }
    });
}

#[test]
fn transact_retries_a_conflict_and_stops_at_the_closure_s_refusal() {
    let store: Store<u64, u64> = Store::new();
    store.insert(1, 5).unwrap();
    let mut first = true;
    let done = store
        .transact(&[1, 2], |read| {
            if std::mem::take(&mut first) {
                // Somebody writes the key between the read and the commit.
                let current = store.get(&1).unwrap();
                store.update(&1, &current.version, 6).unwrap();
            }
            assert!(read[1].is_none());
            Ok::<_, ()>(Transaction::new().put(2, read[0].as_ref().unwrap().value))
        })
        .unwrap();
    assert_eq!(done.attempts, 2);
    assert_eq!(
        store.get(&2).unwrap().value,
        6,
        "computed from the second read"
    );
    let refused = store.transact(&[1], |_| Err::<Txn, _>("no")).unwrap_err();
    assert_eq!(refused, verkv::TransactError::Closure("no"));
}

#[test]
fn transact_gives_up_at_its_deadline_in_the_retrying_phase() {
    let store: Store<u64, u64> = Store::new();
    store.insert(1, 0).unwrap();
    let refused = store
        .within(Duration::from_millis(20))
        .transact(&[1], |read| {
            // Somebody always writes the key between the read and the commit.
            let current = read[0].as_ref().unwrap();
            store
                .update(&1, &current.version, current.value + 1)
                .unwrap();
            Ok::<_, ()>(Transaction::new().put(2, current.value))
        })
        .unwrap_err();
    let verkv::TransactError::Transaction(TransactionError::Interrupted {
        stopped: Interrupted::TimedOut(late),
        ..
    }) = refused
    else {
        panic!("{refused:?}")
    };
    assert!(
        matches!(late.phase(), Phase::Retrying { attempts } if attempts > 0),
        "{late:?}"
    );
    assert_eq!(store.get(&2), None, "no attempt wrote");
}

#[test]
fn a_cancelled_view_reads_and_commits_nothing() {
    let store: Store<u64, u64> = Store::new();
    let token = verkv::CancelToken::new();
    token.cancel();
    let view = store.bounded().with_cancel(&token);
    assert_eq!(view.get_many(&[&1, &2]), Err(Interrupted::Cancelled));
    let refused = view.commit(Txn::new().put(1, 1).put(2, 2)).unwrap_err();
    let shards = usize::from(store.shard_of(&1) != store.shard_of(&2)) + 1;
    assert_eq!(
        refused.error,
        TransactionError::Interrupted {
            stopped: Interrupted::Cancelled,
            locked: 0,
            shards
        }
    );
    assert!(store.is_empty());
}

#[test]
fn a_bounded_store_weighs_the_transaction_s_records_together() {
    let store: Store<u64, u64> = Store::builder()
        .max_capacity(10)
        .shards(1)
        .weigher(|_, value| *value as u32)
        .build();
    let refused = store.commit(Txn::new().put(1, 6).put(2, 6)).unwrap_err();
    assert_eq!(
        refused.error,
        TransactionError::TooHeavy {
            weight: 12,
            capacity: 10
        }
    );
    let refused = store.commit(Txn::new().put(1, 11)).unwrap_err();
    assert_eq!(
        refused.error,
        TransactionError::TooHeavy {
            weight: 11,
            capacity: 10
        }
    );
    assert_eq!(
        refused.error.to_string(),
        "transaction too large: its records in one shard weigh 11, at most 10 fits"
    );
    assert!(store.is_empty());
    store.commit(Txn::new().put(1, 4).put(2, 6)).unwrap();
    assert_eq!(store.len(), 2);
}

#[test]
fn a_transaction_wakes_whoever_waits_for_a_change() {
    let store: Store<u64, u64> = Store::new();
    let v1 = store.insert(1, 0).unwrap();
    thread::scope(|scope| {
        let waiter = scope.spawn(|| store.wait_for_change(&1, Some(&v1)));
        thread::sleep(Duration::from_millis(20));
        store.commit(Txn::new().update(1, v1, 5).put(2, 2)).unwrap();
        assert_eq!(waiter.join().unwrap().map(|read| read.value), Some(5));
    });
}
