//! Who listens: the table's changes are notified only while a session that needs them
//! (a near-cache's notification connection, a `wait_for_change`) is registered.
//!
//! # Why
//!
//! PostgreSQL serializes the commits of every transaction that notifies on one lock of
//! the whole cluster (the notification queue's), so a trigger that notifies each write
//! halves the writes a table takes from several clients, whether or not anybody listens.
//! The trigger is therefore off while nobody listens, and writes then cost what the bare
//! statement costs (the trigger is not even called).
//!
//! # How
//!
//! A registry table (`<table>_listeners`) holds the server process id of every
//! registered session, and a function (`<table>_listening`) changes it: under an
//! advisory lock of the table's registry, it withdraws the registrations of sessions
//! that are gone (their process is not in `pg_stat_activity`), adds or withdraws the
//! caller's, and turns the trigger on (`ALTER TABLE … ENABLE TRIGGER`) if any
//! registration is left and it is off, off if none is left and it is on. A session
//! registers after it `LISTEN`s, and trusts nothing it read before the registration
//! committed.
//!
//! # The guarantee, and why it holds
//!
//! **Every write that commits after a registration committed, and every write still
//! uncommitted when it did, is notified to the registered session; every other write
//! committed before the registration did.** So a session that reads only after its
//! registration committed either sees a write in what it reads, or is told about it.
//!
//! 1. Turning the trigger on takes the table's `SHARE ROW EXCLUSIVE` lock, which
//!    conflicts with the `ROW EXCLUSIVE` lock every `INSERT`, `UPDATE` and `DELETE`
//!    takes and keeps until its transaction ends. So the registration waits until every
//!    transaction that has written the table (or is writing it) has ended, and no write
//!    starts while it holds the lock.
//! 2. Whether the trigger fires is read from the table's catalog entry while the writer
//!    holds its `ROW EXCLUSIVE` lock, and a writer that acquires that lock processes the
//!    catalog invalidations committed before, whatever its isolation level (catalog
//!    lookups do not use the transaction's snapshot). A write whose trigger did not fire
//!    therefore held its lock before the trigger was turned on, so by (1) it ended before
//!    the registration committed; every later write fires it.
//! 3. If the trigger was on already, it was turned on by an earlier registration that
//!    is still there (it is turned off only under the same advisory lock, when no
//!    registration is left), and (2) holds from that one's commit, which is earlier.
//! 4. The registered session `LISTEN`ed before it registered, and PostgreSQL delivers
//!    to a listener every notification of a transaction that commits after its `LISTEN`
//!    did, in commit order: a write that fired the trigger and committed after the
//!    registration is delivered.
//! 5. A registration is withdrawn only by its session, or once its session is gone (its
//!    process id is no longer in `pg_stat_activity`): while a session lives, its
//!    registration keeps the trigger on. A process id the system reuses keeps a dead
//!    registration in place, which only costs notifications.
//!
//! The registry is changed in `READ COMMITTED` transactions, so its reads after the
//! advisory lock see every registration committed before (a snapshot taken before the
//! lock was granted could miss one and turn the trigger off under a listener).
//!
//! # Costs and hazards
//!
//! While a session is registered every write notifies (and commits in turn with every
//! other notifying write). A registration that turns the trigger on or off waits behind
//! the writes in flight and holds up the writes that come after it; it gives up after
//! a short lock timeout and tries again after a pause, so that a long transaction does
//! not stall the table's writers for long. Registrations of sessions that died (a killed
//! process, a lost connection) keep notifications on until the next registration,
//! withdrawal or [`PgStoreBuilder::build`](super::PgStoreBuilder::build) on the table,
//! each of which withdraws them. A table made by an older version of this crate has its
//! trigger on: the first build turns it off when nobody is registered. A process of an
//! older version does not register, so its near-cache or waiter would then hear nothing:
//! upgrade every process that uses a table together.
//!
//! Registering needs the role to be allowed to run the registry function (created with
//! `SECURITY DEFINER` by the role that built the store first, which owns the table).

use std::future::Future;
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::Client;

use super::schema::Sql;

/// The pause between two attempts to change the registry when the table's lock was not
/// granted in time.
const RETRY: Duration = Duration::from_millis(20);

