//! The conformance model: random operation sequences through the [`VersionedStore`]
//! trait, against a simple sequential model, for every backend. Each answer (values,
//! versions, errors, handed-back values, closure calls) must be the model's; versions are
//! compared by identity, and a key must never get a version it had before.
//!
//! The records, the version check and the choice of expected versions are the ledger's
//! (`ledger.rs`), shared with the model of the store's own API.
//!
//! The operations are the trait's: the single-key ones, and `get_many`, `commit` and
//! `transact` on the step's key and a second one (the same key, now and then: a
//! transaction naming it twice is refused as repeated). A transaction's refusal must name
//! exactly its failed conditions, with the keys' current versions, in any order.
//!
//! Every operation runs under one of three contexts: none, a long deadline, or a token
//! cancelled beforehand (which must refuse with `Cancelled` and change nothing). Alone on
//! the store, nothing else differs.
//!
//! A backend with both faces is held to this one definition through each:
//! [`Model::run`] calls the blocking [`VersionedStore`], [`Model::run_async`] the
//! [`AsyncVersionedStore`], each future polled to completion on the test's thread.

use std::time::Duration;

use futures_lite::future::block_on;
use proptest::prelude::*;
use verkv::{
    AsyncVersionedStore, CancelToken, Committed, Conflict, Context, Error, Expect as Condition,
    Interrupted, Outcome, ReadMany, Rejected, Retried, TransactError, Transacted, Transaction,
    TransactionError, TransactionRefused, UpdateWithError, Versioned, VersionedStore,
};

use super::ledger::{Expect, Ledger, NeverIssued};
pub(crate) use super::ledger::{Key, Value};

/// One operation on a key, with its arguments and the context it runs under.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    key: Key,
    ctx: Ctx,
    op: Op,
}

#[derive(Debug, Clone, Copy)]
enum Ctx {
    Background,
    Long,
    Cancelled,
}

#[derive(Debug, Clone)]
enum Op {
    Get,
    Insert(Value),
    Put(Value),
    Update(Expect, Value),
    /// `update_with` adding this much, or refusing with the code if it is `None`.
    UpdateWith(Expect, Option<Value>, u8),
    Remove(Expect),
    /// `retry_update` adding this much, or refusing with the code if it is `None`.
    RetryUpdate(Option<Value>, u8),
    /// `get_or_load` with a loader making this value.
    GetOrLoad(Value),
    /// `get_many` of the key and this one (perhaps the same).
    GetMany(Key),
    /// `commit` of a transaction that updates the key (at one version) to the value, and
    /// this other key (perhaps the same: refused as repeated) at another to the value + 1.
    Commit(Key, Expect, Expect, Value),
    /// `transact` on the key and this other one, adding this much to the first, or
    /// refusing with the code if it is `None` or either key has no record.
    Transact(Key, Option<Value>, u8),
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        4 => Just(Expect::Current),
        2 => any::<usize>().prop_map(Expect::Earlier),
        1 => any::<u32>().prop_map(Expect::NeverIssued),
    ]
}

/// Operations on `keys` keys, mostly without a context.
pub(crate) fn steps(keys: Key, max_len: usize) -> impl Strategy<Value = Vec<Step>> {
    let ctx = prop::sample::select(vec![
        Ctx::Background,
        Ctx::Background,
        Ctx::Background,
        Ctx::Long,
        Ctx::Cancelled,
    ]);
    let op = prop_oneof![
        2 => Just(Op::Get),
        3 => any::<Value>().prop_map(Op::Insert),
        1 => any::<Value>().prop_map(Op::Put),
        4 => (expect(), any::<Value>()).prop_map(|(e, v)| Op::Update(e, v)),
        3 => (expect(), any::<Option<Value>>(), any::<u8>())
            .prop_map(|(e, add, code)| Op::UpdateWith(e, add, code)),
        2 => expect().prop_map(Op::Remove),
        2 => (any::<Option<Value>>(), any::<u8>()).prop_map(|(add, code)| Op::RetryUpdate(add, code)),
        2 => any::<Value>().prop_map(Op::GetOrLoad),
        1 => (0..keys).prop_map(Op::GetMany),
        2 => (0..keys, expect(), expect(), any::<Value>())
            .prop_map(|(other, a, b, value)| Op::Commit(other, a, b, value)),
        1 => (0..keys, any::<Option<Value>>(), any::<u8>())
            .prop_map(|(other, add, code)| Op::Transact(other, add, code)),
    ];
    let step = (0..keys, ctx, op).prop_map(|(key, ctx, op)| Step { key, ctx, op });
    prop::collection::vec(step, 1..max_len)
}

