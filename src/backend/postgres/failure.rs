//! What a failed run of a statement means for its caller, for both faces: the step a run
//! came to, the failures it may end in, and the error each one is to the caller.

use std::time::Instant;

use ::postgres::error::SqlState;

use crate::deadline::{Phase, TimedOut};
use crate::store::{Cause, Error};

/// What one run of a statement came to.
pub(super) enum Step<T> {
    /// The answer.
    Done(T),
    /// The statement's snapshot could not decide (a stale answer naming the expected
    /// version, or a conflict with a row committed after the snapshot): it had no
    /// effect; run it again.
    Again,
}

/// Why a run of a statement failed.
pub(super) enum Failure {
    /// The client or the server reported an error.
    Db(::postgres::Error),
    /// A row came back that could not be decoded (the cause names the key).
    Decode(Cause),
    /// The commit of a transaction of several statements failed: what its statements
    /// did may have committed if the connection died.
    Commit(::postgres::Error),
}

impl Failure {
    /// What it means for the caller of an operation that started at `started`, given
    /// whether it writes and whether a cancel request was sent for it.
    pub(super) fn meaning<Ver>(
        self,
        effect: Effect,
        started: Instant,
        cancelled: bool,
    ) -> Error<Ver> {
        match self {
            Failure::Db(error) => meaning(&error, effect, started, cancelled),
            Failure::Commit(error) if is_cut_off(&error) => Error::OutcomeUnknown(cause(&error)),
            Failure::Commit(error) => meaning(&error, Effect::Writes, started, cancelled),
            // The record is not of the store's types. A write's answer came back after
            // the statement ran: it may have taken effect.
            Failure::Decode(cause) => match effect {
                Effect::Reads => Error::BadRecord(cause),
                Effect::Writes => Error::OutcomeUnknown(cause),
            },
        }
    }
}

impl From<::postgres::Error> for Failure {
    fn from(error: ::postgres::Error) -> Self {
        Failure::Db(error)
    }
}

impl From<Cause> for Failure {
    fn from(cause: Cause) -> Self {
        Failure::Decode(cause)
    }
}

/// A client error as a cause, with the server's message if the server sent one.
pub(super) fn cause(error: &::postgres::Error) -> Cause {
    match error.as_db_error() {
        Some(db) => Cause::new(db),
        None => Cause::new(error),
    }
}

/// Whether the server's error `code` says that the store's settings do not fit the server,
/// an answer that will not change by itself: the role cannot be authenticated or may not
/// connect (SQLSTATE class 28), the database does not exist (3D000), or a statement is
/// refused for its names, types or privileges (class 42: the store's own statements
/// only meet these when the table is missing, has other columns, or may not be used).
pub(super) fn is_misconfiguration(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("28")
        || code.starts_with("42")
        || code == SqlState::INVALID_CATALOG_NAME.code()
}

/// What a failure while getting a statement ready (setting the session's timeouts,
/// preparing the statements, listening) means: nothing was run, so the operation had no
/// effect.
pub(super) fn setup_failure<Ver>(error: &::postgres::Error) -> Error<Ver> {
    match error.code() {
        Some(code) if is_misconfiguration(code) => Error::Misconfigured(cause(error)),
        _ => Error::Unavailable(cause(error)),
    }
}

/// Whether an operation writes: a write whose connection dies after it was sent has an
/// unknown outcome; a read has no effect either way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Reads,
    Writes,
}

/// Whether a `COMMIT` failed because the session was cut off (the connection died, or
/// the server ended the session: SQLSTATE class 08 or 57P, such as an administrator's
/// `pg_terminate_backend` or a shutdown) rather than because the server refused the
/// transaction: the commit may have happened before the session ended.
fn is_cut_off(error: &::postgres::Error) -> bool {
    error.code().is_none_or(|code| {
        let code = code.code();
        code.starts_with("08") || code.starts_with("57P")
    })
}

/// What a failed statement means for the caller of an operation that started at
/// `started`, given whether it writes and whether its cancel token fired.
pub(super) fn meaning<Ver>(
    error: &::postgres::Error,
    effect: Effect,
    started: Instant,
    cancelled: bool,
) -> Error<Ver> {
    match error.code() {
        // The wait for a row lock outlasted `lock_timeout`: queued behind another writer.
        Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            Error::TimedOut(TimedOut::new(Phase::Queued, started.elapsed()))
        }
        Some(&SqlState::QUERY_CANCELED) if cancelled => Error::Cancelled,
        Some(&SqlState::QUERY_CANCELED) => {
            Error::TimedOut(TimedOut::new(Phase::Running, started.elapsed()))
        }
        // The server answered with an error: the statement was rolled back.
        Some(code) if is_misconfiguration(code) => Error::Misconfigured(cause(error)),
        Some(_) => Error::Unavailable(cause(error)),
        // No answer: the connection died. A write may have committed before it did.
        None if effect == Effect::Writes => Error::OutcomeUnknown(cause(error)),
        None => Error::Unavailable(cause(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_will_not_change_by_themselves_are_misconfigurations() {
        for code in [
            SqlState::INVALID_CATALOG_NAME,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INVALID_PASSWORD,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::UNDEFINED_TABLE,
            SqlState::DATATYPE_MISMATCH,
        ] {
            assert!(is_misconfiguration(&code), "{}", code.code());
        }
        for code in [
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::QUERY_CANCELED,
        ] {
            assert!(!is_misconfiguration(&code), "{}", code.code());
        }
    }
}
