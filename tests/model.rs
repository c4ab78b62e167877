//! Random operation sequences against a simple sequential model: every answer (values,
//! versions, errors, handed-back values, closure calls, retry attempts) must match, for
//! both version schemes, whether an operation goes through the store or through a bounded
//! view of it. On failure proptest shrinks the sequence to a short one that shows the bug.

mod support;

use support::model;

use std::time::Duration;

use model::{
    AnyFresh, Cancel, Compute, ExactCounter, Expect, Key, KeyOp, Limit, Model, Op, Time, Ttl,
    TxnStep, Value, Via,
};
use proptest::prelude::*;
use verkv::{Counter, ManualClock, Store, UuidV4};

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
        1 => Just(KeyOp::Invalidate),
    ]
}

/// A step of a transaction; mostly on a key's current version, so that transactions
/// often commit.
fn txn_step() -> impl Strategy<Value = TxnStep> {
    prop_oneof![
        2 => (key(), prop::option::weighted(0.7, expect())).prop_map(|(k, e)| TxnStep::Compare(k, e)),
        2 => (key(), value()).prop_map(|(k, v)| TxnStep::Put(k, v)),
        3 => (key(), expect(), value()).prop_map(|(k, e, v)| TxnStep::Update(k, e, v)),
        2 => (key(), value()).prop_map(|(k, v)| TxnStep::Create(k, v)),
        1 => (key(), expect()).prop_map(|(k, e)| TxnStep::Remove(k, e)),
    ]
}

/// A transaction of up to four steps (sometimes none, sometimes a key twice), or a
/// multi-key read.
fn multi_key_op(via: impl Strategy<Value = Via>) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (via, prop::collection::vec(txn_step(), 0..=4)).prop_map(|(w, s)| Op::Transaction(w, s)),
        1 => prop::collection::vec(key(), 0..=4).prop_map(Op::GetMany),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        22 => (key(), via(), key_op()).prop_map(|(k, w, o)| Op::On(k, w, o)),
        1 => Just(Op::Len),
        1 => Just(Op::Clear),
        1 => Just(Op::Iter),
        4 => multi_key_op(via()),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..120)
}

/// The store's time-to-live in the timed properties, in seconds: short, so that records
/// keep expiring between the clock's moves of one or two seconds.
const TTL: u64 = 2;

/// As [`via`], and a third of the time a view with a time-to-live of its own.
fn timed_via() -> impl Strategy<Value = Via> {
    let ttl = prop::sample::select(vec![Ttl::Zero, Ttl::OneSecond, Ttl::Never]);
    (prop::bool::weighted(0.3), ttl, via()).prop_map(|(expiring, ttl, via)| {
        if expiring {
            Via::Expiring(ttl)
        } else {
            via
        }
    })
}

/// As [`op`], with writes through expiring views and the clock moving.
fn timed_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        22 => (key(), timed_via(), key_op()).prop_map(|(k, w, o)| Op::On(k, w, o)),
        1 => Just(Op::Len),
        1 => Just(Op::Clear),
        1 => Just(Op::Iter),
        4 => (1..=2u8).prop_map(Op::Advance),
        4 => multi_key_op(timed_via()),
    ]
}

fn timed_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(timed_op(), 1..120)
}

/// A one-shard store expiring after `ttl` seconds, if given, on a manual clock, with its
/// model; bounded to [`BOUND`] records if `bounded`.
fn timed(
    ttl: Option<u64>,
    bounded: bool,
) -> (Store<Key, Value, Counter>, Model<Counter, AnyFresh>) {
    let clock = ManualClock::new();
    let mut builder = Store::builder().shards(1).clock(clock.clone());
    if let Some(ttl) = ttl {
        builder = builder.time_to_live(Duration::from_secs(ttl));
    }
    if bounded {
        builder = builder.max_capacity(BOUND as u64);
    }
    // Versions stay unique per key but are not exactly predictable: a record that has
    // expired retires its versions only when it is reclaimed.
    let model = Model::timed(AnyFresh, Time::new(clock, ttl), bounded.then_some(BOUND));
    (builder.build(), model)
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

    /// Records expire exactly when their time-to-live (the store's, or a write's own)
    /// runs out: from then on the key reads as absent until written again, conditional
    /// writes are refused, and versions never repeat.
    #[test]
    fn records_expire_at_their_time_to_live(ops in timed_ops()) {
        let (store, mut model) = timed(Some(TTL), false);
        model.run(&store, &ops);
    }

    /// A store without expiry settings expires only what was written through an
    /// expiring view.
    #[test]
    fn per_write_time_to_live_without_store_expiry(ops in timed_ops()) {
        let (store, mut model) = timed(None, false);
        model.run(&store, &ops);
    }

    /// Expiry and eviction together: never more than the bound, and an expired or
    /// evicted key reads as absent until written again.
    #[test]
    fn a_bounded_store_with_expiry_keeps_both_rules(ops in timed_ops()) {
        let (store, mut model) = timed(Some(TTL), true);
        model.run(&store, &ops);
    }

    /// Random versions are compared by identity: the model keeps the last one returned.
    #[test]
    fn uuid_versions_match_by_identity(ops in ops()) {
        let store: Store<Key, Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
        Model::<UuidV4, _>::new(AnyFresh).run(&store, &ops);
    }
}

