//! Transactions that wait: within a [`Bounded`] view's deadline, and the optimistic loop
//! over several keys (read them at one instant, compute, commit, and on a conflict read
//! again).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use std::future::{ready, Future};

use super::completed;
use crate::deadline::{Forever, Interrupted, Wait};
use crate::store::{
    Committed, Error, Expect, Outcome, ReadMany, Store, Transaction, TransactionError,
    TransactionRefused, Versioned,
};
use crate::sync::Backoff;
use crate::version::VersionScheme;
use crate::wait::Bounded;

/// A transaction committed by [`Store::transact`]: what each step did (the steps the
/// closure built, then the compares added for the keys it read and did not write), and
/// how many attempts it took (1 if nobody wrote the keys in between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transacted<Ver> {
    /// What each step did, in the order of the steps.
    pub outcomes: Vec<Outcome<Ver>>,
    /// Read-compute-commit attempts made, the successful one included.
    pub attempts: u32,
}

/// Why [`Store::transact`] gave up, having applied nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactError<K, Ver, E> {
    /// The store refused the transaction for another reason than a conflict, or the
    /// deadline passed ([`TransactionError::Interrupted`], in phase
    /// [`Retrying`](crate::Phase::Retrying) after refused attempts).
    Transaction(TransactionError<K, Ver>),
    /// The closure refused: its error.
    Closure(E),
}

impl<K: fmt::Debug, Ver: fmt::Display, E: fmt::Display> fmt::Display for TransactError<K, Ver, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactError::Transaction(error) => error.fmt(f),
            TransactError::Closure(error) => write!(f, "transaction declined: {error}"),
        }
    }
}

impl<K: fmt::Debug, Ver: fmt::Display + fmt::Debug, E: fmt::Display + fmt::Debug> std::error::Error
    for TransactError<K, Ver, E>
{
}

impl<K: Eq, V, Ver: Clone> Transaction<K, V, Ver> {
    /// Makes the transaction depend on `key` being as it was read (`read`: its version,
    /// or `None` for no record): a key it does not name gets a compare, and a blind
    /// write of it becomes conditional on the version read (an update, or a create if
    /// there was no record). A key it names with a condition of its own keeps it.
    fn depend_on(mut self, key: K, read: Option<&Ver>) -> Self {
        let expect = read.map_or(Expect::Absent, |version| Expect::Version(version.clone()));
        if !self.mentions(&key) {
            return self.expect(key, expect);
        }
        self.condition_put(&key, expect);
        self
    }
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// The optimistic transaction: reads `keys` at one instant
    /// ([`get_many`](Store::get_many)), lets `compute` build a [`Transaction`] from what
    /// it read **outside any lock**, and commits it on condition that every key read is
    /// still as read; on a conflict, reads again and retries (with a short backoff) until
    /// it commits. The multi-key [`retry_update`](Store::retry_update).
    ///
    /// The transaction needs no compare of its own for the keys read: a key it does not
    /// name gets one, and a blind [`put`](Transaction::put) of a key read becomes
    /// conditional on the version read. `compute` may run several times, so it must be
    /// pure; its error stops the loop with nothing written.
    ///
    /// # Errors
    ///
    /// [`TransactError::Closure`] with `compute`'s error; [`TransactError::Transaction`]
    /// if the store refuses the transaction for another reason than a conflict (a
    /// conflict on a condition `compute` added itself, on a key it did not read, is
    /// retried like the others).
    ///
    /// # Panics
    ///
    /// As [`get`](Store::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, Transaction};
    ///
    /// let store: Store<&str, i64> = Store::new();
    /// store.insert("alice", 100).unwrap();
    /// store.insert("bob", 0).unwrap();
    /// let moved = store.transact(&["alice", "bob"], |read| {
    ///     let (alice, bob) = (read[0].as_ref().unwrap(), read[1].as_ref().unwrap());
    ///     if alice.value < 30 {
    ///         return Err("insufficient funds");
    ///     }
    ///     Ok(Transaction::new().put("alice", alice.value - 30).put("bob", bob.value + 30))
    /// });
    /// assert_eq!(moved.unwrap().attempts, 1);
    /// assert_eq!(store.get(&"bob").unwrap().value, 30);
    /// ```
    pub fn transact<E>(
        &self,
        keys: &[K],
        compute: impl FnMut(
            &[Option<Versioned<V, S::Version>>],
        ) -> Result<Transaction<K, V, S::Version>, E>,
    ) -> Result<Transacted<S::Version>, TransactError<K, S::Version, E>> {
        self.transact_in(&Forever, keys, compute)
    }

    pub(crate) fn transact_in<W: Wait, E>(
        &self,
        wait: &W,
        keys: &[K],
        compute: impl FnMut(
            &[Option<Versioned<V, S::Version>>],
        ) -> Result<Transaction<K, V, S::Version>, E>,
    ) -> Result<Transacted<S::Version>, TransactError<K, S::Version, E>> {
        let wait = wait.fixed();
        let borrowed: Vec<&K> = keys.iter().collect();
        let backoff = Backoff::new();
        completed(optimistic_transaction(
            keys,
            || ready(self.get_many_in(&wait, &borrowed).map_err(stopped)),
            |transaction| ready(self.commit_in(&wait, transaction)),
            compute,
            |started, attempts| {
                let between = wait.between_attempts(started, attempts).map_err(Into::into);
                backoff.snooze();
                ready(between)
            },
        ))
    }
}

