//! The one error type of the app model: which file, which JSON path, what was expected.

use std::fmt;

/// A problem found in one of an app's files.
///
/// The message always names the file (relative to the app root), the JSON path inside it
/// (`$` for the whole document) and what was expected there, so that a user can fix it
/// without reading Stratus's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    /// File the problem is in, relative to the app root (e.g. `Hello/function.json`).
    pub file: String,
    /// JSON path of the offending value (e.g. `$.bindings[0].authLevel`).
    pub path: String,
    /// What was expected, and what was found.
    pub problem: String,
}

impl ModelError {
    pub fn new(
        file: impl Into<String>,
        path: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.path, self.problem)
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
