//! What both sequential models keep and decide alike: the records, every version each
//! key has had, which version a conditional operation names, and the version check.
//! `model.rs` (the store's own API, bounded views, patches, retries) and
//! `conformance.rs` (the `VersionedStore` trait, on every backend) build on it.

use std::collections::HashMap;
use std::fmt::{Debug, Display};

use verkv::{Error, Versioned};

/// Keys are small numbers so that random operations keep meeting the same records.
pub(crate) type Key = u8;
/// Values are plain numbers; every write in a sequence can be told apart by its value.
pub(crate) type Value = u32;

/// Which version a conditional operation names as the one it read.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// The key's current version (or, if it has no record, the last one it had).
    Current,
    /// One of the versions the key has had, chosen by index (possibly the current one).
    Earlier(usize),
    /// A version the store never handed out.
    NeverIssued(u32),
}

/// A version type the models can make an unused version of.
pub(crate) trait NeverIssued: Clone + Eq + Debug + Display {
    /// A version no store hands out, distinct for distinct seeds.
    fn never_issued(seed: u32) -> Self;
}

impl NeverIssued for u64 {
    fn never_issued(seed: u32) -> u64 {
        // Counters start at 1 and a test sequence is far too short to come near the top
        // (nor does a database sequence, which stops at `i64::MAX`).
        u64::MAX - u64::from(seed)
    }
}

impl NeverIssued for uuid::Uuid {
    fn never_issued(seed: u32) -> uuid::Uuid {
        // Version-4 UUIDs carry the version nibble 4; these all have 0 there.
        uuid::Uuid::from_u128(u128::from(seed))
    }
}

/// What every key holds, and every version each key has ever had.
pub(crate) struct Ledger<Ver> {
    pub(crate) records: HashMap<Key, Versioned<Value, Ver>>,
    /// Per key, all versions the store handed out for it, oldest first.
    history: HashMap<Key, Vec<Ver>>,
}

impl<Ver: NeverIssued> Ledger<Ver> {
    pub(crate) fn new() -> Self {
        Ledger {
            records: HashMap::new(),
            history: HashMap::new(),
        }
    }

    /// The version a conditional operation passes, as chosen by `expect`.
    pub(crate) fn expected(&self, key: Key, expect: &Expect) -> Ver {
        let history = self.history.get(&key).map_or(&[][..], Vec::as_slice);
        match expect {
            Expect::Current => match (self.records.get(&key), history.last()) {
                (Some(record), _) => record.version.clone(),
                (None, Some(last)) => last.clone(),
                (None, None) => Ver::never_issued(0),
            },
            Expect::Earlier(index) if !history.is_empty() => history[index % history.len()].clone(),
            Expect::Earlier(index) => Ver::never_issued(*index as u32),
            Expect::NeverIssued(seed) => Ver::never_issued(*seed),
        }
    }

    /// The version check: the current version if `key` is at `expected`, or the error
    /// the store must answer with.
    pub(crate) fn check(&self, key: Key, expected: &Ver) -> Result<Ver, Error<Ver>> {
        match self.records.get(&key) {
            None => Err(Error::NotFound),
            Some(record) if record.version == *expected => Ok(record.version.clone()),
            Some(record) => Err(Error::Stale {
                expected: expected.clone(),
                current: record.version.clone(),
            }),
        }
    }

    /// Records that `key` now holds `value` at `version`, which it must never have had.
    pub(crate) fn record(&mut self, key: Key, value: Value, version: Ver, context: &str) {
        let history = self.history.entry(key).or_default();
        assert!(
            !history.contains(&version),
            "{context}: key {key} got version {version} a second time"
        );
        history.push(version.clone());
        self.records.insert(key, Versioned { value, version });
    }
}
