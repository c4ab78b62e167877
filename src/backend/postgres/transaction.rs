//! [`VersionedStore::commit`](crate::VersionedStore::commit) on PostgreSQL: one SQL
//! transaction per verkv transaction.
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

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::call::{Effect, Failure, Step};
use super::codec::{self, Encoded};
use super::versions::PgVersion;
use super::PgStore;
use crate::backend::Context;
use crate::deadline::{Interrupted, Phase, TimedOut};
use crate::store::{Committed, Conflict, Error, Outcome, TransactionStep};
use crate::store::{Expect, Transaction, TransactionError, TransactionRefused};

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
enum Ran<Ver> {
    /// Committed: what each step did.
    Committed(Committed<Ver>),
    /// Rolled back: the failed conditions, by step index, with the key's current version.
    Conflicts(Vec<(usize, Option<Ver>)>),
    /// Rolled back: the deadline passed between two statements.
    Late,
}

/// A step's key, and the value its row gets if the key is absent (the step's own value,
/// or a placeholder), encoded.
struct Sent {
    key: Encoded,
    value: Encoded,
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
        let answer = encode(&transaction.steps).and_then(|(sent, order)| {
            self.run(ctx, Effect::Reads, |client, statements| {
                let late = || ctx.remaining() == Some(Duration::ZERO);
                let mut sql = client
                    .build_transaction()
                    .isolation_level(::postgres::IsolationLevel::ReadCommitted)
                    .start()?;
                let mut locked: Vec<Option<Held<S::Version>>> =
                    (0..sent.len()).map(|_| None).collect();
                for &index in &order {
                    if late() {
                        return Ok(Step::Done(Ran::Late));
                    }
                    let Sent { key, value } = &sent[index];
                    if let TransactionStep::Update { expected, .. } = &transaction.steps[index] {
                        let params: [&(dyn ::postgres::types::ToSql + Sync); 3] =
                            [key, &S::to_column(expected), value];
                        if let Some(row) = sql.query_opt(&statements.txn_update, &params)? {
                            let new = codec::version::<S>(&row, 0, key)?;
                            locked[index] = Some(Held::Written {
                                expected: expected.clone(),
                                new,
                            });
                            continue;
                        }
                    }
                    locked[index] = Some(loop {
                        if let Some(row) = sql.query_opt(&statements.txn_lock, &[key])? {
                            break Held::Present(codec::version::<S>(&row, 0, key)?);
                        }
                        if let Some(row) = sql.query_opt(&statements.txn_claim, &[key, value])? {
                            break Held::Claimed(codec::version::<S>(&row, 0, key)?);
                        }
                    });
                }
                let held: Vec<Held<S::Version>> = locked.into_iter().flatten().collect();
                let failed: Vec<(usize, Option<S::Version>)> = transaction
                    .steps
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
                    sql.rollback()?;
                    return Ok(Step::Done(Ran::Conflicts(failed)));
                }
                let mut outcomes = Vec::with_capacity(held.len());
                for ((step, held), Sent { key, value }) in
                    transaction.steps.iter().zip(&held).zip(&sent)
                {
                    if late() {
                        return Ok(Step::Done(Ran::Late));
                    }
                    outcomes.push(match (step, held) {
                        (_, Held::Written { new, .. }) => Outcome::Written(new.clone()),
                        (TransactionStep::Compare { .. }, Held::Present(_)) => Outcome::Compared,
                        (TransactionStep::Compare { .. }, Held::Claimed(_)) => {
                            sql.execute(&statements.txn_delete, &[key])?;
                            Outcome::Compared
                        }
                        (TransactionStep::Remove { .. }, _) => {
                            sql.execute(&statements.txn_delete, &[key])?;
                            Outcome::Removed
                        }
                        (_, Held::Claimed(version)) => Outcome::Written(version.clone()),
                        (_, Held::Present(_)) => {
                            let row = sql.query_one(&statements.txn_set, &[key, value])?;
                            Outcome::Written(codec::version::<S>(&row, 0, key)?)
                        }
                    });
                }
                sql.commit().map_err(Failure::Commit)?;
                Ok(Step::Done(Ran::Committed(outcomes)))
            })
            .map_err(|error| match error {
                Error::TimedOut(timed_out) => interrupted(Interrupted::TimedOut(timed_out)),
                Error::Cancelled => interrupted(Interrupted::Cancelled),
                error => TransactionError::Failed(error),
            })
        });
        let error = match answer {
            Ok(Ran::Committed(outcomes)) => return Ok(outcomes),
            Ok(Ran::Conflicts(failed)) => TransactionError::Conflict(
                failed
                    .into_iter()
                    .map(|(index, current)| conflict(&transaction.steps[index], current))
                    .collect(),
            ),
            // Dropping the SQL transaction rolled it back.
            Ok(Ran::Late) => interrupted(Interrupted::TimedOut(TimedOut::new(
                Phase::Running,
                started.elapsed(),
            ))),
            Err(error) => error,
        };
        Err(TransactionRefused { error, transaction })
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
fn encode<K: Serialize + Clone, V: Serialize, Ver>(
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
