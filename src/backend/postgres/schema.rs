//! The table, its sequence and change trigger, the registry of the sessions that listen
//! (see `listeners.rs`), and the statements of every operation.

use super::versions::PgVersion;
use crate::store::Cause;

/// Whether registering a listener turns the change trigger on (a test build can leave it
/// off, so that writes skip their notification while somebody listens, to see the
/// near-cache and waiter tests fail).
const ENABLES: bool = !cfg!(verkv_mutant = "unheard_writes");

/// How a transaction reads the rows it compares: locked until it ends (a test build
/// reads them unlocked, so that a concurrent transaction can slip in between its read and
/// its write, to see the transaction tests fail).
const TXN_LOCKING: &str = if cfg!(verkv_mutant = "pg_txn_unlocked") {
    ""
} else {
    " FOR UPDATE"
};

/// Keys longer than this (as JSON text) are left out of change notifications (`null`),
/// whose payload PostgreSQL limits to 8000 bytes.
const NOTIFIED_KEY_BYTES: usize = 7000;

/// How long a change of the registry waits for the table's lock (which turning the
/// trigger on or off takes, behind the writes in flight) before it gives up, in
/// milliseconds; the caller tries again after a pause. Short, because writes that come
/// later queue behind the wait.
const REGISTRY_LOCK_MS: u64 = 100;

/// The SQL for one table.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    /// Creates what is missing: sequence, table, trigger function, trigger (off), the
    /// listeners' registry and the function that keeps it.
    pub(super) create: String,
    /// Registers this session as listening (in a transaction of its own).
    pub(super) register: String,
    /// Withdraws this session's registration (in a transaction of its own).
    pub(super) unregister: String,
    /// Withdraws the registrations of sessions that are gone (in a transaction of its own).
    pub(super) tidy: String,
    /// → `name, type` of each of the table's columns named as the store's are.
    pub(super) columns: String,
    /// The channel change notifications are sent on (unquoted).
    pub(super) channel: String,
    /// `$1` key → `value, version`.
    pub(super) get: String,
    /// `$1` key, `$2` value → `written, version`; no row: re-run.
    pub(super) insert: String,
    /// `$1` key, `$2` value → `version`.
    pub(super) put: String,
    /// `$1` key, `$2` expected, `$3` value → `written, version`; no row: not found.
    pub(super) update: String,
    /// `$1` key, `$2` expected → `value` (removed) or `NULL, version`; no row: not found.
    pub(super) remove: String,
    /// `$1` keys → `index (from 1), value, version` of each key that has a record, all
    /// read in one snapshot.
    pub(super) get_many: String,
    /// `$1` key → `version`, the row locked until the transaction ends; no row: absent
    /// (see `transaction.rs`).
    pub(super) txn_lock: String,
    /// `$1` key, `$2` value → `version` of the row inserted (held, invisible to others,
    /// until the transaction ends); no row: somebody created the key first.
    pub(super) txn_claim: String,
    /// `$1` key, `$2` expected, `$3` value → `version` if the row was at `$2` (now
    /// locked and written); no row otherwise.
    pub(super) txn_update: String,
    /// `$1` key, `$2` value → `version`: rewrites a row the transaction holds.
    pub(super) txn_set: String,
    /// `$1` key: deletes a row the transaction holds.
    pub(super) txn_delete: String,
    /// `$1` key → `the key as notified (its jsonb text), value, version` (one row, `NULL`s
    /// if absent).
    pub(super) watch_read: String,
}

/// Whether `table` is a plain lower-case SQL name (which leaves room for the suffixes of
/// the names made from it within PostgreSQL's 63 bytes).
fn is_plain_name(table: &str) -> bool {
    let mut bytes = table.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && table.len() <= 48
}

