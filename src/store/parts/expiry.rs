//! Expiry: when a record's time runs out, and the per-shard state that knows it.
//!
//! A shard of a store with expiry keeps a [`Timer`] next to its records: the deadlines
//! of its expiring records in a dense array, an index that finds a record's entry by its
//! hash and ticket (as the eviction queues name it), and a hand that walks the array a
//! few entries at a time. A store without expiry has no timer: its records carry nothing
//! extra and its operations read no clock. A record that never expires has no entry.
//!
//! - **Reads** look the deadline up and treat an expired record as absent. A read with a
//!   time-to-idle moves the idle deadline forward, writing it only when it moves by more
//!   than [`IDLE_GRANULARITY`], so that a hot key's reads stay reads.
//! - **Writes** to a key first reclaim its record if it has expired (a conditional write
//!   on it is refused with [`Error::Expired`](crate::Error::Expired)), and every write
//!   turns the hand over at most [`SWEEP_PER_WRITE`] records, reclaiming those that
//!   expired: the work is bounded per write and needs no background thread.

use crate::sync::{AtomicU64, Exclusive, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;

use super::clock::{nanos, Clock, Ticker};
use crate::store::reentry::UnderLock;

/// Records the hand looks at per write, at most.
const SWEEP_PER_WRITE: usize = 4;

/// How far a read must move an idle deadline before it writes it (1 ms): a record read
/// all the time writes its deadline at most once a millisecond, and may expire up to
/// that much earlier than its last read plus the time-to-idle.
pub(crate) const IDLE_GRANULARITY: u64 = 1_000_000;

/// The deadline of a record that never expires.
const NEVER: u64 = u64::MAX;

/// The ticket of a record in a shard without a bound that was written before the shard
/// kept time (and of every record of a shard converted to keep state, `store::records`).
/// The timer never issues it: the sweep finds a due record by its hash and ticket, and
/// records sharing a ticket could be mistaken for one another.
pub(crate) const UNTICKETED: u32 = 0;

/// A per-record expiry policy, for deadlines computed from the key and value: moka's
/// `Expiry`, Caffeine's `Expiry`. Set with [`StoreBuilder::expiry`](crate::StoreBuilder::expiry).
///
/// Each method returns how long from now the record lives, `None` for ever. The policy
/// takes the place of the store-wide [time-to-live](crate::StoreBuilder::time_to_live);
/// a [time-to-idle](crate::StoreBuilder::time_to_idle) still applies beside it; a write
/// made through [`expiring_after`](crate::Store::expiring_after) overrides both for that
/// write.
///
/// The methods run under the shard's lock (a read's under its read lock): they should be
/// quick, and must not call into the store (such a call panics with a clear message
/// instead of deadlocking).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use verkv::{Expiry, ManualClock, Store};
///
/// /// Negative answers are kept for a second, others for a minute.
/// struct ByAnswer;
/// impl Expiry<&'static str, Option<u32>> for ByAnswer {
///     fn expire_after_create(&self, _key: &&str, value: &Option<u32>) -> Option<Duration> {
///         Some(Duration::from_secs(if value.is_some() { 60 } else { 1 }))
///     }
/// }
///
/// let clock = ManualClock::new();
/// let store: Store<&str, Option<u32>> = Store::builder().expiry(ByAnswer).clock(clock.clone()).build();
/// store.insert("found", Some(1)).unwrap();
/// store.insert("missing", None).unwrap();
/// clock.advance(Duration::from_secs(1));
/// assert!(store.contains_key(&"found"));
/// assert!(!store.contains_key(&"missing"));
/// ```
pub trait Expiry<K, V>: Send + Sync {
    /// How long a new record lives.
    fn expire_after_create(&self, key: &K, value: &V) -> Option<Duration>;

    /// How long a record lives after a write replaced its value; `remaining` is what it
    /// had left (`None`: for ever). By default, as long as a new record.
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = remaining;
        self.expire_after_create(key, value)
    }

    /// How long a record lives after a read; by default what it had left. Returning a
    /// new time makes reads write (as a time-to-idle does).
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value);
        remaining
    }
}

/// A policy as the builder keeps it.
type Policy<K, V> = Arc<dyn Expiry<K, V>>;

/// A store's expiry settings, as the builder was given them.
pub(crate) struct Expiration<K, V> {
    pub(crate) clock: Clock,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) policy: Option<Policy<K, V>>,
}

