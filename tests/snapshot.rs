//! Snapshots and restores: round trips of plain, bounded, expiring and `UuidV4` stores;
//! versions that resume above everything handed out before (so that a removed key,
//! created again, never repeats a version and a version held across the restart is
//! still refused); truncated, flipped, foreign, newer and mismatched snapshots refused
//! with where; lenient restores that say how much they loaded; a snapshot taken while
//! threads write, each shard captured at one instant; and the atomic file.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use verkv::snapshot::{Part, RestoreError, SnapshotError};
use verkv::{Error, ManualClock, Store, StoreBuilder, UuidV4, VersionScheme, Versioned};

/// Every record of a store, by key.
fn contents<K, V, S, H>(store: &Store<K, V, S, H>) -> HashMap<K, Versioned<V, S::Version>>
where
    K: Clone + Eq + std::hash::Hash,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    store.iter().collect()
}

/// The snapshot of `store`, in memory.
fn snapshot<K, V, S, H>(store: &Store<K, V, S, H>) -> Vec<u8>
where
    K: Clone + Eq + std::hash::Hash + Serialize,
    V: Clone + Serialize,
    S: VersionScheme,
    H: BuildHasher,
{
    let mut bytes = Vec::new();
    let written = store.snapshot_to(&mut bytes).unwrap();
    assert_eq!(written.bytes, bytes.len() as u64);
    bytes
}

/// Keys removed from a store, each with the version it had.
type Removed = Vec<(String, u64)>;

/// A store of 200 records, some updated a few times, some removed: versions from 1 to 5,
/// and removed keys whose versions the store retired.
fn varied() -> (Store<String, Vec<u8>>, Removed) {
    let store: Store<String, Vec<u8>> = Store::builder().shards(8).build();
    let mut removed = Vec::new();
    for n in 0..200u32 {
        let key = format!("key {n}");
        let mut version = store.insert(key.clone(), n.to_le_bytes().to_vec()).unwrap();
        for write in 0..n % 5 {
            version = store.update(&key, &version, vec![write as u8; 3]).unwrap();
        }
        if n % 7 == 0 {
            store.remove(&key, &version).unwrap();
            removed.push((key, version));
        }
    }
    (store, removed)
}

#[test]
fn a_plain_store_comes_back_with_every_value_and_version() {
    let (store, _) = varied();
    let bytes = snapshot(&store);
    let (restored, report) = StoreBuilder::<String, Vec<u8>>::new()
        .restore(&bytes[..])
        .unwrap();
    assert_eq!(contents(&restored), contents(&store));
    assert_eq!(
        (
            report.records,
            report.loaded,
            report.expired,
            report.no_room
        ),
        (store.len() as u64, store.len() as u64, 0, 0)
    );
    assert_eq!(report.bytes, bytes.len() as u64);
    assert!(report.stopped.is_none());
    // Another shard count, another hasher: the same records.
    let (elsewhere, _) = StoreBuilder::<String, Vec<u8>>::new()
        .shards(1)
        .hasher(std::hash::RandomState::new())
        .restore(&bytes[..])
        .unwrap();
    assert_eq!(contents(&elsewhere), contents(&store));
}

#[test]
fn a_removed_key_created_again_after_a_restore_gets_a_version_above_all_before() {
    let (store, removed) = varied();
    let highest = store
        .iter()
        .map(|(_, record)| record.version)
        .chain(removed.iter().map(|(_, version)| *version))
        .max()
        .unwrap();
    let (restored, _) = StoreBuilder::<String, Vec<u8>>::new()
        .restore(&snapshot(&store)[..])
        .unwrap();
    for (key, old) in &removed {
        let again = restored.insert(key.clone(), Vec::new()).unwrap();
        assert!(
            again > highest,
            "{key} removed at {old}, created again at {again}, not above {highest}"
        );
        // A client that still holds the version the key had before it was removed.
        let refused = restored.update(key, old, Vec::new()).unwrap_err();
        assert_eq!(
            refused.error,
            Error::Stale {
                expected: *old,
                current: again
            }
        );
    }
}

