//! Eviction for a bounded shard: an adaptive FIFO window, TinyLFU admission and a main
//! CLOCK. What the policy does is described once, for users, in the crate documentation
//! ("The eviction policy"); how it was chosen, in `docs/benchmarks/policy.md`. This
//! module's notes are about how it is built.
//!
//! **Which returns count.** The ghost stamps each key it remembers with the weight the
//! window had let go by then (the ghost's clock), so a key that comes back tells how far
//! behind the window's head it was: how much bigger the window would have had to be to
//! keep it. Only a key within the window's ceiling counts as a ghost return; one from
//! further back (a loop longer than the ceiling, a scan) is treated as a new key, since no
//! window the limits allow would have kept it. The clock counts weight in units of at
//! most 1/2048 of the capacity (one record's weight, for a shard of fewer than 4096), so
//! its 16-bit stamps wrap only after sixteen capacities' worth of evictions or more.
//!
//! **The window's growth.** A ghost return that is rare grows the window by one and a half
//! times its weight; one that is frequent shrinks it by its weight. (Growing by twice the
//! weight gave the window more room than the frequency-heavy traces could afford, and by
//! once less than the recency-heavy ones need: see `docs/benchmarks/policy.md`.) The
//! window starts at 1% of the capacity and stays between 1% and 50%.
//!
//! **Frequent returns skip the window.** A ghost return that is frequent is a key the
//! admission turned away and should have kept: it goes straight to the back of the main
//! queue (S3-FIFO's ghost rule, kept to the keys the sketch knows as frequent and that
//! come back within the window's reach).
//!
//! **What a read costs.** A read records an access under the shard's *read* lock,
//! through relaxed atomics written only when they change: a saturating count (0 to 3)
//! in a byte of the record and, while that count climbs, the key's four 4-bit counters
//! in one word of the sketch. A key read over and over stops writing after three reads,
//! and stops touching the sketch too, until its record next passes the head of its
//! queue: hot keys' reads stay reads, and cost a plain read plus one byte's load.
//!
//! **Finding a queued record.** A queue holds the record's hash and a ticket (a per-shard
//! number given to each new record, kept in the record). Records removed by the user
//! leave their slot behind; a slot whose ticket no record has any more is skipped, and
//! the queues are compacted when such slots outnumber the records.

use crate::sync::{AtomicU64, AtomicU8, Exclusive, Ordering};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::store::reentry::UnderLock;
use crate::store::Stored;
use crate::version::VersionScheme;

/// How a bounded store weighs its records: `|key, value| weight`.
pub(crate) type Weigher<K, V> = Arc<WeighFn<K, V>>;

/// The weigher's function type.
pub(crate) type WeighFn<K, V> = dyn Fn(&K, &V) -> u32 + Send + Sync;

/// The highest access count a record keeps: reads beyond it change nothing.
const MAX_USES: u8 = 3;

/// The window's share of a shard's capacity, in per mille: where it starts and its
/// lower bound.
const MIN_WINDOW_PER_MILLE: u64 = 10;

/// The window's upper bound, in per mille of the capacity; also how far back a ghost key
/// may have left the window for its return to count.
const MAX_WINDOW_PER_MILLE: u64 = 500;

/// How far a returning key that was rare grows the window, in halves of its weight.
const WINDOW_GROWTH_HALVES: u64 = 3;

/// How far a returning key that was frequent shrinks the window, in halves of its
/// weight.
const WINDOW_SHRINK_HALVES: u64 = 2;

/// The most a returning key may have been used, by the sketch's count, to be taken for
/// one that recency brought back.
const RARE: u64 = 1;

/// How much more often than the main queue's victim a key must have been used lately to
/// take its place: with ties admitted, a loop churns the main queue.
const ADMISSION_MARGIN: u64 = 1;

/// Reads while in the window that earn a record its move to the main queue.
const PROMOTE_USES: u8 = 1;

/// Ghost slots per live record (rounded up to a power of two).
const GHOST_FACTOR: usize = 1;

/// Sketch words (of 16 counters) per live record (rounded up to a power of two).
const SKETCH_WORDS_PER_RECORD: usize = 1;

/// Queue slots beyond twice the number of records, before the queues are compacted.
const SLACK: usize = 64;

/// Which queue a record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

