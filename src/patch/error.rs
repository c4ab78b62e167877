//! Why a patch did not take effect.

use std::fmt;

use crate::store::Error;

/// Why [`Store::patch`](crate::Store::patch) did not write: the store refused (not found,
/// stale), or the patch did (its own error, such as [`Invalid`](crate::Invalid)). Either
/// way the record and its version are untouched.
///
/// # Examples
///
/// ```
/// use verkv::{Error, PatchError, Store};
///
/// let store: Store<&str, u32> = Store::new();
/// let v1 = store.insert("stock", 3).unwrap();
/// let take_five = |n: &mut u32| -> Result<(), &'static str> {
///     *n = n.checked_sub(5).ok_or("not enough stock")?;
///     Ok(())
/// };
/// let err = store.patch(&"stock", &v1, take_five).unwrap_err();
/// assert_eq!(err, PatchError::Patch("not enough stock"));
/// assert_eq!(err.to_string(), "patch refused: not enough stock");
///
/// let err = store.patch(&"stock", &7, take_five).unwrap_err();
/// assert_eq!(err, PatchError::Store(Error::Stale { expected: 7, current: 1 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError<Ver, E> {
    /// The store refused before the patch was applied (not found, stale).
    Store(Error<Ver>),
    /// The patch refused: on its own, or against the would-be record.
    Patch(E),
}

impl<Ver: fmt::Display, E: fmt::Display> fmt::Display for PatchError<Ver, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::Store(error) => error.fmt(f),
            PatchError::Patch(error) => write!(f, "patch refused: {error}"),
        }
    }
}

impl<Ver, E> std::error::Error for PatchError<Ver, E>
where
    Ver: fmt::Debug + fmt::Display + 'static,
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PatchError::Store(error) => Some(error),
            PatchError::Patch(error) => Some(error),
        }
    }
}

impl<Ver, E> From<Error<Ver>> for PatchError<Ver, E> {
    fn from(error: Error<Ver>) -> Self {
        PatchError::Store(error)
    }
}
