//! Patches for JSON records (`Store<K, serde_json::Value>`): JSON Merge Patch (RFC 7396)
//! and JSON Patch (RFC 6902). Needs the `json` feature.
//!
//! Both are parsed before they reach the store, so malformed input is refused with
//! [`MalformedPatch`] without touching any record; then [`Store::patch`](crate::Store::patch)
//! applies them under the version check like any other [`Patch`]. A JSON Patch whose
//! operation fails (a `test` that does not match, a path that does not exist, a path
//! through a value that is not a container) is refused with [`JsonPatchError`], naming the
//! operation and its path, and changes nothing.
//!
//! | patch | media type | can fail on the record |
//! |---|---|---|
//! | [`MergePatch`] | `application/merge-patch+json` | no |
//! | [`JsonPatch`] | `application/json-patch+json` | yes: [`JsonPatchError`] |
//!
//! # Examples
//!
//! ```
//! use serde_json::json;
//! use verkv::json::{JsonPatch, MergePatch};
//! use verkv::Store;
//!
//! let store: Store<u32, serde_json::Value> = Store::new();
//! let v1 = store.insert(1, json!({"title": "Alien", "year": 1979, "tags": ["space"]})).unwrap();
//!
//! let merge: MergePatch = r#"{"year": null, "tags": ["horror"]}"#.parse().unwrap();
//! let v2 = store.patch(&1, &v1, merge).unwrap();
//! assert_eq!(store.get(&1).unwrap().value, json!({"title": "Alien", "tags": ["horror"]}));
//!
//! let patch: JsonPatch = r#"[
//!     {"op": "test", "path": "/title", "value": "Alien"},
//!     {"op": "add", "path": "/tags/-", "value": "space"}
//! ]"#.parse().unwrap();
//! store.patch(&1, &v2, patch).unwrap();
//! assert_eq!(store.get(&1).unwrap().value["tags"], json!(["horror", "space"]));
//! ```

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use crate::patch::Patch;

/// An RFC 7396 JSON Merge Patch: objects merge recursively, `null` removes a member,
/// anything else (arrays included) replaces what is there.
///
/// Applying one never fails: every JSON document is a merge patch for every other.
#[derive(Debug, Clone, PartialEq)]
pub struct MergePatch(Value);

impl MergePatch {
    /// The merge patch that `document` describes.
    pub fn new(document: Value) -> Self {
        MergePatch(document)
    }

    /// The patch document.
    pub fn document(&self) -> &Value {
        &self.0
    }
}

impl FromStr for MergePatch {
    type Err = MalformedPatch;

    /// Parses a merge patch from JSON text.
    fn from_str(text: &str) -> Result<Self, MalformedPatch> {
        serde_json::from_str(text)
            .map(MergePatch)
            .map_err(MalformedPatch::of(PatchKind::Merge))
    }
}

impl Patch<Value> for MergePatch {
    type Error = Infallible;

    fn apply(self, draft: &mut Value) -> Result<(), Infallible> {
        json_patch::merge(draft, &self.0);
        Ok(())
    }
}

/// An RFC 6902 JSON Patch: a list of `add`, `remove`, `replace`, `move`, `copy` and
/// `test` operations, applied in order, all or none.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPatch(Vec<PatchOperation>);

impl JsonPatch {
    /// The JSON Patch that `document` (an array of operations) describes.
    ///
    /// # Errors
    ///
    /// [`MalformedPatch`] if `document` is not an array of well-formed operations (an
    /// unknown `op`, a missing member, a `path` that is not a JSON Pointer).
    pub fn from_value(document: Value) -> Result<Self, MalformedPatch> {
        serde_json::from_value(document)
            .map(JsonPatch)
            .map_err(MalformedPatch::of(PatchKind::Json))
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the patch has no operations (it then changes nothing).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for JsonPatch {
    type Err = MalformedPatch;

    /// Parses a JSON Patch from JSON text.
    fn from_str(text: &str) -> Result<Self, MalformedPatch> {
        serde_json::from_str(text)
            .map(JsonPatch)
            .map_err(MalformedPatch::of(PatchKind::Json))
    }
}

impl Patch<Value> for JsonPatch {
    type Error = JsonPatchError;

    fn apply(self, draft: &mut Value) -> Result<(), JsonPatchError> {
        // The draft is thrown away on failure, so the crate's undo log is not needed.
        json_patch::patch_unsafe(draft, &self.0).map_err(|error| {
            let operation = &self.0[error.operation];
            JsonPatchError {
                index: error.operation,
                op: op_name(operation),
                path: operation.path().to_string(),
                failure: JsonPatchFailure::from_kind(&error.kind, operation),
            }
        })
    }
}

/// The `op` member of an operation, as written in the patch.
fn op_name(operation: &PatchOperation) -> &'static str {
    match operation {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// Which kind of patch document failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Merge,
    Json,
}

/// A patch document that could not be parsed; no record was looked at.
///
/// # Examples
///
/// ```
/// use verkv::json::JsonPatch;
///
/// let err = r#"[{"op": "frobnicate", "path": "/a"}]"#.parse::<JsonPatch>().unwrap_err();
/// assert!(err.to_string().starts_with("malformed json patch: unknown variant `frobnicate`"));
/// ```
#[derive(Debug)]
pub struct MalformedPatch {
    kind: PatchKind,
    source: serde_json::Error,
}

impl MalformedPatch {
    /// Wraps the parser's error for a patch of `kind`.
    fn of(kind: PatchKind) -> impl FnOnce(serde_json::Error) -> MalformedPatch {
        move |source| MalformedPatch { kind, source }
    }
}

impl fmt::Display for MalformedPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PatchKind::Merge => "json merge patch",
            PatchKind::Json => "json patch",
        };
        write!(f, "malformed {kind}: {}", self.source)
    }
}

