//! A simple sequential model of the store (a `HashMap` of value and version), and a runner
//! that applies the same operations to a real store and to the model and checks that every
//! answer agrees.
//!
//! Every operation on a key can go through the store itself or through one of its bounded
//! views. Run on one thread, nothing ever holds a lock another operation waits for, so a
//! bounded operation must answer exactly as the plain one, whatever its timeout (zero, or
//! a deadline already passed: a free lock is taken without waiting); only a view whose
//! token is already cancelled answers differently: cancelled, with no effect.
//!
//! A store with expiry runs against a timed model: both share a manual clock, which
//! [`Op::Advance`] moves, and the model expires a record at the instant its time-to-live
//! (the store's, or the one of the view that wrote it) runs out. From then on the key
//! must read as absent until it is written again, and its versions are retired. A
//! conditional write on it may answer [`Error::Expired`] (while the store still holds
//! the record) or [`Error::NotFound`] (once a sweep reclaimed it); a key that was never
//! there must answer `NotFound`.
//!
//! With the `snapshot` feature a sequence may restart the store ([`Op::Restart`],
//! through [`Model::run_restarting`]): it is replaced by one restored from its snapshot,
//! which must hold exactly the model's records and resume its versions above all before.
//!
//! Shared by the property test (`tests/model.rs`) and the operation-sequence fuzz target,
//! which only differ in how they generate the operations. The records and the version
//! check are the ledger's (`ledger.rs`), shared with the conformance model of the
//! `VersionedStore` trait; an includer declares both modules.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use verkv::{
    Bounded, CancelToken, Committed, Conflict, Error, Expect as Condition, Interrupted,
    ManualClock, Outcome, PatchError, Rejected, Retried, Store, Transaction, TransactionError,
    TransactionRefused, UpdateWithError, VersionScheme, Versioned,
};

pub(crate) use super::ledger::{Expect, Key, Value};
use super::ledger::{Ledger, NeverIssued};

/// One operation on the store, with the arguments to call it with.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// An operation on one key, made through the store or a bounded view of it.
    On(Key, Via, KeyOp),
    Len,
    Clear,
    Iter,
    /// Moves the shared clock of a timed model this many seconds forward.
    Advance(u8),
    /// Replaces the store with one made from it (a warm restart: a snapshot, and a store
    /// restored from it), through [`Model::run_restarting`].
    #[cfg_attr(not(feature = "snapshot"), allow(dead_code))]
    Restart,
    /// A transaction of these steps, committed through the store or a view.
    Transaction(Via, Vec<TxnStep>),
    /// `get_many` of these keys.
    GetMany(Vec<Key>),
}

/// One step of a transaction, with its key and arguments.
#[derive(Debug, Clone)]
pub(crate) enum TxnStep {
    /// A compare: at the version `Some` names, or absent for `None`.
    Compare(Key, Option<Expect>),
    Put(Key, Value),
    Update(Key, Expect, Value),
    Create(Key, Value),
    Remove(Key, Expect),
}

impl TxnStep {
    fn key(&self) -> Key {
        match self {
            TxnStep::Compare(key, _)
            | TxnStep::Put(key, _)
            | TxnStep::Update(key, ..)
            | TxnStep::Create(key, _)
            | TxnStep::Remove(key, _) => *key,
        }
    }

    fn value(&self) -> Option<Value> {
        match self {
            TxnStep::Put(_, value) | TxnStep::Update(_, _, value) | TxnStep::Create(_, value) => {
                Some(*value)
            }
            TxnStep::Compare(..) | TxnStep::Remove(..) => None,
        }
    }
}

impl Op {
    /// The key the operation is about, if it is about one.
    fn key(&self) -> Option<Key> {
        match self {
            Op::On(key, ..) => Some(*key),
            Op::Len
            | Op::Clear
            | Op::Iter
            | Op::Advance(_)
            | Op::Restart
            | Op::Transaction(..)
            | Op::GetMany(_) => None,
        }
    }
}

/// An operation on one key, with the arguments to call it with besides the key.
#[derive(Debug, Clone)]
pub(crate) enum KeyOp {
    Get,
    Version,
    ContainsKey,
    Insert(Value),
    Put(Value),
    Update(Expect, Value),
    UpdateWith(Expect, Compute),
    /// `retry_update`: the optimistic loop, which reads the version itself.
    RetryUpdate(Compute),
    /// `patch` with a closure that sets the value to what `Compute` makes of it.
    Patch(Expect, Compute),
    Remove(Expect),
    /// `invalidate`: the blind removal.
    Invalidate,
}

