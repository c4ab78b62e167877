//! Restoring a store from a snapshot.

use std::cmp::Reverse;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::io::Read;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use super::error::{Part, RestoreError};
use super::format::{self, Entry, FrameHead, FrameReader, BLOCK, END, HEADER};
use crate::store::parts::clock::Clock;
use crate::store::{Placed, Store, StoreBuilder};
use crate::version::VersionScheme;

/// What a restore did, from [`StoreBuilder::restore`] or
/// [`restore_lenient`](StoreBuilder::restore_lenient).
///
/// Every record read is either loaded or counted as left out: `records == loaded +
/// expired + no_room`.
///
/// # Examples
///
/// ```
/// use verkv::{Store, StoreBuilder};
///
/// let store: Store<u64, u64> = Store::new();
/// for key in 0..10 {
///     store.insert(key, key).unwrap();
/// }
/// let mut bytes = Vec::new();
/// store.snapshot_to(&mut bytes).unwrap();
///
/// // A smaller store takes as many as fit.
/// let (small, report) =
///     StoreBuilder::<u64, u64>::new().max_capacity(4).restore(&bytes[..]).unwrap();
/// assert_eq!((report.records, report.loaded, report.no_room), (10, 4, 6));
/// assert_eq!(small.len(), 4);
/// assert!(report.stopped.is_none());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Restored {
    /// Records read from the snapshot (from its intact blocks, if a lenient restore
    /// stopped early).
    pub records: u64,
    /// Records now in the store.
    pub loaded: u64,
    /// Records left out because their time ran out: by the time the snapshot was
    /// taken, or in the wall-clock time since.
    pub expired: u64,
    /// Records left out because a bounded store had no room for them (a restore fills
    /// each shard up to its share of the bound and never evicts).
    pub no_room: u64,
    /// Blocks read.
    pub blocks: u64,
    /// Bytes read, up to the end of the snapshot or of the last intact block.
    pub bytes: u64,
    /// Why a [lenient](StoreBuilder::restore_lenient) restore stopped before the end of
    /// the snapshot, with where; `None` if it read it all (and always for a strict one).
    pub stopped: Option<RestoreError>,
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} of {} records ({} expired, {} without room) from {} blocks, {} bytes",
            self.loaded, self.records, self.expired, self.no_room, self.blocks, self.bytes
        )?;
        if let Some(stopped) = &self.stopped {
            write!(f, "; stopped early: {stopped}")?;
        }
        Ok(())
    }
}

