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

use std::fmt::{self, Display};

use http::{HeaderMap, HeaderName, StatusCode};

use crate::error::Error;
use crate::etag::{self, EntityTag, EtagError, IfMatch, IfNoneMatch};
use crate::version::VersionScheme;

/// The `X-Expected-Version` request header: a bare version, answered with `409 Conflict`
/// when stale (where `If-Match` is answered with `412`).
pub const EXPECTED_VERSION: HeaderName = HeaderName::from_static("x-expected-version");

/// How long a client should wait before retrying a request that timed out queued
/// (`Retry-After`, in seconds).
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The `ETag` header for a version: its strong entity tag.
///
/// # Examples
///
/// ```
/// let tag = verkv::http::etag(&42u64);
/// assert_eq!(tag, "\"42\"".parse::<headers::ETag>().unwrap());
/// ```
pub fn etag<Ver: Display>(version: &Ver) -> headers::ETag {
    EntityTag::from_version(version)
        .to_string()
        .parse()
        .expect("a strong entity tag of a version is a valid ETag header")
}

/// What a request does to the record, which decides how its preconditions are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// `GET` or `HEAD`: a matching `If-None-Match` means `304 Not Modified`.
    Read,
    /// A create-only write (`POST`/`PUT` of a new record): `If-None-Match: *` is the
    /// usual precondition.
    Create,
    /// A write to an existing record (`PATCH`, `PUT`, `DELETE`): `If-Match` or
    /// `X-Expected-Version` is required.
    Modify,
}

/// What to do with a request after evaluating its preconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<Ver> {
    /// Go ahead. A write should be made conditional on the version that was evaluated.
    Proceed,
    /// `304 Not Modified`: the client's cached copy (`If-None-Match`) is current.
    NotModified,
    /// `404 Not Found`: there is no record (even if a precondition names one).
    NotFound,
    /// `409 Conflict`: a create found the record already there, or `X-Expected-Version`
    /// is stale.
    Conflict {
        /// The version the client expected, if it sent one.
        expected: Option<Ver>,
        /// The record's version now.
        current: Ver,
    },
    /// `412 Precondition Failed`: `If-Match` or `If-None-Match` does not hold.
    PreconditionFailed,
    /// `428 Precondition Required`: a write came without `If-Match` or
    /// `X-Expected-Version`.
    PreconditionRequired,
}

impl<Ver: Display> Decision<Ver> {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            Decision::Proceed => StatusCode::OK,
            Decision::NotModified => StatusCode::NOT_MODIFIED,
            Decision::NotFound => StatusCode::NOT_FOUND,
            Decision::Conflict { .. } => StatusCode::CONFLICT,
            Decision::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Decision::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        }
    }

    /// A short explanation for the response body, saying how to resubmit where that helps.
    pub fn message(&self) -> String {
        match self {
            Decision::Proceed => "ok".to_owned(),
            Decision::NotModified => "not modified".to_owned(),
            Decision::NotFound => "record not found".to_owned(),
            Decision::Conflict { expected: Some(expected), current } => {
                format!("stale version: expected {expected}, current {current}; fetch the record again")
            }
            Decision::Conflict { expected: None, current } => {
                format!("record already exists at version {current}")
            }
            Decision::PreconditionFailed => {
                "precondition failed: the record changed; fetch it again for its current ETag".to_owned()
            }
            Decision::PreconditionRequired => {
                "precondition required: resend with If-Match set to the ETag from a GET of the record \
                 (or X-Expected-Version set to its version)"
                    .to_owned()
            }
        }
    }
}

/// A precondition header that could not be read: answer `400 Bad Request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    header: &'static str,
    error: EtagError,
}

impl BadHeader {
    /// The header's name.
    pub fn header(&self) -> &'static str {
        self.header
    }

    /// What is wrong with it.
    pub fn error(&self) -> &EtagError {
        &self.error
    }
}

