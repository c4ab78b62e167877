//! A near-cache in front of PostgreSQL (the `postgres` feature): [`NearCache`], the
//! [`VersionedStore`] operations of a [`PgStore`], with reads served from a bounded
//! in-memory [`Store`] kept coherent by the table's change notifications.
//!
//! # What it guarantees
//!
//! - **Writes are exactly as safe as on PostgreSQL alone.** Every write goes to the
//!   database, whose version check decides; memory is never consulted. A stale read,
//!   from memory or not, can never make a stale write succeed.
//! - **A read lags the database by at most the notification delay while connected**: a
//!   copy in memory is served only while no change of its key has been notified since it
//!   was read (or written), so a read misses only changes whose notification has not
//!   reached this process yet (on one host, tens of microseconds after the writer's
//!   answer at the median, milliseconds at the 99th percentile on a loaded machine: see
//!   `docs/benchmarks/postgres.md`). This holds within one process too: two writes of one key
//!   through one near-cache at the same time may leave the older one's copy in memory
//!   until the newer one's notification arrives. Reads that must not lag at all ask for
//!   it: [`NearCache::get_fresh`].
//! - **Losing the notification connection stops serving from memory** at once: reads go
//!   to the database until the connection is back (listening first, then clearing
//!   memory). A connection that dies silently is noticed within about two heartbeats
//!   ([`NearCacheBuilder::heartbeat`], at least a second each): a round trip is sent
//!   after one silent heartbeat, and fails if unanswered for another. [`NearStats`]
//!   says whether the near-cache is coherent now, and counts disconnects and
//!   reconnects.
//!
//! # How it works
//!
//! Memory holds, per key, the database's record (value and the **database's** version,
//! never a local one) or its absence, with a stamp of the invalidation clock. A miss
//! loads from the database through the store's single flight
//! ([`Store::try_get_or_load`]): concurrent misses on one key send one query. A write
//! that succeeds leaves its record in memory (a removal leaves the absence); a refused
//! write drops the key's copy, so the next read loads the current record.
//!
//! A dedicated connection (its loop a thread of its own on the blocking face, a task of
//! the runtime on the async one) listens on the table's channel
//! ([`PgStore::channel`]) and registers as a listener of the table, which turns the
//! table's change trigger on while it is registered (writes to a table nobody listens to
//! are not notified, and cost less); memory serves copies only once the registration has
//! committed, after which every change is either notified or shown by the read (the
//! argument is in the PostgreSQL backend's `listeners.rs`). Each notification carries
//! the changed key (as JSON) and its new version: the key's copy is kept and re-stamped
//! if it is already at that version (the writer's own copy: PostgreSQL delivers
//! notifications in commit order, so every earlier change has been handled and the copy
//! is current), dropped otherwise. A key too long to be notified (over 7000 bytes of
//! JSON) clears memory.
//!
//! **A load that lands after the invalidation it predates.** A load can read a row,
//! then the row changes and its notification is handled, and only then the load's copy
//! lands. Every copy is stamped with the invalidation clock as it was *before* its query
//! was sent, and every notification ticks the clock for its key; a copy stamped before
//! its key's last tick is never served (it is loaded again), whenever it landed. The
//! argument is in the invalidation clock's own documentation (`stamps.rs`). Keys share
//! the clock's stripes (four per record of capacity), so a change of one key may also
//! refuse another's copy: one more load, never a stale read.
//!
//! `wait_for_change` is the database's (it listens on a pooled connection of its own).
//!
//! # Both faces
//!
//! In front of a [`PgStore`] the near-cache is a [`VersionedStore`]; in front of an
//! [`AsyncPgStore`](crate::postgres::AsyncPgStore) (the `postgres-async` feature) it is
//! an [`AsyncVersionedStore`](crate::AsyncVersionedStore), [`AsyncNearCache`]. Memory,
//! the invalidation clock and the listening loop are the same code for both: the async
//! face serves a copy in memory when first polled, awaits a miss's load (one per key, as
//! the blocking face's) and every write, and builds with `build().await`. The listening
//! loop is written once over either face's connection: the blocking face runs it on a
//! thread of its own (one per near-cache, not one per request), the async face as a task
//! of the runtime it was built on, its connection an async one, so that a service on
//! tokio runs no thread of the near-cache's. What a dropped future of the async face has
//! done is documented per operation on its [`AsyncVersionedStore`](crate::AsyncVersionedStore)
//! implementation.
//!
//! # Time to live
//!
//! Staleness is bounded by notifications alone for now; a time-to-live on the copies, as
//! a second line of defence, belongs on the in-memory store and is handed to it where
//! [`NearCacheBuilder::build`] builds the local store.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use verkv::near::NearCache;
//! use verkv::postgres::PgStore;
//! use verkv::{Context, VersionedStore};
//!
//! let db: PgStore<String, u32> =
//!     PgStore::builder("host=127.0.0.1 user=postgres").table("likes").build()?;
//! let cache = NearCache::builder(db).max_capacity(100_000).build()?;
//! let ctx = Context::within(Duration::from_secs(1));
//! let v1 = cache.insert(&ctx, "heat".to_string(), 0).unwrap();
//! let read = cache.get(&ctx, &"heat".to_string()).unwrap().unwrap(); // from memory
//! assert_eq!(read.version, v1); // the database's version
//! assert!(cache.stats().coherent);
//! # Ok::<(), verkv::Cause>(())
//! ```

