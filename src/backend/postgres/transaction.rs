//! [`VersionedStore::commit`](crate::VersionedStore::commit) on PostgreSQL: one SQL
//! transaction per verkv transaction. Its statements are written once ([`apply`]), over
//! an open SQL transaction of either face ([`Session`]): the blocking store's here, the
//! async store's in `asynchronous/transaction.rs`.
//!
//! # How it runs
//!
//! 1. Before anything is sent: refuses an empty transaction, and one that names a key
//!    twice (two keys are the same when their JSON is); encodes every key and value
//!    (one that does not encode is refused as [`Error::BadRecord`], nothing sent).
//! 2. `BEGIN ISOLATION LEVEL READ COMMITTED`, then locks every key, one at a time, in the
//!    order of their JSON text (the one global order: every transaction of every
//!    process takes its locks in it, so two transactions never wait for each other in a
//!    cycle; single-key writes lock one row and cannot close one either):
//!    - the key of an update: first its conditional write itself (`UPDATE … WHERE
//!      version = expected`), which under read committed checks the row's latest
//!      committed version and, if it is the one expected, locks and writes it in one
//!      round trip (the hand-written transaction's cost). If it finds another version
//!      or no row, the key is locked as any other, below, and its condition checked
//!      against what is locked;
//!    - a key with a row: `SELECT version … FOR UPDATE`. Under read committed the lock is
//!      taken on the row's latest committed version, which the statement returns, and
//!      no other writer can change or remove it until this transaction ends;
//!    - a key without one: its absence is locked by inserting its row now, with the
//!      value the transaction writes (a create or a put) or a placeholder (a compare, or
//!      a conditional write that is going to fail). The row is uncommitted, so nobody
//!      else sees it; a concurrent insert or put of the key (single-key or in another
//!      transaction) waits on the unique index until this transaction ends, and finds
//!      the key as this transaction leaves it. A placeholder is deleted before the
//!      commit (or rolled back with everything else), so it never becomes visible. If
//!      the insert finds that somebody created the key since the `SELECT`, the key is
//!      locked again from the start.
//!
//!    Advisory locks on a hash of the key were the other candidate; they would hold off
//!    only writers that take them too, and the single-key statements do not. SERIALIZABLE
//!    isolation protects only against other serializable transactions, and would refuse
//!    conflicting transactions with serialization failures to retry rather than make
//!    them wait.
//! 3. With every key locked, the records cannot change: every condition is checked
//!    against them at this one instant. If any fails, `ROLLBACK`, and the answer names
//!    every failed condition with the key's current version (`None`: no record).
//! 4. Otherwise every write: an update or put of a row it locked (`UPDATE`, the version
//!    drawn by the database as single-key writes draw it), a removal (`DELETE`), and a
//!    create or put of an absent key is its row inserted in step 2. Then `COMMIT`: the
//!    transaction becomes visible at once.
//!
//! # Notifications
//!
//! Every row it inserts, updates or deletes fires the table's change trigger, so a
//! listener hears each key it wrote, at the commit, once per row change, the last
//! naming the key's final state. A `compare_absent` of a key that stays absent inserts
//! and deletes its placeholder, which notifies the key twice (a version, then removed),
//! a change the listener re-reads and finds none.
//!
//! # Deadlines and failures
//!
//! The session's `lock_timeout` and `statement_timeout` are set from the time remaining
//! when the transaction begins (as for every operation), and the deadline is checked
//! again before each statement, so a wait for a row that another transaction holds is
//! cut short: answered as [`Interrupted`](crate::TransactionError::Interrupted)
//! (phase [`Queued`](crate::Phase::Queued) while waiting for a lock), rolled back, and
//! nothing is written. A lost connection before the `COMMIT` was sent rolls back
//! ([`Error::Unavailable`]); a connection lost, or a session ended by the server
//! (SQLSTATE class 08 or 57P), while the `COMMIT` runs is [`Error::OutcomeUnknown`]: the
//! transaction may have committed, all of it or none. A `COMMIT` the server refuses
//! with another error rolled back.

use std::future::Future;
use std::time::{Duration, Instant};

use ::postgres::types::ToSql;
use ::postgres::{Row, Statement};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{self, Encoded};
use super::failure::{Effect, Failure, Step};
use super::pool::Statements;
use super::versions::PgVersion;
use super::PgStore;
use crate::backend::Context;
use crate::deadline::{Interrupted, Phase, TimedOut};
use crate::store::{Cause, Committed, Conflict, Error, Outcome, TransactionStep};
use crate::store::{Expect, Transaction, TransactionError, TransactionRefused};
use crate::wait::completed;