/// What the closure of `update_with`, `retry_update` or `patch` makes of the value it is
/// given.
#[derive(Debug, Clone)]
pub(crate) enum Compute {
    /// The value plus this amount.
    Add(Value),
    /// The value as it is.
    Keep,
    /// Refuses with this error code.
    Refuse(u8),
}

impl Compute {
    /// The new value, or the error code the closure refuses with.
    fn apply(&self, value: Value) -> Result<Value, u8> {
        match self {
            Compute::Add(n) => Ok(value.wrapping_add(*n)),
            Compute::Keep => Ok(value),
            Compute::Refuse(code) => Err(*code),
        }
    }
}

/// How an operation on a key is made: through the store's own methods, or through a
/// bounded view.
#[derive(Debug, Clone)]
pub(crate) enum Via {
    /// The store's own methods.
    Plain,
    /// The view with this deadline and token.
    Bounded(Limit, Cancel),
    /// `expiring_after`: the view whose writes give their records this time-to-live.
    Expiring(Ttl),
}

/// The time-to-live of an [`Via::Expiring`] view.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ttl {
    /// `Duration::ZERO`: stored already expired.
    Zero,
    /// One second.
    OneSecond,
    /// `Duration::MAX`: never expires.
    Never,
}

impl Ttl {
    fn duration(self) -> Duration {
        match self {
            Ttl::Zero => Duration::ZERO,
            Ttl::OneSecond => Duration::from_secs(1),
            Ttl::Never => Duration::MAX,
        }
    }

    /// In the model's seconds; `None` for never.
    fn seconds(self) -> Option<u64> {
        match self {
            Ttl::Zero => Some(0),
            Ttl::OneSecond => Some(1),
            Ttl::Never => None,
        }
    }
}

/// The deadline of a bounded view.
#[derive(Debug, Clone)]
pub(crate) enum Limit {
    /// `within(Duration::ZERO)`: only what can be done without waiting.
    NoWait,
    /// `within` a timeout far longer than any operation takes.
    Long,
    /// `within(Duration::MAX)`: too large to add to now, so no deadline.
    Overflowing,
    /// `until` an instant already reached.
    Passed,
    /// `bounded()`: the store's default timeout, if it has one.
    StoreDefault,
}

/// Whether a bounded view carries a cancellation token, and in which state.
#[derive(Debug, Clone)]
pub(crate) enum Cancel {
    /// No token: nothing can cancel the operation.
    NoToken,
    /// A token nobody cancelled.
    Pending,
    /// A token cancelled before the operation starts.
    Cancelled,
}

impl Via {
    /// The timeout of [`Limit::Long`].
    const LONG: Duration = Duration::from_secs(60);

    /// The token a view carries: cancelled for [`Cancel::Cancelled`].
    fn token(&self) -> CancelToken {
        let token = CancelToken::new();
        if let Via::Bounded(_, Cancel::Cancelled) = self {
            token.cancel();
        }
        token
    }

    /// The store itself or the view this routes operations through; a view borrows
    /// `token` (made by [`token`](Via::token)) if it carries one.
    fn front<'s, S: VersionScheme, H>(
        &self,
        store: &'s Store<Key, Value, S, H>,
        token: &'s CancelToken,
    ) -> Front<'s, S, H> {
        let (limit, cancel) = match self {
            Via::Plain => return Front::Plain(store),
            Via::Expiring(ttl) => return Front::Bounded(store.expiring_after(ttl.duration())),
            Via::Bounded(limit, cancel) => (limit, cancel),
        };
        let view = match limit {
            Limit::NoWait => store.within(Duration::ZERO),
            Limit::Long => store.within(Self::LONG),
            Limit::Overflowing => store.within(Duration::MAX),
            Limit::Passed => store.until(Instant::now()),
            Limit::StoreDefault => store.bounded(),
        };
        Front::Bounded(match cancel {
            Cancel::NoToken => view,
            Cancel::Pending | Cancel::Cancelled => view.with_cancel(token),
        })
    }

    /// What the operation must answer before it looks at the record: sequentially, only a
    /// cancelled token stops it.
    fn gate(&self) -> Result<(), Interrupted> {
        match self {
            Via::Bounded(_, Cancel::Cancelled) => Err(Interrupted::Cancelled),
            Via::Plain | Via::Bounded(..) | Via::Expiring(_) => Ok(()),
        }
    }
}

