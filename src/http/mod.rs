//! HTTP preconditions for versioned records (feature `http`): entity tags as `ETag`
//! headers, and `If-Match`, `If-None-Match` and `X-Expected-Version` evaluated against a
//! record into the status a handler should answer with.
//!
//! A `PATCH` handler reads the record, and [`Preconditions::modify`] evaluates the
//! request's preconditions against the version read and, if they hold, writes at that
//! version. If somebody wrote in between, the store refuses the write as stale, and the
//! preconditions are evaluated again against the record as it is now: `If-Match: *`
//! still holds (the write is tried again), a tag the record has moved past is `412`. The
//! check and the write are one atomic step, and a lost race never fails a request that
//! would have passed had it come a moment later.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use verkv::http::Preconditions;
//! use verkv::{Counter, Store};
//!
//! let store: Store<&str, String> = Store::new();
//! store.insert("movie", "Heat".to_string()).unwrap();
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("if-match", "\"1\"".parse().unwrap());
//! let preconditions = Preconditions::from_headers::<Counter>(&headers).unwrap();
//!
//! let written = preconditions.modify(store.version(&"movie"), |version| {
//!     store.update(&"movie", version, "Heat (1995)".to_string())
//! });
//! assert_eq!(written, Ok(2)); // answer 200 with ETag "2" (`verkv::http::etag`)
//!
//! let again = preconditions.modify(store.version(&"movie"), |version| {
//!     store.update(&"movie", version, "Heat!".to_string())
//! });
//! let refused = again.unwrap_err();
//! assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
//! assert!(refused.to_string().starts_with("precondition failed: the record changed"));
//! ```
//!
//! Uses `store` (its errors) and `version` (entity tags): the top layer.

mod headers;
mod preconditions;
mod write;

pub use headers::{etag, etag_value, EXPECTED_VERSION, RETRY_AFTER_SECONDS};
pub use preconditions::{BadHeader, Decision, Intent, Preconditions, Unmet};
pub use write::{Refused, StoreRefusal};
