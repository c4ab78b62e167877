//! A closure that calls back into its own store gets a clear panic, never a deadlock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use verkv::{Expiry, Store};

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

/// The panic message of `run`, which must panic.
fn panic_message(run: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(run)).expect_err("the call must panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A store whose callback (set up by `build`) reaches the store through `slot`, filled
/// once the store exists: the only way a callback can hold its own store.
type Slot = Arc<OnceLock<Weak<Store<u32, u32>>>>;

fn reach(slot: &Slot) -> Option<Arc<Store<u32, u32>>> {
    slot.get().and_then(Weak::upgrade)
}

#[test]
fn a_weigher_that_calls_back_into_its_store_panics_clearly() {
    let slot: Slot = Arc::default();
    let weigher_slot = Arc::clone(&slot);
    let store = Arc::new(
        Store::builder()
            .shards(1)
            .max_capacity(100)
            .weigher(move |key: &u32, _value: &u32| {
                if let Some(store) = reach(&weigher_slot) {
                    store.contains_key(key);
                }
                1
            })
            .build(),
    );
    slot.set(Arc::downgrade(&store)).unwrap();
    let message = panic_message(|| {
        let _ = store.insert(1, 10);
    });
    assert!(
        message.contains("called back into the same store"),
        "unexpected panic message {message:?}"
    );
    // Nothing was written, and the shard's lock is free again.
    assert_eq!(store.get(&1), None);
    assert_eq!(store.len(), 0);
}

/// An expiry policy that calls back into its store from each of its three methods.
struct Reentrant(Slot);

impl Reentrant {
    fn reenter(&self, key: &u32) -> Option<Duration> {
        if let Some(store) = reach(&self.0) {
            store.contains_key(key);
        }
        // A deadline, so that reads of the record consult the policy too.
        Some(Duration::from_secs(3600))
    }
}

impl Expiry<u32, u32> for Reentrant {
    fn expire_after_create(&self, key: &u32, _value: &u32) -> Option<Duration> {
        self.reenter(key)
    }
    fn expire_after_update(
        &self,
        key: &u32,
        _value: &u32,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.reenter(key)
    }
    fn expire_after_read(
        &self,
        key: &u32,
        _value: &u32,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.reenter(key)
    }
}

#[test]
fn an_expiry_policy_that_calls_back_into_its_store_panics_clearly() {
    let slot: Slot = Arc::default();
    let store = Arc::new(
        Store::builder()
            .shards(1)
            .expiry(Reentrant(Arc::clone(&slot)))
            .build(),
    );
    // Written before the policy can reach the store.
    let v1 = store.insert(1, 10).unwrap();
    slot.set(Arc::downgrade(&store)).unwrap();
    let calls: Vec<(&str, Reentry)> = vec![
        ("create", Box::new(|s| drop(s.insert(2, 20)))),
        ("update", Box::new(|s| drop(s.update(&1, &1, 11)))),
        ("read", Box::new(|s| assert!(s.get(&1).is_some()))),
    ];
    for (name, call) in calls {
        let message = panic_message(|| call(&store));
        assert!(
            message.contains("called back into the same store"),
            "{name}: unexpected panic message {message:?}"
        );
    }
    // Nothing was written.
    assert_eq!(store.version(&1), Some(v1));
    assert!(!store.contains_key(&2));
    // The shard's lock is free again (a removal consults no policy).
    assert_eq!(store.remove(&1, &v1), Ok(10));
}

#[test]
fn a_listener_may_hold_and_use_its_own_store() {
    // The listener runs outside every lock, so it may use the store it listens to; and a
    // closure holding the store compiles (no unwind-safety bound on callbacks).
    let slot: Slot = Arc::default();
    let listener_slot = Arc::clone(&slot);
    let heard = Arc::new(AtomicU64::new(0));
    let heard_by_listener = Arc::clone(&heard);
    let store = Arc::new(
        Store::builder()
            .eviction_listener(move |key: u32, _value: u32, _cause| {
                if let Some(store) = reach(&listener_slot) {
                    // Still there? (It is not: the listener hears of it after it left.)
                    assert!(!store.contains_key(&key));
                    heard_by_listener.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build(),
    );
    slot.set(Arc::downgrade(&store)).unwrap();
    let v1 = store.insert(1, 10).unwrap();
    store.remove(&1, &v1).unwrap();
    assert_eq!(heard.load(Ordering::Relaxed), 1);
}

#[test]
fn patch_and_retain_closures_that_call_back_panic_clearly() {
    let store: Store<u32, u32> = Store::builder().shards(1).build();
    let v1 = store.insert(1, 10).unwrap();
    let patched = panic_message(|| {
        let _ = store.patch(&1, &v1, |value: &mut u32| {
            *value = store.get(&1).map_or(0, |read| read.value) + 1;
            Ok::<(), String>(())
        });
    });
    assert!(
        patched.contains("called back into the same store"),
        "{patched:?}"
    );
    let retained = panic_message(|| store.retain(|key, _| store.contains_key(key)));
    assert!(
        retained.contains("called back into the same store"),
        "{retained:?}"
    );
    // Nothing changed, and the shard's lock is free again.
    assert_eq!(store.update(&1, &v1, 11), Ok(v1 + 1));
}