impl Display for BadHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {} header: {}", self.header, self.error)
    }
}

impl std::error::Error for BadHeader {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The preconditions of one request: `If-Match`, `If-None-Match`, `X-Expected-Version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preconditions<Ver> {
    if_match: Option<IfMatch>,
    if_none_match: Option<IfNoneMatch>,
    expected_version: Option<Ver>,
}

impl<Ver> Default for Preconditions<Ver> {
    fn default() -> Self {
        Preconditions {
            if_match: None,
            if_none_match: None,
            expected_version: None,
        }
    }
}

/// The `header` of a request, all its lines joined into one list (RFC 9110 §5.3) and
/// read with `parse`; `None` if absent.
fn parsed<T>(
    headers: &HeaderMap,
    header: &'static str,
    parse: impl Fn(&str) -> Result<T, EtagError>,
) -> Result<Option<T>, BadHeader> {
    let bad = |error| BadHeader { header, error };
    let mut joined: Option<String> = None;
    for value in headers.get_all(header) {
        let text = value.to_str().map_err(|_| {
            bad(EtagError::Malformed {
                at: 0,
                expected: "visible ASCII characters",
            })
        })?;
        match &mut joined {
            Some(list) => {
                list.push_str(", ");
                list.push_str(text);
            }
            None => joined = Some(text.to_owned()),
        }
    }
    joined.map(|value| parse(&value).map_err(bad)).transpose()
}

impl<Ver: Clone + Eq + Display> Preconditions<Ver> {
    /// Reads the precondition headers of a request whose store uses version scheme `S`.
    ///
    /// # Errors
    ///
    /// [`BadHeader`] for a malformed `If-Match` / `If-None-Match` (an unquoted `42`, a
    /// missing quote) or an `X-Expected-Version` that is not a version.
    pub fn from_headers<S: VersionScheme<Version = Ver>>(
        headers: &HeaderMap,
    ) -> Result<Self, BadHeader> {
        Ok(Preconditions {
            if_match: parsed(headers, "If-Match", IfMatch::parse)?,
            if_none_match: parsed(headers, "If-None-Match", IfNoneMatch::parse)?,
            expected_version: parsed(headers, "X-Expected-Version", etag::parse_version::<S>)?,
        })
    }

    /// Decides what to do with a request of `intent` on a record at version `current`
    /// (`None`: no record), in the order of RFC 9110 §13.2.2: `If-Match` (and
    /// `X-Expected-Version`), then `If-None-Match`.
    ///
    /// Departures from the RFC, chosen for APIs over records: a read or a modification
    /// of a missing record is `404` whatever its preconditions (the RFC would give `412`
    /// for `If-Match`); a modification needs `If-Match` or `X-Expected-Version` (`428`
    /// without); a create of an existing record without `If-None-Match: *` is `409`.
    pub fn evaluate(&self, intent: Intent, current: Option<&Ver>) -> Decision<Ver> {
        let Some(current) = current else {
            return match (intent, &self.if_match) {
                (Intent::Create, None) => Decision::Proceed,
                (Intent::Create, Some(_)) => Decision::PreconditionFailed,
                (Intent::Read | Intent::Modify, _) => Decision::NotFound,
            };
        };
        if let Some(if_match) = &self.if_match {
            if !if_match.passes(Some(current)) {
                return Decision::PreconditionFailed;
            }
        }
        if let Some(expected) = &self.expected_version {
            if expected != current {
                return Decision::Conflict {
                    expected: Some(expected.clone()),
                    current: current.clone(),
                };
            }
        }
        if let Some(if_none_match) = &self.if_none_match {
            if !if_none_match.passes(Some(current)) {
                return match intent {
                    Intent::Read => Decision::NotModified,
                    Intent::Create | Intent::Modify => Decision::PreconditionFailed,
                };
            }
        }
        match intent {
            Intent::Read => Decision::Proceed,
            Intent::Create => Decision::Conflict {
                expected: None,
                current: current.clone(),
            },
            Intent::Modify if self.if_match.is_none() && self.expected_version.is_none() => {
                Decision::PreconditionRequired
            }
            Intent::Modify => Decision::Proceed,
        }
    }

    /// The status for a store refusal of the write that followed a `Proceed`: a write
    /// that lost a race after its preconditions passed is answered as if they had failed.
    ///
    /// `Stale` is `412` after `If-Match` and `409` after `X-Expected-Version`; `Exists`
    /// is `412` after `If-None-Match` and `409` otherwise; `NotFound` is `404`; a timeout
    /// or cancellation is `503 Service Unavailable` (send `Retry-After`, see
    /// [`RETRY_AFTER_SECONDS`]): nothing was written, the request can be repeated. A record
    /// too heavy for a bounded store ([`Error::TooHeavy`]) is `413 Content Too Large`.
    pub fn status_of(&self, error: &Error<Ver>) -> StatusCode {
        match error {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Stale { .. } if self.if_match.is_none() && self.expected_version.is_some() => {
                StatusCode::CONFLICT
            }
            Error::Stale { .. } => StatusCode::PRECONDITION_FAILED,
            Error::Exists { .. } if self.if_none_match.is_some() => StatusCode::PRECONDITION_FAILED,
            Error::Exists { .. } => StatusCode::CONFLICT,
            Error::TimedOut(_) | Error::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            Error::TooHeavy { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counter;

    fn preconditions(pairs: &[(&'static str, &str)]) -> Result<Preconditions<u64>, BadHeader> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        Preconditions::from_headers::<Counter>(&headers)
    }

    fn decide(pairs: &[(&'static str, &str)], intent: Intent, current: Option<u64>) -> StatusCode {
        preconditions(pairs)
            .unwrap()
            .evaluate(intent, current.as_ref())
            .status()
    }

    #[test]
    fn if_match_lists_star_and_weak_tags() {
        let modify = |value, current| decide(&[("if-match", value)], Intent::Modify, current);
        assert_eq!(modify("\"3\"", Some(3)), StatusCode::OK);
        assert_eq!(modify("\"3\"", Some(4)), StatusCode::PRECONDITION_FAILED);
        assert_eq!(modify("\"1\", \"4\"", Some(4)), StatusCode::OK);
        assert_eq!(modify("*", Some(9)), StatusCode::OK);
        assert_eq!(
            modify("W/\"4\"", Some(4)),
            StatusCode::PRECONDITION_FAILED,
            "weak never matches"
        );
        assert_eq!(modify("\"4\"", None), StatusCode::NOT_FOUND);
        assert_eq!(modify("*", None), StatusCode::NOT_FOUND);
    }

    #[test]
    fn multiple_header_lines_form_one_list() {
        assert_eq!(
            decide(
                &[("if-match", "\"1\""), ("if-match", "\"2\"")],
                Intent::Modify,
                Some(2)
            ),
            StatusCode::OK
        );
    }

    #[test]
    fn writes_require_a_precondition() {
        assert_eq!(
            decide(&[], Intent::Modify, Some(1)),
            StatusCode::PRECONDITION_REQUIRED
        );
        assert_eq!(decide(&[], Intent::Modify, None), StatusCode::NOT_FOUND);
        assert_eq!(decide(&[], Intent::Read, Some(1)), StatusCode::OK);
        assert!(Decision::<u64>::PreconditionRequired
            .message()
            .contains("If-Match"));
    }

    #[test]
    fn expected_version_conflicts_with_409() {
        let decision = preconditions(&[("x-expected-version", "3")])
            .unwrap()
            .evaluate(Intent::Modify, Some(&5));
        assert_eq!(
            decision,
            Decision::Conflict {
                expected: Some(3),
                current: 5
            }
        );
        assert_eq!(decision.status(), StatusCode::CONFLICT);
        assert_eq!(
            decision.message(),
            "stale version: expected 3, current 5; fetch the record again"
        );
        assert_eq!(
            decide(&[("x-expected-version", "5")], Intent::Modify, Some(5)),
            StatusCode::OK
        );
    }

    #[test]
    fn if_none_match_star_is_create_only() {
        let create =
            |pairs: &[(&'static str, &str)], current| decide(pairs, Intent::Create, current);
        assert_eq!(create(&[("if-none-match", "*")], None), StatusCode::OK);
        assert_eq!(
            create(&[("if-none-match", "*")], Some(1)),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(create(&[], Some(1)), StatusCode::CONFLICT);
        assert_eq!(create(&[], None), StatusCode::OK);
        assert_eq!(
            create(&[("if-match", "*")], None),
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn if_none_match_on_reads_is_not_modified() {
        let read = |value, current| decide(&[("if-none-match", value)], Intent::Read, current);
        assert_eq!(read("\"2\"", Some(2)), StatusCode::NOT_MODIFIED);
        assert_eq!(
            read("W/\"2\"", Some(2)),
            StatusCode::NOT_MODIFIED,
            "weak comparison"
        );
        assert_eq!(read("\"2\"", Some(3)), StatusCode::OK);
        assert_eq!(read("\"2\"", None), StatusCode::NOT_FOUND);
    }

    #[test]
    fn if_match_is_evaluated_before_if_none_match() {
        // §13.2.2: a failing If-Match decides, whatever If-None-Match says.
        let pairs = [("if-match", "\"1\""), ("if-none-match", "\"2\"")];
        assert_eq!(
            decide(&pairs, Intent::Read, Some(2)),
            StatusCode::PRECONDITION_FAILED
        );
        let pairs = [("if-match", "\"2\""), ("if-none-match", "\"2\"")];
        assert_eq!(
            decide(&pairs, Intent::Read, Some(2)),
            StatusCode::NOT_MODIFIED
        );
    }

    #[test]
    fn malformed_headers_are_bad_requests() {
        let err = preconditions(&[("if-match", "42")]).unwrap_err();
        assert_eq!(err.header(), "If-Match");
        assert!(err
            .to_string()
            .starts_with("bad If-Match header: malformed entity tag at byte 0"));
        assert_eq!(
            preconditions(&[("if-none-match", "\"1")])
                .unwrap_err()
                .header(),
            "If-None-Match"
        );
        let err = preconditions(&[("x-expected-version", "\"3\"")]).unwrap_err();
        assert_eq!(err.header(), "X-Expected-Version");
        let mut headers = HeaderMap::new();
        headers.insert(
            "if-match",
            http::HeaderValue::from_bytes(b"\"\xff\"").unwrap(),
        );
        assert!(Preconditions::<u64>::from_headers::<Counter>(&headers).is_err());
    }

    #[test]
    fn store_refusals_map_to_statuses() {
        let if_match = preconditions(&[("if-match", "\"1\"")]).unwrap();
        let expected = preconditions(&[("x-expected-version", "1")]).unwrap();
        let create_only = preconditions(&[("if-none-match", "*")]).unwrap();
        let stale = Error::Stale {
            expected: 1,
            current: 2,
        };
        assert_eq!(if_match.status_of(&stale), StatusCode::PRECONDITION_FAILED);
        assert_eq!(expected.status_of(&stale), StatusCode::CONFLICT);
        assert_eq!(
            create_only.status_of(&Error::Exists { current: 1 }),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            Preconditions::default().status_of(&Error::Exists { current: 1 }),
            StatusCode::CONFLICT
        );
        assert_eq!(if_match.status_of(&Error::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            if_match.status_of(&Error::Cancelled),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn versions_become_etag_headers() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            etag(&id),
            format!("\"{id}\"").parse::<headers::ETag>().unwrap()
        );
        assert_eq!(etag(&7u64), "\"7\"".parse::<headers::ETag>().unwrap());
    }
}
