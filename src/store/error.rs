//! Why an operation did not take effect.
//!
//! [`Error`] is the one list of reasons; operations that take a value hand it back inside
//! [`Rejected`], and [`update_with`](crate::Store::update_with) adds the closure's own
//! error in [`UpdateWithError`]. Messages are short, lowercase, and carry the versions
//! involved.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use super::record::Versioned;
#[cfg(not(verkv_loom))]
use crate::deadline::Attempt;
use crate::deadline::{Interrupted, TimedOut};
use crate::store::parts::eviction::TooHeavy;

/// Why a conditional operation was refused. The store is unchanged when one is returned.
///
/// `Ver` is the version type of the store's [`VersionScheme`](crate::VersionScheme).
///
/// # Examples
///
/// ```
/// use verkv::{Error, Store};
///
/// let store: Store<&str, u32> = Store::new();
/// let v1 = store.insert("a", 1).unwrap();
/// store.update(&"a", &v1, 2).unwrap();
///
/// let err = store.update(&"a", &v1, 3).unwrap_err();
/// assert_eq!(err.error, Error::Stale { expected: 1, current: 2 });
/// assert_eq!(err.to_string(), "stale version: expected 1, current 2");
/// assert_eq!(err.value, 3); // the rejected value comes back
/// ```
///
/// # Which errors to retry
///
/// Only some errors can go away by themselves; a loop that retries the others spins
/// forever.
///
/// - **Retry after re-reading:** [`Stale`](Error::Stale) and [`Exists`](Error::Exists)
///   carry the current version; re-read, re-apply and write again.
/// - **Retry, with a backoff:** [`Unavailable`](Error::Unavailable) (the backend could not
///   be reached or was busy; nothing happened), and [`TimedOut`](Error::TimedOut) or
///   [`Cancelled`](Error::Cancelled) if the caller still wants the operation done.
/// - **Read before retrying:** [`OutcomeUnknown`](Error::OutcomeUnknown), since the write
///   may have taken effect.
/// - **Not worth retrying:** [`NotFound`](Error::NotFound) and [`Expired`](Error::Expired)
///   answer the same until somebody writes the key; [`TooHeavy`](Error::TooHeavy),
///   [`BadRecord`](Error::BadRecord) and [`Misconfigured`](Error::Misconfigured) answer the
///   same until the record, the types, the settings or the backend are changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<Ver> {
    /// The key has no record (it was never written, or it was removed). A record that
    /// was evicted, or that expired and was reclaimed since, is not there either.
    NotFound,
    /// The key's record has expired (its [time-to-live or
    /// time-to-idle](crate::StoreBuilder::time_to_live) ran out) and the store still held
    /// it: the operation reclaimed it and had no effect. The store answers this only while
    /// it still holds the expired record; once reclaimed (by another write to the key, or
    /// by the sweep of writes to its shard) the key answers [`Error::NotFound`], as an
    /// evicted one does. Either way the record's versions are never accepted again.
    Expired,
    /// The record exists but is at another version than the caller read: somebody else
    /// wrote it in between. Re-read, re-apply, and try again with `current`.
    Stale {
        /// The version the caller said it read.
        expected: Ver,
        /// The record's version now.
        current: Ver,
    },
    /// A create-only write found the key already present (`If-None-Match: *` failed).
    Exists {
        /// The version of the record that is already there.
        current: Ver,
    },
    /// A bounded operation's deadline passed before it could take effect.
    TimedOut(TimedOut),
    /// A bounded operation's [`CancelToken`](crate::CancelToken) was cancelled before it
    /// could take effect.
    Cancelled,
    /// A backend could not carry the operation out for a reason that may pass: it could
    /// not be reached (within the time allowed for getting a connection), lost the
    /// connection before the operation was sent, or answered that it cannot serve it now
    /// (such as too many connections, or a conflict with another transaction). The
    /// operation had no effect; it is worth retrying, after a pause. The in-memory
    /// [`Store`](crate::Store) never answers this.
    Unavailable(Cause),
    /// The connection to a backend was lost after a write was sent and before its answer
    /// came back, or the answer could not be decoded: the write **may or may not have
    /// taken effect**. Read the record to find out; never assume it was not written. The
    /// in-memory [`Store`](crate::Store) never answers this.
    OutcomeUnknown(Cause),
    /// A key or value could not be converted between its Rust type and the backend's
    /// form: a stored record does not decode as the store's types (it was written by a
    /// program, or a store, with other types), or a key or value the caller passed cannot
    /// be encoded (such as a map whose keys are not strings, which JSON cannot hold). The
    /// operation had no effect, and the same call fails the same way until the record or
    /// the types change: **not worth retrying**. The in-memory [`Store`](crate::Store)
    /// never answers this.
    BadRecord(Cause),
    /// A backend answered that the store's settings do not fit it: the database or the
    /// role does not exist, the password is wrong, the role may not connect or use the
    /// table, or the table is missing or has other columns than the store's. The
    /// operation had no effect, and the same call fails the same way until the settings
    /// or the backend are changed: **not worth retrying**. A refused connection is
    /// reported as soon as the backend answers, not after the time allowed for getting a
    /// connection. The in-memory [`Store`](crate::Store) never answers this.
    Misconfigured(Cause),
    /// A store with a [capacity bound](crate::StoreBuilder::max_capacity) cannot hold the
    /// record at all: it weighs more than its shard's share of the capacity (or the
    /// capacity is zero). Nothing was written; a write hands its value back.
    TooHeavy {
        /// What the record weighs (1 without a [weigher](crate::StoreBuilder::weigher)).
        weight: u64,
        /// The most one record can weigh in this store: its shard's share of the bound.
        capacity: u64,
    },
}

