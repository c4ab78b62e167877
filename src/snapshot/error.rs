//! Why a snapshot could not be written, or a store not restored from one: each error says
//! what went wrong and where (the part of the snapshot and its byte offset).

use std::fmt;
use std::io;

use super::preamble::{FORMAT_VERSION, MAGIC};

/// A part of a snapshot, as errors name where they found a problem.
///
/// # Examples
///
/// ```
/// use verkv::snapshot::Part;
///
/// assert_eq!(Part::Block(3).to_string(), "block 3");
/// assert_eq!(Part::End.to_string(), "the end marker");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The magic bytes and the format version that open every snapshot.
    Preamble,
    /// The header: the version scheme, the key and value types, when it was taken.
    Header,
    /// The block of records with this index, counting from 0 (or, if its tag could
    /// not be read, whatever frame stands at that place).
    Block(u64),
    /// The end marker: how many records and blocks there were, and where versions
    /// resume.
    End,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Preamble => f.write_str("the preamble"),
            Part::Header => f.write_str("the header"),
            Part::Block(index) => write!(f, "block {index}"),
            Part::End => f.write_str("the end marker"),
        }
    }
}

/// Why a snapshot could not be written ([`Store::snapshot_to`](crate::Store::snapshot_to),
/// [`Store::snapshot_to_file`](crate::Store::snapshot_to_file)).
///
/// # Examples
///
/// ```
/// use std::io;
/// use verkv::snapshot::SnapshotError;
///
/// /// A writer that takes nothing.
/// struct Full;
/// impl io::Write for Full {
///     fn write(&mut self, _: &[u8]) -> io::Result<usize> {
///         Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
///     }
///     fn flush(&mut self) -> io::Result<()> {
///         Ok(())
///     }
/// }
///
/// let store: verkv::Store<u64, u64> = verkv::Store::new();
/// let error = store.snapshot_to(Full).unwrap_err();
/// assert!(matches!(error, SnapshotError::Write { written: 0, .. }));
/// assert_eq!(error.to_string(), "writing the snapshot failed after 0 bytes: disk full");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The writer refused bytes.
    Write {
        /// How many bytes it had taken before.
        written: u64,
        /// What it said.
        error: io::Error,
    },
    /// Creating, syncing or renaming the snapshot's file failed; the message names the
    /// step and the path ([`write_atomically`](super::write_atomically)).
    File(io::Error),
    /// A key or value's `Serialize` implementation refused.
    Encode {
        /// The record's place in the snapshot, counting from 0.
        record: u64,
        /// What the encoder said.
        detail: String,
    },
    /// A record too large for a block (the format counts a block's bytes in 32 bits).
    TooLarge {
        /// The record's place in the snapshot, counting from 0.
        record: u64,
        /// How many bytes it encodes to.
        bytes: usize,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Write { written, error } => {
                write!(
                    f,
                    "writing the snapshot failed after {written} bytes: {error}"
                )
            }
            SnapshotError::File(error) => write!(f, "{error}"),
            SnapshotError::Encode { record, detail } => {
                write!(f, "record {record} does not encode: {detail}")
            }
            SnapshotError::TooLarge { record, bytes } => write!(
                f,
                "record {record} encodes to {bytes} bytes, more than a block holds ({})",
                u32::MAX
            ),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Write { error, .. } | SnapshotError::File(error) => Some(error),
            SnapshotError::Encode { .. } | SnapshotError::TooLarge { .. } => None,
        }
    }
}

/// Steps of [`write_atomically`](super::write_atomically) fail with their own message.
impl From<io::Error> for SnapshotError {
    fn from(error: io::Error) -> Self {
        SnapshotError::File(error)
    }
}

