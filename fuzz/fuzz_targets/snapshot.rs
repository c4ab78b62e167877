//! The snapshot decoder against what the fuzzer makes of it: restoring must never panic,
//! and what it refuses it refuses with an error that points inside the input.
//!
//! Three kinds of input, from the same bytes:
//! - the bytes themselves, read as a snapshot of several key, value and scheme types;
//! - a snapshot frame by frame with valid checksums around a block body the bytes make
//!   up (so the record decoder itself sees arbitrary input, not only the checksums);
//! - a real snapshot of a store the bytes describe, which must round-trip, and then cut
//!   short or with one bit flipped where the bytes say, which must be refused (a lenient
//!   restore may keep intact blocks, and must then say why it stopped).

#![no_main]

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use verkv::snapshot::RestoreError;
use verkv::{Counter, ManualClock, Store, StoreBuilder, UuidV4, VersionScheme, Versioned};

/// The byte offset an error names, if it names one.
fn offset(error: &RestoreError) -> Option<u64> {
    match error {
        RestoreError::Io { at, .. }
        | RestoreError::Truncated { at, .. }
        | RestoreError::Checksum { at, .. }
        | RestoreError::Corrupt { at, .. } => Some(*at),
        _ => None,
    }
}

/// Restores `bytes` strictly and leniently as a store of `K`, `V` and `S`: no panic,
/// errors inside the input, a lenient restore that keeps at most what is there and
/// says why it stopped whenever the strict one refused.
fn restore<K, V, S>(bytes: &[u8]) -> Option<Store<K, V, S>>
where
    K: Hash + Eq + Clone + DeserializeOwned,
    V: Clone + DeserializeOwned,
    S: VersionScheme,
{
    let strict = StoreBuilder::<K, V>::new().versions::<S>().restore(bytes);
    let lenient = StoreBuilder::<K, V>::new()
        .versions::<S>()
        .restore_lenient(bytes);
    for error in [strict.as_ref().err(), lenient.as_ref().err()]
        .into_iter()
        .flatten()
        .chain(lenient.as_ref().ok().and_then(|(_, r)| r.stopped.as_ref()))
    {
        assert!(!error.to_string().is_empty());
        if let Some(at) = offset(error) {
            assert!(at <= bytes.len() as u64, "{error} in {} bytes", bytes.len());
        }
    }
    match (strict, lenient) {
        (Ok((store, report)), Ok((_, lenient))) => {
            assert!(report.stopped.is_none() && lenient.stopped.is_none());
            assert_eq!(report.loaded, lenient.loaded);
            assert_eq!(store.len() as u64, report.loaded);
            assert_eq!(report.bytes, bytes.len() as u64);
            Some(store)
        }
        (Err(error), Ok((store, report))) => {
            assert!(report.stopped.is_some(), "strict: {error}; lenient: {report}");
            assert_eq!(store.len() as u64, report.loaded);
            assert_eq!(
                report.records,
                report.loaded + report.expired + report.no_room
            );
            None
        }
        (Ok((_, report)), Err(error)) => {
            panic!("lenient refused ({error}) what strict took ({report})")
        }
        (Err(_), Err(_)) => None,
    }
}

/// The CRC-32 the format uses.
fn crc(bytes: &[u8]) -> [u8; 4] {
    crc32fast::hash(bytes).to_le_bytes()
}

/// A frame as the format lays it out.
fn frame(out: &mut Vec<u8>, tag: u8, count: u32, body: &[u8]) {
    let mut head = vec![tag];
    head.extend_from_slice(&count.to_le_bytes());
    head.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&crc(&head));
    out.extend_from_slice(body);
    out.extend_from_slice(&crc(body));
}

/// The preamble and header of an empty store of `K`, `V` and `S`, taken from a real
/// snapshot (the header is the first frame after the 10-byte preamble).
fn preamble_and_header<K, V, S>() -> Vec<u8>
where
    K: Hash + Eq + Clone + Serialize,
    V: Clone + Serialize,
    S: VersionScheme,
{
    let store: Store<K, V, S> = StoreBuilder::new().versions::<S>().build();
    let mut bytes = Vec::new();
    store.snapshot_to(&mut bytes).unwrap();
    let length = u32::from_le_bytes(bytes[15..19].try_into().unwrap()) as usize;
    bytes.truncate(10 + 13 + length + 4);
    bytes
}