impl<Ver> Error<Ver> {
    /// The record's current version, where the error knows it (`Stale`, `Exists`).
    pub fn current(&self) -> Option<&Ver> {
        match self {
            Error::NotFound
            | Error::Expired
            | Error::TimedOut(_)
            | Error::Cancelled
            | Error::Unavailable(_)
            | Error::OutcomeUnknown(_)
            | Error::BadRecord(_)
            | Error::Misconfigured(_)
            | Error::TooHeavy { .. } => None,
            Error::Stale { current, .. } | Error::Exists { current } => Some(current),
        }
    }
}

impl<Ver: fmt::Display> fmt::Display for Error<Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("key not found"),
            Error::Expired => f.write_str("the record expired"),
            Error::Stale { expected, current } => {
                write!(f, "stale version: expected {expected}, current {current}")
            }
            Error::Exists { current } => write!(f, "key already exists at version {current}"),
            Error::TimedOut(timed_out) => timed_out.fmt(f),
            Error::Cancelled => Interrupted::Cancelled.fmt(f),
            Error::Unavailable(cause) => write!(f, "backend unavailable: {cause}"),
            Error::OutcomeUnknown(cause) => write!(
                f,
                "outcome unknown: the connection was lost after the write was sent ({cause})"
            ),
            Error::BadRecord(cause) => write!(f, "bad record: {cause}"),
            Error::Misconfigured(cause) => write!(f, "backend misconfigured: {cause}"),
            Error::TooHeavy { weight, capacity } => {
                write!(
                    f,
                    "record too heavy: weighs {weight}, at most {capacity} fits"
                )
            }
        }
    }
}

/// What went wrong in a backend, as its message: the cause of [`Error::Unavailable`],
/// [`Error::OutcomeUnknown`], [`Error::BadRecord`] and [`Error::Misconfigured`].
///
/// It keeps the text rather than the backend's error value, so that [`Error`] stays
/// `Clone`, comparable and small. Two causes are equal when their messages are.
///
/// # Examples
///
/// ```
/// use verkv::{Cause, Error};
///
/// let err: Error<u64> = Error::Unavailable(Cause::new("connection refused"));
/// assert_eq!(err.to_string(), "backend unavailable: connection refused");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cause(Arc<str>);