#[test]
fn a_version_held_across_the_restart_is_still_refused_once_it_is_stale() {
    let store: Store<String, u32> = Store::new();
    let read = store.insert("seats".into(), 10).unwrap(); // a client reads version 1 ...
    store.remove("seats", &read).unwrap(); // ... and the record goes
    let kept = store.insert("stock".into(), 5).unwrap();
    let (restored, _) = StoreBuilder::<String, u32>::new()
        .restore(&snapshot(&store)[..])
        .unwrap();

    let recreated = restored.insert("seats".into(), 8).unwrap();
    assert!(recreated > read);
    assert_eq!(
        restored.update("seats", &read, 9).unwrap_err().error,
        Error::Stale {
            expected: read,
            current: recreated
        }
    );
    // After a write, the version from before the restart is stale like any other.
    let written = restored.update("stock", &kept, 4).unwrap();
    assert_eq!(
        restored.update("stock", &kept, 3).unwrap_err().error,
        Error::Stale {
            expected: kept,
            current: written
        }
    );
}

#[test]
fn a_bounded_store_restores_up_to_its_bound_the_hottest_first() {
    let store: Store<u64, u64> = Store::builder().shards(1).max_capacity(1000).build();
    for key in 0..1000 {
        store.insert(key, key).unwrap();
    }
    for _ in 0..3 {
        for key in 0..100 {
            store.get(&key).unwrap();
        }
    }
    let bytes = snapshot(&store);

    let (same, report) = StoreBuilder::<u64, u64>::new()
        .shards(1)
        .max_capacity(1000)
        .restore(&bytes[..])
        .unwrap();
    assert_eq!(contents(&same), contents(&store));
    assert_eq!((report.loaded, report.no_room), (1000, 0));

    let (small, report) = StoreBuilder::<u64, u64>::new()
        .shards(1)
        .max_capacity(100)
        .restore(&bytes[..])
        .unwrap();
    assert_eq!((report.loaded, report.no_room), (100, 900));
    let mut kept: Vec<u64> = small.keys().collect();
    kept.sort_unstable();
    assert_eq!(kept, (0..100).collect::<Vec<_>>(), "the keys read were hot");
    // Left out like an evicted record: created again, a fresh version.
    assert!(small.insert(500, 0).unwrap() > 1);

    // By weight, with the store's weigher: never beyond the bound.
    let (weighed, report) = StoreBuilder::<u64, u64>::new()
        .max_capacity(10_000)
        .weigher(|_, value| *value as u32 % 50)
        .restore(&bytes[..])
        .unwrap();
    let weight: u64 = weighed.iter().map(|(_, record)| record.value % 50).sum();
    assert!(weight <= 10_000, "weight {weight}");
    assert_eq!(report.loaded + report.no_room, 1000);
    assert!(report.no_room > 0);

    // Without a bound, everything.
    let (unbounded, _) = StoreBuilder::<u64, u64>::new().restore(&bytes[..]).unwrap();
    assert_eq!(contents(&unbounded), contents(&store));
}

#[test]
fn an_expiring_store_comes_back_with_the_time_its_records_had_left() {
    const SECOND: Duration = Duration::from_secs(1);
    const NANO: Duration = Duration::from_nanos(1);
    let clock = ManualClock::new();
    let store: Store<String, u32> = Store::builder()
        .time_to_live(60 * SECOND)
        .clock(clock.clone())
        .build();
    store.insert("a".into(), 1).unwrap(); // expires at 60
    let gone = store
        .expiring_after(40 * SECOND)
        .insert("gone".into(), 2)
        .unwrap(); // at 40
    store
        .expiring_after(Duration::MAX)
        .insert("kept".into(), 3)
        .unwrap(); // never
    clock.advance(20 * SECOND);
    store.insert("b".into(), 4).unwrap(); // at 80
    clock.advance(30 * SECOND); // now 50: "a" has 10 s left, "b" 30, "gone" is gone
    let mut bytes = Vec::new();
    let written = store.snapshot_to(&mut bytes).unwrap();
    assert_eq!((written.records, written.expired), (3, 1));

    // A store without expiry of its own still expires what had a deadline.
    let later = ManualClock::new();
    let (restored, report) = StoreBuilder::<String, u32>::new()
        .clock(later.clone())
        .restore(&bytes[..])
        .unwrap();
    assert_eq!((report.loaded, report.expired), (3, 0));
    // On a manual clock only the clock's own time counts: to the nanosecond.
    later.advance(10 * SECOND - NANO);
    assert_eq!(restored.get("a").map(|r| r.value), Some(1));
    later.advance(NANO);
    assert_eq!(restored.get("a"), None);
    later.advance(20 * SECOND - NANO);
    assert_eq!(restored.get("b").map(|r| r.value), Some(4));
    later.advance(NANO);
    assert_eq!(restored.get("b"), None);
    later.advance(Duration::from_secs(1 << 40));
    assert_eq!(restored.get("kept").map(|r| r.value), Some(3));
    // The expired record's version was carried over all the same.
    assert!(restored.insert("gone".into(), 0).unwrap() > gone);
}