/// A wait's stop as an operation's error.
fn stopped<Ver>(stop: impl Into<Interrupted>) -> Error<Ver> {
    stop.into().into()
}

/// The optimistic loop over several keys, on any store and either face: `read` the keys
/// at one instant, let `compute` build a transaction from what was read, `commit` it on
/// condition that every key read is still as read, and on a conflict ask `between`
/// whether there is time for another attempt (it pauses, or fails with the stop), then
/// read again. The blocking faces run it through a future whose every step is ready.
pub(crate) async fn optimistic_transaction<K, V, Ver, E, R, C, P>(
    keys: &[K],
    mut read: impl FnMut() -> R,
    mut commit: impl FnMut(Transaction<K, V, Ver>) -> C,
    mut compute: impl FnMut(&[Option<Versioned<V, Ver>>]) -> Result<Transaction<K, V, Ver>, E>,
    mut between: impl FnMut(Instant, u32) -> P,
) -> Result<Transacted<Ver>, TransactError<K, Ver, E>>
where
    K: Eq + Clone,
    Ver: Clone,
    R: Future<Output = Result<ReadMany<V, Ver>, Error<Ver>>>,
    C: Future<Output = Result<Committed<Ver>, TransactionRefused<K, V, Ver>>>,
    P: Future<Output = Result<(), Interrupted>>,
{
    let mut started = None;
    let mut refused = 0;
    let interrupted = |stopped: Interrupted, locked, shards, refused| {
        let stopped = match stopped {
            Interrupted::TimedOut(late) => Interrupted::TimedOut(late.after_attempts(refused)),
            Interrupted::Cancelled => Interrupted::Cancelled,
        };
        TransactError::Transaction(TransactionError::Interrupted {
            stopped,
            locked,
            shards,
        })
    };
    loop {
        let read = match read().await {
            Ok(read) => read,
            Err(Error::TimedOut(late)) => {
                return Err(interrupted(Interrupted::TimedOut(late), 0, 0, refused))
            }
            Err(Error::Cancelled) => {
                return Err(interrupted(Interrupted::Cancelled, 0, 0, refused))
            }
            Err(error) => return Err(TransactError::Transaction(TransactionError::Failed(error))),
        };
        let mut transaction = compute(&read).map_err(TransactError::Closure)?;
        for (key, read) in keys.iter().zip(&read) {
            let version = read.as_ref().map(|read| &read.version);
            transaction = transaction.depend_on(key.clone(), version);
        }
        match commit(transaction).await {
            Ok(outcomes) => {
                return Ok(Transacted {
                    outcomes,
                    attempts: refused + 1,
                })
            }
            Err(TransactionRefused {
                error: TransactionError::Conflict(_),
                ..
            }) => refused += 1,
            Err(TransactionRefused {
                error:
                    TransactionError::Interrupted {
                        stopped,
                        locked,
                        shards,
                    },
                ..
            }) => return Err(interrupted(stopped, locked, shards, refused)),
            Err(refusal) => return Err(TransactError::Transaction(refusal.error)),
        }
        let started = *started.get_or_insert_with(Instant::now);
        between(started, refused)
            .await
            .map_err(|stop| interrupted(stop, 0, 0, refused))?;
    }
}

impl<K, V, S, H> Bounded<'_, K, V, S, H>
where
    K: Hash + Eq + Clone,
    S: VersionScheme,
    H: BuildHasher,
{
    /// As [`Store::commit`], giving up when the view's deadline passes (or its token is
    /// cancelled) while queued for any of the shard locks. Giving up has no effect.
    ///
    /// # Errors
    ///
    /// As [`Store::commit`], plus [`TransactionError::Interrupted`]: its
    /// [`Interrupted`] says why (a [`TimedOut`](crate::TimedOut) in phase
    /// [`Queued`](crate::Phase::Queued)), and how many of the shard locks were held.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use verkv::{Store, Transaction};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// let request = store.within(Duration::from_millis(100));
    /// request.commit(Transaction::new().create("a", 1).create("b", 2)).unwrap();
    /// assert_eq!(store.len(), 2);
    /// ```
    pub fn commit(
        &self,
        transaction: Transaction<K, V, S::Version>,
    ) -> Result<Committed<S::Version>, TransactionRefused<K, V, S::Version>> {
        self.store().commit_in(self.budget(), transaction)
    }

    /// As [`Store::get_many`], giving up as [`commit`](Bounded::commit) does.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] if the deadline passed or the token was cancelled while queued.
    pub fn get_many<Q>(&self, keys: &[&Q]) -> Result<ReadMany<V, S::Version>, Interrupted>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.store().get_many_in(self.budget(), keys)
    }

    /// As [`Store::transact`], giving up when the view's deadline passes (or its token is
    /// cancelled), between attempts or while queued. Giving up has no effect.
    ///
    /// # Errors
    ///
    /// As [`Store::transact`], plus [`TransactionError::Interrupted`] inside
    /// [`TransactError::Transaction`] (in phase [`Retrying`](crate::Phase::Retrying)
    /// after refused attempts).
    pub fn transact<E>(
        &self,
        keys: &[K],
        compute: impl FnMut(
            &[Option<Versioned<V, S::Version>>],
        ) -> Result<Transaction<K, V, S::Version>, E>,
    ) -> Result<Transacted<S::Version>, TransactError<K, S::Version, E>>
    where
        V: Clone,
    {
        self.store().transact_in(self.budget(), keys, compute)
    }
}
