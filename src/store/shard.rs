//! One shard: a plain, single-threaded map of versioned records.
//!
//! All version-check logic lives here, behind `&mut self` methods that take the key's
//! precomputed hash. No locks and no clocks: the store takes the lock and calls in.

use std::borrow::Borrow;

use hashbrown::hash_table::{Entry, HashTable};

use super::error::{Error, Rejected, UpdateWithError};
use super::record::Record;
use crate::version::VersionScheme;

type Version<S> = <S as VersionScheme>::Version;

/// A record that passed the version check, with the scheme that will version its write.
type Current<'a, V, S> = (&'a mut S, &'a mut Record<V, Version<S>>);

/// The records of one shard and the shard's version scheme.
pub(crate) struct Shard<K, V, S: VersionScheme> {
    table: HashTable<(K, Record<V, Version<S>>)>,
    versions: S,
}

/// Checks that `record` is at `expected`: the heart of every conditional write.
///
/// The `verkv_mutant = "no_version_check"` cfg removes the check, so that the test suite
/// can show its checkers catch the lost updates that follow.
fn check_version<V, Ver: Clone + Eq>(
    record: &Record<V, Ver>,
    expected: &Ver,
) -> Result<(), Error<Ver>> {
    if cfg!(verkv_mutant = "no_version_check") || record.version == *expected {
        Ok(())
    } else {
        Err(Error::Stale {
            expected: expected.clone(),
            current: record.version.clone(),
        })
    }
}

/// Moves `record` to its next version with `value`, returning the new version.
fn overwrite<V, S: VersionScheme>(
    versions: &mut S,
    record: &mut Record<V, Version<S>>,
    value: V,
) -> Version<S> {
    record.version = versions.next(&record.version);
    record.value = value;
    record.version.clone()
}

impl<K, V, S: VersionScheme> Shard<K, V, S> {
    /// An empty shard with room reserved for `capacity` records, if the machine can
    /// give that much memory now; otherwise with none (the table grows as records come).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut table = HashTable::new();
        // `with_capacity` would panic on a size that overflows, and abort the process on
        // one the allocator refuses. An empty table never rehashes, so the hasher is
        // never called.
        if table.try_reserve(capacity, |_| 0).is_err() {
            table = HashTable::new();
        }
        Shard {
            table,
            versions: S::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(K, Record<V, Version<S>>)> {
        self.table.iter()
    }

    /// Removes every record.
    pub(crate) fn clear(&mut self) {
        for (_, record) in self.table.drain() {
            self.versions.retire(&record.version);
        }
    }
}

impl<K: Eq, V, S: VersionScheme> Shard<K, V, S> {
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&Record<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table
            .find(hash, |(k, _)| k.borrow() == key)
            .map(|(_, record)| record)
    }

    /// Finds the record for `key` and checks that it is at `expected`.
    fn find_current<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
    ) -> Result<Current<'_, V, S>, Error<Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (_, record) = self
            .table
            .find_mut(hash, |(k, _)| k.borrow() == key)
            .ok_or(Error::NotFound)?;
        check_version(record, expected)?;
        Ok((&mut self.versions, record))
    }

    /// Creates the record; refuses if the key is present, with what `occupied` makes of
    /// the record there and the value.
    pub(crate) fn insert<R>(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
        occupied: impl FnOnce(&Record<V, Version<S>>, V) -> R,
    ) -> Result<Version<S>, R> {
        match self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| rehash(k))
        {
            Entry::Occupied(entry) => Err(occupied(&entry.get().1, value)),
            Entry::Vacant(vacant) => {
                let version = self.versions.initial();
                vacant.insert((
                    key,
                    Record {
                        value,
                        version: version.clone(),
                    },
                ));
                Ok(version)
            }
        }
    }

    /// Writes the record whatever its version, creating it if absent.
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        rehash: impl Fn(&K) -> u64,
    ) -> Version<S> {
        match self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| rehash(k))
        {
            Entry::Occupied(mut occupied) => {
                overwrite(&mut self.versions, &mut occupied.get_mut().1, value)
            }
            Entry::Vacant(vacant) => {
                let version = self.versions.initial();
                vacant.insert((
                    key,
                    Record {
                        value,
                        version: version.clone(),
                    },
                ));
                version
            }
        }
    }

    /// Replaces the value if the record is at `expected`, computing the new value from
    /// the current one. `compute` runs only after the version check passed; its error
    /// leaves the record as it was.
    pub(crate) fn update_with<Q, E>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        compute: impl FnOnce(&V) -> Result<V, E>,
    ) -> Result<Version<S>, UpdateWithError<Version<S>, E>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (versions, record) = self.find_current(hash, key, expected)?;
        let value = compute(&record.value).map_err(UpdateWithError::Closure)?;
        Ok(overwrite(versions, record, value))
    }

    /// Replaces the value if the record is at `expected`.
    pub(crate) fn update<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
        value: V,
    ) -> Result<Version<S>, Rejected<V, Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self.find_current(hash, key, expected) {
            Ok((versions, record)) => Ok(overwrite(versions, record, value)),
            Err(error) => Err(Rejected { error, value }),
        }
    }

    /// Removes the record if it is at `expected`, returning its value.
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        expected: &Version<S>,
    ) -> Result<V, Error<Version<S>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let entry = self
            .table
            .find_entry(hash, |(k, _)| k.borrow() == key)
            .map_err(|_| Error::NotFound)?;
        check_version(&entry.get().1, expected)?;
        let ((_, record), _) = entry.remove();
        self.versions.retire(&record.version);
        Ok(record.value)
    }
}