/// A snapshot of one block whose body and count are the fuzzer's, checksums valid, with
/// an end marker that counts it.
fn framed<K, V, S>(count: u32, body: &[u8]) -> Vec<u8>
where
    K: Hash + Eq + Clone + Serialize,
    V: Clone + Serialize,
    S: VersionScheme,
{
    let mut bytes = preamble_and_header::<K, V, S>();
    frame(&mut bytes, b'B', count, body);
    // The end marker: records and blocks as varints (small here), no resume point.
    let mut end = Vec::new();
    let mut varint = |mut n: u64| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            end.push(byte);
            break;
        }
        end.push(byte | 0x80);
    };
    varint(u64::from(count));
    varint(1);
    end.push(0);
    frame(&mut bytes, b'E', 0, &end);
    bytes
}

/// A store the input describes: a few hundred writes and removals on 256 keys, some
/// expiring, on a manual clock that moves.
fn described(input: &mut Unstructured<'_>) -> Result<(Store<u8, Vec<u8>>, ManualClock)> {
    let clock = ManualClock::new();
    let store: Store<u8, Vec<u8>> = Store::builder()
        .shards(4)
        .clock(clock.clone())
        .build();
    for _ in 0..input.int_in_range(0..=300)? {
        let key: u8 = input.arbitrary()?;
        match input.choose_index(5)? {
            0 => {
                if let Some(version) = store.version(&key) {
                    let _ = store.remove(&key, &version);
                }
            }
            1 => {
                let ttl = Duration::from_secs(input.int_in_range(1..=5)?);
                let _ = store.expiring_after(ttl).put(key, input.arbitrary()?);
            }
            2 => clock.advance(Duration::from_secs(1)),
            _ => {
                let _ = store.put(key, input.arbitrary()?);
            }
        }
    }
    Ok((store, clock))
}

/// Every record of a store.
fn contents<K: Hash + Eq + Clone, V: Clone, S: VersionScheme>(
    store: &Store<K, V, S>,
) -> HashMap<K, Versioned<V, S::Version>> {
    store.iter().collect()
}

fn damaged(data: &[u8]) -> Result<()> {
    let mut input = Unstructured::new(data);
    let (store, _) = described(&mut input)?;
    let mut bytes = Vec::new();
    store.snapshot_to(&mut bytes).unwrap();
    let before = contents(&store);
    let restored = StoreBuilder::<u8, Vec<u8>>::new()
        .clock(ManualClock::new())
        .restore(&bytes[..])
        .unwrap_or_else(|error| panic!("a whole snapshot refused: {error}"))
        .0;
    assert_eq!(contents(&restored), before);

    let cut = input.choose_index(bytes.len())?;
    let error = StoreBuilder::<u8, Vec<u8>>::new()
        .restore(&bytes[..cut])
        .err()
        .expect("a cut snapshot is refused");
    assert!(matches!(error, RestoreError::Truncated { at, .. } if at == cut as u64), "{error}");
    restore::<u8, Vec<u8>, Counter>(&bytes[..cut]);

    let bit = input.choose_index(bytes.len() * 8)?;
    let mut flipped = bytes.clone();
    flipped[bit / 8] ^= 1 << (bit % 8);
    assert!(
        restore::<u8, Vec<u8>, Counter>(&flipped).is_none(),
        "bit {bit} flipped, and the snapshot was taken"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    restore::<u64, u64, Counter>(data);
    restore::<String, Vec<u8>, UuidV4>(data);
    restore::<u8, Option<String>, Counter>(data);

    if let Some((&count, body)) = data.split_first() {
        let count = u32::from(count);
        restore::<u64, u64, Counter>(&framed::<u64, u64, Counter>(count, body));
        restore::<String, Vec<u8>, UuidV4>(&framed::<String, Vec<u8>, UuidV4>(count, body));
        restore::<u8, Option<String>, Counter>(&framed::<u8, Option<String>, Counter>(
            count, body,
        ));
    }

    let _ = damaged(data);
});
