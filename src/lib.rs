//! An embedded, in-memory, versioned key-value store with optimistic concurrency control.
//!
//! # Overview
//!
//! Every record in a [`Store`] carries a version. A writer says which version it read,
//! and a write based on a version that is no longer current is **rejected** instead of
//! silently overwriting somebody else's change. This is what web APIs do with
//! `If-Match` (answering `412 Precondition Failed`) and SQL with
//! `UPDATE … SET …, version = version + 1 WHERE id = $1 AND version = $2 RETURNING version`
//! — as an in-process data structure, with errors that tell *not found* from *stale* and
//! say what the current version is.
//!
//! | operation | does | refuses with |
//! |---|---|---|
//! | [`get`](Store::get) | reads value and version together | — |
//! | [`insert`](Store::insert) | creates, only if absent (`If-None-Match: *`) | [`Error::Exists`] |
//! | [`update`](Store::update) | compare-and-swap on the version | [`Error::NotFound`], [`Error::Stale`] |
//! | [`update_with`](Store::update_with) | read-modify-write under the version check | the same ([`try_update_with`](Store::try_update_with): or the closure's error) |
//! | [`remove`](Store::remove) | deletes, only if still at the version | [`Error::NotFound`], [`Error::Stale`] |
//! | [`put`](Store::put) | blind write: overwrites whatever is there | — |
//! | [`invalidate`](Store::invalidate) | blind removal: removes whatever version is there | — |
//! | [`get_or_load`](Store::get_or_load) | reads; on a miss, loads and creates (one loader per key at a time) | — |
//! | [`get_many`](Store::get_many) | reads several keys as of one instant ([`get_many_array`](Store::get_many_array) for a number of keys fixed when compiling, allocating nothing; also on PostgreSQL and the near-cache, through [`VersionedStore`], and awaited through [`AsyncVersionedStore`]) | — |
//! | [`commit`](Store::commit) | a [`Transaction`]: compares and writes on several keys, all or nothing (also on PostgreSQL and the near-cache, through [`VersionedStore`], and awaited through [`AsyncVersionedStore`]) | [`TransactionError::Conflict`] (every failed compare, with the current version) |
//! | [`transact`](Store::transact) | reads several keys, computes a transaction, commits it; retries on a conflict (on every backend, through either trait) | [`TransactError`] |
//!
//! # Example
//!
//! ```
//! use verkv::{Error, Store};
//!
//! let store: Store<&str, u32> = Store::new();
//! store.insert("likes", 0).unwrap();
//!
//! // Alice and Bob both read version 1.
//! let alice = store.get(&"likes").unwrap();
//! let bob = store.get(&"likes").unwrap();
//!
//! // Alice writes first and gets version 2.
//! let v2 = store.update(&"likes", &alice.version, alice.value + 1).unwrap();
//!
//! // Bob's write is based on version 1: refused, not silently applied.
//! let refused = store.update(&"likes", &bob.version, bob.value + 1).unwrap_err();
//! assert_eq!(refused.error, Error::Stale { expected: 1, current: v2 });
//!
//! // Bob re-reads and re-applies: both likes count.
//! let fresh = store.get(&"likes").unwrap();
//! store.update(&"likes", &fresh.version, fresh.value + 1).unwrap();
//! assert_eq!(store.get(&"likes").unwrap().value, 2);
//! ```
//!
//! # Consistency guarantees
//!
//! - **Per record, everything is linearizable.** Each operation on a key takes effect
//!   atomically at one instant between its call and its return. A read never sees a
//!   value with another write's version (no torn pairs).
//! - **One winner per version.** Of several writers that read the same version, exactly
//!   one `update` (or `update_with`, or `remove`) succeeds; the others get
//!   [`Error::Stale`] with the winner's version and change nothing.
//! - **A refused operation has no effect**: no value, no version changes, and any value
//!   passed in is handed back ([`Rejected::value`]).
//! - **Versions of a key never repeat**, even across removal and re-creation, so a client
//!   holding an old version is never accepted again (see [`VersionScheme`]).
//! - **Across keys, transactions.** A [`Transaction`] committed with
//!   [`commit`](Store::commit) takes effect at one instant: its compares are checked and
//!   its writes applied under the locks of every shard it needs, or it is refused and
//!   nothing changes. [`get_many`](Store::get_many) reads several keys as of one instant.
//!   Transactions, multi-key reads and single-key operations together are strictly
//!   serializable. [`len`](Store::len), [`clear`](Store::clear) and [`iter`](Store::iter)
//!   still work shard by shard and are not snapshots of one instant.
//!
//! # Transactions across keys
//!
//! The shape etcd's `Txn` made familiar: compares (a key is at a version, a key is
//! absent), then writes (put, update, create, remove), applied together if every compare
//! holds; otherwise nothing is applied and the answer names **every** compare that
//! failed with the key's current version, so a retry re-reads only what moved. Each key
//! takes one step: a write carries its own condition (an [`update`](Transaction::update)
//! is a compare and a write). Each write answers with its new version.
//!
//! ```
//! use verkv::{Store, Transaction, TransactionError};
//!
//! let stock: Store<&str, u32> = Store::new();
//! let north = stock.insert("north", 10).unwrap();
//! let south = stock.insert("south", 0).unwrap();
//! // Move 4 units north → south, only if neither changed since it was read.
//! let moved = stock.commit(Transaction::new().update("north", north, 6).update("south", south, 4));
//! assert!(moved.is_ok());
//! // The same transaction again is based on versions that are gone: nothing applies.
//! let again = stock.commit(Transaction::new().update("north", north, 2).update("south", south, 8));
//! let TransactionError::Conflict(stale) = again.unwrap_err().error else { unreachable!() };
//! assert_eq!(stale.len(), 2);
//! assert_eq!(stock.get_many(&[&"north", &"south"]).iter().flatten().map(|r| r.value).sum::<u32>(), 10);
//! ```
//!
//! [`transact`](Store::transact) is the optimistic loop (the multi-key `retry_update`):
//! it reads a set of keys at one instant, lets a closure build the transaction outside
//! any lock, commits it on condition that nothing it read moved, and retries on a
//! conflict. The shards a transaction needs are locked in increasing index (one global
//! order, so two transactions never deadlock), a shard once however many of its keys
//! the transaction names; a [`Bounded`] view's deadline covers the time queued on every
//! one, and a transaction that times out had no effect. With the cache: a compare on an
//! expired record finds it absent; a bounded store's writes may evict other records,
//! never one the same transaction wrote (a transaction writing more than a shard can
//! hold is refused); the eviction listener hears each record a transaction removed or
//! replaced once, after every lock is let go; statistics count transactions and their
//! conflicts, and the keys of failed compares among the hot conflicting keys.
//!
//! Every backend has them, with the same answers: [`VersionedStore::commit`],
//! [`get_many`](VersionedStore::get_many) and [`transact`](VersionedStore::transact) on
//! PostgreSQL and the near-cache, and the same three awaited through
//! [`AsyncVersionedStore`] (the in-memory store awaits a busy shard lock holding none of
//! the others; PostgreSQL runs one SQL transaction on an async connection).
//!
//! # Closures
//!
//! [`update_with`](Store::update_with) runs its closure under the key's shard lock, after
//! the version check passed, at most once. The closure may read its argument and compute
//! the new value; a panic leaves the record untouched. It must not call back into the
//! same store: such a call panics with a clear message rather than deadlocking. Keep it
//! short; it holds up its shard. The same holds for every callback the store runs under
//! a shard lock: patches, the [weigher](StoreBuilder::weigher) and the [`Expiry`] policy.
//! The [eviction listener](StoreBuilder::eviction_listener) and loaders run outside every
//! lock and may use the store.
//!
//! Closures that may refuse to write go to the `try_` methods
//! ([`try_update_with`](Store::try_update_with),
//! [`try_retry_update`](Store::try_retry_update)), which take a closure returning
//! `Ok(new value)` or `Err(reason)`: an error leaves the record untouched and reaches the
//! caller. The plain methods take closures that return the value itself, so the common
//! case needs no type annotation; a `try_` closure names its error type by returning one.
//! A closure patch ([`patch_with`](Store::patch_with)) edits a draft and returns
//! `Result<(), E>`.
//!
//! No lock guard ever leaves the API: reads return owned copies ([`Versioned`]), so
//! holding a result can never block a writer. For large values, store an
//! [`Arc`](std::sync::Arc) to make those copies cheap.
//!
//! # Deadlines, cancellation and retries
//!
//! Plain methods wait for a shard lock as long as it takes, like `Mutex::lock`. A
//! [`Bounded`] view gives every operation a deadline that also covers the time spent
//! **queued** behind other writers (Go's `context.WithTimeout`):
//! [`within(Duration)`](Store::within) per operation, [`until(Instant)`](Store::until)
//! shared by several, or [`bounded()`](Store::bounded) with the builder's
//! [`default_timeout`](StoreBuilder::default_timeout). A [`CancelToken`] stops them from
//! another thread. **An operation that times out or is cancelled has had no effect**,
//! and its error ([`TimedOut`]) says whether it was queued or retrying, and for how long.
//!
//! [`retry_update`](Store::retry_update) is the optimistic loop (read, compute, compare-
//! and-swap, re-read on a stale version) with backoff, reporting how many attempts it
//! took. [`wait_for_change`](Store::wait_for_change) blocks until a record's version moves
//! on (a blocking query), and [`changed`](Store::changed) is the same as a future for any
//! async runtime.
//!
//! ```
//! use std::time::Duration;
//! use verkv::{Error, Store};
//!
//! let store: Store<&str, u64> = Store::new();
//! store.insert("visits", 0).unwrap();
//! let request = store.within(Duration::from_millis(100));
//! match request.retry_update(&"visits", |n| n + 1) {
//!     Ok(done) => assert_eq!(done.attempts, 1),
//!     Err(err) => panic!("{err}"), // e.g. "timed out after 100ms queued behind other operations; …"
//! }
//! ```
//!
//! # Loading on a miss
//!
//! [`get_or_load`](Store::get_or_load) reads a record and, on a miss, runs a loader and
//! inserts its value with a fresh version (moka's `get_with`, quick_cache's
//! `get_or_insert_with`). Concurrent misses on one key run **one** loader, outside any
//! lock; the other callers wait for its record, each within its own deadline if it has
//! one. A loader's error reaches them all and is not cached
//! ([`try_get_or_load`](Store::try_get_or_load)); [`get_or_load_async`](Store::get_or_load_async)
//! takes a future.
//!
//! ```
//! let store: verkv::Store<u64, String> = verkv::Store::new();
//! let user = store.get_or_load(7, || "Ada".to_string()); // e.g. a database query
//! assert_eq!((user.value.as_str(), user.version), ("Ada", 1));
//! ```
//!
//! # Version kinds
//!
//! | scheme | version type | for |
//! |---|---|---|
//! | [`Counter`] (default) | `u64`, `1, 2, 3…` per key | cheap; clients echo versions back |
//! | [`UuidV4`] | random [`uuid::Uuid`] | versions shown to clients that must not be guessable |
//!
//! ```
//! use verkv::{Store, UuidV4};
//!
//! let store: Store<u64, String, UuidV4> = Store::builder().versions::<UuidV4>().build();
//! let version = store.insert(1, "x".into()).unwrap();
//! assert_eq!(verkv::etag::EntityTag::from_version(&version).to_string(), format!("\"{version}\""));
//! ```
//!
//! # Entity tags
//!
//! The [`etag`] module turns versions into strong HTTP entity tags and parses `If-Match`,
//! `If-None-Match` and bare `X-Expected-Version` values, with clear errors for malformed
//! input. With the `http` feature, `verkv::http` evaluates a request's preconditions
//! against a record (RFC 9110 §13.2 order) into the status to answer with.
//!
//! # Partial updates
//!
//! [`patch`](Store::patch) applies a [`Patch`] — only the fields a client sent — under
//! the version check, the in-process form of an HTTP `PATCH` with `If-Match`. The patch
//! works on a copy of the record and checks the would-be record; if it refuses (with the
//! names of the fields it refuses, see [`Invalid`]), nothing changes, not even the
//! version. A patch that leaves the record equal to what it was keeps the version too.
//!
//! Typed patches are structs of [`Field`]s, which tell *absent* (not sent) from *null*
//! (sent as `null`) from a value (`""` and `0` included). JSON records take RFC 7396
//! merge patches and RFC 6902 JSON Patches (the `json` module, with the `json`
//! feature).
//!
//! ```
//! use verkv::{PatchError, Store};
//!
//! let store: Store<&str, Vec<u32>> = Store::new();
//! let v1 = store.insert("scores", vec![3, 1]).unwrap();
//! let add = |score: u32| {
//!     move |scores: &mut Vec<u32>| {
//!         if scores.contains(&score) {
//!             return Err(format!("{score} is already there"));
//!         }
//!         scores.push(score);
//!         Ok(())
//!     }
//! };
//! let v2 = store.patch(&"scores", &v1, add(2)).unwrap();
//! let refused = store.patch(&"scores", &v2, add(3)).unwrap_err();
//! assert_eq!(refused, PatchError::Patch("3 is already there".to_string()));
//! assert_eq!(refused.to_string(), "patch refused: 3 is already there");
//! assert_eq!(store.version(&"scores"), Some(v2)); // refused: the version stays
//! ```
//!
//! The [`Patch`] trait shows a typed patch with validation; the `movies` example has two
//! clients patch one record, one of them from a stale read.
//!
//! # Statistics
//!
//! Switched on in the builder ([`statistics`](StoreBuilder::statistics)), a store counts
//! what it did — hits and misses, loads, writes, refusals by reason, timeouts by phase,
//! evictions — and how long its writers queued for shard locks; with
//! [`hot_keys`](StoreBuilder::hot_keys) it also keeps the keys whose writes were refused
//! as stale most often: where writers fight. [`Store::stats`] reports a [`Stats`]
//! snapshot, [`Stats::since`] the difference between two. Off, the store counts nothing;
//! on, a read counts in its own thread's counter, so reads still write no shared line.
//! The `metrics` feature publishes the snapshot through the `metrics` facade.
//!
//! ```
//! use verkv::Store;
//!
//! let store: Store<&str, u32> = Store::builder().hot_keys(5).build();
//! let v1 = store.insert("likes", 0).unwrap();
//! store.update(&"likes", &v1, 1).unwrap();
//! let stale = store.update(&"likes", &v1, 1); // a second writer, from the same read
//! assert!(stale.is_err());
//! let stats = store.stats().unwrap();
//! assert_eq!((stats.inserts, stats.updates, stats.refusals.stale), (1, 1, 1));
//! assert_eq!(store.stats_top_conflicts()[0].key, "likes");
//! ```
//!
//! # How the crate is built
//!
//! Layers, lowest first; each uses only the ones above it in this list.
//!
//! | folder | owns |
//! |---|---|
//! | `sync.rs`, `sync/` | the only files that name lock, atomic and event types (swapped for loom's under `cfg(verkv_loom)`); `sync/biased.rs` is the shard lock, biased towards readers so a `get` writes no memory another core's `get` writes, and the crate's only `unsafe` code; `sync/thread_index.rs` gives each live thread an index of its own (its reader slot, its statistics stripe); `sync/alarm.rs` is the one timer thread that wakes async waits at their deadlines |
//! | `version/` | version schemes ([`Counter`], [`UuidV4`]) and [`etag`] parsing |
//! | `deadline/` | how an operation waits: forever, until a deadline or a [`CancelToken`], or not at all (one try of a lock, for the async face, which awaits instead); [`TimedOut`] |
//! | `stats/` | statistics: the counters the store's one-line hooks write (reads in per-thread stripes, writes in their shard's), the hot-key summary, and the [`Stats`] report summed from them and from what the store reads of each shard (`store/report.rs`) |
//! | `store/` | [`Store`]: `facade.rs` hashes, locks and delegates; `transaction/` checks a [`Transaction`]'s input, orders its steps by shard, locks those shards in that order and applies it all or nothing, and reads several keys under the same shards' read locks ([`get_many`](Store::get_many)); `stale.rs` refuses a stale conditional write under the read lock, in a shard that has refused stale writes lately; `shard.rs` is the single-threaded core where **compare-and-swap and every version check live**, written once over the per-record state (`state.rs`: none in a plain shard, eviction state in a bounded or expiring one; `records.rs` picks the table); `parts/` holds what a shard carries when the builder asks for it: the capacity bound's eviction policy, the expiry timer and its clock, the removals told to the eviction listener, the loads in progress; records, builder, iteration, errors |
//! | `wait/` | operations that wait, on top of the store: [`Bounded`] views, [`retry_update`](Store::retry_update), [`transact`](Store::transact) (and the views' transactions; its loop, written once as a future, serves every backend's `transact` on both faces, the blocking ones running it through `completed.rs`), [`wait_for_change`](Store::wait_for_change) |
//! | `patch/` | partial updates: [`Patch`], [`Field`], JSON patches |
//! | `http/` | preconditions evaluated into HTTP statuses (feature `http`) |
//! | `cache/` | what makes the store an application's cache, on top of it: single-flight [`get_or_load`](Store::get_or_load), the builder's expiry, clock and listener settings, [`retain`](Store::retain) and [`invalidate_all`](Store::invalidate_all) |
//! | `snapshot/` | warm restart (feature `snapshot`): the snapshot format, writing a store's records shard by shard and restoring a store from them, its versions resumed; the shards export and take back their records (with the timer's deadlines and the policy's standing) through `store/` |
//! | `backend/` | the [`VersionedStore`] trait over where records live: the in-memory store, PostgreSQL (feature `postgres`), and a near-cache of PostgreSQL in memory (`backend/near/`); its async face [`AsyncVersionedStore`] (`backend/asynchronous/`) for the in-memory store, for PostgreSQL on tokio (`backend/postgres/asynchronous/`, feature `postgres-async`) and for the near-cache in front of it (`backend/near/asynchronous.rs`), whose notification loop is written once over either face's connection (`backend/near/listener.rs`, `connection.rs`); PostgreSQL's transaction is written once over an open SQL transaction of either face (`backend/postgres/transaction.rs`) |
//!
//! Higher layers add methods to [`Store`] in their own files (`impl Store` blocks), so the
//! store never names them. CI's layer check (`.ci/layers`) refuses any import of a later
//! layer.
//!
//! # Backends
//!
//! [`VersionedStore`] is the store's operations as a trait, each with a [`Context`]
//! (deadline and cancel token). The in-memory [`Store`] implements it, and with the
//! `postgres` feature so does `verkv::postgres::PgStore`, which keeps the records in a
//! PostgreSQL table shared by several processes: code written against the trait moves
//! from one process to several by changing the constructor. The errors keep their
//! meaning, plus [`Error::Unavailable`] (the operation had no effect; worth retrying),
//! [`Error::OutcomeUnknown`] (a write was sent and the connection died: it may have
//! happened), [`Error::BadRecord`] (a record that does not convert to or from the
//! store's types) and [`Error::Misconfigured`] (the backend refuses the store's settings,
//! such as a database that does not exist); the last two are not worth retrying.
//! [`Error`] says which errors are.
//!
//! The trait also has [`get_many`](VersionedStore::get_many) and
//! [`commit`](VersionedStore::commit), with the same [`Transaction`] and the same
//! answers on every backend; a networked backend's failures come as
//! [`TransactionError::Failed`]. On `PgStore` a transaction is one SQL transaction that
//! locks every key in one global order (an absent key by an uncommitted row nobody else
//! sees), checks every condition with all of them locked, and either rolls back naming
//! every failed one with its current version or writes and commits; `get_many` is one
//! statement, so one snapshot. The near-cache writes a transaction through and then
//! holds each written record at its new version (or drops every copy the transaction
//! named, if it was refused). [`transact`](VersionedStore::transact), the optimistic
//! loop over them, is provided on every backend (written once, for both traits).
//!
//! [`AsyncVersionedStore`] is the same trait with futures, for services on an async
//! runtime: a future never blocks its executor thread behind another operation (a busy
//! shard lock, a change, another caller's load, the pause between two attempts are
//! awaited), and a future dropped before it completed has had its whole effect or none,
//! never part of it. Its futures are `Send`. The in-memory [`Store`] implements it
//! (needing no particular runtime; a dropped future has had no effect) and, with the
//! `postgres-async` feature, so does `verkv::postgres::AsyncPgStore`, the PostgreSQL
//! backend on tokio: `PgStore`'s table, statements, row decoding and error meanings (one
//! implementation, run by either client), where a future dropped while its statement
//! runs has that statement cancelled on the server (a write then either did not happen
//! or had committed whole; its documentation says what each dropped operation has done);
//! and so does the near-cache in front of it, `verkv::near::AsyncNearCache`, whose
//! notification loop is then a task of the runtime (a dropped future leaves no part of a
//! write, and memory no staler than one notification).
//!
//! # A bounded cache
//!
//! [`StoreBuilder::max_capacity`] bounds a store by its number of records, or with a
//! [`weigher`](StoreBuilder::weigher) by their total weight (moka's names). Writes beyond
//! the bound evict records the store judges least likely to be read again: a policy that
//! survives scans and loops, chosen on real request traces (`docs/benchmarks/policy.md`). An evicted
//! record is gone like a removed one (its versions are never handed out again), and a
//! read of a hot key stays a read: recording the access writes only when what is
//! recorded changes. A record that could never fit is refused with [`Error::TooHeavy`],
//! its value handed back.
//!
//! ## The eviction policy
//!
//! Each shard evicts on its own, from its share of the bound. The policy is an adaptive
//! window in front of a frequency-guarded main queue, chosen by measurement on real
//! request traces against moka and quick_cache (`docs/benchmarks/policy.md`):
//!
//! - **Window.** A new record enters a small FIFO queue. One read again while there goes
//!   on to the main queue when it reaches the head (S3-FIFO's rule, Yang et al., SOSP
//!   2023).
//! - **Admission.** One not read again goes on to the main queue only if a frequency
//!   sketch says its key was used more often lately than the record the main queue would
//!   evict next (TinyLFU's filter, Einziger et al., 2017); otherwise it is evicted. So a
//!   scan, or a loop bigger than the cache, passes through the window and leaves the main
//!   queue alone.
//! - **Main.** A CLOCK: a record at its head that was read since it last passed there
//!   goes round again; one that was not is evicted.
//! - **Adaptive window.** Keys evicted from the window are remembered for a while, with
//!   how much the window had let go by then. One that comes back from no further behind
//!   the window than its ceiling (a window the limits allow would have kept it) counts:
//!   if still rare (recency brought it back) it grows the window; if frequent it shrinks
//!   the window and goes straight to the main queue (the admission should have kept it:
//!   S3-FIFO's ghost rule, for frequent keys only). One from further back, as in a loop
//!   or a scan bigger than that, is treated as a new key. The window stays between 1%
//!   and 50% of the shard's capacity: about 1% on loops and frequency-heavy workloads
//!   (as moka's fixed window), more on recency-heavy ones.
//!
//! On traces held out of its tuning its mean hit ratio leads the better of moka and
//! quick_cache by less than a point (0.0 to 0.6, depending on which traces are held
//! out), and moka's stays higher on some traces, `lirs_multi2` and `lirs_cpp` at its
//! smallest size (`docs/benchmarks/policy.md`, "Counting only the ghost returns a window
//! could have kept").
//!
//! A read records its access with relaxed writes to the record's own byte and the
//! sketch, only while what they record changes: reads of hot keys stay reads.
//!
//! ```
//! use verkv::{Error, Store};
//!
//! let sessions: Store<u64, String> = Store::builder().max_capacity(10_000).build();
//! for user in 0..100_000 {
//!     sessions.put(user, format!("session of {user}")).unwrap();
//! }
//! assert!(sessions.len() <= 10_000);
//! // Evicted is absent: a conditional write on it finds nothing.
//! let gone = (0..100_000).find(|user| !sessions.contains_key(user)).unwrap();
//! assert_eq!(sessions.update(&gone, &1, String::new()).unwrap_err().error, Error::NotFound);
//! ```
//!
//! # Expiry
//!
//! [`StoreBuilder::time_to_live`], [`time_to_idle`](StoreBuilder::time_to_idle), a
//! per-record [`Expiry`] policy and per-write [`expiring_after`](Store::expiring_after)
//! views make records expire. **From the instant a record expires** it is invisible to
//! every read (`get`, `version`, `contains_key`, iteration; get-or-load loads again) and
//! to every conditional write: one naming its version is refused, with
//! [`Error::Expired`] while the store still holds the record and [`Error::NotFound`] once
//! it was reclaimed (as after an eviction), and its versions are never accepted again.
//! [`len`](Store::len) may count expired records not reclaimed yet: writes reclaim them,
//! a bounded amount each, with no background thread. Time comes from a [`Clock`]; tests
//! drive a [`ManualClock`]. A store without expiry reads no clock. The
//! [eviction listener](StoreBuilder::eviction_listener) hears of every record that
//! leaves, with its [`RemovalCause`], outside every lock.
//!
//! # Warm restart
//!
//! With the `snapshot` feature, `Store::snapshot_to` writes the records — keys, values,
//! versions and the time each has left to live — to any `io::Write` while the store
//! serves (`snapshot_to_file` replaces a file atomically), and `StoreBuilder::restore`
//! builds a store from them with the builder's settings. A cache that starts empty after
//! a deploy sends its whole load to the database at once; one restored starts warm.
//!
//! It also keeps the promise that **versions of a key never repeat** across the restart.
//! Clients hold versions (entity tags) while the process restarts; a store that handed
//! versions out from 1 again would accept their stale writes. The snapshot carries where
//! the version scheme must resume ([`VersionScheme::resume_point`]), and a restored
//! store resumes every shard above the highest version the old one had retired in any
//! shard and above every version it restores (keys land in other shards: every store
//! seeds its hasher at random).
//!
//! What a snapshot of a live store holds:
//!
//! - **Each shard at one instant.** A shard's records are copied under its read lock,
//!   then encoded with no lock held: reads go on, and writes wait only while their own
//!   shard is copied. Across shards there is no single instant: a write to a shard
//!   after its copy is missing (a record created then is absent, one removed then is
//!   still there, one updated then has its earlier value and version), one to a shard
//!   not yet copied is there.
//! - **Versions up to each shard's copy.** A version handed out after its shard was
//!   copied is unknown to the snapshot and may be handed out again by the restored
//!   store. For a deploy, stop writes to the old store (or the old process) before the
//!   last snapshot: then nothing is lost and nothing repeats.
//! - **Time left, not deadlines.** A record keeps the time it had left, less the
//!   wall-clock time between the snapshot and the restore (none on a [`ManualClock`],
//!   whose owner moves its time); expired records are left out (their versions still
//!   count).
//! - **A bounded store** restores up to its bound and never evicts to do so, the
//!   records the old store's policy held hottest first.
//!
//! A snapshot that is truncated, corrupt (every frame is checksummed), foreign, of a
//! newer format, of another version scheme or of other key or value types is refused
//! with an error that says what and where, and nothing is loaded; `restore_lenient`
//! keeps the intact blocks instead and says how much it loaded.
//!
#![cfg_attr(
    feature = "snapshot",
    doc = r#"
