//! The statistics as plain data: what [`Store::stats`](crate::Store::stats) answers.

use std::fmt;
use std::time::Duration;

/// What a store did since it was built (or, from [`since`](Stats::since), between two
/// snapshots), and what it holds now.
///
/// Counts are gathered shard by shard and thread by thread without stopping anybody:
/// while other threads work, a snapshot is recent, not one instant's. Every read
/// ([`get`](crate::Store::get), [`version`](crate::Store::version),
/// [`contains_key`](crate::Store::contains_key), and the reads inside
/// [`get_or_load`](crate::Store::get_or_load), retries and waits for a change) is a hit
/// or a miss; every write attempt is counted once, as done or by why it was refused.
///
/// # Examples
///
/// ```
/// use verkv::Store;
///
/// let store: Store<&str, u32> = Store::builder().statistics(true).build();
/// let v1 = store.insert("a", 1).unwrap();
/// store.get(&"a");
/// store.get(&"b");
/// assert!(store.update(&"a", &2, 3).is_err()); // stale: a is at version 1
/// let before = store.stats().unwrap();
/// assert_eq!((before.hits, before.misses, before.inserts), (1, 1, 1));
/// assert_eq!(before.refusals.stale, 1);
/// assert_eq!(before.hit_ratio(), Some(0.5));
///
/// store.update(&"a", &v1, 2).unwrap();
/// let delta = store.stats().unwrap().since(&before);
/// assert_eq!((delta.updates, delta.inserts, delta.entries), (1, 0, 1));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Loads run by [`get_or_load`](crate::Store::get_or_load) and its kin.
    pub loads: Loads,
    /// Records created by `insert` (and `insert_or_current`).
    pub inserts: u64,
    /// Records changed under the version check: `update`, `update_with`, `patch`.
    pub updates: u64,
    /// Blind writes (`put`). (A load writes its record without counting here.)
    pub puts: u64,
    /// Records removed by `remove`.
    pub removes: u64,
    /// Records removed by the blind [`invalidate`](crate::Store::invalidate) (a call that
    /// found nothing is not counted).
    pub invalidations: u64,
    /// Transactions committed ([`Store::commit`](crate::Store::commit) and the
    /// transactions of [`transact`](crate::Store::transact)). Their writes are counted
    /// here, not as inserts, updates, puts or removes.
    pub transactions: u64,
    /// Transactions refused because a condition failed (their keys count among the
    /// [hottest conflicting keys](crate::Store::stats_top_conflicts)).
    pub transaction_conflicts: u64,
    /// Writes refused, by reason.
    pub refusals: Refusals,
    /// Bounded operations whose deadline passed, by where they were.
    pub timeouts: Timeouts,
    /// Bounded operations stopped by their [`CancelToken`](crate::CancelToken).
    pub cancellations: u64,
    /// Records that left without a caller removing them, by cause.
    pub evictions: Evictions,
    /// Records held now.
    pub entries: u64,
    /// What they weigh now: by the [weigher](crate::StoreBuilder::weigher) in a
    /// bounded store, else one each.
    pub weight: u64,
    /// Writers that queued for a shard lock, and for how long.
    pub lock_waits: LockWaits,
    /// Stale refusals per shard (index = shard), where writers fought.
    pub conflicts_per_shard: Vec<u64>,
}

/// Loads: how many ran, how they ended, how long they took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loads {
    /// Loads that returned a value.
    pub succeeded: u64,
    /// Loads that returned an error.
    pub failed: u64,
    /// Loads that panicked, or whose future ([`get_or_load_async`](crate::Store::get_or_load_async))
    /// was dropped before it finished. Nothing was written.
    pub abandoned: u64,
    /// Time spent in loads, summed.
    pub total_time: Duration,
    /// The longest load since the store was built (not reduced by [`Stats::since`]).
    pub max_time: Duration,
}