/// A record's eviction state: its access count, its queue and its ticket.
///
/// The records of a bounded shard, or of one with a timer, have one (its ticket names the
/// record to the timer too); those of other shards have none.
#[derive(Debug)]
pub(crate) struct Access {
    /// Reads since the record last passed the head of its queue, up to [`MAX_USES`].
    uses: AtomicU8,
    queue: Queue,
    /// Tells this record's queue slot from those of records removed before it.
    ticket: u32,
}

impl Access {
    /// The state of a record in a store without a bound.
    pub(crate) fn unbounded() -> Self {
        Access {
            uses: AtomicU8::new(0),
            queue: Queue::Small,
            ticket: crate::store::parts::expiry::UNTICKETED,
        }
    }

    /// Records a read, under the shard's read lock; whether the count changed. Writes
    /// the byte only then (a relaxed store: two readers may count once between them,
    /// which is fine for a hint).
    #[inline]
    fn touch(&self) -> bool {
        let uses = self.uses.load(Ordering::Relaxed);
        let counts = uses < MAX_USES;
        if counts {
            self.uses.store(uses + 1, Ordering::Relaxed);
        }
        counts
    }

    /// The state of a record in a store without a bound whose expiry names records by
    /// `ticket` (see `parts::expiry`).
    pub(crate) fn ticketed(ticket: u32) -> Self {
        Access {
            ticket,
            ..Access::unbounded()
        }
    }

    /// The ticket that tells this record's queue slot from others.
    pub(crate) fn ticket(&self) -> u32 {
        self.ticket
    }

    /// How the record stands in the policy, for a snapshot to restore the hottest
    /// records first: its reads since it last passed the head of its queue (0 to
    /// [`MAX_USES`]), plus 4 in the main queue (records that proved themselves).
    #[cfg(feature = "snapshot")]
    pub(crate) fn heat(&self) -> u8 {
        let main = if self.queue == Queue::Main { 4 } else { 0 };
        main + self.uses.load(Ordering::Relaxed).min(MAX_USES)
    }

    /// Gives a record restored from a snapshot the reads it had (the low bits of its
    /// [`heat`](Access::heat)), and one at least if it was in the main queue: a record
    /// read before goes on to the main queue when it reaches the head of the window.
    #[cfg(feature = "snapshot")]
    pub(crate) fn warm(&mut self, heat: u8) {
        let proven = u8::from(heat & 4 != 0);
        *self.uses.get_mut() = (heat & 3).max(proven).min(MAX_USES);
    }

    /// Records a use under the write lock.
    fn bump(&mut self) {
        let uses = self.uses.exclusive();
        self.uses.set_exclusive((uses + 1).min(MAX_USES));
    }
}

impl Clone for Access {
    fn clone(&self) -> Self {
        Access {
            uses: AtomicU8::new(self.uses.load(Ordering::Relaxed)),
            queue: self.queue,
            ticket: self.ticket,
        }
    }
}

/// The least and the most weight the window may be given in a shard of `capacity`.
fn window_limits(capacity: u64) -> (u64, u64) {
    let per_mille = |share: u64| capacity / 1000 * share + capacity % 1000 * share / 1000;
    (
        per_mille(MIN_WINDOW_PER_MILLE).max(1),
        per_mille(MAX_WINDOW_PER_MILLE).max(1),
    )
}

/// A record's place in a queue: 12 bytes, packed (every access copies a field out).
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Slot {
    hash: u64,
    ticket: u32,
}

/// A record that can never fit: heavier than the shard's whole capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooHeavy {
    /// What the weigher said the record weighs.
    pub(crate) weight: u64,
    /// The capacity of the shard it would go to.
    pub(crate) capacity: u64,
}

/// A bound on the units a shard's ghost clock divides its capacity into: a shard of fewer
/// than this many counts every unit of weight, a bigger one coarser.
const GHOST_CLOCK_UNITS: u64 = 4096;

/// Hashes of records recently evicted from the small queue, in a direct-mapped table of
/// 32-bit slots, each a 16-bit fingerprint and the 16-bit stamp of the ghost's clock when
/// it was remembered: a newer hash overwrites an older one in its slot, so the ghost
/// forgets roughly in the order it learnt, without a queue of its own.
#[derive(Default)]
struct Ghost {
    slots: Vec<u32>,
    /// The weight evicted from the small queue so far, in units of `1 << shift`.
    clock: u64,
    /// What was evicted below one unit of the clock, carried to the next eviction.
    carry: u64,
}