impl<K, V, S, H> StoreBuilder<K, V, S, H>
where
    K: Hash + Eq + DeserializeOwned,
    V: DeserializeOwned,
    S: VersionScheme,
    H: BuildHasher,
{
    /// Builds the store with this builder's settings and fills it from a snapshot
    /// written by [`Store::snapshot_to`]: every record with its value and version, and
    /// the version scheme resumed so that **no version the snapshot's store handed out
    /// is handed out again** (keys land in other shards in the new store, so every shard
    /// resumes above the highest version retired in any shard of the old one, and above
    /// every version in the snapshot).
    ///
    /// - **Expiry.** A record keeps the time it had left when it was copied, less the
    ///   wall-clock time since the snapshot began (counting from its start, a record
    ///   may be dropped early by up to the time the snapshot took, never late), on this
    ///   store's [clock](StoreBuilder::clock). Records whose time ran out are left out.
    ///   On a [`ManualClock`](crate::ManualClock) no wall-clock time counts: its owner
    ///   moves its time, and advances it to stand for the time a restart took.
    ///   The store's own time-to-live, time-to-idle and [`Expiry`](crate::Expiry) policy
    ///   apply from a record's next write or read on; a record that had no deadline
    ///   gets none.
    /// - **A bound.** A [bounded](StoreBuilder::max_capacity) store fills each shard up
    ///   to its share and leaves out what does not fit, never evicting: the hottest
    ///   records first (those the snapshot's store had kept in its main queue, then by
    ///   how often they were read lately), in the snapshot's order otherwise. A restored
    ///   record keeps the reads it had towards staying.
    /// - **Nothing else** hears of the restore: the eviction listener is not told of
    ///   records left out, and the statistics do not count the records loaded.
    ///
    /// The input is read once, front to back; give a [`BufReader`](std::io::BufReader)
    /// for a file. Nothing is read past the end marker.
    ///
    /// # Errors
    ///
    /// If anything in the snapshot is wrong the store is dropped, nothing of it
    /// loaded, and the error says what and where ([`RestoreError`]): truncated,
    /// corrupt (a checksum that does not match, a record that does not decode), not a
    /// snapshot, a format this build does not read, a snapshot of another version
    /// scheme or of other key or value types (their names as [`std::any::type_name`]
    /// spells them), or the reader's own error. To keep what is intact instead, use
    /// [`restore_lenient`](StoreBuilder::restore_lenient).
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, StoreBuilder};
    ///
    /// let store: Store<u64, String> = Store::new();
    /// let v1 = store.insert(1, "first".into()).unwrap();
    /// store.remove(&1, &v1).unwrap();
    /// store.insert(2, "second".into()).unwrap();
    /// let mut bytes = Vec::new();
    /// store.snapshot_to(&mut bytes).unwrap();
    ///
    /// let (restored, report) = StoreBuilder::<u64, String>::new().restore(&bytes[..]).unwrap();
    /// assert_eq!(report.loaded, 1);
    /// // Key 1 was removed at version 1: created again, it gets a version above it.
    /// assert!(restored.insert(1, "again".into()).unwrap() > v1);
    ///
    /// // A store of other types refuses it.
    /// let refused = StoreBuilder::<u64, Vec<u8>>::new().restore(&bytes[..]).unwrap_err();
    /// assert_eq!(
    ///     refused.to_string(),
    ///     "a snapshot of value type alloc::string::String cannot restore a store of value \
    ///      type alloc::vec::Vec<u8>"
    /// );
    /// ```
    // The pair is the point: the store, and what went into it.
    #[allow(clippy::type_complexity)]
    pub fn restore<R: Read>(self, input: R) -> Result<(Store<K, V, S, H>, Restored), RestoreError> {
        let downtime = self.counts_downtime();
        let store = self.build();
        let restored = Loader::run(&store, input, downtime, false)?;
        Ok((store, restored))
    }

    /// Builds the store and fills it from as much of a snapshot as is intact: as
    /// [`restore`](StoreBuilder::restore), but a snapshot that turns out truncated or
    /// corrupt after its header loads every block before the first bad one, and the
    /// report says how many records were loaded and why and where it stopped
    /// ([`Restored::stopped`]). A block is loaded whole or not at all (unless a record
    /// in it repeats the key of an earlier one, which no snapshot written by this crate
    /// does: the records before it stay).
    ///
    /// Versions still resume above every version in the blocks read and every version
    /// the old store had retired by the last of them; a record in the part that was
    /// lost is gone, and its key, created again, may be given a version that record had.
    ///
    /// # Errors
    ///
    /// A snapshot whose header cannot be read (not a snapshot, another format, another
    /// version scheme or other types, cut or corrupt before its first block) is
    /// refused as by [`restore`](StoreBuilder::restore): there is nothing to load.
    ///
    /// # Examples
    ///
    /// ```
    /// use verkv::{Store, StoreBuilder};
    ///
    /// let store: Store<u64, u64> = Store::new();
    /// for key in 0..100_000 {
    ///     store.insert(key, key).unwrap();
    /// }
    /// let mut bytes = Vec::new();
    /// let written = store.snapshot_to(&mut bytes).unwrap();
    /// assert!(written.blocks > 1);
    ///
    /// bytes.truncate(bytes.len() / 2);
    /// assert!(StoreBuilder::<u64, u64>::new().restore(&bytes[..]).is_err());
    /// let (partial, report) = StoreBuilder::<u64, u64>::new().restore_lenient(&bytes[..]).unwrap();
    /// assert!(report.loaded > 0 && report.loaded < 100_000);
    /// assert_eq!(partial.len() as u64, report.loaded);
    /// assert!(report.stopped.unwrap().to_string().starts_with("snapshot truncated at byte"));
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn restore_lenient<R: Read>(
        self,
        input: R,
    ) -> Result<(Store<K, V, S, H>, Restored), RestoreError> {
        let downtime = self.counts_downtime();
        let store = self.build();
        let restored = Loader::run(&store, input, downtime, true)?;
        Ok((store, restored))
    }

    /// Whether the wall-clock time since a snapshot counts against its records' time:
    /// not on a [`ManualClock`](crate::ManualClock), whose time its owner moves.
    fn counts_downtime(&self) -> bool {
        !matches!(self.expiration.clock, Clock::Manual(_))
    }
}

/// A record read from a block, on its way into its shard: with its hash, and where it
/// came from (for the error about a repeated key).
struct Pending<K, V, Ver> {
    hash: u64,
    entry: Entry<K, V, Ver>,
    block: u64,
    at: u64,
    record: u32,
}

