//! Waiting for a record to change: `LISTEN` on the table's channel and register as a
//! listener, read, and re-read on every notification about the key until its version
//! differs from the one seen; then withdraw the registration.
//!
//! The connection listens and registers *before* it reads, so a change committed between
//! the read and the wait is still notified (no lost wake-up): see `listeners.rs` for why
//! a registered session is told of every change its reads do not show.

use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, Row};
use serde::de::DeserializeOwned;

use super::call::relay_cancel;
use super::codec::{self, Encoded};
use super::failure::{cause, meaning, setup_failure, Effect, Failure};
use super::pool::{self, Statements};
use super::versions::PgVersion;
use super::PgStore;
use crate::backend::{Context, ReadResult};
use crate::deadline::{Phase, TimedOut};
use crate::store::Versioned;
use crate::store::{Cause, Error};
use crate::wait::completed;

/// The longest a wait blocks without looking at its cancel token or the clock.
const SLICE: Duration = Duration::from_millis(10);

/// A record as the watch read it, with its key as the trigger notifies it.
pub(super) struct Read<V, Ver> {
    pub(super) notified_key: serde_json::Value,
    pub(super) record: Option<Versioned<V, Ver>>,
}

impl<K, V: DeserializeOwned, S: PgVersion> PgStore<K, V, S> {
    /// [`VersionedStore::wait_for_change`](crate::VersionedStore::wait_for_change) for an
    /// encoded key.
    pub(super) fn watch(
        &self,
        ctx: &Context<'_>,
        key: &Encoded,
        seen: Option<&S::Version>,
    ) -> ReadResult<V, S::Version> {
        let started = Instant::now();
        let mut conn = pool::checkout(
            &self.pool,
            &self.last_failure,
            ctx,
            self.acquire_timeout,
            started,
        )?;
        let failed = |error: ::postgres::Error| setup_failure(&error);
        // The wait itself is bounded here, not by the server: no statement timeout.
        conn.set_timeouts(None).map_err(failed)?;
        let statements = conn.statements(&self.sql).map_err(failed)?;
        let stop = || ctx.is_cancelled();
        let registered = completed(
            self.registry
                .listen(&mut *conn.client, ctx.deadline(), &stop),
        )
        .map_err(|error| meaning(&error, Effect::Reads, started, ctx.is_cancelled()));
        let outcome = registered.and_then(|()| {
            self.watch_listening(ctx, &mut conn.client, &statements, key, seen, started)
        });
        // Leave the pooled connection as it was found: not listening, not registered,
        // nothing buffered. One that may still be registered is closed instead (its
        // registration is withdrawn with it).
        if completed(self.registry.unlisten(&mut *conn.client)).is_err() {
            conn.poison();
        }
        while let Ok(Some(_)) = conn.client.notifications().iter().next() {}
        outcome
    }

    fn watch_listening(
        &self,
        ctx: &Context<'_>,
        client: &mut Client,
        statements: &Statements,
        key: &Encoded,
        seen: Option<&S::Version>,
        started: Instant,
    ) -> ReadResult<V, S::Version> {
        loop {
            let (read, cancelled) = relay_cancel(client, ctx.cancel_token(), |client| {
                read::<V, S>(client, statements, key)
            });
            let read = match read {
                Ok(read) => read,
                Err(Failure::Db(error) | Failure::Commit(error)) => {
                    return Err(meaning(&error, Effect::Reads, started, cancelled))
                }
                Err(Failure::Decode(cause)) => return Err(Error::BadRecord(cause)),
            };
            if read.record.as_ref().map(|record| &record.version) != seen {
                return Ok(read.record);
            }
            self.until_notified(ctx, client, &read.notified_key, started)?;
        }
    }

    /// Blocks until a change of `key` (as notified) is notified.
    fn until_notified(
        &self,
        ctx: &Context<'_>,
        client: &mut Client,
        key: &serde_json::Value,
        started: Instant,
    ) -> Result<(), Error<S::Version>> {
        loop {
            if ctx.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let slice = match ctx.remaining() {
                Some(Duration::ZERO) => {
                    return Err(Error::TimedOut(TimedOut::new(
                        Phase::Watching,
                        started.elapsed(),
                    )))
                }
                Some(remaining) => remaining.min(SLICE),
                None => SLICE,
            };
            let next = client.notifications().timeout_iter(slice).next();
            match next {
                Ok(Some(notification)) => {
                    if notification.channel() == self.sql.channel
                        && is_about(notification.payload(), key)
                    {
                        return Ok(());
                    }
                }
                Err(error) => return Err(Error::Unavailable(cause(&error))),
                Ok(None) if client.is_closed() => {
                    return Err(Error::Unavailable(Cause::new("connection closed")))
                }
                Ok(None) => {}
            }
        }
    }
}

/// Whether a change notification's payload may be about `key` (as PostgreSQL prints
/// it): it names that key, or no key (one too long to notify), or does not parse.
pub(super) fn is_about(payload: &str, key: &serde_json::Value) -> bool {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|payload| payload.get("key").cloned())
        .is_none_or(|notified| notified.is_null() || notified == *key)
}

/// Reads the record of `key`, and the key as the trigger notifies it.
fn read<V: DeserializeOwned, S: PgVersion>(
    client: &mut Client,
    statements: &Statements,
    key: &Encoded,
) -> Result<Read<V, S::Version>, Failure> {
    decode_read::<V, S>(&client.query_one(&statements.watch_read, &[key])?, key)
}

/// The answer of the watch's read of `key`.
pub(super) fn decode_read<V: DeserializeOwned, S: PgVersion>(
    row: &Row,
    key: &Encoded,
) -> Result<Read<V, S::Version>, Failure> {
    let notified: String = row
        .try_get(0)
        .map_err(|error| Cause::new(format!("cannot decode a key's text: {error}")))?;
    let notified_key = serde_json::from_str(&notified)
        .map_err(|error| Cause::new(format!("cannot parse a key's text: {error}")))?;
    let value = codec::value_opt::<V>(row, 1, key)?;
    let version = codec::version_opt::<S>(row, 2, key)?;
    Ok(Read {
        notified_key,
        record: value
            .zip(version)
            .map(|(value, version)| Versioned { value, version }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_notification_is_about_its_key_or_one_too_long_to_name() {
        let key = json!({"id": 7, "kind": "movie"});
        let payload = |key: &str| format!("{{\"key\":{key},\"version\":\"3\"}}");
        assert!(is_about(&payload(r#"{"id": 7, "kind": "movie"}"#), &key));
        assert!(is_about(&payload(r#"{"kind": "movie", "id": 7}"#), &key));
        assert!(!is_about(&payload(r#"{"id": 8, "kind": "movie"}"#), &key));
        assert!(!is_about(&payload(r#""movie""#), &key));
        assert!(is_about(&payload("null"), &key), "a key too long to notify");
        assert!(is_about("not json", &key));
        assert!(is_about(r#"{"key":1.0,"version":null}"#, &json!(1.00)));
    }
}
