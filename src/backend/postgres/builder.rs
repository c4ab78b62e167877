//! The builder both PostgreSQL stores are opened with: one set of settings, and a type
//! parameter naming the face (blocking or async) whose store `build` opens.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use super::failure::cause;
use super::{PgVersion, Records};
use crate::store::Cause;
use crate::version::Counter;

/// The face of a [`PgStoreBuilder`] that opens a [`PgStore`](super::PgStore), whose
/// operations block (the default).
#[derive(Debug)]
pub enum Blocking {}

/// The face of a [`PgStoreBuilder`] that opens an
/// [`AsyncPgStore`](super::AsyncPgStore), whose operations are futures.
#[cfg(feature = "postgres-async")]
#[derive(Debug)]
pub enum Awaited {}

/// Configures and opens a [`PgStore`](super::PgStore) (made by
/// [`PgStore::builder`](super::PgStore::builder)) or, with face [`Awaited`] (the
/// `postgres-async` feature), an `AsyncPgStore` (made by `AsyncPgStore::builder`): the
/// same settings for both.
pub struct PgStoreBuilder<K, V, S = Counter, F = Blocking> {
    pub(super) url: String,
    pub(super) table: String,
    pub(super) pool_size: u32,
    pub(super) acquire_timeout: Duration,
    _records: Records<K, V, S>,
    _face: PhantomData<fn() -> F>,
}

impl<K, V, S, F> fmt::Debug for PgStoreBuilder<K, V, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStoreBuilder")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl<K, V, F> PgStoreBuilder<K, V, Counter, F> {
    /// The defaults: [`Counter`] versions in table `verkv`, 8 connections, a 5 s
    /// acquire timeout.
    pub(super) fn new(url: String) -> Self {
        PgStoreBuilder {
            url,
            table: "verkv".to_string(),
            pool_size: 8,
            acquire_timeout: Duration::from_secs(5),
            _records: PhantomData,
            _face: PhantomData,
        }
    }
}

impl<K, V, S, F> PgStoreBuilder<K, V, S, F> {
    /// The table to keep the records in (default `verkv`): lower-case ASCII letters,
    /// digits and `_`, at most 48 bytes. It is created if missing, with a sequence
    /// `<table>_version`, a trigger function `<table>_notify`, a table
    /// `<table>_listeners` and a function `<table>_listening` (see
    /// [`PgStore::channel`](super::PgStore::channel)).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The most connections the pool opens (default 8).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long an operation without a deadline waits for a pooled connection (opening
    /// it included) before it gives up as [`Error::Unavailable`](crate::Error::Unavailable)
    /// (default 5 s). A server that refuses to connect
    /// ([`Error::Misconfigured`](crate::Error::Misconfigured)) is reported at once
    /// instead.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Versions of scheme `S2` ([`Counter`] or [`UuidV4`](crate::UuidV4)) instead. A
    /// table holds the versions of one scheme: `build` refuses a table made with the
    /// other.
    pub fn versions<S2: PgVersion>(self) -> PgStoreBuilder<K, V, S2, F> {
        PgStoreBuilder {
            url: self.url,
            table: self.table,
            pool_size: self.pool_size,
            acquire_timeout: self.acquire_timeout,
            _records: PhantomData,
            _face: PhantomData,
        }
    }

    /// The connection settings parsed from the URL, as client `C` takes them.
    pub(super) fn config<C: FromStr<Err: fmt::Display>>(&self) -> Result<C, Cause> {
        self.url
            .parse()
            .map_err(|error| Cause::new(format!("bad connection URL: {error}")))
    }
}

/// What a failed step of opening a store (`doing` it, such as "create the table") says.
pub(super) fn failed(doing: &'static str) -> impl FnOnce(::postgres::Error) -> Cause {
    move |error| Cause::new(format!("cannot {doing}: {}", cause(&error)))
}
