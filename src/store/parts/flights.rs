//! One load in progress, and the callers waiting for it.
//!
//! A caller that misses a key looks in its shard's [`Flights`] table. If a load of the key
//! is in progress it joins it and waits; otherwise it registers a new [`Flight`] and
//! leads: it runs the loader (outside any lock) and publishes what came of it exactly
//! once, through its [`Leader`]. A leader dropped without a result (its loader panicked,
//! or its future was dropped) publishes [`Landed::Abandoned`], so waiters never hang.
//!
//! No wake-up is lost: a waiter takes its listener *before* it looks at the outcome, and
//! the leader sets the outcome *before* it notifies. If the waiter looked first, the
//! notification comes after its listener was registered and wakes it; if the leader went
//! first, the waiter's look finds the outcome (checked with loom).
//!
//! Lock order: a shard's lock (read to join or lead, write to land), then its table's;
//! a leader that gives up takes the table's alone, and a flight's outcome lock is always
//! taken alone. Nothing waits while holding any of them.

use std::any::Any;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::Instant;

use hashbrown::HashTable;

use crate::deadline::{Phase, Wait};
use crate::store::reentry;
use crate::store::Versioned;
use crate::sync::{Arc, Event, Mutex};

/// What a load publishes to those waiting for it: the record, or the loader's error with
/// its type erased (callers of one key may use different error types).
pub(crate) type Outcome<V, Ver> = Result<Versioned<V, Ver>, std::sync::Arc<dyn Any + Send + Sync>>;

/// A shard's loads in progress.
pub(crate) type Loads<K, V, Ver> = Flights<K, Outcome<V, Ver>>;

/// What a waiter finds when a load is over.
#[derive(Clone)]
pub(crate) enum Landed<R> {
    /// The leader's result.
    Done(R),
    /// The leader stopped without a result (its loader panicked, or its future was
    /// dropped): the waiters try again themselves.
    Abandoned,
}

/// One load in progress: its outcome once published, and the event that announces it.
pub(crate) struct Flight<R> {
    outcome: Mutex<Option<Landed<R>>>,
    landed: Event,
}

// A flight's state is one outcome, written once by a plain assignment under its lock: a
// panic cannot leave it half-written, so using a flight after one is sound (std's `Mutex`
// says the same of itself). Without this, the lock inside would make every store lose
// `UnwindSafe` just for holding loads in progress.
impl<R> UnwindSafe for Flight<R> {}
impl<R> RefUnwindSafe for Flight<R> {}

impl<R> Flight<R> {
    fn new() -> Self {
        Flight {
            outcome: Mutex::new(None),
            landed: Event::new(),
        }
    }

    /// Identifies the flight while it is alive, for the re-entry check.
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Sets the outcome, then wakes every waiter.
    fn publish(&self, landed: Landed<R>) {
        *self.outcome.lock() = Some(landed);
        self.landed.notify();
    }
}

impl<R: Clone> Flight<R> {
    fn outcome(&self) -> Option<Landed<R>> {
        self.outcome.lock().clone()
    }

    /// Panics if this thread is the flight's own loader: it would wait for itself.
    fn forbid_waiting_on_itself(&self) {
        assert!(
            !reentry::is_inside(self.id()),
            "verkv: a loader asked the store for the very key it is loading; \
             it would wait for its own result forever \
             (load what the key needs without going through get_or_load for it)"
        );
    }

    /// Blocks until the load is over; `started` is when this caller began waiting.
    ///
    /// # Errors
    ///
    /// When `wait` gives up (a deadline in [`Phase::Loading`], or a cancellation); the
    /// load goes on without this caller.
    pub(crate) fn wait<W: Wait>(&self, wait: &W, started: Instant) -> Result<Landed<R>, W::Error> {
        self.forbid_waiting_on_itself();
        loop {
            let listener = self.landed.listen();
            if let Some(landed) = self.outcome() {
                return Ok(landed);
            }
            wait.park(listener, started, Phase::Loading)?;
        }
    }

