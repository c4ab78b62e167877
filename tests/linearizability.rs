//! Stress tests whose histories are checked for linearizability, key by key.
//!
//! Real threads run `get` / `insert` / `update` / `remove` on a few keys and record every
//! call: arguments, answer, and invoke and return times on a shared clock. The checker
//! then looks for an order of the calls that respects real time and the sequential
//! specification. It accepts every history of the store, and it rejects the histories of
//! a deliberately broken store that checks the version under a read lock and writes under
//! a separate write lock.

mod support;

use support::{linearizability as checker, serializability, stress};

use std::collections::HashMap;
use std::sync::RwLock;
use std::thread;

use checker::{check, check_evicting, Answer, Call, Event, Value, Version, Versions, Violation};
use stress::{run_round, Backend, Key, KeyValue, Round};
use verkv::Store;

/// Under Miri (which runs these tests to look for undefined behaviour and data races in
/// the locking), a short run is enough and a long one would take far too long: one round
/// of four threads doing six read-then-write steps each still races them on two keys
/// (Miri's scheduler preempts at random), and the checker still checks the whole history.
/// The interpreted time grows with the steps: two rounds of ten took about 16 s a test.
const SHAPE: Round = Round {
    threads: 4,
    keys: 2,
    operations_per_thread: if cfg!(miri) { 6 } else { 60 },
    versions: Versions::Consecutive,
    evictions: false,
};
const ROUNDS: u64 = if cfg!(miri) { 1 } else { 200 };

/// The broken design: each conditional write checks the version under a read lock, lets
/// go of it, and then writes under a separate write lock. Two writers that read the same
/// version can both pass the check before either writes, and both succeed.
#[derive(Default)]
struct CheckThenWrite {
    inner: RwLock<Records>,
}

#[derive(Default)]
struct Records {
    records: HashMap<Key, (Value, Version)>,
    highest_removed: Version,
}

impl CheckThenWrite {
    /// The version check, done under a read lock that is released on return.
    fn check(&self, key: Key, expected: Version) -> Result<(), Answer> {
        match self.inner.read().unwrap().records.get(&key) {
            None => Err(Answer::NotFound),
            Some(&(_, current)) if current != expected => Err(Answer::Stale { expected, current }),
            Some(_) => Ok(()),
        }
    }
}

impl KeyValue for CheckThenWrite {
    fn get(&self, key: Key) -> Answer {
        Answer::Read(self.inner.read().unwrap().records.get(&key).copied())
    }

    fn insert(&self, key: Key, value: Value) -> Answer {
        let mut inner = self.inner.write().unwrap();
        let version = inner.highest_removed + 1;
        match inner.records.get(&key) {
            Some(&(_, current)) => Answer::Exists { current },
            None => {
                inner.records.insert(key, (value, version));
                Answer::Written(version)
            }
        }
    }

    fn update(&self, key: Key, expected: Version, value: Value) -> Answer {
        if let Err(refused) = self.check(key, expected) {
            return refused;
        }
        // Widen the gap between check and write, as a busy machine would.
        thread::yield_now();
        let mut inner = self.inner.write().unwrap();
        match inner.records.get_mut(&key) {
            None => Answer::NotFound,
            Some(record) => {
                *record = (value, record.1 + 1);
                Answer::Written(record.1)
            }
        }
    }

    fn remove(&self, key: Key, expected: Version) -> Answer {
        if let Err(refused) = self.check(key, expected) {
            return refused;
        }
        thread::yield_now();
        let mut inner = self.inner.write().unwrap();
        match inner.records.remove(&key) {
            None => Answer::NotFound,
            Some((value, version)) => {
                inner.highest_removed = inner.highest_removed.max(version);
                Answer::Removed(value)
            }
        }
    }
}

#[test]
fn store_histories_are_linearizable() {
    for round in 0..ROUNDS {
        let store: Store<Key, Value> = Store::new();
        if let Err(violation) = run_round(&Backend(&store), SHAPE, round) {
            panic!("round {round}: {violation}");
        }
    }
}

/// With a bound of one record for two keys, writes keep evicting the other key: reads
/// miss and writes find nothing, but nothing ever reads a value or version no write
/// produced, and no version comes back.
#[test]
fn bounded_store_histories_are_linearizable_with_evictions() {
    let shape = Round {
        evictions: true,
        ..SHAPE
    };
    for round in 0..ROUNDS {
        let store: Store<Key, Value> = Store::builder().max_capacity(1).build();
        if let Err(violation) = run_round(&Backend(&store), shape, round) {
            panic!("round {round}: {violation}");
        }
        assert!(store.len() <= 1);
    }
}

