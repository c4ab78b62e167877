//! What the integration tests share. Each test binary includes the whole folder
//! (`mod support;`) and uses the parts it needs, and the parts name each other by their
//! one path (`super::ledger`), whatever a test file calls them.
//!
//! - `ledger`: which versions a key has had, and what a refusal must name.
//! - `model`: the in-memory store against a sequential model (proptest sequences).
//! - `conformance`: the same suite over any backend, through either trait.
//! - `linearizability`: the per-key linearizability checker; `stress` runs concurrent
//!   histories for it.
//! - `serializability`: the strict-serializability checker for multi-key histories, and
//!   the random transactions its tests commit.
//! - `pg`: how the PostgreSQL tests find a server; `cluster`: a throwaway cluster of a
//!   test's own.
//! - `awaited`: a runtime, a plain async client, polling a future a bounded number of
//!   times, and waiting for the server to settle what a dropped one left running.

// Each binary uses a part of the folder.
#![allow(dead_code)]

pub(crate) mod awaited;
pub(crate) mod cluster;
pub(crate) mod conformance;
pub(crate) mod ledger;
pub(crate) mod linearizability;
pub(crate) mod model;
pub(crate) mod pg;
pub(crate) mod serializability;
pub(crate) mod stress;