#[test]
fn on_the_system_clock_the_time_since_the_snapshot_counts() {
    let store: Store<u64, u64> = Store::new();
    store
        .expiring_after(Duration::from_millis(50))
        .insert(1, 1)
        .unwrap();
    store
        .expiring_after(Duration::from_secs(3600))
        .insert(2, 2)
        .unwrap();
    let bytes = snapshot(&store);
    thread::sleep(Duration::from_millis(100)); // the restart
    let (restored, report) = StoreBuilder::<u64, u64>::new().restore(&bytes[..]).unwrap();
    assert_eq!(restored.get(&1), None);
    assert_eq!(restored.get(&2).map(|r| r.value), Some(2));
    assert_eq!(report.loaded, 1);
}

/// Appends a frame as the format lays it out.
fn push_frame(out: &mut Vec<u8>, tag: u8, count: u32, body: &[u8]) {
    let mut head = vec![tag];
    head.extend_from_slice(&count.to_le_bytes());
    head.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let crc = crc32(&head);
    out.extend_from_slice(&head);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32(body).to_le_bytes());
}

/// CRC-32 (IEEE), bit by bit: the tests check the format without the crate's code.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A frame of a snapshot: its tag, count, where it starts, where its body starts, and
/// where it ends.
struct Frame {
    tag: u8,
    count: u32,
    start: usize,
    body: usize,
}

/// The frames of a snapshot, walked as the format lays them out.
fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut at = 10;
    while at < bytes.len() {
        let length = u32::from_le_bytes(bytes[at + 5..at + 9].try_into().unwrap()) as usize;
        frames.push(Frame {
            tag: bytes[at],
            count: u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()),
            start: at,
            body: at + 13,
        });
        at += 13 + length + 4;
    }
    frames
}

#[test]
fn an_idle_deadline_comes_back_and_reads_move_it_as_the_new_store_says() {
    const SECOND: Duration = Duration::from_secs(1);
    let clock = ManualClock::new();
    let store: Store<u64, u64> = Store::builder()
        .time_to_idle(10 * SECOND)
        .clock(clock.clone())
        .build();
    store.insert(1, 1).unwrap();
    clock.advance(4 * SECOND); // 6 s of idleness left
    let later = ManualClock::new();
    let (restored, _) = StoreBuilder::<u64, u64>::new()
        .time_to_idle(10 * SECOND)
        .clock(later.clone())
        .restore(&snapshot(&store)[..])
        .unwrap();
    later.advance(5 * SECOND);
    assert!(restored.get(&1).is_some(), "read with a second left");
    later.advance(9 * SECOND);
    assert!(restored.get(&1).is_some(), "the read gave it 10 s more");
    later.advance(10 * SECOND);
    assert_eq!(restored.get(&1), None);
}

#[test]
fn uuid_versions_come_back_and_later_ones_are_fresh() {
    let store: Store<u64, String, UuidV4> = Store::builder().versions::<UuidV4>().build();
    let mut issued = Vec::new();
    for key in 0..100 {
        let mut version = store.insert(key, format!("{key}")).unwrap();
        issued.push(version);
        if key % 2 == 0 {
            version = store.update(&key, &version, format!("{key}!")).unwrap();
            issued.push(version);
        }
    }
    let bytes = snapshot(&store);
    let (restored, _) = StoreBuilder::<u64, String>::new()
        .versions::<UuidV4>()
        .restore(&bytes[..])
        .unwrap();
    assert_eq!(contents(&restored), contents(&store));
    for key in 0..100 {
        let current = restored.version(&key).unwrap();
        let next = restored.update(&key, &current, String::new()).unwrap();
        assert!(!issued.contains(&next));
    }
}

