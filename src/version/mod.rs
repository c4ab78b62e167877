//! Versions and entity tags: how a store numbers the states of its records, and how those
//! numbers travel over HTTP.
//!
//! A [`VersionScheme`] hands out a new version on every successful write. The store keeps
//! one scheme value per shard (so it needs no synchronisation of its own) and tells it
//! when a record leaves the shard, so the scheme can make sure a key that is removed and
//! created again never repeats a version a client may still hold (the ABA problem).
//! [`etag`] turns versions into strong HTTP entity tags and parses the preconditions
//! that carry them back.
//!
//! The bottom layer with `sync`: it uses nothing else of the crate.

pub mod etag;
mod scheme;

pub use scheme::{Counter, UuidV4, VersionScheme};