impl<K, V> Default for Expiration<K, V> {
    fn default() -> Self {
        Expiration {
            clock: Clock::System,
            time_to_live: None,
            time_to_idle: None,
            policy: None,
        }
    }
}

impl<K, V> Clone for Expiration<K, V> {
    fn clone(&self) -> Self {
        Expiration {
            clock: self.clock.clone(),
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            policy: self.policy.clone(),
        }
    }
}

impl<K, V> Expiration<K, V> {
    /// Whether any record can expire without a per-write time-to-live.
    fn configured(&self) -> bool {
        self.time_to_live.is_some() || self.time_to_idle.is_some() || self.policy.is_some()
    }

    /// A shard's expiry state, for the store whose id is `store`: a timer if the
    /// settings expire anything.
    pub(crate) fn shard(&self, store: usize) -> Timing<K, V> {
        if self.configured() {
            let mut settings = self.clone();
            let policy = settings
                .policy
                .take()
                .map(|policy| UnderLock::new(store, policy));
            Timing::On(Box::new(Timer::new(settings, policy)))
        } else {
            Timing::Off(self.clock.clone())
        }
    }
}

/// A shard's expiry state. `Off` until some record can expire: the shard then reads no
/// clock. A write with its own time-to-live turns it on.
pub(crate) enum Timing<K, V> {
    /// No expiry so far; the clock to start if a write asks for some.
    Off(Clock),
    On(Box<Timer<K, V>>),
}

impl<K, V> Timing<K, V> {
    /// The timer, if the shard has one.
    #[inline]
    pub(crate) fn active(&self) -> Option<&Timer<K, V>> {
        match self {
            Timing::Off(_) => None,
            Timing::On(timer) => Some(timer),
        }
    }

    /// The timer, if the shard has one.
    #[inline]
    pub(crate) fn active_mut(&mut self) -> Option<&mut Timer<K, V>> {
        match self {
            Timing::Off(_) => None,
            Timing::On(timer) => Some(timer),
        }
    }

    /// When a record written now with `value` expires; `None` if it never does because
    /// the shard keeps no time and the write asks for none. A write with a time-to-live
    /// of its own starts the shard's timer. `time_to_live` is the write's own; `current`
    /// the record (hash, ticket) the write replaces the value of, if any.
    ///
    /// Only the test stays inline: the rest, out of line, keeps the write path of a
    /// shard without expiry as small as it was.
    #[inline]
    pub(crate) fn lifetime(
        &mut self,
        key: &K,
        value: &V,
        time_to_live: Option<Duration>,
        current: Option<(u64, u32)>,
    ) -> Option<Lifetime> {
        if !self.keeps_time(time_to_live) {
            return None;
        }
        self.timed_lifetime(key, value, time_to_live, current)
    }

    /// Whether a write with `time_to_live` (its own) has deadlines to set: the shard has
    /// a timer, or the write starts one.
    #[inline]
    pub(crate) fn keeps_time(&self, time_to_live: Option<Duration>) -> bool {
        matches!(self, Timing::On(_)) || time_to_live.is_some()
    }

    #[inline(never)]
    fn timed_lifetime(
        &mut self,
        key: &K,
        value: &V,
        time_to_live: Option<Duration>,
        current: Option<(u64, u32)>,
    ) -> Option<Lifetime> {
        if let Timing::Off(clock) = self {
            let settings = Expiration {
                clock: clock.clone(),
                ..Expiration::default()
            };
            *self = Timing::On(Box::new(Timer::new(settings, None)));
        }
        let timer = self.active()?;
        Some(timer.lifetime(key, value, time_to_live, current))
    }

    /// The lifetime of a record restored from a snapshot with `remaining` to live,
    /// counted from now on the shard's clock (whatever the store's settings: they apply
    /// from the record's next write); starts the timer if the record can expire. `None`
    /// if it never expires.
    #[cfg(feature = "snapshot")]
    pub(crate) fn restored(&mut self, remaining: Remaining) -> Option<Lifetime> {
        if !remaining.expires() {
            return None;
        }
        if let Timing::Off(clock) = self {
            let settings = Expiration {
                clock: clock.clone(),
                ..Expiration::default()
            };
            *self = Timing::On(Box::new(Timer::new(settings, None)));
        }
        let now = self.active()?.now();
        Some(Lifetime {
            expires: after(now, remaining.expires),
            idle: after(now, remaining.idle),
        })
    }