#[test]
fn a_snapshot_of_another_scheme_or_other_types_is_refused() {
    let counters: Store<u64, u64> = Store::new();
    counters.insert(1, 1).unwrap();
    let uuids: Store<u64, u64, UuidV4> = Store::builder().versions::<UuidV4>().build();
    uuids.insert(1, 1).unwrap();

    let error = StoreBuilder::<u64, u64>::new()
        .versions::<UuidV4>()
        .restore(&snapshot(&counters)[..])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "a snapshot of counter versions cannot restore a store of uuid-v4 versions"
    );
    let error = StoreBuilder::<u64, u64>::new()
        .restore(&snapshot(&uuids)[..])
        .unwrap_err();
    assert!(
        matches!(&error, RestoreError::Scheme { found, expected: "counter" } if found == "uuid-v4"),
        "{error}"
    );

    let error = StoreBuilder::<u32, u64>::new()
        .restore(&snapshot(&counters)[..])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "a snapshot of key type u64 cannot restore a store of key type u32"
    );
    let error = StoreBuilder::<u64, i64>::new()
        .restore(&snapshot(&counters)[..])
        .unwrap_err();
    assert!(
        matches!(&error, RestoreError::Types { which: "value", found, expected: "i64" } if found == "u64"),
        "{error}"
    );
}

/// A small snapshot with something of everything: removed keys, updated ones, deadlines.
fn small() -> Vec<u8> {
    let clock = ManualClock::new();
    let store: Store<u64, String> = Store::builder()
        .time_to_idle(Duration::from_secs(600))
        .clock(clock.clone())
        .build();
    for key in 0..6 {
        let version = store.insert(key, "x".repeat(key as usize)).unwrap();
        if key % 3 == 0 {
            store.remove(&key, &version).unwrap();
        }
    }
    store
        .expiring_after(Duration::from_secs(60))
        .put(9, "nine".into())
        .unwrap();
    snapshot(&store)
}

#[test]
fn a_snapshot_cut_at_any_byte_is_refused_where_it_ends() {
    let bytes = small();
    let (_, whole) = StoreBuilder::<u64, String>::new()
        .restore(&bytes[..])
        .unwrap();
    assert_eq!(whole.loaded, 5);
    for cut in 0..bytes.len() {
        let error = StoreBuilder::<u64, String>::new()
            .restore(&bytes[..cut])
            .unwrap_err();
        assert!(
            matches!(error, RestoreError::Truncated { at, .. } if at == cut as u64),
            "cut at {cut}: {error}"
        );
        // Lenient: refused while the header is cut, else what was whole and where it stopped.
        match StoreBuilder::<u64, String>::new().restore_lenient(&bytes[..cut]) {
            Err(error) => assert!(matches!(error, RestoreError::Truncated { .. }), "{error}"),
            Ok((store, report)) => {
                assert_eq!(store.len() as u64, report.loaded, "cut at {cut}");
                assert!(report.loaded <= whole.loaded);
                let stopped = report.stopped.expect("a cut snapshot stops early");
                assert!(matches!(stopped, RestoreError::Truncated { at, .. } if at == cut as u64));
            }
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_is_refused() {
    let bytes = small();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            StoreBuilder::<u64, String>::new()
                .restore(&flipped[..])
                .is_err(),
            "bit {bit} of byte {}",
            bit / 8
        );
        if let Ok((_, report)) = StoreBuilder::<u64, String>::new().restore_lenient(&flipped[..]) {
            assert!(report.stopped.is_some(), "bit {bit}: {report}");
        }
    }
}

#[test]
fn a_foreign_or_newer_snapshot_is_refused_and_says_so() {
    let error = StoreBuilder::<u64, u64>::new()
        .restore(&b"PK\x03\x04 not a snapshot"[..])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "not a verkv snapshot: it starts with \"PK\\x03\\x04 not\" instead of \"VERKVSNP\""
    );
    let error = StoreBuilder::<u64, u64>::new()
        .restore(&[][..])
        .unwrap_err();
    assert!(matches!(
        error,
        RestoreError::Truncated {
            at: 0,
            part: Part::Preamble
        }
    ));

    let mut newer = small();
    newer[8..10].copy_from_slice(&2u16.to_le_bytes());
    let error = StoreBuilder::<u64, String>::new()
        .restore(&newer[..])
        .unwrap_err();
    assert!(matches!(error, RestoreError::Format { found: 2 }));
    assert_eq!(
        error.to_string(),
        "snapshot format 2 is newer than this build reads (format 1)"
    );
}