/// The model: the ledger of records and versions.
pub(crate) struct Model<Ver> {
    ledger: Ledger<Ver>,
}

impl<Ver: NeverIssued> Model<Ver> {
    /// Applies `steps` to `store` (which must start empty) through its blocking face and
    /// to the model, panicking at the first answer that differs.
    pub(crate) fn run<T: VersionedStore<Key, Value, Version = Ver>>(store: &T, steps: &[Step]) {
        Self::run_on(&Blocking(store), steps);
    }

    /// As [`run`](Model::run), through the store's async face.
    #[allow(dead_code)] // not every includer's backend has an async face yet
    pub(crate) fn run_async<T: AsyncVersionedStore<Key, Value, Version = Ver>>(
        store: &T,
        steps: &[Step],
    ) {
        Self::run_on(&Awaited(store), steps);
    }

    fn run_on<T: Face<Version = Ver>>(store: &T, steps: &[Step]) {
        let mut model = Model {
            ledger: Ledger::new(),
        };
        for (index, step) in steps.iter().enumerate() {
            let context = format!("step {index}: {step:?}");
            model.apply(store, step, &context);
            let after = store.get(&Context::background(), &step.key);
            assert_eq!(
                after.unwrap(),
                model.ledger.records.get(&step.key).cloned(),
                "{context}: after"
            );
        }
    }