impl Cause {
    /// A cause with this message.
    pub fn new(message: impl fmt::Display) -> Self {
        Cause(message.to_string().into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

impl<Ver: fmt::Debug + fmt::Display> std::error::Error for Error<Ver> {}

impl<Ver> From<TooHeavy> for Error<Ver> {
    fn from(TooHeavy { weight, capacity }: TooHeavy) -> Self {
        Error::TooHeavy { weight, capacity }
    }
}

impl<Ver> From<Interrupted> for Error<Ver> {
    fn from(interrupted: Interrupted) -> Self {
        match interrupted {
            Interrupted::TimedOut(timed_out) => Error::TimedOut(timed_out),
            Interrupted::Cancelled => Error::Cancelled,
        }
    }
}

/// Lets code that is generic over how it waits use `?` when waiting cannot fail.
impl<Ver> From<Infallible> for Error<Ver> {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

/// A busy lock, as an async caller's one try reports it: a timeout queued (it tells the
/// two apart by the wait it made).
#[cfg(not(verkv_loom))]
impl<Ver> From<Attempt> for Error<Ver> {
    fn from(attempt: Attempt) -> Self {
        Interrupted::from(attempt).into()
    }
}

/// A write that was refused, with the value it would have written handed back.
///
/// Its `Debug` output leaves the value out, so `V` needs no `Debug` (and a large value is
/// not printed by `unwrap`).
#[derive(Clone, PartialEq, Eq)]
pub struct Rejected<V, Ver> {
    /// Why the write was refused.
    pub error: Error<Ver>,
    /// The value the caller passed, unchanged.
    pub value: V,
}

impl<V, Ver> Rejected<V, Ver> {
    /// A write that never started because its wait for the lock failed (a timeout or a
    /// cancellation), with the value it would have written.
    #[inline]
    pub(crate) fn not_started<E: Into<Error<Ver>>>((error, value): (E, V)) -> Self {
        Rejected {
            error: error.into(),
            value,
        }
    }
}

impl<V, Ver: fmt::Debug> fmt::Debug for Rejected<V, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<V, Ver: fmt::Display> fmt::Display for Rejected<V, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<V, Ver: fmt::Debug + fmt::Display + 'static> std::error::Error for Rejected<V, Ver> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<V, Ver> From<Rejected<V, Ver>> for Error<Ver> {
    fn from(rejected: Rejected<V, Ver>) -> Self {
        rejected.error
    }
}

/// Why [`insert_or_current`](crate::Store::insert_or_current) did not insert.
#[derive(Clone, PartialEq, Eq)]
pub enum NotInserted<V, Ver> {
    /// The key has a record: the record as it is (read under the same lock), and the
    /// value that was not inserted.
    Occupied {
        /// The record that is there.
        current: Versioned<V, Ver>,
        /// The value the caller passed, handed back.
        value: V,
    },
    /// The store refused the record ([`Error::TooHeavy`] in a bounded store), with the
    /// value handed back.
    Refused(Rejected<V, Ver>),
}

impl<V, Ver: fmt::Debug> fmt::Debug for NotInserted<V, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotInserted::Occupied { current, .. } => f
                .debug_struct("Occupied")
                .field("version", &current.version)
                .finish_non_exhaustive(),
            NotInserted::Refused(rejected) => f.debug_tuple("Refused").field(rejected).finish(),
        }
    }
}

impl<V, Ver: fmt::Display> fmt::Display for NotInserted<V, Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotInserted::Occupied { current, .. } => {
                write!(f, "key already exists at version {}", current.version)
            }
            NotInserted::Refused(rejected) => rejected.fmt(f),
        }
    }
}

impl<V, Ver: fmt::Debug + fmt::Display> std::error::Error for NotInserted<V, Ver> {}

/// Why [`try_update_with`](crate::Store::try_update_with) (or another `try_` method) did not
/// write: the store refused, or the closure did. Either way the record and its version
/// are untouched.
///
/// # Examples
///
/// ```
/// use verkv::{Store, UpdateWithError};
///
/// let store: Store<&str, i32> = Store::new();
/// let v1 = store.insert("stock", 1).unwrap();
/// let err = store
///     .try_update_with(&"stock", &v1, |n| if *n >= 2 { Ok(n - 2) } else { Err("out of stock") })
///     .unwrap_err();
/// assert_eq!(err, UpdateWithError::Closure("out of stock"));
/// assert_eq!(store.get(&"stock").unwrap().version, v1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateWithError<Ver, E> {
    /// The store refused before the closure ran (not found, stale).
    Store(Error<Ver>),
    /// The closure returned this error; nothing was written.
    Closure(E),
}