/// Writes refused, by reason. A refused write changed nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// Based on a version that was no longer current ([`Error::Stale`](crate::Error::Stale)):
    /// the conflicts.
    pub stale: u64,
    /// The key had no record ([`Error::NotFound`](crate::Error::NotFound)), or only an
    /// expired one ([`Error::Expired`](crate::Error::Expired)).
    pub not_found: u64,
    /// A create found the key present ([`Error::Exists`](crate::Error::Exists)).
    pub exists: u64,
    /// A closure returned an error, or a patch refused or changed nothing.
    pub declined: u64,
    /// The record could not fit a bounded store ([`Error::TooHeavy`](crate::Error::TooHeavy)).
    pub too_heavy: u64,
}

/// Timeouts by [`Phase`](crate::Phase), counted where the wait gave up: a retry loop
/// whose wait for the lock times out counts as queued (its error says retrying).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Queued for a shard lock.
    pub queued: u64,
    /// Between the attempts of a retry loop.
    pub retrying: u64,
    /// Waiting for a record to change.
    pub watching: u64,
    /// Waiting for another caller's load.
    pub loading: u64,
}

/// Records that left a store without a caller removing them, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Evictions {
    /// Evicted to keep a bounded store within its capacity.
    pub capacity: u64,
    /// Expired.
    pub expired: u64,
}

impl Evictions {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.capacity + self.expired
    }

    /// Adds another shard's counts, cause by cause.
    pub(crate) fn add(&mut self, other: &Evictions) {
        self.capacity += other.capacity;
        self.expired += other.expired;
    }
}

/// How many log2 buckets the lock-wait histogram has: bucket `i` counts waits of
/// `2^i` to `2^(i+1)` nanoseconds, the last one everything longer (2^39 ns is about 9
/// minutes).
pub const LOCK_WAIT_BUCKETS: usize = 40;

/// Writers that did not get their shard's lock at once: how many, how long they
/// queued, and a log2 histogram of the waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockWaits {
    /// How many writers queued.
    pub count: u64,
    /// Time they spent queued, summed.
    pub total: Duration,
    /// The longest wait since the store was built (not reduced by [`Stats::since`]).
    pub max: Duration,
    /// `buckets[i]` counts waits of 2^i to 2^(i+1) nanoseconds; the last bucket also
    /// every longer one.
    pub buckets: [u64; LOCK_WAIT_BUCKETS],
}

impl Default for LockWaits {
    fn default() -> Self {
        LockWaits {
            count: 0,
            total: Duration::ZERO,
            max: Duration::ZERO,
            buckets: [0; LOCK_WAIT_BUCKETS],
        }
    }
}

