//! A simple sequential model of the store (a `HashMap` of value and version), and a runner
//! that applies the same operations to a real store and to the model and checks that every
//! answer agrees.
//!
//! Shared by the property test (`tests/model.rs`) and the operation-sequence fuzz target,
//! which only differ in how they generate the operations.

use std::collections::HashMap;
use std::fmt::Debug;

use verkv::{Counter, Error, Store, UpdateWithError, UuidV4, VersionScheme, Versioned};

/// Keys are small numbers so that random operations keep meeting the same records.
pub(crate) type Key = u8;
/// Values are plain numbers; every write in a sequence can be told apart by its value.
pub(crate) type Value = u32;

/// One operation on the store, with the arguments to call it with.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Get(Key),
    Version(Key),
    ContainsKey(Key),
    Insert(Key, Value),
    Put(Key, Value),
    Update(Key, Expect, Value),
    UpdateWith(Key, Expect, Compute),
    Remove(Key, Expect),
    Len,
    Clear,
    Iter,
}

impl Op {
    /// The key the operation is about, if it is about one.
    fn key(&self) -> Option<Key> {
        match self {
            Op::Get(key)
            | Op::Version(key)
            | Op::ContainsKey(key)
            | Op::Insert(key, _)
            | Op::Put(key, _)
            | Op::Update(key, ..)
            | Op::UpdateWith(key, ..)
            | Op::Remove(key, _) => Some(*key),
            Op::Len | Op::Clear | Op::Iter => None,
        }
    }
}

/// Which version a conditional operation names as the one it read.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// The key's current version (or, if it has no record, the last one it had).
    Current,
    /// One of the versions the key has had, chosen by index (possibly the current one).
    Earlier(usize),
    /// A version the store never handed out.
    NeverIssued(u32),
}

/// What the closure of `update_with` does with the value it is given.
#[derive(Debug, Clone)]
pub(crate) enum Compute {
    /// Returns the value plus this amount.
    Add(Value),
    /// Refuses with this error code.
    Refuse(u8),
}

/// A version scheme the model knows how to make an unused version for.
pub(crate) trait SchemeUnderTest: VersionScheme {
    /// A version the scheme never hands out, distinct for distinct seeds.
    fn never_issued(seed: u32) -> Self::Version;
}

impl SchemeUnderTest for Counter {
    fn never_issued(seed: u32) -> u64 {
        // Counters start at 1 and a test sequence is far too short to come near the top.
        u64::MAX - u64::from(seed)
    }
}

impl SchemeUnderTest for UuidV4 {
    fn never_issued(seed: u32) -> uuid::Uuid {
        // Version-4 UUIDs carry the version nibble 4; these all have 0 there.
        uuid::Uuid::from_u128(u128::from(seed))
    }
}

/// What the model can say in advance about the versions a store hands out.
pub(crate) trait VersionOracle<Ver> {
    /// The version a newly created record must get, if it is predictable.
    fn initial(&self) -> Option<Ver>;
    /// The version a record at `current` must get on its next write, if predictable.
    fn next(&self, current: &Ver) -> Option<Ver>;
    /// Notes that a record at version `last` left the store.
    fn retire(&mut self, last: &Ver);
}

/// Exact [`Counter`] versions of a store with **one shard**: records start just above the
/// highest version ever removed from the store, and count up by one on every write.
#[derive(Debug, Default)]
pub(crate) struct ExactCounter {
    highest_retired: u64,
}

impl VersionOracle<u64> for ExactCounter {
    fn initial(&self) -> Option<u64> {
        Some(self.highest_retired + 1)
    }

    fn next(&self, current: &u64) -> Option<u64> {
        Some(current + 1)
    }

    fn retire(&mut self, last: &u64) {
        self.highest_retired = self.highest_retired.max(*last);
    }
}

/// Versions that cannot be predicted (random ones, or counters spread over several shards):
/// the model only requires that a key never gets a version it had before, and compares
/// versions by identity from then on.
#[derive(Debug, Default)]
pub(crate) struct AnyFresh;

impl<Ver> VersionOracle<Ver> for AnyFresh {
    fn initial(&self) -> Option<Ver> {
        None
    }

