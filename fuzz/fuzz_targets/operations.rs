//! Operation sequences decoded from the fuzzer's bytes, run against the store and the
//! sequential model of the property test (`tests/support/model.rs`), in every store
//! configuration the model knows, each operation on a key through the store or one of its
//! bounded views: any answer that differs from the model is a crash. The same bytes then
//! run again with warm restarts among the operations (a snapshot, and a store restored
//! from it), on one shard and on eight.

#![no_main]

#[path = "../../tests/support/ledger.rs"]
mod ledger;
#[path = "../../tests/support/model.rs"]
mod model;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

use model::{
    AnyFresh, Cancel, Compute, ExactCounter, Expect, Key, KeyOp, Limit, Model, Op, Time, Ttl,
    TxnStep, Via,
};
use verkv::{Counter, ManualClock, Store, StoreBuilder, UuidV4, VersionScheme};

/// Few keys, so that operations keep meeting the same records.
const KEYS: Key = 4;

/// Enough for long histories per key, short enough to keep executions fast.
const MAX_OPS: usize = 512;

/// The bound of the bounded store: fewer records than keys, so that it evicts.
const BOUND: usize = 2;

/// The time-to-live of the expiring stores, in seconds.
const TTL: u64 = 2;

fn expect(input: &mut Unstructured<'_>) -> Result<Expect> {
    Ok(match input.choose_index(3)? {
        0 => Expect::Current,
        1 => Expect::Earlier(input.arbitrary()?),
        _ => Expect::NeverIssued(input.arbitrary()?),
    })
}

fn compute(input: &mut Unstructured<'_>) -> Result<Compute> {
    Ok(match input.choose_index(3)? {
        0 => Compute::Add(input.arbitrary()?),
        1 => Compute::Keep,
        _ => Compute::Refuse(input.arbitrary()?),
    })
}

/// The plain store unless the input asks for a bounded view (a zero byte means plain),
/// or, for a `timed` store, a view with a time-to-live of its own.
fn via(input: &mut Unstructured<'_>, timed: bool) -> Result<Via> {
    if !input.arbitrary::<bool>()? {
        return Ok(Via::Plain);
    }
    if timed && input.arbitrary::<bool>()? {
        return Ok(Via::Expiring(match input.choose_index(3)? {
            0 => Ttl::Zero,
            1 => Ttl::OneSecond,
            _ => Ttl::Never,
        }));
    }
    let limit = match input.choose_index(5)? {
        0 => Limit::NoWait,
        1 => Limit::Long,
        2 => Limit::Overflowing,
        3 => Limit::Passed,
        _ => Limit::StoreDefault,
    };
    let cancel = match input.choose_index(3)? {
        0 => Cancel::NoToken,
        1 => Cancel::Pending,
        _ => Cancel::Cancelled,
    };
    Ok(Via::Bounded(limit, cancel))
}

/// A step of a transaction.
fn txn_step(input: &mut Unstructured<'_>) -> Result<TxnStep> {
    let key = input.int_in_range(0..=KEYS - 1)?;
    Ok(match input.choose_index(6)? {
        0 => TxnStep::Compare(key, Some(expect(input)?)),
        1 => TxnStep::Compare(key, None),
        2 => TxnStep::Put(key, input.arbitrary()?),
        3 => TxnStep::Update(key, expect(input)?, input.arbitrary()?),
        4 => TxnStep::Create(key, input.arbitrary()?),
        _ => TxnStep::Remove(key, expect(input)?),
    })
}

/// A transaction of up to four steps, or a multi-key read of up to four keys.
fn multi_key(input: &mut Unstructured<'_>, timed: bool) -> Result<Op> {
    let count = input.int_in_range(0..=4)?;
    if input.ratio(1, 4)? {
        let keys = (0..count)
            .map(|_| input.int_in_range(0..=KEYS - 1))
            .collect::<Result<_>>()?;
        return Ok(Op::GetMany(keys));
    }
    let via = via(input, timed)?;
    let steps = (0..count).map(|_| txn_step(input)).collect::<Result<_>>()?;
    Ok(Op::Transaction(via, steps))
}

