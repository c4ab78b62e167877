//! Random operation sequences against a simple sequential model: every answer (values,
//! versions, errors, handed-back values, closure calls, retry attempts) must match, for
//! both version schemes, whether an operation goes through the store or through a bounded
//! view of it. On failure proptest shrinks the sequence to a short one that shows the bug.

#[path = "support/ledger.rs"]
mod ledger;
#[path = "support/model.rs"]
mod model;

use std::time::Duration;

use model::{
    AnyFresh, Cancel, Compute, ExactCounter, Expect, Key, KeyOp, Limit, Model, Op, Value, Via,
};
use proptest::prelude::*;
use verkv::{Counter, Store, UuidV4};

/// Few keys, so that operations keep meeting the same records.
const KEYS: Key = 4;

/// The bound of the bounded stores: fewer records than keys, so that they evict.
const BOUND: usize = 2;

fn key() -> impl Strategy<Value = Key> {
    0..KEYS
}

fn value() -> impl Strategy<Value = Value> {
    any::<Value>()
}

/// Mostly the current version, so that conditional writes often succeed.
fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        4 => Just(Expect::Current),
        2 => any::<usize>().prop_map(Expect::Earlier),
        1 => any::<u32>().prop_map(Expect::NeverIssued),
    ]
}

fn compute() -> impl Strategy<Value = Compute> {
    prop_oneof![
        3 => any::<Value>().prop_map(Compute::Add),
        1 => Just(Compute::Keep),
        1 => any::<u8>().prop_map(Compute::Refuse),
    ]
}

/// Mostly the plain store, so that bounded views do not crowd out the plain methods.
/// (Choices by `select` and a weighted coin rather than `prop_oneof!`, which prepares a
/// lazily generated alternative for every option before the one picked: that made
/// generation, not the model, most of the test's time.)
fn via() -> impl Strategy<Value = Via> {
    let limit = prop::sample::select(vec![
        Limit::NoWait,
        Limit::Long,
        Limit::Overflowing,
        Limit::Passed,
        Limit::StoreDefault,
    ]);
    let cancel = prop::sample::select(vec![Cancel::NoToken, Cancel::Pending, Cancel::Cancelled]);
    (prop::bool::weighted(0.4), limit, cancel).prop_map(|(bounded, limit, cancel)| {
        if bounded {
            Via::Bounded(limit, cancel)
        } else {
            Via::Plain
        }
    })
}

fn key_op() -> impl Strategy<Value = KeyOp> {
    prop_oneof![
        2 => Just(KeyOp::Get),
        1 => Just(KeyOp::Version),
        1 => Just(KeyOp::ContainsKey),
        3 => value().prop_map(KeyOp::Insert),
        1 => value().prop_map(KeyOp::Put),
        4 => (expect(), value()).prop_map(|(e, v)| KeyOp::Update(e, v)),
        3 => (expect(), compute()).prop_map(|(e, c)| KeyOp::UpdateWith(e, c)),
        2 => compute().prop_map(KeyOp::RetryUpdate),
        3 => (expect(), compute()).prop_map(|(e, c)| KeyOp::Patch(e, c)),
        2 => expect().prop_map(KeyOp::Remove),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        22 => (key(), via(), key_op()).prop_map(|(k, w, o)| Op::On(k, w, o)),
        1 => Just(Op::Len),
        1 => Just(Op::Clear),
        1 => Just(Op::Iter),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One shard makes counter versions fully predictable: a new record starts just above
    /// the highest version ever removed, and every write adds one.
    #[test]
    fn counter_versions_are_exact(ops in ops()) {
        let store: Store<Key, Value, Counter> = Store::builder().shards(1).build();
        Model::<Counter, _>::new(ExactCounter::default()).run(&store, &ops);
    }

    /// With several shards the starting version of a re-created key depends on what else
    /// its shard removed; it must still never repeat one the key had. The default timeout
    /// of zero makes `bounded()` views wait for nothing.
    #[test]
    fn counter_versions_never_repeat_across_shards(ops in ops()) {
        let store: Store<Key, Value, Counter> =
            Store::builder().shards(8).default_timeout(Duration::ZERO).build();
        Model::<Counter, _>::new(AnyFresh).run(&store, &ops);
    }

    /// A bounded store evicts as it likes, but never holds more than its bound, never
    /// brings back an evicted record, and never repeats a version of a key: with one
    /// shard, counter versions stay exactly predictable, evicted versions retired like
    /// removed ones.
    #[test]
    fn a_bounded_store_evicts_without_breaking_versions(ops in ops()) {
        let store: Store<Key, Value, Counter> =
            Store::builder().shards(1).max_capacity(BOUND as u64).build();
        Model::<Counter, _>::bounded(ExactCounter::default(), BOUND).run(&store, &ops);
    }

    /// The same with random versions and the default shards (one, for so small a bound).
    #[test]
    fn a_bounded_store_with_uuid_versions_never_repeats_one(ops in ops()) {
        let store: Store<Key, Value, UuidV4> =
            Store::builder().versions::<UuidV4>().max_capacity(BOUND as u64).build();
        Model::<UuidV4, _>::bounded(AnyFresh, BOUND).run(&store, &ops);
    }

    /// Random versions are compared by identity: the model keeps the last one returned.
    #[test]
    fn uuid_versions_match_by_identity(ops in ops()) {
        let store: Store<Key, Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
        Model::<UuidV4, _>::new(AnyFresh).run(&store, &ops);
    }
}