#[cfg(feature = "postgres-async")]
mod asynchronous;
mod builder;
mod connection;
mod listener;
mod stamps;
mod stats;

pub use builder::NearCacheBuilder;
pub use stats::NearStats;

use crate::sync::{AtomicBool, AtomicU32, Ordering};
use std::fmt;
use std::future::{ready, Future};
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use self::stamps::Stamps;
use self::stats::{count, Counters};
use super::postgres::{PgStore, PgVersion};
use super::{Context, ReadResult, VersionedStore};
use crate::store::{Committed, Outcome, ReadMany, Transaction, TransactionRefused};
use crate::store::{Error, Rejected, Store, UpdateWithError, Versioned};
use crate::version::Counter;
use crate::wait::completed;
use crate::LoadError;

/// How many times a read tries memory (a copy found stale is dropped, and loaded again)
/// before it reads the database directly.
const ATTEMPTS: usize = 3;

/// What memory holds for a key: the database's record or its absence, stamped with the
/// invalidation clock as it was before the query that produced it was sent.
#[derive(Clone)]
struct Cached<V, Ver> {
    record: Option<Versioned<V, Ver>>,
    stamp: u64,
}

/// What the near-cache and its listening loop share.
struct Shared<K, V, Ver> {
    local: Store<K, Cached<V, Ver>>,
    stamps: Stamps,
    counters: Counters,
    /// The server process of the notification connection (0 while there is none).
    listener_pid: AtomicU32,
    /// Set when the near-cache is dropped: the loop then ends.
    stop: AtomicBool,
}

/// A [`PgStore`] with a bounded in-memory copy of the records it reads and writes, kept
/// coherent across processes by the table's change notifications. See the
/// [module documentation](self) for what it guarantees.
///
/// Open one per process (or per table) and share it: it owns a connection of its own
/// and a thread (a task, on the async face) that listens on it, both closed soon after
/// it is dropped.
///
/// `D` is the store in front of which it sits: a [`PgStore`] (the blocking face,
/// [`VersionedStore`]) or, with the `postgres-async` feature, an
/// [`AsyncPgStore`](crate::postgres::AsyncPgStore) (the async face,
/// [`AsyncVersionedStore`](crate::AsyncVersionedStore): [`AsyncNearCache`]). Memory, its
/// coherence and the listening loop are the same for both.
pub struct NearCache<K, V, S: PgVersion = Counter, D = PgStore<K, V, S>> {
    db: D,
    shared: Arc<Shared<K, V, S::Version>>,
}

/// A near-cache in front of an [`AsyncPgStore`](crate::postgres::AsyncPgStore): the
/// [`AsyncVersionedStore`](crate::AsyncVersionedStore) operations, with reads served from
/// memory and every wait for the database awaited.
#[cfg(feature = "postgres-async")]
pub type AsyncNearCache<K, V, S = Counter> =
    NearCache<K, V, S, crate::postgres::AsyncPgStore<K, V, S>>;

