//! Partial updates: a [`Patch`] applied to a record under the version check.

mod apply;
mod error;
mod field;
mod invalid;
#[cfg(feature = "json")]
pub mod json;

pub use error::PatchError;
pub use field::{Field, NullNotAllowed};
pub use invalid::{FieldProblem, Invalid};

/// A change to part of a record, applied by [`Store::patch`](crate::Store::patch).
///
/// A patch works on a *draft*: a copy of the current record. It changes the parts it
/// carries, checks the would-be record, and refuses with [`Error`](Patch::Error) if it is
/// not acceptable; the store then keeps the record as it was. Checks that need only the
/// patch go into [`precheck`](Patch::precheck), which runs before the store takes any
/// lock.
///
/// Closures `FnOnce(&mut V) -> Result<(), E>` are patches too.
///
/// # Examples
///
/// A typed patch for a record with a required and an optional field:
///
/// ```
/// use verkv::{Field, Invalid, Patch, Store};
///
/// #[derive(Clone, PartialEq)]
/// struct Movie {
///     title: String,
///     runtime: Option<u32>,
/// }
///
/// struct MoviePatch {
///     title: Field<String>,
///     runtime: Field<u32>,
/// }
///
/// impl Patch<Movie> for MoviePatch {
///     type Error = Invalid;
///
///     fn precheck(&self) -> Result<(), Invalid> {
///         let mut invalid = Invalid::new();
///         if self.title.as_value().is_some_and(|title| title.is_empty()) {
///             invalid.push("title", "must not be empty");
///         }
///         if self.runtime.as_value() == Some(&0) {
///             invalid.push("runtime", "must be at least 1 minute");
///         }
///         invalid.into_result()
///     }
///
///     fn apply(self, movie: &mut Movie) -> Result<(), Invalid> {
///         let mut invalid = Invalid::new();
///         invalid.check("title", self.title.apply_to(&mut movie.title));
///         self.runtime.apply_to_option(&mut movie.runtime);
///         invalid.into_result()
///     }
/// }
///
/// let store: Store<u32, Movie> = Store::new();
/// let v1 = store.insert(1, Movie { title: "Alien".into(), runtime: None }).unwrap();
///
/// let only_runtime = MoviePatch { title: Field::Absent, runtime: Field::Value(117) };
/// let v2 = store.patch(&1, &v1, only_runtime).unwrap();
/// let movie = store.get(&1).unwrap().value;
/// assert_eq!((movie.title.as_str(), movie.runtime), ("Alien", Some(117)));
///
/// let empty_title = MoviePatch { title: Field::Value(String::new()), runtime: Field::Null };
/// let err = store.patch(&1, &v2, empty_title).unwrap_err();
/// assert_eq!(err.to_string(), "patch refused: invalid title: must not be empty");
/// assert_eq!(store.version(&1), Some(v2)); // nothing changed, not even the version
/// ```
pub trait Patch<V> {
    /// Why the patch refuses.
    type Error;

    /// Checks the patch on its own, before the store takes any lock or looks at the
    /// record. By default it accepts everything.
    ///
    /// # Errors
    ///
    /// The patch's error if it cannot apply to any record.
    fn precheck(&self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Applies the patch to `draft`, a copy of the current record, and checks the result.
    ///
    /// Runs under the key's shard lock: keep it short, and do not call back into the
    /// store.
    ///
    /// # Errors
    ///
    /// The patch's error if the would-be record is not acceptable. `draft` may be left
    /// half-changed: the store discards it.
    fn apply(self, draft: &mut V) -> Result<(), Self::Error>;
}

impl<V, E, F> Patch<V> for F
where
    F: FnOnce(&mut V) -> Result<(), E>,
{
    type Error = E;

    fn apply(self, draft: &mut V) -> Result<(), E> {
        self(draft)
    }
}
