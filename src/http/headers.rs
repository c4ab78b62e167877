//! The header names and values this module reads and writes.

use std::fmt::Display;

use http::{HeaderName, HeaderValue};

use crate::version::etag::EntityTag;

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

/// The `ETag` header's value for a version, for a plain [`http::HeaderMap`]:
/// `headers.insert(http::header::ETAG, etag_value(&version))`.
///
/// # Examples
///
/// ```
/// let value = verkv::http::etag_value(&42u64);
/// assert_eq!(value, "\"42\"");
/// ```
pub fn etag_value<Ver: Display>(version: &Ver) -> HeaderValue {
    HeaderValue::try_from(EntityTag::from_version(version).to_string())
        .expect("a strong entity tag of a version is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_etag_headers() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            etag(&id),
            format!("\"{id}\"").parse::<headers::ETag>().unwrap()
        );
        assert_eq!(etag(&7u64), "\"7\"".parse::<headers::ETag>().unwrap());
        assert_eq!(etag_value(&id), format!("\"{id}\""));
    }
}
