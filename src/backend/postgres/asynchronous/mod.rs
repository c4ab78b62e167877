//! [`AsyncPgStore`]: [`PgStore`](super::PgStore)'s table, statements and guarantees as
//! [`AsyncVersionedStore`] futures, for services on tokio (the `postgres-async`
//! feature).
//!
//! It shares the blocking store's SQL, codecs, row answers and error meanings, and runs
//! them on `tokio-postgres` with a `deadpool` pool: an operation that waits for the
//! database awaits, so no executor thread blocks, and a thousand operations waiting on
//! the database need no thousand threads. Everything the blocking store's module
//! documentation says of the storage, the one round trip per write, the re-runs and the
//! failures holds here too.
//!
//! # Deadlines, cancellation and dropped futures
//!
//! As in the blocking store, a [`Context`]'s deadline bounds the wait for a pooled
//! connection (a timer on the client side, which also covers opening a connection) and is
//! handed to the server as `lock_timeout` and `statement_timeout`. A statement the server
//! has not answered 250 ms after the deadline is abandoned on the client side too: a
//! cancel request is sent, and the operation answers [`Error::TimedOut`] (a read) or
//! [`Error::OutcomeUnknown`] (a write, which may have committed).
//!
//! A cancelled [`CancelToken`](crate::CancelToken) sends the server a cancel request for
//! the running statement, which is rolled back: the operation answers
//! [`Error::Cancelled`] and had no effect.
//!
//! A future dropped while its statement runs sends the server a cancel request too (from
//! a task of the runtime that drives the connection), so no statement runs on
//! unobserved; the connection is then closed rather than reused, so the request cannot
//! reach a later statement. Every write is one statement, and every transaction one SQL
//! transaction, so the server applies it whole or not at all; a dropped future never
//! leaves part of a write. What a dropped future has done, per operation:
//!
//! | operation | dropped before its statement was sent | dropped while it ran |
//! |---|---|---|
//! | `get`, `get_many`, `wait_for_change` | nothing | nothing (a read) |
//! | `insert`, `update`, `put`, `remove` | nothing | nothing (cancelled), or its whole write if it committed before the cancel request arrived: read the record before retrying |
//! | `update_with`, `try_update_with` | nothing (the read, the closure) | as `update` |
//! | `retry_update`, `try_retry_update` | the writes of its earlier attempts were all refused, so nothing | as `update`, for the attempt running |
//! | `get_or_load` | nothing (the read, the loader) | as `insert` |
//! | `commit` | nothing | nothing (its statement is cancelled and its connection closed, which rolls the SQL transaction back), or all of it if its `COMMIT` committed first |
//! | `transact` | the commits of its earlier attempts were all refused, so nothing | as `commit`, for the attempt running |
//!
//! "Before it was sent" covers the wait for a connection, opening one, and setting the
//! session's timeouts or preparing the statements (which change no record). A connection
//! whose statement a cancel request was sent for is not reused.
//!
//! # Waiting for a change
//!
//! [`wait_for_change`](AsyncVersionedStore::wait_for_change) listens as the blocking
//! store's does, with the same statements: its pooled session `LISTEN`s on the table's
//! channel and registers as a listener (which turns the table's change trigger on while
//! anybody listens: see [`PgStore`](super::PgStore)'s documentation), reads the record,
//! and reads it again on each notification about the key, until its version differs from
//! the one seen, the deadline passes or the token is cancelled. A change is noticed when
//! its notification arrives, and a long wait costs nothing but the session it holds.
//!
//! # Runtime
//!
//! Needs a tokio runtime: connections are driven by tasks spawned on the runtime that
//! polls the operation that opens them, and cancel requests are sent from tasks of that
//! runtime. An operation polled outside any tokio runtime answers
//! [`Error::Misconfigured`]. Its futures are `Send`.

mod call;
mod pool;
mod transaction;
mod watch;

pub(crate) use self::pool::{connect, Notifications};

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use self::call::AllRows;
use self::pool::Pool;
use super::answers::{self, flatten, Answer};
use super::builder::{failed, Awaited, PgStoreBuilder};
use super::codec::{self, Encoded};
use super::failure::Effect;
use super::pool::Statements;
use super::schema::{self, Sql};
use super::{PgVersion, Records, Registry};
use crate::backend::{AsyncVersionedStore, Context, ReadResult};
use crate::store::{Cause, Error, Rejected, UpdateWithError};
use crate::store::{Committed, ReadMany, Transaction, TransactionRefused};
use crate::version::Counter;

