//! HTTP entity tags (RFC 9110 §8.8.3) for versions, and the `If-Match` / `If-None-Match`
//! preconditions (§13.1.1, §13.1.2) read from request headers.
//!
//! A version becomes a *strong* tag whose text is the version's `Display`: `"42"` for a
//! [`Counter`](crate::Counter), `"67e55044-10b1-426f-9247-bb680e5fe0c8"` for a
//! [`UuidV4`](crate::UuidV4). Weak tags (`W/"…"`) can be parsed but, as the RFC requires
//! for `If-Match`, never match there. Bare versions (an `X-Expected-Version: 42` header)
//! are read by the separate [`parse_version`], never mistaken for a tag.

use std::fmt::{self, Display};
use std::str::FromStr;

use crate::version::VersionScheme;

/// An entity tag: an opaque string in double quotes, strong or weak (`W/` prefix).
///
/// # Examples
///
/// ```
/// use verkv::etag::EntityTag;
///
/// let tag = EntityTag::from_version(&42u64);
/// assert_eq!(tag.to_string(), "\"42\"");
/// assert_eq!(tag.version::<verkv::Counter>(), Some(42));
///
/// let weak: EntityTag = "W/\"42\"".parse().unwrap();
/// assert!(weak.is_weak());
/// assert_eq!(weak.version::<verkv::Counter>(), None); // weak tags name no exact version
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    weak: bool,
    opaque: String,
}

impl EntityTag {
    /// The strong tag of a version: its `Display` text in quotes.
    ///
    /// # Panics
    ///
    /// If the version's text contains a character an entity tag cannot hold (a double
    /// quote, a space, a control character). The built-in schemes never produce one; a
    /// custom [`VersionScheme`] must not either.
    pub fn from_version<Ver: Display>(version: &Ver) -> Self {
        let opaque = version.to_string();
        assert!(
            opaque.bytes().all(is_etag_char),
            "verkv: version {opaque:?} cannot be written as an entity tag"
        );
        EntityTag {
            weak: false,
            opaque,
        }
    }

    /// Parses one entity tag, such as `"42"` or `W/"42"`.
    ///
    /// # Errors
    ///
    /// [`EtagError`] if `text` is not exactly one well-formed entity tag (an unquoted
    /// `42`, a missing closing quote, a forbidden character, trailing text).
    pub fn parse(text: &str) -> Result<Self, EtagError> {
        let mut cursor = Cursor { text, at: 0 };
        cursor.skip_whitespace();
        let tag = cursor.entity_tag()?;
        cursor.skip_whitespace();
        if cursor.at != text.len() {
            return Err(cursor.error("end of input after the entity tag"));
        }
        Ok(tag)
    }

    /// Whether the tag is weak (`W/"…"`).
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The text between the quotes.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// The version this tag names, if it is strong and its text is a version of scheme `S`.
    pub fn version<S: VersionScheme>(&self) -> Option<S::Version> {
        if self.weak {
            None
        } else {
            S::parse(&self.opaque)
        }
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong and the same text.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the same text, weak or not.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }
}

impl Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

impl FromStr for EntityTag {
    type Err = EtagError;

    fn from_str(text: &str) -> Result<Self, EtagError> {
        EntityTag::parse(text)
    }
}

/// An `If-Match` header: `*` or a list of entity tags (RFC 9110 §13.1.1).
///
/// # Examples
///
/// ```
/// use verkv::etag::IfMatch;
///
/// let header = IfMatch::parse(r#""41", "42""#).unwrap();
/// assert!(header.passes(Some(&42u64)));
/// assert!(!header.passes(Some(&43u64)));
/// assert!(!header.passes::<u64>(None)); // no record: nothing matches
///
/// assert!(IfMatch::parse("*").unwrap().passes(Some(&7u64)));
/// assert!(!IfMatch::parse(r#"W/"42""#).unwrap().passes(Some(&42u64))); // weak never matches
/// assert!(IfMatch::parse("42").is_err()); // unquoted
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current record.
    Any,
    /// A list of entity tags, at least one.
    Tags(Vec<EntityTag>),
}

impl IfMatch {
    /// Parses the header's value. Empty list elements (`"1", , "2"`) are allowed, as the
    /// RFC's list syntax requires; an empty header is not.
    ///
    /// # Errors
    ///
    /// [`EtagError`] for anything that is not `*` or a comma-separated list of entity tags.
    pub fn parse(header: &str) -> Result<Self, EtagError> {
        Ok(match parse_condition(header)? {
            None => IfMatch::Any,
            Some(tags) => IfMatch::Tags(tags),
        })
    }

