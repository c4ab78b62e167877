//! Applying a [`Patch`] to a record under the version check, from a store or a bounded
//! view.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use super::{Patch, PatchError};
use crate::deadline::{Forever, Wait};
use crate::store::{Store, UpdateWithError};
use crate::version::VersionScheme;
use crate::wait::Bounded;

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

    /// [`patch`](Store::patch) with a closure that edits a draft of the record and may
    /// refuse: `|draft| { ...; Ok(()) }`. The same as passing the closure to `patch`,
    /// but its argument's type is known from this signature, so it needs no annotation
    /// (through `patch` the compiler cannot see that a closure is meant as a
    /// `Patch<V>`). Its error type comes from what it returns: a closure that only ever
    /// returns `Ok(())` must still name one, and is better written as
    /// [`update_with`](Store::update_with).
    ///
    /// # Errors
    ///
    /// As [`patch`](Store::patch).
    ///
    /// # Panics
    ///
    /// As [`patch`](Store::patch).
    ///
    /// # Examples
    ///
    /// ```
    /// let store: verkv::Store<&str, Vec<u32>> = verkv::Store::new();
    /// let v1 = store.insert("scores", vec![3]).unwrap();
    /// let add = |draft: &mut Vec<u32>, score| {
    ///     if draft.contains(&score) {
    ///         return Err("already there");
    ///     }
    ///     draft.push(score);
    ///     Ok(())
    /// };
    /// let v2 = store.patch_with(&"scores", &v1, |draft| add(draft, 4)).unwrap();
    /// assert!(store.patch_with(&"scores", &v2, |draft| add(draft, 4)).is_err());
    /// ```
    pub fn patch_with<Q, E>(
        &self,
        key: &Q,
        expected: &S::Version,
        patch: impl FnOnce(&mut V) -> Result<(), E>,
    ) -> Result<S::Version, PatchError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone + PartialEq,
    {
        self.patch(key, expected, patch)
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

    /// As [`Store::patch_with`], within the view's deadline.
    ///
    /// # Errors
    ///
    /// As [`patch`](Bounded::patch).
    pub fn patch_with<Q, E>(
        &self,
        key: &Q,
        expected: &S::Version,
        patch: impl FnOnce(&mut V) -> Result<(), E>,
    ) -> Result<S::Version, PatchError<S::Version, E>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone + PartialEq,
    {
        self.patch(key, expected, patch)
    }
}