impl Ghost {
    fn index_and_fingerprint(&self, hash: u64) -> (usize, u32) {
        let index = hash as usize & (self.slots.len() - 1);
        // Never 0, which marks an empty slot.
        (index, ((hash >> 48) as u32 | 1) << 16)
    }

    /// How far the clock of a shard of `capacity` shifts weight: so that the capacity is
    /// fewer than [`GHOST_CLOCK_UNITS`] units.
    fn shift(capacity: u64) -> u32 {
        (u64::BITS - (capacity / GHOST_CLOCK_UNITS).leading_zeros()).min(63)
    }

    /// Remembers `hash`, evicted with `weight` from a shard of `live` records and
    /// `capacity`.
    fn remember(&mut self, hash: u64, weight: u64, live: usize, capacity: u64) {
        let wanted = (live * GHOST_FACTOR).max(16).next_power_of_two();
        if self.slots.len() < wanted {
            self.slots = vec![0; wanted];
        }
        let shift = Self::shift(capacity);
        let weight = self.carry.saturating_add(weight);
        self.clock = self.clock.wrapping_add(weight >> shift);
        self.carry = weight & ((1 << shift) - 1);
        let (index, fingerprint) = self.index_and_fingerprint(hash);
        self.slots[index] = fingerprint | (self.clock & 0xFFFF) as u32;
    }

    /// If `hash` is remembered, forgets it and tells how much weight the small queue let
    /// go since it did (at the clock's resolution, in a shard of `capacity`).
    fn take(&mut self, hash: u64, capacity: u64) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let (index, fingerprint) = self.index_and_fingerprint(hash);
        let slot = self.slots[index];
        if slot & 0xFFFF_0000 != fingerprint {
            return None;
        }
        self.slots[index] = 0;
        let units = self.clock.wrapping_sub(u64::from(slot)) & 0xFFFF;
        Some(units << Self::shift(capacity))
    }

    fn clear(&mut self) {
        self.slots.fill(0);
    }
}

/// How often keys were used lately, for records and non-records alike: a count-min
/// sketch of 4-bit counters, four per key in one 64-bit word, halved every so often so
/// that old popularity fades (TinyLFU, Einziger et al., 2017).
///
/// Reads count under the shard's read lock, through relaxed atomics, and write a word
/// only when one of its counters changes: once a key's counters are at 15, reading it
/// writes nothing until the next halving.
#[derive(Default)]
struct Sketch {
    words: Vec<AtomicU64>,
    /// Counts recorded (by writes) since the last halving.
    samples: u64,
}

impl Sketch {
    /// The word of `hash` and the bit offsets of its four counters, one in each quarter.
    fn locate(&self, hash: u64) -> Option<(&AtomicU64, [u32; 4])> {
        if self.words.is_empty() {
            return None;
        }
        let word = &self.words[(hash >> 32) as usize & (self.words.len() - 1)];
        let offsets = [0, 1, 2, 3].map(|row| row * 16 + ((hash >> (row * 8)) as u32 & 3) * 4);
        Some((word, offsets))
    }

    /// Counts a use of `hash`.
    fn increment(&self, hash: u64) {
        let Some((word, offsets)) = self.locate(hash) else {
            return;
        };
        let old = word.load(Ordering::Relaxed);
        let mut new = old;
        for offset in offsets {
            if (new >> offset) & 15 < 15 {
                new += 1 << offset;
            }
        }
        if new != old {
            word.store(new, Ordering::Relaxed);
        }
    }

    /// How often `hash` was used lately (an overestimate, never an underestimate).
    fn estimate(&self, hash: u64) -> u64 {
        let Some((word, offsets)) = self.locate(hash) else {
            return 0;
        };
        let word = word.load(Ordering::Relaxed);
        offsets
            .map(|offset| (word >> offset) & 15)
            .into_iter()
            .min()
            .unwrap_or(0)
    }

    /// Counts a write of `hash` in a shard of `live` records: grows the sketch with the
    /// shard, and halves every counter after ten writes per record.
    fn record_write(&mut self, hash: u64, live: usize) {
        let wanted = (live * SKETCH_WORDS_PER_RECORD).max(16).next_power_of_two();
        if self.words.len() < wanted {
            self.words = (0..wanted).map(|_| AtomicU64::new(0)).collect();
            self.samples = 0;
        }
        self.increment(hash);
        self.samples += 1;
        if self.samples >= 10 * live.max(16) as u64 {
            self.samples = 0;
            for word in &mut self.words {
                let counters = word.exclusive();
                word.set_exclusive((counters >> 1) & 0x7777_7777_7777_7777);
            }
        }
    }

