//! What each operation's statement answered, read from the row it returned: shared by
//! the blocking [`PgStore`](super::PgStore) and the async store, which differ only in how
//! they run the statement.

use serde::de::DeserializeOwned;

use super::codec::{self, Encoded};
use super::failure::{Failure, Step};
use super::PgVersion;
use crate::store::{Cause, Error, ReadMany, Versioned};

/// Whether a conditional write whose snapshot reports the expected version as current is
/// run again (a test build can switch this off to see the linearizability check fail).
const RERUN: bool = !cfg!(verkv_mutant = "no_rerun");

/// A refusal or an answer, from one statement.
pub(super) type Answer<T, Ver> = Result<Step<Result<T, Error<Ver>>>, Failure>;

/// The answer of a conditional write's statement about `key`, from its one row (if any):
/// written with this version, or refused at this current version.
fn written<S: PgVersion>(
    row: &::postgres::Row,
    key: &Encoded,
) -> Result<Result<S::Version, S::Version>, Cause> {
    let version = codec::version::<S>(row, 1, key)?;
    let written: bool = row
        .try_get(0)
        .map_err(|error| Cause::new(format!("cannot decode a row: {error}")))?;
    Ok(if written { Ok(version) } else { Err(version) })
}

/// A record read, if there is one.
type Read<V, Ver> = Option<Versioned<V, Ver>>;

/// A read of `key`: its record, if there is one.
pub(super) fn get<V: DeserializeOwned, S: PgVersion>(
    row: Option<::postgres::Row>,
    key: &Encoded,
) -> Result<Step<Read<V, S::Version>>, Failure> {
    let Some(row) = row else {
        return Ok(Step::Done(None));
    };
    Ok(Step::Done(Some(Versioned {
        value: codec::value(&row, 0, key)?,
        version: codec::version::<S>(&row, 1, key)?,
    })))
}

/// A read of several `keys` (encoded, in the order asked): a row for each present key,
/// numbered from 1 in that order, with its value and version.
pub(super) fn get_many<V: DeserializeOwned, S: PgVersion>(
    rows: Vec<::postgres::Row>,
    keys: &[Encoded],
) -> Result<Step<ReadMany<V, S::Version>>, Failure> {
    let mut read: ReadMany<V, S::Version> = keys.iter().map(|_| None).collect();
    for row in rows {
        let index: i64 = row
            .try_get(0)
            .map_err(|error| Cause::new(format!("cannot decode a row: {error}")))?;
        let at = usize::try_from(index - 1)
            .ok()
            .filter(|at| *at < keys.len())
            .ok_or_else(|| Cause::new(format!("a row for key number {index} of {}", keys.len())))?;
        read[at] = Some(Versioned {
            value: codec::value(&row, 1, &keys[at])?,
            version: codec::version::<S>(&row, 2, &keys[at])?,
        });
    }
    Ok(Step::Done(read))
}

/// A create-only insert of `key`: no row when it conflicted with a row its snapshot does
/// not show (run again).
pub(super) fn insert<S: PgVersion>(
    row: Option<::postgres::Row>,
    key: &Encoded,
) -> Answer<S::Version, S::Version> {
    let Some(row) = row else {
        return Ok(Step::Again);
    };
    Ok(Step::Done(
        written::<S>(&row, key)?.map_err(|current| Error::Exists { current }),
    ))
}

/// An update of `key` at `expected`.
pub(super) fn update<S: PgVersion>(
    row: Option<::postgres::Row>,
    key: &Encoded,
    expected: &S::Version,
) -> Answer<S::Version, S::Version> {
    let Some(row) = row else {
        return Ok(Step::Done(Err(Error::NotFound)));
    };
    Ok(match written::<S>(&row, key)? {
        Ok(version) => Step::Done(Ok(version)),
        Err(current) if current == *expected && RERUN => Step::Again,
        Err(current) => Step::Done(Err(Error::Stale {
            expected: expected.clone(),
            current,
        })),
    })
}

/// A removal of `key` at `expected`: the value removed.
pub(super) fn remove<V: DeserializeOwned, S: PgVersion>(
    row: Option<::postgres::Row>,
    key: &Encoded,
    expected: &S::Version,
) -> Answer<V, S::Version> {
    let Some(row) = row else {
        return Ok(Step::Done(Err(Error::NotFound)));
    };
    if let Some(removed) = codec::value_opt(&row, 0, key)? {
        return Ok(Step::Done(Ok(removed)));
    }
    Ok(match codec::version::<S>(&row, 1, key)? {
        current if current == *expected && RERUN => Step::Again,
        current => Step::Done(Err(Error::Stale {
            expected: expected.clone(),
            current,
        })),
    })
}

/// An unconditional write of `key`: the version written (its statement always answers
/// a row).
pub(super) fn put<S: PgVersion>(
    row: Option<::postgres::Row>,
    key: &Encoded,
) -> Answer<S::Version, S::Version> {
    let Some(row) = row else {
        return Err(Cause::new("a write answered no row").into());
    };
    Ok(Step::Done(Ok(codec::version::<S>(&row, 0, key)?)))
}

/// The value `try_update_with` computes from: the one read, if it is at `expected`.
pub(super) fn at_expected<V, Ver: Clone + PartialEq>(
    read: Option<Versioned<V, Ver>>,
    expected: &Ver,
) -> Result<V, Error<Ver>> {
    match read {
        None => Err(Error::NotFound),
        Some(read) if read.version != *expected => Err(Error::Stale {
            expected: expected.clone(),
            current: read.version,
        }),
        Some(read) => Ok(read.value),
    }
}

/// One error type for a statement's failure and its refusal.
pub(super) fn flatten<T, E>(answer: Result<Result<T, E>, E>) -> Result<T, E> {
    answer.and_then(|inner| inner)
}
