//! The two version schemes, [`Counter`] and [`UuidV4`], and the trait they share.

use std::fmt::{Debug, Display};
use std::hash::Hash;

/// How a store numbers the states of its records.
///
/// The store owns one value of the scheme per shard and calls it with that shard's lock
/// held, so implementations need no interior synchronisation. Every key lives in exactly
/// one shard for the life of the store, so per-shard state is per-key state too.
///
/// # Contract
///
/// For one key in one store, the versions a scheme hands out must never repeat: not
/// across updates, and not across a removal and re-creation of the key (the store calls
/// [`retire`](VersionScheme::retire) with the last version of every record it drops).
/// A client holding an old version must see it rejected as stale, never accepted again.
///
/// # Examples
///
/// ```
/// use verkv::{Counter, VersionScheme};
///
/// let mut versions = Counter::default();
/// let first = versions.initial();
/// assert_eq!(first, 1);
/// assert_eq!(versions.next(&first), 2);
/// assert_eq!(Counter::parse("42"), Some(42));
/// ```
pub trait VersionScheme: Default + Send + Sync + 'static {
    /// The version type: compared for equality, shown to clients with [`Display`] and
    /// read back with [`parse`](VersionScheme::parse).
    type Version: Clone + Eq + Hash + Debug + Display + Send + Sync + 'static;

    /// The version of a newly created record.
    fn initial(&mut self) -> Self::Version;

    /// The version that follows `current` after a write.
    fn next(&mut self, current: &Self::Version) -> Self::Version;

    /// Notes that a record at version `last` was removed (or cleared), so that a later
    /// [`initial`](VersionScheme::initial) never hands `last` or an earlier version out again.
    fn retire(&mut self, last: &Self::Version);

    /// Reads a version back from the text its [`Display`] produced, or `None` if `text` is
    /// not exactly the text `Display` writes for a version of this scheme (no other spellings,
    /// no surrounding whitespace), so a parsed version and an entity tag agree.
    fn parse(text: &str) -> Option<Self::Version>;

    /// The scheme's name, written into snapshots so that one is never restored into a
    /// store of another scheme: `"counter"` for [`Counter`], `"uuid-v4"` for [`UuidV4`].
    ///
    /// By default the type's name as the compiler spells it
    /// ([`std::any::type_name`]), which may change with the compiler or a rename:
    /// a scheme whose snapshots must outlive either should return a fixed name of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Counter, UuidV4, VersionScheme};
    ///
    /// assert_eq!((Counter::name(), UuidV4::name()), ("counter", "uuid-v4"));
    /// ```
    fn name() -> &'static str {
        std::any::type_name::<Self>()
    }

    /// What a store restored from a snapshot needs from this scheme's state so that it
    /// never hands out a version this one did: a version that, passed to
    /// [`retire`](VersionScheme::retire) of a fresh scheme, keeps it from issuing any
    /// version this one retired. `None` if there is nothing to carry over, as for
    /// [`UuidV4`], whose random versions need no memory, and the default.
    ///
    /// A snapshot folds the resume points of all shards, and the versions of the records
    /// it copied, into one scheme with `retire`; a restore retires that scheme's resume
    /// point in every shard of the new store (keys land in other shards after a restart,
    /// since every store seeds its hasher at random). A scheme that keeps state in
    /// `retire` must return it here, or a restored store may repeat its versions.
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Counter, VersionScheme};
    ///
    /// let mut before = Counter::default();
    /// assert_eq!(before.resume_point(), None);
    /// before.retire(&7);
    /// let mut after = Counter::default();
    /// after.retire(&before.resume_point().unwrap());
    /// assert_eq!(after.initial(), 8);
    /// ```
    fn resume_point(&self) -> Option<Self::Version> {
        None
    }
}

/// Versions as a `u64` counter: `1` for a new record, one more on every write.
///
/// The cheapest scheme, and the familiar one from SQL (`version = version + 1`). Versions
/// are guessable, which is fine when clients only echo back what they were given.
///
/// # Re-created keys
///
/// Each shard remembers the highest version it has seen removed. A new record starts just
/// above it, so a key that is removed at version 7 and created again starts at 8 or more:
/// an old version of a key is never accepted again. In a store that never removes, every
/// record starts at 1.
///
/// # Examples
///
/// ```
/// use verkv::Store;
///
/// let store: Store<&str, u32> = Store::new();
/// let v1 = store.insert("a", 1).unwrap();
/// assert_eq!(v1, 1);
/// let v2 = store.update(&"a", &v1, 2).unwrap();
/// assert_eq!(v2, 2);
/// store.remove(&"a", &v2).unwrap();
/// // Re-created: does not start at 1 again.
/// assert_eq!(store.insert("a", 3).unwrap(), 3);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Counter {
    retired: u64,
}

impl VersionScheme for Counter {
    type Version = u64;

    fn initial(&mut self) -> u64 {
        let floor = self.retired;
        self.next(&floor)
    }

