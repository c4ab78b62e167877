//! Warm restart: a snapshot of a store's records, and a store restored from one with its
//! versions (feature `snapshot`).
//!
//! [`Store::snapshot_to`](crate::Store::snapshot_to) writes the records (keys, values,
//! versions, the time each has left to live) to any [`io::Write`](std::io::Write) while
//! the store serves, shard by shard; [`Store::snapshot_to_file`](crate::Store::snapshot_to_file)
//! replaces a file atomically ([`write_atomically`]).
//! [`StoreBuilder::restore`](crate::StoreBuilder::restore) builds a store from one, and
//! resumes its version scheme above every version the old store handed out, so that a
//! client's version from before the restart is never accepted again for another state
//! of its record. The crate documentation's "Warm restart" says what a snapshot of a live
//! store holds.
//!
//! Inside: `write.rs` copies shards out under their read locks and writes blocks;
//! `restore.rs` reads blocks back into the shards of a new store; `format.rs` is the byte
//! layout (a preamble, `preamble.rs`, then frames, each checksummed) and the codecs of its parts, keys
//! and values through serde in postcard; `file.rs` replaces a file atomically;
//! `error.rs` says what went wrong and where.
//!
//! Sits above `store`: the shards export and restore records through `store::shard`,
//! which asks its parts (the expiry timer, the eviction policy) for what they keep per
//! record.

mod error;
mod file;
mod format;
mod preamble;
mod restore;
mod write;

pub use error::{Part, RestoreError, SnapshotError};
pub use file::write_atomically;
pub use preamble::FORMAT_VERSION;
pub use restore::Restored;
pub use write::Written;
