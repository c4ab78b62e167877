//! The PostgreSQL backend (the `postgres` feature): [`PgStore`], the same operations as
//! the in-memory store on a table shared by every process that opens it; with the
//! `postgres-async` feature, `AsyncPgStore`, the same as futures on tokio (see its
//! documentation for what differs).
//!
//! # Storage
//!
//! One table per store, created on demand (with its sequence, and a trigger that
//! notifies changes while somebody listens): `key jsonb PRIMARY KEY, value jsonb NOT
//! NULL, version bigint | uuid`.
//! Keys and values go through serde as JSON (`jsonb`), so they can be read and queried
//! from SQL; two keys are the same record when their JSON values are equal (mind types
//! whose JSON form is not unique, such as hash maps with several keys). Versions are
//! drawn by the database (see [`PgVersion`]). Needs PostgreSQL 14 or newer
//! (`CREATE OR REPLACE TRIGGER`); the tests run on 15.
//!
//! # One round trip per write
//!
//! Each conditional write is one statement that writes if the record is at the expected
//! version and otherwise reads the current version, in the same round trip, so a refusal
//! tells *not found* from *stale* and says the current version. The read shares the
//! statement's snapshot, which may predate a write that committed while the statement
//! waited; when the answer cannot be trusted (a stale answer naming the very version
//! expected, or a create-only insert that conflicted with a row its snapshot does not
//! show), the statement had no effect and is run again. The histories this produces are
//! checked for linearizability by the test suite.
//!
//! `try_update_with` reads, runs the closure (at most once, on the value at the expected
//! version) without holding anything on the server, and writes with the same version
//! check: two round trips, and a change in between refuses the write as stale.
//!
//! # Deadlines and cancellation
//!
//! A [`Context`]'s deadline bounds the wait for a pooled connection and is handed to the
//! server: `lock_timeout` for the wait on a row lock (reported as
//! [`Phase::Queued`](crate::Phase::Queued)) and `statement_timeout` for the rest
//! ([`Phase::Running`](crate::Phase::Running)). A cancelled [`CancelToken`](crate::CancelToken)
//! sends the server a cancel request for the running statement. Either way the statement
//! is rolled back: a timed-out or cancelled write had no effect. Setting the session's
//! timeouts costs one round trip when they change, so bounded operations cost one more
//! round trip than unbounded ones. An operation whose deadline has already passed is
//! refused before anything is sent (unlike the in-memory store, which still takes a free
//! lock).
//!
//! # Transactions
//!
//! [`commit`](VersionedStore::commit) runs one SQL transaction (read committed) per
//! verkv transaction: it locks every key in one global order (the rows with `SELECT …
//! FOR UPDATE`, an absent key by inserting its row, uncommitted and so invisible to
//! others), checks every condition with all of them locked, and either rolls back
//! naming every failed condition with the current version, or writes and commits. The
//! protocol and why it holds are in `transaction.rs`. An update whose row is at the
//! expected version costs one round trip (its conditional `UPDATE` locks and writes the
//! row); any other step one to lock its key and, if it writes, one more; plus `BEGIN`
//! and `COMMIT`.
//!
//! # Waiting for a change
//!
//! While a session is registered as listening, every write fires a trigger that
//! notifies the table's channel ([`PgStore::channel`]); while none is, the trigger is off
//! and writes cost what the bare statement costs (PostgreSQL commits notifying
//! transactions one at a time). `wait_for_change` listens on a pooled connection,
//! registers it, reads, re-reads on each notification about its key, and withdraws the
//! registration when it returns; it holds that connection for as long as it waits, so
//! size the pool ([`PgStoreBuilder::pool_size`]) for the waiters as well as the other
//! calls. Registering and withdrawing the first or the last listener turns the trigger
//! on or off, which waits for the writes in flight and holds up later ones for as long.
//! The registration protocol and the argument that no change a listener depends on goes
//! unnotified are in `listeners.rs`.
//!
//! # Failures
//!
//! What each failure means, and whether it is worth retrying (see also [`Error`]):
//!
//! - [`Error::Unavailable`] when the server cannot be reached within the acquire timeout
//!   ([`PgStoreBuilder::acquire_timeout`]), the connection breaks before a statement is
//!   sent, or the server answers that it cannot serve the statement now (a conflict
//!   with another transaction, too many connections, shutting down): the operation had
//!   no effect; retry after a pause. The pool replaces broken connections by itself.
//! - [`Error::OutcomeUnknown`] when the connection dies after a write was sent, or the
//!   write's answer does not decode (removing a record whose value does not decode
//!   removes it): it may have committed; read before retrying.
//! - [`Error::BadRecord`] when a key or value cannot be encoded as JSON (nothing is
//!   sent), or a stored record does not decode as the store's types (it was written by
//!   another program, or by a store of other types); the message names the key. Not
//!   worth retrying: the same call fails the same way until the record or the types
//!   change. A table whose columns are of other types than the store's is refused
//!   earlier, by [`PgStoreBuilder::build`].
//! - [`Error::Misconfigured`] when the server answers that the store's settings do not
//!   fit it: it refuses to connect (the database or the role does not exist, the
//!   password is wrong, the role may not connect: SQLSTATE class 28 and 3D000), or
//!   refuses a statement for its names, types or privileges (class 42: the table was
//!   dropped or changed, or may not be used). The operation had no effect. Not worth
//!   retrying: it fails the same way until the settings or the server are changed. A
//!   refused connection is reported as soon as the server answers, when the pool has no
//!   open connection to wait for, not after the acquire timeout; the pool keeps trying
//!   in the background, and the store works again once the server lets it connect.

