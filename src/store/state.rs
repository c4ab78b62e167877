//! What a shard keeps per record beside its value and version: nothing in a plain shard
//! (no bound, no timer), the eviction state in a tracked one.
//!
//! A plain `u64` → `u64` entry is 24 bytes, a tracked one 32: measured, the 8 bytes of
//! eviction state cost a plain store's reads a third more last-level cache misses at 1e6
//! keys (`docs/benchmarks/read-path.md`, "Records without eviction state"). The shard's logic is written
//! once, over [`RecordState`]; [`Records`](super::records::Records) picks the table.

use hashbrown::HashTable;

use super::record::Record;
use crate::store::parts::eviction::Access;

/// One entry of a shard's table: the key, its record, and the record's state.
pub(crate) type Stored<K, V, Ver, A> = (K, Record<V, Ver>, A);

/// The per-record state of a shard's records: `()` in a plain shard, [`Access`] in a
/// tracked one (bounded, or with a timer).
pub(crate) trait RecordState: Sized {
    /// Whether records carry eviction state. `false`: the shard has neither a bound nor a
    /// timer, and its code drops their tests at compile time.
    const TRACKED: bool;

    /// The state of a new record, from the one eviction or expiry gave it.
    fn adopt(access: Access) -> Self;

    /// The ticket that names the record to the eviction queues and the timer.
    fn ticket(&self) -> u32;

    /// The record's eviction state, if it has one.
    fn access(&self) -> Option<&Access>;

    /// The record's eviction state, if it has one, to change.
    fn access_mut(&mut self) -> Option<&mut Access>;

    /// The table, if its records carry eviction state, as eviction reads it.
    fn tracked<K, V, Ver>(
        table: &mut HashTable<Stored<K, V, Ver, Self>>,
    ) -> Option<&mut HashTable<Stored<K, V, Ver, Access>>>;
}

impl RecordState for () {
    const TRACKED: bool = false;

    #[inline]
    fn adopt(_: Access) -> Self {}

    #[inline]
    fn ticket(&self) -> u32 {
        0
    }

    #[inline]
    fn access(&self) -> Option<&Access> {
        None
    }

    #[inline]
    fn access_mut(&mut self) -> Option<&mut Access> {
        None
    }

    #[inline]
    fn tracked<K, V, Ver>(
        _: &mut HashTable<Stored<K, V, Ver, Self>>,
    ) -> Option<&mut HashTable<Stored<K, V, Ver, Access>>> {
        None
    }
}

impl RecordState for Access {
    const TRACKED: bool = true;

    #[inline]
    fn adopt(access: Access) -> Self {
        access
    }

    #[inline]
    fn ticket(&self) -> u32 {
        Access::ticket(self)
    }

    #[inline]
    fn access(&self) -> Option<&Access> {
        Some(self)
    }

    #[inline]
    fn access_mut(&mut self) -> Option<&mut Access> {
        Some(self)
    }

    #[inline]
    fn tracked<K, V, Ver>(
        table: &mut HashTable<Stored<K, V, Ver, Self>>,
    ) -> Option<&mut HashTable<Stored<K, V, Ver, Access>>> {
        Some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_entry_is_a_tracked_one_less_the_eviction_state() {
        use std::mem::size_of;
        assert_eq!(size_of::<Stored<u64, u64, u64, ()>>(), 24);
        assert_eq!(size_of::<Stored<u64, u64, u64, Access>>(), 32);
    }
}