    /// Whether the condition holds for a record at version `current` (`None`: no record).
    /// `*` holds for any record; a list holds if one of its tags is strongly equal to the
    /// current version's tag. Weak tags never match.
    pub fn passes<Ver: Display>(&self, current: Option<&Ver>) -> bool {
        let Some(current) = current else {
            return false;
        };
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => {
                let current = EntityTag::from_version(current);
                tags.iter().any(|tag| tag.strong_eq(&current))
            }
        }
    }
}

impl FromStr for IfMatch {
    type Err = EtagError;

    fn from_str(header: &str) -> Result<Self, EtagError> {
        IfMatch::parse(header)
    }
}

/// An `If-None-Match` header: `*` or a list of entity tags (RFC 9110 §13.1.2).
///
/// # Examples
///
/// ```
/// use verkv::etag::IfNoneMatch;
///
/// // Create-only: `*` holds only where there is no record yet.
/// let create_only = IfNoneMatch::parse("*").unwrap();
/// assert!(create_only.passes::<u64>(None));
/// assert!(!create_only.passes(Some(&1u64)));
///
/// // A list uses weak comparison: `W/"3"` names version 3 here.
/// let cached = IfNoneMatch::parse(r#"W/"3""#).unwrap();
/// assert!(!cached.passes(Some(&3u64)));
/// assert!(cached.passes(Some(&4u64)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: holds only if there is no current record.
    Any,
    /// A list of entity tags, at least one.
    Tags(Vec<EntityTag>),
}

impl IfNoneMatch {
    /// Parses the header's value, with the same syntax as [`IfMatch::parse`].
    ///
    /// # Errors
    ///
    /// As [`IfMatch::parse`].
    pub fn parse(header: &str) -> Result<Self, EtagError> {
        Ok(match parse_condition(header)? {
            None => IfNoneMatch::Any,
            Some(tags) => IfNoneMatch::Tags(tags),
        })
    }

    /// Whether the condition holds for a record at version `current` (`None`: no record).
    /// `*` holds only if there is no record; a list holds unless one of its tags is weakly
    /// equal to the current version's tag.
    pub fn passes<Ver: Display>(&self, current: Option<&Ver>) -> bool {
        let Some(current) = current else {
            return true;
        };
        match self {
            IfNoneMatch::Any => false,
            IfNoneMatch::Tags(tags) => {
                let current = EntityTag::from_version(current);
                !tags.iter().any(|tag| tag.weak_eq(&current))
            }
        }
    }
}

impl FromStr for IfNoneMatch {
    type Err = EtagError;

    fn from_str(header: &str) -> Result<Self, EtagError> {
        IfNoneMatch::parse(header)
    }
}

/// Reads a bare version, as sent in an `X-Expected-Version: 42` header: the version's
/// text with optional surrounding spaces, no quotes.
///
/// # Errors
///
/// [`EtagError`] if the text is not a version of scheme `S` (a quoted `"42"` included:
/// that is an entity tag, read with [`EntityTag::parse`]).
///
/// # Examples
///
/// ```
/// use verkv::{etag::parse_version, Counter};
///
/// assert_eq!(parse_version::<Counter>(" 42 ").unwrap(), 42);
/// let err = parse_version::<Counter>("\"42\"").unwrap_err();
/// assert_eq!(err.to_string(), "malformed version: \"\\\"42\\\"\" is not a version");
/// ```
pub fn parse_version<S: VersionScheme>(header: &str) -> Result<S::Version, EtagError> {
    S::parse(header.trim_matches(is_whitespace)).ok_or_else(|| EtagError::NotAVersion {
        text: header.to_owned(),
    })
}

/// A header value that is not a well-formed entity tag, tag list or version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EtagError {
    /// The value is empty (or only whitespace and commas).
    Empty,
    /// The value breaks the entity-tag syntax at byte `at`.
    Malformed {
        /// Byte offset of the first offending character (or the end of input).
        at: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A bare version was expected and `text` is not one.
    NotAVersion {
        /// The text as given.
        text: String,
    },
}

impl Display for EtagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtagError::Empty => f.write_str("malformed entity tag: empty header value"),
            EtagError::Malformed { at, expected } => {
                write!(f, "malformed entity tag at byte {at}: expected {expected}")
            }
            EtagError::NotAVersion { text } => {
                write!(f, "malformed version: {text:?} is not a version")
            }
        }
    }
}

impl std::error::Error for EtagError {}

