//! Threads that hammer a few keys of a store and record every call, for the
//! linearizability checker (`linearizability.rs` beside this file): the one stress run of
//! the conformance suite, for every backend.
//!
//! Any [`VersionedStore`] with `u64` versions is run through [`Backend`]; a test can also
//! implement [`KeyValue`] itself for a deliberately broken store the checker must reject.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use super::linearizability::{
    check, check_evicting, Answer, Call, Event, Value, Version, Versions, Violation,
};
use verkv::{Context, Error, VersionedStore};

pub(crate) type Key = u8;

/// The operations under test, answered in the checker's terms.
pub(crate) trait KeyValue: Sync {
    fn get(&self, key: Key) -> Answer;
    fn insert(&self, key: Key, value: Value) -> Answer;
    fn update(&self, key: Key, expected: Version, value: Value) -> Answer;
    fn remove(&self, key: Key, expected: Version) -> Answer;
}

/// A refusal in the checker's terms.
fn refusal(error: Error<Version>) -> Answer {
    match error {
        Error::NotFound => Answer::NotFound,
        Error::Stale { expected, current } => Answer::Stale { expected, current },
        Error::Exists { current } => Answer::Exists { current },
        other => panic!("an error the checker does not know: {other}"),
    }
}

/// A store under test, through the trait every backend implements, without deadlines.
pub(crate) struct Backend<'a, T>(pub(crate) &'a T);

impl<T> KeyValue for Backend<'_, T>
where
    T: VersionedStore<Key, Value, Version = Version> + Sync,
{
    fn get(&self, key: Key) -> Answer {
        let read = self.0.get(&Context::background(), &key);
        Answer::Read(
            read.unwrap_or_else(|error| panic!("get: {error}"))
                .map(|read| (read.value, read.version)),
        )
    }

    fn insert(&self, key: Key, value: Value) -> Answer {
        let written = self.0.insert(&Context::background(), key, value);
        written.map_or_else(|r| refusal(r.error), Answer::Written)
    }

    fn update(&self, key: Key, expected: Version, value: Value) -> Answer {
        let written = self
            .0
            .update(&Context::background(), &key, &expected, value);
        written.map_or_else(|r| refusal(r.error), Answer::Written)
    }

    fn remove(&self, key: Key, expected: Version) -> Answer {
        let removed = self.0.remove(&Context::background(), &key, &expected);
        removed.map_or_else(refusal, Answer::Removed)
    }
}

/// The shape of one stress round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    pub(crate) threads: usize,
    pub(crate) keys: Key,
    pub(crate) operations_per_thread: usize,
    /// What the store promises about the versions it hands out.
    pub(crate) versions: Versions,
    /// Whether the store may evict a record between calls (a capacity bound).
    pub(crate) evictions: bool,
}

/// A small, fast pseudo-random sequence (xorshift), seeded per thread, so that every
/// thread mixes its operations differently.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Records one thread's calls with their invoke and return times on the shared clock.
struct Recorder<'a> {
    clock: &'a AtomicU64,
    thread: usize,
    events: Vec<(Key, Event)>,
}

impl Recorder<'_> {
    fn call(&mut self, key: Key, call: Call, run: impl FnOnce(&Call) -> Answer) -> Answer {
        let invoked = self.clock.fetch_add(1, Ordering::SeqCst);
        let answer = run(&call);
        let returned = self.clock.fetch_add(1, Ordering::SeqCst);
        self.events.push((
            key,
            Event {
                thread: self.thread,
                invoked,
                returned,
                call,
                answer: answer.clone(),
            },
        ));
        answer
    }
}

/// One thread's work: read a key, then mostly write back based on that read (the
/// read-modify-write that loses updates without the version check), sometimes remove,
/// insert, or write based on an older read. Every written value is unique.
fn client(store: &impl KeyValue, shape: Round, recorder: &mut Recorder<'_>, seed: u64) {
    let mut dice = Dice(seed);
    let mut older: Option<Version> = None;
    for step in 0..shape.operations_per_thread {
        let key = dice.roll(u64::from(shape.keys)) as Key;
        let value = (recorder.thread * shape.operations_per_thread + step) as Value;
        let read = recorder.call(key, Call::Get, |_| store.get(key));
        let call = match (read, dice.roll(10)) {
            (Answer::Read(Some((_, version))), 0) => Call::Remove { expected: version },
            (Answer::Read(Some(_)), 1) => Call::Insert(value),
            (Answer::Read(Some((_, version))), 2) => Call::Update {
                expected: older.unwrap_or(version),
                value,
            },
            (Answer::Read(Some((_, version))), _) => {
                older = Some(version);
                Call::Update {
                    expected: version,
                    value,
                }
            }
            (_, roll) if roll < 8 => Call::Insert(value),
            _ => Call::Remove {
                expected: older.unwrap_or(1),
            },
        };
        recorder.call(key, call, |call| match *call {
            Call::Get => store.get(key),
            Call::Insert(value) => store.insert(key, value),
            Call::Update { expected, value } => store.update(key, expected, value),
            Call::Remove { expected } => store.remove(key, expected),
        });
    }
}

/// Runs the clients on `store` (whose keys must start without records) at the same time
/// and checks each key's history.
pub(crate) fn run_round(store: &impl KeyValue, shape: Round, round: u64) -> Result<(), Violation> {
    let clock = AtomicU64::new(0);
    let recorded: Vec<(Key, Event)> = thread::scope(|s| {
        let clients: Vec<_> = (0..shape.threads)
            .map(|thread| {
                let clock = &clock;
                s.spawn(move || {
                    let mut recorder = Recorder {
                        clock,
                        thread,
                        events: Vec::new(),
                    };
                    let seed = (round << 8 | thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    client(store, shape, &mut recorder, seed);
                    recorder.events
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|client| client.join().unwrap())
            .collect()
    });
    for key in 0..shape.keys {
        let history: Vec<Event> = recorded
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, event)| event.clone())
            .collect();
        if shape.evictions {
            check_evicting(&history, shape.versions)?;
        } else {
            check(&history, shape.versions)?;
        }
    }
    Ok(())
}
