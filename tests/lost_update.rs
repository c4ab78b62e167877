//! The lost-update race, forced deterministically with barriers (no sleeps): both clients
//! read before either writes, and Alice writes before Bob.

use std::sync::Barrier;
use std::thread;

use verkv::{Error, Store};

/// Alice adds 1 and Bob adds 10 to the same counter, interleaved as
/// read(A) read(B) write(A) write(B). Returns the final value and Bob's write outcome.
fn race<T: Send>(
    store: &Store<&'static str, u64>,
    write: impl Fn(&Store<&'static str, u64>, u64, u64) -> T + Sync,
) -> (u64, T) {
    let both_read = Barrier::new(2);
    let alice_wrote = Barrier::new(2);
    let bob = thread::scope(|s| {
        s.spawn(|| {
            let read = store.get("counter").unwrap();
            both_read.wait();
            write(store, read.version, read.value + 1);
            alice_wrote.wait();
        });
        s.spawn(|| {
            let read = store.get("counter").unwrap();
            both_read.wait();
            alice_wrote.wait();
            write(store, read.version, read.value + 10)
        })
        .join()
        .unwrap()
    });
    (store.get("counter").unwrap().value, bob)
}

#[test]
fn blind_writes_lose_alices_update_every_time() {
    for _ in 0..100 {
        let store = Store::new();
        store.insert("counter", 0).unwrap();
        let (end, _) = race(&store, |store, _version, value| {
            store.put("counter", value).unwrap()
        });
        assert_eq!(end, 10, "Bob's blind write replaced Alice's +1");
    }
}

#[test]
fn versioned_writes_reject_bobs_stale_write_every_time() {
    for _ in 0..100 {
        let store = Store::new();
        store.insert("counter", 0).unwrap();
        let (end, bob) = race(&store, |store, version, value| {
            store.update("counter", &version, value)
        });
        let refused = bob.unwrap_err();
        assert_eq!(
            refused.error,
            Error::Stale {
                expected: 1,
                current: 2
            }
        );
        assert_eq!(refused.value, 10, "Bob gets his rejected value back");
        assert_eq!(end, 1, "Alice's update stands");
        // Bob re-reads and re-applies: both updates count.
        let fresh = store.get("counter").unwrap();
        store
            .update("counter", &fresh.version, fresh.value + 10)
            .unwrap();
        assert_eq!(store.get("counter").unwrap().value, 11);
    }
}