/// An open SQL transaction, on either face's connection: the statements the steps above
/// send, written once over it. The blocking face's answers are ready when first polled.
pub(super) trait Session {
    /// Runs `statement`; its row, if it returned one.
    fn query_opt(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Failure>>;

    /// Runs `statement`, which changes rows and returns none.
    fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<(), Failure>>;

    /// Ends the transaction, undoing it.
    fn rollback(self) -> impl Future<Output = Result<(), Failure>>;

    /// Ends the transaction, applying it: a failure is [`Failure::Commit`].
    fn commit(self) -> impl Future<Output = Result<(), Failure>>;
}

/// A key's state once locked: the version of its row, absent (held by the row inserted
/// for it, at this version), or written already by its update (which found the version
/// expected).
enum Held<Ver> {
    Present(Ver),
    Claimed(Ver),
    Written { expected: Ver, new: Ver },
}

impl<Ver> Held<Ver> {
    /// The key's current version, as the transaction's conditions see it.
    fn current(&self) -> Option<&Ver> {
        match self {
            Held::Present(version)
            | Held::Written {
                expected: version, ..
            } => Some(version),
            Held::Claimed(_) => None,
        }
    }
}

/// What the SQL transaction came to.
pub(super) enum Ran<Ver> {
    /// Committed: what each step did.
    Committed(Committed<Ver>),
    /// Rolled back: the failed conditions, by step index, with the key's current version.
    Conflicts(Vec<(usize, Option<Ver>)>),
    /// Rolled back: the deadline passed between two statements.
    Late,
}

/// A step's key, and the value its row gets if the key is absent (the step's own value,
/// or a placeholder), encoded.
pub(super) struct Sent {
    key: Encoded,
    value: Encoded,
}

/// Runs a verkv transaction's `steps` (encoded in `sent`, their keys locked in `order`)
/// in `sql`, an SQL transaction just begun, as the module docs describe it, and ends it:
/// committed, or rolled back on a failed condition or when `ctx`'s deadline passes
/// between two statements. A failure leaves it to the caller to end.
pub(super) async fn apply<K, V, S: PgVersion>(
    mut sql: impl Session,
    statements: &Statements,
    ctx: &Context<'_>,
    steps: &[TransactionStep<K, V, S::Version>],
    (sent, order): &(Vec<Sent>, Vec<usize>),
) -> Result<Ran<S::Version>, Failure> {
    let late = || ctx.remaining() == Some(Duration::ZERO);
    let mut locked: Vec<Option<Held<S::Version>>> = (0..sent.len()).map(|_| None).collect();
    for &index in order {
        if late() {
            sql.rollback().await?;
            return Ok(Ran::Late);
        }
        let Sent { key, value } = &sent[index];
        if let TransactionStep::Update { expected, .. } = &steps[index] {
            let params: [&(dyn ToSql + Sync); 3] = [key, &S::to_column(expected), value];
            if let Some(row) = sql.query_opt(&statements.txn_update, &params).await? {
                let new = codec::version::<S>(&row, 0, key)?;
                locked[index] = Some(Held::Written {
                    expected: expected.clone(),
                    new,
                });
                continue;
            }
        }
        locked[index] = Some(loop {
            if let Some(row) = sql.query_opt(&statements.txn_lock, &[key]).await? {
                break Held::Present(codec::version::<S>(&row, 0, key)?);
            }
            if let Some(row) = sql.query_opt(&statements.txn_claim, &[key, value]).await? {
                break Held::Claimed(codec::version::<S>(&row, 0, key)?);
            }
        });
    }
    let held: Vec<Held<S::Version>> = locked.into_iter().flatten().collect();
    let failed: Vec<(usize, Option<S::Version>)> = steps
        .iter()
        .zip(&held)
        .enumerate()
        .filter(|(_, (step, held))| {
            step.condition()
                .is_some_and(|condition| !condition.holds(held.current().as_ref()))
        })
        .map(|(index, (_, held))| (index, held.current().cloned()))
        .collect();
    if !failed.is_empty() {
        sql.rollback().await?;
        return Ok(Ran::Conflicts(failed));
    }
    let mut outcomes = Vec::with_capacity(held.len());
    for ((step, held), Sent { key, value }) in steps.iter().zip(&held).zip(sent) {
        if late() {
            sql.rollback().await?;
            return Ok(Ran::Late);
        }
        outcomes.push(match (step, held) {
            (_, Held::Written { new, .. }) => Outcome::Written(new.clone()),
            (TransactionStep::Compare { .. }, Held::Present(_)) => Outcome::Compared,
            (TransactionStep::Compare { .. }, Held::Claimed(_)) => {
                sql.execute(&statements.txn_delete, &[key]).await?;
                Outcome::Compared
            }
            (TransactionStep::Remove { .. }, _) => {
                sql.execute(&statements.txn_delete, &[key]).await?;
                Outcome::Removed
            }
            (_, Held::Claimed(version)) => Outcome::Written(version.clone()),
            (_, Held::Present(_)) => {
                let row = sql.query_opt(&statements.txn_set, &[key, value]).await?;
                let row =
                    row.ok_or_else(|| Failure::Decode(Cause::new("no row for a locked key")))?;
                Outcome::Written(codec::version::<S>(&row, 0, key)?)
            }
        });
    }
    sql.commit().await?;
    Ok(Ran::Committed(outcomes))
}

/// The answer to a `commit` of `transaction` that started at `started`, from what its
/// SQL transaction came to (`Err`: refused before it ran, or a failure while it ran).
pub(super) fn answer<K: Clone, V, Ver: Clone>(
    ran: Result<Ran<Ver>, TransactionError<K, Ver>>,
    transaction: Transaction<K, V, Ver>,
    started: Instant,
) -> Result<Committed<Ver>, TransactionRefused<K, V, Ver>> {
    let error = match ran {
        Ok(Ran::Committed(outcomes)) => return Ok(outcomes),
        Ok(Ran::Conflicts(failed)) => TransactionError::Conflict(
            failed
                .into_iter()
                .map(|(index, current)| conflict(&transaction.steps[index], current))
                .collect(),
        ),
        Ok(Ran::Late) => interrupted(Interrupted::TimedOut(TimedOut::new(
            Phase::Running,
            started.elapsed(),
        ))),
        Err(error) => error,
    };
    Err(TransactionRefused { error, transaction })
}

/// An operation's error as a transaction's: a deadline or cancellation interrupts it,
/// anything else failed it.
pub(super) fn failed<K, Ver>(error: Error<Ver>) -> TransactionError<K, Ver> {
    match error {
        Error::TimedOut(timed_out) => interrupted(Interrupted::TimedOut(timed_out)),
        Error::Cancelled => interrupted(Interrupted::Cancelled),
        error => TransactionError::Failed(error),
    }
}

/// The blocking face's SQL transaction.
struct Blocking<'c>(::postgres::Transaction<'c>);