    fn next(&self, _current: &Ver) -> Option<Ver> {
        None
    }

    fn retire(&mut self, _last: &Ver) {}
}

/// The model: what every key holds, and every version each key has ever had.
pub(crate) struct Model<S: VersionScheme, O> {
    records: HashMap<Key, Versioned<Value, S::Version>>,
    /// Per key, all versions the store handed out for it, oldest first.
    history: HashMap<Key, Vec<S::Version>>,
    oracle: O,
}

impl<S: SchemeUnderTest, O: VersionOracle<S::Version>> Model<S, O> {
    pub(crate) fn new(oracle: O) -> Self {
        Model {
            records: HashMap::new(),
            history: HashMap::new(),
            oracle,
        }
    }

    /// Applies `ops` to `store` and to the model, panicking with the step number and
    /// operation at the first answer that differs.
    pub(crate) fn run<H: std::hash::BuildHasher>(
        &mut self,
        store: &Store<Key, Value, S, H>,
        ops: &[Op],
    ) {
        for (step, op) in ops.iter().enumerate() {
            let context = format!("step {step}: {op:?}");
            self.apply(store, op, &context);
            // Whatever the answer, the record itself must be exactly what the model holds.
            if let Some(key) = op.key() {
                assert_eq!(
                    store.get(&key),
                    self.records.get(&key).cloned(),
                    "{context}: after"
                );
            }
            assert_eq!(store.len(), self.records.len(), "{context}: len after");
        }
    }

    fn apply<H: std::hash::BuildHasher>(
        &mut self,
        store: &Store<Key, Value, S, H>,
        op: &Op,
        context: &str,
    ) {
        match op {
            Op::Get(key) => assert_eq!(store.get(key), self.records.get(key).cloned(), "{context}"),
            Op::Version(key) => assert_eq!(
                store.version(key),
                self.records.get(key).map(|r| r.version.clone()),
                "{context}"
            ),
            Op::ContainsKey(key) => assert_eq!(
                store.contains_key(key),
                self.records.contains_key(key),
                "{context}"
            ),
            Op::Insert(key, value) => {
                let got = store.insert(*key, *value);
                match self.records.get(key) {
                    Some(current) => {
                        let refused = must_refuse(got, context);
                        let current = current.version.clone();
                        assert_eq!(refused.error, Error::Exists { current }, "{context}");
                        assert_eq!(refused.value, *value, "{context}: value handed back");
                    }
                    None => {
                        let version = must_succeed(got, context);
                        self.created(*key, *value, version, context);
                    }
                }
            }
            Op::Put(key, value) => {
                let version = store.put(*key, *value);
                match self.records.get(key).map(|r| r.version.clone()) {
                    Some(current) => self.written(*key, *value, &current, version, context),
                    None => self.created(*key, *value, version, context),
                }
            }
            Op::Update(key, expect, value) => {
                let expected = self.expected_version(*key, expect);
                let got = store.update(key, &expected, *value);
                match self.check(*key, &expected) {
                    Ok(current) => {
                        let version = must_succeed(got, context);
                        self.written(*key, *value, &current, version, context);
                    }
                    Err(error) => {
                        let refused = must_refuse(got, context);
                        assert_eq!(refused.error, error, "{context}");
                        assert_eq!(refused.value, *value, "{context}: value handed back");
                    }
                }
            }
            Op::UpdateWith(key, expect, compute) => {
                let expected = self.expected_version(*key, expect);
                let mut given = Vec::new();
                let got = store.update_with(key, &expected, |value| {
                    given.push(*value);
                    match compute {
                        Compute::Add(n) => Ok(value.wrapping_add(*n)),
                        Compute::Refuse(code) => Err(*code),
                    }
                });
                match self.check(*key, &expected) {
                    Ok(current) => {
                        let old = self.records[key].value;
                        assert_eq!(
                            given,
                            [old],
                            "{context}: the closure runs once on the value"
                        );
                        match compute {
                            Compute::Add(n) => {
                                let version = must_succeed(got, context);
                                self.written(
                                    *key,
                                    old.wrapping_add(*n),
                                    &current,
                                    version,
                                    context,
                                );
                            }
                            Compute::Refuse(code) => {
                                assert_eq!(got, Err(UpdateWithError::Closure(*code)), "{context}")
                            }
                        }
                    }
                    Err(error) => {
                        assert!(
                            given.is_empty(),
                            "{context}: the closure ran after a refusal"
                        );
                        assert_eq!(got, Err(UpdateWithError::Store(error)), "{context}");
                    }
                }
            }
            Op::Remove(key, expect) => {
                let expected = self.expected_version(*key, expect);
                let got = store.remove(key, &expected);
                match self.check(*key, &expected) {
                    Ok(current) => {
                        let removed = self.records.remove(key).expect("checked above");
                        assert_eq!(got, Ok(removed.value), "{context}");
                        self.oracle.retire(&current);
                    }
                    Err(error) => assert_eq!(got, Err(error), "{context}"),
                }
            }
            Op::Len => assert_eq!(store.len(), self.records.len(), "{context}"),
            Op::Clear => {
                store.clear();
                for (_, record) in self.records.drain() {
                    self.oracle.retire(&record.version);
                }
                assert!(store.is_empty(), "{context}");
            }
            Op::Iter => {
                let mut seen = HashMap::new();
                for (key, record) in store.iter() {
                    assert!(
                        seen.insert(key, record).is_none(),
                        "{context}: key {key} twice"
                    );
                }
                assert_eq!(seen, self.records, "{context}");
            }
        }
    }