    fn apply<T: Face<Version = Ver>>(&mut self, store: &T, step: &Step, context: &str) {
        let token = CancelToken::new();
        let ctx = match step.ctx {
            Ctx::Background => Context::background(),
            Ctx::Long => Context::within(Duration::from_secs(60)),
            Ctx::Cancelled => {
                token.cancel();
                Context::background().with_cancel(&token)
            }
        };
        let cancelled = matches!(step.ctx, Ctx::Cancelled);
        let key = step.key;
        let record = self.ledger.records.get(&key).cloned();
        match &step.op {
            Op::Get => {
                let got = store.get(&ctx, &key);
                if cancelled {
                    assert_eq!(got, Err(Error::Cancelled), "{context}");
                } else {
                    assert_eq!(got, Ok(record), "{context}");
                }
            }
            Op::Insert(value) => {
                let got = store.insert(&ctx, key, *value);
                let verdict = if cancelled {
                    Err(Error::Cancelled)
                } else if let Some(current) = record {
                    Err(Error::Exists {
                        current: current.version,
                    })
                } else {
                    Ok(())
                };
                self.written(key, *value, got, verdict, context);
            }
            Op::Put(value) => {
                let got = store.put(&ctx, key, *value);
                let verdict = if cancelled {
                    Err(Error::Cancelled)
                } else {
                    Ok(())
                };
                self.written(key, *value, got, verdict, context);
            }
            Op::Update(expect, value) => {
                let expected = self.ledger.expected(key, expect);
                let got = store.update(&ctx, &key, &expected, *value);
                let verdict = self.check(cancelled, key, &expected);
                self.written(key, *value, got, verdict, context);
            }
            Op::UpdateWith(expect, add, code) => {
                let expected = self.ledger.expected(key, expect);
                let mut given = Vec::new();
                let got = store.try_update_with(&ctx, &key, &expected, |value: &Value| {
                    given.push(*value);
                    add.map(|add| value.wrapping_add(add)).ok_or(*code)
                });
                match self.check(cancelled, key, &expected) {
                    Err(error) => {
                        assert!(given.is_empty(), "{context}: closure ran after a refusal");
                        assert_eq!(got, Err(UpdateWithError::Store(error)), "{context}");
                    }
                    Ok(()) => {
                        let old = record.expect("checked").value;
                        assert_eq!(given, [old], "{context}: closure runs once");
                        match add {
                            None => {
                                assert_eq!(got, Err(UpdateWithError::Closure(*code)), "{context}")
                            }
                            Some(add) => {
                                let version = got.unwrap_or_else(|e| {
                                    panic!("{context}: must succeed, was refused with {e:?}")
                                });
                                self.ledger
                                    .record(key, old.wrapping_add(*add), version, context);
                            }
                        }
                    }
                }
            }
            Op::Remove(expect) => {
                let expected = self.ledger.expected(key, expect);
                let got = store.remove(&ctx, &key, &expected);
                match self.check(cancelled, key, &expected) {
                    Err(error) => assert_eq!(got, Err(error), "{context}"),
                    Ok(()) => {
                        let removed = self.ledger.records.remove(&key).expect("checked");
                        assert_eq!(got, Ok(removed.value), "{context}");
                    }
                }
            }
            Op::RetryUpdate(add, code) => {
                let mut given = Vec::new();
                let got = store.try_retry_update(&ctx, &key, |value: &Value| {
                    given.push(*value);
                    add.map(|add| value.wrapping_add(add)).ok_or(*code)
                });
                match (cancelled, record) {
                    (true, _) => {
                        assert_eq!(
                            got,
                            Err(UpdateWithError::Store(Error::Cancelled)),
                            "{context}"
                        )
                    }
                    (false, None) => {
                        assert_eq!(
                            got,
                            Err(UpdateWithError::Store(Error::NotFound)),
                            "{context}"
                        )
                    }
                    (false, Some(old)) => {
                        // Alone on the store: one attempt, the closure called once.
                        assert_eq!(given, [old.value], "{context}: closure runs once");
                        match add {
                            None => {
                                assert_eq!(got, Err(UpdateWithError::Closure(*code)), "{context}")
                            }
                            Some(add) => {
                                let done = got.unwrap_or_else(|e| {
                                    panic!("{context}: must succeed, was refused with {e:?}")
                                });
                                assert_eq!(done.attempts, 1, "{context}");
                                let value = old.value.wrapping_add(*add);
                                self.ledger.record(key, value, done.version, context);
                            }
                        }
                    }
                }
            }
            Op::GetMany(other) => {
                let got = store.get_many(&ctx, &[key, *other]);
                let records = self.ledger.records.clone();
                if cancelled {
                    assert_eq!(got, Err(Error::Cancelled), "{context}");
                } else {
                    let want = vec![records.get(&key).cloned(), records.get(other).cloned()];
                    assert_eq!(got, Ok(want), "{context}");
                }
            }
            Op::Commit(other, a, b, value) => {
                let (at_a, at_b) = (
                    self.ledger.expected(key, a),
                    self.ledger.expected(*other, b),
                );
                let transaction = Transaction::new().update(key, at_a.clone(), *value).update(
                    *other,
                    at_b.clone(),
                    value.wrapping_add(1),
                );
                let got = store.commit(&ctx, transaction);
                let mut failed: Vec<Conflict<Key, Ver>> = [(key, &at_a), (*other, &at_b)]
                    .into_iter()
                    .filter(|(k, at)| self.ledger.check(*k, at).is_err())
                    .map(|(k, at)| Conflict {
                        key: k,
                        expected: Condition::Version(at.clone()),
                        current: self.ledger.records.get(&k).map(|r| r.version.clone()),
                    })
                    .collect();
                // The order in which a store names its conflicts is its own.
                failed.sort_by_key(|conflict| conflict.key);
                match got {
                    _ if *other == key => {
                        let refused = got.expect_err("a repeated key is refused");
                        assert_eq!(refused.error, TransactionError::Repeated(key), "{context}");
                    }
                    Err(refused) if cancelled => assert!(
                        matches!(
                            refused.error,
                            TransactionError::Interrupted {
                                stopped: Interrupted::Cancelled,
                                ..
                            }
                        ),
                        "{context}: {:?}",
                        refused.error
                    ),
                    Err(refused) => {
                        let TransactionError::Conflict(mut named) = refused.error else {
                            panic!("{context}: refused with {:?}", refused.error);
                        };
                        named.sort_by_key(|conflict| conflict.key);
                        assert_eq!(named, failed, "{context}");
                    }
                    Ok(outcomes) => {
                        assert!(
                            !cancelled && failed.is_empty(),
                            "{context}: must be refused"
                        );
                        let [Outcome::Written(va), Outcome::Written(vb)] = &outcomes[..] else {
                            panic!("{context}: {outcomes:?}");
                        };
                        self.ledger.record(key, *value, va.clone(), context);
                        self.ledger
                            .record(*other, value.wrapping_add(1), vb.clone(), context);
                    }
                }
            }
            Op::Transact(other, add, code) => {
                let mut reads = 0;
                let got = store.transact(&ctx, &[key, *other], |read| {
                    reads += 1;
                    match (&read[0], &read[1], add) {
                        (Some(a), Some(b), Some(add)) => Ok(Transaction::new()
                            .put(key, a.value.wrapping_add(*add))
                            .put(*other, b.value)),
                        _ => Err(*code),
                    }
                });
                let records = &self.ledger.records;
                let (a, b) = (records.get(&key).cloned(), records.get(other).cloned());
                match (cancelled, a, b, add) {
                    (true, ..) => assert!(
                        matches!(
                            got,
                            Err(TransactError::Transaction(TransactionError::Interrupted {
                                stopped: Interrupted::Cancelled,
                                ..
                            }))
                        ),
                        "{context}: {got:?}"
                    ),
                    (false, Some(a), Some(b), Some(add)) if *other != key => {
                        let done = got.unwrap_or_else(|e| panic!("{context}: refused: {e:?}"));
                        assert_eq!((done.attempts, reads), (1, 1), "{context}: alone, once");
                        let [Outcome::Written(va), Outcome::Written(vb)] = &done.outcomes[..]
                        else {
                            panic!("{context}: {:?}", done.outcomes);
                        };
                        self.ledger
                            .record(key, a.value.wrapping_add(*add), va.clone(), context);
                        self.ledger.record(*other, b.value, vb.clone(), context);
                    }
                    (false, Some(_), Some(_), Some(_)) => assert_eq!(
                        got,
                        Err(TransactError::Transaction(TransactionError::Repeated(key))),
                        "{context}"
                    ),
                    (false, ..) => assert_eq!(got, Err(TransactError::Closure(*code)), "{context}"),
                }
            }
            Op::GetOrLoad(value) => {
                let mut loads = 0;
                let got = store.get_or_load(&ctx, key, || {
                    loads += 1;
                    *value
                });
                match (cancelled, record) {
                    (true, _) => assert_eq!(got, Err(Error::Cancelled), "{context}"),
                    (false, Some(current)) => {
                        assert_eq!(loads, 0, "{context}: a hit runs no loader");
                        assert_eq!(got, Ok(current), "{context}");
                    }
                    (false, None) => {
                        assert_eq!(loads, 1, "{context}: a miss runs the loader once");
                        let loaded = got.unwrap_or_else(|e| {
                            panic!("{context}: must load, was refused with {e:?}")
                        });
                        assert_eq!(loaded.value, *value, "{context}");
                        self.ledger
                            .record(key, loaded.value, loaded.version, context);
                    }
                }
            }
        }
    }