/// A versioned key-value store in a PostgreSQL table whose operations are futures: the
/// [`AsyncVersionedStore`] operations on the table a [`PgStore`](super::PgStore) of the
/// same name uses (they share its records).
///
/// Cheap to share between tasks (`&AsyncPgStore` is enough); it holds a connection
/// pool. Needs a tokio runtime.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use verkv::postgres::AsyncPgStore;
/// use verkv::{AsyncVersionedStore, Context, Error};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), verkv::Cause> {
/// let store: AsyncPgStore<String, u32> = AsyncPgStore::builder("host=127.0.0.1 user=postgres")
///     .table("likes")
///     .build()
///     .await?;
/// let ctx = Context::within(Duration::from_secs(1));
/// let v1 = store.insert(&ctx, "heat".to_string(), 0).await.unwrap();
/// let v2 = store.update(&ctx, &"heat".to_string(), &v1, 1).await.unwrap();
/// let stale = store.update(&ctx, &"heat".to_string(), &v1, 5).await.unwrap_err();
/// assert_eq!(stale.error, Error::Stale { expected: v1, current: v2 });
/// # Ok(())
/// # }
/// ```
pub struct AsyncPgStore<K, V, S = Counter> {
    pool: Pool,
    sql: Sql,
    registry: Registry,
    /// The same server and role, for a near-cache's notification connection.
    listener_config: tokio_postgres::Config,
    acquire_timeout: Duration,
    _records: Records<K, V, S>,
}

impl<K, V, S> fmt::Debug for AsyncPgStore<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPgStore")
            .field("channel", &self.sql.channel)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<K, V> AsyncPgStore<K, V> {
    /// A builder for a store on the server at `url` (a `postgresql://` URL or a
    /// `key=value` connection string), with [`Counter`] versions in table `verkv`: the
    /// settings of [`PgStore::builder`](super::PgStore::builder).
    pub fn builder(url: impl Into<String>) -> AsyncPgStoreBuilder<K, V> {
        PgStoreBuilder::new(url.into())
    }
}

/// Configures and opens an [`AsyncPgStore`]: made by [`AsyncPgStore::builder`], with the
/// settings of a [`PgStore`](super::PgStore)'s builder.
pub type AsyncPgStoreBuilder<K, V, S = Counter> = PgStoreBuilder<K, V, S, Awaited>;

