//! What every snapshot starts with: the magic bytes, then the format version, which the
//! writer puts first and the reader checks before anything else.

/// The bytes every snapshot starts with.
pub(crate) const MAGIC: [u8; 8] = *b"VERKVSNP";

/// The snapshot format this build writes, and the newest it reads: the two bytes after
/// the magic bytes at the start of every snapshot. A snapshot of another format is
/// refused ([`RestoreError::Format`](super::RestoreError::Format)) before anything else is
/// read.
///
/// # Examples
///
/// ```
/// let store: verkv::Store<u64, u64> = verkv::Store::new();
/// let mut bytes = Vec::new();
/// store.snapshot_to(&mut bytes).unwrap();
/// assert_eq!(bytes[8..10], verkv::snapshot::FORMAT_VERSION.to_le_bytes());
/// ```
pub const FORMAT_VERSION: u16 = 1;
