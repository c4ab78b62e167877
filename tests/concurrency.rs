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
