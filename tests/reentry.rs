//! A closure that calls back into its own store gets a clear panic, never a deadlock.

use std::panic::{catch_unwind, AssertUnwindSafe};

use verkv::Store;

/// A call made from inside a closure the store is running.
type Reentry = Box<dyn Fn(&Store<u32, u32>)>;

/// Runs `reenter` from inside an `update_with` closure and returns the panic message.
fn panic_message_of(reenter: impl Fn(&Store<u32, u32>)) -> String {
    // One shard: any call back in would need the very lock the closure runs under.
    let store: Store<u32, u32> = Store::builder().shards(1).build();
    let v1 = store.insert(1, 10).unwrap();
    store.insert(2, 20).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        let _ = store.update_with(&1, &v1, |n| {
            reenter(&store);
            n + 1
        });
    }))
    .expect_err("calling back into the store must panic");
    // The record is untouched and the lock free again.
    assert_eq!(store.get(&1).unwrap().value, 10);
    assert_eq!(store.update(&1, &v1, 11), Ok(2));
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn every_call_back_into_the_store_panics_clearly() {
    let calls: Vec<(&str, Reentry)> = vec![
        ("get", Box::new(|s| assert!(s.get(&2).is_some()))),
        ("get same key", Box::new(|s| assert!(s.get(&1).is_some()))),
        ("version", Box::new(|s| assert!(s.version(&2).is_some()))),
        ("contains_key", Box::new(|s| assert!(s.contains_key(&2)))),
        ("insert", Box::new(|s| assert!(s.insert(3, 0).is_ok()))),
        ("put", Box::new(|s| assert!(s.put(2, 0).unwrap() > 0))),
        ("update", Box::new(|s| assert!(s.update(&2, &1, 0).is_ok()))),
        (
            "update_with",
            Box::new(|s| assert!(s.update_with(&2, &1, |n| *n).is_ok())),
        ),
        ("remove", Box::new(|s| assert!(s.remove(&2, &1).is_ok()))),
        ("len", Box::new(|s| assert_eq!(s.len(), 2))),
        ("clear", Box::new(|s| s.clear())),
        ("iter", Box::new(|s| assert!(s.iter().count() > 0))),
    ];
    for (name, call) in calls {
        let message = panic_message_of(call);
        assert!(
            message.contains("called back into the same store"),
            "{name}: unexpected panic message {message:?}"
        );
    }
}

#[test]
fn other_stores_may_be_used_from_a_closure() {
    let store: Store<u32, u32> = Store::new();
    let other: Store<u32, u32> = Store::new();
    other.insert(1, 5).unwrap();
    let v1 = store.insert(1, 10).unwrap();
    store
        .update_with(&1, &v1, |n| {
            let read = other.get(&1).unwrap();
            other.update(&1, &read.version, read.value + 1).unwrap();
            n + read.value
        })
        .unwrap();
    assert_eq!(store.get(&1).unwrap().value, 15);
    assert_eq!(other.get(&1).unwrap().value, 6);
}
