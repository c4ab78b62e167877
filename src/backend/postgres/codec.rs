//! Keys and values as jsonb, through serde: encoded before anything is sent (so a value
//! that cannot be encoded is refused with no effect), decoded from the rows. A failure
//! either way is the record's: [`Error::BadRecord`](crate::Error::BadRecord), or
//! [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) for a write's answer (the
//! write ran before it came back). Its message names the key.

use std::error::Error as _;

use ::postgres::types::Json;
use ::postgres::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use super::versions::PgVersion;
use crate::store::{Cause, Error};

/// The most of a key's JSON a message shows.
const SHOWN_KEY_BYTES: usize = 100;

/// A key or value encoded as JSON, ready to bind as a `jsonb` parameter.
pub(super) type Encoded = Json<Box<RawValue>>;

/// Encodes `value` (a `what`: "key" or "value") as JSON.
pub(super) fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Encoded, Cause> {
    serde_json::value::to_raw_value(value)
        .map(Json)
        .map_err(|error| Cause::new(format!("cannot encode the {what} as JSON: {error}")))
}

/// Every key of `keys`, encoded; a key that does not encode is a bad record.
pub(super) fn encode_keys<K: Serialize, Ver>(keys: &[K]) -> Result<Vec<Encoded>, Error<Ver>> {
    keys.iter()
        .map(|key| encode("key", key).map_err(Error::BadRecord))
        .collect()
}

/// An encoded key as a message shows it: its JSON, cut short if long.
fn shown(key: &Encoded) -> String {
    let json = key.0.get();
    if json.len() <= SHOWN_KEY_BYTES {
        return json.to_string();
    }
    let mut end = SHOWN_KEY_BYTES;
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &json[..end])
}

/// Why a column of the record of `key` could not be decoded: `what` ("value",
/// "version") and the decoder's reason (without the client's "error deserializing
/// column" preamble, which says nothing to the caller).
fn undecodable(what: &str, key: &Encoded, error: &::postgres::Error) -> Cause {
    let reason = error
        .source()
        .map_or_else(|| error.to_string(), ToString::to_string);
    Cause::new(format!(
        "cannot decode the stored {what} of key {}: {reason}",
        shown(key)
    ))
}

/// The value of the record of `key`, in column `index` of `row`.
pub(super) fn value<V: DeserializeOwned>(
    row: &Row,
    index: usize,
    key: &Encoded,
) -> Result<V, Cause> {
    row.try_get::<_, Json<V>>(index)
        .map(|Json(value)| value)
        .map_err(|error| undecodable("value", key, &error))
}

/// The value of the record of `key`, in column `index` of `row`, or `None` if it is SQL
/// `NULL`.
pub(super) fn value_opt<V: DeserializeOwned>(
    row: &Row,
    index: usize,
    key: &Encoded,
) -> Result<Option<V>, Cause> {
    row.try_get::<_, Option<Json<V>>>(index)
        .map(|value| value.map(|Json(value)| value))
        .map_err(|error| undecodable("value", key, &error))
}

/// The version of the record of `key`, in column `index` of `row`, or `None` if it is
/// SQL `NULL`.
pub(super) fn version_opt<S: PgVersion>(
    row: &Row,
    index: usize,
    key: &Encoded,
) -> Result<Option<S::Version>, Cause> {
    row.try_get::<_, Option<S::Column>>(index)
        .map(|column| column.map(S::from_column))
        .map_err(|error| undecodable("version", key, &error))
}

/// The version of the record of `key`, in column `index` of `row`.
pub(super) fn version<S: PgVersion>(
    row: &Row,
    index: usize,
    key: &Encoded,
) -> Result<S::Version, Cause> {
    version_opt::<S>(row, index, key)?
        .ok_or_else(|| Cause::new(format!("the stored version of key {} is NULL", shown(key))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_key_is_cut_short_in_messages() {
        let short = encode("key", "heat").unwrap();
        assert_eq!(shown(&short), "\"heat\"");
        let long = encode("key", &"é".repeat(100)).unwrap();
        let cut = shown(&long);
        assert!(cut.len() <= SHOWN_KEY_BYTES + 3, "{cut}");
        assert!(cut.starts_with("\"éé") && cut.ends_with("..."), "{cut}");
    }
}
