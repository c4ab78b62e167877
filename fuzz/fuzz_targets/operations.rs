//! Operation sequences decoded from the fuzzer's bytes, run against the store and the
//! sequential model of the property test (`tests/support/model.rs`), in every store
//! configuration the model knows: any answer that differs from the model is a crash.

#![no_main]

#[path = "../../tests/support/model.rs"]
mod model;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use model::{AnyFresh, Compute, ExactCounter, Expect, Key, Model, Op};
use verkv::{Counter, Store, UuidV4};

/// Few keys, so that operations keep meeting the same records.
const KEYS: Key = 4;

/// Enough for long histories per key, short enough to keep executions fast.
const MAX_OPS: usize = 512;

fn expect(input: &mut Unstructured<'_>) -> Result<Expect> {
    Ok(match input.choose_index(3)? {
        0 => Expect::Current,
        1 => Expect::Earlier(input.arbitrary()?),
        _ => Expect::NeverIssued(input.arbitrary()?),
    })
}

fn compute(input: &mut Unstructured<'_>) -> Result<Compute> {
    Ok(if input.arbitrary()? {
        Compute::Add(input.arbitrary()?)
    } else {
        Compute::Refuse(input.arbitrary()?)
    })
}

fn op(input: &mut Unstructured<'_>) -> Result<Op> {
    let key = input.int_in_range(0..=KEYS - 1)?;
    Ok(match input.choose_index(11)? {
        0 => Op::Get(key),
        1 => Op::Version(key),
        2 => Op::ContainsKey(key),
        3 => Op::Insert(key, input.arbitrary()?),
        4 => Op::Put(key, input.arbitrary()?),
        5 => Op::Update(key, expect(input)?, input.arbitrary()?),
        6 => Op::UpdateWith(key, expect(input)?, compute(input)?),
        7 => Op::Remove(key, expect(input)?),
        8 => Op::Len,
        9 => Op::Clear,
        _ => Op::Iter,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let mut ops = Vec::new();
    // Decoding never fails for lack of bytes (it reads zeros): stop when they run out.
    while !input.is_empty() && ops.len() < MAX_OPS {
        let Ok(op) = op(&mut input) else { break };
        ops.push(op);
    }

    let one_shard: Store<Key, model::Value, Counter> = Store::builder().shards(1).build();
    Model::<Counter, _>::new(ExactCounter::default()).run(&one_shard, &ops);

    let sharded: Store<Key, model::Value, Counter> = Store::builder().shards(8).build();
    Model::<Counter, _>::new(AnyFresh).run(&sharded, &ops);

    let random: Store<Key, model::Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
    Model::<UuidV4, _>::new(AnyFresh).run(&random, &ops);
});