    /// Gives the record (hash, ticket), just written, its `lifetime` (from
    /// [`lifetime`](Timing::lifetime)).
    #[inline(never)]
    pub(crate) fn start(&mut self, hash: u64, ticket: u32, lifetime: Lifetime) {
        if let Some(timer) = self.active_mut() {
            timer.set(hash, ticket, lifetime.expires, lifetime.idle);
        }
    }

    /// A ticket for a record of a shard without a bound (a bound issues its own), never
    /// [`UNTICKETED`]: the ticket of every record written before the shard kept time, so
    /// that no two records the timer may name share one.
    #[inline(never)]
    pub(crate) fn issue_ticket(&mut self) -> u32 {
        self.active_mut().map_or(UNTICKETED, |timer| {
            let ticket = timer.next_ticket;
            timer.next_ticket = ticket.wrapping_add(1).max(UNTICKETED + 1);
            ticket
        })
    }
}

/// When one record expires: `expires` from its time-to-live (or policy), `idle` from its
/// time-to-idle; nanoseconds on the shard's ticker, [`NEVER`] for no limit. Reads may
/// move either, under the read lock.
struct Deadline {
    hash: u64,
    ticket: u32,
    expires: AtomicU64,
    idle: AtomicU64,
}

impl Deadline {
    fn passed(&self, now: u64) -> bool {
        !cfg!(verkv_mutant = "no_expiry_check")
            && (now >= self.expires.load(Ordering::Relaxed)
                || now >= self.idle.load(Ordering::Relaxed))
    }
}

/// When a record just written expires, by its time-to-live and by its time-to-idle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    expires: u64,
    idle: u64,
}

/// What a record has left to live, as a snapshot keeps it: until its time-to-live (or
/// policy) ends it, and until its time-to-idle does; `None` for no limit.
#[cfg(feature = "snapshot")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Remaining {
    pub(crate) expires: Option<Duration>,
    pub(crate) idle: Option<Duration>,
}

#[cfg(feature = "snapshot")]
impl Remaining {
    /// A record that never expires.
    pub(crate) const FOREVER: Remaining = Remaining {
        expires: None,
        idle: None,
    };

    /// Whether the record has a deadline at all.
    pub(crate) fn expires(&self) -> bool {
        self.expires.is_some() || self.idle.is_some()
    }

    /// What is left once `passed` more went by; `None` if that ended it.
    pub(crate) fn after(self, passed: Duration) -> Option<Remaining> {
        let left = |limit: Option<Duration>| match limit {
            None => Some(None),
            Some(limit) => limit
                .checked_sub(passed)
                .filter(|left| !left.is_zero())
                .map(Some),
        };
        Some(Remaining {
            expires: left(self.expires)?,
            idle: left(self.idle)?,
        })
    }
}

/// What the hand found at one record.
pub(crate) enum Turn {
    /// Nothing left to look at.
    Done,
    /// A record that has not expired.
    Passed,
    /// The record (hash, ticket) expired: reclaim it. Its deadline is already forgotten.
    Due(u64, u32),
}

/// One shard's expiry state: the settings, the ticker, the deadlines of its expiring
/// records, and the hand that sweeps them.
pub(crate) struct Timer<K, V> {
    /// The settings, less the policy (in `policy`).
    settings: Expiration<K, V>,
    /// The per-record policy, run as the store's closure.
    policy: Option<UnderLock<dyn Expiry<K, V>>>,
    ticker: Ticker,
    /// The deadlines of the expiring records, in no order, without gaps: an entry that
    /// goes is replaced by the last one.
    deadlines: Vec<Deadline>,
    /// Where each record's entry is in `deadlines`, found by the record's hash.
    index: HashTable<usize>,
    /// The entry of `deadlines` the sweep looks at next.
    hand: usize,
    /// Tickets for the records of a shard without a bound (a bound issues its own).
    next_ticket: u32,
}

impl<K, V> fmt::Debug for Timer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("deadlines", &self.deadlines.len())
            .field("hand", &self.hand)
            .finish_non_exhaustive()
    }
}

/// `now + ttl`, [`NEVER`] for no time-to-live or one too long to count.
fn after(now: u64, ttl: Option<Duration>) -> u64 {
    ttl.map_or(NEVER, |ttl| now.saturating_add(nanos(ttl)))
}

