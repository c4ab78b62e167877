//! A validation error that names every field it refuses.

use std::fmt;

/// Why a patched record was refused, field by field.
///
/// A typed [`Patch`](crate::Patch) collects a problem per field that fails, so the caller
/// learns about all of them at once, then turns the list into a result with
/// [`into_result`](Invalid::into_result).
///
/// # Examples
///
/// ```
/// use verkv::{Field, Invalid};
///
/// let mut title = String::from("Alien");
/// let mut invalid = Invalid::new();
/// invalid.check("title", Field::Null.apply_to(&mut title));
/// let year = 1700;
/// if year < 1888 {
///     invalid.push("year", format!("must be 1888 or later, got {year}"));
/// }
/// let err = invalid.into_result().unwrap_err();
/// assert_eq!(err.fields().collect::<Vec<_>>(), ["title", "year"]);
/// assert_eq!(
///     err.to_string(),
///     "invalid title: must not be null; invalid year: must be 1888 or later, got 1700"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invalid {
    problems: Vec<FieldProblem>,
}

/// One refused field and the reason, as part of [`Invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's name (or path, for nested fields).
    pub field: String,
    /// What is wrong with its would-be value.
    pub reason: String,
}

impl Invalid {
    /// An empty list: nothing refused yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is refused for `reason`.
    pub fn push(&mut self, field: impl Into<String>, reason: impl fmt::Display) {
        self.problems.push(FieldProblem {
            field: field.into(),
            reason: reason.to_string(),
        });
    }

    /// Records `field`'s error, if `result` is one.
    pub fn check<E: fmt::Display>(&mut self, field: impl Into<String>, result: Result<(), E>) {
        if let Err(reason) = result {
            self.push(field, reason);
        }
    }

    /// Whether no field was refused.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The refused fields with their reasons, in the order they were recorded.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.problems
    }

    /// The names of the refused fields, in the order they were recorded.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.problems.iter().map(|problem| problem.field.as_str())
    }

    /// `Ok` if no field was refused, otherwise `Err(self)`.
    ///
    /// # Errors
    ///
    /// `self`, if it lists at least one field.
    pub fn into_result(self) -> Result<(), Invalid> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            return f.write_str("invalid record");
        }
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            problem.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}