#[test]
fn checker_rejects_the_check_then_write_store() {
    const BROKEN_ROUNDS: u64 = 20;
    let caught: Vec<Violation> = (0..BROKEN_ROUNDS)
        .filter_map(|round| run_round(&CheckThenWrite::default(), SHAPE, round).err())
        .collect();
    println!("caught in {} of {BROKEN_ROUNDS} rounds", caught.len());
    if let Some(violation) = caught.first() {
        println!("first rejection: {violation}");
    }
    assert!(
        !caught.is_empty(),
        "the checker accepted every history of the broken store"
    );
}

/// Hand-written histories with a known verdict, so the checker is seen to decide both ways
/// whatever the scheduler does.
mod known_histories {
    use super::*;

    fn at(thread: usize, invoked: u64, returned: u64, call: Call, answer: Answer) -> Event {
        Event {
            thread,
            invoked,
            returned,
            call,
            answer,
        }
    }

    fn created(value: Value) -> Event {
        at(0, 0, 1, Call::Insert(value), Answer::Written(1))
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_state() {
        let insert = at(0, 0, 3, Call::Insert(10), Answer::Written(1));
        let before = at(1, 1, 2, Call::Get, Answer::Read(None));
        let after = at(1, 1, 2, Call::Get, Answer::Read(Some((10, 1))));
        assert!(check(&[insert.clone(), before], Versions::Consecutive).is_ok());
        assert!(check(&[insert, after], Versions::Consecutive).is_ok());
    }

    #[test]
    fn two_winners_for_one_version_are_rejected() {
        let first = at(
            0,
            2,
            5,
            Call::Update {
                expected: 1,
                value: 20,
            },
            Answer::Written(2),
        );
        let second = |answer| {
            at(
                1,
                3,
                4,
                Call::Update {
                    expected: 1,
                    value: 30,
                },
                answer,
            )
        };
        let refused = second(Answer::Stale {
            expected: 1,
            current: 2,
        });
        assert!(check(
            &[created(10), first.clone(), refused],
            Versions::Consecutive
        )
        .is_ok());
        let also_won = second(Answer::Written(3));
        assert!(check(&[created(10), first, also_won], Versions::Consecutive).is_err());
    }

    #[test]
    fn an_evicting_store_may_miss_but_not_invent_or_resurrect() {
        let consecutive = Versions::Consecutive;
        let missed = at(1, 2, 3, Call::Get, Answer::Read(None));
        assert!(check(&[created(10), missed.clone()], consecutive).is_err());
        assert!(check_evicting(&[created(10), missed.clone()], consecutive).is_ok());
        // Once evicted, the record does not come back without a write.
        let back = at(1, 4, 5, Call::Get, Answer::Read(Some((10, 1))));
        assert!(check_evicting(&[created(10), missed, back], consecutive).is_err());
        // A value no write produced is never read, evictions or not.
        let invented = at(1, 2, 3, Call::Get, Answer::Read(Some((11, 1))));
        assert!(check_evicting(&[created(10), invented], consecutive).is_err());
        // A version the key had is never handed out again.
        let missed = at(1, 2, 3, Call::Get, Answer::Read(None));
        let reused = at(0, 4, 5, Call::Insert(12), Answer::Written(1));
        assert!(check_evicting(&[created(10), missed, reused], consecutive).is_err());
    }

    #[test]
    fn reading_an_overwritten_value_is_rejected() {
        let update = at(
            0,
            2,
            3,
            Call::Update {
                expected: 1,
                value: 20,
            },
            Answer::Written(2),
        );
        let fresh = at(1, 4, 5, Call::Get, Answer::Read(Some((20, 2))));
        let stale = at(1, 4, 5, Call::Get, Answer::Read(Some((10, 1))));
        assert!(check(&[created(10), update.clone(), fresh], Versions::Consecutive).is_ok());
        assert!(check(&[created(10), update, stale], Versions::Consecutive).is_err());
    }

    #[test]
    fn a_reused_version_is_rejected() {
        let remove = at(0, 2, 3, Call::Remove { expected: 1 }, Answer::Removed(10));
        let recreate = |version| at(0, 4, 5, Call::Insert(20), Answer::Written(version));
        assert!(check(
            &[created(10), remove.clone(), recreate(2)],
            Versions::Consecutive
        )
        .is_ok());
        assert!(check(&[created(10), remove, recreate(1)], Versions::Consecutive).is_err());
    }
}

/// Transactions and multi-key reads over three keys, their whole history checked for
/// strict serializability: every transaction and every `get_many` at one point of one
/// order over all keys.
mod multi_key {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use serializability::{
        answer, build, check, transaction, Answer, Call, Dice, Event, Key, Step, Value,
    };

