//! Every operation's success and failure paths, for both version schemes.

use std::collections::HashSet;

use verkv::{Counter, Error, Store, UpdateWithError, UuidV4, VersionScheme, Versioned};

fn counter_store() -> Store<String, u32> {
    Store::new()
}

fn uuid_store() -> Store<String, u32, UuidV4> {
    Store::builder().versions::<UuidV4>().build()
}

/// Runs the same checks against a store of each version scheme.
macro_rules! for_each_scheme {
    ($($name:ident => $body:expr;)*) => {
        mod counter {
            use super::*;
            $(#[test] fn $name() { ($body)(counter_store()) })*
        }
        mod uuid {
            use super::*;
            $(#[test] fn $name() { ($body)(uuid_store()) })*
        }
    };
}

fn key(k: &str) -> String {
    k.to_owned()
}

fn insert_creates_then_refuses<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 1).unwrap();
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 1,
            version: v1.clone()
        })
    );
    let refused = store.insert(key("a"), 2).unwrap_err();
    assert_eq!(
        refused.error,
        Error::Exists {
            current: v1.clone()
        }
    );
    assert_eq!(refused.value, 2);
    assert_eq!(
        store.get("a").unwrap().value,
        1,
        "a refused insert changes nothing"
    );
    assert_eq!(store.version("a"), Some(v1));
}

fn update_succeeds_at_the_current_version<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 1).unwrap();
    let v2 = store.update("a", &v1, 2).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 2,
            version: v2
        })
    );
}

fn update_refuses_stale_and_missing<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 1).unwrap();
    let v2 = store.update("a", &v1, 2).unwrap();
    let stale = store.update("a", &v1, 3).unwrap_err();
    assert_eq!(
        stale.error,
        Error::Stale {
            expected: v1.clone(),
            current: v2.clone()
        }
    );
    assert_eq!(stale.value, 3);
    assert_eq!(
        stale.to_string(),
        format!("stale version: expected {v1}, current {v2}")
    );
    let missing = store.update("b", &v1, 4).unwrap_err();
    assert_eq!(missing.error, Error::NotFound);
    assert_eq!(missing.value, 4);
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 2,
            version: v2
        })
    );
    assert!(!store.contains_key("b"));
}

fn update_with_computes_from_the_current_value<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 10).unwrap();
    let v2 = store.update_with("a", &v1, |n| n * 2).unwrap();
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 20,
            version: v2
        })
    );
}

fn update_with_closure_error_changes_nothing<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 10).unwrap();
    let err = store.try_update_with("a", &v1, |_| Err("no")).unwrap_err();
    assert_eq!(err, UpdateWithError::Closure("no"));
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 10,
            version: v1
        })
    );
}

fn update_with_refuses_before_running_the_closure<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 10).unwrap();
    let v2 = store.update("a", &v1, 11).unwrap();
    let mut ran = false;
    let err = store
        .update_with("a", &v1, |n| {
            ran = true;
            *n
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::Stale {
            expected: v1.clone(),
            current: v2
        }
    );
    let err = store.update_with("b", &v1, |n| *n).unwrap_err();
    assert_eq!(err, Error::NotFound);
    assert!(!ran, "the closure only runs once the version check passed");
}

fn update_with_panic_leaves_the_record<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 10).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.update_with("a", &v1, |_| -> u32 { panic!("boom") });
    }));
    assert!(outcome.is_err());
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 10,
            version: v1.clone()
        })
    );
    // The lock was released: the store still works.
    store.update("a", &v1, 11).unwrap();
}

fn remove_is_conditional<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.insert(key("a"), 1).unwrap();
    let v2 = store.update("a", &v1, 2).unwrap();
    assert_eq!(
        store.remove("a", &v1),
        Err(Error::Stale {
            expected: v1.clone(),
            current: v2.clone()
        })
    );
    assert!(store.contains_key("a"));
    assert_eq!(store.remove("a", &v2), Ok(2));
    assert_eq!(store.remove("a", &v2), Err(Error::NotFound));
    assert_eq!(store.get("a"), None);
    assert!(store.is_empty());
}

/// Rounds of `recreated_keys_never_reuse_versions`. Each tries every version seen so far,
/// so the work grows with the square of the rounds; under Miri (which interprets every
/// step) a few rounds still recreate the key through both `remove` and `clear`.
const RECREATIONS: u32 = if cfg!(miri) { 6 } else { 50 };

/// Records of `len_clear_and_iteration`: under Miri, enough to fill several shards.
const RECORDS: u32 = if cfg!(miri) { 20 } else { 100 };