/// An operation; for a `timed` store also moves of the clock and expiring views, and
/// restarts if `restarts`.
fn op(input: &mut Unstructured<'_>, timed: bool, restarts: bool) -> Result<Op> {
    if timed && input.ratio(1, 6)? {
        return Ok(Op::Advance(input.int_in_range(1..=2)?));
    }
    if restarts && input.ratio(1, 12)? {
        return Ok(Op::Restart);
    }
    if input.ratio(1, 8)? {
        return multi_key(input, timed);
    }
    let key = input.int_in_range(0..=KEYS - 1)?;
    let key_op = match input.choose_index(14)? {
        0 => KeyOp::Get,
        1 => KeyOp::Version,
        2 => KeyOp::ContainsKey,
        3 => KeyOp::Insert(input.arbitrary()?),
        4 => KeyOp::Put(input.arbitrary()?),
        5 => KeyOp::Update(expect(input)?, input.arbitrary()?),
        6 => KeyOp::UpdateWith(expect(input)?, compute(input)?),
        7 => KeyOp::RetryUpdate(compute(input)?),
        8 => KeyOp::Patch(expect(input)?, compute(input)?),
        9 => KeyOp::Remove(expect(input)?),
        10 => KeyOp::Invalidate,
        11 => return Ok(Op::Len),
        12 => return Ok(Op::Clear),
        _ => return Ok(Op::Iter),
    };
    Ok(Op::On(key, via(input, timed)?, key_op))
}

/// The operations `data` decodes to. Decoding never fails for lack of bytes (it reads
/// zeros): it stops when they run out.
fn decode(data: &[u8], timed: bool, restarts: bool) -> Vec<Op> {
    let mut input = Unstructured::new(data);
    let mut ops = Vec::new();
    while !input.is_empty() && ops.len() < MAX_OPS {
        let Ok(op) = op(&mut input, timed, restarts) else {
            break;
        };
        ops.push(op);
    }
    ops
}

/// The builder of a one-shard store expiring after [`TTL`] on `clock`, bounded to
/// [`BOUND`] if `bounded`.
fn timed_builder(clock: &ManualClock, bounded: bool) -> StoreBuilder<Key, model::Value> {
    let mut builder = Store::builder()
        .shards(1)
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(TTL));
    if bounded {
        builder = builder.max_capacity(BOUND as u64);
    }
    builder
}

/// A timed store's model (versions unique per key, not predictable: see
/// `tests/model.rs`).
fn timed_model(clock: &ManualClock, bounded: bool) -> Model<Counter, AnyFresh> {
    let time = Time::new(clock.clone(), Some(TTL));
    Model::timed(AnyFresh, time, bounded.then_some(BOUND))
}

/// A restart: the store's snapshot, restored by a builder from `builder`.
fn restart<S: VersionScheme>(
    builder: impl Fn() -> StoreBuilder<Key, model::Value, S>,
) -> impl Fn(&Store<Key, model::Value, S>) -> Store<Key, model::Value, S> {
    move |store| {
        let mut bytes = Vec::new();
        store.snapshot_to(&mut bytes).unwrap();
        builder().restore(&bytes[..]).unwrap().0
    }
}

fuzz_target!(|data: &[u8]| {
    let ops = decode(data, false, false);

    let one_shard: Store<Key, model::Value, Counter> = Store::builder().shards(1).build();
    Model::<Counter, _>::new(ExactCounter::default()).run(&one_shard, &ops);

    // A default timeout of zero: `bounded()` views of this store wait for nothing.
    let sharded: Store<Key, model::Value, Counter> = Store::builder()
        .shards(8)
        .default_timeout(Duration::ZERO)
        .build();
    Model::<Counter, _>::new(AnyFresh).run(&sharded, &ops);

    let random: Store<Key, model::Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
    Model::<UuidV4, _>::new(AnyFresh).run(&random, &ops);

    // Bounded below the key count: it evicts, yet versions stay exactly predictable.
    let bounded: Store<Key, model::Value, Counter> = Store::builder()
        .shards(1)
        .max_capacity(BOUND as u64)
        .build();
    Model::<Counter, _>::bounded(ExactCounter::default(), BOUND).run(&bounded, &ops);

    // With expiry, the clock moving and expiring views: alone, then with the bound.
    let timed_ops = decode(data, true, false);
    for bounded in [false, true] {
        let clock = ManualClock::new();
        timed_model(&clock, bounded).run(&timed_builder(&clock, bounded).build(), &timed_ops);
    }

    // Warm restarts: versions exact on one shard, fresh on eight; deadlines kept.
    let restarting = decode(data, false, true);
    let one_shard = || Store::builder().shards(1);
    Model::<Counter, _>::new(ExactCounter::default()).run_restarting(
        one_shard().build(),
        restart(one_shard),
        &restarting,
    );
    let sharded = || Store::builder().shards(8);
    Model::<Counter, _>::new(AnyFresh).run_restarting(
        sharded().build(),
        restart(sharded),
        &restarting,
    );
    let timed_restarting = decode(data, true, true);
    let clock = ManualClock::new();
    let builder = || timed_builder(&clock, true);
    timed_model(&clock, true).run_restarting(
        builder().build(),
        restart(builder),
        &timed_restarting,
    );
});