    const KEYS: Key = 3;
    const THREADS: usize = 3;
    const OPERATIONS: usize = if cfg!(miri) { 4 } else { 14 };
    const MULTI_ROUNDS: u64 = if cfg!(miri) { 1 } else { 300 };

    /// One round: each thread reads every key (recorded), then commits a transaction
    /// built from what it read (recorded), or only reads.
    fn round(store: &Store<Key, Value>, round: u64) -> Vec<Event> {
        let clock = AtomicU64::new(0);
        let keys: Vec<Key> = (0..KEYS).collect();
        thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let (clock, keys) = (&clock, &keys);
                    scope.spawn(move || {
                        let mut dice = Dice(
                            (round << 8 | thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                        );
                        let mut events = Vec::new();
                        let tick = || clock.fetch_add(1, Ordering::SeqCst);
                        let borrowed: Vec<&Key> = keys.iter().collect();
                        for operation in 0..OPERATIONS {
                            let invoked = tick();
                            let read = store.get_many(&borrowed);
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
                            if dice.below(3) == 0 {
                                continue;
                            }
                            let unique = (thread * OPERATIONS + operation) as Value;
                            let steps = build(&read, &mut dice, unique);
                            let invoked = tick();
                            let got = store.commit(transaction(&steps));
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
        })
    }

    #[test]
    fn transaction_histories_are_strictly_serializable() {
        for number in 0..MULTI_ROUNDS {
            let store: Store<Key, Value> = Store::builder().shards(4).build();
            let history = round(&store, number);
            if let Err(violation) = check(&history, usize::from(KEYS), Versions::Consecutive) {
                panic!("round {number}: {violation}");
            }
        }
    }

    fn at(thread: usize, invoked: u64, returned: u64, call: Call, answer: Answer) -> Event {
        Event {
            thread,
            invoked,
            returned,
            call,
            answer,
        }
    }

    /// Hand-written histories with a known verdict.
    #[test]
    fn the_checker_rejects_a_read_of_half_a_transaction() {
        let create = at(
            0,
            0,
            1,
            Call::Transaction(vec![Step::Create(0, 10), Step::Create(1, 20)]),
            Answer::Committed(vec![Some(1), Some(1)]),
        );
        let transfer = at(
            0,
            2,
            5,
            Call::Transaction(vec![Step::Update(0, 1, 5), Step::Update(1, 1, 25)]),
            Answer::Committed(vec![Some(2), Some(2)]),
        );
        let read = |records| at(1, 3, 4, Call::GetMany(vec![0, 1]), Answer::Read(records));
        let before = read(vec![Some((10, 1)), Some((20, 1))]);
        let after = read(vec![Some((5, 2)), Some((25, 2))]);
        let half = read(vec![Some((5, 2)), Some((20, 1))]);
        assert!(check(
            &[create.clone(), transfer.clone(), before],
            2,
            Versions::Consecutive
        )
        .is_ok());
        assert!(check(
            &[create.clone(), transfer.clone(), after],
            2,
            Versions::Consecutive
        )
        .is_ok());
        assert!(check(&[create, transfer, half], 2, Versions::Consecutive).is_err());
    }

    #[test]
    fn the_checker_rejects_two_winners_and_a_wrong_conflict() {
        let create = at(
            0,
            0,
            1,
            Call::Transaction(vec![Step::Create(0, 10), Step::Create(1, 20)]),
            Answer::Committed(vec![Some(1), Some(1)]),
        );
        let first = at(
            0,
            2,
            5,
            Call::Transaction(vec![Step::Update(0, 1, 5), Step::Update(1, 1, 25)]),
            Answer::Committed(vec![Some(2), Some(2)]),
        );
        let second = |answer| {
            at(
                1,
                3,
                4,
                Call::Transaction(vec![Step::Update(1, 1, 0), Step::Compare(0, Some(1))]),
                answer,
            )
        };
        let refused = second(Answer::Conflict(vec![(1, Some(2)), (0, Some(2))]));
        assert!(check(
            &[create.clone(), first.clone(), refused],
            2,
            Versions::Consecutive
        )
        .is_ok());
        let both_won = second(Answer::Committed(vec![Some(3), None]));
        assert!(check(
            &[create.clone(), first.clone(), both_won],
            2,
            Versions::Consecutive
        )
        .is_err());
        let named_one = second(Answer::Conflict(vec![(1, Some(2))]));
        assert!(check(&[create, first, named_one], 2, Versions::Consecutive).is_err());
    }
}