    #[inline]
    fn next(&mut self, current: &u64) -> u64 {
        // A record would need 2^64 writes to get here; wrapping would silently reuse
        // versions, so stop loudly instead.
        current
            .checked_add(1)
            .expect("verkv: version counter overflowed u64")
    }

    fn retire(&mut self, last: &u64) {
        self.retired = self.retired.max(*last);
    }

    fn parse(text: &str) -> Option<u64> {
        // Only the text `Display` writes: digits, no sign, no leading zero. So a tag like
        // `"0042"` is not taken for version 42: as an entity tag it never matches.
        let canonical =
            text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
        if !canonical {
            return None;
        }
        text.parse().ok()
    }

    fn name() -> &'static str {
        "counter"
    }

    /// The highest version retired, if any: a new record starts above it.
    fn resume_point(&self) -> Option<u64> {
        (self.retired > 0).then_some(self.retired)
    }
}

/// Versions as random (version 4) UUIDs, for versions shown to clients that must not be
/// able to guess the next one.
///
/// Every write draws 122 fresh random bits from a thread-local cryptographically secure
/// generator, so repeating an earlier version of a key is as likely as guessing it
/// (about 2⁻¹²² per try); nothing needs to be remembered when a record is removed.
/// Versions display in the lower-case hyphenated form
/// (`67e55044-10b1-426f-9247-bb680e5fe0c8`) and parse back from that form only, so a
/// version that parses is one whose entity tag matches.
///
/// # Examples
///
/// ```
/// use verkv::{Store, UuidV4};
///
/// let store: Store<&str, u32, UuidV4> = Store::builder().versions::<UuidV4>().build();
/// let v1 = store.insert("a", 1).unwrap();
/// let v2 = store.update(&"a", &v1, 2).unwrap();
/// assert_ne!(v1, v2);
/// assert_eq!(v1.get_version_num(), 4);
/// ```
#[derive(Debug, Default, Clone)]
pub struct UuidV4 {
    _private: (),
}

impl VersionScheme for UuidV4 {
    type Version = uuid::Uuid;

    fn initial(&mut self) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }

    fn next(&mut self, _current: &uuid::Uuid) -> uuid::Uuid {
        uuid::Uuid::new_v4()
    }

    fn retire(&mut self, _last: &uuid::Uuid) {}

    fn parse(text: &str) -> Option<uuid::Uuid> {
        // Only the text `Display` writes (lower-case, hyphenated), the one form a client
        // can have been shown: not the simple 32-digit form, upper case, `{...}` or
        // `urn:uuid:`, which as entity tags would never match.
        let version = uuid::Uuid::try_parse(text).ok()?;
        let mut canonical = uuid::Uuid::encode_buffer();
        (version.hyphenated().encode_lower(&mut canonical) == text).then_some(version)
    }

    fn name() -> &'static str {
        "uuid-v4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_starts_at_one_and_counts_up() {
        let mut c = Counter::default();
        assert_eq!(c.initial(), 1);
        assert_eq!(c.next(&1), 2);
        assert_eq!(c.next(&41), 42);
    }

    #[test]
    fn counter_never_restarts_below_a_retired_version() {
        let mut c = Counter::default();
        c.retire(&7);
        c.retire(&3);
        assert_eq!(c.initial(), 8);
    }

    #[test]
    fn counter_resumes_above_its_highest_retired_version() {
        let mut c = Counter::default();
        assert_eq!(c.resume_point(), None);
        c.retire(&7);
        c.retire(&3);
        assert_eq!(c.resume_point(), Some(7));
        let mut resumed = Counter::default();
        resumed.retire(&7);
        assert_eq!(resumed.initial(), 8);
    }

    #[test]
    fn schemes_have_fixed_names_and_uuids_carry_nothing_over() {
        assert_eq!(Counter::name(), "counter");
        assert_eq!(UuidV4::name(), "uuid-v4");
        let mut u = UuidV4::default();
        let version = u.initial();
        u.retire(&version);
        assert_eq!(u.resume_point(), None);
    }

    #[test]
    fn counter_parses_digits_only() {
        assert_eq!(Counter::parse("0"), Some(0));
        assert_eq!(Counter::parse("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "0x10",
            "18446744073709551616",
            "\"1\"",
            "0042",
            "00",
        ] {
            assert_eq!(Counter::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn uuid_versions_differ_and_round_trip() {
        let mut u = UuidV4::default();
        let a = u.initial();
        let b = u.next(&a);
        assert_ne!(a, b);
        assert_eq!(UuidV4::parse(&a.to_string()), Some(a));
        for bad in [
            "",
            &a.simple().to_string(),
            "42",
            "not-a-uuid",
            &format!("{{{a}}}"),
            &a.urn().to_string(),
            &a.hyphenated().to_string().to_uppercase(),
        ] {
            assert_eq!(UuidV4::parse(bad), None, "{bad:?}");
        }
    }
}
