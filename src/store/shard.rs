//! One shard: a plain, single-threaded map of versioned records.
//!
//! All version-check logic lives here, behind `&mut self` methods that take the key's
//! precomputed hash. No locks: the store takes the lock and calls in. No clocks either,
//! unless the store has expiry: then the shard's timer (from `parts::expiry`) reads one.

use std::borrow::Borrow;
use std::time::Duration;

use hashbrown::hash_table::{Entry, HashTable, VacantEntry};

use super::error::{Error, Rejected, UpdateWithError};
use super::record::Record;
use super::state::{RecordState, Stored};
use crate::stats::Evictions;
use crate::store::parts::clock::Clock;
use crate::store::parts::eviction::{Access, Evictor, TooHeavy};
#[cfg(feature = "snapshot")]
use crate::store::parts::expiry::Remaining;
use crate::store::parts::expiry::{Lifetime, Timer, Timing, Turn, UNTICKETED};
use crate::store::parts::removals::{Delivery, RemovalCause, Removals};
use crate::version::VersionScheme;

type Version<S> = <S as VersionScheme>::Version;

/// A record that passed the version check, with what writing it needs: the shard's
/// version scheme, eviction, expiry and removal state, and the record's hash, key and
/// state.
struct Current<'a, K, V, S: VersionScheme, A> {
    versions: &'a mut S,
    bound: &'a mut Option<Evictor<K, V>>,
    timing: &'a mut Timing<K, V>,
    removals: &'a mut Removals<K, V>,
    hash: u64,
    key: &'a K,
    record: &'a mut Record<V, Version<S>>,
    state: &'a mut A,
}

/// A new record's version, and the ticket to [`settle`](Shard::settle) with.
pub(crate) type Created<S> = (Version<S>, Option<u32>);

/// What became of a record restored from a snapshot.
#[cfg(feature = "snapshot")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// It is in the shard.
    Loaded,
    /// A bounded shard had no room left for it without evicting: it was left out.
    NoRoom,
    /// The shard already has a record for its key: a snapshot never repeats one.
    Repeated,
}

/// The records of one shard, each with its state `A` (see `state`), the shard's version
/// scheme, its eviction state if the store is bounded, its expiry state, and the records
/// removed but not yet told to the eviction listener.
pub(crate) struct Shard<K, V, S: VersionScheme, A> {
    table: HashTable<Stored<K, V, Version<S>, A>>,
    versions: S,
    bound: Option<Evictor<K, V>>,
    timing: Timing<K, V>,
    removals: Removals<K, V>,
    /// Records that left without a caller removing them, by cause.
    evicted: Evictions,
}

/// Checks that `record` is at `expected`: the heart of every conditional write.
///
/// The `verkv_mutant = "no_version_check"` cfg removes the check, so that the test suite
/// can show its checkers catch the lost updates that follow.
fn check_version<V, Ver: Clone + Eq>(
    record: &Record<V, Ver>,
    expected: &Ver,
) -> Result<(), Error<Ver>> {
    if cfg!(verkv_mutant = "no_version_check") || record.version == *expected {
        Ok(())
    } else {
        Err(Error::Stale {
            expected: expected.clone(),
            current: record.version.clone(),
        })
    }
}

/// Moves the record to its next version with `value`, returning the new version; refuses
/// (handing `value` back) a value too heavy for a bounded shard to hold at all. The old
/// value goes to the eviction listener as replaced; `time_to_live` is the write's own.
///
/// A shard that keeps no time and has no listener takes the short path: it writes the
/// value and the version and nothing else (measured, the full path cost an update a
/// fifth of its speed).
#[inline]
fn overwrite<K, V, S: VersionScheme, A: RecordState>(
    current: Current<'_, K, V, S, A>,
    value: V,
    time_to_live: Option<Duration>,
) -> Result<Version<S>, Rejected<V, Version<S>>> {
    if current.timing.keeps_time(time_to_live) || current.removals.listening() {
        return overwrite_observed(current, value, time_to_live);
    }
    let Current {
        versions,
        bound,
        key,
        record,
        state,
        ..
    } = current;
    let value = reweigh(bound, key, record, state, value)?;
    record.version = versions.next(&record.version);
    record.value = value;
    Ok(record.version.clone())
}