impl Session for Blocking<'_> {
    async fn query_opt(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Failure> {
        Ok(self.0.query_opt(statement, params)?)
    }

    async fn execute(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), Failure> {
        self.0.execute(statement, params)?;
        Ok(())
    }

    async fn rollback(self) -> Result<(), Failure> {
        Ok(self.0.rollback()?)
    }

    async fn commit(self) -> Result<(), Failure> {
        self.0.commit().map_err(Failure::Commit)
    }
}

impl<K, V, S> PgStore<K, V, S>
where
    K: Serialize + Clone,
    V: Serialize + DeserializeOwned,
    S: PgVersion,
{
    /// The trait's `commit`, as the module docs describe it.
    pub(super) fn commit_transaction(
        &self,
        ctx: &Context<'_>,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>> {
        let started = Instant::now();
        let ran = encode(&transaction.steps).and_then(|encoded| {
            self.run(ctx, Effect::Reads, |client, statements| {
                let sql = client
                    .build_transaction()
                    .isolation_level(::postgres::IsolationLevel::ReadCommitted)
                    .start()?;
                let steps = &transaction.steps;
                let ran = apply::<K, V, S>(Blocking(sql), statements, ctx, steps, &encoded);
                completed(ran).map(Step::Done)
            })
            .map_err(failed)
        });
        answer(ran, transaction, started)
    }
}

/// The failed condition of `step`, with the key's current version.
fn conflict<K: Clone, V, Ver: Clone>(
    step: &TransactionStep<K, V, Ver>,
    current: Option<Ver>,
) -> Conflict<K, Ver> {
    Conflict {
        key: step.key().clone(),
        expected: match step.condition() {
            Some(Expect::Version(version)) => Expect::Version(version.clone()),
            _ => Expect::Absent,
        },
        current,
    }
}

/// A backend's deadline or cancellation, as a transaction's refusal (it holds no shard
/// locks).
fn interrupted<K, Ver>(stopped: Interrupted) -> TransactionError<K, Ver> {
    TransactionError::Interrupted {
        stopped,
        locked: 0,
        shards: 0,
    }
}

/// Every step's key and value encoded, and the order in which their keys are locked
/// (by their JSON text).
///
/// # Errors
///
/// [`Empty`](TransactionError::Empty), [`Repeated`](TransactionError::Repeated), or a
/// key or value that does not encode ([`Error::BadRecord`] in
/// [`Failed`](TransactionError::Failed)).
pub(super) fn encode<K: Serialize + Clone, V: Serialize, Ver>(
    steps: &[TransactionStep<K, V, Ver>],
) -> Result<(Vec<Sent>, Vec<usize>), TransactionError<K, Ver>> {
    if steps.is_empty() {
        return Err(TransactionError::Empty);
    }
    let bad = |cause| TransactionError::Failed(Error::BadRecord(cause));
    let placeholder = codec::encode("value", &()).map_err(bad)?;
    let sent = steps
        .iter()
        .map(|step| {
            let key = codec::encode("key", step.key()).map_err(bad)?;
            let value = match step.value() {
                Some(value) => codec::encode("value", value).map_err(bad)?,
                None => placeholder.clone(),
            };
            Ok(Sent { key, value })
        })
        .collect::<Result<Vec<Sent>, _>>()?;
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by(|&a, &b| sent[a].key.0.get().cmp(sent[b].key.0.get()));
    if let Some(pair) = order
        .windows(2)
        .find(|pair| sent[pair[0]].key.0.get() == sent[pair[1]].key.0.get())
    {
        return Err(TransactionError::Repeated(steps[pair[1]].key().clone()));
    }
    Ok((sent, order))
}