    /// Checks a write's answer against the model's verdict, and records it if it wrote.
    fn written(
        &mut self,
        key: Key,
        value: Value,
        got: Result<Ver, Rejected<Value, Ver>>,
        verdict: Result<(), Error<Ver>>,
        context: &str,
    ) {
        match (verdict, got) {
            (Ok(()), Ok(version)) => self.ledger.record(key, value, version, context),
            (Ok(()), Err(refused)) => panic!("{context}: must succeed, was refused: {refused}"),
            (Err(error), Ok(version)) => {
                panic!("{context}: must be refused with {error}, wrote version {version}")
            }
            (Err(error), Err(refused)) => {
                assert_eq!(refused.error, error, "{context}");
                assert_eq!(refused.value, value, "{context}: value handed back");
            }
        }
    }

    /// The model's verdict on a conditional operation: a cancelled one is refused before
    /// the version check.
    fn check(&self, cancelled: bool, key: Key, expected: &Ver) -> Result<(), Error<Ver>> {
        if cancelled {
            return Err(Error::Cancelled);
        }
        self.ledger.check(key, expected).map(drop)
    }
}

/// What the model asks of a store, the same through either face.
trait Face {
    type Version;

    fn get(&self, ctx: &Context<'_>, key: &Key) -> Read<Self::Version>;
    fn insert(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<Self::Version>;
    fn put(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<Self::Version>;
    fn update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &Self::Version,
        value: Value,
    ) -> Written<Self::Version>;
    fn try_update_with(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &Self::Version,
        compute: impl FnOnce(&Value) -> Result<Value, u8> + Send,
    ) -> Result<Self::Version, UpdateWithError<Self::Version, u8>>;
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &Self::Version,
    ) -> Result<Value, Error<Self::Version>>;
    fn try_retry_update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        compute: impl FnMut(&Value) -> Result<Value, u8> + Send,
    ) -> Result<Retried<Self::Version>, UpdateWithError<Self::Version, u8>>;
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: Key,
        load: impl FnOnce() -> Value + Send,
    ) -> Result<Versioned<Value, Self::Version>, Error<Self::Version>>;
    fn get_many(&self, ctx: &Context<'_>, keys: &[Key]) -> Many<Self::Version>;
    fn commit(&self, ctx: &Context<'_>, transaction: Txn<Self::Version>) -> Commit<Self::Version>;
    fn transact(
        &self,
        ctx: &Context<'_>,
        keys: &[Key],
        compute: impl FnMut(&[Option<Versioned<Value, Self::Version>>]) -> Result<Txn<Self::Version>, u8>
            + Send,
    ) -> Result<Transacted<Self::Version>, TransactError<Key, Self::Version, u8>>;
}

type Many<Ver> = Result<ReadMany<Value, Ver>, Error<Ver>>;
type Txn<Ver> = Transaction<Key, Value, Ver>;
type Commit<Ver> = Result<Committed<Ver>, TransactionRefused<Key, Value, Ver>>;

type Read<Ver> = Result<Option<Versioned<Value, Ver>>, Error<Ver>>;
type Written<Ver> = Result<Ver, Rejected<Value, Ver>>;

/// A store called through [`VersionedStore`].
struct Blocking<'a, T>(&'a T);

