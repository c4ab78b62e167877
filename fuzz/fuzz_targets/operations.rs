//! Operation sequences decoded from the fuzzer's bytes, run against the store and the
//! sequential model of the property test (`tests/support/model.rs`), in every store
//! configuration the model knows, each operation on a key through the store or one of its
//! bounded views: any answer that differs from the model is a crash.

#![no_main]

#[path = "../../tests/support/ledger.rs"]
mod ledger;
#[path = "../../tests/support/model.rs"]
mod model;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

use model::{
    AnyFresh, Cancel, Compute, ExactCounter, Expect, Key, KeyOp, Limit, Model, Op, Time, Ttl, Via,
};
use verkv::{Counter, ManualClock, Store, UuidV4};

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

/// An operation; for a `timed` store also moves of the clock and expiring views.
fn op(input: &mut Unstructured<'_>, timed: bool) -> Result<Op> {
    if timed && input.ratio(1, 6)? {
        return Ok(Op::Advance(input.int_in_range(1..=2)?));
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
fn decode(data: &[u8], timed: bool) -> Vec<Op> {
    let mut input = Unstructured::new(data);
    let mut ops = Vec::new();
    while !input.is_empty() && ops.len() < MAX_OPS {
        let Ok(op) = op(&mut input, timed) else { break };
        ops.push(op);
    }
    ops
}

/// A one-shard store expiring after [`TTL`], bounded to [`BOUND`] if `bounded`, with
/// its model (versions unique per key, not predictable: see `tests/model.rs`).
fn timed(bounded: bool) -> (Store<Key, model::Value, Counter>, Model<Counter, AnyFresh>) {
    let clock = ManualClock::new();
    let mut builder = Store::builder()
        .shards(1)
        .clock(clock.clone())
        .time_to_live(Duration::from_secs(TTL));
    if bounded {
        builder = builder.max_capacity(BOUND as u64);
    }
    let time = Time::new(clock, Some(TTL));
    (
        builder.build(),
        Model::timed(AnyFresh, time, bounded.then_some(BOUND)),
    )
}

fuzz_target!(|data: &[u8]| {
    let ops = decode(data, false);

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
    let timed_ops = decode(data, true);
    for bounded in [false, true] {
        let (store, mut model) = timed(bounded);
        model.run(&store, &timed_ops);
    }
});