/// `*` (as `None`) or a non-empty list of entity tags.
fn parse_condition(header: &str) -> Result<Option<Vec<EntityTag>>, EtagError> {
    if header.trim_matches(is_whitespace) == "*" {
        return Ok(None);
    }
    let mut cursor = Cursor {
        text: header,
        at: 0,
    };
    let mut tags = Vec::new();
    loop {
        cursor.skip_empty_elements();
        if cursor.at_end() {
            break;
        }
        if cursor.peek() == Some(b'*') {
            return Err(cursor.error("an entity tag (`*` must stand alone)"));
        }
        tags.push(cursor.entity_tag()?);
        cursor.skip_whitespace();
        if cursor.at_end() {
            break;
        }
        if cursor.peek() != Some(b',') {
            return Err(cursor.error("`,` between entity tags"));
        }
    }
    if tags.is_empty() {
        return Err(EtagError::Empty);
    }
    Ok(Some(tags))
}

/// `etagc` of RFC 9110: any visible character but `"`, and obs-text.
fn is_etag_char(byte: u8) -> bool {
    byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80
}

/// Optional whitespace (`OWS`): space and horizontal tab.
fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t'
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn error(&self, expected: &'static str) -> EtagError {
        EtagError::Malformed {
            at: self.at,
            expected,
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| is_whitespace(char::from(b))) {
            self.at += 1;
        }
    }

    fn skip_empty_elements(&mut self) {
        while self
            .peek()
            .is_some_and(|b| b == b',' || is_whitespace(char::from(b)))
        {
            self.at += 1;
        }
    }

    /// `[ "W/" ] DQUOTE *etagc DQUOTE`
    fn entity_tag(&mut self) -> Result<EntityTag, EtagError> {
        let weak = self.text[self.at..].starts_with("W/");
        if weak {
            self.at += 2;
        }
        if self.peek() != Some(b'"') {
            return Err(
                self.error("an opening `\"` (an entity tag is quoted: `\"42\"` or `W/\"42\"`)")
            );
        }
        self.at += 1;
        let start = self.at;
        while self.peek().is_some_and(is_etag_char) {
            self.at += 1;
        }
        if self.peek() != Some(b'"') {
            return Err(self.error("a closing `\"`"));
        }
        let opaque = self.text[start..self.at].to_owned();
        self.at += 1;
        Ok(EntityTag { weak, opaque })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Counter, UuidV4};

    /// Every way of reading a version from a client agrees on which spellings name it:
    /// the scheme's parser, an entity tag's version, a bare expected version, and an
    /// `If-Match` list.
    fn spelling_is_accepted_everywhere_or_nowhere<S: VersionScheme>(
        version: &S::Version,
        spelling: &str,
    ) -> bool
    where
        S::Version: PartialEq + Display + fmt::Debug,
    {
        let parsed = S::parse(spelling);
        let tag = EntityTag::parse(&format!("\"{spelling}\"")).unwrap();
        let bare = parse_version::<S>(spelling).ok();
        let matches = IfMatch::Tags(vec![tag.clone()]).passes(Some(version));
        let named = parsed.as_ref() == Some(version);
        assert_eq!(tag.version::<S>().as_ref(), parsed.as_ref(), "{spelling}");
        assert_eq!(bare.as_ref(), parsed.as_ref(), "{spelling}");
        assert_eq!(matches, named, "{spelling}");
        named
    }

    #[test]
    fn a_version_has_one_spelling_everywhere() {
        let uuid = uuid::Uuid::new_v4();
        let hyphenated = uuid.hyphenated().to_string();
        assert!(spelling_is_accepted_everywhere_or_nowhere::<UuidV4>(
            &uuid,
            &hyphenated
        ));
        for other in [
            uuid.simple().to_string(),
            hyphenated.to_uppercase(),
            uuid.urn().to_string(),
        ] {
            assert!(!spelling_is_accepted_everywhere_or_nowhere::<UuidV4>(
                &uuid, &other
            ));
        }
        assert!(spelling_is_accepted_everywhere_or_nowhere::<Counter>(
            &42, "42"
        ));
        for other in ["042", "+42", "4_2"] {
            assert!(!spelling_is_accepted_everywhere_or_nowhere::<Counter>(
                &42, other
            ));
        }
    }

    fn tags(list: &[&str]) -> IfMatch {
        IfMatch::Tags(list.iter().map(|t| EntityTag::parse(t).unwrap()).collect())
    }

    #[test]
    fn versions_format_as_strong_tags_and_read_back() {
        assert_eq!(EntityTag::from_version(&42u64).to_string(), "\"42\"");
        let id = uuid::Uuid::new_v4();
        let tag = EntityTag::from_version(&id);
        assert_eq!(tag.to_string(), format!("\"{id}\""));
        assert_eq!(tag.version::<UuidV4>(), Some(id));
        assert_eq!(EntityTag::parse(&tag.to_string()).unwrap(), tag);
    }

    #[test]
    fn if_match_accepts_lists_star_and_empty_elements() {
        assert_eq!(IfMatch::parse("*").unwrap(), IfMatch::Any);
        assert_eq!(IfMatch::parse(" * ").unwrap(), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"1\"").unwrap(), tags(&["\"1\""]));
        assert_eq!(
            IfMatch::parse("\"1\",\"2\"").unwrap(),
            tags(&["\"1\"", "\"2\""])
        );
        assert_eq!(
            IfMatch::parse(" \"1\" ,\t, W/\"2\" ,").unwrap(),
            tags(&["\"1\"", "W/\"2\""])
        );
        assert_eq!(IfMatch::parse("\"\"").unwrap(), tags(&["\"\""]));
        // A comma is an etagc: inside quotes it does not split the list.
        assert_eq!(IfMatch::parse("\"a,b\"").unwrap(), tags(&["\"a,b\""]));
    }

    #[test]
    fn if_match_rejects_malformed_values_with_the_position() {
        let cases: &[(&str, EtagError)] = &[
            ("", EtagError::Empty),
            ("  ", EtagError::Empty),
            (" , ,", EtagError::Empty),
            (
                "42",
                EtagError::Malformed {
                    at: 0,
                    expected: "",
                },
            ),
            (
                "\"42",
                EtagError::Malformed {
                    at: 3,
                    expected: "",
                },
            ),
            (
                "\"4 2\"",
                EtagError::Malformed {
                    at: 2,
                    expected: "",
                },
            ),
            (
                "\"1\" \"2\"",
                EtagError::Malformed {
                    at: 4,
                    expected: "",
                },
            ),
            (
                "\"1\", *",
                EtagError::Malformed {
                    at: 5,
                    expected: "",
                },
            ),
            (
                "*, \"1\"",
                EtagError::Malformed {
                    at: 0,
                    expected: "",
                },
            ),
            (
                "w/\"1\"",
                EtagError::Malformed {
                    at: 0,
                    expected: "",
                },
            ),
            (
                "W/ \"1\"",
                EtagError::Malformed {
                    at: 2,
                    expected: "",
                },
            ),
            (
                "\"1\"x",
                EtagError::Malformed {
                    at: 3,
                    expected: "",
                },
            ),
        ];
        for (input, want) in cases {
            let got = IfMatch::parse(input).unwrap_err();
            match (&got, want) {
                (EtagError::Malformed { at, .. }, EtagError::Malformed { at: want_at, .. }) => {
                    assert_eq!(at, want_at, "{input:?}: {got}")
                }
                _ => assert_eq!(&got, want, "{input:?}"),
            }
        }
        assert_eq!(
            IfMatch::parse("42").unwrap_err().to_string(),
            "malformed entity tag at byte 0: expected an opening `\"` (an entity tag is quoted: `\"42\"` or `W/\"42\"`)"
        );
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        let header = IfMatch::parse("W/\"5\", \"6\"").unwrap();
        assert!(!header.passes(Some(&5u64)), "weak tags never match");
        assert!(header.passes(Some(&6u64)));
        assert!(!header.passes(Some(&7u64)));
        assert!(!header.passes::<u64>(None));
        assert!(!IfMatch::Any.passes::<u64>(None));
        assert!(IfMatch::Any.passes(Some(&1u64)));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let header = IfNoneMatch::parse("W/\"5\", \"6\"").unwrap();
        assert!(!header.passes(Some(&5u64)));
        assert!(!header.passes(Some(&6u64)));
        assert!(header.passes(Some(&7u64)));
        assert!(header.passes::<u64>(None));
        assert!(!IfNoneMatch::Any.passes(Some(&1u64)));
        assert!(IfNoneMatch::parse("42").is_err());
    }

    #[test]
    fn single_tags_parse_strictly() {
        assert!(EntityTag::parse(" \"1\" ").is_ok());
        for bad in ["", "1", "\"1\", \"2\"", "*", "W/1", "\"1"] {
            assert!(EntityTag::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            EntityTag::parse("W/\"1\"").unwrap().version::<Counter>(),
            None
        );
        assert_eq!(
            EntityTag::parse("\"x\"").unwrap().version::<Counter>(),
            None
        );
    }

    #[test]
    fn bare_versions_are_read_separately() {
        assert_eq!(parse_version::<Counter>("7"), Ok(7));
        assert_eq!(parse_version::<Counter>("\t7 "), Ok(7));
        for bad in ["", "\"7\"", "W/\"7\"", "seven", "-7", "7 7"] {
            assert_eq!(
                parse_version::<Counter>(bad),
                Err(EtagError::NotAVersion {
                    text: bad.to_owned()
                })
            );
        }
        let id = uuid::Uuid::new_v4();
        assert_eq!(parse_version::<UuidV4>(&id.to_string()), Ok(id));
    }
}
