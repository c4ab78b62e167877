//! A strict-serializability checker for small multi-key histories: transactions and
//! multi-key reads over a few keys, from a few threads.
//!
//! A history is strictly serializable if its operations can be put in one order that
//! respects real time (an operation that returned before another was invoked comes first)
//! and in which each transaction gets exactly the answer the sequential specification
//! gives for the state of **all** its keys at that point: it commits, with the versions
//! its writes must get, if every condition holds, and is refused naming exactly the
//! failed conditions with their current versions otherwise; a multi-key read sees every
//! key as of one point. The search is the per-key checker's (Wing & Gong, with Lowe's
//! memoisation of (operations placed, state) pairs), over the state of every key at once.

use std::collections::HashSet;
use std::fmt;

use super::linearizability::Versions;

pub(crate) type Key = u8;
pub(crate) type Value = u64;
pub(crate) type Version = u64;

/// A step of a transaction, as the checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A write if the record is at the version.
    Update(Key, Version, Value),
    /// A write if the key has no record.
    Create(Key, Value),
    /// A removal if the record is at the version.
    Remove(Key, Version),
    /// Only a condition: the record is at the version (`None`: absent).
    Compare(Key, Option<Version>),
}

impl Step {
    fn key(&self) -> Key {
        match self {
            Step::Update(key, ..)
            | Step::Create(key, _)
            | Step::Remove(key, _)
            | Step::Compare(key, _) => *key,
        }
    }

    /// The version the step requires (`None`: absent).
    fn condition(&self) -> Option<Version> {
        match self {
            Step::Update(_, version, _) | Step::Remove(_, version) => Some(*version),
            Step::Create(..) => None,
            Step::Compare(_, version) => *version,
        }
    }
}

/// An operation, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// A transaction of these steps.
    Transaction(Vec<Step>),
    /// A multi-key read of these keys.
    GetMany(Vec<Key>),
}

/// What an operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A committed transaction: per step, the new version of a write (`None` for a
    /// removal or a compare).
    Committed(Vec<Option<Version>>),
    /// A refused transaction: each failed condition's key and its version then
    /// (`None`: absent), in the order of the steps.
    Conflict(Vec<(Key, Option<Version>)>),
    /// A multi-key read: per key, the record if there was one.
    Read(Vec<Option<(Value, Version)>>),
}

/// One completed operation, with the times it was invoked and returned on a clock shared
/// by all threads.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) thread: usize,
    pub(crate) invoked: u64,
    pub(crate) returned: u64,
    pub(crate) call: Call,
    pub(crate) answer: Answer,
}

/// Every key's state: its record, and the highest version it has had (a new record must
/// start above it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct State {
    records: Vec<Option<(Value, Version)>>,
    highest: Vec<Version>,
}

impl State {
    fn new(keys: usize) -> Self {
        State {
            records: vec![None; keys],
            highest: vec![0; keys],
        }
    }

    fn version(&self, key: Key) -> Option<Version> {
        self.records[usize::from(key)].map(|(_, version)| version)
    }

    /// The state after `call` answered `answer`, or `None` if the specification (with
    /// `promise` the store's promise about versions) does not allow that answer in this
    /// state.
    fn after(&self, call: &Call, answer: &Answer, promise: Versions) -> Option<State> {
        match (call, answer) {
            (Call::GetMany(keys), Answer::Read(read)) => {
                let now: Vec<_> = keys
                    .iter()
                    .map(|&key| self.records[usize::from(key)])
                    .collect();
                (now == *read).then(|| self.clone())
            }
            (Call::Transaction(steps), Answer::Conflict(failed)) => {
                let expected: Vec<(Key, Option<Version>)> = steps
                    .iter()
                    .filter(|step| self.version(step.key()) != step.condition())
                    .map(|step| (step.key(), self.version(step.key())))
                    .collect();
                (!expected.is_empty() && expected == *failed).then(|| self.clone())
            }
            (Call::Transaction(steps), Answer::Committed(versions)) => {
                if steps
                    .iter()
                    .any(|step| self.version(step.key()) != step.condition())
                    || versions.len() != steps.len()
                {
                    return None;
                }
                let mut next = self.clone();
                for (step, version) in steps.iter().zip(versions) {
                    let index = usize::from(step.key());
                    match (step, version) {
                        (Step::Update(_, current, value), Some(new))
                            if match promise {
                                Versions::Consecutive => *new == current + 1,
                                Versions::Unique => new != current,
                            } =>
                        {
                            next.records[index] = Some((*value, *new));
                            next.highest[index] = *new;
                        }
                        (Step::Create(_, value), Some(new))
                            if promise == Versions::Unique || *new > self.highest[index] =>
                        {
                            next.records[index] = Some((*value, *new));
                            next.highest[index] = *new;
                        }
                        (Step::Remove(..), None) => next.records[index] = None,
                        (Step::Compare(..), None) => {}
                        _ => return None,
                    }
                }
                Some(next)
            }
            _ => None,
        }
    }
}

/// A history with no valid order, and where the search for one got furthest.
#[derive(Debug)]
pub(crate) struct Violation {
    placed: usize,
    total: usize,
    state: State,
    stuck: Vec<Event>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not strictly serializable: at best {} of {} operations can be ordered, leaving the keys at {:?}",
            self.placed, self.total, self.state.records
        )?;
        writeln!(f, "and no operation that may come next fits:")?;
        for event in &self.stuck {
            writeln!(
                f,
                "  [{}, {}] t{}: {:?} -> {:?}",
                event.invoked, event.returned, event.thread, event.call, event.answer
            )?;
        }
        Ok(())
    }
}

