//! A transaction as the caller builds it: steps, each on its own key, and what each step
//! did once the transaction committed.

use std::fmt;

/// What a key's record must be for a transaction to apply: the condition of a compare,
/// and of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expect<Ver> {
    /// The record is at this version.
    Version(Ver),
    /// The key has no record. A record that expired counts as none.
    Absent,
}

impl<Ver> Expect<Ver> {
    /// Whether a record at `current` (`None`: no record) meets the condition.
    pub fn holds(&self, current: Option<&Ver>) -> bool
    where
        Ver: PartialEq,
    {
        match (self, current) {
            (Expect::Version(expected), Some(current)) => expected == current,
            (Expect::Absent, None) => true,
            _ => false,
        }
    }
}

impl<Ver: fmt::Display> fmt::Display for Expect<Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Version(version) => write!(f, "version {version}"),
            Expect::Absent => f.write_str("absent"),
        }
    }
}

/// One step of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step<K, V, Ver> {
    /// Only a condition: the key is read, not written.
    Compare { key: K, expect: Expect<Ver> },
    /// A blind write.
    Put { key: K, value: V },
    /// A write if the record is at `expected`.
    Update { key: K, expected: Ver, value: V },
    /// A write if the key has no record.
    Create { key: K, value: V },
    /// A removal if the record is at `expected`.
    Remove { key: K, expected: Ver },
}

impl<K, V, Ver> Step<K, V, Ver> {
    pub(crate) fn key(&self) -> &K {
        match self {
            Step::Compare { key, .. }
            | Step::Put { key, .. }
            | Step::Update { key, .. }
            | Step::Create { key, .. }
            | Step::Remove { key, .. } => key,
        }
    }

    /// The condition the step puts on its key, if any.
    pub(crate) fn condition(&self) -> Option<Expect<&Ver>> {
        match self {
            Step::Compare { expect, .. } => Some(match expect {
                Expect::Version(version) => Expect::Version(version),
                Expect::Absent => Expect::Absent,
            }),
            Step::Update { expected, .. } | Step::Remove { expected, .. } => {
                Some(Expect::Version(expected))
            }
            Step::Create { .. } => Some(Expect::Absent),
            Step::Put { .. } => None,
        }
    }

    /// The value the step writes, if it writes one.
    pub(crate) fn value(&self) -> Option<&V> {
        match self {
            Step::Put { value, .. } | Step::Update { value, .. } | Step::Create { value, .. } => {
                Some(value)
            }
            Step::Compare { .. } | Step::Remove { .. } => None,
        }
    }
}

/// Compares and writes on several keys, applied together or not at all: etcd's `Txn`, or
/// Redis's `WATCH` / `MULTI` / `EXEC`, in process.
///
/// Built step by step, each step on its own key (a key appears in one step only):
///
/// | step | condition | effect |
/// |---|---|---|
/// | [`compare`](Transaction::compare) | the record is at the version | — |
/// | [`compare_absent`](Transaction::compare_absent) | the key has no record | — |
/// | [`put`](Transaction::put) | — | writes the value |
/// | [`update`](Transaction::update) | the record is at the version | writes the value |
/// | [`create`](Transaction::create) | the key has no record | writes the value |
/// | [`remove`](Transaction::remove) | the record is at the version | removes it |
///
/// [`Store::commit`](crate::Store::commit) applies every step if **every** condition
/// holds, and otherwise nothing, answering with every condition that failed.
///
/// **A write carries its key's condition.** A key read and written by the same
/// transaction is named once, by the conditional write ([`update`](Transaction::update),
/// [`create`](Transaction::create), [`remove`](Transaction::remove)), not by a compare
/// and a write: a second step on a key is refused as
/// [`Repeated`](crate::TransactionError::Repeated). So "a write of a key whose compare
/// failed" cannot be asked for: that write's own condition failed, which refuses the
/// whole transaction.
///
/// # Examples
///
/// ```
/// use verkv::{Outcome, Store, Transaction};
///
/// let store: Store<&str, i64> = Store::new();
/// let alice = store.insert("alice", 100).unwrap();
/// let bob = store.insert("bob", 0).unwrap();
/// let moved = store
///     .commit(Transaction::new().update("alice", alice, 70).update("bob", bob, 30))
///     .unwrap();
/// assert_eq!(moved, vec![Outcome::Written(2), Outcome::Written(2)]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction<K, V, Ver> {
    pub(crate) steps: Vec<Step<K, V, Ver>>,
}