impl Sql {
    /// The SQL for `table` with versions of scheme `S`.
    ///
    /// # Errors
    ///
    /// If `table` is not a plain name: lower-case ASCII letters, digits and `_`, not
    /// starting with a digit, at most 48 bytes.
    pub(super) fn new<S: PgVersion>(table: &str) -> Result<Sql, Cause> {
        if !is_plain_name(table) {
            return Err(Cause::new(format!(
                "table name {table:?} is not lower-case letters, digits and '_' (at most 48)"
            )));
        }
        let t = format!("\"{table}\"");
        let sequence = format!("\"{table}_version\"");
        let function = format!("\"{table}_notify\"");
        let listeners = format!("\"{table}_listeners\"");
        let keep = format!("\"{table}_listening\"");
        let channel = format!("{table}_changes");
        let ty = S::SQL_TYPE;
        let draw = S::draw(&sequence);
        let enable = if ENABLES {
            format!("ALTER TABLE {t} ENABLE TRIGGER {function};")
        } else {
            "NULL;".to_string()
        };
        // Read committed: each statement sees what committed before it, so what is read
        // under the advisory locks is current (a transaction snapshot taken before the
        // lock was granted could miss a registration). The registry function runs as its
        // owner: it names the table's schema and puts `pg_temp` last, so that no caller's
        // temporary table can stand in for the registry or the table.
        let create = format!(
            r#"BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_advisory_xact_lock(hashtext('verkv:{table}'));
CREATE SEQUENCE IF NOT EXISTS {sequence};
CREATE TABLE IF NOT EXISTS {t} (key jsonb PRIMARY KEY, value jsonb NOT NULL, version {ty} NOT NULL);
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $verkv$
DECLARE
  k text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    k := OLD.key::text;
  ELSE
    k := NEW.key::text;
  END IF;
  IF octet_length(k) > {NOTIFIED_KEY_BYTES} THEN
    k := 'null';
  END IF;
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('{channel}', '{{"key":' || k || ',"version":null}}');
  ELSE
    PERFORM pg_notify('{channel}', '{{"key":' || k || ',"version":"' || NEW.version::text || '"}}');
  END IF;
  RETURN NULL;
END
$verkv$;
DO $verkv$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = '{t}'::regclass AND tgname = '{table}_notify') THEN
    CREATE TRIGGER {function} AFTER INSERT OR UPDATE OR DELETE ON {t}
      FOR EACH ROW EXECUTE FUNCTION {function}();
    ALTER TABLE {t} DISABLE TRIGGER {function};
  END IF;
END
$verkv$;
CREATE TABLE IF NOT EXISTS {listeners} (pid integer PRIMARY KEY);
CREATE OR REPLACE FUNCTION {keep}(listening boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $verkv$
DECLARE
  registered bigint;
  enabled boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('verkv:{table}:listeners'));
  DELETE FROM {listeners} WHERE pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL);
  IF listening THEN
    INSERT INTO {listeners} VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;
  ELSIF NOT listening THEN
    DELETE FROM {listeners} WHERE pid = pg_backend_pid();
  END IF;
  SELECT count(*) INTO registered FROM {listeners};
  SELECT tgenabled <> 'D' INTO enabled FROM pg_trigger
    WHERE tgrelid = '{t}'::regclass AND tgname = '{table}_notify';
  IF registered > 0 AND NOT enabled THEN
    {enable}
  ELSIF registered = 0 AND enabled THEN
    ALTER TABLE {t} DISABLE TRIGGER {function};
  END IF;
  RETURN registered;
END
$verkv$;
DO $verkv$
BEGIN
  EXECUTE format('ALTER FUNCTION {keep}(boolean) SET search_path = %I, pg_temp', current_schema());
END
$verkv$;
COMMIT;"#
        );
        let registry = |listening: &str| {
            format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {REGISTRY_LOCK_MS}; \
                 SELECT {keep}({listening}); COMMIT"
            )
        };
        Ok(Sql {
            create,
            register: registry("true"),
            unregister: registry("false"),
            tidy: registry("NULL"),
            columns: format!(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass('{t}') AND attnum > 0 AND NOT attisdropped \
                 AND attname IN ('key', 'value', 'version')"
            ),
            get: format!("SELECT value, version FROM {t} WHERE key = $1"),
            insert: format!(
                "WITH ins AS (INSERT INTO {t} (key, value, version) VALUES ($1, $2, {draw}) \
                 ON CONFLICT (key) DO NOTHING RETURNING version) \
                 SELECT true, version FROM ins \
                 UNION ALL SELECT false, version FROM {t} \
                 WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM ins)"
            ),
            put: format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, {draw}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version \
                 RETURNING version"
            ),
            update: format!(
                "WITH upd AS (UPDATE {t} SET value = $3, version = {draw} \
                 WHERE key = $1 AND version = $2 RETURNING version) \
                 SELECT true, version FROM upd \
                 UNION ALL SELECT false, version FROM {t} \
                 WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM upd)"
            ),
            remove: format!(
                "WITH del AS (DELETE FROM {t} WHERE key = $1 AND version = $2 RETURNING value) \
                 SELECT value, NULL::{ty} FROM del \
                 UNION ALL SELECT NULL::jsonb, version FROM {t} \
                 WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM del)"
            ),
            get_many: format!(
                "SELECT k.i, r.value, r.version \
                 FROM unnest($1::jsonb[]) WITH ORDINALITY AS k(key, i) JOIN {t} AS r ON r.key = k.key"
            ),
            txn_lock: format!("SELECT version FROM {t} WHERE key = $1{TXN_LOCKING}"),
            txn_claim: format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, {draw}) \
                 ON CONFLICT (key) DO NOTHING RETURNING version"
            ),
            txn_update: format!(
                "UPDATE {t} SET value = $3, version = {draw} \
                 WHERE key = $1 AND version = $2 RETURNING version"
            ),
            txn_set: format!(
                "UPDATE {t} SET value = $2, version = {draw} WHERE key = $1 RETURNING version"
            ),
            txn_delete: format!("DELETE FROM {t} WHERE key = $1"),
            watch_read: format!(
                "SELECT $1::jsonb::text, r.value, r.version \
                 FROM (SELECT 1) AS one LEFT JOIN {t} AS r ON r.key = $1"
            ),
            channel,
        })
    }
}

