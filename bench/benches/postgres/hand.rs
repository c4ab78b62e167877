//! The baseline: each operation's bare statement written by hand with the `postgres` crate
//! (the seeds' `UPDATE ... WHERE key = $1 AND version = $2 RETURNING version` and its
//! siblings), prepared once per connection, on connections from an `r2d2` pool configured
//! as `PgStore`'s (same size, no test on checkout), on a plain table of the same columns
//! with no trigger. A transfer is the two conditional updates in `BEGIN` … `COMMIT`.
//!
//! The keys and values are `jsonb`, as the store keeps them, or `bytea` holding the same
//! JSON text ([`Columns`]): what the store's statements would cost if it kept its
//! records as bytes the server does not parse.

use postgres::types::{Json, ToSql};
use postgres::{Client, NoTls, Row, Statement};

use super::Subject;

/// The type of the key and value columns.
#[derive(Clone, Copy)]
pub(crate) enum Columns {
    /// `jsonb`, as the store's table.
    Json,
    /// `bytea`, holding the JSON text.
    Bytes,
}

impl Columns {
    fn sql(self) -> &'static str {
        match self {
            Columns::Json => "jsonb",
            Columns::Bytes => "bytea",
        }
    }

    /// Runs `with` on `key` encoded for the column.
    fn key<R>(self, key: &str, with: impl FnOnce(&(dyn ToSql + Sync)) -> R) -> R {
        match self {
            Columns::Json => with(&Json(key)),
            Columns::Bytes => with(&serde_json::to_vec(key).unwrap()),
        }
    }

    /// Runs `with` on `value` encoded for the column.
    fn value<R>(self, value: u64, with: impl FnOnce(&(dyn ToSql + Sync)) -> R) -> R {
        match self {
            Columns::Json => with(&Json(value)),
            Columns::Bytes => with(&serde_json::to_vec(&value).unwrap()),
        }
    }

    /// The value in column `at` of `row`, decoded.
    fn read(self, row: &Row, at: usize) -> u64 {
        match self {
            Columns::Json => row.get::<_, Json<u64>>(at).0,
            Columns::Bytes => serde_json::from_slice(row.get::<_, &[u8]>(at)).unwrap(),
        }
    }
}

/// Creates the plain table `table` (and its sequence) if missing.
pub(crate) fn create(url: &str, table: &str, columns: Columns) {
    let mut client = Client::connect(url, NoTls).unwrap();
    let of = columns.sql();
    client
        .batch_execute(&format!(
            "CREATE SEQUENCE IF NOT EXISTS {table}_version; \
             CREATE TABLE IF NOT EXISTS {table} \
             (key {of} PRIMARY KEY, value {of} NOT NULL, version bigint NOT NULL)"
        ))
        .unwrap();
}

pub(crate) struct Connection {
    client: Client,
    get: Statement,
    insert: Statement,
    update: Statement,
    remove: Statement,
}

struct Manager {
    config: postgres::Config,
    table: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        let t = &self.table;
        let draw = format!("nextval('{t}_version')");
        let mut client = self.config.connect(NoTls)?;
        Ok(Connection {
            get: client.prepare(&format!("SELECT value, version FROM {t} WHERE key = $1"))?,
            insert: client.prepare(&format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, {draw}) \
                 ON CONFLICT (key) DO NOTHING RETURNING version"
            ))?,
            update: client.prepare(&format!(
                "UPDATE {t} SET value = $3, version = {draw} \
                 WHERE key = $1 AND version = $2 RETURNING version"
            ))?,
            remove: client.prepare(&format!(
                "DELETE FROM {t} WHERE key = $1 AND version = $2 RETURNING value"
            ))?,
            client,
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.client.is_closed()
    }
}

pub(crate) struct Hand {
    pool: r2d2::Pool<Manager>,
    columns: Columns,
}

impl Hand {
    pub(crate) fn new(url: &str, table: &str, size: u32, columns: Columns) -> Hand {
        let manager = Manager {
            config: url.parse().unwrap(),
            table: table.to_string(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Hand { pool, columns }
    }
}

impl Subject for Hand {
    fn get(&self, key: &str) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = self
            .columns
            .key(key, |key| conn.client.query_opt(&conn.get, &[key]))
            .unwrap()?;
        self.columns.read(&row, 0);
        Some(row.get::<_, i64>(1) as u64)
    }

    fn insert(&self, key: &str, value: u64) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let columns = self.columns;
        let row = columns
            .key(key, |key| {
                columns.value(value, |value| {
                    conn.client.query_opt(&conn.insert, &[key, value])
                })
            })
            .unwrap()?;
        Some(row.get::<_, i64>(0) as u64)
    }

    fn cas(&self, key: &str, expected: u64, value: u64) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let columns = self.columns;
        let row = columns
            .key(key, |key| {
                columns.value(value, |value| {
                    let params: [&(dyn ToSql + Sync); 3] = [key, &(expected as i64), value];
                    conn.client.query_opt(&conn.update, &params)
                })
            })
            .unwrap()?;
        Some(row.get::<_, i64>(0) as u64)
    }

    fn remove(&self, key: &str, expected: u64) -> bool {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = self
            .columns
            .key(key, |key| {
                conn.client
                    .query_opt(&conn.remove, &[key, &(expected as i64)])
            })
            .unwrap();
        row.map(|row| self.columns.read(&row, 0)).is_some()
    }

    /// `BEGIN`, the two conditional updates, `COMMIT` (or `ROLLBACK` if one is refused):
    /// the transaction a user would write by hand.
    fn transfer(&self, from: (&str, u64), to: (&str, u64), value: u64) -> Option<(u64, u64)> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let mut sql = conn.client.transaction().unwrap();
        let columns = self.columns;
        let mut write = |(key, expected): (&str, u64)| {
            columns
                .key(key, |key| {
                    columns.value(value, |value| {
                        let params: [&(dyn ToSql + Sync); 3] = [key, &(expected as i64), value];
                        sql.query_opt(&conn.update, &params)
                    })
                })
                .unwrap()
                .map(|row| row.get::<_, i64>(0) as u64)
        };
        let written = write(from).zip(write(to));
        match written {
            Some(_) => sql.commit().unwrap(),
            None => sql.rollback().unwrap(),
        }
        written
    }
}
