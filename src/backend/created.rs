//! The provided `get_or_load` of both faces, on top of a backend's `get` and `insert`:
//! one loop, which the blocking face runs on futures that are ready at once.

use std::future::Future;

use crate::store::{Error, Rejected, Versioned};

/// The record `read` finds for `key`; on a miss, the value `load` makes, created with a
/// fresh version by `create` unless a writer created the key first (its record is read
/// and returned instead). Should that record be removed before it is read, the loaded
/// value is created again.
pub(crate) async fn read_or_create<K: Clone, V: Clone, Ver, R, C>(
    key: K,
    mut read: impl FnMut(K) -> R,
    mut create: impl FnMut(K, V) -> C,
    load: impl Future<Output = V>,
) -> Result<Versioned<V, Ver>, Error<Ver>>
where
    R: Future<Output = Result<Option<Versioned<V, Ver>>, Error<Ver>>>,
    C: Future<Output = Result<Ver, Rejected<V, Ver>>>,
{
    if let Some(found) = read(key.clone()).await? {
        return Ok(found);
    }
    let value = load.await;
    loop {
        match create(key.clone(), value.clone()).await {
            Ok(version) => return Ok(Versioned { value, version }),
            Err(Rejected {
                error: Error::Exists { .. },
                ..
            }) => {
                if let Some(found) = read(key.clone()).await? {
                    return Ok(found);
                }
                // Removed again in between: try to create it once more.
            }
            Err(refused) => return Err(refused.error),
        }
    }
}