/// The names and types of the columns in the answer to [`Sql::columns`].
pub(super) fn columns(
    rows: &[::postgres::Row],
) -> Result<Vec<(String, String)>, ::postgres::Error> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Checks that `table`, whose columns named as the store's are `found` (name and type,
/// as PostgreSQL names them), has the columns of a store with versions of scheme `S`: a
/// table made for other types (such as other versions) is refused here rather than failing
/// every operation.
///
/// # Errors
///
/// Naming the table, the first column that is missing or of another type, the type found
/// and the type expected.
pub(super) fn check_columns<S: PgVersion>(
    table: &str,
    found: &[(String, String)],
) -> Result<(), Cause> {
    let expected = [
        ("key", "jsonb"),
        ("value", "jsonb"),
        ("version", S::SQL_TYPE),
    ];
    for (column, wanted) in expected {
        let problem = match found.iter().find(|(name, _)| name == column) {
            None => format!("it has no column \"{column}\" (expected one of type {wanted})"),
            Some((_, ty)) if ty == wanted => continue,
            Some((_, ty)) => format!("column \"{column}\" is of type {ty}, expected {wanted}"),
        };
        return Err(Cause::new(format!(
            "table \"{table}\" does not match the store: {problem}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, UuidV4};

    fn columns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, ty)| (name.to_string(), ty.to_string()))
            .collect()
    }

    #[test]
    fn a_table_of_the_stores_types_passes() {
        let counter = columns(&[("key", "jsonb"), ("value", "jsonb"), ("version", "bigint")]);
        assert_eq!(check_columns::<Counter>("t", &counter), Ok(()));
        let uuid = columns(&[("version", "uuid"), ("value", "jsonb"), ("key", "jsonb")]);
        assert_eq!(check_columns::<UuidV4>("t", &uuid), Ok(()));
    }

    #[test]
    fn a_table_of_other_types_is_refused_naming_the_column() {
        let counter = columns(&[("key", "jsonb"), ("value", "jsonb"), ("version", "bigint")]);
        assert_eq!(
            check_columns::<UuidV4>("likes", &counter)
                .unwrap_err()
                .message(),
            "table \"likes\" does not match the store: \
             column \"version\" is of type bigint, expected uuid"
        );
        let text = columns(&[("key", "jsonb"), ("value", "text"), ("version", "bigint")]);
        assert_eq!(
            check_columns::<Counter>("likes", &text)
                .unwrap_err()
                .message(),
            "table \"likes\" does not match the store: \
             column \"value\" is of type text, expected jsonb"
        );
        let keyless = columns(&[("value", "jsonb"), ("version", "bigint")]);
        assert_eq!(
            check_columns::<Counter>("likes", &keyless)
                .unwrap_err()
                .message(),
            "table \"likes\" does not match the store: \
             it has no column \"key\" (expected one of type jsonb)"
        );
    }

    #[test]
    fn table_names_are_plain() {
        for good in ["verkv", "_t", "movies_2"] {
            assert!(Sql::new::<Counter>(good).is_ok(), "{good}");
        }
        for bad in ["", "2t", "Movies", "a-b", "a\"b", "a b", &"x".repeat(49)] {
            assert!(Sql::new::<Counter>(bad).is_err(), "{bad:?}");
        }
    }
}
