//! Writing a snapshot of a live store, shard by shard.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::error::SnapshotError;
use super::file::write_atomically;
use super::format::{self, Entry, FrameWriter, BLOCK, BLOCK_TARGET, END, HEADER};
use crate::store::reentry::forbid_reentry;
use crate::store::Store;
use crate::version::VersionScheme;

/// What a snapshot wrote, from [`Store::snapshot_to`].
///
/// # Examples
///
/// ```
/// let store: verkv::Store<u64, u64> = verkv::Store::new();
/// store.insert(1, 10).unwrap();
/// let mut bytes = Vec::new();
/// let written = store.snapshot_to(&mut bytes).unwrap();
/// assert_eq!((written.records, written.blocks, written.bytes), (1, 1, bytes.len() as u64));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// Records written.
    pub records: u64,
    /// Blocks they were written in.
    pub blocks: u64,
    /// Bytes written, the whole snapshot.
    pub bytes: u64,
    /// Records left out because they had expired (their versions still count: a
    /// restored store never hands them out again).
    pub expired: u64,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records in {} blocks, {} bytes ({} expired left out)",
            self.records, self.blocks, self.bytes, self.expired
        )
    }
}

/// The block being filled: its records' bytes, how many, and scratch space for version
/// texts.
struct Block {
    records: Vec<u8>,
    count: u32,
    text: String,
}

