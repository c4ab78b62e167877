//! Keys and values as jsonb, through serde: encoded before anything is sent (so a value
//! that cannot be encoded is refused with no effect), decoded from the rows.

use ::postgres::types::Json;
use ::postgres::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use super::versions::PgVersion;
use crate::store::Cause;

/// A key or value encoded as JSON, ready to bind as a `jsonb` parameter.
pub(super) type Encoded = Json<Box<RawValue>>;

/// Encodes `value` (a `what`: "key" or "value") as JSON.
pub(super) fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Encoded, Cause> {
    serde_json::value::to_raw_value(value)
        .map(Json)
        .map_err(|error| Cause::new(format!("cannot encode the {what} as JSON: {error}")))
}

/// The value in column `index` of `row`.
pub(super) fn value<V: DeserializeOwned>(row: &Row, index: usize) -> Result<V, Cause> {
    row.try_get::<_, Json<V>>(index)
        .map(|Json(value)| value)
        .map_err(|error| Cause::new(format!("cannot decode a stored value: {error}")))
}

/// The value in column `index` of `row`, or `None` if it is SQL `NULL`.
pub(super) fn value_opt<V: DeserializeOwned>(row: &Row, index: usize) -> Result<Option<V>, Cause> {
    row.try_get::<_, Option<Json<V>>>(index)
        .map(|value| value.map(|Json(value)| value))
        .map_err(|error| Cause::new(format!("cannot decode a stored value: {error}")))
}

/// The version in column `index` of `row`, or `None` if it is SQL `NULL`.
pub(super) fn version_opt<S: PgVersion>(
    row: &Row,
    index: usize,
) -> Result<Option<S::Version>, Cause> {
    row.try_get::<_, Option<S::Column>>(index)
        .map(|column| column.map(S::from_column))
        .map_err(|error| Cause::new(format!("cannot decode a version: {error}")))
}

/// The version in column `index` of `row`.
pub(super) fn version<S: PgVersion>(row: &Row, index: usize) -> Result<S::Version, Cause> {
    version_opt::<S>(row, index)?.ok_or_else(|| Cause::new("a version is NULL"))
}
