//! The hand-made version check on a plain `HashMap`, shared by the peers built on one.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::{Hasher, Record, FIRST_VERSION};

/// Creates the record at the first version unless `key` is present.
pub(crate) fn insert<V>(
    map: &mut HashMap<u64, Record<V>, Hasher>,
    key: u64,
    value: V,
) -> Option<u64> {
    match map.entry(key) {
        Entry::Occupied(_) => None,
        Entry::Vacant(vacant) => {
            vacant.insert(Record {
                value,
                version: FIRST_VERSION,
            });
            Some(FIRST_VERSION)
        }
    }
}

/// Runs `write` on the record if it is at `expected`, then moves it to the next version.
pub(crate) fn write_if_current<V>(
    map: &mut HashMap<u64, Record<V>, Hasher>,
    key: u64,
    expected: u64,
    write: impl FnOnce(&mut V),
) -> Option<u64> {
    let record = map.get_mut(&key)?;
    if record.version != expected {
        return None;
    }
    write(&mut record.value);
    record.version += 1;
    Some(record.version)
}

/// Removes the record if it is at `expected`.
pub(crate) fn remove<V>(
    map: &mut HashMap<u64, Record<V>, Hasher>,
    key: u64,
    expected: u64,
) -> bool {
    match map.entry(key) {
        Entry::Occupied(occupied) if occupied.get().version == expected => {
            occupied.remove();
            true
        }
        _ => false,
    }
}
