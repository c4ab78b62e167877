//! A request's preconditions (`If-Match`, `If-None-Match`, `X-Expected-Version`), read
//! from its headers and evaluated against a record (RFC 9110 §13.2) into a decision.

use std::fmt::{self, Display};

use http::{HeaderMap, StatusCode};

use crate::version::etag::{self, EntityTag, EtagError, IfMatch, IfNoneMatch};
use crate::version::VersionScheme;

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
    /// `412 Precondition Failed`: `If-Match` or `If-None-Match` does not hold; the
    /// [`Unmet`] says which, and why.
    PreconditionFailed(Unmet<Ver>),
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
            Decision::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
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
            Decision::PreconditionFailed(unmet) => unmet.to_string(),
            Decision::PreconditionRequired => {
                "precondition required: resend with If-Match set to the ETag from a GET of the record \
                 (or X-Expected-Version set to its version)"
                    .to_owned()
            }
        }
    }
}

/// Which precondition failed, and against what: each cause of a `412` has its own message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmet<Ver> {
    /// `If-Match` lists tags and the record's current one is not among them: the record
    /// changed since the client read it.
    Changed {
        /// The record's version now.
        current: Ver,
    },
    /// `If-Match` names the record's current version only with a weak tag (`W/"3"`):
    /// `If-Match` compares strongly (RFC 9110 §13.1.1), so a weak tag never matches.
    Weak {
        /// The record's version now.
        current: Ver,
    },
    /// `If-Match` was sent for a record that does not exist (a create).
    Missing,
    /// `If-None-Match: *` on a write, and the record exists.
    Exists {
        /// The record's version.
        current: Ver,
    },
    /// `If-None-Match` lists the record's current tag, on a write.
    Listed {
        /// The record's version.
        current: Ver,
    },
}

impl<Ver: Display> Display for Unmet<Ver> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("precondition failed: ")?;
        match self {
            Unmet::Changed { current } => write!(
                f,
                "the record changed since the ETag you sent (it is now {}); fetch it again and resubmit",
                EntityTag::from_version(current)
            ),
            Unmet::Weak { current } => write!(
                f,
                "weak entity tags never match If-Match, which compares strongly; \
                 resend with the strong ETag {} (without W/)",
                EntityTag::from_version(current)
            ),
            Unmet::Missing => f.write_str("If-Match names a record that does not exist"),
            Unmet::Exists { current } => write!(
                f,
                "the record already exists (at {}) and If-None-Match is *",
                EntityTag::from_version(current)
            ),
            Unmet::Listed { current } => write!(
                f,
                "the record is at {}, which If-None-Match lists",
                EntityTag::from_version(current)
            ),
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
        // Not `to_str`, which refuses the obs-text bytes (0x80-0xFF) that RFC 9110 allows
        // inside an entity tag: the parsers read UTF-8 text, as `IfMatch::parse` does.
        let offset = joined.as_ref().map_or(0, |list| list.len() + 2);
        let text = std::str::from_utf8(value.as_bytes()).map_err(|invalid| {
            bad(EtagError::Malformed {
                at: offset + invalid.valid_up_to(),
                expected: "UTF-8 text",
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

/// Whether `if_match` lists `current`'s tag as a weak one (`W/"3"` for version 3): the
/// client has the right version but sent it in a form `If-Match` never accepts.
fn names_weakly<Ver: Display>(if_match: &IfMatch, current: &Ver) -> bool {
    let IfMatch::Tags(tags) = if_match else {
        return false;
    };
    let current = EntityTag::from_version(current);
    tags.iter()
        .any(|tag| tag.is_weak() && tag.weak_eq(&current))
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
                (Intent::Create, Some(_)) => Decision::PreconditionFailed(Unmet::Missing),
                (Intent::Read | Intent::Modify, _) => Decision::NotFound,
            };
        };
        if let Some(if_match) = &self.if_match {
            if !if_match.passes(Some(current)) {
                let current = current.clone();
                return Decision::PreconditionFailed(if names_weakly(if_match, &current) {
                    Unmet::Weak { current }
                } else {
                    Unmet::Changed { current }
                });
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
                let current = current.clone();
                return match (intent, if_none_match) {
                    (Intent::Read, _) => Decision::NotModified,
                    (_, IfNoneMatch::Any) => {
                        Decision::PreconditionFailed(Unmet::Exists { current })
                    }
                    (_, IfNoneMatch::Tags(_)) => {
                        Decision::PreconditionFailed(Unmet::Listed { current })
                    }
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
        assert_eq!(
            modify("\"1\", W/\"4\"", Some(4)),
            StatusCode::PRECONDITION_FAILED,
            "weak never matches, in a list either"
        );
        assert_eq!(modify("\"4\"", None), StatusCode::NOT_FOUND);
        assert_eq!(modify("*", None), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_weak_tag_for_the_current_version_is_told_apart_from_a_change() {
        let evaluate = |value: &str| {
            preconditions(&[("if-match", value)])
                .unwrap()
                .evaluate(Intent::Modify, Some(&3u64))
        };
        let weak = evaluate("W/\"3\"");
        assert_eq!(
            weak,
            Decision::PreconditionFailed(Unmet::Weak { current: 3 })
        );
        assert_eq!(
            weak.message(),
            "precondition failed: weak entity tags never match If-Match, which compares \
             strongly; resend with the strong ETag \"3\" (without W/)"
        );
        assert_eq!(
            evaluate("W/\"2\""),
            Decision::PreconditionFailed(Unmet::Changed { current: 3 }),
            "a weak tag of another version: the record changed"
        );
        assert!(evaluate("\"2\"")
            .message()
            .contains("the record changed since the ETag you sent"));
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
    fn header_values_parse_as_the_text_parsers_do() {
        for text in [
            "\"café\"",
            "\"1\", \"é\"",
            "W/\"ü\"",
            "*",
            "\"1\"",
            "café",
            "\"a\" \"b\"",
            "\"1\", ,\"ü",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                "if-match",
                http::HeaderValue::from_bytes(text.as_bytes()).unwrap(),
            );
            let through_headers = Preconditions::<u64>::from_headers::<Counter>(&headers)
                .map(|p| p.if_match)
                .map_err(|bad| bad.error().clone());
            assert_eq!(through_headers, IfMatch::parse(text).map(Some), "{text}");
        }
    }

    #[test]
    fn header_bytes_that_are_not_utf8_are_refused_where_they_start() {
        let mut headers = HeaderMap::new();
        headers.append("if-match", "\"1\"".parse().unwrap());
        headers.append(
            "if-match",
            http::HeaderValue::from_bytes(b"\"caf\xe9\"").unwrap(),
        );
        let bad = Preconditions::<u64>::from_headers::<Counter>(&headers).unwrap_err();
        // The two lines are read as one list, `"1", "caf\xe9"`: the bad byte is the 9th.
        assert_eq!(
            bad.error(),
            &EtagError::Malformed {
                at: 9,
                expected: "UTF-8 text"
            }
        );
    }
}
