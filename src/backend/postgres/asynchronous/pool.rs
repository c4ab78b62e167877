//! The async store's connection pool: connections that remember their prepared
//! statements and the timeouts last set on their session (as the blocking pool's do), and
//! a checkout bounded by an operation's context.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

use super::super::pool::{session_timeouts, set_timeouts_sql, Failed, Statements, STATEMENTS};
use super::super::schema::Sql;
use crate::backend::asynchronous::pause::within;
use crate::backend::Context;
use crate::deadline::{Interrupted, Phase, TimedOut};
use crate::store::{Cause, Error};
use crate::sync::{AtomicBool, Ordering};

/// One pooled connection.
pub(crate) struct Conn {
    pub(super) client: Client,
    statements: Option<Statements>,
    /// `statement_timeout` and `lock_timeout` as last set on the session, in
    /// milliseconds (0: none).
    timeouts: (u64, u64),
    /// Set when a cancel request may still be on its way to this session (or a statement
    /// was abandoned on it): the pool then drops the connection rather than let the
    /// request cancel somebody else's statement.
    poisoned: AtomicBool,
    /// The runtime whose task drives the connection: cancel requests for its statements
    /// are sent from tasks of it, wherever a future is dropped.
    runtime: Handle,
    /// The notifications the session receives while it listens, from the task that
    /// drives it; taken by the wait that listens, and given back once it has stopped.
    notifications: Option<Notifications>,
}

/// The notifications a session received, in the order the server sent them; closed once
/// the connection is.
pub(crate) type Notifications = UnboundedReceiver<Notification>;

impl Conn {
    /// The statements of `sql`, prepared on this connection the first time.
    pub(super) async fn statements(
        &mut self,
        sql: &Sql,
    ) -> Result<Statements, tokio_postgres::Error> {
        if let Some(statements) = &self.statements {
            return Ok(statements.clone());
        }
        let mut prepared = Vec::with_capacity(STATEMENTS);
        for text in Statements::texts(sql) {
            prepared.push(self.client.prepare(text).await?);
        }
        let statements = Statements::from(prepared);
        self.statements = Some(statements.clone());
        Ok(statements)
    }

    /// Makes the server enforce `remaining` (see the blocking pool's `set_timeouts`): one
    /// round trip, only when the session's timeouts must change.
    pub(super) async fn set_timeouts(
        &mut self,
        remaining: Option<Duration>,
    ) -> Result<(), tokio_postgres::Error> {
        let wanted = session_timeouts(remaining);
        if wanted != self.timeouts {
            // Until the answer comes the session's timeouts are unknown.
            self.timeouts = (u64::MAX, u64::MAX);
            self.client.batch_execute(&set_timeouts_sql(wanted)).await?;
            self.timeouts = wanted;
        }
        Ok(())
    }

    /// The session's notifications, to take while it listens: `None` if taken already
    /// (by a wait whose future was dropped, which leaves the connection poisoned).
    pub(super) fn take_notifications(&mut self) -> Option<Notifications> {
        self.notifications.take()
    }

    /// Gives back the notifications taken, once the session no longer listens and every
    /// notification it received is read.
    pub(super) fn give_back(&mut self, notifications: Notifications) {
        self.notifications = Some(notifications);
    }

    /// The runtime whose task drives the connection.
    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Marks the connection as one the pool must not hand out again.
    pub(super) fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    /// Sends the server a cancel request for the statement running on this connection,
    /// from a task of the runtime that drives it, and marks the connection so that the
    /// pool discards it (the request could otherwise cancel the next statement run on
    /// it). If the request cannot be delivered, the statement runs on; its
    /// `statement_timeout` still bounds it.
    pub(super) fn cancel(&self) {
        self.poison();
        let server = self.client.cancel_token();
        self.runtime.spawn(async move {
            let _ = server.cancel_query(NoTls).await;
        });
    }
}

/// Opens connections for the pool, each with a task that drives it.
pub(crate) struct Manager {
    config: tokio_postgres::Config,
}

impl Manager {
    pub(super) fn new(config: tokio_postgres::Config) -> Self {
        Manager { config }
    }
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Conn, tokio_postgres::Error> {
        let (client, notifications) = connect(&self.config).await?;
        Ok(Conn {
            runtime: Handle::current(),
            client,
            statements: None,
            timeouts: (0, 0),
            poisoned: AtomicBool::new(false),
            notifications: Some(notifications),
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<tokio_postgres::Error> {
        if conn.poisoned.load(Ordering::Relaxed)
            || conn.client.is_closed()
            || conn.notifications.is_none()
        {
            return Err(RecycleError::message("broken or abandoned"));
        }
        Ok(())
    }
}

/// Opens a connection to the server of `config`, driven by a task of the current runtime
/// that ends when the client is dropped or the connection breaks (the client then sees it
/// closed): the client, and the notifications its session receives.
///
/// # Errors
///
/// When the server cannot be reached or refuses the connection.
pub(crate) async fn connect(
    config: &tokio_postgres::Config,
) -> Result<(Client, Notifications), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (received, notifications) = unbounded_channel();
    // Forwards the session's notifications, and drops its notices.
    Handle::current().spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(notification) = message {
                // Nobody reads them once the client is dropped.
                let _ = received.send(notification);
            }
        }
    });
    Ok((client, notifications))
}

/// The pool.
pub(crate) type Pool = managed::Pool<Manager>;
/// A connection checked out of it.
pub(crate) type Pooled = managed::Object<Manager>;

/// Checks a connection out of `pool` for an operation that started at `started`, waiting
/// at most `acquire` and never past the context's deadline (the wait includes opening a
/// connection).
///
/// # Errors
///
/// [`Error::TimedOut`] (queued) when the deadline passes first, [`Error::Cancelled`],
/// [`Error::Misconfigured`] when the server refused to connect, [`Error::Unavailable`]
/// when the server cannot be reached or no connection came free within `acquire`.
pub(super) async fn checkout<Ver>(
    pool: &Pool,
    ctx: &Context<'_>,
    acquire: Duration,
    started: Instant,
) -> Result<Pooled, Error<Ver>> {
    if Handle::try_current().is_err() {
        return Err(Error::Misconfigured(Cause::new(
            "an AsyncPgStore's operations must be polled within a tokio runtime",
        )));
    }
    let give_up = started + acquire;
    let bounded_by_ctx = ctx.deadline().is_some_and(|deadline| deadline <= give_up);
    let limit = Context::until(ctx.deadline().map_or(give_up, |d| d.min(give_up)));
    let limit = match ctx.cancel_token() {
        Some(token) => limit.with_cancel(token),
        None => limit,
    };
    // Boxed: the pool's wait is about 8 KB of state, which every operation's future
    // would otherwise carry (once per layer it passes through) for its whole life.
    match within(&limit, Phase::Queued, Box::pin(pool.get())).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(PoolError::Backend(error))) => Err(Failed::of(&error).error()),
        Ok(Err(error)) => Err(Error::Unavailable(Cause::new(format!(
            "no pooled connection: {error}"
        )))),
        Err(Interrupted::Cancelled) => Err(Error::Cancelled),
        Err(Interrupted::TimedOut(_)) if bounded_by_ctx => Err(Error::TimedOut(TimedOut::new(
            Phase::Queued,
            started.elapsed(),
        ))),
        Err(Interrupted::TimedOut(_)) => Err(Error::Unavailable(Cause::new(format!(
            "no pooled connection came free within {acquire:?}"
        )))),
    }
}