fn recreated_keys_never_reuse_versions<S: VersionScheme>(store: Store<String, u32, S>) {
    let mut seen = HashSet::new();
    for round in 0..RECREATIONS {
        let v = store.insert(key("a"), round).unwrap();
        assert!(seen.insert(v.clone()), "version {v} handed out twice");
        let v = store.update("a", &v, round + 100).unwrap();
        assert!(seen.insert(v.clone()), "version {v} handed out twice");
        if round % 2 == 0 {
            store.remove("a", &v).unwrap();
        } else {
            store.clear();
        }
        // Every old version is refused against the new record.
        let fresh = store.insert(key("a"), 0).unwrap();
        for old in &seen {
            assert!(matches!(
                store.update("a", old, 0).unwrap_err().error,
                Error::Stale { .. }
            ));
        }
        assert!(seen.insert(fresh.clone()));
        store.remove("a", &fresh).unwrap();
    }
}

fn put_writes_blindly<S: VersionScheme>(store: Store<String, u32, S>) {
    let v1 = store.put(key("a"), 1).unwrap();
    let v2 = store.put(key("a"), 2).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        store.get("a"),
        Some(Versioned {
            value: 2,
            version: v2.clone()
        })
    );
    // A writer holding v1 is now stale: the blind write moved the version on.
    assert!(matches!(
        store.update("a", &v1, 3).unwrap_err().error,
        Error::Stale { .. }
    ));
}

fn len_clear_and_iteration<S: VersionScheme>(store: Store<String, u32, S>) {
    for i in 0..RECORDS {
        store.insert(format!("k{i}"), i).unwrap();
    }
    assert_eq!(store.len(), RECORDS as usize);
    let mut seen: Vec<(String, u32)> = store.iter().map(|(k, r)| (k, r.value)).collect();
    seen.sort_by_key(|(_, v)| *v);
    assert_eq!(
        seen,
        (0..RECORDS)
            .map(|i| (format!("k{i}"), i))
            .collect::<Vec<_>>()
    );
    for (k, r) in store.iter() {
        // No lock is held between items: writing from the loop body is fine.
        store.update(&k, &r.version, r.value + 1).unwrap();
    }
    assert!(store.iter().all(|(k, r)| k == format!("k{}", r.value - 1)));
    store.clear();
    assert_eq!(store.len(), 0);
    assert!(store.is_empty());
    assert_eq!(store.iter().count(), 0);
}

for_each_scheme! {
    insert_creates_then_refuses_ => insert_creates_then_refuses;
    update_succeeds => update_succeeds_at_the_current_version;
    update_refuses => update_refuses_stale_and_missing;
    update_with_computes => update_with_computes_from_the_current_value;
    update_with_closure_error => update_with_closure_error_changes_nothing;
    update_with_refuses_first => update_with_refuses_before_running_the_closure;
    update_with_panic => update_with_panic_leaves_the_record;
    remove_conditional => remove_is_conditional;
    recreated_keys => recreated_keys_never_reuse_versions;
    put_blind => put_writes_blindly;
    len_clear_iter => len_clear_and_iteration;
}

#[test]
fn counter_versions_count_from_one_per_key() {
    let store: Store<&str, u32, Counter> = Store::new();
    assert_eq!(store.insert("a", 0), Ok(1));
    assert_eq!(store.insert("b", 0), Ok(1));
    assert_eq!(store.update(&"a", &1, 1), Ok(2));
    assert_eq!(store.put("a", 2), Ok(3));
    assert_eq!(store.put("c", 2), Ok(1));
}

#[test]
fn one_shard_store_works() {
    // Under Miri a tenth of the records still grows the table well past its initial capacity.
    let records = if cfg!(miri) { 100 } else { 1000 };
    let store: Store<u32, u32> = Store::builder().shards(1).capacity(10).build();
    for i in 0..records {
        store.insert(i, i).unwrap();
    }
    assert_eq!(store.len(), records as usize);
    assert_eq!(store.get(&(records - 1)).unwrap().value, records - 1);
}

#[test]
fn custom_hasher_is_used() {
    let store: Store<String, u32, Counter, std::hash::RandomState> = verkv::StoreBuilder::new()
        .hasher(std::hash::RandomState::new())
        .build();
    store.insert(key("a"), 1).unwrap();
    assert_eq!(store.get("a").unwrap().value, 1);
}

#[test]
fn errors_convert_and_chain() {
    let store: Store<&str, u32> = Store::new();
    store.insert("a", 1).unwrap();
    let rejected = store.insert("a", 2).unwrap_err();
    let source = std::error::Error::source(&rejected).expect("the reason is the source");
    assert_eq!(source.to_string(), "key already exists at version 1");
    let error: Error<u64> = rejected.into();
    assert_eq!(error, Error::Exists { current: 1 });
    let boxed: Box<dyn std::error::Error> = Box::new(store.update(&"z", &1, 0).unwrap_err());
    assert_eq!(boxed.to_string(), "key not found");
}
