//! Waiting for a record to change on the async face: the blocking store's protocol
//! (`postgres/watch.rs`): `LISTEN` on the table's channel and register as a listener
//! (`listeners.rs`, the same statements), read, and on every notification about the key
//! read again, until its version differs from the one seen; then withdraw the
//! registration. The session's notifications come from the task that drives its
//! connection (see `pool.rs`), and the wait for them is awaited. The registration is
//! withdrawn by a task of its own once the waiter has its answer, so that a wait wakes
//! one round trip (its read) after the notification, not three.
//!
//! A future dropped while its session listens leaves the connection poisoned: the pool
//! closes it instead of handing out a session that still listens, and its registration
//! goes with it (see `listeners.rs`: a registration of a session that is gone is
//! withdrawn by the next change of the registry).

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::super::codec::Encoded;
use super::super::failure::{meaning, setup_failure, Effect, Failure};
use super::super::listeners::{Batch, Registry};
use super::super::pool::Statements;
use super::super::versions::PgVersion;
use super::super::watch::{decode_read, is_about, Read};
use super::call::{relay_cancel, CancelOnDrop, Ended, GRACE};
use super::pool::{self, Conn, Notifications, Pooled};
use super::AsyncPgStore;
use crate::backend::asynchronous::pause::{pause_until, within};
use crate::backend::{Context, ReadResult};
use crate::deadline::{Interrupted, Phase, TimedOut};
use crate::store::{Cause, Error};

/// The async face's session, for the registry's statements.
impl Batch for &Client {
    async fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        Client::batch_execute(self, sql).await
    }

    fn is_closed(&self) -> bool {
        Client::is_closed(self)
    }

    async fn pause(pause: Duration) {
        pause_until(Instant::now() + pause, None).await;
    }
}

/// Leaves the pooled connection of a wait that has ended as it was found: not listening,
/// not registered, nothing received. One that may still be registered is closed instead
/// (poisoned, or dropped with this task if its runtime shuts down first: its
/// notifications are then not given back, and the pool discards it).
async fn withdraw(registry: Registry, mut conn: Pooled, mut notifications: Notifications) {
    let withdrawn = registry.unlisten(&mut &conn.client).await;
    while notifications.try_recv().is_ok() {}
    if withdrawn.is_err() {
        conn.poison();
    }
    conn.give_back(notifications);
}

impl<K, V: DeserializeOwned, S: PgVersion> AsyncPgStore<K, V, S> {
    /// [`AsyncVersionedStore::wait_for_change`](crate::AsyncVersionedStore::wait_for_change)
    /// for an encoded key.
    pub(super) async fn watch(
        &self,
        ctx: &Context<'_>,
        key: &Encoded,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        let started = Instant::now();
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let mut conn = pool::checkout(&self.pool, ctx, self.acquire_timeout, started).await?;
        let failed = |error: tokio_postgres::Error| setup_failure(&error);
        // The wait itself is bounded here, not by the server: no statement timeout.
        conn.set_timeouts(None).await.map_err(failed)?;
        let statements = conn.statements(&self.sql).await.map_err(failed)?;
        let Some(mut notifications) = conn.take_notifications() else {
            return Err(Error::Unavailable(Cause::new(
                "a pooled session without its notifications",
            )));
        };
        let session: &Conn = &conn;
        // Until the withdrawing task takes the session over, a dropped future poisons it.
        let listening = CancelOnDrop::arm(session);
        let mut client = &session.client;
        let registered = self
            .registry
            .listen(&mut client, ctx.deadline(), || ctx.is_cancelled())
            .await
            .map_err(|error| meaning(&error, Effect::Reads, started, ctx.is_cancelled()));
        let outcome = match registered {
            Ok(()) => {
                let watching = (&statements, &mut notifications, started);
                self.watch_listening(ctx, session, watching, key, seen)
                    .await
            }
            Err(error) => Err(error),
        };
        // The waiter has its answer: the session stops listening in a task of its own.
        listening.disarm();
        let registry = self.registry.clone();
        conn.runtime()
            .clone()
            .spawn(withdraw(registry, conn, notifications));
        outcome
    }

    async fn watch_listening(
        &self,
        ctx: &Context<'_>,
        session: &Conn,
        (statements, notifications, started): (&Statements, &mut Notifications, Instant),
        key: &Encoded,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        loop {
            let read = self.read(ctx, session, statements, key, started).await?;
            if read.record.as_ref().map(|record| &record.version) != seen {
                return Ok(read.record);
            }
            let notified = within(ctx, Phase::Watching, async {
                while let Some(notification) = notifications.recv().await {
                    if notification.channel() == self.channel()
                        && is_about(notification.payload(), &read.notified_key)
                    {
                        return Ok(());
                    }
                }
                Err(Error::Unavailable(Cause::new("connection closed")))
            });
            match notified.await {
                Ok(heard) => heard?,
                Err(Interrupted::Cancelled) => return Err(Error::Cancelled),
                Err(Interrupted::TimedOut(_)) => {
                    return Err(Error::TimedOut(TimedOut::new(
                        Phase::Watching,
                        started.elapsed(),
                    )))
                }
            }
        }
    }

    /// The watch's read of `key`, the cancel token relayed to the server; given up on
    /// a little after the deadline (the session has no statement timeout).
    async fn read(
        &self,
        ctx: &Context<'_>,
        session: &Conn,
        statements: &Statements,
        key: &Encoded,
        started: Instant,
    ) -> Result<Read<V, S::Version>, Error<S::Version>> {
        let give_up = ctx.deadline().map(|deadline| deadline + GRACE);
        let params: [&(dyn ToSql + Sync); 1] = [key];
        let query = session.client.query_one(&statements.watch_read, &params);
        let (ended, cancelled) = relay_cancel(session, query, ctx.cancel_token(), give_up).await;
        let failed = |failure: Failure| failure.meaning(Effect::Reads, started, cancelled);
        match ended {
            Ended::Answered(Ok(row)) => decode_read::<V, S>(&row, key).map_err(failed),
            Ended::Answered(Err(error)) => Err(failed(Failure::Db(error))),
            Ended::Abandoned => Err(Error::TimedOut(TimedOut::new(
                Phase::Watching,
                started.elapsed(),
            ))),
        }
    }
}