/// A store big enough for several blocks.
fn many() -> Store<u64, u64> {
    let store: Store<u64, u64> = Store::new();
    for key in 0..50_000 {
        store.insert(key, key * 3).unwrap();
    }
    store
}

#[test]
fn a_lenient_restore_keeps_the_blocks_before_the_first_bad_one_and_says_how_many() {
    let store = many();
    let mut bytes = snapshot(&store);
    let frames = frames(&bytes);
    let blocks: Vec<&Frame> = frames.iter().filter(|frame| frame.tag == b'B').collect();
    assert!(blocks.len() > 3, "{} blocks", blocks.len());
    let bad = blocks[2];
    bytes[bad.body + 100] ^= 0x10;

    let error = StoreBuilder::<u64, u64>::new()
        .restore(&bytes[..])
        .unwrap_err();
    assert!(
        matches!(error, RestoreError::Checksum { at, part: Part::Block(2) } if at == bad.body as u64),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!("checksum mismatch in block 2, at byte {}", bad.body)
    );

    let (partial, report) = StoreBuilder::<u64, u64>::new()
        .restore_lenient(&bytes[..])
        .unwrap();
    let intact = u64::from(blocks[0].count + blocks[1].count);
    assert_eq!(
        (report.records, report.loaded, report.blocks),
        (intact, intact, 2)
    );
    assert_eq!(report.bytes, bad.start as u64);
    assert!(matches!(
        report.stopped,
        Some(RestoreError::Checksum {
            part: Part::Block(2),
            ..
        })
    ));
    assert!(report.to_string().starts_with(&format!(
        "loaded {intact} of {intact} records (0 expired, 0 without room) from 2 blocks"
    )));
    for (key, record) in partial.iter() {
        assert_eq!(store.get(&key), Some(record));
    }
    assert_eq!(partial.len() as u64, intact);
}

#[test]
fn blocks_out_of_place_or_miscounted_are_corrupt() {
    let bytes = small();
    let frames = frames(&bytes);
    let block = &frames[1];
    assert_eq!(block.tag, b'B');
    let end = &frames[2];
    // The end marker straight after the header: it counts a block the snapshot lacks.
    let mut without_block = bytes[..block.start].to_vec();
    without_block.extend_from_slice(&bytes[end.start..]);
    let error = StoreBuilder::<u64, String>::new()
        .restore(&without_block[..])
        .unwrap_err();
    assert!(
        matches!(&error, RestoreError::Corrupt { part: Part::End, detail, .. }
            if detail == "it counts 5 records in 1 blocks, the snapshot holds 0 in 0"),
        "{error}"
    );
    // A block whose count says one record more than it holds.
    let mut recounted = bytes[..block.start].to_vec();
    push_frame(
        &mut recounted,
        b'B',
        block.count + 1,
        &bytes[block.body..end.start - 4],
    );
    recounted.extend_from_slice(&bytes[end.start..]);
    let error = StoreBuilder::<u64, String>::new()
        .restore(&recounted[..])
        .unwrap_err();
    assert!(
        matches!(&error, RestoreError::Corrupt { part: Part::Block(0), detail, .. }
            if detail.starts_with("record 5: ")),
        "{error}"
    );
    // The same block twice: its keys repeat.
    let mut twice = bytes[..end.start].to_vec();
    twice.extend_from_slice(&bytes[block.start..end.start]);
    twice.extend_from_slice(&bytes[end.start..]);
    let error = StoreBuilder::<u64, String>::new()
        .restore(&twice[..])
        .unwrap_err();
    assert!(
        matches!(&error, RestoreError::Corrupt { part: Part::Block(1), detail, .. }
            if detail.ends_with(" repeats the key of an earlier record")),
        "{error}"
    );
}

