//! Random operation sequences against a simple sequential model: every answer (values,
//! versions, errors, handed-back values, closure calls) must match, for both version
//! schemes. On failure proptest shrinks the sequence to a short one that shows the bug.

#[path = "support/model.rs"]
mod model;

use model::{AnyFresh, Compute, ExactCounter, Expect, Key, Model, Op, Value};
use proptest::prelude::*;
use verkv::{Counter, Store, UuidV4};

/// Few keys, so that operations keep meeting the same records.
const KEYS: Key = 4;

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
        1 => any::<u8>().prop_map(Compute::Refuse),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::Version),
        1 => key().prop_map(Op::ContainsKey),
        3 => (key(), value()).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (key(), expect(), value()).prop_map(|(k, e, v)| Op::Update(k, e, v)),
        3 => (key(), expect(), compute()).prop_map(|(k, e, c)| Op::UpdateWith(k, e, c)),
        2 => (key(), expect()).prop_map(|(k, e)| Op::Remove(k, e)),
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
    /// its shard removed; it must still never repeat one the key had.
    #[test]
    fn counter_versions_never_repeat_across_shards(ops in ops()) {
        let store: Store<Key, Value, Counter> = Store::builder().shards(8).build();
        Model::<Counter, _>::new(AnyFresh).run(&store, &ops);
    }

    /// Random versions are compared by identity: the model keeps the last one returned.
    #[test]
    fn uuid_versions_match_by_identity(ops in ops()) {
        let store: Store<Key, Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
        Model::<UuidV4, _>::new(AnyFresh).run(&store, &ops);
    }
}
