//! The connection pool: connections that remember their prepared statements and the
//! timeouts last set on their session, and a checkout bounded by an operation's context.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, NoTls, Statement};

use super::failure::{cause, is_misconfiguration};
use super::schema::Sql;
use crate::backend::Context;
use crate::deadline::{Phase, TimedOut};
use crate::store::{Cause, Error};

/// How often a checkout that can be cancelled looks at its token.
const CANCEL_POLL: Duration = Duration::from_millis(5);
/// How often a checkout that waits for the pool to open a connection looks whether it
/// did, or whether the server refused it.
const CONNECT_POLL: Duration = Duration::from_millis(5);

/// The statements of one table, prepared on one connection.
#[derive(Clone)]
pub(super) struct Statements {
    pub(super) get: Statement,
    pub(super) insert: Statement,
    pub(super) put: Statement,
    pub(super) update: Statement,
    pub(super) remove: Statement,
    pub(super) watch_read: Statement,
    pub(super) get_many: Statement,
    pub(super) txn_lock: Statement,
    pub(super) txn_claim: Statement,
    pub(super) txn_update: Statement,
    pub(super) txn_set: Statement,
    pub(super) txn_delete: Statement,
}

/// A session of the blocking client whose closing never runs on the thread that drops
/// it: the client closes its session by running an async runtime of its own, which
/// panics on a thread that drives a tokio runtime (a store dropped in an async service
/// would abort the process). The session is closed on a thread of its own, waited for.
pub(crate) struct Session(Option<Client>);

impl std::ops::Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.0
            .as_ref()
            .expect("a session is open until it is dropped")
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("a session is open until it is dropped")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            // A panic while closing (a session already gone) has nothing left to tell.
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

/// One pooled connection.
pub(crate) struct Conn {
    pub(super) client: Session,
    statements: Option<Statements>,
    /// `statement_timeout` and `lock_timeout` as last set on the session, in
    /// milliseconds (0: none).
    timeouts: (u64, u64),
    /// Set when a cancel request may still be on its way to this session: the pool then
    /// drops the connection rather than let the request cancel somebody else's statement.
    poisoned: bool,
}

/// How many statements a table has.
pub(super) const STATEMENTS: usize = 12;

impl Statements {
    /// The texts of `sql`'s statements, in the order [`Statements::from`] takes them
    /// prepared.
    pub(super) fn texts(sql: &Sql) -> [&str; STATEMENTS] {
        [
            &sql.get,
            &sql.insert,
            &sql.put,
            &sql.update,
            &sql.remove,
            &sql.watch_read,
            &sql.get_many,
            &sql.txn_lock,
            &sql.txn_claim,
            &sql.txn_update,
            &sql.txn_set,
            &sql.txn_delete,
        ]
    }

    /// The statements prepared from [`Statements::texts`], in its order.
    pub(super) fn from(prepared: Vec<Statement>) -> Statements {
        let Ok::<[Statement; STATEMENTS], _>(
            [get, insert, put, update, remove, watch_read, get_many, txn_lock, txn_claim, txn_update, txn_set, txn_delete],
        ) = prepared.try_into()
        else {
            unreachable!("one statement prepared per text");
        };
        Statements {
            get,
            insert,
            put,
            update,
            remove,
            watch_read,
            get_many,
            txn_lock,
            txn_claim,
            txn_update,
            txn_set,
            txn_delete,
        }
    }
}

/// `statement_timeout` and `lock_timeout` in milliseconds (0: none) that make the server
/// enforce `remaining`: a statement still running then is cancelled (SQLSTATE 57014), and
/// a wait for a row lock gives up a little earlier (55P03), so that a wait that is queued
/// behind another writer is reported as queued.
pub(super) fn session_timeouts(remaining: Option<Duration>) -> (u64, u64) {
    match remaining {
        None => (0, 0),
        Some(remaining) => {
            // Whole milliseconds, at least one (zero would mean no timeout).
            let statement = (remaining.as_millis() as u64).max(1);
            let margin = (statement / 10).clamp(1, 5);
            (statement, statement.saturating_sub(margin).max(1))
        }
    }
}

/// The statement that sets the session's timeouts to `wanted` (see [`session_timeouts`]).
pub(super) fn set_timeouts_sql(wanted: (u64, u64)) -> String {
    format!(
        "SET statement_timeout = {}; SET lock_timeout = {}",
        wanted.0, wanted.1
    )
}

impl Conn {
    /// The statements of `sql`, prepared on this connection the first time.
    pub(super) fn statements(&mut self, sql: &Sql) -> Result<Statements, ::postgres::Error> {
        if let Some(statements) = &self.statements {
            return Ok(statements.clone());
        }
        let prepared = Statements::texts(sql)
            .iter()
            .map(|text| self.client.prepare(text))
            .collect::<Result<_, _>>()?;
        let statements = Statements::from(prepared);
        self.statements = Some(statements.clone());
        Ok(statements)
    }

    /// Makes the server enforce `remaining` (`None`: nothing): a statement still running
    /// then is cancelled (`statement_timeout`, SQLSTATE 57014), and a wait for a row lock
    /// gives up a little earlier (`lock_timeout`, 55P03), so that a wait that is queued
    /// behind another writer is reported as queued. One round trip, only when the
    /// session's timeouts must change.
    pub(super) fn set_timeouts(
        &mut self,
        remaining: Option<Duration>,
    ) -> Result<(), ::postgres::Error> {
        let wanted = session_timeouts(remaining);
        if wanted != self.timeouts {
            self.client.batch_execute(&set_timeouts_sql(wanted))?;
            self.timeouts = wanted;
        }
        Ok(())
    }