impl<K, V, S: PgVersion> PgStoreBuilder<K, V, S, Awaited> {
    /// Opens the pool, creates the table if it is missing, and checks that its columns
    /// are of the store's types. Needs a tokio runtime (the connection is driven by a
    /// task it spawns).
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::build`](PgStoreBuilder#method.build).
    pub async fn build(self) -> Result<AsyncPgStore<K, V, S>, Cause> {
        let sql = Sql::new::<S>(&self.table)?;
        let config: tokio_postgres::Config = self.config()?;
        let pool = Pool::builder(pool::Manager::new(config.clone()))
            .max_size(self.pool_size as usize)
            .build()
            .map_err(|error| Cause::new(format!("cannot make the pool: {error}")))?;
        let store = AsyncPgStore {
            pool,
            registry: Registry::new(&sql),
            listener_config: config,
            sql,
            acquire_timeout: self.acquire_timeout,
            _records: PhantomData,
        };
        let conn = pool::checkout(
            &store.pool,
            &Context::background(),
            store.acquire_timeout,
            Instant::now(),
        )
        .await
        .map_err(|error: Error<S::Version>| Cause::new(error))?;
        conn.client
            .batch_execute(&store.sql.create)
            .await
            .map_err(failed("create the table"))?;
        // The table may have been there already, made for other types.
        let rows = conn.client.query(&store.sql.columns, &[]).await;
        let found = rows
            .and_then(|rows| schema::columns(&rows))
            .map_err(failed("read the table's columns"))?;
        schema::check_columns::<S>(&self.table, &found)?;
        drop(conn);
        Ok(store)
    }
}

impl<K, V, S> AsyncPgStore<K, V, S> {
    /// As [`PgStore::channel`](super::PgStore::channel).
    pub fn channel(&self) -> &str {
        &self.sql.channel
    }

    /// How a session of its own listens on the table's channel and registers.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The connection settings of a near-cache's notification connection.
    pub(crate) fn listener_config(&self) -> &tokio_postgres::Config {
        &self.listener_config
    }
}

impl<K: Serialize, V: Serialize, S: PgVersion> AsyncPgStore<K, V, S> {
    /// Writes `value` under `key` with the statement `pick` chooses (its parameters: the
    /// key, `expected` if given, the value), its row read by `answer`; a refusal or
    /// failure gives the value back.
    async fn write(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: Option<&S::Version>,
        value: V,
        pick: fn(&Statements) -> &Statement,
        mut answer: impl FnMut(Option<Row>, &Encoded) -> Answer<S::Version, S::Version> + Send,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let encoded = codec::encode("key", key)
            .and_then(|key| Ok((key, codec::encode("value", &value)?)))
            .map_err(Error::BadRecord);
        let answer = match encoded {
            Ok((key, encoded)) => {
                let expected = expected.map(S::to_column);
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
                if let Some(expected) = &expected {
                    params.push(expected);
                }
                params.push(&encoded);
                let read = |row| answer(row, &key);
                self.run(ctx, Effect::Writes, pick, &params, read).await
            }
            Err(error) => Err(error),
        };
        flatten(answer).map_err(|error| Rejected { error, value })
    }
}

impl<K, V, S> AsyncVersionedStore<K, V> for AsyncPgStore<K, V, S>
where
    K: Serialize + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync,
    S: PgVersion,
{
    type Version = S::Version;

    /// One statement. Dropped, it has done nothing (its statement, if running, is
    /// cancelled).
    fn get(
        &self,
        ctx: &Context<'_>,
        key: &K,
    ) -> impl Future<Output = ReadResult<V, S::Version>> + Send {
        let key = codec::encode("key", key).map_err(Error::BadRecord);
        async move {
            let key = key?;
            self.run(
                ctx,
                Effect::Reads,
                |s| &s.get,
                &[&key],
                |row| answers::get::<V, S>(row, &key),
            )
            .await
        }
    }

    /// One statement. Dropped before it was sent, nothing; while it ran, nothing (the
    /// statement is cancelled) or the whole insert, if it committed first.
    async fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.write(ctx, &key, None, value, |s| &s.insert, answers::insert::<S>)
            .await
    }

    /// One statement. Dropped before it was sent, nothing; while it ran, nothing (the
    /// statement is cancelled) or the whole update, if it committed first.
    async fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.write(
            ctx,
            key,
            Some(expected),
            value,
            |s| &s.update,
            |row, key| answers::update::<S>(row, key, expected),
        )
        .await
    }

    /// A read, the closure, then [`update`](AsyncVersionedStore::update). Dropped
    /// before the update was sent, nothing; while it ran, as `update`.
    async fn try_update_with<E: Send>(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        compute: impl FnOnce(&V) -> Result<V, E> + Send,
    ) -> Result<S::Version, UpdateWithError<S::Version, E>> {
        let read = self.get(ctx, key).await?;
        let current = answers::at_expected(read, expected)?;
        let value = compute(&current).map_err(UpdateWithError::Closure)?;
        self.update(ctx, key, expected, value)
            .await
            .map_err(|refused| refused.error.into())
    }

    /// One statement. Dropped before it was sent, nothing; while it ran, nothing (the
    /// statement is cancelled) or the whole removal, if it committed first.
    fn remove(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
    ) -> impl Future<Output = Result<V, Error<S::Version>>> + Send {
        let key = codec::encode("key", key).map_err(Error::BadRecord);
        async move {
            let key = key?;
            let expected_column = S::to_column(expected);
            flatten(
                self.run(
                    ctx,
                    Effect::Writes,
                    |s| &s.remove,
                    &[&key, &expected_column],
                    |row| answers::remove::<V, S>(row, &key, expected),
                )
                .await,
            )
        }
    }

    /// One statement. Dropped before it was sent, nothing; while it ran, nothing (the
    /// statement is cancelled) or the whole write, if it committed first.
    async fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        self.write(ctx, &key, None, value, |s| &s.put, answers::put::<S>)
            .await
    }

    /// One statement. Dropped, it has done nothing (its statement, if running, is
    /// cancelled).
    async fn get_many(
        &self,
        ctx: &Context<'_>,
        keys: &[K],
    ) -> Result<ReadMany<V, S::Version>, Error<S::Version>>
    where
        K: Clone,
    {
        let keys = codec::encode_keys(keys)?;
        let work = AllRows {
            keys: &keys,
            answer: answers::get_many::<V, S>,
        };
        self.run_work(ctx, Effect::Reads, work).await
    }

    /// One SQL transaction, as the blocking store's. Dropped before its first statement
    /// was sent, nothing; while it ran, nothing (its statement is cancelled and its
    /// connection closed, which rolls it back), or all of it if its `COMMIT` had
    /// committed first.
    async fn commit(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>>
    where
        K: Clone,
    {
        self.commit_transaction(ctx, transaction).await
    }

    /// Listens for the key's changes (see the module documentation). Dropped, it has
    /// done nothing (a session it left listening is closed, not reused).
    async fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        self.watch(ctx, &key, seen).await
    }
}