/// Checks that `history`, over keys `0..keys` that all started without a record, of a
/// store that promises `versions`, is strictly serializable.
pub(crate) fn check(history: &[Event], keys: usize, versions: Versions) -> Result<(), Violation> {
    let mut events = history.to_vec();
    events.sort_by_key(|event| event.invoked);
    let total = events.len();
    let mut search = Search {
        placed: vec![0; total.div_ceil(64)],
        tried: HashSet::new(),
        furthest: None,
        events,
        versions,
    };
    if search.place_rest(&State::new(keys), total) {
        return Ok(());
    }
    let (remaining, state, placed) = search.furthest.take().expect("the search got somewhere");
    search.placed = placed;
    let stuck = search
        .candidates()
        .map(|index| search.events[index].clone())
        .collect();
    Err(Violation {
        placed: total - remaining,
        total,
        state,
        stuck,
    })
}

struct Search {
    /// Sorted by invocation time.
    events: Vec<Event>,
    placed: Vec<u64>,
    tried: HashSet<(Vec<u64>, State)>,
    furthest: Option<(usize, State, Vec<u64>)>,
    versions: Versions,
}

impl Search {
    fn is_placed(&self, index: usize) -> bool {
        self.placed[index / 64] & (1 << (index % 64)) != 0
    }

    fn flip(&mut self, index: usize) {
        self.placed[index / 64] ^= 1 << (index % 64);
    }

    /// The unplaced events invoked before every unplaced event returned.
    fn candidates(&self) -> impl Iterator<Item = usize> + '_ {
        let first_return = (0..self.events.len())
            .filter(|&i| !self.is_placed(i))
            .map(|i| self.events[i].returned)
            .min()
            .unwrap_or(u64::MAX);
        (0..self.events.len())
            .take_while(move |&i| self.events[i].invoked < first_return)
            .filter(|&i| !self.is_placed(i))
    }

    fn place_rest(&mut self, state: &State, remaining: usize) -> bool {
        if remaining == 0 {
            return true;
        }
        if self
            .furthest
            .as_ref()
            .is_none_or(|(fewest, ..)| remaining < *fewest)
        {
            self.furthest = Some((remaining, state.clone(), self.placed.clone()));
        }
        let candidates: Vec<usize> = self.candidates().collect();
        for index in candidates {
            let event = &self.events[index];
            let Some(next) = state.after(&event.call, &event.answer, self.versions) else {
                continue;
            };
            self.flip(index);
            if self.tried.insert((self.placed.clone(), next.clone()))
                && self.place_rest(&next, remaining - 1)
            {
                return true;
            }
            self.flip(index);
        }
        false
    }
}

/// A small random number generator (xorshift), seeded per thread and round.
pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A transaction built from a read of every key (`read`, by key): moves an amount between two
/// records, creates a missing one, or removes one on condition of another.
pub(crate) fn build(
    read: &[Option<(Value, Version)>],
    dice: &mut Dice,
    unique: Value,
) -> Vec<Step> {
    let keys = Key::try_from(read.len()).expect("a few keys");
    let a = dice.below(u64::from(keys)) as Key;
    let b = (a + 1 + dice.below(u64::from(keys) - 1) as Key) % keys;
    let at = |key: Key| read[usize::from(key)];
    match (at(a), at(b)) {
        (Some((value_a, version_a)), Some((value_b, version_b))) => {
            if dice.below(6) == 0 {
                vec![
                    Step::Remove(a, version_a),
                    Step::Compare(b, Some(version_b)),
                ]
            } else {
                let amount = dice.below(5);
                vec![
                    Step::Update(a, version_a, value_a.wrapping_sub(amount)),
                    Step::Update(b, version_b, value_b.wrapping_add(amount)),
                ]
            }
        }
        (None, other) => vec![
            Step::Create(a, 100 + unique),
            Step::Compare(b, other.map(|(_, version)| version)),
        ],
        (Some((value, version)), None) => {
            vec![
                Step::Update(a, version, value + 1),
                Step::Create(b, 100 + unique),
            ]
        }
    }
}

/// The transaction of `steps`.
pub(crate) fn transaction(steps: &[Step]) -> verkv::Transaction<Key, Value, Version> {
    steps
        .iter()
        .fold(verkv::Transaction::new(), |txn, step| match *step {
            Step::Update(key, version, value) => txn.update(key, version, value),
            Step::Create(key, value) => txn.create(key, value),
            Step::Remove(key, version) => txn.remove(key, version),
            Step::Compare(key, Some(version)) => txn.compare(key, version),
            Step::Compare(key, None) => txn.compare_absent(key),
        })
}

/// A store's answer to a commit in the checker's terms: each step's version, or the
/// conflicts with the current versions. Any other refusal fails the test.
pub(crate) fn answer(
    got: Result<Vec<verkv::Outcome<Version>>, verkv::TransactionRefused<Key, Value, Version>>,
) -> Answer {
    match got {
        Ok(outcomes) => Answer::Committed(
            outcomes
                .iter()
                .map(|outcome| outcome.version().copied())
                .collect(),
        ),
        Err(refused) => match refused.error {
            verkv::TransactionError::Conflict(conflicts) => Answer::Conflict(
                conflicts
                    .into_iter()
                    .map(|conflict| (conflict.key, conflict.current))
                    .collect(),
            ),
            other => panic!("refused: {other}"),
        },
    }
}
