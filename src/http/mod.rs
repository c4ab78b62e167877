//! HTTP preconditions for versioned records (feature `http`): entity tags as `ETag`
//! headers, and `If-Match`, `If-None-Match` and `X-Expected-Version` evaluated against a
//! record into the status a handler should answer with.
//!
//! A `PATCH` handler reads the record, asks [`Preconditions::evaluate`] whether to go
//! ahead, then writes with [`Store::update`](crate::Store::update) at the version it
//! evaluated. If somebody wrote in between, the store refuses the write as stale, and
//! [`Preconditions::status_of`] turns that refusal into the same `412` the
//! precondition would have given: the check and the write are one atomic step.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use verkv::http::{Decision, Intent, Preconditions};
//! use verkv::{Counter, Store};
//!
//! let store: Store<&str, String> = Store::new();
//! store.insert("movie", "Heat".to_string()).unwrap();
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("if-match", "\"1\"".parse().unwrap());
//! let preconditions = Preconditions::from_headers::<Counter>(&headers).unwrap();
//!
//! let current = store.get(&"movie");
//! let version = current.as_ref().map(|record| &record.version);
//! match preconditions.evaluate(Intent::Modify, version) {
//!     Decision::Proceed => {
//!         let new = store.update(&"movie", version.unwrap(), "Heat (1995)".to_string());
//!         let status = match new {
//!             Ok(_) => StatusCode::OK,
//!             Err(refused) => preconditions.status_of(&refused.error),
//!         };
//!         assert_eq!(status, StatusCode::OK);
//!     }
//!     refused => panic!("answer {}", refused.status()),
//! }
//! ```
//!
//! Uses `store` (its errors) and `version` (entity tags): the top layer.

mod headers;
mod preconditions;

pub use headers::{etag, EXPECTED_VERSION, RETRY_AFTER_SECONDS};
pub use preconditions::{BadHeader, Decision, Intent, Preconditions};