/// Keys `GROUP * g .. GROUP * (g + 1)` hash alike, so that each group lives in one shard
/// whatever the store makes of a hash; groups spread over the shards.
const GROUP: u64 = 8;

#[derive(Clone, Default)]
struct ByGroup;

impl BuildHasher for ByGroup {
    type Hasher = GroupHasher;

    fn build_hasher(&self) -> GroupHasher {
        GroupHasher(0)
    }
}

struct GroupHasher(u64);

impl Hasher for GroupHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = (key / GROUP).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[test]
fn a_snapshot_taken_while_threads_write_has_each_shard_at_one_instant() {
    const GROUPS: u64 = 64;
    let store: Store<u64, u64, verkv::Counter, ByGroup> =
        StoreBuilder::new().shards(16).hasher(ByGroup).build();
    for key in 0..GROUPS * GROUP {
        store.put(key, 0).unwrap();
    }
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        for writer in 0..2 {
            let (store, stop) = (&store, &stop);
            scope.spawn(move || {
                // Round after round, each group's keys in order: at any instant a group
                // holds round r in its first keys and r - 1 in the rest.
                for round in 1.. {
                    for group in (writer..GROUPS).step_by(2) {
                        for key in group * GROUP..(group + 1) * GROUP {
                            store.put(key, round).unwrap();
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            });
        }
        for _ in 0..20 {
            let mut bytes = Vec::new();
            store.snapshot_to(&mut bytes).unwrap();
            let (restored, report) = StoreBuilder::<u64, u64>::new()
                .hasher(ByGroup)
                .restore(&bytes[..])
                .unwrap();
            assert_eq!(report.loaded, GROUPS * GROUP);
            for group in 0..GROUPS {
                let records: Vec<Versioned<u64, u64>> = (group * GROUP..(group + 1) * GROUP)
                    .map(|key| restored.get(&key).unwrap())
                    .collect();
                let first = records[0].value;
                let consistent = records.windows(2).all(|w| w[0].value >= w[1].value)
                    && first - records[GROUP as usize - 1].value <= 1;
                assert!(consistent, "group {group} torn: {records:?}");
                for record in &records {
                    // Every write is a put: a record's version counts its writes.
                    assert_eq!(record.version, record.value + 1, "{records:?}");
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
}

/// A value that refuses to be written when it is 13.
#[derive(Clone, Debug, PartialEq)]
struct Picky(u32);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(S::Error::custom("thirteen is unlucky"));
        }
        serializer.serialize_u32(self.0)
    }
}

/// A directory of its own under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("verkv-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_snapshot_file_is_replaced_whole_or_not_at_all() {
    let dir = TempDir::new("file");
    let path = dir.0.join("cache.snapshot");
    let store: Store<u64, Picky> = Store::new();
    store.insert(1, Picky(1)).unwrap();
    store.snapshot_to_file(&path).unwrap();
    let first = std::fs::read(&path).unwrap();

    store.insert(13, Picky(13)).unwrap();
    let error = store.snapshot_to_file(&path).unwrap_err();
    assert!(
        // postcard keeps no message of a custom error: only what refused.
        matches!(&error, SnapshotError::Encode { record: 0 | 1, detail } if detail.starts_with("the value: ")),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), first, "the old file stays");
    assert_eq!(dir.files(), ["cache.snapshot"], "no temporary file left");

    store.invalidate(&13).unwrap();
    store.insert(2, Picky(2)).unwrap();
    let written = store.snapshot_to_file(&path).unwrap();
    assert_eq!(written.records, 2);
    assert_eq!(dir.files(), ["cache.snapshot"]);
    assert_ne!(std::fs::read(&path).unwrap(), first);

    let missing = dir.0.join("no such directory").join("cache.snapshot");
    let error = store.snapshot_to_file(&missing).unwrap_err();
    assert!(matches!(error, SnapshotError::File(_)));
    assert!(
        error.to_string().starts_with("could not create "),
        "{error}"
    );
}