/// The time left until `deadline`, `None` for never.
fn remaining(now: u64, deadline: u64) -> Option<Duration> {
    (deadline != NEVER).then(|| Duration::from_nanos(deadline.saturating_sub(now)))
}

impl<K, V> Timer<K, V> {
    fn new(settings: Expiration<K, V>, policy: Option<UnderLock<dyn Expiry<K, V>>>) -> Self {
        Timer {
            policy,
            ticker: Ticker::start(&settings.clock),
            settings,
            deadlines: Vec::new(),
            index: HashTable::new(),
            hand: 0,
            next_ticket: UNTICKETED + 1,
        }
    }

    /// The time now on this shard's ticker.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.ticker.now()
    }

    /// Where the entry of the record (hash, ticket) is in `deadlines`.
    fn position(&self, hash: u64, ticket: u32) -> Option<usize> {
        let deadlines = &self.deadlines;
        self.index
            .find(hash, |&at| {
                deadlines[at].hash == hash && deadlines[at].ticket == ticket
            })
            .copied()
    }

    fn find(&self, hash: u64, ticket: u32) -> Option<&Deadline> {
        self.position(hash, ticket).map(|at| &self.deadlines[at])
    }

    /// Whether the record (hash, ticket) has expired at `now`.
    #[inline]
    pub(crate) fn expired(&self, hash: u64, ticket: u32, now: u64) -> bool {
        self.find(hash, ticket)
            .is_some_and(|deadline| deadline.passed(now))
    }

    /// What the record (hash, ticket) has left to live at `now`; `None` if it expired.
    #[cfg(feature = "snapshot")]
    pub(crate) fn remaining(&self, hash: u64, ticket: u32, now: u64) -> Option<Remaining> {
        let Some(deadline) = self.find(hash, ticket) else {
            return Some(Remaining::FOREVER);
        };
        if deadline.passed(now) {
            return None;
        }
        Some(Remaining {
            expires: remaining(now, deadline.expires.load(Ordering::Relaxed)),
            idle: remaining(now, deadline.idle.load(Ordering::Relaxed)),
        })
    }

    /// Whether the record (hash, ticket) is still there now, for a look that is not a
    /// read (no deadline moves). Out of line, as [`read`](Timer::read).
    #[inline(never)]
    pub(crate) fn present(&self, hash: u64, ticket: u32) -> bool {
        !self.expired(hash, ticket, self.now())
    }

    /// A read of the record (hash, ticket) with `key` and `value`: whether it is still
    /// there (not expired), moving its deadlines as its time-to-idle and the policy say.
    /// Kept out of line, so that the read path of a shard without a timer stays small
    /// (inlined, a plain `get` measured 15–20% slower).
    #[inline(never)]
    pub(crate) fn read(&self, hash: u64, ticket: u32, key: &K, value: &V) -> bool {
        let Some(deadline) = self.find(hash, ticket) else {
            return true;
        };
        let now = self.now();
        if deadline.passed(now) {
            return false;
        }
        if let Some(tti) = self.settings.time_to_idle {
            let idle = after(now, Some(tti));
            if idle
                > deadline
                    .idle
                    .load(Ordering::Relaxed)
                    .saturating_add(IDLE_GRANULARITY)
            {
                deadline.idle.store(idle, Ordering::Relaxed);
            }
        }
        if let Some(policy) = &self.policy {
            let expires = deadline.expires.load(Ordering::Relaxed);
            let wanted = after(
                now,
                policy.call(|policy| policy.expire_after_read(key, value, remaining(now, expires))),
            );
            if wanted != expires {
                deadline.expires.store(wanted, Ordering::Relaxed);
            }
        }
        true
    }

    /// When a record written now with `value` expires: computed before the write
    /// changes anything, since a policy is the caller's code and may panic.
    /// `time_to_live` is the write's own; `current` the record's, if it exists.
    fn lifetime(
        &self,
        key: &K,
        value: &V,
        time_to_live: Option<Duration>,
        current: Option<(u64, u32)>,
    ) -> Lifetime {
        let now = self.now();
        let ttl = match (time_to_live, &self.policy, current) {
            (Some(ttl), _, _) => Some(ttl),
            (None, Some(policy), None) => {
                policy.call(|policy| policy.expire_after_create(key, value))
            }
            (None, Some(policy), Some((hash, ticket))) => {
                let before = self
                    .find(hash, ticket)
                    .map_or(NEVER, |deadline| deadline.expires.load(Ordering::Relaxed));
                policy.call(|policy| policy.expire_after_update(key, value, remaining(now, before)))
            }
            (None, None, _) => self.settings.time_to_live,
        };
        Lifetime {
            expires: after(now, ttl),
            idle: after(now, self.settings.time_to_idle),
        }
    }

    /// Sets the deadlines of the record (hash, ticket): kept only if it can expire.
    fn set(&mut self, hash: u64, ticket: u32, expires: u64, idle: u64) {
        match (
            self.position(hash, ticket),
            expires == NEVER && idle == NEVER,
        ) {
            (Some(at), true) => self.remove_at(at),
            (Some(at), false) => {
                let deadline = &mut self.deadlines[at];
                deadline.expires.set_exclusive(expires);
                deadline.idle.set_exclusive(idle);
            }
            (None, true) => {}
            (None, false) => {
                let at = self.deadlines.len();
                self.deadlines.push(Deadline {
                    hash,
                    ticket,
                    expires: AtomicU64::new(expires),
                    idle: AtomicU64::new(idle),
                });
                let deadlines = &self.deadlines;
                self.index.insert_unique(hash, at, |&at| deadlines[at].hash);
            }
        }
    }

    /// Removes the entry at `at`, moving the last entry into its place.
    fn remove_at(&mut self, at: usize) {
        let hash = self.deadlines[at].hash;
        if let Ok(entry) = self.index.find_entry(hash, |&found| found == at) {
            entry.remove();
        }
        let last = self.deadlines.len() - 1;
        if at != last {
            let moved = self.deadlines[last].hash;
            if let Some(found) = self.index.find_mut(moved, |&found| found == last) {
                *found = at;
            }
        }
        self.deadlines.swap_remove(at);
    }

    /// Forgets the record (hash, ticket): it left the shard.
    pub(crate) fn forget(&mut self, hash: u64, ticket: u32) {
        if let Some(at) = self.position(hash, ticket) {
            self.remove_at(at);
        }
    }

    /// Forgets every record (the shard was cleared).
    pub(crate) fn clear(&mut self) {
        self.deadlines.clear();
        self.index.clear();
        self.hand = 0;
    }

    /// How many records the hand may look at in one write.
    pub(crate) fn sweep_budget() -> usize {
        SWEEP_PER_WRITE
    }

    /// Moves the hand over one record, at `now`.
    pub(crate) fn turn(&mut self, now: u64) -> Turn {
        if self.deadlines.is_empty() {
            return Turn::Done;
        }
        if self.hand >= self.deadlines.len() {
            self.hand = 0;
        }
        let deadline = &self.deadlines[self.hand];
        if deadline.passed(now) {
            let due = Turn::Due(deadline.hash, deadline.ticket);
            // The last entry moves here: the hand looks at it next.
            self.remove_at(self.hand);
            return due;
        }
        self.hand += 1;
        Turn::Passed
    }

    /// How many records have an entry.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.deadlines.len()
    }
}

