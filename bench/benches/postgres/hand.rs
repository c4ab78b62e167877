//! The baseline: each operation's bare statement written by hand with the `postgres` crate
//! (the seeds' `UPDATE ... WHERE key = $1 AND version = $2 RETURNING version` and its
//! siblings), prepared once per connection, on connections from an `r2d2` pool configured
//! as `PgStore`'s (same size, no test on checkout), on a plain table of the same columns
//! with no trigger. A transfer is the two conditional updates in `BEGIN` … `COMMIT`.

use postgres::types::Json;
use postgres::{Client, NoTls, Statement};

use super::Subject;

/// Creates the plain table `table` (and its sequence) if missing.
pub(crate) fn create(url: &str, table: &str) {
    let mut client = Client::connect(url, NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE SEQUENCE IF NOT EXISTS {table}_version; \
             CREATE TABLE IF NOT EXISTS {table} \
             (key jsonb PRIMARY KEY, value jsonb NOT NULL, version bigint NOT NULL)"
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
}

impl Hand {
    pub(crate) fn new(url: &str, table: &str, size: u32) -> Hand {
        let manager = Manager {
            config: url.parse().unwrap(),
            table: table.to_string(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Hand { pool }
    }
}

impl Subject for Hand {
    fn get(&self, key: &str) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = conn.client.query_opt(&conn.get, &[&Json(key)]).unwrap()?;
        let (Json(_value), version): (Json<u64>, i64) = (row.get(0), row.get(1));
        Some(version as u64)
    }

    fn insert(&self, key: &str, value: u64) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = conn
            .client
            .query_opt(&conn.insert, &[&Json(key), &Json(value)])
            .unwrap()?;
        Some(row.get::<_, i64>(0) as u64)
    }

    fn cas(&self, key: &str, expected: u64, value: u64) -> Option<u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = conn
            .client
            .query_opt(
                &conn.update,
                &[&Json(key), &(expected as i64), &Json(value)],
            )
            .unwrap()?;
        Some(row.get::<_, i64>(0) as u64)
    }

    fn remove(&self, key: &str, expected: u64) -> bool {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let row = conn
            .client
            .query_opt(&conn.remove, &[&Json(key), &(expected as i64)])
            .unwrap();
        row.map(|row| row.get::<_, Json<u64>>(0)).is_some()
    }

    /// `BEGIN`, the two conditional updates, `COMMIT` (or `ROLLBACK` if one is refused):
    /// the transaction a user would write by hand.
    fn transfer(&self, from: (&str, u64), to: (&str, u64), value: u64) -> Option<(u64, u64)> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        let mut sql = conn.client.transaction().unwrap();
        let mut write = |(key, expected): (&str, u64)| {
            sql.query_opt(
                &conn.update,
                &[&Json(key), &(expected as i64), &Json(value)],
            )
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