/// Fills a new store from a snapshot.
struct Loader<'s, K, V, S: VersionScheme, H> {
    store: &'s Store<K, V, S, H>,
    /// Every version read, and every resume point: where the shards resume.
    resume: S,
    /// The wall-clock time since the snapshot began.
    downtime: Duration,
    report: Restored,
    /// The records of one block, by shard (a store without a bound loads block by
    /// block).
    by_shard: Vec<Vec<Pending<K, V, S::Version>>>,
    /// Every record, loaded hottest first once all are read (a bounded store).
    all: Option<Vec<Pending<K, V, S::Version>>>,
}

impl<'s, K, V, S, H> Loader<'s, K, V, S, H>
where
    K: Hash + Eq + DeserializeOwned,
    V: DeserializeOwned,
    S: VersionScheme,
    H: BuildHasher,
{
    fn run(
        store: &'s Store<K, V, S, H>,
        input: impl Read,
        count_downtime: bool,
        lenient: bool,
    ) -> Result<Restored, RestoreError> {
        let mut reader = FrameReader::new(input);
        let mut body = Vec::new();
        reader.preamble()?;
        let since = Self::header(&mut reader, &mut body)?;
        let downtime = if count_downtime {
            since
        } else {
            Duration::ZERO
        };
        let bounded = store
            .shards()
            .iter()
            .any(|shard| shard.lock.read().bounded());
        let mut loader = Loader {
            store,
            resume: S::default(),
            downtime,
            report: Restored {
                records: 0,
                loaded: 0,
                expired: 0,
                no_room: 0,
                blocks: 0,
                bytes: reader.at(),
                stopped: None,
            },
            by_shard: (0..store.shard_count()).map(|_| Vec::new()).collect(),
            all: bounded.then(Vec::new),
        };
        let mut outcome = loader.blocks(&mut reader, &mut body);
        if outcome.is_ok() || lenient {
            let placed = loader.place_all();
            outcome = outcome.and(placed);
        }
        match outcome {
            Ok(()) => {}
            Err(error) if lenient => loader.report.stopped = Some(error),
            Err(error) => return Err(error),
        }
        loader.resume();
        Ok(loader.report)
    }

    /// Reads and checks the header: a snapshot of this scheme and these types.
    /// Returns the wall-clock time since the snapshot began.
    fn header(
        reader: &mut FrameReader<impl Read>,
        body: &mut Vec<u8>,
    ) -> Result<Duration, RestoreError> {
        let head = reader.frame(Part::Header, body)?;
        let corrupt = |detail| RestoreError::Corrupt {
            at: head.body_at,
            part: Part::Header,
            detail,
        };
        if head.tag != HEADER {
            return Err(RestoreError::Corrupt {
                at: head.at,
                part: Part::Header,
                detail: format!(
                    "the first frame has tag {:#04x}, not the header's",
                    head.tag
                ),
            });
        }
        let header = format::decode_header(body).map_err(corrupt)?;
        if header.scheme != S::name() {
            return Err(RestoreError::Scheme {
                found: header.scheme,
                expected: S::name(),
            });
        }
        for (which, found, expected) in [
            ("key", header.key_type, std::any::type_name::<K>()),
            ("value", header.value_type, std::any::type_name::<V>()),
        ] {
            if found != expected {
                return Err(RestoreError::Types {
                    which,
                    found,
                    expected,
                });
            }
        }
        let taken = SystemTime::UNIX_EPOCH.checked_add(header.taken_at);
        Ok(taken
            .and_then(|taken| SystemTime::now().duration_since(taken).ok())
            .unwrap_or(Duration::ZERO))
    }

    /// Reads the blocks and the end marker, loading each block as it comes unless the
    /// store is bounded.
    fn blocks(
        &mut self,
        reader: &mut FrameReader<impl Read>,
        body: &mut Vec<u8>,
    ) -> Result<(), RestoreError> {
        for index in 0.. {
            let head = reader.frame(Part::Block(index), body)?;
            match head.tag {
                BLOCK => {
                    self.block(index, &head, body)?;
                    self.place_block()?;
                }
                END => {
                    self.end(&head, body)?;
                    self.report.bytes = reader.at();
                    return Ok(());
                }
                tag => {
                    return Err(RestoreError::Corrupt {
                        at: head.at,
                        part: Part::Block(index),
                        detail: format!("a frame with tag {tag:#04x} where a block belongs"),
                    })
                }
            }
            self.report.blocks += 1;
            self.report.bytes = reader.at();
        }
        unreachable!("the loop returns")
    }

    /// Decodes block `index` whole, then takes its records in.
    fn block(&mut self, index: u64, head: &FrameHead, body: &[u8]) -> Result<(), RestoreError> {
        let corrupt = |detail| RestoreError::Corrupt {
            at: head.body_at,
            part: Part::Block(index),
            detail,
        };
        let mut bytes = body;
        let resume = format::take_resume::<S>(&mut bytes).map_err(corrupt)?;
        // Every record takes two bytes at least (its flags and its version's length):
        // a count that lies allocates no more than the body could hold.
        let mut entries = Vec::with_capacity((head.count as usize).min(body.len() / 2));
        for record in 0..head.count {
            let entry = format::decode_record::<K, V, S>(&mut bytes)
                .map_err(|detail| corrupt(format!("record {record}: {detail}")))?;
            entries.push(entry);
        }
        if !bytes.is_empty() {
            return Err(corrupt(format!(
                "{} bytes after its {} records",
                bytes.len(),
                head.count
            )));
        }
        if let Some(point) = resume {
            self.resume.retire(&point);
        }
        self.report.records += entries.len() as u64;
        for (record, mut entry) in (0..).zip(entries) {
            self.resume.retire(&entry.version);
            match entry.remaining.after(self.downtime) {
                None => self.report.expired += 1,
                Some(remaining) => {
                    entry.remaining = remaining;
                    let hash = self.store.hasher.hash_one(&entry.key);
                    let pending = Pending {
                        hash,
                        entry,
                        block: index,
                        at: head.body_at,
                        record,
                    };
                    match &mut self.all {
                        Some(all) => all.push(pending),
                        None => self.by_shard[self.store.shard_index(hash)].push(pending),
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the end marker's counts against what was read, and takes its resume
    /// point.
    fn end(&mut self, head: &FrameHead, body: &[u8]) -> Result<(), RestoreError> {
        let corrupt = |detail| RestoreError::Corrupt {
            at: head.body_at,
            part: Part::End,
            detail,
        };
        let (records, blocks, resume) = format::decode_end::<S>(body).map_err(corrupt)?;
        if (records, blocks) != (self.report.records, self.report.blocks) {
            return Err(corrupt(format!(
                "it counts {records} records in {blocks} blocks, the snapshot holds {} in {}",
                self.report.records, self.report.blocks
            )));
        }
        if let Some(point) = resume {
            self.resume.retire(&point);
        }
        Ok(())
    }

    /// Loads the records of the block just read, shard by shard.
    fn place_block(&mut self) -> Result<(), RestoreError> {
        for index in 0..self.by_shard.len() {
            if !self.by_shard[index].is_empty() {
                self.place(index)?;
            }
        }
        Ok(())
    }

    /// Loads the records a bounded store kept back, hottest first.
    fn place_all(&mut self) -> Result<(), RestoreError> {
        let Some(mut all) = self.all.take() else {
            return Ok(());
        };
        // Stable: in the snapshot's order among equals.
        all.sort_by_key(|pending| Reverse(pending.entry.heat));
        for pending in all {
            self.by_shard[self.store.shard_index(pending.hash)].push(pending);
        }
        self.place_block()
    }

    /// Loads the records waiting for shard `index`, under one write lock.
    fn place(&mut self, index: usize) -> Result<(), RestoreError> {
        let store = self.store;
        let mut records = store.shards()[index].lock.write();
        let rehash = store.rehash();
        for pending in self.by_shard[index].drain(..) {
            let Entry {
                key,
                value,
                version,
                remaining,
                heat,
            } = pending.entry;
            match records.restore(pending.hash, key, value, version, remaining, heat, &rehash) {
                Placed::Loaded => self.report.loaded += 1,
                Placed::NoRoom => self.report.no_room += 1,
                Placed::Repeated => {
                    return Err(RestoreError::Corrupt {
                        at: pending.at,
                        part: Part::Block(pending.block),
                        detail: format!(
                            "record {} repeats the key of an earlier record",
                            pending.record
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    /// Resumes every shard's versions above everything the snapshot knew of.
    ///
    /// The `verkv_mutant = "snapshot_no_resume"` cfg leaves the shards where a new store
    /// starts, so that the tests can show they catch the versions handed out again.
    fn resume(&mut self) {
        if cfg!(verkv_mutant = "snapshot_no_resume") {
            return;
        }
        let Some(point) = self.resume.resume_point() else {
            return;
        };
        for shard in self.store.shards() {
            shard.lock.write().resume_after(&point);
        }
    }
}