/// [`overwrite`] for a shard with a timer or a listener.
#[inline(never)]
fn overwrite_observed<K, V, S: VersionScheme, A: RecordState>(
    current: Current<'_, K, V, S, A>,
    value: V,
    time_to_live: Option<Duration>,
) -> Result<Version<S>, Rejected<V, Version<S>>> {
    let Current {
        versions,
        bound,
        timing,
        removals,
        hash,
        key,
        record,
        state,
    } = current;
    let lifetime = timing.lifetime(key, &value, time_to_live, Some((hash, state.ticket())));
    let value = reweigh(bound, key, record, state, value)?;
    if let Some(lifetime) = lifetime {
        start_timer(bound, timing, hash, state, lifetime);
    }
    record.version = versions.next(&record.version);
    removals.push_replaced(key, std::mem::replace(&mut record.value, value));
    Ok(record.version.clone())
}

/// Accounts a bounded shard for `record` taking `value`, handing `value` back to write;
/// refuses a value too heavy to hold at all.
#[inline]
fn reweigh<K, V, Ver, A: RecordState>(
    bound: &mut Option<Evictor<K, V>>,
    key: &K,
    record: &Record<V, Ver>,
    state: &mut A,
    value: V,
) -> Result<V, Rejected<V, Ver>> {
    if let (Some(bound), Some(access)) = (bound, state.access_mut()) {
        if let Err(too_heavy) = bound.reweigh(key, &record.value, &value, access) {
            return Err(Rejected {
                error: too_heavy.into(),
                value,
            });
        }
    }
    Ok(value)
}

/// Gives the record (hash, `state`), just written, its `lifetime` on the shard's timer.
/// In a shard without a bound (whose tickets come from the timer, not the bound) a record
/// that has no ticket yet, written before the shard kept time, gets one first: the sweep
/// names due records by hash and ticket, so no two may share one.
fn start_timer<K, V, A: RecordState>(
    bound: &Option<Evictor<K, V>>,
    timing: &mut Timing<K, V>,
    hash: u64,
    state: &mut A,
    lifetime: Lifetime,
) {
    if bound.is_none() && state.ticket() == UNTICKETED {
        if let Some(access) = state.access_mut() {
            *access = Access::ticketed(timing.issue_ticket());
        }
    }
    timing.start(hash, state.ticket(), lifetime);
}

/// Creates the record for `key` in `vacant`; refuses (handing `value` back) a value too
/// heavy for a bounded shard to hold at all. Returns the version and the ticket to
/// [`settle`](Shard::settle) with. `time_to_live` is the write's own.
#[allow(clippy::too_many_arguments)]
fn create<K, V, S: VersionScheme, A: RecordState>(
    vacant: VacantEntry<'_, Stored<K, V, Version<S>, A>>,
    versions: &mut S,
    bound: &mut Option<Evictor<K, V>>,
    timing: &mut Timing<K, V>,
    hash: u64,
    key: K,
    value: V,
    time_to_live: Option<Duration>,
) -> Result<Created<S>, Rejected<V, Version<S>>> {
    let lifetime = timing.lifetime(&key, &value, time_to_live, None);
    let mut access = match bound {
        None => Access::unbounded(),
        Some(bound) => match bound.admit(hash, &key, &value) {
            Ok(access) => access,
            Err(too_heavy) => {
                return Err(Rejected {
                    error: too_heavy.into(),
                    value,
                })
            }
        },
    };
    if let Some(lifetime) = lifetime {
        start_timer(bound, timing, hash, &mut access, lifetime);
    }
    let ticket = bound.is_some().then(|| access.ticket());
    let version = versions.initial();
    vacant.insert((
        key,
        Record {
            value,
            version: version.clone(),
        },
        A::adopt(access),
    ));
    Ok((version, ticket))
}

impl<K, V, S: VersionScheme, A: RecordState> Shard<K, V, S, A> {
    /// An empty shard with room for `capacity` records if the memory can be had (it is
    /// only a hint: a capacity too large to allocate leaves the table to grow as
    /// needed), bounded by `bound` if given, expiring records as `timing` says and
    /// telling `removals`' listener, if any, of the records that leave it.
    pub(crate) fn new(
        capacity: usize,
        bound: Option<Evictor<K, V>>,
        timing: Timing<K, V>,
        removals: Removals<K, V>,
    ) -> Self {
        let mut table = HashTable::new();
        // An empty table has nothing to rehash.
        let _ = table.try_reserve(capacity, |_: &Stored<K, V, Version<S>, A>| 0);
        Shard {
            table,
            versions: S::default(),
            bound,
            timing,
            removals,
            evicted: Evictions::default(),
        }
    }