/// A store called through [`AsyncVersionedStore`], each future run to completion.
struct Awaited<'a, T>(&'a T);

impl<T: VersionedStore<Key, Value>> Face for Blocking<'_, T> {
    type Version = T::Version;

    fn get(&self, ctx: &Context<'_>, key: &Key) -> Read<T::Version> {
        self.0.get(ctx, key)
    }
    fn insert(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<T::Version> {
        self.0.insert(ctx, key, value)
    }
    fn put(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<T::Version> {
        self.0.put(ctx, key, value)
    }
    fn update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
        value: Value,
    ) -> Written<T::Version> {
        self.0.update(ctx, key, expected, value)
    }
    fn try_update_with(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
        compute: impl FnOnce(&Value) -> Result<Value, u8> + Send,
    ) -> Result<T::Version, UpdateWithError<T::Version, u8>> {
        self.0.try_update_with(ctx, key, expected, compute)
    }
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
    ) -> Result<Value, Error<T::Version>> {
        self.0.remove(ctx, key, expected)
    }
    fn try_retry_update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        compute: impl FnMut(&Value) -> Result<Value, u8> + Send,
    ) -> Result<Retried<T::Version>, UpdateWithError<T::Version, u8>> {
        self.0.try_retry_update(ctx, key, compute)
    }
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: Key,
        load: impl FnOnce() -> Value + Send,
    ) -> Result<Versioned<Value, T::Version>, Error<T::Version>> {
        self.0.get_or_load(ctx, key, load)
    }
    fn get_many(&self, ctx: &Context<'_>, keys: &[Key]) -> Many<T::Version> {
        self.0.get_many(ctx, keys)
    }
    fn commit(&self, ctx: &Context<'_>, transaction: Txn<T::Version>) -> Commit<T::Version> {
        self.0.commit(ctx, transaction)
    }
    fn transact(
        &self,
        ctx: &Context<'_>,
        keys: &[Key],
        compute: impl FnMut(&[Option<Versioned<Value, T::Version>>]) -> Result<Txn<T::Version>, u8>
            + Send,
    ) -> Result<Transacted<T::Version>, TransactError<Key, T::Version, u8>> {
        self.0.transact(ctx, keys, compute)
    }
}

