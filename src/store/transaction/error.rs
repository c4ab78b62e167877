//! Why a transaction was refused. A refused transaction changed nothing, except one a
//! backend reached over a network lost the answer to ([`Error::OutcomeUnknown`] inside
//! [`TransactionError::Failed`]).

use std::fmt;

use super::request::{Expect, Transaction};
use crate::deadline::Interrupted;
use crate::store::Error;

/// A condition of a transaction that did not hold: the key, what the step expected, and
/// what the record is now (`None`: no record, or an expired one).
///
/// # Examples
///
/// ```
/// use verkv::{Conflict, Expect};
///
/// let conflict = Conflict { key: "alice", expected: Expect::Version(3), current: Some(5) };
/// assert_eq!(conflict.to_string(), "\"alice\" expected version 3, current 5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conflict<K, Ver> {
    /// The key.
    pub key: K,
    /// What the transaction expected of it.
    pub expected: Expect<Ver>,
    /// Its version when the transaction was checked; `None` if it had no record.
    pub current: Option<Ver>,
}

impl<K: fmt::Debug, Ver: fmt::Display> fmt::Display for Conflict<K, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} expected {}, current ", self.key, self.expected)?;
        match &self.current {
            Some(current) => write!(f, "{current}"),
            None => f.write_str("absent"),
        }
    }
}

/// Why [`Store::commit`](crate::Store::commit) applied nothing.
///
/// # Which errors to retry
///
/// [`Conflict`](TransactionError::Conflict): re-read the keys it names and build the
/// transaction again ([`Store::transact`](crate::Store::transact) does). `TimedOut` and
/// `Cancelled` inside [`Interrupted`](TransactionError::Interrupted), if the caller still
/// wants it done. The rest answer the same until the transaction changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionError<K, Ver> {
    /// Some conditions did not hold: every one that failed, in the order of the steps.
    Conflict(Vec<Conflict<K, Ver>>),
    /// The transaction has no step.
    Empty,
    /// Two steps name this key; a key takes one step (a write carries its own
    /// condition).
    Repeated(K),
    /// A bounded store's shard would have to hold more than its share of the bound to
    /// keep every record the transaction writes to it: what they weigh together, and the
    /// most the shard holds. (One record too heavy for its shard is refused this way
    /// too.)
    TooHeavy {
        /// What the transaction's records in that shard weigh together.
        weight: u64,
        /// The shard's share of the bound.
        capacity: u64,
    },
    /// Called from inside a closure or callback the same store is running (an
    /// `update_with` closure, a weigher, an expiry policy): taking the shard locks
    /// could deadlock on the one that closure holds.
    Reentrant,
    /// The deadline passed, or the token was cancelled, while waiting for the shard
    /// locks (or between attempts of a retry loop): nothing was applied.
    Interrupted {
        /// Why it stopped, and in which phase.
        stopped: Interrupted,
        /// How many of the shard locks it needed it held when it stopped.
        locked: usize,
        /// How many shard locks it needed (0 between attempts of a retry loop).
        shards: usize,
    },
    /// The backend could not run it (never the in-memory store):
    /// [`Error::Unavailable`] (nothing applied; retry after a pause),
    /// [`Error::OutcomeUnknown`] (the commit was sent and its answer lost: it may have been
    /// applied, all of it or none; read before retrying), [`Error::BadRecord`] (a key or
    /// value that does not convert; nothing applied) or [`Error::Misconfigured`] (nothing
    /// applied). A backend's deadline and cancellation come as
    /// [`Interrupted`](TransactionError::Interrupted) instead.
    Failed(Error<Ver>),
}

impl<K: fmt::Debug, Ver: fmt::Display> fmt::Display for TransactionError<K, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactionError::Conflict(conflicts) => {
                write!(f, "transaction conflict on {} key", conflicts.len())?;
                if conflicts.len() != 1 {
                    f.write_str("s")?;
                }
                for (index, conflict) in conflicts.iter().enumerate() {
                    f.write_str(if index == 0 { ": " } else { "; " })?;
                    conflict.fmt(f)?;
                }
                Ok(())
            }
            TransactionError::Empty => f.write_str("empty transaction: it has no step"),
            TransactionError::Repeated(key) => {
                write!(f, "key {key:?} appears in more than one step of the transaction")
            }
            TransactionError::TooHeavy { weight, capacity } => write!(
                f,
                "transaction too large: its records in one shard weigh {weight}, at most {capacity} fits"
            ),
            TransactionError::Reentrant => f.write_str(
                "transaction started from inside a closure the same store is running; \
                 it could deadlock on the shard lock that closure holds",
            ),
            TransactionError::Interrupted {
                stopped,
                locked,
                shards,
            } => {
                stopped.fmt(f)?;
                if *shards > 0 {
                    write!(f, " (it held {locked} of the {shards} shard locks it needed)")?;
                }
                Ok(())
            }
            TransactionError::Failed(error) => write!(f, "transaction not run: {error}"),
        }
    }
}

impl<K: fmt::Debug, Ver: fmt::Display + fmt::Debug> std::error::Error for TransactionError<K, Ver> {}

/// A transaction that was refused, handed back with why: nothing was applied, and its
/// values can be taken back or the transaction retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRefused<K, V, Ver> {
    /// Why.
    pub error: TransactionError<K, Ver>,
    /// The transaction, as it was passed in.
    pub transaction: Transaction<K, V, Ver>,
}

impl<K: fmt::Debug, V, Ver: fmt::Display> fmt::Display for TransactionRefused<K, V, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<K: fmt::Debug, V: fmt::Debug, Ver: fmt::Display + fmt::Debug> std::error::Error
    for TransactionRefused<K, V, Ver>
{
}