    /// The number of records, counting expired ones not yet reclaimed.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The records that have not expired. Needs their hashes only if the shard has
    /// expiry, to look their deadlines up.
    pub(crate) fn iter<'a>(
        &'a self,
        hash: impl Fn(&K) -> u64 + 'a,
    ) -> impl Iterator<Item = (&'a K, &'a Record<V, Version<S>>)> + 'a {
        let timer = self.timing.active().map(|timer| (timer, timer.now()));
        self.table
            .iter()
            .filter(move |(key, _, state)| {
                timer.is_none_or(|(timer, now)| !timer.expired(hash(key), state.ticket(), now))
            })
            .map(|(key, record, _)| (key, record))
    }

    /// The records removed since the last call, for the eviction listener: deliver them
    /// once the lock is released.
    #[inline]
    pub(crate) fn take_removals(&mut self) -> Option<Box<Delivery<K, V>>> {
        self.removals.take()
    }

    /// The shard's eviction listener's state.
    pub(crate) fn removals(&self) -> &Removals<K, V> {
        &self.removals
    }

    /// A version for a record that is evicted the moment it is made (one too heavy for
    /// the bound): issued and retired at once, so it is never handed out again and a
    /// write naming it finds nothing, as for any evicted record.
    pub(crate) fn passing_version(&mut self) -> Version<S> {
        let version = self.versions.initial();
        self.versions.retire(&version);
        version
    }

    /// Removes every record.
    pub(crate) fn clear(&mut self) {
        for (key, record, _) in self.table.drain() {
            self.versions.retire(&record.version);
            self.removals.push(key, record.value, RemovalCause::Cleared);
        }
        if let Some(bound) = &mut self.bound {
            bound.clear();
        }
        if let Some(timer) = self.timing.active_mut() {
            timer.clear();
        }
    }

    /// Accounts for a record taken out of the table: retires its version and takes it off
    /// the bound and the timer.
    fn untrack(&mut self, hash: u64, key: &K, record: &Record<V, Version<S>>, state: &A) {
        self.versions.retire(&record.version);
        if let (Some(bound), Some(access)) = (&mut self.bound, state.access()) {
            bound.forget(key, &record.value, access);
        }
        if let Some(timer) = self.timing.active_mut() {
            timer.forget(hash, state.ticket());
        }
    }

    /// [`untrack`](Shard::untrack)s a record taken out of the table, counts it by
    /// `cause` and notes it for the listener.
    fn discard(
        &mut self,
        hash: u64,
        (key, record, state): Stored<K, V, Version<S>, A>,
        cause: RemovalCause,
    ) {
        self.untrack(hash, &key, &record, &state);
        cause.count_in(&mut self.evicted);
        self.removals.push(key, record.value, cause);
    }

    /// Evicts what a bounded shard holds beyond its capacity, never the record with
    /// ticket `keep` (the one just written), and reclaims a few expired records.
    #[inline]
    fn settle(&mut self, keep: Option<u32>) {
        self.settle_keeping(move |ticket| Some(ticket) == keep);
    }

    /// [`settle`](Shard::settle), never evicting the records whose tickets `keep`
    /// names: those a transaction just wrote, which together fit the shard (see
    /// [`fits_together`](Shard::fits_together)).
    pub(crate) fn settle_keeping(&mut self, keep: impl Fn(u32) -> bool + Copy) {
        if let (Some(bound), Some(table)) = (&mut self.bound, A::tracked(&mut self.table)) {
            let (timing, removals, evicted) =
                (&mut self.timing, &mut self.removals, &mut self.evicted);
            bound.settle(
                table,
                &mut self.versions,
                keep,
                |hash, ticket, key, value| {
                    if let Some(timer) = timing.active_mut() {
                        timer.forget(hash, ticket);
                    }
                    RemovalCause::Evicted.count_in(evicted);
                    removals.push(key, value, RemovalCause::Evicted);
                },
            );
        }
        self.sweep();
    }

    /// Turns the timer's hand over a bounded number of records, reclaiming the expired
    /// (out of line, as [`reclaim_expired`](Shard::reclaim_expired)).
    #[inline]
    fn sweep(&mut self) {
        if A::TRACKED && self.timing.active().is_some() {
            self.sweep_timed();
        }
    }

    #[inline(never)]
    fn sweep_timed(&mut self) {
        let Some(timer) = self.timing.active() else {
            return;
        };
        let now = timer.now();
        for _ in 0..Timer::<K, V>::sweep_budget() {
            let Some(timer) = self.timing.active_mut() else {
                return;
            };
            let (hash, ticket) = match timer.turn(now) {
                Turn::Done => return,
                Turn::Passed => continue,
                Turn::Due(hash, ticket) => (hash, ticket),
            };
            if let Ok(entry) = self
                .table
                .find_entry(hash, |(_, _, state)| state.ticket() == ticket)
            {
                let (stored, _) = entry.remove();
                self.discard(hash, stored, RemovalCause::Expired);
            }
        }
    }

    /// Removes the records `keep` refuses, as removed, and the expired ones, as expired.
    /// `hash` gives a key's hash, which the shard does not keep.
    pub(crate) fn retain(
        &mut self,
        hash: impl Fn(&K) -> u64,
        mut keep: impl FnMut(&K, &V) -> bool,
    ) {
        let timer = self.timing.active().map(|timer| (timer, timer.now()));
        let expired = |key: &K, state: &A| {
            timer.is_some_and(|(timer, now)| timer.expired(hash(key), state.ticket(), now))
        };
        let mut leaving = Vec::new();
        for stored in self
            .table
            .extract_if(|(key, record, state)| expired(key, state) || !keep(key, &record.value))
        {
            let cause = if expired(&stored.0, &stored.2) {
                RemovalCause::Expired
            } else {
                RemovalCause::Removed
            };
            leaving.push((hash(&stored.0), stored, cause));
        }
        for (hash, stored, cause) in leaving {
            self.discard(hash, stored, cause);
        }
        self.settle(None);
    }

    /// Hands `each` every record with what it has left to live (`None`: it expired, and
    /// is only waiting to be reclaimed) and its standing in the eviction policy
    /// ([`Access::heat`], 0 in a shard without a bound): what a snapshot copies out under
    /// the read lock. Needs the records' hashes only if the shard has expiry, to look
    /// their deadlines up.
    #[cfg(feature = "snapshot")]
    pub(crate) fn export(
        &self,
        hash: impl Fn(&K) -> u64,
        mut each: impl FnMut(&K, &Record<V, Version<S>>, Option<Remaining>, u8),
    ) {
        let timer = self.timing.active().map(|timer| (timer, timer.now()));
        for (key, record, state) in &self.table {
            let remaining = match timer {
                None => Some(Remaining::FOREVER),
                Some((timer, now)) => timer.remaining(hash(key), state.ticket(), now),
            };
            let heat = match (&self.bound, state.access()) {
                (Some(_), Some(access)) => access.heat(),
                _ => 0,
            };
            each(key, record, remaining, heat);
        }
    }

    /// Whether the shard has a capacity bound.
    #[cfg(feature = "snapshot")]
    pub(crate) fn bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// The shard's version scheme's resume point ([`VersionScheme::resume_point`]).
    #[cfg(feature = "snapshot")]
    pub(crate) fn resume_point(&self) -> Option<Version<S>> {
        self.versions.resume_point()
    }

    /// Never hands out `point` or a version below it again: what a restore does to every
    /// shard with the resume point of the whole snapshot.
    #[cfg(feature = "snapshot")]
    pub(crate) fn resume_after(&mut self, point: &Version<S>) {
        self.versions.retire(point);
    }

    /// How many records left without a caller removing them, by cause.
    pub(crate) fn evicted(&self) -> &Evictions {
        &self.evicted
    }

    /// What the records weigh: by the bound's weigher, else one each.
    pub(crate) fn weight(&self) -> u64 {
        self.bound
            .as_ref()
            .map_or(self.table.len() as u64, Evictor::weight)
    }
}