impl<T: AsyncVersionedStore<Key, Value>> Face for Awaited<'_, T> {
    type Version = T::Version;

    fn get(&self, ctx: &Context<'_>, key: &Key) -> Read<T::Version> {
        block_on(self.0.get(ctx, key))
    }
    fn insert(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<T::Version> {
        block_on(self.0.insert(ctx, key, value))
    }
    fn put(&self, ctx: &Context<'_>, key: Key, value: Value) -> Written<T::Version> {
        block_on(self.0.put(ctx, key, value))
    }
    fn update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
        value: Value,
    ) -> Written<T::Version> {
        block_on(self.0.update(ctx, key, expected, value))
    }
    fn try_update_with(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
        compute: impl FnOnce(&Value) -> Result<Value, u8> + Send,
    ) -> Result<T::Version, UpdateWithError<T::Version, u8>> {
        block_on(self.0.try_update_with(ctx, key, expected, compute))
    }
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        expected: &T::Version,
    ) -> Result<Value, Error<T::Version>> {
        block_on(self.0.remove(ctx, key, expected))
    }
    fn try_retry_update(
        &self,
        ctx: &Context<'_>,
        key: &Key,
        compute: impl FnMut(&Value) -> Result<Value, u8> + Send,
    ) -> Result<Retried<T::Version>, UpdateWithError<T::Version, u8>> {
        block_on(self.0.try_retry_update(ctx, key, compute))
    }
    fn get_or_load(
        &self,
        ctx: &Context<'_>,
        key: Key,
        load: impl FnOnce() -> Value + Send,
    ) -> Result<Versioned<Value, T::Version>, Error<T::Version>> {
        block_on(self.0.get_or_load(ctx, key, async move { load() }))
    }
    fn get_many(&self, ctx: &Context<'_>, keys: &[Key]) -> Many<T::Version> {
        block_on(self.0.get_many(ctx, keys))
    }
    fn commit(&self, ctx: &Context<'_>, transaction: Txn<T::Version>) -> Commit<T::Version> {
        block_on(self.0.commit(ctx, transaction))
    }
    fn transact(
        &self,
        ctx: &Context<'_>,
        keys: &[Key],
        compute: impl FnMut(&[Option<Versioned<Value, T::Version>>]) -> Result<Txn<T::Version>, u8>
            + Send,
    ) -> Result<Transacted<T::Version>, TransactError<Key, T::Version, u8>> {
        block_on(self.0.transact(ctx, keys, compute))
    }
}