    fn clear(&mut self) {
        for word in &mut self.words {
            word.set_exclusive(0);
        }
        self.samples = 0;
    }
}

/// The eviction state of one bounded shard: its capacity, the weight it holds, and the
/// queues that order its records.
pub(crate) struct Evictor<K, V> {
    capacity: u64,
    /// The weight of the records in the shard.
    weight: u64,
    /// The weight of the records in the small queue.
    small_weight: u64,
    /// Twice the weight the small queue (the window) may hold before it is the one to
    /// evict from: in halves, so that it can grow by one and a half records.
    window_halves: u64,
    small: VecDeque<Slot>,
    main: VecDeque<Slot>,
    ghost: Ghost,
    sketch: Sketch,
    next_ticket: u32,
    /// `None`: every record weighs 1.
    weigher: Option<UnderLock<WeighFn<K, V>>>,
}

impl<K, V> fmt::Debug for Evictor<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evictor")
            .field("capacity", &self.capacity)
            .field("weight", &self.weight)
            .field("small", &self.small.len())
            .field("main", &self.main.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Evictor<K, V> {
    /// An empty shard's state: at most `capacity` in weight, weighed by `weigher` (or 1
    /// per record).
    pub(crate) fn new(capacity: u64, weigher: Option<UnderLock<WeighFn<K, V>>>) -> Self {
        Evictor {
            capacity,
            weight: 0,
            small_weight: 0,
            window_halves: 2 * window_limits(capacity).0,
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: Ghost::default(),
            sketch: Sketch::default(),
            next_ticket: 0,
            weigher,
        }
    }

    fn weigh(weigher: &Option<UnderLock<WeighFn<K, V>>>, key: &K, value: &V) -> u64 {
        weigher.as_ref().map_or(1, |weigher| {
            u64::from(weigher.call(|weigh| weigh(key, value)))
        })
    }

    fn check_fits(&self, weight: u64) -> Result<(), TooHeavy> {
        if weight <= self.capacity {
            Ok(())
        } else {
            Err(TooHeavy {
                weight,
                capacity: self.capacity,
            })
        }
    }

    /// Adds `weight` to the account of `queue`.
    fn add(&mut self, queue: Queue, weight: u64) {
        self.weight = self.weight.saturating_add(weight);
        if queue == Queue::Small {
            self.small_weight = self.small_weight.saturating_add(weight);
        }
    }

    /// Takes `weight` off the account of `queue`.
    fn subtract(&mut self, queue: Queue, weight: u64) {
        self.weight -= weight;
        if queue == Queue::Small {
            self.small_weight -= weight;
        }
    }

    /// Whether a record of `key` and `value` fits beside those the shard holds, without
    /// evicting any: how a restore fills a shard up to its share and no further.
    #[cfg(feature = "snapshot")]
    pub(crate) fn fits(&self, key: &K, value: &V) -> bool {
        Self::weigh(&self.weigher, key, value)
            .checked_add(self.weight)
            .is_some_and(|total| total <= self.capacity)
    }

    /// Queues a new record: the state it is stored with. Refuses one that could never
    /// fit. Call [`settle`](Evictor::settle) once it is in the table.
    pub(crate) fn admit(&mut self, hash: u64, key: &K, value: &V) -> Result<Access, TooHeavy> {
        let weight = Self::weigh(&self.weigher, key, value);
        self.check_fits(weight)?;
        let mut queue = Queue::Small;
        let (least, most) = window_limits(self.capacity);
        let back = self.ghost.take(hash, self.capacity);
        if back.is_some_and(|distance| distance <= most) {
            // Back soon after the window let it go: a window the limits allow would
            // have kept it. If recency brought it back (the sketch knows it as rare),
            // make the window bigger; if frequency did, the admission should have kept
            // it: leave the room to the main queue, and put it there.
            if self.sketch.estimate(hash) <= RARE {
                self.window_halves = self
                    .window_halves
                    .saturating_add(weight.saturating_mul(WINDOW_GROWTH_HALVES))
                    .min(most.saturating_mul(2));
            } else {
                self.window_halves = self
                    .window_halves
                    .saturating_sub(weight.saturating_mul(WINDOW_SHRINK_HALVES))
                    .max(least.saturating_mul(2));
                queue = Self::frequent_return_queue();
            }
        }
        self.sketch
            .record_write(hash, self.small.len() + self.main.len());
        let ticket = self.next_ticket;
        self.next_ticket = ticket.wrapping_add(1);
        let slot = Slot { hash, ticket };
        match queue {
            Queue::Small => self.small.push_back(slot),
            Queue::Main => self.main.push_back(slot),
        }
        self.add(queue, weight);
        Ok(Access {
            uses: AtomicU8::new(0),
            queue,
            ticket,
        })
    }

    /// The queue a key enters when it comes back frequent after the window let it go:
    /// the main queue. The `verkv_mutant = "frequent_return_to_window"` cfg sends it to the
    /// window like any new key (the policy before issue 28), so that the test of this rule
    /// can show it catches that.
    fn frequent_return_queue() -> Queue {
        if cfg!(verkv_mutant = "frequent_return_to_window") {
            Queue::Small
        } else {
            Queue::Main
        }
    }

    /// Refuses `records` written together (a transaction's writes to this shard) if
    /// together they weigh more than the shard holds: settling after them could not
    /// keep them all.
    pub(crate) fn fits_together<'a>(
        &self,
        records: impl Iterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), TooHeavy>
    where
        K: 'a,
        V: 'a,
    {
        let weight = records.fold(0u64, |total, (key, value)| {
            total.saturating_add(Self::weigh(&self.weigher, key, value))
        });
        self.check_fits(weight)
    }

    /// Accounts for a record's value changing from `old` to `new`, before it does, and
    /// counts the write as a use. Refuses a value that could never fit (nothing changes
    /// then). Call [`settle`](Evictor::settle) once it is written.
    pub(crate) fn reweigh(
        &mut self,
        key: &K,
        old: &V,
        new: &V,
        access: &mut Access,
    ) -> Result<(), TooHeavy> {
        if self.weigher.is_some() {
            let old = Self::weigh(&self.weigher, key, old);
            let new = Self::weigh(&self.weigher, key, new);
            self.check_fits(new)?;
            self.subtract(access.queue, old);
            self.add(access.queue, new);
        }
        access.bump();
        Ok(())
    }

    /// Accounts for a record the user removed. Its queue slot stays behind, to be
    /// skipped or compacted away.
    pub(crate) fn forget(&mut self, key: &K, value: &V, access: &Access) {
        let weight = Self::weigh(&self.weigher, key, value);
        self.subtract(access.queue, weight);
    }

    /// Forgets every record (the shard was cleared).
    pub(crate) fn clear(&mut self) {
        self.weight = 0;
        self.small_weight = 0;
        self.small.clear();
        self.main.clear();
        self.ghost.clear();
        self.sketch.clear();
    }

    /// Records a read of the record `access` with hash `hash`, under the shard's read
    /// lock: writes only what changes. The sketch counts the read only while the
    /// record's own count climbs, so a record read again and again costs one byte's
    /// load, like a plain read, until its count is next spent.
    #[inline]
    pub(crate) fn record_read(&self, hash: u64, access: &Access) {
        if access.touch() {
            self.sketch.increment(hash);
        }
    }

    /// The weight of the records in the shard.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// Evicts records from `table` until the shard is within its capacity, retiring
    /// their versions with `versions` and handing each to `evicted` (with its hash and
    /// ticket). The records whose tickets `keep` names (those just written: one for a
    /// single write, several for a transaction) are never evicted: they go to the back
    /// of the main queue instead. What they weigh together must fit the capacity.
    pub(crate) fn settle<S: VersionScheme>(
        &mut self,
        table: &mut HashTable<Stored<K, V, S::Version, Access>>,
        versions: &mut S,
        keep: impl Fn(u32) -> bool + Copy,
        mut evicted: impl FnMut(u64, u32, K, V),
    ) {
        if self.small.len() + self.main.len() > 2 * table.len() + SLACK {
            self.compact(table);
        }
        let window = self.window_halves / 2;
        // How many records went to the back of the main queue in a row that `keep`
        // names: once as many as it holds, it holds nothing else to evict.
        let mut kept_in_a_row = 0;
        while self.weight > self.capacity {
            let only_kept_in_main = kept_in_a_row >= self.main.len();
            let from_small = !self.small.is_empty()
                && (self.small_weight > window || self.main.is_empty() || only_kept_in_main);
            let popped = if from_small {
                self.small.pop_front()
            } else {
                self.main.pop_front()
            };
            let Some(slot) = popped else {
                // Every record has a slot, so the queues cannot run dry over capacity.
                debug_assert!(false, "queues ran dry at weight {}", self.weight);
                return;
            };
            let Some((_, _, access)) =
                table.find(slot.hash, |(_, _, access)| access.ticket == slot.ticket)
            else {
                continue; // removed by the user
            };
            let queue = access.queue;
            let uses = access.uses.load(Ordering::Relaxed);
            let kept = keep(slot.ticket);
            let stays = match queue {
                Queue::Small => {
                    uses >= PROMOTE_USES
                        || kept
                        || self.admits(table, slot.hash, keep, self.capacity - window)
                }
                Queue::Main => uses > 0 || kept,
            };
            let Ok(mut found) =
                table.find_entry(slot.hash, |(_, _, access)| access.ticket == slot.ticket)
            else {
                unreachable!("the record was just found");
            };
            let (key, record, access) = found.get_mut();
            if stays {
                if queue == Queue::Small {
                    let weight = Self::weigh(&self.weigher, key, &record.value);
                    self.small_weight -= weight;
                    access.queue = Queue::Main;
                    access.uses.set_exclusive(0);
                } else {
                    let uses = access.uses.exclusive();
                    access.uses.set_exclusive(uses.saturating_sub(1));
                }
                self.main.push_back(slot);
                kept_in_a_row = if kept { kept_in_a_row + 1 } else { 0 };
                continue;
            }
            let queue = access.queue;
            let weight = Self::weigh(&self.weigher, key, &record.value);
            let ((key, record, _), _) = found.remove();
            versions.retire(&record.version);
            self.subtract(queue, weight);
            if queue == Queue::Small {
                self.ghost
                    .remember(slot.hash, weight, table.len(), self.capacity);
            }
            evicted(slot.hash, slot.ticket, key, record.value);
        }
        self.trim();
    }

    /// Whether a record with hash `hash` that leaves the small queue unread goes to the
    /// main queue all the same: if it was used more often lately than the record the
    /// main queue would evict next (TinyLFU's admission), or the main queue is empty.
    fn admits(
        &mut self,
        table: &mut HashTable<Stored<K, V, impl Sized, Access>>,
        hash: u64,
        keep: impl Fn(u32) -> bool,
        main_room: u64,
    ) -> bool {
        if self.weight - self.small_weight < main_room {
            return true;
        }
        // Turn the main queue's CLOCK to its next victim: records read since they last
        // passed the head go round again, one use fewer.
        let mut turns = self.main.len() * (usize::from(MAX_USES) + 1) + 1;
        while turns > 0 {
            turns -= 1;
            let Some(&slot) = self.main.front() else {
                return true;
            };
            let Some((_, _, access)) =
                table.find_mut(slot.hash, |(_, _, access)| access.ticket == slot.ticket)
            else {
                self.main.pop_front();
                continue;
            };
            let uses = access.uses.exclusive();
            if uses > 0 || keep(slot.ticket) {
                access.uses.set_exclusive(uses.saturating_sub(1));
                self.main.rotate_left(1);
                continue;
            }
            return self.sketch.estimate(hash) > self.sketch.estimate(slot.hash) + ADMISSION_MARGIN;
        }
        true
    }

    /// How many slots the queues hold, live or not.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.small.len() + self.main.len()
    }

    /// Gives back what the queues hold beyond twice their length: the window fills
    /// with every record before the first eviction, and is small after it.
    fn trim(&mut self) {
        for queue in [&mut self.small, &mut self.main] {
            if queue.capacity() > 4 * queue.len() + SLACK {
                queue.shrink_to(2 * queue.len());
            }
        }
    }

    /// Drops the slots of records that are gone.
    fn compact(&mut self, table: &HashTable<Stored<K, V, impl Sized, Access>>) {
        let live = |slot: &Slot| {
            table
                .find(slot.hash, |(_, _, access)| access.ticket == slot.ticket)
                .is_some()
        };
        self.small.retain(live);
        self.main.retain(live);
    }
}