/// Why a store could not be restored from a snapshot
/// ([`StoreBuilder::restore`](crate::StoreBuilder::restore)), or why a lenient restore
/// stopped reading ([`Restored::stopped`](super::Restored::stopped)). Each says where:
/// the [`Part`] of the snapshot and the byte offset, from the start of the input.
///
/// # Examples
///
/// ```
/// use verkv::snapshot::{Part, RestoreError};
/// use verkv::{Store, StoreBuilder};
///
/// let store: Store<u64, u64> = Store::new();
/// store.insert(1, 1).unwrap();
/// let mut bytes = Vec::new();
/// store.snapshot_to(&mut bytes).unwrap();
///
/// bytes.truncate(bytes.len() - 1);
/// let error = StoreBuilder::<u64, u64>::new().restore(&bytes[..]).unwrap_err();
/// assert!(matches!(error, RestoreError::Truncated { part: Part::End, .. }));
/// assert!(error.to_string().starts_with("snapshot truncated at byte "));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RestoreError {
    /// The reader failed.
    Io {
        /// Where: the bytes read before.
        at: u64,
        /// The part being read.
        part: Part,
        /// What it said.
        error: io::Error,
    },
    /// Not a snapshot of this crate: the input does not start with its magic bytes.
    Foreign {
        /// The first bytes of the input (up to 8).
        found: Vec<u8>,
    },
    /// A snapshot format this build does not read (written by a later version).
    Format {
        /// The format the snapshot says it has.
        found: u16,
    },
    /// The input ended before the snapshot did.
    Truncated {
        /// Where it ended.
        at: u64,
        /// The part that was cut off.
        part: Part,
    },
    /// A part's bytes are not what was written: its checksum does not match.
    Checksum {
        /// Where the checked bytes start.
        at: u64,
        /// The part they belong to.
        part: Part,
    },
    /// A part whose checksum matched but whose contents make no sense here: a frame
    /// out of place, a record that does not decode as the store's types, a key that
    /// appears twice, counts that disagree.
    Corrupt {
        /// Where the part's contents start.
        at: u64,
        /// The part.
        part: Part,
        /// What is wrong, and in which record.
        detail: String,
    },
    /// The snapshot is of a store with another version scheme.
    Scheme {
        /// The snapshot's scheme ([`VersionScheme::name`](crate::VersionScheme::name)).
        found: String,
        /// The restored store's.
        expected: &'static str,
    },
    /// The snapshot is of a store with other key or value types.
    Types {
        /// `"key"` or `"value"`.
        which: &'static str,
        /// The snapshot's type ([`std::any::type_name`]).
        found: String,
        /// The restored store's.
        expected: &'static str,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Io { at, part, error } => {
                write!(f, "i/o error at byte {at}, in {part}: {error}")
            }
            RestoreError::Foreign { found } => write!(
                f,
                "not a verkv snapshot: it starts with \"{}\" instead of \"{}\"",
                found.escape_ascii(),
                MAGIC.escape_ascii()
            ),
            RestoreError::Format { found } if *found > FORMAT_VERSION => write!(
                f,
                "snapshot format {found} is newer than this build reads (format {FORMAT_VERSION})"
            ),
            RestoreError::Format { found } => write!(
                f,
                "unknown snapshot format {found} (this build reads format {FORMAT_VERSION})"
            ),
            RestoreError::Truncated { at, part } => {
                write!(f, "snapshot truncated at byte {at}, in {part}")
            }
            RestoreError::Checksum { at, part } => {
                write!(f, "checksum mismatch in {part}, at byte {at}")
            }
            RestoreError::Corrupt { at, part, detail } => {
                write!(f, "corrupt {part} at byte {at}: {detail}")
            }
            RestoreError::Scheme { found, expected } => write!(
                f,
                "a snapshot of {found} versions cannot restore a store of {expected} versions"
            ),
            RestoreError::Types {
                which,
                found,
                expected,
            } => write!(
                f,
                "a snapshot of {which} type {found} cannot restore a store of {which} type {expected}"
            ),
        }
    }
}

impl std::error::Error for RestoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RestoreError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
