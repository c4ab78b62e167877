//! The entity-tag, `If-Match` / `If-None-Match` and bare-version parsers on arbitrary
//! input: they must never panic, every version must survive the trip to a tag and back,
//! and everything they accept must display as text that parses back to the same thing.

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use verkv::etag::{parse_version, EntityTag, EtagError, IfMatch, IfNoneMatch};
use verkv::{Counter, UuidV4, VersionScheme};

/// A version becomes a strong tag that parses back to it, matches it in `If-Match`, and
/// is read back from its bare text.
fn version_round_trips<S: VersionScheme>(version: &S::Version) {
    let tag = EntityTag::from_version(version);
    let text = tag.to_string();
    assert_eq!(EntityTag::parse(&text), Ok(tag.clone()), "{text}");
    assert_eq!(tag.version::<S>().as_ref(), Some(version), "{text}");
    assert!(
        IfMatch::parse(&text).unwrap().passes(Some(version)),
        "{text}"
    );
    assert!(
        !IfNoneMatch::parse(&text).unwrap().passes(Some(version)),
        "{text}"
    );
    assert_eq!(
        parse_version::<S>(&version.to_string()).as_ref(),
        Ok(version)
    );
}

/// A tag displays as text that parses back to the same tag; if it names a version, that
/// version round-trips too.
fn tag_round_trips(tag: &EntityTag) {
    assert_eq!(EntityTag::parse(&tag.to_string()).as_ref(), Ok(tag));
    if let Some(version) = tag.version::<Counter>() {
        version_round_trips::<Counter>(&version);
    }
    if let Some(version) = tag.version::<UuidV4>() {
        version_round_trips::<UuidV4>(&version);
    }
}

/// A parsed tag list, written back as a header, parses to the same list.
fn list_round_trips(tags: &[EntityTag], reparse: impl Fn(&str) -> Option<Vec<EntityTag>>) {
    assert!(!tags.is_empty(), "a parsed list has at least one tag");
    tags.iter().for_each(tag_round_trips);
    let header: Vec<String> = tags.iter().map(ToString::to_string).collect();
    assert_eq!(reparse(&header.join(", ")).as_deref(), Some(tags));
}

/// An error points inside the input and describes itself.
fn error_is_sound(error: &EtagError, text: &str) {
    if let EtagError::Malformed { at, .. } = error {
        assert!(*at <= text.len(), "{error} in {text:?}");
    }
    assert!(!error.to_string().is_empty());
}

fn if_match_tags(header: &str) -> Option<Vec<EntityTag>> {
    match IfMatch::parse(header) {
        Ok(IfMatch::Tags(tags)) => Some(tags),
        _ => None,
    }
}

fn if_none_match_tags(header: &str) -> Option<Vec<EntityTag>> {
    match IfNoneMatch::parse(header) {
        Ok(IfNoneMatch::Tags(tags)) => Some(tags),
        _ => None,
    }
}

fn parsers_hold_up(text: &str) {
    match EntityTag::parse(text) {
        Ok(tag) => tag_round_trips(&tag),
        Err(error) => error_is_sound(&error, text),
    }

    let if_match = IfMatch::parse(text);
    let if_none_match = IfNoneMatch::parse(text);
    // Both headers share one syntax.
    assert_eq!(if_match.is_ok(), if_none_match.is_ok(), "{text:?}");
    match if_match {
        Ok(IfMatch::Tags(tags)) => list_round_trips(&tags, if_match_tags),
        Ok(IfMatch::Any) => {}
        Err(error) => error_is_sound(&error, text),
    }
    match if_none_match {
        Ok(IfNoneMatch::Tags(tags)) => list_round_trips(&tags, if_none_match_tags),
        Ok(IfNoneMatch::Any) => {}
        Err(error) => error_is_sound(&error, text),
    }

    bare_version_holds_up::<Counter>(text);
    bare_version_holds_up::<UuidV4>(text);
}

fn bare_version_holds_up<S: VersionScheme>(text: &str) {
    match parse_version::<S>(text) {
        Ok(version) => version_round_trips::<S>(&version),
        Err(error) => assert_eq!(
            error,
            EtagError::NotAVersion {
                text: text.to_owned()
            }
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let counter: u64 = input.arbitrary().unwrap_or_default();
    version_round_trips::<Counter>(&counter);
    let random = uuid::Uuid::from_u128(input.arbitrary().unwrap_or_default());
    version_round_trips::<UuidV4>(&random);
    parsers_hold_up(&String::from_utf8_lossy(input.take_rest()));
});