mod answers;
#[cfg(feature = "postgres-async")]
mod asynchronous;
mod builder;
mod call;
mod codec;
mod failure;
mod listeners;
mod pool;
mod schema;
mod transaction;
mod versions;
mod watch;

#[cfg(feature = "postgres-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-async")))]
pub use asynchronous::{AsyncPgStore, AsyncPgStoreBuilder};
#[cfg(feature = "postgres-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-async")))]
pub use builder::Awaited;
pub use builder::{Blocking, PgStoreBuilder};
pub use versions::PgVersion;

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use self::answers::flatten;
#[cfg(feature = "postgres-async")]
pub(crate) use self::asynchronous::{connect, Notifications};
use self::builder::failed;
use self::failure::Effect;
pub(crate) use self::listeners::{Batch, Registry};
use self::pool::{LastFailure, Manager, Pool};
use self::schema::Sql;
use super::{Context, ReadResult, VersionedStore};
use crate::store::{Cause, Error, Rejected, UpdateWithError};
use crate::store::{Committed, ReadMany, Transaction, TransactionRefused};
use crate::version::Counter;
use crate::wait::completed;

/// The types a store or builder is for, without owning any (so it is `Send` and `Sync`
/// whatever they are).
type Records<K, V, S> = PhantomData<fn() -> (K, V, S)>;

/// A versioned key-value store in a PostgreSQL table: the [`VersionedStore`]
/// operations, with versions drawn by the database and deadlines enforced by the server.
///
/// Cheap to share between threads (`&PgStore` is enough); it holds a connection pool.
/// Several processes (or stores) that open the same table share its records and refuse
/// each other's stale writes.
///
/// # Examples
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use verkv::postgres::PgStore;
/// use verkv::{Context, Error, VersionedStore};
///
/// let store: PgStore<String, u32> =
///     PgStore::builder("host=127.0.0.1 user=postgres").table("likes").build()?;
/// let ctx = Context::within(Duration::from_secs(1));
/// let v1 = store.insert(&ctx, "heat".to_string(), 0).unwrap();
/// let v2 = store.update(&ctx, &"heat".to_string(), &v1, 1).unwrap();
/// let stale = store.update(&ctx, &"heat".to_string(), &v1, 5).unwrap_err();
/// assert_eq!(stale.error, Error::Stale { expected: v1, current: v2 });
/// # Ok::<(), verkv::Cause>(())
/// ```
pub struct PgStore<K, V, S = Counter> {
    pool: Pool,
    /// The connection settings, for connections opened outside the pool.
    config: ::postgres::Config,
    last_failure: LastFailure,
    sql: Sql,
    registry: Registry,
    acquire_timeout: Duration,
    _records: Records<K, V, S>,
}

impl<K, V, S> fmt::Debug for PgStore<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("channel", &self.sql.channel)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<K, V> PgStore<K, V> {
    /// A builder for a store on the server at `url` (a `postgresql://` URL or a
    /// `key=value` connection string), with [`Counter`] versions in table `verkv`.
    pub fn builder(url: impl Into<String>) -> PgStoreBuilder<K, V> {
        PgStoreBuilder::new(url.into())
    }
}

impl<K, V, S> PgStore<K, V, S> {
    /// The channel on which the table's changes are notified while a session is
    /// registered as listening (a near-cache or a `wait_for_change` on the table): every
    /// write sends a JSON payload `{"key": …, "version": "…"}` (the key as PostgreSQL
    /// prints the `jsonb`, `null` for keys longer than 7000 bytes of it; the version as
    /// a string, `null` for a removal).
    /// A plain `LISTEN` on it hears the writes only while such a session is registered.
    pub fn channel(&self) -> &str {
        &self.sql.channel
    }