impl<K, V, S, H> Store<K, V, S, H>
where
    K: Hash + Eq + Clone + Serialize,
    V: Clone + Serialize,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Writes a snapshot of the store's records to `out`: keys, values and versions,
    /// what each record has left to live, and where the version scheme must resume so
    /// that a store [restored](crate::StoreBuilder::restore) from it never hands out a
    /// version this one did. The store keeps serving while it runs.
    ///
    /// `out` gets large writes (a block of about 64 KiB at a time) and a final flush; a
    /// file is best written with [`snapshot_to_file`](Store::snapshot_to_file), which
    /// replaces it atomically.
    ///
    /// # Consistency
    ///
    /// Shard by shard: each shard's records are copied under its read lock (so each
    /// shard is captured at one instant, with no write half-seen), the lock is let go,
    /// and the copies are encoded and written. Reads go on meanwhile, and writes wait
    /// only while their own shard is being copied. So the snapshot as a whole is not of
    /// one instant: a write to a shard after its copy is not in it (a record created
    /// then is missing, one removed then is still there, one updated then has its
    /// earlier value and version), and a write to a shard not copied yet is. Versions
    /// handed out after a shard's copy are not known to the snapshot, and a restored
    /// store may hand them out again: for a warm restart, take the last snapshot once
    /// the old store takes no more writes. Expired records are left out (their versions
    /// are carried over all the same).
    ///
    /// Keys, values and versions are written as they are when copied; values are
    /// cloned under the lock, so for large values store an [`Arc`](std::sync::Arc). The
    /// copy holds one shard's records at a time: more [shards](crate::StoreBuilder::shards)
    /// make it smaller, and disturb the reads that go on beside it less (see
    /// `docs/benchmarks/warm-restart.md`.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Write`] if `out` refuses bytes, [`SnapshotError::Encode`] if a
    /// key's or value's `Serialize` implementation does, [`SnapshotError::TooLarge`] for
    /// a record of 4 GiB or more. What was written by then is no snapshot: a restore
    /// refuses it.
    ///
    /// # Locking behaviour
    ///
    /// Shares each shard's lock in turn, for as long as copying its records takes.
    ///
    /// # Panics
    ///
    /// If called from inside a closure this store is running.
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, StoreBuilder};
    ///
    /// let store: Store<String, u32> = Store::new();
    /// let v1 = store.insert("likes".to_string(), 1).unwrap();
    /// let v2 = store.update("likes", &v1, 2).unwrap();
    ///
    /// let mut bytes = Vec::new();
    /// store.snapshot_to(&mut bytes).unwrap();
    /// let (restored, report) = StoreBuilder::<String, u32>::new().restore(&bytes[..]).unwrap();
    /// assert_eq!(report.loaded, 1);
    /// let likes = restored.get("likes").unwrap();
    /// assert_eq!((likes.value, likes.version), (2, v2));
    /// // A writer still holding version 1 is refused, as before the restart.
    /// assert!(restored.update("likes", &v1, 3).is_err());
    /// ```
    pub fn snapshot_to<W: Write>(&self, out: W) -> Result<Written, SnapshotError> {
        forbid_reentry(self.id());
        let taken_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let mut out = FrameWriter::new(out);
        out.preamble()?;
        let header = format::encode_header::<K, V, S>(self.shard_count(), self.len(), taken_at)
            .map_err(|detail| SnapshotError::Encode { record: 0, detail })?;
        out.frame(HEADER, 0, &[&header])?;

        let mut resume = S::default();
        let mut written = Written {
            records: 0,
            blocks: 0,
            bytes: 0,
            expired: 0,
        };
        let mut block = Block {
            records: Vec::with_capacity(BLOCK_TARGET + BLOCK_TARGET / 4),
            count: 0,
            text: String::new(),
        };
        let mut copied = Vec::new();
        for shard in self.shards() {
            {
                let records = shard.lock.read();
                if let Some(point) = records.resume_point() {
                    resume.retire(&point);
                }
                let hash = |key: &K| self.hasher.hash_one(key);
                records.export(hash, |key, record, remaining, heat| match remaining {
                    Some(remaining) => copied.push(Entry {
                        key: key.clone(),
                        value: record.value.clone(),
                        version: record.version.clone(),
                        remaining,
                        heat,
                    }),
                    None => {
                        resume.retire(&record.version);
                        written.expired += 1;
                    }
                });
            }
            for entry in copied.drain(..) {
                let start = block.records.len();
                let record = written.records;
                format::encode_record(&mut block.records, &mut block.text, &entry)
                    .map_err(|detail| SnapshotError::Encode { record, detail })?;
                // Room for the resume point in front, which is a version's text.
                if block.records.len() > u32::MAX as usize - 4096 {
                    return Err(SnapshotError::TooLarge {
                        record,
                        bytes: block.records.len() - start,
                    });
                }
                written.records += 1;
                block.count += 1;
                if block.records.len() >= BLOCK_TARGET {
                    write_block(&mut out, &mut block, &resume, &mut written)?;
                }
            }
        }
        if block.count > 0 {
            write_block(&mut out, &mut block, &resume, &mut written)?;
        }
        let end = format::encode_end(
            written.records,
            written.blocks,
            resume.resume_point().as_ref(),
        )
        .map_err(|detail| SnapshotError::Encode {
            record: written.records,
            detail,
        })?;
        out.frame(END, 0, &[&end])?;
        out.flush()?;
        written.bytes = out.written();
        Ok(written)
    }

    /// Writes a snapshot, as [`snapshot_to`](Store::snapshot_to) does, to the file at
    /// `path`, replacing it **atomically**: the snapshot goes to a temporary file in the
    /// same directory, which is synced to disk and then renamed over `path`, and the
    /// directory is synced. A crash at any point leaves either the old file or the new
    /// one, complete, never a mix (see [`write_atomically`](super::write_atomically)).
    ///
    /// # Errors
    ///
    /// As [`snapshot_to`](Store::snapshot_to), and [`SnapshotError::File`] if the file
    /// cannot be created, synced or renamed; `path` is then left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("verkv-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("cache.snapshot");
    ///
    /// let store: verkv::Store<u64, String> = verkv::Store::new();
    /// store.insert(7, "Ada".to_string())?;
    /// store.snapshot_to_file(&path)?;
    ///
    /// let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    /// let (restored, _) = verkv::StoreBuilder::<u64, String>::new().restore(file)?;
    /// assert_eq!(restored.get(&7).unwrap().value, "Ada");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot_to_file(&self, path: impl AsRef<Path>) -> Result<Written, SnapshotError> {
        write_atomically(path, |file| self.snapshot_to(file))
    }
}

/// Writes `block` as a frame, with the resume point of the shards copied so far in
/// front (what a lenient restore that stops later still knows), and empties it.
fn write_block<W: Write, S: VersionScheme>(
    out: &mut FrameWriter<W>,
    block: &mut Block,
    resume: &S,
    written: &mut Written,
) -> Result<(), SnapshotError> {
    let mut front = Vec::new();
    format::put_resume(&mut front, &mut block.text, resume.resume_point().as_ref()).map_err(
        |detail| SnapshotError::Encode {
            record: written.records,
            detail,
        },
    )?;
    out.frame(BLOCK, block.count, &[&front, &block.records])?;
    written.blocks += 1;
    block.records.clear();
    block.count = 0;
    Ok(())
}
