//! The conformance suite on the in-memory store: the sequential model through the
//! `VersionedStore` trait and through the `AsyncVersionedStore` trait
//! (`support/conformance.rs`), the same that runs on PostgreSQL (`tests/postgres.rs`).
//! The stress run of the suite is `tests/linearizability.rs`.

mod support;

use support::conformance;

use conformance::{steps, Key, Model, Value};
use proptest::prelude::*;
use verkv::{Counter, Store, UuidV4};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn counter_store_conforms(steps in steps(4, 120)) {
        let store: Store<Key, Value, Counter> = Store::new();
        Model::run(&store, &steps);
    }

    #[test]
    fn uuid_store_conforms(steps in steps(4, 120)) {
        let store: Store<Key, Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
        Model::run(&store, &steps);
    }

    #[test]
    fn counter_store_conforms_through_its_async_face(steps in steps(4, 120)) {
        let store: Store<Key, Value, Counter> = Store::new();
        Model::run_async(&store, &steps);
    }

    #[test]
    fn uuid_store_conforms_through_its_async_face(steps in steps(4, 120)) {
        let store: Store<Key, Value, UuidV4> = Store::builder().versions::<UuidV4>().build();
        Model::run_async(&store, &steps);
    }
}