impl<K, V, S: VersionScheme> Shard<K, V, S, ()> {
    /// Takes the records out into a tracked shard, every one with the eviction state it
    /// has in a shard without a bound ([`Access::unbounded`]): what a write with a
    /// time-to-live of its own needs before the shard can keep time. O(n), once per
    /// shard. `rehash` gives a key's hash; it is asked for every key before anything
    /// moves, so that a hasher that panics leaves the shard as it was. Leaves `self`
    /// empty, to be dropped.
    pub(crate) fn take_tracked(&mut self, rehash: impl Fn(&K) -> u64) -> Shard<K, V, S, Access> {
        let hashes: Vec<u64> = self.table.iter().map(|(key, _, ())| rehash(key)).collect();
        let mut table = HashTable::with_capacity(hashes.len());
        // A drain walks the buckets in the order an iteration does.
        for ((key, record, ()), hash) in self.table.drain().zip(hashes) {
            table.insert_unique(hash, (key, record, Access::unbounded()), |(key, _, _)| {
                rehash(key)
            });
        }
        Shard {
            table,
            versions: std::mem::take(&mut self.versions),
            bound: self.bound.take(),
            timing: std::mem::replace(&mut self.timing, Timing::Off(Clock::System)),
            removals: std::mem::replace(&mut self.removals, Removals::new(None)),
            evicted: std::mem::take(&mut self.evicted),
        }
    }
}