/// The store or one of its bounded views, answering in the bounded view's forms: the
/// plain store's reads and blind writes, which cannot fail, come wrapped in `Ok`.
enum Front<'s, S: VersionScheme, H> {
    Plain(&'s Store<Key, Value, S, H>),
    Bounded(Bounded<'s, Key, Value, S, H>),
}

/// Makes the same call on whichever of the store and the view `front` is, for the
/// operations both have with the same signature.
macro_rules! on_either {
    ($front:expr, $target:ident => $call:expr) => {
        match $front {
            Front::Plain($target) => $call,
            Front::Bounded($target) => $call,
        }
    };
}

/// What a read answers: the bounded view's form.
type Answer<T> = Result<T, Interrupted>;

impl<S: VersionScheme, H: BuildHasher> Front<'_, S, H> {
    fn get(&self, key: Key) -> Answer<Option<Versioned<Value, S::Version>>> {
        match self {
            Front::Plain(store) => Ok(store.get(&key)),
            Front::Bounded(view) => view.get(&key),
        }
    }

    fn version(&self, key: Key) -> Answer<Option<S::Version>> {
        match self {
            Front::Plain(store) => Ok(store.version(&key)),
            Front::Bounded(view) => view.version(&key),
        }
    }

    fn contains_key(&self, key: Key) -> Answer<bool> {
        match self {
            Front::Plain(store) => Ok(store.contains_key(&key)),
            Front::Bounded(view) => view.contains_key(&key),
        }
    }

    fn put(&self, key: Key, value: Value) -> Result<S::Version, Rejected<Value, S::Version>> {
        match self {
            Front::Plain(store) => store.put(key, value),
            Front::Bounded(view) => view.put(key, value),
        }
    }

    fn invalidate(&self, key: Key) -> Answer<Option<Versioned<Value, S::Version>>> {
        match self {
            Front::Plain(store) => Ok(store.invalidate(&key)),
            Front::Bounded(view) => view.invalidate(&key),
        }
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

/// What an operation that computes the new value does when the value comes out equal to
/// the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SameValue {
    /// Writes it anyway, with a new version (`update_with`, `retry_update`).
    Writes,
    /// Writes nothing and answers with the version it was given (`patch`).
    KeepsVersion,
}

/// The answer of an operation whose closure computes the new value (its errors in the
/// form of `update_with`'s), and the values the closure was called with.
struct Computed<Ver> {
    given: Vec<Value>,
    got: Result<Ver, UpdateWithError<Ver, u8>>,
}

/// The time of a timed model: the clock it shares with the store, and when each record
/// expires. Time counts in whole seconds.
pub(crate) struct Time {
    clock: ManualClock,
    now: u64,
    /// The store's time-to-live, if it has one.
    store_ttl: Option<u64>,
    /// When each record of the ledger expires; absent: never.
    deadlines: HashMap<Key, u64>,
    /// Keys whose record expired and was not written since: the store may still hold it.
    expired: HashSet<Key>,
    /// The time-to-live the current operation's writes give (a view's, else the store's).
    writes_live: Option<u64>,
}

impl Time {
    /// The time of a store built with `clock` and time-to-live `store_ttl` (in seconds).
    pub(crate) fn new(clock: ManualClock, store_ttl: Option<u64>) -> Self {
        Time {
            clock,
            now: 0,
            store_ttl,
            deadlines: HashMap::new(),
            expired: HashSet::new(),
            writes_live: store_ttl,
        }
    }
}

/// The model: what every key holds, and every version each key has ever had.
pub(crate) struct Model<S: VersionScheme, O> {
    ledger: Ledger<S::Version>,
    oracle: O,
    /// The store's capacity bound in records, if it has one: it may then evict.
    bound: Option<usize>,
    /// The clock and deadlines of a store with expiry.
    time: Option<Time>,
}

impl<S: VersionScheme, O: VersionOracle<S::Version>> Model<S, O>
where
    S::Version: NeverIssued,
{
    pub(crate) fn new(oracle: O) -> Self {
        Model {
            ledger: Ledger::new(),
            oracle,
            bound: None,
            time: None,
        }
    }

    /// The model of a store with expiry, bounded to `bound` records if given: its records
    /// expire as `time` says (the store must share its clock).
    pub(crate) fn timed(oracle: O, time: Time, bound: Option<usize>) -> Self {
        Model {
            bound,
            time: Some(time),
            ..Model::new(oracle)
        }
    }

    /// For a timed model: takes the records whose time ran out out of the model.
    fn expirations(&mut self) {
        let Some(time) = &mut self.time else {
            return;
        };
        let now = time.now;
        let due: Vec<Key> = time
            .deadlines
            .iter()
            .filter(|&(_, &deadline)| deadline <= now)
            .map(|(&key, _)| key)
            .collect();
        for key in due {
            time.deadlines.remove(&key);
            time.expired.insert(key);
            let record = self
                .ledger
                .records
                .remove(&key)
                .expect("a deadline of a record");
            self.oracle.retire(&record.version);
        }
    }

    /// The error a conditional write must be compared with: `Expired` counts as the
    /// model's `NotFound` for a key whose record expired (the store may still hold it),
    /// and for no other.
    fn unexpired(&self, key: Key, error: Error<S::Version>) -> Error<S::Version> {
        let expired = self
            .time
            .as_ref()
            .is_some_and(|time| time.expired.contains(&key));
        match error {
            Error::Expired if expired => Error::NotFound,
            other => other,
        }
    }

    /// The number of records the store may count: those of the model, and expired ones
    /// it has not reclaimed yet.
    fn check_len(&self, len: usize, context: &str) {
        let held = self.ledger.records.len();
        let unreclaimed = self.time.as_ref().map_or(0, |time| time.expired.len());
        assert!(
            (held..=held + unreclaimed).contains(&len),
            "{context}: len {len}, the model holds {held} (+ {unreclaimed} expired)"
        );
    }

    /// The model of a store bounded to `bound` records: after every operation, the
    /// records the store no longer has count as evicted (their versions retired), and
    /// the store must never hold more than `bound`. Any eviction choice is allowed; an
    /// evicted key must then read as absent until it is written again, which the
    /// comparisons that follow check.
    pub(crate) fn bounded(oracle: O, bound: usize) -> Self {
        Model {
            bound: Some(bound),
            ..Model::new(oracle)
        }
    }

    /// For a bounded store: takes the records the store evicted out of the model.
    fn evictions<H: BuildHasher>(&mut self, store: &Store<Key, Value, S, H>, context: &str) {
        let Some(bound) = self.bound else {
            return;
        };
        let held: HashMap<Key, Versioned<Value, S::Version>> = store.iter().collect();
        assert!(
            held.len() <= bound,
            "{context}: {} records, over the bound of {bound}",
            held.len()
        );
        let evicted: Vec<Key> = self
            .ledger
            .records
            .keys()
            .filter(|key| !held.contains_key(key))
            .copied()
            .collect();
        for key in evicted {
            let record = self.ledger.records.remove(&key).expect("listed above");
            self.oracle.retire(&record.version);
            if let Some(time) = &mut self.time {
                time.deadlines.remove(&key);
            }
        }
    }

    /// Applies `ops` to `store` and to the model, panicking with the step number and
    /// operation at the first answer that differs. `ops` has no [`Op::Restart`].
    pub(crate) fn run<H: BuildHasher>(&mut self, store: &Store<Key, Value, S, H>, ops: &[Op]) {
        for (step, op) in ops.iter().enumerate() {
            self.step(store, step, op);
        }
    }

    /// As [`run`](Model::run), and at each [`Op::Restart`] replaces the store with what
    /// `restart` makes of it (a store restored from its snapshot). Its records must be
    /// the model's, and its versions resume above every version the store held or
    /// retired: the model retires the versions of its records, so a one-shard counter
    /// model still predicts every version exactly.
    #[cfg_attr(not(feature = "snapshot"), allow(dead_code))]
    pub(crate) fn run_restarting<H: BuildHasher>(
        &mut self,
        mut store: Store<Key, Value, S, H>,
        restart: impl Fn(&Store<Key, Value, S, H>) -> Store<Key, Value, S, H>,
        ops: &[Op],
    ) {
        for (step, op) in ops.iter().enumerate() {
            if let Op::Restart = op {
                store = restart(&store);
                self.restarted(&store, &format!("step {step}: restart"));
            } else {
                self.step(&store, step, op);
            }
        }
    }

    /// Checks a store just restored against the model, and resumes the oracle's
    /// versions as the store resumes its own.
    #[cfg_attr(not(feature = "snapshot"), allow(dead_code))]
    fn restarted<H: BuildHasher>(&mut self, store: &Store<Key, Value, S, H>, context: &str) {
        let held: HashMap<Key, Versioned<Value, S::Version>> = store.iter().collect();
        assert_eq!(held, self.ledger.records, "{context}");
        for record in self.ledger.records.values() {
            self.oracle.retire(&record.version);
        }
        // What had expired was left out of the snapshot: the new store holds none of it.
        if let Some(time) = &mut self.time {
            time.expired.clear();
        }
        self.check_len(store.len(), context);
    }

    /// Applies one operation, `op` at `step`, to `store` and to the model.
    fn step<H: BuildHasher>(&mut self, store: &Store<Key, Value, S, H>, step: usize, op: &Op) {
        let context = format!("step {step}: {op:?}");
        match op {
            Op::On(key, via, key_op) => self.apply_on(store, *key, via, key_op, &context),
            Op::Len => self.check_len(store.len(), &context),
            Op::Clear => {
                store.clear();
                for (_, record) in self.ledger.records.drain() {
                    self.oracle.retire(&record.version);
                }
                if let Some(time) = &mut self.time {
                    time.deadlines.clear();
                    time.expired.clear();
                }
                assert!(store.is_empty(), "{context}");
            }
            Op::Advance(seconds) => {
                let time = self
                    .time
                    .as_mut()
                    .expect("time moves only in a timed model");
                time.now += u64::from(*seconds);
                time.clock.advance(Duration::from_secs(u64::from(*seconds)));
            }
            Op::Iter => {
                let mut seen = HashMap::new();
                for (key, record) in store.iter() {
                    assert!(
                        seen.insert(key, record).is_none(),
                        "{context}: key {key} twice"
                    );
                }
                assert_eq!(seen, self.ledger.records, "{context}");
            }
            Op::Restart => panic!("{context}: a restart needs `run_restarting`"),
            Op::Transaction(via, steps) => self.transaction(store, via, steps, &context),
            Op::GetMany(keys) => {
                let borrowed: Vec<&Key> = keys.iter().collect();
                let read = store.get_many(&borrowed);
                let expected: Vec<_> = keys
                    .iter()
                    .map(|key| self.ledger.records.get(key).cloned())
                    .collect();
                assert_eq!(read, expected, "{context}");
            }
        }
        self.expirations();
        self.evictions(store, &context);
        // Whatever the answer, the record itself must be exactly what the model holds.
        if let Some(key) = op.key() {
            assert_eq!(
                store.get(&key),
                self.ledger.records.get(&key).cloned(),
                "{context}: after"
            );
        }
        self.check_len(store.len(), &format!("{context}: after"));
    }

    fn apply_on<H: BuildHasher>(
        &mut self,
        store: &Store<Key, Value, S, H>,
        key: Key,
        via: &Via,
        op: &KeyOp,
        context: &str,
    ) {
        let token = via.token();
        let front = via.front(store, &token);
        if let Some(time) = &mut self.time {
            time.writes_live = match via {
                Via::Expiring(ttl) => ttl.seconds(),
                Via::Plain | Via::Bounded(..) => time.store_ttl,
            };
        }
        let record = self.ledger.records.get(&key);
        match op {
            KeyOp::Get => assert_eq!(
                front.get(key),
                via.gate().map(|()| record.cloned()),
                "{context}"
            ),
            KeyOp::Version => assert_eq!(
                front.version(key),
                via.gate().map(|()| record.map(|r| r.version.clone())),
                "{context}"
            ),
            KeyOp::ContainsKey => assert_eq!(
                front.contains_key(key),
                via.gate().map(|()| record.is_some()),
                "{context}"
            ),
            KeyOp::Insert(value) => {
                let got = on_either!(&front, target => target.insert(key, *value));
                let verdict = gate(via).and_then(|()| match record {
                    Some(current) => Err(Error::Exists {
                        current: current.version.clone(),
                    }),
                    None => Ok(()),
                });
                match verdict {
                    Ok(()) => {
                        let version = must_succeed(got, context);
                        self.created(key, *value, version, context);
                    }
                    Err(error) => assert_rejected(got, error, *value, context),
                }
            }
            KeyOp::Put(value) => {
                let got = front.put(key, *value);
                match gate(via) {
                    Ok(()) => {
                        let version = must_succeed(got, context);
                        match record.map(|r| r.version.clone()) {
                            Some(current) => self.written(key, *value, &current, version, context),
                            None => self.created(key, *value, version, context),
                        }
                    }
                    Err(error) => assert_rejected(got, error, *value, context),
                }
            }
            KeyOp::Update(expect, value) => {
                let expected = self.ledger.expected(key, expect);
                let got = on_either!(&front, target => target.update(&key, &expected, *value))
                    .map_err(|Rejected { error, value }| Rejected {
                        error: self.unexpired(key, error),
                        value,
                    });
                match self.verdict(via, key, &expected) {
                    Ok(current) => {
                        let version = must_succeed(got, context);
                        self.written(key, *value, &current, version, context);
                    }
                    Err(error) => assert_rejected(got, error, *value, context),
                }
            }
            KeyOp::UpdateWith(expect, compute) => {
                let expected = self.ledger.expected(key, expect);
                let mut given = Vec::new();
                let closure = recording(compute, &mut given);
                let got =
                    on_either!(&front, target => target.try_update_with(&key, &expected, closure))
                        .map_err(|error| match error {
                            UpdateWithError::Store(error) => {
                                UpdateWithError::Store(self.unexpired(key, error))
                            }
                            closure => closure,
                        });
                let verdict = self.verdict(via, key, &expected);
                let answer = Computed { given, got };
                self.computed(key, verdict, compute, SameValue::Writes, answer, context);
            }
            KeyOp::RetryUpdate(compute) => {
                let mut given = Vec::new();
                let closure = recording(compute, &mut given);
                let got = on_either!(&front, target => target.try_retry_update(&key, closure));
                // Alone on the store, the first attempt cannot find its version stale.
                let got = got.map(|Retried { version, attempts }| {
                    assert_eq!(attempts, 1, "{context}: attempts");
                    version
                });
                let verdict = gate(via)
                    .and_then(|()| record.map(|r| r.version.clone()).ok_or(Error::NotFound));
                let answer = Computed { given, got };
                self.computed(key, verdict, compute, SameValue::Writes, answer, context);
            }
            KeyOp::Patch(expect, compute) => {
                let expected = self.ledger.expected(key, expect);
                let mut given = Vec::new();
                let mut closure = recording(compute, &mut given);
                let patch = move |draft: &mut Value| {
                    *draft = closure(draft)?;
                    Ok::<(), u8>(())
                };
                let got = on_either!(&front, target => target.patch(&key, &expected, patch))
                    .map_err(|error| match error {
                        PatchError::Store(error) => {
                            UpdateWithError::Store(self.unexpired(key, error))
                        }
                        PatchError::Patch(code) => UpdateWithError::Closure(code),
                    });
                let verdict = self.verdict(via, key, &expected);
                let answer = Computed { given, got };
                self.computed(
                    key,
                    verdict,
                    compute,
                    SameValue::KeepsVersion,
                    answer,
                    context,
                );
            }
            KeyOp::Remove(expect) => {
                let expected = self.ledger.expected(key, expect);
                let got = on_either!(&front, target => target.remove(&key, &expected))
                    .map_err(|error| self.unexpired(key, error));
                match self.verdict(via, key, &expected) {
                    Ok(current) => {
                        let removed = self.ledger.records.remove(&key).expect("checked above");
                        assert_eq!(got, Ok(removed.value), "{context}");
                        self.oracle.retire(&current);
                        if let Some(time) = &mut self.time {
                            time.deadlines.remove(&key);
                        }
                    }
                    Err(error) => assert_eq!(got, Err(error), "{context}"),
                }
            }
            KeyOp::Invalidate => {
                let got = front.invalidate(key);
                match via.gate() {
                    Ok(()) => {
                        let removed = self.ledger.records.remove(&key);
                        assert_eq!(got, Ok(removed.clone()), "{context}");
                        if let Some(removed) = removed {
                            self.oracle.retire(&removed.version);
                            if let Some(time) = &mut self.time {
                                time.deadlines.remove(&key);
                            }
                        }
                    }
                    Err(error) => assert_eq!(got, Err(error), "{context}"),
                }
            }
        }
    }

    /// Commits a transaction of `steps` through `via` and checks its answer: the input
    /// refused, every failed condition named with the current version, a bounded shard's
    /// share exceeded, or every step applied (removals, then writes, as the store does
    /// within a shard), none of its records evicted. A bounded model's store has one
    /// shard, whose share is the whole bound.
    fn transaction<H: BuildHasher>(
        &mut self,
        store: &Store<Key, Value, S, H>,
        via: &Via,
        steps: &[TxnStep],
        context: &str,
    ) {
        let token = via.token();
        let front = via.front(store, &token);
        if let Some(time) = &mut self.time {
            time.writes_live = match via {
                Via::Expiring(ttl) => ttl.seconds(),
                Via::Plain | Via::Bounded(..) => time.store_ttl,
            };
        }
        let mut transaction = Transaction::new();
        let mut conditions = Vec::new();
        for step in steps {
            let version = |expect: &Expect| self.ledger.expected(step.key(), expect);
            let (next, condition) = match step {
                TxnStep::Compare(key, Some(expect)) => {
                    let version = version(expect);
                    (
                        transaction.compare(*key, version.clone()),
                        Some(Condition::Version(version)),
                    )
                }
                TxnStep::Compare(key, None) => {
                    (transaction.compare_absent(*key), Some(Condition::Absent))
                }
                TxnStep::Put(key, value) => (transaction.put(*key, *value), None),
                TxnStep::Update(key, expect, value) => {
                    let version = version(expect);
                    let next = transaction.update(*key, version.clone(), *value);
                    (next, Some(Condition::Version(version)))
                }
                TxnStep::Create(key, value) => {
                    (transaction.create(*key, *value), Some(Condition::Absent))
                }
                TxnStep::Remove(key, expect) => {
                    let version = version(expect);
                    (
                        transaction.remove(*key, version.clone()),
                        Some(Condition::Version(version)),
                    )
                }
            };
            transaction = next;
            conditions.push(condition);
        }
        let sent = transaction.clone();
        let got = on_either!(&front, target => target.commit(transaction));
        let refused =
            |got: Result<Committed<S::Version>, TransactionRefused<Key, Value, S::Version>>| {
                let refused = got.expect_err(context);
                assert_eq!(refused.transaction, sent, "{context}: handed back");
                refused.error
            };
        if steps.is_empty() {
            assert_eq!(refused(got), TransactionError::Empty, "{context}");
            return;
        }
        let repeated: Vec<Key> = steps
            .iter()
            .map(TxnStep::key)
            .filter(|key| steps.iter().filter(|step| step.key() == *key).count() > 1)
            .collect();
        if !repeated.is_empty() {
            match refused(got) {
                TransactionError::Repeated(key) if repeated.contains(&key) => {}
                other => panic!("{context}: {other:?}, not one of {repeated:?} repeated"),
            }
            return;
        }
        if let Err(interrupted) = via.gate() {
            let shards: HashSet<usize> = steps
                .iter()
                .map(|step| store.shard_of(&step.key()))
                .collect();
            let error = TransactionError::Interrupted {
                stopped: interrupted,
                locked: 0,
                shards: shards.len(),
            };
            assert_eq!(refused(got), error, "{context}");
            return;
        }
        let conflicts: Vec<Conflict<Key, S::Version>> = steps
            .iter()
            .zip(&conditions)
            .filter_map(|(step, condition)| {
                let condition = condition.as_ref()?;
                let current = self
                    .ledger
                    .records
                    .get(&step.key())
                    .map(|r| r.version.clone());
                (!condition.holds(current.as_ref())).then(|| Conflict {
                    key: step.key(),
                    expected: condition.clone(),
                    current,
                })
            })
            .collect();
        if !conflicts.is_empty() {
            assert_eq!(
                refused(got),
                TransactionError::Conflict(conflicts),
                "{context}"
            );
            return;
        }
        let writes = steps.iter().filter(|step| step.value().is_some()).count() as u64;
        if let Some(bound) = self.bound {
            assert_eq!(
                store.shard_count(),
                1,
                "{context}: a bounded model has one shard"
            );
            if writes > bound as u64 {
                let error = TransactionError::TooHeavy {
                    weight: writes,
                    capacity: bound as u64,
                };
                assert_eq!(refused(got), error, "{context}");
                return;
            }
        }
        let outcomes = must_succeed(got, context);
        assert_eq!(outcomes.len(), steps.len(), "{context}");
        for (step, outcome) in steps.iter().zip(&outcomes) {
            if let TxnStep::Remove(key, _) = step {
                assert_eq!(*outcome, Outcome::Removed, "{context}");
                let removed = self.ledger.records.remove(key).expect("its condition held");
                self.oracle.retire(&removed.version);
                if let Some(time) = &mut self.time {
                    time.deadlines.remove(key);
                }
            }
        }
        for (step, outcome) in steps.iter().zip(&outcomes) {
            let Some(value) = step.value() else {
                if let TxnStep::Compare(..) = step {
                    assert_eq!(*outcome, Outcome::Compared, "{context}");
                }
                continue;
            };
            let Outcome::Written(version) = outcome.clone() else {
                panic!("{context}: {step:?} answered {outcome:?}");
            };
            let key = step.key();
            match self.ledger.records.get(&key).map(|r| r.version.clone()) {
                Some(previous) => self.written(key, value, &previous, version, context),
                None => self.created(key, value, version, context),
            }
        }
        // A bounded store may have evicted others, never a record the transaction wrote.
        for step in steps {
            if step.value().is_some() {
                let key = step.key();
                let held = store.get(&key);
                let expected = self.ledger.records.get(&key).cloned();
                if self
                    .time
                    .as_ref()
                    .is_none_or(|time| time.deadlines.get(&key).is_none_or(|&at| at > time.now))
                {
                    assert_eq!(
                        held, expected,
                        "{context}: key {key} evicted by its own transaction"
                    );
                }
            }
        }
    }

    /// Checks the answer of an operation whose closure computes the new value with
    /// `compute` against the model's `verdict`: the current version, or the error to refuse
    /// with before the closure runs.
    fn computed(
        &mut self,
        key: Key,
        verdict: Result<S::Version, Error<S::Version>>,
        compute: &Compute,
        same_value: SameValue,
        Computed { given, got }: Computed<S::Version>,
        context: &str,
    ) {
        let current = match verdict {
            Ok(current) => current,
            Err(error) => {
                assert!(
                    given.is_empty(),
                    "{context}: the closure ran after a refusal"
                );
                assert_eq!(got, Err(UpdateWithError::Store(error)), "{context}");
                return;
            }
        };
        let old = self.ledger.records[&key].value;
        assert_eq!(
            given,
            [old],
            "{context}: the closure runs once on the value"
        );
        match compute.apply(old) {
            Ok(new) if new == old && same_value == SameValue::KeepsVersion => {
                assert_eq!(got, Ok(current), "{context}: unchanged keeps the version");
            }
            Ok(new) => {
                let version = must_succeed(got, context);
                self.written(key, new, &current, version, context);
            }
            Err(code) => assert_eq!(got, Err(UpdateWithError::Closure(code)), "{context}"),
        }
    }

    /// What a conditional operation through `via` must do: go ahead on the current
    /// version, or refuse with this error (the view's, else the version check's).
    fn verdict(
        &self,
        via: &Via,
        key: Key,
        expected: &S::Version,
    ) -> Result<S::Version, Error<S::Version>> {
        gate(via).and_then(|()| self.ledger.check(key, expected))
    }

    /// Records that `key` was created with `value` at `version`.
    fn created(&mut self, key: Key, value: Value, version: S::Version, context: &str) {
        if let Some(predicted) = self.oracle.initial() {
            assert_eq!(version, predicted, "{context}: version of a new record");
        }
        self.ledger.record(key, value, version, context);
        self.restart_clock(key);
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
        self.ledger.record(key, value, version, context);
        self.restart_clock(key);
    }

    /// For a timed model: `key` was just written; its time-to-live counts from now.
    fn restart_clock(&mut self, key: Key) {
        let Some(time) = &mut self.time else {
            return;
        };
        time.expired.remove(&key);
        match time.writes_live {
            Some(ttl) => time.deadlines.insert(key, time.now + ttl),
            None => time.deadlines.remove(&key),
        };
    }
}

/// The closure of `update_with`, `retry_update` or `patch`: computes with `compute`, and
/// notes each value it is called with in `given`.
fn recording<'a>(
    compute: &'a Compute,
    given: &'a mut Vec<Value>,
) -> impl FnMut(&Value) -> Result<Value, u8> + 'a {
    move |value| {
        given.push(*value);
        compute.apply(*value)
    }
}

/// [`Via::gate`] as the error a write refuses with.
fn gate<Ver>(via: &Via) -> Result<(), Error<Ver>> {
    via.gate().map_err(Error::from)
}

fn must_succeed<T, E: Debug>(result: Result<T, E>, context: &str) -> T {
    result.unwrap_or_else(|error| panic!("{context}: must succeed, was refused with {error:?}"))
}

/// Checks that a write was refused with `error`, handing `value` back.
fn assert_rejected<Ver: Debug + PartialEq>(
    result: Result<Ver, Rejected<Value, Ver>>,
    error: Error<Ver>,
    value: Value,
    context: &str,
) {
    match result {
        Ok(version) => panic!("{context}: must be refused, succeeded with version {version:?}"),
        Err(refused) => {
            assert_eq!(refused.error, error, "{context}");
            assert_eq!(refused.value, value, "{context}: value handed back");
        }
    }
}