#[cfg(all(test, feature = "snapshot"))]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_runs_out_at_its_limit_and_never_without_one() {
        let second = Duration::from_secs(1);
        let left = Remaining {
            expires: Some(3 * second),
            idle: Some(5 * second),
        };
        assert_eq!(
            left.after(second),
            Some(Remaining {
                expires: Some(2 * second),
                idle: Some(4 * second),
            })
        );
        assert_eq!(
            left.after(3 * second - Duration::from_nanos(1))
                .map(|l| l.expires),
            Some(Some(Duration::from_nanos(1)))
        );
        assert_eq!(left.after(3 * second), None);
        assert_eq!(
            Remaining::FOREVER.after(Duration::MAX),
            Some(Remaining::FOREVER)
        );
        assert!(!Remaining::FOREVER.expires());
        assert!(left.expires());
    }

    #[test]
    fn a_restored_record_starts_the_timer_only_if_it_can_expire() {
        let mut timing: Timing<u64, u64> = Timing::Off(Clock::System);
        assert!(timing.restored(Remaining::FOREVER).is_none());
        assert!(timing.active().is_none());
        let lifetime = timing.restored(Remaining {
            expires: None,
            idle: Some(Duration::from_secs(1)),
        });
        assert!(
            lifetime.is_some_and(|lifetime| lifetime.expires == NEVER && lifetime.idle != NEVER)
        );
        assert!(timing.active().is_some());
    }
}
