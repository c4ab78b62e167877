//! Applies a transaction: the shard locks it needs, in increasing shard index; every
//! condition checked; every write applied; the locks let go; then the wakeups and the
//! eviction listener, outside every lock.

use std::hash::{BuildHasher, Hash};
use std::mem;
use std::time::Duration;

use smallvec::SmallVec;

use super::error::{Conflict, TransactionError, TransactionRefused};
use super::plan::{Placed, Plan, INLINE};
use super::request::{Committed, Expect, Outcome, Step, Transaction};
use crate::deadline::{Forever, Wait};
use crate::stats::counters::Event;
use crate::store::facade::take_write;
use crate::store::records::Records;
use crate::store::reentry::reentering;
use crate::store::tally::count_event;
use crate::store::LockedShard;
use crate::store::Store;
use crate::sync::WriteGuard;
use crate::version::VersionScheme;

type Refused<K, V, S> = TransactionRefused<K, V, <S as VersionScheme>::Version>;

/// The steps of a transaction being applied, each turning into its outcome, and the
/// time-to-live the writes give their records.
type Writing<'a, K, V, S> = (
    &'a mut [Slot<K, V, <S as VersionScheme>::Version>],
    Option<Duration>,
);

/// One step of a transaction being applied: still to apply, or what it did. The steps
/// turn into their outcomes in the transaction's own allocation, and the outcomes are
/// collected from it in place.
enum Slot<K, V, Ver> {
    Pending(Step<K, V, Ver>),
    Done(Outcome<Ver>),
}

impl<K, V, Ver> Slot<K, V, Ver> {
    /// The key and value of a write still to apply, taken out; `None` for any other slot.
    fn take_write(&mut self) -> Option<(K, V)> {
        if !matches!(
            self,
            Slot::Pending(Step::Put { .. } | Step::Update { .. } | Step::Create { .. })
        ) {
            return None;
        }
        match mem::replace(self, Slot::Done(Outcome::Compared)) {
            Slot::Pending(
                Step::Put { key, value }
                | Step::Update { key, value, .. }
                | Step::Create { key, value },
            ) => Some((key, value)),
            _ => unreachable!("the slot was matched as a write"),
        }
    }

    /// What the step did, once the transaction is applied: a compare is left pending.
    fn outcome(self) -> Outcome<Ver> {
        match self {
            Slot::Done(outcome) => outcome,
            Slot::Pending(Step::Compare { .. }) => Outcome::Compared,
            Slot::Pending(_) => unreachable!("every write of a committed transaction is applied"),
        }
    }
}

