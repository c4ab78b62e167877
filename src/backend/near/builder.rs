//! Configuring and opening a near-cache: its memory's bound, the heartbeat of its
//! notification connection, and the loop that listens on it (a thread of its own on the
//! blocking face, a task on the async one).

use crate::sync::{AtomicBool, AtomicU32, Ordering};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use ::postgres::Client;

use super::connection::blocking_settings;
#[cfg(feature = "postgres-async")]
use super::connection::{async_settings, Awaited};
use super::listener::{patience, Connection, Listener};
use super::stamps::Stamps;
use super::stats::Counters;
#[cfg(feature = "postgres-async")]
use super::AsyncNearCache;
use super::{NearCache, Shared};
#[cfg(feature = "postgres-async")]
use crate::backend::postgres::AsyncPgStore;
use crate::backend::postgres::{PgStore, PgVersion, Registry};
use crate::store::{Cause, Store};
use crate::version::Counter;
use crate::wait::completed;

/// Configures and opens a [`NearCache`]: made by [`NearCache::builder`].
pub struct NearCacheBuilder<K, V, S: PgVersion = Counter, D = PgStore<K, V, S>> {
    pub(super) db: D,
    pub(super) max_capacity: u64,
    pub(super) heartbeat: Duration,
    pub(super) time_to_live: Option<Duration>,
    pub(super) types: Types<K, V, S>,
}

/// Carries the near-cache's key, value and scheme types without owning any.
pub(super) type Types<K, V, S> = PhantomData<fn() -> (K, V, S)>;

impl<K, V, S: PgVersion, D> fmt::Debug for NearCacheBuilder<K, V, S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("heartbeat", &self.heartbeat)
            .field("time_to_live", &self.time_to_live)
            .finish_non_exhaustive()
    }
}

impl<K, V, S: PgVersion, D> NearCacheBuilder<K, V, S, D> {
    /// The most records memory holds (default 10 000); the bounded store evicts beyond.
    pub fn max_capacity(mut self, records: u64) -> Self {
        self.max_capacity = records;
        self
    }

    /// How long the notification connection may stay silent before a round trip checks
    /// that it is alive (default 1 s); that round trip fails if the server has not
    /// answered within the heartbeat (at least 1 s). A silent loss goes unnoticed for
    /// about two heartbeats at most, a loss the server or the system reports for none.
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// How long a copy is served from memory at most (default: until it is invalidated or
    /// evicted). A second line of defence: while the notification connection is up, a
    /// change reaches memory within the notification delay anyway; a time-to-live also
    /// bounds how stale a copy can be if a notification were ever lost without the
    /// connection failing. `Duration::MAX` means never, as on the store.
    pub fn time_to_live(mut self, time_to_live: Duration) -> Self {
        self.time_to_live = Some(time_to_live);
        self
    }
}

impl<K, V, S, D> NearCacheBuilder<K, V, S, D>
where
    K: Hash + Eq + Clone + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: PgVersion,
{
    /// The notification connection's loop, on connections of `config` (the store's
    /// server and role, with the listener's settings), for the table of `channel` and
    /// `registry`.
    fn listener<C: Connection>(
        &self,
        config: C::Config,
        channel: &str,
        registry: &Registry,
    ) -> Listener<C> {
        Listener {
            config,
            channel: channel.to_string(),
            registry: registry.clone(),
            heartbeat: self.heartbeat,
        }
    }

    /// The near-cache, its notification connection (server process `pid`) registered
    /// already: memory, and what it shares with the loop that listens.
    fn assemble(self, pid: u32) -> NearCache<K, V, S, D> {
        let local = Store::builder().max_capacity(self.max_capacity);
        let local = match self.time_to_live {
            Some(time_to_live) => local.time_to_live(time_to_live),
            None => local,
        };
        let local = local.build();
        let shared = Arc::new(Shared {
            local,
            stamps: Stamps::new(self.max_capacity),
            counters: Counters::default(),
            listener_pid: AtomicU32::new(pid),
            stop: AtomicBool::new(false),
        });
        shared.counters.coherent.store(true, Ordering::SeqCst);
        NearCache {
            db: self.db,
            shared,
        }
    }
}

impl<K, V, S> NearCacheBuilder<K, V, S>
where
    K: Serialize + DeserializeOwned + Hash + Eq + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: PgVersion,
{
    /// Opens the notification connection, listens, registers as a listener of the table
    /// (which turns its change trigger on, if it is the first), and starts the thread
    /// that listens on it.
    ///
    /// Waits for the writes in flight on the table when it turns the trigger on: a
    /// transaction that has written the table and stays open holds it up until it ends.
    ///
    /// # Errors
    ///
    /// If the notification connection cannot be opened, refuses to listen, or the role
    /// may not register (see [`PgStore::channel`]).
    pub fn build(self) -> Result<NearCache<K, V, S>, Cause> {
        let config = blocking_settings(self.db.config().clone(), patience(self.heartbeat));
        let listener: Listener<Client> =
            self.listener(config, self.db.channel(), self.db.registry());
        let (client, pid) = completed(listener.connect(&|| false))?;
        let cache = self.assemble(pid);
        let shared = Arc::clone(&cache.shared);
        // Not joined: it ends by itself once the near-cache is dropped (see `Drop`).
        std::thread::Builder::new()
            .name("verkv-near-listener".to_string())
            .spawn(move || completed(listener.run(&shared, client)))
            .map_err(|error| Cause::new(format!("cannot start the listener: {error}")))?;
        Ok(cache)
    }
}

#[cfg(feature = "postgres-async")]
impl<K, V, S> NearCacheBuilder<K, V, S, AsyncPgStore<K, V, S>>
where
    K: Serialize + DeserializeOwned + Hash + Eq + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    S: PgVersion,
{
    /// As [`build`](NearCacheBuilder::build) for a [`PgStore`], awaited: the
    /// notification connection is an async one, and the loop that listens on it is a
    /// task of the runtime this is polled on (no thread of its own, and no executor
    /// thread ever waits on the connection). The task ends soon after the near-cache is
    /// dropped; if the runtime shuts down first, memory stops being served from.
    ///
    /// # Errors
    ///
    /// As [`build`](NearCacheBuilder::build), and [`Cause`] when polled outside a tokio
    /// runtime.
    pub async fn build(self) -> Result<AsyncNearCache<K, V, S>, Cause> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Cause::new(
                "an async near-cache must be built within a tokio runtime",
            ));
        };
        let config = self.db.listener_config().clone();
        let config = async_settings(config, patience(self.heartbeat));
        let listener: Listener<Awaited> =
            self.listener(config, self.db.channel(), self.db.registry());
        let (client, pid) = listener.connect(&|| false).await?;
        let cache = self.assemble(pid);
        let shared = Arc::clone(&cache.shared);
        // Not awaited: it ends by itself once the near-cache is dropped (see `Drop`).
        runtime.spawn(async move { listener.run(&shared, client).await });
        Ok(cache)
    }
}