impl Stats {
    /// Hits over reads, or `None` before the first read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let reads = self.hits + self.misses;
        (reads > 0).then(|| self.hits as f64 / reads as f64)
    }

    /// What happened between `earlier` and this snapshot: counts and sums are
    /// differences; what the store holds (entries, weight) and the maxima are this
    /// snapshot's.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let minus = |now: u64, then: u64| now.saturating_sub(then);
        let time = |now: Duration, then: Duration| now.saturating_sub(then);
        Stats {
            hits: minus(self.hits, earlier.hits),
            misses: minus(self.misses, earlier.misses),
            loads: Loads {
                succeeded: minus(self.loads.succeeded, earlier.loads.succeeded),
                failed: minus(self.loads.failed, earlier.loads.failed),
                abandoned: minus(self.loads.abandoned, earlier.loads.abandoned),
                total_time: time(self.loads.total_time, earlier.loads.total_time),
                max_time: self.loads.max_time,
            },
            inserts: minus(self.inserts, earlier.inserts),
            updates: minus(self.updates, earlier.updates),
            puts: minus(self.puts, earlier.puts),
            removes: minus(self.removes, earlier.removes),
            invalidations: minus(self.invalidations, earlier.invalidations),
            transactions: minus(self.transactions, earlier.transactions),
            transaction_conflicts: minus(self.transaction_conflicts, earlier.transaction_conflicts),
            refusals: Refusals {
                stale: minus(self.refusals.stale, earlier.refusals.stale),
                not_found: minus(self.refusals.not_found, earlier.refusals.not_found),
                exists: minus(self.refusals.exists, earlier.refusals.exists),
                declined: minus(self.refusals.declined, earlier.refusals.declined),
                too_heavy: minus(self.refusals.too_heavy, earlier.refusals.too_heavy),
            },
            timeouts: Timeouts {
                queued: minus(self.timeouts.queued, earlier.timeouts.queued),
                retrying: minus(self.timeouts.retrying, earlier.timeouts.retrying),
                watching: minus(self.timeouts.watching, earlier.timeouts.watching),
                loading: minus(self.timeouts.loading, earlier.timeouts.loading),
            },
            cancellations: minus(self.cancellations, earlier.cancellations),
            evictions: Evictions {
                capacity: minus(self.evictions.capacity, earlier.evictions.capacity),
                expired: minus(self.evictions.expired, earlier.evictions.expired),
            },
            entries: self.entries,
            weight: self.weight,
            lock_waits: LockWaits {
                count: minus(self.lock_waits.count, earlier.lock_waits.count),
                total: time(self.lock_waits.total, earlier.lock_waits.total),
                max: self.lock_waits.max,
                buckets: std::array::from_fn(|i| {
                    minus(self.lock_waits.buckets[i], earlier.lock_waits.buckets[i])
                }),
            },
            conflicts_per_shard: self
                .conflicts_per_shard
                .iter()
                .enumerate()
                .map(|(shard, &now)| {
                    minus(
                        now,
                        earlier.conflicts_per_shard.get(shard).copied().unwrap_or(0),
                    )
                })
                .collect(),
        }
    }
}

impl fmt::Display for Stats {
    /// A few lines for a log or a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = self
            .hit_ratio()
            .map_or_else(|| "-".to_string(), |ratio| format!("{:.1}%", ratio * 100.0));
        writeln!(
            f,
            "reads: {} hits, {} misses (hit ratio {ratio})",
            self.hits, self.misses
        )?;
        writeln!(
            f,
            "loads: {} succeeded, {} failed, {} abandoned, {:?} in total, {:?} at most",
            self.loads.succeeded,
            self.loads.failed,
            self.loads.abandoned,
            self.loads.total_time,
            self.loads.max_time
        )?;
        writeln!(
            f,
            "writes: {} inserts, {} updates, {} puts, {} removes, {} invalidations",
            self.inserts, self.updates, self.puts, self.removes, self.invalidations
        )?;
        writeln!(
            f,
            "transactions: {} committed, {} refused for conflict",
            self.transactions, self.transaction_conflicts
        )?;
        let refused = &self.refusals;
        writeln!(
            f,
            "refused: {} stale, {} not found, {} exists, {} declined, {} too heavy",
            refused.stale, refused.not_found, refused.exists, refused.declined, refused.too_heavy
        )?;
        let timeouts = &self.timeouts;
        writeln!(
            f,
            "stopped: {} timed out queued, {} retrying, {} watching, {} loading; {} cancelled",
            timeouts.queued,
            timeouts.retrying,
            timeouts.watching,
            timeouts.loading,
            self.cancellations
        )?;
        writeln!(
            f,
            "evicted: {} for capacity, {} expired; holding {} entries weighing {}",
            self.evictions.capacity, self.evictions.expired, self.entries, self.weight
        )?;
        let conflicted = self.conflicts_per_shard.iter().filter(|&&n| n > 0).count();
        write!(
            f,
            "lock waits: {} writers queued, {:?} in total, {:?} at most; conflicts in {} of {} shards",
            self.lock_waits.count,
            self.lock_waits.total,
            self.lock_waits.max,
            conflicted,
            self.conflicts_per_shard.len()
        )
    }
}