impl<K: Eq, V, S: VersionScheme, A: RecordState> Shard<K, V, S, A> {
    /// The record of `key`, read as an access: a bounded shard's eviction policy counts
    /// it, and an expiring shard's time-to-idle restarts. An expired record is absent.
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (stored, record, state) = self.table.find(hash, |(k, _, _)| k.borrow() == key)?;
        if !A::TRACKED {
            return Some(record);
        }
        if let Some(timer) = self.timing.active() {
            if !timer.read(hash, state.ticket(), stored, &record.value) {
                return None;
            }
        }
        if let (Some(bound), Some(access)) = (&self.bound, state.access()) {
            bound.record_read(hash, access);
        }
        Some(record)
    }

    /// The record of `key`, without counting an access. An expired record is absent.
    #[inline]
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<&Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (_, record, state) = self.table.find(hash, |(k, _, _)| k.borrow() == key)?;
        if !A::TRACKED {
            return Some(record);
        }
        if let Some(timer) = self.timing.active() {
            if !timer.present(hash, state.ticket()) {
                return None;
            }
        }
        Some(record)
    }

    /// The stored copy of `key`, if it has a record.
    pub(crate) fn key<Q>(&self, hash: u64, key: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |(k, _, _)| k.borrow() == key)
            .map(|(k, _, _)| k)
    }

    /// Reclaims the record of `key` if it has expired; whether it did. Only the test of
    /// the timer is inline: a shard without one pays nothing more on its writes.
    #[inline]
    fn reclaim_expired<Q>(&mut self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        A::TRACKED && self.timing.active().is_some() && self.reclaim_if_expired(hash, key)
    }

    #[inline(never)]
    fn reclaim_if_expired<Q>(&mut self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(timer) = self.timing.active() else {
            return false;
        };
        let now = timer.now();
        let Ok(entry) = self.table.find_entry(hash, |(k, _, _)| k.borrow() == key) else {
            return false;
        };
        if !timer.expired(hash, entry.get().2.ticket(), now) {
            return false;
        }
        let (stored, _) = entry.remove();
        self.discard(hash, stored, RemovalCause::Expired);
        true
    }

    /// Finds the record for `key` and checks that it is at `expected`. An expired record
    /// is reclaimed and refused with [`Error::Expired`].
    fn find_current<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
    ) -> Result<Current<'_, K, V, S, A>, Error<Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.reclaim_expired(hash, key) {
            return Err(Error::Expired);
        }
        let (key, record, state) = self
            .table
            .find_mut(hash, |(k, _, _)| k.borrow() == key)
            .ok_or(Error::NotFound)?;
        check_version(record, expected)?;
        Ok(Current {
            versions: &mut self.versions,
            bound: &mut self.bound,
            timing: &mut self.timing,
            removals: &mut self.removals,
            hash,
            key,
            record,
            state,
        })
    }

    /// Puts a record restored from a snapshot into the shard as it was: its `version`,
    /// the time it has `remaining` (counted from now), and the reads its `heat` says it
    /// had. A bounded shard takes it only if it fits beside the records it holds: a
    /// restore never evicts. Leaves the version scheme alone (the restore resumes it
    /// once, for every shard), and the eviction listener and statistics hear nothing.
    #[cfg(feature = "snapshot")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        version: Version<S>,
        remaining: Remaining,
        heat: u8,
        rehash: impl Fn(&K) -> u64,
    ) -> Placed {
        let vacant = match self
            .table
            .entry(hash, |(k, _, _)| *k == key, |(k, _, _)| rehash(k))
        {
            Entry::Occupied(_) => return Placed::Repeated,
            Entry::Vacant(vacant) => vacant,
        };
        let mut access = match &mut self.bound {
            None => Access::unbounded(),
            Some(bound) => {
                if !bound.fits(&key, &value) {
                    return Placed::NoRoom;
                }
                match bound.admit(hash, &key, &value) {
                    Ok(mut access) => {
                        access.warm(heat);
                        access
                    }
                    Err(_) => return Placed::NoRoom,
                }
            }
        };
        if let Some(lifetime) = self.timing.restored(remaining) {
            start_timer(&self.bound, &mut self.timing, hash, &mut access, lifetime);
        }
        vacant.insert((key, Record { value, version }, A::adopt(access)));
        Placed::Loaded
    }

    /// Creates the record; refuses if the key is present (and not expired).
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>> {
        self.reclaim_expired(hash, &key);
        let (version, keep) =
            match self
                .table
                .entry(hash, |(k, _, _)| *k == key, |(k, _, _)| rehash(k))
            {
                Entry::Occupied(occupied) => {
                    return Err(Rejected {
                        error: Error::Exists {
                            current: occupied.get().1.version.clone(),
                        },
                        value,
                    })
                }
                Entry::Vacant(vacant) => create(
                    vacant,
                    &mut self.versions,
                    &mut self.bound,
                    &mut self.timing,
                    hash,
                    key,
                    value,
                    time_to_live,
                )?,
            };
        self.settle(keep);
        Ok(version)
    }

    /// Writes the record whatever its version, creating it if absent (or expired).
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>> {
        let (version, keep) = self.put_unsettled(hash, key, value, rehash, time_to_live)?;
        self.settle(keep);
        Ok(version)
    }

    /// [`put`](Shard::put) without evicting what the write brings over the bound: the
    /// new version, and the ticket a later [`settle_keeping`](Shard::settle_keeping)
    /// must keep.
    #[inline]
    pub(crate) fn put_unsettled(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        time_to_live: Option<Duration>,
    ) -> Result<Created<S>, Rejected<V, Version<S>>> {
        self.reclaim_expired(hash, &key);
        let created = match self
            .table
            .entry(hash, |(k, _, _)| *k == key, |(k, _, _)| rehash(k))
        {
            Entry::Occupied(occupied) => {
                let (key, record, state) = occupied.into_mut();
                let keep = self.bound.is_some().then(|| state.ticket());
                let current = Current {
                    versions: &mut self.versions,
                    bound: &mut self.bound,
                    timing: &mut self.timing,
                    removals: &mut self.removals,
                    hash,
                    key: &*key,
                    record,
                    state,
                };
                (overwrite(current, value, time_to_live)?, keep)
            }
            Entry::Vacant(vacant) => create(
                vacant,
                &mut self.versions,
                &mut self.bound,
                &mut self.timing,
                hash,
                key,
                value,
                time_to_live,
            )?,
        };
        Ok(created)
    }

    /// Refuses `records` written together by a transaction if they weigh more, together,
    /// than a bounded shard holds.
    pub(crate) fn fits_together<'a>(
        &self,
        records: impl Iterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), TooHeavy>
    where
        K: 'a,
        V: 'a,
    {
        self.bound
            .as_ref()
            .map_or(Ok(()), |bound| bound.fits_together(records))
    }

    /// Replaces the value if the record is at `expected`, computing the new value from
    /// the current one. `compute` runs only after the version check passed; its error
    /// leaves the record as it was.
    pub(crate) fn update_with<Q, E>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        compute: impl FnOnce(&V) -> Result<V, E>,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, UpdateWithError<Version<S>, E>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let current = self.find_current(hash, key, expected)?;
        let value = compute(&current.record.value).map_err(UpdateWithError::Closure)?;
        let keep = Some(current.state.ticket());
        let version = overwrite(current, value, time_to_live).map_err(|rejected| rejected.error)?;
        self.settle(keep);
        Ok(version)
    }

    /// Replaces the value if the record is at `expected`.
    pub(crate) fn update<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        value: V,
        time_to_live: Option<Duration>,
    ) -> Result<Version<S>, Rejected<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (version, keep) = match self.find_current(hash, key, expected) {
            Ok(current) => {
                let keep = Some(current.state.ticket());
                (overwrite(current, value, time_to_live)?, keep)
            }
            Err(error) => return Err(Rejected { error, value }),
        };
        self.settle(keep);
        Ok(version)
    }

    /// Removes the record if it is at `expected`, returning its value. An expired record
    /// is reclaimed and refused with [`Error::Expired`].
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
    ) -> Result<V, Error<Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.reclaim_expired(hash, key) {
            return Err(Error::Expired);
        }
        let entry = self
            .table
            .find_entry(hash, |(k, _, _)| k.borrow() == key)
            .map_err(|_| Error::NotFound)?;
        check_version(&entry.get().1, expected)?;
        let (stored, _) = entry.remove();
        Ok(self.removed(hash, stored).value)
    }

    /// Removes the record of `key` whatever its version: the blind removal. Its value and
    /// version; `None` if there was none (an expired one is reclaimed, and counts as none).
    pub(crate) fn invalidate<Q>(&mut self, hash: u64, key: &Q) -> Option<Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.reclaim_expired(hash, key) {
            return None;
        }
        let entry = self
            .table
            .find_entry(hash, |(k, _, _)| k.borrow() == key)
            .ok()?;
        let (stored, _) = entry.remove();
        Some(self.removed(hash, stored))
    }

    /// What follows a caller's removal of a record taken out of the table: its versions
    /// retired, its eviction and expiry state forgotten, the listener told.
    fn removed(
        &mut self,
        hash: u64,
        (key, record, state): Stored<K, V, Version<S>, A>,
    ) -> Record<V, Version<S>> {
        self.untrack(hash, &key, &record, &state);
        self.removals.push_removed(key, &record.value);
        self.settle(None);
        record
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::parts::clock::Clock;
    use crate::store::parts::eviction::Weigher;
    use crate::store::reentry::UnderLock;
    use crate::version::Counter;

    /// A fixed, well-spread hash: the tests need no randomness.
    fn hash(key: &u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
    }

    fn bounded(
        capacity: u64,
        weigher: Option<Weigher<u64, u64>>,
    ) -> Shard<u64, u64, Counter, Access> {
        Shard::new(
            0,
            Some(Evictor::new(
                capacity,
                weigher.map(|weigher| UnderLock::new(0, weigher)),
            )),
            Timing::Off(Clock::System),
            Removals::new(None),
        )
    }

    /// The replay rule of the hit-ratio report: read, and write on a miss.
    fn access(shard: &mut Shard<u64, u64, Counter, Access>, key: u64) -> bool {
        if shard.get(hash(&key), &key).is_some() {
            return true;
        }
        shard.put(hash(&key), key, key, hash, None).unwrap();
        false
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut shard = bounded(100, None);
        for key in 0..10_000 {
            shard.insert(hash(&key), key, key, hash, None).unwrap();
            assert!(shard.len() <= 100);
        }
        assert_eq!(shard.len(), 100);
    }

    #[test]
    fn an_evicted_record_retires_its_versions() {
        let mut shard = bounded(1, None);
        let first = shard.insert(hash(&1), 1, 1, hash, None).unwrap();
        let second = shard.update(hash(&1), &1, &first, 2, None).unwrap();
        // Key 2 evicts key 1 at version 2.
        shard.insert(hash(&2), 2, 2, hash, None).unwrap();
        assert!(shard.get(hash(&1), &1).is_none());
        let again = shard.insert(hash(&1), 1, 3, hash, None).unwrap();
        assert!(again > second, "version {again} after evicting at {second}");
    }

    #[test]
    fn records_read_repeatedly_survive_a_scan() {
        let mut shard = bounded(100, None);
        let hot: Vec<u64> = (0..50).collect();
        for _ in 0..3 {
            for &key in &hot {
                access(&mut shard, key);
            }
        }
        // A scan of 10,000 keys read once each, with the hot keys read now and then.
        for key in 1_000..11_000 {
            access(&mut shard, key);
            if key % 100 == 0 {
                for &hot_key in &hot {
                    access(&mut shard, hot_key);
                }
            }
        }
        let kept = hot
            .iter()
            .filter(|&&key| shard.peek(hash(&key), &key).is_some())
            .count();
        assert!(kept >= 45, "only {kept} of 50 hot keys survived the scan");
    }

    #[test]
    fn a_key_frequency_brings_back_skips_the_window() {
        // A full shard of keys read since they came in, so that the admission turns away
        // what is read less.
        let mut shard = bounded(100, None);
        for _ in 0..4 {
            for key in 0..100 {
                access(&mut shard, key);
            }
        }
        // A key requested again and again, each time after the window let it go unread:
        // once it comes back frequent it goes straight to the main queue, and the cold keys
        // that follow it through the window no longer push it out.
        let returning = 1_000_000;
        let mut cold = 10_000..;
        for round in 0..6 {
            access(&mut shard, returning);
            for key in cold.by_ref().take(30) {
                access(&mut shard, key);
            }
            if round >= 3 {
                assert!(
                    shard.peek(hash(&returning), &returning).is_some(),
                    "the returning key was evicted in round {round}"
                );
            }
        }
    }

    #[test]
    fn a_loop_bigger_than_the_capacity_still_hits() {
        // LRU and FIFO hit nothing here: each key is evicted just before it comes back.
        let mut shard = bounded(500, None);
        let mut hits = 0;
        for _ in 0..20 {
            for key in 0..1_000 {
                hits += u32::from(access(&mut shard, key));
            }
        }
        assert!(hits > 20 * 1_000 / 4, "{hits} hits in 20,000 requests");
    }

    #[test]
    fn a_record_that_could_never_fit_is_refused_and_handed_back() {
        let mut empty = bounded(0, None);
        let refused = empty.insert(hash(&1), 1, 7, hash, None).unwrap_err();
        assert_eq!(
            refused.error,
            Error::TooHeavy {
                weight: 1,
                capacity: 0
            }
        );
        assert_eq!(refused.value, 7);
        assert_eq!(empty.put(hash(&1), 1, 7, hash, None).unwrap_err().value, 7);
        assert_eq!(empty.len(), 0);

        let by_value: Weigher<u64, u64> = Arc::new(|_, value| *value as u32);
        let mut weighted = bounded(10, Some(by_value));
        let version = weighted.insert(hash(&1), 1, 4, hash, None).unwrap();
        let refused = weighted
            .update(hash(&1), &1, &version, 11, None)
            .unwrap_err();
        assert_eq!(
            refused.error,
            Error::TooHeavy {
                weight: 11,
                capacity: 10
            }
        );
        assert_eq!(refused.value, 11);
        let record = weighted.peek(hash(&1), &1).unwrap();
        assert_eq!((record.value, record.version), (4, version));
    }

    #[test]
    fn a_record_grown_by_a_write_evicts_others_not_itself() {
        let by_value: Weigher<u64, u64> = Arc::new(|_, value| *value as u32);
        let mut shard = bounded(10, Some(by_value));
        for key in 0..5 {
            shard.insert(hash(&key), key, 2, hash, None).unwrap();
        }
        let version = shard.peek(hash(&4), &4).unwrap().version;
        shard.update(hash(&4), &4, &version, 9, None).unwrap();
        assert_eq!(shard.peek(hash(&4), &4).unwrap().value, 9);
        let total: u64 = shard.iter(hash).map(|(_, record)| record.value).sum();
        assert!(total <= 10, "weight {total} over 10");
    }

    #[test]
    fn removals_do_not_grow_the_queues() {
        let mut shard = bounded(1_000, None);
        for round in 0..10_000u64 {
            let key = round % 10;
            let version = shard.insert(hash(&key), key, round, hash, None).unwrap();
            shard.remove(hash(&key), &key, &version).unwrap();
        }
        assert_eq!(shard.len(), 0);
        let bound = shard.bound.as_ref().unwrap();
        assert!(bound.queued() <= 64, "{bound:?}");
    }

    #[test]
    fn removed_records_leave_the_timer() {
        let clock = crate::ManualClock::new();
        let expiring = crate::store::parts::expiry::Expiration {
            clock: clock.clone().into(),
            time_to_live: Some(std::time::Duration::from_secs(3600)),
            ..Default::default()
        };
        let mut shard: Shard<u64, u64, Counter, Access> =
            Shard::new(0, None, expiring.shard(0), Removals::new(None));
        for round in 0..10_000u64 {
            let key = round % 10;
            let version = shard.insert(hash(&key), key, round, hash, None).unwrap();
            shard.remove(hash(&key), &key, &version).unwrap();
        }
        let timer = shard.timing.active().unwrap();
        assert_eq!(timer.tracked(), 0, "{timer:?}");
    }

    #[test]
    fn many_records_expire_each_at_its_own_time() {
        use std::collections::HashMap;
        use std::time::Duration;

        let clock = crate::ManualClock::new();
        let expiring = crate::store::parts::expiry::Expiration {
            clock: clock.clone().into(),
            ..Default::default()
        };
        let mut shard: Shard<u64, u64, Counter, Access> =
            Shard::new(0, None, expiring.shard(0), Removals::new(None));
        // key -> (version, expires at, in seconds; None: never)
        let mut alive: HashMap<u64, (u64, Option<u64>)> = HashMap::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for second in 0..200u64 {
            for _ in 0..20 {
                let key = next(500);
                let ttl = match next(4) {
                    0 => None,
                    n => Some(n * 3),
                };
                let time_to_live = Some(ttl.map_or(Duration::MAX, Duration::from_secs));
                if next(5) == 0 {
                    if let Some((version, _)) = alive.remove(&key) {
                        shard.remove(hash(&key), &key, &version).unwrap();
                    }
                    continue;
                }
                let version = shard
                    .put(hash(&key), key, second, hash, time_to_live)
                    .unwrap();
                alive.insert(key, (version, ttl.map(|ttl| second + ttl)));
            }
            clock.advance(Duration::from_secs(1));
            alive.retain(|_, (_, expires)| expires.is_none_or(|at| at > second + 1));
            for key in 0..500 {
                let found = shard.peek(hash(&key), &key).map(|record| record.version);
                assert_eq!(
                    found,
                    alive.get(&key).map(|(v, _)| *v),
                    "key {key} at {second}"
                );
            }
            let tracked = shard.timing.active().unwrap().tracked();
            assert!(
                tracked <= shard.len(),
                "{tracked} deadlines for {} records",
                shard.len()
            );
        }
    }
}
