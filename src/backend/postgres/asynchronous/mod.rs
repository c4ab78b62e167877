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
//! has not answered 250 ms after the deadline is abandoned: a cancel request is sent, and
//! the operation answers [`Error::TimedOut`] (a read) or [`Error::OutcomeUnknown`] (a
//! write, which may have committed).
//!
//! A cancelled [`CancelToken`](crate::CancelToken) sends the server a cancel request for
//! the running statement, which is rolled back: the operation answers
//! [`Error::Cancelled`] and had no effect.
//!
//! A future dropped while its statement runs sends the server a cancel request too (from
//! a task on the current tokio runtime), so no statement runs on unobserved. What a
//! dropped future has done: dropped before its statement was sent (while it waited for a
//! connection or set the session up), nothing; dropped while a write ran, the write is
//! either cancelled (no effect) or committed before the request arrived (its whole
//! effect): read before retrying. A connection a cancel request was sent for is not
//! reused.
//!
//! # Waiting for a change
//!
//! [`wait_for_change`](AsyncVersionedStore::wait_for_change) reads the record again and
//! again, pausing between reads (1 ms at first, doubling up to 100 ms), until its version
//! differs from the one seen, the deadline passes or the token is cancelled: a change is
//! noticed within the pause in effect, and a long wait costs a read per pause. (The
//! blocking store listens for notifications instead; listening on an async connection
//! is not provided yet.)
//!
//! # Runtime
//!
//! Needs a tokio runtime: connections are driven by tasks it spawns when they open, and
//! cancel requests are sent from tasks.

mod call;
mod pool;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use self::pool::Pool;
use super::answers::{self, flatten};
use super::call::{cause, Effect};
use super::codec::{self, Encoded};
use super::schema::{self, Sql};
use super::{PgVersion, Records};
use crate::backend::asynchronous::pause::pause_until;
use crate::backend::{AsyncVersionedStore, Context, ReadResult};
use crate::deadline::{Phase, TimedOut};
use crate::store::{Cause, Error, Rejected, UpdateWithError};
use crate::version::Counter;

/// The first and the longest pause between two reads of a `wait_for_change`.
const FIRST_POLL: Duration = Duration::from_millis(1);
const LONGEST_POLL: Duration = Duration::from_millis(100);

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
    /// `key=value` connection string), with [`Counter`] versions in table `verkv`.
    pub fn builder(url: impl Into<String>) -> AsyncPgStoreBuilder<K, V> {
        AsyncPgStoreBuilder {
            url: url.into(),
            table: "verkv".to_string(),
            pool_size: 8,
            acquire_timeout: Duration::from_secs(5),
            _records: PhantomData,
        }
    }
}

/// Configures and opens an [`AsyncPgStore`]: made by [`AsyncPgStore::builder`], with the
/// settings of [`PgStoreBuilder`](super::PgStoreBuilder).
pub struct AsyncPgStoreBuilder<K, V, S = Counter> {
    url: String,
    table: String,
    pool_size: usize,
    acquire_timeout: Duration,
    _records: Records<K, V, S>,
}

impl<K, V, S> fmt::Debug for AsyncPgStoreBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPgStoreBuilder")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> AsyncPgStoreBuilder<K, V, S> {
    /// As [`PgStoreBuilder::table`](super::PgStoreBuilder::table).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The most connections the pool opens (default 8).
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long an operation without a deadline waits for a pooled connection (opening
    /// it included) before it gives up as [`Error::Unavailable`] (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// As [`PgStoreBuilder::versions`](super::PgStoreBuilder::versions).
    pub fn versions<S2: PgVersion>(self) -> AsyncPgStoreBuilder<K, V, S2> {
        AsyncPgStoreBuilder {
            url: self.url,
            table: self.table,
            pool_size: self.pool_size,
            acquire_timeout: self.acquire_timeout,
            _records: PhantomData,
        }
    }
}

