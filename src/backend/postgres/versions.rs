//! How each version scheme is stored and drawn by the database.

use ::postgres::types::{FromSql, ToSql};

use crate::version::{Counter, UuidV4, VersionScheme};

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::version::Counter {}
    impl Sealed for crate::version::UuidV4 {}
}

/// A [`VersionScheme`] whose versions the database draws: [`Counter`] and [`UuidV4`].
///
/// | scheme | column | new version |
/// |---|---|---|
/// | [`Counter`] | `bigint` | `nextval` of the table's sequence: increasing, and never repeated for any key of the table, even after it is removed and created again |
/// | [`UuidV4`] | `uuid` | `gen_random_uuid()` |
///
/// Unlike the in-memory store's counter, a key's counter versions are not consecutive:
/// the sequence is shared by the table's keys.
pub trait PgVersion: VersionScheme + sealed::Sealed {
    /// The column's type, as PostgreSQL names it.
    const SQL_TYPE: &'static str;

    /// The column's Rust type, as the `postgres` crate reads and writes it.
    type Column: ToSql + for<'a> FromSql<'a> + Send + Sync;

    /// The SQL expression that draws a new version; `sequence` is the quoted name of the
    /// table's sequence.
    fn draw(sequence: &str) -> String;

    /// A version as its column value.
    fn to_column(version: &Self::Version) -> Self::Column;

    /// A column value as a version.
    fn from_column(column: Self::Column) -> Self::Version;
}

impl PgVersion for Counter {
    const SQL_TYPE: &'static str = "bigint";
    type Column = i64;

    fn draw(sequence: &str) -> String {
        format!("nextval('{sequence}')")
    }

    fn to_column(version: &u64) -> i64 {
        // Drawn versions are positive; a caller's version above `i64::MAX` (never drawn)
        // becomes a negative number, which no record has either.
        *version as i64
    }

    fn from_column(column: i64) -> u64 {
        column as u64
    }
}

impl PgVersion for UuidV4 {
    const SQL_TYPE: &'static str = "uuid";
    type Column = uuid::Uuid;

    fn draw(_sequence: &str) -> String {
        "gen_random_uuid()".to_string()
    }

    fn to_column(version: &uuid::Uuid) -> uuid::Uuid {
        *version
    }

    fn from_column(column: uuid::Uuid) -> uuid::Uuid {
        column
    }
}