    /// The version a conditional operation passes, as chosen by `expect`.
    fn expected_version(&self, key: Key, expect: &Expect) -> S::Version {
        let history = self.history.get(&key).map_or(&[][..], Vec::as_slice);
        match expect {
            Expect::Current => match (self.records.get(&key), history.last()) {
                (Some(record), _) => record.version.clone(),
                (None, Some(last)) => last.clone(),
                (None, None) => S::never_issued(0),
            },
            Expect::Earlier(index) if !history.is_empty() => history[index % history.len()].clone(),
            Expect::Earlier(index) => S::never_issued(*index as u32),
            Expect::NeverIssued(seed) => S::never_issued(*seed),
        }
    }

    /// The model's version check: the current version if `key` is at `expected`, or the
    /// error the store must answer with.
    fn check(&self, key: Key, expected: &S::Version) -> Result<S::Version, Error<S::Version>> {
        match self.records.get(&key) {
            None => Err(Error::NotFound),
            Some(record) if record.version == *expected => Ok(record.version.clone()),
            Some(record) => Err(Error::Stale {
                expected: expected.clone(),
                current: record.version.clone(),
            }),
        }
    }

    /// Records that `key` was created with `value` at `version`.
    fn created(&mut self, key: Key, value: Value, version: S::Version, context: &str) {
        if let Some(predicted) = self.oracle.initial() {
            assert_eq!(version, predicted, "{context}: version of a new record");
        }
        self.record_version(key, value, version, context);
    }

    /// Records that `key`, at version `previous`, was overwritten with `value` at `version`.
    fn written(
        &mut self,
        key: Key,
        value: Value,
        previous: &S::Version,
        version: S::Version,
        context: &str,
    ) {
        if let Some(predicted) = self.oracle.next(previous) {
            assert_eq!(version, predicted, "{context}: version after a write");
        }
        self.record_version(key, value, version, context);
    }

    fn record_version(&mut self, key: Key, value: Value, version: S::Version, context: &str) {
        let history = self.history.entry(key).or_default();
        assert!(
            !history.contains(&version),
            "{context}: key {key} got version {version} a second time"
        );
        history.push(version.clone());
        self.records.insert(key, Versioned { value, version });
    }
}

fn must_succeed<T, E: Debug>(result: Result<T, E>, context: &str) -> T {
    result.unwrap_or_else(|error| panic!("{context}: must succeed, was refused with {error:?}"))
}

fn must_refuse<T: Debug, E>(result: Result<T, E>, context: &str) -> E {
    match result {
        Ok(version) => panic!("{context}: must be refused, succeeded with version {version:?}"),
        Err(error) => error,
    }
}
