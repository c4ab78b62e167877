//! Partial updates: a [`Patch`] applied to a record under the version check.

mod error;
mod invalid;

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

pub use error::PatchError;
pub use invalid::{FieldProblem, Invalid};

use crate::bounded::Bounded;
use crate::deadline::{Forever, Wait};
use crate::error::UpdateWithError;
use crate::store::Store;
use crate::version::VersionScheme;

/// A change to part of a record, applied by [`Store::patch`].
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

/// Why the closure given to `update_with` declined to write.
enum Declined<E> {
    /// The patch refused.
    Refused(E),
    /// The patch left the record as it was: keep it, and its version.
    Unchanged,
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Applies `patch` to the record of `key` if the record is still at version
    /// `expected`; returns the record's version afterwards.
    ///
    /// In order: [`Patch::precheck`] runs without any lock; then, under the key's shard
    /// lock, the version is checked, `patch` is [applied](Patch::apply) to a copy of the
    /// record, and the copy replaces the record. A refusal at any step leaves the record
    /// and its version untouched.
    ///
    /// **A patch that changes nothing keeps the version.** If the patched copy equals the
    /// record, nothing is written and `expected` is returned, so the result equals
    /// `expected` exactly when nothing changed. A version names a state of the record
    /// (an entity tag names a representation); a patch that leaves the state alone does
    /// not make other clients' copies stale, and re-sending a patch that was already
    /// applied costs nobody a conflict. Equality decides, so a value that is not equal to
    /// itself (a float NaN) always counts as changed.
    ///
    /// # Errors
    ///
    /// [`PatchError::Store`] with [`Error::NotFound`](crate::Error::NotFound) or
    /// [`Error::Stale`](crate::Error::Stale) (the patch is not applied), or
    /// [`PatchError::Patch`] with the patch's own error, from
    /// [`precheck`](Patch::precheck) (whatever the record's version) or from
    /// [`apply`](Patch::apply).
    ///
    /// # Locking behaviour
    ///
    /// Takes the key's shard lock exclusively for the version check, the copy, `apply`,
    /// the comparison and the write; `precheck` runs before.
    ///
    /// # Panics
    ///
    /// As [`update_with`](Store::update_with): if `patch` calls back into this store. If
    /// `patch` panics, the record is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    ///
    /// let store: verkv::Store<&str, Vec<&str>> = verkv::Store::new();
    /// let v1 = store.insert("tags", vec!["a"]).unwrap();
    /// let add_b = |tags: &mut Vec<&str>| {
    ///     if !tags.contains(&"b") {
    ///         tags.push("b");
    ///     }
    ///     Ok::<_, Infallible>(())
    /// };
    /// let v2 = store.patch(&"tags", &v1, add_b).unwrap();
    /// assert_ne!(v2, v1);
    /// // Applied again, it changes nothing: the version stays.
    /// assert_eq!(store.patch(&"tags", &v2, add_b), Ok(v2));
    /// ```
    pub fn patch<Q, P>(
        &self,
        key: &Q,
        expected: &S::Version,
        patch: P,
    ) -> Result<S::Version, PatchError<S::Version, P::Error>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone + PartialEq,
        P: Patch<V>,
    {
        self.patch_in(&Forever, key, expected, patch)
    }

    pub(crate) fn patch_in<Q, P, W: Wait>(
        &self,
        wait: &W,
        key: &Q,
        expected: &S::Version,
        patch: P,
    ) -> Result<S::Version, PatchError<S::Version, P::Error>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone + PartialEq,
        P: Patch<V>,
        W::Error: Into<crate::Error<S::Version>>,
    {
        patch.precheck().map_err(PatchError::Patch)?;
        let written = self.update_with_in(wait, key, expected, |current| {
            let mut draft = current.clone();
            patch.apply(&mut draft).map_err(Declined::Refused)?;
            if draft == *current {
                Err(Declined::Unchanged)
            } else {
                Ok(draft)
            }
        });
        match written {
            Ok(version) => Ok(version),
            // The version check passed, so the record is at `expected`.
            Err(UpdateWithError::Closure(Declined::Unchanged)) => Ok(expected.clone()),
            Err(UpdateWithError::Closure(Declined::Refused(error))) => {
                Err(PatchError::Patch(error))
            }
            Err(UpdateWithError::Store(error)) => Err(PatchError::Store(error)),
        }
    }
}

impl<K, V, S, H> Bounded<'_, K, V, S, H>
where
    K: Hash + Eq,
    S: VersionScheme,
    H: BuildHasher,
{
    /// As [`Store::patch`], within the view's deadline (which bounds the wait for the
    /// lock; once the patch is applied, the operation completes).
    ///
    /// # Errors
    ///
    /// As [`Store::patch`], plus [`PatchError::Store`] with
    /// [`Error::TimedOut`](crate::Error::TimedOut) or
    /// [`Error::Cancelled`](crate::Error::Cancelled): nothing was written.
    pub fn patch<Q, P>(
        &self,
        key: &Q,
        expected: &S::Version,
        patch: P,
    ) -> Result<S::Version, PatchError<S::Version, P::Error>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone + PartialEq,
        P: Patch<V>,
    {
        self.store().patch_in(self.budget(), key, expected, patch)
    }
}