impl<K, V, S: PgVersion> AsyncPgStoreBuilder<K, V, S> {
    /// Opens the pool, creates the table if it is missing, and checks that its columns
    /// are of the store's types.
    ///
    /// # Errors
    ///
    /// As [`PgStoreBuilder::build`](super::PgStoreBuilder::build).
    pub async fn build(self) -> Result<AsyncPgStore<K, V, S>, Cause> {
        let sql = Sql::new::<S>(&self.table)?;
        let config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|error| Cause::new(format!("bad connection URL: {error}")))?;
        let pool = Pool::builder(pool::Manager::new(config))
            .max_size(self.pool_size)
            .build()
            .map_err(|error| Cause::new(format!("cannot make the pool: {error}")))?;
        let store = AsyncPgStore {
            pool,
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
            .map_err(|error| Cause::new(format!("cannot create the table: {}", cause(&error))))?;
        let found = match conn.client.query(&store.sql.columns, &[]).await {
            Ok(rows) => schema::columns(&rows),
            Err(error) => Err(error),
        }
        .map_err(|error| {
            Cause::new(format!(
                "cannot read the table's columns: {}",
                cause(&error)
            ))
        })?;
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
}

impl<K: Serialize, V: Serialize, S: PgVersion> AsyncPgStore<K, V, S> {
    /// A write's key and value, encoded.
    fn encoded(&self, key: &K, value: &V) -> Result<(Encoded, Encoded), Error<S::Version>> {
        let key = codec::encode("key", key).map_err(Error::BadRecord)?;
        let value = codec::encode("value", value).map_err(Error::BadRecord)?;
        Ok((key, value))
    }
}

impl<K, V, S> AsyncVersionedStore<K, V> for AsyncPgStore<K, V, S>
where
    K: Serialize + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync,
    S: PgVersion,
{
    type Version = S::Version;

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

    async fn insert(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let answer = match self.encoded(&key, &value) {
            Ok((key, encoded)) => {
                self.run(
                    ctx,
                    Effect::Writes,
                    |s| &s.insert,
                    &[&key, &encoded],
                    |row| answers::insert::<S>(row, &key),
                )
                .await
            }
            Err(error) => Err(error),
        };
        flatten(answer).map_err(|error| Rejected { error, value })
    }

    async fn update(
        &self,
        ctx: &Context<'_>,
        key: &K,
        expected: &S::Version,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let expected_column = S::to_column(expected);
        let answer = match self.encoded(key, &value) {
            Ok((key, encoded)) => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&key, &expected_column, &encoded];
                self.run(
                    ctx,
                    Effect::Writes,
                    |s| &s.update,
                    &params,
                    |row| answers::update::<S>(row, &key, expected),
                )
                .await
            }
            Err(error) => Err(error),
        };
        flatten(answer).map_err(|error| Rejected { error, value })
    }

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

    async fn put(
        &self,
        ctx: &Context<'_>,
        key: K,
        value: V,
    ) -> Result<S::Version, Rejected<V, S::Version>> {
        let answer = match self.encoded(&key, &value) {
            Ok((key, encoded)) => {
                self.run(
                    ctx,
                    Effect::Writes,
                    |s| &s.put,
                    &[&key, &encoded],
                    |row| match row {
                        Some(row) => answers::put::<S>(&row, &key),
                        None => Err(Cause::new("a write answered no row").into()),
                    },
                )
                .await
            }
            Err(error) => Err(error),
        };
        answer.map_err(|error| Rejected { error, value })
    }

    async fn wait_for_change(
        &self,
        ctx: &Context<'_>,
        key: &K,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        let started = Instant::now();
        let mut pause = FIRST_POLL;
        let mut first = true;
        loop {
            let read = match self.get(ctx, key).await {
                // A re-read the deadline cut short: the wait ran out.
                Err(Error::TimedOut(_)) if !first => Err(Error::TimedOut(TimedOut::new(
                    Phase::Watching,
                    started.elapsed(),
                ))),
                read => read,
            }?;
            first = false;
            if read.as_ref().map(|record| &record.version) != seen {
                return Ok(read);
            }
            if ctx.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let mut until = Instant::now() + pause;
            if let Some(deadline) = ctx.deadline() {
                if Instant::now() >= deadline {
                    return Err(Error::TimedOut(TimedOut::new(
                        Phase::Watching,
                        started.elapsed(),
                    )));
                }
                until = until.min(deadline);
            }
            pause_until(until, ctx.cancel_token()).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
    }
}
