//! The baseline: the compare-and-swap statement written by hand with the `postgres`
//! crate, prepared once per connection, on connections from an `r2d2` pool configured as
//! `PgStore`'s (same size, no test on checkout).

use postgres::types::Json;
use postgres::{Client, NoTls, Statement};

use super::Cas;

pub(crate) struct Connection {
    client: Client,
    cas: Statement,
}

struct Manager {
    config: postgres::Config,
    sql: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        let cas = client.prepare(&self.sql)?;
        Ok(Connection { client, cas })
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
        let sql = format!(
            "WITH upd AS (UPDATE {table} SET value = $3, version = nextval('{table}_version') \
             WHERE key = $1 AND version = $2 RETURNING version) \
             SELECT true, version FROM upd \
             UNION ALL SELECT false, version FROM {table} \
             WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM upd)"
        );
        let manager = Manager {
            config: url.parse().unwrap(),
            sql,
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build_unchecked(manager);
        Hand { pool }
    }
}

impl Cas for Hand {
    fn cas(&self, key: &str, expected: u64, value: u64) -> Result<u64, u64> {
        let mut conn = self.pool.get().unwrap();
        let conn = &mut *conn;
        loop {
            let row = conn
                .client
                .query_opt(&conn.cas, &[&Json(key), &(expected as i64), &Json(value)])
                .unwrap()
                .expect("seeded keys are never removed");
            let (written, version): (bool, i64) = (row.get(0), row.get(1));
            match (written, version as u64) {
                (true, version) => return Ok(version),
                // The snapshot could not decide: run it again, as the store does.
                (false, current) if current == expected => continue,
                (false, current) => return Err(current),
            }
        }
    }
}