impl std::error::Error for MalformedPatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A JSON Patch operation that failed on the record; the record is unchanged.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use verkv::json::{JsonPatch, JsonPatchFailure};
/// use verkv::{PatchError, Store};
///
/// let store: Store<u32, serde_json::Value> = Store::new();
/// let v1 = store.insert(1, json!({"title": "Alien"})).unwrap();
/// let patch: JsonPatch = r#"[{"op": "remove", "path": "/year"}]"#.parse().unwrap();
/// let PatchError::Patch(err) = store.patch(&1, &v1, patch).unwrap_err() else { panic!() };
/// assert_eq!((err.index(), err.op(), err.path()), (0, "remove", "/year"));
/// assert_eq!(err.failure(), &JsonPatchFailure::InvalidPath);
/// assert_eq!(
///     err.to_string(),
///     "json patch operation 0 (remove /year) failed: \
///      the path does not exist or cannot hold a value"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPatchError {
    index: usize,
    op: &'static str,
    path: String,
    failure: JsonPatchFailure,
}

impl JsonPatchError {
    /// The position of the failed operation in the patch, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The failed operation's `op`: `"add"`, `"remove"`, `"replace"`, `"move"`, `"copy"`
    /// or `"test"`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The failed operation's `path`, as a JSON Pointer.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why it failed.
    pub fn failure(&self) -> &JsonPatchFailure {
        &self.failure
    }
}

impl fmt::Display for JsonPatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "json patch operation {} ({} {}) failed: {}",
            self.index, self.op, self.path, self.failure
        )
    }
}

impl std::error::Error for JsonPatchError {}

/// Why a JSON Patch operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonPatchFailure {
    /// A `test` found another value at its path.
    TestFailed,
    /// The `path` does not exist (`remove`, `replace`, `test`), its parent does not exist
    /// (`add`, `move`, `copy`), an array index is out of range or not a number, or the
    /// path goes through a value that is neither object nor array.
    InvalidPath,
    /// The `from` of a `move` or `copy` does not exist.
    InvalidFrom {
        /// The `from` pointer.
        from: String,
    },
    /// A `move` whose `path` lies inside its `from`.
    MoveIntoItself,
    /// A failure this crate does not know by name, with the JSON Patch library's own
    /// description.
    Other(String),
}

impl JsonPatchFailure {
    fn from_kind(kind: &PatchErrorKind, operation: &PatchOperation) -> Self {
        match (kind, operation) {
            (PatchErrorKind::TestFailed, _) => JsonPatchFailure::TestFailed,
            (PatchErrorKind::InvalidPointer, _) => JsonPatchFailure::InvalidPath,
            (PatchErrorKind::CannotMoveInsideItself, _) => JsonPatchFailure::MoveIntoItself,
            (PatchErrorKind::InvalidFromPointer, PatchOperation::Move(op)) => {
                JsonPatchFailure::InvalidFrom {
                    from: op.from.to_string(),
                }
            }
            (PatchErrorKind::InvalidFromPointer, PatchOperation::Copy(op)) => {
                JsonPatchFailure::InvalidFrom {
                    from: op.from.to_string(),
                }
            }
            (kind, _) => JsonPatchFailure::Other(kind.to_string()),
        }
    }
}

impl fmt::Display for JsonPatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonPatchFailure::TestFailed => f.write_str("the value differs"),
            JsonPatchFailure::InvalidPath => {
                f.write_str("the path does not exist or cannot hold a value")
            }
            JsonPatchFailure::InvalidFrom { from } => write!(f, "from {from} does not exist"),
            JsonPatchFailure::MoveIntoItself => f.write_str("cannot move a value into itself"),
            JsonPatchFailure::Other(description) => f.write_str(description),
        }
    }
}