impl<K, V, S: PgVersion, D: fmt::Debug> fmt::Debug for NearCache<K, V, S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCache")
            .field("db", &self.db)
            .field("stats", &self.shared.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl<K, V, S: PgVersion, D> NearCache<K, V, S, D> {
    /// A builder for a near-cache in front of `db`.
    pub fn builder(db: D) -> NearCacheBuilder<K, V, S, D> {
        NearCacheBuilder {
            db,
            max_capacity: 10_000,
            heartbeat: Duration::from_secs(1),
            time_to_live: None,
            types: PhantomData,
        }
    }

    /// The store behind the cache: its operations skip memory (and leave it as it is).
    pub fn database(&self) -> &D {
        &self.db
    }

    /// The counters, and whether memory is coherent (served from) now.
    pub fn stats(&self) -> NearStats {
        self.shared.counters.snapshot()
    }

    /// The server process id of the notification connection (`None` while it is being
    /// opened again), to find it in `pg_stat_activity`.
    pub fn listener_pid(&self) -> Option<u32> {
        Some(self.shared.listener_pid.load(Ordering::SeqCst)).filter(|&pid| pid != 0)
    }
}

/// Tells the listening loop (its thread, or its task) to end: it closes its connection within a few tens of
/// milliseconds (or once a connection attempt under way gives up), without making the
/// drop wait for it.
impl<K, V, S: PgVersion, D> Drop for NearCache<K, V, S, D> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// What a load of a key through memory's single flight answers.
type Loaded<V, Ver> = Result<Versioned<Cached<V, Ver>, u64>, LoadError<Error<Ver>>>;

/// What memory does around the database's answers: the same for both faces.
impl<K, V, S, D> NearCache<K, V, S, D>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: PgVersion,
{
    /// Whether memory may serve a copy of `key` stamped `stamp`.
    fn servable(&self, key: &K, stamp: u64) -> bool {
        self.shared.counters.coherent.load(Ordering::SeqCst)
            && self.shared.stamps.is_current(key, stamp)
    }

    /// The invalidation clock now: the stamp of what a query sent next finds or writes.
    fn stamp(&self) -> u64 {
        self.shared.stamps.now()
    }

    /// Leaves in memory what a query sent at `stamp` found or wrote.
    fn land(&self, key: K, record: Option<Versioned<V, S::Version>>, stamp: u64) {
        // A bounded store takes every record (evicting others): nothing to handle.
        let _ = self.shared.local.put(key, Cached { record, stamp });
    }

    /// Drops the copy of `key`, if any (one that lands meanwhile has its own stamp).
    fn forget(&self, key: &K) {
        if let Some(copy) = self.shared.local.version(key) {
            let _ = self.shared.local.remove(key, &copy);
        }
    }

    /// A write's answer, after which memory holds `record` or nothing of `key`.
    fn after_write<T, E>(
        &self,
        key: K,
        stamp: u64,
        answer: Result<T, E>,
        record: impl FnOnce(&T) -> Option<Versioned<V, S::Version>>,
    ) -> Result<T, E> {
        match &answer {
            Ok(written) => self.land(key, record(written), stamp),
            Err(_) => self.forget(&key),
        }
        answer
    }

    /// A write of `written` for `key` (sent at `stamp`) answered `answer`: memory then
    /// holds the value at the version the database gave it, or nothing of `key` if
    /// refused. (`written` is `None` only for a write that never computed its value.)
    fn after_value_write<E>(
        &self,
        key: K,
        written: Option<V>,
        stamp: u64,
        answer: Result<S::Version, E>,
    ) -> Result<S::Version, E> {
        self.after_write(key, stamp, answer, |version| {
            written.map(|value| Versioned {
                value,
                version: version.clone(),
            })
        })
    }

    /// After a transaction sent at `stamp` (whose steps wrote `copies`) was answered
    /// `answer`: memory holds each written record at its new version (and each removed
    /// key as absent); if it was refused, the copies of every key it names are dropped (a
    /// conflict says they changed, and a lost answer leaves them unknown).
    fn after_commit<T>(
        &self,
        copies: Vec<(K, Option<V>)>,
        stamp: u64,
        answer: Result<Committed<S::Version>, T>,
    ) -> Result<Committed<S::Version>, T> {
        if cfg!(verkv_mutant = "near_txn_keeps_copies") {
            // A test build can leave memory as it was, to see the near-cache tests fail.
            return answer;
        }
        match &answer {
            Ok(outcomes) => {
                for ((key, value), outcome) in copies.into_iter().zip(outcomes) {
                    match (outcome, value) {
                        (Outcome::Written(version), Some(value)) => {
                            let version = version.clone();
                            self.land(key, Some(Versioned { value, version }), stamp);
                        }
                        (Outcome::Removed, _) => self.land(key, None, stamp),
                        _ => {}
                    }
                }
            }
            Err(_) => copies.iter().for_each(|(key, _)| self.forget(key)),
        }
        answer
    }

    /// Reads `key` through memory: a servable copy, or one load of the database shared
    /// by the concurrent misses (`load`, through memory's single flight; `led` is set if
    /// this caller's own load ran). `None` if memory kept refusing what it held: read the
    /// database directly. Written once for both faces: the blocking one's loads are
    /// ready at once.
    async fn read_through<F: Future<Output = Loaded<V, S::Version>>>(
        &self,
        key: &K,
        led: &AtomicBool,
        mut load: impl FnMut() -> F,
    ) -> Option<ReadResult<V, S::Version>> {
        let local = &self.shared.local;
        for _ in 0..ATTEMPTS {
            if let Some(copy) = local.get(key) {
                if self.servable(key, copy.value.stamp) {
                    count(&self.shared.counters.hits);
                    return Some(Ok(copy.value.record));
                }
                let _ = local.remove(key, &copy.version);
            }
            led.store(false, Ordering::SeqCst);
            let copy = match load().await {
                Ok(copy) => copy,
                Err(LoadError::Loader(error)) => return Some(Err((*error).clone())),
                Err(LoadError::Interrupted(interrupted)) => return Some(Err(interrupted.into())),
            };
            if led.load(Ordering::SeqCst) {
                // Read from the database during this call: current when it was read.
                count(&self.shared.counters.misses);
                return Some(Ok(copy.value.record));
            }
            if self.servable(key, copy.value.stamp) {
                count(&self.shared.counters.hits);
                return Some(Ok(copy.value.record));
            }
            let _ = local.remove(key, &copy.version);
        }
        None
    }
}

/// The keys a transaction names, and the values it writes, for memory afterwards.
fn copies_of<K: Clone, V: Clone, Ver>(transaction: &Transaction<K, V, Ver>) -> Vec<(K, Option<V>)> {
    transaction
        .steps
        .iter()
        .map(|step| (step.key().clone(), step.value().cloned()))
        .collect()
}

impl<K, V, S> NearCache<K, V, S>
where
    K: Serialize + Hash + Eq + Clone,
    V: Serialize + DeserializeOwned + Clone,
    S: PgVersion,
{
    /// Reads `key` from the database, bypassing memory (which then holds what was read):
    /// for a read that must see every write committed before it started.
    ///
    /// # Errors
    ///
    /// As [`VersionedStore::get`] on the [`PgStore`].
    pub fn get_fresh(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        count(&self.shared.counters.bypassed);
        let stamp = self.stamp();
        let record = self.db.get(ctx, key)?;
        self.land(key.clone(), record.clone(), stamp);
        Ok(record)
    }
}

impl<K, V, S> VersionedStore<K, V> for NearCache<K, V, S>
where
    K: Serialize + Hash + Eq + Clone,
    V: Serialize + DeserializeOwned + Clone,
    S: PgVersion,
{
    type Version = S::Version;

    fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.shared.counters.coherent.load(Ordering::SeqCst) {
            let led = AtomicBool::new(false);
            let view = self.shared.local.view(ctx);
            let read = completed(self.read_through(key, &led, || {
                ready(view.try_get_or_load(key.clone(), || {
                    led.store(true, Ordering::SeqCst);
                    let stamp = self.stamp();
                    self.db.get(ctx, key).map(|record| Cached { record, stamp })
                }))
            }));
            if let Some(answer) = read {
                return answer;
            }
        }
        count(&self.shared.counters.bypassed);
        self.db.get(ctx, key)
    }

    fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.insert(ctx, key.clone(), value);
        self.after_value_write(key, copy, stamp, answer)
    }

    fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.update(ctx, key, expected, value);
        self.after_value_write(key.clone(), copy, stamp, answer)
    }

    fn try_update_with<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        let stamp = self.stamp();
        let mut copy = None;
        let answer = self.db.try_update_with(ctx, key, expected, |current| {
            let value = compute(current)?;
            copy = Some(value.clone());
            Ok(value)
        });
        self.after_value_write(key.clone(), copy, stamp, answer)
    }

    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>> {
        let stamp = self.stamp();
        let answer = self.db.remove(ctx, key, expected);
        self.after_write(key.clone(), stamp, answer, |_| None)
    }

    fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let (stamp, copy) = (self.stamp(), Some(value.clone()));
        let answer = self.db.put(ctx, key.clone(), value);
        self.after_value_write(key, copy, stamp, answer)
    }

    /// Reads from the [`PgStore`] (copies in memory are not of one instant), counted as
    /// bypassing memory.
    fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        count(&self.shared.counters.bypassed);
        self.db.get_many(ctx, keys)
    }

    /// Writes through to the [`PgStore`]; memory then holds each written record at its
    /// new version (and each removed key as absent), under the stamp taken before the
    /// transaction was sent. If the transaction was refused, the copies of every key it
    /// names are dropped: a conflict says they changed, and a lost answer leaves them
    /// unknown.
    fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        let (stamp, copies) = (self.stamp(), copies_of(&transaction));
        let answer = self.db.commit(ctx, transaction);
        self.after_commit(copies, stamp, answer)
    }

    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        self.db.wait_for_change(ctx, key, seen)
    }
}