    /// How a session of its own listens on the table's channel and registers, so that
    /// writes are notified to it (such as a near-cache's notification connection).
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The connection settings, for a connection of its own outside the pool (such as a
    /// near-cache's notification connection).
    pub(crate) fn config(&self) -> &::postgres::Config {
        &self.config
    }
}

impl<K, V, S: PgVersion> PgStoreBuilder<K, V, S, Blocking> {
    /// Opens the pool, creates the table if it is missing, and checks that its columns
    /// are of the store's types.
    ///
    /// # Errors
    ///
    /// If the URL does not parse, the table name is not plain, the server cannot be
    /// reached within the acquire timeout, the server refuses to connect (such as to a
    /// database, or as a role, that does not exist: its answer is reported as soon as it
    /// comes, as for [`Error::Misconfigured`], not after the acquire timeout), the server
    /// refuses to create the table, or the table is there already with columns of other
    /// types (such as one made with other [versions](PgStoreBuilder::versions)): the
    /// message names the table, the column, the type found and the type expected.
    pub fn build(self) -> Result<PgStore<K, V, S>, Cause> {
        let sql = Sql::new::<S>(&self.table)?;
        let config: ::postgres::Config = self.config()?;
        let last_failure = LastFailure::default();
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(self.acquire_timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager::new(config.clone(), last_failure.clone()));
        let registry = Registry::new(&sql);
        let store = PgStore {
            pool,
            config,
            last_failure,
            sql,
            registry,
            acquire_timeout: self.acquire_timeout,
            _records: PhantomData,
        };
        let started = Instant::now();
        let mut conn = pool::checkout(
            &store.pool,
            &store.last_failure,
            &Context::background(),
            store.acquire_timeout,
            started,
        )
        .map_err(|error: Error<S::Version>| Cause::new(error))?;
        conn.client
            .batch_execute(&store.sql.create)
            .map_err(failed("create the table"))?;
        // The table may have been there already, made for other types.
        let found = conn
            .client
            .query(&store.sql.columns, &[])
            .and_then(|rows| schema::columns(&rows))
            .map_err(failed("read the table's columns"))?;
        schema::check_columns::<S>(&self.table, &found)?;
        // Registrations of sessions that are gone would keep notifications on.
        completed(store.registry.tidy(&mut *conn.client))
            .map_err(failed("tidy the table's listeners"))?;
        drop(conn);
        Ok(store)
    }
}

impl<K, V, S> VersionedStore<K, V> for PgStore<K, V, S>
where
    K: Serialize,
    V: Serialize + DeserializeOwned,
    S: PgVersion,
{
    type Version = S::Version;

    fn get(&self, ctx: &Context<'_>, key: &K) -> ReadResult<V, S::Version> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        self.run(ctx, Effect::Reads, |client, statements| {
            answers::get::<V, S>(client.query_opt(&statements.get, &[&key])?, &key)
        })
    }

    fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let answer = self.encoded(&key, &value).and_then(|(key, encoded)| {
            self.run(ctx, Effect::Writes, |client, statements| {
                let row = client.query_opt(&statements.insert, &[&key, &encoded])?;
                answers::insert::<S>(row, &key)
            })
        });
        flatten(answer).map_err(|error| Rejected { error, value })
    }

    fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let expected_column = S::to_column(expected);
        let answer = self.encoded(key, &value).and_then(|(key, encoded)| {
            self.run(ctx, Effect::Writes, |client, statements| {
                let params: [&(dyn ::postgres::types::ToSql + Sync); 3] =
                    [&key, &expected_column, &encoded];
                let row = client.query_opt(&statements.update, &params)?;
                answers::update::<S>(row, &key, expected)
            })
        });
        flatten(answer).map_err(|error| Rejected { error, value })
    }

    fn try_update_with<E>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        let current = answers::at_expected(self.get(ctx, key)?, expected)?;
        let value = compute(&current).map_err(UpdateWithError::Closure)?;
        self.update(ctx, key, expected, value)
            .map_err(|refused| refused.error.into())
    }

    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> Result<V, Error<S::Version>> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        let expected_column = S::to_column(expected);
        flatten(self.run(ctx, Effect::Writes, |client, statements| {
            let row = client.query_opt(&statements.remove, &[&key, &expected_column])?;
            answers::remove::<V, S>(row, &key, expected)
        }))
    }

    fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        let keys = codec::encode_keys(keys)?;
        self.run(ctx, Effect::Reads, |client, statements| {
            answers::get_many::<V, S>(client.query(&statements.get_many, &[&keys])?, &keys)
        })
    }

    fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        self.commit_transaction(ctx, transaction)
    }

    fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let answer = self.encoded(&key, &value).and_then(|(key, encoded)| {
            self.run(ctx, Effect::Writes, |client, statements| {
                let row = client.query_one(&statements.put, &[&key, &encoded])?;
                answers::put::<S>(Some(row), &key)
            })
        });
        flatten(answer).map_err(|error| Rejected { error, value })
    }

    fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        self.watch(ctx, &key, seen)
    }
}

impl<K: Serialize, V: Serialize, S: PgVersion> PgStore<K, V, S> {
    /// A write's key and value, encoded.
    fn encoded(
        &self,
        key: &K,
        value: &V,
    ) -> Result<(codec::Encoded, codec::Encoded), Error<S::Version>> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        let value = codec::encode("value", value).map_err(Error::BadRecord)?;
        Ok((key, value))
    }
}