/// Warm restarts in the middle of a sequence: the store is replaced by one restored from
/// its snapshot (built as the original was, on the same clock), which must hold exactly
/// the model's records and go on as the model says, its versions resumed above every
/// version handed out before.
#[cfg(feature = "snapshot")]
mod restarts {
    use super::*;
    use verkv::{StoreBuilder, VersionScheme};

    /// A restart: the store's snapshot, restored by a builder from `builder`.
    fn restart<S: VersionScheme>(
        builder: impl Fn() -> StoreBuilder<Key, Value, S>,
    ) -> impl Fn(&Store<Key, Value, S>) -> Store<Key, Value, S> {
        move |store| {
            let mut bytes = Vec::new();
            store.snapshot_to(&mut bytes).unwrap();
            let (restored, report) = builder().restore(&bytes[..]).unwrap();
            assert_eq!(report.loaded, report.records, "{report}");
            restored
        }
    }

    /// As [`ops`], with restarts among them.
    fn restarting_ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            25 => op(),
            2 => Just(Op::Restart),
        ];
        prop::collection::vec(op, 1..120)
    }

    /// As [`timed_ops`], with restarts among them.
    fn restarting_timed_ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            29 => timed_op(),
            2 => Just(Op::Restart),
        ];
        prop::collection::vec(op, 1..120)
    }

    /// A one-shard store on a manual clock, bounded and expiring as asked, its model and
    /// the builder that makes it again (on the same clock).
    fn timed_restarting(
        ttl: Option<u64>,
        bounded: bool,
    ) -> (
        impl Fn() -> StoreBuilder<Key, Value>,
        Model<Counter, AnyFresh>,
    ) {
        let clock = ManualClock::new();
        let shared = clock.clone();
        let builder = move || {
            let mut builder = Store::builder().shards(1).clock(shared.clone());
            if let Some(ttl) = ttl {
                builder = builder.time_to_live(Duration::from_secs(ttl));
            }
            if bounded {
                builder = builder.max_capacity(BOUND as u64);
            }
            builder
        };
        let model = Model::timed(AnyFresh, Time::new(clock, ttl), bounded.then_some(BOUND));
        (builder, model)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// One shard, before and after: every version still exactly predictable, a new
        /// record starting just above every version the store had before the restart.
        #[test]
        fn counter_versions_stay_exact_across_restarts(ops in restarting_ops()) {
            let builder = || Store::builder().shards(1);
            Model::<Counter, _>::new(ExactCounter::default())
                .run_restarting(builder().build(), restart(builder), &ops);
        }

        /// Restored into eight shards: the keys land in other shards than before, and
        /// versions still never repeat.
        #[test]
        fn counter_versions_never_repeat_across_restarts_and_shards(ops in restarting_ops()) {
            let builder = || Store::builder().shards(8).default_timeout(Duration::ZERO);
            Model::<Counter, _>::new(AnyFresh).run_restarting(builder().build(), restart(builder), &ops);
        }

        /// A bounded store restores what it held, within its bound, versions exact.
        #[test]
        fn a_bounded_store_keeps_its_records_and_versions_across_restarts(ops in restarting_ops()) {
            let builder = || Store::builder().shards(1).max_capacity(BOUND as u64);
            Model::<Counter, _>::bounded(ExactCounter::default(), BOUND)
                .run_restarting(builder().build(), restart(builder), &ops);
        }

        /// Random versions: the restored ones are the same, later ones fresh.
        #[test]
        fn uuid_versions_survive_restarts(ops in restarting_ops()) {
            let builder = || Store::builder().versions::<UuidV4>();
            Model::<UuidV4, _>::new(AnyFresh).run_restarting(builder().build(), restart(builder), &ops);
        }

        /// Records keep the time they had left across a restart, to the second of the
        /// shared clock, with and without a bound.
        #[test]
        fn records_expire_on_time_across_restarts(ops in restarting_timed_ops(), bounded in any::<bool>()) {
            let (builder, mut model) = timed_restarting(Some(TTL), bounded);
            model.run_restarting(builder().build(), restart(builder), &ops);
        }

        /// Per-write time-to-live in a store without expiry settings: restored records
        /// keep their deadlines in a store that has none of its own.
        #[test]
        fn per_write_time_to_live_survives_restarts(ops in restarting_timed_ops()) {
            let (builder, mut model) = timed_restarting(None, false);
            model.run_restarting(builder().build(), restart(builder), &ops);
        }
    }
}