```
use verkv::{Error, Store, StoreBuilder};

let before: Store<String, u32> = Store::new();
let v1 = before.insert("stock".into(), 10).unwrap();
let v2 = before.update("stock", &v1, 9).unwrap(); // a client holds v2 as its ETag
let mut snapshot = Vec::new();
before.snapshot_to(&mut snapshot).unwrap();
drop(before); // the deploy

let (after, report) = StoreBuilder::<String, u32>::new().restore(&snapshot[..]).unwrap();
assert_eq!(report.loaded, 1);
let v3 = after.update("stock", &v2, 8).unwrap(); // another client writes first
let stale = after.update("stock", &v2, 7).unwrap_err();
assert_eq!(stale.error, Error::Stale { expected: v2, current: v3 });
```
"#
)]
//!
//! # Cargo features
//!
//! | feature | adds |
//! |---|---|
//! | `serde` | `Deserialize` for [`Field`]: a missing key is absent, `null` is null |
//! | `json` | the `json` module: JSON Merge Patch and JSON Patch for JSON records |
//! | `http` | the `http` module: `ETag` headers, and `If-Match` / `If-None-Match` / `X-Expected-Version` evaluated into statuses |
//! | `postgres` | the `postgres` module: [`VersionedStore`] on a PostgreSQL table (`PgStore`); the `near` module: a near-cache in front of it, kept coherent by notifications (`NearCache`) |
//! | `postgres-async` | `postgres` and, in the `postgres` module, `AsyncPgStore`: [`AsyncVersionedStore`] on the same table, schema and statements, on tokio (`tokio-postgres` with a `deadpool` pool); in the `near` module, `AsyncNearCache`: the near-cache in front of it |
//! | `metrics` | `Stats::publish`: the statistics as Prometheus-style counters, gauges and a lock-wait histogram, through the [`metrics`](https://docs.rs/metrics) facade to the recorder the application installed |
//! | `snapshot` | the `snapshot` module: `Store::snapshot_to` / `snapshot_to_file` and `StoreBuilder::restore`, a warm restart that keeps versions (keys and values through serde) |
//!
//! # Errors
//!
//! [`Error`] lists why a conditional operation was refused; [`Rejected`] adds the value
//! that was not written; [`UpdateWithError`] adds the closure's own error, and
//! [`PatchError`] the patch's. A refused transaction comes back whole in a
//! [`TransactionRefused`] with its [`TransactionError`]. Messages are lowercase and carry the versions:
//! `stale version: expected 3, current 5`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod cache;
mod deadline;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod patch;
#[cfg(feature = "snapshot")]
#[cfg_attr(docsrs, doc(cfg(feature = "snapshot")))]
pub mod snapshot;
mod stats;
mod store;
mod sync;
mod version;
mod wait;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use backend::near;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use backend::postgres;
#[cfg(not(verkv_loom))]
pub use backend::AsyncVersionedStore;
pub use backend::{Context, ReadResult, VersionedStore};
pub use cache::loading::LoadError;
pub use deadline::{CancelToken, Interrupted, Phase, TimedOut};
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub use patch::json;
pub use patch::{Field, FieldProblem, Invalid, NullNotAllowed, Patch, PatchError};
pub use stats::{
    Evictions, HotKey, Loads, LockWaits, Refusals, Stats, Timeouts, LOCK_WAIT_BUCKETS,
};
pub use store::{
    Cause, Clock, Committed, Conflict, DefaultHashBuilder, Error, Expect, Expiry, Iter, Keys,
    ManualClock, NotInserted, Outcome, ReadMany, Rejected, RemovalCause, Store, StoreBuilder,
    Transaction, TransactionError, TransactionRefused, UpdateWithError, VersionOf, Versioned,
};
pub use version::etag;
pub use version::{Counter, UuidV4, VersionScheme};
pub use wait::{Bounded, Retried, TransactError, Transacted};

/// The README's examples, compiled and run as doctests so it stays true (they use
/// every feature).
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