    /// Completes when the load is over. Dropping the future stops waiting; the load
    /// goes on.
    #[cfg(not(verkv_loom))]
    pub(crate) async fn landed(&self) -> Landed<R> {
        self.forbid_waiting_on_itself();
        loop {
            let listener = self.landed.listen();
            if let Some(landed) = self.outcome() {
                return landed;
            }
            listener.await;
        }
    }
}

/// A shard's loads in progress, by key. Each entry holds the key of a leader until the
/// leader takes it back to write its record.
pub(crate) struct Flights<K, R> {
    table: Mutex<HashTable<(K, Arc<Flight<R>>)>>,
}

/// What a caller that missed does.
pub(crate) enum Joined<'a, K, R> {
    /// Nobody loads the key: this caller does.
    Lead(Leader<'a, K, R>),
    /// Somebody loads it: this caller waits for that load, keeping its key to try again
    /// should the load be abandoned.
    Join(Arc<Flight<R>>, K),
}

impl<K, R> Flights<K, R> {
    pub(crate) fn new() -> Self {
        Flights {
            table: Mutex::new(HashTable::new()),
        }
    }

    /// Removes `flight`'s entry, handing its key back.
    fn remove(&self, hash: u64, flight: &Arc<Flight<R>>) -> Option<K> {
        let mut table = self.table.lock();
        let entry = table
            .find_entry(hash, |(_, f)| Arc::ptr_eq(f, flight))
            .ok()?;
        let ((key, _), _) = entry.remove();
        Some(key)
    }
}

impl<K: Eq, R> Flights<K, R> {
    /// Joins the load of `key` in progress, or registers one that this caller leads.
    ///
    /// The `verkv_mutant = "no_single_flight"` cfg never joins (every caller loads), so
    /// that the tests and the loom model can show they catch it.
    pub(crate) fn join_or_lead(
        &self,
        hash: u64,
        key: K,
        rehash: impl Fn(&K) -> u64,
    ) -> Joined<'_, K, R> {
        let mut table = self.table.lock();
        if !cfg!(verkv_mutant = "no_single_flight") {
            if let Some((_, flight)) = table.find(hash, |(k, _)| *k == key) {
                return Joined::Join(flight.clone(), key);
            }
        }
        let flight = Arc::new(Flight::new());
        table.insert_unique(hash, (key, flight.clone()), |(k, _)| rehash(k));
        Joined::Lead(Leader {
            flights: self,
            hash,
            flight,
            registered: true,
            result: None,
        })
    }
}

/// The caller that runs the loader of a flight. When dropped it ends the flight's entry
/// (unless [`take_key`](Leader::take_key) did) and publishes its result, or
/// [`Landed::Abandoned`] if it has none: after a panic, or when a future is dropped.
pub(crate) struct Leader<'a, K, R> {
    flights: &'a Flights<K, R>,
    hash: u64,
    flight: Arc<Flight<R>>,
    /// Whether the flight's entry is still in the table.
    registered: bool,
    result: Option<R>,
}

impl<K, R> Leader<'_, K, R> {
    /// Identifies the load, for a [`ClosureScope`](crate::store::reentry::ClosureScope) around
    /// its loader.
    pub(crate) fn id(&self) -> usize {
        self.flight.id()
    }

    /// Ends the flight's entry and hands the key back. Called under the shard's write
    /// lock, in the critical section that writes the record, so that no caller can find
    /// neither the record nor the flight and start a second load.
    pub(crate) fn take_key(&mut self) -> K {
        self.registered = false;
        self.flights
            .remove(self.hash, &self.flight)
            .expect("a flight's entry stays in its table until its leader takes it")
    }

    /// Publishes `result` to every waiter (when `self` drops, right after).
    pub(crate) fn land(mut self, result: R) {
        self.result = Some(result);
    }
}

impl<K, R> Drop for Leader<'_, K, R> {
    fn drop(&mut self) {
        if self.registered {
            self.flights.remove(self.hash, &self.flight);
        }
        let landed = self.result.take().map_or(Landed::Abandoned, Landed::Done);
        self.flight.publish(landed);
    }
}