/// The SQL that makes a session a registered listener of one table, and withdraws it.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    listen: String,
    unlisten: String,
    register: String,
    unregister: String,
    tidy: String,
}

/// A session the registry's statements run on, from either face: the blocking face's
/// answers are ready when first polled, and its pauses sleep the thread.
pub(crate) trait Batch {
    /// Runs `sql`, one or more statements, and waits for the last one's answer.
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), ::postgres::Error>>;

    /// Whether the connection is closed.
    fn is_closed(&self) -> bool;

    /// Pauses for `pause` before another attempt.
    fn pause(pause: Duration) -> impl Future<Output = ()>;
}

impl Batch for Client {
    async fn batch_execute(&mut self, sql: &str) -> Result<(), ::postgres::Error> {
        Client::batch_execute(self, sql)
    }

    fn is_closed(&self) -> bool {
        Client::is_closed(self)
    }

    async fn pause(pause: Duration) {
        std::thread::sleep(pause);
    }
}

impl Registry {
    /// The registry of the table of `sql`.
    pub(super) fn new(sql: &Sql) -> Self {
        Registry {
            listen: format!("LISTEN \"{}\"", sql.channel),
            unlisten: "UNLISTEN *".to_string(),
            register: sql.register.clone(),
            unregister: sql.unregister.clone(),
            tidy: sql.tidy.clone(),
        }
    }

    /// `LISTEN`s on the table's channel and registers the session: once this returns,
    /// every change committed later is notified to it, and every change it is not told
    /// about committed before (see the [module documentation](self)). Tries again while
    /// the table's lock is not granted in time, until `give_up` passes or `stop` says so.
    ///
    /// # Errors
    ///
    /// The client's error (the last one when it gives up): the session may be listening,
    /// unregistered; the caller withdraws it with [`Registry::unlisten`] or drops it.
    pub(crate) async fn listen<B: Batch>(
        &self,
        client: &mut B,
        give_up: Option<Instant>,
        stop: impl Fn() -> bool,
    ) -> Result<(), ::postgres::Error> {
        client.batch_execute(&self.listen).await?;
        loop {
            match in_transaction(client, &self.register).await {
                Err(error)
                    if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                        && !stop()
                        && give_up.is_none_or(|give_up| Instant::now() + RETRY < give_up) =>
                {
                    B::pause(RETRY).await;
                }
                answer => return answer,
            }
        }
    }

    /// Stops listening and withdraws the session's registration (the last registration
    /// of the table turns its trigger off). Tries again while the table's lock is not
    /// granted in time, for at most a few attempts.
    ///
    /// # Errors
    ///
    /// The client's error: the registration may be left in place, which keeps
    /// notifications on (no change is missed) until the session is gone; the caller
    /// drops the connection.
    pub(crate) async fn unlisten<B: Batch>(&self, client: &mut B) -> Result<(), ::postgres::Error> {
        client.batch_execute(&self.unlisten).await?;
        let mut attempts = 5;
        loop {
            attempts -= 1;
            match in_transaction(client, &self.unregister).await {
                Err(error)
                    if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) && attempts > 0 =>
                {
                    B::pause(RETRY).await;
                }
                answer => return answer,
            }
        }
    }

    /// Withdraws the registrations of sessions that are gone, turning the trigger off if
    /// none is left. Not done (and not an error) when the table's lock is not granted in
    /// time: notifications then stay on until the next change of the registry.
    ///
    /// # Errors
    ///
    /// The client's error, other than a lock not granted in time.
    pub(super) async fn tidy(&self, client: &mut impl Batch) -> Result<(), ::postgres::Error> {
        match in_transaction(client, &self.tidy).await {
            Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Ok(()),
            answer => answer,
        }
    }
}

/// Runs `sql`, a transaction from `BEGIN` to `COMMIT`, rolling it back if it fails
/// part way (so that the session is usable again).
async fn in_transaction(client: &mut impl Batch, sql: &str) -> Result<(), ::postgres::Error> {
    let answer = client.batch_execute(sql).await;
    if answer.is_err() && !client.is_closed() {
        // If even this fails the connection is broken, which the error says already.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    answer
}
