//! Two threads hammer one key; every successful update is applied exactly once and no
//! reader ever sees a value paired with another write's version.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use verkv::Store;

const ATTEMPTS_PER_THREAD: u64 = 20_000;

/// The value is derived from the version so a torn read is detectable: with counter
/// versions starting at 1 and one increment per successful update, a consistent record
/// at version `v` holds exactly `v - 1`.
#[test]
fn every_successful_update_applies_exactly_once_and_reads_are_never_torn() {
    let store: Store<&str, u64> = Store::new();
    store.insert("hot", 0).unwrap();
    let stop = AtomicBool::new(false);

    let (successes, reads) = thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut succeeded = 0u64;
                    for _ in 0..ATTEMPTS_PER_THREAD {
                        let read = store.get("hot").unwrap();
                        if store.update("hot", &read.version, read.value + 1).is_ok() {
                            succeeded += 1;
                        }
                    }
                    succeeded
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let read = store.get("hot").unwrap();
                assert_eq!(read.value, read.version - 1, "torn read: {read:?}");
                reads += 1;
            }
            reads
        });
        let successes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        (successes, reader.join().unwrap())
    });

    let last = store.get("hot").unwrap();
    assert_eq!(
        last.value, successes,
        "every successful update counted once"
    );
    assert_eq!(last.version, successes + 1);
    assert!(successes > 0 && reads > 0);
}

/// Writes spaced out so that the shard's read bias comes back between them: each write
/// must then revoke it and wait for the announced readers. A writer that skipped that
/// (`verkv_mutant="no_revocation"`) would let the reader copy a record half rewritten,
/// which the wide value makes visible: its words would disagree with each other or with
/// the version.
#[test]
fn reads_never_overlap_a_write_on_a_read_biased_shard() {
    let store: Store<&str, Wide> = Store::new();
    reads_are_never_torn(&store, "wide", |store| store.get("wide").unwrap());
}

/// As [`reads_never_overlap_a_write_on_a_read_biased_shard`], for the record an atomic
/// read of two shards reads second: its thread holds the first shard's read with the
/// bias meanwhile, so it announces this one in the second word of its slot. A writer
/// that looked at the first word of each slot alone
/// (`verkv_mutant="first_word_only"`) would write beside it.
#[test]
fn a_read_of_two_shards_never_overlaps_a_write_on_either() {
    let store: Store<&str, Wide> = Store::builder().shards(4).build();
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let (first, wide) = (keys.iter())
        .flat_map(|first| keys.iter().map(move |wide| (*first, *wide)))
        .find(|(first, wide)| store.shard_of(first) < store.shard_of(wide))
        .expect("two of eight keys on different shards");
    store.insert(first, [0; WORDS]).unwrap();
    reads_are_never_torn(&store, wide, |store| {
        let [_, read] = store.get_many_array([&first, &wide]);
        read.unwrap()
    });
}

/// How many words the wide record has.
const WORDS: usize = 512;

/// A value wide enough that a copy overlapping a write shows.
type Wide = [u64; WORDS];

/// Writes `wide`'s record at spaced-out intervals while a thread reads it with `read`,
/// and checks that every read saw whole records: at version `v`, every word is `v - 1`.
fn reads_are_never_torn(
    store: &Store<&'static str, Wide>,
    wide: &'static str,
    read: impl Fn(&Store<&'static str, Wide>) -> verkv::Versioned<Wide, u64> + Sync,
) {
    const WRITES: u64 = 6_000;
    store.insert(wide, [0; WORDS]).unwrap();
    let stop = AtomicBool::new(false);

    let reads = thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let read = read(store);
                let expected = read.version - 1;
                assert!(
                    read.value.iter().all(|&word| word == expected),
                    "torn read at version {}: {:?}",
                    read.version,
                    &read.value[..4]
                );
                reads += 1;
            }
            reads
        });
        for n in 1..=WRITES {
            let read = store.get(wide).unwrap();
            store.update(wide, &read.version, [n; WORDS]).unwrap();
            // Longer than the bias stays inhibited after a revocation.
            thread::sleep(std::time::Duration::from_micros(250));
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap()
    });

    assert_eq!(store.get(wide).unwrap().version, WRITES + 1);
    assert!(reads > 0);
}

/// Readers that never pause do not starve a writer with a deadline: each write revokes
/// the read bias (or queues on the shard's lock, which stops letting new readers in ahead
/// of it) and gets in long before its deadline. The deadline is generous so that a loaded
/// machine cannot fail the test; a writer that could starve would miss it every time.
#[test]
fn writers_with_deadlines_are_not_starved_by_readers() {
    const WRITES: u64 = 300;
    let store: Store<u64, u64> = Store::new();
    store.insert(7, 0).unwrap();
    let stop = AtomicBool::new(false);

    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(store.get(&7));
                }
            });
        }
        let bounded = store.within(std::time::Duration::from_secs(2));
        for n in 1..=WRITES {
            let read = store.get(&7).unwrap();
            bounded
                .update(&7, &read.version, n)
                .unwrap_or_else(|e| panic!("write {n} under readers: {e}"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(store.get(&7).unwrap().value, WRITES);
}