/// A store's capacity bound, as the builder was given it.
pub(crate) struct Bound<K, V> {
    /// The most the store holds: records, or weight with a weigher.
    pub(crate) max_capacity: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
}

impl<K, V> Clone for Bound<K, V> {
    fn clone(&self) -> Self {
        Bound {
            max_capacity: self.max_capacity,
            weigher: self.weigher.clone(),
        }
    }
}

/// The least capacity a shard is given where the bound allows: fewer shards are used
/// rather than many tiny ones, whose eviction would follow the keys' hashes more than
/// their use.
const MIN_SHARD_CAPACITY: u64 = 256;

impl<K, V> Bound<K, V> {
    /// How many shards a store that wants `wanted` (a power of two) gets: as many as
    /// leave each at least [`MIN_SHARD_CAPACITY`], or at least one record if the user
    /// `asked` for that many; and at least one shard.
    pub(crate) fn shard_count(&self, wanted: usize, asked: bool) -> usize {
        let least = if asked { 1 } else { MIN_SHARD_CAPACITY };
        let fitting = (self.max_capacity / least).max(1);
        let mut shards = wanted;
        while shards > 1 && shards as u64 > fitting {
            shards /= 2;
        }
        shards
    }

    /// The eviction state of shard `index` of `shards` of the store whose id is `store`:
    /// the capacity split evenly, the remainder one each to the first shards, so the
    /// shards' capacities add up to the bound exactly.
    pub(crate) fn shard(&self, index: usize, shards: usize, store: usize) -> Evictor<K, V> {
        let shards = shards as u64;
        let extra = u64::from((index as u64) < self.max_capacity % shards);
        let weigher = self
            .weigher
            .clone()
            .map(|weigher| UnderLock::new(store, weigher));
        Evictor::new(self.max_capacity / shards + extra, weigher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ghost_tells_how_far_behind_the_window_a_key_left() {
        let mut ghost = Ghost::default();
        let key = 0xABCD_0000_0000_0001;
        ghost.remember(key, 1, 100, 100);
        // Seven more records let go after it, with hashes in other slots.
        for other in 2..9 {
            ghost.remember(other, 1, 100, 100);
        }
        assert_eq!(ghost.take(key, 100), Some(7));
        assert_eq!(ghost.take(key, 100), None, "taken once, forgotten");
        assert_eq!(ghost.take(0xFFFF_0000_0000_0002, 100), None, "another key");
    }

    #[test]
    fn a_big_shards_ghost_clock_counts_coarser_weight() {
        let capacity = 1 << 20;
        let shift = Ghost::shift(capacity);
        assert_eq!(capacity >> shift, GHOST_CLOCK_UNITS / 2);
        assert_eq!(Ghost::shift(GHOST_CLOCK_UNITS - 1), 0);
        let mut ghost = Ghost::default();
        ghost.remember(1, 1, 100, capacity);
        // Let go 1,000 records of weight 300: 300,000 in weight, under a unit at a time.
        for other in 2..1_002 {
            ghost.remember(other << 8, 300, 100, capacity);
        }
        let distance = ghost.take(1, capacity).expect("remembered");
        let unit = 1 << shift;
        assert!(
            distance.abs_diff(300_000) <= unit,
            "{distance} for 300,000, unit {unit}"
        );
    }

    #[test]
    fn a_key_back_from_beyond_the_windows_ceiling_is_a_new_key() {
        let mut evictor: Evictor<u64, u64> = Evictor::new(100, None);
        let (_, most) = window_limits(100);
        let key = 0x1234_0000_0000_0001;
        // Known as frequent, let go by the window, then more than the ceiling after it.
        for _ in 0..4 {
            evictor.sketch.record_write(key, 100);
        }
        evictor.ghost.remember(key, 1, 100, 100);
        for other in 0..=most {
            evictor.ghost.remember((other + 2) << 8, 1, 100, 100);
        }
        let window = evictor.window_halves;
        let access = evictor.admit(key, &1, &1).expect("fits");
        assert_eq!(access.queue, Queue::Small, "a far return enters the window");
        assert_eq!(evictor.window_halves, window, "and leaves its size alone");

        // The same key let go just before it comes back frequent: straight to main.
        evictor.ghost.remember(key, 1, 100, 100);
        let access = evictor.admit(key, &1, &1).expect("fits");
        assert_eq!(access.queue, Evictor::<u64, u64>::frequent_return_queue());
    }
}
