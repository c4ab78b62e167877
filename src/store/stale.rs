//! Stale conditional writes refused on the read path.
//!
//! A compare-and-swap at a version that is no longer current writes nothing, yet on the
//! write path it takes the shard's lock exclusively, and so revokes the read bias of the
//! shard (see `sync/biased.rs`): every reader of the shard pays for a write that never
//! happens. Under contention most compare-and-swaps are stale, so a shard that has
//! refused stale writes lately first looks at the record under its **read** lock and
//! refuses there when the record is at another version. That refusal is linearizable: the
//! version it names was the record's while the read lock was held, within the call.
//!
//! A write that passes the look still takes the write lock and checks the version again
//! there: another writer may have come in between. A shard that refuses nothing stale
//! does not look at all, so an uncontended write pays one load of a word in a line it
//! takes anyway.

use std::borrow::Borrow;
use std::hash::Hash;

use super::error::Error;
use super::locked::LockedShard;
use super::tally::{count_checked_write, count_stop, Written};
use crate::deadline::Wait;
use crate::stats::counters::Event;
use crate::version::VersionScheme;

/// What the look on the read path found.
pub(crate) enum Looked<Ver> {
    /// Nothing to go by: the shard did not look, or found no live record.
    Unsure,
    /// The record was at the expected version while the read lock was held. The write
    /// path checks again all the same (the `trusting_read` mutant does not).
    AtExpected,
    /// The record was at this other version while the read lock was held: the write is
    /// refused as stale (and counted so).
    Stale(Ver),
}

impl<Ver: Clone> Looked<Ver> {
    /// The refusal of a write at `expected` if the look found it stale, else what the
    /// look found, for the write path.
    #[inline(always)]
    pub(crate) fn refusal(self, expected: &Ver) -> Result<Looked<Ver>, Error<Ver>> {
        match self {
            Looked::Stale(current) => Err(Error::Stale {
                expected: expected.clone(),
                current,
            }),
            looked => Ok(looked),
        }
    }
}

/// A stale refusal on the read path, as the statistics count it.
struct RefusedStale;

impl Written for RefusedStale {
    fn counted(&self, _done: Event) -> Option<Event> {
        Some(Event::Stale)
    }

    fn is_stale(&self) -> bool {
        true
    }
}

/// Refuses a conditional write of `key` at `expected` as stale on the read path if
/// `shard` has refused stale writes lately and the record is at another version (one
/// that has not expired: an expired record is left to the write path, which reclaims
/// it): [`Looked::Stale`], with the record's version, counted as a stale refusal. `Err`
/// is the wait's error.
#[inline(always)]
pub(crate) fn refuse_stale_on_read<K, V, S, Q, W>(
    wait: &W,
    (hash, shard): (u64, &LockedShard<K, V, S>),
    key: &Q,
    expected: &S::Version,
) -> Result<Looked<S::Version>, W::Error>
where
    K: Borrow<Q> + Eq,
    S: VersionScheme,
    Q: Hash + Eq + ?Sized,
    W: Wait,
{
    if cfg!(verkv_mutant = "no_version_check") || !shard.lately_stale.look_first() {
        return Ok(Looked::Unsure);
    }
    let records = wait
        .read(&shard.lock)
        .inspect_err(|&stop| count_stop(shard, stop))?;
    let current = match records.peek(hash, key) {
        Some(record) if record.version != *expected => record.version.clone(),
        Some(_) => return Ok(Looked::AtExpected),
        None => return Ok(Looked::Unsure),
    };
    count_checked_write(shard, &records, (hash, key), &RefusedStale, Event::Updated);
    drop(records);
    shard.lately_stale.after_read_refusal();
    Ok(Looked::Stale(current))
}

/// The version the `trusting_read` mutant writes at: the record's current one, taken for
/// the expected one on the strength of a look that passed (no check under the write lock).
#[cfg(verkv_mutant = "trusting_read")]
pub(crate) fn trusted<K: Eq, V, S: VersionScheme, Q>(
    looked: Looked<S::Version>,
    records: &super::records::Records<K, V, S>,
    hash: u64,
    key: &Q,
) -> Option<S::Version>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    match looked {
        Looked::AtExpected => records.peek(hash, key).map(|record| record.version.clone()),
        Looked::Unsure | Looked::Stale(_) => None,
    }
}