impl<Ver: fmt::Display, E: fmt::Display> fmt::Display for UpdateWithError<Ver, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateWithError::Store(error) => error.fmt(f),
            UpdateWithError::Closure(error) => write!(f, "update refused: {error}"),
        }
    }
}

impl<Ver, E> std::error::Error for UpdateWithError<Ver, E>
where
    Ver: fmt::Debug + fmt::Display + 'static,
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpdateWithError::Store(error) => Some(error),
            UpdateWithError::Closure(error) => Some(error),
        }
    }
}

impl<Ver, E> From<Error<Ver>> for UpdateWithError<Ver, E> {
    fn from(error: Error<Ver>) -> Self {
        UpdateWithError::Store(error)
    }
}

impl<Ver, E> From<Interrupted> for UpdateWithError<Ver, E> {
    fn from(interrupted: Interrupted) -> Self {
        UpdateWithError::Store(interrupted.into())
    }
}

impl<Ver, E> From<Infallible> for UpdateWithError<Ver, E> {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

/// A closure that cannot refuse leaves only the store's reasons.
impl<Ver> From<UpdateWithError<Ver, Infallible>> for Error<Ver> {
    fn from(error: UpdateWithError<Ver, Infallible>) -> Self {
        match error {
            UpdateWithError::Store(error) => error,
            UpdateWithError::Closure(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_carry_versions() {
        assert_eq!(Error::<u64>::NotFound.to_string(), "key not found");
        assert_eq!(
            Error::Stale {
                expected: 3,
                current: 5
            }
            .to_string(),
            "stale version: expected 3, current 5"
        );
        assert_eq!(
            Error::Exists { current: 9 }.to_string(),
            "key already exists at version 9"
        );
        let closure: UpdateWithError<u64, &str> = UpdateWithError::Closure("title is empty");
        assert_eq!(closure.to_string(), "update refused: title is empty");
    }

    #[test]
    fn rejected_debug_hides_the_value() {
        struct NotDebug;
        let r = Rejected {
            error: Error::<u64>::NotFound,
            value: NotDebug,
        };
        assert_eq!(format!("{r:?}"), "Rejected { error: NotFound, .. }");
    }

    #[test]
    fn current_version_is_exposed_where_known() {
        assert_eq!(Error::<u64>::NotFound.current(), None);
        assert_eq!(
            Error::Stale {
                expected: 1,
                current: 2
            }
            .current(),
            Some(&2)
        );
        assert_eq!(Error::Exists { current: 4 }.current(), Some(&4));
        assert_eq!(Error::<u64>::Cancelled.current(), None);
        assert_eq!(
            Error::<u64>::Unavailable(Cause::new("down")).current(),
            None
        );
    }

    #[test]
    fn backend_errors_carry_their_cause() {
        let lost: Error<u64> = Error::OutcomeUnknown(Cause::new("connection closed"));
        assert_eq!(
            lost.to_string(),
            "outcome unknown: the connection was lost after the write was sent (connection closed)"
        );
        let bad: Error<u64> =
            Error::BadRecord(Cause::new("cannot decode the stored value of key \"k\""));
        assert_eq!(
            bad.to_string(),
            "bad record: cannot decode the stored value of key \"k\""
        );
        assert_eq!(bad.current(), None);
        let misconfigured: Error<u64> =
            Error::Misconfigured(Cause::new("database \"nope\" does not exist"));
        assert_eq!(
            misconfigured.to_string(),
            "backend misconfigured: database \"nope\" does not exist"
        );
        assert_eq!(misconfigured.current(), None);
    }

    #[test]
    fn hot_error_types_stay_small() {
        // Errors travel on the hot path of every conditional write: keep them in registers
        // or one cache line. Grow them knowingly.
        assert_eq!(std::mem::size_of::<Error<u64>>(), 24);
        assert_eq!(std::mem::size_of::<Rejected<u64, u64>>(), 32);
        assert_eq!(std::mem::size_of::<Error<uuid::Uuid>>(), 40);
    }
}