impl<K, V, Ver> Default for Transaction<K, V, Ver> {
    fn default() -> Self {
        Transaction { steps: Vec::new() }
    }
}

impl<K, V, Ver> Transaction<K, V, Ver> {
    /// An empty transaction (which [`commit`](crate::Store::commit) refuses until it has
    /// a step).
    pub fn new() -> Self {
        Self::default()
    }

    fn step(mut self, step: Step<K, V, Ver>) -> Self {
        self.steps.push(step);
        self
    }

    /// Requires `key`'s record to be at `version`; does not write it.
    pub fn compare(self, key: K, version: Ver) -> Self {
        self.step(Step::Compare {
            key,
            expect: Expect::Version(version),
        })
    }

    /// Requires `key` to have no record; does not write it.
    pub fn compare_absent(self, key: K) -> Self {
        self.step(Step::Compare {
            key,
            expect: Expect::Absent,
        })
    }

    /// Requires `key` to be as `expect` says; does not write it.
    pub fn expect(self, key: K, expect: Expect<Ver>) -> Self {
        self.step(Step::Compare { key, expect })
    }

    /// Writes `value` for `key` whatever is there (the blind write of
    /// [`Store::put`](crate::Store::put)).
    pub fn put(self, key: K, value: V) -> Self {
        self.step(Step::Put { key, value })
    }

    /// Writes `value` for `key` if its record is at `expected` (as
    /// [`Store::update`](crate::Store::update)).
    pub fn update(self, key: K, expected: Ver, value: V) -> Self {
        self.step(Step::Update {
            key,
            expected,
            value,
        })
    }

    /// Creates `key`'s record with `value` if it has none (as
    /// [`Store::insert`](crate::Store::insert)).
    pub fn create(self, key: K, value: V) -> Self {
        self.step(Step::Create { key, value })
    }

    /// Removes `key`'s record if it is at `expected` (as
    /// [`Store::remove`](crate::Store::remove)).
    pub fn remove(self, key: K, expected: Ver) -> Self {
        self.step(Step::Remove { key, expected })
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Makes a blind [`put`](Transaction::put) of `key` conditional on `expect`: an
    /// update of the version, or a create if `expect` is [`Expect::Absent`]. Any other
    /// step is left as it is.
    pub(crate) fn condition_put(&mut self, key: &K, expect: Expect<Ver>)
    where
        K: Eq,
    {
        let blind =
            |step: &Step<K, V, Ver>| matches!(step, Step::Put { key: put, .. } if put == key);
        let Some(index) = self.steps.iter().position(blind) else {
            return;
        };
        let Step::Put { key, value } = self.steps.remove(index) else {
            unreachable!("the step was found as a put");
        };
        let conditional = match expect {
            Expect::Version(expected) => Step::Update {
                key,
                expected,
                value,
            },
            Expect::Absent => Step::Create { key, value },
        };
        self.steps.insert(index, conditional);
    }

    /// Whether some step names `key`.
    pub fn mentions(&self, key: &K) -> bool
    where
        K: Eq,
    {
        self.steps.iter().any(|step| step.key() == key)
    }
}

/// What a committed transaction did: each step's [`Outcome`], in the order of the steps.
pub type Committed<Ver> = Vec<Outcome<Ver>>;

/// What [`Store::get_many`](crate::Store::get_many) read: each key's value and version,
/// in the order of the keys; `None` for a key without a record.
pub type ReadMany<V, Ver> = Vec<Option<crate::Versioned<V, Ver>>>;

/// What one step of a committed transaction did, in the order of the steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome<Ver> {
    /// A compare: its condition held; nothing was written.
    Compared,
    /// A write (put, update, create): the record's new version.
    Written(Ver),
    /// A removal: the record is gone.
    Removed,
}

impl<Ver> Outcome<Ver> {
    /// The new version, if the step wrote one.
    pub fn version(&self) -> Option<&Ver> {
        match self {
            Outcome::Written(version) => Some(version),
            Outcome::Compared | Outcome::Removed => None,
        }
    }
}