    /// Whether the connection is still open, found without a round trip: it reads what
    /// the server may have sent (such as the end of the stream when it went away).
    fn is_alive(&mut self) -> bool {
        let _ = self.client.notifications().iter().next();
        !self.client.is_closed()
    }

    /// Marks the connection as one the pool must not hand out again.
    pub(super) fn poison(&mut self) {
        self.poisoned = true;
    }
}

/// Why an attempt to connect failed.
#[derive(Clone)]
pub(super) enum Failed {
    /// The server could not be reached, or answered that it cannot take the connection
    /// now (starting up, too many connections): it may pass.
    Unreachable(Cause),
    /// The server answered that it never will as configured (the database or the role
    /// does not exist, the password is wrong, the role may not connect).
    Refused(Cause),
}

impl Failed {
    pub(super) fn of(error: &::postgres::Error) -> Failed {
        match error.as_db_error() {
            Some(db) if is_misconfiguration(db.code()) => Failed::Refused(Cause::new(format!(
                "the server refused the connection: {}",
                db.message()
            ))),
            _ => Failed::Unreachable(cause(error)),
        }
    }

    /// What an operation that could not get a connection because of it answers.
    pub(super) fn error<Ver>(self) -> Error<Ver> {
        match self {
            Failed::Unreachable(cause) => Error::Unavailable(cause),
            Failed::Refused(cause) => Error::Misconfigured(cause),
        }
    }
}

/// Why the last attempt to connect failed, if it did (a later success clears it);
/// shared by the pool's manager and the store.
#[derive(Clone, Default)]
pub(crate) struct LastFailure(Arc<Mutex<Option<Failed>>>);

impl LastFailure {
    fn get(&self) -> Option<Failed> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The server's refusal, if the last attempt to connect was refused.
    fn refusal(&self) -> Option<Failed> {
        self.get()
            .filter(|failed| matches!(failed, Failed::Refused(_)))
    }

    fn set(&self, failure: Option<Failed>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = failure;
    }
}

/// Opens connections for the pool and notes why the last attempt failed.
pub(crate) struct Manager {
    config: ::postgres::Config,
    last_failure: LastFailure,
}

impl Manager {
    pub(super) fn new(config: ::postgres::Config, last_failure: LastFailure) -> Self {
        Manager {
            config,
            last_failure,
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ::postgres::Error;

    fn connect(&self) -> Result<Conn, ::postgres::Error> {
        match self.config.connect(NoTls) {
            Ok(client) => {
                self.last_failure.set(None);
                Ok(Conn {
                    client: Session(Some(client)),
                    statements: None,
                    timeouts: (0, 0),
                    poisoned: false,
                })
            }
            Err(error) => {
                self.last_failure.set(Some(Failed::of(&error)));
                Err(error)
            }
        }
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), ::postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.poisoned || conn.client.is_closed()
    }
}

/// The pool.
pub(crate) type Pool = r2d2::Pool<Manager>;
/// A connection checked out of it.
pub(crate) type Pooled = r2d2::PooledConnection<Manager>;

/// Checks a live connection out of `pool` for an operation that started at `started`,
/// waiting at most `acquire` and never past the context's deadline.
///
/// A server that refuses to connect (an answer that will not change by itself, such as
/// a database that does not exist) is reported as soon as it answers when the pool has
/// no connection open that could come free, rather than after `acquire`: waiting would
/// not help.
///
/// # Errors
///
/// [`Error::TimedOut`] (queued) when the deadline passes first, [`Error::Cancelled`],
/// [`Error::Misconfigured`] when the server refused the last attempt to connect,
/// [`Error::Unavailable`] when the server cannot be reached or no connection came free
/// within `acquire`.
pub(super) fn checkout<Ver>(
    pool: &Pool,
    last_failure: &LastFailure,
    ctx: &Context<'_>,
    acquire: Duration,
    started: Instant,
) -> Result<Pooled, Error<Ver>> {
    let give_up = started + acquire;
    // Whether this checkout has asked the pool to open a connection: it keeps trying on
    // a thread of its own (until it succeeds) and says nothing when the server refuses.
    let mut asked = false;
    loop {
        if ctx.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let now = Instant::now();
        let deadline = ctx
            .deadline()
            .map_or(give_up, |deadline| deadline.min(give_up));
        if now >= deadline {
            if let Some(failed) = last_failure.get() {
                return Err(failed.error());
            }
            if ctx.deadline().is_some_and(|d| d <= give_up) {
                return Err(Error::TimedOut(TimedOut::new(
                    Phase::Queued,
                    started.elapsed(),
                )));
            }
            return Err(Error::Unavailable(Cause::new(format!(
                "no pooled connection came free within {acquire:?}"
            ))));
        }
        let mut slice = deadline - now;
        if ctx.cancel_token().is_some() {
            slice = slice.min(CANCEL_POLL);
        }
        let conn = match pool.try_get() {
            Some(conn) => Some(conn),
            // No connection open: none can come free, only be opened. Waiting on the pool
            // would not end when the server refuses, so look at the attempts' outcome now
            // and then, after asking once (each ask may open one more connection).
            None if pool.state().connections == 0 => {
                if let Some(refused) = last_failure.refusal() {
                    return Err(refused.error());
                }
                slice = slice.min(CONNECT_POLL);
                if asked {
                    std::thread::sleep(slice);
                    None
                } else {
                    asked = true;
                    pool.get_timeout(slice).ok()
                }
            }
            None => pool.get_timeout(slice).ok(),
        };
        if let Some(mut conn) = conn {
            if conn.is_alive() {
                return Ok(conn);
            }
            // Dropped: the pool sees it is closed and discards it.
        }
    }
}