/// The write locks a transaction holds, in the order of its plan's shards.
type Locked<'a, K, V, S> = SmallVec<[WriteGuard<'a, Records<K, V, S>>; INLINE]>;

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq + Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Applies every step of `transaction` if every condition holds, and otherwise
    /// nothing: compare-and-swap across keys (etcd's `Txn`). Returns what each step did,
    /// in the order of the steps: a write's new version.
    ///
    /// The transaction takes effect at one instant: no read, [`get_many`](Store::get_many)
    /// or other transaction sees some of its writes without the others. A condition on a
    /// record that has expired finds no record. In a bounded store the writes may evict
    /// other records, never one the transaction wrote. The
    /// [eviction listener](crate::StoreBuilder::eviction_listener) hears of the records
    /// it replaced or removed once, after the locks are let go; the statistics count it in
    /// [`transactions`](crate::Stats::transactions) (its writes are not counted as single
    /// writes) and a refusal for conflict in
    /// [`transaction_conflicts`](crate::Stats::transaction_conflicts), with the keys in
    /// the [hot keys](crate::StoreBuilder::hot_keys).
    ///
    /// # Errors
    ///
    /// The transaction comes back in a [`TransactionRefused`], unapplied, with:
    /// [`TransactionError::Conflict`] naming every condition that failed and the
    /// record's current version; [`Empty`](TransactionError::Empty) or
    /// [`Repeated`](TransactionError::Repeated) for bad input;
    /// [`TooHeavy`](TransactionError::TooHeavy) if a bounded store's shard could not hold
    /// all the transaction writes to it; [`Reentrant`](TransactionError::Reentrant) if
    /// called from inside a closure this store runs.
    ///
    /// # Locking behaviour
    ///
    /// Takes the write lock of every shard its keys are in, in increasing shard index
    /// (one global order: two transactions never wait for each other in a cycle), holds
    /// them while it checks and writes, and lets them all go. Keys that share a shard
    /// cost that shard's lock once. Waits as long as it takes; a
    /// [`Bounded`](crate::Bounded) view's deadline covers the time queued on every shard.
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Conflict, Expect, Store, Transaction, TransactionError};
    ///
    /// let store: Store<&str, i64> = Store::new();
    /// let alice = store.insert("alice", 100).unwrap();
    /// let bob = store.insert("bob", 0).unwrap();
    /// store.update(&"bob", &bob, 5).unwrap(); // someone else wrote bob
    ///
    /// let refused = store
    ///     .commit(Transaction::new().update("alice", alice, 70).update("bob", bob, 30))
    ///     .unwrap_err();
    /// let stale = Conflict { key: "bob", expected: Expect::Version(1), current: Some(2) };
    /// assert_eq!(refused.error, TransactionError::Conflict(vec![stale]));
    /// assert_eq!(store.get(&"alice").unwrap().value, 100); // nothing applied
    /// ```
    pub fn commit(
        &self,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, Refused<K, V, S>> {
        self.commit_in(&Forever, transaction)
    }

    pub(crate) fn commit_in<W: Wait>(
        &self,
        wait: &W,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, Refused<K, V, S>> {
        let refuse = |error, transaction| Err(TransactionRefused { error, transaction });
        if reentering(self.id()) {
            return refuse(TransactionError::Reentrant, transaction);
        }
        let plan = match Plan::new(self, &transaction.steps) {
            Ok(plan) => plan,
            Err(error) => return refuse(error, transaction),
        };
        let wait = wait.fixed();
        let mut locked: Locked<'_, K, V, S> = SmallVec::new();
        for (index, _) in plan.by_shard() {
            match take_write(&wait, &self.shards()[index]) {
                Ok(guard) => locked.push(guard),
                Err(stop) => {
                    let locked = locked.len();
                    let stopped = stop.into();
                    let error = TransactionError::Interrupted {
                        stopped,
                        locked,
                        shards: plan.shards(),
                    };
                    return refuse(error, transaction);
                }
            }
        }
        let checked = self
            .check(&plan, &transaction.steps, |position| &*locked[position])
            .and_then(|()| {
                plan.by_shard()
                    .zip(locked.iter())
                    .try_for_each(|((_, placed), records)| {
                        check_weight(records, &transaction.steps, placed)
                    })
            });
        let first = &self.shards()[plan.by_shard().next().expect("a step").0];
        if let Err(error) = checked {
            drop(locked);
            if matches!(error, TransactionError::Conflict(_)) {
                count_event(first, Event::TransactionConflict);
            }
            return refuse(error, transaction);
        }
        let mut slots: Vec<_> = transaction.steps.into_iter().map(Slot::Pending).collect();
        let writing = (&mut slots[..], wait.time_to_live());
        #[cfg(not(verkv_mutant = "txn_one_at_a_time"))]
        self.apply_locked(&plan, locked, writing);
        #[cfg(verkv_mutant = "txn_one_at_a_time")]
        self.apply_one_at_a_time(&plan, locked, writing);
        count_event(first, Event::Transaction);
        Ok(slots.into_iter().map(Slot::outcome).collect())
    }

    /// Applies every step under the locks the transaction holds (`locked`, in the order
    /// of the plan's shards), lets go of them all, then wakes the watchers of those
    /// shards and tells the eviction listener what left them.
    #[cfg_attr(verkv_mutant = "txn_one_at_a_time", allow(dead_code))]
    fn apply_locked(
        &self,
        plan: &Plan,
        mut locked: Locked<'_, K, V, S>,
        (slots, time_to_live): Writing<'_, K, V, S>,
    ) {
        // Only shards with watchers or removals to tell need a line here: usually none.
        let mut after = Vec::new();
        for ((index, placed), records) in plan.by_shard().zip(locked.iter_mut()) {
            self.apply(records, placed, slots, time_to_live);
            let shard = &self.shards()[index];
            // Asked under the lock: see `ChangeEvent` for why that is enough.
            let watched = shard.changed.has_watchers();
            let removed = records.take_removals();
            if watched || removed.is_some() {
                after.push((shard, watched, removed));
            }
        }
        drop(locked);
        for (shard, watched, removed) in after {
            if watched {
                shard.changed.notify();
            }
            if let Some(removed) = removed {
                removed.deliver();
            }
        }
    }

    /// The `txn_one_at_a_time` mutant: the conditions were checked under every lock, but
    /// the writes go in one key at a time, each under its own shard's lock alone.
    #[cfg(verkv_mutant = "txn_one_at_a_time")]
    fn apply_one_at_a_time(
        &self,
        plan: &Plan,
        locked: Locked<'_, K, V, S>,
        (slots, time_to_live): Writing<'_, K, V, S>,
    ) {
        drop(locked);
        for (index, placed) in plan.by_shard() {
            for place in placed {
                let shard = &self.shards()[index];
                let one = std::slice::from_ref(place);
                let Ok(()) = crate::store::write_shard(&Forever, shard, (), |records, ()| {
                    self.apply(records, one, slots, time_to_live);
                });
                // Widen the gap between two keys' writes, as a busy machine would.
                std::thread::yield_now();
            }
        }
    }

    /// Checks every condition against the locked shards (`records` gives the one at a
    /// position of the plan's shards): every one that fails, in the order of the steps,
    /// with its key counted among the hot conflicting keys.
    fn check<'r>(
        &self,
        plan: &Plan,
        steps: &[Step<K, V, S::Version>],
        records: impl Fn(usize) -> &'r Records<K, V, S>,
    ) -> Result<(), TransactionError<K, S::Version>>
    where
        K: 'r,
        V: 'r,
        S: 'r,
    {
        let mut conflicts = Vec::new();
        for (position, (index, placed)) in plan.by_shard().enumerate() {
            let records = records(position);
            for place in placed {
                let step = &steps[place.step];
                let Some(expected) = step.condition() else {
                    continue;
                };
                let current = records
                    .peek(place.hash, step.key())
                    .map(|record| &record.version);
                if expected.holds(current.as_ref()) {
                    continue;
                }
                let shard: &LockedShard<K, V, S> = &self.shards()[index];
                if let Some(counters) = shard.counters.as_deref() {
                    counters.conflict(step.key());
                }
                let expected = match expected {
                    Expect::Version(version) => Expect::Version(version.clone()),
                    Expect::Absent => Expect::Absent,
                };
                let conflict = Conflict {
                    key: step.key().clone(),
                    expected,
                    current: current.cloned(),
                };
                conflicts.push((place.step, conflict));
            }
        }
        if conflicts.is_empty() {
            return Ok(());
        }
        conflicts.sort_unstable_by_key(|&(step, _)| step);
        Err(TransactionError::Conflict(
            conflicts
                .into_iter()
                .map(|(_, conflict)| conflict)
                .collect(),
        ))
    }

    /// Applies the steps `placed` (all on the shard `records`), their conditions checked:
    /// removals first, then writes, then one eviction pass that keeps every record
    /// written. Each applied step's slot becomes its outcome.
    fn apply(
        &self,
        records: &mut Records<K, V, S>,
        placed: &[Placed],
        slots: &mut [Slot<K, V, S::Version>],
        time_to_live: Option<Duration>,
    ) {
        for place in placed {
            let slot = &mut slots[place.step];
            if let Slot::Pending(Step::Remove { key, .. }) = slot {
                // Checked present under this lock; if it expired since, it is gone all
                // the same.
                records.invalidate(place.hash, key);
                *slot = Slot::Done(Outcome::Removed);
            }
        }
        let mut kept = Vec::new();
        for place in placed {
            let slot = &mut slots[place.step];
            let Some((key, value)) = slot.take_write() else {
                continue;
            };
            // The condition held under this lock, so the blind write does what the
            // conditional one would (an update's record that expired meanwhile is
            // written afresh, as at the instant it was checked); the weights were
            // checked to fit.
            match records.put_unsettled(place.hash, key, value, self.rehash(), time_to_live) {
                Ok((version, ticket)) => {
                    *slot = Slot::Done(Outcome::Written(version));
                    kept.extend(ticket);
                }
                Err(_) => unreachable!("the transaction's records were weighed to fit"),
            }
        }
        records.settle_keeping(|ticket| kept.contains(&ticket));
    }
}

/// Refuses the writes `placed` to the shard `records` if a bounded shard could not hold
/// them all.
fn check_weight<K: Eq, V, S: VersionScheme>(
    records: &Records<K, V, S>,
    steps: &[Step<K, V, S::Version>],
    placed: &[Placed],
) -> Result<(), TransactionError<K, S::Version>> {
    let written = placed
        .iter()
        .filter_map(|place| Some((steps[place.step].key(), steps[place.step].value()?)));
    records
        .fits_together(written)
        .map_err(|too_heavy| TransactionError::TooHeavy {
            weight: too_heavy.weight,
            capacity: too_heavy.capacity,
        })
}
